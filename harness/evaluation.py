"""The held-out loss and bits per byte of a model over a run's fixed evaluation windows."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ffn_variants.model import GPT
from harness.data.bpb import bits_per_byte, nats_and_bytes
from harness.run_data import RunData


@torch.no_grad()
def validation_metrics(
    model: GPT, data: RunData, device: torch.device, autocast: contextlib.AbstractContextManager
) -> dict[str, float]:
    """val/loss: the mean loss per token over the evaluation windows, in nats. val/bpb: the loss
    summed over their targets in bits, per UTF-8 byte of the text those targets decode to
    (harness.data.bpb; end-of-text targets count in neither sum). The model is left in training
    mode."""
    model.eval()
    sums = torch.zeros(2, device=device)  # nats over all targets; over bpb's targets
    for (x, y), target_bytes in zip(data.val_windows, data.val_target_bytes, strict=True):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast:
            logits, _ = model(x, y)
        per_token = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
        sums[0] += per_token.sum()
        sums[1] += nats_and_bytes(per_token, target_bytes.flatten())[0]
    model.train()
    total, bpb_nats = sums.tolist()
    return {
        "val/loss": total / data.val_windows.n_tokens,
        "val/bpb": bits_per_byte(bpb_nats, data.info["val_bytes"]),
    }
