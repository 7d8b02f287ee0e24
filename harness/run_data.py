"""A run's data: its training batches (each window once per pass, a function of seed and step),
the fixed evaluation windows of its held-out slice, and what summary.json says of them."""

from __future__ import annotations

from typing import Any

import torch

from harness import distributed
from harness.config import TrainConfig
from harness.data import BatchSampler, DeviceBatches, EvalWindows, held_out_slices, prepare_tokens
from harness.data.tokenizer import TRUNCATED
from harness.distributed import DistEnv
from harness.errors import UserInputError
from harness.metrics import warn


class RunData:
    """Built before the model: a run that fails here leaves nothing behind."""

    def __init__(self, cfg: TrainConfig, dist: DistEnv, device: torch.device) -> None:
        t, m = cfg.trainer, cfg.model
        if t.batch_size % dist.world_size:
            raise UserInputError(
                f"trainer.batch_size={t.batch_size} does not split over {dist.world_size} "
                f"processes; use a multiple of {dist.world_size}"
            )
        with distributed.main_first():  # one process builds the token cache, the others read it
            data = prepare_tokens(cfg.data, min_tokens=m.block_size + 1, progress=dist.main)
        vocab = int(data.manifest.get("vocab_size", 0))
        if vocab > m.vocab_size:
            smaller = [n for n, size in TRUNCATED.items() if size <= m.vocab_size]
            raise UserInputError(
                f"the tokenizer {cfg.data.tokenizer} has {vocab} tokens but "
                f"model.vocab_size={m.vocab_size}; set model.vocab_size>={vocab}"
                + (f" or data.tokenizer={smaller[-1]}" if smaller else "")
            )
        shard = (dist.rank, dist.world_size)
        self.train = BatchSampler(
            data.train, t.batch_size, m.block_size, cfg.seed, shard, t.grad_accum
        )
        self.batches = DeviceBatches(self.train, device, t.grad_accum)
        eval_slice = cfg.data.eval_slice
        held_out = held_out_slices(data.val, data.manifest)[eval_slice]
        self.val_windows = EvalWindows(
            held_out.tokens,
            t.batch_size,
            m.block_size,
            t.eval_tokens,
            f"held-out slice data.eval_slice={eval_slice}",
            held_out.document_ends,
        )
        self.val_documents = held_out.documents
        # val/bpb's denominator: the UTF-8 bytes of every validation target, looked up once.
        table = torch.from_numpy(data.token_bytes).to(device)
        self.val_target_bytes = [table[y.to(device)] for _, y in self.val_windows]
        self.info: dict[str, Any] = {
            "name": data.manifest.get("name"),
            "train_tokens": len(data.train),
            "eval_slice": str(eval_slice),
            "val_tokens": self.val_windows.n_tokens,
            "val_bytes": int(sum(b.sum() for b in self.val_target_bytes)),
            "split_by": data.manifest["split"]["by"],
            # Each slice's documents by name: what a verdict on this run speaks for.
            "held_out": {k: [d["name"] for d in v] for k, v in data.manifest["held_out"].items()},
            "whitespace_share": data.manifest.get("whitespace_share", {}),
        }

    def plan(self, max_steps: int, tokens_per_step: int, warn_here: bool, budget_key: str) -> None:
        """summary.json's data.epochs: the passes over the training split the run plans (and,
        at the end, made); above one pass, a warning before the first step."""
        planned = self.train.passes(max_steps)  # each window once per pass
        self.info["epochs"] = {"planned": planned, "done": 0.0}
        if planned > 1 and warn_here:
            warn(
                f"this run plans {planned:.1f} passes over the training split of "
                f"{self.info['name']} ({max_steps * tokens_per_step:,} tokens planned, "
                f"{self.info['train_tokens']:,} in the split): a comparison there ranks how fast "
                "each variant memorises it; use a larger corpus (data=fineweb_edu), a higher "
                f"data.max_tokens, or a smaller {budget_key}"
            )

    def epochs(self, steps: int) -> dict[str, float]:
        """data.epochs after `steps` steps."""
        return {**self.info["epochs"], "done": self.train.passes(steps)}
