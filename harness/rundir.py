"""A run that fails on bad input leaves nothing behind, and never removes what it did not create.

Hydra creates the run dir (and any missing parents) before the job starts. If the job then stops
on a user error (a missing corpus, say), the dir holds only Hydra's config copy: it is removed,
with the parents this run created. A directory that existed before the command started is never
removed, empty or not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HYDRA_FILES = {".hydra", "train.log"}


class NewDirs:
    """The directories on the way to a planned run dir that did not exist when it was planned."""

    def __init__(self, planned: Path) -> None:
        planned = planned.absolute()
        self.created = {p for p in (planned, *planned.parents) if not p.exists()}

    def remove_failed_run(self, run_dir: Path) -> None:
        """Remove `run_dir` if this run created it and it holds only Hydra's files, then each
        empty parent this run created, stopping at the first one that existed before. Several
        processes of one run may do this at once: what another removed first is gone already."""
        run_dir = run_dir.absolute()
        if run_dir not in self.created or not run_dir.is_dir():
            return
        try:
            if not {p.name for p in run_dir.iterdir()} <= HYDRA_FILES:
                return
        except FileNotFoundError:
            return
        shutil.rmtree(run_dir, ignore_errors=True)
        for parent in run_dir.parents:
            try:
                if parent not in self.created or any(parent.iterdir()):
                    break
                parent.rmdir()
            except OSError:  # gone already, or not empty
                break
