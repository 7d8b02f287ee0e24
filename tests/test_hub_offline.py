"""The hub loader, run offline: a folder laid out as fineweb-edu's sample-10BT is on the hub
(parquet shards under sample/10BT/, the dataset card's YAML `configs:` naming them) goes through
the real `datasets.load_dataset(path, name=subset, split=..., streaming=...)` with a token cap:
the cache manifest, the count at the cap, the document boundaries, and a reuse of the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.data.cache import prepare_tokens
from harness.data.config import DataConfig
from harness.data.tokenizer import get_encoding
from tests.helpers import REPO, TINY_MODEL, fresh_cache

pd = pytest.importorskip("pandas")
SUBSET, CAP = "sample-10BT", 3000
CARD = f"""---
license: odc-by
configs:
- config_name: {SUBSET}
  data_files:
  - split: train
    path: sample/10BT/*.parquet
---
# A hub-shaped fixture
"""


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two parquet shards of paragraphs from the fixture text, with fineweb-edu's columns."""
    root = tmp_path_factory.mktemp("fineweb-edu-like")
    text = (REPO / "tests" / "fixtures" / "tiny.txt").read_text()
    docs = [p.strip() for p in text.split("\n\n") if p.strip()]
    (root / "README.md").write_text(CARD)
    shards = root / "sample" / "10BT"
    shards.mkdir(parents=True)
    half = len(docs) // 2
    for i, part in enumerate((docs[:half], docs[half:])):
        pd.DataFrame(
            {
                "text": part,
                "id": [f"<urn:{i}:{j}>" for j in range(len(part))],
                "url": [f"https://example.org/{i}/{j}" for j in range(len(part))],
                "score": np.linspace(2.5, 4.5, len(part)),
            }
        ).to_parquet(shards / f"00{i}_00000.parquet")
    return root, docs


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def hub_config(root: Path, cache: Path, streaming: bool) -> DataConfig:
    return DataConfig(
        name="fineweb_like",
        source="hub",
        path=str(root),
        subset=SUBSET,
        split="train",
        streaming=streaming,
        max_tokens=CAP,
        tokenizer="r50k_8k",
        cache_dir=str(cache),
    )


def expected_tokens(docs: list[str], cache: Path) -> np.ndarray:
    """Every document's tokens followed by EOT, in shard order, cut at the cap."""
    enc = get_encoding("r50k_8k", cache)
    stream = [t for d in docs for t in [*enc.encode_ordinary(d), enc.eot_token]]
    return np.asarray(stream[:CAP], dtype=np.uint16)


@pytest.mark.parametrize("streaming", [True, False])
def test_hub_shaped_folder_tokenizes_to_the_cap_with_document_ends(
    hub_dir, token_cache, tmp_path, streaming, capsys
):
    root, docs = hub_dir
    cache = fresh_cache(token_cache, tmp_path / "cache")
    data = prepare_tokens(hub_config(root, cache, streaming), progress=True)
    manifest = data.manifest
    assert manifest["source"] == "hub" and manifest["counts"]["total_tokens"] == CAP
    assert manifest["reached_max_tokens"] is True
    info = manifest["source_info"]
    assert (info["hub_id"], info["subset"], info["split"]) == (str(root), SUBSET, "train")
    on_disk = json.loads((data.directory / "manifest.json").read_text())
    assert on_disk["files"]["train.bin"]["bytes"] == 2 * len(data.train)
    want, eot = expected_tokens(docs, cache), manifest["eot_token"]
    ends = [*(np.flatnonzero(want == eot) + 1), len(want)]
    pieces = [want[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True) if b > a]
    held = [d["index"] for s in ("tune", "test") for d in manifest["held_out"][s]]
    assert manifest["split"]["by"] == "documents" and len(held) == round(len(pieces) * 0.05)
    train = [p for i, p in enumerate(pieces) if i not in held]
    np.testing.assert_array_equal(np.asarray(data.train), np.concatenate(train))
    np.testing.assert_array_equal(np.asarray(data.val), np.concatenate([pieces[i] for i in held]))
    assert manifest["counts"]["documents"] == len(pieces)  # the last one cut at the cap
    capsys.readouterr()
    again = prepare_tokens(hub_config(root, cache, streaming), progress=True)
    assert "using token cache" in capsys.readouterr().err
    assert again.directory == data.directory
    np.testing.assert_array_equal(np.asarray(again.train), np.asarray(data.train))


def test_train_py_runs_on_the_hub_path_offline(hub_dir, token_cache, tmp_path):
    root, _ = hub_dir
    cache = fresh_cache(token_cache, tmp_path / "cache")
    args = [
        "data.source=hub",
        f"data.path={root}",
        f"data.subset={SUBSET}",
        "data.streaming=true",
        f"data.max_tokens={CAP}",
        "data.name=fineweb_like",
        "data.val_fraction=0.25",  # 20 short documents held out: 10 per slice, enough windows
        f"data.cache_dir={cache}",
        *TINY_MODEL,
        "trainer.max_steps=2",
        "trainer.batch_size=2",
        "logger.mode=disabled",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["data"]["name"] == "fineweb_like"
    assert 0 < summary["data"]["train_tokens"] < CAP  # the split's train part of the capped set
