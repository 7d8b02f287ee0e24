"""torch.compile of the GPT with the fused op: one graph, no breaks, the same numbers as eager.

On a CUDA machine every test here runs on the GPU (compiled Triton kernels inside the compiled
graph; make gpu-check selects them with the `gpu` mark). Without CUDA the op runs the Triton
kernels under the interpreter (TRITON_INTERPRET=1, set in conftest.py), inside the compiled graph
as on a GPU.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch._dynamo.utils import counters

from ffn_variants.model import GPT, GPTConfig
from ffn_variants.resolved import FFNSpec
from tests.helpers import tiny_overrides, train
from tests.helpers.ffn_formulas import GATED
from tests.helpers.models import build_gpt

pytestmark = pytest.mark.gpu
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
GATED = sorted(GATED)
SHAPE = dict(n_layer=2, n_head=2, d_model=32, d_ff=128, block_size=16, vocab_size=96)


def model_and_batch(name: str, impl: str = "triton") -> tuple[GPT, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = build_gpt(GPTConfig(**SHAPE, multiple_of=2), FFNSpec(name=name, impl=impl)).to(DEVICE)
    x = torch.randint(0, SHAPE["vocab_size"], (3, SHAPE["block_size"]), device=DEVICE)
    return model, x, torch.roll(x, -1, dims=1)


@pytest.mark.parametrize("name", GATED)
def test_fullgraph_compile_of_the_gpt_has_no_graph_break(name):
    model, x, y = model_and_batch(name)
    explained = torch._dynamo.explain(model)(x, y)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1
    if name != "swiglu_beta":  # a learned beta runs in PyTorch, not through the fused op
        ops = {str(n.target) for g in explained.graphs for n in g.graph.nodes}
        assert any("ffn_variants.gated_activation_packed" in op for op in ops), ops


@pytest.mark.parametrize("loss_impl", ["auto", "torch", "plain"])
def test_the_compiled_training_forward_keeps_the_loss_in_one_graph(loss_impl):
    """The training call (the loss alone) under every default-eligible loss path: no graph
    break, so no host sync hides in it either. Liger's path, an option, breaks the graph."""
    torch.manual_seed(0)
    cfg = GPTConfig(**SHAPE, multiple_of=2, loss_impl=loss_impl)
    model = build_gpt(cfg, FFNSpec(name="swiglu", impl="torch")).to(DEVICE)
    x = torch.randint(0, SHAPE["vocab_size"], (3, SHAPE["block_size"]), device=DEVICE)
    explained = torch._dynamo.explain(model)(x, torch.roll(x, -1, 1), return_logits=False)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize("name", GATED)
def test_compiled_outputs_and_gradients_equal_eager(name):
    model, x, y = model_and_batch(name)
    _, loss = model(x, y)
    expected = torch.autograd.grad(loss, list(model.parameters()))
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    _, compiled_loss = compiled(x, y)
    grads = torch.autograd.grad(compiled_loss, list(model.parameters()))
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-6, atol=1e-6)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_inplace_backward_is_kept_in_eager_and_dropped_under_compile():
    """Eager: d_packed is the saved projection output's own memory. Compiled: the backward writes
    a fresh buffer (see ffn_variants.kernels.ops), with the same numbers."""
    from ffn_variants.kernels import gated_activation_packed

    def f(packed: torch.Tensor) -> torch.Tensor:
        return gated_activation_packed(packed, "silu", inplace_backward=True)

    leaf = torch.randn(4, 2 * 24, dtype=torch.float64, device=DEVICE, requires_grad=True)
    packed = leaf * 1.0
    (eager,) = torch.autograd.grad(f(packed).sum(), packed)
    assert eager.data_ptr() == packed.data_ptr()
    torch._dynamo.reset()
    packed = leaf * 1.0
    (compiled,) = torch.autograd.grad(torch.compile(f, fullgraph=True)(packed).sum(), packed)
    assert compiled.data_ptr() != packed.data_ptr()
    torch.testing.assert_close(compiled, eager, rtol=0, atol=0)


def test_trainer_compile_is_one_graph_with_logging_at_every_step_and_trains_as_eager(
    token_cache, tmp_path
):
    """trainer.compile=true ffn.impl=triton (inductor), fp32, activation statistics logged at
    every step: GPT.forward compiles once (one frame, one graph, no break, no recompile) and
    the losses and statistics equal eager's, step by step, within fp32 rounding."""
    common = [*tiny_overrides(token_cache, steps=4), "logger.mode=disabled", "ffn.impl=triton"]
    common += ["trainer.log_interval=1", "trainer.checkpoint=false", "trainer.dtype=fp32"]
    eager = train(common, tmp_path / "eager")
    torch._dynamo.reset()
    counters.clear()
    compiled = train([*common, "trainer.compile=true"], tmp_path / "compiled")
    assert compiled.status == eager.status == "completed"
    assert dict(counters["graph_break"]) == {}
    assert counters["stats"]["unique_graphs"] == 1
    assert counters["frames"]["total"] == counters["frames"]["ok"] == 1  # no recompile

    def steps(run: str) -> list[dict]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if "train/loss" in r]

    assert len(steps("compiled")) == len(steps("eager")) == 4
    for got, want in zip(steps("compiled"), steps("eager"), strict=True):
        stats = sorted(k for k in want if k.startswith("act/"))
        assert stats and sorted(k for k in got if k.startswith("act/")) == stats
        # fp32: the compiled and eager paths differ by summation order only (~1e-7 relative).
        torch.testing.assert_close(got["train/loss"], want["train/loss"], rtol=1e-5, atol=1e-5)
        for key in stats:
            torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5, msg=key)
