"""Data-parallel runs with torchrun: 2 processes on CPU (gloo) against 1, kill and resume,
preemption of one process, a changed process count.

The 2-process run splits each global batch's rows between the processes and averages their
gradients with gloo's all-reduce; a single process averages the same rows itself. The two differ
only in the order floating-point sums are taken: ~1e-7 relative on the loss per step here, so the
losses over 20 steps must agree within rtol 1e-5.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, run_train, tiny_overrides

STEPS = 20
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gloo over TCP on POSIX")


def ddp_args(cache: Path, run_dir: Path, steps: int = STEPS) -> list[str]:
    return [
        *tiny_overrides(cache, steps=steps),
        "trainer.log_interval=1",
        "trainer.eval_interval=10",
        "trainer.deterministic=true",
        "logger.mode=disabled",
        f"hydra.run.dir={run_dir}",
    ]


def torchrun(args: list[str], nproc: int = 2, **popen) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(REPO / "train.py"),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, text=True, start_new_session=True, **popen)


def run_torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    proc = torchrun(args, nproc, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def records(run_dir: Path, key: str) -> list[tuple[int, float]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r[key]) for r in map(json.loads, lines) if key in r]


@pytest.fixture(scope="module")
def two_process_run(token_cache, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    proc = run_torchrun(ddp_args(token_cache, run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_two_processes_train_as_one_does(two_process_run, token_cache, tmp_path):
    one = tmp_path / "one"
    proc = run_train(ddp_args(token_cache, one))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for key in ("train/loss", "val/loss"):
        a, b = records(one, key), records(two_process_run, key)
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) >= 3
        assert [v for _, v in b] == pytest.approx([v for _, v in a], rel=1e-5)
    summary = json.loads((two_process_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["tokens"] == json.loads((one / "summary.json").read_text())["tokens"]
    # Rank 0 alone wrote the run dir: Hydra's files once, one metrics file.
    assert sorted(p.name for p in two_process_run.iterdir()) == [
        ".hydra",
        "checkpoints",
        "metrics.jsonl",
        "summary.json",
    ]


def logged_step(run_dir: Path) -> int:
    try:
        return max((s for s, _ in records(run_dir, "train/loss")), default=0)
    except (FileNotFoundError, ValueError):
        return 0


def wait_for_step(proc: subprocess.Popen, run_dir: Path, step: int) -> None:
    deadline = time.time() + 120
    while logged_step(run_dir) < step:
        assert proc.poll() is None, "the run ended before the step"
        assert time.time() < deadline, "the run never reached the step"
        time.sleep(0.02)


def test_two_processes_train_as_one_does_under_muon(token_cache, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["optim=muon", "trainer.eval_interval=3"]
    for proc in (
        run_torchrun([*ddp_args(token_cache, two, steps=6), *args]),
        run_train([*ddp_args(token_cache, one, steps=6), *args]),
    ):
        assert proc.returncode == 0, proc.stderr[-3000:]
    for key in ("train/loss", "val/loss"):
        a, b = records(one, key), records(two, key)
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) >= 3
        assert [v for _, v in b] == pytest.approx([v for _, v in a], rel=1e-5)


def test_a_killed_run_resumes_to_the_same_final_loss(two_process_run, token_cache, tmp_path):
    run_dir = tmp_path / "run"
    args = [*ddp_args(token_cache, run_dir), "trainer.ckpt_interval=3"]
    proc = torchrun(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_step(proc, run_dir, 8)  # past two checkpoints
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both processes, no warning
    proc.wait()
    assert logged_step(run_dir) < STEPS
    resumed = run_torchrun(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    assert records(run_dir, "train/loss") == records(two_process_run, "train/loss")
    final = json.loads((run_dir / "summary.json").read_text())["final_val_loss"]
    assert final == json.loads((two_process_run / "summary.json").read_text())["final_val_loss"]


def test_a_different_process_count_cannot_resume(two_process_run, token_cache, tmp_path):
    args = [*ddp_args(token_cache, two_process_run, steps=STEPS + 2), "trainer.ckpt_interval=0"]
    proc = run_train(args)
    assert proc.returncode == 2
    error = proc.stderr.strip().splitlines()[-1]
    assert "written by a run of 2 process(es) and this run has 1" in error
    assert "--nproc_per_node=2" in error


def test_preempting_one_process_checkpoints_once_and_stops_both(token_cache, tmp_path):
    run_dir = tmp_path / "run"
    args = ddp_args(token_cache, run_dir, steps=200)
    proc = torchrun(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_step(proc, run_dir, 4)
    workers = [
        int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    ]
    rank0 = json.loads((run_dir / "summary.json").read_text())["pid"]
    (other,) = [p for p in workers if p != rank0]
    os.kill(other, signal.SIGUSR1)  # rank 1 alone
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0  # torchrun reports its workers' exit by the signal
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "preempted" and summary["steps"] < 200, summary
    checkpoints = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    assert [p.name for p in checkpoints] == [f"step_{summary['steps']:07d}.pt"]


def test_a_batch_that_does_not_split_is_a_clear_error(token_cache, tmp_path):
    proc = run_torchrun([*ddp_args(token_cache, tmp_path / "run"), "trainer.batch_size=5"])
    assert proc.returncode != 0
    assert "trainer.batch_size=5 does not split over 2 processes" in proc.stderr
    assert not (tmp_path / "run").exists()
