"""Bits per byte: the bytes each token stands for, a bpb computed by hand, the table cached with
the token cache, and a uniform predictor whose bpb is exact under two tokenizers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from harness.data import DataConfig, prepare_tokens
from harness.data.bpb import TOKEN_BYTES_FILE, bits_per_byte, nats_and_bytes, token_byte_lengths
from harness.data.tokenizer import get_encoding
from harness.state import TrainState
from tests.helpers import TINY_TEXT, compose, fresh_cache, tiny_overrides, wandb_history_keys

TOKENIZERS = ["r50k_base", "r50k_8k"]


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_token_bytes_add_up_to_the_texts_utf8_bytes(tokenizer, token_cache):
    enc = get_encoding(tokenizer, token_cache)
    table = token_byte_lengths(enc)
    assert table.shape == (enc.n_vocab,) and table[enc.eot_token] == 0
    for text in (TINY_TEXT.read_text(encoding="utf-8"), "Ophélie — naïve ☃ 日本"):
        ids = enc.encode_ordinary(text)
        assert int(table[ids].sum()) == len(text.encode("utf-8"))


def test_bpb_by_hand(token_cache):
    """'Hello, world!' in GPT-2's BPE is Hello | , | ' world' | ! (5 + 1 + 6 + 1 = 13 bytes);
    losses of 1, 2, 3 and 4 bits, then an end-of-text target (no text: not counted)."""
    enc = get_encoding("r50k_base", token_cache)
    ids = [*enc.encode_ordinary("Hello, world!"), enc.eot_token]
    table = torch.from_numpy(token_byte_lengths(enc))
    assert table[ids].tolist() == [5, 1, 6, 1, 0]
    nats = torch.tensor([1.0, 2.0, 3.0, 4.0, 7.0], dtype=torch.float64) * math.log(2)
    nats_sum, n_bytes = nats_and_bytes(nats, table[ids])
    assert nats_sum.item() == pytest.approx(10 * math.log(2)) and n_bytes.item() == 13
    assert bits_per_byte(nats_sum.item(), n_bytes.item()) == pytest.approx(10 / 13)
    assert math.isnan(bits_per_byte(1.0, 0))


def test_the_table_is_cached_with_the_token_cache_and_remade_when_missing(token_cache, tmp_path):
    root = fresh_cache(token_cache, tmp_path / "data")
    cfg = DataConfig(
        name="tiny", source="files", path=str(TINY_TEXT), cache_dir=str(root), tokenizer="r50k_8k"
    )
    data = prepare_tokens(cfg, progress=False)
    path = data.directory / TOKEN_BYTES_FILE
    expected = token_byte_lengths(get_encoding("r50k_8k", root))
    np.testing.assert_array_equal(np.load(path), expected)
    np.testing.assert_array_equal(data.token_bytes, expected)
    for damage in (path.unlink, lambda: path.write_bytes(b"not an array")):
        damage()  # a cache from before the table existed, or a damaged table
        again = prepare_tokens(cfg, progress=False)
        assert again.directory == data.directory
        np.testing.assert_array_equal(again.token_bytes, expected)
        np.testing.assert_array_equal(np.load(path), expected)


def test_a_uniform_predictor_has_the_bpb_its_counts_give_under_two_tokenizers(
    token_cache, tmp_path
):
    """One model (vocabulary 50,304, every weight 0, so every logit is 0: loss ln V per token)
    on the same text under two tokenizers: bpb = (counted targets) * log2 V / (their bytes),
    with the targets and bytes counted here from the validation batches by decoding them."""
    from harness.evaluation import validation_metrics
    from harness.trainer import Trainer

    vocab = 50304
    bpb = {}
    for tokenizer in TOKENIZERS:
        overrides = [*tiny_overrides(token_cache), f"data.tokenizer={tokenizer}"]
        overrides += [f"model.vocab_size={vocab}", "logger.mode=disabled"]
        trainer = Trainer(compose(overrides), tmp_path / tokenizer)
        with torch.no_grad():
            for p in trainer.model.parameters():
                p.zero_()
        metrics, documents = validation_metrics(
            trainer.model, trainer.data, trainer.device, trainer.autocast
        )
        (document,) = documents.values()  # one text file: one piece of it per slice
        assert document["tokens"] == trainer.data.val_windows.n_tokens
        assert document["loss"] == pytest.approx(metrics["val/loss"], rel=1e-9)
        enc = get_encoding(tokenizer, token_cache)
        n_targets = n_bytes = 0
        for _, y in trainer.data.val_windows:
            for row in y.tolist():
                text = [t for t in row if t != enc.eot_token]
                n_targets += len(text)
                n_bytes += len(enc.decode_bytes(text))
        assert metrics["val/loss"] == pytest.approx(math.log(vocab), rel=1e-6)
        assert trainer.data.info["val_bytes"] == n_bytes
        bpb[tokenizer] = metrics["val/bpb"]
        assert bpb[tokenizer] == pytest.approx(n_targets * math.log2(vocab) / n_bytes, rel=1e-6)
    # The 8k cut splits the text into shorter tokens: more of them per byte, a higher bpb here.
    assert bpb["r50k_8k"] > bpb["r50k_base"]


def test_bpb_and_outlier_statistics_reach_metrics_summary_and_wandb(token_cache, tmp_path):
    from tests.helpers import train

    summary = train(["ffn=swiglu", *tiny_overrides(token_cache, steps=4)], tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val/loss" in r]
    assert [r["step"] for r in evals] == [0, 2, 4]
    assert all(0 < r["val/bpb"] < 20 and "val/best_bpb" in r for r in evals)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["final_val_bpb"] == pytest.approx(evals[-1]["val/bpb"])
    assert saved["best_val_bpb"] == pytest.approx(min(r["val/bpb"] for r in evals))
    assert summary.final_val_bpb == saved["final_val_bpb"]
    assert saved["data"]["val_bytes"] > saved["data"]["val_tokens"] > 0
    logged = next(r for r in records if "train/loss" in r)
    keys = wandb_history_keys(tmp_path)
    for layer in (0, 1):
        for key in (f"act/L{layer}/product/kurtosis", f"act/L{layer}/gate_value/alignment"):
            assert key in logged and key in keys, key
    assert {"val/bpb", "val/best_bpb"} <= keys


def test_a_checkpoint_from_before_bpb_resumes_with_its_defaults():
    state = TrainState(step=7, val_loss=3.0)
    saved = state.state_dict()
    for key in ("val_bpb", "best_val_bpb"):
        del saved[key]
    loaded = TrainState()
    loaded.load_state_dict(saved)
    assert loaded.step == 7 and loaded.val_loss == 3.0
    assert math.isnan(loaded.val_bpb) and loaded.best_val_bpb == math.inf
    del saved["step"]
    with pytest.raises(KeyError):
        TrainState().load_state_dict(saved)  # the other fields stay required
