"""`trainer.resume=auto` on the command line of a stopped run or sweep: the same command finds
the dir it stopped in.

A run's dir is `<root>/<job name>/<time>` and a sweep's `<root>/<experiment>/<time>`: a rerun
plans a new `<time>`. With `trainer.resume=auto` given on the command line (and no
hydra.run.dir / hydra.sweep.dir), the pre-flight looks beside the planned dir for the newest one
that a command with the same overrides started and did not finish, and runs there instead:
a run resumes from its newest checkpoint, a sweep resumes its unfinished jobs and skips the
completed ones (harness.entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from harness.summary import RunStatus, RunSummary

RESUMABLE = {RunStatus.interrupted, RunStatus.preempted, RunStatus.running, RunStatus.failed}


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def same_command(saved: Sequence[str], overrides: Sequence[str]) -> bool:
    """Whether two override lists are one command, trainer.resume aside."""

    def norm(items: Sequence[str]) -> set[str]:
        return {o for o in items if _key(o) != "trainer.resume"}

    return norm(saved) == norm(overrides)


def _load(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _status(job_dir: Path) -> str | None:
    try:
        return str(RunSummary.read(job_dir).status)
    except (OSError, ValueError):
        return None


def changed_overrides(saved: Sequence[str], overrides: Sequence[str]) -> str:
    """How a command's overrides differ from a saved one's: "trainer.max_steps=40 -> 60, ..."."""

    def as_dict(items: Sequence[str]) -> dict[str, str]:
        return {
            _key(o): o.split("=", 1)[1] if "=" in o else ""
            for o in items
            if _key(o) != "trainer.resume"
        }

    old, new = as_dict(saved), as_dict(overrides)
    parts = [
        f"{k}={old.get(k, '(unset)')} -> {new.get(k, '(unset)')}"
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]
    return ", ".join(parts)


def run_saved_overrides(run_dir: Path) -> list[str] | None:
    saved = _load(run_dir / ".hydra" / "overrides.yaml")
    return [str(o) for o in saved] if isinstance(saved, list) else None


def run_unfinished(run_dir: Path, overrides: Sequence[str]) -> bool:
    saved = run_saved_overrides(run_dir)
    if saved is None or not same_command(saved, overrides):
        return False
    has_checkpoint = any((run_dir / "checkpoints").glob("step_*.pt"))
    return _status(run_dir) in RESUMABLE and has_checkpoint


def why_fresh(parent: Path, overrides: Sequence[str]) -> str | None:
    """Where no stopped run of this command is found: why, if the newest stopped run beside it
    was another command's (one line for the user), else None."""
    candidates = sorted(
        (p for p in parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for candidate in candidates:
        saved = run_saved_overrides(candidate)
        stopped = _status(candidate) in RESUMABLE and any(
            (candidate / "checkpoints").glob("step_*.pt")
        )
        if saved is not None and stopped:
            return (
                f"trainer.resume=auto: starting fresh: {candidate} was interrupted with other "
                f"overrides ({changed_overrides(saved, overrides)}); to continue it, rerun that "
                "command"
            )
    return None


def sweep_unfinished(sweep_dir: Path, overrides: Sequence[str]) -> bool:
    from harness.tuned import sweep_jobs

    saved = _load(sweep_dir / "multirun.yaml")
    hydra = saved.get("hydra", {}) if isinstance(saved, dict) else {}
    task = (hydra.get("overrides") or {}).get("task") if isinstance(hydra, dict) else None
    if not isinstance(task, list) or not same_command([str(o) for o in task], overrides):
        return False
    params = (hydra.get("sweeper") or {}).get("params") or {}
    jobs = [d for d in sweep_dir.iterdir() if (d / ".hydra").is_dir()]
    expected = len(sweep_jobs(params, [str(o) for o in task]))
    done = sum(_status(d) == RunStatus.completed for d in jobs)
    return done < expected


def unfinished_dir(planned: Path, overrides: Sequence[str], multirun: bool) -> Path | None:
    """The newest dir beside `planned` that this command started and did not finish. Where
    there is none but a run of another command beside it stopped, one line says why this one
    starts fresh."""
    parent = planned.parent
    if not parent.is_dir():
        return None
    found = sweep_unfinished if multirun else run_unfinished
    for candidate in sorted(parent.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if candidate.is_dir() and candidate != planned and found(candidate, overrides):
            return candidate
    if not multirun:
        note = why_fresh(parent, overrides)
        if note:
            print(note, flush=True)
    return None
