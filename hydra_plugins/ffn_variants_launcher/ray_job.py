"""What a Ray task of hydra/launcher=ray_local|ray_cluster runs: one Hydra job, on any node.

Before the job: it asks the sweep's StopBoard whether it may start (a stopped sweep starts no
job, a retry included), moves to the directory the sweep was launched from (Hydra's
runtime.cwd: relative data, cache and output paths then mean there what they mean to the user,
on a head started anywhere), gives CPU jobs no GPU and torch the task's CPUs as threads.

During it: a thread watches the board; when the sweep is stopped it sends this process SIGTERM,
which the trainer takes as a preemption (finish the step, checkpoint, "preempted" in
summary.json) and hands back to the handler installed here, which ends the job without a retry.
A SIGTERM from anywhere else (a node drained, a worker killed) goes on to Ray's own handler: the
worker exits, Ray retries the task, and the retry resumes from the checkpoint
(trainer.resume=auto). A job that fails on bad input returns normally and is not retried.

Ray is imported here only inside functions: Hydra's plugin scan imports this module where ray
may not be installed.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan loads this module outside
# sys.modules.
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from harness.errors import UserInputError
from hydra_plugins.ffn_variants_launcher.job import claim_threads, run_job_in_process

POLL_S = 1.0  # how often a running job looks at the board


class StopBoard:
    """One per sweep (a Ray actor): which jobs started, and whether the sweep was stopped.

    An actor's methods run one at a time, so a job either starts before the stop (and the
    driver waits for it) or learns of the stop and never starts."""

    def __init__(self) -> None:
        self.stopped = False
        self.started: set[int] = set()

    def start(self, idx: int) -> bool:
        if not self.stopped:
            self.started.add(idx)
        return not self.stopped

    def stop(self) -> list[int]:
        """Stop the sweep; the jobs that started (some may have ended since)."""
        self.stopped = True
        return sorted(self.started)

    def is_stopped(self) -> bool:
        return self.stopped


class SweepStopped(BaseException):
    """The sweep was stopped and the job has checkpointed (a BaseException, so that Hydra's
    run_job, which records an Exception as the job's failure, lets it through)."""


class UnsharedDir(UserInputError):
    """The sweep dir the driver created is not visible on the node that runs the job."""


def run_ray_job(
    idx: int,
    hydra_context: HydraContext,
    sweep_config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
    board: Any,
) -> JobReturn | None:
    """The job's JobReturn; None if the sweep was stopped before it began."""
    if not ask(board.start, idx):
        return None
    overrides = list(sweep_config.hydra.overrides.task)
    try:
        enter_launch_dir(sweep_config)
    except UnsharedDir as e:
        failed = JobReturn(overrides=overrides, status=JobStatus.FAILED)
        failed._return_value = e
        return failed
    claim_devices()
    watcher = StopWatcher(board)
    previous = signal.signal(signal.SIGTERM, watcher.on_sigterm)
    watcher.start()
    try:
        return run_job_in_process(hydra_context, sweep_config, task_function, singleton_state)
    except SweepStopped:
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
    finally:
        watcher.done.set()
        signal.signal(signal.SIGTERM, previous)


def ask(method: Any, *args: Any) -> Any:
    """An actor method's answer, waited for in a thread of its own: a task's main thread that
    waits on Ray lends its CPU to the next task, and two jobs would then share one core."""
    import ray

    answer: list[Any] = []
    thread = threading.Thread(
        target=lambda: answer.append(ray.get(method.remote(*args))), daemon=True
    )
    thread.start()
    thread.join()
    if not answer:
        raise RuntimeError(f"no answer from the sweep's stop board ({method})")
    return answer[0]


def enter_launch_dir(sweep_config: DictConfig) -> None:
    """cd to where the sweep was launched, and import from there (a user's ffn.target), as the
    basic launcher's jobs do; UnsharedDir if this node does not see the sweep dir."""
    launch_dir = Path(str(sweep_config.hydra.runtime.cwd))
    sweep_dir = Path(str(sweep_config.hydra.sweep.dir))
    if not (sweep_dir / "multirun.yaml").is_file():
        raise UnsharedDir(
            f"the sweep dir {sweep_dir} is not on this node ({os.uname().nodename}): launch the "
            "sweep from a directory on a filesystem every node mounts at the same path "
            "(docs/launchers.md, Ray: what the cluster needs)"
        )
    os.chdir(launch_dir)
    if str(launch_dir) not in sys.path:
        sys.path.append(str(launch_dir))


def claim_devices() -> None:
    """A CPU job sees no GPU (Ray leaves CUDA_VISIBLE_DEVICES alone for zero GPUs: it must not
    land on GPU 0); torch gets the task's CPUs as threads, as the pool launcher gives them."""
    import ray

    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "") if ray.get_gpu_ids() else None
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    claim_threads(max(1, int(cpus)), gpu)


class StopWatcher(threading.Thread):
    """Turns the board's stop into a SIGTERM to this process, and a SIGTERM into the end of the
    job (a stop) or the end of the worker (anything else: Ray retries the task)."""

    def __init__(self, board: Any) -> None:
        super().__init__(daemon=True, name="ray-sweep-stop-watcher")
        self.board = board
        self.stop_requested = False
        self.done = threading.Event()
        self.ray_handler = signal.getsignal(signal.SIGTERM)

    def run(self) -> None:
        import ray

        while not self.done.wait(POLL_S):
            try:
                stopped = ray.get(self.board.is_stopped.remote(), timeout=30)
            except Exception:  # the driver is gone or busy: Ray ends its tasks itself
                continue
            if stopped:
                self.stop_requested = True
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def on_sigterm(self, signum: int, frame: Any) -> None:
        """Delivered outside the trainer's loop, or handed on by it after its checkpoint."""
        if self.stop_requested:
            raise SweepStopped()
        if callable(self.ray_handler):
            self.ray_handler(signum, frame)
        sys.exit(128 + signum)
