"""The GPT: causal, tied embeddings, depth-scaled init, both position schemes, bad shapes."""

import math

import pytest
import torch

from ffn_variants.model import GPT, FFNSpec, GPTConfig

SMALL = dict(n_layer=3, n_head=2, d_model=32, d_ff=128, block_size=16, vocab_size=97, multiple_of=2)


@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_future_tokens_do_not_change_past_logits(pos):
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL, pos=pos), FFNSpec(name="swiglu")).eval()
    x = torch.randint(0, 97, (2, 12))
    y = x.clone()
    y[:, 8:] = torch.randint(0, 97, (2, 4))
    a, _ = model(x)
    b, _ = model(y)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_positions_matter_with_rope():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL), FFNSpec(name="relu")).eval()
    x = torch.tensor([[5, 7, 5, 7]])
    logits, _ = model(x)
    assert not torch.allclose(logits[0, 0], logits[0, 2])  # same token, other position


def test_embeddings_are_tied_and_counted_once():
    model = GPT(GPTConfig(**SMALL), FFNSpec(name="relu"))
    assert model.lm_head.weight is model.tok_emb.weight
    counts = model.param_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["total"] - counts["non_embedding"] == 97 * 32


def test_residual_outputs_get_depth_scaled_init():
    torch.manual_seed(0)
    cfg = GPTConfig(**{**SMALL, "n_layer": 8, "d_model": 64, "d_ff": 256})
    model = GPT(cfg, FFNSpec(name="geglu"))
    expected = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        assert block.ffn.w_out.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert block.attn.proj.weight.std().item() == pytest.approx(expected, rel=0.1)
        assert block.ffn.w_in.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_loss_at_init_is_near_uniform():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL), FFNSpec(name="swiglu"))
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
        GPT(GPTConfig(**{**SMALL, **change}), FFNSpec(name="relu"))


def test_sequence_longer_than_the_context_fails():
    model = GPT(GPTConfig(**SMALL), FFNSpec(name="relu"))
    with pytest.raises(ValueError, match="longer than block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))
