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
import torch.nn as nn
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _relu_squared(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x).square()


LEAKY_SLOPE = 0.5  # LeakyReLU(x, 0.5)^2, as nanochat trains it


def _leaky_relu_squared(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE).square()


# xIELU's fixed constants and initial alphas (Huang & Schlag 2024, arXiv:2411.13010), as in the
# reference implementation, transformers.activations.XIELUActivation.
XIELU_BETA = 0.5
XIELU_EPS = -1e-6
XIELU_ALPHA_INIT = 0.8


def xielu(
    x: torch.Tensor,
    alpha_p: float | torch.Tensor = XIELU_ALPHA_INIT,
    alpha_n: float | torch.Tensor = XIELU_ALPHA_INIT,
    beta: float = XIELU_BETA,
    eps: float = XIELU_EPS,
) -> torch.Tensor:
    """xIELU: alpha_p x^2 + beta x for x > 0, alpha_n (expm1(min(x, eps)) - x) + beta x otherwise.

    Positive inputs get a quadratic (like ReLU^2) with a linear term, so the gradient there grows
    with x; negative ones a gradient that goes from beta - alpha_n near 0 to beta for large |x|.
    min(x, eps) keeps expm1 off the positive half, where torch.where would still evaluate it.
    """
    positive = alpha_p * x * x + beta * x
    negative = alpha_n * (torch.expm1(torch.clamp(x, max=eps)) - x) + beta * x
    return torch.where(x > 0, positive, negative)


def _inverse_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class XIELU(nn.Module):
    """xIELU with its two scalars learned: alpha_p = softplus(a_p), alpha_n = beta + softplus(a_n).

    The softplus keeps alpha_p > 0 and alpha_n > beta, as the paper requires; a_p and a_n start
    where alpha_p = alpha_n = 0.8. They are 0-dimensional, so the optimizer's weight-decay groups
    leave them undecayed like the norm gains (harness.optim).
    """

    def __init__(
        self,
        alpha_p: float = XIELU_ALPHA_INIT,
        alpha_n: float = XIELU_ALPHA_INIT,
        beta: float = XIELU_BETA,
        eps: float = XIELU_EPS,
    ) -> None:
        super().__init__()
        if alpha_n <= beta:
            raise ValueError(f"xIELU needs alpha_n > beta, got alpha_n={alpha_n}, beta={beta}")
        self.a_p = nn.Parameter(torch.tensor(_inverse_softplus(alpha_p)))
        self.a_n = nn.Parameter(torch.tensor(_inverse_softplus(alpha_n - beta)))
        self.beta, self.eps = beta, eps

    def alphas(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_p, alpha_n), 0-dimensional tensors."""
        return F.softplus(self.a_p), self.beta + F.softplus(self.a_n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The alphas in x's dtype: a bf16 activation stays bf16 under autocast.
        alpha_p, alpha_n = (a.to(x.dtype) for a in self.alphas())
        return xielu(x, alpha_p, alpha_n, self.beta, self.eps)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, eps={self.eps}"


def swish_beta(x: torch.Tensor, beta: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Swish_beta (Ramachandran et al. 2017): x * sigmoid(beta x)."""
    return x * torch.sigmoid(beta * x)


class SwishBeta(nn.Module):
    """Swish with its beta learned (one scalar per layer, from 1: SiLU at initialisation)."""

    def __init__(self) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swish_beta(x, self.beta)


ACTIVATIONS: dict[str, Activation] = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact, erf-based
    "gelu_tanh": _gelu_tanh,
    "silu": F.silu,  # Swish with beta = 1
    "sigmoid": torch.sigmoid,
    "identity": _identity,
    "relu2": _relu_squared,
    "leaky_relu2": _leaky_relu_squared,
    "xielu": xielu,  # at its initial alphas; the FFN learns them (XIELU, LEARNED_ACTIVATIONS)
    "swish_beta": swish_beta,  # at its initial beta; the FFN learns it (SwishBeta)
}

# Activations with learned parameters: name -> the module the FFN builds for it.
LEARNED_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"xielu": XIELU, "swish_beta": SwishBeta}


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


def _leaky_relu_squared_grad(g: torch.Tensor) -> torch.Tensor:
    return 2 * F.leaky_relu(g, LEAKY_SLOPE) * torch.where(g > 0, 1.0, LEAKY_SLOPE).to(g.dtype)


def _xielu_grad(g: torch.Tensor) -> torch.Tensor:
    """d xielu/dg at the initial alphas: 2 a g + b above 0, a (e^g [g < eps] - 1) + b below."""
    a, b = XIELU_ALPHA_INIT, XIELU_BETA
    below = a * (torch.where(g < XIELU_EPS, torch.exp(g), 0.0) - 1) + b
    return torch.where(g > 0, 2 * a * g + b, below)


# d act / d g, written out (the op's backward runs below autograd, so it cannot ask autograd).
ACTIVATION_GRADS: dict[str, Activation] = {
    "relu": lambda g: (g > 0).to(g.dtype),
    "gelu": _gelu_grad,
    "gelu_tanh": _gelu_tanh_grad,
    "silu": _silu_grad,
    "sigmoid": _sigmoid_grad,
    "identity": torch.ones_like,
    "relu2": lambda g: 2 * F.relu(g),
    "leaky_relu2": _leaky_relu_squared_grad,
    "xielu": _xielu_grad,
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
