"""The optimizer home (harness.optim): the schedule as a multiplier on each group's initial rate,
AdamW's decay groups, and optim=muon: torch.optim.Muon over exactly the blocks' 2-D matrices (a
packed gate and value as two), AdamW over the rest, a non-finite step skipped on the device, its
state counted for the checkpoint estimate, bad values refused."""

from __future__ import annotations

import copy
import sys

import pytest
import torch
import torch.nn as nn

from ffn_variants.model import GPTConfig
from ffn_variants.resolved import FFNSpec
from harness.config import MuonConfig, OptimConfig, OptimName
from harness.optim import (
    build_optimizer,
    ownership,
    scheduled,
    set_rates,
    state_nbytes,
    warmup_steps,
)
from tests.helpers import REPO, run_train
from tests.helpers.models import build_gpt

USER_FFNS = str(REPO / "tests" / "fixtures" / "user_ffn")
MUON = OptimConfig(name=OptimName.muon)


def gpt(name: str = "swiglu", target: str | None = None, d_model: int = 32):
    cfg = GPTConfig(n_layer=2, n_head=2, d_model=d_model, d_ff=128, multiple_of=2, vocab_size=64)
    spec = FFNSpec(name=name, target=target, match="none") if target else FFNSpec(name=name)
    torch.manual_seed(0)
    return build_gpt(cfg, spec)


# --------------------------------------------------------------------------- the schedule


def test_warmup_rises_linearly_to_the_peak():
    optim = OptimConfig(lr=1e-2, warmup_steps=4)
    assert [scheduled(1e-2, s, optim, 100) for s in range(4)] == pytest.approx(
        [2.5e-3, 5e-3, 7.5e-3, 1e-2]
    )


def test_cosine_runs_from_the_peak_to_min_lr_ratio():
    optim = OptimConfig(lr=1e-2, warmup_steps=10, min_lr_ratio=0.1)
    assert scheduled(1e-2, 10, optim, 110) == pytest.approx(1e-2)  # first step after warmup
    assert scheduled(1e-2, 60, optim, 110) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))
    assert scheduled(1e-2, 110, optim, 110) == pytest.approx(1e-3)  # the end
    assert scheduled(1e-2, 500, optim, 110) == pytest.approx(1e-3)  # and after it
    lrs = [scheduled(1e-2, s, optim, 110) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_warmup_fraction_takes_a_share_of_the_run():
    optim = OptimConfig(lr=1.0, warmup_steps=30, warmup_fraction=0.05)
    assert warmup_steps(optim, 200) == 10
    assert warmup_steps(OptimConfig(warmup_fraction=0.0), 200) == 0
    assert warmup_steps(OptimConfig(warmup_fraction=0.001), 200) == 1  # never zero if set
    assert scheduled(1.0, 9, optim, 200) == pytest.approx(1.0)
    assert scheduled(1.0, 4, optim, 200) == 0.5


def test_the_schedule_multiplies_each_groups_initial_rate():
    optim = OptimConfig(name=OptimName.muon, lr=4e-3, warmup_steps=5, muon=MuonConfig(lr_ratio=0.5))
    opt = build_optimizer(gpt(), optim, fused=False)
    for step in (0, 3, 7, 50):
        logged = set_rates(opt, step, optim, 60)
        muon, *adamw = opt.param_groups
        assert logged == scheduled(4e-3, step, optim, 60)
        assert all(g["lr"] == logged for g in adamw)
        assert muon["lr"] == pytest.approx(0.5 * logged, rel=1e-12)


# --------------------------------------------------------------------------- who owns what


def test_adamw_decays_matrices_only_and_holds_every_parameter():
    model = gpt()
    opt = build_optimizer(model, OptimConfig(weight_decay=0.1), fused=False)
    assert isinstance(opt, torch.optim.AdamW)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"])
    assert all(p.dim() < 2 for p in plain["params"]) and plain["params"]
    grouped = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each, once


@pytest.fixture
def user_ffns():
    sys.path.insert(0, USER_FFNS)
    yield
    sys.path.remove(USER_FFNS)


@pytest.mark.parametrize(
    "name, target",
    [
        ("swiglu", None),
        ("relu2", None),
        ("xielu", None),
        ("swiglu_beta", None),
        ("polynorm", "ffn_variants.contenders.polynorm:PolyNormFFN"),
        ("swiglu_oai", "ffn_variants.contenders.gpt_oss:ClampedSwiGLU"),
        ("banked", "user_ffns:BankedMoE"),
    ],
)
def test_muon_takes_exactly_the_blocks_2d_matrices(name, target, user_ffns):
    model = gpt(name, target)
    owners = ownership(model, OptimName.muon)
    params = dict(model.named_parameters())
    in_blocks = {n for n, p in params.items() if n.startswith("blocks.") and p.ndim == 2}
    assert set(owners["muon"]) == in_blocks
    assert set(owners["adamw"]) == set(params) - in_blocks
    assert "tok_emb.weight" in owners["adamw"]  # the embedding, tied to the LM head
    scalars = {n for n in params if params[n].ndim < 2}
    assert scalars <= set(owners["adamw"])  # norms, biases, xIELU's alphas, PolyNorm's, beta
    if name == "banked":
        assert {"blocks.0.ffn.up", "blocks.0.ffn.down"} <= set(owners["adamw"])  # 3-D banks
    opt = build_optimizer(model, MUON, fused=False)
    muon_elems = sum(p.numel() for p in opt.muon.param_groups[0]["params"])
    assert muon_elems == sum(params[n].numel() for n in in_blocks)


def test_a_packed_gate_and_value_get_the_update_of_two_separate_linears():
    """One Muon step of the packed w_in equals torch.optim.Muon's steps of W and V as two
    nn.Linear weights (and attention's qkv of q, k and v)."""
    model = gpt("swiglu").double()
    ffn = model.blocks[0].ffn
    d_ff = ffn.w_in.weight.shape[0] // 2
    w, v = (nn.Parameter(t.detach().clone()) for t in ffn.w_in.weight.split(d_ff))
    q, k, vv = (nn.Parameter(t.detach().clone()) for t in model.blocks[0].attn.qkv.weight.chunk(3))
    optim = OptimConfig(name=OptimName.muon, lr=0.02, weight_decay=0.1)
    opt = build_optimizer(model, optim, fused=False)
    m = optim.muon
    separate = torch.optim.Muon(
        [w, v, q, k, vv],
        lr=0.02,
        weight_decay=0.1,
        momentum=m.momentum,
        nesterov=m.nesterov,
        ns_steps=m.ns_steps,
        eps=m.eps,
        adjust_lr_fn=str(m.adjust_lr_fn),
    )
    for step in range(2):
        x = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(step))
        _, loss = model(x, x)
        loss.backward()
        w_grad, v_grad = ffn.w_in.weight.grad.split(d_ff)
        w.grad, v.grad = w_grad.clone(), v_grad.clone()
        q.grad, k.grad, vv.grad = (g.clone() for g in model.blocks[0].attn.qkv.weight.grad.chunk(3))
        opt.step()
        opt.zero_grad()
        separate.step()
    packed_w, packed_v = ffn.w_in.weight.split(d_ff)
    torch.testing.assert_close(packed_w, w, rtol=0, atol=1e-12)
    torch.testing.assert_close(packed_v, v, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        model.blocks[0].attn.qkv.weight, torch.cat([q, k, vv]), rtol=0, atol=1e-12
    )
    # Orthogonalised whole, the packed matrix would have moved otherwise
    whole = torch.optim.Muon([nn.Parameter(torch.cat([w, v]).detach().clone())], lr=0.02)
    assert whole.param_groups[0]["params"][0].shape == (2 * d_ff, 32)


def test_a_nonfinite_step_leaves_muons_matrices_and_momentum_as_they_were():
    model = gpt("swiglu")
    opt = build_optimizer(model, MUON, fused=True)
    x = torch.randint(0, 64, (2, 16))
    for skip in (0.0, 1.0):
        _, loss = model(x, x)
        loss.backward()
        before = copy.deepcopy(opt.state_dict())
        weights = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt.found_inf = torch.tensor(skip)
        opt.step()
        opt.zero_grad()
        moved = any(not torch.equal(weights[n], p) for n, p in model.named_parameters())
        assert moved == (skip == 0.0)
        if skip:
            after = opt.state_dict()["muon"]["state"]
            for i, s in before["muon"]["state"].items():
                assert torch.equal(s["momentum_buffer"], after[i]["momentum_buffer"])


def test_the_checkpoint_estimate_counts_each_optimizers_state():
    model = gpt("swiglu")
    weights = sum(p.numel() * 4 for p in model.parameters())
    adamw = build_optimizer(model, OptimConfig(), fused=False)
    muon = build_optimizer(model, MUON, fused=False)
    matrices = sum(p.numel() * 4 for p in muon.muon.param_groups[0]["params"])
    assert state_nbytes(adamw) == 2 * weights
    assert state_nbytes(muon) == matrices + 2 * (weights - matrices)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.muon.ns_steps=0", "optim.muon.ns_steps=0 must be at least 1"),
        ("optim.muon.momentum=1.5", "optim.muon.momentum=1.5 must be in [0, 1)"),
        ("optim=lion", "optim"),
    ],
)
def test_bad_muon_values_are_one_line_and_exit_2(override, message, tmp_path):
    proc = run_train(["optim=muon", override, f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and message in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()
