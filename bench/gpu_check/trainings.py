"""Stage 4: the trainings, each a train.py run; steady-state tokens/s and MFU."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.gpu_check.config import (
    ESTIMATES,
    FULL_TRAININGS,
    LOG_INTERVAL,
    REPO,
    TRAIN_MODEL,
    TRAIN_STEPS,
)
from bench.gpu_check.records import Training
from bench.gpu_check.run import stage_timeout, tail


def steady_state(metrics: list[dict], key: str) -> float | None:
    """The median of `key` over the log windows of the second half of training (no compile,
    no warm-up)."""
    rows = [m for m in metrics if key in m and m[key] is not None]
    if not rows:
        return None
    last = max(m["step"] for m in rows)
    later = [m[key] for m in rows if m["step"] > last / 2] or [rows[-1][key]]
    return float(statistics.median(later))


def training_args(t: Training, run_dir: Path) -> list[str]:
    return [
        f"model={t.model}",
        "trainer=gpu",
        "ffn=swiglu",
        f"ffn.impl={t.impl}",
        f"trainer.compile={str(t.compile).lower()}",
        f"trainer.max_steps={t.steps}",
        f"trainer.eval_interval={t.steps}",
        "trainer.eval_tokens=131072",
        f"trainer.log_interval={LOG_INTERVAL}",
        "trainer.checkpoint=false",
        "trainer.resume=never",
        "trainer.progress=false",
        "logger.mode=disabled",
        f"hydra.run.dir={run_dir}",
    ]


def run_training(t: Training, runs: Path, estimate_s: float) -> Training:
    """One training in its own process; its run dir, stdout and stderr are kept under `runs`."""
    run_dir = runs / t.name
    shutil.rmtree(run_dir, ignore_errors=True)  # this check's own run of the same name, before
    runs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = runs / f"{t.name}.stdout.log", runs / f"{t.name}.stderr.log"
    start = time.monotonic()
    with open(stdout, "w") as out, open(stderr, "w") as err:
        try:
            rc = subprocess.run(
                [sys.executable, "train.py", *training_args(t, run_dir)],
                cwd=REPO,
                stdout=out,
                stderr=err,
                timeout=stage_timeout(estimate_s),
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    t.wall_s, t.run_dir = time.monotonic() - start, str(run_dir.relative_to(runs.parent))
    if rc != 0:
        t.status = "timed out" if rc == 124 else "failed"
        t.error = tail(stderr)
        return t
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    t.status = summary["status"]
    t.tokens_per_s = steady_state(metrics, "train/tokens_per_s")
    t.mfu = steady_state(metrics, "train/mfu")
    t.model_tflops = steady_state(metrics, "train/model_tflops")
    t.peak_memory_mib = summary.get("peak_memory_mib")
    t.final_val_loss = summary.get("final_val_loss")
    return t


def planned_trainings(full: bool) -> list[Training]:
    models = FULL_TRAININGS if full else {TRAIN_MODEL: TRAIN_STEPS}
    # Compiled, as trainer=gpu runs: torch, the fused op, and QuACK's single-pass gated GEMM (last:
    # the budget drops it first); --full adds the eager pair.
    runs = [(impl, True) for impl in ("torch", "triton", "quack")]
    if full:
        runs = [("torch", False), ("triton", False), *runs]
    return [
        Training(model, impl, compiled, steps)
        for model, steps in models.items()
        for impl, compiled in runs
    ]


def training_estimate(t: Training, full: bool) -> float:
    key = "training:quack" if t.impl == "quack" else "training:compiled"
    base = ESTIMATES[key if t.compile else "training:eager"]
    return base * (2.5 if full else 1.0)
