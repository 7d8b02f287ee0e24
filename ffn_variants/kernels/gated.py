"""Fused gated activation out = act(gate) * value in Triton, forward and backward.

One forward and one backward kernel template; the activation is a `tl.constexpr`, so each name
compiles to its own specialised kernel with no runtime branching. Math is fp32 inside (fp64 for
fp64 inputs, which gradcheck uses); loads and stores keep the caller's dtype.

Memory traffic is the minimum an elementwise op allows: forward reads gate and value and
writes out; backward reads gate, value and grad_out and writes d_gate and d_value. act(gate)
is never stored: backward recomputes it from the saved inputs.

Layout: every tensor is seen as [rows, F] with unit column stride and its own row stride, so
the packed [..., 2F] projection output is read in place (gate = columns [0, F), value =
columns [F, 2F) of the same rows) and sliced views cost no copy. Only layouts with no such
2-D view (transposed last dim, non-collapsible leading dims) are made contiguous first.

Vector width: Triton's JIT tells the compiler that an int argument is a multiple of 16 only when
it is; F = 344 (or a row stride of 344) is "a multiple of 1" to it, and every load becomes a
16-bit scalar one. The launcher therefore passes F and the row strides divided by ALIGN, the
largest power of two (up to 16 bytes' worth of elements) that divides them all, and the kernels
multiply back by the constexpr ALIGN: the compiler then knows the divisibility and emits 128-bit
loads and stores wherever the data pointers are 16-byte aligned (the JIT checks that itself).
bench/kernel_ptx.py compiles the kernels for sm_80/sm_90 without a GPU to check it.

This module holds the kernels and their launchers; ffn_variants.kernels.ops wraps them as
PyTorch custom ops with autograd.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

# Tile shape. Each program handles a BLOCK_R x BLOCK_C tile: wide rows are split over several
# column blocks (a 2-D grid keeps many programs in flight for few, wide rows), narrow rows are
# stacked BLOCK_R high (so F = 7 still moves thousands of elements per program).
_TILE_ELEMS = 4096  # elements per program; 8 warps -> 16 per thread, no spills in backward
_MAX_BLOCK_C = 2048
_MIN_BLOCK_C = 64  # 128 bytes of bf16 per row segment: whole cache lines
_MAX_PAD = 1 / 16  # largest fraction of masked-off columns accepted before trying narrower
_VECTOR_BYTES = 16  # 128-bit loads and stores
# FMA contraction, decided here rather than left to Triton's changing default (3.9 warns): the
# math is fp32 with one rounding at the store, so fusing a*b+c only removes an fp32 rounding.
FP_FUSION = True


# ---------------------------------------------------------------------------------------------
# Triton kernels
# ---------------------------------------------------------------------------------------------


@triton.jit
def _normal_cdf(g, ERFC: tl.constexpr):
    """Phi(g). Compiled: 0.5 * erfc(-g / sqrt 2), with no cancellation where Phi(g) is small
    (1 + erf(g / sqrt 2) loses its relative accuracy for g below about -2.5, where the GPU's erf,
    within 2 ulp, would put errors of order 1e-7 * |g| into gelu and its gradient). The interpreter
    has no libdevice: it takes 1 + erf (its erf is Python's, correctly rounded)."""
    if ERFC:
        cdf = 0.5 * libdevice.erfc(g * -0.7071067811865476)
    else:
        cdf = 0.5 * (1.0 + tl.math.erf(g * 0.7071067811865476))
    return cdf


@triton.jit
def _act(g, ACTIVATION: tl.constexpr, ERFC: tl.constexpr):
    """act(g), g already in the compute dtype."""
    if ACTIVATION == "silu":
        a = g * tl.sigmoid(g)
    elif ACTIVATION == "gelu":
        a = g * _normal_cdf(g, ERFC)
    elif ACTIVATION == "gelu_tanh":
        # 0.5 * (1 + tanh(z)) == sigmoid(2z): no tanh needed, and no cancellation in 1 + tanh.
        a = g * tl.sigmoid(1.5957691216057308 * (g + 0.044715 * g * g * g))
    elif ACTIVATION == "relu":
        a = tl.maximum(g, 0.0)
    elif ACTIVATION == "relu2":
        r = tl.maximum(g, 0.0)
        a = r * r
    elif ACTIVATION == "sigmoid":
        a = tl.sigmoid(g)
    else:  # identity; the Python wrappers reject unknown names before launch
        a = g
    return a


@triton.jit
def _act_and_grad(g, ACTIVATION: tl.constexpr, ERFC: tl.constexpr):
    """(act(g), act'(g)), sharing the transcendental work between the two."""
    if ACTIVATION == "silu":
        s = tl.sigmoid(g)
        a = g * s
        da = s * (1.0 + g * (1.0 - s))
    elif ACTIVATION == "gelu":
        cdf = _normal_cdf(g, ERFC)
        a = g * cdf
        da = cdf + g * 0.3989422804014327 * tl.exp(-0.5 * g * g)  # Phi(g) + g * phi(g)
    elif ACTIVATION == "gelu_tanh":
        # a = g * s with s = sigmoid(2z), z = sqrt(2/pi) * (g + 0.044715 g^3);
        # a' = s + g * s * (1 - s) * 2 * dz/dg.
        s = tl.sigmoid(1.5957691216057308 * (g + 0.044715 * g * g * g))
        a = g * s
        da = s + g * s * (1.0 - s) * (1.5957691216057308 * (1.0 + 0.134145 * g * g))
    elif ACTIVATION == "relu":
        a = tl.maximum(g, 0.0)
        da = (g > 0.0).to(g.dtype)
    elif ACTIVATION == "relu2":
        r = tl.maximum(g, 0.0)
        a = r * r
        da = 2.0 * r
    elif ACTIVATION == "sigmoid":
        a = tl.sigmoid(g)
        da = a * (1.0 - a)
    else:  # identity
        a = g
        da = tl.full(g.shape, 1.0, g.dtype)
    return a, da


@triton.jit
def _gated_fwd_kernel(
    g_ptr,
    u_ptr,
    out_ptr,
    n_rows,
    n_cols,
    g_row_stride,
    u_row_stride,
    out_row_stride,
    ACTIVATION: tl.constexpr,
    COMPUTE_DTYPE: tl.constexpr,
    ERFC: tl.constexpr,
    ALIGN: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    # n_cols and the strides arrive divided by ALIGN (see the module docstring). The row index is
    # int64 before it meets a stride: offsets past 2**31 elements must not wrap.
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (rows < n_rows)[:, None] & (cols < n_cols * ALIGN)[None, :]  # ragged last blocks
    rows = rows[:, None]
    cols = cols[None, :]

    g = tl.load(g_ptr + rows * g_row_stride * ALIGN + cols, mask=mask, other=0.0)
    u = tl.load(u_ptr + rows * u_row_stride * ALIGN + cols, mask=mask, other=0.0)
    # One rounding, at the store.
    out = _act(g.to(COMPUTE_DTYPE), ACTIVATION, ERFC) * u.to(COMPUTE_DTYPE)
    out_ptrs = out_ptr + rows * out_row_stride * ALIGN + cols
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _gated_bwd_kernel(
    dout_ptr,
    g_ptr,
    u_ptr,
    dg_ptr,
    du_ptr,
    n_rows,
    n_cols,
    dout_row_stride,
    g_row_stride,
    u_row_stride,
    dg_row_stride,
    du_row_stride,
    ACTIVATION: tl.constexpr,
    COMPUTE_DTYPE: tl.constexpr,
    ERFC: tl.constexpr,
    ALIGN: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (rows < n_rows)[:, None] & (cols < n_cols * ALIGN)[None, :]
    rows = rows[:, None]
    cols = cols[None, :]

    dout = tl.load(dout_ptr + rows * dout_row_stride * ALIGN + cols, mask=mask, other=0.0)
    g = tl.load(g_ptr + rows * g_row_stride * ALIGN + cols, mask=mask, other=0.0)
    u = tl.load(u_ptr + rows * u_row_stride * ALIGN + cols, mask=mask, other=0.0)
    dout, g, u = dout.to(COMPUTE_DTYPE), g.to(COMPUTE_DTYPE), u.to(COMPUTE_DTYPE)

    a, da = _act_and_grad(g, ACTIVATION, ERFC)  # recomputed: forward saved no activation
    dg = dout * u * da
    du = dout * a
    dg_ptrs = dg_ptr + rows * dg_row_stride * ALIGN + cols
    du_ptrs = du_ptr + rows * du_row_stride * ALIGN + cols
    tl.store(dg_ptrs, dg.to(dg_ptr.dtype.element_ty), mask=mask)
    tl.store(du_ptrs, du.to(du_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------------------------
# Launchers
# ---------------------------------------------------------------------------------------------

_COMPUTE_DTYPES = {
    torch.float16: tl.float32,
    torch.bfloat16: tl.float32,
    torch.float32: tl.float32,
    torch.float64: tl.float64,  # keeps gradcheck meaningful
}


def built_for_interpreter() -> bool:
    """True if these kernels were built for the Triton interpreter (TRITON_INTERPRET=1 when this
    module was first imported); ffn_variants.kernels.kernels_interpreted() asks it."""
    return not isinstance(_gated_fwd_kernel, triton.runtime.JITFunction)


@functools.lru_cache(maxsize=4096)
def _tile_config(n_rows: int, n_cols: int) -> tuple[int, int, int]:
    """(BLOCK_R, BLOCK_C, num_warps) for a [n_rows, n_cols] problem.

    BLOCK_C: the widest power of two (<= _MAX_BLOCK_C) whose column padding stays under
    _MAX_PAD, else the least-padded one; e.g. F=688 -> 64 (no masked lanes to speak of) rather
    than 1024 (a third of the lanes masked off).
    """
    widest = min(triton.next_power_of_2(n_cols), _MAX_BLOCK_C)
    narrowest = min(widest, _MIN_BLOCK_C)
    block_c, best_pad = widest, float("inf")
    bc = widest
    while bc >= narrowest:
        pad = triton.cdiv(n_cols, bc) * bc / n_cols - 1.0
        if pad <= _MAX_PAD:
            block_c = bc
            break
        if pad < best_pad:
            block_c, best_pad = bc, pad
        bc //= 2
    block_r = min(max(1, _TILE_ELEMS // block_c), triton.next_power_of_2(n_rows))
    num_warps = max(1, min(8, block_r * block_c // 512))
    return block_r, block_c, num_warps


def rows_view(x: torch.Tensor, n_cols: int) -> tuple[torch.Tensor, bool]:
    """x as [rows, n_cols] with unit column stride, and whether that took a copy.

    A view when one exists; layouts with none (transposed last dim, leading dims that do not
    collapse into one row stride) are copied.
    """
    if x.stride(-1) != 1 and x.shape[-1] > 1:
        x = x.contiguous()  # the kernels assume unit column stride (vectorised loads)
        copied = True
    else:
        copied = False
    n_rows = math.prod(x.shape[:-1])  # explicit, so F = 0 stays well defined
    try:
        return x.view(n_rows, n_cols), copied
    except RuntimeError:  # leading dims do not collapse into one row stride
        return x.reshape(n_rows, n_cols), True


@functools.lru_cache(maxsize=4096)
def _static_config(
    n_rows: int, n_cols: int, strides: tuple[int, ...], dtype: torch.dtype, activation: str
) -> tuple[tuple[int, int], tuple[int, ...], dict[str, Any]]:
    """The launch's grid, integer arguments and keywords: a function of the shape, the row
    strides, the dtype and the activation, so worked out once per combination (not per call)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    align = _VECTOR_BYTES // itemsize
    while align > 1 and any(v % align for v in (n_cols, *strides)):
        align //= 2
    block_r, block_c, num_warps = _tile_config(n_rows, n_cols)
    grid = (triton.cdiv(n_rows, block_r), triton.cdiv(n_cols, block_c))
    scalars = (n_rows, n_cols // align, *(s // align for s in strides))
    kwargs = dict(
        ACTIVATION=activation,
        COMPUTE_DTYPE=_COMPUTE_DTYPES[dtype],
        ERFC=not built_for_interpreter(),
        ALIGN=align,
        BLOCK_R=block_r,
        BLOCK_C=block_c,
        num_warps=num_warps,
        enable_fp_fusion=FP_FUSION,
    )
    return grid, scalars, kwargs


def launch_config(
    kernel: Any, tensors: tuple[torch.Tensor, ...], activation: str
) -> tuple[tuple[int, int], tuple, dict[str, Any]]:
    """(grid, args, kwargs) of `kernel` over same-shape [rows, F] tensors: the kernel takes their
    pointers, the shape, then their row strides (forward: g, u, out; backward: dout, g, u, dg, du).

    Also what bench/kernel_ptx.py compiles ahead of time: the exact launch a GPU would see.
    """
    n_rows, n_cols = tensors[0].shape
    strides = tuple(t.stride(0) for t in tensors)
    grid, scalars, kwargs = _static_config(n_rows, n_cols, strides, tensors[0].dtype, activation)
    return grid, (*tensors, *scalars), dict(kwargs)


def _launch(kernel: Any, tensors: tuple[torch.Tensor, ...], activation: str) -> None:
    first = tensors[0]
    if first.numel() == 0:
        return
    grid, args, kwargs = launch_config(kernel, tensors, activation)
    if built_for_interpreter():
        kwargs.pop("enable_fp_fusion")  # a compiler option: the interpreter has no compiler
    # Triton launches on the current CUDA device: switch only when the tensors are elsewhere.
    if first.is_cuda and first.device.index != torch.cuda.current_device():
        with torch.cuda.device(first.device):
            kernel[grid](*args, **kwargs)
    else:
        kernel[grid](*args, **kwargs)


def launch_forward(g: torch.Tensor, u: torch.Tensor, out: torch.Tensor, activation: str) -> None:
    """out = act(g) * u over [rows, F] views (unit column stride, any row strides)."""
    _launch(_gated_fwd_kernel, (g, u, out), activation)


def launch_backward(
    dout: torch.Tensor,
    g: torch.Tensor,
    u: torch.Tensor,
    dg: torch.Tensor,
    du: torch.Tensor,
    activation: str,
) -> None:
    """dg, du of act(g) * u given dout; dg/du may be g/u themselves (each element is read
    before it is written, by the same thread)."""
    _launch(_gated_bwd_kernel, (dout, g, u, dg, du), activation)
