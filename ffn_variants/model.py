"""A small decoder-only GPT whose feed-forward block is any variant of ffn_variants.variants.

Pre-norm RMSNorm, causal attention through F.scaled_dot_product_attention, rotary or learned
positions, tied input and output embeddings, and output projections initialised with a std scaled
by depth (GPT-2). It knows nothing of Hydra, W&B or the training loop.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ffn_variants.decode import KVCache, StaticKVCache, generate
from ffn_variants.loss import LossImpl, linear_cross_entropy, resolve
from ffn_variants.resolved import ResolvedFFN, check_dropout
from ffn_variants.telemetry import output_projection


class Pos(StrEnum):
    rope = "rope"  # rotary embeddings on queries and keys
    learned = "learned"  # a learned absolute position embedding, added to the input


@dataclass
class GPTConfig:
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_ff: int = 512  # the dense FFN's hidden width; other variants are matched to it
    block_size: int = 128
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64
    pos: Pos = Pos.rope
    # Gated widths are rounded to a multiple of this; 8 keeps each half of the packed projection
    # 16-byte aligned in bf16, which the fused kernel needs for 128-bit loads.
    multiple_of: int = 8
    dropout: float = 0.0
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    # The training loss (logits not returned): fused linear cross-entropy on CUDA (auto), or
    # plain (ffn_variants.loss)
    loss_impl: LossImpl = LossImpl.auto

    def __post_init__(self) -> None:
        """ValueError naming the fix for a shape that cannot work."""
        for key in ("n_layer", "n_head", "d_model", "d_ff", "block_size", "vocab_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key}={getattr(self, key)} must be at least 1")
        check_dropout("model.dropout", self.dropout)
        for key in ("rope_base", "norm_eps"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"model.{key}={value} must be a positive finite number")
        if self.d_model % self.n_head:
            raise ValueError(
                f"model.d_model={self.d_model} is not divisible by model.n_head={self.n_head}; "
                f"pick n_head among the divisors of d_model"
            )
        if self.pos == Pos.rope and (self.d_model // self.n_head) % 2:
            raise ValueError(
                f"rotary positions need an even head size, got d_model/n_head="
                f"{self.d_model // self.n_head}; change model.n_head or use model.pos=learned"
            )


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, block_size: int, base: float) -> None:
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)
        angles = torch.outer(torch.arange(block_size).float(), inv_freq)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        # x: [B, H, T, D] at positions 0..T-1 (or at `positions`, a [T] tensor: decoding); rotate
        # pairs (first half, second half) of each head by position.
        T = x.size(-2)
        if positions is None:
            cos, sin = self.cos[:T], self.sin[:T]
        else:
            cos, sin = self.cos[positions], self.sin[positions]
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.dropout = cfg.dropout
        self.rotary = (
            RotaryEmbedding(cfg.d_model // cfg.n_head, cfg.block_size, cfg.rope_base)
            if Pos(cfg.pos) == Pos.rope
            else None
        )

    def forward(
        self, x: torch.Tensor, cache: Any = None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, T, C] at `positions` (None: 0..T-1). `cache`: one layer of a decoding cache
        (ffn_variants.decode), which keeps the new keys and values and returns all it holds."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.rotary is not None:
            q, k = self.rotary(q, positions), self.rotary(k, positions)
        mask, causal = None, True
        if cache is not None:
            assert positions is not None
            k, v, mask, causal = cache.update(k, v, positions)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, ffn: ResolvedFFN) -> None:
        super().__init__()
        self.norm_attn = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.norm_ffn = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn = ffn.build()
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, cache: Any = None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.resid_dropout(self.attn(self.norm_attn(x), cache, positions))
        return x + self.ffn(self.norm_ffn(x))


class GPT(nn.Module):
    """The model of `cfg`'s shape with the FFN `ffn` (ffn_variants.resolved.resolve_ffn(spec, cfg):
    its variant, options, matched width and counts, decided once)."""

    def __init__(self, cfg: GPTConfig, ffn: ResolvedFFN) -> None:
        super().__init__()
        if (ffn.d_model, ffn.dense_d_ff) != (cfg.d_model, cfg.d_ff):
            raise ValueError(
                f"ffn '{ffn.name}' was resolved for d_model={ffn.d_model}, d_ff={ffn.dense_d_ff} "
                f"but the model has d_model={cfg.d_model}, d_ff={cfg.d_ff}; resolve it for this "
                "model (resolve_ffn(spec, cfg))"
            )
        self.cfg = cfg
        self.ffn = ffn
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = (
            nn.Embedding(cfg.block_size, cfg.d_model) if Pos(cfg.pos) == Pos.learned else None
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, ffn) for _ in range(cfg.n_layer))
        self.norm_out = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # tied
        self.apply(self._init_weights)
        # Residual-branch outputs get std / sqrt(2 * n_layer) so the residual stream's variance
        # does not grow with depth: attention's projection and the FFN's output projection (the
        # telemetry protocol's w_out, where the FFN declares one).
        residual_out = [b.attn.proj for b in self.blocks]
        residual_out += [p for b in self.blocks if (p := output_projection(b.ffn)) is not None]
        for module in residual_out:
            if isinstance(getattr(module, "weight", None), torch.Tensor):
                nn.init.normal_(module.weight, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | StaticKVCache | None = None,
        return_logits: bool = True,
        positions: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits (and the loss, given targets) of idx [B, T]. With a cache (ffn_variants.decode),
        idx continues the tokens it holds: a KVCache places them after those, a StaticKVCache at
        `positions` (a [T] tensor), with shapes that stay fixed.
        With targets and return_logits=False (training): (None, the loss), computed without
        materialising the logits where model.loss_impl allows (ffn_variants.loss)."""
        T = idx.size(1)
        end = T  # the context the tokens reach; a StaticKVCache's positions are its caller's
        if isinstance(cache, KVCache):
            end = cache.length + T
            positions = cache.positions(T, idx.device) if positions is None else positions
        if end > self.cfg.block_size:
            raise ValueError(
                f"sequence of {end} tokens is longer than block_size {self.cfg.block_size}"
            )
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            where = torch.arange(T, device=idx.device) if positions is None else positions
            x = x + self.pos_emb(where)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cache.layers[i] if cache is not None else None, positions)
        hidden = self.norm_out(x)
        if targets is not None and not return_logits:  # training: the loss alone
            impl = resolve(self.cfg.loss_impl, hidden.device)
            return None, linear_cross_entropy(hidden, self.lm_head.weight, targets, impl)
        logits = self.lm_head(hidden)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    # ----------------------------------------------------------------------------- generation

    def new_cache(self) -> KVCache:
        return KVCache(self.cfg.n_layer, self.cfg.block_size)

    @torch.inference_mode()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """idx [B, T] followed by max_new_tokens sampled tokens: the prompt in one forward
        (prefill), then one token per forward through the cached keys and values.

        temperature=0 is greedy (argmax); top_k keeps the k likeliest tokens. The prompt and the
        new tokens together must fit in block_size (positions beyond it were never trained): a
        ValueError otherwise, rather than a sliding window that would recompute the context.
        """
        B, T = idx.shape
        if T < 1:
            raise ValueError("generation needs a prompt of at least one token")
        if T + max_new_tokens > self.cfg.block_size:
            raise ValueError(
                f"a prompt of {T} tokens plus {max_new_tokens} new ones is longer than "
                f"block_size {self.cfg.block_size}; shorten the prompt or generate fewer tokens"
            )
        if self.ffn.mixes_positions:
            print(
                f"note: ffn '{self.ffn.name}' mixes positions, so generation recomputes the "
                "whole context each step instead of using the KV cache",
                file=sys.stderr,
                flush=True,
            )
        was_training = self.training
        self.eval()
        try:
            return self._decode(idx, max_new_tokens, temperature, top_k, generator)
        finally:
            self.train(was_training)

    def _decode(self, *args: Any) -> torch.Tensor:
        return generate(self, *args)

    def param_counts(self) -> dict[str, int]:
        """Actual parameter counts: total (tied embedding once), non-embedding, FFN (all layers)."""
        total = sum(p.numel() for p in self.parameters())
        embedding = self.tok_emb.weight.numel() + (
            self.pos_emb.weight.numel() if self.pos_emb is not None else 0
        )
        ffn = sum(p.numel() for b in self.blocks for p in b.ffn.parameters())
        return {
            "total": total,
            "non_embedding": total - embedding,
            "ffn": ffn,
            "ffn_per_layer": ffn // self.cfg.n_layer,
            "d_ff": self.ffn.d_ff,
        }

    def flops_per_token(self) -> dict[str, float]:
        """FLOPs per token, counted from this model's own modules (2 per multiply-add).

        total: the forward pass: attention's Linears as they are and the FFN layers as
        ffn_variants.counting counts their matmuls (the tied embedding once, as the LM head,
        since its lookup is no matmul), plus attention's scores and weighted sum,
        4 * block_size * d_model per layer: the full context, the causal half that the mask
        discards included (as nanoGPT and the PaLM appendix count it).
        train: 3 x total (the backward takes the gradients of inputs and weights: twice the
        forward). ffn: one FFN layer's forward as ffn.match counts it (elementwise work included).
        ffn_share: the FFN matmuls' share of total (and of train). Norms, softmax, activations
        and the loss are left out, as MFU conventionally leaves them out.
        """
        c = self.cfg
        other = sum(
            m.in_features * m.out_features
            for n, m in self.named_modules()
            if isinstance(m, nn.Linear) and ".ffn." not in f".{n}."
        )
        ffn = self.ffn.flops
        ffn_matmul = c.n_layer * ffn.matmul
        total = 2 * other + ffn_matmul + 4 * c.n_layer * c.block_size * c.d_model
        return {
            "total": total,
            "train": 3 * total,
            "ffn": ffn.total,
            "ffn_share": ffn_matmul / total,
        }
