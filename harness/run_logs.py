"""Where a run reports: summary.json, metrics.jsonl, W&B and the progress bar (rank 0's alone),
and the summary it ends with."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ffn_variants.model import GPT
from harness.config import LoggerMode, TrainConfig, as_plain_dict
from harness.diskfull import DiskFullError
from harness.metrics import JsonlLogger, MetricLogger, WandbLogger
from harness.mfu import Peak
from harness.nonfinite import NonFiniteError
from harness.preemption import Preempted
from harness.state import TrainState
from harness.summary import RunStatus, RunSummary


def initial_summary(
    cfg: TrainConfig,
    model: GPT,
    device: torch.device,
    data: dict[str, Any],
    peak: Peak,
    world_size: int,
    group: str | None,
    optimizer: dict[str, Any],
) -> RunSummary:
    """summary.json as a run starts: what it trains, where, and its counts."""
    return RunSummary(
        variant=cfg.ffn.name,
        seed=cfg.seed,
        model=cfg.model.name,
        match=str(cfg.ffn.match),
        group=group,
        params=model.param_counts(),
        flops_per_token=model.flops_per_token(),
        device=str(device),
        host=socket.gethostname(),
        pid=os.getpid(),
        data=data,
        peak_tflops=peak.tflops,
        peak_source=peak.source,
        world_size=world_size,
        visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        threads=torch.get_num_threads(),
        optimizer=optimizer,
        flops_not_counted=(
            "Muon's Newton-Schulz iterations are not counted in the model FLOPs"
            if optimizer.get("name") == "muon"
            else None
        ),
    )


def status_of(e: BaseException) -> tuple[RunStatus, str]:
    """The status and error a run that raised `e` ends with."""
    if isinstance(e, Preempted):
        return e.status, str(e)
    if isinstance(e, NonFiniteError):
        return RunStatus.diverged, str(e)
    if isinstance(e, DiskFullError):
        return RunStatus.failed, str(e)
    return RunStatus.failed, f"{type(e).__name__}: {e}"


def open_loggers(
    cfg: TrainConfig,
    run_dir: Path,
    summary: RunSummary,
    state: TrainState,
    resumed: bool,
    group: str | None,
) -> list[MetricLogger]:
    """summary.json (running), metrics.jsonl and, unless disabled, W&B (its run id kept in the
    state, so a resumed run continues the same W&B run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    summary.write(run_dir)
    loggers: list[MetricLogger] = [
        JsonlLogger(run_dir / "metrics.jsonl", state.step if resumed else None)
    ]
    mode, why = cfg.logger.resolved_mode()
    print(f"W&B: {mode} ({why})", flush=True)
    if mode != LoggerMode.disabled:
        wandb = WandbLogger(
            cfg.logger,
            mode=mode,
            name=summary.run_name,
            group=group,
            tags=[cfg.ffn.name, cfg.model.name, f"seed{cfg.seed}"],
            config={
                **as_plain_dict(cfg),
                "params": summary.params,
                "flops_per_token": summary.flops_per_token,
                "optimizer": summary.optimizer,
            },
            run_dir=run_dir,
            run_id=state.wandb_id,
        )
        state.wandb_id = wandb.id
        loggers.append(wandb)
    return loggers


def progress_bar(name: str, total: int, initial: int, shown: bool) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        desc=name,
        disable=not shown,
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0,
        file=sys.stdout,
    )


def peak_memory_mib(device: torch.device) -> float | None:
    """The most memory allocated at once on a CUDA device so far (None elsewhere)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def final_summary(
    summary: RunSummary,
    status: RunStatus,
    error: str | None,
    state: TrainState,
    *,
    trained: int,
    wall: float,
    paused: float,
    epochs: dict[str, float],
    utilisation: Callable[[float], tuple[float, float]],
    sample: str | None,
    documents: dict[str, dict[str, float]],
    device: torch.device,
) -> RunSummary:
    """The summary a run ends with: `trained` tokens in `wall` seconds, `paused` of them
    evaluating and checkpointing; utilisation(tokens/s) gives (MFU, model TFLOP/s)."""
    tokens_per_s = trained / max(wall, 1e-9)
    mfu, tflops = utilisation(tokens_per_s)
    train_rate = trained / max(wall - paused, 1e-9)
    return dataclasses.replace(
        summary,
        status=status,
        error=error,
        steps=state.step,
        tokens=state.tokens,
        data={**summary.data, "epochs": epochs},
        tokens_per_s=tokens_per_s,
        train_tokens_per_s=train_rate,
        train_mfu=utilisation(train_rate)[0],
        eval_time_s=paused,
        wall_time_s=wall,
        mfu=mfu,
        model_tflops=tflops,
        final_val_loss=state.val_loss,
        best_val_loss=state.best_val_loss,
        final_val_bpb=state.val_bpb,
        best_val_bpb=state.best_val_bpb,
        final_train_loss=state.train_loss,
        final_val_documents=documents,
        sample=sample,
        skipped_steps=state.skipped_steps,
        peak_memory_mib=peak_memory_mib(device),
        ended_at=time.time(),
    )
