"""Train a small GPT with the FFN variant of your choice.

    python train.py ffn=swiglu
    python train.py -m ffn=relu,gelu,glu,reglu,geglu,swiglu seed=0,1,2
    torchrun --nproc_per_node=4 train.py ffn=swiglu model=gpt2_124m trainer=gpu

Hydra composes the config, `to_train_config` turns it into typed dataclasses once, and
`Trainer(cfg, run_dir).train()` runs it. Everything a run produces lands in its Hydra output dir:
.hydra/ (the config), metrics.jsonl, summary.json, checkpoints/ and the W&B files.
"""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness import distributed
from harness.cli import check_command_line, fail, planned_output_dir
from harness.config import register_configs, to_train_config
from harness.errors import UserInputError
from harness.preemption import Preempted
from harness.rundir import NewDirs
from harness.summary import RunStatus, RunSummary, run_name
from harness.trainer import NonFiniteError, Trainer

register_configs()
# The directories this command will create on the way to its run dir, noted before Hydra
# creates them: a run that fails on bad input removes those and nothing else.
NEW_DIRS: NewDirs | None = None


def record_failure(run_dir: Path, cfg: DictConfig, error: str) -> None:
    """A job that failed before the trainer wrote its summary still gets one, saying why."""
    if not (run_dir / "summary.json").exists():
        failed = RunSummary(cfg.ffn.name, cfg.seed, status=RunStatus.failed, error=error)
        failed.write(run_dir)


def pass_on(e: Preempted) -> None:
    """Hand a preemption signal to the handler the trainer replaced: submitit's requeues the job.

    Without one (a plain process), exit as the signal would have, after the checkpoint.
    """
    handler = signal.getsignal(e.signum)
    if callable(handler):
        handler(e.signum, None)
    print(f"preempted: {e}; continue with trainer.resume=auto in the same run dir", flush=True)
    sys.exit(128 + e.signum)


def fail_single_run(e: Exception, run_dir: Path) -> None:
    """A single run's error: one line (from rank 0 alone in a data-parallel run), exit 2 for bad
    input (leaving nothing behind), else 1."""
    if distributed.current().main:
        if isinstance(e, UserInputError) and NEW_DIRS is not None:
            NEW_DIRS.remove_failed_run(run_dir)
        print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2 if isinstance(e, UserInputError) else 1)


def one_run_dir(argv: list[str], env: distributed.DistEnv) -> list[str]:
    """Overrides that put every process of a torchrun run in rank 0's run dir (its ${now}
    included); the other ranks write no Hydra files there."""
    if "-m" in argv or "--multirun" in argv:
        raise UserInputError(
            "torchrun trains one run over several processes, not a sweep: drop -m (a sweep of "
            "data-parallel runs: hydra/launcher=slurm_ddp)"
        )
    run_dir = distributed.broadcast(str(planned_output_dir(argv)) if env.main else None)
    extra = (
        [] if any(a.startswith("hydra.run.dir=") for a in argv) else [f"hydra.run.dir={run_dir}"]
    )
    if not env.main:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=disabled"]
    return extra


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    group = f"{cfg.experiment}-{Path(hc.sweep.dir).name}" if multirun else None
    try:
        summary = Trainer(to_train_config(cfg), run_dir, group=group).train()
    except Preempted as e:
        pass_on(e)
    except (UserInputError, NonFiniteError) as e:
        if not multirun:
            fail_single_run(e, run_dir)
        name = run_name(cfg.ffn.name, cfg.seed)
        print(f"error: job {hc.job.num} ({name}): {e}", file=sys.stderr, flush=True)
        record_failure(run_dir, cfg, str(e))
        return None
    except Exception as e:
        if not multirun:
            raise
        # One broken job must not end the sweep: it is recorded as failed and the rest go on;
        # harness.callbacks.SweepStatus lists it when the sweep ends.
        traceback.print_exc()
        record_failure(run_dir, cfg, f"{type(e).__name__}: {e}")
        return None
    if distributed.current().main:
        print(summary.console(run_dir), flush=True)
    return summary.final_val_loss


if __name__ == "__main__":
    env = distributed.init()  # under torchrun every process joins here, to agree on one run dir
    try:
        check_command_line(sys.argv[1:])
        if env.enabled:
            sys.argv += one_run_dir(sys.argv[1:], env)
        NEW_DIRS = NewDirs(planned_output_dir(sys.argv[1:]))
    except UserInputError as e:
        if env.main:
            fail(str(e))
        sys.exit(2)
    main()
    distributed.shutdown()
