"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    p, f = summary["params"], summary["flops_per_token"]
    lines = [
        f"run        {summary['run_name']}  ({summary['status']}, model {summary['model']}, "
        f"{summary['device']})",
        f"params     total {p['total']:,}  non-embedding {p['non_embedding']:,}  "
        f"FFN {p['ffn']:,} (d_ff {p['d_ff']}, matched on {summary['match']})",
        f"FLOPs/tok  {f['total']:,} forward (FFN {f['ffn']:,} per layer)",
        f"trained    {summary['steps']} steps, {summary['tokens']:,} tokens in "
        f"{summary['wall_time_s']:.1f} s ({summary['tokens_per_s']:,.0f} tokens/s)",
        f"val loss   final {_fmt(summary['final_val_loss'])}  best {_fmt(summary['best_val_loss'])}"
        f"  (train {_fmt(summary['final_train_loss'])})",
        f"outputs    {run_dir}  (metrics.jsonl, summary.json, checkpoints/)",
    ]
    width = max(len(line) for line in lines)
    print("\n".join(["=" * width, *lines, "=" * width]), flush=True)
