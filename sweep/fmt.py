"""Numbers as the report prints them (n/a for anything missing or not finite)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def si(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.4g}{suf}"
    return f"{x:.0f}"


def pm(mean: float, half: float, signed: bool = False) -> str:
    if not math.isfinite(mean):
        return "n/a"
    m = f"{mean:+.4f}" if signed else f"{mean:.4f}"
    return f"{m} ± {half:.4f}" if math.isfinite(half) else f"{m} ± n/a"


def p_value(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def percent(x: float) -> str:
    return f"{x:.1%}" if math.isfinite(x) else "n/a"


def span(vals: list, fmt: Callable[[Any], str] = str) -> str:
    if not vals:
        return "unknown"
    if len(vals) == 1:
        return fmt(vals[0])
    if all(isinstance(v, int | float) for v in vals):
        return f"{fmt(min(vals))}–{fmt(max(vals))} (differs between runs)"
    return ", ".join(fmt(v) for v in vals) + " (differs between runs)"


def table(head: list[str], rows: list[list[str]], numeric: bool = True) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned if numeric."""
    rule = "|" + "|".join("---:" if i and numeric else "---" for i in range(len(head))) + "|"
    return ["| " + " | ".join(head) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)]
