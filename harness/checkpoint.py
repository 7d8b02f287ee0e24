"""Checkpoint files: written atomically, loaded safely, pruned to the last K, found for resume.

A checkpoint is a dict of tensors and plain values (the trainer's state_dict), so it loads with
weights_only=True. A file that is truncated or corrupt is reported and the previous good one is
used.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from harness.diskfull import DiskFullError, is_disk_full, state_nbytes
from harness.errors import UserInputError
from harness.metrics import warn

PATTERN = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:07d}.pt"


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Save `state` as step_<step>.pt via temp file, fsync and rename; keep the newest `keep`."""
    path = checkpoint_path(directory, step)
    tmp = path.with_name(path.name + ".tmp")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)  # a partial file holds the space that ran out
        if is_disk_full(e):
            raise DiskFullError(
                f"the checkpoint of step {step}", path, state_nbytes(state), cause=e
            ) from e
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def load_file(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None (with a warning) if it does not load."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        warn(f"checkpoint {path} is corrupt or truncated: unreadable ({type(e).__name__})")
        return None


def load_latest(directory: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; corrupt ones are reported and skipped."""
    found = list(reversed(list_checkpoints(directory)))
    for i, path in enumerate(found):
        state = load_file(path)
        if state is not None:
            return path, state
        if i + 1 < len(found):
            warn("trying the previous checkpoint")
    return None


def find_resume(resume: str, run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint trainer.resume names, loaded; None to start from scratch.

    auto: the newest good one in <run_dir>/checkpoints (none: start over). never: None. Any other
    value is a path: a checkpoint file, a checkpoints dir, or a run dir holding checkpoints/; it
    must hold a readable checkpoint (UserInputError otherwise).
    """
    if resume == "never":
        return None
    if resume == "auto":
        found = load_latest(run_dir / "checkpoints")
        names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
        if found is None and names:
            warn(f"starting fresh: {run_dir}'s checkpoints are all unreadable ({', '.join(names)})")
        return found
    source = Path(resume)
    if source.is_dir():
        found = load_latest(source / "checkpoints" if (source / "checkpoints").is_dir() else source)
    else:
        state = load_file(source) if source.is_file() else None
        found = (source, state) if state is not None else None
    if found is None:
        raise UserInputError(f"trainer.resume={resume}: no readable checkpoint there")
    return found
