"""Stage 1 of a tuned comparison: each variant's learning rate, from a sweep over an lr grid.

    make tune EXPERIMENT=contenders [TUNE_POINTS=5] [TUNE_FACTOR=2] [TUNE_SEEDS=0] [TUNE_GRID=...]
    python -m sweep.tune SWEEP_DIR [--out results] [--name NAME]   # the analysis step alone
    python -m sweep.tune --grid experiment=contenders [--points 5] [--factor 2]   # print the grid

`make tune` runs the experiment's multirun (every variant at every model size it sweeps, at its
length) with `optim.lr=<grid>` and `seed=<TUNE_SEEDS>` on the command line, then this analysis:
per model size and variant, the mean final val loss at each rate of the grid (over the tuning
seeds, on the held-out split's tuning slice: data.eval_slice=tune), and the chosen rate: the
vertex of a quadratic in log lr fitted to every grid point and seed (each weighted by its rate's
inverse seed variance), with a 95% interval, clamped to the best grid point's neighbours. Where
the curvature is not significant or the interval reaches past both neighbours, the curve is
"flat": the report says within how many nats rates cannot be told apart. A best point at either
end of the grid stops the analysis with exit 1 and one line per variant giving the widened grid
to rerun (TUNE_GRID=...). It writes under <out>/<name>/ (default
results/<experiment>_tune/): tuned.yaml (the chosen rates, harness.tuned.TunedRates), report.md
(loss against learning rate, as a table and lr_loss.png), summary.json. Stage 2:
`make sweep EXPERIMENT=<e> TUNED=<out>/<name>/tuned.yaml` trains each variant at its own rate.

A run that diverged or failed at a rate has no loss there: that rate cannot be chosen, and the
table says what happened.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserInputError
from harness.json_safe import dumps
from harness.tuned import DEFAULT_FACTOR, DEFAULT_POINTS, TunedRates, format_grid, lr_grid
from sweep.fmt import pm, table
from sweep.runs import Run, finite, load_sweep, summary_values
from sweep.stats import CONFIDENCE, mean_ci

METRIC = "final_val_loss"


@dataclass
class Curve:
    """One variant at one model size: its final val losses at each rate of the grid."""

    size: str
    variant: str
    losses: dict[float, list[float]] = field(default_factory=dict)  # lr -> completed runs' losses
    failed: dict[float, list[str]] = field(default_factory=dict)  # lr -> statuses of the others

    @property
    def grid(self) -> list[float]:
        return sorted(self.losses.keys() | self.failed.keys())

    def mean(self, lr: float) -> tuple[float, float]:
        """Mean final val loss at `lr` and its 95% CI half-width (NaN without runs there)."""
        return mean_ci(self.losses.get(lr, []), CONFIDENCE)

    def completed_means(self) -> dict[float, float]:
        """The mean final val loss at each rate where a run completed."""
        means = {lr: self.mean(lr)[0] for lr in self.losses}
        return {lr: m for lr, m in sorted(means.items()) if math.isfinite(m)}

    @property
    def best(self) -> float | None:
        """The grid's rate with the lowest mean final val loss; None if no run completed."""
        means = self.completed_means()
        return min(means, key=lambda lr: (means[lr], lr)) if means else None

    def neighbours(self) -> tuple[float, float] | None:
        """The completed rates either side of the best one; None when it is at an edge."""
        rates, best = list(self.completed_means()), self.best
        if best is None or self.at_edge:
            return None
        i = rates.index(best)
        return (rates[i - 1], rates[i + 1]) if 0 < i < len(rates) - 1 else None

    def fit(self) -> VertexFit:
        """The variance-weighted quadratic in log lr over every completed rate and seed."""
        return fit_vertex(self.losses)

    @property
    def chosen(self) -> float | None:
        """The rule: the fitted vertex, clamped to the best grid point's two neighbours (4
        significant digits); the best grid point itself where the fit has no minimum, or the best
        point is at the grid's edge or has no neighbour on both sides."""
        near, best = self.neighbours(), self.best
        if near is None or best is None:
            return best
        fit = self.fit()
        if not math.isfinite(fit.vertex):
            return best
        return float(f"{min(max(fit.vertex, near[0]), near[1]):.4g}")

    @property
    def at_edge(self) -> bool:
        """Whether the best rate is the grid's smallest or largest."""
        grid, best = self.grid, self.best
        return best is not None and len(grid) > 1 and best in (grid[0], grid[-1])

    def seed_sd(self) -> float:
        """The standard deviation over seeds of the final val loss, pooled over the rates the
        choice is made from (the best grid point and its neighbours; every rate at an edge):
        NaN with one seed. Far rates, where runs turn unstable, would inflate it."""
        near, best = self.neighbours(), self.best
        rates = [near[0], best, near[1]] if near is not None else list(self.losses)
        variances = [
            statistics.variance(self.losses[lr]) for lr in rates if len(self.losses.get(lr, [])) > 1
        ]
        return math.sqrt(statistics.fmean(variances)) if variances else math.nan

    def resolution(self) -> float:
        """The 95% half-width of a difference between two rates' mean losses at these seeds
        (normal approximation, from the pooled seed sd): rates closer than this cannot be told
        apart."""
        n = statistics.median(len(v) for v in self.losses.values()) if self.losses else 0
        return Z95 * self.seed_sd() * math.sqrt(2 / n) if n else math.nan

    def flat(self) -> bool:
        """Whether the data cannot place the optimum: the fit's curvature is not significant, or
        the vertex's interval reaches past both neighbours of the best grid point."""
        near, fit = self.neighbours(), self.fit()
        if near is None or not fit.curved:
            return True
        return fit.low <= near[0] and fit.high >= near[1]

    def near_ties(self) -> list[float]:
        """The grid rates whose mean loss is within `resolution()` of the best one's."""
        best, width = self.best, self.resolution()
        if best is None or not math.isfinite(width):
            return []
        means = self.completed_means()
        return [lr for lr in means if lr != best and means[lr] - means[best] < width]

    def edge_side(self) -> str:
        return "smallest" if self.best == self.grid[0] else "largest"

    def widened(self) -> list[float]:
        """The grid with two more rates past the edge where the best one sits (same spacing)."""
        grid = self.grid
        if self.best == grid[0]:
            step = grid[1] / grid[0]
            return [grid[0] / step**2, grid[0] / step, *grid]
        step = grid[-1] / grid[-2]
        return [*grid, grid[-1] * step, grid[-1] * step**2]


Z95 = 1.959963984540054  # the normal 97.5% quantile: 95% intervals of the fit


@dataclass(frozen=True)
class VertexFit:
    """A weighted quadratic a u^2 + b u + c in u = log(lr), and its minimum with a 95% interval
    (the delta method on the fit's covariance). NaN vertex where it has no minimum (a <= 0)."""

    vertex: float = math.nan
    low: float = 0.0
    high: float = math.inf
    curvature: float = math.nan  # a
    curvature_se: float = math.nan

    @property
    def curved(self) -> bool:
        """Whether the curvature is positive beyond its 95% interval."""
        return math.isfinite(self.curvature_se) and self.curvature - Z95 * self.curvature_se > 0


def _exp(u: float) -> float:
    return math.exp(min(max(u, -700.0), 700.0))


def fit_vertex(losses: dict[float, list[float]]) -> VertexFit:
    """Fit every (rate, seed) loss, each weighted by the inverse of its rate's seed variance
    (floored at the median over the rates, so a lucky pair of seeds does not dominate; a rate
    with one seed takes the median), by least squares; the covariance is scaled up by the
    reduced chi-square where the residuals exceed the variances. Needs 3 rates."""
    import numpy as np

    rates = sorted(lr for lr, v in losses.items() if v)
    if len(rates) < 3:
        return VertexFit()
    variances = [statistics.variance(losses[lr]) for lr in rates if len(losses[lr]) > 1]
    floor = statistics.median(variances) if variances else 1.0
    floor = floor if floor > 0 else 1e-12
    u, y, w = [], [], []
    for lr in rates:
        v = statistics.variance(losses[lr]) if len(losses[lr]) > 1 else floor
        for loss in losses[lr]:
            u.append(math.log(lr))
            y.append(loss)
            w.append(1.0 / max(v, floor))
    centre = float(np.mean(u))
    uc, ya, wa = np.asarray(u) - centre, np.asarray(y), np.asarray(w)
    x = np.stack([uc**2, uc, np.ones_like(uc)], axis=1)
    info = x.T @ (wa[:, None] * x)
    beta = np.linalg.solve(info, x.T @ (wa * ya))
    cov = np.linalg.inv(info)
    dof = len(ya) - 3
    if dof > 0:
        chi2 = float(np.sum(wa * (ya - x @ beta) ** 2)) / dof
        cov = cov * max(1.0, chi2)
    a, b = float(beta[0]), float(beta[1])
    a_se = math.sqrt(max(float(cov[0, 0]), 0.0))
    if a <= 0:
        return VertexFit(curvature=a, curvature_se=a_se)
    u_star = -b / (2 * a)
    grad = np.array([b / (2 * a * a), -1 / (2 * a), 0.0])
    half = Z95 * math.sqrt(max(float(grad @ cov @ grad), 0.0))
    lo, hi = u_star - half + centre, u_star + half + centre
    return VertexFit(
        vertex=_exp(u_star + centre),
        low=_exp(lo),
        high=_exp(hi),
        curvature=a,
        curvature_se=a_se,
    )


def _lr(run: Run) -> float | None:
    if run.lr is not None:
        return run.lr
    try:
        return float(run.settings["optim.lr"])
    except (KeyError, ValueError):
        return None


def _size(run: Run) -> str:
    model = run.summary.model if run.summary is not None else None
    return str(model or run.settings.get("model") or "?")


def curves(runs: Sequence[Run]) -> list[Curve]:
    """One curve per (model size, variant), in the order the sweep lists them."""
    out: dict[tuple[str, str], Curve] = {}
    for r in runs:
        lr = _lr(r)
        if r.variant is None or lr is None or r.status == "duplicate":
            continue
        c = out.setdefault((_size(r), r.variant), Curve(_size(r), r.variant))
        value = getattr(r.summary, METRIC, None) if r.summary is not None else None
        if r.ok and finite(value):
            c.losses.setdefault(lr, []).append(float(value))
        else:
            c.failed.setdefault(lr, []).append(r.status)
    return list(out.values())


def chosen_rates(
    cs: Sequence[Curve],
    runs: Sequence[Run],
    sweep_dir: Path,
    experiment: str | None,
    optimizer: str = "adamw",
) -> TunedRates:
    ok = [r for r in runs if r.ok]
    rates: dict[str, dict[str, float]] = {}
    grid: dict[str, dict[str, list[float]]] = {}
    edge: dict[str, list[str]] = {}
    flat: dict[str, dict[str, float]] = {}
    intervals: dict[str, dict[str, list[float]]] = {}
    for c in cs:
        grid.setdefault(c.size, {})[c.variant] = c.grid
        if c.chosen is not None:
            rates.setdefault(c.size, {})[c.variant] = c.chosen
        if c.at_edge:
            edge.setdefault(c.size, []).append(c.variant)
        fit = c.fit()
        if math.isfinite(fit.vertex):
            intervals.setdefault(c.size, {})[c.variant] = [_sig(fit.low), _sig(fit.high)]
        if c.flat():
            flat.setdefault(c.size, {})[c.variant] = _sig(c.resolution())
    return TunedRates(
        rates=rates,
        experiment=experiment,
        optimizer=optimizer,
        tuning_sweep=str(sweep_dir),
        grid=grid,
        seeds=sorted({r.seed for r in ok if r.seed is not None}),
        steps=[int(s) for s in summary_values(ok, "steps")],
        metric=METRIC,
        at_edge=edge,
        rule=RULE,
        flat=flat,
        intervals=intervals,
    )


RULE = (
    "the vertex of a quadratic in log lr fitted to every grid point and seed, each weighted by "
    "its rate's inverse seed variance, clamped to the best grid point's neighbours"
)


def _sig(x: float) -> float:
    return float(f"{x:.4g}") if math.isfinite(x) else x


def warnings(cs: Sequence[Curve]) -> list[str]:
    """One line per curve whose best rate sits at the grid's edge (with the grid to rerun), or
    that has no rate."""
    out = []
    for c in cs:
        if c.best is None:
            out.append(f"{c.variant} at {c.size}: no run completed at any rate, so no rate")
        elif c.at_edge:
            out.append(
                f"{c.variant} at {c.size}: the best rate {c.best:g} is the grid's "
                f"{c.edge_side()}, so its optimum may lie beyond it: rerun make tune with "
                f"TUNE_GRID={format_grid(c.widened())}"
            )
    return out


# --------------------------------------------------------------------------- the report


def _interval_text(fit: VertexFit) -> str:
    if not math.isfinite(fit.vertex):
        return "no minimum (curvature ≤ 0)"
    return f"{fit.vertex:.3g} [{fit.low:.3g}, {fit.high:.3g}]"


def _flat_text(c: Curve) -> str:
    width = c.resolution()
    if not c.flat():
        return "no"
    if not math.isfinite(width):
        return "**flat** (1 seed: no resolution)"
    return f"**flat**: rates within {width:.3f} nats cannot be told apart"


def _mean_text(c: Curve, lr: float) -> str:
    """The mean final val loss at `lr`, ± its CI where more than one seed ran there."""
    mean, half = c.mean(lr)
    return pm(mean, half) if len(c.losses[lr]) > 1 else f"{mean:.4f}"


def _cell(c: Curve, lr: float) -> str:
    if lr not in c.losses and lr not in c.failed:
        return "—"
    if lr not in c.losses:
        return ", ".join(sorted(set(c.failed[lr])))
    text = _mean_text(c, lr)
    if lr in c.failed:
        text += f" ({len(c.failed[lr])} not completed)"
    return f"**{text}**" if lr == c.best else text


def _slice_text(runs: Sequence[Run]) -> str:
    """The tuning slice's documents and whitespace share, as the runs recorded them."""
    from sweep.findings import evaluation

    e = evaluation(runs)
    parts = []
    if e["documents"]:
        parts.append(f"{len(e['documents'])} held-out documents: {', '.join(e['documents'])}")
    if e["whitespace_share"]:
        parts.append(f"whitespace-only targets {100 * e['whitespace_share'][-1]:.1f}%")
    return "; " + "; ".join(parts) if parts else ""


def render(cs: Sequence[Curve], tuned: TunedRates, runs: Sequence[Run], plot: str | None) -> str:
    ok = [r for r in runs if r.ok]
    lrs = sorted({lr for c in cs for lr in c.grid})
    sizes = list(dict.fromkeys(c.size for c in cs))
    chosen_rows = [
        [
            f"**{c.variant}**",
            c.size,
            f"{c.best:g}" if c.best is not None else "none",
            _mean_text(c, c.best) if c.best is not None else "n/a",
            f"**{c.chosen:g}**" if c.chosen is not None else "none",
            _interval_text(c.fit()),
            f"{c.seed_sd():.4f}" if math.isfinite(c.seed_sd()) else "n/a (1 seed)",
            _flat_text(c),
            "**yes** (" + c.edge_side() + ")" if c.at_edge else "no",
        ]
        for c in sorted(cs, key=lambda c: (sizes.index(c.size), c.mean(c.best or 0)[0]))
    ]
    grid_rows = [[f"**{c.variant}**", c.size, *(_cell(c, lr) for lr in lrs)] for c in cs]
    warn = warnings(cs)
    lines = [
        f"# Learning-rate tuning: {tuned.experiment or 'sweep'}",
        "",
        f"- **Sweep dir:** `{tuned.tuning_sweep}`",
        f"- **Runs:** {len(runs)} found, {len(ok)} completed, {len(runs) - len(ok)} did not "
        "(diverged, failed or unfinished: no loss at their rate)",
        f"- **Optimizer:** optim={tuned.optimizer}",
        f"- **Grid:** {', '.join(f'{x:g}' for x in lrs)} (optim.lr); **seeds:** "
        f"{' '.join(map(str, tuned.seeds)) or 'none'}; **steps:** "
        f"{', '.join(map(str, tuned.steps)) or 'unknown'}; **model sizes:** {', '.join(sizes)}",
        "- **Judged on:** the held-out split's tuning slice (data.eval_slice=tune"
        f"{_slice_text(ok)}); the sweep that uses these rates is judged on its test slice, with "
        "seeds disjoint from these.",
        f"- **Chosen:** per model size, each variant's rate by one rule: {RULE}; at the grid's "
        "edge, the edge point, flagged. Written to `tuned.yaml` (stage 2: `make sweep "
        f"EXPERIMENT={tuned.experiment or '<e>'} TUNED=<this dir>/tuned.yaml`).",
        "",
        "## Chosen rates",
        "",
        *table(
            [
                "variant",
                "model",
                "best grid lr",
                "final val loss there",
                "chosen lr (rule)",
                "vertex 95% interval",
                "seed sd",
                "flat?",
                "at grid edge",
            ],
            chosen_rows,
        ),
        "",
        "The fit: a quadratic in log lr through every grid point and seed, each loss weighted by "
        "the inverse of its rate's seed variance (floored at the median over the rates, so that "
        "an unstable rate counts for little and a lucky one for no more than a typical one); its "
        "vertex's 95% interval from the fit's covariance (delta method, scaled up where the "
        "residuals exceed the seed variances). **Flat**: the curvature is not significant at "
        "95%, or the vertex's interval reaches past both neighbours of the best grid rate; rates "
        "whose mean losses differ by less than X nats (the 95% half-width of a difference of two "
        "rates' means at these seeds) cannot be told apart, and the chosen rate is the rule's "
        "choice inside that tie, not a measured optimum. The rule for the rate used: "
        f"{RULE}.",
        "",
    ]
    if warn:
        lines += ["**Warning:**", "", *(f"- {w}" for w in warn), ""]
    lines += [
        "## Final val loss against learning rate",
        "",
        *table(["variant", "model", *(f"lr {x:g}" for x in lrs)], grid_rows),
        "",
        "Bold: the best grid rate. With one seed a cell is one run; with more, the mean ± the 95% "
        "CI over seeds (Student t). A rate chosen at the grid's edge is a lower or upper bound on "
        "the best rate, not the best rate.",
        "",
        "## Plot",
        "",
        "![Final val loss against learning rate](lr_loss.png)"
        if plot is None
        else f"_Not plotted: {plot}._",
        "",
    ]
    return "\n".join(lines)


def plot_curves(cs: Sequence[Curve], path: Path) -> str | None:
    """lr_loss.png: final val loss against learning rate (log x), one panel per model size, one
    line per variant; the chosen rate marked, hollow when it is at the grid's edge; a rate where
    no run completed as an x at the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sweep.colors import variant_colors

    if not any(c.losses for c in cs):
        return "no run completed"
    sizes = list(dict.fromkeys(c.size for c in cs))
    colors = variant_colors(sorted({c.variant for c in cs}))
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        mine = [c for c in cs if c.size == size]
        finite_means = [c.mean(lr)[0] for c in mine for lr in c.losses]
        top = max(finite_means) if finite_means else 1.0
        for c in mine:
            xs = sorted(c.losses)
            ys = [c.mean(lr)[0] for lr in xs]
            ax.plot(xs, ys, marker="o", ms=4, lw=1.5, color=colors[c.variant], label=c.variant)
            if c.best is not None:
                face = "none" if c.at_edge else colors[c.variant]
                y = c.mean(c.best)[0]
                ax.scatter([c.best], [y], s=110, facecolors=face, edgecolors=colors[c.variant])
                ax.axvline(c.chosen, color=colors[c.variant], lw=0.8, ls="--")
            bad = [lr for lr in c.failed if lr not in c.losses]
            ax.scatter(bad, [top] * len(bad), marker="x", color=colors[c.variant])
        ax.set_xscale("log", base=2)
        grid = sorted({lr for c in mine for lr in c.grid})
        ax.set_xticks(grid, [f"{lr:g}" for lr in grid], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("optim.lr (log scale)")
        ax.set_ylabel("final val loss")
        ax.set_title(
            f"{size}: best grid rate circled (hollow: at the edge), chosen vertex dashed",
            fontsize=9,
        )
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def _eval_slice(run: Run) -> str | None:
    data = run.summary.data if run.summary is not None else None
    return data.get("eval_slice") if isinstance(data, dict) else None


def _experiment(runs: Sequence[Run]) -> str | None:
    names = {r.experiment for r in runs if r.experiment}
    return names.pop() if len(names) == 1 else None


def analyse(
    root: Path,
    out: Path = Path("results"),
    name: str | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Path, TunedRates, list[str]]:
    """Read the tuning sweep under `root` and write its files; (their dir, the chosen rates, the
    warnings)."""
    runs = load_sweep(Path(root), exclude=Path(out))
    cs = curves(runs)
    if not cs:
        raise UserInputError(
            f"no run under {root} records its optim.lr and variant: not a tuning sweep (make tune "
            "runs one)"
        )
    judged_on_test = [r.name for r in runs if _eval_slice(r) == "test"]
    if judged_on_test:
        raise UserInputError(
            f"{len(judged_on_test)} run(s) under {root} (e.g. {judged_on_test[0]}) were evaluated "
            "on the held-out test slice; tuning judges on the tuning slice: rerun them with "
            "data.eval_slice=tune (make tune does)"
        )
    experiment = _experiment(runs)
    optimizers = sorted({r.optimizer for r in runs})
    if len(optimizers) > 1:
        raise UserInputError(
            f"the runs under {root} trained under {' and '.join(optimizers)}; a rate is tuned "
            "under one optimizer: tune each in a sweep of its own (make tune OPTIM=...)"
        )
    optimizer = optimizers[0] if optimizers else "adamw"
    default = f"{experiment or Path(root).name}{'' if optimizer == 'adamw' else '_' + optimizer}"
    dest = Path(out) / (name or f"{default}_tune")
    dest.mkdir(parents=True, exist_ok=True)
    tuned = chosen_rates(cs, runs, Path(root), experiment, optimizer)
    tuned.write(dest / "tuned.yaml")
    plot = plot_curves(cs, dest / "lr_loss.png")
    if plot is not None:
        (dest / "lr_loss.png").unlink(missing_ok=True)
    (dest / "report.md").write_text(render(cs, tuned, runs, plot) + "\n", encoding="utf-8")
    summary = {
        **tuned.to_dict(),
        "curves": [
            {
                "size": c.size,
                "variant": c.variant,
                "chosen": c.chosen,
                "best_on_grid": c.best,
                "seed_sd": c.seed_sd(),
                "vertex": c.fit().vertex,
                "vertex_interval": [c.fit().low, c.fit().high],
                "curvature": c.fit().curvature,
                "curvature_se": c.fit().curvature_se,
                "flat": c.flat(),
                "resolution_nats": c.resolution(),
                "near_ties": c.near_ties(),
                "at_edge": c.at_edge,
                "mean_final_val_loss": {f"{lr:g}": c.mean(lr)[0] for lr in c.losses},
                "not_completed": {f"{lr:g}": v for lr, v in c.failed.items()},
            }
            for c in cs
        ],
    }
    (dest / "summary.json").write_text(dumps(summary, indent=2) + "\n", encoding="utf-8")
    for c in cs:
        chosen = f"{c.chosen:g}" if c.chosen is not None else "none"
        log(f"{c.size:>10} {c.variant:<12} lr {chosen}")
    for fname in ("tuned.yaml", "report.md", "summary.json", "lr_loss.png"):
        if (dest / fname).exists():
            log(f"wrote {dest / fname}")
    return dest, tuned, warnings(cs)


# --------------------------------------------------------------------------- command line


def print_grid(overrides: list[str], points: int, factor: float) -> str:
    """The grid centred on the composed config's optim.lr, as Hydra's sweep syntax."""
    from harness.cli import compose_checked

    cfg = compose_checked(overrides)
    return format_grid(lr_grid(cfg.optim.lr, points, factor))


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(
        prog="python -m sweep.tune",
        description="Choose each variant's learning rate (per model size) from a sweep over an "
        "lr grid; or, with --grid, print the grid for the given config overrides.",
    )
    ap.add_argument("sweep_dir", nargs="?", type=Path, help="the tuning sweep's multirun dir")
    ap.add_argument("--out", type=Path, default=Path("results"), help="parent of the output dir")
    ap.add_argument("--name", default=None, help="output dir name (default <experiment>_tune)")
    ap.add_argument(
        "--grid",
        action="store_true",
        help="print the lr grid centred on optim.lr of the config the remaining key=value "
        "overrides compose (e.g. experiment=contenders), as a comma list",
    )
    ap.add_argument("--points", type=int, default=DEFAULT_POINTS, help="grid points (default 5)")
    ap.add_argument("--factor", type=float, default=DEFAULT_FACTOR, help="between points (2)")
    return ap.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = parse_args(argv)
    try:
        if args.grid:
            # a key=value override lands in sweep_dir (the optional positional): it is one too
            overrides = ([str(args.sweep_dir)] if args.sweep_dir else []) + rest
            print(print_grid(overrides, args.points, args.factor))
            return 0
        if rest:
            raise UserInputError(f"unexpected arguments: {' '.join(rest)}")
        if args.sweep_dir is None:
            raise UserInputError("give the tuning sweep's dir (or --grid key=value ...)")
        dest, tuned, warn = analyse(args.sweep_dir, args.out, args.name)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for w in warn:
        print(f"WARNING: {w}", file=sys.stderr)
    print(f"tuned rates: {dest / 'tuned.yaml'}  (report: {dest / 'report.md'})")
    return 1 if warn else 0  # no rate, or a rate at the grid's edge: the grid must change


if __name__ == "__main__":
    sys.exit(main())
