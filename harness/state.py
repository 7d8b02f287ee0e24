"""TrainState: where a run stands; with the model and optimizer, all a checkpoint needs."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from harness import distributed


def rng_state() -> dict[str, Any]:
    """This process's RNG states: the CPU's, and CUDA's where it is in use."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# Fields that older checkpoints lack; every other one a checkpoint must have.
ADDED_LATER = frozenset({"val_bpb", "best_val_bpb", "wall_time_s", "paused_s"})


@dataclass
class TrainState:
    step: int = 0
    tokens: int = 0  # tokens trained on, over all processes
    val_loss: float = math.nan
    best_val_loss: float = math.inf
    val_bpb: float = math.nan  # bits per UTF-8 byte of the validation text
    best_val_bpb: float = math.inf
    train_loss: float = math.nan
    skipped_steps: int = 0
    wandb_id: str | None = None
    world_size: int = 1  # processes of a data-parallel run; a resume needs the same number
    # The run's clock at the checkpoint, over every segment so far: wall time, and the part of it
    # spent evaluating and checkpointing. A resumed run's times continue from these.
    wall_time_s: float = 0.0
    paused_s: float = 0.0

    def state_dict(self) -> dict[str, Any]:
        """The fields, and the RNG states of this moment of every process (a collective: every
        rank calls it), in rank order."""
        return {**dataclasses.asdict(self), "rng": distributed.gather(rng_state())}

    def load_state_dict(self, state: dict[str, Any], rank: int = 0) -> None:
        for f in dataclasses.fields(self):
            if f.name in ADDED_LATER and f.name not in state:
                continue  # a checkpoint from before the field existed: keep its default
            setattr(self, f.name, state[f.name])
        set_rng_state(state["rng"][rank])


class Throughput:
    """Tokens per second of the training steps over the window since the last reading.

    Time inside paused() (evaluations, checkpoints) is left out, so a window holding an
    evaluation reads like any other. The first window of a process holds the warm-up (first
    allocations, torch.compile's compilation): read() returns None for it.
    """

    def __init__(self) -> None:
        self.start, self.tokens, self.excluded = time.perf_counter(), 0, 0.0
        self.excluded_total = 0.0
        self.warm = False

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - began
            self.excluded += spent
            self.excluded_total += spent

    def read(self) -> float | None:
        now = time.perf_counter()
        rate = self.tokens / max(now - self.start - self.excluded, 1e-9)
        warm, self.warm = self.warm, True
        self.start, self.tokens, self.excluded = now, 0, 0.0
        return rate if warm else None
