"""The report's data model: what every report section, the plots and the W&B run are built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.tuned import TunedRates
from sweep.along import Along
from sweep.documents import TextLevel
from sweep.family import Family
from sweep.optimizers import AcrossOptimizers
from sweep.runs import Run
from sweep.scaling import Fit, Multiplier, Point
from sweep.table import Row


@dataclass
class Scaling:
    """The compute-multiplier analysis of a sweep over model sizes."""

    points: list[Point]
    fits: dict[str, Fit]
    multipliers: dict[str, list[Multiplier]]  # baseline -> rows
    metric: str = "final_val_loss"  # the fitted y: final_val_loss (nats) or final_val_bpb

    @property
    def y_label(self) -> str:
        return "final val bpb" if self.metric == "final_val_bpb" else "final val loss"


@dataclass
class Comparison:
    """Another sweep of the same experiment, ranked beside this one (e.g. at one shared rate)."""

    root: Path
    rows: Sequence[Row]
    lrs: list[float]  # the rates its runs trained at
    tuned: bool = False


@dataclass
class ReportInput:
    """Everything a report section may show."""

    name: str
    root: Path
    runs: Sequence[Run]
    rows: Sequence[Row]
    baselines: list[str]
    plots: dict[str, str | None]  # file name -> None if written, else why not
    table_1: dict[str, Any] | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)
    scaling: Scaling | None = None
    scaling_skipped: str = ""  # why there is no scaling section
    tuned: TunedRates | None = None  # the per-variant rates the runs trained at, if tuned
    tuned_problem: str = ""  # why the tuned-rates file named by the runs could not be read
    throughput_note: str = ""  # where tokens/s and MFU come from, when a bench file is used
    throughput_rows: int = 0  # rows whose tokens/s and MFU come from it
    shared: Comparison | None = None  # a sweep of the same experiment at one shared rate
    serving: list[str] = field(default_factory=list)  # "Cost to serve" (sweep.serving)
    families: dict[str, Family] = field(default_factory=dict)  # metric -> its Holm family
    along: list[Along] = field(default_factory=list)  # paired differences at every evaluation
    gaps: list[dict[str, Any]] = field(default_factory=list)  # train-val gap per variant
    family_reason: str = ""  # why the family is adjusted in its unit (sweep.family)
    text_level: list[TextLevel] = field(default_factory=list)  # each family pair, per document
    optimizers: AcrossOptimizers | None = None  # where the sweep varies the optimizer

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if r.ok]

    @property
    def bad(self) -> list[Run]:
        return [r for r in self.runs if not r.ok]

    @property
    def present_baselines(self) -> list[str]:
        variants = {r.variant for r in self.rows}
        return [b for b in self.baselines if b in variants]
