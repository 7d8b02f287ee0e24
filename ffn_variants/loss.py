"""The language-model loss from the last hidden states: the LM head and the cross-entropy.

Over GPT-2's 50k vocabulary the logits of a training batch are the largest tensor of the step,
and their float32 copy for the cross-entropy is larger still. Liger-Kernel's fused linear
cross-entropy computes the loss (and, in its backward, the gradients) chunk by chunk without
ever holding them: the path on CUDA where liger-kernel is installed (the `kernels` extra). The
plain path (the head, float32 logits, F.cross_entropy) everywhere else; both give the same loss.
"""

from __future__ import annotations

import functools
from enum import StrEnum

import torch
import torch.nn.functional as F


class LossImpl(StrEnum):
    auto = "auto"  # fused on CUDA where liger-kernel is installed, else plain
    fused = "fused"  # Liger's fused linear cross-entropy (its Triton kernels)
    plain = "plain"  # the logits in float32, then F.cross_entropy


@functools.cache
def liger_available() -> bool:
    try:
        import liger_kernel.transformers.fused_linear_cross_entropy  # noqa: F401
    except Exception:
        return False
    return True


def use_fused(impl: LossImpl | str, device: torch.device) -> bool:
    impl = LossImpl(impl)
    if impl == LossImpl.fused and not liger_available():
        raise ValueError("model.loss_impl=fused needs liger-kernel: pip install -e '.[kernels]'")
    return impl == LossImpl.fused or (
        impl == LossImpl.auto and device.type == "cuda" and liger_available()
    )


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, fused: bool
) -> torch.Tensor:
    """Mean cross-entropy of the logits hidden @ weight.T [..., V] against targets [...]."""
    if fused:
        from liger_kernel.transformers.fused_linear_cross_entropy import (
            LigerFusedLinearCrossEntropyLoss,
        )

        flat = hidden.reshape(-1, hidden.size(-1))
        return LigerFusedLinearCrossEntropyLoss()(weight, flat, targets.reshape(-1))
    logits = F.linear(hidden, weight)
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
