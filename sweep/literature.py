"""What the literature found, beside what this sweep found: Shazeer's Table 1 and the small-scale
findings that disagree with it, each with a verdict from this sweep's paired confidence intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sweep.runs import Run
from sweep.stats import kendall_tau, rank_lowest_first
from sweep.table import Diff, Row, best_settings, difference, finals

# Shazeer (2020), "GLU Variants Improve Transformer", Table 1: log-perplexity after 65,536 steps
# (T5-base on C4), the anchor this harness compares its ordering with.
SHAZEER_TABLE_1 = {
    "relu": 1.997,
    "gelu": 1.983,
    "swish": 1.994,
    "glu": 1.982,
    "bilinear": 1.960,
    "geglu": 1.942,
    "swiglu": 1.944,
    "reglu": 1.953,
}
SHAZEER = "Shazeer (2020), Table 1: T5-base on C4, 65,536 steps"


@dataclass(frozen=True)
class Claim:
    source: str
    variant: str
    other: str
    better: bool  # the claim: variant reaches a lower loss than other
    finding: str


CLAIMS = (
    *(
        Claim(SHAZEER, v, "relu", True, f"{SHAZEER_TABLE_1[v]:.3f} vs 1.997 log-perplexity")
        for v in ("geglu", "swiglu", "reglu", "bilinear")
    ),
    Claim(
        "nanochat, dev/LOG.md (2026-02): d12 and d24 GPT-2-sized models, matched parameters "
        "and FLOPs",
        "swiglu",
        "relu2",
        False,
        "SwiGLU trained to a worse loss than ReLU²",
    ),
    Claim(
        "modded-nanogpt: GPT-2 small speedruns, which keep ReLU²",
        "relu2",
        "gelu",
        True,
        "ReLU² about 1–2% better than GELU",
    ),
    # The 2024-2026 contenders (experiment=contenders)
    Claim(
        "nanochat, dev/LOG.md (2026-03)",
        "leaky_relu2",
        "relu2",
        True,
        "LeakyReLU(0.5)² slightly better per step than ReLU²",
    ),
    *(
        Claim(
            "Huang & Schlag (2024), arXiv:2411.13010: 1.1B and 3B, 125B tokens, matched compute "
            "and parameters",
            "xielu",
            other,
            True,
            f"xIELU better than {name}",
        )
        for other, name in (("relu2", "ReLU²"), ("swiglu", "SwiGLU"))
    ),
)


def verdict(claim: Claim, diff: Diff) -> str:
    """agrees, disagrees, or cannot tell, from the 95% CI of (variant - other)."""
    if diff.n_pairs < 2 or not math.isfinite(diff.ci_half_width):
        return "cannot tell (fewer than 2 paired seeds)"
    if diff.ci_high < 0 or diff.ci_low > 0:
        lower = diff.ci_high < 0
        return "agrees" if lower == claim.better else "disagrees"
    return "cannot tell (the 95% CI includes 0)"


def check_claims(runs: Sequence[Run], claims: Sequence[Claim] = CLAIMS) -> list[dict[str, Any]]:
    """Each claim, in each setting where the sweep has both its variants: this sweep's paired
    difference (variant - other), its relative size, and the verdict."""
    by: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        if r.ok:
            by.setdefault((r.variant, r.setting), []).append(r)
    out = []
    for claim in claims:
        for (variant, setting), rs in sorted(by.items()):
            if variant != claim.variant or (claim.other, setting) not in by:
                continue
            theirs = finals(by[(claim.other, setting)])
            diff = difference(finals(rs), theirs)
            base = sum(theirs.values()) / len(theirs)
            out.append(
                {
                    "source": claim.source,
                    "variant": claim.variant,
                    "other": claim.other,
                    "claim_better": claim.better,
                    "finding": claim.finding,
                    "setting": setting,
                    **{f"diff_{k}": v for k, v in diff.flat().items()},
                    "relative_percent": 100 * diff.mean / base,
                    "verdict": verdict(claim, diff),
                }
            )
    return out


def compare_with_table_1(rows: Sequence[Row]) -> dict[str, Any] | None:
    """Our ordering of the Table 1 variants beside Shazeer's: both values and ranks per variant
    and Kendall's tau between the two orderings (None with fewer than 3 shared variants)."""
    ours = {
        r.variant: r.final_val_loss_mean
        for r in best_settings(rows)
        if r.variant in SHAZEER_TABLE_1 and math.isfinite(r.final_val_loss_mean)
    }
    if len(ours) < 3:
        return None
    theirs = {v: SHAZEER_TABLE_1[v] for v in ours}
    tau, p = kendall_tau([ours[v] for v in ours], [theirs[v] for v in ours])
    our_rank, their_rank = rank_lowest_first(ours), rank_lowest_first(theirs)
    variants = [
        {
            "variant": v,
            "ours": ours[v],
            "our_rank": our_rank[v],
            "shazeer": theirs[v],
            "shazeer_rank": their_rank[v],
        }
        for v in sorted(ours, key=lambda v: their_rank[v])
    ]
    return {"variants": variants, "kendall_tau": tau, "p_value": p}
