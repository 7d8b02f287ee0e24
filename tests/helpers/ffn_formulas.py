"""The closed formulas for the built-in FFNs' parameters and FLOPs: the oracle that the counts of
ffn_variants.counting must equal (the package itself sizes by counting, never by these)."""

from __future__ import annotations

from ffn_variants.variants import VARIANTS, GatedFFN

# Forward FLOPs per hidden unit of each activation (compare, exp, divide... one each).
ACTIVATION_FLOPS = {
    "relu": 1,
    "relu2": 2,  # relu, square
    "gelu": 8,
    "gelu_tanh": 8,
    "silu": 4,
    "sigmoid": 4,
    "identity": 0,
    "swish_beta": 6,  # beta * g, sigmoid (4), times g
    "leaky_relu2": 3,  # compare, scale, square
    # torch.where computes both halves: alpha_p x x + beta x (4), alpha_n (expm1(clamp(x)) - x)
    # + beta x (6), then the compare and the select (2).
    "xielu": 12,
}
# Learned scalars per layer that an activation adds: swish_beta's beta, xIELU's a_p and a_n.
ACTIVATION_SCALARS = {"swish_beta": 1, "xielu": 2}

BUILTINS = [
    "relu",
    "gelu",
    "swish",
    "relu2",
    "leaky_relu2",
    "xielu",
    "glu",
    "bilinear",
    "reglu",
    "geglu",
    "swiglu",
    "swiglu_beta",
]


def is_gated(name: str) -> bool:
    return VARIANTS[name].factory is GatedFFN


def activation_of(name: str) -> str:
    return VARIANTS[name].kwargs["activation"]


GATED = [n for n in BUILTINS if is_gated(n)]
DENSE = [n for n in BUILTINS if not is_gated(n)]


def formula_params(name: str, d_model: int, d_ff: int, bias: bool = False) -> int:
    n_in = 2 * d_ff if is_gated(name) else d_ff
    count = d_model * n_in + d_ff * d_model + (n_in + d_model if bias else 0)
    return count + ACTIVATION_SCALARS.get(activation_of(name), 0)


def formula_flops(name: str, d_model: int, d_ff: int) -> int:
    n_in = 2 * d_ff if is_gated(name) else d_ff
    matmul = 2 * (d_model * n_in + d_ff * d_model)
    return matmul + d_ff * (ACTIVATION_FLOPS[activation_of(name)] + is_gated(name))


def formula_d_ff(name: str, d_model: int, dense_d_ff: int, multiple_of: int, match: str) -> int:
    """The matched width by the closed formulas: count(d_ff) is affine in d_ff, so solve it for
    the dense ReLU FFN's count, then round to the closest multiple within 1% (or of a half)."""
    count = formula_params if match == "params" else formula_flops

    def c(h: int) -> int:
        return count(name, d_model, h)

    target = count("relu", d_model, dense_d_ff)
    if name == "relu":
        return dense_d_ff
    exact = (target - c(0)) / (c(2) - c(1))
    if abs(exact - dense_d_ff) < 0.5 and dense_d_ff % multiple_of == 0:
        exact = dense_d_ff
    multiple = multiple_of
    while True:
        low = max(multiple, int(exact // multiple) * multiple)
        best = min((low, low + multiple), key=lambda h: abs(c(h) - target))
        if abs(c(best) / target - 1) <= 0.01 or multiple == 1:
            return best
        multiple = multiple // 2 if multiple % 2 == 0 else 1
