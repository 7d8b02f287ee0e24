"""The fused kernels compiled for a GPU that is not here: PTX, registers, spills, vector width.

    python -m bench.kernel_ptx [--arch 80 90] [--out results/kernels]

Triton compiles ahead of time for a named target with no device present. Each kernel is compiled
exactly as a launch on that GPU would compile it: the launcher's own arguments (ffn_variants.
kernels.gated.launch_config) for tensors laid out as the FFN lays them out (the packed
[tokens, 2F] projection read in place), specialised by Triton's own JIT binder for the CUDA
backend (the divisibility-by-16 attributes of pointers and ints). From the PTX: the widest global
load and store; from `ptxas -v` (the ptxas Triton ships): registers and spill bytes.

Run with TRITON_INTERPRET unset (the kernels must be JIT functions). Writes ptx.md and ptx.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
ARCHS = (80, 90)
ROWS = 8192
_WIDTH = re.compile(r"(ld|st)\.global(?:\.[a-z]+)*?(?:\.v(\d))?\.(b|f|u|s)(\d+)")


@dataclass
class Compiled:
    kernel: str  # forward or backward
    activation: str
    dtype: str
    arch: int
    n_cols: int
    align: int  # ALIGN the launcher chose (elements)
    load_bits: int  # narrowest global load, in bits per thread: what limits the bandwidth
    store_bits: int
    registers: int
    spill_bytes: int


def narrowest(ptx: str, op: str) -> int:
    """The narrowest global `op` (ld or st) in the PTX, in bits per thread (0 if none)."""
    widths = [int(m[1] or 1) * int(m[3]) for m in _WIDTH.findall(ptx) if m[0] == op]
    return min(widths, default=0)


def ptxas_usage(ptx: str, arch: int, fp_fusion: bool) -> tuple[int, int]:
    """(registers, spill bytes) that `ptxas -v` reports for the PTX."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        fmad = [] if fp_fusion else ["--fmad=false"]
        gpu = sm_arch_from_capability(arch)  # sm_90a for 90, as Triton targets it
        cmd = [
            get_ptxas(arch).path,
            "-v",
            *fmad,
            f"--gpu-name={gpu}",
            str(src),
            "-o",
            str(Path(tmp) / "k.o"),
        ]
        log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    registers = int(re.search(r"Used (\d+) registers", log).group(1))
    spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", log))
    return registers, spills


def launch_tensors(kernel: str, n_rows: int, n_cols: int, dtype: torch.dtype) -> tuple:
    """CPU tensors laid out as the FFN's launch lays them out (only their layout matters)."""
    packed = torch.empty(n_rows, 2 * n_cols, dtype=dtype)
    gate, value = packed[:, :n_cols], packed[:, n_cols:]
    dout = torch.empty(n_rows, n_cols, dtype=dtype)
    if kernel == "forward":
        return gate, value, dout  # out has dout's layout
    return dout, gate, value, gate, value  # the in-place backward writes over gate and value


def compile_kernel(kernel: str, activation: str, dtype: str, arch: int, n_cols: int) -> Compiled:
    """One kernel compiled for sm_<arch> as its launch would compile it, and what it became."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    from ffn_variants.kernels import gated

    fn = gated._gated_fwd_kernel if kernel == "forward" else gated._gated_bwd_kernel
    tensors = launch_tensors(kernel, ROWS, n_cols, DTYPES[dtype])
    _grid, args, kwargs = gated.launch_config(fn, tensors, activation)
    target = GPUTarget("cuda", arch, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(
        backend, kwargs, bound, specialization, options
    )
    source = ASTSource(fn, signature, constexprs, attrs)
    ptx = triton.compile(source, target=target, options=options.__dict__).asm["ptx"]
    registers, spills = ptxas_usage(ptx, arch, kwargs["enable_fp_fusion"])
    return Compiled(
        kernel,
        activation,
        dtype,
        arch,
        n_cols,
        kwargs["ALIGN"],
        narrowest(ptx, "ld"),
        narrowest(ptx, "st"),
        registers,
        spills,
    )


def compile_all(widths: list[int], activations: list[str], dtypes: list[str], archs: list[int]):
    """Every (kernel, activation, dtype, arch, width), compiled; progress on stderr."""
    jobs = [
        (k, a, d, arch, w)
        for w in widths
        for d in dtypes
        for arch in archs
        for a in activations
        for k in ("forward", "backward")
    ]
    results = []
    for i, job in enumerate(jobs, 1):
        print(f"\rcompiling {i}/{len(jobs)}", end="", file=sys.stderr, flush=True)
        results.append(compile_kernel(*job))
    print(file=sys.stderr)
    return results


def markdown(results: list[Compiled]) -> str:
    lines = [
        "# Fused gated-activation kernels, compiled ahead of time (no GPU needed)",
        "",
        "Each kernel compiled as its real launch would be (the FFN's packed [tokens, 2F] layout,",
        "Triton's own JIT specialisation); narrowest global load/store per thread from the PTX;",
        "registers and spills from `ptxas -v`. 128 bits = `ld.global.v4.b32`.",
        "",
        "| F | dtype | sm | kernel | activations | ALIGN | load bits | store bits | registers "
        "| spill bytes |",
        "|---:|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple, list[Compiled]] = {}
    for r in results:
        groups.setdefault((r.n_cols, r.dtype, r.arch, r.kernel), []).append(r)
    for (n_cols, dtype, arch, kernel), rs in groups.items():
        regs = sorted({r.registers for r in rs})
        lines.append(
            f"| {n_cols} | {dtype} | {arch} | {kernel} | {len(rs)} | {rs[0].align} "
            f"| {'/'.join(sorted({str(r.load_bits) for r in rs}))} "
            f"| {'/'.join(sorted({str(r.store_bits) for r in rs}))} "
            f"| {regs[0]}–{regs[-1]} | {max(r.spill_bytes for r in rs)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench.kernel_cases import LLM_FEATURES, MODEL_FEATURES
    from ffn_variants.kernels.names import KERNEL_ACTIVATIONS

    ap = argparse.ArgumentParser(
        prog="python -m bench.kernel_ptx", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--arch", type=int, nargs="+", default=list(ARCHS))
    ap.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=[*MODEL_FEATURES, *LLM_FEATURES],
        help="gated widths F (default: the kernel benchmark's)",
    )
    ap.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    ap.add_argument("--activations", nargs="+", default=list(KERNEL_ACTIVATIONS))
    ap.add_argument("--out", type=Path, default=None, help="write ptx.md and ptx.json here")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print(
            "error: unset TRITON_INTERPRET: the kernels must be compiled, not interpreted",
            file=sys.stderr,
        )
        return 2
    results = compile_all(args.widths, args.activations, args.dtypes, args.arch)
    if args.json:
        print(json.dumps([asdict(r) for r in results]))
    else:
        print(markdown(results))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "ptx.md").write_text(markdown(results))
        (args.out / "ptx.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
