"""The report's numbers: one `Row` per variant (and swept setting) with CIs and a paired `Diff`
against each baseline (in nats per token, and in bits per byte where the runs logged it), and each
variant's best setting."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sweep.runs import Run, finite
from sweep.stats import (
    CONFIDENCE,
    FAMILY_ALPHA,
    mean_ci,
    paired_difference,
    rank_lowest_first,
    t_critical,
)


@dataclass(frozen=True)
class Diff:
    """The paired difference of a final metric (variant - baseline) over their common seeds."""

    mean: float = math.nan
    ci_half_width: float = math.nan
    p_value: float = math.nan
    n_pairs: int = 0
    sd: float = math.nan  # standard deviation of the per-seed differences (ddof 1)
    p_adjusted: float = math.nan  # Holm-adjusted over the report's family (sweep.family)

    @property
    def significant(self) -> bool:
        """Whether it survives the family's adjustment at familywise alpha FAMILY_ALPHA."""
        return math.isfinite(self.p_adjusted) and self.p_adjusted <= FAMILY_ALPHA

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
            "p_adjusted": self.p_adjusted,
            "n_pairs": self.n_pairs,
            "sd": self.sd,
        }


DIFF_FIELDS = list(Diff().flat())


@dataclass
class Row:
    """One variant at one setting: its sizes (from any of its runs: every seed has the same) and
    its losses, bits per byte and throughput over seeds. NaN where a run did not record a value.

    tokens_per_s and mfu are what the report shows: bench.throughput's measurement where one is
    attached (sweep.throughput), else the runs' own means (tokens_per_s_mean, mfu_mean);
    throughput_source says which, and whether the runs shared their machine."""

    label: str
    variant: str
    setting: str
    n_seeds: int
    seeds: str
    model: str = ""
    lr: float = math.nan  # optim.lr of its runs (NaN if they differ or none recorded it)
    lr_tuned: bool = False  # each variant at its own tuned rate (harness.tuned)
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
    runs_shared: int = 0  # its runs that shared their machine with other runs
    tokens_per_s: float = math.nan
    tokens_per_s_spread: float = math.nan  # bench: (p75 - p25) / median of its timed blocks
    mfu: float = math.nan
    throughput_source: str = ""
    final_val_loss_mean: float = math.nan
    final_val_loss_ci_half_width: float = math.nan
    final_val_loss_ci_low: float = math.nan
    final_val_loss_ci_high: float = math.nan
    best_val_loss_mean: float = math.nan
    best_val_loss_ci_half_width: float = math.nan
    best_val_loss_ci_low: float = math.nan
    best_val_loss_ci_high: float = math.nan
    final_val_bpb_mean: float = math.nan
    final_val_bpb_ci_half_width: float = math.nan
    final_val_bpb_ci_low: float = math.nan
    final_val_bpb_ci_high: float = math.nan
    best_val_bpb_mean: float = math.nan
    best_val_bpb_ci_half_width: float = math.nan
    best_val_bpb_ci_low: float = math.nan
    best_val_bpb_ci_high: float = math.nan
    rank: int = 0
    diffs: dict[str, Diff] = field(default_factory=dict)
    bpb_diffs: dict[str, Diff] = field(default_factory=dict)

    def flat(self, baselines: Sequence[str]) -> dict[str, Any]:
        """The row as one flat record (CSV, JSON, W&B): its differences as
        diff_vs_<baseline>_<field> (nats) and diff_bpb_vs_<baseline>_<field>."""
        out = {k: getattr(self, k) for k in ROW_COLUMNS}
        for b in baselines:
            out.update({f"diff_vs_{b}_{f}": v for f, v in self.diffs[b].flat().items()})
        for b in baselines:
            bpb = self.bpb_diffs.get(b, Diff())
            out.update({f"diff_bpb_vs_{b}_{f}": v for f, v in bpb.flat().items()})
        return out


ROW_COLUMNS = ["rank"] + [
    f.name for f in dataclasses.fields(Row) if f.name not in ("label", "diffs", "bpb_diffs", "rank")
]


def columns(baselines: Sequence[str]) -> list[str]:
    """The flat record's keys, in order."""
    return (
        ROW_COLUMNS
        + [f"diff_vs_{b}_{f}" for b in baselines for f in DIFF_FIELDS]
        + [f"diff_bpb_vs_{b}_{f}" for b in baselines for f in DIFF_FIELDS]
    )


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
    """Final and best val loss and bpb (mean and 95% CI over seeds); mean tokens/s, MFU and
    TFLOP/s."""
    out: dict[str, float] = {}
    for name in ("final_val_loss", "best_val_loss", "final_val_bpb", "best_val_bpb"):
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


def finals(runs: Sequence[Run], metric: str = "final_val_loss") -> dict[int, float]:
    """seed -> the final metric (runs that did not record it are left out)."""
    return {
        r.seed: getattr(r.summary, metric)
        for r in runs
        if r.seed is not None and finite(getattr(r.summary, metric))
    }


def difference(mine: dict[int, float], base: dict[int, float] | None) -> Diff:
    """The paired difference of a final metric against a baseline's runs of the same seeds."""
    if base is None:
        return Diff()
    d, dh, p, n = paired_difference(mine, base, CONFIDENCE)
    # the standard deviation behind the interval: half-width = t(n - 1) x sd / sqrt(n)
    sd = dh * math.sqrt(n) / t_critical(n, CONFIDENCE) if n > 1 else math.nan
    return Diff(d, dh, p, n, sd)


def _one(values: Sequence[float | None]) -> float:
    """The value all of `values` share, else NaN."""
    distinct = {v for v in values if finite(v)}
    return float(distinct.pop()) if len(distinct) == 1 else math.nan


def _throughput(runs: Sequence[Run], losses: dict[str, float]) -> dict[str, Any]:
    shared = sum(r.shared_with > 0 for r in runs)
    return {
        "runs_shared": shared,
        "tokens_per_s": losses["tokens_per_s_mean"],
        "mfu": losses["mfu_mean"],
        "throughput_source": "runs, shared machine" if shared else "runs",
    }


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
    base: dict[tuple[str, str, str], dict[int, float]] = {
        (metric, b, rs[0].setting): finals(rs, metric)
        for rs in groups.values()
        for b in baselines
        if rs[0].variant == b
        for metric in ("final_val_loss", "final_val_bpb")
    }
    rows = []
    for label, rs in groups.items():
        v, setting = rs[0].variant, rs[0].setting
        diffs = {
            metric: {
                b: difference(
                    finals(rs, metric), base.get((metric, b, setting)) if v != b else None
                )
                for b in baselines
            }
            for metric in ("final_val_loss", "final_val_bpb")
        }
        seeds = " ".join(str(r.seed) for r in rs)
        losses = _losses(rs)
        row = Row(
            label,
            v,
            setting,
            len(rs),
            seeds,
            model=str(rs[0].summary.model or ""),
            lr=_one([r.lr for r in rs]),
            lr_tuned=all(r.tuned_from for r in rs),
            **_sizes(rs[0]),
            **losses,
            **_throughput(rs, losses),
            diffs=diffs["final_val_loss"],
            bpb_diffs=diffs["final_val_bpb"],
        )
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
