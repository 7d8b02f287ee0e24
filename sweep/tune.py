"""Stage 1 of a tuned comparison: each variant's learning rate, from a sweep over an lr grid.

    make tune EXPERIMENT=contenders [TUNE_POINTS=5] [TUNE_FACTOR=2] [TUNE_SEEDS=0] [TUNE_GRID=...]
    python -m sweep.tune SWEEP_DIR [--out results] [--name NAME]   # the analysis step alone
    python -m sweep.tune --grid experiment=contenders [--points 5] [--factor 2]   # print the grid

`make tune` runs the experiment's multirun (every variant at every model size it sweeps, at its
length) with `optim.lr=<grid>` and `seed=<TUNE_SEEDS>` on the command line, then this analysis:
per model size and variant, the mean final val loss at each rate of the grid, and the chosen
rate, the grid's point with the lowest mean. A chosen rate at either end of the grid is flagged,
in the report and on the console: the best rate may lie beyond it, so widen the grid
(TUNE_POINTS, TUNE_FACTOR or TUNE_GRID) there. It writes under <out>/<name>/ (default
results/<experiment>_tune/): tuned.yaml (the chosen rates, harness.tuned.TunedRates), report.md
(loss against learning rate, as a table and lr_loss.png), summary.json. Stage 2:
`make sweep EXPERIMENT=<e> TUNED=<out>/<name>/tuned.yaml` trains each variant at its own rate.

A run that diverged or failed at a rate has no loss there: that rate cannot be chosen, and the
table says what happened.
"""

from __future__ import annotations

import argparse
import math
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

    @property
    def chosen(self) -> float | None:
        """The grid's rate with the lowest mean final val loss; None if no run completed."""
        means = {lr: self.mean(lr)[0] for lr in self.losses}
        means = {lr: m for lr, m in means.items() if math.isfinite(m)}
        return min(means, key=lambda lr: (means[lr], lr)) if means else None

    @property
    def at_edge(self) -> bool:
        """Whether the chosen rate is the grid's smallest or largest."""
        grid = self.grid
        return self.chosen is not None and len(grid) > 1 and self.chosen in (grid[0], grid[-1])

    def edge_side(self) -> str:
        return "smallest" if self.chosen == self.grid[0] else "largest"


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
    cs: Sequence[Curve], runs: Sequence[Run], sweep_dir: Path, experiment: str | None
) -> TunedRates:
    ok = [r for r in runs if r.ok]
    rates: dict[str, dict[str, float]] = {}
    grid: dict[str, dict[str, list[float]]] = {}
    edge: dict[str, list[str]] = {}
    for c in cs:
        grid.setdefault(c.size, {})[c.variant] = c.grid
        if c.chosen is not None:
            rates.setdefault(c.size, {})[c.variant] = c.chosen
        if c.at_edge:
            edge.setdefault(c.size, []).append(c.variant)
    return TunedRates(
        rates=rates,
        experiment=experiment,
        tuning_sweep=str(sweep_dir),
        grid=grid,
        seeds=sorted({r.seed for r in ok if r.seed is not None}),
        steps=[int(s) for s in summary_values(ok, "steps")],
        metric=METRIC,
        at_edge=edge,
    )


def warnings(cs: Sequence[Curve]) -> list[str]:
    """One line per curve whose chosen rate sits at the grid's edge, or that has no rate."""
    out = []
    for c in cs:
        if c.chosen is None:
            out.append(f"{c.variant} at {c.size}: no run completed at any rate, so no rate")
        elif c.at_edge:
            out.append(
                f"{c.variant} at {c.size}: the best rate {c.chosen:g} is the grid's "
                f"{c.edge_side()}; its optimum may lie beyond it: widen the grid that way"
            )
    return out


# --------------------------------------------------------------------------- the report


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
    return f"**{text}**" if lr == c.chosen else text


def render(cs: Sequence[Curve], tuned: TunedRates, runs: Sequence[Run], plot: str | None) -> str:
    ok = [r for r in runs if r.ok]
    lrs = sorted({lr for c in cs for lr in c.grid})
    sizes = list(dict.fromkeys(c.size for c in cs))
    chosen_rows = [
        [
            f"**{c.variant}**",
            c.size,
            f"{c.chosen:g}" if c.chosen is not None else "none",
            _mean_text(c, c.chosen) if c.chosen is not None else "n/a",
            "**yes** (" + c.edge_side() + ")" if c.at_edge else "no",
        ]
        for c in sorted(cs, key=lambda c: (sizes.index(c.size), c.mean(c.chosen or 0)[0]))
    ]
    grid_rows = [[f"**{c.variant}**", c.size, *(_cell(c, lr) for lr in lrs)] for c in cs]
    warn = warnings(cs)
    lines = [
        f"# Learning-rate tuning: {tuned.experiment or 'sweep'}",
        "",
        f"- **Sweep dir:** `{tuned.tuning_sweep}`",
        f"- **Runs:** {len(runs)} found, {len(ok)} completed, {len(runs) - len(ok)} did not "
        "(diverged, failed or unfinished: no loss at their rate)",
        f"- **Grid:** {', '.join(f'{x:g}' for x in lrs)} (optim.lr); **seeds:** "
        f"{' '.join(map(str, tuned.seeds)) or 'none'}; **steps:** "
        f"{', '.join(map(str, tuned.steps)) or 'unknown'}; **model sizes:** {', '.join(sizes)}",
        "- **Chosen:** per model size, each variant's rate with the lowest mean final val loss; "
        f"written to `tuned.yaml` (stage 2: `make sweep EXPERIMENT={tuned.experiment or '<e>'} "
        "TUNED=<this dir>/tuned.yaml`).",
        "",
        "## Chosen rates",
        "",
        *table(
            ["variant", "model", "chosen lr", "final val loss there", "at grid edge"], chosen_rows
        ),
        "",
    ]
    if warn:
        lines += ["**Warning:**", "", *(f"- {w}" for w in warn), ""]
    lines += [
        "## Final val loss against learning rate",
        "",
        *table(["variant", "model", *(f"lr {x:g}" for x in lrs)], grid_rows),
        "",
        "Bold: the chosen rate. With one seed a cell is one run; with more, the mean ± the 95% CI "
        "over seeds (Student t). A rate chosen at the grid's edge is a lower or upper bound on "
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
            if c.chosen is not None:
                face = "none" if c.at_edge else colors[c.variant]
                y = c.mean(c.chosen)[0]
                ax.scatter([c.chosen], [y], s=110, facecolors=face, edgecolors=colors[c.variant])
            bad = [lr for lr in c.failed if lr not in c.losses]
            ax.scatter(bad, [top] * len(bad), marker="x", color=colors[c.variant])
        ax.set_xscale("log", base=2)
        grid = sorted({lr for c in mine for lr in c.grid})
        ax.set_xticks(grid, [f"{lr:g}" for lr in grid], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("optim.lr (log scale)")
        ax.set_ylabel("final val loss")
        ax.set_title(f"{size}: chosen rate circled (hollow: at the grid's edge)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


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
    experiment = _experiment(runs)
    dest = Path(out) / (name or f"{experiment or Path(root).name}_tune")
    dest.mkdir(parents=True, exist_ok=True)
    tuned = chosen_rates(cs, runs, Path(root), experiment)
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
    missing = [w for w in warn if "no rate" in w]
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
