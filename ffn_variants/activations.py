"""Elementwise activations by name, and the gated product act(gate) * value in plain PyTorch.

One name per activation everywhere: the Triton kernels take the same names, so a gated FFN
computes the same function on CPU (here) and on GPU (ffn_variants.kernels). The derivatives
below are the PyTorch side of the fused op's backward (ffn_variants.kernels.ops on a device the
kernels do not run on); the tests check them, like the kernels, against autograd in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _relu_squared(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x).square()


ACTIVATIONS: dict[str, Activation] = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact, erf-based
    "gelu_tanh": _gelu_tanh,
    "silu": F.silu,  # Swish with beta = 1
    "sigmoid": torch.sigmoid,
    "identity": _identity,
    "relu2": _relu_squared,
}


def get_activation(name: str) -> Activation:
    """The activation called `name`; a ValueError lists the known names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation '{name}'; known: {known}") from None


def gated_torch(gate: torch.Tensor, value: torch.Tensor, activation: str) -> torch.Tensor:
    """act(gate) * value, the reference the fused kernels must match."""
    return get_activation(activation)(gate) * value


def gated_torch_packed(packed: torch.Tensor, activation: str) -> torch.Tensor:
    """act(gate) * value for `packed` = [..., 2F]: gate in the first half, value in the second."""
    gate, value = packed.chunk(2, dim=-1)
    return gated_torch(gate, value, activation)


def _silu_grad(g: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(g)
    return s * (1 + g * (1 - s))


def _gelu_grad(g: torch.Tensor) -> torch.Tensor:
    cdf = 0.5 * (1 + torch.erf(g / math.sqrt(2)))
    return cdf + g * torch.exp(-0.5 * g * g) / math.sqrt(2 * math.pi)  # Phi(g) + g phi(g)


def _gelu_tanh_grad(g: torch.Tensor) -> torch.Tensor:
    # 0.5 * (1 + tanh(z)) = sigmoid(2z): no cancellation in 1 + tanh for large negative g.
    two_c = 2 * math.sqrt(2 / math.pi)
    s = torch.sigmoid(two_c * (g + 0.044715 * g**3))
    return s + g * s * (1 - s) * two_c * (1 + 3 * 0.044715 * g * g)


def _sigmoid_grad(g: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(g)
    return s * (1 - s)


# d act / d g, written out (the op's backward runs below autograd, so it cannot ask autograd).
ACTIVATION_GRADS: dict[str, Activation] = {
    "relu": lambda g: (g > 0).to(g.dtype),
    "gelu": _gelu_grad,
    "gelu_tanh": _gelu_tanh_grad,
    "silu": _silu_grad,
    "sigmoid": _sigmoid_grad,
    "identity": torch.ones_like,
    "relu2": lambda g: 2 * F.relu(g),
}


def gated_torch_backward(
    grad_out: torch.Tensor, gate: torch.Tensor, value: torch.Tensor, activation: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d gate, d value) of act(gate) * value, from explicit derivatives, in the inputs' dtype.

    Math in float32 at least (as the kernels), one rounding at the end.
    """
    compute = torch.promote_types(gate.dtype, torch.float32)
    g, u, dout = (t.to(compute) for t in (gate, value, grad_out))
    d_gate = dout * u * ACTIVATION_GRADS[activation](g)
    d_value = dout * get_activation(activation)(g)
    return d_gate.to(gate.dtype), d_value.to(value.dtype)
