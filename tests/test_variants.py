"""Each FFN variant against its formula written out by hand, with separate W, V and W2."""

import math

import pytest
import torch

from ffn_variants.variants import VARIANTS, DenseFFN, GatedFFN, build_ffn
from tests.helpers.ffn_formulas import BUILTINS, is_gated


def _gelu_exact(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


# The activation each variant is defined with, written independently of ffn_variants.activations.
FORMULAS = {
    "relu": lambda x: torch.clamp(x, min=0),
    "gelu": _gelu_exact,
    "swish": lambda x: x / (1 + torch.exp(-x)),
    "relu2": lambda x: torch.clamp(x, min=0) ** 2,
    "leaky_relu2": lambda x: torch.where(x > 0, x, 0.5 * x) ** 2,
    "xielu": None,  # depends on the learned alphas; checked below
    "glu": lambda x: 1 / (1 + torch.exp(-x)),
    "bilinear": lambda x: x,
    "reglu": lambda x: torch.clamp(x, min=0),
    "geglu": _gelu_exact,
    "swiglu": lambda x: x / (1 + torch.exp(-x)),
    "swiglu_beta": None,  # depends on the learned beta; checked below
}

SIX = ["relu", "gelu", "glu", "reglu", "geglu", "swiglu"]


def test_registry_has_the_six_and_table_1():
    for name in SIX + ["swish", "bilinear"]:
        assert name in VARIANTS
    assert set(FORMULAS) == set(VARIANTS)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_variant_matches_its_formula(name, bias):
    torch.manual_seed(0)
    d_model, d_ff = 12, 20
    ffn = build_ffn(name, d_model, d_ff, bias=bias).double()
    for p in ffn.parameters():  # non-trivial values everywhere, biases and beta included
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(3, 5, d_model, dtype=torch.double)
    w_in = ffn.w_in.weight
    b_in = ffn.w_in.bias if bias else torch.zeros(w_in.shape[0], dtype=torch.double)
    b_out = ffn.w_out.bias if bias else 0.0
    if is_gated(name):
        assert isinstance(ffn, GatedFFN) and w_in.shape == (2 * d_ff, d_model)
        W, V = w_in[:d_ff], w_in[d_ff:]
        gate, value = x @ W.T + b_in[:d_ff], x @ V.T + b_in[d_ff:]
        if name == "swiglu_beta":
            act = gate / (1 + torch.exp(-ffn.act.beta * gate))
        else:
            act = FORMULAS[name](gate)
        hidden = act * value
    else:
        assert isinstance(ffn, DenseFFN) and w_in.shape == (d_ff, d_model)
        h = x @ w_in.T + b_in
        if name == "xielu":  # alpha_p = softplus(a_p), alpha_n = beta + softplus(a_n), beta = 0.5
            a_p, a_n = (torch.log1p(torch.exp(a)) for a in (ffn.act.a_p, ffn.act.a_n))
            negative = (0.5 + a_n) * (torch.exp(torch.clamp(h, max=-1e-6)) - 1 - h) + 0.5 * h
            hidden = torch.where(h > 0, a_p * h * h + 0.5 * h, negative)
        else:
            hidden = FORMULAS[name](h)
    expected = hidden @ ffn.w_out.weight.T + b_out
    torch.testing.assert_close(ffn(x), expected, rtol=1e-10, atol=1e-10)


def test_no_biases_by_default_and_flag_adds_them():
    assert build_ffn("swiglu", 8, 16).w_in.bias is None
    assert build_ffn("swiglu", 8, 16, bias=True).w_in.bias is not None


def test_dropout_applies_in_training_only():
    ffn = build_ffn("geglu", 8, 16, dropout=0.5)
    x = torch.randn(64, 8)
    ffn.eval()
    torch.testing.assert_close(ffn(x), ffn(x))
    ffn.train()
    assert (ffn(x) == 0).float().mean() > 0.3


def test_swiglu_beta_learns_beta():
    ffn = build_ffn("swiglu_beta", 8, 16)
    ffn(torch.randn(4, 8)).square().sum().backward()
    assert ffn.act.beta.grad is not None and ffn.act.beta.grad.abs() > 0


def test_unknown_variant_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown ffn 'swigl'; known: relu, gelu"):
        build_ffn("swigl", 8, 16)


def test_compile_and_torch_impls_agree():
    torch.manual_seed(0)
    ffn = build_ffn("swiglu", 8, 16, impl="torch")
    x = torch.randn(2, 3, 8)
    reference = ffn(x)
    ffn.impl = "compile"
    torch.testing.assert_close(ffn(x), reference)


def test_unknown_impl_fails():
    with pytest.raises(ValueError, match="'cuda' is not a valid Impl"):
        build_ffn("swiglu", 8, 16, impl="cuda")


@pytest.mark.parametrize("name", ["swiglu", "geglu", "reglu", "glu", "bilinear"])
def test_triton_impl_matches_torch_impl_in_the_ffn(name):
    """The fused kernel inside the gated FFN (Triton's interpreter on CPU), gradients included."""
    from ffn_variants.kernels import triton_available

    if not triton_available(torch.device("cpu")):
        pytest.skip("Triton (or its interpreter) is not available")
    torch.manual_seed(0)
    ffn = build_ffn(name, 12, 20, impl="torch")
    x = torch.randn(2, 5, 12, requires_grad=True)
    expected = ffn(x)
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, *ffn.parameters()])
    ffn.impl = "triton"
    out = ffn(x)
    grads = torch.autograd.grad(out.square().sum(), [x, *ffn.parameters()])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
