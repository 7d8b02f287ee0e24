"""The runs of a sweep, as found on disk: summary.json, metrics.jsonl and Hydra's overrides.

Only the files each run writes are read (no W&B). A run counts when it completed with a finite
final val loss; every other run is kept with the reason it does not count. Each run also carries
its learning rate (its .hydra/config.yaml) and, for a sweep at per-variant tuned rates, the file
of rates it came from (.hydra/hydra.yaml: hydra.sweeper.tuned, harness.tuned); a tuned rate does
not split a variant's row, since it is part of what the variant is being compared at.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UserInputError, one_line
from harness.summary import RunStatus, RunSummary, run_name

# Overrides that say which row and which seed a run is; any other override that differs between
# runs (optim.lr in an lr_scan, say) splits a variant's row by its value.
SAME_ROW_KEYS = {"ffn", "seed", "experiment"}


@dataclass
class Run:
    """One job of the sweep, as found on disk."""

    path: Path
    rel: str
    name: str
    variant: str | None
    seed: int | None
    status: str
    reason: str = ""
    summary: RunSummary | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    bad_metric_lines: int = 0
    settings: dict[str, str] = field(default_factory=dict)  # overrides other than ffn and seed
    setting: str = ""  # the settings that vary across the sweep, e.g. "optim.lr=0.003"
    experiment: str | None = None  # the experiment= override
    lr: float | None = None  # optim.lr of its composed config
    tuned_from: str | None = None  # the tuned-rates file(s) its optim.lr came from, if any
    optimizer: str = "adamw"  # optim.name
    shared_with: int = 0  # runs that trained on the same machine (and device) at the same time

    @property
    def label(self) -> str:
        """The table row of this run: its variant, plus its setting where the sweep varies one."""
        return f"{self.variant} ({self.setting})" if self.setting else str(self.variant)

    @property
    def ok(self) -> bool:
        return not self.reason


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _natural_key(p: Path) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in p.parts]


def find_run_dirs(root: Path, exclude: Path | None = None) -> list[Path]:
    """Run dirs under ``root`` (itself included): dirs holding ``.hydra/``, ``summary.json`` or
    ``metrics.jsonl``. A run dir's own subdirs are not searched; ``exclude`` and dirs holding a
    ``report.md`` (earlier reports) are skipped."""
    found = []
    excl = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if excl is not None and d.resolve() == excl:
            dirnames[:] = []
            continue
        if "report.md" in filenames and ".hydra" not in dirnames:
            dirnames[:] = []  # an earlier report written inside the sweep dir, not a run
            continue
        if ".hydra" in dirnames or "summary.json" in filenames or "metrics.jsonl" in filenames:
            found.append(d)
            dirnames[:] = []
            continue
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
    return sorted(found, key=_natural_key)


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Parse a ``metrics.jsonl``; lines that are not JSON objects (e.g. a truncated last line
    of a crashed run) are skipped and counted. Returns ``(records, n_bad_lines)``."""
    records, bad = [], 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), (int, float)):
            records.append(rec)
        else:
            bad += 1
    return records, bad


def read_overrides(path: Path) -> dict[str, str]:
    """``key -> value`` from a Hydra ``overrides.yaml`` (a list of ``key=value`` strings)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    out = {}
    for item in map(str, loaded if isinstance(loaded, list) else []):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k.strip().lstrip("+~")] = v.strip()
    return out


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError):
        return None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _select(data: Any, *keys: str) -> Any:
    for k in keys:
        data = data.get(k) if isinstance(data, dict) else None
    return data


def read_lr(hydra_dir: Path, overrides: dict[str, str]) -> tuple[float | None, str | None]:
    """(optim.lr the run trained with, the tuned-rates file it came from or None): from
    .hydra/config.yaml and .hydra/hydra.yaml, else the optim.lr override."""
    lr = _select(_load_yaml(hydra_dir / "config.yaml"), "optim", "lr")
    if not finite(lr):
        try:
            lr = float(overrides["optim.lr"])
        except (KeyError, ValueError):
            lr = None
    tuned = _select(_load_yaml(hydra_dir / "hydra.yaml"), "hydra", "sweeper", "tuned")
    if isinstance(tuned, list):  # one file per optimizer
        tuned = ", ".join(map(str, tuned))
    return (float(lr) if finite(lr) else None), (str(tuned) if tuned else None)


def read_optimizer(hydra_dir: Path, overrides: dict[str, str]) -> str:
    """optim.name the run trained under: .hydra/config.yaml, else the override, else adamw (the
    only optimizer before there was a choice)."""
    name = _select(_load_yaml(hydra_dir / "config.yaml"), "optim", "name")
    return str(name or overrides.get("optim") or "adamw")


def _as_int(x: Any) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _read_summary(path: Path) -> tuple[RunSummary | None, str, str]:
    """(summary, status, problem) of a run dir's summary.json."""
    if not (path / "summary.json").exists():
        return None, "missing", "no summary.json (died before writing it)"
    try:
        summary = RunSummary.read(path)
    except (OSError, ValueError, TypeError) as e:
        return None, "unreadable", f"summary.json unreadable: {one_line(e, typed=False)}"
    return summary, str(summary.status), ""


def _problem(s: RunSummary, variant: str | None) -> str:
    """Why a run with a summary does not count ('' if it does)."""
    if s.status != RunStatus.completed:
        if s.error:
            return one_line(ValueError(s.error), typed=False)
        return {
            RunStatus.running: "unfinished: summary still says running (killed or crashed?)",
            RunStatus.diverged: "diverged",
        }.get(s.status, f"status {s.status!r}")
    if not finite(s.final_val_loss):
        return "completed but final_val_loss is missing or not finite"
    if variant is None:
        return "variant unknown (no 'variant' in summary, no ffn= override)"
    return ""


def load_run(path: Path, root: Path) -> Run:
    """Read one run dir and decide whether it counts (completed with a finite final val loss)."""
    rel = str(path.relative_to(root)) if path != root else "."
    ov = read_overrides(path / ".hydra" / "overrides.yaml")
    metrics, bad = read_metrics(path / "metrics.jsonl")
    summary, status, problem = _read_summary(path)
    s = summary or RunSummary()
    variant = s.variant or ov.get("ffn")
    seed = _as_int(s.seed if s.seed is not None else ov.get("seed"))
    name = run_name(variant, seed) if variant and seed is not None else rel
    if summary is not None:
        problem = _problem(summary, variant)
    if problem and status != RunStatus.completed and metrics:
        problem += f"; last logged step {int(metrics[-1]['step'])}"
    settings = {k: v for k, v in ov.items() if k not in SAME_ROW_KEYS and not k.startswith("hydra")}
    lr, tuned_from = read_lr(path / ".hydra", ov)
    if tuned_from:
        settings.pop("optim.lr", None)  # each variant's own rate: not a setting of the sweep
    return Run(
        path=path,
        rel=rel,
        name=name,
        variant=str(variant) if variant else None,
        seed=seed,
        status=status,
        reason=problem,
        summary=summary,
        metrics=metrics,
        bad_metric_lines=bad,
        settings=settings,
        experiment=ov.get("experiment"),
        lr=lr,
        tuned_from=tuned_from,
        optimizer=read_optimizer(path / ".hydra", ov),
    )


def varying_keys(runs: Sequence[Run]) -> list[str]:
    """The overrides (other than ffn and seed) whose values differ between runs, e.g. optim.lr
    in an lr_scan."""
    keys = sorted({k for r in runs for k in r.settings})
    return [k for k in keys if len({r.settings.get(k) for r in runs}) > 1]


def label_settings(runs: Sequence[Run]) -> None:
    """Give each run its `setting`: its values of the keys that vary across the sweep."""
    varying = varying_keys(runs)
    for r in runs:
        r.setting = ", ".join(f"{k}={r.settings.get(k, 'default')}" for k in varying)


def _same_device(a: RunSummary, b: RunSummary) -> bool:
    """Whether two runs' devices are one: the same host, and the CPU, or the same GPU(s)."""
    if a.host != b.host or a.device is None or b.device is None:
        return False
    if a.device.startswith("cpu") and b.device.startswith("cpu"):
        return True
    return a.device == b.device and a.visible_devices == b.visible_devices


def mark_shared(runs: Sequence[Run]) -> None:
    """Each run's `shared_with`: how many other runs trained on its device while it did (a
    parallel launcher's jobs on one CPU): its tokens/s and MFU measure a shared machine."""
    timed = [
        r
        for r in runs
        if r.summary is not None and finite(r.summary.ended_at) and finite(r.summary.started_at)
    ]
    for r in timed:
        s = r.summary
        r.shared_with = sum(
            1
            for o in timed
            if o is not r
            and _same_device(s, o.summary)
            and o.summary.started_at < s.ended_at
            and s.started_at < o.summary.ended_at
        )


def load_sweep(root: Path, exclude: Path | None = None) -> list[Run]:
    """All runs under ``root``; a second completed run of the same row and seed is excluded."""
    if not root.is_dir():
        raise UserInputError(f"sweep dir {root} does not exist or is not a directory")
    dirs = find_run_dirs(root, exclude)
    if not dirs:
        raise UserInputError(
            f"no runs found under {root} (expected job dirs with .hydra/, summary.json or "
            "metrics.jsonl)"
        )
    runs = [load_run(d, root) for d in dirs]
    label_settings(runs)
    mark_shared(runs)
    seen: dict[tuple[str, int], Run] = {}
    for r in runs:
        if r.ok and r.seed is not None:
            key = (r.label, r.seed)
            if key in seen:
                r.status = "duplicate"
                r.reason = f"same variant, setting and seed as {seen[key].rel}"
            else:
                seen[key] = r
    return runs


def summary_values(runs: Sequence[Run], name: str) -> list:
    """The distinct values of one summary field over the runs, sorted."""
    values = {getattr(r.summary, name) for r in runs if r.summary is not None}
    return sorted((v for v in values if v is not None), key=str)


def default_name(root: Path, runs: Sequence[Run]) -> str:
    """The summaries' ``group`` if every completed run agrees on one, else the sweep dir's last
    two path parts joined with ``_`` (``multirun/2026-11-22/10-00-00`` -> ``2026-11-22_10-00-00``).
    """
    groups = {r.summary.group for r in runs if r.ok}
    if len(groups) == 1 and (g := groups.pop()):
        name = str(g)
    else:
        name = "_".join(root.resolve().parts[-2:])
    return re.sub(r"[^\w.\-]+", "_", name).strip("_") or "sweep"
