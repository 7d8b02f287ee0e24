"""Compute multipliers: how much less training compute a variant needs to reach a loss.

Per variant, final val loss against training compute C (training FLOPs per token x tokens) over
the model sizes of a sweep is fitted with L(C) = E + A (C / C0)^-alpha (C0: the smallest compute,
for conditioning). A variant's compute multiplier against the baseline at one size is the
baseline's compute to reach the variant's mean loss there (the baseline's fit, inverted) divided
by the variant's own compute (Primer, So et al. 2021; Tay et al. 2022): 1.3 means the variant
gets there with 1/1.3 of the baseline's compute. Its 95% interval comes from a bootstrap over
seeds, paired (one resample of seeds for baseline and variant alike, as every variant with one
seed saw the same batches), refitting the baseline each time: log(multiplier) ± t(n - 1) x the
bootstrap's standard error of it.

A fit needs at least 3 model sizes and losses that fall with compute; anything else is reported
as the reason it cannot be made, never as a number. A variant loss the baseline's fit never
reaches (below its floor E) has no multiplier either. The loss is the final val loss in nats per
token, or in bits per byte (`points_from_runs(metric="final_val_bpb")`, the report's --y bpb),
which compares across tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import curve_fit

from harness.errors import one_line
from sweep.runs import varying_keys
from sweep.stats import CONFIDENCE, t_critical

MIN_SIZES = 3
BOOTSTRAP = 1000


@dataclass(frozen=True)
class Point:
    """One completed run: its variant, model size, seed, training compute and final loss."""

    variant: str
    size: str
    seed: int
    compute: float  # training FLOPs
    loss: float


@dataclass
class Fit:
    """L(C) = E + A (C / c0)^-alpha, or why it could not be fitted."""

    reason: str = ""  # empty when the fit was made
    E: float = math.nan
    A: float = math.nan
    alpha: float = math.nan
    c0: float = 1.0
    residuals: list[tuple[float, float]] = field(default_factory=list)  # (compute, loss - fit)

    @property
    def ok(self) -> bool:
        return not self.reason

    def loss(self, compute: np.ndarray | float) -> np.ndarray | float:
        return self.E + self.A * (np.asarray(compute) / self.c0) ** -self.alpha

    def compute_for(self, loss: float) -> float | None:
        """The compute at which the curve reaches `loss`; None below the floor E."""
        if not self.ok or loss <= self.E:
            return None
        return self.c0 * ((loss - self.E) / self.A) ** (-1 / self.alpha)

    @property
    def residual_rms(self) -> float:
        return (
            float(np.sqrt(np.mean([r * r for _, r in self.residuals])))
            if self.residuals
            else math.nan
        )


def _curve(x: np.ndarray, E: float, A: float, alpha: float) -> np.ndarray:
    return E + A * x**-alpha


def _means_by_size(points: Sequence[Point]) -> list[tuple[float, float]]:
    """(mean compute, mean loss) per size, in order of compute."""
    sizes: dict[str, list[Point]] = {}
    for p in points:
        sizes.setdefault(p.size, []).append(p)
    means = [
        (np.mean([p.compute for p in ps]), np.mean([p.loss for p in ps])) for ps in sizes.values()
    ]
    return sorted(means)


def fit_curve(points: Sequence[Point]) -> Fit:
    """The fit of loss against compute over `points` (one variant), or why it cannot be made."""
    means = _means_by_size(points)
    if len(means) < MIN_SIZES:
        return Fit(reason=f"needs runs at {MIN_SIZES} or more model sizes, has {len(means)}")
    losses = [loss for _, loss in means]
    if not all(b < a for a, b in zip(losses, losses[1:], strict=False)):
        return Fit(reason="the mean loss does not fall as compute grows")
    c0 = means[0][0]
    x = np.array([p.compute for p in points]) / c0
    y = np.array([p.loss for p in points])
    spread = losses[0] - losses[-1]
    guess = (losses[-1] - spread, 2 * spread, 0.5)
    bounds = ([0.0, 1e-12, 1e-3], [losses[-1], np.inf, 5.0])
    try:
        (E, A, alpha), _ = curve_fit(_curve, x, y, p0=guess, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError) as e:
        return Fit(reason=f"the fit did not converge ({one_line(e, typed=False)})")
    residuals = [(p.compute, p.loss - float(_curve(p.compute / c0, E, A, alpha))) for p in points]
    return Fit("", float(E), float(A), float(alpha), c0, residuals)


@dataclass
class Multiplier:
    variant: str
    size: str
    compute: float  # the variant's training compute at this size
    loss: float  # its mean final loss over seeds
    value: float | None  # None: not computable (see note)
    low: float | None = None
    high: float | None = None
    note: str = ""
    # The same in training seconds (sweep.throughput.seconds_multipliers), where tokens/s are known
    seconds_value: float | None = None
    seconds_low: float | None = None
    seconds_high: float | None = None
    seconds_source: str = ""


def _multiplier(base: Fit, compute: float, loss: float) -> float | None:
    needed = base.compute_for(loss)
    return None if needed is None else needed / compute


def _as_float(x: float | None) -> float | None:
    return None if x is None else float(x)


def _mean_at(points: Sequence[Point], size: str, seeds: Sequence[int]) -> tuple[float, float]:
    """Mean (compute, loss) of the runs at `size` over `seeds` (repeats count again)."""
    runs = [p for s in seeds for p in points if p.seed == s and p.size == size]
    return float(np.mean([p.compute for p in runs])), float(np.mean([p.loss for p in runs]))


def _interval(
    value: float, values: list[float], n_seeds: int
) -> tuple[float | None, float | None, str]:
    """value's 95% interval: log(value) ± t(n - 1) x the bootstrap standard error of the log.

    A percentile interval from a handful of seeds is too narrow (the resamples can only mix the
    same few seeds); Student's t with n - 1 degrees of freedom widens it as a t interval of a
    mean would be widened.
    """
    if len(values) < 0.9 * BOOTSTRAP:
        return None, None, f"only {len(values)} of {BOOTSTRAP} resamples gave a multiplier"
    half = t_critical(n_seeds, CONFIDENCE) * float(np.std(np.log(values), ddof=1))
    return value * math.exp(-half), value * math.exp(half), ""


def multipliers(
    points: Sequence[Point], baseline: str, seed: int = 0
) -> tuple[dict[str, Fit], list[Multiplier]]:
    """Each variant's fit, and each non-baseline variant's multiplier at each size."""
    by_variant: dict[str, list[Point]] = {}
    for p in points:
        by_variant.setdefault(p.variant, []).append(p)
    fits = {v: fit_curve(ps) for v, ps in by_variant.items()}
    base = fits.get(baseline)
    if base is None or not base.ok:
        why = "no baseline runs" if base is None else f"no baseline fit: {base.reason}"
        rows = [
            Multiplier(v, s, c, loss, None, note=why)
            for v, ps in sorted(by_variant.items())
            if v != baseline
            for s, c, loss in _size_means(ps)
        ]
        return fits, rows
    seeds = sorted(set.intersection(*({p.seed for p in ps} for ps in by_variant.values())))
    # One resample of seeds serves every variant (paired), with the baseline refitted on it.
    rng = np.random.default_rng(seed)
    draws = [rng.choice(seeds, size=len(seeds)) for _ in range(BOOTSTRAP)] if len(seeds) > 1 else []
    base_fits = [
        fit_curve([p for s in d for p in by_variant[baseline] if p.seed == s]) for d in draws
    ]
    out = []
    for variant, ps in sorted(by_variant.items()):
        if variant == baseline:
            continue
        for size, compute, loss in _size_means(ps):
            value = _as_float(_multiplier(base, compute, loss))
            if value is None:
                out.append(
                    Multiplier(
                        variant, size, compute, loss, None, note="below the baseline fit's floor E"
                    )
                )
                continue
            resampled = [
                _multiplier(f, *_mean_at(ps, size, d))
                for f, d in zip(base_fits, draws, strict=True)
            ]
            low, high, note = (
                _interval(value, [m for m in resampled if m is not None], len(seeds))
                if draws
                else (None, None, "one seed: no interval")
            )
            out.append(Multiplier(variant, size, compute, loss, value, low, high, note))
    return fits, out


def _size_means(points: Sequence[Point]) -> list[tuple[str, float, float]]:
    """(size, mean compute, mean loss) per size, in order of compute."""
    sizes: dict[str, list[Point]] = {}
    for p in points:
        sizes.setdefault(p.size, []).append(p)
    rows = [
        (s, float(np.mean([p.compute for p in ps])), float(np.mean([p.loss for p in ps])))
        for s, ps in sizes.items()
    ]
    return sorted(rows, key=lambda r: r[1])


def fit_band(
    points: Sequence[Point], grid: np.ndarray, seed: int = 0, draws: int = 200
) -> tuple[np.ndarray, np.ndarray] | None:
    """The 95% band of a variant's fitted curve over `grid`: refits on seeds resampled with
    replacement (None with fewer than 2 seeds or too few fits)."""
    seeds = sorted({p.seed for p in points})
    if len(seeds) < 2:
        return None
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(draws):
        drawn = rng.choice(seeds, size=len(seeds))
        fit = fit_curve([p for s in drawn for p in points if p.seed == s])
        if fit.ok:
            curves.append(fit.loss(grid))
    if len(curves) < 0.9 * draws:
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(np.array(curves), [tail, 100 - tail], axis=0)
    return low, high


def points_from_runs(runs: Sequence, metric: str = "final_val_loss") -> tuple[list[Point], str]:
    """The sweep's completed runs as points (their final `metric`), and '' — or [] and why the
    sweep is no scaling study (fewer than 2 model sizes, another setting that varies too, or no
    run that recorded the metric)."""
    ok = [r for r in runs if r.ok and r.seed is not None]
    sizes = {r.summary.model for r in ok}
    if len(sizes) < 2:
        return [], "one model size"
    others = [k for k in varying_keys(runs) if k != "model"]
    if others:
        return [], f"it varies {', '.join(others)} besides the model"
    points = [
        Point(
            str(r.variant),
            str(r.summary.model),
            int(r.seed),
            float(r.summary.flops_per_token["train"]) * r.summary.tokens,
            float(getattr(r.summary, metric)),
        )
        for r in ok
        if isinstance(getattr(r.summary, metric), (int, float))
        and math.isfinite(getattr(r.summary, metric))
    ]
    if not points:
        return [], f"no completed run recorded {metric}"
    return points, ""
