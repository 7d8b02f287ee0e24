"""Text from a model: encode a prompt, generate with the KV cache (ffn_variants' GPT.generate),
decode. One path for the end-of-run sample, `python -m harness.tools.sample` and the benchmarks."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ffn_variants.model import GPT
from harness.config import TrainConfig
from harness.data.tokenizer import get_encoding
from harness.errors import UserInputError


def prompt_tokens(enc: Any, prompt: str | None, block_size: int, max_new_tokens: int) -> list[int]:
    """The prompt's tokens (None: a document start, the end-of-text token); UserInputError for a
    prompt with no tokens or one that leaves no room in the context."""
    tokens = [enc.eot_token] if prompt is None else enc.encode_ordinary(prompt)
    if not tokens:
        raise UserInputError("the prompt has no tokens; give some text with --prompt")
    if len(tokens) + max_new_tokens > block_size:
        raise UserInputError(
            f"the prompt is {len(tokens)} tokens and {max_new_tokens} new ones do not fit the "
            f"model's context of {block_size}; shorten the prompt or lower --max-new-tokens"
        )
    return tokens


def sample_texts(
    model: GPT,
    enc: Any,
    tokens: list[int],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 0.8,
    top_k: int | None = 200,
    seed: int = 0,
) -> list[str]:
    """num_samples continuations of `tokens`, decoded (the prompt not repeated); the same seed
    gives the same text."""
    device = next(model.parameters()).device
    idx = torch.tensor([tokens] * num_samples, dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = model.generate(idx, max_new_tokens, temperature, top_k, generator)
    return [enc.decode([t for t in row[len(tokens) :].tolist() if t < enc.n_vocab]) for row in out]


def end_of_run_sample(
    model: GPT, cfg: TrainConfig, autocast: contextlib.AbstractContextManager
) -> str | None:
    """A short continuation of a document start, seeded by the run's seed (reruns print the
    same text), without touching the run's RNG: what the model writes, in the summary."""
    n = min(cfg.trainer.sample_tokens, cfg.model.block_size - 1)
    if n < 1:
        return None
    enc = get_encoding(cfg.data.tokenizer, cfg.data.cache_dir)
    device = next(model.parameters()).device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), autocast:
        (text,) = sample_texts(model, enc, [enc.eot_token], max_new_tokens=n, seed=cfg.seed)
    return text
