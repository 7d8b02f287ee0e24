"""make gpu-check without a GPU, and the parts of its report that need none."""

from __future__ import annotations

import json
import os
import shutil
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the exit without CUDA")
def test_the_offline_recipe_gets_to_the_cuda_check_with_every_import_satisfied(tmp_path):
    """bash bench/gpu_run.sh: the wheels of .whl/ (where make gpu-wheels put them) into a target
    dir on PYTHONPATH, gpu-check's imports, then exit 2 at "no CUDA", with nothing to pack.
    (Checked by hand in a venv shaped like the GPU machine: see docs/kernels.md.)"""
    wheels = tmp_path / "wheels"  # the pure-Python ones (.whl/'s PyYAML is for Python 3.12)
    wheels.mkdir()
    for wheel in (REPO / ".whl").glob("*-py3-none-any.whl"):
        shutil.copy(wheel, wheels)
    env = {**os.environ, "GPU_SITE": str(tmp_path / "site"), "GPU_WHEELS": str(wheels)}
    env.update(PYTHON=sys.executable, PIP_NO_INDEX="1")
    proc = subprocess.run(
        ["bash", "bench/gpu_run.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: gpu-check needs a CUDA GPU and torch sees none (torch.cuda.is_available() is False)"
    )
    assert "cannot import" not in proc.stderr and "packed" not in proc.stdout
    if list(wheels.glob("hydra_core-*.whl")):
        assert (tmp_path / "site" / "hydra").is_dir()


def _wheel_with_a_pth(folder: Path) -> None:
    """A wheel laid out as the CUTLASS DSL's: its package in a subfolder that only its .pth
    file puts on the path."""
    import zipfile

    dist = "probe_dsl-1.0"
    with zipfile.ZipFile(folder / f"{dist.replace('-', '-')}-py3-none-any.whl", "w") as z:
        z.writestr("probe_dsl_packages.pth", "probe_dsl/dsl_packages\n")
        z.writestr("probe_dsl/dsl_packages/cutlass_probe/__init__.py", "FOUND = True\n")
        z.writestr(
            f"{dist}.dist-info/METADATA", "Metadata-Version: 2.1\nName: probe-dsl\nVersion: 1.0\n"
        )
        z.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{dist}.dist-info/RECORD", "")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the exit without CUDA")
def test_the_recipe_processes_the_wheels_pth_files(tmp_path):
    """The CUTLASS DSL's `cutlass` is found only through its .pth file: gpu_run.sh's site dir
    must process it (a plain PYTHONPATH entry would not)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel_with_a_pth(wheels)
    site = tmp_path / "site"
    env = {**os.environ, "GPU_SITE": str(site), "GPU_WHEELS": str(wheels), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", "bench/gpu_run.sh", "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    probe = "import cutlass_probe; print(cutlass_probe.FOUND)"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert found.stdout.strip() == "True", found.stderr
    plain = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
        capture_output=True,
        text=True,
    )
    assert plain.returncode != 0  # without site processing the package stays hidden


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
        # 17 MB forward, 45 MB forward+backward: launch-bound, not judged, however slow
        {**kernel_row("triton (packed, in-place)", 0.05, 0.15, 20.0, 8.0), "n_cols": 344},
        # eager: slower on the wall clock, faster as the device runs it (device time decides)
        {**kernel_row("eager", 0.04, 0.30, 50.0, 96.0), "n_cols": 344, "fwd_device_ms": 0.06},
        {**kernel_row("block: torch", 1.0, 3.0, 0, 0), "activation": "silu ffn"},
        {**kernel_row("block: triton", 1.0, 2.9, 0, 0), "activation": "silu ffn"},
        {**kernel_row("block: quack", 1.0, 2.8, 0, 0), "activation": "silu ffn"},
    ]
    report.inference = [
        {"variant": "swiglu", "model": "gpt2_124m", "mode": "eager", "decode_b1_tokens_per_s": 150},
        {
            "variant": "swiglu",
            "model": "gpt2_124m",
            "mode": "compiled",
            "decode_b1_tokens_per_s": 2e3,
        },
    ]
    report.trainings = [
        gc.Training("gpt2_124m", "torch", True, 150, "completed", 4.0e5, 0.40, 300.0, 9000.0, 5.1),
        gc.Training("gpt2_124m", "triton", True, 150, "completed", 4.2e5, 0.42, 315.0, 8800.0, 5.1),
        gc.Training("gpt2_124m", "triton", False, 150, "failed", error="Traceback\nOOM"),
    ]
    found = {goal: (ok, measured) for goal, ok, measured in gc.goals(report)}
    fwd = found["fused forward ≥ 90% of copy bandwidth"]
    assert fwd[0] is True and "not judged, under 100 MB: silu 8192x344 (17 MB)" in fwd[1]
    assert found["fused forward+backward ≥ 85% of copy bandwidth"][0] is True  # 89%
    # fwd+bwd 0.15 > 0.14 ms at 8192 x 2048 (268 MB)
    slower = found["never slower than eager, torch.compile or Liger (device time, every shape)"]
    assert slower == (False, "silu 8192x2048 vs torch.compile (fwd+bwd)")
    block = found["silu ffn block 8192x2048: quack ≤ triton and torch (fwd+bwd, device)"]
    assert block[0] is True
    assert found["swiglu gpt2_124m: compiled decode ≥ 10x eager"] == (True, "13.3x")
    assert found["peak memory ≤ Liger's"][0] is True
    assert found["gpt2_124m: compiled step with the fused op ≥ compile alone"][0] is True
    assert found["MFU ≥ 45% at gpt2_124m"][0] is False
    gc.write(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "# GPU acceptance: Test GPU" in md
    assert "| gpt2_124m | triton | True | 150 | 420,000 | 42.0% | 315.0 | 8.59 | 5.1000 |" in md
    assert "| MFU ≥ 45% at gpt2_124m | no | best 42.0% |" in md
    assert "gpt2_124m-triton-eager: the last lines of stderr" in md and "OOM" in md
    assert (tmp_path / "results.json").exists()


def test_dry_run_prints_a_plan_within_six_minutes(capsys):
    assert gc.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    stages = ["preflight", "tests", "kernels", *(t.name for t in gc.planned_trainings(False))]
    for stage in stages:
        assert f"  {stage} " in out or f"  training {stage} " in out
    total = float(out.split("  total")[1].split()[0])
    assert total <= 360 and "budget 355 s" in out
    # What matters first: tests, then the compiled trainings, then kernels, then inference
    order = [ln.split()[0] for ln in out.splitlines()[2:] if ln.startswith("  ")]
    first = {name: order.index(name) for name in ("tests", "training", "kernels", "inference")}
    assert first["tests"] < first["training"] < first["kernels"] < first["inference"]
    steps = gc.plan(gc.Report("G", {}, "d"), Path("unused"), False)
    for p in steps:
        assert p.stage.cap_s == round(1.5 * p.stage.estimate_s)
        assert f"{p.stage.estimate_s:>5.0f} s  {p.stage.cap_s:>5.0f} s" in out
    assert "ffn.impl=quack" in out and "FFN blocks (torch, triton, quack)" in out
    assert "eager and compiled (CUDA graphs)" in out
    assert gc.main(["--dry-run", "--full"]) == 0
    assert "budget none" in capsys.readouterr().out


def test_stages_that_would_not_fit_are_skipped_and_every_stage_rewrites_the_report(
    tmp_path, monkeypatch
):
    gc.CLOCK.reset(100.0)
    seen = []

    def stage(name, estimate, fails=False):
        def run(s):
            seen.append((name, json.loads((tmp_path / "results.json").read_text())["stages"]))
            if fails:
                raise RuntimeError("boom")
            s.status = "done"

        return gc.Planned(gc.Stage(name, estimate), run, name)

    report = gc.Report("G", {}, "d", budget_s=100.0)
    steps = [stage("a", 10), stage("b", 500), stage("c", 10, fails=True), stage("d", 10)]
    gc.execute(report, tmp_path, steps)
    assert [(s.name, s.status) for s in report.stages] == [
        ("a", "done"),
        ("b", "skipped"),
        ("c", "failed"),
        ("d", "done"),
    ]
    assert report.stages[1].note.startswith("needs ~500 s, ")
    assert report.stages[2].note == "RuntimeError: boom"
    # When d started, the report on disk already had a's, b's and c's outcomes.
    assert [s["status"] for s in seen[-1][1]] == ["done", "skipped", "failed", "planned"]
    assert json.loads((tmp_path / "results.json").read_text())["stages"][3]["status"] == "done"


def test_a_stage_past_its_cap_is_cut_and_recorded_and_the_next_one_runs(tmp_path):
    import time

    gc.CLOCK.reset(100.0)

    def slow(s):
        time.sleep(5)
        s.status = "done"

    def quick(s):
        s.status = "done"

    report = gc.Report("G", {}, "d", budget_s=100.0)
    stage = gc.Stage("slow", 0.2)
    stage.cap_s = 0.3
    began = time.monotonic()
    gc.execute(
        report, tmp_path, [gc.Planned(stage, slow, "x"), gc.Planned(gc.Stage("q", 0.1), quick, "y")]
    )
    assert time.monotonic() - began < 3
    assert [(s.name, s.status) for s in report.stages] == [("slow", "cut"), ("q", "done")]
    assert report.stages[0].note == "past its cap of 0 s: cut"
    saved = json.loads((tmp_path / "results.json").read_text())["stages"]
    assert saved[0]["status"] == "cut"


def test_a_failed_training_keeps_its_run_dir_and_the_end_of_its_stderr(tmp_path):
    t = gc.Training("no_such_model", "torch", False, 2)
    gc.run_training(t, tmp_path / "runs", 30.0)
    assert t.status == "failed" and t.wall_s > 0
    assert "no_such_model" in t.error and len(t.error.splitlines()) <= gc.STDERR_LINES
    assert (tmp_path / "runs" / f"{t.name}.stderr.log").read_text().endswith(t.error + "\n")


def test_tests_are_the_ones_that_exercise_cuda_in_shards():
    cmd = gc.test_command(Path("x.xml"), (3, 8), gc.TEST_FILES)
    assert cmd[cmd.index("gpu or cuda") - 1] == "-m"
    assert "--shard=3/8" in cmd
    assert not {"tests/test_kernel_ptx.py", "tests/test_flops.py"} & set(gc.TEST_FILES)
