"""Decoding a GPT: the key/value caches, the Decoder (prefill, then one token per step) and
sampling.

A cache holds every layer's keys and values; attention hands each layer's new ones to
`update(k, v, positions)` and attends over what it returns (keys, values, and the mask that says
which each query sees). Two kinds:

- `KVCache` grows with the tokens it is given (eager decoding, GPT.generate);
- `StaticKVCache` is allocated once per (model, batch, dtype, device), in buffers of the full
  context, written at given positions: every one-token step has the same shapes, so a compiled
  step can be captured and replayed as a CUDA graph (gpt-fast's pattern). Its buffers have fixed
  addresses (marked static for Dynamo), so inductor does not refuse the graph for "mutated
  inputs", and the one compiled step stays valid for every later decoder of the same model and
  batch.

The Decoder prefills the prompt in one eager forward (never inside a graph), then steps one token
at a time: eagerly through a KVCache, or, given `compile_step` (harness.prepare supplies it:
torch.compile with mode="reduce-overhead" on CUDA), through the compiled one-token step over the
StaticKVCache, marking each step's start for CUDA-graph trees and cloning its output before the
next replay overwrites it. An FFN that mixes positions cannot be cached: the Decoder recomputes
the whole context each step.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

GPT = nn.Module  # ffn_variants.model.GPT (which imports this module): its cfg, ffn and tok_emb

Update = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, bool]  # k, v, mask, causal


# --------------------------------------------------------------------------- caches


class LayerKV:
    """One layer's keys and values [B, H, capacity, head_dim], filled from 0 as tokens come."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0

    def update(self, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor) -> Update:
        """Store k, v after the tokens held; every key and value so far, and the new queries'
        mask (None where plain causal attention is right)."""
        if self.k is None:  # allocated at the first call: the dtype autocast gives k and v
            shape = (*k.shape[:2], self.capacity, k.shape[-1])
            self.k, self.v = k.new_empty(shape), v.new_empty(shape)
        start, T = self.length, k.size(2)
        self.length = end = start + T
        self.k[:, :, start:end], self.v[:, :, start:end] = k, v
        if start == 0:
            return self.k[:, :, :end], self.v[:, :, :end], None, True
        # New queries see every cached key and the new ones up to their own
        mask = None if T == 1 else torch.ones(T, end, dtype=torch.bool, device=k.device)
        mask = None if mask is None else mask.tril(diagonal=start)
        return self.k[:, :, :end], self.v[:, :, :end], mask, False


class KVCache:
    """Keys and values of every layer for the tokens seen so far: decoding one more token costs
    one token's forward (GPT.forward(idx, cache=...) fills and advances it)."""

    def __init__(self, n_layer: int, capacity: int) -> None:
        self.layers = [LayerKV(capacity) for _ in range(n_layer)]
        self.capacity = capacity  # block_size: positions beyond it were never trained

    @property
    def length(self) -> int:
        return self.layers[0].length

    def positions(self, n: int, device: torch.device) -> torch.Tensor:
        """The positions of the next `n` tokens."""
        return torch.arange(self.length, self.length + n, device=device)


class StaticLayerKV:
    """One layer's keys and values in buffers of the full context, written at `positions`."""

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        for buffer in (self.k, self.v):  # fixed addresses: CUDA graphs keep them as they are
            torch._dynamo.mark_static_address(buffer)

    def update(self, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor) -> Update:
        """Store k, v at `positions`; the whole buffers, unwritten slots masked off."""
        self.k.index_copy_(2, positions, k.to(self.k.dtype))
        self.v.index_copy_(2, positions, v.to(self.v.dtype))
        capacity = self.k.size(2)
        seen = torch.arange(capacity, device=positions.device)[None, :] <= positions[:, None]
        return self.k, self.v, seen, False


class StaticKVCache:
    """A fixed-shape cache: GPT.forward(idx, cache=..., positions=...) writes the tokens at
    `positions` (a tensor) and attends over the whole buffer under a mask. One per (model,
    batch, dtype, device): `for_model` hands out the same one (and its compiled step) each time."""

    def __init__(self, model: GPT, batch: int, dtype: torch.dtype, device: torch.device) -> None:
        cfg = model.cfg
        shape = (batch, cfg.n_head, cfg.block_size, cfg.d_model // cfg.n_head)
        self.layers = [StaticLayerKV(shape, dtype, device) for _ in range(cfg.n_layer)]
        self.capacity = cfg.block_size
        self.step: Callable[..., torch.Tensor] | None = None  # its compiled one-token step

    @classmethod
    def for_model(cls, model: GPT, batch: int, device: torch.device) -> StaticKVCache:
        dtype = model.tok_emb.weight.dtype
        caches = _STATIC.setdefault(model, {})
        key = (batch, dtype, device)
        if key not in caches:
            caches[key] = cls(model, batch, dtype, device)
        return caches[key]


_STATIC: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------- the decoder


class Decoder:
    """Decoding, the one way GPT.generate and bench.inference do it (module doc). Call under
    torch.inference_mode() (or no_grad) with the model in eval mode."""

    def __init__(self, model: GPT, compile_step: Callable[[Callable], Callable] | None = None):
        self.model = model
        self.compile_step = None if model.ffn.mixes_positions else compile_step
        self.cache: KVCache | StaticKVCache | None = None
        self.context: torch.Tensor | None = None  # every token so far, where there is no cache
        self.length = 0

    def prefill(self, idx: torch.Tensor) -> torch.Tensor:
        """The next-token logits [B, V] after the prompt idx [B, T], from a fresh cache."""
        m, T = self.model, idx.size(1)
        self.length = T
        if m.ffn.mixes_positions:
            self.cache, self.context = None, idx
            return m(idx)[0][:, -1]
        if self.compile_step is None:
            self.cache = KVCache(m.cfg.n_layer, m.cfg.block_size)
            return m(idx, cache=self.cache)[0][:, -1]
        self.cache = StaticKVCache.for_model(m, idx.size(0), idx.device)
        at = torch.arange(T, device=idx.device)
        return m(idx, cache=self.cache, positions=at)[0][:, -1]  # eager: outside any graph

    def step(self, token: torch.Tensor) -> torch.Tensor:
        """The next-token logits [B, V] after one more token [B, 1]."""
        m, at = self.model, self.length
        self.length += 1
        if self.cache is None:  # an FFN that mixes positions: the whole context again
            assert self.context is not None
            self.context = torch.cat([self.context, token], dim=1)
            return m(self.context)[0][:, -1]
        if isinstance(self.cache, KVCache):
            return m(token, cache=self.cache)[0][:, -1]
        cache = self.cache
        if cache.step is None:
            assert self.compile_step is not None

            def one_token(tok: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
                return m(tok, cache=cache, positions=positions)[0][:, -1]

            cache.step = self.compile_step(one_token)
        if token.is_cuda:  # a new CUDA-graph tree generation: the last step's output is read
            torch.compiler.cudagraph_mark_step_begin()
        positions = torch.full((1,), at, dtype=torch.long, device=token.device)
        return cache.step(token, positions).clone()  # the next replay overwrites the output


# --------------------------------------------------------------------------- sampling


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row of logits [B, V]: argmax at temperature 0, else a draw from
    softmax(logits / temperature) over the top_k likeliest (all if None)."""
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """idx followed by max_new_tokens sampled tokens (GPT.generate's loop)."""
    decoder = Decoder(model)
    out = [idx]
    logits = decoder.prefill(idx)
    for i in range(max_new_tokens):
        token = sample_next(logits, temperature, top_k, generator)
        out.append(token)
        if i + 1 < max_new_tokens:
            logits = decoder.step(token)
    return torch.cat(out, dim=1)
