"""The 2024-2026 contenders, xIELU and LeakyReLU(0.5)^2: float64 outputs and gradients against
references written out here (and transformers' XIELUActivation where transformers is installed),
their parameter counts, and no weight decay on xIELU's learned scalars."""

from __future__ import annotations

import math

import pytest
import torch

from ffn_variants.activations import ACTIVATION_GRADS, XIELU, get_activation
from ffn_variants.counting import count_flops, count_params
from ffn_variants.model import GPT, GPTConfig
from ffn_variants.resolved import FFNSpec
from ffn_variants.sizing import matched_d_ff
from harness.config import OptimConfig
from harness.optim import build_optimizer
from tests.helpers.models import build_gpt

BETA, EPS = 0.5, -1e-6


def inputs() -> torch.Tensor:
    """Both signs, large negatives, and points inside (eps, 0] where expm1 is clamped."""
    torch.manual_seed(0)
    x = torch.randn(400, dtype=torch.float64) * 3
    tail = [-30.0, -8.0, -1e-3, -5e-7, -1e-9, 1e-9, 5e-7, 1e-3, 8.0]
    return torch.cat([x, torch.tensor(tail, dtype=torch.float64)])


def softplus(a: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(a))


def xielu_reference(x, a_p, a_n):
    """The formula of Huang & Schlag (2024) as the reference implementation writes it."""
    alpha_p, alpha_n = softplus(a_p), BETA + softplus(a_n)
    negative = alpha_n * (torch.exp(torch.clamp(x, max=EPS)) - 1 - x) + BETA * x
    return torch.where(x > 0, alpha_p * x**2 + BETA * x, negative)


def xielu_reference_grads(x, a_p, a_n):
    """d/dx, d/da_p and d/da_n of xIELU, elementwise, derived by hand."""
    alpha_p, alpha_n = softplus(a_p), BETA + softplus(a_n)
    pos = x > 0
    d_x = torch.where(pos, 2 * alpha_p * x + BETA, alpha_n * (torch.exp(x) * (x < EPS) - 1) + BETA)
    d_ap = torch.where(pos, x**2, 0.0) * torch.sigmoid(a_p)
    d_an = torch.where(pos, 0.0, torch.exp(torch.clamp(x, max=EPS)) - 1 - x) * torch.sigmoid(a_n)
    return d_x, d_ap, d_an


def xielu_at(a_p: float, a_n: float) -> XIELU:
    act = XIELU().double()
    with torch.no_grad():
        act.a_p.fill_(a_p)
        act.a_n.fill_(a_n)
    return act


def test_xielu_starts_at_alpha_08_with_two_scalars():
    act = XIELU()
    alpha_p, alpha_n = act.alphas()
    assert alpha_p.item() == pytest.approx(0.8, abs=1e-7)
    assert alpha_n.item() == pytest.approx(0.8, abs=1e-7)
    assert [(n, p.shape) for n, p in act.named_parameters()] == [
        ("a_p", torch.Size([])),
        ("a_n", torch.Size([])),
    ]
    x = inputs()
    torch.testing.assert_close(act.double()(x), get_activation("xielu")(x))


@pytest.mark.parametrize(
    ("a_p", "a_n"),
    [(math.log(math.expm1(0.8)), math.log(math.expm1(0.3))), (0.7, -1.2), (-2.0, 1.5)],
)
def test_xielu_outputs_and_gradients_match_the_written_reference(a_p, a_n):
    act = xielu_at(a_p, a_n)
    x = inputs().requires_grad_()
    y = act(x)
    ap, an = torch.tensor(a_p, dtype=torch.float64), torch.tensor(a_n, dtype=torch.float64)
    torch.testing.assert_close(y, xielu_reference(x.detach(), ap, an), rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(y)
    d_x, d_ap, d_an = torch.autograd.grad(y, [x, act.a_p, act.a_n], upstream)
    e_x, e_ap, e_an = xielu_reference_grads(x.detach(), ap, an)
    torch.testing.assert_close(d_x, upstream * e_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d_ap, (upstream * e_ap).sum(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(d_an, (upstream * e_an).sum(), rtol=1e-10, atol=1e-10)


def test_xielu_gradcheck_and_written_derivative():
    act = xielu_at(0.3, -0.4)
    x = inputs()[::8].clone().requires_grad_()
    assert torch.autograd.gradcheck(act, (x,))
    at_init = inputs()
    e_x, _, _ = xielu_reference_grads(at_init, *(p.detach() for p in XIELU().double().parameters()))
    torch.testing.assert_close(ACTIVATION_GRADS["xielu"](at_init), e_x)


@pytest.mark.parametrize(
    ("a_p", "a_n"), [(math.log(math.expm1(0.8)), math.log(math.expm1(0.3))), (0.7, -1.2)]
)
def test_xielu_matches_transformers(a_p, a_n):
    activations = pytest.importorskip("transformers.activations")
    theirs = activations.XIELUActivation(dtype=torch.float64)
    with torch.no_grad():
        theirs.alpha_p.fill_(a_p)
        theirs.alpha_n.fill_(a_n)
    ours = xielu_at(a_p, a_n)
    x = inputs().requires_grad_()
    y_ours, y_theirs = ours(x), theirs(x)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(y_ours)
    g_ours = torch.autograd.grad(y_ours, [x, ours.a_p, ours.a_n], upstream)
    g_theirs = torch.autograd.grad(y_theirs, [x, theirs.alpha_p, theirs.alpha_n], upstream)
    for a, b in zip(g_ours, g_theirs, strict=True):
        torch.testing.assert_close(a, b.reshape(a.shape), rtol=1e-10, atol=1e-10)


def test_leaky_relu2_outputs_and_gradients_match_the_written_reference():
    x = inputs().requires_grad_()
    y = get_activation("leaky_relu2")(x)
    xd = x.detach()
    torch.testing.assert_close(y, torch.where(xd > 0, xd**2, 0.25 * xd**2), rtol=1e-12, atol=0)
    (d_x,) = torch.autograd.grad(y.sum(), x)
    expected = torch.where(xd > 0, 2 * xd, 0.5 * xd)
    torch.testing.assert_close(d_x, expected, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(ACTIVATION_GRADS["leaky_relu2"](xd), expected, rtol=1e-12, atol=0)
    assert torch.autograd.gradcheck(
        get_activation("leaky_relu2"), (x[::8].detach().clone().requires_grad_(),)
    )


def test_counts_by_hand():
    assert count_params("xielu", 10, 40) == 2 * 10 * 40 + 2  # W1, W2 and a_p, a_n
    assert count_params("leaky_relu2", 10, 40) == 2 * 10 * 40
    assert count_flops("xielu", 10, 40).total == 2 * 2 * 10 * 40 + 12 * 40
    assert count_flops("leaky_relu2", 10, 40).total == 2 * 2 * 10 * 40 + 3 * 40
    # Two scalars move the parameter match by less than half a unit of width: ReLU's width.
    assert matched_d_ff("xielu", 128, 512) == 512
    assert matched_d_ff("leaky_relu2", 128, 512) == 512


def test_learned_scalars_get_no_weight_decay():
    cfg = GPTConfig(n_layer=2, n_head=2, d_model=32, d_ff=128, block_size=16, vocab_size=64)
    for name, scalars in (("xielu", ("act.a_p", "act.a_n")), ("swiglu_beta", ("act.beta",))):
        model = build_gpt(cfg, FFNSpec(name=name))
        optimizer = build_optimizer(model, OptimConfig(weight_decay=0.1), fused=False)
        decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
        named = dict(model.named_parameters())
        for layer in range(cfg.n_layer):
            for scalar in scalars:
                assert decay[id(named[f"blocks.{layer}.ffn.{scalar}"])] == 0.0
            assert decay[id(named[f"blocks.{layer}.ffn.w_in.weight"])] == 0.1
        counts = model.param_counts()
        assert counts["ffn_per_layer"] == count_params(name, 32, counts["d_ff"])


# ------------------------------------------------------------------------ experiment=contenders

CONTENDERS = ["relu", "relu2", "leaky_relu2", "xielu", "geglu", "swiglu", "polynorm", "swiglu_oai"]


def compose_with_hydra(overrides: list[str]):
    """configs/train.yaml with its hydra node (the sweeper's params), as train.py -m sees it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from harness.config import register_configs
    from tests.helpers import REPO

    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
            return compose("train", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("scale", [[], ["model=small", "trainer=gpu"]], ids=["cpu", "gpu"])
def test_contenders_experiment_sweeps_the_eight_and_every_job_builds(scale):
    from tests.helpers import REPO, compose

    cfg = compose_with_hydra(["experiment=contenders", *scale])
    assert cfg.experiment == "contenders"
    assert cfg.hydra.sweep.dir.startswith("multirun/contenders/")
    params = cfg.hydra.sweeper.params
    assert params.ffn.split(",") == CONTENDERS
    assert params.seed.split(",") == ["0", "1", "2", "3", "4"]
    for name in CONTENDERS:
        assert (REPO / "configs" / "ffn" / f"{name}.yaml").is_file()
        typed = compose(["experiment=contenders", *scale, f"ffn={name}", "seed=1"])
        assert (typed.ffn.name, typed.seed) == (name, 1)
        assert typed.model.name == ("small" if scale else "tiny")
        assert typed.data.tokenizer == ("r50k_base" if scale else "r50k_8k")
        assert typed.trainer.batch_size == (32 if scale else 8)
        with torch.device("meta"):
            model = GPT(typed.model, typed.resolved_ffn)
        dense = count_params("relu", typed.model.d_model, typed.model.d_ff)
        assert abs(model.param_counts()["ffn_per_layer"] / dense - 1) <= 0.01
