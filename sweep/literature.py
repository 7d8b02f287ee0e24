"""What the literature found, beside what this sweep found: Shazeer's Table 1 and the small-scale
findings that disagree with it, each with a verdict from this sweep's paired confidence intervals.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sweep.runs import Run
from sweep.stats import FAMILY_ALPHA, kendall_tau, rank_lowest_first
from sweep.table import Row, best_settings, difference, finals

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
    params: float  # about the non-embedding parameters of the models the claim was made at


# A sweep whose models are this many times smaller than a claim's (or larger) does not test it:
# an opposite result there is "not reproduced here", not a disagreement.
REGIME_RATIO = 100.0


CLAIMS = (
    *(
        Claim(SHAZEER, v, "relu", True, f"{SHAZEER_TABLE_1[v]:.3f} vs 1.997 log-perplexity", 220e6)
        for v in ("geglu", "swiglu", "reglu", "bilinear")
    ),
    Claim(
        "nanochat, dev/LOG.md (2026-02): d12 and d24 GPT-2-sized models, matched parameters "
        "and FLOPs",
        "swiglu",
        "relu2",
        False,
        "SwiGLU trained to a worse loss than ReLU²",
        85e6,
    ),
    Claim(
        "modded-nanogpt: GPT-2 small speedruns, which keep ReLU²",
        "relu2",
        "gelu",
        True,
        "ReLU² about 1–2% better than GELU",
        85e6,
    ),
    # The 2024-2026 contenders (experiment=contenders)
    Claim(
        "nanochat, dev/LOG.md (2026-03)",
        "leaky_relu2",
        "relu2",
        True,
        "LeakyReLU(0.5)² slightly better per step than ReLU²",
        85e6,
    ),
    *(
        Claim(
            "Huang & Schlag (2024), arXiv:2411.13010: 1.1B and 3B, 125B tokens, matched compute "
            "and parameters",
            "xielu",
            other,
            True,
            f"xIELU better than {name}",
            1.1e9,
        )
        for other, name in (("relu2", "ReLU²"), ("swiglu", "SwiGLU"))
    ),
)


def verdict(claim: dict[str, Any], params_here: float) -> str:
    """agrees, disagrees (or, at a regime REGIME_RATIO apart, not reproduced here), or cannot
    tell: from the sign of the paired difference (variant - other) where it survives Holm's
    adjustment over the report's family (sweep.family) at familywise alpha FAMILY_ALPHA."""
    p = claim.get("diff_p_adjusted", math.nan)
    if claim["diff_n_pairs"] < 2 or not math.isfinite(p):
        return "cannot tell (fewer than 2 paired seeds)"
    if p > FAMILY_ALPHA:
        return f"cannot tell (Holm-adjusted p {p:.3g})"
    if (claim["diff_mean"] < 0) == claim["claim_better"]:
        return "agrees"
    ratio = claim["claim_params"] / params_here if params_here > 0 else math.inf
    if max(ratio, 1 / ratio) >= REGIME_RATIO:
        return f"not reproduced here (the opposite, at {ratio:.0f}x smaller models)"
    return "disagrees"


def check_claims(runs: Sequence[Run], claims: Sequence[Claim] = CLAIMS) -> list[dict[str, Any]]:
    """Each claim, in each setting where the sweep has both its variants: this sweep's paired
    difference (variant - other) and its relative size. The verdict comes once the family's
    adjustment is known (judge_claims)."""
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
                    "claim_params": claim.params,
                    "finding": claim.finding,
                    "setting": setting,
                    **{f"diff_{k}": v for k, v in diff.flat().items()},
                    "relative_percent": 100 * diff.mean / base,
                }
            )
    return out


def judge_claims(claims: list[dict[str, Any]], runs: Sequence[Run]) -> None:
    """Each claim's verdict, once its diff_p_adjusted is set (sweep.family.adjust)."""
    for c in claims:
        params = [
            r.summary.params.get("non_embedding", math.nan)
            for r in runs
            if r.ok and r.setting == c["setting"] and r.variant in (c["variant"], c["other"])
        ]
        c["verdict"] = verdict(c, statistics.median(params) if params else math.nan)


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
