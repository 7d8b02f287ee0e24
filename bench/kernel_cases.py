"""bench.kernels' cases and its pure helpers: the shapes, the minimal traffic, GB/s, the table
(tested on CPU; bench.kernels measures on CUDA)."""

from __future__ import annotations

import argparse
import re

from harness.fmt import or_na

MODEL_FEATURES = (344, 1024, 2048)  # the gated widths of model=tiny, small and gpt2_124m
# LLaMA-style widths, and Liger-Kernel's published SwiGLU shape (B=4, S=2048, F=32768).
LLM_FEATURES = (2752, 11008, 14336, 32768)
QUICK_FEATURES = (2048, 11008)
TOKENS = 8192
# make gpu-check's cases: SwiGLU at the gated widths of model=small (a batch of 32 x 256 tokens)
# and gpt2_124m (16 x 1024), and Liger-Kernel's published shape (B=4, S=2048, F=32768).
ACCEPTANCE_CASES = (
    ("silu", 8192, 1024),
    ("silu", 16384, 2048),
    ("silu", 8192, 32768),
)
ACTIVATIONS = ("silu", "gelu_tanh", "gelu")
# The whole gated FFN (up-projection, act(gate) * value, down-projection), forward + backward,
# per implementation: where QuACK's single-pass gated GEMM competes (make gpu-check: gpt2_124m's
# swiglu block, 16 x 1024 tokens). A block's rows are keyed "<activation> ffn".
BLOCK_CASES = (("silu", 16384, 2048, 768),)
BLOCK_IMPLS = ("torch", "triton", "quack")
BLOCK_VARIANTS = {"silu": "swiglu", "relu": "reglu", "sigmoid": "glu"}
COPY_BUFFER_BYTES = 1 << 30

# ---------------------------------------------------------------------------------------------
# Pure helpers (tested on CPU)
# ---------------------------------------------------------------------------------------------


def gated_bytes(n_rows: int, n_cols: int, elem_size: int, backward: bool = False) -> int:
    """Minimal bytes moved: forward reads g, u and writes out (3 N F); backward adds reads of
    g, u, grad_out and writes of dg, du (5 N F)."""
    fwd = 3 * n_rows * n_cols * elem_size
    return fwd + 5 * n_rows * n_cols * elem_size if backward else fwd


def gbps(n_bytes: int, ms: float) -> float:
    """Throughput in GB/s (1e9 bytes) for `n_bytes` moved in `ms` milliseconds."""
    return n_bytes / (ms * 1e-3) / 1e9


def percent_of(value: float, reference: float) -> float:
    return 100.0 * value / reference


def slugify(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def markdown_report(meta: dict, rows: list[dict]) -> str:
    """Markdown: a header with the run's metadata, then one table row per (case, impl)."""
    lines = [
        f"# Gated activation kernels on {meta['gpu']}",
        "",
        f"- date: {meta['date']}",
        f"- torch {meta['torch']}, triton {meta['triton']}, liger-kernel {meta['liger_kernel']}",
        f"- dtype: {meta['dtype']}; device-to-device copy: {meta['copy_gbps']:.0f} GB/s",
        "- device ms: CUDA-graph replays over rotated inputs (what the kernels take); wall ms: a"
        " Python call between CUDA events (the host's time where launching is slower); host us:"
        " issuing one forward+backward.",
        "- GB/s (from device time) counts the minimal traffic (fwd 3*N*F, bwd 5*N*F elements);"
        " implementations that move more (eager stores act(g)) show an effective rate.",
        "",
        "| activation | N x F | impl | fwd device ms | fwd wall ms | fwd GB/s | fwd % copy "
        "| fwd+bwd device ms | fwd+bwd wall ms | fwd+bwd GB/s | fwd+bwd % copy | host us "
        "| peak fwd MiB | peak fwd+bwd MiB | max err | error |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['activation']} | {r['n_rows']} x {r['n_cols']} | {r['impl']} "
            f"| {or_na(r.get('fwd_device_ms'), '.4f')} | {or_na(r['fwd_ms'], '.4f')} "
            f"| {or_na(r['fwd_gbps'], '.0f')} | {or_na(r['fwd_pct_copy'], '.1f')} "
            f"| {or_na(r.get('fwdbwd_device_ms'), '.4f')} | {or_na(r['fwdbwd_ms'], '.4f')} "
            f"| {or_na(r['fwdbwd_gbps'], '.0f')} | {or_na(r['fwdbwd_pct_copy'], '.1f')} "
            f"| {or_na(r.get('host_us'), '.0f')} "
            f"| {or_na(r['fwd_peak_mib'], '.1f')} | {or_na(r['fwdbwd_peak_mib'], '.1f')} "
            f"| {or_na(r['max_err'], '.2e')} | {(r.get('error') or '').replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def bench_shapes(quick: bool) -> list[tuple[int, int]]:
    features = QUICK_FEATURES if quick else MODEL_FEATURES + LLM_FEATURES
    return [(TOKENS, f) for f in features]


def case_name(activation: str, n_rows: int, n_cols: int) -> str:
    """'silu:8192x1024', the form --case takes."""
    return f"{activation}:{n_rows}x{n_cols}"


def parse_case(text: str) -> tuple[str, int, int]:
    """'silu:8192x1024' -> ('silu', 8192, 1024)."""
    try:
        activation, shape = text.split(":")
        n_rows, n_cols = (int(v) for v in shape.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--case {text!r}: expected ACTIVATION:NxF, e.g. silu:8192x1024"
        ) from None
    return activation, n_rows, n_cols


def parse_block(text: str) -> tuple[str, int, int, int]:
    """'silu:16384x2048x768' -> ('silu', 16384, 2048, 768)."""
    try:
        activation, shape = text.split(":")
        n_rows, n_cols, d_model = (int(v) for v in shape.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--block {text!r}: expected ACTIVATION:NxFxD, e.g. silu:16384x2048x768"
        ) from None
    if activation not in BLOCK_VARIANTS:
        raise argparse.ArgumentTypeError(
            f"--block {text!r}: the gated blocks are {', '.join(BLOCK_VARIANTS)}"
        )
    return activation, n_rows, n_cols, d_model


def error_row(activation: str, n_rows: int, n_cols: int, impl: str, error: str) -> dict:
    """A row for an implementation (or a whole case, impl '*') that raised: no numbers."""
    keys = ("fwd_ms", "fwdbwd_ms", "fwd_peak_mib", "fwdbwd_peak_mib", "max_err", "host_us")
    keys += ("fwd_device_ms", "fwdbwd_device_ms")
    keys += ("fwd_gbps", "fwdbwd_gbps", "fwd_pct_copy", "fwdbwd_pct_copy")
    row = {"activation": activation, "n_rows": n_rows, "n_cols": n_cols, "impl": impl}
    return {**row, **dict.fromkeys(keys), **moved_mb(n_rows, n_cols), "error": error}


def moved_mb(n_rows: int, n_cols: int, elem_size: int = 2) -> dict[str, float]:
    """The minimal traffic of forward, and of forward + backward, in MB (1e6 bytes)."""
    return {
        "fwd_mb": gated_bytes(n_rows, n_cols, elem_size) / 1e6,
        "fwdbwd_mb": gated_bytes(n_rows, n_cols, elem_size, backward=True) / 1e6,
    }
