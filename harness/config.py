"""The typed configuration: the schema Hydra composes into, and the one place defaults live.

Hydra composes configs/train.yaml against `TrainConfig` (registered as `train_schema`), so a
misspelt key, a value of the wrong type or an enumerated value outside its choices fails at
compose time, naming the key. `to_train_config` converts the composed config once into these
dataclasses, which runs each `__post_init__`: the checks that need more than a type (ranges,
shapes, matched sizes). Everything below the entry point takes these dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from ffn_variants.model import GPTConfig
from ffn_variants.resolved import FFNSpec, resolve_ffn
from harness.data.config import DataConfig
from harness.data.tokenizer import AUTO, auto_tokenizer, offline_size
from harness.errors import UserInputError
from harness.mfu import PEAK_BF16_TFLOPS, table_peak


class DType(StrEnum):
    auto = "auto"  # bf16 autocast on CUDA, fp32 on a CPU
    bf16 = "bf16"
    fp32 = "fp32"


class OptimName(StrEnum):
    adamw = "adamw"  # AdamW over every parameter
    muon = "muon"  # torch.optim.Muon over the blocks' matrices, AdamW over the rest


class MuonLR(StrEnum):
    original = "original"  # Keller Jordan's: lr * sqrt(max(1, rows / cols))
    match_rms_adamw = "match_rms_adamw"  # Moonshot's: 0.2 lr sqrt(max(rows, cols)), AdamW's RMS


@dataclass
class MuonConfig:
    """torch.optim.Muon's settings for optim=muon (its defaults, as nanochat uses them). With
    match_rms_adamw the Muon group's update has AdamW's RMS, so optim.lr drives both groups."""

    lr_ratio: float = 1.0  # the Muon group's rate is optim.lr * lr_ratio
    momentum: float = 0.95
    nesterov: bool = True
    ns_steps: int = 5  # Newton-Schulz iterations
    eps: float = 1e-7
    adjust_lr_fn: MuonLR = MuonLR.match_rms_adamw
    weight_decay: float | None = None  # null: optim.weight_decay

    def __post_init__(self) -> None:
        _finite("optim.muon", self, "lr_ratio", "momentum", "eps", "weight_decay")
        if self.lr_ratio <= 0:
            raise ValueError(f"optim.muon.lr_ratio={self.lr_ratio} must be > 0")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"optim.muon.momentum={self.momentum} must be in [0, 1)")
        if self.ns_steps < 1:
            raise ValueError(
                f"optim.muon.ns_steps={self.ns_steps} must be at least 1 (5 is the default)"
            )
        _at_least("optim.muon", self, eps=0.0)
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"optim.muon.weight_decay={self.weight_decay} must be >= 0")


class OnNonFinite(StrEnum):
    stop = "stop"  # end the run, naming the step and the first non-finite gradient
    skip = "skip"  # skip the step and count it (train/skipped_steps)


class LoggerMode(StrEnum):
    auto = "auto"  # WANDB_MODE from the environment where it is set, else online
    online = "online"  # offline instead when there is no login or network
    offline = "offline"
    disabled = "disabled"  # local files only


# WANDB_MODE's values (wandb's own names, old ones included) as a logger mode
_WANDB_MODES = {
    "online": LoggerMode.online,
    "run": LoggerMode.online,
    "offline": LoggerMode.offline,
    "dryrun": LoggerMode.offline,
    "disabled": LoggerMode.disabled,
}


@dataclass
class ModelConfig(GPTConfig):
    """GPTConfig's defaults with GPT-2's BPE cut to 8192 tokens are the `tiny` model (where the
    FFN does about a quarter of the training FLOPs); the other model/ files override them."""

    name: str = "tiny"
    vocab_size: int = 8192


@dataclass
class OptimConfig:
    name: OptimName = OptimName.adamw  # which optimizer (harness.optim): adamw or muon
    lr: float = 3e-3  # every parameter group's initial rate (optim=muon: times muon.lr_ratio)
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 30
    warmup_fraction: float | None = None  # if set: warm up for this fraction of the run's steps
    weight_decay: float = 0.1  # matrices only; norm gains and biases are not decayed
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping
    muon: MuonConfig = field(default_factory=MuonConfig)  # read only under optim=muon

    def __post_init__(self) -> None:
        # NaN passes every comparison below: refuse non-finite values first, by name.
        _finite("optim", self, "lr", "min_lr_ratio", "weight_decay", "beta1", "beta2", "eps")
        _finite("optim", self, "grad_clip", "warmup_fraction")
        if self.lr <= 0:
            raise ValueError(f"optim.lr={self.lr} must be > 0")
        _at_least("optim", self, warmup_steps=0, weight_decay=0.0, grad_clip=0.0, eps=0.0)
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"optim.min_lr_ratio={self.min_lr_ratio} must be between 0 and 1")
        if self.warmup_fraction is not None and not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"optim.warmup_fraction={self.warmup_fraction} must be in [0, 1)")
        for key in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"optim.{key}={getattr(self, key)} must be in [0, 1)")


@dataclass
class TrainerConfig:
    # Steps to train; null: tokens_per_param tokens per non-embedding parameter of the model (a
    # token budget that grows with the model, as scaling studies train; Chinchilla's 20 counts
    # all parameters, Kaplan et al. non-embedding ones).
    max_steps: int | None = 300
    tokens_per_param: float = 20.0
    batch_size: int = 8  # sequences per micro-batch
    grad_accum: int = 1
    eval_interval: int = 50
    # Each evaluation reads the held-out slice (data.eval_slice) once from its start, in
    # non-overlapping windows, up to this many tokens: the same windows every time.
    eval_tokens: int = 65_536
    log_interval: int = 10
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    dtype: DType = DType.auto
    compile: bool = False
    progress: bool = True
    sample_tokens: int = 32  # the end-of-run summary shows a seeded sample this long (0: none)
    deterministic: bool = False
    checkpoint: bool = True
    ckpt_interval: int = 0  # steps between checkpoints; 0: only at the end
    keep_checkpoints: int = 2
    resume: str = "auto"  # auto: continue the latest checkpoint in the run dir; never; or a path
    on_nonfinite: OnNonFinite = OnNonFinite.stop
    # dry_run: print what the run (each job of a sweep) would do and take, then exit 0 having
    # written nothing; its time at plan_mfu of this machine's measured peak, or of plan_gpu's
    # datasheet peak (a name of harness.mfu.PEAK_BF16_TFLOPS, e.g. H100)
    dry_run: bool = False
    plan_mfu: float = 0.3
    plan_gpu: str | None = None

    def __post_init__(self) -> None:
        _finite("trainer", self, "tokens_per_param", "plan_mfu")
        if not 0 < self.plan_mfu <= 1:
            raise ValueError(f"trainer.plan_mfu={self.plan_mfu} must be in (0, 1]")
        if self.plan_gpu is not None:
            self.plan_gpu = plan_gpu_name(self.plan_gpu)
            if not self.dry_run:
                print(
                    f"warning: trainer.plan_gpu={self.plan_gpu} is read only by a plan "
                    "(trainer.dry_run=true); this run ignores it",
                    file=sys.stderr,
                    flush=True,
                )
        _at_least(
            "trainer",
            self,
            batch_size=1,
            grad_accum=1,
            eval_interval=1,
            eval_tokens=1,
            log_interval=1,
            ckpt_interval=0,
            keep_checkpoints=1,
        )
        if self.max_steps is not None and self.max_steps < 1 or self.tokens_per_param <= 0:
            raise ValueError(
                f"trainer.max_steps={self.max_steps} must be at least 1 (or null: a token budget) "
                f"and trainer.tokens_per_param={self.tokens_per_param} positive"
            )
        try:
            if self.device != "auto":
                torch.device(self.device)
        except RuntimeError:
            raise ValueError(
                f"trainer.device={self.device} is not a device; use auto, cpu, cuda or cuda:N"
            ) from None


@dataclass
class LoggerConfig:
    mode: LoggerMode = LoggerMode.auto
    project: str = "ffn-variants"
    entity: str | None = None
    group: str | None = None  # default: the multirun's name
    tags: list[str] = field(default_factory=list)

    def check_environment(self, environ: Mapping[str, str] = os.environ) -> None:
        """W&B itself reads WANDB_MODE whatever mode it is given, and fails on a value it does
        not know: a ValueError (one line at the pre-flight) unless W&B is off."""
        env = environ.get("WANDB_MODE", "").strip().lower()
        if env and env not in _WANDB_MODES and self.mode != LoggerMode.disabled:
            raise ValueError(
                f"WANDB_MODE={env} in the environment is not a W&B mode; unset it or set one of "
                f"{', '.join(sorted(set(_WANDB_MODES)))} (or logger.mode=disabled)"
            )

    def resolved_mode(self, environ: Mapping[str, str] = os.environ) -> tuple[LoggerMode, str]:
        """The mode W&B runs in, and why: logger.mode when it is set (the command line wins),
        else WANDB_MODE from the environment, else online."""
        if self.mode != LoggerMode.auto:
            return self.mode, f"logger.mode={self.mode}"
        env = environ.get("WANDB_MODE", "").strip().lower()
        if env in _WANDB_MODES:
            return _WANDB_MODES[env], f"WANDB_MODE={env} in the environment"
        return LoggerMode.online, "the default (no WANDB_MODE, no logger.mode)"


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

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed={self.seed} must be >= 0")
        self.logger.check_environment()
        # The FFN decided once, here: the model, the trainer and the benchmarks take this value.
        # ValueError (with the fix) for an unknown variant or option, where no width keeps it
        # within 1%, where its forward fails or changes the shape, or its FLOPs cannot be counted.
        self.resolved_ffn = resolve_ffn(self.ffn, self.model)
        self.data.tokenizer = tokenizer_for(self.data.tokenizer, self.model.vocab_size)


def tokenizer_for(name: str, vocab_size: int) -> str:
    """data.tokenizer for a model of `vocab_size` rows: auto follows the model; a named one whose
    size is known must fit (an unknown size is checked once the tokenizer is loaded)."""
    if name == AUTO:
        return auto_tokenizer(vocab_size)
    size = offline_size(name)
    if size is not None and size > vocab_size:
        raise ValueError(
            f"data.tokenizer={name} has {size} tokens but model.vocab_size={vocab_size}; use "
            f"data.tokenizer=auto ({auto_tokenizer(vocab_size)} for this model) or "
            f"model.vocab_size>={size}"
        )
    return name


def plan_gpu_name(given: str) -> str:
    """trainer.plan_gpu as the peak table names it (case aside); ValueError with the closest
    names where none matches."""
    names = [name for name, _ in PEAK_BF16_TFLOPS]
    found = table_peak(given) or next(
        ((n, v) for n, v in PEAK_BF16_TFLOPS if n.lower() in given.lower()), None
    )
    if found is not None:
        return found[0]
    close = difflib.get_close_matches(given.upper(), names, n=1, cutoff=0.4)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ValueError(
        f"trainer.plan_gpu={given} is not a GPU of the peak table; {hint}use one of "
        f"{', '.join(names)}"
    )


def _finite(prefix: str, node: Any, *keys: str) -> None:
    """ValueError naming the first of `keys` that is NaN or infinite (None is left alone)."""
    for key in keys:
        value = getattr(node, key)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{prefix}.{key}={value} must be a finite number")


def _at_least(prefix: str, node: Any, **minimum: float) -> None:
    for key, low in minimum.items():
        value = getattr(node, key)
        if value < low:
            raise ValueError(f"{prefix}.{key}={value} must be at least {low:g}")


def to_train_config(cfg: DictConfig) -> TrainConfig:
    """The composed config as typed dataclasses, checked; UserInputError (one line) if bad."""
    try:
        typed = OmegaConf.to_object(cfg)
    except ValueError as e:  # a __post_init__ check, ours or ffn_variants'
        raise UserInputError(" ".join(str(e).split())) from None
    assert isinstance(typed, TrainConfig), type(typed)
    return typed


def as_plain_dict(obj: Any) -> Any:
    """A config dataclass as plain JSON-able values (enums as their strings)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: as_plain_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [as_plain_dict(v) for v in obj]
    return obj


def register_configs() -> None:
    """Make the schema known to Hydra as `train_schema` (configs/train.yaml extends it)."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
