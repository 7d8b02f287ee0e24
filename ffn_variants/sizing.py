"""Matched sizes: the hidden width at which an FFN's counted parameters (or FLOPs) meet the dense
ReLU FFN's, and the matching table.

Any FFN is matched the same way: its module is built on the meta device at candidate widths and
its parameters (or FLOPs, ffn_variants.counting) counted; nothing here knows what a gate or an
activation is. The gated blocks' 2/3 rule falls out: three d_model x d_ff matrices where the dense
block has two. The width is rounded to `multiple_of` (a hardware-friendly size), choosing the
rounding that keeps the FFN within 1% of the dense ReLU FFN; where no multiple of it does, to the
coarsest of its halves (multiple_of/2, /4, ... 1) that does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ffn_variants.counting import Counts
from ffn_variants.registry import VARIANTS, Variant, as_variant, get_variant

TOLERANCE = 0.01
REFERENCE = "relu"  # the dense FFN every variant is matched to
MAX_D_FF = 1 << 24  # no FFN is wider: the search for a width stops here


class Match(StrEnum):
    """What a variant's hidden width is matched on, against the dense ReLU FFN."""

    params = "params"  # parameters per layer (the 2/3 rule for gated variants)
    flops = "flops"  # forward FLOPs per token per layer (ffn_variants.counting)
    none = "none"  # the dense width as given


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


def _finer_multiples(multiple_of: int) -> list[int]:
    """multiple_of, then its halves while they stay whole, then 1: 8 -> [8, 4, 2, 1]."""
    out = [multiple_of]
    while out[-1] > 1:
        out.append(out[-1] // 2 if out[-1] % 2 == 0 else 1)
    return out


def _round_to_multiple(exact: float, multiple_of: int) -> list[int]:
    low = max(multiple_of, math.floor(exact / multiple_of) * multiple_of)
    return sorted({low, low + multiple_of})


def _crossing(count: Callable[[int], int], target: int, name: str, match: Match) -> float:
    """The real width at which count (non-decreasing in d_ff) reaches target."""
    if count(64) <= count(1):
        raise ValueError(
            f"{name} cannot be matched on {match}: its {match} count does not grow with "
            f"d_ff ({count(1):,} at d_ff=1 and at d_ff=64); the module must use d_ff, or use "
            "ffn.match=none"
        )
    if count(1) >= target:
        return 1.0
    high = 2
    while count(high) < target:
        if high >= MAX_D_FF:
            raise ValueError(f"{name} stays below the dense FFN's {match} at any width")
        high *= 2
    low = high // 2  # count(low) < target <= count(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) < target else (low, mid)
    return low + (target - count(low)) / (count(high) - count(low))


def matched_d_ff(
    variant: Variant | str,
    d_model: int,
    dense_d_ff: int,
    multiple_of: int = 8,
    match: Match | str = Match.params,
    bias: bool = False,
    counts: Counts | None = None,
) -> int:
    """Hidden width of `variant` matched to a dense ReLU FFN of width dense_d_ff.

    match="params" or "flops" finds the width whose counted parameters (FLOPs) equal the dense
    FFN's and rounds it down or up to multiple_of, whichever is closer. Where neither is within
    1%, the same with multiple_of/2, /4, ... down to 1; a ValueError if even that is more than 1%
    off, or if the count does not grow with d_ff. match="none" keeps dense_d_ff. `counts` (of
    this variant, d_model and bias) keeps what the search counted for its caller.
    """
    match = Match(match)
    variant = as_variant(variant)
    if match == Match.none or variant is VARIANTS.get(REFERENCE):
        return dense_d_ff  # the reference itself
    counts = counts or Counts(variant, d_model, bias)
    reference = Counts(get_variant(REFERENCE), d_model, bias)

    def count(d_ff: int) -> int:
        if match == Match.params:
            return counts.params(d_ff)
        return counts.flops(d_ff).total

    target = (
        reference.params(dense_d_ff) if match == Match.params else reference.flops(dense_d_ff).total
    )
    exact = _crossing(count, target, f"ffn '{variant.name}' ({variant.source})", match)
    if abs(exact - dense_d_ff) < 0.5 and dense_d_ff % multiple_of == 0:
        exact = dense_d_ff  # a dense variant matches at the reference width itself
    for multiple in _finer_multiples(multiple_of):
        candidates = _round_to_multiple(exact, multiple)
        best = min(candidates, key=lambda h: abs(count(h) - target))
        if abs(count(best) / target - 1) <= TOLERANCE:
            return best
    options = ", ".join(f"{h} ({count(h) / target - 1:+.2%})" for h in candidates)
    raise ValueError(
        f"cannot match {variant.name} to the dense FFN's {match} within {TOLERANCE:.0%} at "
        f"d_model={d_model}, d_ff={dense_d_ff} at any width (closest: {options}); "
        "use a larger model.d_ff or ffn.match=none"
    )


def ffn_size(
    variant: Variant | str,
    d_model: int,
    dense_d_ff: int,
    multiple_of: int = 8,
    match: Match | str = Match.params,
    bias: bool = False,
) -> FFNSize:
    """Width, parameters and FLOPs of one `variant` layer, beside the dense ReLU FFN's."""
    variant = as_variant(variant)
    counts = Counts(variant, d_model, bias)
    reference = Counts(get_variant(REFERENCE), d_model, bias)
    d_ff = matched_d_ff(variant, d_model, dense_d_ff, multiple_of, match, bias, counts)
    return FFNSize(
        variant=variant.name,
        d_ff=d_ff,
        params=counts.params(d_ff),
        flops_per_token=counts.flops(d_ff).total,
        reference_params=reference.params(dense_d_ff),
        reference_flops=reference.flops(dense_d_ff).total,
    )


def matching_table(
    d_model: int,
    dense_d_ff: int,
    multiple_of: int = 8,
    match: Match | str = Match.params,
    bias: bool = False,
    variants: list[Variant | str] | None = None,
) -> list[FFNSize]:
    """One FFNSize per variant (every registered one by default)."""
    return [
        ffn_size(v, d_model, dense_d_ff, multiple_of, match, bias)
        for v in (variants or list(VARIANTS))
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
