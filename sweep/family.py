"""The family of comparisons a report makes, and Holm's adjustment over it.

A report compares each variant with each baseline (a pair of two baselines once), and checks
claims of the literature that may name other pairs; every such pair, in each setting the sweep
varies, is one hypothesis of the family. Its paired t-test's raw p-value is adjusted by Holm's
step-down method over the whole family, one family per metric (nats per token; bits per byte), and
every verdict of the report (significant, agrees, the verdict list) reads the adjusted p at
familywise alpha FAMILY_ALPHA.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def adjust(rows: Sequence[Row], claims: list[dict[str, Any]]) -> dict[str, Family]:
    """The families of the report, per metric; writes each adjusted p back into the rows' diffs
    (Diff.p_adjusted) and the claims (diff_p_adjusted)."""
    families = {}
    for metric, attr in METRICS.items():
        pairs = _pairs(rows, attr, claims)
        adjusted = holm([p.diff.p_value for p in pairs])
        pairs = [
            dataclasses.replace(p, diff=dataclasses.replace(p.diff, p_adjusted=a))
            for p, a in zip(pairs, adjusted, strict=True)
        ]
        family = Family(metric, pairs)
        families[metric] = family
        for r in rows:
            setattr(
                r,
                attr,
                {
                    b: dataclasses.replace(d, p_adjusted=family.adjusted(r.variant, b, r.setting))
                    for b, d in getattr(r, attr).items()
                },
            )
    loss = families["loss"]
    for c in claims:
        c["diff_p_adjusted"] = loss.adjusted(c["variant"], c["other"], c["setting"])
    return families
