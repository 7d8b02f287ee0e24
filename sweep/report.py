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
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserInputError
from sweep.markdown import ReportInput, render_markdown
from sweep.runs import Run, load_sweep, summary_values
from sweep.table import CONFIDENCE, best_settings, build_rows, compare_with_table_1

CSV_COLUMNS = [
    "rank", "variant", "setting", "n_seeds", "seeds",
    "params_total", "params_non_embedding", "params_ffn", "params_ffn_per_layer", "d_ff",
    "flops_per_token", "flops_per_token_ffn", "tokens_per_s_mean", "mfu_mean",
    "model_tflops_mean",
    "final_val_loss_mean", "final_val_loss_ci_half_width", "final_val_loss_ci_low",
    "final_val_loss_ci_high",
    "best_val_loss_mean", "best_val_loss_ci_half_width", "best_val_loss_ci_low",
    "best_val_loss_ci_high",
    "baseline", "diff_vs_baseline_mean", "diff_vs_baseline_ci_half_width",
    "diff_vs_baseline_ci_low", "diff_vs_baseline_ci_high", "diff_vs_baseline_p_value",
    "diff_vs_baseline_n_pairs",
]  # fmt: skip


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

    def cell(x: Any) -> Any:
        if isinstance(x, float):
            return repr(x) if math.isfinite(x) else ""
        return x

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: cell(r[k]) for k in CSV_COLUMNS})


def default_name(root: Path, runs: Sequence[Run]) -> str:
    """The summaries' ``group`` if every completed run agrees on one, else the sweep dir's last
    two path parts joined with ``_`` (``multirun/2026-11-22/10-00-00`` -> ``2026-11-22_10-00-00``).
    """
    groups = {r.summary.group for r in runs if r.ok}
    if len(groups) == 1 and (g := groups.pop()):
        name = str(g)
    else:
        name = "_".join(root.resolve().parts[-2:])
    return re.sub(r"[^\w.\-]+", "_", name).strip("_") or "sweep"


def make_plots(
    runs: Sequence[Run], rows: Sequence[dict], baseline: str, dest: Path
) -> dict[str, str | None]:
    """The report's PNGs: file name -> None if written, else the reason it was not."""
    from sweep import plots as P

    ok = [r for r in runs if r.ok]
    order = [r["label"] for r in rows]
    colors = P.variant_colors(order)
    by_label: dict[str, list[list[dict]]] = {}
    for r in ok:
        by_label.setdefault(r.label, []).append(r.metrics)
    finals = {v: {r.seed: r.summary.final_val_loss for r in ok if r.label == v} for v in order}
    return {
        "val_loss.png": P.plot_val_loss(by_label, dest / "val_loss.png", colors, order),
        "final_loss.png": P.plot_final_loss(
            rows, finals, dest / "final_loss.png", colors, baseline
        ),
        "activations.png": P.plot_activations(by_label, dest / "activations.png", colors, order),
    }


def report_json(rep: ReportInput) -> dict[str, Any]:
    """summary.json of the report: the rows and everything the Markdown says, unformatted."""
    runs, rows = rep.runs, rep.rows
    best = [
        {"variant": r["variant"], "setting": r["setting"],
         "final_val_loss_mean": r["final_val_loss_mean"]}
        for r in best_settings(rows)
    ] if any(r.setting for r in runs) else []  # fmt: skip
    failed = [
        {"name": r.name, "variant": r.variant, "seed": r.seed, "status": r.status,
         "reason": r.reason, "dir": r.rel}
        for r in rep.bad
    ]  # fmt: skip
    return {
        "name": rep.name, "sweep_dir": str(rep.root), "baseline": rep.baseline,
        "baseline_present": rep.has_baseline, "confidence": CONFIDENCE,
        "n_runs": len(runs), "n_completed": len(rep.ok), "n_failed": len(rep.bad),
        "match": summary_values(rep.ok, "match"), "model": summary_values(rep.ok, "model"),
        "rows": rows, "best_settings": best, "shazeer_table_1": rep.table_1, "failed": failed,
        "plots": {k: ("written" if v is None else f"skipped: {v}") for k, v in rep.plots.items()},
    }  # fmt: skip


def make_report(
    root: Path, out: Path = Path("results"), name: str | None = None, baseline: str = "relu",
    log: Callable[[str], None] = print,
) -> Path:  # fmt: skip
    """Read the sweep under ``root``, write the report files, return the output dir."""
    root = Path(root)
    runs = load_sweep(root, exclude=Path(out))
    n_ok = sum(r.ok for r in runs)
    log(f"found {len(runs)} runs under {root}: {n_ok} completed, {len(runs) - n_ok} "
        "failed/unfinished")  # fmt: skip
    name = name or default_name(root, runs)
    dest = Path(out) / name
    dest.mkdir(parents=True, exist_ok=True)
    rows = build_rows(runs, baseline)
    plots = make_plots(runs, rows, baseline, dest)
    for fname, skipped in plots.items():
        if skipped is not None:
            (dest / fname).unlink(missing_ok=True)  # no stale plot from an earlier report
        log(f"wrote {dest / fname}" if skipped is None else f"skipped {fname}: {skipped}")
    rep = ReportInput(name, root, runs, rows, baseline, plots, compare_with_table_1(rows))
    (dest / "report.md").write_text(render_markdown(rep), encoding="utf-8")
    write_csv(rows, dest / "report.csv")
    summary = json.dumps(_clean(report_json(rep)), indent=2) + "\n"
    (dest / "summary.json").write_text(summary, encoding="utf-8")
    for fname in ("report.md", "report.csv", "summary.json"):
        log(f"wrote {dest / fname}")
    return dest


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m sweep.report",
        description="Summarise a Hydra multirun sweep of FFN variants: a table of final/best val "
        "loss (mean ± 95% CI over seeds), paired differences vs a baseline, a CSV, a JSON "
        "summary and plots. Failed/unfinished runs are listed and excluded from the statistics.",
    )
    ap.add_argument("sweep_dir", type=Path, help="the multirun dir (holds multirun.yaml and one "
                    "subdir per job; run dirs are found recursively)")  # fmt: skip
    ap.add_argument("--name", default=None,
                    help="report name (output subdir). Default: the 'group' in the runs' "
                    "summary.json if all completed runs agree, else the sweep dir's last two "
                    "path parts joined with '_'")  # fmt: skip
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="parent dir of the report (default: results); writes <out>/<name>/",
    )
    ap.add_argument(
        "--baseline",
        default="relu",
        help="variant the others are compared with, paired by seed (default: relu)",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 on bad input)."""
    args = parse_args(argv)
    try:
        dest = make_report(args.sweep_dir, args.out, args.name, args.baseline)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"report: {dest / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
