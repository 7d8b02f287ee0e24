"""The LR schedule, the planned number of steps and AdamW's weight-decay groups."""

from __future__ import annotations

import math

import pytest
import torch

from ffn_variants.model import GPTConfig
from ffn_variants.resolved import FFNSpec
from harness.config import OptimConfig, TrainerConfig
from harness.runtime import lr_at, make_optimizer, planned_steps, warmup_steps
from tests.helpers.models import build_gpt


def test_warmup_rises_linearly_to_the_peak():
    optim = OptimConfig(lr=1e-2, warmup_steps=4)
    assert [lr_at(s, optim, 100) for s in range(4)] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2])


def test_cosine_runs_from_the_peak_to_min_lr_ratio():
    optim = OptimConfig(lr=1e-2, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(10, optim, 110) == pytest.approx(1e-2)  # the first step after warmup
    assert lr_at(60, optim, 110) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))  # half way
    assert lr_at(110, optim, 110) == pytest.approx(1e-3)  # the end
    assert lr_at(500, optim, 110) == pytest.approx(1e-3)  # and after it
    lrs = [lr_at(s, optim, 110) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_warmup_fraction_takes_a_share_of_the_run():
    optim = OptimConfig(lr=1.0, warmup_steps=30, warmup_fraction=0.05)
    assert warmup_steps(optim, 200) == 10
    assert warmup_steps(OptimConfig(warmup_fraction=0.0), 200) == 0
    assert warmup_steps(OptimConfig(warmup_fraction=0.001), 200) == 1  # never zero if set
    assert lr_at(9, optim, 200) == pytest.approx(1.0) and lr_at(4, optim, 200) == 0.5


def test_planned_steps_from_a_token_budget():
    assert planned_steps(TrainerConfig(max_steps=7), 10**6, 1024) == 7
    budget = TrainerConfig(max_steps=None, tokens_per_param=1.5)
    assert planned_steps(budget, 100_000, 1024) == math.ceil(150_000 / 1024)
    assert planned_steps(budget, 1, 1024) == 1


def test_weight_decay_applies_to_matrices_only():
    model = build_gpt(
        GPTConfig(n_layer=1, n_head=2, d_model=32, d_ff=128, multiple_of=2, vocab_size=64),
        FFNSpec(),
    )
    opt = make_optimizer(model, OptimConfig(weight_decay=0.1), fused=False)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"])
    assert all(p.dim() < 2 for p in plain["params"]) and plain["params"]
    grouped = {id(p) for g in opt.param_groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters()}  # every parameter, once
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    assert isinstance(opt, torch.optim.AdamW)


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
