"""Values torch would reject are one-line errors naming the key; the passes over the training
split are planned, warned about above one and recorded; the logged throughput leaves out the
evaluations and the warm-up."""

from __future__ import annotations

import json

import pytest

from harness import state
from harness.cli import check_command_line
from harness.errors import UserInputError
from tests.helpers import compose, fresh_cache, run_train, tiny_overrides

BAD_VALUES = {
    "optim.lr=nan": "optim.lr=nan must be a finite number",
    "optim.lr=inf": "optim.lr=inf must be a finite number",
    "optim.weight_decay=nan": "optim.weight_decay=nan",
    "optim.weight_decay=inf": "optim.weight_decay=inf",
    "optim.grad_clip=nan": "optim.grad_clip=nan",
    "optim.eps=nan": "optim.eps=nan",
    "optim.beta1=nan": "optim.beta1=nan",
    "optim.min_lr_ratio=nan": "optim.min_lr_ratio=nan",
    "trainer.tokens_per_param=nan": "trainer.tokens_per_param=nan",
    "ffn.dropout=1.5": "ffn.dropout=1.5 must be in [0, 1)",
    "ffn.dropout=1.0": "ffn.dropout=1.0 must be in [0, 1)",
    "ffn.dropout=-0.1": "ffn.dropout=-0.1",
    "model.dropout=1.0": "model.dropout=1.0 must be in [0, 1)",
    "model.norm_eps=0": "model.norm_eps=0.0 must be a positive finite number",
    "model.rope_base=nan": "model.rope_base=nan",
}


@pytest.mark.parametrize("override", sorted(BAD_VALUES))
def test_values_torch_would_reject_are_named_before_it_sees_them(override):
    with pytest.raises(UserInputError) as e:
        check_command_line([override, "--cfg", "job"])
    assert BAD_VALUES[override] in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("override", ["optim.lr=nan", "ffn.dropout=1.5"])
def test_the_two_that_reached_torch_exit_2_in_one_line(override, tmp_path):
    proc = run_train([override, "hydra.run.dir=out/run"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {BAD_VALUES[override]}"]
    assert not (tmp_path / "out").exists()


def test_more_than_one_pass_is_warned_before_training_and_recorded(token_cache, tmp_path):
    overrides = tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=30)
    proc = run_train([*overrides, "trainer.batch_size=16", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    split, planned = summary["data"]["train_tokens"], 30 * 16 * 32
    windows = (split - 32) // 32  # a pass: every window of block_size tokens once
    epochs = summary["data"]["epochs"]
    assert epochs["planned"] == pytest.approx(30 * 16 / windows) and epochs["planned"] > 1
    assert epochs["done"] == pytest.approx(summary["tokens"] / 32 / windows)
    warning = next(line for line in proc.stderr.splitlines() if "passes over" in line)
    assert f"{planned:,} tokens planned, {split:,} in the split" in warning
    assert "data.max_tokens" in warning


def test_one_pass_or_less_says_nothing(token_cache, tmp_path):
    overrides = tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=2)
    proc = run_train([*overrides, f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 0 and "passes over" not in proc.stderr, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0 < summary["data"]["epochs"]["planned"] <= 1


def test_the_gpu_comparison_is_a_regime_a_reviewer_accepts():
    """At least 10 training tokens per non-embedding parameter and 128k tokens per optimizer
    step, compiled, warm-up sized to the run, 5 seeds, and under one pass of its capped split
    (so, drawn without replacement, no token twice), with at least 1M tokens per evaluation."""
    import torch

    from ffn_variants.model import GPT
    from harness.runtime import planned_steps

    cfg = compose(["experiment=contenders_gpu"])
    t, m, d = cfg.trainer, cfg.model, cfg.data
    with torch.device("meta"):
        non_embedding = GPT(m, cfg.resolved_ffn).param_counts()["non_embedding"]
    per_step = t.batch_size * t.grad_accum * m.block_size
    steps = planned_steps(t, non_embedding, per_step)
    assert steps * per_step >= 10 * non_embedding and per_step >= 128 * 1024
    assert t.compile and cfg.optim.warmup_fraction and 0.01 <= cfg.optim.warmup_fraction <= 0.1
    from omegaconf import OmegaConf

    from tests.helpers import REPO

    overlay = OmegaConf.load(REPO / "configs" / "experiment" / "contenders_gpu.yaml")
    assert overlay.hydra.sweeper.params.seed == "0,1,2,3,4"
    assert d.source == "hub" and d.max_tokens is not None
    assert steps * per_step <= d.max_tokens * (1 - d.held_out_fraction)  # no token seen twice
    assert t.eval_tokens >= 2**20 and d.max_tokens * d.held_out_fraction / 2 >= t.eval_tokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_window_holding_an_evaluation_reads_like_any_other(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(state.time, "perf_counter", clock)
    rate = state.Throughput()
    clock.now += 5.0  # the first window: allocations, compilation
    rate.add(1000)
    assert rate.read() is None
    for evaluate in (False, True, False):
        clock.now += 1.0  # 1000 tokens of training per second
        rate.add(1000)
        if evaluate:
            with rate.paused():
                clock.now += 3.0  # an evaluation and a checkpoint
        assert rate.read() == pytest.approx(1000.0)
    assert rate.excluded_total == pytest.approx(3.0)


def test_summary_keeps_the_training_and_the_wall_clock_rates(token_cache, tmp_path):
    overrides = tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=6)
    proc = run_train([*overrides, "trainer.eval_interval=1", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_time_s"] > 0
    assert summary["train_tokens_per_s"] > summary["tokens_per_s"] > 0  # evals cost wall time
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    evals = [r for r in records if "val/loss" in r]
    assert all(r["time/eval_s"] > 0 for r in evals)
    rates = [r["step"] for r in records if "train/tokens_per_s" in r]
    assert 1 not in rates and rates  # the warm-up window is not reported


@pytest.mark.parametrize("epochs", [0.4, 2.5])
def test_the_report_states_the_passes_above_one(tmp_path, epochs):
    from sweep.report import make_report
    from tests.helpers.fake_runs import write_run

    root = tmp_path / "sweep"
    for job, (variant, seed) in enumerate([(v, s) for v in ("relu", "swiglu") for s in (0, 1)]):
        write_run(root / str(job), variant, seed, 5.0 + 0.1 * seed, epochs=epochs)
    dest, _ = make_report(root, out=tmp_path / "results", name="r", log=lambda _: None)
    text = (dest / "report.md").read_text()
    assert ("**Repeated data:** runs made up to 2.5 passes" in text) == (epochs > 1)


def test_a_dry_run_prints_the_plan_and_writes_no_run_dir(token_cache, tmp_path):
    """The passes it plans (with the warning) equal what the run then records."""
    overrides = tiny_overrides(fresh_cache(token_cache, tmp_path / "cache"), steps=30)
    args = [*overrides, "trainer.batch_size=16", f"hydra.run.dir={tmp_path / 'run'}"]
    first = run_train([*args[:-1], f"hydra.run.dir={tmp_path / 'real'}"])  # builds the cache
    assert first.returncode == 0, first.stderr[-3000:]
    recorded = json.loads((tmp_path / "real" / "summary.json").read_text())["data"]["epochs"]
    proc = run_train([*args, "trainer.dry_run=true"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "run").exists()
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("swiglu-s0:")]
    assert "30 steps x 512 = 15,360 tokens" in line
    assert f"{recorded['planned']:.2f} passes" in line and recorded["planned"] > 1
    assert "warning: swiglu-s0 plans" in proc.stdout and "No run dir was written" in proc.stdout


def test_a_sweeps_dry_run_has_a_line_per_job(tmp_path):
    proc = run_train(
        ["-m", "ffn=relu,swiglu", "seed=0,1,2", "trainer.dry_run=true", "trainer.plan_gpu=H100"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = [ln.split(":")[0] for ln in proc.stdout.splitlines() if "params (" in ln]
    assert sorted(jobs) == sorted(f"{v}-s{s}" for v in ("relu", "swiglu") for s in range(3))
    assert "dry run: 6 job(s)" in proc.stdout and "datasheet: H100" in proc.stdout
    assert list(tmp_path.iterdir()) == []
