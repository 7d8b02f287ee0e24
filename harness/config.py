"""Typed configuration: the schema Hydra checks every composed config against.

A misspelt key or a value of the wrong type fails when the config is composed, naming the key.
The dataclasses of the model and the data come from ffn_variants, so the config and the code that
reads it cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from ffn_variants.data import DataConfig
from ffn_variants.errors import UserInputError
from ffn_variants.model import FFNSpec, GPTConfig
from ffn_variants.sizing import MATCHES
from ffn_variants.variants import IMPLS


@dataclass
class ModelConfig(GPTConfig):
    name: str = "tiny"


@dataclass
class OptimConfig:
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 30
    weight_decay: float = 0.1  # matrices only; norm gains and biases are not decayed
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping


@dataclass
class TrainerConfig:
    max_steps: int = 300
    batch_size: int = 8  # sequences per micro-batch
    grad_accum: int = 1
    eval_interval: int = 50
    eval_batches: int = 8
    log_interval: int = 10
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    dtype: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU), bf16, fp32
    compile: bool = False
    progress: bool = True
    deterministic: bool = False
    checkpoint: bool = True
    ckpt_interval: int = 0  # steps between checkpoints; 0: only at the end
    keep_checkpoints: int = 2
    resume: str = "auto"  # auto: continue the latest checkpoint in the run dir; never; or a path
    on_nonfinite: str = "stop"  # stop, or skip the step


@dataclass
class LoggerConfig:
    mode: str = "online"  # online (offline when there is no login or network), offline, disabled
    project: str = "ffn-variants"
    entity: str | None = None
    group: str | None = None  # default: the multirun's name
    tags: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    seed: int = 0
    experiment: str = "sweep"  # names the multirun dir and the W&B group
    ffn: FFNSpec = field(default_factory=FFNSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


CHOICES = {
    "ffn.match": MATCHES,
    "ffn.impl": IMPLS,
    "model.pos": ("rope", "learned"),
    "trainer.dtype": ("auto", "bf16", "fp32"),
    "trainer.on_nonfinite": ("stop", "skip"),
    "logger.mode": ("online", "offline", "disabled"),
}


def check_choices(cfg: Any) -> None:
    """UserInputError naming the key and the allowed values for a value outside its choices."""
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise UserInputError(f"{key}={value} is not one of: {', '.join(allowed)}")


def to_dataclass(cls: type, node: Any) -> Any:
    """An instance of dataclass `cls` from the matching fields of a config node."""
    return cls(**{f.name: node[f.name] for f in fields(cls) if f.name in node})


def register_configs() -> None:
    """Make the schema known to Hydra as `train_schema` (configs/train.yaml extends it)."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


def choice_values(cfg: Any) -> dict[str, Any]:
    """The few values that identify a run: used for its name, tags and summary."""
    return {"variant": cfg.ffn.name, "seed": cfg.seed, "model": cfg.model.name}
