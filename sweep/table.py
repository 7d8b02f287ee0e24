"""The report's numbers: one `Row` per variant (and swept setting) with CIs and a paired `Diff`
against each baseline, and each variant's best setting."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sweep.runs import Run, finite
from sweep.stats import CONFIDENCE, mean_ci, paired_difference, rank_lowest_first


@dataclass(frozen=True)
class Diff:
    """The paired difference of final val loss (variant - baseline) over their common seeds."""

    mean: float = math.nan
    ci_half_width: float = math.nan
    p_value: float = math.nan
    n_pairs: int = 0

    @property
    def ci_low(self) -> float:
        return self.mean - self.ci_half_width

    @property
    def ci_high(self) -> float:
        return self.mean + self.ci_half_width

    def flat(self) -> dict[str, float | int]:
        return {
            "mean": self.mean,
            "ci_half_width": self.ci_half_width,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "n_pairs": self.n_pairs,
        }


DIFF_FIELDS = list(Diff().flat())


@dataclass
class Row:
    """One variant at one setting: its sizes (from any of its runs: every seed has the same) and
    its losses and throughput over seeds. NaN where a run did not record a value."""

    label: str
    variant: str
    setting: str
    n_seeds: int
    seeds: str
    params_total: float = math.nan
    params_non_embedding: float = math.nan
    params_ffn: float = math.nan
    params_ffn_per_layer: float = math.nan
    d_ff: float = math.nan
    flops_per_token: float = math.nan
    flops_per_token_ffn: float = math.nan
    train_flops_per_token: float = math.nan
    ffn_share: float = math.nan
    tokens_per_s_mean: float = math.nan
    mfu_mean: float = math.nan
    model_tflops_mean: float = math.nan
    final_val_loss_mean: float = math.nan
    final_val_loss_ci_half_width: float = math.nan
    final_val_loss_ci_low: float = math.nan
    final_val_loss_ci_high: float = math.nan
    best_val_loss_mean: float = math.nan
    best_val_loss_ci_half_width: float = math.nan
    best_val_loss_ci_low: float = math.nan
    best_val_loss_ci_high: float = math.nan
    rank: int = 0
    diffs: dict[str, Diff] = field(default_factory=dict)

    def flat(self, baselines: Sequence[str]) -> dict[str, Any]:
        """The row as one flat record (CSV, JSON, W&B): its differences as
        diff_vs_<baseline>_<field>."""
        out = {k: getattr(self, k) for k in ROW_COLUMNS}
        for b in baselines:
            out.update({f"diff_vs_{b}_{f}": v for f, v in self.diffs[b].flat().items()})
        return out


ROW_COLUMNS = ["rank"] + [
    f.name for f in dataclasses.fields(Row) if f.name not in ("label", "diffs", "rank")
]


def columns(baselines: Sequence[str]) -> list[str]:
    """The flat record's keys, in order."""
    return ROW_COLUMNS + [f"diff_vs_{b}_{f}" for b in baselines for f in DIFF_FIELDS]


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


def difference(mine: dict[int, float], base: dict[int, float] | None) -> Diff:
    """The paired difference of final val loss against a baseline's runs of the same seeds."""
    if base is None:
        return Diff()
    d, dh, p, n = paired_difference(mine, base, CONFIDENCE)
    return Diff(d, dh, p, n)


def _groups(runs: Sequence[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for r in runs:
        if r.ok:
            groups.setdefault(r.label, []).append(r)
    return {k: sorted(v, key=lambda r: (r.seed is None, r.seed or 0)) for k, v in groups.items()}


def build_rows(runs: Sequence[Run], baselines: Sequence[str]) -> list[Row]:
    """One row per variant and setting (completed runs only), sorted by rank (lowest final val
    loss first). Each baseline's difference pairs a run with the baseline's run of the same
    setting and seed (row.diffs[baseline])."""
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
        seeds = " ".join(str(r.seed) for r in rs)
        row = Row(label, v, setting, len(rs), seeds, **_sizes(rs[0]), **_losses(rs), diffs=diffs)
        rows.append(row)
    ranks = rank_lowest_first({r.label: r.final_val_loss_mean for r in rows})
    for r in rows:
        r.rank = ranks[r.label]
    return sorted(rows, key=lambda r: (r.rank, r.label))


def best_settings(rows: Sequence[Row]) -> list[Row]:
    """Per variant, its row with the lowest mean final val loss (for sweeps that vary a setting,
    such as the learning rate), best variant first."""
    best: dict[str, Row] = {}
    for r in rows:  # rows come sorted best first
        best.setdefault(r.variant, r)
    return list(best.values())


def by_setting(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """The rows grouped by swept setting (e.g. "model=cpu_d64"), in first-seen order."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.setting, []).append(r)
    return groups
