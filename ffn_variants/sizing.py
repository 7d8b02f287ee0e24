"""Matched sizes: the 2/3 rule, parameter and FLOP counts per variant, and the matching table.

A gated FFN has three d_model x d_ff matrices where a dense one has two, so at equal parameters its
hidden width is 2/3 of the dense one. The width is rounded to `multiple_of` (a hardware-friendly
size), choosing the rounding that keeps the FFN within 1% of the dense ReLU FFN it is matched to;
where no multiple of it does, to the coarsest of its halves (multiple_of/2, /4, ... 1) that does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from ffn_variants.variants import VARIANTS, get_variant

TOLERANCE = 0.01


class Match(StrEnum):
    """What a variant's hidden width is matched on, against the dense ReLU FFN."""

    params = "params"  # parameters per layer (the 2/3 rule for gated variants)
    flops = "flops"  # forward FLOPs per token per layer
    none = "none"  # the dense width as given


# Rough forward FLOPs per element of each activation (compare, exp, divide... counted as one each).
ACTIVATION_FLOPS = {
    "relu": 1,
    "relu2": 2,
    "gelu": 8,
    "gelu_tanh": 8,
    "silu": 4,
    "sigmoid": 4,
    "identity": 0,
    "swish_beta": 5,
    "leaky_relu2": 3,  # compare, scale, square
    # torch.where computes both halves: alpha_p x x + beta x (4), alpha_n (expm1(clamp(x)) - x)
    # + beta x (6), then the compare and the select (2).
    "xielu": 12,
}

# Learned scalars per layer that an activation adds: swish_beta's beta, xIELU's a_p and a_n.
ACTIVATION_SCALARS = {"swish_beta": 1, "xielu": 2}


@dataclass(frozen=True)
class FFNSize:
    variant: str
    d_ff: int
    params: int  # one FFN layer
    flops_per_token: int  # one FFN layer, forward
    reference_params: int  # the dense ReLU FFN it is matched to
    reference_flops: int

    @property
    def params_diff(self) -> float:
        return self.params / self.reference_params - 1

    @property
    def flops_diff(self) -> float:
        return self.flops_per_token / self.reference_flops - 1


def ffn_params(variant: str, d_model: int, d_ff: int, bias: bool = False) -> int:
    """Parameters of one FFN layer."""
    v = get_variant(variant)
    n_in = 2 * d_ff if v.gated else d_ff
    count = d_model * n_in + d_ff * d_model
    if bias:
        count += n_in + d_model
    return count + ACTIVATION_SCALARS.get(v.activation, 0)


def ffn_flops(variant: str, d_model: int, d_ff: int) -> int:
    """Forward FLOPs per token of one FFN layer: 2 per multiply-add, plus the elementwise work."""
    v = get_variant(variant)
    n_in = 2 * d_ff if v.gated else d_ff
    matmul = 2 * (d_model * n_in + d_ff * d_model)
    elementwise = d_ff * (ACTIVATION_FLOPS[v.activation] + (1 if v.gated else 0))
    return matmul + elementwise


def _finer_multiples(multiple_of: int) -> list[int]:
    """multiple_of, then its halves while they stay whole, then 1: 8 -> [8, 4, 2, 1]."""
    out = [multiple_of]
    while out[-1] > 1:
        out.append(out[-1] // 2 if out[-1] % 2 == 0 else 1)
    return out


def _round_to_multiple(exact: float, multiple_of: int) -> list[int]:
    low = max(multiple_of, math.floor(exact / multiple_of) * multiple_of)
    return sorted({low, low + multiple_of})


def matched_d_ff(
    variant: str,
    d_model: int,
    dense_d_ff: int,
    multiple_of: int = 8,
    match: Match | str = Match.params,
    bias: bool = False,
) -> int:
    """Hidden width of `variant` matched to a dense ReLU FFN of width dense_d_ff.

    match="params" or "flops" solves for the width whose count equals the dense FFN's (the 2/3 rule
    for gated variants when matching parameters) and rounds it down or up to multiple_of, whichever
    is closer. Where neither is within 1%, the same with multiple_of/2, /4, ... down to 1; a
    ValueError if even that is more than 1% off. match="none" keeps dense_d_ff.
    """
    match = Match(match)
    if match == Match.none:
        return dense_d_ff
    if get_variant(variant).activation == "relu" and not get_variant(variant).gated:
        return dense_d_ff  # the reference itself

    def count(d_ff: int) -> int:
        if match == "params":
            return ffn_params(variant, d_model, d_ff, bias)
        return ffn_flops(variant, d_model, d_ff)

    target = (
        ffn_params("relu", d_model, dense_d_ff, bias)
        if match == "params"
        else ffn_flops("relu", d_model, dense_d_ff)
    )
    # count(d_ff) is affine in d_ff: solve count(d_ff) = target exactly, then round.
    slope = count(2) - count(1)
    exact = (target - count(0)) / slope
    if abs(exact - dense_d_ff) < 0.5 and dense_d_ff % multiple_of == 0:
        exact = dense_d_ff  # a dense variant matches at the reference width itself
    for multiple in _finer_multiples(multiple_of):
        candidates = _round_to_multiple(exact, multiple)
        best = min(candidates, key=lambda h: abs(count(h) - target))
        if abs(count(best) / target - 1) <= TOLERANCE:
            return best
    options = ", ".join(f"{h} ({count(h) / target - 1:+.2%})" for h in candidates)
    raise ValueError(
        f"cannot match {variant} to the dense FFN's {match} within {TOLERANCE:.0%} at "
        f"d_model={d_model}, d_ff={dense_d_ff} at any width (closest: {options}); "
        "use a larger model.d_ff or ffn.match=none"
    )


def ffn_size(
    variant: str,
    d_model: int,
    dense_d_ff: int,
    multiple_of: int = 8,
    match: Match | str = Match.params,
    bias: bool = False,
) -> FFNSize:
    """Width, parameters and FLOPs of one `variant` layer, beside the dense ReLU FFN's."""
    d_ff = matched_d_ff(variant, d_model, dense_d_ff, multiple_of, match, bias)
    return FFNSize(
        variant=variant,
        d_ff=d_ff,
        params=ffn_params(variant, d_model, d_ff, bias),
        flops_per_token=ffn_flops(variant, d_model, d_ff),
        reference_params=ffn_params("relu", d_model, dense_d_ff, bias),
        reference_flops=ffn_flops("relu", d_model, dense_d_ff),
    )


def matching_table(
    d_model: int,
    dense_d_ff: int,
    multiple_of: int = 8,
    match: Match | str = Match.params,
    bias: bool = False,
    variants: list[str] | None = None,
) -> list[FFNSize]:
    """One FFNSize per variant (all of them by default)."""
    return [
        ffn_size(name, d_model, dense_d_ff, multiple_of, match, bias)
        for name in (variants or list(VARIANTS))
    ]


def format_table(rows: list[FFNSize]) -> str:
    """The matching table as Markdown."""
    lines = [
        "| ffn | d_ff | params/layer | vs dense | FLOPs/token/layer | vs dense |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.variant} | {r.d_ff} | {r.params:,} | {r.params_diff:+.2%} | "
            f"{r.flops_per_token:,} | {r.flops_diff:+.2%} |"
        )
    return "\n".join(lines)
