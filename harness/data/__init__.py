"""Training data: sources of text, tokenizers, the token cache and the batch sampler.

from harness.data import DataConfig, prepare_tokens, BatchSampler
"""

from harness.data.cache import TokenData, prepare_tokens
from harness.data.config import DataConfig, Format, Source
from harness.data.sampler import BatchSampler, DeviceBatches, EvalWindows
from harness.data.split import HeldOutSlice, held_out_slices

__all__ = [
    "BatchSampler",
    "DataConfig",
    "DeviceBatches",
    "EvalWindows",
    "Format",
    "HeldOutSlice",
    "Source",
    "TokenData",
    "held_out_slices",
    "prepare_tokens",
]
