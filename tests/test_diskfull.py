"""A full disk (ENOSPC) or quota (EDQUOT): one line, exit code 3, no temp file left, summary.json
failed, and a resume once there is space. On a real small filesystem (a tmpfs, where this
machine may mount one) and by an injected ENOSPC where it may not; plus one dir per sweep and
trainer.resume=auto refusing another run's checkpoints."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.diskfull import DISK_FULL_EXIT, DiskFullError, is_disk_full
from harness.entry import claim_dir
from sweep.report import make_report
from tests.helpers import REPO, run_train, tiny_overrides, train

STEPS = 12
VOLATILE = {"time_s", "time/eval_s", "train/tokens_per_s", "train/mfu", "train/model_tflops"}


def args(cache: Path, *extra: str) -> list[str]:
    return [
        *tiny_overrides(cache, steps=STEPS),
        "trainer.log_interval=1",
        "trainer.ckpt_interval=4",
        "trainer.keep_checkpoints=2",
        "trainer.deterministic=true",
        "logger.mode=offline",
        *extra,
    ]


def losses(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in VOLATILE} for x in lines]


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")]


def assert_disk_full_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == DISK_FULL_EXIT, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "disk full: could not write" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Error in" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def reference(token_cache, tmp_path_factory) -> tuple[list[dict], int]:
    """An uninterrupted run's metrics, and the size of one of its checkpoints."""
    run_dir = tmp_path_factory.mktemp("reference")
    proc = run_train([*args(token_cache), f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    size = max(p.stat().st_size for p in (run_dir / "checkpoints").glob("*.pt"))
    return losses(run_dir), size


class Tmpfs:
    """A tmpfs of a given size, mounted for one test (root only, where mounting is allowed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir()

    def mount(self, size: int) -> None:
        opts = f"size={size}"
        cmd = ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(self.path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")

    def grow(self, size: int) -> None:
        opts = f"remount,size={size}"
        subprocess.run(["mount", "-o", opts, str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    fs = Tmpfs(tmp_path / "small")
    yield fs
    fs.unmount()


def test_a_full_disk_ends_one_run_in_one_line_and_it_resumes_once_freed(
    reference, token_cache, tmpfs
):
    metrics, ckpt = reference
    # Room for one checkpoint and the small files, not for the second: it fails at step 8.
    tmpfs.mount(int(ckpt * 1.5) + 400_000)
    run_dir = tmpfs.path / "run"
    command = [*args(token_cache), f"hydra.run.dir={run_dir}"]
    line = assert_disk_full_line(run_train(command))
    assert "the checkpoint of step 8" in line and "last good checkpoint: step 4" in line
    assert "trainer.keep_checkpoints" in line and "MB needed" in line
    assert not leftovers(tmpfs.path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("disk full")
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_0000004.pt"]

    tmpfs.grow(int(ckpt * 4) + 1_000_000)  # space freed: the same command continues
    resumed = run_train(command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    assert losses(run_dir) == metrics
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_a_full_disk_in_a_sweep_fails_its_jobs_and_the_report_says_why(
    reference, token_cache, tmpfs, tmp_path
):
    _, ckpt = reference
    tmpfs.mount(int(ckpt * 1.5) + 600_000)  # one job's first checkpoint, then nothing more
    sweep = tmpfs.path / "sweep"
    proc = run_train(["-m", *args(token_cache), "seed=0,1", f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 1, proc.stderr[-3000:]  # a sweep with failed jobs exits 1
    assert "Traceback" not in proc.stderr, proc.stderr
    jobs = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: job")]
    assert len(jobs) == 2 and all("disk full: could not write" in ln for ln in jobs), proc.stderr
    assert "0/2 jobs completed" in proc.stdout + proc.stderr
    assert not leftovers(tmpfs.path)
    for job in sweep.glob("*_*-s*"):
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "failed" and "disk full" in summary["error"]
    _, rep = make_report(sweep, out=tmp_path / "results", log=lambda _: None)
    assert [r.status for r in rep.bad] == ["failed", "failed"]
    assert all(r.reason.startswith("disk full") for r in rep.bad)


def test_an_injected_enospc_takes_the_same_path(token_cache, tmp_path, monkeypatch):
    """Where no filesystem can be mounted: the second checkpoint's write fails half-way."""
    real, calls = torch.save, []

    def save(obj, f, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(DiskFullError) as e:
        train(args(token_cache), tmp_path)
    message = str(e.value)
    assert "\n" not in message and "the checkpoint of step 8" in message
    assert "last good checkpoint: step 4" in message and is_disk_full(e.value)
    assert not leftovers(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == message


def test_a_quota_is_named_as_such():
    cause = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert "quota exceeded" in str(DiskFullError("metrics.jsonl", "/x", cause=cause))
    assert is_disk_full(RuntimeError("enforce fail")) is False


def test_resume_auto_refuses_another_runs_checkpoints(token_cache, tmp_path):
    run_dir = tmp_path / "run"
    first = run_train([*args(token_cache), f"hydra.run.dir={run_dir}", "logger.mode=disabled"])
    assert first.returncode == 0, first.stderr[-3000:]
    other = run_train(
        [*args(token_cache), f"hydra.run.dir={run_dir}", "ffn=relu", "logger.mode=disabled"]
    )
    assert other.returncode == 2, other.stderr[-3000:]
    (line,) = [ln for ln in other.stderr.splitlines() if ln.startswith("error: ")]
    assert "another config" in line and "ffn.name=swiglu (now relu)" in line


def test_two_claims_of_one_dir_get_two_dirs(tmp_path):
    planned = tmp_path / "multirun" / "glu_table" / "2026-12-02_10-00-00"
    first, second = claim_dir(planned), claim_dir(planned)
    assert first == planned and second == planned.with_name(planned.name + "-2")
    assert first.is_dir() and second.is_dir()


def test_two_sweeps_started_together_write_to_two_dirs(token_cache, tmp_path):
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        *tiny_overrides(token_cache, steps=1),
        "logger.mode=disabled",
    ]
    procs = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-3000:]
    dirs = sorted((tmp_path / "multirun" / "sweep").iterdir())  # run in tmp_path: its multirun/
    assert len(dirs) == 2 and all(len(list(d.glob("0_*"))) == 1 for d in dirs)
