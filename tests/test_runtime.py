"""The planned number of steps and the CPU peak."""

from __future__ import annotations

import math

import pytest
import torch

from harness.config import TrainerConfig
from harness.runtime import planned_steps


def test_planned_steps_from_a_token_budget():
    assert planned_steps(TrainerConfig(max_steps=7), 10**6, 1024) == 7
    budget = TrainerConfig(max_steps=None, tokens_per_param=1.5)
    assert planned_steps(budget, 100_000, 1024) == math.ceil(150_000 / 1024)
    assert planned_steps(budget, 1, 1024) == 1


def test_the_cpu_peak_is_calibrated_once_and_held(tmp_path, monkeypatch):
    """MFU against a peak that stands still: calibrated once per machine key (the best of its
    readings), then held for every later run until make peak recalibrates; it drifted upwards
    as a best-so-far (0.073 -> 0.097 TFLOP/s over one afternoon)."""
    from harness import mfu

    path = tmp_path / "peaks.json"
    readings = iter([1.0e11, 0.8e11, 0.9e11, 5.0e11, 0.1e11, 0.2e11, 0.3e11, 0.2e11, 0.25e11])
    measure = lambda: next(readings)  # noqa: E731
    assert mfu.kept_peak("cpu | 2 threads", measure, path)[:2] == (1.0e11, 3)
    assert mfu.kept_peak("cpu | 2 threads", measure, path)[:2] == (1.0e11, 3)  # held: no reading
    assert mfu.kept_peak("cpu | 2 threads", measure, path, recalibrate=True)[0] == 5.0e11
    assert mfu.kept_peak("cpu | 1 threads", measure, path)[0] == 0.3e11  # another key
    path.write_text("not json")
    with pytest.raises((StopIteration, RuntimeError)):  # an unreadable file: calibrated afresh
        mfu.kept_peak("cpu | 2 threads", measure, path)

    monkeypatch.setenv("FFN_VARIANTS_PEAKS", str(tmp_path / "kept.json"))
    calls = []
    monkeypatch.setattr(
        mfu, "measure_matmul_flops", lambda device, dtype: calls.append(1) or 2.0e11
    )
    first = mfu.device_peak(torch.device("cpu"), torch.float32)
    second = mfu.device_peak(torch.device("cpu"), torch.float32)
    assert first.flops == second.flops == 2.0e11 and len(calls) == mfu.CALIBRATION_READINGS
    assert second.source.startswith("calibrated: ") and "make peak recalibrates" in second.source
    assert str(tmp_path / "kept.json") in second.source
