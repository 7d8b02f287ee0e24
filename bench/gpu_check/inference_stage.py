"""Stage 3: bench.inference, eager and compiled."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.gpu_check.config import INFERENCE_ARGS, INFERENCE_ROUNDS
from bench.gpu_check.records import Report, Stage
from bench.gpu_check.run import run_logged, stage_timeout, tail


def run_inference(report: Report, out: Path, stage: Stage) -> None:
    """bench.inference at gpt2_124m, relu and swiglu, eager and compiled (a fixed-shape KV cache
    under CUDA graphs, as a server decodes): prefill latency, decode tokens/s and memory in bf16.
    Its files land in <out>/contenders_inference/."""
    log = out / "inference.log"
    log.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.inference", *INFERENCE_ARGS]
    cmd += ["--rounds", str(INFERENCE_ROUNDS), "--out", str(out)]
    rc = run_logged(cmd, log, stage_timeout(stage.estimate_s))
    path = out / "contenders_inference" / "inference.json"
    rows = json.loads(path.read_text())["results"] if path.exists() and rc == 0 else []
    report.inference = rows
    errors = [r for r in rows if r.get("error")]
    stage.status = "done" if rows and not errors else "failed"
    stage.note = f"{len(rows)} rows, {len(errors)} with errors" if rows else tail(log, 1)
