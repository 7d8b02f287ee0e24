"""Training batches drawn without replacement, and the fixed evaluation windows of a slice.

Training: the split is cut into non-overlapping windows of block_size input tokens (plus the one
target token after each). Each pass over the split visits every window once, in an order shuffled
per (seed, pass); sample i of the run is window perm_{i // n}[i % n]. A batch is therefore a
function of (seed, step, micro_step) alone: two runs with one seed see the same data order
whatever they train, and a run resumed at step k draws what an unbroken run draws, with no
sampler state to save. Each pass also shifts the window grid by an offset drawn from (seed, pass),
so a second pass does not cut the text at the same places.

Evaluation: a slice read in non-overlapping windows spread evenly over it, up to a cap; the same
windows at every evaluation of every run, so the loss adds no sampling noise of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from harness.errors import UserInputError


def n_windows(n_tokens: int, block_size: int) -> int:
    """Training windows of block_size tokens in a split of n_tokens (each needs one more, the
    target after it, whatever the pass's offset): what one pass visits."""
    return max(1, (n_tokens - block_size) // block_size)


def _check_length(tokens: np.ndarray, block_size: int, what: str, fix: str) -> None:
    if len(tokens) < block_size + 1:
        raise UserInputError(
            f"{len(tokens):,} tokens in the {what} are too few for block_size={block_size} "
            f"(need {block_size + 1:,}); {fix}"
        )


class BatchSampler:
    """Training batches as (x, y) int64 tensors on CPU, each window once per pass.

    ``accum``: micro-batches per optimizer step (sample indices count across them).
    ``shard=(rank, world_size)``: the batch is drawn whole and this process keeps its share of the
    rows, so the global batch of a data-parallel run is the one a single process would train on.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        batch_size: int,
        block_size: int,
        seed: int,
        shard: tuple[int, int] = (0, 1),
        accum: int = 1,
    ) -> None:
        _check_length(tokens, block_size, "training split", "use more text or a smaller block_size")
        self.tokens = tokens
        self.batch_size = batch_size
        self.block_size = block_size
        self.seed = seed
        self.accum = accum
        # Windows start at offset + k * block_size; the last one needs block_size + 1 tokens
        # whatever the offset (< block_size) is, so n stays the same in every pass.
        self.n_windows = n_windows(len(tokens), block_size)
        rank, world_size = shard
        per_rank = batch_size // world_size
        self._rows = slice(rank * per_rank, (rank + 1) * per_rank)
        self._offsets = np.arange(block_size + 1)
        self._pass: tuple[int, np.ndarray, int] | None = None  # (pass, order, offset)

    def order(self, epoch: int) -> tuple[np.ndarray, int]:
        """Pass `epoch`'s window order (a permutation of range(n_windows)) and grid offset."""
        if self._pass is None or self._pass[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            room = len(self.tokens) - 1 - self.n_windows * self.block_size
            offset = int(rng.integers(0, min(room, self.block_size - 1) + 1))
            self._pass = (epoch, rng.permutation(self.n_windows), offset)
        return self._pass[1], self._pass[2]

    def sample_index(self, step: int, micro_step: int = 0) -> int:
        """The run's index of the first sample of (step, micro_step)."""
        return (step * self.accum + micro_step) * self.batch_size

    def passes(self, steps: int) -> float:
        """Passes over the split after `steps` optimizer steps: windows drawn / windows."""
        return self.sample_index(steps) / self.n_windows

    def starts(self, step: int, micro_step: int = 0) -> np.ndarray:
        """The start token of each row's window (all rows, before sharding)."""
        first = self.sample_index(step, micro_step)
        out = np.empty(self.batch_size, dtype=np.int64)
        for row, i in enumerate(range(first, first + self.batch_size)):
            epoch, k = divmod(i, self.n_windows)
            order, offset = self.order(epoch)
            out[row] = offset + int(order[k]) * self.block_size
        return out

    def get(self, step: int, micro_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """x and y = x shifted by one token, int64 on CPU, [batch_size / world_size, block_size]."""
        starts = self.starts(step, micro_step)[self._rows]
        window = torch.from_numpy(self.tokens[starts[:, None] + self._offsets].astype(np.int64))
        return window[:, :-1].contiguous(), window[:, 1:].contiguous()


class DeviceBatches:
    """The sampler's batches on the training device. On CUDA each comes from pinned memory with
    a non-blocking copy, and the next (step, micro_step) is drawn and copied ahead while the
    current one trains; elsewhere the sampler's tensors are used as they are."""

    def __init__(self, sampler: BatchSampler, device: torch.device, accum: int) -> None:
        self.sampler, self.device, self.accum = sampler, device, accum
        self._ahead: tuple[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None

    def _copy(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.sampler.get(step, micro)
        return (
            x.pin_memory().to(self.device, non_blocking=True),
            y.pin_memory().to(self.device, non_blocking=True),
        )

    def get(self, step: int, micro_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        if self.device.type != "cuda":
            return self.sampler.get(step, micro_step)
        key = (step, micro_step)
        batch = self._ahead[1] if self._ahead and self._ahead[0] == key else self._copy(*key)
        following = (step, micro_step + 1) if micro_step + 1 < self.accum else (step + 1, 0)
        self._ahead = (following, self._copy(*following))
        return batch


class EvalWindows:
    """A held-out slice read in non-overlapping windows spread evenly over it, up to
    `max_tokens` (input tokens): every window when the cap allows, else windows at even strides,
    so a capped evaluation still reads every document of the slice. Batches of up to
    `batch_size` windows, the same ones in the same order every time.

    ``document_ends`` (token offsets after each document) gives every target token its
    document: ``document_of`` (per window and position) and ``document_tokens``."""

    def __init__(
        self,
        tokens: np.ndarray,
        batch_size: int,
        block_size: int,
        max_tokens: int,
        what: str,
        document_ends: np.ndarray | None = None,
    ) -> None:
        fix = "raise data.val_fraction, use more text, or use a smaller block_size"
        _check_length(tokens, block_size, what, fix)
        self.tokens = tokens
        self.batch_size = batch_size
        self.block_size = block_size
        whole = (len(tokens) - 1) // block_size
        self.n_windows = max(1, min(whole, max_tokens // block_size))
        room = len(tokens) - 1 - block_size  # the last start that leaves a whole window
        self.starts = np.arange(self.n_windows, dtype=np.int64) * room // max(self.n_windows - 1, 1)
        self._offsets = np.arange(block_size + 1)
        ends = np.array([len(tokens)]) if document_ends is None else np.asarray(document_ends)
        targets = self.starts[:, None] + 1 + np.arange(block_size)  # each target's position
        self.document_of = torch.from_numpy(np.searchsorted(ends, targets, side="right"))
        self.document_tokens = np.bincount(self.document_of.flatten().numpy(), minlength=len(ends))

    @property
    def n_tokens(self) -> int:
        """Target tokens every evaluation averages over."""
        return self.n_windows * self.block_size

    def __len__(self) -> int:
        return -(-self.n_windows // self.batch_size)

    def batch_rows(self) -> Iterator[slice]:
        for first in range(0, self.n_windows, self.batch_size):
            yield slice(first, min(first + self.batch_size, self.n_windows))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for rows in self.batch_rows():
            starts = self.starts[rows]
            window = torch.from_numpy(self.tokens[starts[:, None] + self._offsets].astype(np.int64))
            yield window[:, :-1].contiguous(), window[:, 1:].contiguous()
