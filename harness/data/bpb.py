"""Bits per byte: the UTF-8 bytes each token stands for, and a loss in bits per byte of text.

A loss per token depends on the tokenizer: GPT-2's BPE cut to 8k tokens splits the same text into
more, shorter tokens than the full 50k one, so their nats per token do not compare. Per byte of
the text they do (nanochat's val_bpb): bpb = (sum of the loss over the tokens, in nats) / ln 2 /
(UTF-8 bytes of the text those tokens decode to).

The byte count comes from a table of each token id's byte length, made once per tokenizer and
kept in the token cache beside train.bin and val.bin (token_bytes.npy). A token that stands for
no text of the corpus (the <|endoftext|> between documents, any special token) has 0 bytes; its
position counts in neither sum, as in nanochat.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

TOKEN_BYTES_FILE = "token_bytes.npy"


def token_byte_lengths(enc: Any) -> np.ndarray:
    """int32 [enc.n_vocab]: the UTF-8 bytes of each token id's text; 0 for special tokens and for
    ids that are no token."""
    special = {enc.encode_single_token(s) for s in enc.special_tokens_set}
    lengths = np.zeros(enc.n_vocab, dtype=np.int32)
    for token in range(enc.n_vocab):
        if token in special:
            continue
        try:
            lengths[token] = len(enc.decode_single_token_bytes(token))
        except KeyError:  # a gap in the vocabulary
            pass
    return lengths


def write_token_bytes(directory: Path, enc: Any) -> np.ndarray:
    """The table of `enc`, written to directory/token_bytes.npy through a temp file and a rename
    (two runs opening one cache at once each write a whole file)."""
    lengths = token_byte_lengths(enc)
    tmp = directory / f".{TOKEN_BYTES_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, lengths)
    os.replace(tmp, directory / TOKEN_BYTES_FILE)
    return lengths


def load_token_bytes(directory: Path, n_vocab: int) -> np.ndarray | None:
    """The cached table, or None where it is missing, unreadable or not n_vocab long."""
    try:
        lengths = np.load(directory / TOKEN_BYTES_FILE, allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = lengths.shape == (n_vocab,) and lengths.dtype == np.int32 and (lengths >= 0).all()
    return lengths if ok else None


def nats_and_bytes(
    nats: torch.Tensor, token_bytes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss summed over the positions that stand for text, their UTF-8 bytes): `nats` is the
    loss of each target token, `token_bytes` the byte length of each target (same shape)."""
    counted = token_bytes > 0
    return torch.where(counted, nats, 0).sum(), token_bytes.sum()


def bits_per_byte(nats_sum: float, n_bytes: int) -> float:
    """A loss summed in nats over some text, per UTF-8 byte of that text, in bits."""
    return nats_sum / math.log(2) / n_bytes if n_bytes else math.nan
