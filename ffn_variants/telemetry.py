"""Cheap training telemetry: gradient norms by block and FFN activation statistics.

Both are sampled at the log interval only. Activation statistics come from forward hooks that are
attached for one forward pass and removed right after, so steps in between pay nothing.
For a gated FFN the hooks see the packed projection (gate x W and value x V, before the fused
product) and the input of W2 (the product); for a dense FFN the input of W2 is the activation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from ffn_variants.variants import GatedFFN

NEAR_ZERO = 1e-3  # |x| below this counts as "near zero"
BLOCK_GROUPS = ("embed", "attn", "ffn", "norm")


def block_group(param_name: str) -> str:
    """Which part of the GPT a parameter belongs to: embed, attn, ffn or norm."""
    if "emb" in param_name or param_name.startswith("lm_head"):
        return "embed"
    if ".attn." in param_name:
        return "attn"
    if ".ffn." in param_name:
        return "ffn"
    return "norm"


@torch.no_grad()
def grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norms of the gradients per block group and in total (call before clipping)."""
    groups: dict[str, list[torch.Tensor]] = {g: [] for g in BLOCK_GROUPS}
    for name, p in model.named_parameters():
        if p.grad is not None:
            groups[block_group(name)].append(p.grad)
    squares = {
        g: torch.stack(torch._foreach_norm(gs)).float().square().sum() if gs else torch.zeros(())
        for g, gs in groups.items()
    }
    out = {f"grad_norm/{g}": s.sqrt().item() for g, s in squares.items()}
    out["grad_norm/total"] = torch.stack(list(squares.values())).sum().sqrt().item()
    return out


@torch.no_grad()
def tensor_stats(x: torch.Tensor) -> dict[str, float]:
    """mean, std, rms, max |x| and the fraction of |x| < NEAR_ZERO, in float32."""
    x = x.detach().float()
    stats = torch.stack(
        [
            x.mean(),
            x.std(),
            x.square().mean().sqrt(),
            x.abs().max(),
            (x.abs() < NEAR_ZERO).float().mean(),
        ]
    ).tolist()
    return dict(zip(("mean", "std", "rms", "absmax", "frac_zero"), stats, strict=True))


def ffn_layers(model: nn.Module) -> list[nn.Module]:
    """The FFN module of each block, in depth order."""
    return [m for name, m in model.named_modules() if name.endswith(".ffn")]


@contextmanager
def activation_stats(model: nn.Module) -> Iterator[dict[str, float]]:
    """Within this context, forward passes record statistics of every FFN layer's activations.

    Yields a dict filled with keys like "act/L0/gate/rms" (gated) or "act/L0/act/rms" (dense);
    the hooks are removed when the context ends.
    """
    stats: dict[str, float] = {}
    handles = []
    for i, ffn in enumerate(ffn_layers(model)):
        if isinstance(ffn, GatedFFN):

            def on_projection(_module, _inputs, packed, i=i, ffn=ffn):
                gate, value = packed.detach().chunk(2, dim=-1)
                parts = {"gate": ffn.gate_activation(gate), "value": value}
                for part, tensor in parts.items():
                    for k, v in tensor_stats(tensor).items():
                        stats[f"act/L{i}/{part}/{k}"] = v

            handles.append(ffn.w_in.register_forward_hook(on_projection))
        part = "product" if isinstance(ffn, GatedFFN) else "act"

        def on_hidden(_module, inputs, i=i, part=part):
            for k, v in tensor_stats(inputs[0]).items():
                stats[f"act/L{i}/{part}/{k}"] = v

        handles.append(ffn.w_out.register_forward_pre_hook(on_hidden))
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()
