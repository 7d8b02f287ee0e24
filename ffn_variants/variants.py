"""Feed-forward blocks: dense act(x W1) W2 and gated (act(x W) * x V) W2, and the variant registry.

The rows of Shazeer (2020), "GLU Variants Improve Transformer", Table 1, plus ReLU^2, a Swish
gate with a learnable beta, and two later contenders: LeakyReLU(0.5)^2 (nanochat, 2026) and xIELU
(Huang & Schlag 2024, arXiv:2411.13010) with its two scalars learned per layer. One name per
variant everywhere: registry key, config file in configs/ffn/, W&B tag and report row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
import torch.nn as nn

from ffn_variants.activations import LEARNED_ACTIVATIONS, gated_torch_packed, get_activation


@dataclass(frozen=True)
class Variant:
    name: str
    gated: bool
    activation: str  # a key of ffn_variants.activations.ACTIVATIONS, or "swish_beta"
    formula: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("relu", False, "relu", "max(0, xW1) W2"),
        Variant("gelu", False, "gelu", "GELU(xW1) W2"),
        Variant("swish", False, "silu", "Swish_1(xW1) W2"),
        Variant("relu2", False, "relu2", "max(0, xW1)^2 W2"),
        Variant("leaky_relu2", False, "leaky_relu2", "LeakyReLU_0.5(xW1)^2 W2"),
        Variant("xielu", False, "xielu", "xIELU(xW1) W2, alpha_p and alpha_n learned"),
        Variant("glu", True, "sigmoid", "(sigmoid(xW) * xV) W2"),
        Variant("bilinear", True, "identity", "(xW * xV) W2"),
        Variant("reglu", True, "relu", "(max(0, xW) * xV) W2"),
        Variant("geglu", True, "gelu", "(GELU(xW) * xV) W2"),
        Variant("swiglu", True, "silu", "(Swish_1(xW) * xV) W2"),
        Variant("swiglu_beta", True, "swish_beta", "(xW * sigmoid(beta xW) * xV) W2, beta learned"),
    ]
}


class Impl(StrEnum):
    """How a gated FFN computes act(gate) * value."""

    auto = "auto"  # the fused Triton kernel where it can run (CUDA), else torch
    triton = "triton"  # the fused Triton kernel, forward and backward
    torch = "torch"  # plain PyTorch
    compile = "compile"  # torch.compile of the plain PyTorch function


def get_variant(name: str) -> Variant:
    """The variant called `name`; a ValueError lists the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown ffn '{name}'; known: {', '.join(VARIANTS)}") from None


class DenseFFN(nn.Module):
    """act(x W1) W2; an activation with learned parameters (xIELU) is a submodule, `act`."""

    def __init__(
        self, d_model: int, d_ff: int, activation: str, bias: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.activation = activation
        learned = LEARNED_ACTIVATIONS.get(activation)
        self.act = learned() if learned is not None else get_activation(activation)
        self.w_in = nn.Linear(d_model, d_ff, bias=bias)
        self.w_out = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.w_out(self.act(self.w_in(x))))


class GatedFFN(nn.Module):
    """(act(x W) * x V) W2, with W and V packed into one projection: one matmul, then a split.

    `w_in` maps d_model -> 2 * d_ff: its first d_ff outputs are the gate x W, the rest x V.
    impl picks how act(gate) * value runs: "triton" (fused kernel, forward and backward), "torch",
    "compile" (torch.compile of the same function), or "auto" (Triton on CUDA when available).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: str,
        bias: bool = False,
        dropout: float = 0.0,
        impl: Impl | str = Impl.auto,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.impl = Impl(impl)
        self.d_ff = d_ff
        self.w_in = nn.Linear(d_model, 2 * d_ff, bias=bias)
        self.w_out = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        if activation == "swish_beta":
            self.beta = nn.Parameter(torch.ones(()))
        else:
            get_activation(activation)  # fail at construction, not at the first step
        self._compiled = None

    def gate_activation(self, gate: torch.Tensor) -> torch.Tensor:
        """act(gate) alone; telemetry uses it to look inside the fused product."""
        if self.activation == "swish_beta":
            return gate * torch.sigmoid(self.beta * gate)
        return get_activation(self.activation)(gate)

    def _resolved_impl(self, x: torch.Tensor) -> str:
        if self.activation == "swish_beta":
            return "torch"  # beta is a parameter; the fused kernels take a fixed activation
        if self.impl == "auto":
            if not x.is_cuda:
                return "torch"
            from ffn_variants.kernels import triton_available  # registers the ops: only on CUDA

            return "triton" if triton_available(x.device) else "torch"
        return self.impl

    def gated(self, packed: torch.Tensor) -> torch.Tensor:
        """act(gate) * value from the packed [..., 2 * d_ff] projection."""
        impl = self._resolved_impl(packed)
        if impl == "triton":
            from ffn_variants.kernels import (
                gated_activation_packed,  # registers the ops: only when fused
            )

            # packed is this module's own projection output, read by nothing after the product
            # (nn.Linear saves its input, not its output): the backward may overwrite it.
            return gated_activation_packed(packed, self.activation, inplace_backward=True)
        if impl == "compile":
            if self._compiled is None:
                self._compiled = torch.compile(gated_torch_packed, dynamic=False)
            return self._compiled(packed, self.activation)
        if self.activation == "swish_beta":
            gate, value = packed.chunk(2, dim=-1)
            return self.gate_activation(gate) * value
        return gated_torch_packed(packed, self.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.w_out(self.gated(self.w_in(x))))


def build_ffn(
    name: str,
    d_model: int,
    d_ff: int,
    *,
    bias: bool = False,
    dropout: float = 0.0,
    impl: Impl | str = Impl.auto,
) -> nn.Module:
    """The FFN `name` with hidden width d_ff (already sized: see ffn_variants.sizing)."""
    variant = get_variant(name)
    if variant.gated:
        return GatedFFN(d_model, d_ff, variant.activation, bias, dropout, impl)
    return DenseFFN(d_model, d_ff, variant.activation, bias, dropout)
