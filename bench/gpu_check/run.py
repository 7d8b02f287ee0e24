"""Running the stages: the budget clock, timestamped lines, processes with a timeout."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path

from bench.gpu_check.config import REPO, STDERR_LINES


class Clock:
    """Seconds since the run started, and what is left of the budget."""

    def __init__(self, budget_s: float | None) -> None:
        self.reset(budget_s)

    def reset(self, budget_s: float | None) -> None:
        """Start counting now, against `budget_s` (None: no budget)."""
        self.start, self.budget_s = time.monotonic(), budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return float("inf") if self.budget_s is None else self.budget_s - self.elapsed()


CLOCK = Clock(None)  # the run's one clock: reset by main, never rebound


def say(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[gpu-check {stamp} +{CLOCK.elapsed():4.0f}s] {message}", flush=True)


def slugify(name: str) -> str:
    from bench.kernel_cases import slugify as slug

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
