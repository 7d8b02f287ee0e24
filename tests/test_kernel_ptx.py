"""The fused kernels compiled for sm_80 and sm_90 with no GPU: 128-bit loads and stores wherever
the rows are 16-byte aligned, and no register spills (bench/kernel_ptx.py does the compiling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ffn_variants.kernels.names import KERNEL_ACTIVATIONS
from ffn_variants.resolved import FFNSpec

pytest.importorskip("triton")
REPO = Path(__file__).resolve().parent.parent
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


def compile_kernels(*args: str) -> list[dict]:
    """python -m bench.kernel_ptx --json ARGS, in a process where the kernels are JIT functions."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.kernel_ptx", "--json", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def every_kernel() -> list[dict]:
    """Each activation x forward/backward x bf16/fp16/fp32 x sm_80/sm_90, at tiny's width."""
    return compile_kernels("--widths", "344", "--arch", "80", "90")


@pytest.fixture(scope="module")
def layouts() -> list[dict]:
    """SwiGLU's kernels at the model configs' and the benchmark's widths, and at 340 (16-byte
    aligned in fp32 only), for bf16 and fp32."""
    from bench.kernel_cases import LLM_FEATURES, MODEL_FEATURES

    widths = [str(f) for f in (340, *MODEL_FEATURES, *LLM_FEATURES)]
    return compile_kernels(
        "--widths",
        *widths,
        "--activations",
        "silu",
        "--dtypes",
        "bf16",
        "fp32",
        "--arch",
        "80",
        "90",
    )


def test_every_kernel_compiles_for_sm80_and_sm90(every_kernel):
    seen = {(r["kernel"], r["activation"], r["dtype"], r["arch"]) for r in every_kernel}
    want = {
        (k, a, d, arch)
        for k in ("forward", "backward")
        for a in KERNEL_ACTIVATIONS
        for d in DTYPE_BYTES
        for arch in (80, 90)
    }
    assert seen == want


def test_aligned_rows_get_128_bit_loads_and_stores_and_nothing_spills(every_kernel):
    for r in every_kernel:
        assert (r["load_bits"], r["store_bits"]) == (128, 128), r
        assert r["spill_bytes"] == 0, r
        assert 0 < r["registers"] <= 128, r


def test_the_launch_is_vectorised_exactly_where_each_half_is_16_byte_aligned(layouts):
    """F * element size divisible by 16: every load and store 128-bit. Otherwise (F = 340 in
    bf16: the value half starts 680 bytes in) the value half is read in 16-bit pieces, which is
    why the model configs round gated widths to a multiple of 8."""
    for r in layouts:
        aligned = r["n_cols"] * DTYPE_BYTES[r["dtype"]] % 16 == 0
        assert ((r["load_bits"], r["store_bits"]) == (128, 128)) == aligned, r
        assert r["spill_bytes"] == 0, r
    assert any(r["n_cols"] == 340 and r["dtype"] == "bf16" for r in layouts)


def test_the_gpu_model_configs_gated_widths_are_16_byte_aligned():
    """tiny, small and gpt2_124m (the CPU ladder's cpu_d64 falls back to 172: no multiple of 8
    is within 1% of 170.7, so on a GPU its value half would be read 64 bits at a time)."""

    from ffn_variants.resolved import resolve_ffn
    from tests.helpers.models import MODEL_CONFIGS, model_config

    for path in [p for p in MODEL_CONFIGS if p.stem in ("tiny", "small", "gpt2_124m")]:
        d_ff = resolve_ffn(FFNSpec(name="swiglu"), model_config(path)).d_ff
        assert d_ff * 2 % 16 == 0, (path.stem, d_ff)
