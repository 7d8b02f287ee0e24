"""Turn a Hydra multirun sweep into a results table with confidence intervals, a CSV and plots.

    python -m sweep.report MULTIRUN_DIR [--name NAME] [--out results] [--baseline relu]

It reads only the files each run writes (``summary.json``, ``metrics.jsonl``,
``.hydra/overrides.yaml``) and writes ``report.md``, ``report.csv``, ``summary.json`` and PNG plots
under ``<out>/<name>/``. Runs that did not complete are listed, never silently dropped, and are
excluded from the statistics.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffn_variants.errors import UserInputError
from sweep.stats import (
    kendall_tau,
    mean_ci,
    paired_difference,
    rank_lowest_first,
    spread_percent,
    t_critical,
)

CONFIDENCE = 0.95
# Overrides that say which row and which seed a run is; any other override that differs between
# runs (optim.lr in an lr_scan, say) splits a variant's row by its value.
SAME_ROW_KEYS = {"ffn", "seed", "experiment"}
# Shazeer (2020), "GLU Variants Improve Transformer", Table 1: log-perplexity after 65,536 steps
# (T5-base on C4), the anchor this harness compares its ordering with.
SHAZEER_TABLE_1 = {
    "relu": 1.997, "gelu": 1.983, "swish": 1.994, "glu": 1.982,
    "bilinear": 1.960, "geglu": 1.942, "swiglu": 1.944, "reglu": 1.953,
}
PLOTS = ("val_loss.png", "final_loss.png", "activations.png")
CSV_COLUMNS = [
    "rank", "variant", "setting", "n_seeds", "seeds",
    "params_total", "params_non_embedding", "params_ffn", "params_ffn_per_layer", "d_ff",
    "flops_per_token", "flops_per_token_ffn", "tokens_per_s_mean",
    "final_val_loss_mean", "final_val_loss_ci_half_width", "final_val_loss_ci_low",
    "final_val_loss_ci_high",
    "best_val_loss_mean", "best_val_loss_ci_half_width", "best_val_loss_ci_low",
    "best_val_loss_ci_high",
    "baseline", "diff_vs_baseline_mean", "diff_vs_baseline_ci_half_width",
    "diff_vs_baseline_ci_low", "diff_vs_baseline_ci_high", "diff_vs_baseline_p_value",
    "diff_vs_baseline_n_pairs",
]


@dataclass
class Run:
    """One job of the sweep, as found on disk."""

    path: Path
    rel: str
    name: str
    variant: str | None
    seed: int | None
    status: str
    reason: str = ""
    summary: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    bad_metric_lines: int = 0
    settings: dict[str, str] = field(default_factory=dict)  # overrides other than ffn and seed
    setting: str = ""  # the settings that vary across the sweep, e.g. "optim.lr=0.003"

    @property
    def label(self) -> str:
        """The table row of this run: its variant, plus its setting where the sweep varies one."""
        return f"{self.variant} ({self.setting})" if self.setting else str(self.variant)

    @property
    def ok(self) -> bool:
        return not self.reason


# --------------------------------------------------------------------------- discovery / loading


def _natural_key(p: Path) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in p.parts]


def find_run_dirs(root: Path, exclude: Path | None = None) -> list[Path]:
    """Run dirs under ``root`` (itself included): dirs holding ``.hydra/``, ``summary.json`` or
    ``metrics.jsonl``. A run dir's own subdirs are not searched; ``exclude`` and dirs holding a
    ``report.md`` (earlier reports) are skipped."""
    found = []
    excl = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if excl is not None and d.resolve() == excl:
            dirnames[:] = []
            continue
        if "report.md" in filenames and ".hydra" not in dirnames:
            dirnames[:] = []  # an earlier report written inside the sweep dir, not a run
            continue
        if ".hydra" in dirnames or "summary.json" in filenames or "metrics.jsonl" in filenames:
            found.append(d)
            dirnames[:] = []
            continue
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
    return sorted(found, key=_natural_key)


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parse a ``metrics.jsonl``; lines that are not JSON objects (e.g. a truncated last line
    of a crashed run) are skipped and counted. Returns ``(records, n_bad_lines)``."""
    records, bad = [], 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), (int, float)):
            records.append(rec)
        else:
            bad += 1
    return records, bad


def read_overrides(path: Path) -> dict[str, str]:
    """``key -> value`` from a Hydra ``overrides.yaml`` (a list of ``key=value`` strings)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    items: list[str]
    try:
        import yaml

        loaded = yaml.safe_load(text)
        items = [str(x) for x in loaded] if isinstance(loaded, list) else []
    except Exception:  # no PyYAML or bad YAML: fall back to "- key=value" lines
        items = [ln.strip()[1:].strip().strip("'\"") for ln in text.splitlines()
                 if ln.strip().startswith("-")]
    out = {}
    for item in items:
        if "=" in item:
            k, v = item.split("=", 1)
            out[k.strip().lstrip("+~")] = v.strip()
    return out


def _as_int(x: Any) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_run(path: Path, root: Path) -> Run:
    """Read one run dir and decide whether it counts (completed with a finite final val loss)."""
    rel = str(path.relative_to(root)) if path != root else "."
    ov = read_overrides(path / ".hydra" / "overrides.yaml")
    metrics, bad = read_metrics(path / "metrics.jsonl")
    summary, problem = None, ""
    sp = path / "summary.json"
    if not sp.exists():
        status, problem = "missing", "no summary.json (died before writing it)"
    else:
        try:
            summary = json.loads(sp.read_text(encoding="utf-8"))
            if not isinstance(summary, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            summary = None
            status, problem = "unreadable", f"summary.json unreadable: {str(e).splitlines()[0]}"
    s = summary or {}
    variant = s.get("variant") or ov.get("ffn")
    variant = str(variant) if variant is not None else None
    seed = _as_int(s.get("seed", ov.get("seed")))
    name = s.get("run_name") or (f"{variant}-s{seed}" if variant and seed is not None else rel)
    if summary is not None:
        status = str(s.get("status", "unknown"))
        if status != "completed":
            err = s.get("error")
            problem = str(err).strip().splitlines()[0] if err else {
                "running": "unfinished: summary still says running (killed or crashed?)",
                "diverged": "diverged",
            }.get(status, f"status {status!r}")
        elif not _finite(s.get("final_val_loss")):
            problem = "completed but final_val_loss is missing or not finite"
        elif variant is None:
            problem = "variant unknown (no 'variant' in summary, no ffn= override)"
    if problem and status != "completed" and metrics:
        problem += f"; last logged step {int(metrics[-1]['step'])}"
    settings = {k: v for k, v in ov.items()
                if k not in SAME_ROW_KEYS and not k.startswith("hydra")}
    return Run(path=path, rel=rel, name=str(name), variant=variant, seed=seed, status=status,
               reason=problem, summary=summary, metrics=metrics, bad_metric_lines=bad,
               settings=settings)


def varying_keys(runs: Sequence[Run]) -> list[str]:
    """The overrides (other than ffn and seed) whose values differ between runs, e.g. optim.lr
    in an lr_scan."""
    keys = sorted({k for r in runs for k in r.settings})
    return [k for k in keys if len({r.settings.get(k) for r in runs}) > 1]


def label_settings(runs: Sequence[Run]) -> None:
    """Give each run its `setting`: its values of the keys that vary across the sweep."""
    varying = varying_keys(runs)
    for r in runs:
        r.setting = ", ".join(f"{k}={r.settings.get(k, 'default')}" for k in varying)


def load_sweep(root: Path, exclude: Path | None = None) -> list[Run]:
    """All runs under ``root``; a second completed run of the same row and seed is excluded."""
    if not root.is_dir():
        raise UserInputError(f"sweep dir {root} does not exist or is not a directory")
    dirs = find_run_dirs(root, exclude)
    if not dirs:
        raise UserInputError(
            f"no runs found under {root} (expected job dirs with .hydra/, summary.json or "
            "metrics.jsonl)")
    runs = [load_run(d, root) for d in dirs]
    label_settings(runs)
    seen: dict[tuple[str, int], Run] = {}
    for r in runs:
        if r.ok and r.seed is not None:
            key = (r.label, r.seed)
            if key in seen:
                r.status = "duplicate"
                r.reason = f"same variant, setting and seed as {seen[key].rel}"
            else:
                seen[key] = r
    return runs


# --------------------------------------------------------------------------- the table


def _get(d: dict | None, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _num(x: Any) -> float | int:
    """A count as int (params, FLOPs), anything else as float; NaN when missing."""
    if not _finite(x):
        return math.nan
    return int(x) if float(x).is_integer() else float(x)


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
                base_final.setdefault(r.setting, {})[r.seed] = r.summary["final_val_loss"]
    rows = []
    for label, rs in by_label.items():
        rs = sorted(rs, key=lambda r: (r.seed is None, r.seed or 0))
        v, setting = rs[0].variant, rs[0].setting
        first = rs[0].summary
        fm, fh = mean_ci([r.summary["final_val_loss"] for r in rs], CONFIDENCE)
        best = [r.summary["best_val_loss"] for r in rs if _finite(r.summary.get("best_val_loss"))]
        bm, bh = mean_ci(best, CONFIDENCE)
        tps = [r.summary["tokens_per_s"] for r in rs if _finite(r.summary.get("tokens_per_s"))]
        row: dict[str, Any] = {
            "label": label,
            "variant": v,
            "setting": setting,
            "n_seeds": len(rs),
            "seeds": " ".join(str(r.seed) for r in rs),
            "params_total": _num(_get(first, "params", "total")),
            "params_non_embedding": _num(_get(first, "params", "non_embedding")),
            "params_ffn": _num(_get(first, "params", "ffn")),
            "params_ffn_per_layer": _num(_get(first, "params", "ffn_per_layer")),
            "d_ff": _num(_get(first, "params", "d_ff")),
            "flops_per_token": _num(_get(first, "flops_per_token", "total")),
            "flops_per_token_ffn": _num(_get(first, "flops_per_token", "ffn")),
            "tokens_per_s_mean": mean_ci(tps)[0],
            "final_val_loss_mean": fm, "final_val_loss_ci_half_width": fh,
            "final_val_loss_ci_low": fm - fh, "final_val_loss_ci_high": fm + fh,
            "best_val_loss_mean": bm, "best_val_loss_ci_half_width": bh,
            "best_val_loss_ci_low": bm - bh, "best_val_loss_ci_high": bm + bh,
            "baseline": baseline if setting in base_final else "",
        }
        if setting in base_final and v != baseline:
            mine = {r.seed: r.summary["final_val_loss"] for r in rs if r.seed is not None}
            d, dh, p, n = paired_difference(mine, base_final[setting], CONFIDENCE)
        else:
            d = dh = p = math.nan
            n = 0
        row.update({
            "diff_vs_baseline_mean": d, "diff_vs_baseline_ci_half_width": dh,
            "diff_vs_baseline_ci_low": d - dh, "diff_vs_baseline_ci_high": d + dh,
            "diff_vs_baseline_p_value": p, "diff_vs_baseline_n_pairs": n,
        })
        rows.append(row)
    ranks = rank_lowest_first({r["label"]: r["final_val_loss_mean"] for r in rows})
    for r in rows:
        r["rank"] = ranks[r["label"]]
    return sorted(rows, key=lambda r: (r["rank"], r["label"]))


def compare_with_table_1(rows: Sequence[dict]) -> dict[str, Any] | None:
    """Our ordering of the Table 1 variants beside Shazeer's: both values and ranks per variant
    and Kendall's tau between the two orderings (None with fewer than 3 shared variants)."""
    ours = {r["variant"]: r["final_val_loss_mean"] for r in best_settings(rows)
            if r["variant"] in SHAZEER_TABLE_1 and math.isfinite(r["final_val_loss_mean"])}
    if len(ours) < 3:
        return None
    theirs = {v: SHAZEER_TABLE_1[v] for v in ours}
    tau, p = kendall_tau([ours[v] for v in ours], [theirs[v] for v in ours])
    our_rank, their_rank = rank_lowest_first(ours), rank_lowest_first(theirs)
    return {
        "variants": [{"variant": v, "ours": ours[v], "our_rank": our_rank[v],
                      "shazeer": theirs[v], "shazeer_rank": their_rank[v]}
                     for v in sorted(ours, key=lambda v: their_rank[v])],
        "kendall_tau": tau, "p_value": p,
    }


def best_settings(rows: Sequence[dict]) -> list[dict]:
    """Per variant, its row with the lowest mean final val loss (for sweeps that vary a setting,
    such as the learning rate), best variant first."""
    best: dict[str, dict] = {}
    for r in rows:  # rows come sorted best first
        best.setdefault(r["variant"], r)
    return list(best.values())


# --------------------------------------------------------------------------- formatting


def _si(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.4g}{suf}"
    return f"{x:.0f}"


def _pm(mean: float, half: float, signed: bool = False) -> str:
    if not math.isfinite(mean):
        return "n/a"
    m = f"{mean:+.4f}" if signed else f"{mean:.4f}"
    return f"{m} ± {half:.4f}" if math.isfinite(half) else f"{m} ± n/a"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _values(runs: Sequence[Run], *keys: str) -> list:
    return sorted({_get(r.summary, *keys) for r in runs if _get(r.summary, *keys) is not None},
                  key=str)


def _span(vals: list, fmt=str) -> str:
    if not vals:
        return "unknown"
    if len(vals) == 1:
        return fmt(vals[0])
    try:
        return f"{fmt(min(vals))}–{fmt(max(vals))} (differs between runs)"
    except TypeError:
        return ", ".join(fmt(v) for v in vals) + " (differs between runs)"


def render_markdown(
    name: str, root: Path, runs: Sequence[Run], rows: Sequence[dict], baseline: str,
    plots: dict[str, str | None], table_1: dict[str, Any] | None,
) -> str:
    """The human-readable report."""
    ok = [r for r in runs if r.ok]
    bad = [r for r in runs if not r.ok]
    has_base = any(r["variant"] == baseline for r in rows)
    varying = varying_keys(runs)
    L = [f"# FFN variant sweep: {name}", ""]
    L.append(f"- **Sweep dir:** `{root}`")
    L.append(f"- **Runs:** {len(runs)} found, {len(ok)} completed, {len(bad)} failed/unfinished "
             "(excluded from the statistics)")
    steps, tokens = _values(ok, "steps"), _values(ok, "tokens")
    L.append(f"- **Model:** {_span(_values(ok, 'model'))}; **steps:** {_span(steps)}; "
             f"**tokens per run:** {_span(tokens, lambda t: f'{int(t):,}')}")
    match = _values(ok, "match")
    pspread = spread_percent(r["params_total"] for r in rows)
    fspread = spread_percent(r["flops_per_token"] for r in rows)
    ps = f"{pspread:.2f}%" if math.isfinite(pspread) else "n/a"
    fs = f"{fspread:.2f}%" if math.isfinite(fspread) else "n/a"
    if match == ["params"]:
        msg = ("Variants were matched on **parameter count** (each variant's d_ff chosen so its "
               f"FFN has about the same parameters): total parameters differ by {ps} across "
               f"variants (largest vs smallest); FLOPs/token differ by {fs}.")
    elif match == ["flops"]:
        msg = ("Variants were matched on **FLOPs per token** (each variant's d_ff chosen so its "
               f"forward FLOPs agree): FLOPs/token differ by {fs} across variants (largest vs "
               f"smallest); total parameters differ by {ps}.")
    else:
        msg = (f"Matching: {', '.join(map(str, match)) or 'unknown'} (not one criterion for all "
               f"runs!); total parameters differ by {ps}, FLOPs/token by {fs} across variants.")
    L.append(f"- **Matching:** {msg}")
    L.append(f"- **Baseline:** {baseline}" + ("" if has_base else
             f" — **not in this sweep** (no completed {baseline} run), so there is no "
             "difference column"))
    missing = sorted({r.variant or "?" for r in bad} - {r["variant"] for r in rows})
    if missing:
        L.append(f"- **Variants with no completed run:** {', '.join(missing)}")
    L.append("")

    L.append("## Results")
    L.append("")
    if rows:
        head = ["variant", "params (total)", "FFN params", "FLOPs/token", "tokens/s", "seeds",
                "final val loss", "best val loss"]
        if has_base:
            head += [f"Δ final vs {baseline}", "p (paired t)"]
        head.append("rank")
        L.append("| " + " | ".join(head) + " |")
        L.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
        for r in rows:
            cells = [f"**{r['variant']}**" + (f" ({r['setting']})" if r["setting"] else ""),
                     _si(r["params_total"]), _si(r["params_ffn"]),
                     _si(r["flops_per_token"]),
                     f"{r['tokens_per_s_mean']:,.0f}" if math.isfinite(r["tokens_per_s_mean"])
                     else "n/a",
                     str(r["n_seeds"]),
                     _pm(r["final_val_loss_mean"], r["final_val_loss_ci_half_width"]),
                     _pm(r["best_val_loss_mean"], r["best_val_loss_ci_half_width"])]
            if has_base:
                if r["variant"] == baseline:
                    cells += ["(baseline)", ""]
                elif r["diff_vs_baseline_n_pairs"] == 0:
                    cells += ["no common seeds", "n/a"]
                else:
                    cells += [_pm(r["diff_vs_baseline_mean"], r["diff_vs_baseline_ci_half_width"],
                                  signed=True) + f" (n={r['diff_vs_baseline_n_pairs']})",
                              _p(r["diff_vs_baseline_p_value"])]
            cells.append(str(r["rank"]))
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
        L.append("Means are over seeds; ± is the half-width of the 95% confidence interval "
                 "(Student t, df = n − 1). Rank 1 = lowest mean final val loss.")
        if varying:
            L.append("")
            L.append(f"This sweep varies {', '.join(varying)}: each variant has one row per value, "
                     f"and Δ pairs each run with the {baseline} run of the same "
                     f"{', '.join(varying)} and seed.")
            L.append("")
            L.append("### Best setting per variant")
            L.append("")
            L.append("| variant | best setting | final val loss | seeds |")
            L.append("|---|---|---:|---:|")
            for r in best_settings(rows):
                L.append(f"| **{r['variant']}** | {r['setting']} | "
                         f"{_pm(r['final_val_loss_mean'], r['final_val_loss_ci_half_width'])} | "
                         f"{r['n_seeds']} |")
    else:
        L.append("_No completed runs: nothing to tabulate._")
    L.append("")

    if table_1 is not None:
        L.append("## Against Shazeer (2020), Table 1")
        L.append("")
        L.append("| variant | final val loss here | rank here | Table 1 log-perplexity | "
                 "rank in Table 1 |")
        L.append("|---|---:|---:|---:|---:|")
        for t in table_1["variants"]:
            L.append(f"| {t['variant']} | {t['ours']:.4f} | {t['our_rank']} | {t['shazeer']:.3f} | "
                     f"{t['shazeer_rank']} |")
        L.append("")
        L.append(
            f"Kendall's τ between the two orderings: {table_1['kendall_tau']:+.2f} (p = "
            f"{_p(table_1['p_value'])}; +1 is the same order, 0 unrelated). Table 1 trained "
            "T5-base for 65,536 steps on C4; a small model trained briefly need not agree, and "
            "differences inside the confidence intervals above say nothing about order."
        )
        L.append("")

    L.append("## Failed / unfinished runs")
    L.append("")
    if bad:
        L.append("These runs are excluded from every number above.")
        L.append("")
        L.append("| run | status | reason | dir |")
        L.append("|---|---|---|---|")
        for r in bad:
            reason = r.reason.replace("|", "\\|")
            L.append(f"| {r.name} | {r.status} | {reason} | `{r.rel}` |")
    else:
        L.append("None: every run completed.")
    partial = [r for r in ok if r.bad_metric_lines]
    if partial:
        L.append("")
        L.append("Skipped unparseable metrics.jsonl lines (e.g. a truncated last line): " +
                 ", ".join(f"{r.name} ({r.bad_metric_lines})" for r in partial))
    L.append("")

    L.append("## Plots")
    L.append("")
    titles = {"val_loss.png": "Validation loss vs tokens",
              "final_loss.png": "Final validation loss with 95% CI",
              "activations.png": "Activation statistics over training"}
    for fname, skipped in plots.items():
        if skipped is None:
            L.append(f"### {titles[fname]}")
            L.append("")
            L.append(f"![{titles[fname]}]({fname})")
        else:
            L.append(f"### {titles[fname]}")
            L.append("")
            L.append(f"_Not plotted: {skipped}._")
        L.append("")

    L.append("## How to read this")
    L.append("")
    n_typ = max((r["n_seeds"] for r in rows), default=0)
    tval = t_critical(n_typ, CONFIDENCE)
    tnote = (f" With {n_typ} seeds the multiplier is t = {tval:.2f}, so the intervals are wide."
             if math.isfinite(tval) else "")
    L.append(
        "Each number is a mean over seeds, and ± gives the 95% confidence interval for that mean: "
        "if the runs were repeated with new seeds, an interval built this way would cover the "
        "true mean 95% of the time (Student t with n − 1 degrees of freedom, assuming roughly "
        f"normal seed-to-seed noise).{tnote} With a single seed no interval can be estimated "
        "and it is shown as n/a. "
        + (f"The Δ column compares each variant with {baseline} seed by seed (only seeds both "
           "completed): the mean of the per-seed differences in final val loss, its 95% CI, and "
           "the p-value of the paired t-test. Negative Δ means lower loss than the baseline. "
           "A difference whose CI includes 0 (p ≥ 0.05) is not significant at these seeds: "
           "it may be seed noise, and more seeds are needed to tell. "
           if has_base else
           "Two variants whose intervals overlap heavily cannot be told apart at these seeds. ")
        + "Ranks order the means only; they say nothing about significance."
    )
    L.append("")
    return "\n".join(L)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """The table with unformatted numbers (NaN as an empty cell)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(r[k], float) and not math.isfinite(r[k])
                            else repr(r[k]) if isinstance(r[k], float) else r[k])
                        for k in CSV_COLUMNS})


def default_name(root: Path, runs: Sequence[Run]) -> str:
    """The summaries' ``group`` if every completed run agrees on one, else the sweep dir's last
    two path parts joined with ``_`` (``multirun/2026-11-22/10-00-00`` -> ``2026-11-22_10-00-00``).
    """
    groups = {_get(r.summary, "group") for r in runs if r.ok}
    if len(groups) == 1 and (g := groups.pop()):
        name = str(g)
    else:
        name = "_".join(root.resolve().parts[-2:])
    return re.sub(r"[^\w.\-]+", "_", name).strip("_") or "sweep"


# --------------------------------------------------------------------------- entry point


def make_report(
    root: Path, out: Path = Path("results"), name: str | None = None, baseline: str = "relu",
    log=print,
) -> Path:
    """Read the sweep under ``root``, write the report files, return the output dir."""
    from sweep import plots as P

    root = Path(root)
    runs = load_sweep(root, exclude=Path(out))
    ok = [r for r in runs if r.ok]
    log(f"found {len(runs)} runs under {root}: {len(ok)} completed, {len(runs) - len(ok)} "
        "failed/unfinished")
    name = name or default_name(root, runs)
    dest = Path(out) / name
    dest.mkdir(parents=True, exist_ok=True)

    rows = build_rows(runs, baseline)
    table_1 = compare_with_table_1(rows)
    order = [r["label"] for r in rows]
    colors = P.variant_colors(order)
    by_var: dict[str, list[list[dict]]] = {}
    for r in ok:
        by_var.setdefault(r.label, []).append(r.metrics)
    seeds_final = {v: {r.seed: r.summary["final_val_loss"] for r in ok if r.label == v}
                   for v in order}
    plots: dict[str, str | None] = {}
    plots["val_loss.png"] = P.plot_val_loss(by_var, dest / "val_loss.png", colors, order)
    plots["final_loss.png"] = P.plot_final_loss(rows, seeds_final, dest / "final_loss.png",
                                                colors, baseline)
    plots["activations.png"] = P.plot_activations(by_var, dest / "activations.png", colors, order)
    for fname, skipped in plots.items():
        if skipped is None:
            log(f"wrote {dest / fname}")
        else:
            (dest / fname).unlink(missing_ok=True)  # no stale plot from an earlier report
            log(f"skipped {fname}: {skipped}")

    (dest / "report.md").write_text(
        render_markdown(name, root, runs, rows, baseline, plots, table_1), encoding="utf-8")
    log(f"wrote {dest / 'report.md'}")
    write_csv(rows, dest / "report.csv")
    log(f"wrote {dest / 'report.csv'}")
    summary = {
        "name": name, "sweep_dir": str(root), "baseline": baseline,
        "baseline_present": any(r["variant"] == baseline for r in rows),
        "confidence": CONFIDENCE,
        "n_runs": len(runs), "n_completed": len(ok), "n_failed": len(runs) - len(ok),
        "match": _values(ok, "match"), "model": _values(ok, "model"),
        "rows": rows,
        "best_settings": [{"variant": r["variant"], "setting": r["setting"],
                           "final_val_loss_mean": r["final_val_loss_mean"]}
                          for r in best_settings(rows)] if any(r.setting for r in runs) else [],
        "shazeer_table_1": table_1,
        "failed": [{"name": r.name, "variant": r.variant, "seed": r.seed, "status": r.status,
                    "reason": r.reason, "dir": r.rel} for r in runs if not r.ok],
        "plots": {k: ("written" if v is None else f"skipped: {v}") for k, v in plots.items()},
    }
    (dest / "summary.json").write_text(json.dumps(_clean(summary), indent=2) + "\n",
                                       encoding="utf-8")
    log(f"wrote {dest / 'summary.json'}")
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 on bad input)."""
    ap = argparse.ArgumentParser(
        prog="python -m sweep.report",
        description="Summarise a Hydra multirun sweep of FFN variants: a table of final/best val "
        "loss (mean ± 95% CI over seeds), paired differences vs a baseline, a CSV, a JSON "
        "summary and plots. Failed/unfinished runs are listed and excluded from the statistics.",
    )
    ap.add_argument("sweep_dir", type=Path, help="the multirun dir (holds multirun.yaml and one "
                    "subdir per job; run dirs are found recursively)")
    ap.add_argument("--name", default=None,
                    help="report name (output subdir). Default: the 'group' in the runs' "
                    "summary.json if all completed runs agree, else the sweep dir's last two "
                    "path parts joined with '_'")
    ap.add_argument("--out", type=Path, default=Path("results"),
                    help="parent dir of the report (default: results); writes <out>/<name>/")
    ap.add_argument("--baseline", default="relu",
                    help="variant the others are compared with, paired by seed (default: relu)")
    args = ap.parse_args(argv)
    try:
        dest = make_report(args.sweep_dir, args.out, args.name, args.baseline)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"report: {dest / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
