"""Stage 1: the CUDA tests in parallel pytest processes (shards), read back from JUnit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.gpu_check.config import REPO, SHARDS, TEST_FILES, TEST_MARKS
from bench.gpu_check.records import Report, Stage
from bench.gpu_check.run import stage_timeout


def junit_counts(path: Path) -> dict[str, dict[str, int]]:
    """Per test file: passed, failed, skipped, from pytest's JUnit XML."""
    counts: dict[str, dict[str, int]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "?").split(".")[-1]
        c = counts.setdefault(module, {"passed": 0, "failed": 0, "skipped": 0})
        if case.find("failure") is not None or case.find("error") is not None:
            c["failed"] += 1
        elif case.find("skipped") is not None:
            c["skipped"] += 1
        else:
            c["passed"] += 1
    return counts


def junit_failures(path: Path) -> list[str]:
    """'module::test: first line of the message' for each failed or erroring test."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if bad is not None:
            module = case.get("classname", "?").split(".")[-1]
            message = (bad.get("message") or "").strip().splitlines()
            out.append(f"{module}::{case.get('name')}: {message[0][:200] if message else ''}")
    return out


def merge_counts(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for part in parts:
        for module, counts in part.items():
            t = total.setdefault(module, {"passed": 0, "failed": 0, "skipped": 0})
            for k, v in counts.items():
                t[k] += v
    return total


def test_command(xml: Path, shard: tuple[int, int] | None, files: tuple[str, ...]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", TEST_MARKS]
    cmd += [f"--junitxml={xml}"]
    if shard is not None:
        cmd.append(f"--shard={shard[0]}/{shard[1]}")
    return cmd + list(files)


def run_tests(report: Report, out: Path, stage: Stage) -> None:
    folder = out / "tests"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    deadline = time.monotonic() + stage_timeout(stage.estimate_s)
    procs = []
    for k in range(SHARDS):
        log = open(folder / f"shard-{k}.log", "w")  # closed once the process is done
        cmd = test_command(folder / f"shard-{k}.xml", (k, SHARDS), TEST_FILES)
        procs.append((subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=log, env=env), log))
    stopped = []
    for k, (proc, log) in enumerate(procs):
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stopped.append(k)
        log.close()
    xmls = [folder / f"shard-{k}.xml" for k in range(SHARDS)]
    report.tests = merge_counts([junit_counts(x) for x in xmls if x.exists()])
    report.test_failures = [f for x in xmls if x.exists() for f in junit_failures(x)]
    missing = [k for k in range(SHARDS) if not xmls[k].exists()]
    failed = sum(c["failed"] for c in report.tests.values())
    notes = [f"{sum(sum(c.values()) for c in report.tests.values())} tests, {failed} failed"]
    if stopped:
        notes.append(f"shards {stopped} stopped at the time limit")
    if missing:
        notes.append(f"shards {missing} wrote no results (see tests/shard-K.log)")
    stage.note = "; ".join(notes)
    stage.status = "failed" if failed or missing or stopped else "done"
