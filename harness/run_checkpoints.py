"""A run's checkpoints: writing them (rank 0, the others wait), finding the one to resume and
checking it belongs to this run, the disk space they need, and a disk-full error that names
the last good one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harness import distributed
from harness.checkpoint import find_resume, save_checkpoint
from harness.config import TrainerConfig
from harness.diskfull import DiskFullError, as_disk_full, free_bytes, human_bytes, state_nbytes
from harness.errors import UserInputError, one_line
from harness.metrics import warn
from harness.optim import state_nbytes as optimizer_nbytes

# What may change between a run and its resumption: how it is logged, shown and checkpointed, and
# where its data cache lives. Anything else would resume one run's checkpoints into another.
RESUMABLE_CHANGES = (
    "logger.",
    "trainer.resume",
    "trainer.progress",
    "trainer.keep_checkpoints",
    "trainer.ckpt_interval",
    "data.cache_dir",
)
# What a resume may change to extend a run: its length. The schedule is then that of the new
# length from the resumed step on (the learning rate moves to it), and the resume says so.
EXTENDING = ("trainer.max_steps", "trainer.tokens_per_param")


class Checkpoints:
    def __init__(self, cfg: TrainerConfig, run_dir: Path, main: bool) -> None:
        self.cfg, self.run_dir, self.main = cfg, run_dir, main
        self.last: tuple[int, Path] | None = None  # (step, path): for a disk-full error

    def save(self, step: int, state: dict[str, Any]) -> None:
        """`state` (every process's, gathered by the caller) written once by rank 0; the others
        wait until it is on disk."""
        if self.main:
            path = save_checkpoint(
                self.run_dir / "checkpoints", step, state, self.cfg.keep_checkpoints
            )
            self.last = (step, path)
        distributed.barrier()

    def resume(
        self, world_size: int, config: dict[str, Any], load: Callable[[dict[str, Any]], None]
    ) -> Path | None:
        """Load (through `load`) the checkpoint trainer.resume names, if any, and return its
        path; UserInputError (one line) where it belongs to another run or does not fit."""
        found = find_resume(self.cfg.resume, self.run_dir)
        if found is None:
            return None
        path, state = found
        train_state = state.get("train_state", {})
        self.last = (int(train_state.get("step", 0)), path)
        saved_world = train_state.get("world_size", 1)
        if saved_world != world_size:
            raise UserInputError(
                f"checkpoint {path} was written by a run of {saved_world} process(es) and this run "
                f"has {world_size}; resume it with the same number (torchrun "
                f"--nproc_per_node={saved_world}), or use another run dir or trainer.resume=never"
            )
        extended = check_same_config(state.get("config", {}), config, path)
        if extended and self.main:
            print(f"extending the run of {path}: {extended}", flush=True)
        try:
            load(state)
        except (RuntimeError, ValueError, KeyError) as e:
            saved = state.get("config", {}) if isinstance(state, dict) else {}
            raise UserInputError(
                f"checkpoint {path} does not fit this model (saved with ffn="
                f"{saved.get('ffn', {}).get('name')}, model={saved.get('model', {}).get('name')}: "
                f"{one_line(e, typed=False)}); use another run dir or trainer.resume=never"
            ) from None
        return path

    def warn_if_short_of_space(
        self, model: torch.nn.Module, optimizer: Any, max_steps: int
    ) -> None:
        """Warn (never refuse) when the run dir's filesystem has less free space than the
        checkpoints will take: keep_checkpoints of them plus the one being written."""
        t = self.cfg
        if not (t.checkpoint and self.main):
            return
        if t.keep_checkpoints > 0:
            count = t.keep_checkpoints + 1
        else:
            count = 1 + (max_steps // t.ckpt_interval if t.ckpt_interval > 0 else 0)
        # About one checkpoint: the weights and the optimizer's state (AdamW: two moments per
        # weight; Muon: one momentum per matrix), in float32.
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        size = weights + optimizer_nbytes(optimizer) + state_nbytes(dict(model.named_buffers()))
        free = free_bytes(self.run_dir)
        if free < count * size:
            warn(
                f"{human_bytes(free)} free under {self.run_dir}, and the checkpoints need about "
                f"{human_bytes(count * size)} ({count} x {human_bytes(size)}); the run may stop "
                "on a full disk: free space, or set trainer.keep_checkpoints / "
                "trainer.ckpt_interval, or another hydra.run.dir"
            )

    def disk_full(self, e: BaseException) -> DiskFullError:
        """A disk-full error anywhere in the run, naming the last good checkpoint."""
        return as_disk_full(e, "the run's files", self.run_dir).with_checkpoint(self.last)


def flat_config(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out |= flat_config(v, f"{prefix}{k}.")
        return out
    return {prefix.rstrip("."): node}


def check_same_config(saved: dict[str, Any], current: dict[str, Any], path: Path) -> str:
    """UserInputError (one line) when the checkpoint a resume found is of a run started with
    another config (the keys a resume may change aside); the extension it makes, if any, as
    "trainer.max_steps=40 -> 60" ("" for none)."""
    old, new = flat_config(saved), flat_config(current)
    changed = [k for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
    differ = [k for k in changed if not k.startswith((*RESUMABLE_CHANGES, *EXTENDING))]
    if differ:
        shown = ", ".join(f"{k}={old[k]} (now {new[k]})" for k in differ[:4])
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise UserInputError(
            f"the run dir's checkpoint {path} is of a run with another config: {shown}{more}; "
            "rerun with the same overrides to resume it, or use another hydra.run.dir, or "
            "trainer.resume=never to start over there"
        )
    return ", ".join(f"{k}={old[k]} -> {new[k]}" for k in changed if k.startswith(EXTENDING))
