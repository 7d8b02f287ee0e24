"""make gpu-check without a GPU, and the parts of its report that need none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu_check as gc

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the exit without CUDA")
def test_without_cuda_it_exits_2_with_one_line():
    proc = subprocess.run(
        ["make", "-s", "gpu-check", f"PYTHON={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("make")]
    assert lines == [
        "error: gpu-check needs a CUDA GPU and torch sees none (torch.cuda.is_available() is False)"
    ]


def test_steady_state_is_the_median_of_the_second_half():
    metrics = [
        {"step": s, "train/tokens_per_s": v}
        for s, v in [(10, 1.0), (20, 2.0), (30, 50.0), (40, 52.0), (50, 51.0), (60, 53.0)]
    ]
    metrics.append({"step": 60, "val/loss": 3.0})
    assert gc.steady_state(metrics, "train/tokens_per_s") == pytest.approx(52.0)
    assert gc.steady_state(metrics, "train/mfu") is None


def test_junit_counts(tmp_path):
    xml = tmp_path / "t.xml"
    xml.write_text(
        '<testsuites><testsuite><testcase classname="tests.test_gpu" name="a"/>'
        '<testcase classname="tests.test_gpu" name="b"><failure/></testcase>'
        '<testcase classname="tests.test_kernels" name="c"><skipped/></testcase>'
        "</testsuite></testsuites>"
    )
    assert gc.junit_counts(xml) == {
        "test_gpu": {"passed": 1, "failed": 1, "skipped": 0},
        "test_kernels": {"passed": 0, "failed": 0, "skipped": 1},
    }


def kernel_row(impl: str, fwd_ms: float, fwdbwd_ms: float, pct: float, mib: float) -> dict:
    return {
        "activation": "silu",
        "n_rows": 8192,
        "n_cols": 2048,
        "impl": impl,
        "fwd_ms": fwd_ms,
        "fwdbwd_ms": fwdbwd_ms,
        "fwd_pct_copy": pct,
        "fwdbwd_pct_copy": pct - 3,
        "fwd_peak_mib": mib,
        "fwdbwd_peak_mib": mib,
    }


def test_goals_and_the_report(tmp_path):
    report = gc.Report("Test GPU", {"torch": "2.x"}, "2026-01-01")
    report.tests = {"test_gpu": {"passed": 8, "failed": 0, "skipped": 0}}
    report.kernels = [
        kernel_row("triton (packed, in-place)", 0.05, 0.15, 92.0, 64.0),
        kernel_row("torch.compile", 0.06, 0.14, 80.0, 96.0),
        kernel_row("liger", 0.07, 0.20, 70.0, 64.0),
    ]
    report.trainings = [
        gc.Training("gpt2_124m", "torch", True, 150, "completed", 4.0e5, 0.40, 300.0, 9000.0, 5.1),
        gc.Training("gpt2_124m", "triton", True, 150, "completed", 4.2e5, 0.42, 315.0, 8800.0, 5.1),
    ]
    met = {goal: ok for goal, ok, _ in gc.goals(report)}
    assert met["fused forward ≥ 90% of copy bandwidth"] is True
    assert met["fused forward+backward ≥ 85% of copy bandwidth"] is True  # 89%
    assert met["never slower than torch.compile or Liger"] is False  # fwd+bwd 0.15 > 0.14
    assert met["peak memory ≤ Liger's"] is True
    assert met["gpt2_124m: compiled step with the fused op ≥ compile alone"] is True
    assert met["MFU ≥ 45% at gpt2_124m"] is False
    gc.write(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "# GPU acceptance: Test GPU" in md
    assert "| gpt2_124m | triton | True | 150 | 420,000 | 42.0% | 315.0 | 8.59 | 5.1000 |" in md
    assert "| MFU ≥ 45% at gpt2_124m | no | best 42.0% |" in md
    assert (tmp_path / "results.json").exists()
