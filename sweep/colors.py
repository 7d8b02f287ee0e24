"""One colour per variant, shared by the report's plots (sweep.plots) and the W&B views
(sweep.dashboard): matplotlib's tab10 palette in alphabetical order of the names.

Plain hex strings, so the W&B side needs no matplotlib.
"""

from __future__ import annotations

from collections.abc import Iterable

# matplotlib's "tab10" (tests check it against matplotlib's own).
TAB10 = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def variant_colors(names: Iterable[str]) -> dict[str, str]:
    """A stable colour per name (a variant, or a report row's label): alphabetical order into
    tab10, wrapping after ten."""
    return {name: TAB10[i % len(TAB10)] for i, name in enumerate(sorted(set(names)))}


def with_extra(colors: dict[str, str], names: Iterable[str]) -> dict[str, str]:
    """`colors` plus one for each of `names` it lacks (alphabetical, continuing the palette):
    a variant whose runs all failed has no colour in the report's plots but needs one in W&B."""
    out = dict(colors)
    for name in sorted(set(names) - set(out)):
        out[name] = TAB10[len(out) % len(TAB10)]
    return out
