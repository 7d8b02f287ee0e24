"""The model configs under configs/model/, as Hydra composes them."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ffn_variants.model import GPT, GPTConfig
from ffn_variants.resolved import FFNSpec, resolve_ffn
from harness.config import ModelConfig

MODEL_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "model").glob("*.yaml"))


def model_config(path: Path) -> GPTConfig:
    """A configs/model/ file over ModelConfig's defaults, as Hydra composes it."""
    node = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path) or {})
    return OmegaConf.to_object(node)


def build_gpt(cfg: GPTConfig, spec: FFNSpec) -> GPT:
    """The GPT of `cfg` with the FFN `spec` resolved for it, as a run resolves it."""
    return GPT(cfg, resolve_ffn(spec, cfg))
