"""On a CUDA GPU: the fused op inside the FFN and inside a whole training step, in bf16, against
the PyTorch implementation. Skipped without CUDA; `make gpu-check` runs them."""

from __future__ import annotations

import pytest
import torch

from ffn_variants.model import GPTConfig
from ffn_variants.resolved import FFNSpec
from ffn_variants.variants import build_ffn
from tests.helpers.ffn_formulas import GATED, activation_of
from tests.helpers.models import build_gpt

pytestmark = pytest.mark.cuda
GATED_FUSED = sorted(n for n in GATED if activation_of(n) != "swish_beta")
# bf16 outputs: 2^-8 relative; the two paths round the product differently (the kernel once,
# PyTorch after the activation and after the product), so allow a few ulps.
BF16 = {"rtol": 2**-6, "atol": 2**-6}
# Gradients in bf16 are compared as whole tensors, relative to their norm: elementwise, values
# near zero differ by many ulps (and tiny gradients would pass any absolute tolerance).
GRAD_REL = 2e-2


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected||, in float32."""
    expected = expected.float()
    return ((actual.float() - expected).norm() / expected.norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("name", GATED_FUSED)
def test_fused_ffn_matches_the_pytorch_ffn_in_bf16(name):
    torch.manual_seed(0)
    ffn = build_ffn(name, 768, 2048, impl="torch").cuda()
    x = torch.randn(4, 1000, 768, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        expected = ffn(x)
    expected_grads = torch.autograd.grad(expected.float().square().mean(), [x, *ffn.parameters()])
    ffn.impl = "triton"
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = ffn(x)
    grads = torch.autograd.grad(out.float().square().mean(), [x, *ffn.parameters()])
    torch.testing.assert_close(out, expected, **BF16)
    for g, e in zip(grads, expected_grads, strict=True):
        assert e.norm() > 0 and rel_err(g, e) < GRAD_REL


@pytest.mark.parametrize("compile_model", [False, True], ids=["eager", "compiled"])
def test_a_training_step_with_the_fused_op_matches_pytorch(compile_model):
    """Loss and every parameter's gradient, before any optimizer step, triton vs torch, bf16
    autocast. (Parameters after an AdamW step are no test: its first step moves each element by
    about +-lr whatever the gradient's size, so bf16 noise that flips a tiny gradient's sign
    shows as a 2 lr difference.)"""
    cfg = GPTConfig(n_layer=4, n_head=6, d_model=384, d_ff=1536, block_size=256, multiple_of=128)
    x = torch.randint(0, 50257, (8, 256), device="cuda")
    results = {}
    for impl in ("torch", "triton"):
        torch.manual_seed(0)
        model = build_gpt(cfg, FFNSpec(name="swiglu", impl=impl)).cuda()
        forward = torch.compile(model) if compile_model else model
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss = forward(x, x)
        loss.backward()
        results[impl] = (
            loss.item(),
            {n: p.grad.detach().clone() for n, p in model.named_parameters()},
        )
    assert results["triton"][0] == pytest.approx(results["torch"][0], rel=2**-8)
    errors = {n: rel_err(g, results["torch"][1][n]) for n, g in results["triton"][1].items()}
    assert max(errors.values()) < GRAD_REL, errors


def test_the_triton_path_is_what_runs_on_cuda():
    from ffn_variants.kernels import kernels_interpreted, triton_available

    assert triton_available("cuda") and not kernels_interpreted()


def test_polynorm_equals_liger_kernel_polynorm():
    """LigerPolyNorm (a Triton kernel; its bias starts at 1.0, so both are set) against ours."""
    poly_norm = pytest.importorskip("liger_kernel.transformers.poly_norm")
    from ffn_variants.contenders.polynorm import PolyNorm

    torch.manual_seed(0)
    x = torch.randn(4, 33, 257, device="cuda", dtype=torch.float32, requires_grad=True)
    ours, liger = PolyNorm().cuda(), poly_norm.LigerPolyNorm(in_place=False).cuda()
    with torch.no_grad():
        for m in (ours, liger):
            m.weight.copy_(torch.tensor([0.7, -0.4, 1.3]))
            m.bias.fill_(0.25)
    x2 = x.detach().clone().requires_grad_()
    out, expected = ours(x), liger(x2)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    assert rel_err(x.grad, x2.grad) < 1e-4
    assert rel_err(ours.weight.grad, liger.weight.grad) < 1e-4


def _quack_ready() -> bool:
    from ffn_variants.quack_ffn import unavailable

    return torch.cuda.is_available() and unavailable(torch.device("cuda")) is None


@pytest.mark.skipif(not _quack_ready(), reason="ffn.impl=quack: an SM90+ GPU and quack-kernels")
@pytest.mark.parametrize("name", ["swiglu", "reglu", "glu", "relu", "relu2", "swish"])
def test_quack_ffn_matches_a_float64_reference(name):
    """The single-pass gated GEMM (bf16) against the same weights in float64: output and every
    gradient, relative to their norms."""
    torch.manual_seed(0)
    ffn = build_ffn(name, 768, 2048 if name in GATED else 3072, impl="quack").cuda()
    reference = build_ffn(name, 768, ffn.w_out.in_features, impl="torch").cuda().double()
    reference.load_state_dict(ffn.state_dict())
    x = torch.randn(2, 999, 768, device="cuda")
    x64 = x.double().requires_grad_()
    x = x.requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = ffn(x)
    expected = reference(x64)
    grads = torch.autograd.grad(out.float().square().mean(), [x, *ffn.parameters()])
    expected_grads = torch.autograd.grad(expected.square().mean(), [x64, *reference.parameters()])
    assert rel_err(out, expected) < GRAD_REL
    for g, e in zip(grads, expected_grads, strict=True):
        assert e.norm() > 0 and rel_err(g, e) < GRAD_REL
