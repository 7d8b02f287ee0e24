"""Non-finite steps, noted on the device and read only when the host looks anyway.

A training step that asks the host whether its gradients are finite waits for the device to
finish the step: a sync per step. Instead each step notes, on the device, whether its gradient
norm is finite (a NaN or Inf loss makes every gradient non-finite too), the first such step and
the first parameter whose gradient was non-finite there. A fused AdamW skips the step itself on
the device (its `found_inf`); the trainer reads the note where it syncs anyway: at a logging
step, before an evaluation and before a checkpoint, and at the end. Then trainer.on_nonfinite=stop
stops the run naming that step and parameter (no checkpoint is written after it), and skip
counts the skipped steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.metrics import warn


@dataclass(frozen=True)
class NonFiniteNote:
    count: int  # steps whose gradients were non-finite, so far
    first_step: int  # the first of them (-1: none)
    first_param: int  # the index of its first non-finite gradient among the noted parameters


class NonFiniteGuard:
    def __init__(self, device: torch.device) -> None:
        self.count = torch.zeros((), dtype=torch.long, device=device)
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.first_param = torch.full((), -1, dtype=torch.long, device=device)

    def note(self, norms: torch.Tensor, total: torch.Tensor, step: int) -> torch.Tensor:
        """Note one step from its per-parameter gradient norms and their total; the step's
        non-finite flag as a float tensor (1.0: skip it), for a fused optimizer's found_inf."""
        bad = ~torch.isfinite(total)
        first = bad & (self.first_step < 0)
        param = (~torch.isfinite(norms)).to(torch.int8).argmax()
        self.first_step.copy_(torch.where(first, step, self.first_step))
        self.first_param.copy_(torch.where(first, param, self.first_param))
        self.count.add_(bad.to(torch.long))
        return bad.to(torch.float32)

    def read(self) -> NonFiniteNote:
        """The note on the host: one sync."""
        count, step, param = torch.stack([self.count, self.first_step, self.first_param]).tolist()
        return NonFiniteNote(count, step, param)


class NonFiniteError(RuntimeError):
    """Loss or gradients went NaN/Inf and trainer.on_nonfinite=stop."""


def act_on(note: NonFiniteNote, param_names: list[str], stop: bool, skipped: int, step: int) -> int:
    """trainer.on_nonfinite for a note that counts more non-finite steps than `skipped`: stop
    (NonFiniteError naming the step and parameter) or warn and return the new count."""
    i = note.first_param
    layer = param_names[i] if 0 <= i < len(param_names) else "none (the loss itself)"
    if stop:
        raise NonFiniteError(
            f"non-finite loss or gradient at step {note.first_step}; first non-finite "
            f"gradient: {layer}; the last good checkpoint is kept "
            "(trainer.on_nonfinite=skip skips such steps instead)"
        )
    warn(
        f"non-finite loss/gradient in {note.count - skipped} step(s) before step {step} (the "
        f"first ever at step {note.first_step}, layer {layer}); skipped ({note.count} so far)"
    )
    return note.count
