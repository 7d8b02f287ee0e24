"""Train a small GPT with the FFN variant of your choice.

    python train.py ffn=swiglu
    python train.py -m ffn=relu,gelu,glu,reglu,geglu,swiglu seed=0,1,2

Everything a run produces lands in its Hydra output dir: .hydra/ (the config), metrics.jsonl,
summary.json, checkpoints/ and the W&B files.
"""

from __future__ import annotations

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
from harness.summary import print_summary
from harness.trainer import Preempted, train

register_configs()
FAILED: list[str] = []


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    group = f"{cfg.experiment or 'sweep'}-{Path(hc.sweep.dir).name}" if multirun else None
    try:
        summary = train(cfg, run_dir, group=group)
    except UserInputError as e:
        if not multirun:
            fail(str(e))
        FAILED.append(f"{hc.job.num}: {e}")
        print(f"error: job {hc.job.num} ({cfg.ffn.name}-s{cfg.seed}): {e}", file=sys.stderr)
        return None
    except Preempted:
        raise
    except Exception:
        if not multirun:
            raise
        # One broken job must not end the sweep: its summary says "failed"; the rest go on.
        FAILED.append(f"{hc.job.num}: {traceback.format_exc().splitlines()[-1]}")
        traceback.print_exc()
        return None
    print_summary(summary, run_dir)
    return summary.get("final_val_loss")


if __name__ == "__main__":
    try:
        check_command_line(sys.argv[1:])
    except UserInputError as e:
        fail(str(e))
    main()
    if FAILED:
        print(f"{len(FAILED)} job(s) failed:", *FAILED, sep="\n  ", file=sys.stderr)
        sys.exit(1)
