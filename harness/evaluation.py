"""The held-out loss and bits per byte of a model over a run's fixed evaluation windows."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ffn_variants.model import GPT
from harness.data.bpb import bits_per_byte, nats_and_bytes
from harness.run_data import RunData


@torch.no_grad()
def validation_metrics(
    model: GPT,
    data: RunData,
    device: torch.device,
    autocast: contextlib.AbstractContextManager,
    stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, float] | None, dict[str, dict[str, float]]]:
    """val/loss: the mean loss per token over the evaluation windows, in nats. val/bpb: the loss
    summed over their targets in bits, per UTF-8 byte of the text those targets decode to
    (harness.data.bpb; end-of-text targets count in neither sum). The model is left in training
    mode.

    Also each held-out document's mean loss over its evaluated targets, with their count: the
    text-level view of a comparison (sweep.documents). `stop()` true between batches (a stop
    signal) ends it early: (None, {}), within a batch's time."""
    model.eval()
    windows = data.val_windows
    sums = torch.zeros(2, device=device)  # nats over all targets; over bpb's targets
    per_document = torch.zeros(len(windows.document_tokens), device=device, dtype=torch.float64)
    batches = zip(windows, windows.batch_rows(), data.val_target_bytes, strict=True)
    for (x, y), rows, target_bytes in batches:
        if stop is not None and stop():
            model.train()
            return None, {}
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast:
            logits, _ = model(x, y)
        per_token = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
        sums[0] += per_token.sum()
        sums[1] += nats_and_bytes(per_token, target_bytes.flatten())[0]
        documents = windows.document_of[rows].flatten().to(device)
        per_document.index_add_(0, documents, per_token.double())
    model.train()
    total, bpb_nats = sums.tolist()
    metrics = {
        "val/loss": total / windows.n_tokens,
        "val/bpb": bits_per_byte(bpb_nats, data.info["val_bytes"]),
    }
    documents = {
        name: {"tokens": int(n), "loss": nats / n}
        for name, n, nats in zip(
            data.val_documents, windows.document_tokens, per_document.tolist(), strict=True
        )
        if n
    }
    return metrics, documents
