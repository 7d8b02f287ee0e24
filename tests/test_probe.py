"""The pre-flight probe: a causal mixing FFN passes, one that reads later positions is refused."""

from __future__ import annotations

import sys

import pytest

from ffn_variants.probe import probe_ffn
from ffn_variants.registry import BUILTIN_NAMES, as_variant, variant_from_target
from tests.helpers import REPO

USER_FFNS = str(REPO / "tests" / "fixtures" / "user_ffn")


@pytest.fixture
def user_ffns():
    sys.path.insert(0, USER_FFNS)
    yield
    sys.path.remove(USER_FFNS)


def test_a_convolution_padded_on_the_right_is_refused(user_ffns) -> None:
    with pytest.raises(ValueError, match="reads later positions.*padded on the\\s+left"):
        probe_ffn(variant_from_target("future", "user_ffns:FutureConv"), 16, 32)


def test_a_causal_convolution_passes_and_mixes_positions(user_ffns) -> None:
    assert probe_ffn(variant_from_target("primer", "user_ffns:PrimerConv"), 16, 32).mixes_positions


@pytest.mark.parametrize("name", sorted(BUILTIN_NAMES))
def test_every_builtin_passes_without_mixing(name: str) -> None:
    assert not probe_ffn(as_variant(name), 16, 32).mixes_positions
