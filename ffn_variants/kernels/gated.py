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
"""

from __future__ import annotations

import contextlib
import math

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from ffn_variants.kernels.names import check_activation

# Tile shape. Each program handles a BLOCK_R x BLOCK_C tile: wide rows are split over several
# column blocks (a 2-D grid keeps many programs in flight for few, wide rows), narrow rows are
# stacked BLOCK_R high (so F = 7 still moves thousands of elements per program).
_TILE_ELEMS = 4096  # elements per program; 8 warps -> 16 per thread, no spills in backward
_MAX_BLOCK_C = 2048
_MIN_BLOCK_C = 64  # 128 bytes of bf16 per row segment: whole cache lines
_MAX_PAD = 1 / 16  # largest fraction of masked-off columns accepted before trying narrower


# ---------------------------------------------------------------------------------------------
# Triton kernels
# ---------------------------------------------------------------------------------------------


@triton.jit
def _act(g, ACTIVATION: tl.constexpr):
    """act(g), g already in the compute dtype."""
    if ACTIVATION == "silu":
        a = g * tl.sigmoid(g)
    elif ACTIVATION == "gelu":
        a = 0.5 * g * (1.0 + tl.math.erf(g * 0.7071067811865476))  # g * Phi(g)
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
def _act_and_grad(g, ACTIVATION: tl.constexpr):
    """(act(g), act'(g)), sharing the transcendental work between the two."""
    if ACTIVATION == "silu":
        s = tl.sigmoid(g)
        a = g * s
        da = s * (1.0 + g * (1.0 - s))
    elif ACTIVATION == "gelu":
        cdf = 0.5 * (1.0 + tl.math.erf(g * 0.7071067811865476))
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
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    # Row index in int64 before it meets a stride: offsets past 2**31 elements must not wrap.
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]  # ragged last block, both axes
    rows = rows[:, None]
    cols = cols[None, :]

    g = tl.load(g_ptr + rows * g_row_stride + cols, mask=mask, other=0.0).to(COMPUTE_DTYPE)
    u = tl.load(u_ptr + rows * u_row_stride + cols, mask=mask, other=0.0).to(COMPUTE_DTYPE)
    out = _act(g, ACTIVATION) * u  # one rounding, at the store
    tl.store(out_ptr + rows * out_row_stride + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


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
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    rows = rows[:, None]
    cols = cols[None, :]

    dout = tl.load(dout_ptr + rows * dout_row_stride + cols, mask=mask, other=0.0)
    dout = dout.to(COMPUTE_DTYPE)
    g = tl.load(g_ptr + rows * g_row_stride + cols, mask=mask, other=0.0).to(COMPUTE_DTYPE)
    u = tl.load(u_ptr + rows * u_row_stride + cols, mask=mask, other=0.0).to(COMPUTE_DTYPE)

    a, da = _act_and_grad(g, ACTIVATION)  # recomputed: forward saved no activation
    dg = dout * u * da
    du = dout * a
    tl.store(dg_ptr + rows * dg_row_stride + cols, dg.to(dg_ptr.dtype.element_ty), mask=mask)
    tl.store(du_ptr + rows * du_row_stride + cols, du.to(du_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------------------------
# Launchers
# ---------------------------------------------------------------------------------------------

_COMPUTE_DTYPES = {
    torch.float16: tl.float32,
    torch.bfloat16: tl.float32,
    torch.float32: tl.float32,
    torch.float64: tl.float64,  # keeps gradcheck meaningful
}


def kernels_interpreted() -> bool:
    """True if the kernels were built for the Triton interpreter (TRITON_INTERPRET=1 at import).

    Triton picks compiled vs interpreted when `@triton.jit` runs, i.e. when this module is first
    imported; setting the variable later does not change these kernels.
    """
    return not isinstance(_gated_fwd_kernel, triton.runtime.JITFunction)


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


def _rows_view(x: torch.Tensor, n_cols: int) -> torch.Tensor:
    """x as [rows, n_cols] with unit column stride: a view when one exists, else a copy."""
    if x.stride(-1) != 1 and x.shape[-1] > 1:
        x = x.contiguous()  # the kernels assume unit column stride (vectorised loads)
    n_rows = math.prod(x.shape[:-1])  # explicit, so F = 0 stays well defined
    try:
        return x.view(n_rows, n_cols)
    except RuntimeError:  # leading dims do not collapse into one row stride
        return x.reshape(n_rows, n_cols)


def _device_guard(x: torch.Tensor) -> contextlib.AbstractContextManager:
    # Triton launches on the current CUDA device; make it the tensors' device.
    return torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()


def _check_inputs(*tensors: torch.Tensor) -> None:
    first = tensors[0]
    if first.dim() == 0:
        raise ValueError("gated activation needs at least one dimension (the feature dim)")
    if first.dtype not in _COMPUTE_DTYPES:
        raise TypeError(
            f"fused gated activation supports float16, bfloat16, float32, float64; "
            f"got {first.dtype}"
        )
    for t in tensors[1:]:
        if t.shape != first.shape or t.dtype != first.dtype or t.device != first.device:
            raise ValueError(
                "gate and value must have the same shape, dtype and device; got "
                f"{tuple(first.shape)} {first.dtype} {first.device} and "
                f"{tuple(t.shape)} {t.dtype} {t.device}"
            )
    if first.device.type != "cuda" and not kernels_interpreted():
        raise RuntimeError(
            f"the fused Triton kernels need CUDA tensors (got {first.device}); to run them on "
            "CPU set TRITON_INTERPRET=1 before importing ffn_variants.kernels, or use "
            "ffn_variants.activations.gated_torch"
        )


def _launch(kernel, tensors: tuple[torch.Tensor, ...], activation: str) -> None:
    """Run `kernel` over same-shape [rows, F] tensors: it takes their pointers, the shape, then
    their row strides, in that order (forward: g, u, out; backward: dout, g, u, dg, du)."""
    n_rows, n_cols = tensors[0].shape
    if n_rows * n_cols == 0:
        return
    block_r, block_c, num_warps = _tile_config(n_rows, n_cols)
    grid = (triton.cdiv(n_rows, block_r), triton.cdiv(n_cols, block_c))
    with _device_guard(tensors[0]):
        kernel[grid](
            *tensors,
            n_rows,
            n_cols,
            *(t.stride(0) for t in tensors),
            ACTIVATION=activation,
            COMPUTE_DTYPE=_COMPUTE_DTYPES[tensors[0].dtype],
            BLOCK_R=block_r,
            BLOCK_C=block_c,
            num_warps=num_warps,
        )


def _launch_fwd(g: torch.Tensor, u: torch.Tensor, out: torch.Tensor, activation: str) -> None:
    _launch(_gated_fwd_kernel, (g, u, out), activation)


def _launch_bwd(
    dout: torch.Tensor,
    g: torch.Tensor,
    u: torch.Tensor,
    dg: torch.Tensor,
    du: torch.Tensor,
    activation: str,
) -> None:
    # grad_out has the output's dtype, which is the inputs': one compute dtype for all.
    _launch(_gated_bwd_kernel, (dout, g, u, dg, du), activation)


# ---------------------------------------------------------------------------------------------
# Autograd
# ---------------------------------------------------------------------------------------------
# By default gradients go into fresh tensors. With inplace_backward=True they overwrite the saved
# gate/value (as Liger's swiglu does), which saves one [rows, 2F] allocation at the backward peak.
# That is safe only when nothing else reads those inputs after the forward: true for the output
# of the FFN's own up-projection (a Linear saves its input, not its output), false for a leaf or a
# tensor with a second consumer. Triton's writes bypass the version counter, so autograd could not
# catch a clobbered input; a second backward through the same graph (retain_graph) is refused.


def _gradient_buffers(ctx, *saved: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The buffers the backward writes into: the saved inputs themselves, or fresh ones."""
    if not ctx.inplace_backward:
        return tuple(torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in saved)
    if ctx.consumed:
        raise RuntimeError(
            "the fused gated activation ran its backward in place and its saved inputs now hold "
            "gradients, so it cannot run a second backward (retain_graph); call it with "
            "inplace_backward=False"
        )
    ctx.consumed = True
    return saved


class GatedActivationFunction(torch.autograd.Function):
    """act(gate) * value for two [..., F] tensors."""

    @staticmethod
    def forward(
        ctx, gate: torch.Tensor, value: torch.Tensor, activation: str, inplace_backward: bool
    ) -> torch.Tensor:
        n_cols = gate.shape[-1]
        g2, u2 = _rows_view(gate, n_cols), _rows_view(value, n_cols)
        out = torch.empty(g2.shape, dtype=gate.dtype, device=gate.device)
        _launch_fwd(g2, u2, out, activation)
        ctx.save_for_backward(g2, u2)  # the inputs (views of them); act(gate) is recomputed
        ctx.activation = activation
        ctx.shape = gate.shape
        ctx.inplace_backward, ctx.consumed = inplace_backward, False
        return out.view(gate.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        g2, u2 = ctx.saved_tensors
        dout = _rows_view(grad_out, g2.shape[1])
        dg, du = _gradient_buffers(ctx, g2, u2)
        _launch_bwd(dout, g2, u2, dg, du, ctx.activation)
        return dg.view(ctx.shape), du.view(ctx.shape), None, None


class GatedActivationPackedFunction(torch.autograd.Function):
    """act(gate) * value for one packed [..., 2F] tensor: gate first half, value second."""

    @staticmethod
    def forward(ctx, packed: torch.Tensor, activation: str, inplace_backward: bool) -> torch.Tensor:
        n_cols = packed.shape[-1] // 2
        p2 = _rows_view(packed, 2 * n_cols)
        out = torch.empty((p2.shape[0], n_cols), dtype=packed.dtype, device=packed.device)
        # Both halves are strided views into the same rows: no chunk/contiguous copy.
        _launch_fwd(p2[:, :n_cols], p2[:, n_cols:], out, activation)
        ctx.save_for_backward(p2)
        ctx.activation = activation
        ctx.shape = packed.shape
        ctx.inplace_backward, ctx.consumed = inplace_backward, False
        return out.view(*packed.shape[:-1], n_cols)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (p2,) = ctx.saved_tensors
        n_cols = p2.shape[1] // 2
        dout = _rows_view(grad_out, n_cols)
        (dp,) = _gradient_buffers(ctx, p2)
        # d_gate into the first half of d_packed, d_value into the second: no torch.cat.
        _launch_bwd(
            dout, p2[:, :n_cols], p2[:, n_cols:], dp[:, :n_cols], dp[:, n_cols:], ctx.activation
        )
        return dp.view(ctx.shape), None, None


# ---------------------------------------------------------------------------------------------
# Functional API
# ---------------------------------------------------------------------------------------------


def gated_activation(
    gate: torch.Tensor, value: torch.Tensor, activation: str, inplace_backward: bool = False
) -> torch.Tensor:
    """Fused act(gate) * value; gate and value are [..., F] of one dtype; autograd-capable.

    inplace_backward=True writes the gradients over gate and value: only for inputs that nothing
    else reads after this call (see the note above GatedActivationFunction).
    """
    check_activation(activation)
    _check_inputs(gate, value)
    return GatedActivationFunction.apply(gate, value, activation, inplace_backward)


def gated_activation_packed(
    packed: torch.Tensor, activation: str, inplace_backward: bool = False
) -> torch.Tensor:
    """Fused act(gate) * value for packed [..., 2F] (gate = [..., :F]); returns [..., F].

    inplace_backward=True writes d_packed over packed: only for a packed projection that nothing
    else reads after this call, such as the FFN's own up-projection output.
    """
    check_activation(activation)
    _check_inputs(packed)
    if packed.shape[-1] % 2:
        raise ValueError(f"packed input needs an even last dim (2F); got {packed.shape[-1]}")
    return GatedActivationPackedFunction.apply(packed, activation, inplace_backward)
