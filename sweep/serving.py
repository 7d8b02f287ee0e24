"""The report's "Cost to serve": bench.inference's figures for the sweep's experiment, as ratios to
each baseline (prefill time and decode rate), beside the training multipliers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserInputError, one_line

FILENAME = "inference.json"


def find(out: Path, experiments: Sequence[str | None]) -> tuple[Path, dict[str, Any]] | None:
    """results/<experiment>_inference/inference.json under the report's out dir, if any."""
    names = {e for e in experiments if e}
    if len(names) != 1:
        return None
    file = Path(out) / f"{names.pop()}_inference" / FILENAME
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserInputError(f"cannot read {file} ({one_line(e, typed=False)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise UserInputError(f"{file} has no 'results' list: not a bench.inference file")
    return file, data


def ratios(result: dict[str, Any], baseline: str) -> list[dict[str, Any]]:
    """Each row's prefill time and decode rate as ratios to `baseline`'s (same size and mode):
    prefill < 1 and decode > 1 are cheaper to serve than the baseline."""
    rows = [r for r in result["results"] if not r.get("error")]
    base = {(r["model"], r["mode"]): r for r in rows if r["variant"] == baseline}
    out = []
    for r in rows:
        b = base.get((r["model"], r["mode"]))
        if b is None:
            continue
        keys = [k for k in r if k.startswith(("prefill_", "decode_")) and not k.endswith("spread")]
        out.append(
            {
                "variant": r["variant"],
                "model": r["model"],
                "mode": r["mode"],
                **{k: r[k] / b[k] for k in keys if b.get(k)},
                **{f"{k}_spread": r.get(f"{k}_spread") for k in keys},
            }
        )
    return out


def served_as(rel: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a server's cost is judged by: per model size, the compiled figures where the
    benchmark measured them (a server compiles; on CUDA they decode through CUDA graphs), else
    the eager ones."""
    compiled = {r["model"] for r in rel if r["mode"] == "compiled"}
    return [r for r in rel if r["mode"] == ("compiled" if r["model"] in compiled else "eager")]


def section(found: tuple[Path, dict[str, Any]] | None, baselines: Sequence[str]) -> list[str]:
    """Markdown: per baseline, each variant's prefill time and decode rate relative to it."""
    if found is None:
        return []
    file, data = found
    m = data.get("machine", {})
    lines = [
        "## Cost to serve",
        "",
        f"From `{file}` ({data.get('date')}, {m.get('device_name', m.get('device'))}, "
        f"{data.get('dtype')}, median of {data.get('rounds')} interleaved rounds; load average "
        f"before {', '.join(f'{x:.2f}' for x in data.get('load_average_before') or []) or 'n/a'})."
        " Compiled figures where the benchmark measured them (fixed-shape KV cache; on CUDA, "
        "CUDA graphs), else eager. Prefill: the time of one forward over the prompt, as a ratio "
        "(below 1: cheaper). "
        "Decode: tokens/s through the KV cache, as a ratio (above 1: cheaper). ± is the spread "
        "(p25-p75 over the median) of the variant's own timings.",
        "",
    ]
    for baseline in baselines:
        rel = served_as(ratios(data, baseline))
        if not rel:
            continue
        keys = [k for k in rel[0] if k.startswith(("prefill_", "decode_")) and "spread" not in k]
        lines += [
            f"Against **{baseline}**:",
            "",
            "| variant | model | mode | " + " | ".join(keys) + " |",
            "|---|---|---|" + "---:|" * len(keys),
        ]
        for r in rel:
            cells = [
                f"{r[k]:.2f}x ±{100 * (r.get(f'{k}_spread') or 0):.0f}%" if k in r else "n/a"
                for k in keys
            ]
            lines.append(
                f"| {r['variant']} | {r['model']} | {r['mode']} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return lines
