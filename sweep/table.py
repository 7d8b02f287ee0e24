"""The report's numbers: one row per variant (and swept setting) with CIs and paired differences,
each variant's best setting, and the ordering beside Shazeer's Table 1."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sweep.runs import Run, finite
from sweep.stats import kendall_tau, mean_ci, paired_difference, rank_lowest_first

CONFIDENCE = 0.95
# Shazeer (2020), "GLU Variants Improve Transformer", Table 1: log-perplexity after 65,536 steps
# (T5-base on C4), the anchor this harness compares its ordering with.
SHAZEER_TABLE_1 = {
    "relu": 1.997, "gelu": 1.983, "swish": 1.994, "glu": 1.982,
    "bilinear": 1.960, "geglu": 1.942, "swiglu": 1.944, "reglu": 1.953,
}  # fmt: skip


def _num(x: Any) -> float | int:
    """A count as int (params, FLOPs), anything else as float; NaN when missing."""
    if not finite(x):
        return math.nan
    return int(x) if float(x).is_integer() else float(x)


def _sizes(run: Run) -> dict[str, float | int]:
    """The row's size columns, from one of its runs (every seed has the same sizes)."""
    p, f = run.summary.params, run.summary.flops_per_token
    return {
        "params_total": _num(p.get("total")),
        "params_non_embedding": _num(p.get("non_embedding")),
        "params_ffn": _num(p.get("ffn")),
        "params_ffn_per_layer": _num(p.get("ffn_per_layer")),
        "d_ff": _num(p.get("d_ff")),
        "flops_per_token": _num(f.get("total")),
        "flops_per_token_ffn": _num(f.get("ffn")),
    }


def _losses(runs: Sequence[Run]) -> dict[str, float]:
    """Final and best val loss (mean and 95% CI over seeds); mean tokens/s, MFU and TFLOP/s."""
    out: dict[str, float] = {}
    for name in ("final_val_loss", "best_val_loss"):
        values = [getattr(r.summary, name) for r in runs if finite(getattr(r.summary, name))]
        mean, half = mean_ci(values, CONFIDENCE)
        out.update({
            f"{name}_mean": mean, f"{name}_ci_half_width": half,
            f"{name}_ci_low": mean - half, f"{name}_ci_high": mean + half,
        })  # fmt: skip
    for name in ("tokens_per_s", "mfu", "model_tflops"):
        values = [getattr(r.summary, name) for r in runs if finite(getattr(r.summary, name))]
        out[f"{name}_mean"] = mean_ci(values)[0]
    return out


def _difference(runs: Sequence[Run], base: dict[int, float] | None) -> dict[str, float | int]:
    """The paired difference of final val loss against the baseline's runs of the same seeds."""
    if base is None:
        d = dh = p = math.nan
        n = 0
    else:
        mine = {r.seed: r.summary.final_val_loss for r in runs if r.seed is not None}
        d, dh, p, n = paired_difference(mine, base, CONFIDENCE)
    return {
        "diff_vs_baseline_mean": d, "diff_vs_baseline_ci_half_width": dh,
        "diff_vs_baseline_ci_low": d - dh, "diff_vs_baseline_ci_high": d + dh,
        "diff_vs_baseline_p_value": p, "diff_vs_baseline_n_pairs": n,
    }  # fmt: skip


def build_rows(runs: Sequence[Run], baseline: str | None) -> list[dict[str, Any]]:
    """One row per variant and setting (completed runs only), sorted by rank (lowest final val
    loss first). The baseline difference pairs each run with the baseline's run of the same
    setting and seed."""
    by_label: dict[str, list[Run]] = {}
    base_final: dict[str, dict[int, float]] = {}
    for r in runs:
        if r.ok:
            by_label.setdefault(r.label, []).append(r)
            if r.variant == baseline and r.seed is not None:
                base_final.setdefault(r.setting, {})[r.seed] = r.summary.final_val_loss
    rows = []
    for label, rs in by_label.items():
        rs = sorted(rs, key=lambda r: (r.seed is None, r.seed or 0))
        v, setting = rs[0].variant, rs[0].setting
        base = base_final.get(setting) if v != baseline else None
        rows.append({
            "label": label, "variant": v, "setting": setting, "n_seeds": len(rs),
            "seeds": " ".join(str(r.seed) for r in rs), **_sizes(rs[0]), **_losses(rs),
            "baseline": baseline if setting in base_final else "", **_difference(rs, base),
        })  # fmt: skip
    ranks = rank_lowest_first({r["label"]: r["final_val_loss_mean"] for r in rows})
    for r in rows:
        r["rank"] = ranks[r["label"]]
    return sorted(rows, key=lambda r: (r["rank"], r["label"]))


def best_settings(rows: Sequence[dict]) -> list[dict]:
    """Per variant, its row with the lowest mean final val loss (for sweeps that vary a setting,
    such as the learning rate), best variant first."""
    best: dict[str, dict] = {}
    for r in rows:  # rows come sorted best first
        best.setdefault(r["variant"], r)
    return list(best.values())


def compare_with_table_1(rows: Sequence[dict]) -> dict[str, Any] | None:
    """Our ordering of the Table 1 variants beside Shazeer's: both values and ranks per variant
    and Kendall's tau between the two orderings (None with fewer than 3 shared variants)."""
    ours = {
        r["variant"]: r["final_val_loss_mean"]
        for r in best_settings(rows)
        if r["variant"] in SHAZEER_TABLE_1 and math.isfinite(r["final_val_loss_mean"])
    }
    if len(ours) < 3:
        return None
    theirs = {v: SHAZEER_TABLE_1[v] for v in ours}
    tau, p = kendall_tau([ours[v] for v in ours], [theirs[v] for v in ours])
    our_rank, their_rank = rank_lowest_first(ours), rank_lowest_first(theirs)
    variants = [
        {"variant": v, "ours": ours[v], "our_rank": our_rank[v], "shazeer": theirs[v],
         "shazeer_rank": their_rank[v]}
        for v in sorted(ours, key=lambda v: their_rank[v])
    ]  # fmt: skip
    return {"variants": variants, "kendall_tau": tau, "p_value": p}
