"""The model configs under configs/model/, as Hydra composes them."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ffn_variants.model import GPTConfig
from harness.config import ModelConfig

MODEL_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "model").glob("*.yaml"))


def model_config(path: Path) -> GPTConfig:
    """A configs/model/ file over ModelConfig's defaults, as Hydra composes it."""
    node = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(path) or {})
    return OmegaConf.to_object(node)
