"""A 4-job sweep one job after another, then with the parallel preset: which finishes sooner.

    python -m bench.parallel_sweep [--steps 30] [--jobs 2] [--oversubscribed] [--out DIR]

The same sweep (ffn=relu,swiglu x seed=0,1, model=tiny on the built-in corpus) runs with Hydra's
basic launcher (sequential, torch's default threads) and with hydra/launcher=parallel (n_jobs at
once, cores // n_jobs threads each); --oversubscribed adds the parallel run with every job on all
cores (threads_per_job=cores), what running jobs side by side did before the thread split. Prints
the wall times and their ratios, and writes them as JSON and Markdown. Nothing else may run on the
machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sweep_args(steps: int, sweep_dir: Path) -> list[str]:
    return [
        "-m",
        "ffn=relu,swiglu",
        "seed=0,1",
        f"trainer.max_steps={steps}",
        f"trainer.eval_interval={steps}",
        "trainer.eval_tokens=2048",
        "trainer.progress=false",
        "trainer.checkpoint=false",
        "logger.mode=disabled",
        f"hydra.sweep.dir={sweep_dir}",
    ]


def timed_sweep(name: str, steps: int, launcher: list[str], work: Path) -> float:
    """Wall seconds of the whole sweep (python train.py -m ...), which must succeed."""
    print(f"{name}: {' '.join(launcher) or 'basic launcher'}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    cmd = [sys.executable, "train.py", *sweep_args(steps, work / name), *launcher]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: the {name} sweep failed: {proc.stderr.strip()[-500:]}")
    print(f"{name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds


def markdown(result: dict) -> str:
    rows = [
        f"| {name} | {seconds:.1f} | {result['sequential_s'] / seconds:.2f}x |"
        for name, seconds in result["wall_s"].items()
    ]
    return (
        "\n".join(
            [
                f"# A 4-job sweep, one after another vs in parallel ({result['date']})",
                "",
                f"{result['machine']}, {result['cores']} cores; ffn=relu,swiglu x seed=0,1, "
                f"model=tiny, "
                f"{result['steps']} steps a job, {result['jobs']} jobs at once in parallel.",
                "",
                "| launcher | sweep wall time (s) | speed vs sequential |",
                "|---|---:|---:|",
                *rows,
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    from hydra_plugins.ffn_variants_launcher.pool_launcher import cores

    ap = argparse.ArgumentParser(
        prog="python -m bench.parallel_sweep", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--steps", type=int, default=30, help="training steps per job")
    ap.add_argument("--jobs", type=int, default=2, help="jobs at once in the parallel sweeps")
    ap.add_argument(
        "--oversubscribed",
        action="store_true",
        help="also time the parallel sweep with every job on all cores",
    )
    ap.add_argument("--out", type=Path, default=Path("results/parallel"))
    args = ap.parse_args(argv)
    subprocess.run([sys.executable, "-m", "harness.tools.prepare_data"], cwd=REPO, check=True)
    parallel = ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.jobs}"]
    runs = {
        "sequential (basic launcher)": [],
        f"parallel, {args.jobs} jobs, split threads": parallel,
    }
    if args.oversubscribed:
        runs[f"parallel, {args.jobs} jobs, all cores each"] = [
            *parallel,
            f"hydra.launcher.threads_per_job={cores()}",
        ]
    with tempfile.TemporaryDirectory() as tmp:
        wall = {
            name: timed_sweep(f"sweep{i}", args.steps, launcher, Path(tmp))
            for i, (name, launcher) in enumerate(runs.items())
        }
    result = {
        "date": date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "cores": cores(),
        "steps": args.steps,
        "jobs": args.jobs,
        "wall_s": wall,
        "sequential_s": wall["sequential (basic launcher)"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parallel_sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "parallel_sweep.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
