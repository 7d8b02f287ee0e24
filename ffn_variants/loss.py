"""The language-model loss from the last hidden states: the LM head and the cross-entropy.

Over GPT-2's 50k vocabulary the logits of a training batch are the largest tensor of the step,
and their float32 copy for the cross-entropy is larger still. Three paths give the same loss:

- ``torch``: torch's own ``F.linear_cross_entropy`` (torch >= 2.13): the head and the loss in one
  op that torch.compile keeps in its graph, with no host sync;
- ``plain``: the logits in float32, then ``F.cross_entropy``: one graph too;
- ``liger``: Liger-Kernel's fused linear cross-entropy (the `kernels` extra), chunk by chunk
  without ever holding the logits: the least memory, but its forward reads a count to the host
  (``.item()``) and its backward compares the incoming gradient on the host, so under
  torch.compile it breaks the graph and syncs twice per micro-batch. An option, not a default.

``auto`` (the default) is ``torch`` on CUDA where the installed torch has it (the memory matters
there), else ``plain``: either way a compiled step without graph breaks or host syncs
(tests/test_compile.py counts them).
"""

from __future__ import annotations

import functools
from enum import StrEnum

import torch
import torch.nn.functional as F


class LossImpl(StrEnum):
    auto = "auto"  # torch on CUDA where the installed torch has it, else plain
    torch = "torch"  # F.linear_cross_entropy (torch >= 2.13)
    plain = "plain"  # the logits in float32, then F.cross_entropy
    liger = "liger"  # Liger's fused linear cross-entropy (its Triton kernels)


@functools.cache
def liger_available() -> bool:
    try:
        import liger_kernel.transformers.fused_linear_cross_entropy  # noqa: F401
    except Exception:
        return False
    return True


def torch_has_linear_cross_entropy() -> bool:
    return hasattr(F, "linear_cross_entropy")


def resolve(impl: LossImpl | str, device: torch.device) -> LossImpl:
    """The path `impl` names on `device` and this installation; ValueError (with the fix) where it
    cannot run."""
    impl = LossImpl(impl)
    if impl == LossImpl.auto:
        fits = device.type == "cuda" and torch_has_linear_cross_entropy()
        return LossImpl.torch if fits else LossImpl.plain
    if impl == LossImpl.liger and not liger_available():
        raise ValueError("model.loss_impl=liger needs liger-kernel: pip install -e '.[kernels]'")
    if impl == LossImpl.torch and not torch_has_linear_cross_entropy():
        raise ValueError(
            f"model.loss_impl=torch needs F.linear_cross_entropy (torch >= 2.13; this is "
            f"{torch.__version__}); use model.loss_impl=plain or auto"
        )
    return impl


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, impl: LossImpl
) -> torch.Tensor:
    """Mean cross-entropy of the logits hidden @ weight.T [..., V] against targets [...], by the
    resolved path `impl`."""
    flat, flat_targets = hidden.reshape(-1, hidden.size(-1)), targets.reshape(-1)
    if impl == LossImpl.liger:
        from liger_kernel.transformers.fused_linear_cross_entropy import (
            LigerFusedLinearCrossEntropyLoss,
        )

        return LigerFusedLinearCrossEntropyLoss()(weight, flat, flat_targets)
    if impl == LossImpl.torch:
        return F.linear_cross_entropy(flat, weight, flat_targets)
    logits = F.linear(hidden, weight)
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), flat_targets)
