"""hydra/launcher=ray_local and ray_cluster: each job a Ray task, stopped cleanly, retried safely.

    python train.py -m experiment=glu_table hydra/launcher=ray_local     # Ray started here
    python train.py -m experiment=glu_table hydra/launcher=ray_cluster   # a running cluster

The keys are those of hydra-ray-launcher's `ray` config (`ray.init`: ray.init's arguments;
`ray.remote`: each job's task options), so a sweep moves between the two unchanged; its launch
path is this one's, for what a sweep of training runs needs and that one has not:

- Paths: each job runs from the directory the sweep was launched in (Hydra's runtime.cwd), on a
  head started anywhere, so relative data, cache and output paths name the same files as under
  the basic launcher; with `ship_code` the project's directory is uploaded as the jobs'
  runtime_env working_dir, so the nodes run the launching machine's code.
- Stopping: SIGTERM or Ctrl-C to the sweep reaches the running jobs (each finishes its step,
  checkpoints and records "preempted"), starts no other, waits `stop_grace_s` for them, and
  the sweep-status callback then lists them; rerun the command with hydra.sweep.dir=<the sweep
  dir> and they resume (trainer.resume=auto) while completed jobs end at once.
- Retries: a job whose worker dies (a node lost, an OOM kill, a SIGTERM from outside the sweep)
  is retried by Ray (`ray.remote.max_retries`) and resumes from its checkpoint; a job that
  fails on bad input returns its failure, and Ray does not retry a returned failure.
- `ray.remote.num_gpus: null`: one GPU per job where the Ray instance has GPUs, else CPU jobs,
  each given `ray.remote.num_cpus` torch threads and no GPU.

Ray is imported only when a sweep launches: the default install has no ray, and Hydra's plugin
scan imports this module.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan loads this module outside
# sys.modules, where a dataclass cannot resolve string annotations.
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.ffn_variants_launcher.job import Job, SweepLauncher

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[2]  # holds train.py, harness/, configs/
# Never shipped: .gitignore'd files (data/, outputs/, multirun/) are left out by Ray itself.
SHIP_EXCLUDES = [".git", "results", "tests", "*.pt"]


@dataclass
class RayConf:
    # ray.init(**init): where the cluster is (address) and, for a local one, what it may use.
    init: dict[str, Any] = field(default_factory=dict)
    # Each job's task options: num_cpus, num_gpus (null: 1 where the cluster has GPUs, else 0),
    # max_retries, max_calls, memory, resources, ...
    remote: dict[str, Any] = field(default_factory=dict)


@dataclass
class RaySweepLauncherConf:
    _target_: str = "hydra_plugins.ffn_variants_launcher.ray_launcher.RaySweepLauncher"
    ray: RayConf = field(default_factory=RayConf)
    # Upload the project's directory as the jobs' runtime_env working_dir (false: the nodes
    # import the project they have installed, or see it on a shared filesystem).
    ship_code: bool = False
    # After a stop, how long the running jobs get to checkpoint before they are killed.
    stop_grace_s: float = 120.0


ConfigStore.instance().store(
    group="hydra/launcher", name="ray_sweep", node=RaySweepLauncherConf, provider="ffn_variants"
)


CONNECT_FIX = (
    "start one (ray start --head) or set RAY_ADDRESS=<head>:6379; a cluster with token "
    "authentication also needs its token here (~/.ray/auth_token) and, with RAY_ADDRESS, "
    "RAY_AUTH_MODE=token"
)
WAIT_S = 0.5  # how often the driver looks up from waiting on jobs (a stop is noticed then)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Within: SIGTERM and Ctrl-C are counted instead of raising (an exception raised inside
    Ray's wait breaks it); the launcher looks at `count` between waits."""

    def __init__(self) -> None:
        self.count = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self.note)
        return self

    def note(self, _signum: int, _frame: Any) -> None:
        self.count += 1

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class RaySweepLauncher(SweepLauncher):
    name = "Ray launcher"
    absolute_dirs = True  # a job may run on another node, from the launch dir

    def __init__(self, ray: DictConfig, ship_code: bool = False, stop_grace_s: float = 120.0):
        super().__init__(stop_grace_s)
        self.ray_cfg = ray
        self.ship_code = ship_code

    def dispatch(self, jobs: list[Job], sweep_dir: Path) -> list[JobReturn]:
        started = time.monotonic()
        ray = self.start_ray()
        options = self.task_options(ray)
        self.announce(
            jobs,
            f"on {describe_resources(ray)} ({self.ray_cfg.init.get('address')}, "
            f"{time.monotonic() - started:.1f} s to connect), each with "
            f"{options.get('num_cpus', 1)} CPU(s) and {options['num_gpus']} GPU(s)",
            sweep_dir,
        )
        warn_if_unplaceable(ray, options)
        try:
            return self.run(ray, jobs, sweep_dir, options)
        finally:
            ray.shutdown()  # a local Ray stops; a cluster's driver disconnects

    # ------------------------------------------------------------------------------ set-up

    def start_ray(self) -> Any:
        # Every job's lines, even where two jobs print the same one (Ray folds those by default).
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        try:
            import ray
        except ImportError:
            print(
                'error: hydra/launcher=ray_local|ray_cluster needs ray: pip install -e ".[ray]" '
                "(make install-ray)",
                file=sys.stderr,
            )
            sys.exit(2)

        init = OmegaConf.to_container(self.ray_cfg.init, resolve=True)
        assert isinstance(init, dict)
        if self.ship_code:
            runtime_env = dict(init.get("runtime_env") or {})
            runtime_env.setdefault("working_dir", str(PROJECT_DIR))
            runtime_env.setdefault("excludes", SHIP_EXCLUDES)
            init["runtime_env"] = runtime_env
        check_reachable(init.get("address"))
        try:
            ray.init(**init)
        except ConnectionError as e:  # no cluster there, or one that refuses this machine
            print(f"error: {e}; {CONNECT_FIX}", file=sys.stderr, flush=True)
            sys.exit(2)
        return ray

    def task_options(self, ray: Any) -> dict[str, Any]:
        options = OmegaConf.to_container(self.ray_cfg.remote, resolve=True)
        assert isinstance(options, dict)
        if options.get("num_gpus") is None:
            options["num_gpus"] = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        return options

    # ----------------------------------------------------------------------------- running

    def run(self, ray: Any, jobs: list[Job], sweep_dir: Path, options: dict) -> list[JobReturn]:
        from hydra_plugins.ffn_variants_launcher.ray_job import StopBoard, run_ray_job

        board = ray.remote(num_cpus=0, max_restarts=0)(StopBoard).remote()
        task = ray.remote(**options)(run_ray_job)
        state = Singleton.get_state()
        refs = {
            task.remote(idx, self.hydra_context, cfg, self.task_function, state, board): (idx, cfg)
            for idx, cfg in jobs
        }
        results: dict[int, JobReturn] = {}
        with StopSignals() as signals:
            self.collect(ray, refs, results, until=lambda: signals.count > 0)
            if refs:
                self.stop(ray, board, refs, results, sweep_dir, signals)
        return [self.outcome(results.get(idx), cfg) for idx, cfg in jobs]

    def collect(self, ray: Any, refs: dict, results: dict[int, JobReturn], until: Any) -> None:
        """Wait for the jobs in `refs`, removing each as it ends, until none is left or
        `until()` holds; a job whose task failed in Ray is logged and counted as not run."""
        while refs and not until():
            done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=WAIT_S)
            for ref in done:
                idx, cfg = refs.pop(ref)
                try:
                    results[idx] = ray.get(ref) or not_run(cfg)
                except Exception as e:  # its worker died more often than max_retries allows
                    log.error(f"job #{idx} failed in Ray: {type(e).__name__}: {e}")
                    results[idx] = not_run(cfg)

    def stop(
        self,
        ray: Any,
        board: Any,
        refs: dict,
        results: dict[int, JobReturn],
        sweep_dir: Path,
        signals: StopSignals,
    ) -> None:
        """Stop the sweep: no job starts any more; the running ones checkpoint and end within
        stop_grace_s (a second SIGTERM or Ctrl-C: at once), or are killed."""
        started = set(ray.get(board.stop.remote()))
        running = {ref: job for ref, job in refs.items() if job[0] in started}
        self.stopping(len(running), len(refs) - len(running), sweep_dir)
        deadline = time.monotonic() + self.stop_grace_s
        self.collect(
            ray, running, results, until=lambda: signals.count > 1 or time.monotonic() > deadline
        )
        for ref in running:
            log.warning(f"Ray launcher: killing job #{running[ref][0]}")
            ray.cancel(ref, force=True)

    @staticmethod
    def outcome(result: JobReturn | None, cfg: DictConfig) -> JobReturn:
        """The job's JobReturn for the sweeper, which raises a failed one's error: a failure is
        logged here instead, and the sweep-status callback lists it from the job's dir."""
        from hydra_plugins.ffn_variants_launcher.ray_job import UnsharedDir

        if result is None or result.status != JobStatus.FAILED:
            return result or not_run(cfg)
        error = result._return_value
        if isinstance(error, UnsharedDir):  # no job can write where the sweep is: stop here
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)
        log.error(f"job {' '.join(result.overrides)} failed: {type(error).__name__}: {error}")
        return not_run(cfg)


def check_reachable(address: str | None) -> None:
    """A head named by host:port (the address, or RAY_ADDRESS for auto) must answer within
    seconds: ray.init would retry for minutes. One line and exit 2 if it does not."""
    if address in (None, "auto"):
        address = os.environ.get("RAY_ADDRESS")
    if not address or "://" in address or ":" not in address or address == "local":
        return  # Ray finds the cluster itself (and fails at once if there is none)
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        print(f"error: no Ray cluster answers at {address} ({e}); {CONNECT_FIX}", file=sys.stderr)
        sys.exit(2)


def warn_if_unplaceable(ray: Any, options: dict) -> None:
    """Jobs asking more than any node has wait for the autoscaler to add such a node; on a
    cluster without one they would wait forever: say so before they do."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    cpus, gpus = options.get("num_cpus", 1) or 0, options.get("num_gpus") or 0
    if not any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
        log.warning(
            f"Ray launcher: no node has {cpus} CPU(s) and {gpus} GPU(s) free for a job now; the "
            "jobs wait for an autoscaler to add one (hydra.launcher.ray.remote.num_gpus=0 for CPU "
            "jobs)"
        )


def not_run(cfg: DictConfig) -> JobReturn:
    """A job with no result of its own (not started, stopped, or lost): the sweep goes on to
    its callbacks, which read each job's outcome from its dir."""
    return JobReturn(overrides=list(cfg.hydra.overrides.task), status=JobStatus.COMPLETED)


def describe_resources(ray: Any) -> str:
    resources = ray.cluster_resources()
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    gpus = int(resources.get("GPU", 0))
    return f"{nodes} node(s), {int(resources.get('CPU', 0))} CPUs" + (
        f", {gpus} GPUs" if gpus else ""
    )
