"""Across optimizers: does a variant's difference against a baseline change with the optimizer?

For a sweep that trains every variant under several optimizers (experiment=contenders_optim) with
the same seeds, each variant v and baseline b give, per seed s, the difference of differences

    I_s = (v - b under optimizer o)_s - (v - b under the reference optimizer)_s

(the reference: adamw where present). Its mean, 95% interval and two-sided one-sample t-test
(the paired test of the two differences) measure the interaction of the difference with the
optimizer; Holm's adjustment runs over these interactions as their own family. Kendall's tau
between the variants' rankings (mean final val loss) under the two optimizers says how much of
the order survives, and the nanochat claim (SwiGLU worse than ReLU^2, made under Muon) is read
from the difference under Muon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as st

from sweep.runs import Run, finite, varying_keys
from sweep.stats import CONFIDENCE, FAMILY_ALPHA, holm, paired_difference

REFERENCE = "adamw"


@dataclass(frozen=True)
class Interaction:
    variant: str
    baseline: str
    optimizer: str  # compared with the reference
    reference: str
    diff_reference: float  # mean variant - baseline under the reference
    diff_other: float  # ... under `optimizer`
    mean: float  # mean of the per-seed difference of differences
    ci_half_width: float
    p_value: float
    n_pairs: int
    p_adjusted: float = math.nan

    @property
    def significant(self) -> bool:
        return math.isfinite(self.p_adjusted) and self.p_adjusted <= FAMILY_ALPHA

    def flat(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {
            "significant": self.significant
        }


@dataclass(frozen=True)
class Ranking:
    optimizer: str
    order: list[str]  # variants, lowest mean final val loss first
    means: dict[str, float]


@dataclass(frozen=True)
class AcrossOptimizers:
    reference: str
    rankings: list[Ranking]
    interactions: list[Interaction]
    tau: dict[str, tuple[float, float]]  # optimizer -> (Kendall's tau vs the reference, p)

    def flat(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "rankings": [r.__dict__ for r in self.rankings],
            "interactions": [i.flat() for i in self.interactions],
            "kendall_tau": {o: {"tau": t, "p_value": p} for o, (t, p) in self.tau.items()},
            "family_size": sum(math.isfinite(i.p_value) for i in self.interactions),
        }


def _losses(runs: Sequence[Run]) -> dict[tuple[str, str], dict[int, float]]:
    """(optimizer, variant) -> seed -> final val loss, completed runs only."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for r in runs:
        value = r.summary.final_val_loss if r.ok and r.summary is not None else None
        if r.variant is not None and r.seed is not None and finite(value):
            out.setdefault((r.optimizer, r.variant), {})[r.seed] = float(value)
    return out


def across_optimizers(runs: Sequence[Run], baselines: Sequence[str]) -> AcrossOptimizers | None:
    """The analysis, where the sweep varies the optimizer and nothing else; else None."""
    if set(varying_keys(runs)) != {"optim"}:
        return None
    losses = _losses(runs)
    optimizers = sorted({o for o, _ in losses}, key=lambda o: (o != REFERENCE, o))
    if len(optimizers) < 2:
        return None
    reference = optimizers[0]
    variants = sorted({v for _, v in losses})
    rankings = []
    for o in optimizers:
        means = {
            v: float(np.mean(list(losses[o, v].values()))) for v in variants if (o, v) in losses
        }
        rankings.append(Ranking(o, sorted(means, key=lambda v: (means[v], v)), means))
    interactions = []
    for o in optimizers[1:]:
        for b in baselines:
            for v in variants:
                if v == b or not all((x, y) in losses for x in (o, reference) for y in (v, b)):
                    continue
                d_ref = _diffs(losses[reference, v], losses[reference, b])
                d_other = _diffs(losses[o, v], losses[o, b])
                mean, half, p, n = paired_difference(d_other, d_ref, CONFIDENCE)
                interactions.append(
                    Interaction(
                        v,
                        b,
                        o,
                        reference,
                        float(np.mean(list(d_ref.values()))),
                        float(np.mean(list(d_other.values()))),
                        mean,
                        half,
                        p,
                        n,
                    )
                )
    adjusted = holm([i.p_value for i in interactions])
    interactions = [
        Interaction(**{**i.__dict__, "p_adjusted": a})
        for i, a in zip(interactions, adjusted, strict=True)
    ]
    tau = {}
    ref = rankings[0].means
    for r in rankings[1:]:
        common = [v for v in variants if v in ref and v in r.means]
        t, p = st.kendalltau([ref[v] for v in common], [r.means[v] for v in common])
        tau[r.optimizer] = (float(t), float(p))
    return AcrossOptimizers(reference, rankings, interactions, tau)


def _diffs(mine: dict[int, float], base: dict[int, float]) -> dict[int, float]:
    return {s: mine[s] - base[s] for s in mine if s in base}


def render(a: AcrossOptimizers, claim: dict[str, Any] | None) -> list[str]:
    """The report's section "Across optimizers"."""
    from sweep.fmt import p_value, table

    lines = [
        "## Across optimizers",
        "",
        "Rankings (mean final val loss, lowest first): "
        + "; ".join(f"**{r.optimizer}**: {' < '.join(r.order)}" for r in a.rankings)
        + ".",
        "",
        "Kendall's τ between the rankings: "
        + "; ".join(
            f"{o} vs {a.reference}: τ = {t:+.2f} (p {p_value(p)})" for o, (t, p) in a.tau.items()
        )
        + ". τ = 1: the same order; 0: unrelated.",
        "",
        f"**The interaction**: for each variant and baseline, the per-seed difference of the "
        f"variant's difference under each optimizer and under {a.reference} (paired by seed: "
        "the same batches under both), its 95% interval and t-test; Holm over these "
        f"{sum(math.isfinite(i.p_value) for i in a.interactions)} as their own family. A "
        "significant interaction: the optimizer changes the comparison.",
        "",
    ]
    body = [
        [
            f"{i.variant} − {i.baseline}",
            i.optimizer,
            f"{i.diff_reference:+.4f}",
            f"{i.diff_other:+.4f}",
            f"{'**' if i.significant else ''}{i.mean:+.4f} ± {i.ci_half_width:.4f}"
            f"{'**' if i.significant else ''}",
            p_value(i.p_value),
            p_value(i.p_adjusted),
        ]
        for i in a.interactions
    ]
    lines += table(
        [
            "difference",
            "optimizer",
            f"Δ under {a.reference}",
            "Δ under it",
            "interaction",
            "p",
            "p (Holm)",
        ],
        body,
    )
    kept = [i for i in a.interactions if i.significant]
    lines += [
        "",
        f"{len(kept)} of {len(a.interactions)} interactions survive Holm"
        + (
            ": " + "; ".join(f"{i.variant} − {i.baseline} under {i.optimizer}" for i in kept)
            if kept
            else ": no difference between variants can be said to change with the optimizer "
            "at these seeds"
        )
        + ".",
        "",
    ]
    if claim is not None:
        lines += [
            "nanochat's *SwiGLU worse than ReLU²* (made under Muon), judged under Muon here: "
            f"{claim['verdict']}.",
            "",
        ]
    return lines
