"""Matched parameter counts: the 2/3 rule, rounding, and the 1% bound at every model config."""

import pytest

from ffn_variants.counting import count_flops, count_params
from ffn_variants.model import GPTConfig
from ffn_variants.resolved import FFNSpec
from ffn_variants.sizing import (
    format_table,
    matched_d_ff,
    matching_table,
)
from ffn_variants.variants import VARIANTS
from tests.helpers.models import MODEL_CONFIGS, build_gpt, model_config


def test_counts_by_hand():
    assert count_params("relu", 10, 40) == 2 * 10 * 40
    assert count_params("swiglu", 10, 40) == 3 * 10 * 40
    assert count_params("swiglu", 10, 40, bias=True) == 3 * 10 * 40 + 2 * 40 + 10
    assert count_flops("relu", 10, 40).total == 2 * 2 * 10 * 40 + 40
    assert count_flops("swiglu", 10, 40).total == 2 * 3 * 10 * 40 + 40 * (4 + 1)


def test_two_thirds_rule_at_gpt2_shape():
    # Shazeer's Table 1: d_ff 3072 dense, 2048 gated at d_model 768.
    assert matched_d_ff("swiglu", 768, 3072, multiple_of=256) == 2048
    assert matched_d_ff("relu", 768, 3072, multiple_of=256) == 3072


def test_rounding_picks_the_closer_multiple():
    # 2/3 * 512 = 341.3: 340 (-0.39%) beats 344 (+0.78%) at multiple_of=4.
    assert matched_d_ff("geglu", 128, 512, multiple_of=4) == 340
    assert matched_d_ff("geglu", 128, 512, multiple_of=8) == 344


def test_a_coarse_multiple_falls_back_to_the_coarsest_half_that_matches():
    # multiples of 64, 32 and 16 are all more than 1% off 341.3; 344 (8) is the first within.
    assert matched_d_ff("swiglu", 128, 512, multiple_of=64) == 344
    assert matched_d_ff("swiglu", 128, 512, multiple_of=12) == 342  # 12: too far; 6: 342


def test_impossible_match_fails_clearly():
    with pytest.raises(ValueError, match="within 1%.*at any width.*larger model.d_ff"):
        matched_d_ff("swiglu", 1, 1, multiple_of=1)


def test_match_none_keeps_the_dense_width():
    assert matched_d_ff("swiglu", 128, 512, match="none") == 512


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("match", ["params", "flops"])
def test_every_variant_within_one_percent_at_every_model_config(path, match):
    cfg = model_config(path)
    rows = matching_table(cfg.d_model, cfg.d_ff, cfg.multiple_of, match=match)
    assert {r.variant for r in rows} == set(VARIANTS)
    for r in rows:
        diff = r.params_diff if match == "params" else r.flops_diff
        assert abs(diff) <= 0.01, (r.variant, diff)
        # The configured multiple, or (where none is within 1%: cpu_d64, FLOPs at tiny) half of it.
        assert r.d_ff % (cfg.multiple_of // 2) == 0
    assert "| swiglu |" in format_table(rows)


def test_model_counts_agree_with_sizing():
    cfg = GPTConfig(
        n_layer=2, n_head=2, d_model=32, d_ff=128, block_size=16, vocab_size=100, multiple_of=2
    )
    dense = build_gpt(cfg, FFNSpec(name="relu")).param_counts()
    for name in VARIANTS:
        counts = build_gpt(cfg, FFNSpec(name=name)).param_counts()
        assert counts["ffn_per_layer"] == count_params(name, 32, counts["d_ff"])
        assert abs(counts["ffn"] / dense["ffn"] - 1) <= 0.01
        assert abs(counts["total"] / dense["total"] - 1) <= 0.01
