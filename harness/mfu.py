"""Model FLOP utilisation: the model's training FLOPs per second over the device's peak.

MFU = tokens/s x training FLOPs per token (GPT.flops_per_token()["train"]) / peak FLOP/s. The peak
of a known GPU running bf16 comes from its datasheet (dense tensor-core bf16, fp32 accumulate; no
sparsity). Any other device or precision, a CPU included, gets a peak measured at start-up: the
best rate of a square matmul in the run's compute dtype, labelled "measured".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

# Dense bf16 TFLOP/s by GPU name (first match wins, so the more specific names come first).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    # H100 NVL datasheet: 1,671 TFLOPS bf16 with sparsity per GPU, half of it dense.
    ("H100 NVL", 835.0),
    # H100 datasheet (nvidia.com/en-us/data-center/h100): PCIe 1,513 with sparsity.
    ("H100 PCIe", 756.0),
    # H100 SXM: 1,979 with sparsity (the same datasheet); torchtitan tools/utils.py uses 989.
    ("H100", 989.0),
    # H200 datasheet (nvidia.com/en-us/data-center/h200): NVL (PCIe card) 1,671 with sparsity.
    ("H200 NVL", 835.0),
    # The same datasheet, H200 SXM: 1,979 with sparsity, as H100 SXM.
    ("H200", 989.0),
    # DGX B200 / HGX B200: 4.5 PFLOPS bf16 with sparsity per GPU; torchtitan uses 2,250 dense.
    ("B200", 2250.0),
    # A100 datasheet (nvidia.com/en-us/data-center/a100): 312 bf16 dense, SXM and PCIe.
    ("A100", 312.0),
    # L40S datasheet: 733 TFLOPS bf16 with sparsity -> 362 dense (before L4: "L4" is in "L40S").
    ("L40S", 362.0),
    # L4 datasheet: 242 TFLOPS bf16 with sparsity -> 121 dense.
    ("L4", 121.0),
    # Ada whitepaper, GeForce RTX 4090: 165.2 bf16 tensor TFLOPS with fp32 accumulate, dense.
    ("RTX 4090", 165.2),
)
MEASURE_SECONDS = 0.25  # matmuls timed at start-up for a device not in the table


@dataclass(frozen=True)
class Peak:
    flops: float  # per second
    source: str  # where the number comes from: "datasheet: <name>" or "measured: <how>"

    @property
    def tflops(self) -> float:
        return self.flops / 1e12


def table_peak(device_name: str) -> tuple[str, float] | None:
    """(matched name, dense bf16 TFLOP/s) for a GPU name in the table, else None."""
    return next(((k, v) for k, v in PEAK_BF16_TFLOPS if k in device_name), None)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_flops(device: torch.device, dtype: torch.dtype) -> float:
    """The best FLOP/s of an n x n matmul on `device` in `dtype` over ~MEASURE_SECONDS."""
    n = 4096 if device.type == "cuda" else 512
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):  # warm-up: allocator, kernel selection, threads
        a @ b
    best, deadline = 0.0, time.perf_counter() + MEASURE_SECONDS
    while time.perf_counter() < deadline:
        _synchronize(device)
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def device_peak(device: torch.device, dtype: torch.dtype) -> Peak:
    """The peak FLOP/s that MFU is measured against, and where it comes from."""
    if device.type == "cuda" and dtype == torch.bfloat16:
        name = torch.cuda.get_device_name(device)
        if (found := table_peak(name)) is not None:
            return Peak(found[1] * 1e12, f"datasheet: {found[0]} dense bf16")
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    flops = measure_matmul_flops(device, dtype)
    dtype_name = str(dtype).removeprefix("torch.")
    return Peak(flops, f"measured: {label} {dtype_name} matmul at start-up")


def mfu(tokens_per_s: float, train_flops_per_token: float, peak: Peak) -> tuple[float, float]:
    """(MFU as a fraction, achieved model TFLOP/s)."""
    achieved = tokens_per_s * train_flops_per_token
    return achieved / peak.flops, achieved / 1e12
