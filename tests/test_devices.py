"""Which GPU a process uses, determinism on CUDA and the datasheet peaks: the parts of multi-GPU
set-up that can be checked without a GPU (torch.cuda's calls are recorded, not made)."""

from __future__ import annotations

import os

import pytest
import torch

from harness import distributed, runtime
from harness.errors import UserInputError
from harness.mfu import table_peak


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda as if GPUs were there; returns the list of calls made to it."""
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    return calls


def test_each_rank_takes_its_gpu_before_the_process_group_starts(fake_cuda, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)

    def init_process_group(backend):
        fake_cuda.append(("init_process_group", backend))

    monkeypatch.setattr(distributed.dist, "init_process_group", init_process_group)
    distributed.init()
    assert fake_cuda == [("set_device", 1), ("init_process_group", "nccl")]


@pytest.mark.parametrize(
    ("name", "local_rank", "expected"),
    [("cuda", 3, "cuda:3"), ("auto", 2, "cuda:2"), ("cuda", None, "cuda"), ("cuda:1", 3, "cuda:1")],
)
def test_trainer_device_cuda_means_this_ranks_gpu(fake_cuda, name, local_rank, expected):
    assert runtime.pick_device(name, local_rank) == torch.device(expected)


def test_deterministic_sets_the_cublas_workspace(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        runtime.use_deterministic_algorithms()
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's valid choice stays
        runtime.use_deterministic_algorithms()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    finally:
        torch.use_deterministic_algorithms(False)


def test_deterministic_with_a_bad_cublas_workspace_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
    with pytest.raises(UserInputError, match="CUBLAS_WORKSPACE_CONFIG=:4096:8"):
        runtime.use_deterministic_algorithms()
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize(
    ("device_name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA H200 NVL", 835.0),
    ],
)
def test_nvl_and_pcie_cards_get_their_own_peaks(device_name, peak):
    assert table_peak(device_name)[1] == peak
