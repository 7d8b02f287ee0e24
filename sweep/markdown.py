"""report.md: one function per section, joined by `render_markdown`."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sweep import findings, optimizers
from sweep.fmt import p_value, percent, pm, si, span, table
from sweep.model import ReportInput
from sweep.runs import summary_values, varying_keys
from sweep.stats import spread_percent, t_critical
from sweep.table import Row, best_settings, by_setting
from sweep.throughput import SOURCE as BENCH

PLOT_TITLES = {
    "val_loss.png": "Validation loss vs tokens",
    "final_loss.png": "Final validation loss with 95% CI",
    "scaling.png": "Loss against training compute, with the fits and their residuals",
    "activations.png": "Activation statistics over training",
    "diff_along.png": "Paired differences along training",
}


def spread_across_variants(rows: Sequence[Row], key: str) -> float:
    """The largest spread of `key` across variants that share a setting (a sweep over model
    sizes compares variants at each size, not one size with another)."""
    spreads = [spread_percent(getattr(r, key) for r in g) for g in by_setting(rows).values()]
    spreads = [x for x in spreads if math.isfinite(x)]
    return max(spreads) if spreads else math.nan


def matching_line(rep: ReportInput) -> str:
    match = summary_values(rep.ok, "match")
    ps, fs = (
        f"{x:.2f}%" if math.isfinite(x) else "n/a"
        for x in (
            spread_across_variants(rep.rows, "params_total"),
            spread_across_variants(rep.rows, "flops_per_token"),
        )
    )
    if match == ["params"]:
        return (
            "Variants were matched on **parameter count** (each variant's d_ff chosen so its FFN "
            f"has about the same parameters): total parameters differ by {ps} across variants "
            f"(largest vs smallest); FLOPs/token differ by {fs}."
        )
    if match == ["flops"]:
        return (
            "Variants were matched on **FLOPs per token** (each variant's d_ff chosen so its "
            f"forward FLOPs agree): FLOPs/token differ by {fs} across variants (largest vs "
            f"smallest); total parameters differ by {ps}."
        )
    return (
        f"Matching: {', '.join(map(str, match)) or 'unknown'} (not one criterion for all runs!); "
        f"total parameters differ by {ps}, FLOPs/token by {fs} across variants."
    )


def _rate_list(pairs: Sequence[tuple[str, str, float]], edge: set[tuple[str, str]]) -> str:
    """'relu 0.006, swiglu 0.003 (grid edge)' per size, sizes joined by '; '."""
    by_size: dict[str, list[str]] = {}
    for size, variant, lr in pairs:
        mark = " (grid edge)" if (size, variant) in edge else ""
        by_size.setdefault(size, []).append(f"{variant} {lr:g}{mark}")
    if len(by_size) == 1:
        return ", ".join(next(iter(by_size.values())))
    return "; ".join(f"{size}: {', '.join(v)}" for size, v in by_size.items())


def _one_rate_for_all(rates: Sequence[tuple[str, str, float]]) -> str:
    """When tuning chose one rate for every variant, the tuned comparison is also the
    shared-rate one: a sweep at that rate would repeat these runs (same seeds, same batches)."""
    lrs = {lr for _, _, lr in rates}
    if len(lrs) != 1 or len({v for _, v, _ in rates}) < 2:
        return ""
    return (
        f" Every variant's best rate on the grid is the same, {lrs.pop():g}: this is also the "
        "comparison at that one shared rate, and its ranking is the shared-rate ranking."
    )


def lr_line(rep: ReportInput) -> str:
    """Whether the variants trained at one shared learning rate or each at its own tuned one."""
    ok = rep.ok
    tuned = [r for r in ok if r.tuned_from]
    if tuned and len(tuned) < len(ok):
        return (
            f"- **Learning rate:** mixed: {len(tuned)} runs at per-variant tuned rates, "
            f"{len(ok) - len(tuned)} at a shared rate; the comparison is not like for like."
        )
    if tuned:
        rates = sorted({(str(r.summary.model), str(r.variant), r.lr) for r in tuned if r.lr})
        t = rep.tuned
        if t is None:
            source = f"`{tuned[0].tuned_from}` ({rep.tuned_problem or 'not readable'})"
            edge: set[tuple[str, str]] = set()
        else:
            grids = {tuple(g) for by_v in t.grid.values() for g in by_v.values()}
            grid = (
                ", ".join(f"{x:g}" for x in grids.pop())
                if len(grids) == 1
                else ("one per variant" if grids else "not recorded")
            )
            seeds = " ".join(map(str, t.seeds)) or "?"
            steps = span(sorted(t.steps))
            rule = t.rule or (
                "the vertex of a quadratic in log lr through its best grid point and neighbours"
            )
            flat = sorted({v for by_v in t.flat.values() for v in by_v})
            flat_note = (
                f"; **flat** for {len(flat)} of {len({v for _, v, _ in rates})} "
                f"({', '.join(flat)}): their rates cannot be told apart within the tuning's "
                "resolution, so the rule's choice is a choice inside a tie"
                if flat
                else ""
            )
            source = (
                f"`{t.path}`, chosen by the tuning sweep `{t.tuning_sweep}` (grid {grid}; seeds "
                f"{seeds}; {steps} steps, judged on the tuning slice) by one rule: {rule}"
                f"{flat_note}"
            )
            edge = {(size, v) for size, vs in t.at_edge.items() for v in vs}
        warn = (
            " — **at the grid's edge** for some: their best rate may lie outside it"
            if edge & {(s, v) for s, v, _ in rates}
            else ""
        )
        return (
            f"- **Learning rate:** per-variant tuned rates, from {source}. Rates: "
            f"{_rate_list(rates, edge)}{warn}.{_one_rate_for_all(rates)}"
        )
    lrs = sorted({r.lr for r in ok if r.lr is not None})
    if not lrs:
        return "- **Learning rate:** not recorded by the runs."
    if len(lrs) == 1:
        return (
            f"- **Learning rate:** one shared rate for every variant, optim.lr={lrs[0]:g} (not "
            "tuned per variant: make tune, then make sweep TUNED=..., compares each at its own)."
        )
    scanned = "optim.lr" in varying_keys(rep.runs)
    values = ", ".join(f"{x:g}" for x in lrs)
    return f"- **Learning rate:** {'scanned' if scanned else 'differs between runs'}: {values}" + (
        " (one row per rate)." if scanned else "."
    )


def header(rep: ReportInput) -> list[str]:
    ok, bad = rep.ok, rep.bad
    tokens = span(summary_values(ok, "tokens"), lambda t: f"{int(t):,}")
    missing_bases = [b for b in rep.baselines if b not in rep.present_baselines]
    lines = [
        f"# FFN variant sweep: {rep.name}",
        "",
        f"- **Sweep dir:** `{rep.root}`",
        f"- **Runs:** {len(rep.runs)} found, {len(ok)} completed, {len(bad)} failed/unfinished "
        "(excluded from the statistics)",
        f"- **Model:** {span(summary_values(ok, 'model'))}; **steps:** "
        f"{span(summary_values(ok, 'steps'))}; **tokens per run:** {tokens}",
        f"- **Matching:** {matching_line(rep)}",
        f"- **Evaluation:** {findings.evaluation_text(rep)}",
        lr_line(rep),
        f"- **Baselines:** {', '.join(rep.baselines)}"
        + (
            f" — **not in this sweep:** {', '.join(missing_bases)} (no completed run, so no "
            "difference column for it)"
            if missing_bases
            else ""
        ),
    ]
    missing = sorted({r.variant or "?" for r in bad} - {r.variant for r in rep.rows})
    if missing:
        lines.append(f"- **Variants with no completed run:** {', '.join(missing)}")
    return [*lines, ""]


def _difference_cells(row: Row, baseline: str, bpb: bool = False) -> list[str]:
    """Δ (bold where it survives the family's Holm adjustment), the raw and the adjusted p."""
    d = (row.bpb_diffs if bpb else row.diffs).get(baseline)
    if row.variant == baseline:
        return ["(baseline)", "", ""]
    if d is None or d.n_pairs == 0:
        return ["no common seeds", "n/a", "n/a"]
    diff = pm(d.mean, d.ci_half_width, signed=True)
    if d.significant:
        diff = f"**{diff}**"
    return [f"{diff} (n={d.n_pairs})", p_value(d.p_value), p_value(d.p_adjusted)]


def results(rep: ReportInput) -> list[str]:
    if not rep.rows:
        return ["## Results", "", "_No completed runs: nothing to tabulate._", ""]
    head = [
        "variant",
        "params (total)",
        "FFN params",
        "FLOPs/token",
        "FFN share",
        "tokens/s",
        "MFU",
        "seeds",
        "final val loss",
        "best val loss",
    ]
    tuned, bpb = any(r.lr_tuned for r in rep.rows), has_bpb(rep.rows)
    if tuned:
        head.insert(1, "tuned lr")
    if bpb:
        head.append("final val bpb")
    for b in rep.present_baselines:
        head += [f"Δ final vs {b}", "p (paired t)", "p (Holm)"]
    body = []
    for r in rep.rows:
        shared = " (shared)" if r.throughput_source.endswith("shared machine") else ""
        cells = [
            f"**{r.variant}**" + (f" ({r.setting})" if r.setting else ""),
            si(r.params_total),
            si(r.params_ffn),
            si(r.flops_per_token),
            percent(r.ffn_share),
            (f"{r.tokens_per_s:,.0f}" if math.isfinite(r.tokens_per_s) else "n/a") + shared,
            percent(r.mfu) + (shared if math.isfinite(r.mfu) else ""),
            str(r.n_seeds),
            pm(r.final_val_loss_mean, r.final_val_loss_ci_half_width),
            pm(r.best_val_loss_mean, r.best_val_loss_ci_half_width),
        ]
        if tuned:
            cells.insert(1, f"{r.lr:g}" if math.isfinite(r.lr) else "n/a")
        if bpb:
            cells.append(pm(r.final_val_bpb_mean, r.final_val_bpb_ci_half_width))
        for b in rep.present_baselines:
            cells += _difference_cells(r, b)
        body.append([*cells, str(r.rank)])
    return [
        "## Results",
        "",
        *table([*head, "rank"], body),
        "",
        "Means are over seeds; ± is the half-width of the 95% confidence interval "
        "(Student t, df = n − 1). Rank 1 = lowest mean final val loss. FLOPs/token is the "
        "forward pass; FFN share is the FFN matmuls' share of the training FLOPs; MFU is the "
        "training FLOPs achieved over the device's peak (harness.mfu: "
        f"{peak_sources(rep)}). p (Holm): the paired t-test's p adjusted over the report's "
        "family of comparisons (see the verdict); a Δ in bold survives it at familywise α 0.05."
        + (" val bpb: the validation loss in bits per UTF-8 byte of the text." if bpb else ""),
        "",
        throughput_line(rep),
        *best_setting(rep),
        *ranked_by_bpb(rep),
        "",
    ]


def has_bpb(rows: Sequence[Row]) -> bool:
    return any(math.isfinite(r.final_val_bpb_mean) for r in rows)


def throughput_line(rep: ReportInput) -> str:
    """Where the tokens/s and MFU columns come from, row by row."""
    n = len(rep.rows)
    bench = sum(r.throughput_source == BENCH for r in rep.rows)
    shared = sum(r.throughput_source.endswith("shared machine") for r in rep.rows)
    parts = []
    if bench:
        parts.append(
            f"{'all' if bench == n else bench} rows from {BENCH} {rep.throughput_note} (one "
            "process, every variant and size interleaved, after warm-up)"
        )
    if bench < n:
        runs = "the others" if bench else ("all rows" if n > 1 else "the row")
        parts.append(f"{runs} from the runs' own summaries (mean over seeds)")
    line = "Tokens/s and MFU: " + "; ".join(parts) + "."
    if shared:
        line += (
            " **(shared)**: the runs of that row trained while other runs used the same machine "
            "(a parallel launcher), so their speed measures the contention as much as the "
            "variant; `python -m bench.throughput experiment=<e>` measures each apart."
        )
    return line


def ranked_by_bpb(rep: ReportInput) -> list[str]:
    """The rows ranked by final val bpb, with paired differences in bpb."""
    if not has_bpb(rep.rows):
        return []
    ordered = sorted(
        rep.rows,
        key=lambda r: (not math.isfinite(r.final_val_bpb_mean), r.final_val_bpb_mean, r.label),
    )
    head = ["variant", "final val bpb", "best val bpb"]
    for b in rep.present_baselines:
        head += [f"Δ bpb vs {b}", "p (paired t)", "p (Holm)"]
    body = []
    for i, r in enumerate(ordered, 1):
        cells = [
            r.variant + (f" ({r.setting})" if r.setting else ""),
            pm(r.final_val_bpb_mean, r.final_val_bpb_ci_half_width),
            pm(r.best_val_bpb_mean, r.best_val_bpb_ci_half_width),
        ]
        for b in rep.present_baselines:
            cells += _difference_cells(r, b, bpb=True)
        body.append([*cells, str(i) if math.isfinite(r.final_val_bpb_mean) else "n/a"])
    return [
        "",
        "### Ranked by bits per byte",
        "",
        "The same runs in bits per UTF-8 byte of the validation text, which compares across "
        "tokenizers (a loss per token does not); Δ pairs by seed as above.",
        "",
        *table([*head, "rank"], body),
    ]


def peak_sources(rep: ReportInput) -> str:
    sources = summary_values(rep.ok, "peak_source")
    return "; ".join(sources) if sources else "not recorded"


def best_setting(rep: ReportInput) -> list[str]:
    varying = varying_keys(rep.runs)
    if not varying:
        return []
    keys = ", ".join(varying)
    rows = [
        [
            f"**{r.variant}**",
            r.setting,
            pm(r.final_val_loss_mean, r.final_val_loss_ci_half_width),
            str(r.n_seeds),
        ]
        for r in best_settings(rep.rows)
    ]
    return [
        "",
        f"This sweep varies {keys}: each variant has one row per value, and Δ pairs each run "
        f"with the baseline's run of the same {keys} and seed.",
        "",
        "### Best setting per variant",
        "",
        *table(["variant", "best setting", "final val loss", "seeds"], rows),
    ]


def failures(rep: ReportInput) -> list[str]:
    lines = ["## Failed / unfinished runs", ""]
    if rep.bad:
        rows = [[r.name, r.status, r.reason.replace("|", "\\|"), f"`{r.rel}`"] for r in rep.bad]
        lines += ["These runs are excluded from every number above.", ""]
        lines += table(["run", "status", "reason", "dir"], rows, numeric=False)
    else:
        lines.append("None: every run completed.")
    partial = [r for r in rep.ok if r.bad_metric_lines]
    if partial:
        names = ", ".join(f"{r.name} ({r.bad_metric_lines})" for r in partial)
        lines += [
            "",
            f"Skipped unparseable metrics.jsonl lines (e.g. a truncated last line): {names}",
        ]
    return [*lines, ""]


def plots(rep: ReportInput) -> list[str]:
    lines = ["## Plots", ""]
    for fname, skipped in rep.plots.items():
        title = PLOT_TITLES.get(fname, fname)
        body = f"![{title}]({fname})" if skipped is None else f"_Not plotted: {skipped}._"
        lines += [f"### {title}", "", body, ""]
    return lines


def how_to_read(rep: ReportInput) -> list[str]:
    n = max((r.n_seeds for r in rep.rows), default=0)
    t = t_critical(n, 0.95)
    t_note = (
        f" With {n} seeds the t critical value is {t:.2f}, so the intervals are wide."
        if (math.isfinite(t))
        else ""
    )
    if rep.present_baselines:
        diff = (
            f"The Δ columns compare each variant with {' and '.join(rep.present_baselines)} seed "
            "by seed (only seeds both completed): the mean of the per-seed differences in final "
            "val loss, its 95% CI, the p-value of the paired t-test, and that p adjusted by Holm's "
            "method over every comparison the report makes (its family). Negative Δ means lower "
            "loss than the baseline. Only a difference whose adjusted p is at most 0.05 (shown in "
            "bold) is a finding; any other cannot be told from seed noise at these seeds, even "
            "where its own interval excludes 0. "
        )
    else:
        diff = "Two variants whose intervals overlap heavily cannot be told apart at these seeds. "
    return [
        "## How to read this",
        "",
        "Each number is a mean over seeds, and ± gives the 95% confidence interval for that mean: "
        "if the runs were repeated with new seeds, an interval built this way would cover the "
        "true mean 95% of the time (Student t with n − 1 degrees of freedom, assuming roughly "
        f"normal seed-to-seed noise).{t_note} With a single seed no interval can be estimated "
        f"and it is shown as n/a. {diff}Ranks order the means only; they say nothing about "
        "significance.",
        "",
    ]


def across_optimizers(rep: ReportInput) -> list[str]:
    if rep.optimizers is None:
        return []
    claim = next(
        (
            c
            for c in rep.claims
            if (c["variant"], c["other"]) == ("swiglu", "relu2")
            and "optim=muon" in c["setting"]
            and "verdict" in c
        ),
        None,
    )
    return optimizers.render(rep.optimizers, claim)


def render_markdown(rep: ReportInput) -> str:
    """The human-readable report: each section in turn."""
    sections = (
        header,
        findings.verdict,
        results,
        findings.along_training,
        across_optimizers,
        findings.side_by_side,
        findings.compute_multipliers,
        lambda rep: rep.serving,
        findings.against_the_literature,
        findings.scope,
        failures,
        plots,
        how_to_read,
    )
    return "\n".join(line for section in sections for line in section(rep))
