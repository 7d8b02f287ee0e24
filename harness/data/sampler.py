"""Batches of random token windows, reproducible from (seed, step, micro_step) alone."""

from __future__ import annotations

import numpy as np
import torch

from harness.errors import UserInputError


class BatchSampler:
    """Random windows of a token array as (x, y) int64 batches, reproducible from the step alone.

    The windows for (seed, step, micro_step) come from ``np.random.default_rng([seed, step,
    micro_step])``: two runs with one seed see the same data order whatever they train, and a run
    resumed at step k draws what an unbroken run draws, with no sampler state to save.

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
    ) -> None:
        if len(tokens) < block_size + 1:
            raise UserInputError(
                f"{len(tokens):,} tokens are too few for block_size={block_size} (need "
                f"{block_size + 1:,}); use more text or a smaller block_size"
            )
        self.tokens = tokens
        self.batch_size = batch_size
        self.block_size = block_size
        self.seed = seed
        rank, world_size = shard
        per_rank = batch_size // world_size
        self._rows = slice(rank * per_rank, (rank + 1) * per_rank)
        self._offsets = np.arange(block_size + 1)

    def get(self, step: int, micro_step: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """x and y = x shifted by one token, int64 on CPU, [batch_size / world_size, block_size]."""
        rng = np.random.default_rng([self.seed, step, micro_step])
        # high is exclusive: the last start leaves room for block_size + 1 tokens.
        starts = rng.integers(0, len(self.tokens) - self.block_size, size=self.batch_size)
        starts = starts[self._rows]
        window = torch.from_numpy(self.tokens[starts[:, None] + self._offsets].astype(np.int64))
        return window[:, :-1].contiguous(), window[:, 1:].contiguous()
