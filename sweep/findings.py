"""The report's sections that interpret the numbers: compute multipliers across model sizes, the
comparison with the literature, and what this sweep's regime can and cannot tell."""

from __future__ import annotations

import math
import statistics

from sweep.fmt import p_value, percent, pm, si, table
from sweep.model import ReportInput
from sweep.scaling import Multiplier
from sweep.table import by_setting

CHINCHILLA_TOKENS_PER_PARAM = 20
FFN_SHARE_THAT_MATTERS = 0.25


# --------------------------------------------------------------------------- compute multipliers


def _multiplier_cell(m: Multiplier) -> str:
    if m.value is None:
        return f"n/a ({m.note})"
    interval = f" [{m.low:.2f}, {m.high:.2f}]" if m.low is not None else f" ({m.note})"
    return f"{m.value:.2f}x{interval}"


def compute_multipliers(rep: ReportInput) -> list[str]:
    s = rep.scaling
    if s is None:
        return []
    fit_rows = [
        [f"**{v}**", f"{f.E:.3f}", f"{f.A:.3f}", f"{f.alpha:.3f}", f"{f.residual_rms:.4f}"]
        if f.ok
        else [f"**{v}**", "n/a", "n/a", "n/a", f"no fit: {f.reason}"]
        for v, f in sorted(s.fits.items())
    ]
    lines = [
        "## Compute multipliers",
        "",
        "Per variant, final val loss against training compute C (training FLOPs per token × "
        "tokens) over the model sizes, fitted with L(C) = E + A·(C / C₀)^−α (C₀: the smallest "
        "compute in the sweep). Residual RMS: the seeds' scatter about the fit.",
        "",
        *table(["variant", "E", "A", "α", "residual RMS"], fit_rows),
        "",
    ]
    for baseline, rows in s.multipliers.items():
        body = [
            [f"**{m.variant}**", m.size, si(m.compute), f"{m.loss:.4f}", _multiplier_cell(m)]
            for m in rows
        ]
        lines += [
            f"### Against {baseline}",
            "",
            *table(
                [
                    "variant",
                    "model",
                    "training FLOPs",
                    "mean final loss",
                    f"multiplier vs {baseline} [95% CI]",
                ],
                body,
            ),
            "",
        ]
    lines += [
        "A multiplier is the baseline's compute to reach the variant's mean loss (its fit, "
        "inverted) over the variant's own compute: 1.3x means the variant gets there with 1/1.3 "
        "of the baseline's compute, 0.8x that it needs 1/0.8 as much. The interval is a bootstrap "
        "over seeds (1,000 resamples, paired: every variant with one seed saw the same batches), "
        "refitting the baseline each time. A fit needs 3 or more sizes and losses that fall with "
        "compute; where it cannot be made, or a variant's loss is below the baseline fit's floor, "
        "the table says so instead of giving a number.",
        "",
    ]
    return lines


# --------------------------------------------------------------------------- the literature


def _table_1(rep: ReportInput) -> list[str]:
    t1 = rep.table_1
    if t1 is None:
        return []
    rows = [
        [
            v["variant"],
            f"{v['ours']:.4f}",
            str(v["our_rank"]),
            f"{v['shazeer']:.3f}",
            str(v["shazeer_rank"]),
        ]
        for v in t1["variants"]
    ]
    head = [
        "variant",
        "final val loss here",
        "rank here",
        "Table 1 log-perplexity",
        "rank in Table 1",
    ]
    return [
        "### Shazeer (2020), Table 1",
        "",
        *table(head, rows),
        "",
        f"Kendall's τ between the two orderings: {t1['kendall_tau']:+.2f} (p = "
        f"{p_value(t1['p_value'])}; +1 is the same order, 0 unrelated). Table 1 trained T5-base "
        "for 65,536 steps on C4; a small model trained briefly need not agree, and differences "
        "inside the confidence intervals above say nothing about order.",
        "",
    ]


def against_the_literature(rep: ReportInput) -> list[str]:
    if rep.table_1 is None and not rep.claims:
        return []
    rows = [
        [
            c["source"],
            f"{c['variant']} vs {c['other']}: {c['finding']}",
            c["setting"] or "—",
            pm(c["diff_mean"], c["diff_ci_half_width"], signed=True) + f" (n={c['diff_n_pairs']})",
            f"{c['relative_percent']:+.2f}%",
            c["verdict"],
        ]
        for c in rep.claims
    ]
    head = [
        "source",
        "finding",
        "setting",
        "Δ here (variant − other), 95% CI",
        "relative",
        "this sweep",
    ]
    claims = (
        [
            "### Claims, checked",
            "",
            *table(head, rows, numeric=False),
            "",
            "A claim agrees when this sweep's 95% CI of the paired difference lies wholly on the "
            "claimed side of 0, disagrees when it lies wholly on the other side, and cannot tell "
            "when it includes 0.",
            "",
        ]
        if rows
        else []
    )
    return ["## Against the literature", "", *_table_1(rep), *claims]


# --------------------------------------------------------------------------- scope


def _median(values) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _length_line(rep: ReportInput) -> str:
    per_param = _median(
        r.summary.tokens / r.summary.params["non_embedding"]
        for r in rep.ok
        if r.summary.params.get("non_embedding")
    )
    line = (
        f"- **Training length:** {per_param:.2g} tokens per non-embedding parameter (median over "
        f"runs; compute-optimal training is about {CHINCHILLA_TOKENS_PER_PARAM}, and Table 1 "
        "trained T5-base for 65,536 steps)."
    )
    if per_param < CHINCHILLA_TOKENS_PER_PARAM / 4:
        line += (
            " These models are far from converged: the losses say how fast each variant learns "
            "early in training, and the order can change with longer training."
        )
    return line


def _share_line(rep: ReportInput) -> str:
    shares = {k: _median(r.ffn_share for r in g) for k, g in by_setting(rep.rows).items()}
    ordered = sorted(shares.items(), key=lambda kv: kv[1])
    low, high = (ordered[0][1], ordered[-1][1]) if ordered else (math.nan, math.nan)
    amounts = (
        ", ".join(f"{percent(v)} at {k}" for k, v in ordered)
        if len(ordered) > 1
        else (percent(high))
    )
    line = f"- **Where the compute goes:** the FFN's share of the training FLOPs is {amounts}."
    small = (
        " Most of the compute (embedding and LM head, attention) is the same for every variant, "
        "so a better FFN shows only through that share"
    )
    if high < FFN_SHARE_THAT_MATTERS:
        return line + small + "."
    if low < FFN_SHARE_THAT_MATTERS:
        return line + small + f" where it is under {percent(FFN_SHARE_THAT_MATTERS)}."
    return line + " That share is large enough for a better FFN to show in the loss."


def _resolution_line(rep: ReportInput) -> str:
    n = max((r.n_seeds for r in rep.rows), default=0)
    widths = [
        r.diffs[b].ci_half_width for r in rep.rows for b in rep.present_baselines if r.variant != b
    ]
    width = _median(widths)
    if not math.isfinite(width):
        return f"- **Resolution:** {n} seed(s): no paired intervals to judge differences by."
    return (
        f"- **Resolution:** with {n} seeds the paired 95% CIs are about ±{width:.4f} wide "
        "(median): smaller differences between variants cannot be told from seed noise."
    )


def scope(rep: ReportInput) -> list[str]:
    if not rep.ok:
        return []
    params = [r.summary.params.get("non_embedding", math.nan) for r in rep.ok]
    sizes = (
        si(min(params)) if min(params) == max(params) else f"{si(min(params))}–{si(max(params))}"
    )
    lines = [
        "## What this sweep can and cannot tell",
        "",
        _length_line(rep),
        _share_line(rep),
        f"- **Scale:** {sizes} non-embedding parameters (Table 1: "
        "T5-base, about 220M; nanochat: GPT-2-sized d12 and d24). Orderings found at this scale "
        "need not hold at others: nanochat and modded-nanogpt found small-scale orderings that "
        "differ from Table 1's.",
        _resolution_line(rep),
    ]
    if rep.scaling is not None:
        sizes = len({p.size for p in rep.scaling.points})
        lines.append(
            f"- **Sizes:** {sizes} model sizes pin a 3-parameter fit loosely: multipliers are "
            "trustworthy within the measured compute range, extrapolations beyond it are not."
        )
    return [*lines, ""]
