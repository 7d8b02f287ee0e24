"""PolyNorm (Zhuo et al., "Polynomial Composition Activations", ICLR 2025, arXiv:2411.03884) in a
dense FFN: W2 · PolyNorm(x W1), as the paper's dense models use it.

    PolyNorm(x) = w0 N(x^3) + w1 N(x^2) + w2 N(x) + b,   N(u) = u / sqrt(mean(u^2) + eps)

with the mean over the hidden (last) dimension and no gain, w = (1/3, 1/3, 1/3) and b = 0 at the
start: the reference class in the README of BryceZhuo/PolyCom. Its four scalars are learned per
layer; being 1-dimensional they are not weight-decayed (harness.optim).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class PolyNorm(nn.Module):
    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((3,), 1 / 3))
        self.bias = nn.Parameter(torch.zeros(1))
        self.eps = eps

    def _norm(self, u: torch.Tensor) -> torch.Tensor:
        return u * torch.rsqrt(u.square().mean(-1, keepdim=True) + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The powers and their norms in float32 at least: x^3's mean square (x^6) leaves bf16's
        # precision behind long before its range.
        u = x.to(torch.promote_types(x.dtype, torch.float32))
        w = self.weight.to(u.dtype)
        y = w[0] * self._norm(u**3) + w[1] * self._norm(u**2) + w[2] * self._norm(u)
        return (y + self.bias.to(u.dtype)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class PolyNormFFN(nn.Module):
    """W2 · PolyNorm(x W1): the dense FFN with PolyNorm as its activation."""

    def __init__(
        self, d_model: int, d_ff: int, bias: bool = False, dropout: float = 0.0, eps: float = 1e-6
    ) -> None:
        super().__init__()
        self.w_in = nn.Linear(d_model, d_ff, bias=bias)
        self.act = PolyNorm(eps)
        self.w_out = nn.Linear(d_ff, d_model, bias=bias)  # telemetry: its input is the hidden
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.w_out(self.act(self.w_in(x))))
