"""A Hydra launcher that runs each job in a fresh process on a device of its own.

    python train.py -m experiment=glu_table hydra/launcher=gpus       # one job per visible GPU
    python train.py -m experiment=glu_table hydra/launcher=parallel   # n_jobs at a time

Slots: the GPUs this process sees (CUDA_VISIBLE_DEVICES, or every GPU), or `devices` as given; on
a machine without GPUs, n_jobs CPU slots. A job starts when a slot is free, with
CUDA_VISIBLE_DEVICES set to its GPU alone (so trainer.device=auto is that GPU) and torch's threads
set to cores // jobs at once (so parallel jobs never fight over cores); its slot is handed to the
next job when it ends.

Why a fresh process per job: a worker reused from one job to the next (joblib's loky, a process
pool) has fixed CUDA_VISIBLE_DEVICES and thread counts when CUDA and OpenMP first initialised, so
a next job sent there would run on the previous job's GPU. A process started for one job, with its
environment set before it imports anything, cannot.

Stopping: SIGTERM or Ctrl-C to the sweep is passed to its running jobs (each finishes its step,
checkpoints and stops, as on preemption) and the sweep waits for them, so no job outlives it.
The jobs run in process groups of their own, so a terminal's Ctrl-C reaches the sweep alone,
which hands it on once to each running job: they stop "interrupted" as a run does, the jobs not
started are recorded as such, the sweep-status list follows and the sweep exits 130, without a
traceback. A second Ctrl-C is handed on too: the jobs stop at once.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan loads this module outside
# sys.modules, where a dataclass cannot resolve string annotations.
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus

from hydra_plugins.ffn_variants_launcher.job import (
    Job,
    SweepLauncher,
    claim_threads,
    run_job_in_process,
)

log = logging.getLogger(__name__)


@dataclass
class PoolLauncherConf:
    _target_: str = "hydra_plugins.ffn_variants_launcher.pool_launcher.PoolLauncher"
    # GPUs to hand out, one job each (CUDA_VISIBLE_DEVICES values); null: every GPU this process
    # sees; [] or no GPU: CPU jobs only.
    devices: list[str] | None = None
    # Jobs at once. null: one per GPU, or 2 on a CPU. With GPUs, at most one job per GPU.
    n_jobs: int | None = None
    # torch threads per job; null: the cores this process may use // the jobs running at once.
    threads_per_job: int | None = None
    # After a stop, how long the running jobs get to checkpoint before they are killed.
    stop_grace_s: float = 120.0


ConfigStore.instance().store(
    group="hydra/launcher", name="pool", node=PoolLauncherConf, provider="ffn_variants"
)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES would name them to a child."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    try:
        import torch  # heavy: imported where the launcher counts devices, not at plugin discovery

        return [str(i) for i in range(torch.cuda.device_count())]  # NVML: no CUDA context here
    except ImportError:
        return []


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Slot:
    device: str | None  # a GPU for CUDA_VISIBLE_DEVICES, or None: a share of the CPU
    threads: int


def plan_slots(
    devices: list[str] | None, n_jobs: int | None, threads_per_job: int | None
) -> list[Slot]:
    gpus = visible_gpus() if devices is None else [str(d) for d in devices]
    if gpus:
        gpus = gpus[: n_jobs or len(gpus)]
    count = len(gpus) or n_jobs or 2
    per_job = threads_per_job or max(1, cores() // count)
    return [Slot(gpu, per_job) for gpu in gpus] or [Slot(None, per_job) for _ in range(count)]


def stop_jobs(processes: list[Any], grace_s: float = 120.0) -> None:
    """SIGTERM to each running job (the trainer checkpoints and stops), then wait; a job still
    running after grace_s is killed."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=grace_s)
        if process.is_alive():
            process.kill()
            process.join()


def exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def not_started(cfg: Any) -> JobReturn:
    """A job of an interrupted sweep that never started: its dir holds Hydra's config and a
    summary saying so (as the basic launcher leaves it), for the sweep-status list and a
    resume."""
    from omegaconf import OmegaConf

    from harness.entry import record_not_started

    run_dir = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg.hydra.overrides.task, run_dir / ".hydra" / "overrides.yaml")
    record_not_started(run_dir, cfg)
    result = JobReturn(overrides=list(cfg.hydra.overrides.task), status=JobStatus.COMPLETED)
    result.return_value = None
    return result


def run_in_child(payload: bytes, slot: Slot, conn: Any) -> None:
    """A job in its own process (and process group: a terminal's Ctrl-C goes to the sweep, which
    hands it on): the environment first, then torch's threads, then the job."""
    os.setpgrp()
    claim_threads(slot.threads, slot.device)
    import cloudpickle  # only when jobs are handed to child processes

    result = run_job_in_process(*cloudpickle.loads(payload))
    conn.send_bytes(cloudpickle.dumps(result))
    conn.close()


class PoolLauncher(SweepLauncher):
    name = "Pool launcher"

    def __init__(self, stop_grace_s: float = 120.0, **slots: Any) -> None:
        super().__init__(stop_grace_s)
        self.settings = slots
        self.interrupts = 0  # Ctrl-C's to the sweep, each handed on to the running jobs
        self.running: dict = {}  # process sentinel -> (process, pipe, job index, slot)

    def dispatch(self, jobs: list[Job], sweep_dir: Path) -> list[JobReturn]:
        slots = plan_slots(**self.settings)
        where = ", ".join(f"GPU {s.device}" if s.device is not None else "CPU" for s in slots)
        self.announce(
            jobs, f"{len(slots)} at a time ({where}; {slots[0].threads} thread(s) each)", sweep_dir
        )
        running = self.running
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = {}
        if in_main_thread:
            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, exit_on_sigterm)
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, self.on_ctrl_c)
        try:
            return self._schedule(jobs, slots, running)
        except BaseException:  # SIGTERM, or an error of the sweep itself: the jobs stop with it
            self.stopping(len(running), 0, sweep_dir)
            stop_jobs([process for process, *_ in running.values()], self.stop_grace_s)
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def on_ctrl_c(self, signum: int, _frame: Any) -> None:
        """Ctrl-C: handed on once to each running job (they checkpoint and stop; a second one:
        they stop at once); no further job starts."""
        self.interrupts += 1
        if self.interrupts == 1:
            log.warning(
                f"{self.name}: interrupted; {len(self.running)} running job(s) checkpoint and "
                "stop, none starts (Ctrl-C again: stop now)"
            )
        for process, *_ in list(self.running.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)

    def _schedule(self, jobs: list[Job], slots: list[Slot], running: dict) -> list[JobReturn]:
        """Start a job whenever a slot is free, keeping it in `running` until it ends."""
        import cloudpickle  # only when jobs are handed to child processes

        context = mp.get_context("spawn")
        waiting = deque(enumerate(jobs))
        free = list(slots)
        results: list[JobReturn | None] = [None] * len(jobs)
        state = Singleton.get_state()
        while waiting or running:
            if self.interrupts:  # the jobs not started are recorded as such
                while waiting:
                    i, (_, cfg) = waiting.popleft()
                    results[i] = not_started(cfg)
            while waiting and free:
                i, (_, cfg) = waiting.popleft()
                slot = free.pop(0)
                payload = cloudpickle.dumps((self.hydra_context, cfg, self.task_function, state))
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=run_in_child, args=(payload, slot, send))
                process.start()
                send.close()
                running[process.sentinel] = (process, receive, i, slot)
            for sentinel in wait(list(running)):
                process, receive, i, slot = running.pop(sentinel)
                overrides = list(jobs[i][1].hydra.overrides.task)
                results[i] = self._collect(process, receive, overrides)
                free.append(slot)
        return results  # type: ignore[return-value]

    @staticmethod
    def _collect(process: Any, receive: Any, overrides: Sequence[str]) -> JobReturn:
        """The job's JobReturn, or a failed one if its process died without sending it."""
        import cloudpickle  # only when jobs are handed to child processes

        try:
            result = cloudpickle.loads(receive.recv_bytes()) if receive.poll() else None
        except (EOFError, OSError):
            result = None
        process.join()
        if result is None:
            result = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
            result._return_value = RuntimeError(f"job process exited with code {process.exitcode}")
        return result
