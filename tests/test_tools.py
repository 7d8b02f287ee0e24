"""The command-line tools: the sizes table (make sizes) and its errors, make help and make bench."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

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


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args, f"PYTHON={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_help_lists_every_documented_target():
    documented = re.findall(r"^([a-z][a-z-]*):.*## ", (REPO / "Makefile").read_text(), re.M)
    listed = [line.split()[0] for line in make("help").stdout.splitlines()]
    assert listed == documented and {"train", "test", "sweep", "report", "bench"} <= set(listed)
    assert make().stdout == make("help").stdout  # plain `make` prints the list


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU path of make bench")
def test_make_bench_skips_the_gpu_benchmark_on_a_cpu():
    plan = make("-n", "bench").stdout
    assert "skipping bench-kernels" in plan and "bench.kernels" not in plan
    assert "bench.telemetry" in plan and "bench.parallel_sweep" in plan
