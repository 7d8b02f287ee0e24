"""Benchmark the fused gated activations against eager, torch.compile and Liger-Kernel.

    python -m bench.kernels [--quick | --case ACT:NxF ...] [--append] [--out DIR]

CUDA only (exits with code 2 without it). For each activation and [tokens, F] shape, bf16:
forward and forward+backward times two ways: as the device runs them (median of CUDA-graph
replays, triton.testing.do_bench_cudagraph, over enough rotated copies of the inputs that they do
not sit in L2: the "device" columns, which the goals judge) and as a Python call takes them
(triton.testing.do_bench: where launching is slower than the kernel, that is the host's time:
the "wall" columns); the host's microseconds to issue one forward+backward; achieved GB/s counted
from the minimal traffic of the op (device time), that as a percentage of the device-to-device
copy bandwidth measured in the same run; and peak extra memory. With quack-kernels on an SM90+
GPU, each case also times the up-projection GEMM with the gated activation in its epilogue
(QuACK) against the same GEMM followed by our fused op and by eager PyTorch ("gemm+" rows). Writes
results/kernels/bench_<gpu>.json and .md, rewritten after every case; an implementation that
raises gets a row with its error and the others go on. --append keeps the rows already in the
JSON and skips their cases (bench.gpu_check restarts it that way after a crash).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.kernel_cases import (
    ACTIVATIONS,
    BLOCK_IMPLS,
    BLOCK_VARIANTS,
    COPY_BUFFER_BYTES,
    bench_shapes,
    case_name,
    error_row,
    gated_bytes,
    gbps,
    markdown_report,
    moved_mb,
    parse_block,
    parse_case,
    percent_of,
    slugify,
)
from ffn_variants.activations import gated_torch
from harness.fmt import or_na

# ---------------------------------------------------------------------------------------------
# CUDA measurement
# ---------------------------------------------------------------------------------------------


def _median_ms(fn: Callable[[], object]) -> float:
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))


def _peak_mib(fn: Callable[[], object]) -> float:
    """Peak memory allocated during one call, above what was allocated before it, in MiB."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    result = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del result
    return peak / 2**20


def copy_bandwidth_gbps(n_bytes: int = COPY_BUFFER_BYTES) -> float:
    """Device-to-device copy bandwidth: dst.copy_(src) reads and writes n_bytes each."""
    src = torch.empty(n_bytes // 2, dtype=torch.bfloat16, device="cuda").normal_()
    dst = torch.empty_like(src)
    ms = _median_ms(lambda: dst.copy_(src))
    return gbps(2 * src.numel() * src.element_size(), ms)


def _liger_functions() -> dict[str, Callable]:
    """Liger's fused two-tensor functions by our activation name, if liger_kernel imports."""
    try:
        from liger_kernel.ops.geglu import LigerGELUMulFunction
        from liger_kernel.ops.swiglu import LigerSiLUMulFunction
    except ImportError:
        return {}
    # Liger's GEGLU is the tanh approximation; it has no exact-erf variant.
    return {"silu": LigerSiLUMulFunction.apply, "gelu_tanh": LigerGELUMulFunction.apply}


def _implementations(
    activation: str, liger: dict[str, Callable]
) -> dict[str, tuple[str, Callable]]:
    """name -> (input form, f(*inputs)); form 'pair' takes (g, u), 'packed' takes (packed,)."""
    from ffn_variants.kernels import gated_activation, gated_activation_packed

    # A fresh compiled function per case (dynamo is reset by the caller): no recompile limit,
    # no dynamic-shape kernels.
    compiled = torch.compile(functools.partial(gated_torch, activation=activation), dynamic=False)
    impls = {
        "triton (pair)": ("pair", lambda g, u: gated_activation(g, u, activation)),
        "triton (packed)": ("packed", lambda p: gated_activation_packed(p, activation)),
        # As the gated FFN calls it: the backward writes d_packed over the packed input.
        "triton (packed, in-place)": (
            "packed",
            lambda p: gated_activation_packed(p, activation, inplace_backward=True),
        ),
        "eager": ("pair", lambda g, u: gated_torch(g, u, activation)),
        "torch.compile": ("pair", compiled),
    }
    if activation in liger:
        impls["liger"] = ("liger", liger[activation])
    return impls


def rotated_inputs(
    form: str, packed: torch.Tensor, g: torch.Tensor, u: torch.Tensor, n_sets: int
) -> list[tuple]:
    """`n_sets` copies of a case's inputs in the form an implementation takes, each in storage of
    its own: every implementation reads each set from memory (DRAM once the sets outgrow L2),
    none from a storage another set just brought into the cache. The packed form's copy is also
    what its in-place backward overwrites; Liger's backward writes into its saved inputs."""
    if form == "packed":
        return [(packed.clone().requires_grad_(),) for _ in range(n_sets)]
    return [(g.clone().requires_grad_(), u.clone().requires_grad_()) for _ in range(n_sets)]


REPLAY_MS = 20  # CUDA-graph replays per timing: about 20 of a graph of ~1 ms (16 sets)


def rotations(set_bytes: int) -> int:
    """Copies of a case's inputs to cycle through so that each call reads from memory, not L2:
    enough to fill twice the L2 cache (at most 16)."""
    if not torch.cuda.is_available():
        return 1
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20)
    return max(1, min(16, -(-2 * l2 // max(set_bytes, 1))))


def _device_ms(fn: Callable[[], object], n_sets: int) -> float:
    """Median device time of one call, from CUDA-graph replays of `fn` (which makes n_sets calls,
    one per rotated input set)."""
    from triton.testing import do_bench_cudagraph

    return float(do_bench_cudagraph(fn, rep=REPLAY_MS, return_mode="median")) / n_sets


def _host_us(fn: Callable[[], object], calls: int = 20) -> float:
    """Microseconds the host takes to issue one call (few enough that the queue never fills)."""
    fn()
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    issued = time.perf_counter() - began
    torch.cuda.synchronize()
    return issued / calls * 1e6


def _measure(fn: Callable, sets: list[tuple], dout: torch.Tensor) -> dict[str, float]:
    """Device and wall times, host cost and peak extra memory of forward, and forward +
    backward; `sets`: rotated copies of the inputs."""
    inputs = sets[0]

    def fwd():
        return fn(*inputs)

    def fwdbwd():
        return torch.autograd.grad(fn(*inputs), inputs, dout)

    def fwd_all():
        for s in sets:
            fn(*s)

    def fwdbwd_all():
        for s in sets:
            torch.autograd.grad(fn(*s), s, dout)

    out = {
        "fwd_ms": _median_ms(fwd),
        "fwdbwd_ms": _median_ms(fwdbwd),
        "fwd_peak_mib": _peak_mib(fwd),
        "fwdbwd_peak_mib": _peak_mib(fwdbwd),
        "host_us": _host_us(fwdbwd),
    }
    for key, all_sets in (("fwd_device_ms", fwd_all), ("fwdbwd_device_ms", fwdbwd_all)):
        try:
            out[key] = _device_ms(all_sets, len(sets))
        except Exception as e:  # a capture the implementation does not allow: wall time only
            out[key] = None
            print(f"  no CUDA-graph time: {type(e).__name__}: {str(e)[:120]}", flush=True)
    return out


def bench_case(
    activation: str,
    n_rows: int,
    n_cols: int,
    copy_gbps: float,
    liger: dict[str, Callable],
    dtype: torch.dtype = torch.bfloat16,
    device: str = "cuda",
) -> list[dict]:
    """One row per implementation for act(g) * u over [n_rows, n_cols]."""
    torch._dynamo.reset()
    gen = torch.Generator(device=device).manual_seed(0)
    packed = torch.randn(n_rows, 2 * n_cols, device=device, dtype=dtype, generator=gen)
    g, u = packed[:, :n_cols].contiguous(), packed[:, n_cols:].contiguous()
    dout = torch.randn(n_rows, n_cols, device=device, dtype=dtype, generator=gen)
    reference = gated_torch(g.float(), u.float(), activation)
    elem = torch.empty((), dtype=dtype).element_size()
    fwd_bytes, fwdbwd_bytes = (gated_bytes(n_rows, n_cols, elem, b) for b in (False, True))
    rows = []
    n_sets = rotations(3 * n_rows * n_cols * elem)
    for name, (form, fn) in _implementations(activation, liger).items():
        try:
            sets = rotated_inputs(form, packed, g, u, n_sets)
            with torch.no_grad():
                max_err = (fn(*sets[0]).float() - reference).abs().max().item()
            measured = _measure(fn, sets, dout)
        except Exception as e:  # one implementation failing loses its row, not the table
            error = (
                f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            )
            rows.append(error_row(activation, n_rows, n_cols, name, error[:300]))
            print(f"{activation:>9} {n_rows}x{n_cols:<6} {name:<26} failed: {error}", flush=True)
            continue
        r = {
            "activation": activation,
            "n_rows": n_rows,
            "n_cols": n_cols,
            "impl": name,
            **measured,
            "max_err": max_err,
            **moved_mb(n_rows, n_cols, elem),
            "error": None,
        }
        timed = {d: r[f"{d}_device_ms"] or r[f"{d}_ms"] for d in ("fwd", "fwdbwd")}
        r["fwd_gbps"], r["fwdbwd_gbps"] = (
            gbps(fwd_bytes, timed["fwd"]),
            gbps(fwdbwd_bytes, timed["fwdbwd"]),
        )
        r["rotated_sets"] = n_sets
        r["fwd_pct_copy"] = percent_of(r["fwd_gbps"], copy_gbps)
        r["fwdbwd_pct_copy"] = percent_of(r["fwdbwd_gbps"], copy_gbps)
        rows.append(r)
        print(
            f"{activation:>9} {n_rows}x{n_cols:<6} {name:<26} device fwd "
            f"{or_na(r['fwd_device_ms'], '.4f')} ms ({r['fwd_pct_copy']:.0f}% copy), fwd+bwd "
            f"{or_na(r['fwdbwd_device_ms'], '.4f')} ms; wall fwd+bwd {r['fwdbwd_ms']:.4f} ms; "
            f"host {r['host_us']:.0f} us/call",
            flush=True,
        )
    return rows


def bench_block(
    activation: str, n_rows: int, n_cols: int, d_model: int, dtype: torch.dtype = torch.bfloat16
) -> list[dict]:
    """One row per implementation of the whole gated FFN block over [n_rows, d_model]: device
    and wall times of forward and forward + backward (weights and input grads), the host's us,
    and the output's error against the torch implementation's (the same weights)."""
    from ffn_variants.quack_ffn import unavailable
    from ffn_variants.variants import build_ffn

    torch._dynamo.reset()
    variant = BLOCK_VARIANTS[activation]
    torch.manual_seed(0)
    reference = build_ffn(variant, d_model, n_cols, impl="torch").cuda().to(dtype)
    x = torch.randn(n_rows, d_model, device="cuda", dtype=dtype)
    dout = torch.randn(n_rows, d_model, device="cuda", dtype=dtype)
    expected = reference(x).float()
    rows, label = [], f"{activation} ffn"
    n_sets = rotations(n_rows * (d_model + 3 * n_cols) * 2)
    for impl in BLOCK_IMPLS:
        name = f"block: {impl}"
        if impl == "quack" and (why := unavailable(x.device)) is not None:
            rows.append(error_row(label, n_rows, n_cols, name, why[:300]))
            continue
        try:
            ffn = build_ffn(variant, d_model, n_cols, impl=impl).cuda().to(dtype)
            ffn.load_state_dict(reference.state_dict())
            params = tuple(ffn.parameters())
            sets = [(x.clone().requires_grad_(), *params) for _ in range(n_sets)]

            def block(xi, *_params, ffn=ffn):
                return ffn(xi)

            with torch.no_grad():
                max_err = (ffn(x).float() - expected).abs().max().item()
            measured = _measure(block, sets, dout)
        except Exception as e:  # one implementation failing loses its row, not the table
            error = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
            rows.append(error_row(label, n_rows, n_cols, name, error[:300]))
            print(f"{label} {n_rows}x{n_cols} {name} failed: {error}", flush=True)
            continue
        row = {"activation": label, "n_rows": n_rows, "n_cols": n_cols, "impl": name}
        row |= {**measured, "max_err": max_err, "d_model": d_model, "error": None}
        row |= dict.fromkeys(("fwd_gbps", "fwdbwd_gbps", "fwd_pct_copy", "fwdbwd_pct_copy"))
        rows.append(row | moved_mb(n_rows, n_cols))
        print(
            f"{label} {n_rows}x{n_cols} (d_model {d_model}) {name:<14} device fwd+bwd "
            f"{or_na(row['fwdbwd_device_ms'], '.4f')} ms, wall {row['fwdbwd_ms']:.4f} ms",
            flush=True,
        )
    return rows


def run_metadata(copy_gbps: float, dtype: torch.dtype) -> dict:
    import triton

    try:
        liger_version = importlib.metadata.version("liger-kernel")
    except importlib.metadata.PackageNotFoundError:
        liger_version = "not installed"
    return {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "liger_kernel": liger_version,
        "cuda": torch.version.cuda,
        "dtype": str(dtype).removeprefix("torch."),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "copy_gbps": copy_gbps,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.kernels",
        description="Time the fused gated activations against eager, torch.compile and Liger.",
    )
    parser.add_argument("--quick", action="store_true", help="two shapes instead of seven")
    parser.add_argument(
        "--case",
        action="append",
        type=parse_case,
        metavar="ACT:NxF",
        help="time only these cases (repeatable), e.g. --case silu:8192x1024",
    )
    parser.add_argument(
        "--block",
        action="append",
        type=parse_block,
        metavar="ACT:NxFxD",
        help="also time the whole gated FFN (torch, triton, quack) at N tokens, width F, d_model "
        "D, e.g. --block silu:16384x2048x768",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the rows already in the output JSON and skip their cases",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results/kernels"), help="output folder for JSON/MD"
    )
    parser.add_argument(
        "--activations",
        nargs="+",
        default=list(ACTIVATIONS),
        help=f"activations to time (default: {' '.join(ACTIVATIONS)})",
    )
    return parser.parse_args(argv)


def planned_cases(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    if args.case:
        return list(args.case)
    return [(a, n, f) for n, f in bench_shapes(args.quick) for a in args.activations]


def write_results(stem: Path, meta: dict, rows: list[dict]) -> None:
    """The JSON and the markdown table, written whole (each replaces its file atomically)."""
    for path, text in (
        (stem.with_suffix(".json"), json.dumps({"meta": meta, "rows": rows}, indent=2)),
        (stem.with_suffix(".md"), markdown_report(meta, rows)),
    ):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmark needs a CUDA GPU and found none", file=sys.stderr)
        return 2
    from ffn_variants.kernels import kernels_interpreted, triton_available
    from ffn_variants.kernels.names import check_activation

    cases = planned_cases(args)
    for name in {a for a, _, _ in cases}:
        check_activation(name)
    if not triton_available("cuda"):
        print("benchmark needs Triton, which is not installed", file=sys.stderr)
        return 2
    if kernels_interpreted():
        print("TRITON_INTERPRET is set: unset it to time compiled kernels", file=sys.stderr)
        return 2

    dtype = torch.bfloat16
    copy_gbps = copy_bandwidth_gbps()
    torch.cuda.empty_cache()
    print(f"{torch.cuda.get_device_name()}: device-to-device copy {copy_gbps:.0f} GB/s")
    liger = _liger_functions()
    meta = run_metadata(copy_gbps, dtype)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench_{slugify(meta['gpu'])}"
    rows: list[dict] = []
    if args.append and stem.with_suffix(".json").exists():
        rows = json.loads(stem.with_suffix(".json").read_text())["rows"]
    done = {(r["activation"], r["n_rows"], r["n_cols"]) for r in rows}
    for activation, n_rows, n_cols in cases:
        if (activation, n_rows, n_cols) in done:
            continue
        try:
            rows.extend(bench_case(activation, n_rows, n_cols, copy_gbps, liger, dtype))
        except Exception as e:  # the case's set-up (say, out of memory): one row says so
            error = f"{type(e).__name__}: {str(e).strip()[:300]}"
            rows.append(error_row(activation, n_rows, n_cols, "*", error))
            print(f"{case_name(activation, n_rows, n_cols)} failed: {error}", flush=True)
        torch.cuda.empty_cache()  # this case's buffers are out of scope now
        write_results(stem, meta, rows)
    for activation, n_rows, n_cols, d_model in args.block or []:
        if (f"{activation} ffn", n_rows, n_cols) in done:
            continue
        try:
            rows.extend(bench_block(activation, n_rows, n_cols, d_model, dtype))
        except Exception as e:  # the block's set-up: one row says so
            error = f"{type(e).__name__}: {str(e).strip()[:300]}"
            rows.append(error_row(f"{activation} ffn", n_rows, n_cols, "block: *", error))
        torch.cuda.empty_cache()
        write_results(stem, meta, rows)
    write_results(stem, meta, rows)
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
