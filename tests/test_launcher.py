"""hydra/launcher=gpus and parallel: a fresh process per job, a device of its own, a CPU share;
hydra/launcher=slurm_ddp_local: a 2-task data-parallel job through submitit's local executor."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import astuple
from itertools import combinations
from pathlib import Path

import pytest

from hydra_plugins.ffn_variants_launcher.pool_launcher import cores, plan_slots
from tests.conftest import REPO, fresh_cache, tiny_overrides


def multirun(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "train.py"), "-m", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


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
    assert cpu[0].environment()["CUDA_VISIBLE_DEVICES"] == ""  # a CPU job sees no GPU
    assert [astuple(s) for s in plan_slots(None, None, None)] == [(None, max(1, cores() // 2))] * 2


def test_every_job_gets_a_device_of_its_own(token_cache, tmp_path):
    """Two 'GPUs' (a device list standing in for them), four jobs: each job records the device
    it was given; no two jobs running at once share one; each job is a process of its own."""
    sweep = tmp_path / "sweep"
    cache = fresh_cache(token_cache, tmp_path / "cache")
    proc = multirun([
        "ffn=relu,swiglu", "seed=0,1", *tiny_overrides(cache, steps=40), "logger.mode=disabled",
        "hydra/launcher=gpus", "hydra.launcher.devices=[a,b]", f"hydra.sweep.dir={sweep}",
    ])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = summaries(sweep)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"completed"}
    assert {r["visible_devices"] for r in runs} == {"a", "b"}
    assert len({r["pid"] for r in runs}) == 4  # a fresh process per job, never a reused worker
    overlapping = [
        (r, q) for r, q in combinations(runs, 2)
        if r["started_at"] < q["ended_at"] and q["started_at"] < r["ended_at"]
    ]  # fmt: skip
    assert overlapping, "no two jobs ran at once"
    for r, q in overlapping:
        assert r["visible_devices"] != q["visible_devices"], (r["run_name"], q["run_name"])
    assert {r["threads"] for r in runs} == {max(1, cores() // 2)}


def test_a_two_task_data_parallel_job_through_submitit(token_cache, tmp_path):
    """hydra/launcher=slurm_ddp_local: one job, two tasks, one DDP run over gloo, as slurm_ddp
    runs one over SLURM; it trains as one process does."""
    sweep = tmp_path / "sweep"
    common = [*tiny_overrides(token_cache, steps=12), "logger.mode=disabled",
              "trainer.log_interval=1", "trainer.deterministic=true"]  # fmt: skip
    proc = multirun([*common, "hydra/launcher=slurm_ddp_local", f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    (summary,) = summaries(sweep)
    assert summary["status"] == "completed" and summary["world_size"] == 2
    (job,) = (sweep / ".submitit").glob("[0-9]*")
    assert sorted(p.name.split("_")[1] for p in job.glob("*_log.out")) == ["0", "1"]  # 2 tasks
    single = subprocess.run([sys.executable, str(REPO / "train.py"), *common,
                             f"hydra.run.dir={tmp_path / 'one'}"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]

    def losses(run_dir: Path) -> list[float]:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [r["train/loss"] for r in map(json.loads, lines) if "train/loss" in r]

    ddp = losses(next(p.parent for p in sweep.glob("*/summary.json")))
    assert ddp == pytest.approx(losses(tmp_path / "one"), rel=1e-5) and len(ddp) == 12
