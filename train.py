"""Train a small GPT with the FFN variant of your choice.

    python train.py ffn=swiglu
    python train.py -m ffn=relu,gelu,glu,reglu,geglu,swiglu seed=0,1,2
    torchrun --nproc_per_node=4 train.py ffn=swiglu model=gpt2_124m trainer=gpu

Hydra composes the config, `to_train_config` turns it into typed dataclasses once, and
`Trainer(cfg, run_dir).train()` runs it; harness.entry checks the command line before Hydra
starts and routes each job's outcome. Everything a run produces lands in its Hydra output dir:
.hydra/ (the config), metrics.jsonl, summary.json, checkpoints/ and the W&B files.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from harness.config import register_configs
from harness.entry import TrainCommand

register_configs()
command = TrainCommand()


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return command.run_job(cfg)


if __name__ == "__main__":
    sys.argv += command.preflight(sys.argv[1:])
    main()
    command.close()
