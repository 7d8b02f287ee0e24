"""How a built model runs, decided in one place for the trainer and every benchmark.

    run = prepare(GPT(cfg.model, cfg.resolved_ffn), cfg, device)             # a training run
    run = prepare(model, cfg, device, ddp=True)                              # under torchrun
    run = prepare(model, cfg, device, serve=True, compile=True, models=4)    # bench.inference

`prepare` checks that the FFN's implementation can run on the device (ffn.impl=quack), says
what the telemetry cannot watch, moves the model to the device (bf16 weights when serving on
CUDA), wraps it for data parallelism, raises Dynamo's recompile limits for a process that
compiles several models, and compiles it. Training compiles the forward (the default mode).
Serving compiles only the one-token decode step (`compile_step`, for ffn_variants.decode.Decoder):
fixed shapes over a static cache, and on CUDA mode="reduce-overhead", which replays each step as
a CUDA graph, as gpt-fast serves; the prefill stays eager. The FFN's own elementwise
implementation (ffn.impl) is the FFN's: it was built in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ffn_variants.model import GPT
from ffn_variants.quack_ffn import unavailable as quack_unavailable
from ffn_variants.registry import Impl
from ffn_variants.telemetry import telemetry_gaps
from harness.config import TrainConfig
from harness.errors import UserInputError
from harness.metrics import warn

RECOMPILES_PER_MODEL = 16  # Dynamo's limit (8) is per process: shapes x models compiled in it


@dataclass
class PreparedModel:
    model: GPT  # the module itself: weights, evaluation, telemetry, checkpoints
    forward: Callable[..., Any]  # what a step calls: the model, in DDP, compiled
    ddp: DistributedDataParallel | None
    compiled: bool
    # Serving: how the Decoder compiles its one-token step (None: eager decoding)
    compile_step: Callable[[Callable], Callable] | None = None


def prepare(
    model: GPT,
    cfg: TrainConfig,
    device: torch.device,
    *,
    ddp: bool = False,
    compile: bool | None = None,
    serve: bool = False,
    models: int = 1,
) -> PreparedModel:
    """`model` made ready to run on `device` (module docstring); compile defaults to
    trainer.compile; `models`: how many models this process compiles (the recompile limit)."""
    ffn, multiple_of = cfg.resolved_ffn, cfg.model.multiple_of
    if ffn.impl == Impl.quack and (why := quack_unavailable(device)):
        raise UserInputError(why)
    if not serve and ffn.d_ff % multiple_of:
        warn(
            f"no multiple of model.multiple_of={multiple_of} matches {ffn.name} within 1%, so "
            f"d_ff={ffn.d_ff} (see ffn_variants.sizing)"
        )
    if not serve:
        for gap in telemetry_gaps(model.blocks[0].ffn):
            warn(f"telemetry: {gap} (docs/extending.md: the telemetry protocol)")
    model = model.to(device)
    if serve:
        model.eval()
        if device.type == "cuda":
            model = model.to(torch.bfloat16)
    # DDP all-reduces (averages) the gradients in the backward: every process steps alike.
    wrapped = DistributedDataParallel(model) if ddp else None
    forward: Callable[..., Any] = wrapped or model
    compiled = cfg.trainer.compile if compile is None else compile
    step = None
    if compiled:
        raise_recompile_limits(models)
        if serve:
            step = decode_step_compiler(device)
        else:
            forward = torch.compile(forward)
    return PreparedModel(model, forward, wrapped, compiled, step)


def decode_step_compiler(device: torch.device) -> Callable[[Callable], Callable]:
    """How a served model's one-token decode step compiles: one graph of fixed shapes, replayed
    as a CUDA graph on CUDA (mode="reduce-overhead")."""
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    return lambda fn: torch.compile(fn, mode=mode, dynamic=False, fullgraph=True)


def raise_recompile_limits(models: int) -> None:
    """Dynamo's recompile limits, raised (never lowered) for `models` compiled models: past
    them, later models would silently run eager under a "compiled" label."""
    limit = RECOMPILES_PER_MODEL * models
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, limit)
    config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, 4 * limit)
