"""What the pool and Ray launchers share: the launch skeleton, each job's config, its process's
environment, running the job, and what a stopped sweep says.

A launcher subclasses `SweepLauncher` and adds only how it dispatches (`dispatch`): the pool
starts a process per job on a free slot, Ray a task per job on its cluster. Every job's config is
composed here, in the driver, with its id, number and the absolute sweep dir, so a job's dir is
the same wherever it runs; a job then runs in its own process through `run_job_in_process`, after
`claim_threads` has set its threads and devices.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan loads this module outside
# sys.modules.
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)

Job = tuple[int, DictConfig]  # (job number, its composed config)


class SweepLauncher(Launcher):
    """Hydra's launcher protocol, once: set-up, the launch lines, each job's config; the
    subclass's `dispatch` runs the jobs and returns their JobReturns in order."""

    name = "launcher"
    absolute_dirs = False  # the sweep dir made absolute for the jobs (they may run elsewhere)

    def __init__(self, stop_grace_s: float = 120.0) -> None:
        self.stop_grace_s = stop_grace_s  # after a stop: how long running jobs get to checkpoint
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir = sweep_dir.absolute() if self.absolute_dirs else sweep_dir
        sweep_dir.mkdir(parents=True, exist_ok=True)
        jobs = [
            (initial_job_idx + i, self.job_config(list(o), initial_job_idx + i, sweep_dir))
            for i, o in enumerate(job_overrides)
        ]
        return self.dispatch(jobs, sweep_dir)

    def announce(self, jobs: list[Job], how: str, sweep_dir: Path) -> None:
        log.info(f"{self.name}: {len(jobs)} jobs, {how}, sweep dir {sweep_dir}")
        for idx, cfg in jobs:
            log.info(f"\t#{idx} : {' '.join(filter_overrides(cfg.hydra.overrides.task))}")

    def dispatch(self, jobs: list[Job], sweep_dir: Path) -> list[JobReturn]:
        raise NotImplementedError

    def job_config(self, overrides: list[str], idx: int, sweep_dir: Path) -> DictConfig:
        """The job's config, composed here (the job's process or node need not see the config
        files), with the launcher's sweep dir."""
        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg):
            cfg.hydra.job.id = f"{cfg.hydra.job.name}_{idx}"
            cfg.hydra.job.num = idx
            cfg.hydra.sweep.dir = str(sweep_dir)
        return cfg

    def stopping(self, running: int, not_started: int, sweep_dir: Path) -> None:
        """What a stopped sweep says, whichever launcher ran it: the running jobs checkpoint
        and stop; the same command resumes them (trainer.resume=auto) and skips the completed."""
        waiting = f", {not_started} not started" if not_started else ""
        log.warning(
            f"{self.name}: stopping; {running} running job(s) checkpoint and stop{waiting} "
            f"(rerun the same command with trainer.resume=auto to continue in {sweep_dir})"
        )


def job_environment(threads: int, gpu: str | None) -> dict[str, str]:
    """A job's variables: `threads` threads, and the GPU `gpu` alone, or none (None: "" hides
    every GPU, so a CPU job does not land on GPU 0 by default)."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["CUDA_VISIBLE_DEVICES"] = gpu if gpu is not None else ""
    return env


def claim_threads(threads: int, gpu: str | None) -> None:
    """This job process's environment (job_environment), set before torch starts, and torch's
    threads."""
    os.environ.update(job_environment(threads, gpu))
    import torch  # after the environment: CUDA and OpenMP read it when they start

    torch.set_num_threads(threads)


def run_job_in_process(
    hydra_context: HydraContext,
    cfg: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
) -> JobReturn:
    """One job in the process it was sent to, as Hydra's own launchers run one."""
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(cfg)
    return run_job(
        hydra_context=hydra_context,
        config=cfg,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
