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


def section(found: tuple[Path, dict[str, Any]] | None, baselines: Sequence[str]) -> list[str]:
    """Markdown: per baseline, each variant's prefill time and decode rate relative to it."""
    if found is None:
        return []
    from bench.inference import ratios

    file, data = found
    m = data.get("machine", {})
    lines = [
        "## Cost to serve",
        "",
        f"From `{file}` ({data.get('date')}, {m.get('device_name', m.get('device'))}, "
        f"{data.get('dtype')}, median of {data.get('rounds')} interleaved rounds; load average "
        f"before {', '.join(f'{x:.2f}' for x in data.get('load_average_before') or []) or 'n/a'})."
        " Prefill: the time of one forward over the prompt, as a ratio (below 1: cheaper). "
        "Decode: tokens/s through the KV cache, as a ratio (above 1: cheaper). ± is the spread "
        "(p25-p75 over the median) of the variant's own timings.",
        "",
    ]
    for baseline in baselines:
        rel = ratios(data, baseline)
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
