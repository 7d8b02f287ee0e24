"""Outlier telemetry on constructed inputs: the excess kurtosis of the input of W2 and the
alignment of a gated FFN's gate and value weights, with values known in closed form."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from ffn_variants.telemetry import (
    activation_stats,
    excess_kurtosis,
    gate_value_alignment,
    tensor_stats,
    weight_stats,
)
from ffn_variants.variants import build_ffn


def bernoulli(k: int, n: int) -> torch.Tensor:
    """k ones and n - k zeros: a Bernoulli(p = k/n) sample whose moments are exactly p's."""
    return torch.cat([torch.ones(k), torch.zeros(n - k)])


@pytest.mark.parametrize(("k", "n"), [(1, 10), (1, 2), (3, 8), (1, 1000)])
def test_kurtosis_of_a_bernoulli_sample(k, n):
    p = k / n
    expected = (1 - 6 * p * (1 - p)) / (p * (1 - p))  # excess kurtosis of Bernoulli(p)
    assert excess_kurtosis(bernoulli(k, n).double()).item() == pytest.approx(expected, rel=1e-12)


def test_kurtosis_known_values_and_scale_freedom():
    assert excess_kurtosis(torch.tensor([-1.0, 1.0] * 50)).item() == pytest.approx(-2.0)
    # Uniform on a fine grid: -6/5 in the limit.
    grid = torch.linspace(-1, 1, 200_001, dtype=torch.float64)
    assert excess_kurtosis(grid).item() == pytest.approx(-1.2, abs=1e-4)
    x = torch.randn(1000, dtype=torch.float64)
    assert excess_kurtosis(5 * x + 3).item() == pytest.approx(excess_kurtosis(x).item(), rel=1e-9)
    assert math.isnan(excess_kurtosis(torch.full((10,), 2.0)).item())  # no spread: undefined


def test_tensor_stats_adds_the_kurtosis_only_when_asked():
    x = bernoulli(1, 10)
    assert "kurtosis" not in tensor_stats(x)
    stats = tensor_stats(x, tail=True)
    assert stats["kurtosis"] == pytest.approx(0.46 / 0.09, rel=1e-6)
    assert stats["mean"] == pytest.approx(0.1) and stats["absmax"] == 1.0


def gated_with_rows(gate: torch.Tensor, value: torch.Tensor) -> nn.Module:
    d_ff, d_model = gate.shape
    ffn = build_ffn("swiglu", d_model, d_ff, impl="torch")
    with torch.no_grad():
        ffn.w_in.weight.copy_(torch.cat([gate, value]))
    return ffn


def test_alignment_of_constructed_gate_and_value_rows():
    torch.manual_seed(0)
    w = torch.randn(6, 5)
    assert gate_value_alignment(gated_with_rows(w, 3 * w)).item() == pytest.approx(1.0)
    assert gate_value_alignment(gated_with_rows(w, -w)).item() == pytest.approx(1.0)  # |cos|
    # Row j of V at angle theta_j from row j of W, in the plane of the first two axes.
    thetas = torch.tensor([0.0, math.pi / 3, math.pi / 2, 2 * math.pi / 3])
    gate = torch.zeros(4, 3)
    gate[:, 0] = 2.0
    value = torch.stack([thetas.cos(), thetas.sin(), torch.zeros(4)], dim=1)
    expected = thetas.cos().abs().mean().item()  # (1 + 1/2 + 0 + 1/2) / 4
    assert expected == pytest.approx(0.5)
    assert gate_value_alignment(gated_with_rows(gate, value)).item() == pytest.approx(expected)


class Blocks(nn.Module):
    """Modules named like the GPT's (blocks.<i>.ffn), which is how telemetry finds the FFNs."""

    def __init__(self, *ffns: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for ffn in ffns:
            block = nn.Module()
            block.ffn = ffn
            self.blocks.append(block)


def test_activation_stats_log_kurtosis_of_w2_input_and_alignment_per_layer():
    """Layer 0 dense ReLU with W1 = I: its W2 input is relu(x), a Bernoulli sample for x of
    ones and minus ones. Layer 1 gated with V = W: alignment 1."""
    dense = build_ffn("relu", 4, 4)
    with torch.no_grad():
        dense.w_in.weight.copy_(torch.eye(4))
    w = torch.randn(4, 4)
    gated = gated_with_rows(w[:3], w[:3])
    model = Blocks(dense, gated)
    x = torch.tensor([1.0] + [-1.0] * 9).reshape(10, 1).expand(10, 4)  # relu: p = 0.1
    with activation_stats(model) as stats:
        dense(x)
        gated(torch.randn(7, 4))
    assert stats["act/L0/act/kurtosis"] == pytest.approx((1 - 6 * 0.09) / 0.09, rel=1e-5)
    assert stats["act/L1/gate_value/alignment"] == pytest.approx(1.0)
    assert "act/L1/product/kurtosis" in stats
    assert not any(k.startswith("act/L0/gate_value") for k in stats)  # dense: no W, V
    assert not any(
        k.endswith("kurtosis") and "/product/" not in k and "/act/" not in k for k in stats
    )
    assert weight_stats(Blocks(dense)) == {}
