"""Train a small GPT with the FFN variant of your choice.

    python train.py ffn=swiglu
    python train.py -m ffn=relu,gelu,glu,reglu,geglu,swiglu seed=0,1,2

Everything a run produces lands in its Hydra output dir: .hydra/ (the config), metrics.jsonl,
summary.json, checkpoints/ and the W&B files.
"""

from __future__ import annotations

import shutil
import signal
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ffn_variants.errors import UserInputError
from harness.cli import check_command_line, fail
from harness.config import register_configs
from harness.metrics import write_json_atomic
from harness.summary import print_summary
from harness.trainer import NonFiniteError, Preempted, train

register_configs()


def remove_if_only_hydra_files(run_dir: Path) -> None:
    """A run that failed on bad input leaves nothing behind: not even Hydra's config copy."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir)
        for parent in run_dir.parents:  # the empty outputs/<variant>-s<seed>/ above it, too
            if parent == Path.cwd() or any(parent.iterdir()):
                break
            parent.rmdir()


def record_failure(run_dir: Path, cfg: DictConfig, error: str) -> None:
    """A job that failed before the trainer wrote its summary still gets one, saying why."""
    path = run_dir / "summary.json"
    if not path.exists():
        name = f"{cfg.ffn.name}-s{cfg.seed}"
        summary = {"run_name": name, "variant": cfg.ffn.name, "seed": cfg.seed}
        write_json_atomic(path, {**summary, "status": "failed", "error": error})


def pass_on(e: Preempted) -> None:
    """Hand a preemption signal to the handler the trainer replaced: submitit's requeues the job.

    Without one (a plain process), exit as the signal would have, after the checkpoint.
    """
    handler = signal.getsignal(e.signum)
    if callable(handler):
        handler(e.signum, None)
    print(f"preempted: {e}; continue with trainer.resume=auto in the same run dir", flush=True)
    sys.exit(128 + e.signum)


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    group = f"{cfg.experiment}-{Path(hc.sweep.dir).name}" if multirun else None
    name = f"{cfg.ffn.name}-s{cfg.seed}"
    try:
        summary = train(cfg, run_dir, group=group)
    except Preempted as e:
        pass_on(e)
    except (UserInputError, NonFiniteError) as e:
        if not multirun:
            if isinstance(e, UserInputError):
                remove_if_only_hydra_files(run_dir)
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2 if isinstance(e, UserInputError) else 1)
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
    print_summary(summary, run_dir)
    return summary.get("final_val_loss")


if __name__ == "__main__":
    try:
        check_command_line(sys.argv[1:])
    except UserInputError as e:
        fail(str(e))
    main()
