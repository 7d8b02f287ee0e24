"""The plan of a sweep's W&B views: which runs, how they are grouped and coloured, and which
charts go in which section, from the metric keys the runs really logged. sweep.wandb_views turns
it into wandb-workspaces objects; sweep.dashboard is the command."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config import LoggerConfig
from harness.errors import UserInputError
from sweep import colors as palette
from sweep.runs import Run, default_name, load_sweep, varying_keys

EXTRA = "wandb"  # the pyproject extra that installs wandb-workspaces
MIN_WORKSPACES = (0, 4, 13)
X_AXIS = "tokens"  # the trainer declares tokens as the step metric of every chart key
VARIANT_KEY = "ffn.name"

# The run table: (heading, W&B runs-table column). Config columns carry W&B's ".value" after
# the top-level key; summary columns are the keys RunSummary writes into the W&B summary.
RUN_COLUMNS = [
    ("variant", "config:ffn.value.name"),
    ("model", "config:model.value.name"),
    ("seed", "config:seed.value"),
    ("final val loss", "summary:final_val_loss"),
    ("best val loss", "summary:best_val_loss"),
    ("params", "config:params.value.total"),
    ("d_ff", "config:params.value.d_ff"),
    ("FFN share", "config:flops_per_token.value.ffn_share"),
    ("status", "summary:status"),
]

WANDB_DIR = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-(\w+)$")
ACT_KEY = re.compile(r"^act/L(\d+)/([^/]+)/([^/]+)$")
# Activation charts side by side: the nonlinearity's output ("gate" in a gated FFN, "act" in a
# dense one, one column as in the report's plot), the value, and their product (W2's input).
ACT_COLUMNS = [("gate", "act"), ("value",), ("product",)]
ACT_STATS = ["rms", "mean", "std", "absmax", "frac_zero", "kurtosis", "alignment"]
STAT_NAMES = {
    "rms": "RMS",
    "mean": "mean",
    "std": "std",
    "absmax": "max |x|",
    "frac_zero": "fraction near zero",
    "kurtosis": "excess kurtosis",
    "alignment": "mean |cos| of W and V rows",
}
PART_NAMES = {
    "gate": "gate (GLU)",
    "act": "act (dense)",
    "value": "value (GLU)",
    "product": "gate x value (GLU)",
    "gate_value": "gate/value weights",
}
LOSS_KEYS = [("val/loss", "val/loss"), ("val/bpb", "val/bpb"), ("train/loss", "train/loss")]
COMPUTE_KEYS = [
    ("train/tokens_per_s", "tokens/s"),
    ("train/mfu", "MFU"),
    ("train/model_tflops", "model TFLOP/s"),
]
GRAD_BLOCKS = ["total", "embed", "attn", "ffn", "norm"]
NOTE = (
    "The numbers in this Report (tables, confidence intervals, p-values, verdicts) are "
    "copied from `{report}`, which `python -m sweep.report` computes from each run's own files "
    "(summary.json, metrics.jsonl). The charts are W&B's live views of the same runs: their "
    "group means and bands are W&B's UI aggregates over the runs it samples, not the report's "
    "statistics; where the two differ, the report's numbers are the ones to quote."
)


# ----------------------------------------------------------------------------------- the input


@dataclass
class WandbRun:
    """The W&B run a job logged, from its local W&B dirs."""

    run_id: str
    dirs: list[Path]  # offline-run-* or run-* dirs of this id, oldest first
    offline: bool  # logged offline: on the server only after `wandb sync`
    synced: bool  # every offline .wandb file of it carries wandb sync's .synced marker


@dataclass(frozen=True)
class Chart:
    """One line plot: `keys` against tokens; `column` places it in its row of the grid."""

    title: str
    keys: tuple[str, ...]
    column: int = 0


@dataclass
class Section:
    name: str
    columns: int  # charts per row
    rows: list[list[Chart]] = field(default_factory=list)
    markdown: str | None = None  # the run table (Markdown, from the runs' own files)
    compare_runs: bool = False  # a W&B run comparer under the table

    @property
    def charts(self) -> list[Chart]:
        return [c for row in self.rows for c in row]


@dataclass
class Sweep:
    """Everything the views are built from."""

    name: str
    root: Path
    dest: Path  # results/<name>/
    runs: list[Run]
    wandb: dict[str, WandbRun]  # by Run.rel; jobs without a W&B run are absent
    config: dict[str, dict[str, Any]]  # by Run.rel: the flattened .hydra/config.yaml
    project: str
    entity: str | None
    group: str
    grouping: list[str]  # config keys, variant first
    keys: set[str]  # metric keys the runs logged (metrics.jsonl = W&B history)
    sections: list[Section]
    label_colors: dict[str, str]  # Run.label -> colour of the report's val-loss plot
    variant_colors: dict[str, str]  # variant -> colour of the report's scaling plot
    report_md: str | None  # results/<name>/report.md, if the report was made
    named: bool = False  # --name was given (the save command repeats it)

    @property
    def report_path(self) -> Path:
        return self.dest / "report.md"

    def group_values(self, run: Run) -> tuple[str, ...]:
        """The run's values of the grouping keys, as W&B shows them in its groups."""
        cfg = self.config.get(run.rel, {})
        values = []
        for key in self.grouping:
            value = cfg.get(key, run.variant if key == VARIANT_KEY else None)
            values.append(_as_text(value))
        return tuple(values)

    def group_colors(self) -> dict[tuple[str, ...], str]:
        """Each group path W&B draws (variant, then variant and setting) -> its colour."""
        out: dict[tuple[str, ...], str] = {}
        for run in self.runs:
            path = self.group_values(run)
            if not path or not run.variant:
                continue
            out.setdefault(path[:1], self.variant_colors[run.variant])
            if len(path) > 1:
                out.setdefault(path, self.label_colors[run.label])
        return out

    def run_colors(self) -> dict[str, str]:
        """W&B run id -> the colour of its report row (for views that ungroup the runs)."""
        return {
            w.run_id: self.label_colors[r.label]
            for r in self.runs
            if (w := self.wandb.get(r.rel)) is not None and r.variant
        }


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys -> leaves."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out |= flatten(v, key) if isinstance(v, dict) and v else {key: v}
    return out


def read_config(run: Run) -> dict[str, Any]:
    """The job's composed config (.hydra/config.yaml), flattened; {} if unreadable."""
    try:
        return flatten(yaml.safe_load((run.path / ".hydra" / "config.yaml").read_text()) or {})
    except (OSError, yaml.YAMLError):
        return {}


def wandb_run(run_dir: Path) -> WandbRun | None:
    """The W&B run under a job's wandb/ dir (the newest id if there are several)."""
    found = []  # (time, id, dir) of each offline-run-<time>-<id> and run-<time>-<id>
    for d in (run_dir / "wandb").glob("*run-*"):
        m = WANDB_DIR.match(d.name)
        if m and d.is_dir() and not d.is_symlink():
            found.append((m.group(1), m.group(2), d))
    if not found:
        return None
    run_id = max(found)[1]
    mine = [d for _, i, d in sorted(found) if i == run_id]
    offline = [d for d in mine if d.name.startswith("offline-run-")]
    files = [f for d in offline for f in d.glob("*.wandb")]
    synced = all(f.with_suffix(".wandb.synced").exists() for f in files)
    return WandbRun(run_id, mine, offline=bool(offline), synced=synced)


def logged_keys(runs: Iterable[Run]) -> set[str]:
    """Metric keys of the runs' metrics.jsonl: what the trainer sent W&B too (all but step)."""
    return {k for r in runs for rec in r.metrics for k in rec if k != "step"}


def grouping_keys(runs: Sequence[Run], config: dict[str, dict[str, Any]]) -> list[str]:
    """The variant, then each override the sweep varies (model=..., optim.lr=...) as the config
    key W&B holds it under (a config group's choice is its `.name`)."""
    keys = [VARIANT_KEY]
    for override in varying_keys(runs):
        for key in (override, f"{override}.name"):
            if any(key in cfg for cfg in config.values()) and key not in keys:
                keys.append(key)
                break
    return keys


def _most_common(values: Iterable[Any]) -> Any:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None


# --------------------------------------------------------------------------------- the charts


def _grid(charts: list[tuple[str, str]], keys: set[str], columns: int) -> list[list[Chart]]:
    """(key, title) pairs present in `keys`, `columns` to a row."""
    found = [Chart(title, (key,)) for key, title in charts if key in keys]
    rows = [found[i : i + columns] for i in range(0, len(found), columns)]
    return [[Chart(c.title, c.keys, i) for i, c in enumerate(row)] for row in rows]


def activation_rows(keys: set[str]) -> list[list[Chart]]:
    """One chart per statistic and column with every layer's line; a row per statistic, the
    columns (gate/act, value, product) side by side. Statistics logged for only some columns
    come after the full rows; parts outside the columns (e.g. gate_value) last."""
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for key in keys:
        if m := ACT_KEY.match(key):
            found.setdefault((m.group(2), m.group(3)), []).append((int(m.group(1)), key))
    stats = sorted({s for _, s in found}, key=lambda s: (s not in ACT_STATS, _index(ACT_STATS, s)))
    full, partial = [], []
    for stat in stats:
        row = []
        for col, parts in enumerate(ACT_COLUMNS):
            present = [p for p in parts if (p, stat) in found]
            lines = sorted(x for part in present for x in found[(part, stat)])
            if lines:
                title = " / ".join(PART_NAMES[p] for p in present)
                row.append(
                    Chart(f"{title}: {STAT_NAMES.get(stat, stat)}", tuple(k for _, k in lines), col)
                )
        if row:
            (full if len(row) == len(ACT_COLUMNS) else partial).append(row)
    in_columns = {p for parts in ACT_COLUMNS for p in parts}
    extra = [
        Chart(
            f"{PART_NAMES.get(part, part)}: {STAT_NAMES.get(stat, stat)}",
            tuple(k for _, k in sorted(lines)),
        )
        for (part, stat), lines in sorted(found.items())
        if part not in in_columns
    ]
    rows = full + partial
    if extra:
        for j in range(0, len(extra), 3):
            rows.append([Chart(c.title, c.keys, i) for i, c in enumerate(extra[j : j + 3])])
    return rows


def _index(order: list[str], item: str) -> tuple[int, str]:
    return (order.index(item), "") if item in order else (len(order), item)


def plan_sections(keys: set[str], run_table: str) -> list[Section]:
    """Loss, Compute, Gradients, Activations, Run table: the charts the logged keys allow."""
    grads = [(f"grad_norm/{b}", f"grad_norm/{b}") for b in GRAD_BLOCKS]
    grads += [(k, k) for k in sorted(keys) if k.startswith("grad_norm/") and k not in dict(grads)]
    act = activation_rows(keys)
    return [
        Section("Loss", 3, _grid(LOSS_KEYS, keys, 3)),
        Section("Compute", 3, _grid(COMPUTE_KEYS, keys, 3)),
        Section("Gradients", 3, _grid(grads, keys, 3)),
        Section("Activations", max((len(r) for r in act), default=1), act),
        Section("Run table", 1, [], markdown=run_table, compare_runs=True),
    ]


# ------------------------------------------------------------------------------ the run table


def _cell(value: Any, spec: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = format(value, spec) if spec else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def run_table(runs: Sequence[Run], wandb: dict[str, WandbRun]) -> str:
    """Every job of the sweep, failed ones included, from its own files (Markdown)."""
    head = [h for h, _ in RUN_COLUMNS] + ["run", "W&B run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        s = r.summary
        params = s.params if s else {}
        flops = s.flops_per_token if s else {}
        status = r.status if r.ok else f"{r.status}: {r.reason}"
        w = wandb.get(r.rel)
        online = "" if w is None or not w.offline else " (offline)" if not w.synced else ""
        cells = [
            _cell(r.variant),
            _cell(s.model if s else None),
            _cell(r.seed),
            _cell(s.final_val_loss if s else None, ".4f"),
            _cell(s.best_val_loss if s else None, ".4f"),
            _cell(params.get("total"), ","),
            _cell(params.get("d_ff")),
            _cell(flops.get("ffn_share"), ".1%"),
            _cell(status[:120]),
            _cell(r.rel),
            _cell(w.run_id + online if w else "none"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ reading a sweep


def load(root: Path, out: Path = Path("results"), name: str | None = None) -> Sweep:
    """Read the sweep under `root` and plan its views."""
    root = Path(root)
    runs = load_sweep(root, exclude=Path(out))
    name = name or default_name(root, runs)
    dest = Path(out) / name
    config = {r.rel: read_config(r) for r in runs}
    wandb = {r.rel: w for r in runs if (w := wandb_run(r.path)) is not None}
    logger = {
        k: _most_common(cfg.get(f"logger.{k}") for cfg in config.values())
        for k in ("project", "entity", "group")
    }
    group = logger["group"] or _most_common(r.summary.group for r in runs if r.summary)
    if not group:
        raise UserInputError(
            f"the runs under {root} name no W&B group (summary.json 'group', logger.group): "
            "were they started with train.py -m?"
        )
    keys = logged_keys(runs)
    ok_labels = [r.label for r in runs if r.ok]
    ok_variants = [r.variant for r in runs if r.ok and r.variant]
    report = dest / "report.md"
    return Sweep(
        name=name,
        root=root,
        dest=dest,
        runs=runs,
        wandb=wandb,
        config=config,
        project=logger["project"] or LoggerConfig.project,
        entity=logger["entity"] or os.environ.get("WANDB_ENTITY") or None,
        group=str(group),
        grouping=grouping_keys(runs, config),
        keys=keys,
        sections=plan_sections(keys, run_table(runs, wandb)),
        label_colors=palette.with_extra(
            palette.variant_colors(ok_labels), [r.label for r in runs if r.variant]
        ),
        variant_colors=palette.with_extra(
            palette.variant_colors(ok_variants), [r.variant for r in runs if r.variant]
        ),
        report_md=report.read_text(encoding="utf-8") if report.is_file() else None,
    )


# ------------------------------------------------------------------------------ writing, saving
