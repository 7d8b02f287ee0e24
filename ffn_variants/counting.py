"""Parameters and FLOPs of one FFN layer, counted from the module itself, never from a formula.

The module is built on the meta device (shapes only: no memory, no initialisation cost) and
  - its parameters are counted, learned scalars included;
  - its forward runs on a meta input under a dispatch mode that counts every aten op it calls:
    matmuls and convolutions as torch.utils.flop_counter counts them (2 per multiply-add: the
    FLOPs MFU counts), and the elementwise work as POINTWISE_FLOPS per output element of each
    pointwise op (1 unless listed) and one per input element of each reduction.
The forward runs at two token counts and the difference is taken, so work that does not grow
with the tokens (a softplus of a learned scalar, say) drops out of the per-token count. A module
whose ops meta cannot run (data-dependent routing: torch.nonzero, masks) is built and counted on
the CPU over real random inputs instead: a mixture of experts counts its active FLOPs per token.
Views, copies and dtype conversions are free. This is what `ffn.match=flops` matches and what a run
reports as the FFN's FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ffn_variants.registry import Impl, Variant, as_variant, build_ffn

# FLOPs per output element of the pointwise aten ops that are more than one operation (the
# compare, exp, divide... each counted as one); every other pointwise op counts 1.
POINTWISE_FLOPS = {
    "silu": 4,  # x / (1 + exp(-x)): negate, exp, add, divide
    "sigmoid": 4,
    "gelu": 8,  # the erf (or tanh) form: a short polynomial and its products
    "leaky_relu": 2,  # compare, scale
    "softplus": 3,
    "tanh": 4,
}
FREE = {"clone", "_to_copy", "copy", "copy_", "detach", "alias", "lift_fresh", "fill", "zero"}
TOKENS = (1, 2)  # the per-token count: the difference between these two forward passes
REAL_TOKENS = (64, 128)  # the same on real inputs, for modules meta cannot run


@dataclass(frozen=True)
class FlopCount:
    """Forward FLOPs per token of one FFN layer."""

    matmul: int
    elementwise: int

    @property
    def total(self) -> int:
        return self.matmul + self.elementwise


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.matmul = 0
        self.elementwise = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        name = packet.__name__.rstrip("_")
        if packet in flop_registry:
            self.matmul += int(flop_registry[packet](*args, **kwargs, out_val=out))
        elif name in FREE:
            pass
        elif torch.Tag.pointwise in func.tags and isinstance(out, torch.Tensor):
            self.elementwise += POINTWISE_FLOPS.get(name, 1) * out.numel()
        elif torch.Tag.reduction in func.tags and isinstance(args[0], torch.Tensor):
            self.elementwise += args[0].numel()
        return out


def _build(variant: Variant, d_model: int, d_ff: int, bias: bool, device: str) -> nn.Module:
    """One layer built on `device`: meta gives shapes without memory; a module whose
    construction meta cannot run is built on the CPU instead (from a fixed seed)."""
    try:
        with torch.device(device), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            # The PyTorch path: a fused op is one opaque node whose work the count cannot see.
            return build_ffn(variant, d_model, d_ff, bias=bias, impl=Impl.torch)
    except ValueError:
        raise
    except Exception as e:  # the user's module may fail in any way
        if device == "meta":
            return _build(variant, d_model, d_ff, bias, "cpu")
        raise ValueError(
            f"ffn '{variant.name}': building {variant.source}(d_model={d_model}, d_ff={d_ff}) "
            f"failed: {type(e).__name__}: {e}"
        ) from None


def _params(variant: Variant, d_model: int, d_ff: int, bias: bool) -> int:
    return sum(p.numel() for p in _build(variant, d_model, d_ff, bias, "meta").parameters())


def count_params(variant: Variant | str, d_model: int, d_ff: int, bias: bool = False) -> int:
    """Parameters of one layer of `variant` at hidden width d_ff, learned scalars included."""
    return _params(as_variant(variant), d_model, d_ff, bias)


def _count(module: nn.Module, tokens: int, d_model: int, device: str) -> tuple[int, int]:
    """(matmul, elementwise) FLOPs of one forward of `module` over `tokens` tokens."""
    mode = _CountOps()
    if device == "meta":
        x = torch.empty(1, tokens, d_model, device="meta")
    else:  # a real input, drawn from a fixed seed: routing and masks see real values
        seeded = torch.Generator(device="cpu").manual_seed(tokens)
        x = torch.randn(1, tokens, d_model, generator=seeded, device="cpu")
    with torch.no_grad(), mode:
        module(x)
    return mode.matmul, mode.elementwise


def _flops(variant: Variant, d_model: int, d_ff: int, bias: bool) -> FlopCount:
    """Per token: the difference of two forwards on meta; where meta cannot run the module's
    ops (data-dependent ones: routing, torch.nonzero, masks), of two real forwards of REAL_TOKENS
    tokens on the CPU, so a mixture of experts counts the experts its tokens actually ran."""
    try:
        module = _build(variant, d_model, d_ff, bias, "meta").eval()  # eval: no dropout masks
        (m1, e1), (m2, e2) = (_count(module, t, d_model, "meta") for t in TOKENS)
        return FlopCount(matmul=m2 - m1, elementwise=e2 - e1)
    except ValueError:
        raise
    except Exception:
        pass
    module = _build(variant, d_model, d_ff, bias, "cpu").eval()
    try:
        with torch.device("cpu"):
            (m1, e1), (m2, e2) = (_count(module, t, d_model, "cpu") for t in REAL_TOKENS)
    except Exception as e:
        raise ValueError(
            f"ffn '{variant.name}': the forward of {variant.source} on a real [1, "
            f"{REAL_TOKENS[1]}, {d_model}] input failed: {type(e).__name__}: {e}"
        ) from None
    per = REAL_TOKENS[1] - REAL_TOKENS[0]
    return FlopCount(matmul=round((m2 - m1) / per), elementwise=round((e2 - e1) / per))


def count_flops(variant: Variant | str, d_model: int, d_ff: int, bias: bool = False) -> FlopCount:
    """Forward FLOPs per token of one layer of `variant` at hidden width d_ff (module docstring)."""
    return _flops(as_variant(variant), d_model, d_ff, bias)


@dataclass
class Counts:
    """One variant's layer counted at any width, each (width, count) once: the width search
    (ffn_variants.sizing) asks for the same widths again, and the resolved FFN keeps the counts
    at the width it settles on."""

    variant: Variant
    d_model: int
    bias: bool = False
    params_at: dict[int, int] = field(default_factory=dict, repr=False)
    flops_at: dict[int, FlopCount] = field(default_factory=dict, repr=False)

    def params(self, d_ff: int) -> int:
        if d_ff not in self.params_at:
            self.params_at[d_ff] = _params(self.variant, self.d_model, d_ff, self.bias)
        return self.params_at[d_ff]

    def flops(self, d_ff: int) -> FlopCount:
        if d_ff not in self.flops_at:
            self.flops_at[d_ff] = _flops(self.variant, self.d_model, d_ff, self.bias)
        return self.flops_at[d_ff]
