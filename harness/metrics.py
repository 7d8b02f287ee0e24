"""One metrics sink, several loggers: metrics.jsonl in the run dir, and Weights & Biases.

The trainer calls `MetricsSink.log(step, record)` and nothing else: the sink adds the step, the
tokens seen and the wall time once, and hands the record to every logger. A new logger is one
class with `log` and `close`. The local file is complete on its own (sweep.report reads nothing
else); W&B is a view of the same numbers. Logging never stops training: a W&B failure falls back
to offline or to nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from harness.config import LoggerConfig, LoggerMode
from harness.errors import one_line
from harness.json_safe import dumps
from harness.summary import RunStatus, RunSummary

# Console capture off: wrapping stdout under a progress bar slowed CPU training about 3x.
WANDB_SETTINGS = {"silent": True, "console": "off"}


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class MetricLogger(Protocol):
    def log(self, step: int, record: dict[str, Any]) -> None: ...

    def close(self, summary: RunSummary) -> None: ...


class MetricsSink:
    """Takes each record once and sends it, with step, tokens and time, to every logger."""

    def __init__(
        self, loggers: list[MetricLogger], tokens: Callable[[], int], offset: float = 0.0
    ) -> None:
        self.loggers = loggers
        self.tokens = tokens
        self.start = time.perf_counter() - offset  # a resumed run's clock continues

    def log(self, step: int, record: dict[str, Any]) -> None:
        full = {"step": step, "tokens": self.tokens(), "time_s": self.elapsed(), **record}
        for logger in self.loggers:
            logger.log(step, full)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def close(self, summary: RunSummary) -> None:
        for logger in self.loggers:
            logger.close(summary)


class JsonlLogger:
    """metrics.jsonl: one JSON object per line, each flushed, so a crash loses at most one.

    On resume, lines logged after the checkpoint's step are dropped first: they are logged again.
    """

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        if resume_step is None:
            path.write_text("")
        else:
            self._truncate_after(resume_step)
        self._file = path.open("a")

    def _truncate_after(self, step: int) -> None:
        kept = []
        for line in self.path.read_text().splitlines() if self.path.exists() else []:
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a crash
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, record: dict[str, Any]) -> None:
        self._file.write(dumps(record) + "\n")
        self._file.flush()

    def close(self, summary: RunSummary) -> None:
        self._file.close()


# Online init waits this long for the server before the run goes offline (W&B's own default
# retries for over a minute: a minute per job of a sweep on a node without a route out).
INIT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 3.0  # a TCP connection to the server, DNS included
UNREACHABLE = ".wandb_unreachable"  # in the sweep dir: later jobs go offline without waiting
_unreachable_servers: set[str] = set()  # this process's finding (the basic launcher's jobs)


def wandb_server() -> str:
    return os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"


def server_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the W&B server opens within `timeout` s (DNS included: it
    runs in a thread, since name resolution takes no timeout)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            result.append(True)
        except (OSError, UnicodeError):
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def online_possible(sweep_dir: Path | None) -> bool:
    """False when the W&B server was found unreachable by this process or by an earlier job of
    the same sweep (sweep_dir/.wandb_unreachable); else probe it."""
    url = wandb_server()
    marker = sweep_dir / UNREACHABLE if sweep_dir is not None else None
    known = url in _unreachable_servers or bool(
        marker and marker.is_file() and marker.read_text() == url
    )
    if not known and server_reachable(url):
        return True
    if not known:
        _unreachable_servers.add(url)
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.write_text(url)
    warn(
        f"W&B server {url} is unreachable{' (as for an earlier job)' if known else ''}; logging "
        "offline: upload later with `wandb sync`"
    )
    return False


def wandb_init(wandb: Any, mode: str, kwargs: dict[str, Any], sweep_dir: Path | None = None) -> Any:
    """wandb.init in `mode`; online falls back to offline (for `wandb sync` later) when there is
    no login, no network or the service refuses, within INIT_TIMEOUT_S."""
    offline = dict(mode="offline", settings=wandb.Settings(**WANDB_SETTINGS), **kwargs)
    if mode == LoggerMode.online and not online_possible(sweep_dir):
        return wandb.init(**offline)
    try:
        settings = wandb.Settings(init_timeout=INIT_TIMEOUT_S, **WANDB_SETTINGS)
        return wandb.init(mode=mode, settings=settings, **kwargs)
    except Exception as e:
        if mode == LoggerMode.offline:
            raise
        warn(f"W&B online init failed ({one_line(e)}); logging offline")
        return wandb.init(**offline)


class WandbLogger:
    """One W&B run per training run; online, offline or disabled (then no logger at all).

    Online without a login or a network continues offline and says how to `wandb sync` later.
    `run_id` resumes the W&B run of an earlier attempt (a resumed checkpoint).
    """

    def __init__(
        self,
        cfg: LoggerConfig,
        *,
        mode: LoggerMode,
        name: str,
        group: str | None,
        tags: list[str],
        config: dict[str, Any],
        run_dir: Path,
        run_id: str | None = None,
    ) -> None:
        kwargs = dict(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group or group,
            name=name,
            tags=[*tags, *cfg.tags],
            config=config,
            dir=str(run_dir),
            id=run_id,
            resume="allow" if run_id else None,
            job_type="train",
        )
        self.run = None
        try:
            import wandb  # optional, and slow to import: only when W&B is on

            sweep_dir = run_dir.parent if group else None  # a sweep's jobs share what they find
            self.run = wandb_init(wandb, str(mode), kwargs, sweep_dir)
            self._define_metrics()
        except Exception as e:
            warn(f"W&B is unavailable ({one_line(e)}); metrics go to local files only")

    def _define_metrics(self) -> None:
        """Tokens seen as the x-axis of train/ and val/ charts (runs of different batch sizes line
        up), and val/loss and val/bpb summarised by their minima."""
        self.run.define_metric("tokens")
        for prefix in ("train/*", "val/*", "grad_norm/*", "act/*"):
            self.run.define_metric(prefix, step_metric="tokens")
        self.run.define_metric("val/loss", step_metric="tokens", summary="min")
        self.run.define_metric("val/bpb", step_metric="tokens", summary="min")

    @property
    def id(self) -> str | None:
        return self.run.id if self.run is not None else None

    def log(self, step: int, record: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.log({k: v for k, v in record.items() if k != "step"}, step=step)
        except Exception as e:
            warn(f"W&B log failed at step {step} ({one_line(e)}); continuing with local files")

    def log_sample(self, summary: RunSummary) -> None:
        """The end-of-run sample as a W&B table; a failure is a warning, never the run's end."""
        try:
            import wandb

            table = wandb.Table(columns=["step", "seed", "sample"])
            table.add_data(summary.steps, summary.seed, summary.sample)
            self.run.log({"samples": table}, step=summary.steps)
        except Exception as e:
            warn(f"W&B sample table failed ({one_line(e)}); the sample is in summary.json")

    def close(self, summary: RunSummary) -> None:
        if self.run is None:
            return
        if summary.sample:
            self.log_sample(summary)
        try:
            if summary.status in (RunStatus.preempted, RunStatus.interrupted):
                self.run.mark_preempting()  # the requeued job resumes this same run
            for key, value in summary.to_dict().items():
                if key != "data":
                    self.run.summary[key] = value
            directory = Path(self.run.dir).parent
            offline = self.run.settings.mode == "offline"
            self.run.finish(exit_code=0 if summary.status == RunStatus.completed else 1)
            if offline:
                print(f"W&B run saved offline; upload it with: wandb sync {directory}", flush=True)
        except Exception as e:
            warn(f"W&B finish failed ({one_line(e)}); the local files hold every metric")
        self.run = None
