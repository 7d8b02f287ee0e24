"""Per-variant learning rates: the grid a tuning sweep scans, and the file of the rates it chose.

    make tune EXPERIMENT=contenders        # stage 1: every variant x size over an lr grid, 2 seeds
    make sweep EXPERIMENT=contenders TUNED=results/contenders_tune/tuned.yaml   # stage 2

Stage 1 is a multirun over `optim.lr=<grid>` and the tuning seeds; `python -m sweep.tune <sweep
dir>` picks, per model size, each variant's rate by one rule (the vertex of a variance-weighted
quadratic fit, clamped: sweep.tune), with the vertex's interval and whether the curve is flat,
and writes them here (`TunedRates`).
Stage 2 is the experiment's own multirun with `hydra.sweeper.tuned=<file>`: the sweeper
(hydra_plugins/ffn_variants_launcher/tuned_sweeper.py) adds `optim.lr=<the rate of that job's
variant and size>` to each job's overrides, so each job's .hydra/config.yaml shows the rate it
trained with. The pre-flight (`check_sweep`) composes every (variant, size) of the sweep first: a
pair missing from the file is a one-line error, exit 2, before anything is written.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from harness.errors import UserInputError, one_line

SWEEPER_KEY = "hydra.sweeper.tuned"  # the command-line key naming the rates file
DEFAULT_POINTS = 5
DEFAULT_FACTOR = math.sqrt(2)


def lr_grid(center: float, points: int = DEFAULT_POINTS, factor: float = DEFAULT_FACTOR) -> list:
    """`points` learning rates `factor` apart, log-spaced and centred on `center` (an odd number
    of points has `center` in the middle)."""
    if points < 3:
        raise UserInputError(f"a learning-rate grid needs 3 or more points, not {points}")
    if not factor > 1.0:
        raise UserInputError(f"the grid's factor must be above 1, not {factor}")
    if not center > 0.0:
        raise UserInputError(f"the grid's centre must be a positive rate, not {center}")
    mid = (points - 1) / 2
    return [float(f"{center * factor ** (i - mid):.6g}") for i in range(points)]


def format_grid(grid: Sequence[float]) -> str:
    """The grid as Hydra's sweep syntax: `0.00075,0.0015,...`."""
    return ",".join(f"{lr:.6g}" for lr in grid)


@dataclass
class TunedRates:
    """The chosen rates: `rates[model size][variant]`, and where they came from."""

    rates: dict[str, dict[str, float]]
    experiment: str | None = None
    optimizer: str = "adamw"  # optim.name the rates were tuned under
    tuning_sweep: str | None = None  # the stage-1 sweep dir
    grid: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # size -> variant -> lrs
    seeds: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    metric: str = "final_val_loss"
    at_edge: dict[str, list[str]] = field(default_factory=dict)  # size -> variants
    rule: str = ""  # how each rate was chosen (sweep.tune.RULE)
    # size -> variant -> the nats within which its rates cannot be told apart, where flat
    flat: dict[str, dict[str, float]] = field(default_factory=dict)
    intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # vertex 95% CI
    path: str | None = None  # where it was read from (not written)

    def rate(self, model: str, variant: str) -> float:
        """The rate of `variant` at model size `model`; UserInputError (one line) if missing."""
        where = self.path or "the tuned-rates file"
        if model not in self.rates:
            raise UserInputError(
                f"{where} has no rates for model {model} (it has {', '.join(self.rates) or 'none'})"
                f"; tune that size (make tune EXPERIMENT=...) or drop {SWEEPER_KEY}"
            )
        if variant not in self.rates[model]:
            known = ", ".join(self.rates[model]) or "none"
            raise UserInputError(
                f"{where} has no rate for {variant} at model {model} (it has {known}); tune it "
                f"(make tune EXPERIMENT=...) or drop {SWEEPER_KEY}"
            )
        return self.rates[model][variant]

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "optimizer": self.optimizer,
            "tuning_sweep": self.tuning_sweep,
            "metric": self.metric,
            "seeds": list(self.seeds),
            "steps": list(self.steps),
            "rates": self.rates,
            "grid": self.grid,
            "at_edge": self.at_edge,
            "rule": self.rule,
            "flat": self.flat,
            "intervals": self.intervals,
        }

    def write(self, path: Path) -> None:
        header = (
            "# Learning rates chosen by python -m sweep.tune: per model size, each variant's rate\n"
            "# by the rule below, judged on the tuning slice with the tuning seeds below. Stage 2\n"
            "# trains each at\n"
            f"# its own: make sweep EXPERIMENT={self.experiment or '<experiment>'} TUNED={path}\n"
        )
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        path.write_text(header + body, encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TunedRates:
        """The file written by sweep.tune; UserInputError (one line) if it cannot be used."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise UserInputError(
                f"cannot read the tuned-rates file {path} ({e.strerror or one_line(e)}); "
                "make tune writes it as results/<experiment>_tune/tuned.yaml"
            ) from None
        except yaml.YAMLError as e:
            raise UserInputError(f"{path} is not YAML: {one_line(e, typed=False)}") from None
        rates = data.get("rates") if isinstance(data, dict) else None
        if not isinstance(rates, dict) or not all(isinstance(v, dict) for v in rates.values()):
            raise UserInputError(
                f"{path} has no 'rates' mapping of model size -> variant -> rate; make tune "
                "writes one"
            )
        clean: dict[str, dict[str, float]] = {}
        for model, by_variant in rates.items():
            for variant, lr in by_variant.items():
                if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
                    raise UserInputError(
                        f"{path}: the rate of {variant} at model {model} is {lr!r}, not a "
                        "positive number"
                    )
                clean.setdefault(str(model), {})[str(variant)] = float(lr)
        return cls(
            rates=clean,
            experiment=data.get("experiment"),
            optimizer=str(data.get("optimizer") or "adamw"),
            tuning_sweep=data.get("tuning_sweep"),
            grid=data.get("grid") or {},
            seeds=list(data.get("seeds") or []),
            steps=list(data.get("steps") or []),
            metric=str(data.get("metric") or "final_val_loss"),
            at_edge=data.get("at_edge") or {},
            rule=str(data.get("rule") or ""),
            flat=data.get("flat") or {},
            intervals=data.get("intervals") or {},
            path=str(path),
        )


def tuned_files(spec: Any) -> list[str]:
    """hydra.sweeper.tuned as a list of paths: one path, or a list of them (one per optimizer:
    hydra.sweeper.tuned=[a.yaml,b.yaml])."""
    if spec is None or spec == "":
        return []
    if isinstance(spec, str):
        return [spec]
    return [str(x) for x in spec]


@dataclass
class TunedSet:
    """Rates files keyed by the optimizer they were tuned under: a sweep over optimizers takes
    each job's rate from its optimizer's file."""

    by_optimizer: dict[str, TunedRates]

    @classmethod
    def load(cls, spec: Any) -> TunedSet:
        out: dict[str, TunedRates] = {}
        for path in tuned_files(spec):
            rates = TunedRates.load(path)
            if rates.optimizer in out:
                raise UserInputError(
                    f"{out[rates.optimizer].path} and {path} both hold rates tuned under "
                    f"{rates.optimizer}; give one file per optimizer"
                )
            out[rates.optimizer] = rates
        return cls(out)

    @property
    def files(self) -> str:
        return ", ".join(str(t.path) for t in self.by_optimizer.values())

    def rate(self, optimizer: str, model: str, variant: str) -> float:
        """The rate of `variant` at `model` under `optimizer`; one line if there is none."""
        if optimizer not in self.by_optimizer:
            tuned = ", ".join(self.by_optimizer) or "none"
            raise UserInputError(
                f"{self.files} hold(s) rates tuned under {tuned}, and this job trains under "
                f"optim={optimizer}: a rate tuned under one optimizer does not carry to another; "
                f"tune it (make tune EXPERIMENT=... OPTIM={optimizer}) and give its file too "
                f"({SWEEPER_KEY}=[<one file>,<the other>])"
            )
        return self.by_optimizer[optimizer].rate(model, variant)

    @property
    def seeds(self) -> list[int]:
        return sorted({int(x) for t in self.by_optimizer.values() for x in t.seeds})


# --------------------------------------------------------------------------- the sweep's jobs


def sweep_jobs(params: Mapping[str, Any] | None, overrides: Sequence[str]) -> list[list[str]]:
    """The override list of every job of a multirun, as Hydra's basic sweeper forms them: the
    config's hydra.sweeper.params, then the command line (a key given on both: the command
    line's), their cartesian product."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    items = [f"{k}={v}" for k, v in (params or {}).items()] + list(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(items)
    except Exception as e:  # Hydra's parse errors: reported by the pre-flight's own parse
        raise UserInputError(f"cannot parse the sweep: {one_line(e, typed=False)}") from None
    lists: dict[str, list[str]] = {}
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            lists[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            lists[key] = [f"{key}={o.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*lists.values())]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def size_and_variant_jobs(jobs: Sequence[Sequence[str]]) -> list[list[str]]:
    """The distinct jobs once the keys that cannot change a job's variant or model size (the
    seed) are dropped: what has to be composed to know every (size, variant) of a sweep."""
    seen: dict[tuple[str, ...], list[str]] = {}
    for job in jobs:
        kept = [o for o in job if _key(o) != "seed"]
        seen.setdefault(tuple(kept), kept)
    return list(seen.values())


def check_sweep(
    first: DictConfig,
    overrides: Sequence[str],
    compose: Callable[[list[str]], DictConfig],
    multirun: bool = True,
) -> TunedSet | None:
    """The pre-flight of a command line with hydra.sweeper.tuned set (`first`: its first job
    composed with the hydra node; `overrides`: the command line's): a multirun whose every
    (optimizer, size, variant) has a rate in the files and that does not also scan optim.lr.
    UserInputError (one line) otherwise; None when no tuned file is given."""
    spec = OmegaConf.select(first, SWEEPER_KEY)
    if not spec:
        return None
    if not isinstance(spec, str):
        spec = OmegaConf.to_container(spec)
    tuned = TunedSet.load(spec)
    path = tuned.files
    if not multirun:
        model, variant, optim = str(first.model.name), str(first.ffn.name), str(first.optim.name)
        raise UserInputError(
            f"{SWEEPER_KEY} sets the rates of a multirun's jobs (-m); for one run give "
            f"optim.lr={tuned.rate(optim, model, variant):g} ({path}'s rate for {variant} at "
            f"{model})"
        )
    params = OmegaConf.select(first, "hydra.sweeper.params")
    params = OmegaConf.to_container(params) if params is not None else {}
    jobs = sweep_jobs(params, overrides)
    if any(_key(o) == "optim.lr" for job in jobs for o in job):
        raise UserInputError(
            f"{SWEEPER_KEY}={path} sets optim.lr per variant and size; drop optim.lr from the "
            "command line (or drop the tuned file to set or scan it)"
        )
    for job in size_and_variant_jobs(jobs):
        cfg = compose(job)
        tuned.rate(str(cfg.optim.name), str(cfg.model.name), str(cfg.ffn.name))
    seeds = {int(o.split("=", 1)[1]) for job in jobs for o in job if _key(o) == "seed"}
    shared = sorted((seeds or {int(first.seed)}) & {int(x) for x in tuned.seeds})
    if shared:
        raise UserInputError(
            f"seed(s) {', '.join(map(str, shared))} of this sweep also chose the rates in {path}; "
            "a tuned comparison is judged on seeds the tuning never saw: use other seeds, or "
            "tune with other TUNE_SEEDS"
        )
    if str(first.data.eval_slice) == "tune":
        raise UserInputError(
            f"data.eval_slice=tune judges this sweep on the slice {path} was tuned on; drop it "
            "(the test slice is the default)"
        )
    return tuned
