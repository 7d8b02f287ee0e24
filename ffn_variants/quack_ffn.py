"""ffn.impl=quack: the up-projection and the activation in one GEMM (QuACK's gated GEMM).

quack-kernels (Dao-AILab, the `quack` extra) runs on SM90+ GPUs a GEMM whose epilogue applies
the activation: x @ w_in.T and act(gate) * value (or act(x @ w_in.T) for a dense FFN) come out of
one pass, and its backward computes d_act in the epilogue of dout @ w_out's GEMM. Our packed
`w_in` (gate rows, then value rows) is QuACK's concatenated layout.

What it supports here: the gated SwiGLU, ReGLU and GLU, and the dense ReLU, ReLU^2 and Swish.
(QuACK's GEGLU is the tanh approximation, not the exact GELU that geglu computes.)
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn

# our activation name -> QuACK's, for a gated and for a dense FFN
GATED = {"silu": "swiglu", "relu": "reglu", "sigmoid": "glu"}
DENSE = {"relu": "relu", "relu2": "relu_sq", "silu": "silu"}


def quack_activation(activation: str, gated: bool) -> str | None:
    return (GATED if gated else DENSE).get(activation)


def supported() -> str:
    """The variants ffn.impl=quack runs, for messages."""
    return "swiglu, reglu, glu (gated) and relu, relu2, swish (dense)"


@functools.cache
def _import_error() -> str | None:
    try:
        import quack.linear  # noqa: F401
    except Exception as e:  # ImportError, or the CUTLASS DSL failing to load
        return f"{type(e).__name__}: {e}"
    return None


def unavailable(device: torch.device) -> str | None:
    """Why ffn.impl=quack cannot run on `device` (None where it can), with the fix."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return (
            f"ffn.impl=quack runs on CUDA GPUs of compute capability 9.0 or newer (H100, H200, "
            f"B200), not on {device.type}; use ffn.impl=triton or auto"
        )
    major, minor = torch.cuda.get_device_capability(device)
    if major < 9:
        name = torch.cuda.get_device_name(device)
        return (
            f"ffn.impl=quack needs compute capability 9.0 or newer; {name} is {major}.{minor}; "
            "use ffn.impl=triton or auto"
        )
    error = _import_error()
    if error is not None:
        return f"ffn.impl=quack needs quack-kernels (pip install -e '.[quack]'): {error}"
    return None


# QuACK autotunes each GEMM family at its first call when tuned (18-44 configurations on SM90:
# minutes of compilation). Its untuned configurations compile once, in seconds; what the harness
# runs unless a caller asks for the tuned ones.
TUNED = False


def gated_ffn(
    x: torch.Tensor, w_in: nn.Linear, w_out: nn.Linear, activation: str, tuned: bool = TUNED
) -> torch.Tensor:
    """w_out(act(gate) * value) of the packed w_in, through QuACK's gated GEMM and its dgated."""
    from quack.linear import gated_linear_func, linear_gated_func

    preact, postact = linear_gated_func(
        x,
        w_in.weight,
        activation,
        bias=w_in.bias,
        store_preact=True,
        tuned=tuned,
        concat_layout=True,
    )
    return gated_linear_func(
        preact, w_out.weight, postact, activation, bias=w_out.bias, tuned=tuned
    )


def dense_ffn(
    x: torch.Tensor, w_in: nn.Linear, w_out: nn.Linear, activation: str, tuned: bool = TUNED
) -> torch.Tensor:
    """w_out(act(w_in x)) through QuACK's GEMM with the activation in its epilogue."""
    from quack.linear import act_linear_func, linear_act_func

    preact, postact = linear_act_func(x, w_in.weight, activation, bias=w_in.bias, tuned=tuned)
    return act_linear_func(preact, w_out.weight, postact, activation, bias=w_out.bias, tuned=tuned)
