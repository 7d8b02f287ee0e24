"""What the benchmarks share for timing: the device sync, the machine's load, quartiles."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_average() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages, where the platform has them."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def quartile(values: Sequence[float], q: float) -> float:
    """The q = 0.25, 0.5 or 0.75 quartile (inclusive method)."""
    return float(statistics.quantiles(values, n=4, method="inclusive")[int(q * 4) - 1])
