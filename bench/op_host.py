"""The host's cost per call of the fused gated op in eager mode, against eager PyTorch.

    python -m bench.op_host [--shape 16x64] [--rounds 7] [--calls 2000]

At a model's small shapes a call's cost is the host's (Python, dispatch, autograd), not the
device's: this times forward+backward of act(gate) * value per call, eager `silu(g) * u` against
`ffn_variants.kernels.gated_activation_packed` (on a CPU its PyTorch path; on CUDA the Triton
kernels), interleaved round by round, and prints and saves the medians (results/op_host/).
Run it with nothing else running.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def eager(packed: torch.Tensor) -> torch.Tensor:
    gate, value = packed.chunk(2, dim=-1)
    return F.silu(gate) * value


def fused(packed: torch.Tensor) -> torch.Tensor:
    from ffn_variants.kernels import gated_activation_packed

    return gated_activation_packed(packed, "silu")


def per_call_us(fn, packed: torch.Tensor, calls: int) -> float:
    grad = torch.ones(*packed.shape[:-1], packed.shape[-1] // 2, device=packed.device)
    sync = torch.cuda.synchronize if packed.is_cuda else (lambda: None)
    sync()
    began = time.perf_counter()
    for _ in range(calls):
        x = packed.detach().requires_grad_()
        fn(x).backward(grad)
    sync()
    return (time.perf_counter() - began) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.op_host", description=__doc__)
    ap.add_argument("--shape", default="16x64", help="rows x F of the product (packed: 2F)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("results/op_host"))
    args = ap.parse_args(argv)
    rows, f = (int(v) for v in args.shape.split("x"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    packed = torch.randn(rows, 2 * f, device=device)
    subjects = {"eager silu(g)*u": eager, "gated_activation_packed": fused}
    for fn in subjects.values():  # warm-up: imports, first dispatch
        per_call_us(fn, packed, 50)
    times: dict[str, list[float]] = {k: [] for k in subjects}
    for _ in range(args.rounds):
        for name, fn in subjects.items():
            times[name].append(per_call_us(fn, packed, args.calls))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["gated_activation_packed"] / medians["eager silu(g)*u"]
    result = {
        "shape": [rows, f],
        "device": device,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "us_per_call_median": medians,
        "us_per_call_rounds": times,
        "ratio_fused_over_eager": ratio,
    }
    for name, us in medians.items():
        print(f"{name:<26} {us:8.1f} us per forward+backward")
    print(f"ratio {ratio:.2f}x ({device}, [{rows} x {f}], load {os.getloadavg()[0]:.2f})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"op_host_{device}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
