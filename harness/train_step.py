"""One optimizer step over grad_accum micro-batches: the step the trainer runs and bench.throughput
times, one function for both.

Nothing in it reads a value back to the host: the loss stays on the device (`TrainStep.loss`), the
gradient norm and the non-finite note too (harness.nonfinite), and a fused optimizer skips a
non-finite step on the device. Activation statistics, on a step that watches, come from that
step's own forward (hooks), or under torch.compile from a second, eager forward that the caller
can keep out of its timed window (`paused`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ffn_variants.model import GPT
from ffn_variants.telemetry import activation_stats
from harness import distributed
from harness.config import OnNonFinite, TrainConfig
from harness.nonfinite import NonFiniteGuard
from harness.optim import build_optimizer
from harness.prepare import PreparedModel

Batch = tuple[torch.Tensor, torch.Tensor]


class TrainStep:
    def __init__(
        self,
        model: GPT,
        forward: Callable[..., Any],
        optimizer: torch.optim.Optimizer,
        *,
        grad_accum: int,
        grad_clip: float,
        compiled: bool,
        fused_optimizer: bool,
        autocast: contextlib.AbstractContextManager,
        ddp: DistributedDataParallel | None = None,
        main: bool = True,
    ) -> None:
        self.model, self.forward, self.optimizer = model, forward, optimizer
        self.grad_accum, self.clip = grad_accum, grad_clip or math.inf
        self.compiled, self.fused_optimizer = compiled, fused_optimizer
        self.autocast, self.ddp, self.main = autocast, ddp, main
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.param_names = [n for n, p in model.named_parameters() if p.requires_grad]
        device = self.params[0].device
        self.nonfinite = NonFiniteGuard(device)
        self.loss = torch.full((), math.nan, device=device)  # the last step's, on the device

    @classmethod
    def of(
        cls,
        run: PreparedModel,
        cfg: TrainConfig,
        autocast: contextlib.AbstractContextManager,
        main: bool = True,
    ) -> TrainStep:
        """The step of a run of `cfg` over the prepared model, with its optimizer
        (harness.optim)."""
        t = cfg.trainer
        device = run.model.lm_head.weight.device
        # Fused AdamW skips a non-finite step on the device (found_inf), and under optim=muon the
        # Muon group keeps its matrices from before it: on CUDA always, and on a CPU where steps
        # are to be skipped (trainer.on_nonfinite=skip); elsewhere such a step stops the run at
        # the next read (harness.nonfinite), before any checkpoint.
        fused = device.type == "cuda" or t.on_nonfinite == OnNonFinite.skip
        return cls(
            run.model,
            run.forward,
            build_optimizer(run.model, cfg.optim, fused),
            grad_accum=t.grad_accum,
            grad_clip=cfg.optim.grad_clip,
            compiled=run.compiled,
            fused_optimizer=fused,
            autocast=autocast,
            ddp=run.ddp,
            main=main,
        )

    def forward_backward(
        self,
        batch: Callable[[int], Batch],
        watch: bool,
        paused: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> dict[str, float]:
        """Gradients of the step's micro-batches (batch(micro) gives each); activation
        statistics of the first if `watch` (rank 0's alone: hooks that only read tensors)."""
        accum = self.grad_accum
        loss_sum = torch.zeros((), device=self.loss.device)
        stats: dict[str, float] = {}
        for micro in range(accum):
            x, y = batch(micro)
            hooks = contextlib.nullcontext()
            if watch and micro == 0 and self.main:
                if self.compiled:
                    with paused():  # a second forward: not training time
                        stats.update(self.eager_activation_stats(x, y))
                else:
                    hooks = activation_stats(self.model)
            # Gradients are averaged over processes once, after the last micro-batch.
            last = micro == accum - 1
            sync = contextlib.nullcontext() if self.ddp is None or last else self.ddp.no_sync()
            with hooks as recorded, sync, self.autocast:
                _, loss = self.forward(x, y, return_logits=False)
            stats.update(recorded or {})
            with sync:
                (loss / accum).backward()
            loss_sum += loss.detach()
        self.loss = distributed.mean(loss_sum / accum)  # stays on the device
        return stats

    @torch.no_grad()
    def eager_activation_stats(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Under torch.compile: the activation statistics of a separate forward of the eager
        module over the same batch, without gradients. Inside the compiled graph the hooks'
        host reads would break it, and adding and removing hooks would recompile it; so the
        compiled forward never sees them. The RNG (dropout) is restored, so training draws the
        same numbers as without it."""
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self.autocast:
            with activation_stats(self.model) as recorded:
                self.model(x, y, return_logits=False)
        return dict(recorded)

    def optimizer_step(self, step: int) -> None:
        """Clip and apply the gradients, noting on the device whether they were finite; a fused
        optimizer skips a non-finite step there (harness.nonfinite)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        norms = torch.stack(torch._foreach_norm(grads))  # as get_total_norm takes them
        total = torch.linalg.vector_norm(norms)
        skip = self.nonfinite.note(norms, total, step)
        torch.nn.utils.clip_grads_with_norm_(self.params, self.clip, total, foreach=True)
        if self.fused_optimizer:
            self.optimizer.found_inf = skip
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
