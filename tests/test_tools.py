"""The command-line tools: the sizes table (make sizes) and its errors."""

from __future__ import annotations

import subprocess
import sys

from harness.tools.sizes import sizes_report
from tests.helpers import REPO, compose


def whole_model_row(table: str, variant: str) -> str:
    """The variant's row of the second table (whole-model counts)."""
    return [ln for ln in table.splitlines() if ln.startswith(f"| {variant} |")][-1]


def test_sizes_table_prints_the_ffn_share_of_training_flops():
    tiny = sizes_report(compose([]))  # the default run: model=tiny with the 8k-token BPE
    assert whole_model_row(tiny, "relu").endswith("| 26.7% |")  # the CPU FFN regime
    assert "| swiglu | 344 |" in tiny  # gated width, 2/3 rule rounded to a multiple of 8
    full_vocab = sizes_report(compose(["model.vocab_size=50304"]))
    assert whole_model_row(full_vocab, "relu").endswith("| 7.1% |")  # the 50k head dominates


def test_sizes_of_an_unknown_model_is_a_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "harness.tools.sizes", "model=huge"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[0]]
        and "unknown model 'huge'" in proc.stderr
    )
