"""Shared test helpers: a tiny model and corpus, composing the real config, training in this
process or a child, and reading W&B's offline files with wandb's own reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY_TEXT = REPO / "tests" / "fixtures" / "tiny.txt"


# A model small enough that a run takes about a second on one CPU core.
TINY_MODEL = [
    "model.n_layer=2",
    "model.n_head=2",
    "model.d_model=32",
    "model.d_ff=128",
    "model.multiple_of=2",
    "model.block_size=32",
]


def tiny_overrides(cache_dir: Path, steps: int = 6) -> list[str]:
    """A model and corpus small enough that a run takes about a second on one CPU core."""
    return [
        "data=files",
        f"data.path={TINY_TEXT}",
        "data.name=tiny",
        f"data.cache_dir={cache_dir}",
        *TINY_MODEL,
        f"trainer.max_steps={steps}",
        f"trainer.eval_interval={max(1, steps // 2)}",
        "trainer.eval_tokens=128",
        "trainer.log_interval=2",
        "trainer.batch_size=4",
        "trainer.progress=false",
        "optim.warmup_steps=2",
        "optim.lr=1e-2",
        "logger.mode=offline",
    ]


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


def run_train(
    args: list[str], cwd: Path = REPO, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """python train.py ARGS in a child process (with `env` added to this one's environment)."""
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env is not None else None,
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
