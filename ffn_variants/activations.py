"""Elementwise activations by name, and the gated product act(gate) * value in plain PyTorch.

One name per activation everywhere: the Triton kernels take the same names, so a gated FFN
computes the same function on CPU (here) and on GPU (ffn_variants.kernels).
"""

from __future__ import annotations

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
