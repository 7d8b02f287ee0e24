"""Fixtures shared by the test modules; plain helpers live in tests/helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Triton kernels run on CPU tensors through its interpreter; the flag must be set before the
# kernel module is first imported, by whichever test module imports it first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def token_cache(tmp_path_factory) -> Path:
    """One data cache root for the whole session: the GPT-2 ranks are fetched with pip once,
    the fixture corpus is tokenized once."""
    from harness.data.tokenizer import ensure_r50k_ranks

    root = tmp_path_factory.mktemp("data")
    ensure_r50k_ranks(root)
    return root


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda skip, saying why, where there is no CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (make gpu-check runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
