"""The family of comparisons a report makes, and Holm's adjustment over it.

A report compares each variant with each baseline (a pair of two baselines once), and checks
claims of the literature that may name other pairs; every such pair, in each setting the sweep
varies, is one hypothesis of the family. Its paired t-test's raw p-value is adjusted by Holm's
step-down method over the whole family, and every verdict of the report (significant, agrees, the
verdict list) reads the adjusted p at familywise alpha FAMILY_ALPHA.

One family, not one per unit: on one held-out slice under one tokenizer, bits per byte is the loss
times a constant, so its tests are the loss's tests in another unit and carry the loss's adjusted
p-values. Where the runs' slices or tokenizers differ, the two units rank differently; the family
is then the one in bits per byte (comparable across tokenizers), and the report says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sweep.runs import Run
from sweep.stats import FAMILY_ALPHA, holm
from sweep.table import Diff, Row

METRICS = {"loss": "diffs", "bpb": "bpb_diffs"}  # metric -> the Row attribute of its diffs


@dataclass(frozen=True)
class Pair:
    """One hypothesis: variant - other = 0 in one setting, with its paired difference."""

    variant: str
    other: str
    setting: str
    diff: Diff

    @property
    def key(self) -> tuple[frozenset[str], str]:
        return frozenset((self.variant, self.other)), self.setting

    def flat(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "other": self.other,
            "setting": self.setting,
            **self.diff.flat(),
        }


@dataclass
class Family:
    """The pairs of one metric, each with its Holm-adjusted p-value."""

    metric: str
    pairs: list[Pair]

    @property
    def size(self) -> int:
        """Hypotheses with a p-value: the m of Holm's adjustment."""
        return sum(math.isfinite(p.diff.p_value) for p in self.pairs)

    def adjusted(self, variant: str, other: str, setting: str) -> float:
        key = (frozenset((variant, other)), setting)
        return next((p.diff.p_adjusted for p in self.pairs if p.key == key), math.nan)

    def flat(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "alpha": FAMILY_ALPHA,
            "method": "holm",
            "size": self.size,
            "pairs": [p.flat() for p in self.pairs],
        }


def _pairs(rows: Sequence[Row], attr: str, claims: Sequence[dict[str, Any]]) -> list[Pair]:
    """Each variant against each baseline, each distinct pair once, then the claims' pairs."""
    seen: dict[tuple[frozenset[str], str], Pair] = {}
    for r in rows:
        for b, d in getattr(r, attr).items():
            if r.variant != b and d.n_pairs > 0:
                pair = Pair(r.variant, b, r.setting, d)
                seen.setdefault(pair.key, pair)
    if attr == "diffs":  # the claims are judged in nats per token
        for c in claims:
            d = Diff(c["diff_mean"], c["diff_ci_half_width"], c["diff_p_value"], c["diff_n_pairs"])
            pair = Pair(c["variant"], c["other"], c["setting"], d)
            if d.n_pairs > 0:
                seen.setdefault(pair.key, pair)
    return list(seen.values())


def family_metric(runs: Sequence[Run]) -> tuple[str, str]:
    """The unit the family is adjusted in, and why: "loss" where every completed run was judged
    on one slice, one number of tokens and one tokenizer (bpb is then the loss times a constant),
    else "bpb"."""
    seen = {
        (d.get("name"), d.get("eval_slice"), d.get("val_tokens"), d.get("val_bytes"))
        for r in runs
        if r.ok and r.summary is not None and isinstance(d := r.summary.data, dict)
    }
    if len(seen) <= 1:
        return "loss", (
            "every run was judged on the same held-out text under one tokenizer, where bits per "
            "byte is the loss times a constant: the same tests in another unit"
        )
    return "bpb", (
        f"the runs were judged on {len(seen)} different texts or tokenizers, where nats per token "
        "do not compare: the family is adjusted in bits per byte, and the loss figures are "
        "shown beside it, unadjusted by themselves"
    )


def adjust(
    rows: Sequence[Row], claims: list[dict[str, Any]], metric: str = "loss"
) -> dict[str, Family]:
    """The report's one family, in `metric` ({metric: family}); writes each adjusted p back into
    the rows' diffs in both units (Diff.p_adjusted: the same test) and the claims
    (diff_p_adjusted)."""
    pairs = _pairs(rows, METRICS[metric], claims if metric == "loss" else [])
    adjusted = holm([p.diff.p_value for p in pairs])
    pairs = [
        dataclasses.replace(p, diff=dataclasses.replace(p.diff, p_adjusted=a))
        for p, a in zip(pairs, adjusted, strict=True)
    ]
    family = Family(metric, pairs)
    for r in rows:
        for attr in METRICS.values():
            setattr(
                r,
                attr,
                {
                    b: dataclasses.replace(d, p_adjusted=family.adjusted(r.variant, b, r.setting))
                    for b, d in getattr(r, attr).items()
                },
            )
    for c in claims:
        c["diff_p_adjusted"] = family.adjusted(c["variant"], c["other"], c["setting"])
    return {metric: family}
