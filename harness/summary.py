"""RunSummary: the schema of summary.json, the run's name, and the one-screen console summary.

Every writer and reader of summary.json goes through this class: the trainer, the failed-job
record of train.py, the sweep callback and sweep.report. A new summary field is one new
attribute here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.fmt import or_na
from harness.json_safe import dumps, json_safe

FILENAME = "summary.json"


class RunStatus(StrEnum):
    running = "running"  # still training, or killed without a chance to say so
    completed = "completed"
    preempted = "preempted"  # a checkpoint was written; rerun to continue
    interrupted = "interrupted"  # Ctrl-C: as preempted (or, in a sweep, not started); rerun
    diverged = "diverged"  # non-finite loss or gradients (trainer.on_nonfinite=stop)
    failed = "failed"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file and a rename, so a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(dumps(data, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run_name(variant: str | None, seed: int | None) -> str:
    """`<variant>-s<seed>`: the run's name on the console, in W&B and in reports."""
    return f"{variant}-s{seed}"


@dataclass
class RunSummary:
    variant: str | None = None
    seed: int | None = None
    status: str = RunStatus.running
    error: str | None = None
    model: str | None = None
    match: str | None = None
    group: str | None = None  # the multirun (and W&B group) this run belongs to
    params: dict[str, int] = field(default_factory=dict)
    flops_per_token: dict[str, int] = field(default_factory=dict)
    device: str | None = None
    visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES: the GPU(s) a launcher gave this job
    threads: int | None = None  # torch's intra-op threads
    world_size: int = 1  # processes of a data-parallel run
    host: str | None = None
    pid: int | None = None
    started_at: float = field(default_factory=time.time)  # Unix time
    ended_at: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # optim.name and the parameters each optimizer owns, by name (harness.optim.ownership)
    optimizer: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    tokens: int = 0
    tokens_per_s: float | None = None  # wall clock: tokens / wall_time_s, evaluations included
    model_tflops: float | None = None  # training FLOPs per second the model achieved (wall clock)
    mfu: float | None = None  # model_tflops / peak_tflops (wall clock)
    # The training steps' own rate: evaluations and checkpoints left out of the time.
    train_tokens_per_s: float | None = None
    train_mfu: float | None = None
    eval_time_s: float | None = None  # evaluations and checkpoints, in wall_time_s
    peak_tflops: float | None = None
    peak_source: str | None = None  # "datasheet: ..." or "measured: ..." (harness.mfu)
    flops_not_counted: str | None = None  # work the model FLOPs (and so MFU) leave out
    peak_memory_mib: float | None = None  # the most device memory allocated at once (CUDA)
    wall_time_s: float | None = None
    final_val_loss: float | None = None
    best_val_loss: float | None = None
    final_val_bpb: float | None = None  # bits per UTF-8 byte of the validation text
    best_val_bpb: float | None = None
    final_train_loss: float | None = None
    # The final evaluation per held-out document: {name: {"tokens": n, "loss": nats per token}}
    final_val_documents: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped_steps: int = 0
    sample: str | None = None  # a seeded continuation of a document start, at the end

    @property
    def run_name(self) -> str:
        return run_name(self.variant, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"run_name": self.run_name, **dataclasses.asdict(self)})

    def write(self, run_dir: Path) -> None:
        write_json_atomic(run_dir / FILENAME, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """A summary from its JSON form; unknown keys are ignored, missing ones take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, run_dir: Path) -> RunSummary:
        """The run dir's summary; OSError or ValueError if it is missing or not a JSON object."""
        data = json.loads((run_dir / FILENAME).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("summary.json is not a JSON object")
        return cls.from_dict(data)

    def console(self, run_dir: Path) -> str:
        """The one-screen summary printed at the end of a run."""
        p, f = self.params, self.flops_per_token
        lines = [
            f"run        {self.run_name}  ({self.status}, model {self.model}, {self.device})",
            f"params     total {p['total']:,}  non-embedding {p['non_embedding']:,}  "
            f"FFN {p['ffn']:,} (d_ff {p['d_ff']}, matched on {self.match})",
            f"FLOPs/tok  {f['train']:,.0f} training, {f['total']:,.0f} forward (FFN matmuls "
            f"{f['ffn_share']:.1%})",
            f"trained    {self.steps} steps, {self.tokens:,} tokens in "
            f"{self.wall_time_s:.1f} s ({self.tokens_per_s:,.0f} tokens/s; training steps alone "
            f"{or_na(self.train_tokens_per_s, ',.0f')})",
            f"MFU        {or_na(self.mfu, '.1%')}: {or_na(self.model_tflops, '.3g')} TFLOP/s of "
            f"{or_na(self.peak_tflops, '.3g')} ({self.peak_source})"
            + (f"; {self.flops_not_counted}" if self.flops_not_counted else ""),
            f"val loss   final {or_na(self.final_val_loss)}  best {or_na(self.best_val_loss)}"
            f"  (train {or_na(self.final_train_loss)})",
            f"val bpb    final {or_na(self.final_val_bpb)}  best {or_na(self.best_val_bpb)}",
            f"outputs    {run_dir}  (metrics.jsonl, summary.json, checkpoints/)",
        ]
        if self.sample:
            lines.insert(-1, f"sample     {' '.join(self.sample.split())[:90]!r}")
        width = max(len(line) for line in lines)
        return "\n".join(["=" * width, *lines, "=" * width])
