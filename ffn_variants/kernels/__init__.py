"""Fused gated activations act(gate) * value: Triton kernels as PyTorch custom ops.

    from ffn_variants.kernels import gated_activation, gated_activation_packed

The ops run the Triton kernels on CUDA (and on a CPU under TRITON_INTERPRET=1) and the same
function in PyTorch elsewhere, so they import and run without Triton too (e.g. macOS);
triton_available() says whether the fused kernels are what runs.
"""

from __future__ import annotations

from ffn_variants.kernels.availability import HAS_TRITON, kernels_interpreted, triton_available
from ffn_variants.kernels.names import KERNEL_ACTIVATIONS, check_activation
from ffn_variants.kernels.ops import gated_activation, gated_activation_packed

__all__ = [
    "HAS_TRITON",
    "KERNEL_ACTIVATIONS",
    "check_activation",
    "gated_activation",
    "gated_activation_packed",
    "kernels_interpreted",
    "triton_available",
]
