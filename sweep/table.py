"""The report's numbers: one row per variant (and swept setting) with CIs and paired differences
against each baseline, and each variant's best setting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sweep.runs import Run, finite
from sweep.stats import mean_ci, paired_difference, rank_lowest_first

CONFIDENCE = 0.95


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
        "train_flops_per_token": _num(f.get("train")),
        "ffn_share": _num(f.get("ffn_share")),
    }


def _losses(runs: Sequence[Run]) -> dict[str, float]:
    """Final and best val loss (mean and 95% CI over seeds); mean tokens/s, MFU and TFLOP/s."""
    out: dict[str, float] = {}
    for name in ("final_val_loss", "best_val_loss"):
        values = [getattr(r.summary, name) for r in runs if finite(getattr(r.summary, name))]
        mean, half = mean_ci(values, CONFIDENCE)
        out.update(
            {
                f"{name}_mean": mean,
                f"{name}_ci_half_width": half,
                f"{name}_ci_low": mean - half,
                f"{name}_ci_high": mean + half,
            }
        )
    for name in ("tokens_per_s", "mfu", "model_tflops"):
        values = [getattr(r.summary, name) for r in runs if finite(getattr(r.summary, name))]
        out[f"{name}_mean"] = mean_ci(values)[0]
    return out


def finals(runs: Sequence[Run]) -> dict[int, float]:
    """seed -> final val loss."""
    return {r.seed: r.summary.final_val_loss for r in runs if r.seed is not None}


def difference(mine: dict[int, float], base: dict[int, float] | None) -> dict[str, float | int]:
    """The paired difference of final val loss against a baseline's runs of the same seeds."""
    if base is None:
        d = dh = p = math.nan
        n = 0
    else:
        d, dh, p, n = paired_difference(mine, base, CONFIDENCE)
    return {
        "mean": d,
        "ci_half_width": dh,
        "ci_low": d - dh,
        "ci_high": d + dh,
        "p_value": p,
        "n_pairs": n,
    }


def _groups(runs: Sequence[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for r in runs:
        if r.ok:
            groups.setdefault(r.label, []).append(r)
    return {k: sorted(v, key=lambda r: (r.seed is None, r.seed or 0)) for k, v in groups.items()}


def build_rows(runs: Sequence[Run], baselines: Sequence[str]) -> list[dict[str, Any]]:
    """One row per variant and setting (completed runs only), sorted by rank (lowest final val
    loss first). Each baseline's difference pairs a run with the baseline's run of the same
    setting and seed (row["diffs"][baseline])."""
    groups = _groups(runs)
    base_final = {
        (b, rs[0].setting): finals(rs)
        for rs in groups.values()
        for b in baselines
        if rs[0].variant == b
    }
    rows = []
    for label, rs in groups.items():
        v, setting = rs[0].variant, rs[0].setting
        diffs = {
            b: difference(finals(rs), base_final.get((b, setting)) if v != b else None)
            for b in baselines
        }
        rows.append(
            {
                "label": label,
                "variant": v,
                "setting": setting,
                "n_seeds": len(rs),
                "seeds": " ".join(str(r.seed) for r in rs),
                **_sizes(rs[0]),
                **_losses(rs),
                "diffs": diffs,
            }
        )
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
