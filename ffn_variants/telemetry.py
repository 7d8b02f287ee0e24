"""Cheap training telemetry: gradient norms by block and FFN activation statistics.

Both are sampled at the log interval only. Activation statistics come from forward hooks that are
attached for one forward pass and removed right after, so steps in between pay nothing.

What the hooks look at is declared by the FFN module itself, built-in or a user's: the protocol,
stated once below as `HasOutputProjection` and `GatedTelemetry` (typing.Protocol; a module meets
it by having the members, no base class). A module that declares none of it trains and logs
losses and gradient norms all the same; telemetry_gaps says which statistics it cannot have.

Outliers: the input of W2 also gets its excess kurtosis (see tensor_stats), and a gated FFN the
alignment of its gate and value weights (gate_value_alignment), which Fishman et al. (2024,
"Scaling FP8 training to trillion-token LLMs") found to grow in SwiGLU and to make its products'
outliers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

NEAR_ZERO = 1e-3  # |x| below this counts as "near zero"


class HasOutputProjection(Protocol):
    """An FFN whose `w_out` submodule takes the hidden activation as its input (the output
    projection): act/L<i>/act/... (product/... for a gated block) with the kurtosis; it also gets
    the residual-branch init (model.py)."""

    w_out: nn.Module


class GatedTelemetry(HasOutputProjection, Protocol):
    """A gated FFN: w_in's output y holds the gate and the value, gate_and_value(y) returns them
    (last dim; with w_in.weight it also gives the gate/value weight alignment); gate_activation
    (optional) gives act(gate), logged as gate/... (else the raw gate is)."""

    w_in: nn.Module

    def gate_and_value(self, projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def gate_activation(self, gate: torch.Tensor) -> torch.Tensor: ...


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
    total = torch.stack(list(squares.values())).sum()
    values = torch.stack([*squares.values(), total]).sqrt().tolist()  # one sync for all
    names = [f"grad_norm/{g}" for g in squares] + ["grad_norm/total"]
    return dict(zip(names, values, strict=True))


STAT_NAMES = ("mean", "std", "rms", "absmax", "frac_zero")


def excess_kurtosis(x: torch.Tensor) -> torch.Tensor:
    """E[(x - mean)^4] / Var(x)^2 - 3 over all elements (population moments): 0 for a Gaussian,
    3 for a Laplace, large where a few elements are far out; NaN for a constant tensor.

    The tail measure of the outlier telemetry: it is scale-free (a layer whose activations grow
    as a whole does not move it, so layers, steps and variants compare directly) and its fourth
    power makes it dominated by the largest |x|, which is what breaks low-precision formats;
    absmax alone grows with the number of elements and with the scale. Quantisation studies
    track the same quantity (Bondarenko et al. 2023, "Quantizable Transformers"). A ReLU-type
    activation is skewed by its mass at 0, so compare a variant with itself over training or
    across layers rather than one variant's level with another's.
    """
    centred = x - x.mean()
    var = centred.square().mean()
    return centred.square().square().mean() / var.square() - 3


@torch.no_grad()
def stat_tensor(x: torch.Tensor, tail: bool = False) -> tuple[tuple[str, ...], torch.Tensor]:
    """tensor_stats' names and values, the values still on x's device (no sync)."""
    x = x.detach().float()
    parts = [
        x.mean(),
        x.std(),
        x.square().mean().sqrt(),
        x.abs().max(),
        (x.abs() < NEAR_ZERO).float().mean(),
    ]
    names = STAT_NAMES
    if tail:
        parts.append(excess_kurtosis(x))
        names = (*names, "kurtosis")
    return names, torch.stack(parts)


def tensor_stats(x: torch.Tensor, tail: bool = False) -> dict[str, float]:
    """mean, std, rms, max |x| and the fraction of |x| < NEAR_ZERO, in float32; with `tail`,
    also the excess kurtosis ("kurtosis")."""
    names, values = stat_tensor(x, tail)
    return dict(zip(names, values.tolist(), strict=True))


def output_projection(ffn: nn.Module) -> nn.Module | None:
    """The FFN's output projection (HasOutputProjection.w_out), where it declares one."""
    projection = getattr(ffn, "w_out", None)
    return projection if isinstance(projection, nn.Module) else None


def is_gated(ffn: nn.Module) -> bool:
    """Whether the FFN declares its gate and value (GatedTelemetry.w_in and gate_and_value)."""
    return isinstance(getattr(ffn, "w_in", None), nn.Module) and callable(
        getattr(ffn, "gate_and_value", None)
    )


def telemetry_gaps(ffn: nn.Module) -> list[str]:
    """The activation statistics this FFN module's declarations do not allow, in words."""
    kind = type(ffn).__name__
    gaps = []
    if output_projection(ffn) is None:
        gaps.append(f"{kind} declares no w_out: no act/L<i>/act|product/* statistics")
    if not is_gated(ffn) and callable(getattr(ffn, "gate_activation", None)):
        gaps.append(f"{kind} has gate_activation but no w_in + gate_and_value: no gate/value stats")
    return gaps


def gate_value_alignment(ffn: nn.Module) -> torch.Tensor:
    """The mean |cos| between matching rows of the gate weights W and the value weights V.

    Row j of W and of V make hidden unit j's gate and value; where they align, act(x W_j) * x V_j
    grows like a square of x V_j (Fishman et al. 2024). About sqrt(2 / (pi d_model)) for
    independent random rows (0.07 at d_model 128), 1 where every W_j is parallel to V_j.
    The rows are found by the module's own gate_and_value, applied to w_in's weight.
    """
    gate, value = ffn.gate_and_value(ffn.w_in.weight.detach().float().T)
    return F.cosine_similarity(gate, value, dim=0).abs().mean()


@torch.no_grad()
def weight_stat_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """act/L<i>/gate_value/alignment of every gated FFN layer, on the device."""
    return {
        f"act/L{i}/gate_value/alignment": gate_value_alignment(f)
        for i, f in enumerate(ffn_layers(model))
        if is_gated(f)
    }


def weight_stats(model: nn.Module) -> dict[str, float]:
    """act/L<i>/gate_value/alignment of every gated FFN layer (nothing for dense ones)."""
    pending = weight_stat_tensors(model)
    if not pending:
        return {}
    return dict(zip(pending, torch.stack(list(pending.values())).tolist(), strict=True))


def ffn_layers(model: nn.Module) -> list[nn.Module]:
    """The FFN module of each block, in depth order."""
    return [m for name, m in model.named_modules() if name.endswith(".ffn")]


@contextmanager
def activation_stats(model: nn.Module) -> Iterator[dict[str, float]]:
    """Within this context, forward passes record statistics of every FFN layer's activations.

    Yields a dict filled with keys like "act/L0/gate/rms" (gated) or "act/L0/act/rms" (dense),
    "act/L0/product/kurtosis" or "act/L0/act/kurtosis" for the input of W2, and (gated, from the
    weights as they are on entry) "act/L0/gate_value/alignment"; the hooks are removed when the
    context ends.
    """
    stats: dict[str, float] = {}
    # Statistics stay on the device until the context ends, then come to the host in one sync.
    pending: dict[str, torch.Tensor] = dict(weight_stat_tensors(model))
    handles = []
    for i, ffn in enumerate(ffn_layers(model)):
        gated = is_gated(ffn)
        if gated:

            def on_projection(_module, _inputs, projected, i=i, ffn=ffn):
                gate, value = ffn.gate_and_value(projected.detach())
                activate = getattr(ffn, "gate_activation", None)
                parts = {"gate": activate(gate) if callable(activate) else gate, "value": value}
                for part, tensor in parts.items():
                    names, values = stat_tensor(tensor)
                    pending.update(
                        {f"act/L{i}/{part}/{k}": v for k, v in zip(names, values, strict=True)}
                    )

            handles.append(ffn.w_in.register_forward_hook(on_projection))
        projection = output_projection(ffn)
        if projection is None:
            continue
        part = "product" if gated else "act"

        def on_hidden(_module, inputs, i=i, part=part):
            names, values = stat_tensor(inputs[0], tail=True)
            pending.update({f"act/L{i}/{part}/{k}": v for k, v in zip(names, values, strict=True)})

        handles.append(projection.register_forward_pre_hook(on_hidden))
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()
        if pending:
            values = torch.stack([v.float() for v in pending.values()]).tolist()
            stats.update(zip(pending, values, strict=True))
