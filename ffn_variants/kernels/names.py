"""Activation names the fused kernels implement; no Triton needed, so it imports everywhere."""

from __future__ import annotations

# Same names as ffn_variants.activations.ACTIVATIONS; each one is a branch of the kernels'
# compile-time `ACTIVATION` switch (see gated.py).
KERNEL_ACTIVATIONS: tuple[str, ...] = (
    "silu",  # SwiGLU
    "gelu",  # GeGLU, exact (erf)
    "gelu_tanh",  # GeGLU, tanh approximation
    "relu",  # ReGLU
    "sigmoid",  # GLU
    "identity",  # Bilinear
    "relu2",  # squared ReLU
)


def check_activation(name: str) -> str:
    """`name` if the kernels implement it; otherwise a ValueError listing the ones they do."""
    if name not in KERNEL_ACTIVATIONS:
        known = ", ".join(sorted(KERNEL_ACTIVATIONS))
        raise ValueError(f"unknown activation '{name}' for the fused kernels; known: {known}")
    return name
