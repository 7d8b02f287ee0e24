"""Feed-forward blocks: dense act(x W1) W2 and gated (act(x W) * x V) W2: the built-ins.

The rows of Shazeer (2020), "GLU Variants Improve Transformer", Table 1, plus ReLU^2, a Swish
gate with a learnable beta, and two later contenders: LeakyReLU(0.5)^2 (nanochat, 2026) and xIELU
(Huang & Schlag 2024, arXiv:2411.13010) with its two scalars learned per layer. One name per
variant everywhere: registry key, config file in configs/ffn/, W&B tag and report row.

They enter the registry (ffn_variants.registry) through `register_ffn`, as a user's FFN does:
the registry knows nothing of gates or activations, only factories and their keyword arguments.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ffn_variants import quack_ffn
from ffn_variants.activations import LEARNED_ACTIVATIONS, gated_torch_packed, get_activation
from ffn_variants.registry import VARIANTS, Impl, build_ffn, get_variant, register_ffn

__all__ = ["VARIANTS", "DenseFFN", "GatedFFN", "Impl", "build_ffn", "get_variant"]


class DenseFFN(nn.Module):
    """act(x W1) W2; an activation with learned parameters (xIELU) is a submodule, `act`.

    impl: "compile" compiles the activation; the others run it in PyTorch (no product to fuse).
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
        self.quack_act = _quack_activation(activation, self.impl, gated=False)
        learned = LEARNED_ACTIVATIONS.get(activation)
        self.act = learned() if learned is not None else get_activation(activation)
        if Impl(impl) == Impl.compile:
            if isinstance(self.act, nn.Module):
                self.act.compile(dynamic=False)  # in place: the parameter names stay
            else:
                self.act = torch.compile(self.act, dynamic=False)
        self.w_in = nn.Linear(d_model, d_ff, bias=bias)
        self.w_out = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quack_act is not None:
            return self.dropout(quack_ffn.dense_ffn(x, self.w_in, self.w_out, self.quack_act))
        return self.dropout(self.w_out(self.act(self.w_in(x))))


def _quack_activation(activation: str, impl: Impl, gated: bool) -> str | None:
    """QuACK's name of the activation under impl=quack (None otherwise); ValueError where QuACK
    has no such epilogue."""
    if impl != Impl.quack:
        return None
    name = quack_ffn.quack_activation(activation, gated)
    if name is None:
        raise ValueError(
            f"ffn.impl=quack has no epilogue for this variant's activation ({activation}); it "
            f"runs {quack_ffn.supported()}: use ffn.impl=triton or auto"
        )
    return name


class GatedFFN(nn.Module):
    """(act(x W) * x V) W2, with W and V packed into one projection: one matmul, then a split.

    `w_in` maps d_model -> 2 * d_ff: its first d_ff outputs are the gate x W, the rest x V.
    impl picks how act(gate) * value runs: "triton" (the fused op, forward and backward: Triton
    where it runs, else the same function in PyTorch), "torch", "compile" (torch.compile of the
    same function), or "auto" (the fused op on CUDA, PyTorch elsewhere). An activation with
    learned parameters (swish_beta's beta) is a submodule, `act`, and runs in PyTorch: the fused
    kernels take a fixed function.
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
        get_activation(activation)  # fail at construction, not at the first step
        self.impl = Impl(impl)
        self.quack_act = _quack_activation(activation, self.impl, gated=True)
        self.d_ff = d_ff
        self.w_in = nn.Linear(d_model, 2 * d_ff, bias=bias)
        self.w_out = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        learned = LEARNED_ACTIVATIONS.get(activation)
        self.act = learned() if learned is not None else None
        self._compiled = None

    def gate_and_value(self, projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gate x W and the value x V in w_in's output (telemetry: GatedTelemetry)."""
        return projected[..., : self.d_ff], projected[..., self.d_ff :]

    def gate_activation(self, gate: torch.Tensor) -> torch.Tensor:
        """act(gate) alone; telemetry uses it to look inside the fused product."""
        return self.act(gate) if self.act is not None else get_activation(self.activation)(gate)

    def gated(self, packed: torch.Tensor) -> torch.Tensor:
        """act(gate) * value from the packed [..., 2 * d_ff] projection."""
        if self.act is not None:
            gate, value = self.gate_and_value(packed)
            return self.act(gate) * value
        if self.impl == Impl.compile:
            if self._compiled is None:
                self._compiled = torch.compile(gated_torch_packed, dynamic=False)
            return self._compiled(packed, self.activation)
        if self.impl == Impl.torch or (self.impl == Impl.auto and not packed.is_cuda):
            return gated_torch_packed(packed, self.activation)
        # The op runs the Triton kernels where they run, and PyTorch elsewhere. packed is this
        # module's own projection output, read by nothing after the product (nn.Linear saves its
        # input, not its output): the backward may overwrite it.
        from ffn_variants.kernels import gated_activation_packed  # registers the ops: only here

        return gated_activation_packed(packed, self.activation, inplace_backward=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quack_act is not None:  # the up-projection and act(gate) * value: one GEMM
            return self.dropout(quack_ffn.gated_ffn(x, self.w_in, self.w_out, self.quack_act))
        return self.dropout(self.w_out(self.gated(self.w_in(x))))


def _register_builtins() -> None:
    dense = [
        ("relu", "relu", "max(0, xW1) W2"),
        ("gelu", "gelu", "GELU(xW1) W2"),
        ("swish", "silu", "Swish_1(xW1) W2"),
        ("relu2", "relu2", "max(0, xW1)^2 W2"),
        ("leaky_relu2", "leaky_relu2", "LeakyReLU_0.5(xW1)^2 W2"),
        ("xielu", "xielu", "xIELU(xW1) W2, alpha_p and alpha_n learned"),
    ]
    gated = [
        ("glu", "sigmoid", "(sigmoid(xW) * xV) W2"),
        ("bilinear", "identity", "(xW * xV) W2"),
        ("reglu", "relu", "(max(0, xW) * xV) W2"),
        ("geglu", "gelu", "(GELU(xW) * xV) W2"),
        ("swiglu", "silu", "(Swish_1(xW) * xV) W2"),
        ("swiglu_beta", "swish_beta", "(xW * sigmoid(beta xW) * xV) W2, beta learned"),
    ]
    for factory, rows in ((DenseFFN, dense), (GatedFFN, gated)):
        for name, activation, formula in rows:
            register_ffn(name, factory, formula=formula, builtin=True, activation=activation)


_register_builtins()
