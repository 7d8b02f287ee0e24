"""The held-out split: whole documents chosen across the corpus, dealt into a tuning and a test
slice, written as train.bin and val.bin and named in the manifest.

``round(documents * val_fraction)`` documents are held out, one from the middle of each of that
many equal strides of the corpus order, so they span it rather than sit at its end. The tuning
slice takes the 1st, 3rd, 5th ... of them and the test slice the 2nd, 4th ...: each spans the
corpus too. val.bin holds the tuning slice's documents, then the test slice's, so each slice is
one contiguous range. A corpus with too few documents to hold out two whole ones is split by
tokens instead (its last ``val_fraction`` of tokens, cut in two halves), and the build says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.config import EvalSlice

SLICES = (EvalSlice.tune, EvalSlice.test)


def held_out_documents(n_docs: int, val_fraction: float) -> list[int] | None:
    """Indices of the held-out documents, spread evenly over the corpus order; None when fewer
    than two could be held out with a training document left (then the split is by tokens)."""
    n_held = round(n_docs * val_fraction)
    if n_held < 2 or n_held >= n_docs:
        return None
    return [int((i + 0.5) * n_docs / n_held) for i in range(n_held)]


def document_names(info: dict[str, Any], n_docs: int) -> list[str]:
    """A name per document: a built-in corpus's titles, a text file's name, else its index."""
    titles = info.get("titles")
    if titles and len(titles) == n_docs:
        return list(titles)
    files = info.get("files")
    if info.get("format") == "text" and files and len(files) == n_docs:
        return [Path(f).name for f in files]
    return [f"document {i}" for i in range(n_docs)]


def _write(all_tokens: np.ndarray, ranges: Sequence[tuple[int, int]], path: Path) -> None:
    with open(path, "wb") as f:
        for start, end in ranges:
            all_tokens[start:end].tofile(f)


def split(directory: Path, doc_ends: Sequence[int], val_fraction: float, info: dict) -> dict:
    """Cut all.bin into train.bin and val.bin; returns the manifest's ``counts``, ``split`` and
    ``held_out`` (each slice's documents: name, index in the corpus, tokens)."""
    ends = np.asarray(doc_ends, dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    n, n_docs = int(ends[-1]), len(ends)
    all_tokens = np.memmap(directory / "all.bin", dtype=np.uint16, mode="r")
    held = held_out_documents(n_docs, val_fraction)
    if held is None:
        cut = min(max(n - round(n * val_fraction), 1), n - 2)
        half = cut + (n - cut) // 2
        train = [(0, cut)]
        pieces = {EvalSlice.tune: [(cut, half)], EvalSlice.test: [(half, n)]}
        slices = {
            s: [{"name": f"tokens {a:,}-{b:,}", "index": None, "tokens": b - a}]
            for s, ((a, b),) in pieces.items()
        }
        how = {"by": "tokens", "val_fraction": val_fraction}
    else:
        names = document_names(info, n_docs)
        chosen = {EvalSlice.tune: held[0::2], EvalSlice.test: held[1::2]}
        held_set = set(held)
        train = [(int(starts[i]), int(ends[i])) for i in range(n_docs) if i not in held_set]
        pieces = {s: [(int(starts[i]), int(ends[i])) for i in idx] for s, idx in chosen.items()}
        slices = {
            s: [
                {"name": names[i], "index": i, "tokens": int(ends[i] - starts[i])}
                for i in chosen[s]
            ]
            for s in SLICES
        }
        how = {"by": "documents", "val_fraction": val_fraction}
    _write(all_tokens, train, directory / "train.bin")
    _write(all_tokens, pieces[EvalSlice.tune] + pieces[EvalSlice.test], directory / "val.bin")
    del all_tokens
    (directory / "all.bin").unlink()
    n_train = sum(b - a for a, b in train)
    counts = {
        "documents": n_docs,
        "train_documents": n_docs - (len(held) if held else 0),
        "val_documents": len(held) if held else 1,
        "train_tokens": n_train,
        "val_tokens": n - n_train,
        "total_tokens": n,
    }
    return {"counts": counts, "split": how, "held_out": {str(s): d for s, d in slices.items()}}


def split_line(name: str, manifest: dict) -> str | None:
    """The one line a token split earns (None for a split by documents)."""
    if manifest.get("split", {}).get("by") != "tokens":
        return None
    c = manifest["counts"]
    return (
        f"data {name}: {c['documents']} document(s) are too few to hold out two whole ones at "
        f"data.val_fraction={manifest['split']['val_fraction']}; the held-out split is the last "
        "tokens instead, cut in two (raise data.val_fraction or add documents to hold out whole "
        "ones)"
    )


def whitespace_ids(enc: Any) -> np.ndarray:
    """bool [n_vocab]: the token ids whose text is whitespace only (spaces, newlines, tabs)."""
    table = np.zeros(enc.n_vocab, dtype=bool)
    for token in range(enc.n_vocab):
        try:
            text = enc.decode_single_token_bytes(token)
        except KeyError:  # a gap in the vocabulary, or a special token
            continue
        table[token] = bool(text) and text.isspace()
    return table


def whitespace_shares(directory: Path, held_out: dict, enc: Any) -> dict[str, float]:
    """The share of whitespace-only tokens in the training split and in each held-out slice."""
    table = whitespace_ids(enc)
    train = np.memmap(directory / "train.bin", dtype=np.uint16, mode="r")
    val = np.memmap(directory / "val.bin", dtype=np.uint16, mode="r")
    manifest = {"held_out": held_out}
    parts = {"train": train, **{k: v.tokens for k, v in held_out_slices(val, manifest).items()}}
    return {k: round(float(table[v].mean()), 4) for k, v in parts.items()}


@dataclass(frozen=True)
class HeldOutSlice:
    """One slice of the held-out split: its tokens and the documents they come from."""

    name: str  # "tune" or "test"
    tokens: np.ndarray
    documents: list[str]
    document_ends: np.ndarray  # token offset within `tokens` after each document


def held_out_slices(val: np.ndarray, manifest: dict) -> dict[str, HeldOutSlice]:
    """The tuning and test slices of a cache's val.bin, as its manifest describes them."""
    out, start = {}, 0
    for s in SLICES:
        docs = manifest["held_out"][str(s)]
        sizes = np.array([d["tokens"] for d in docs], dtype=np.int64)
        end = start + int(sizes.sum())
        names = [d["name"] for d in docs]
        out[str(s)] = HeldOutSlice(str(s), val[start:end], names, sizes.cumsum())
        start = end
    return out
