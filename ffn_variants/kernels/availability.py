"""Whether the fused Triton kernels are what runs: Triton importable, and CUDA or the interpreter.

No Triton import here, so this module (and everything that asks it) imports everywhere.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch


def _find_triton() -> bool:
    # find_spec rather than try/except ImportError around the import of gated.py: a real bug
    # in gated.py must not be mistaken for "Triton is not installed".
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without __spec__
        return False


HAS_TRITON = _find_triton()


@functools.cache
def kernels_interpreted() -> bool:
    """True if the kernels were built for Triton's interpreter (TRITON_INTERPRET=1 at import).

    Triton picks compiled vs interpreted when `@triton.jit` runs, i.e. when the kernel module is
    first imported; setting the variable later does not change these kernels, so the answer is
    kept.
    """
    if not HAS_TRITON:
        return False
    # gated.py imports triton: loaded only once Triton is known to be there.
    from ffn_variants.kernels import gated

    return gated.built_for_interpreter()


def _interpret_env() -> bool:
    # Same truthy spellings Triton's own knob accepts.
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on", "y")


def triton_available(where: torch.Tensor | torch.device | str | None = None) -> bool:
    """Whether the fused Triton kernels (not the PyTorch fallback) run on `where`: a tensor's
    device, a device, or (None) the default one.

    True when Triton is importable and either the device is CUDA (and CUDA is up) or
    TRITON_INTERPRET=1 was set before the kernels were first imported (the interpreter). The ops
    ask it on every call, so a tensor takes the short way.
    """
    if not HAS_TRITON:
        return False
    if isinstance(where, torch.Tensor):
        return where.is_cuda or (_interpret_env() and kernels_interpreted())
    if where is None:
        where = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(where).type == "cuda":
        return torch.cuda.is_available()
    return _interpret_env() and kernels_interpreted()
