"""Text from a trained run: python -m harness.tools.sample <run dir or checkpoint> [options]

    python -m harness.tools.sample outputs/swiglu-s0/<time> --prompt "ROMEO:" --num-samples 3

Reads the newest checkpoint (or the one named), rebuilds the model and the tokenizer the run used
from the config the checkpoint carries (offline: the tokenizer files in data/), and prints the
samples. Bad input is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from ffn_variants.model import GPT
from harness.checkpoint import list_checkpoints, load_file, load_latest
from harness.cli import fail
from harness.config import TrainConfig
from harness.data.tokenizer import get_encoding
from harness.errors import UserInputError
from harness.sampling import prompt_tokens, sample_texts


def load_run(path: Path) -> tuple[Path, dict[str, Any]]:
    """(checkpoint, its state) for a run dir, a checkpoints dir or a checkpoint file."""
    if path.is_file():
        state = load_file(path)
        if state is None or "model" not in state:
            raise UserInputError(f"{path} is not a checkpoint this harness wrote")
        return path, state
    if not path.is_dir():
        raise UserInputError(f"{path} does not exist; give a run dir or a checkpoint file")
    checkpoints = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    found = load_latest(checkpoints)  # the newest that loads; a corrupt one is named and skipped
    if found is None:
        if not (path / "summary.json").is_file() and not (path / ".hydra").is_dir():
            raise UserInputError(
                f"{path} is not a run dir (no checkpoints/, summary.json or .hydra/)"
            )
        present = list_checkpoints(checkpoints)
        if present:
            raise UserInputError(
                f"every checkpoint in {checkpoints} is corrupt or truncated "
                f"({', '.join(p.name for p in present)}); resume the run to write a new one"
            )
        raise UserInputError(
            f"{path} holds no checkpoint (trainer.checkpoint=false, or the run failed before its "
            "first); train it, or resume it, to get one"
        )
    return found


def rebuild(state: dict[str, Any]) -> tuple[TrainConfig, GPT]:
    """The run's typed config and its model, with the checkpoint's weights, on the CPU."""
    saved = OmegaConf.create(state["config"])
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainConfig), saved))
    model = GPT(cfg.model, cfg.resolved_ffn)
    model.load_state_dict(state["model"])
    return cfg, model.eval()


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m harness.tools.sample",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("run", type=Path, help="a run dir, its checkpoints/ or a checkpoint file")
    ap.add_argument("--prompt", default=None, help="text to continue (none: a new document)")
    ap.add_argument("--num-samples", type=int, default=3, help="samples to draw")
    ap.add_argument("--max-new-tokens", type=int, default=100, help="tokens per sample")
    ap.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
    ap.add_argument(
        "--top-k",
        type=int,
        default=200,
        help="sample among the k likeliest tokens (1: greedy; the vocabulary size or more: all)",
    )
    ap.add_argument("--seed", type=int, default=0, help="the sampling generator's seed")
    return ap.parse_args(argv)


def check_options(args: argparse.Namespace) -> None:
    """UserInputError (one line) for a value the sampler cannot use."""
    if args.num_samples < 1 or args.max_new_tokens < 1:
        raise UserInputError(
            f"--num-samples {args.num_samples} and --max-new-tokens {args.max_new_tokens}: each "
            "must be at least 1"
        )
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise UserInputError(
            f"--temperature {args.temperature}: give a finite number >= 0 (0: greedy; 1: the "
            "model's own distribution; an infinite one would be uniform noise)"
        )
    if args.top_k is not None and args.top_k < 1:
        raise UserInputError(
            f"--top-k {args.top_k}: give at least 1 (1: greedy; the default 200; the vocabulary "
            "size or more samples from all of it)"
        )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.getcwd() not in sys.path:  # a run of a user's FFN (ffn.target) imports from here
        sys.path.append(os.getcwd())
    try:
        check_options(args)
        path, state = load_run(args.run)
        cfg, model = rebuild(state)
        enc = get_encoding(cfg.data.tokenizer, cfg.data.cache_dir)
        tokens = prompt_tokens(enc, args.prompt, cfg.model.block_size, args.max_new_tokens)
    except (UserInputError, ValueError) as e:
        fail(" ".join(str(e).split()))
    torch.manual_seed(args.seed)
    texts = sample_texts(
        model,
        enc,
        tokens,
        num_samples=args.num_samples,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )
    step = state.get("train_state", {}).get("step", "?")
    start = f"prompt {args.prompt!r}" if args.prompt else "a new document"
    print(f"{cfg.ffn.name}-s{cfg.seed} at step {step} ({path}), {start}:")
    for i, text in enumerate(texts):
        print(f"--- sample {i}\n{args.prompt or ''}{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
