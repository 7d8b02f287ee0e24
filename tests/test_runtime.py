"""The planned number of steps and the CPU peak."""

from __future__ import annotations

import math

import torch

from harness.config import TrainerConfig
from harness.runtime import planned_steps


def test_planned_steps_from_a_token_budget():
    assert planned_steps(TrainerConfig(max_steps=7), 10**6, 1024) == 7
    budget = TrainerConfig(max_steps=None, tokens_per_param=1.5)
    assert planned_steps(budget, 100_000, 1024) == math.ceil(150_000 / 1024)
    assert planned_steps(budget, 1, 1024) == 1


def test_the_cpu_peak_is_kept_per_machine_as_the_best_reading(tmp_path, monkeypatch):
    """Load only lowers a matmul's rate: the kept peak is the best reading so far, so a run on a
    busy machine does not move the MFU of the next (it read 0.017 to 0.19 TFLOP/s before)."""
    from harness import mfu

    path = tmp_path / "peaks.json"
    assert mfu.kept_peak("cpu | 2 threads", 1.0e11, path)[:2] == (1.0e11, 1)
    assert mfu.kept_peak("cpu | 2 threads", 0.2e11, path)[:2] == (1.0e11, 2)  # a busy reading
    assert mfu.kept_peak("cpu | 1 threads", 0.5e11, path)[:2] == (0.5e11, 1)  # another key
    path.write_text("not json")
    assert mfu.kept_peak("cpu | 2 threads", 0.3e11, path)[:2] == (0.3e11, 1)  # starts afresh

    monkeypatch.setenv("FFN_VARIANTS_PEAKS", str(tmp_path / "kept.json"))
    readings = iter([2.0e11, 0.4e11])
    monkeypatch.setattr(mfu, "measure_matmul_flops", lambda device, dtype: next(readings))
    first = mfu.device_peak(torch.device("cpu"), torch.float32)
    second = mfu.device_peak(torch.device("cpu"), torch.float32)
    assert first.flops == second.flops == 2.0e11
    assert "best of 2 reading(s) on this machine" in second.source
    assert str(tmp_path / "kept.json") in second.source
