"""Turn a Hydra multirun sweep into a results table with confidence intervals, a CSV and plots.

    python -m sweep.report MULTIRUN_DIR [--name NAME] [--out results] [--baseline relu]
                           [--baseline relu2] [--shared SWEEP_DIR] [--throughput FILE]
                           [--y loss|bpb] [--wandb [online|offline]]

It reads only the files each run writes (``summary.json``, ``metrics.jsonl``, ``.hydra/``) and
writes ``report.md``, ``report.csv`` (a row per variant), ``runs.csv`` (a row per run: everything
the statistics are computed from), ``evals.csv`` (a row per run and evaluation: the along-training
view), ``documents.csv`` (a row per run and held-out document of its final evaluation: the
text-level view, sweep.documents), ``summary.json`` and PNG plots under ``<out>/<name>/``. Runs
that did not complete are listed, never silently dropped, and are excluded from the statistics. A
sweep over model sizes also gets compute multipliers (in training FLOPs and seconds; --y bpb fits
bits per byte instead of nats). Tokens/s and MFU come from bench.throughput's file where there is
one (--throughput, or <out>/<experiment>_throughput/), else from the runs. --shared ranks this
sweep beside another of the same experiment (a tuned sweep beside one at a shared rate). With
--wandb the report is also logged as one W&B run in the sweep's group.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ffn_variants.variants import VARIANTS
from harness.errors import UserInputError
from harness.json_safe import dumps, json_safe
from harness.tuned import TunedRates, TunedSet
from sweep import serving, throughput
from sweep.along import along_training, train_val_gaps
from sweep.documents import DOCUMENT_COLUMNS, document_rows, text_level
from sweep.family import adjust, family_metric
from sweep.findings import evaluation, findings_json, seeds_needed
from sweep.literature import check_claims, compare_with_table_1, judge_claims
from sweep.markdown import render_markdown
from sweep.model import Comparison, ReportInput, Scaling
from sweep.optimizers import across_optimizers
from sweep.runs import Run, default_name, load_sweep, summary_values
from sweep.scaling import multipliers, points_from_runs
from sweep.stats import CONFIDENCE
from sweep.table import Row, best_settings, build_rows, columns

METRICS = {"loss": "final_val_loss", "bpb": "final_val_bpb"}  # --y: the scaling fit's y-axis


def _cell(x: Any) -> Any:
    """A CSV cell: floats in full precision, None (no finite value) as an empty cell."""
    return "" if x is None else repr(x) if isinstance(x, float) else x


def write_csv(rows: Sequence[Row], baselines: Sequence[str], path: Path) -> None:
    """The table with unformatted numbers (a missing or non-finite value as an empty cell)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns(baselines))
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in json_safe(r.flat(baselines)).items()})


RUN_COLUMNS = [
    "variant",
    "model",
    "setting",
    "seed",
    "lr",
    "status",
    "optimizer",
    "final_val_loss",
    "best_val_loss",
    "final_val_bpb",
    "best_val_bpb",
    "final_train_loss",
    "tokens",
    "eval_slice",
    "eval_tokens",
    "dir",
]


def run_record(r: Run) -> dict[str, Any]:
    """One run as runs.csv has it: what the report's statistics are computed from."""
    s = r.summary
    data = s.data if s is not None and isinstance(s.data, dict) else {}
    value = {k: getattr(s, k, None) if s is not None else None for k in RUN_COLUMNS[7:13]}
    return {
        "variant": r.variant,
        "model": (s.model if s is not None else None) or r.settings.get("model"),
        "setting": r.setting,
        "seed": r.seed,
        "lr": r.lr,
        "status": r.status if r.ok else f"{r.status} (excluded: {r.reason})",
        "optimizer": r.optimizer,
        **value,
        "eval_slice": data.get("eval_slice"),
        "eval_tokens": data.get("val_tokens"),
        "dir": r.rel,
    }


def write_runs_csv(runs: Sequence[Run], path: Path) -> None:
    """runs.csv: one row per run found, completed or not (the excluded say why)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=RUN_COLUMNS)
        w.writeheader()
        for r in runs:
            w.writerow({k: _cell(v) for k, v in json_safe(run_record(r)).items()})


EVAL_COLUMNS = ["variant", "setting", "seed", "step", "val_loss", "val_bpb", "dir"]


def eval_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """evals.csv: a row per completed run and evaluation (metrics.jsonl's val/ records)."""
    return [
        {
            "variant": r.variant,
            "setting": r.setting,
            "seed": r.seed,
            "step": m["step"],
            "val_loss": m["val/loss"],
            "val_bpb": m.get("val/bpb"),
            "dir": r.rel,
        }
        for r in runs
        if r.ok
        for m in r.metrics
        if "val/loss" in m and "step" in m
    ]


def write_table(rows: Sequence[dict[str, Any]], fields: Sequence[str], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(v) for k, v in json_safe(row).items()})


def scaling_analysis(
    runs: Sequence[Run], baselines: Sequence[str], metric: str = "final_val_loss"
) -> tuple[Scaling | None, str]:
    """Fits and multipliers when the sweep varies the model size, else None and why not."""
    points, why = points_from_runs(runs, metric)
    if not points:
        return None, why
    fits, by_baseline = {}, {}
    for b in baselines:
        fits, by_baseline[b] = multipliers(points, b)
    return Scaling(points, fits, by_baseline, metric), ""


def tuned_rates(runs: Sequence[Run]) -> tuple[TunedRates | None, str]:
    """The tuned-rates file the runs trained from (None if none), and why it could not be read."""
    files = sorted({r.tuned_from for r in runs if r.ok and r.tuned_from})
    if not files:
        return None, ""
    if len(files) > 1:
        return None, f"the runs name {len(files)} files: {', '.join(files)}"
    try:
        tuned = TunedSet.load(files[0].split(", "))
    except UserInputError as e:
        return None, str(e)
    return next(iter(tuned.by_optimizer.values()), None), ""


def comparison(root: Path, baselines: Sequence[str], out: Path) -> Comparison:
    """Another sweep (--shared), tabulated like this one."""
    runs = load_sweep(Path(root), exclude=Path(out))
    ok = [r for r in runs if r.ok]
    lrs = sorted({r.lr for r in ok if r.lr is not None})
    tuned = bool(ok) and all(r.tuned_from for r in ok)
    return Comparison(Path(root), build_rows(runs, baselines), lrs, tuned)


def make_plots(rep: ReportInput, dest: Path) -> dict[str, str | None]:
    """The report's PNGs: file name -> None if written, else the reason it was not."""
    from sweep import plots as P  # matplotlib: imported only when a report draws plots

    ok, rows = rep.ok, rep.rows
    order = [r.label for r in rows]
    colors = P.variant_colors(order)
    by_label: dict[str, list[list[dict]]] = {}
    for r in ok:
        by_label.setdefault(r.label, []).append(r.metrics)
    finals = {v: {r.seed: r.summary.final_val_loss for r in ok if r.label == v} for v in order}
    out = {
        "val_loss.png": P.plot_val_loss(by_label, dest / "val_loss.png", colors, order),
        "final_loss.png": P.plot_final_loss(
            rows, finals, dest / "final_loss.png", colors, rep.present_baselines
        ),
    }
    if rep.scaling is not None:
        out["scaling.png"] = P.plot_scaling(rep.scaling, dest / "scaling.png", rep.baselines)
    out["activations.png"] = P.plot_activations(by_label, dest / "activations.png", colors, order)
    out["diff_along.png"] = P.plot_along(rep.along, dest / "diff_along.png", colors)
    return out


def report_json(rep: ReportInput) -> dict[str, Any]:
    """summary.json of the report: the rows and everything the Markdown says, unformatted."""
    runs, rows = rep.runs, rep.rows
    best = (
        [
            {
                "variant": r.variant,
                "setting": r.setting,
                "final_val_loss_mean": r.final_val_loss_mean,
            }
            for r in best_settings(rows)
        ]
        if any(r.setting for r in runs)
        else []
    )
    failed = [
        {
            "name": r.name,
            "variant": r.variant,
            "seed": r.seed,
            "status": r.status,
            "reason": r.reason,
            "dir": r.rel,
        }
        for r in rep.bad
    ]
    scaling = (
        None
        if rep.scaling is None
        else {
            "fits": {v: dataclasses.asdict(f) for v, f in rep.scaling.fits.items()},
            "multipliers": {
                b: [dataclasses.asdict(m) for m in ms] for b, ms in rep.scaling.multipliers.items()
            },
        }
    )
    ok = rep.ok
    learning_rate = {
        "tuned": bool(ok) and all(r.tuned_from for r in ok),
        "tuned_file": rep.tuned.path if rep.tuned else None,
        "tuning_sweep": rep.tuned.tuning_sweep if rep.tuned else None,
        "tuning_seeds": rep.tuned.seeds if rep.tuned else None,
        "tuning_grid": rep.tuned.grid if rep.tuned else None,
        "rates": sorted(
            {(str(r.summary.model), str(r.variant), r.lr) for r in ok if r.lr is not None}
        ),
    }
    shared = (
        None
        if rep.shared is None
        else {
            "sweep_dir": str(rep.shared.root),
            "tuned": rep.shared.tuned,
            "lrs": rep.shared.lrs,
            "rows": [r.flat(rep.baselines) for r in rep.shared.rows],
        }
    )
    return {
        "name": rep.name,
        "sweep_dir": str(rep.root),
        "learning_rate": learning_rate,
        "throughput": {"bench": rep.throughput_note or None, "rows": rep.throughput_rows},
        "seeds_needed": seeds_needed(rep),
        "families": {m: f.flat() for m, f in rep.families.items()},
        "family_unit_reason": rep.family_reason,
        "text_level": [t.flat() for t in rep.text_level],
        "findings": findings_json(rep),
        "across_optimizers": rep.optimizers.flat() if rep.optimizers is not None else None,
        "along_training": [a.flat() for a in rep.along],
        "train_val_gap": rep.gaps,
        "evaluation": evaluation(rep.ok),
        "shared_rate_comparison": shared,
        "baselines": rep.baselines,
        "baselines_present": rep.present_baselines,
        "confidence": CONFIDENCE,
        "n_runs": len(runs),
        "n_completed": len(rep.ok),
        "n_failed": len(rep.bad),
        "match": summary_values(rep.ok, "match"),
        "model": summary_values(rep.ok, "model"),
        "rows": [r.flat(rep.baselines) for r in rows],
        "best_settings": best,
        "shazeer_table_1": rep.table_1,
        "claims": rep.claims,
        "scaling": scaling,
        "failed": failed,
        "plots": {k: ("written" if v is None else f"skipped: {v}") for k, v in rep.plots.items()},
    }


def check_baselines(baselines: Sequence[str], in_sweep: Sequence[str] = ()) -> list[str]:
    """The baselines as a list; a UserInputError for a name that is neither a registered variant
    nor one of the sweep's (a user's FFN is a baseline like any other)."""
    names = [b for item in baselines for b in item.split(",") if b]
    known = list(dict.fromkeys([*VARIANTS, *in_sweep]))
    unknown = [b for b in names if b not in known]
    if unknown:
        raise UserInputError(
            f"unknown baseline {', '.join(unknown)}; --baseline takes a variant: {', '.join(known)}"
        )
    return list(dict.fromkeys(names)) or ["relu"]


def make_report(
    root: Path,
    out: Path = Path("results"),
    name: str | None = None,
    baselines: Sequence[str] = ("relu",),
    log: Callable[[str], None] = print,
    shared: Path | None = None,
    throughput_file: Path | None = None,
    y: str = "loss",
) -> tuple[Path, ReportInput]:
    """Read the sweep under ``root``, write the report files; the output dir and the report."""
    if y not in METRICS:
        raise UserInputError(f"--y {y}: use one of {', '.join(METRICS)}")
    root = Path(root)
    runs = load_sweep(root, exclude=Path(out))
    baselines = check_baselines(baselines, [r.variant for r in runs])
    n_ok = sum(r.ok for r in runs)
    log(
        f"found {len(runs)} runs under {root}: {n_ok} completed, {len(runs) - n_ok} "
        "failed/unfinished"
    )
    name = name or default_name(root, runs)
    dest = Path(out) / name
    dest.mkdir(parents=True, exist_ok=True)
    rows = build_rows(runs, baselines)
    bench = (
        throughput.load(throughput_file)
        if throughput_file is not None
        else throughput.find(Path(out), [r.experiment for r in runs if r.ok])
    )
    covered = throughput.attach(rows, bench)
    if bench is not None:
        log(f"tokens/s and MFU of {covered}/{len(rows)} rows from {bench.path}")
    scaling, skipped = scaling_analysis(runs, baselines, METRICS[y])
    throughput.seconds_multipliers(scaling, rows)
    tuned, tuned_problem = tuned_rates(runs)
    claims = check_claims(runs)
    unit, unit_reason = family_metric(runs)
    families = adjust(rows, claims, unit)
    judge_claims(claims, runs)
    documents = document_rows(runs)
    optimizers = across_optimizers(runs, baselines)
    texts = [text_level(documents, p.variant, p.other, p.setting) for p in families[unit].pairs]
    rep = ReportInput(
        name,
        root,
        runs,
        rows,
        baselines,
        {},
        compare_with_table_1(rows),
        claims,
        scaling,
        skipped,
        tuned=tuned,
        tuned_problem=tuned_problem,
        throughput_note=bench.describe() if bench is not None else "",
        throughput_rows=covered,
        shared=comparison(shared, baselines, Path(out)) if shared is not None else None,
        families=families,
        along=along_training(runs, baselines),
        gaps=train_val_gaps(runs),
        family_reason=unit_reason,
        text_level=texts,
        optimizers=optimizers,
    )
    served = serving.find(Path(out), [r.experiment for r in runs if r.ok])
    rep.serving = serving.section(served, rep.present_baselines or baselines)
    if served is not None:
        log(f"cost to serve from {served[0]}")
    rep.plots = make_plots(rep, dest)
    for fname, why in rep.plots.items():
        if why is not None:
            (dest / fname).unlink(missing_ok=True)  # no stale plot from an earlier report
        log(f"wrote {dest / fname}" if why is None else f"skipped {fname}: {why}")
    (dest / "report.md").write_text(render_markdown(rep), encoding="utf-8")
    write_csv(rows, baselines, dest / "report.csv")
    write_runs_csv(runs, dest / "runs.csv")
    write_table(eval_rows(runs), EVAL_COLUMNS, dest / "evals.csv")
    write_table(documents, DOCUMENT_COLUMNS, dest / "documents.csv")
    summary = dumps(report_json(rep), indent=2, default=float) + "\n"
    (dest / "summary.json").write_text(summary, encoding="utf-8")
    for fname in ("report.md", "report.csv", "runs.csv", "evals.csv", "documents.csv"):
        log(f"wrote {dest / fname}")
    return dest, rep


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m sweep.report",
        description="Summarise a Hydra multirun sweep of FFN variants: a table of final/best val "
        "loss (mean ± 95% CI over seeds), paired differences vs baselines, compute multipliers "
        "across model sizes, a CSV, a JSON summary and plots. Failed/unfinished runs are listed "
        "and excluded from the statistics.",
    )
    ap.add_argument(
        "sweep_dir",
        type=Path,
        help="the multirun dir (holds multirun.yaml and one "
        "subdir per job; run dirs are found recursively)",
    )
    ap.add_argument(
        "--name",
        default=None,
        help="report name (output subdir). Default: the 'group' in the runs' "
        "summary.json if all completed runs agree, else the sweep dir's last two "
        "path parts joined with '_'",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="parent dir of the report (default: results); writes <out>/<name>/",
    )
    ap.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="VARIANT",
        help="a variant the others are compared with, paired by seed; repeat it (or "
        "give a comma list) for several, e.g. --baseline relu --baseline relu2 "
        "(default: relu)",
    )
    ap.add_argument(
        "--shared",
        type=Path,
        default=None,
        metavar="SWEEP_DIR",
        help="another sweep of the same experiment (e.g. at one shared learning rate) to rank "
        "beside this one (e.g. at per-variant tuned rates)",
    )
    ap.add_argument(
        "--throughput",
        type=Path,
        default=None,
        metavar="FILE",
        help="tokens/s and MFU from this bench.throughput file (default: "
        "<out>/<experiment>_throughput/throughput.json when it exists; else the runs' own)",
    )
    ap.add_argument(
        "--y",
        choices=sorted(METRICS),
        default="loss",
        help="the scaling fit's y-axis: final val loss (nats per token) or final val bpb "
        "(bits per byte, comparable across tokenizers); default loss",
    )
    ap.add_argument(
        "--wandb",
        nargs="?",
        const="online",
        choices=["online", "offline"],
        help="also log the report as a W&B run in the sweep's group (online falls "
        "back to offline without a login or network)",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 on bad input)."""
    args = parse_args(argv)
    try:
        dest, rep = make_report(
            args.sweep_dir,
            args.out,
            args.name,
            args.baseline or ["relu"],
            shared=args.shared,
            throughput_file=args.throughput,
            y=args.y,
        )
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.wandb:
        from sweep.wandb_report import log_report  # wandb: imported only with --wandb

        log_report(rep, dest, args.wandb)
    print(f"report: {dest / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
