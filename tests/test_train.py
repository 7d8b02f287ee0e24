"""The harness end to end: compose the real config, train on CPU, check the files and W&B."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.mfu import cpu_model
from tests.helpers import (
    compose,
    run_train,
    tiny_overrides,
    train,
    wandb_history_keys,
    wandb_records,
    wandb_run,
)
from tests.helpers.ffn_formulas import BUILTINS, is_gated


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_variant_trains_and_its_loss_goes_down(name, token_cache, tmp_path):
    overrides = [f"ffn={name}", *tiny_overrides(token_cache, steps=24), "logger.mode=disabled"]
    summary = train(overrides, tmp_path)
    val = [m["val/loss"] for m in read_metrics(tmp_path) if "val/loss" in m]
    assert summary.status == "completed" and summary.steps == 24
    assert val[0] > 8.5  # about ln(8192) = 9.0 at initialisation (the 8k-token BPE)
    assert val[-1] < val[0] - 1.5, val
    assert summary.final_val_loss == pytest.approx(val[-1])
    assert summary.params["d_ff"] == (128 if not is_gated(name) else 86)
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "completed"


def test_offline_wandb_run_holds_the_metrics(token_cache, tmp_path):
    summary = train(["ffn=swiglu", *tiny_overrides(token_cache, steps=4), "seed=3"], tmp_path)
    keys = wandb_history_keys(tmp_path)
    for key in [
        "train/loss",
        "train/lr",
        "train/tokens_per_s",
        "train/mfu",
        "train/model_tflops",
        "val/loss",
        "grad_norm/total",
        "grad_norm/attn",
        "grad_norm/ffn",
        "grad_norm/embed",
    ]:
        assert key in keys, key
    for part in ("gate", "value", "product"):
        for stat in ("mean", "std", "rms", "absmax", "frac_zero"):
            assert f"act/L1/{part}/{stat}" in keys
    run = wandb_run(tmp_path)
    assert run["display_name"] == "swiglu-s3" and run["job_type"] == "train"
    assert {"swiglu", "seed3"} <= set(run["tags"])
    config = run["config"]["update"]
    assert (
        config["ffn"]["name"] == "swiglu" and config["params"]["total"] == summary.params["total"]
    )
    # tokens is the x-axis of the train/ and val/ charts; val/loss is summarised by its minimum.
    metrics = [r["metric"] for r in wandb_records(tmp_path, "metric")]
    steps = {m.get("glob_name", m.get("name")): m.get("step_metric") for m in metrics}
    assert steps["train/*"] == steps["val/*"] == steps["val/loss"] == "tokens"
    val_loss = next(m for m in metrics if m.get("name") == "val/loss")
    assert val_loss["summary"] == {"min": True}
    # The local files carry the same numbers.
    local = read_metrics(tmp_path)
    assert any("act/L0/gate/rms" in m for m in local)
    assert summary.params["total"] > 0
    assert 0 < summary.mfu < 1 and summary.model_tflops > 0
    assert summary.peak_source.startswith(f"calibrated: {cpu_model()} float32 matmul, best of")
    mfus = [m["train/mfu"] for m in local if "train/mfu" in m]
    assert mfus and all(0 < v < 1 for v in mfus)


def test_dense_variant_logs_its_activation(token_cache, tmp_path):
    train(["ffn=relu", *tiny_overrides(token_cache, steps=2), "logger.mode=disabled"], tmp_path)
    record = next(m for m in read_metrics(tmp_path) if "act/L0/act/frac_zero" in m)
    assert 0.3 < record["act/L0/act/frac_zero"] < 0.7  # ReLU zeroes about half its inputs
    assert not any("gate" in k for k in record)


def test_same_seed_same_batches_across_variants(token_cache, tmp_path):
    """Paired comparisons: two variants with one seed train on identical data."""
    from harness.data import BatchSampler, prepare_tokens

    cfg = compose(["ffn=relu", *tiny_overrides(token_cache)])
    data = prepare_tokens(cfg.data, progress=False)
    a = BatchSampler(data.train, 4, 32, seed=cfg.seed).get(5)
    cfg2 = compose(["ffn=swiglu", *tiny_overrides(token_cache)])
    b = BatchSampler(data.train, 4, 32, seed=cfg2.seed).get(5)
    assert (a[0] == b[0]).all()


def test_train_py_single_run_writes_its_run_dir(token_cache, tmp_path):
    out = tmp_path / "run"
    proc = run_train(["ffn=geglu", *tiny_overrides(token_cache), f"hydra.run.dir={out}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "val loss" in proc.stdout and "wandb sync" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variant"] == "geglu" and summary["status"] == "completed"
    assert (out / ".hydra" / "config.yaml").exists()
    assert list((out / "checkpoints").glob("step_*.pt"))


def test_multirun_makes_one_wandb_run_per_job(token_cache, tmp_path):
    proc = run_train(
        [
            "-m",
            "ffn=relu,swiglu",
            *tiny_overrides(token_cache, steps=2),
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dirs = sorted(p.parent for p in tmp_path.glob("*/summary.json"))
    assert len(run_dirs) == 2
    runs = [wandb_run(d) for d in run_dirs]
    assert sorted(r["display_name"] for r in runs) == ["relu-s0", "swiglu-s0"]
    assert len({r["run_id"] for r in runs}) == 2
    assert len({r["run_group"] for r in runs}) == 1 and runs[0]["run_group"].startswith("sweep-")
    for d in run_dirs:
        exits = wandb_records(d, "exit")
        assert len(exits) == 1 and exits[0]["exit"].get("exit_code", 0) == 0  # each run finished


@pytest.mark.parametrize(
    "args, message",
    [
        (["ffn=swigl"], "unknown ffn 'swigl' (did you mean swiglu?); known: bilinear, "),
        (["model.n_layr=3"], "unknown key model.n_layr (did you mean model.n_layer?)"),
        (["model.pos=rop"], "model.pos=rop is not one of: rope, learned"),
        (["optim.lr=-1"], "optim.lr=-1.0 must be > 0"),
        (["model.n_head=3"], "model.d_model=128 is not divisible by model.n_head=3"),
        (["model.n_layr=3"], "n_layr"),
        (["trainer.max_steps=many"], "trainer.max_steps"),
        (["data=files"], "data.path"),
        (["data=files", "data.path=/nonexistent/corpus.txt"], "/nonexistent/corpus.txt"),
        (["-m", "ffn=relu,nope"], "unknown ffn 'nope'; known:"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, token_cache, tmp_path):
    proc = run_train([*args, f"data.cache_dir={token_cache}", f"hydra.run.dir={tmp_path}/run"])
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_value_outside_its_choices_fails_at_start(token_cache, tmp_path):
    proc = run_train(["trainer.on_nonfinite=skp", f"hydra.run.dir={tmp_path}/run"])
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: trainer.on_nonfinite=skp is not one of: stop, skip"
    assert not (tmp_path / "run").exists()


def test_rerun_of_a_finished_run_keeps_its_results(token_cache, tmp_path):
    args = [
        *tiny_overrides(token_cache, steps=4),
        "logger.mode=disabled",
        f"hydra.run.dir={tmp_path}",
    ]
    assert run_train(args).returncode == 0
    first = json.loads((tmp_path / "summary.json").read_text())
    again = run_train(args)  # trainer.resume=auto finds the final checkpoint: nothing to train
    assert again.returncode == 0, again.stderr[-2000:]
    second = json.loads((tmp_path / "summary.json").read_text())
    assert second["final_val_loss"] == first["final_val_loss"] is not None
    assert second["steps"] == first["steps"] == 4


def test_resume_into_a_different_model_is_a_clear_error(token_cache, tmp_path):
    args = [
        *tiny_overrides(token_cache, steps=2),
        "logger.mode=disabled",
        f"hydra.run.dir={tmp_path}",
    ]
    assert run_train(["ffn=relu", *args]).returncode == 0
    auto = run_train(["ffn=swiglu", *args])  # trainer.resume=auto: the run dir is another run's
    assert auto.returncode == 2
    assert "another config: ffn.name=relu (now swiglu)" in auto.stderr
    named = run_train(["ffn=swiglu", *args, f"trainer.resume={tmp_path}"])  # asked for by name
    assert named.returncode == 2  # refused by name too, before any weight is loaded
    assert "another config: ffn.name=relu (now swiglu)" in named.stderr
    assert "Traceback" not in named.stderr


def test_gradient_accumulation_counts_every_micro_batch(token_cache, tmp_path):
    overrides = [*tiny_overrides(token_cache, steps=4), "trainer.grad_accum=3"]
    summary = train([*overrides, "logger.mode=disabled"], tmp_path)
    assert summary.tokens == 4 * 3 * 4 * 32  # steps x accumulation x batch x block
    assert summary.status == "completed"
