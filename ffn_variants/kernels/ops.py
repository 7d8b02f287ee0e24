"""act(gate) * value as PyTorch custom ops: the fused Triton kernels where they run, PyTorch
elsewhere, one autograd formula for both, and fake (shape-only) versions for torch.compile.

    ffn_variants::gated_activation(gate, value, activation, inplace_backward) -> out
    ffn_variants::gated_activation_packed(packed, activation, inplace_backward) -> out

Being custom ops (torch.library.custom_op), they are one node each in a torch.compile graph:
fullgraph compiles of a model that uses them trace with no graph break, and the compiled graph
calls the kernels. On CUDA they launch the Triton kernels; on a CPU they launch them too under
Triton's interpreter (TRITON_INTERPRET=1 before the first import), and otherwise compute the same
function in PyTorch (fp32 math, one rounding), so `ffn.impl=triton` runs anywhere.

The backward recomputes act(gate) from the saved inputs. With inplace_backward=True it writes
the gradients over those inputs (as Liger-Kernel does) and allocates no [tokens, 2F] buffer: only
for inputs nothing else reads after the call, such as the FFN's own up-projection output (a Linear
saves its input, not its output). The in-place backward op declares its write (mutates_args), so
autograd's version counter refuses a second backward through the same graph (retain_graph)
instead of returning wrong numbers.
Under torch.compile the backward runs out of place: AOTAutograd would turn a write into a saved
tensor into a copy and a copy-back, which costs more than it saves, while the compiler's own
buffer planning frees the saved projection output right after its last use.
"""

from __future__ import annotations

import torch

from ffn_variants.activations import gated_torch, gated_torch_backward
from ffn_variants.kernels.availability import HAS_TRITON, triton_available
from ffn_variants.kernels.names import check_activation

if HAS_TRITON:  # the launchers import triton: only where it is installed
    from ffn_variants.kernels.gated import launch_backward, launch_forward, rows_view

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ---------------------------------------------------------------------------------------------
# Where the kernels run
# ---------------------------------------------------------------------------------------------


def _forward(
    gate: torch.Tensor, value: torch.Tensor, out: torch.Tensor, activation: str, fused: bool
) -> None:
    """out[...] = act(gate) * value; all three [rows, F] with unit column stride."""
    if fused:
        launch_forward(gate, value, out, activation)
    else:
        compute = torch.promote_types(gate.dtype, torch.float32)
        out.copy_(gated_torch(gate.to(compute), value.to(compute), activation))


def _backward(
    dout: torch.Tensor,
    gate: torch.Tensor,
    value: torch.Tensor,
    d_gate: torch.Tensor,
    d_value: torch.Tensor,
    activation: str,
    fused: bool,
) -> None:
    """d_gate, d_value of act(gate) * value given dout; they may be gate and value themselves."""
    if fused:
        launch_backward(dout, gate, value, d_gate, d_value, activation)
    else:
        dg, du = gated_torch_backward(dout, gate, value, activation)
        d_gate.copy_(dg)
        d_value.copy_(du)


def _rows(x: torch.Tensor, n_cols: int, fused: bool) -> tuple[torch.Tensor, bool]:
    """x as [rows, n_cols] for _forward/_backward, and whether that took a copy."""
    if fused:
        return rows_view(x, n_cols)
    x2 = x.reshape(-1, n_cols)  # PyTorch takes any layout; a view where one exists
    return x2, bool(x.numel()) and x2.data_ptr() != x.data_ptr()


def _check(*tensors: torch.Tensor) -> None:
    first = tensors[0]
    if first.dim() == 0:
        raise ValueError("gated activation needs at least one dimension (the feature dim)")
    if first.dtype not in DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in DTYPES)
        raise TypeError(f"fused gated activation supports {names}; got {first.dtype}")
    for t in tensors[1:]:
        if t.shape != first.shape or t.dtype != first.dtype or t.device != first.device:
            raise ValueError(
                "gate and value must have the same shape, dtype and device; got "
                f"{tuple(first.shape)} {first.dtype} {first.device} and "
                f"{tuple(t.shape)} {t.dtype} {t.device}"
            )


# ---------------------------------------------------------------------------------------------
# Two tensors: gate [..., F], value [..., F]
# ---------------------------------------------------------------------------------------------


def pair_forward(gate: torch.Tensor, value: torch.Tensor, activation: str) -> torch.Tensor:
    n_cols, fused = gate.shape[-1], triton_available(gate)
    out = torch.empty(gate.shape, dtype=gate.dtype, device=gate.device)
    g, u = _rows(gate, n_cols, fused)[0], _rows(value, n_cols, fused)[0]
    _forward(g, u, out.view(-1, n_cols), activation, fused)
    return out


@torch.library.custom_op("ffn_variants::gated_activation", mutates_args=())
def gated_activation_op(
    gate: torch.Tensor, value: torch.Tensor, activation: str, inplace_backward: bool
) -> torch.Tensor:
    return pair_forward(gate, value, activation)


@gated_activation_op.register_fake
def _(gate: torch.Tensor, value: torch.Tensor, activation: str, inplace_backward: bool):
    return torch.empty_like(gate, memory_format=torch.contiguous_format)


def pair_backward(
    grad_out: torch.Tensor, gate: torch.Tensor, value: torch.Tensor, activation: str
) -> tuple[torch.Tensor, torch.Tensor]:
    n_cols, fused = gate.shape[-1], triton_available(gate)
    d_gate = torch.empty(gate.shape, dtype=gate.dtype, device=gate.device)
    d_value = torch.empty_like(d_gate)
    g, u = _rows(gate, n_cols, fused)[0], _rows(value, n_cols, fused)[0]
    dout = _rows(grad_out, n_cols, fused)[0]
    _backward(dout, g, u, d_gate.view(-1, n_cols), d_value.view(-1, n_cols), activation, fused)
    return d_gate, d_value


@torch.library.custom_op("ffn_variants::gated_activation_backward", mutates_args=())
def gated_activation_backward_op(
    grad_out: torch.Tensor, gate: torch.Tensor, value: torch.Tensor, activation: str
) -> tuple[torch.Tensor, torch.Tensor]:
    return pair_backward(grad_out, gate, value, activation)


@gated_activation_backward_op.register_fake
def _(grad_out: torch.Tensor, gate: torch.Tensor, value: torch.Tensor, activation: str):
    d_gate = torch.empty_like(gate, memory_format=torch.contiguous_format)
    return d_gate, torch.empty_like(d_gate)


def pair_backward_inplace(
    grad_out: torch.Tensor, gate: torch.Tensor, value: torch.Tensor, activation: str
) -> None:
    """The backward, writing d_gate over gate and d_value over value."""
    n_cols, fused = gate.shape[-1], triton_available(gate)
    (g, g_copied), (u, u_copied) = _rows(gate, n_cols, fused), _rows(value, n_cols, fused)
    _backward(_rows(grad_out, n_cols, fused)[0], g, u, g, u, activation, fused)
    if g_copied:  # the kernels worked on a copy: put the result where it belongs
        gate.copy_(g.view(gate.shape))
    if u_copied:
        value.copy_(u.view(value.shape))


@torch.library.custom_op("ffn_variants::gated_activation_backward_", mutates_args=("gate", "value"))
def gated_activation_backward_inplace_op(
    grad_out: torch.Tensor, gate: torch.Tensor, value: torch.Tensor, activation: str
) -> None:
    pair_backward_inplace(grad_out, gate, value, activation)


def _pair_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    gate, value, activation, inplace_backward = inputs
    ctx.save_for_backward(gate, value)
    ctx.activation = activation
    ctx.inplace = inplace_backward


def _pair_backward(ctx, grad_out: torch.Tensor):
    gate, value = ctx.saved_tensors
    if not ctx.inplace:
        d_gate, d_value = gated_activation_backward_op(grad_out, gate, value, ctx.activation)
        return d_gate, d_value, None, None
    gated_activation_backward_inplace_op(grad_out, gate, value, ctx.activation)
    return gate, value, None, None


gated_activation_op.register_autograd(_pair_backward, setup_context=_pair_setup)


# ---------------------------------------------------------------------------------------------
# One packed tensor: [..., 2F], gate in the first half, value in the second
# ---------------------------------------------------------------------------------------------


def packed_forward(packed: torch.Tensor, activation: str) -> torch.Tensor:
    n_cols, fused = packed.shape[-1] // 2, triton_available(packed)
    p2, _ = _rows(packed, 2 * n_cols, fused)
    out = torch.empty((*packed.shape[:-1], n_cols), dtype=packed.dtype, device=packed.device)
    # Both halves are strided views into the same rows: no chunk/contiguous copy.
    _forward(p2[:, :n_cols], p2[:, n_cols:], out.view(-1, n_cols), activation, fused)
    return out


@torch.library.custom_op("ffn_variants::gated_activation_packed", mutates_args=())
def gated_activation_packed_op(
    packed: torch.Tensor, activation: str, inplace_backward: bool
) -> torch.Tensor:
    return packed_forward(packed, activation)


@gated_activation_packed_op.register_fake
def _(packed: torch.Tensor, activation: str, inplace_backward: bool):
    return packed.new_empty((*packed.shape[:-1], packed.shape[-1] // 2))


def packed_backward(grad_out: torch.Tensor, packed: torch.Tensor, activation: str) -> torch.Tensor:
    n_cols, fused = packed.shape[-1] // 2, triton_available(packed)
    p2, _ = _rows(packed, 2 * n_cols, fused)
    d_packed = torch.empty(packed.shape, dtype=packed.dtype, device=packed.device)
    dp = d_packed.view(-1, 2 * n_cols)
    dout = _rows(grad_out, n_cols, fused)[0]
    # d_gate into the first half of d_packed, d_value into the second: no torch.cat.
    g, u = p2[:, :n_cols], p2[:, n_cols:]
    _backward(dout, g, u, dp[:, :n_cols], dp[:, n_cols:], activation, fused)
    return d_packed


@torch.library.custom_op("ffn_variants::gated_activation_packed_backward", mutates_args=())
def gated_activation_packed_backward_op(
    grad_out: torch.Tensor, packed: torch.Tensor, activation: str
) -> torch.Tensor:
    return packed_backward(grad_out, packed, activation)


@gated_activation_packed_backward_op.register_fake
def _(grad_out: torch.Tensor, packed: torch.Tensor, activation: str):
    return torch.empty_like(packed, memory_format=torch.contiguous_format)


def packed_backward_inplace(grad_out: torch.Tensor, packed: torch.Tensor, activation: str) -> None:
    """The backward, writing d_packed over packed."""
    n_cols, fused = packed.shape[-1] // 2, triton_available(packed)
    p2, copied = _rows(packed, 2 * n_cols, fused)
    dout = _rows(grad_out, n_cols, fused)[0]
    g, u = p2[:, :n_cols], p2[:, n_cols:]
    _backward(dout, g, u, g, u, activation, fused)
    if copied:
        packed.copy_(p2.view(packed.shape))


@torch.library.custom_op(
    "ffn_variants::gated_activation_packed_backward_", mutates_args=("packed",)
)
def gated_activation_packed_backward_inplace_op(
    grad_out: torch.Tensor, packed: torch.Tensor, activation: str
) -> None:
    packed_backward_inplace(grad_out, packed, activation)


def _packed_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:
    packed, activation, inplace_backward = inputs
    ctx.save_for_backward(packed)
    ctx.activation = activation
    ctx.inplace = inplace_backward


def _packed_backward(ctx, grad_out: torch.Tensor):
    (packed,) = ctx.saved_tensors
    if not ctx.inplace:
        return gated_activation_packed_backward_op(grad_out, packed, ctx.activation), None, None
    gated_activation_packed_backward_inplace_op(grad_out, packed, ctx.activation)
    return packed, None, None


gated_activation_packed_op.register_autograd(_packed_backward, setup_context=_packed_setup)


# ---------------------------------------------------------------------------------------------
# Eager: plain autograd.Functions around the same launchers
# ---------------------------------------------------------------------------------------------
# A custom op costs its dispatch and register_autograd's wrapping on every call (tens of us on
# the host); in eager mode nothing needs it, so eager calls go through an autograd.Function that
# calls the launchers directly, or, where the kernels do not run, through PyTorch's own ops and
# autograd. torch.compile traces the custom ops above instead: one opaque node each, no graph
# break.


def _in_float32(gate: torch.Tensor, value: torch.Tensor, activation: str) -> torch.Tensor:
    """act(gate) * value in PyTorch with autograd, in float32 at least and rounded once, as the
    kernels compute it."""
    if gate.dtype in (torch.float32, torch.float64):
        return gated_torch(gate, value, activation)
    return gated_torch(gate.float(), value.float(), activation).to(gate.dtype)


class _EagerPair(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, value, activation: str, inplace: bool):
        ctx.save_for_backward(gate, value)
        ctx.activation, ctx.inplace = activation, inplace
        return pair_forward(gate, value, activation)

    @staticmethod
    def backward(ctx, grad_out):
        gate, value = ctx.saved_tensors
        if ctx.inplace:
            pair_backward_inplace(grad_out, gate, value, ctx.activation)
            # A kernel's writes bump no version counter: say it, so a second backward through
            # this graph (retain_graph) is refused instead of reading the gradients as inputs.
            torch.autograd.graph.increment_version((gate, value))
            return gate, value, None, None
        d_gate, d_value = pair_backward(grad_out, gate, value, ctx.activation)
        return d_gate, d_value, None, None


class _EagerPacked(torch.autograd.Function):
    @staticmethod
    def forward(ctx, packed, activation: str, inplace: bool):
        ctx.save_for_backward(packed)
        ctx.activation, ctx.inplace = activation, inplace
        return packed_forward(packed, activation)

    @staticmethod
    def backward(ctx, grad_out):
        (packed,) = ctx.saved_tensors
        if ctx.inplace:
            packed_backward_inplace(grad_out, packed, ctx.activation)
            torch.autograd.graph.increment_version(packed)  # as in _EagerPair.backward
            return packed, None, None
        return packed_backward(grad_out, packed, ctx.activation), None, None


# ---------------------------------------------------------------------------------------------
# Functional API
# ---------------------------------------------------------------------------------------------


def gated_activation(
    gate: torch.Tensor, value: torch.Tensor, activation: str, inplace_backward: bool = False
) -> torch.Tensor:
    """Fused act(gate) * value; gate and value are [..., F] of one dtype; autograd-capable.

    inplace_backward=True writes the gradients over gate and value: only for inputs that nothing
    else reads after this call (see the module docstring). Eager calls take the autograd.Function;
    under torch.compile the custom op (out-of-place backward).
    """
    check_activation(activation)
    _check(gate, value)
    if torch.compiler.is_compiling():
        return gated_activation_op(gate, value, activation, False)
    if not triton_available(gate):  # PyTorch: own ops, eager cost
        return _in_float32(gate, value, activation)
    return _EagerPair.apply(gate, value, activation, inplace_backward)


def gated_activation_packed(
    packed: torch.Tensor, activation: str, inplace_backward: bool = False
) -> torch.Tensor:
    """Fused act(gate) * value for packed [..., 2F] (gate = [..., :F]); returns [..., F].

    inplace_backward=True writes d_packed over packed: only for a packed projection that nothing
    else reads after this call, such as the FFN's own up-projection output.
    """
    check_activation(activation)
    _check(packed)
    if packed.shape[-1] % 2:
        raise ValueError(f"packed input needs an even last dim (2F); got {packed.shape[-1]}")
    if torch.compiler.is_compiling():
        return gated_activation_packed_op(packed, activation, False)
    if not triton_available(packed):  # PyTorch: own ops, eager cost
        gate, value = packed.chunk(2, dim=-1)
        return _in_float32(gate, value, activation)
    return _EagerPacked.apply(packed, activation, inplace_backward)
