"""The clamped SwiGLU of OpenAI's gpt-oss (transformers' models/gpt_oss, GptOssExperts._apply_gate):

    g = min(x W, limit),  u = clamp(x V, -limit, limit),  out = (g · sigmoid(alpha g) · (u + 1)) W2

alpha 1.702 (sigmoid(1.702 g) approximates GELU's Phi(g)), limit 7. The clamps bound the product,
which keeps its outliers in check; the +1 on the value starts the block near a plain Swish gate.
gpt-oss interleaves gate and value columns in one projection; here the gate is the first half
of `w_in` and the value the second (a permutation of its rows: the same function and parameters).
"""

from __future__ import annotations

import torch
import torch.nn as nn

ALPHA, LIMIT = 1.702, 7.0


class ClampedSwiGLU(nn.Module):
    def __init__(
        self,
        d_model: int,
        d_ff: int,
        bias: bool = False,
        dropout: float = 0.0,
        alpha: float = ALPHA,
        limit: float = LIMIT,
    ) -> None:
        super().__init__()
        self.d_ff, self.alpha, self.limit = d_ff, alpha, limit
        self.w_in = nn.Linear(d_model, 2 * d_ff, bias=bias)  # gate | value
        self.w_out = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def gate_and_value(self, projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw gate x W and value x V in w_in's output (telemetry: GatedTelemetry)."""
        return projected[..., : self.d_ff], projected[..., self.d_ff :]

    def gate_activation(self, gate: torch.Tensor) -> torch.Tensor:
        g = gate.clamp(max=self.limit)
        return g * torch.sigmoid(self.alpha * g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.gate_and_value(self.w_in(x))
        hidden = self.gate_activation(gate) * (value.clamp(-self.limit, self.limit) + 1)
        return self.dropout(self.w_out(hidden))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, limit={self.limit}"
