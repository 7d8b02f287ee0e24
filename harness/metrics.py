"""Where metrics go: metrics.jsonl and summary.json in the run dir, and Weights & Biases.

The local files are complete on their own (sweep.report reads nothing else); W&B is a view of the
same numbers. Logging never stops training: a W&B failure falls back to offline or to nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

# Console capture off: wrapping stdout under a progress bar slowed CPU training about 3x.
SETTINGS = {"silent": True, "console": "off"}


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file and a rename, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


class MetricsFile:
    """Appends one JSON object per line; each line is flushed so a crash loses at most one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a")

    def log(self, record: dict[str, Any]) -> None:
        clean = {k: _finite_or_none(v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step`: a resumed run logs those steps again."""
        self._file.close()
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a crash
        self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")

    def close(self) -> None:
        self._file.close()


class WandbRun:
    """One W&B run per training run; mode online, offline or disabled.

    Online without a login or a network continues offline and says how to `wandb sync` later.
    """

    def __init__(
        self,
        *,
        mode: str,
        project: str,
        entity: str | None,
        group: str | None,
        name: str,
        tags: list[str],
        config: dict[str, Any],
        run_dir: Path,
        run_id: str | None = None,
    ) -> None:
        self.run = None
        if mode == "disabled":
            return
        if mode not in ("online", "offline"):
            raise ValueError(f"unknown logger.mode '{mode}'; known: online, offline, disabled")
        kwargs = dict(
            project=project,
            entity=entity,
            group=group,
            name=name,
            tags=tags,
            config=config,
            dir=str(run_dir),
            id=run_id,
            resume="allow" if run_id else None,
        )
        try:
            import wandb

            self._wandb = wandb
            try:
                self.run = wandb.init(
                    mode=mode, settings=wandb.Settings(init_timeout=60, **SETTINGS), **kwargs
                )
            except Exception as e:  # no login, no network, service refused
                if mode == "offline":
                    raise
                warn(f"W&B online init failed ({str(e).splitlines()[0]}); logging offline")
                self.run = wandb.init(mode="offline", settings=wandb.Settings(**SETTINGS), **kwargs)
        except Exception as e:
            warn(f"W&B is unavailable ({str(e).splitlines()[0]}); metrics go to local files only")
            self.run = None

    @property
    def id(self) -> str | None:
        return self.run.id if self.run is not None else None

    @property
    def offline(self) -> bool:
        return self.run is not None and self.run.settings.mode == "offline"

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log(metrics, step=step)
        except Exception as e:
            warn(f"W&B log failed at step {step} ({e}); continuing with local files")

    def finish(self, summary: dict[str, Any], exit_code: int = 0, preempted: bool = False) -> None:
        if self.run is None:
            return
        try:
            if preempted:
                self.run.mark_preempting()  # the requeued job resumes this same run
            for key, value in summary.items():
                self.run.summary[key] = value
            directory = Path(self.run.dir).parent
            offline = self.offline
            self.run.finish(exit_code=exit_code)
            if offline:
                print(f"W&B run saved offline; upload it with: wandb sync {directory}", flush=True)
        except Exception as e:
            warn(f"W&B finish failed ({e}); the local files hold every metric")
        self.run = None
