"""The runs of a sweep, as found on disk: summary.json, metrics.jsonl and Hydra's overrides.

Only the files each run writes are read (no W&B). A run counts when it completed with a finite
final val loss; every other run is kept with the reason it does not count.
"""

from __future__ import annotations

import json
import math
import os
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
