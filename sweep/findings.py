"""The report's sections that interpret the numbers: compute multipliers across model sizes (in
training FLOPs and in training seconds), the ranking beside a sweep at another learning-rate
policy, the comparison with the literature, and what this sweep's regime can and cannot tell
(the seeds a difference of a given size would need included)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from sweep.documents import TextLevel
from sweep.family import Pair
from sweep.fmt import p_value, percent, pm, si, table
from sweep.model import Comparison, ReportInput
from sweep.runs import Run
from sweep.scaling import Multiplier
from sweep.stats import FAMILY_ALPHA, POWER, seeds_for_power
from sweep.table import Row, by_setting

CHINCHILLA_TOKENS_PER_PARAM = 20
FFN_SHARE_THAT_MATTERS = 0.25


# --------------------------------------------------------------------------- compute multipliers


def _multiplier_cell(m: Multiplier) -> str:
    if m.value is None:
        return f"n/a ({m.note})"
    interval = f" [{m.low:.2f}, {m.high:.2f}]" if m.low is not None else f" ({m.note})"
    return f"{m.value:.2f}x{interval}"


def _seconds_cell(m: Multiplier) -> str:
    if m.seconds_value is None:
        return "n/a" + (f" ({m.note})" if m.value is None else " (no tokens/s)")
    if m.seconds_low is None:
        return f"{m.seconds_value:.2f}x"
    return f"{m.seconds_value:.2f}x [{m.seconds_low:.2f}, {m.seconds_high:.2f}]"


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
    y = s.y_label
    lines = [
        "## Compute multipliers",
        "",
        f"Per variant, {y} against training compute C (training FLOPs per token × "
        "tokens) over the model sizes, fitted with L(C) = E + A·(C / C₀)^−α (C₀: the smallest "
        "compute in the sweep). Residual RMS: the seeds' scatter about the fit.",
        "",
        *table(["variant", "E", "A", "α", "residual RMS"], fit_rows),
        "",
    ]
    for baseline, rows in s.multipliers.items():
        body = [
            [
                f"**{m.variant}**",
                m.size,
                si(m.compute),
                f"{m.loss:.4f}",
                _multiplier_cell(m),
                _seconds_cell(m),
            ]
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
                    f"mean {y}",
                    f"in training FLOPs vs {baseline} [95% CI]",
                    "in training seconds [95% CI]",
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
        "In training seconds: the baseline's seconds to reach the variant's loss over the "
        "variant's, i.e. the FLOPs multiplier × the variant's achieved training FLOP/s (tokens/s "
        "× training FLOPs per token) over the baseline's at the same size; a variant that wins per "
        "FLOP can lose per second. Its interval is the FLOPs interval scaled alike (seed noise of "
        f"the losses, not of the timing). Tokens/s from: {_seconds_sources(rep)}.",
        "",
    ]
    return lines


def _seconds_sources(rep: ReportInput) -> str:
    sources = sorted({r.throughput_source for r in rep.rows if r.throughput_source})
    return "; ".join(sources) or "none recorded"


# --------------------------------------------------------------------------- beside another sweep


def _ranked(rows: Sequence[Row]) -> dict[tuple[str, str], tuple[Row, int]]:
    """(size, variant) -> (row, its rank by mean final val loss among the rows of its size)."""
    ordered = sorted(
        (r for r in rows if math.isfinite(r.final_val_loss_mean)),
        key=lambda r: r.final_val_loss_mean,
    )
    out: dict[tuple[str, str], tuple[Row, int]] = {}
    for r in ordered:
        rank = 1 + sum(1 for size, _ in out if size == r.model)
        out.setdefault((r.model, r.variant), (r, rank))
    return out


def _lr_policy(tuned: bool, lrs: Sequence[float]) -> str:
    if tuned:
        return "tuned per variant"
    return f"shared lr {lrs[0]:g}" if len(lrs) == 1 else "lr " + ", ".join(f"{x:g}" for x in lrs)


def side_by_side(rep: ReportInput) -> list[str]:
    """This sweep's ranking beside another sweep's of the same experiment (--shared)."""
    other: Comparison | None = rep.shared
    if other is None:
        return []
    mine_tuned = bool(rep.ok) and all(r.tuned_from for r in rep.ok)
    mine = _lr_policy(mine_tuned, sorted({r.lr for r in rep.ok if r.lr}))
    theirs = _lr_policy(other.tuned, other.lrs)
    a, b = _ranked(rep.rows), _ranked(other.rows)
    keys = sorted(a.keys() | b.keys(), key=lambda k: (k[0], (a.get(k) or b[k])[1]))
    body = []
    for k in keys:
        size, variant = k
        cells = [variant, size or "?"]
        for got in (a.get(k), b.get(k)):
            if got is None:
                cells += ["—", "not in this sweep", "—"]
                continue
            r, rank = got
            lr = f"{r.lr:g}" if math.isfinite(r.lr) else "n/a"
            cells += [lr, pm(r.final_val_loss_mean, r.final_val_loss_ci_half_width), str(rank)]
        body.append(cells)
    head = ["variant", "model", "lr", f"final val loss ({mine})", "rank", "lr"]
    head += [f"final val loss ({theirs})", "rank"]
    moved = sum(1 for k in keys if k in a and k in b and a[k][1] != b[k][1])
    return [
        "## The ranking at each learning-rate policy",
        "",
        f"This sweep ({mine}) beside `{other.root}` ({theirs}); ranks within each model size, "
        "by mean final val loss, ± the 95% CI over seeds.",
        "",
        *table(head, body),
        "",
        f"{moved} of {sum(1 for k in keys if k in a and k in b)} variants change rank between "
        "the two; a change of rank between means whose intervals overlap is not a finding.",
        "",
    ]


# --------------------------------------------------------------------------- the verdict


def evaluation(runs: Sequence[Run]) -> dict[str, Any]:
    """What the runs' losses average over: the held-out slice and the tokens of each evaluation
    (summary.json's data.eval_slice and data.val_tokens)."""
    data = [r.summary.data for r in runs if r.summary is not None and r.summary.data]
    slices = sorted({str(d.get("eval_slice")) for d in data if d.get("eval_slice")})
    tokens = sorted({int(d["val_tokens"]) for d in data if d.get("val_tokens")})
    documents = sorted(
        {name for d in data for name in (d.get("held_out") or {}).get(str(d.get("eval_slice")), [])}
    )
    shares = sorted(
        {
            float(share)
            for d in data
            if (share := (d.get("whitespace_share") or {}).get(str(d.get("eval_slice"))))
            is not None
        }
    )
    return {
        "slices": slices,
        "tokens": tokens,
        "documents": documents,
        "split_by": sorted({str(d["split_by"]) for d in data if d.get("split_by")}),
        "whitespace_share": shares,
    }


def evaluation_text(rep: ReportInput) -> str:
    e = evaluation(rep.ok)
    tokens = (
        " to ".join(f"{t:,}" for t in sorted({e["tokens"][0], e["tokens"][-1]}))
        if e["tokens"]
        else "an unrecorded number of"
    )
    where = (
        f"the held-out split's {' and '.join(e['slices'])} slice"
        if e["slices"]
        else "held-out data (slice not recorded)"
    )
    note = (
        " **Judged on the tuning slice**: these losses chose the rates, so they are not an "
        "independent test."
        if "tune" in e["slices"]
        else ""
    )
    docs = e["documents"]
    text = (
        f" The slice is {len(docs)} whole held-out documents spread across the corpus "
        f"({', '.join(docs)})."
        if docs and e["split_by"] == ["documents"]
        else " The slice is a run of tokens of one document (a corpus too small to hold out "
        "whole documents)."
        if e["split_by"] == ["tokens"]
        else ""
    )
    ws = e["whitespace_share"]
    if ws:
        text += f" Whitespace-only tokens are {percent(ws[-1])} of its targets."
    return (
        f"every loss averages {tokens} tokens of {where}, read in non-overlapping windows spread "
        f"evenly over it (the same windows for every run and evaluation).{text}{note}"
    )


def _claim_pairs(rep: ReportInput) -> list[str]:
    base = set(rep.present_baselines)
    return sorted(
        {
            f"{c['variant']} vs {c['other']}"
            for c in rep.claims
            if not {c["variant"], c["other"]} & base and c["diff_n_pairs"] > 0
        }
    )


def _finding(pair: Pair, unit: str) -> str:
    d = pair.diff
    lower, higher = (pair.variant, pair.other) if d.mean < 0 else (pair.other, pair.variant)
    where = f" ({pair.setting})" if pair.setting else ""
    return (
        f"- **{lower}** is lower than **{higher}**{where} by {abs(d.mean):.4f} ± "
        f"{d.ci_half_width:.4f} {unit} (paired over {d.n_pairs} seeds; p {p_value(d.p_value)}, "
        f"Holm-adjusted {p_value(d.p_adjusted)})"
    )


def _text_of(rep: ReportInput, pair: Pair) -> TextLevel | None:
    return next(
        (
            t
            for t in rep.text_level
            if {t.variant, t.other} == {pair.variant, pair.other} and t.setting == pair.setting
        ),
        None,
    )


def _holds(rep: ReportInput, pair: Pair) -> bool | None:
    """Whether a surviving difference holds across texts (its two-level interval excludes 0 on
    the same side); None where the runs recorded no per-document losses."""
    t = _text_of(rep, pair)
    if t is None or not math.isfinite(t.low):
        return None
    sign = 1 if t.variant == pair.variant else -1
    return t.excludes_zero and (sign * t.mean < 0) == (pair.diff.mean < 0)


def findings_json(rep: ReportInput) -> list[dict[str, Any]]:
    """Each comparison that survives Holm, and whether it holds across texts."""
    family = next(iter(rep.families.values()), None)
    if family is None:
        return []
    return [
        {**p.flat(), "holds_across_texts": _holds(rep, p)}
        for p in family.pairs
        if p.diff.significant
    ]


def _text_cells(rep: ReportInput, pair: Pair) -> list[str]:
    t = _text_of(rep, pair)
    if t is None or not t.n_documents:
        return ["—", "—"]
    lo, hi = (t.low, t.high) if t.variant == pair.variant else (-t.high, -t.low)
    favour = (
        (t.favour_variant, t.favour_other)
        if t.variant == pair.variant
        else (t.favour_other, t.favour_variant)
    )
    interval = f"[{lo:+.4f}, {hi:+.4f}]" if math.isfinite(lo) else "n/a (< 2 seeds or documents)"
    return [f"{favour[0]} / {favour[1]} of {t.n_documents}", interval]


def text_level_table(rep: ReportInput) -> list[str]:
    """Every comparison of the family, seed-level and text-level side by side."""
    family = next(iter(rep.families.values()), None)
    if family is None or not rep.text_level or not any(t.n_documents for t in rep.text_level):
        return [
            "_No per-document losses recorded by these runs: the text-level view needs runs "
            "that record final_val_documents (summary.json)._",
            "",
        ]
    body = []
    for p in sorted(family.pairs, key=lambda p: p.diff.p_value):
        d = p.diff
        holds = _holds(rep, p)
        verdict = (
            "holds across texts"
            if d.significant and holds
            else "this text only"
            if d.significant
            else "—"
        )
        where = f" ({p.setting})" if p.setting else ""
        body.append(
            [
                f"{p.variant} − {p.other}{where}",
                f"{d.mean:+.4f} ± {d.ci_half_width:.4f}",
                p_value(d.p_adjusted),
                *_text_cells(rep, p),
                verdict,
            ]
        )
    n_docs = max(t.n_documents for t in rep.text_level)
    return [
        f"**Across texts.** Each comparison seen over the {n_docs} held-out documents of the "
        "final evaluation: how many documents favour each side (the seed-mean difference on "
        "that document below / above 0), and a 95% interval from a paired bootstrap that "
        "resamples seeds and documents together (sweep.documents; "
        "recomputable from documents.csv). It counts the text's own variation beside the "
        "seeds': a difference carried by a few documents gets a wide interval.",
        "",
        *table(
            [
                "comparison",
                "Δ over seeds (nats)",
                "p (Holm)",
                "documents lower / higher",
                "two-level 95% interval",
                "finding",
            ],
            body,
        ),
        "",
    ]


def verdict(rep: ReportInput) -> list[str]:
    """What survives Holm's adjustment over the report's one family, and of that what holds across
    texts: the only differences this report calls findings."""
    metric, family = next(iter(rep.families.items()), ("loss", None))
    if family is None or not family.size:
        seeds = max((r.n_seeds for r in rep.rows), default=0)
        if seeds < 2 and rep.rows:
            return [
                f"## Verdict at familywise α {FAMILY_ALPHA}",
                "",
                f"No verdict: each variant has {seeds} seed here, and a paired test needs two or "
                "more (no interval, no p-value); rerun the sweep with more seeds (seed=0,1,2,3,4) "
                "to compare the variants. Ranks below order single runs only.",
                "",
            ]
        return []
    extra = _claim_pairs(rep)
    unit = "nats" if metric == "loss" else "bits/byte"
    title = "final val loss" if metric == "loss" else "final val bpb"
    lines = [
        f"## Verdict at familywise α {FAMILY_ALPHA}",
        "",
        f"The family: {family.size} paired comparison{'s' if family.size != 1 else ''} of "
        f"{title} — each variant against "
        f"each baseline ({', '.join(rep.present_baselines)}), each pair once"
        + (f", and the pairs the literature check uses ({', '.join(extra)})" if extra else "")
        + ". Their paired t-test p-values are adjusted by Holm's step-down method over the "
        f"family. One family: {rep.family_reason or 'one unit'}. A difference is a **finding** "
        f"only where its adjusted p is at most {FAMILY_ALPHA} *and* its two-level interval "
        "(seeds and held-out documents resampled together) excludes 0: it holds across texts. "
        "One that survives Holm alone holds on this text only.",
        "",
    ]
    kept = sorted((p for p in family.pairs if p.diff.significant), key=lambda p: p.diff.p_adjusted)
    raw = sum(p.diff.p_value <= FAMILY_ALPHA for p in family.pairs)
    across = [p for p in kept if _holds(rep, p)]
    only_here = [p for p in kept if not _holds(rep, p)]
    lines.append(
        f"**{len(kept)} of {family.size} comparisons survive"
        f"{'s' if len(kept) == 1 else ''} the adjustment** ({raw} pass at 0.05 unadjusted); "
        f"**{len(across)} of them hold{'s' if len(across) == 1 else ''} across texts**"
        + (":" if across else ".")
    )
    lines += ["", *(_finding(p, unit) for p in across), ""] if across else [""]
    if only_here:
        lines += [
            "Surviving Holm over seeds, but not across texts (the two-level interval includes "
            "0, or no per-document losses were recorded): on this text only —",
            "",
            *(_finding(p, unit) for p in only_here),
            "",
        ]
    lines += [
        *text_level_table(rep),
        "Every other pair cannot be told apart at these seeds: its difference may be seed "
        "noise. Ranks below order means only.",
        "",
    ]
    return lines


# --------------------------------------------------------------------------- along training

MAX_STEP_COLUMNS = 8


def _thin(steps: list[int]) -> list[int]:
    """At most MAX_STEP_COLUMNS evaluation steps, evenly spread, the last always kept."""
    steps = [s for s in steps if s]
    if len(steps) <= MAX_STEP_COLUMNS:
        return steps
    idx = {round(i * (len(steps) - 1) / (MAX_STEP_COLUMNS - 1)) for i in range(MAX_STEP_COLUMNS)}
    return [steps[i] for i in sorted(idx)]


def along_training(rep: ReportInput) -> list[str]:
    """The paired differences at every evaluation, where they change sign, and the gaps."""
    if not rep.along:
        return []
    steps = _thin(sorted({s for a in rep.along for s in a.steps}))
    body = []
    for a in rep.along:
        at = dict(zip(a.steps, zip(a.mean, a.half, strict=True), strict=True))
        cells = [pm(*at[s], signed=True) if s in at else "—" for s in steps]
        changes = a.sign_changes()
        where = f" ({a.setting})" if a.setting else ""
        body.append(
            [f"{a.variant} − {a.baseline}{where}", *cells, ", ".join(map(str, changes)) or "none"]
        )
    crossing = [a for a in rep.along if a.sign_changes()]
    lines = [
        "## Along training",
        "",
        "Each variant's paired difference in val loss against each baseline at every evaluation "
        "(mean ± 95% CI over seeds, the same held-out windows at each step; step 0 left out); "
        "the last column gives the steps at which the mean difference changed sign. The per-step "
        "intervals are not adjusted over steps or pairs: the verdict above is made at the last "
        "evaluation alone; this view shows whether it could have read otherwise earlier.",
        "",
        *table(["variant − baseline", *(f"step {s}" for s in steps), "sign changes at"], body),
        "",
        (
            f"{len(crossing)} of {len(rep.along)} differences change sign during training"
            + (
                f" ({', '.join(f'{a.variant} − {a.baseline}' for a in crossing)})"
                if crossing
                else ""
            )
            + ": a verdict taken at another length could differ. "
            if crossing
            else "No difference changes sign after the first evaluation. "
        )
        + "The plot _Paired differences along training_ below draws them.",
        "",
    ]
    if rep.gaps:
        gap_rows = [
            [
                g["variant"] + (f" ({g['setting']})" if g["setting"] else ""),
                pm(g["gap"], g["ci_half_width"], signed=True),
                str(g["n"]),
            ]
            for g in rep.gaps
        ]
        lines += [
            "### Train–val gap",
            "",
            "Final val loss minus the final logged train loss (the mean over the last logging "
            "step's batch: a noisy single-batch figure), mean ± 95% CI over seeds. A large "
            "positive gap means a variant fits its training batches better than held-out text.",
            "",
            *table(["variant", "val − train", "seeds"], gap_rows),
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
            p_value(c.get("diff_p_adjusted", math.nan)),
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
        "p (Holm)",
        "this sweep",
    ]
    claims = (
        [
            "### Claims, checked",
            "",
            *table(head, rows, numeric=False),
            "",
            "A claim agrees when this sweep's paired difference survives Holm's adjustment over "
            "the report's family (adjusted p at most 0.05) on the claimed side of 0, and cannot "
            "tell otherwise. Where it survives on the other side, it disagrees if this sweep's "
            "models are within 100x of the claim's in size, and is **not reproduced here** if "
            "they are further apart: a regime that different does not test the claim.",
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


def _passes_line(rep: ReportInput) -> list[str]:
    """The passes over the training split, where any run made more than one."""
    passes = [
        epochs.get("done") or 0.0
        for r in rep.ok
        if isinstance(epochs := r.summary.data.get("epochs"), dict)
    ]
    if not passes or max(passes) <= 1:
        return []
    name = rep.ok[0].summary.data.get("name", "the corpus")
    return [
        f"- **Repeated data:** runs made up to {max(passes):.1f} passes over the training split "
        f"of {name} (median {_median(passes):.1f}): past one pass the losses rank how fast each "
        "variant memorises that text as much as how well it models language. Use a larger "
        "corpus (data=fineweb_edu) or a higher data.max_tokens for a comparison that sees no "
        "token twice."
    ]


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


DELTAS = (0.01, 0.02)


def seeds_needed(rep: ReportInput) -> list[dict[str, Any]]:
    """Per baseline and metric (nats per token, bits per byte): the paired standard deviations
    measured here and the seeds a paired two-sided t-test needs for POWER (80%) power to detect a
    true difference of each of DELTAS (sweep.stats.seeds_for_power, noncentral t), at alpha 0.05
    alone and at the family's strictest Holm level (FAMILY_ALPHA / m, m its hypotheses: what the
    smallest p must beat), at the median sd over the variants compared with the baseline and at
    the largest."""
    out = []
    for b in rep.present_baselines:
        for metric, unit, attr in (("loss", "nats", "diffs"), ("bpb", "bits/byte", "bpb_diffs")):
            sds = [
                getattr(r, attr)[b].sd for r in rep.rows if r.variant != b and b in getattr(r, attr)
            ]
            sds = [x for x in sds if math.isfinite(x)]
            if not sds:
                continue
            median, worst = statistics.median(sds), max(sds)
            family = next(iter(rep.families.values()), None)
            m = max(family.size if family is not None else 1, 1)
            levels = {"alpha_0.05": FAMILY_ALPHA, "family": FAMILY_ALPHA / m}
            out.append(
                {
                    "baseline": b,
                    "metric": metric,
                    "unit": unit,
                    "pairs": len(sds),
                    "sd_median": median,
                    "sd_max": worst,
                    "power": POWER,
                    "family_size": m,
                    "family_alpha": FAMILY_ALPHA / m,
                    "seeds": {
                        str(d): {
                            f"{level}_at_{which}_sd": seeds_for_power(sd, d, alpha, POWER)
                            for level, alpha in levels.items()
                            for which, sd in (("median", median), ("max", worst))
                        }
                        for d in DELTAS
                    },
                }
            )
    return out


def _n(x: int | None) -> str:
    return "> 2,000" if x is None else f"{x:,}"


def _seeds_needed_table(rep: ReportInput) -> list[str]:
    needs = seeds_needed(rep)
    if not needs:
        return []
    body = [
        [
            e["baseline"],
            e["unit"],
            f"{e['sd_median']:.4f} (up to {e['sd_max']:.4f}, {e['pairs']} variants)",
            *(
                f"{_n(e['seeds'][str(d)][f'{level}_at_median_sd'])} (up to "
                f"{_n(e['seeds'][str(d)][f'{level}_at_max_sd'])})"
                for d in DELTAS
                for level in ("alpha_0.05", "family")
            ),
        ]
        for e in needs
    ]
    m, alpha = needs[0]["family_size"], needs[0]["family_alpha"]
    head = ["baseline", "unit", "paired sd (median)"]
    head += [f"seeds for Δ = {d}, {lvl}" for d in DELTAS for lvl in ("α 0.05", f"α {alpha:.2g}")]
    return [
        "",
        f"Seeds a user needs, at **{POWER:.0%} power**: from the paired standard deviations "
        "measured here, the seeds at which the two-sided paired t-test detects a true difference "
        "of 0.01 or 0.02 (in nats per token, and in bits per byte) with 80% probability "
        "(noncentral t), at α 0.05 for one comparison alone and at "
        f"α 0.05 / {m} = {alpha:.2g}, the level the smallest p-value of this report's family of "
        f"{m} comparisons must beat under Holm's adjustment; at the median sd over the variants "
        "compared with each baseline (and at the largest).",
        "",
        *table(head, body),
    ]


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
        *_passes_line(rep),
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
    return [*lines, *_seeds_needed_table(rep), ""]
