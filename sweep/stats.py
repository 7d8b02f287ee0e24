"""Pure statistics for sweep reports: confidence intervals over seeds and paired differences.

Everything here takes plain Python/numpy values and returns plain floats; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

# The level of every interval the report gives.
CONFIDENCE = 0.95

NAN = float("nan")


def t_critical(n: int, confidence: float = 0.95) -> float:
    """Two-sided Student t critical value for ``n`` samples (df = n - 1); NaN when n < 2."""
    if n < 2:
        return NAN
    return float(stats.t.ppf(0.5 + confidence / 2.0, n - 1))


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its two-sided Student-t confidence interval.

    The half-width is ``t_{(1+confidence)/2, n-1} * s / sqrt(n)`` with ``s`` the sample standard
    deviation (ddof=1). With one value the half-width is NaN (no interval can be estimated); with
    none, both are NaN.
    """
    x = np.asarray(list(values), dtype=float)
    n = x.size
    if n == 0:
        return NAN, NAN
    mean = float(x.mean())
    if n == 1:
        return mean, NAN
    sd = float(x.std(ddof=1))
    return mean, t_critical(n, confidence) * sd / math.sqrt(n)


def paired_difference(
    a_by_seed: Mapping[object, float],
    b_by_seed: Mapping[object, float],
    confidence: float = 0.95,
) -> tuple[float, float, float, int]:
    """Paired comparison of ``a - b`` over the seeds both have.

    Returns ``(mean_diff, half_width, p_value, n)`` where the half-width is the Student-t CI of the
    mean per-seed difference and the p-value is the two-sided paired t-test (same as
    ``scipy.stats.ttest_rel``). With n < 2 the half-width and p-value are NaN (n = 0: all NaN).
    If every difference is identical the test is degenerate: p = 1 when they are all 0, else 0.
    """
    seeds = sorted((s for s in a_by_seed if s in b_by_seed), key=repr)
    d = np.array([float(a_by_seed[s]) - float(b_by_seed[s]) for s in seeds], dtype=float)
    n = int(d.size)
    if n == 0:
        return NAN, NAN, NAN, 0
    mean = float(d.mean())
    if n == 1:
        return mean, NAN, NAN, 1
    sd = float(d.std(ddof=1))
    half = t_critical(n, confidence) * sd / math.sqrt(n)
    if sd == 0.0:
        return mean, half, (1.0 if mean == 0.0 else 0.0), n
    t_stat = mean / (sd / math.sqrt(n))
    p = float(2.0 * stats.t.sf(abs(t_stat), n - 1))
    return mean, half, p, n


def aligned_mean_ci(
    series: Sequence[Mapping[int, float]], confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Align several ``step -> value`` series by step and summarise each step over the series.

    Returns arrays ``(steps, mean, half_width, n)`` over the sorted union of steps; a step only
    some series logged uses the ones that have it (half-width NaN where fewer than two do).
    Non-finite values are ignored.
    """
    steps = sorted({s for ser in series for s in ser})
    means, halves, counts = [], [], []
    for s in steps:
        vals = [float(ser[s]) for ser in series if s in ser and math.isfinite(float(ser[s]))]
        m, h = mean_ci(vals, confidence)
        means.append(m)
        halves.append(h)
        counts.append(len(vals))
    return (
        np.asarray(steps, dtype=int),
        np.asarray(means, dtype=float),
        np.asarray(halves, dtype=float),
        np.asarray(counts, dtype=int),
    )


# The familywise error rate every verdict of a report is held to, and the power its seed counts
# are planned at.
FAMILY_ALPHA = 0.05
POWER = 0.80


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (NaN stays NaN and is not counted
    in the family): sorted ascending, p_(i) x (m - i), made monotone, capped at 1. A hypothesis
    is rejected at familywise level alpha when its adjusted p is <= alpha."""
    idx = [i for i, p in enumerate(p_values) if math.isfinite(p)]
    order = sorted(idx, key=lambda i: p_values[i])
    m = len(order)
    out = [NAN] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


def paired_power(n: int, effect: float, alpha: float) -> float:
    """Power of the two-sided paired (one-sample) t-test with n pairs at standardised effect
    `effect` (mean difference / sd of the differences), from the noncentral t distribution."""
    if n < 2 or not math.isfinite(effect):
        return NAN
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(
    sd: float, delta: float, alpha: float = 0.05, power: float = POWER, most: int = 2_000
) -> int | None:
    """The seeds a paired comparison needs to detect a true difference `delta` with probability
    `power` in a two-sided paired t-test at level `alpha`, at the measured standard deviation
    `sd` of the per-seed differences: the smallest n >= 2 whose noncentral-t power reaches it.
    None when sd is unknown, or more than `most` seeds would be needed."""
    if not (math.isfinite(sd) and sd >= 0 and delta > 0 and 0 < alpha < 1):
        return None
    if sd == 0:
        return 2
    effect = delta / sd
    for n in range(2, most + 1):
        if paired_power(n, effect, alpha) >= power:
            return n
    return None


def rank_lowest_first(values: Mapping[str, float]) -> dict[str, int]:
    """Competition ranks (1 = lowest value; ties share the better rank; NaN ranks last)."""
    keyed = sorted(values, key=lambda k: (not math.isfinite(values[k]), values[k], k))
    ranks: dict[str, int] = {}
    for i, k in enumerate(keyed):
        prev = keyed[i - 1] if i else None
        if prev is not None and values[prev] == values[k]:
            ranks[k] = ranks[prev]
        else:
            ranks[k] = i + 1
    return ranks


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Kendall's tau-b between two orderings of the same items, and its two-sided p-value."""
    result = stats.kendalltau(a, b)
    return float(result.statistic), float(result.pvalue)


def spread_percent(values: Iterable[float]) -> float:
    """How far the largest value is above the smallest, in percent of the smallest (NaN if none)."""
    x = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not x or min(x) <= 0:
        return NAN
    return (max(x) - min(x)) / min(x) * 100.0
