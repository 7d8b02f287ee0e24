"""hydra/launcher=gpus and parallel: a fresh process per job, a device of its own, a CPU share;
hydra/launcher=slurm_ddp_local: a 2-task data-parallel job through submitit's local executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import astuple
from itertools import combinations
from pathlib import Path

import pytest

from hydra_plugins.ffn_variants_launcher.job import job_environment
from hydra_plugins.ffn_variants_launcher.pool_launcher import cores, plan_slots
from tests.helpers import REPO, fresh_cache, tiny_overrides

RENDEZVOUS = REPO / "tests" / "fixtures" / "launcher" / "rendezvous.py"


def multirun(
    args: list[str], cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def summaries(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/summary.json"))]


def test_slots_follow_the_visible_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5,7")
    assert [s.device for s in plan_slots(None, None, None)] == ["2", "5", "7"]
    assert [s.device for s in plan_slots(None, 2, None)] == ["2", "5"]  # n_jobs caps the GPUs
    assert [s.device for s in plan_slots(["1"], None, 3)] == ["1"]
    assert plan_slots(["1"], None, 3)[0].threads == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    cpu = plan_slots(None, 4, None)
    # Compared as tuples: Hydra's plugin scan re-executes the plugin module, so the Slot class
    # imported here may not be the one plan_slots builds.
    assert [astuple(s) for s in cpu] == [(None, max(1, cores() // 4))] * 4
    env = job_environment(cpu[0].threads, cpu[0].device)
    assert env["CUDA_VISIBLE_DEVICES"] == ""  # a CPU job sees no GPU
    assert [astuple(s) for s in plan_slots(None, None, None)] == [(None, max(1, cores() // 2))] * 2


def test_every_job_gets_a_device_of_its_own(token_cache, tmp_path):
    """Two 'GPUs' (a device list standing in for them), four jobs: each job records the device
    it was given; no two jobs running at once share one; each job is a process of its own.

    The jobs train an FFN whose first forward waits until two jobs have reached it
    (tests/fixtures/launcher/rendezvous.py), so two jobs overlap however late either process
    starts; a launcher that ran them one at a time would leave them apart after its timeout."""
    sweep = tmp_path / "sweep"
    cache = fresh_cache(token_cache, tmp_path / "cache")
    proc = multirun(
        [
            "ffn=custom",
            "ffn.target=rendezvous:MeetingFFN",
            "ffn.name=meeting",
            "seed=0,1,2,3",
            *tiny_overrides(cache, steps=4),
            "logger.mode=disabled",
            "hydra/launcher=gpus",
            "hydra.launcher.devices=[a,b]",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=RENDEZVOUS.parent,  # ffn.target imports from where the sweep is launched
        env={"RENDEZVOUS_DIR": str(tmp_path / "rendezvous"), "RENDEZVOUS_TIMEOUT_S": "60"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = summaries(sweep)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"completed"}
    assert {r["visible_devices"] for r in runs} == {"a", "b"}
    assert len({r["pid"] for r in runs}) == 4  # a fresh process per job, never a reused worker
    overlapping = [
        (r, q)
        for r, q in combinations(runs, 2)
        if r["started_at"] < q["ended_at"] and q["started_at"] < r["ended_at"]
    ]
    assert overlapping, "no two jobs ran at once"
    for r, q in overlapping:
        assert r["visible_devices"] != q["visible_devices"], (r["run_name"], q["run_name"])
    assert {r["threads"] for r in runs} == {max(1, cores() // 2)}


def test_a_two_task_data_parallel_job_through_submitit(token_cache, tmp_path):
    """hydra/launcher=slurm_ddp_local: one job, two tasks, one DDP run over gloo, as slurm_ddp
    runs one over SLURM; it trains as one process does."""
    sweep = tmp_path / "sweep"
    common = [
        *tiny_overrides(token_cache, steps=12),
        "logger.mode=disabled",
        "trainer.log_interval=1",
        "trainer.deterministic=true",
    ]
    proc = multirun([*common, "hydra/launcher=slurm_ddp_local", f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    (summary,) = summaries(sweep)
    assert summary["status"] == "completed" and summary["world_size"] == 2
    (job,) = (sweep / ".submitit").glob("[0-9]*")
    assert sorted(p.name.split("_")[1] for p in job.glob("*_log.out")) == ["0", "1"]  # 2 tasks
    single = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *common, f"hydra.run.dir={tmp_path / 'one'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    def losses(run_dir: Path) -> list[float]:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [r["train/loss"] for r in map(json.loads, lines) if "train/loss" in r]

    ddp = losses(next(p.parent for p in sweep.glob("*/summary.json")))
    assert ddp == pytest.approx(losses(tmp_path / "one"), rel=1e-5) and len(ddp) == 12


def stat_fields(stat: Path) -> list[str]:
    """/proc/<pid>/stat after the command name: state, parent pid, ..."""
    return stat.read_text().rsplit(")", 1)[1].split()


def running_jobs(sweep_pid: int) -> list[int]:
    """The job processes a sweep has started (its spawned children), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat_fields(stat)[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:  # the process ended while we looked
            continue
        if parent == sweep_pid and b"spawn_main" in command:
            pids.append(int(stat.parent.name))
    return pids


def alive(pid: int) -> bool:
    try:
        return stat_fields(Path("/proc") / str(pid) / "stat")[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def stop_a_parallel_sweep(
    token_cache: Path, tmp_path: Path, sig: signal.Signals
) -> tuple[int, str, list[int], list[int]]:
    """A 3-job parallel sweep of endless runs, sent `sig` once two jobs train: (its exit code,
    its output, the job processes it ran, those that outlived it)."""
    sweep = tmp_path / "sweep"
    cache = fresh_cache(token_cache, tmp_path / "cache")
    args = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "seed=0,1,2",
        "logger.mode=disabled",
        *tiny_overrides(cache, steps=1_000_000),
        "trainer.eval_interval=1000000",
        "hydra/launcher=parallel",
        f"hydra.sweep.dir={sweep}",
    ]
    log = tmp_path / "sweep.log"  # a file, not a pipe: a full pipe would stall the sweep
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    jobs: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while sum(p.stat().st_size > 0 for p in sweep.glob("*/metrics.jsonl")) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the jobs never trained"
            time.sleep(0.5)
        jobs = running_jobs(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=300)
    finally:
        proc.kill()
        survivors = [pid for pid in jobs if alive(pid)]
        for pid in survivors:  # so that a failing test leaves no job training
            os.kill(pid, signal.SIGKILL)
    return proc.returncode, log.read_text(), jobs, survivors


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_a_stopped_sweep_stops_its_jobs(token_cache, tmp_path):
    """SIGTERM to a parallel sweep: its running jobs checkpoint and stop with it, no job process
    outlives it, and the waiting job never starts."""
    returncode, output, jobs, survivors = stop_a_parallel_sweep(
        token_cache, tmp_path, signal.SIGTERM
    )
    assert len(jobs) == 2, jobs
    assert returncode != 0
    assert not survivors, "job processes outlived the sweep"
    assert "checkpoint and stop" in output, output[-3000:]
    sweep = tmp_path / "sweep"
    runs = summaries(sweep)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"preempted"}, runs
    for job_dir in {p.parent for p in sweep.glob("*/summary.json")}:
        assert list((job_dir / "checkpoints").glob("*.pt")), job_dir


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_ctrl_c_on_a_parallel_sweep_stops_it_as_a_run_stops(token_cache, tmp_path):
    """Ctrl-C (SIGINT) to a parallel sweep: its running jobs checkpoint and stop 'interrupted'
    (not 'preempted: SIGTERM'), the job not started is recorded so, the sweep-status list and the
    resume line are printed, exit 130, and no traceback."""
    returncode, output, _, survivors = stop_a_parallel_sweep(token_cache, tmp_path, signal.SIGINT)
    assert returncode == 130, output[-3000:]
    assert not survivors, "job processes outlived the sweep"
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    runs = summaries(tmp_path / "sweep")
    assert len(runs) == 3 and {r["status"] for r in runs} == {"interrupted"}, runs
    assert sum("not started" in (r["error"] or "") for r in runs) == 1
    assert "0/3 jobs completed" in output and "trainer.resume=auto" in output


def test_a_ray_job_on_a_node_without_the_sweep_dir_is_refused_in_one_line(tmp_path, capsys):
    """hydra/launcher=ray_*: a job whose node does not see the sweep dir (no shared filesystem)
    is refused before it writes anything, and the sweep ends with one line and exit code 2.
    (No Ray needed: the job's check and the driver's handling of its answer.)"""
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    from hydra_plugins.ffn_variants_launcher.ray_job import UnsharedDir, enter_launch_dir
    from hydra_plugins.ffn_variants_launcher.ray_launcher import RaySweepLauncher

    elsewhere = tmp_path / "on-another-node"
    cfg = OmegaConf.create(
        {"hydra": {"runtime": {"cwd": str(tmp_path)}, "sweep": {"dir": str(elsewhere)}}}
    )
    with pytest.raises(UnsharedDir, match="filesystem every node mounts") as refused:
        enter_launch_dir(cfg)
    assert not elsewhere.exists()
    failed = JobReturn(overrides=["seed=0"], status=JobStatus.FAILED)
    failed._return_value = refused.value
    with pytest.raises(SystemExit) as exit_:
        RaySweepLauncher.outcome(failed, OmegaConf.create({"hydra": {"overrides": {"task": []}}}))
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: the sweep dir {elsewhere} is not on this node")
