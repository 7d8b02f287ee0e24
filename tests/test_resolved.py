"""The FFN is resolved once (ffn_variants.resolved) and handed on: the model builds from the
value without looking a name up, matching or counting again."""

import pytest

import ffn_variants.counting as counting
import ffn_variants.probe as probe
import ffn_variants.registry as registry
import ffn_variants.sizing as sizing
from ffn_variants.model import GPT, GPTConfig
from ffn_variants.registry import Variant
from ffn_variants.resolved import FFNSpec, ResolvedFFN, resolve_ffn
from tests.helpers import compose

SHAPE = dict(n_layer=2, n_head=2, d_model=32, d_ff=128, multiple_of=2, vocab_size=64)


def _refuse(*args, **kwargs):
    raise AssertionError("resolved again downstream of resolve_ffn")


def test_gpt_builds_from_the_value_without_lookup_matching_counting_or_probing(monkeypatch):
    cfg = GPTConfig(**SHAPE)
    ffn = resolve_ffn(FFNSpec(name="swiglu"), cfg)
    for module, name in [
        (registry, "get_variant"),
        (registry, "factory_options"),
        (sizing, "matched_d_ff"),
        (counting, "_params"),
        (counting, "_flops"),
        (probe, "probe_ffn"),
    ]:
        monkeypatch.setattr(module, name, _refuse)
    model = GPT(cfg, ffn)
    counts = model.param_counts()
    assert counts["d_ff"] == ffn.d_ff == 86  # the 2/3 rule at d_ff 128, multiple_of 2
    assert counts["ffn_per_layer"] == ffn.params == 3 * 32 * 86
    assert model.flops_per_token()["ffn"] == ffn.flops.total
    assert not ffn.mixes_positions


def test_a_value_resolved_for_another_shape_is_refused():
    ffn = resolve_ffn(FFNSpec(name="relu"), GPTConfig(**SHAPE))
    with pytest.raises(ValueError, match="resolved for d_model=32, d_ff=128.*d_ff=256"):
        GPT(GPTConfig(**{**SHAPE, "d_ff": 256}), ffn)


def test_the_width_search_counts_each_width_once(monkeypatch):
    seen: list[int] = []
    real = counting._params

    def recording(variant, d_model, d_ff, bias):
        seen.append(d_ff)
        return real(variant, d_model, d_ff, bias)

    monkeypatch.setattr(counting, "_params", recording)
    ffn = resolve_ffn(FFNSpec(name="geglu"), GPTConfig(**SHAPE))
    gated = [d for d in seen if d != SHAPE["d_ff"]]  # the dense reference's count aside
    assert len(gated) == len(set(gated)) and ffn.d_ff in seen


def test_variants_compare_by_identity_with_no_hand_written_hashing():
    assert "__hash__" not in Variant.__dict__ and "__eq__" not in Variant.__dict__
    assert registry.get_variant("swiglu") is registry.get_variant("swiglu")


def test_the_config_boundary_resolves_the_choice():
    cfg = compose(["ffn=geglu", "model.d_ff=128", "model.d_model=32", "model.n_head=2"])
    assert isinstance(cfg.resolved_ffn, ResolvedFFN)
    assert cfg.resolved_ffn.name == "geglu" and cfg.resolved_ffn.dense_d_ff == 128
    assert cfg.resolved_ffn.d_ff == sizing.matched_d_ff("geglu", 32, 128, cfg.model.multiple_of)
