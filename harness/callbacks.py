"""Hydra callbacks: after a multirun, say which jobs did not complete.

Jobs may run in other processes (the pool launcher, submitit), so the sweep's outcome is read
from what each job left on disk: its summary.json, or only Hydra's .hydra/ for a job that died
before writing one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness.preemption import INTERRUPTED_EXIT
from harness.summary import RunStatus, RunSummary


def job_outcomes(sweep_dir: Path) -> list[tuple[str, str, str]]:
    """(job dir, status, error) for every job under sweep_dir, in job order."""
    outcomes = []
    for hydra_dir in sorted(sweep_dir.glob("**/.hydra")):
        job_dir = hydra_dir.parent
        if job_dir == sweep_dir:
            continue
        try:
            summary = RunSummary.read(job_dir)
            outcomes.append((job_dir.name, str(summary.status), summary.error or ""))
        except (OSError, ValueError):
            outcomes.append((job_dir.name, "unfinished", "no readable summary.json"))
    return outcomes


class SweepStatus(Callback):
    """Prints the jobs that did not complete; exits 130 if the sweep was interrupted (Ctrl-C: a
    job interrupted or not started), else 1 if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        outcomes = job_outcomes(sweep_dir)
        bad = [o for o in outcomes if o[1] != RunStatus.completed]
        print(f"sweep {sweep_dir}: {len(outcomes) - len(bad)}/{len(outcomes)} jobs completed")
        if bad:
            for name, status, error in bad:
                print(f"  {name}: {status}{': ' + error if error else ''}", file=sys.stderr)
            interrupted = any(status == RunStatus.interrupted for _, status, _ in bad)
            if interrupted:
                print(
                    f"continue: rerun the same command with trainer.resume=auto (it continues "
                    f"in {sweep_dir})",
                    file=sys.stderr,
                )
            sys.exit(INTERRUPTED_EXIT if interrupted else 1)
