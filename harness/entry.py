"""What train.py does around a training: the pre-flight before Hydra starts, and the routing of
each job's outcome (a summary, a preemption, an error) to the console, summary.json and the exit
code.

    python train.py ...           one run: an error is one line, exit 2 for bad input (nothing
                                  left behind), 3 for a full disk or quota (harness.diskfull:
                                  the run dir kept, resumable), 1 otherwise
    python train.py -m ...        a sweep: a failed job is recorded in its summary.json and the
                                  rest go on; harness.callbacks.SweepStatus lists it at the end
    torchrun ... train.py ...     every process trains one run in rank 0's run dir
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness import distributed
from harness.cli import (
    INFO_FLAGS,
    check_command_line,
    fail,
    is_sweep,
    job_configs,
    output_key,
    user_overrides,
    wants_dry_run,
)
from harness.config import to_train_config
from harness.diskfull import (
    DISK_FULL_EXIT,
    MIN_FREE_TO_START,
    DiskFullError,
    as_disk_full,
    free_bytes,
    is_disk_full,
)
from harness.errors import UserInputError
from harness.nonfinite import NonFiniteError
from harness.preemption import INTERRUPTED_EXIT, Preempted
from harness.resume_dir import unfinished_dir
from harness.rundir import NewDirs
from harness.summary import RunStatus, RunSummary, run_name
from harness.trainer import Trainer


class TrainCommand:
    """One invocation of train.py: `preflight` before Hydra, `run_job` for each job it runs."""

    def __init__(self) -> None:
        # The directories this command will create on the way to its run dir, noted before
        # Hydra creates them: a run that fails on bad input removes those and nothing else.
        self.new_dirs: NewDirs | None = None
        self.interrupted = False  # Ctrl-C in a sweep: the jobs after it are not started
        # ffn.target=my_module:MyFFN imports from the directory the command is launched in, as
        # `python -m` would; after everything else, so it shadows no installed package.
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())

    def preflight(self, argv: list[str]) -> list[str]:
        """Check the command line (each distinct choice composed once) before Hydra writes
        anything; the overrides to add to it. Bad input: one line on stderr and exit 2."""
        env = distributed.init()  # under torchrun every process joins here
        try:
            planned = check_command_line(argv)
            if env.main and not INFO_FLAGS & set(argv):
                check_free_space(planned)
        except UserInputError as e:
            if env.main:
                fail(str(e))
            sys.exit(2)
        except DiskFullError as e:
            if env.main:
                print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(DISK_FULL_EXIT)
        if wants_dry_run(argv):
            dry_run(argv, env.main)
        resumed = resume_target(argv, planned) if env.main else None
        self.new_dirs = NewDirs(resumed or planned)
        extra = []
        if resumed is not None:  # the dir the same command stopped in: nothing new to claim
            print(f"trainer.resume=auto: continuing in {resumed}", flush=True)
            planned = resumed
            extra.append(f"{output_key(argv)}={resumed}")
        elif env.main and not INFO_FLAGS & set(argv) and not user_set_output_dir(argv):
            # ${now:} has one-second resolution: two commands started in the same second would
            # share a dir (and with trainer.resume=auto, one would resume the other's run).
            # The claimed name is passed on even when it is the planned one: Hydra would resolve
            # ${now:} again, maybe a second later.
            planned = claim_dir(planned)
            self.new_dirs.created.add(planned.absolute())
            extra.append(f"{output_key(argv)}={planned}")
        if env.enabled:
            extra += one_run_dir(argv + extra, planned, env, self.new_dirs)
        return extra

    def run_job(self, cfg: DictConfig) -> float | None:
        """Train one job; its final val loss (Hydra's return value), or None if it failed."""
        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        multirun = hc.mode == RunMode.MULTIRUN
        group = f"{cfg.experiment}-{Path(hc.sweep.dir).name}" if multirun else None
        if self.interrupted:
            return record_not_started(run_dir, cfg)
        if multirun and cfg.trainer.resume == "auto" and completed_before(run_dir):
            print(f"job {hc.job.num} ({run_dir.name}): completed before, skipped", flush=True)
            return RunSummary.read(run_dir).final_val_loss
        try:
            summary = Trainer(to_train_config(cfg), run_dir, group=group).train()
        except Preempted as e:
            if e.signum != signal.SIGINT:
                pass_on(e)
            return self.interrupt(str(e), multirun, where(hc, multirun))
        except KeyboardInterrupt:  # Ctrl-C before the training loop (data, model, compile)
            record_failure(run_dir, cfg, "interrupted (Ctrl-C) before training", interrupted=True)
            return self.interrupt("SIGINT before training started", multirun, where(hc, multirun))
        except (UserInputError, NonFiniteError, DiskFullError) as e:
            if not multirun:
                self.fail_single_run(e, run_dir)
            name = run_name(cfg.ffn.name, cfg.seed)
            print(f"error: job {hc.job.num} ({name}): {e}", file=sys.stderr, flush=True)
            record_failure(run_dir, cfg, str(e))
            return None
        except Exception as e:
            if is_disk_full(e):  # e.g. Hydra's or the token cache's writes
                full = as_disk_full(e, "the run's files", run_dir)
                if not multirun:
                    self.fail_single_run(full, run_dir)
                print(f"error: job {hc.job.num}: {full}", file=sys.stderr, flush=True)
                record_failure(run_dir, cfg, str(full))
                return None
            if not multirun:
                raise
            # One broken job must not end the sweep: it is recorded as failed and the rest go
            # on; harness.callbacks.SweepStatus lists it when the sweep ends.
            traceback.print_exc()
            record_failure(run_dir, cfg, f"{type(e).__name__}: {e}")
            return None
        if distributed.current().main:
            print(summary.console(run_dir), flush=True)
        return summary.final_val_loss

    def interrupt(self, what: str, multirun: bool, directory: Path) -> None:
        """Ctrl-C: a run exits 130; a sweep stops after this job (the rest are recorded as not
        started), and the sweep-status callback lists them and exits 130. The same command with
        trainer.resume=auto continues either in the same dir (harness.resume_dir)."""
        resume = f"rerun the same command with trainer.resume=auto (it continues in {directory})"
        if not multirun:
            print(f"interrupted: {what}; continue: {resume}", file=sys.stderr, flush=True)
            sys.exit(INTERRUPTED_EXIT)
        print(f"interrupted: {what}; the sweep stops here; {resume}", file=sys.stderr, flush=True)
        self.interrupted = True
        return None

    def fail_single_run(self, e: Exception, run_dir: Path) -> NoReturn:
        """A single run's error: one line (from rank 0 alone in a data-parallel run), exit 2 for
        bad input (leaving nothing behind), else 1."""
        # Every process removes what it may have created (rank 0 its Hydra files, the others
        # Hydra's mkdir of the same dir, which may come after rank 0's removal).
        if isinstance(e, UserInputError) and self.new_dirs is not None:
            self.new_dirs.remove_failed_run(run_dir)
        if distributed.current().main:
            print(f"error: {e}", file=sys.stderr, flush=True)
        if isinstance(e, DiskFullError):
            sys.exit(DISK_FULL_EXIT)
        sys.exit(2 if isinstance(e, UserInputError) else 1)

    def close(self) -> None:
        distributed.shutdown()


def dry_run(argv: list[str], main: bool) -> NoReturn:
    """trainer.dry_run=true: the plan of every job (harness.plan), then exit 0, nothing written."""
    from harness.plan import print_plans

    try:
        configs = job_configs(argv)
        if main:
            print_plans(configs)
    except UserInputError as e:
        if main:
            fail(str(e))
        sys.exit(2)
    sys.exit(0)


def where(hc: HydraConfig, multirun: bool) -> Path:
    """The dir a stopped job's command continues in: its sweep's, or its own."""
    return Path(hc.sweep.dir if multirun else hc.runtime.output_dir)


def completed_before(run_dir: Path) -> bool:
    """A job of a resumed sweep that an earlier attempt finished."""
    try:
        return RunSummary.read(run_dir).status == RunStatus.completed
    except (OSError, ValueError):
        return False


def resume_target(argv: list[str], planned: Path) -> Path | None:
    """With trainer.resume=auto on the command line and no output dir given: the newest dir
    beside the planned one that the same command started and did not finish (or None)."""
    overrides = user_overrides(argv)
    if "trainer.resume=auto" not in overrides or user_set_output_dir(argv):
        return None
    if INFO_FLAGS & set(argv):
        return None
    return unfinished_dir(planned, overrides, is_sweep(argv))


def record_not_started(run_dir: Path, cfg: DictConfig) -> None:
    """A sweep job after a Ctrl-C: not trained, recorded so that the sweep's status lists it."""
    record_failure(run_dir, cfg, "not started: the sweep was interrupted", interrupted=True)


def record_failure(run_dir: Path, cfg: DictConfig, error: str, interrupted: bool = False) -> None:
    """A job that failed before the trainer wrote its summary still gets one, saying why."""
    if not (run_dir / "summary.json").exists():
        status = RunStatus.interrupted if interrupted else RunStatus.failed
        failed = RunSummary(cfg.ffn.name, cfg.seed, status=status, error=error)
        try:
            failed.write(run_dir)
        except OSError as e:
            if not is_disk_full(e):
                raise
            print(f"error: {run_dir}/summary.json could not be written either (disk full)")


def check_free_space(planned: Path) -> None:
    """DiskFullError when the filesystem of the planned run dir has too little space for even
    Hydra's config copy (the run would fail inside Hydra, before the trainer starts)."""
    free = free_bytes(planned)
    if free < MIN_FREE_TO_START:
        raise DiskFullError(
            "the run dir", planned, MIN_FREE_TO_START, cause=OSError(errno.ENOSPC, "no space")
        )


def user_set_output_dir(argv: list[str]) -> bool:
    return any(a.startswith(("hydra.run.dir=", "hydra.sweep.dir=")) for a in argv)


def claim_dir(planned: Path) -> Path:
    """`planned`, created now, or if it exists `<planned>-2`, `-3`, ...: the first name this
    command creates itself (mkdir is atomic, so two commands never get the same one)."""
    planned.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = planned if n == 1 else planned.with_name(f"{planned.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UserInputError(f"{planned} and 998 numbered variants of it exist; set hydra.run.dir")


def pass_on(e: Preempted) -> NoReturn:
    """Hand a preemption signal to the handler the trainer replaced: submitit's requeues the job.

    Without one (a plain process), exit as the signal would have, after the checkpoint.
    """
    handler = signal.getsignal(e.signum)
    if callable(handler):
        handler(e.signum, None)
    print(f"preempted: {e}; continue with trainer.resume=auto in the same run dir", flush=True)
    sys.exit(128 + e.signum)


def one_run_dir(
    argv: list[str], planned: Path, env: distributed.DistEnv, new_dirs: NewDirs
) -> list[str]:
    """Overrides that put every process of a torchrun run in rank 0's run dir (its ${now}
    included); the other ranks write no Hydra files there, and take rank 0's account of the
    directories this command creates (`new_dirs`)."""
    if is_sweep(argv):
        raise UserInputError(
            "torchrun trains one run over several processes, not a sweep: drop -m (a sweep of "
            "data-parallel runs: hydra/launcher=slurm_ddp)"
        )
    run_dir, created = distributed.broadcast((str(planned), new_dirs.created) if env.main else None)
    new_dirs.created = set(created)
    extra = (
        [] if any(a.startswith("hydra.run.dir=") for a in argv) else [f"hydra.run.dir={run_dir}"]
    )
    if not env.main:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=disabled"]
    return extra
