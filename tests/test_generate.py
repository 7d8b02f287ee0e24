"""Generation with a KV cache: for every variant, cached decoding gives the logits of a full
forward over the same sequence at every position (float64); sampling with a fixed generator is
reproducible; temperature 0 is greedy; a sequence past block_size is a clear error."""

from __future__ import annotations

import pytest
import torch

from ffn_variants.decode import Decoder, StaticKVCache, sample_next
from ffn_variants.model import GPT, GPTConfig
from ffn_variants.resolved import FFNSpec
from tests.helpers.ffn_formulas import BUILTINS
from tests.helpers.models import build_gpt

CONTENDERS = ["polynorm", "swiglu_oai"]
TARGETS = {
    "polynorm": "ffn_variants.contenders.polynorm:PolyNormFFN",
    "swiglu_oai": "ffn_variants.contenders.gpt_oss:ClampedSwiGLU",
}


def model(name: str, pos: str = "rope", block_size: int = 24) -> GPT:
    cfg = GPTConfig(
        n_layer=2, n_head=2, d_model=16, d_ff=48, block_size=block_size, vocab_size=50, pos=pos
    )
    torch.manual_seed(0)
    spec = FFNSpec(name=name, target=TARGETS.get(name), impl="torch")
    return build_gpt(cfg, spec).double().eval()


@pytest.mark.parametrize("name", [*BUILTINS, *CONTENDERS])
def test_cached_decoding_equals_a_full_forward_at_every_position(name):
    gpt = model(name)
    idx = torch.randint(0, 50, (3, 19), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, _ = gpt(idx)
        cache = gpt.new_cache()
        pieces = [gpt(idx[:, :5], cache=cache)[0]]  # a prompt of 5, then one token at a time
        pieces += [gpt(idx[:, t : t + 1], cache=cache)[0] for t in range(5, 19)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-10, atol=1e-10)


def test_cache_with_learned_positions_and_chunks():
    gpt = model("swiglu", pos="learned")
    idx = torch.randint(0, 50, (2, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full, _ = gpt(idx)
        cache = gpt.new_cache()
        chunks = [gpt(idx[:, a:b], cache=cache)[0] for a, b in ((0, 7), (7, 12), (12, 20))]
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-10, atol=1e-10)


def test_sampling_is_reproducible_and_temperature_zero_is_greedy():
    gpt = model("relu2")
    prompt = torch.tensor([[3, 1, 4], [1, 5, 9]])
    draw = [gpt.generate(prompt, 8, top_k=10, generator=torch.Generator().manual_seed(7))]
    draw.append(gpt.generate(prompt, 8, top_k=10, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(*draw) and draw[0].shape == (2, 11)
    assert torch.equal(draw[0][:, :3], prompt)
    greedy = gpt.generate(prompt, 8, temperature=0)
    seq = prompt
    with torch.no_grad():
        for _ in range(8):  # argmax of a full forward, token by token
            seq = torch.cat([seq, gpt(seq)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, seq)


def test_top_k_one_is_greedy_and_bad_arguments_are_clear():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 1.0]])
    gen = torch.Generator().manual_seed(0)
    assert sample_next(logits, 1.0, top_k=1, generator=gen).flatten().tolist() == [1, 0]
    gpt = model("gelu")
    with pytest.raises(ValueError, match="longer than block_size 24"):
        gpt.generate(torch.zeros(1, 20, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="at least one token"):
        gpt.generate(torch.zeros(1, 0, dtype=torch.long), 5)


def greedy_by_full_forwards(gpt: GPT, idx: torch.Tensor, n: int) -> torch.Tensor:
    """The oracle: each next token the argmax of a full forward over everything so far."""
    out = idx
    with torch.no_grad():
        for _ in range(n):
            logits, _ = gpt(out)
            out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return out


def test_an_ffn_that_mixes_positions_generates_what_full_forwards_give(capsys):
    """A Primer-style FFN (a causal convolution over the sequence): a cache fed one position at a
    time would see one position; the probe finds it mixes positions, and generation recomputes."""
    import sys

    from tests.helpers import REPO

    sys.path.insert(0, str(REPO / "tests" / "fixtures" / "user_ffn"))
    try:
        cfg = GPTConfig(n_layer=2, n_head=2, d_model=16, d_ff=48, block_size=24, vocab_size=50)
        torch.manual_seed(0)
        spec = FFNSpec(name="primer", target="user_ffns:PrimerConv", match="none", impl="torch")
        gpt = build_gpt(cfg, spec).double().train()
    finally:
        sys.path.remove(str(REPO / "tests" / "fixtures" / "user_ffn"))
    assert gpt.ffn.mixes_positions and not model("relu2").ffn.mixes_positions
    idx = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(2))
    got = gpt.generate(idx, 12, temperature=0)
    assert gpt.training  # the mode it had
    assert torch.equal(got, greedy_by_full_forwards(gpt.eval(), idx, 12))
    assert "mixes positions, so generation recomputes" in capsys.readouterr().err
    # What the cache would have given: different logits (the bug this guards against)
    with torch.no_grad():
        full, _ = gpt(got)
        cache = gpt.new_cache()
        stepwise = [gpt(got[:, :5], cache=cache)[0]]
        stepwise += [gpt(got[:, t : t + 1], cache=cache)[0] for t in range(5, got.size(1))]
    assert not torch.allclose(torch.cat(stepwise, dim=1), full)


def test_generate_keeps_the_training_mode_when_a_forward_fails(monkeypatch):
    gpt = model("relu").train()

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(gpt, "_decode", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        gpt.generate(torch.zeros(1, 3, dtype=torch.long), 2)
    assert gpt.training


@pytest.mark.parametrize("name", ["relu2", "swiglu", "polynorm"])
@pytest.mark.parametrize("pos", ["rope", "learned"])
def test_static_cache_decoding_equals_a_full_forward(name, pos):
    """The fixed-shape cache (what a CUDA-graph decode captures): a prompt written at positions
    0..4, then one token at a time at a position tensor, gives the full forward's logits."""
    gpt = model(name, pos)
    idx = torch.randint(0, 50, (2, 17), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full, _ = gpt(idx)
        cache = StaticKVCache(gpt, 2, torch.float64, torch.device("cpu"))
        pieces = [gpt(idx[:, :5], cache=cache, positions=torch.arange(5))[0]]
        for t in range(5, 17):
            pieces.append(gpt(idx[:, t : t + 1], cache=cache, positions=torch.tensor([t]))[0])
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-10, atol=1e-10)


class CountingBackend:
    """A torch.compile backend that counts the graphs Dynamo hands it (compiles, recompiles)."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, gm, example_inputs):
        self.graphs += 1
        return gm.forward


@pytest.mark.parametrize("name", ["relu2", "swiglu"])
def test_the_compiled_decode_step_equals_full_forwards_and_compiles_once(name):
    """The Decoder's compiled path, as bench.inference serves: eager prefill, then the one-token
    step compiled over the static cache: greedy decoding equals full forwards in float64, and
    32 steps (every position a new value) compile a bounded number of graphs; a second decoder
    of the same model and batch reuses the cache and its compiled step."""
    torch._dynamo.reset()
    gpt = model(name, block_size=40)
    backend = CountingBackend()
    compile_step = lambda fn: torch.compile(fn, backend=backend, fullgraph=True, dynamic=False)  # noqa: E731
    idx = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(4))
    steps = 32
    with torch.inference_mode():
        decoder = Decoder(gpt, compile_step)
        logits, out = decoder.prefill(idx), [idx]
        for _ in range(steps):
            token = sample_next(logits, temperature=0)
            out.append(token)
            logits = decoder.step(token)
        got = torch.cat(out, dim=1)
        assert torch.equal(got, greedy_by_full_forwards(gpt, idx, steps))
        full, _ = gpt(got)
        torch.testing.assert_close(logits, full[:, -1], rtol=1e-9, atol=1e-9)
        assert 1 <= backend.graphs <= 2, backend.graphs  # not one per position
        again = Decoder(gpt, compile_step)
        again.prefill(idx)
        again.step(got[:, 5:6])
        assert again.cache is decoder.cache and backend.graphs <= 2
