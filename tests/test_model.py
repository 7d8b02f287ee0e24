"""The GPT: causal, tied embeddings, depth-scaled init, both position schemes, bad shapes."""

import math

import pytest
import torch

from ffn_variants.model import GPTConfig
from ffn_variants.resolved import FFNSpec
from tests.helpers.models import build_gpt

SMALL = dict(n_layer=3, n_head=2, d_model=32, d_ff=128, block_size=16, vocab_size=97, multiple_of=2)


@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_future_tokens_do_not_change_past_logits(pos):
    torch.manual_seed(0)
    model = build_gpt(GPTConfig(**SMALL, pos=pos), FFNSpec(name="swiglu")).eval()
    x = torch.randint(0, 97, (2, 12))
    y = x.clone()
    y[:, 8:] = torch.randint(0, 97, (2, 4))
    a, _ = model(x)
    b, _ = model(y)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_positions_matter_with_rope():
    torch.manual_seed(0)
    model = build_gpt(GPTConfig(**SMALL), FFNSpec(name="relu")).eval()
    x = torch.tensor([[5, 7, 5, 7]])
    logits, _ = model(x)
    assert not torch.allclose(logits[0, 0], logits[0, 2])  # same token, other position


def test_embeddings_are_tied_and_counted_once():
    model = build_gpt(GPTConfig(**SMALL), FFNSpec(name="relu"))
    assert model.lm_head.weight is model.tok_emb.weight
    counts = model.param_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["total"] - counts["non_embedding"] == 97 * 32


def test_residual_outputs_get_depth_scaled_init():
    torch.manual_seed(0)
    cfg = GPTConfig(**{**SMALL, "n_layer": 8, "d_model": 64, "d_ff": 256})
    model = build_gpt(cfg, FFNSpec(name="geglu"))
    expected = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        assert block.ffn.w_out.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert block.attn.proj.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert block.ffn.w_in.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_loss_at_init_is_near_uniform():
    torch.manual_seed(0)
    model = build_gpt(GPTConfig(**SMALL), FFNSpec(name="swiglu"))
    x = torch.randint(0, 97, (4, 16))
    _, loss = model(x, torch.randint(0, 97, (4, 16)))
    assert loss.item() == pytest.approx(math.log(97), abs=0.3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_head": 3}, "not divisible by model.n_head=3"),
        ({"n_head": 32}, "even head size"),
        ({"pos": "alibi"}, "'alibi' is not a valid Pos"),
    ],
)
def test_bad_shapes_fail_with_the_fix(change, message):
    with pytest.raises(ValueError, match=message):
        build_gpt(GPTConfig(**{**SMALL, **change}), FFNSpec(name="relu"))


def test_sequence_longer_than_the_context_fails():
    model = build_gpt(GPTConfig(**SMALL), FFNSpec(name="relu"))
    with pytest.raises(ValueError, match="longer than block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("impl", ["torch", "liger"])
def test_every_loss_path_equals_the_plain_loss_and_its_gradients(impl):
    """model.loss_impl=torch (F.linear_cross_entropy) and liger (Liger's kernel, here through
    Triton's interpreter) against the plain float32 logits: the same loss and the same gradients;
    the training call returns no logits. auto is plain on a CPU."""
    if impl == "liger":
        pytest.importorskip("liger_kernel")
    from ffn_variants.loss import LossImpl, resolve

    losses, grads = {}, {}
    idx = torch.randint(0, 50, (3, 11), generator=torch.Generator().manual_seed(0))
    for path in ("plain", impl):
        cfg = GPTConfig(
            n_layer=2, n_head=2, d_model=16, d_ff=48, block_size=16, vocab_size=50, loss_impl=path
        )
        torch.manual_seed(0)
        gpt = build_gpt(cfg, FFNSpec(name="swiglu", impl="torch"))
        logits, loss = gpt(idx[:, :-1], idx[:, 1:], return_logits=False)
        assert logits is None
        loss.backward()
        losses[path] = loss.detach()
        grads[path] = [p.grad for p in gpt.parameters()]
    torch.testing.assert_close(losses[impl], losses["plain"], rtol=1e-6, atol=1e-6)
    for a, b in zip(grads[impl], grads["plain"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert resolve("auto", torch.device("cpu")) == LossImpl.plain
