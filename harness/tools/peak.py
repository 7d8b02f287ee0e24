"""Calibrate this machine's peak matmul rate, the number MFU is measured against.

    python -m harness.tools.peak [--device cpu|cuda] [--dtype float32|bfloat16]   # make peak

A machine's peak is calibrated once, at its first run, and held (harness.mfu.kept_peak): MFU then
compares across runs and sweeps. Run this on quiet cores (nothing else running) to measure it
again, after a hardware or torch change, or when the first calibration ran on a busy machine.
"""

from __future__ import annotations

import argparse
import sys

import torch

from harness.mfu import device_peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.tools.peak", description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args(argv)
    peak = device_peak(torch.device(args.device), getattr(torch, args.dtype), recalibrate=True)
    print(f"peak: {peak.tflops:.3g} TFLOP/s ({peak.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
