"""The text-level view of a comparison: does a difference hold across the held-out documents, or
only on this text?

Each run's final evaluation records its loss on every held-out document it read
(summary.json's final_val_documents). For a pair of variants in one setting, the per-(seed,
document) difference d[s, k] pairs the two runs of seed s on document k (the same windows for
both). The comparison's difference is the token-weighted mean over documents of the mean over
seeds. Two views of how it holds up:

- how many documents favour each side (the seed-mean difference on that document below or above
  0);
- a two-level paired bootstrap: seeds and documents resampled together, with replacement,
  BOOTSTRAP_DRAWS times from a fixed generator; its 2.5th and 97.5th percentiles are the interval.
  It counts the seed noise and the text's own: a difference carried by a few documents gets a
  wide interval.

A difference is a finding where it survives Holm over seeds *and* its two-level interval excludes
0: it holds across texts. Surviving Holm alone, it holds on this text only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweep.runs import Run

BOOTSTRAP_DRAWS = 4000
BOOTSTRAP_SEED = 0
DOCUMENT_COLUMNS = ["variant", "setting", "seed", "document", "tokens", "loss", "dir"]


def document_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """documents.csv: a row per completed run and held-out document of its final evaluation."""
    rows = []
    for r in runs:
        if not r.ok or r.summary is None:
            continue
        for name, v in (r.summary.final_val_documents or {}).items():
            rows.append(
                {
                    "variant": r.variant,
                    "setting": r.setting,
                    "seed": r.seed,
                    "document": name,
                    "tokens": int(v["tokens"]),
                    "loss": float(v["loss"]),
                    "dir": r.rel,
                }
            )
    return rows


@dataclass(frozen=True)
class TextLevel:
    """One comparison (variant - other, in a setting) seen document by document."""

    variant: str
    other: str
    setting: str
    n_seeds: int
    n_documents: int
    mean: float  # token-weighted over documents of the seed-mean difference
    favour_variant: int  # documents where the variant's loss is lower
    favour_other: int
    low: float  # the two-level bootstrap's 95% interval
    high: float

    @property
    def excludes_zero(self) -> bool:
        return math.isfinite(self.low) and (self.low > 0 or self.high < 0)

    def flat(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "other": self.other,
            "setting": self.setting,
            "n_seeds": self.n_seeds,
            "n_documents": self.n_documents,
            "mean": self.mean,
            "favour_variant": self.favour_variant,
            "favour_other": self.favour_other,
            "ci_low": self.low,
            "ci_high": self.high,
            "excludes_zero": self.excludes_zero,
        }


def _table(rows: Sequence[dict[str, Any]], variant: str, setting: str) -> dict:
    """(seed, document) -> (loss, tokens) of one variant in one setting."""
    return {
        (r["seed"], r["document"]): (float(r["loss"]), int(r["tokens"]))
        for r in rows
        if r["variant"] == variant and r["setting"] == setting
    }


def difference_matrix(
    rows: Sequence[dict[str, Any]], variant: str, other: str, setting: str
) -> tuple[np.ndarray, np.ndarray]:
    """d[seed, document] = variant's loss - other's over the seeds and documents both have, and
    each document's tokens."""
    mine, theirs = _table(rows, variant, setting), _table(rows, other, setting)
    common = mine.keys() & theirs.keys()
    seeds = sorted({s for s, _ in common})
    docs = sorted({d for _, d in common})
    whole = [s for s in seeds if all((s, d) in common for d in docs)]
    if not whole or not docs:
        return np.empty((0, 0)), np.empty(0)
    d = np.array([[mine[s, k][0] - theirs[s, k][0] for k in docs] for s in whole])
    tokens = np.array([mine[whole[0], k][1] for k in docs], dtype=float)
    return d, tokens


def bootstrap_interval(d: np.ndarray, tokens: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of the token-weighted mean difference under resampling of
    seeds and documents together (module doc); NaN with under 2 seeds or 2 documents."""
    n_seeds, n_docs = d.shape
    if n_seeds < 2 or n_docs < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    seeds = rng.integers(0, n_seeds, size=(BOOTSTRAP_DRAWS, n_seeds))
    docs = rng.integers(0, n_docs, size=(BOOTSTRAP_DRAWS, n_docs))
    per_doc = d[seeds].mean(axis=1)  # [draws, documents]: seed means of the drawn seeds
    picked = np.take_along_axis(per_doc, docs, axis=1)
    weights = tokens[docs]
    stat = (picked * weights).sum(axis=1) / weights.sum(axis=1)
    low, high = np.percentile(stat, [2.5, 97.5])
    return float(low), float(high)


def text_level(rows: Sequence[dict[str, Any]], variant: str, other: str, setting: str) -> TextLevel:
    """The text-level view of variant - other in `setting`, from documents.csv's rows."""
    d, tokens = difference_matrix(rows, variant, other, setting)
    if d.size == 0:
        nan = math.nan
        return TextLevel(variant, other, setting, 0, 0, nan, 0, 0, nan, nan)
    by_doc = d.mean(axis=0)
    low, high = bootstrap_interval(d, tokens)
    return TextLevel(
        variant,
        other,
        setting,
        n_seeds=d.shape[0],
        n_documents=d.shape[1],
        mean=float((by_doc * tokens).sum() / tokens.sum()),
        favour_variant=int((by_doc < 0).sum()),
        favour_other=int((by_doc > 0).sum()),
        low=low,
        high=high,
    )
