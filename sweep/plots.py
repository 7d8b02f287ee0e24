"""Matplotlib (Agg) plots for sweep reports.

Each ``plot_*`` function takes the per-variant metrics of the completed runs and writes one PNG;
it returns ``None`` when it wrote the file, or a one-line reason when there was nothing to plot.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from sweep import colors as palette  # noqa: E402
from sweep.scaling import fit_band  # noqa: E402
from sweep.stats import aligned_mean_ci  # noqa: E402
from sweep.table import Row  # noqa: E402

Records = list[dict]  # one run's metrics.jsonl lines
ACT_KEY = re.compile(
    r"^act/L(\d+)/(gate|value|product|act|gate_value)/"
    r"(mean|std|rms|absmax|frac_zero|kurtosis|alignment)$"
)
# The nonlinearity's output is "gate" in gated variants and "act" in dense ones: one column.
ACT_COLUMNS = [
    ("gate|act", "gate (GLU) / act (dense)"),
    ("value", "value (GLU)"),
    ("product", "gate x value (GLU)"),
]
ACT_STATS = [
    ("rms", "RMS"),
    ("frac_zero", "fraction near zero (|x| < 1e-3)"),
    ("absmax", "max |x|"),
]
# Outliers (ffn_variants.telemetry), one row of their own: the excess kurtosis of W2's input (act
# in dense variants, the product in gated ones), and the gate/value weight alignment of gated ones.
OUTLIER_PANELS = [
    ("kurtosis", "act|product", "W2 input (act / gate x value): excess kurtosis"),
    ("alignment", "gate_value", "gate/value weights (GLU): mean |cos| of matching rows"),
]


def variant_colors(variants: Sequence[str]) -> dict[str, str]:
    """A stable colour per variant (alphabetical order into tab10): sweep.colors, the one source
    the W&B views (sweep.dashboard) use too."""
    return palette.variant_colors(variants)


def series(records: Records, key: str) -> dict[int, float]:
    """``step -> value`` for one metric key (later lines win on repeated steps)."""
    out: dict[int, float] = {}
    for rec in records:
        v = rec.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and "step" in rec:
            out[int(rec["step"])] = float(v)
    return out


def _tokens_by_step(runs: Sequence[Records]) -> dict[int, float]:
    acc: dict[int, list[float]] = {}
    for recs in runs:
        for rec in recs:
            if isinstance(rec.get("tokens"), (int, float)) and "step" in rec:
                acc.setdefault(int(rec["step"]), []).append(float(rec["tokens"]))
    return {s: float(np.mean(v)) for s, v in acc.items()}


def _x_of(steps: np.ndarray, tok: Mapping[int, float]) -> tuple[np.ndarray, str]:
    if len(steps) and all(int(s) in tok for s in steps):
        return np.array([tok[int(s)] for s in steps]), "tokens"
    return steps.astype(float), "step"


def plot_val_loss(
    runs_by_variant: Mapping[str, Sequence[Records]],
    path: Path,
    colors: Mapping[str, str],
    order: Sequence[str],
) -> str | None:
    """Validation loss vs tokens: mean over seeds (aligned by step) with a 95% CI band."""
    curves = {}
    for v in order:
        runs = runs_by_variant.get(v, [])
        ser = [s for s in (series(r, "val/loss") for r in runs) if s]
        if not ser:
            continue
        steps, mean, half, n = aligned_mean_ci(ser)
        x, xlabel = _x_of(steps, _tokens_by_step(runs))
        curves[v] = (x, mean, half, len(ser), xlabel)
    if not curves:
        return "no run logged val/loss"

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    xmax = max(float(np.nanmax(c[0])) for c in curves.values())
    zoom_lo, zoom_vals = xmax / 2, []
    for v, (x, mean, half, nruns, _) in curves.items():
        for ax in axes:
            ax.plot(
                x,
                mean,
                color=colors[v],
                lw=1.8,
                marker="." if len(x) < 40 else None,
                label=f"{v} (n={nruns})",
            )
            ok = np.isfinite(half)
            if ok.any():
                ax.fill_between(
                    x[ok], (mean - half)[ok], (mean + half)[ok], color=colors[v], alpha=0.2, lw=0
                )
        sel = x >= zoom_lo
        lo, hi = (mean - np.nan_to_num(half))[sel], (mean + np.nan_to_num(half))[sel]
        zoom_vals += [float(np.nanmin(lo)), float(np.nanmax(hi))] if sel.any() else []
    xlabel = next(iter(curves.values()))[4]
    axes[0].set_title("Validation loss (mean over seeds, 95% CI band)")
    axes[1].set_title("Second half of training (zoom)")
    axes[1].set_xlim(zoom_lo, xmax * 1.01)
    if zoom_vals:
        lo, hi = min(zoom_vals), max(zoom_vals)
        pad = (hi - lo) * 0.08 or 0.01
        axes[1].set_ylim(lo - pad, hi + pad)
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_ylabel("val loss")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def _final_loss_point(ax, i: int, row: Row, seeds: list[float], color: str) -> None:
    """One variant at x = i: its seeds (grey), the mean with its CI, and the numbers."""
    m, h = row.final_val_loss_mean, row.final_val_loss_ci_half_width
    jitter = np.linspace(-0.12, 0.12, len(seeds)) if len(seeds) > 1 else np.zeros(len(seeds))
    label = "individual seeds" if i == 0 else None
    ax.scatter(i + 0.25 + jitter, seeds, s=14, color="0.55", zorder=2, label=label)
    yerr = h if math.isfinite(h) else None
    ax.errorbar(i, m, yerr=yerr, fmt="o", ms=8, capsize=6, color=color, zorder=3)
    ci = f"\n±{h:.4f}" if math.isfinite(h) else "\n(CI n/a)"
    ax.annotate(
        f"{m:.4f}{ci}",
        (i, m),
        xytext=(-10, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=8,
    )


def plot_final_loss(
    rows: Sequence[Row],
    seeds_by_variant: Mapping[str, Mapping[object, float]],
    path: Path,
    colors: Mapping[str, str],
    baselines: Sequence[str] = (),
) -> str | None:
    """Final val loss per variant (sorted best first): mean with 95% CI error bars, plus seeds,
    and a dashed line at each baseline's mean."""
    rows = sorted(
        (r for r in rows if math.isfinite(r.final_val_loss_mean)),
        key=lambda r: r.final_val_loss_mean,
    )
    if not rows:
        return "no completed run with a final val loss"
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(rows) + 2), 4.5))
    for i, r in enumerate(rows):
        seeds = list(seeds_by_variant.get(r.label, {}).values())
        _final_loss_point(ax, i, r, seeds, colors[r.label])
    for style, baseline in zip(("--", ":", "-."), baselines, strict=False):
        base = [r for r in rows if r.variant == baseline]
        if base:
            mean, label = base[0].final_val_loss_mean, f"baseline {base[0].label} (mean)"
            ax.axhline(mean, color="0.4", ls=style, lw=1, label=label)
    settings = any(r.setting for r in rows)
    ticks = [
        r.variant + (f"\n{r.setting}" if r.setting else "") + f"\n(n={r.n_seeds})" for r in rows
    ]
    ax.set_xticks(range(len(rows)), ticks, fontsize=8 if settings else None)
    ax.set_xlim(-0.8, len(rows) - 0.4)
    ax.set_ylabel("final val loss")
    ax.set_title("Final validation loss: mean ± 95% CI over seeds (lower is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def _act_series(runs: Sequence[Records], parts: str, stat: str) -> list[dict[int, float]]:
    """Per run: ``step -> value`` of ``stat`` averaged over layers, for the first matching part."""
    out = []
    for recs in runs:
        acc: dict[int, list[float]] = {}
        for rec in recs:
            if "step" not in rec:
                continue
            for k, val in rec.items():
                m = ACT_KEY.match(k)
                if m and m.group(3) == stat and re.fullmatch(parts, m.group(2)):
                    if isinstance(val, (int, float)) and math.isfinite(val):
                        acc.setdefault(int(rec["step"]), []).append(float(val))
        if acc:
            out.append({s: float(np.mean(v)) for s, v in acc.items()})
    return out


def activation_panels(
    runs_by_variant: Mapping[str, Sequence[Records]], order: Sequence[str]
) -> list[tuple[str, str, str, dict]]:
    """The activation plot's panels: (row, column, title, {variant: ((x, x label), mean)}); rows
    are the ACT_STATS and, last, "outliers" (OUTLIER_PANELS), where some run logged them."""

    def lines_of(parts: str, stat: str) -> dict:
        lines = {}
        for v in order:
            runs = runs_by_variant.get(v, [])
            ser = _act_series(runs, parts, stat)
            if ser:
                steps, mean, _, _ = aligned_mean_ci(ser)
                lines[v] = (_x_of(steps, _tokens_by_step(runs)), mean)
        return lines

    stat_label, part_label = dict(ACT_STATS), dict(ACT_COLUMNS)
    panels = []
    for stat, _ in ACT_STATS:
        for parts, _ in ACT_COLUMNS:
            if lines := lines_of(parts, stat):
                panels.append((stat, parts, f"{part_label[parts]}: {stat_label[stat]}", lines))
    for i, (stat, parts, title) in enumerate(OUTLIER_PANELS):
        if lines := lines_of(parts, stat):
            panels.append(("outliers", ACT_COLUMNS[i][0], title, lines))
    return panels


def plot_activations(
    runs_by_variant: Mapping[str, Sequence[Records]],
    path: Path,
    colors: Mapping[str, str],
    order: Sequence[str],
) -> str | None:
    """Small multiples of activation statistics over training (rows: stat, cols: part), and a
    last row for the outlier measures (W2 input kurtosis, gate/value alignment) where logged.

    Each line is one variant, averaged over layers and then over seeds (aligned by step).
    """
    panels = activation_panels(runs_by_variant, order)
    if not panels:
        return "no run logged act/L*/... activation statistics"
    row_keys = [s for s, _ in ACT_STATS] + ["outliers"]
    stats_used = [s for s in row_keys if any(p[0] == s for p in panels)]
    parts_used = [c for c, _ in ACT_COLUMNS if any(p[1] == c for p in panels)]
    nr, nc = len(stats_used), len(parts_used)
    fig, axes = plt.subplots(nr, nc, figsize=(4.2 * nc, 2.9 * nr), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    seen = set()
    for stat, parts, title, lines in panels:
        ax = axes[stats_used.index(stat), parts_used.index(parts)]
        ax.set_visible(True)
        for v, ((x, xlabel), mean) in lines.items():
            ax.plot(x, mean, color=colors[v], lw=1.5, label=None if v in seen else v)
            seen.add(v)
            ax.set_xlabel(xlabel, fontsize=8)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, labels = [], []
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle("FFN activation statistics over training (mean over layers and seeds)")
    fig.tight_layout(rect=(0, 0, 0.9, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def plot_scaling(scaling: Any, path: Path, baselines: Sequence[str]) -> str | None:
    """Final loss against training compute (log x): each run, each variant's fit with its 95%
    band over seeds; and the residuals of the fits."""
    by_variant: dict[str, list] = {}
    for p in scaling.points:
        by_variant.setdefault(p.variant, []).append(p)
    computes = [p.compute for p in scaling.points]
    grid = np.geomspace(min(computes) / 1.3, max(computes) * 1.3, 100)
    colors = variant_colors(sorted(by_variant))
    fig, (ax, res) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for variant, points in sorted(by_variant.items()):
        fit, color = scaling.fits[variant], colors[variant]
        bold = variant in baselines
        ax.scatter(
            [p.compute for p in points],
            [p.loss for p in points],
            s=14,
            color=color,
            alpha=0.7,
            zorder=3,
        )
        if not fit.ok:
            ax.plot([], [], color=color, label=f"{variant} (no fit: {fit.reason})")
            continue
        ax.plot(
            grid,
            fit.loss(grid),
            color=color,
            lw=2.4 if bold else 1.5,
            label=f"{variant}: E={fit.E:.2f}, α={fit.alpha:.2f}",
        )
        band = fit_band(points, grid)
        if band is not None:
            ax.fill_between(grid, band[0], band[1], color=color, alpha=0.15, lw=0)
        res.scatter(
            [c for c, _ in fit.residuals],
            [r for _, r in fit.residuals],
            s=14,
            color=color,
            label=variant,
        )
    ax.set_xscale("log")
    ax.set_xlabel("training compute (FLOPs)")
    ax.set_ylabel(scaling.y_label)
    ax.set_title("Loss vs compute: runs, fits L = E + A·(C/C₀)^−α, 95% bands over seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    res.axhline(0, color="0.4", lw=1)
    res.set_xscale("log")
    res.set_xlabel("training compute (FLOPs)")
    res.set_ylabel("loss − fit")
    res.set_title("Residuals")
    res.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def plot_along(along: Sequence[Any], path: Path, colors: Mapping[str, str]) -> str | None:
    """Each variant's paired difference in val loss against each baseline (one panel per
    baseline and setting) at every evaluation after the first: mean over seeds, 95% CI band."""
    panels: dict[tuple[str, str], list[Any]] = {}
    for a in along:
        if len([s for s in a.steps if s]) > 0:
            panels.setdefault((a.baseline, a.setting), []).append(a)
    if not panels:
        return "no paired val-loss curves (a baseline and another variant on common seeds)"
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, ((base, setting), items) in zip(axes[0], panels.items(), strict=True):
        for a in items:
            keep = [i for i, s in enumerate(a.steps) if s]
            x = np.array([a.steps[i] for i in keep])
            m = np.array([a.mean[i] for i in keep])
            h = np.array([a.half[i] for i in keep])
            color = colors.get(a.variant, "gray")
            ax.plot(x, m, color=color, lw=1.6, marker=".", label=a.variant)
            ok = np.isfinite(h)
            if ok.any():
                ax.fill_between(x[ok], (m - h)[ok], (m + h)[ok], color=color, alpha=0.15, lw=0)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel(f"val loss − {base} (nats)")
        ax.set_title(f"against {base}" + (f" ({setting})" if setting else ""), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
