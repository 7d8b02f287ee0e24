"""Text from a run: the seeded sample at the end of training (console, summary.json, W&B's
table), and python -m harness.tools.sample on the run, offline; its bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, fresh_cache, run_train, tiny_overrides, wandb_records


@pytest.fixture(scope="module")
def run_dir(token_cache, tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("sampled")
    cache = fresh_cache(token_cache, tmp / "cache")
    run = tmp / "run"
    proc = run_train(
        [*tiny_overrides(cache, steps=2), "trainer.sample_tokens=12", f"hydra.run.dir={run}"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, proc.stdout


def sample(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.tools.sample", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_run_ends_with_a_seeded_sample(run_dir, token_cache, tmp_path):
    run, stdout = run_dir
    text = json.loads((run / "summary.json").read_text())["sample"]
    assert text and "sample     " in stdout
    again = tmp_path / "again"
    cache = fresh_cache(token_cache, tmp_path / "cache")
    proc = run_train(
        [*tiny_overrides(cache, steps=2), "trainer.sample_tokens=12", f"hydra.run.dir={again}"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((again / "summary.json").read_text())["sample"] == text  # same seed
    tables = [r for r in wandb_records(run, "history") if "samples" in json.dumps(r)]
    assert tables, "no samples table in the W&B run"


def test_the_sample_command_reads_the_run_back(run_dir):
    run, _ = run_dir
    proc = sample(str(run), "--prompt", "To be", "--num-samples", "2", "--max-new-tokens", "8")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("--- sample") == 2 and "To be" in proc.stdout
    repeat = sample(str(run), "--prompt", "To be", "--num-samples", "2", "--max-new-tokens", "8")
    assert repeat.stdout == proc.stdout  # seeded
    (checkpoint,) = sorted((run / "checkpoints").glob("*.pt"))[-1:]
    assert sample(str(checkpoint), "--max-new-tokens", "4").returncode == 0


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("not_a_run", "is not a run dir"),
        ("no_checkpoint", "holds no checkpoint"),
        ("long_prompt", "do not fit the model's context of 32"),
        ("empty_prompt", "the prompt has no tokens"),
        ("top_k_0", "--top-k 0: give at least 1"),
        ("top_k_negative", "--top-k -5: give at least 1"),
        ("temperature_nan", "--temperature nan: give a finite number"),
        ("temperature_inf", "--temperature inf: give a finite number"),
        ("corrupt", "every checkpoint in"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, message, run_dir, tmp_path):
    run, _ = run_dir
    args = {
        "missing": [str(tmp_path / "nowhere")],
        "not_a_run": [str(tmp_path)],
        "no_checkpoint": [str(tmp_path / "ran")],
        "long_prompt": [str(run), "--prompt", "word " * 40],
        "empty_prompt": [str(run), "--prompt", ""],
        "top_k_0": [str(run), "--top-k", "0"],
        "top_k_negative": [str(run), "--top-k", "-5"],
        "temperature_nan": [str(run), "--temperature", "nan"],
        "temperature_inf": [str(run), "--temperature", "inf"],
        "corrupt": [str(tmp_path / "broken")],
    }[case]
    if case == "corrupt":  # the only checkpoint truncated: named as corrupt, not as missing
        (tmp_path / "broken" / "checkpoints").mkdir(parents=True)
        (tmp_path / "broken" / "summary.json").write_text("{}")
        good = sorted((run / "checkpoints").glob("*.pt"))[-1].read_bytes()
        (tmp_path / "broken" / "checkpoints" / "step_0000004.pt").write_bytes(good[:1000])
    if case == "no_checkpoint":
        (tmp_path / "ran").mkdir()
        (tmp_path / "ran" / "summary.json").write_text("{}")
    proc = sample(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    if case == "corrupt":
        assert "step_0000004.pt is corrupt or truncated" in proc.stderr
