"""Stage 2: bench.kernels, case by case, restarted after a crash without that case."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.gpu_check.config import ESTIMATES
from bench.gpu_check.records import Report, Stage
from bench.gpu_check.run import CLOCK, run_logged, say, slugify, stage_timeout, tail


def kernel_cases(full: bool) -> list[tuple[str, int, int]]:
    from bench import kernel_cases as kernels

    if full:
        return [(a, n, f) for n, f in kernels.bench_shapes(False) for a in kernels.ACTIVATIONS]
    return list(kernels.ACCEPTANCE_CASES)


def kernel_json(out: Path, gpu: str) -> Path:
    return out / f"bench_{slugify(gpu)}.json"


def run_kernels(report: Report, out: Path, stage: Stage, cases: list[tuple[str, int, int]]):
    """bench.kernels over `cases` and the FFN blocks (torch, triton, quack), restarted after a
    crash without the case it died in."""
    from bench.kernel_cases import BLOCK_CASES, case_name, error_row

    path = kernel_json(out, report.gpu)
    for stale in (path, path.with_suffix(".md")):
        stale.unlink(missing_ok=True)
    log = out / "kernels.log"
    log.unlink(missing_ok=True)
    per_case, start = ESTIMATES["kernels:case"], ESTIMATES["kernels:start"]
    left = CLOCK.left()
    blocks = [] if left < start + ESTIMATES["kernels:block"] else list(BLOCK_CASES)
    left -= ESTIMATES["kernels:block"] * len(blocks)
    fits = len(cases) if left == float("inf") else max(0, int((left - start) // per_case))
    fits = min(len(cases), fits)
    todo, skipped = cases[:fits], cases[fits:]
    crashed: list[dict] = []
    began = time.monotonic()
    while todo:
        args = [a for c in todo for a in ("--case", case_name(*c))]
        args += [a for b in blocks for a in ("--block", "{}:{}x{}x{}".format(*b))]
        cmd = [sys.executable, "-m", "bench.kernels", "--out", str(out), "--append", *args]
        rc = run_logged(cmd, log, stage_timeout(start + per_case * len(todo)))
        rows = json.loads(path.read_text())["rows"] if path.exists() else []
        done = {(r["activation"], r["n_rows"], r["n_cols"]) for r in rows}
        todo = [c for c in todo if c not in done]
        if rc == 0 or not todo:
            break
        why, last = ("timed out" if rc == 124 else f"exit {rc}"), tail(log, 1)
        if rc == 2:  # it could not start (no CUDA, no Triton): the same for every case
            crashed += [error_row(*c, "*", f"the benchmark could not start: {last}") for c in todo]
            break
        dead = todo.pop(0)  # the case it was in when it died: recorded, and the rest go on
        crashed.append(error_row(*dead, "*", f"the benchmark process died ({why}): {last}"))
        say(f"kernel case {case_name(*dead)} crashed the benchmark ({why}); going on")
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    report.kernels = rows + crashed
    if path.exists():
        report.copy_gbps = json.loads(path.read_text())["meta"]["copy_gbps"]
    ran = len({(r["activation"], r["n_rows"], r["n_cols"]) for r in report.kernels})
    if ran:
        report.timings["kernels:case"] = max(1.0, (time.monotonic() - began - start) / ran)
    errors = [r for r in report.kernels if r.get("error")]
    stage.note = f"{ran} of {len(cases)} cases, {len(errors)} rows with errors"
    if skipped:
        stage.note += f"; not started (budget): {', '.join(case_name(*c) for c in skipped)}"
    stage.status = "failed" if errors or not ran else "done"
