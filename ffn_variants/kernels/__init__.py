"""Triton-fused gated activations act(gate) * value, forward and backward.

Imports cleanly without Triton (e.g. macOS): triton_available() is then False and the kernel
functions raise RuntimeError. The CPU path of the project is ffn_variants.activations.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from ffn_variants.kernels.names import KERNEL_ACTIVATIONS, check_activation

__all__ = [
    "KERNEL_ACTIVATIONS",
    "gated_activation",
    "gated_activation_packed",
    "kernels_interpreted",
    "triton_available",
]


def _find_triton() -> bool:
    # find_spec rather than try/except ImportError around the import of gated.py: a real bug
    # in gated.py must not be mistaken for "Triton is not installed".
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without __spec__
        return False


HAS_TRITON = _find_triton()

if HAS_TRITON:
    from ffn_variants.kernels.gated import (
        gated_activation,
        gated_activation_packed,
        kernels_interpreted,
    )
else:

    def kernels_interpreted() -> bool:
        return False

    def _no_triton() -> RuntimeError:
        return RuntimeError(
            "Triton is not installed, so the fused kernels are unavailable; "
            "use ffn_variants.activations.gated_torch instead"
        )

    def gated_activation(
        gate: torch.Tensor, value: torch.Tensor, activation: str, inplace_backward: bool = False
    ) -> torch.Tensor:
        """Fused act(gate) * value (unavailable: Triton is not installed)."""
        check_activation(activation)
        raise _no_triton()

    def gated_activation_packed(
        packed: torch.Tensor, activation: str, inplace_backward: bool = False
    ) -> torch.Tensor:
        """Fused act(gate) * value for packed [..., 2F] (unavailable: no Triton)."""
        check_activation(activation)
        raise _no_triton()


def _interpret_env() -> bool:
    # Same truthy spellings Triton's own knob accepts.
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on", "y")


def triton_available(device: torch.device | str | None = None) -> bool:
    """Whether the fused kernels can run on `device` (default: cuda if present, else cpu).

    True when Triton is importable and either the device is CUDA (and CUDA is up) or
    TRITON_INTERPRET=1 is set, in which case the kernels run through the Triton interpreter.
    The interpreter is chosen when this package is first imported, so the variable must be set
    before that; if it was set later this returns False for non-CUDA devices.
    """
    if not HAS_TRITON:
        return False
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return True
    return _interpret_env() and kernels_interpreted()
