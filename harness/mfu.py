"""Model FLOP utilisation: the model's training FLOPs per second over the device's peak.

MFU = tokens/s x training FLOPs per token (GPT.flops_per_token()["train"]) / peak FLOP/s. The peak
of a known GPU running bf16 comes from its datasheet (dense tensor-core bf16, fp32 accumulate; no
sparsity). Any other device or precision, a CPU included, gets a calibrated peak: the best rate of
a square matmul in the run's compute dtype over a few readings, measured once per machine (its
model, threads, dtype and torch) and then held for every run until `make peak` recalibrates,
labelled "calibrated: ...". MFU then compares across runs and sweeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
# A measured peak is kept per machine (CPU model, threads, dtype, torch): the best reading so far.
# Load only ever slows a matmul, so the best reading is the one nearest the truth, and a run on a
# busy machine no longer moves the MFU of the runs after it.
PEAKS_FILE = "FFN_VARIANTS_PEAKS"  # env: where the kept peaks live


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


def peaks_path() -> Path:
    """The file of kept peaks: $FFN_VARIANTS_PEAKS, else ~/.cache/ffn-variants/peaks.json."""
    if os.environ.get(PEAKS_FILE):
        return Path(os.environ[PEAKS_FILE])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ffn-variants" / "peaks.json"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else the platform's processor string."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_key(label: str, dtype_name: str) -> str:
    return f"{label} | {torch.get_num_threads()} threads | {dtype_name} | torch {torch.__version__}"


CALIBRATION_READINGS = 3  # a calibration's matmul readings; the best is kept


def _load_peaks(path: Path) -> dict:
    try:
        peaks = json.loads(path.read_text())
        return peaks if isinstance(peaks, dict) else {}
    except (OSError, ValueError):
        return {}


def kept_peak(
    key: str, measure: Callable[[], float], path: Path, recalibrate: bool = False
) -> tuple[float, int, str]:
    """(the calibrated peak of `key`, its readings, the date it was calibrated), kept in `path`.

    A machine's peak is calibrated once (the best of CALIBRATION_READINGS readings) and then
    held: every later run, and every run of a sweep, measures its MFU against the same number,
    so MFU neither drifts with the load of the moment nor differs between runs compared side by
    side. `recalibrate` (make peak) measures again; an unreadable file starts afresh."""
    peaks = _load_peaks(path)
    entry = peaks.get(key)
    if isinstance(entry, dict) and entry.get("flops") and not recalibrate:
        return float(entry["flops"]), int(entry.get("readings", 1)), str(entry.get("since"))
    best = max(measure() for _ in range(CALIBRATION_READINGS))
    since = time.strftime("%Y-%m-%d %H:%M")
    peaks[key] = {"flops": best, "readings": CALIBRATION_READINGS, "since": since}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".peaks-")
        with os.fdopen(fd, "w") as f:
            json.dump(peaks, f, indent=1)
        os.replace(tmp, path)
    return best, CALIBRATION_READINGS, since


def device_peak(device: torch.device, dtype: torch.dtype, recalibrate: bool = False) -> Peak:
    """The peak FLOP/s that MFU is measured against, and where it comes from: a GPU's datasheet,
    else this machine's calibrated matmul rate (kept_peak)."""
    if device.type == "cuda" and dtype == torch.bfloat16:
        name = torch.cuda.get_device_name(device)
        if (found := table_peak(name)) is not None:
            return Peak(found[1] * 1e12, f"datasheet: {found[0]} dense bf16")
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    dtype_name = str(dtype).removeprefix("torch.")
    path = peaks_path()
    flops, count, since = kept_peak(
        machine_key(label, dtype_name),
        lambda: measure_matmul_flops(device, dtype),
        path,
        recalibrate,
    )
    return Peak(
        flops,
        f"calibrated: {label} {dtype_name} matmul, best of {count} readings on {since} "
        f"({torch.get_num_threads()} threads; kept in {path}; make peak recalibrates)",
    )


def mfu(tokens_per_s: float, train_flops_per_token: float, peak: Peak) -> tuple[float, float]:
    """(MFU as a fraction, achieved model TFLOP/s)."""
    achieved = tokens_per_s * train_flops_per_token
    return achieved / peak.flops, achieved / 1e12
