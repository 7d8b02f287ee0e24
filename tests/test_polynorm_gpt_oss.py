"""The two contenders brought in through configs/ffn/ targets, in float64: PolyNorm against the
PolyCom reference class written out here, gpt-oss's clamped SwiGLU against a reference written
out here and against transformers' GptOssExperts._apply_gate (interleaved gate/up layout);
gradients included, on odd shapes. Liger-Kernel's PolyNorm runs on CUDA only (tests/test_gpu.py):
Triton's interpreter cannot run it."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from ffn_variants.contenders.gpt_oss import ClampedSwiGLU
from ffn_variants.contenders.polynorm import PolyNorm, PolyNormFFN
from ffn_variants.sizing import matched_d_ff
from tests.helpers import REPO, compose

SHAPES = [(3, 5, 37), (1, 7, 129), (2, 1, 11)]


class ReferencePolyNorm(torch.nn.Module):
    """BryceZhuo/PolyCom's README class."""

    def __init__(self, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3) / 3)
        self.bias = torch.nn.Parameter(torch.zeros(1))
        self.eps = eps

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        return (
            self.weight[0] * self._norm(x**3)
            + self.weight[1] * self._norm(x**2)
            + self.weight[2] * self._norm(x)
            + self.bias
        )


def reference_clamped_swiglu(gate, value, alpha=1.702, limit=7.0):
    g = torch.clamp(gate, max=limit)
    u = torch.clamp(value, min=-limit, max=limit)
    return g * (1 / (1 + torch.exp(-alpha * g))) * (u + 1)


def _grads(out, inputs, seed):
    grad_out = torch.randn(
        out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed)
    )
    return torch.autograd.grad(out, inputs, grad_out)


@pytest.mark.parametrize("shape", SHAPES)
def test_polynorm_equals_the_reference_with_gradients(shape):
    torch.manual_seed(0)
    x = (2 * torch.randn(shape, dtype=torch.float64)).requires_grad_()
    ours, ref = PolyNorm().double(), ReferencePolyNorm().double()
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)  # at the initial 1/3 and 0
    with torch.no_grad():
        for m in (ours, ref):
            m.weight.copy_(torch.tensor([0.7, -0.4, 1.3]))
            m.bias.copy_(torch.tensor([0.25]))
    out, expected = ours(x), ref(x)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip(
        _grads(out, [x, ours.weight, ours.bias], 1),
        _grads(expected, [x, ref.weight, ref.bias], 1),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_polynorm_ffn_is_w2_polynorm_w1_with_four_scalars():
    torch.manual_seed(1)
    ffn = PolyNormFFN(12, 20).double()
    x = torch.randn(3, 5, 12, dtype=torch.float64)
    expected = ReferencePolyNorm().double()(x @ ffn.w_in.weight.T) @ ffn.w_out.weight.T
    torch.testing.assert_close(ffn(x), expected, rtol=1e-12, atol=1e-12)
    scalars = sum(p.numel() for n, p in ffn.named_parameters() if n.startswith("act."))
    assert scalars == 4 and all(p.dim() < 2 for p in ffn.act.parameters())  # not decayed


@pytest.mark.parametrize("shape", SHAPES)
def test_clamped_swiglu_equals_the_reference_with_gradients(shape):
    d_model, d_ff = shape[-1], 2 * shape[-1] + 1
    torch.manual_seed(2)
    ffn = ClampedSwiGLU(d_model, d_ff).double()
    torch.nn.init.normal_(ffn.w_in.weight, std=3.0)  # far past the limit of 7 on both sides
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    gate, value = x @ ffn.w_in.weight[:d_ff].T, x @ ffn.w_in.weight[d_ff:].T
    assert gate.max() > 7 and value.min() < -7 and value.max() > 7
    expected = reference_clamped_swiglu(gate, value) @ ffn.w_out.weight.T
    out = ffn(x)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip(_grads(out, [x], 3), _grads(expected, [x], 3), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_clamped_swiglu_equals_gpt_oss_apply_gate():
    modeling = pytest.importorskip("transformers.models.gpt_oss.modeling_gpt_oss")
    config = pytest.importorskip("transformers").GptOssConfig(
        hidden_size=8, intermediate_size=10, num_local_experts=1
    )
    experts = modeling.GptOssExperts(config)
    assert (experts.alpha, experts.limit) == (1.702, 7.0)
    ffn = ClampedSwiGLU(8, 10).double()
    projected = 6 * torch.randn(4, 3, 20, dtype=torch.float64)  # gate | value, past the limits
    gate, value = ffn.gate_and_value(projected)
    interleaved = torch.stack([gate, value], dim=-1).flatten(-2)  # gpt-oss: g0 u0 g1 u1 ...
    hidden = ffn.gate_activation(gate) * (value.clamp(-7, 7) + 1)
    torch.testing.assert_close(hidden, experts._apply_gate(interleaved), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["polynorm", "swiglu_oai"])
def test_shipped_configs_use_the_public_target_path(name):
    cfg = compose([f"ffn={name}"])
    assert cfg.ffn.target and cfg.ffn.target.startswith("ffn_variants.contenders.")
    variant = cfg.ffn.variant()
    m = cfg.model
    d_ff = matched_d_ff(variant, m.d_model, m.d_ff, m.multiple_of)
    assert d_ff == (m.d_ff if name == "polynorm" else 344)  # dense width; the 2/3 rule at tiny


def test_contenders_experiment_sweeps_both():
    raw = OmegaConf.load(REPO / "configs" / "experiment" / "contenders.yaml")
    swept = raw.hydra.sweeper.params.ffn.split(",")
    assert {"polynorm", "swiglu_oai"} <= set(swept)
    for name in swept:  # each one composes with the experiment
        assert compose(["experiment=contenders", f"ffn={name}"]).ffn.name == name
