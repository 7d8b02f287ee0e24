"""Shared pieces: a tiny model and corpus, composing the real config, reading W&B files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Triton kernels run on CPU tensors through its interpreter; the flag must be set before the
# kernel module is first imported, by whichever test module imports it first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parent.parent
TINY_TEXT = REPO / "tests" / "fixtures" / "tiny.txt"


def tiny_overrides(cache_dir: Path, steps: int = 6) -> list[str]:
    """A model and corpus small enough that a run takes about a second on one CPU core."""
    return [
        "data=files",
        f"data.path={TINY_TEXT}",
        "data.name=tiny",
        f"data.cache_dir={cache_dir}",
        "model.n_layer=2",
        "model.n_head=2",
        "model.d_model=32",
        "model.d_ff=128",
        "model.multiple_of=2",
        "model.block_size=32",
        f"trainer.max_steps={steps}",
        f"trainer.eval_interval={max(1, steps // 2)}",
        "trainer.eval_batches=2",
        "trainer.log_interval=2",
        "trainer.batch_size=4",
        "trainer.progress=false",
        "optim.warmup_steps=2",
        "optim.lr=1e-2",
        "logger.mode=offline",
    ]


@pytest.fixture(scope="session")
def token_cache(tmp_path_factory) -> Path:
    """One data cache root for the whole session: the GPT-2 ranks are fetched with pip once,
    the fixture corpus is tokenized once."""
    from harness.data.tokenizer import ensure_r50k_ranks

    root = tmp_path_factory.mktemp("data")
    ensure_r50k_ranks(root)
    return root


def fresh_cache(token_cache: Path, path: Path) -> Path:
    """A new data cache root at `path` with the session's downloads and tokenizer files but no
    token caches: the tokenizing happens again, the fetching does not."""
    for part in ("downloads", "tiktoken"):
        if (token_cache / part).is_dir():
            shutil.copytree(token_cache / part, path / part, dirs_exist_ok=True)
    return path


def compose(overrides: list[str]):
    """The typed config of configs/train.yaml with `overrides`, as train.py would get it."""
    from harness.cli import compose_checked

    return compose_checked(overrides)


def train(overrides: list[str], run_dir: Path):
    """Train in this process as train.py would; returns the RunSummary."""
    from harness.trainer import Trainer

    return Trainer(compose(overrides), run_dir).train()


def run_train(args: list[str], cwd: Path = REPO, timeout: int = 300) -> subprocess.CompletedProcess:
    """python train.py ARGS in a child process."""
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wandb_records(run_dir: Path, kind: str | None = None) -> list[dict]:
    """The records of the offline W&B run(s) under run_dir (or of one offline-run dir), as
    wandb's own reader gives them (`wandb leet inspect --json`); only `kind` ones if given."""
    wandb = Path(sys.executable).parent / "wandb"
    run_dirs = (
        [run_dir]
        if run_dir.name.startswith("offline-run-")
        else sorted((run_dir / "wandb").glob("offline-run-*"))
    )
    records = []
    for d in run_dirs:
        proc = subprocess.run(
            [str(wandb), "leet", "inspect", "--json", str(d)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        records += [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return [r for r in records if kind is None or r["type"] == kind]


def wandb_run(run_dir: Path) -> dict:
    """The run record (name, group, tags, config, job type) of the one W&B run under run_dir."""
    (run,) = wandb_records(run_dir, "run")
    return run["run"]


def wandb_history_keys(run_dir: Path) -> set[str]:
    return {key for r in wandb_records(run_dir, "history") for key in r["history"]["item"]}


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda skip, saying why, where there is no CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (make gpu-check runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
