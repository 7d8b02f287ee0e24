"""Tokens/s and MFU measured apart from the sweep, and compute multipliers in training seconds.

The runs of a sweep measure their own tokens/s, but under a parallel launcher they share the
machine's cores with each other, so their speeds measure the contention as much as the variant.
`python -m bench.throughput experiment=<e>` times every variant at every size of the experiment in
one process, interleaved, on a machine with nothing else running, and writes
results/<e>_throughput/throughput.json; the report takes tokens/s and MFU from that file where it
has the row's variant and size (`attach`), and from the runs otherwise, saying which.

A compute multiplier in training FLOPs says how much less compute a variant needs to reach a
loss; in training seconds it also counts how fast each runs: seconds = FLOPs / achieved FLOP/s,
so the seconds multiplier is the FLOPs multiplier x (the variant's achieved training FLOP/s /
the baseline's at the same size).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserInputError, one_line
from sweep.model import Scaling
from sweep.runs import finite
from sweep.table import Row

FILENAME = "throughput.json"
SOURCE = "bench.throughput"


@dataclass
class Bench:
    """The contents of a bench.throughput file: (variant, model) -> its measurement."""

    path: Path
    experiment: str | None
    date: str | None
    machine: dict[str, Any]
    results: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        m = self.machine
        where = ", ".join(
            str(x) for x in (m.get("device_name"), m.get("threads") and f"{m['threads']} threads")
        )
        return f"`{self.path}` ({self.date or 'undated'}; {where or 'machine not recorded'})"


def bench_file(path: Path) -> Path:
    return path / FILENAME if path.is_dir() else path


def load(path: Path) -> Bench:
    """A bench.throughput file (or the dir holding one); UserInputError (one line) if unusable."""
    file = bench_file(Path(path))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserInputError(
            f"cannot read the throughput file {file} ({one_line(e, typed=False)}); "
            "python -m bench.throughput experiment=<e> writes results/<e>_throughput/"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise UserInputError(f"{file} has no 'results' list: not a bench.throughput file")
    results = {
        (str(r["variant"]), str(r["model"])): r
        for r in data["results"]
        if isinstance(r, dict) and "variant" in r and "model" in r
    }
    return Bench(file, data.get("experiment"), data.get("date"), data.get("machine") or {}, results)


def find(out: Path, experiments: Sequence[str | None]) -> Bench | None:
    """The bench.throughput file of the sweep's experiment under the report's out dir, if any."""
    names = {e for e in experiments if e}
    if len(names) != 1:
        return None
    file = Path(out) / f"{names.pop()}_throughput" / FILENAME
    return load(file) if file.exists() else None


def attach(rows: Sequence[Row], bench: Bench | None) -> int:
    """Take each row's tokens/s and MFU from `bench` where it measured the row's variant and
    model; the number of rows it covered."""
    if bench is None:
        return 0
    covered = 0
    for row in rows:
        r = bench.results.get((row.variant, row.model))
        if r is None or not finite(r.get("tokens_per_s_median")):
            continue
        row.tokens_per_s = float(r["tokens_per_s_median"])
        row.tokens_per_s_spread = float(r.get("spread", math.nan) or math.nan)
        row.mfu = float(r["mfu"]) if finite(r.get("mfu")) else math.nan
        row.throughput_source = SOURCE
        covered += 1
    return covered


def achieved_flops(row: Row) -> float:
    """The row's training FLOP/s: tokens/s x training FLOPs per token."""
    return row.tokens_per_s * row.train_flops_per_token


def seconds_multipliers(scaling: Scaling | None, rows: Sequence[Row]) -> None:
    """Fill each multiplier's value in training seconds: the FLOPs multiplier x the variant's
    achieved FLOP/s over the baseline's at the same size (the interval scaled alike: it covers
    the seed noise of the losses, not the timing's)."""
    if scaling is None:
        return
    rate = {(r.variant, r.model): achieved_flops(r) for r in rows}
    source = {(r.variant, r.model): r.throughput_source for r in rows}
    for baseline, ms in scaling.multipliers.items():
        for m in ms:
            mine, base = rate.get((m.variant, m.size)), rate.get((baseline, m.size))
            if m.value is None or not (finite(mine) and finite(base)) or not base > 0:
                continue
            ratio = mine / base
            m.seconds_value = m.value * ratio
            m.seconds_low = None if m.low is None else m.low * ratio
            m.seconds_high = None if m.high is None else m.high * ratio
            sources = {source.get((m.variant, m.size)), source.get((baseline, m.size))}
            m.seconds_source = " / ".join(sorted(s for s in sources if s))
