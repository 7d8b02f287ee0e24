"""The plan: the stages in order with their estimates, printed, and run within the budget."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.gpu_check.config import (
    ESTIMATES,
    INFERENCE_ARGS,
    INFERENCE_ROUNDS,
    SHARDS,
    TEST_FILES,
    TEST_MARKS,
)
from bench.gpu_check.inference_stage import run_inference
from bench.gpu_check.kernel_stage import kernel_cases, run_kernels
from bench.gpu_check.records import Report, Stage, Training
from bench.gpu_check.report import write
from bench.gpu_check.run import CLOCK, say
from bench.gpu_check.shards import run_tests
from bench.gpu_check.trainings import planned_trainings, run_training, training_estimate
from harness.fmt import or_na

CAP_FACTOR = 1.5  # a stage's hard cap, over its estimate


class StageCut(Exception):
    """A stage ran past its cap."""


@contextlib.contextmanager
def capped(seconds: float) -> Iterator[None]:
    """Raise StageCut in this (main) thread once `seconds` have passed (SIGALRM): an in-process
    stage stops at its next Python instruction, a stage's subprocess is killed by
    subprocess.run's own clean-up."""

    def cut(signum: int, frame: object) -> None:
        raise StageCut

    previous = signal.signal(signal.SIGALRM, cut)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Planned:
    stage: Stage
    run: Callable[[Stage], None]
    what: str  # for --dry-run


def previous_timings(out: Path) -> dict[str, float]:
    """The stage times the last run on this GPU measured (results.json), if any."""
    path = out / "results.json"
    try:
        return {k: float(v) for k, v in json.loads(path.read_text()).get("timings", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def plan(report: Report, out: Path, full: bool) -> list[Planned]:
    """The stages in order, each with its estimate and what runs it."""
    cases = kernel_cases(full)
    from bench.kernel_cases import BLOCK_CASES

    kernel_s = ESTIMATES["kernels:start"] + ESTIMATES["kernels:case"] * len(cases)
    kernel_s += ESTIMATES["kernels:block"] * len(BLOCK_CASES)
    steps: list[Planned] = [
        Planned(
            Stage("tests", ESTIMATES["tests"]),
            lambda s: run_tests(report, out, s),
            f"pytest -m '{TEST_MARKS}' {' '.join(TEST_FILES)} in {SHARDS} processes",
        )
    ]
    # What matters most first: the compiled trainings (MFU, triton vs torch vs quack), then the
    # kernels, then inference; a stage past its cap is cut, so a slow one cannot starve the rest.
    for t in planned_trainings(full):

        def run(stage: Stage, t: Training = t) -> None:
            report.trainings.append(t)
            run_training(t, out / "runs", stage.cap_s or stage.estimate_s)
            key = (
                "training:eager"
                if not t.compile
                else f"training:{'quack' if t.impl == 'quack' else 'compiled'}"
            )
            if t.status == "completed":
                report.timings[key] = t.wall_s
            stage.status = "done" if t.status == "completed" else "failed"
            stage.note = (
                f"{or_na(t.tokens_per_s, ',.0f')} tokens/s, MFU {or_na(t.mfu, '.1%')}"
                if t.status == "completed"
                else f"{t.status}: {(t.error.splitlines() or [''])[-1][:160]}"
            )

        steps.append(
            Planned(
                Stage(f"training {t.name}", training_estimate(t, full)),
                run,
                f"train.py model={t.model} trainer=gpu ffn.impl={t.impl} "
                f"trainer.compile={str(t.compile).lower()}, {t.steps} steps",
            )
        )
    steps.append(
        Planned(
            Stage(
                "kernels", kernel_s, min_s=kernel_s - ESTIMATES["kernels:case"] * (len(cases) - 1)
            ),
            lambda s: run_kernels(report, out, s, cases),
            f"bench.kernels, {len(cases)} cases: "
            + ", ".join(f"{a}:{n}x{f}" for a, n, f in cases[:6])
            + (" ..." if len(cases) > 6 else "")
            + "; FFN blocks (torch, triton, quack): "
            + ", ".join("{}:{}x{}x{}".format(*b) for b in BLOCK_CASES),
        )
    )
    steps.append(
        Planned(
            Stage("inference", ESTIMATES["inference"]),
            lambda s: run_inference(report, out, s),
            f"bench.inference {' '.join(INFERENCE_ARGS)}, eager and compiled (CUDA graphs), "
            f"{INFERENCE_ROUNDS} rounds",
        )
    )
    for p in steps:
        p.stage.cap_s = round(CAP_FACTOR * p.stage.estimate_s)
    return steps


def print_plan(steps: list[Planned], budget_s: float | None) -> None:
    budget = "none" if budget_s is None else f"{budget_s:.0f} s"
    print(f"gpu-check plan (budget {budget}; estimates for one H100/H200, cold caches):")
    print(f"  {'stage, in order':<38} {'est.':>5}    {'cap':>5}")
    pre = ESTIMATES["preflight"]
    rows = [("preflight", pre, pre, "imports, CUDA, the token cache in data/")]
    rows += [(p.stage.name, p.stage.estimate_s, p.stage.cap_s, p.what) for p in steps]
    for name, est, cap, what in rows:
        print(f"  {name:<38} {est:>5.0f} s  {cap or est:>5.0f} s  {what}")
    total = sum(est for _, est, _, _ in rows)
    print(f"  {'total':<38} {total:>5.0f} s  ({total / 60:.1f} min; a stage past its cap is cut)")


def execute(report: Report, out: Path, steps: list[Planned]) -> None:
    """Run the stages in order; a stage whose estimate exceeds what is left is skipped. The
    report is rewritten after each."""
    report.stages += [p.stage for p in steps]
    write(report, out)
    for p in steps:
        s = p.stage
        if s.status == "skipped":  # by the preflight, which said why
            say(f"{s.name}: skipped ({s.note})")
            continue
        if (s.estimate_s if s.min_s is None else s.min_s) > CLOCK.left():
            s.status = "skipped"
            s.note = f"needs ~{s.estimate_s:.0f} s, {max(0.0, CLOCK.left()):.0f} s left"
            say(f"{s.name}: skipped ({s.note})")
            write(report, out)
            continue
        cap = min(s.cap_s or s.estimate_s * CAP_FACTOR, max(CLOCK.left(), 1.0))
        say(f"{s.name}: start (estimate {s.estimate_s:.0f} s, cap {cap:.0f} s)")
        began = time.monotonic()
        try:
            with capped(cap):
                p.run(s)
        except StageCut:
            s.status, s.note = "cut", f"past its cap of {cap:.0f} s: cut"
        except Exception as e:  # a stage's own failure is reported, the next stage still runs
            s.status, s.note = "failed", f"{type(e).__name__}: {e}"[:300]
        s.wall_s = time.monotonic() - began
        if s.name in ("tests", "inference") and s.status == "done":
            report.timings[s.name] = s.wall_s
        say(f"{s.name}: {s.status} in {s.wall_s:.0f} s ({s.note})")
        write(report, out)
    skipped = [s.name for s in report.stages if s.status == "skipped"]
    if skipped:
        say(f"skipped for the budget: {', '.join(skipped)}")
