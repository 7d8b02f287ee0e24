"""The typed config: the tokenizer follows the model unless the user names one."""

from __future__ import annotations

import pytest

from harness.config import tokenizer_for
from harness.errors import UserInputError
from tests.helpers import compose


@pytest.mark.parametrize(
    ("vocab_size", "expected"),
    [
        (8192, "r50k_8k"),
        (10_000, "r50k_8k"),
        (2048, "r50k_2k"),
        (50257, "r50k_base"),
        (50304, "r50k_base"),
    ],
)
def test_auto_takes_the_largest_gpt2_bpe_that_fits_the_vocabulary(vocab_size, expected):
    assert tokenizer_for("auto", vocab_size) == expected


def test_auto_below_the_smallest_cut_says_what_to_set():
    with pytest.raises(ValueError, match="model.vocab_size>=2048"):
        tokenizer_for("auto", 1000)


def test_a_named_tokenizer_is_kept_when_it_fits():
    assert tokenizer_for("r50k_4k", 8192) == "r50k_4k"  # smaller than the model: the user's call
    assert tokenizer_for("gpt2", 50304) == "gpt2"
    assert tokenizer_for("cl100k_base", 8192) == "cl100k_base"  # size known once it is loaded


@pytest.mark.parametrize(
    ("overrides", "tokenizer"),
    [([], "r50k_8k"), (["model=small"], "r50k_base"), (["model=gpt2_124m"], "r50k_base")],
)
def test_each_model_gets_its_tokenizer(overrides, tokenizer):
    assert compose(overrides).data.tokenizer == tokenizer


def test_a_tokenizer_larger_than_the_vocabulary_is_a_one_line_error():
    with pytest.raises(UserInputError, match="data.tokenizer=auto") as e:
        compose(["data.tokenizer=r50k_base"])  # 50,257 tokens into tiny's 8192 rows
    assert "\n" not in str(e.value) and "r50k_8k for this model" in str(e.value)
