"""The comparison along training, not only at its end: each paired difference against each
baseline at every evaluation (mean ± 95% CI over seeds), where it changes sign, and each
variant's train-val gap at the end."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sweep.runs import Run, finite
from sweep.stats import CONFIDENCE, mean_ci, paired_difference


@dataclass
class Along:
    """variant - baseline in val loss at each evaluation step, paired by seed."""

    variant: str
    baseline: str
    setting: str
    steps: list[int] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    half: list[float] = field(default_factory=list)
    n: list[int] = field(default_factory=list)

    def sign_changes(self) -> list[int]:
        """The evaluation steps at which the mean difference has the other sign than at the
        evaluation before (the first evaluation, at initialisation, is left out: every model
        starts at about the same loss)."""
        out, prev = [], 0.0
        for step, m in zip(self.steps, self.mean, strict=True):
            if step == 0 or not math.isfinite(m) or m == 0:
                continue
            if prev and (m > 0) != (prev > 0):
                out.append(step)
            prev = m
        return out

    def resolved(self) -> list[int]:
        """The steps where the 95% CI excludes 0 (a per-step view, not adjusted over steps)."""
        return [
            s
            for s, m, h in zip(self.steps, self.mean, self.half, strict=True)
            if s and math.isfinite(h) and abs(m) > h
        ]

    def flat(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "baseline": self.baseline,
            "setting": self.setting,
            "steps": self.steps,
            "mean": self.mean,
            "ci_half_width": self.half,
            "n_pairs": self.n,
            "sign_changes_at": self.sign_changes(),
        }


def val_by_step(run: Run) -> dict[int, float]:
    return {
        int(m["step"]): float(m["val/loss"])
        for m in run.metrics
        if "step" in m and finite(m.get("val/loss"))
    }


def along_training(runs: Sequence[Run], baselines: Sequence[str]) -> list[Along]:
    """One Along per (variant, baseline, setting) the sweep has both of."""
    curves: dict[tuple[str, str], dict[int, dict[int, float]]] = {}
    for r in runs:
        if r.ok and r.variant is not None and r.seed is not None:
            curves.setdefault((r.variant, r.setting), {})[r.seed] = val_by_step(r)
    out = []
    for (variant, setting), mine in curves.items():
        for b in baselines:
            theirs = curves.get((b, setting))
            if b == variant or theirs is None:
                continue
            a = Along(variant, b, setting)
            steps = sorted({s for c in mine.values() for s in c})
            for step in steps:
                x = {seed: c[step] for seed, c in mine.items() if step in c}
                y = {seed: c[step] for seed, c in theirs.items() if step in c}
                m, h, _, n = paired_difference(x, y, CONFIDENCE)
                if n:
                    a.steps.append(step)
                    a.mean.append(m)
                    a.half.append(h)
                    a.n.append(n)
            out.append(a)
    return out


def train_val_gaps(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per variant (and setting): final val loss - final train loss, mean ± 95% CI over seeds."""
    by: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        s = r.summary
        if r.ok and s is not None and finite(s.final_val_loss) and finite(s.final_train_loss):
            by.setdefault((str(r.variant), r.setting), []).append(
                float(s.final_val_loss) - float(s.final_train_loss)
            )
    out = []
    for (variant, setting), gaps in by.items():
        mean, half = mean_ci(gaps, CONFIDENCE)
        out.append(
            {
                "variant": variant,
                "setting": setting,
                "gap": mean,
                "ci_half_width": half,
                "n": len(gaps),
            }
        )
    return sorted(out, key=lambda g: (g["setting"], g["gap"]))
