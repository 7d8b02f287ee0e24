"""hydra/launcher=ray_local and ray_cluster: real Ray on this machine (make test-ray).

Each test starts its own Ray (ray_local) or head (ray start --head --block, stopped at the end)
in a temp dir of its own, so every Ray process a test leaves can be found by that dir and ended;
no Ray process outlives a test. The jobs train ffn.target=rendezvous:MeetingFFN (a dense ReLU
block; tests/fixtures/launcher/rendezvous.py) so that a test can hold a job mid-training and
signal it at a known point, whatever the start-up jitter.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the Ray launcher's tests need the ray extra: make install-ray")

from tests.helpers import REPO, fresh_cache, tiny_overrides  # noqa: E402

pytestmark = pytest.mark.ray

LAUNCHER_FIXTURES = REPO / "tests" / "fixtures" / "launcher"  # rendezvous.py: ffn.target
STEPS = 6


# ------------------------------------------------------------------------------------ helpers


def ray_temp_dir() -> Path:
    """A short dir for Ray's sessions (its socket paths must stay under ~107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))


def processes_under(temp_dir: Path) -> list[int]:
    """The Ray processes a test started: those whose command line names `temp_dir` (Ray's
    services) and their descendants (workers, which rename themselves ray::...)."""
    named, parent_of = set(), {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            parent_of[pid] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if str(temp_dir).encode() in (stat.parent / "cmdline").read_bytes():
                named.add(pid)
        except (OSError, ValueError):  # ended while we looked
            continue
    found = set(named) - {os.getpid()}
    while True:
        children = {pid for pid, parent in parent_of.items() if parent in found} - found
        if not children:
            return sorted(found)
        found |= children


def end_processes_under(temp_dir: Path) -> list[int]:
    """SIGKILL what is left of a test's Ray; the pids that were still there."""
    left = processes_under(temp_dir)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def train_args(cache: Path, *extra: str) -> list[str]:
    return [
        str(REPO / "train.py"),
        "-m",
        "ffn=custom",
        "ffn.target=rendezvous:MeetingFFN",
        "ffn.name=meeting",
        *tiny_overrides(cache, steps=STEPS),
        "logger.mode=disabled",
        "trainer.log_interval=1",
        "trainer.deterministic=true",
        *extra,
    ]


def sweep(args: list[str], env: dict[str, str] | None = None, cwd: Path = LAUNCHER_FIXTURES):
    """python train.py ARGS to the end, from `cwd` (where ffn.target imports from)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def summaries(sweep_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/summary.json")}


def losses(job_dir: Path) -> list[float]:
    lines = (job_dir / "metrics.jsonl").read_text().splitlines()
    return [r["train/loss"] for r in map(json.loads, lines) if "train/loss" in r]


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def held(hold_dir: Path) -> list[int]:
    """The pids of the jobs holding mid-training (rendezvous.hold)."""
    return [int(p.name.split(".")[0]) for p in hold_dir.glob("*.held")]


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def reference(token_cache, tmp_path_factory) -> dict[str, list[float]]:
    """Seeds 0-2 through the basic launcher, never interrupted: each job's train losses."""
    sweep_dir = tmp_path_factory.mktemp("reference") / "sweep"
    proc = sweep(train_args(token_cache, "seed=0,1,2", f"hydra.sweep.dir={sweep_dir}"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {d.name: losses(d) for d in sweep_dir.iterdir() if d.is_dir()}


@pytest.fixture
def head(tmp_path) -> Iterator[tuple[str, Path]]:
    """A Ray head on this machine (2 CPUs), started in a dir of its own by this test and
    stopped at its end: (its address, the dir it was started in)."""
    started_in = tmp_path / "head"
    started_in.mkdir()
    temp_dir = ray_temp_dir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "head.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the jobs get shipped code
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--num-cpus=2",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        "--object-store-memory=78643200",
        f"--temp-dir={temp_dir}",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=started_in, env=env, stdout=out, stderr=out)
    try:
        wait_for(lambda: "block forever" in log.read_text(), "the Ray head", proc, timeout=120)
        yield f"127.0.0.1:{port}", started_in
    finally:
        proc.terminate()  # ray start --block stops the processes it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        end_processes_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


# -------------------------------------------------------------------------------------- tests


def test_a_two_job_sweep_on_ray_local(token_cache, tmp_path):
    """Two jobs at once on a Ray started for the sweep: one CPU and one torch thread each and
    no GPU, both building the same fresh token cache at once (one cache results); every Ray
    process ends with the sweep."""
    sweep_dir, temp_dir = tmp_path / "sweep", ray_temp_dir()
    cache = fresh_cache(token_cache, tmp_path / "cache")
    try:
        proc = sweep(
            train_args(
                cache,
                "seed=0,1",
                "hydra/launcher=ray_local",
                "hydra.launcher.ray.init.num_cpus=2",  # 2 jobs at once on any machine
                f"+hydra.launcher.ray.init._temp_dir={temp_dir}",
                f"hydra.sweep.dir={sweep_dir}",
            )
        )
        assert not processes_under(temp_dir), "Ray processes outlived the sweep"
    finally:
        end_processes_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2/2 jobs completed" in proc.stdout
    runs = summaries(sweep_dir)
    assert {r["status"] for r in runs.values()} == {"completed"} and len(runs) == 2
    assert {(r["threads"], r["visible_devices"]) for r in runs.values()} == {(1, "")}
    assert len({r["pid"] for r in runs.values()}) == 2
    assert len(list((cache / "tokens").iterdir())) == 1  # no temp dir of a losing builder left


def test_a_sweep_on_a_head_started_elsewhere(head, token_cache, tmp_path):
    """ray_cluster against a head started in another dir, the sweep launched from a third
    with relative paths: the jobs share one token cache and write their run dirs under the
    launch dir (nothing lands where the head was started), with the code shipped to them."""
    address, head_dir = head
    launch_dir = tmp_path / "launch"
    launch_dir.mkdir()
    shutil.copy(LAUNCHER_FIXTURES / "rendezvous.py", launch_dir)  # ffn.target, from here
    fresh_cache(token_cache, launch_dir / "cache")
    args = train_args(Path("cache"), "seed=0,1", "hydra/launcher=ray_cluster")  # no extra keys
    auth = os.environ.get("RAY_AUTH_MODE", "token")  # Ray sends its token for RAY_ADDRESS so
    proc = sweep(args, env={"RAY_ADDRESS": address, "RAY_AUTH_MODE": auth}, cwd=launch_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (multirun_yaml,) = launch_dir.glob("multirun/*/*/multirun.yaml")
    runs = summaries(multirun_yaml.parent)
    assert len(runs) == 2 and {r["status"] for r in runs.values()} == {"completed"}
    assert len(list((launch_dir / "cache" / "tokens").iterdir())) == 1
    assert not list(head_dir.iterdir()), "a job wrote where the head was started"


def test_a_stopped_ray_sweep_resumes_to_the_same_losses(token_cache, reference, tmp_path):
    """SIGTERM to a ray_local sweep while two of its three jobs train: those two finish their
    step, checkpoint and record "preempted", the third never starts, the sweep-status callback
    lists them and no Ray process outlives the sweep. The same command again completes all
    three with the losses of a sweep that never stopped."""
    sweep_dir, hold_dir, temp_dir = tmp_path / "sweep", tmp_path / "hold", ray_temp_dir()
    args = train_args(
        token_cache,
        "seed=0,1,2",
        "hydra/launcher=ray_local",
        "hydra.launcher.ray.init.num_cpus=2",  # 2 jobs at once on any machine
        f"+hydra.launcher.ray.init._temp_dir={temp_dir}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    log = tmp_path / "sweep.log"  # a file, not a pipe: a full pipe would stall the sweep
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOLD_DIR": str(hold_dir)}
    try:
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=LAUNCHER_FIXTURES, env=env, stdout=out, stderr=out
            )
        try:
            wait_for(lambda: len(held(hold_dir)) == 2, "two jobs training", proc)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=180)
        finally:
            proc.kill()
        assert not processes_under(temp_dir), "Ray processes outlived the sweep"
    finally:
        end_processes_under(temp_dir)
    output = log.read_text()
    assert proc.returncode == 1, output[-3000:]
    assert "2 running job(s) checkpoint and stop, 1 not started" in output, output[-3000:]
    assert "0/2 jobs completed" in output and output.count(": preempted: SIGTERM") == 2
    stopped = summaries(sweep_dir)
    assert sorted(stopped) == ["0_meeting-s0", "1_meeting-s1"], sorted(stopped)
    assert {(r["status"], r["steps"]) for r in stopped.values()} == {("preempted", 1)}
    for name in stopped:
        assert [p.name for p in (sweep_dir / name / "checkpoints").iterdir()] == ["step_0000001.pt"]

    try:
        rerun = sweep(args)  # the same command, nothing held
    finally:
        end_processes_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "3/3 jobs completed" in rerun.stdout
    assert rerun.stdout.count("resuming meeting-s") == 2
    for name, expected in reference.items():
        assert losses(sweep_dir / name) == pytest.approx(expected, rel=1e-6), name


def test_a_job_whose_worker_dies_is_retried_and_resumes(token_cache, reference, tmp_path):
    """SIGTERM from outside the sweep to one job's worker (a node drained, say): the job
    checkpoints, its worker ends, Ray retries it and the retry resumes from the checkpoint,
    with the losses of a run never interrupted; the other job is untouched."""
    sweep_dir, hold_dir, temp_dir = tmp_path / "sweep", tmp_path / "hold", ray_temp_dir()
    args = train_args(
        token_cache,
        "seed=0,1",
        "hydra/launcher=ray_local",
        "hydra.launcher.ray.init.num_cpus=2",  # 2 jobs at once on any machine
        f"+hydra.launcher.ray.init._temp_dir={temp_dir}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    log = tmp_path / "sweep.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOLD_DIR": str(hold_dir)}
    try:
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=LAUNCHER_FIXTURES, env=env, stdout=out, stderr=out
            )
        try:
            wait_for(lambda: len(held(hold_dir)) == 2, "two jobs training", proc)
            killed = held(hold_dir)[0]
            os.kill(killed, signal.SIGTERM)
            (hold_dir / "release").touch()  # the other job goes on
            proc.wait(timeout=180)
        finally:
            proc.kill()
    finally:
        end_processes_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    output = log.read_text()
    assert proc.returncode == 0, output[-3000:]
    assert "2/2 jobs completed" in output
    runs = summaries(sweep_dir)
    assert {r["status"] for r in runs.values()} == {"completed"}
    assert output.count("resuming meeting-s") == 1, output[-3000:]
    assert killed not in {r["pid"] for r in runs.values()}  # the retry ran in a new worker
    for name in runs:
        assert losses(sweep_dir / name) == pytest.approx(reference[name], rel=1e-6), name
