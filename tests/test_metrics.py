"""The metrics sink: metrics.jsonl (truncated on resume, one JSON policy), and W&B failures that
never stop training, even with an exception whose message is empty."""

from __future__ import annotations

import json
import math

import pytest

from harness.json_safe import dumps, json_safe
from harness.metrics import JsonlLogger
from harness.summary import RunSummary
from tests.helpers import tiny_overrides, train


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_jsonl_on_resume_drops_what_came_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = JsonlLogger(path)
    for step in range(6):
        log.log(step, {"step": step, "train/loss": 1.0 / (step + 1)})
    log.close(RunSummary())
    with path.open("a") as f:
        f.write('{"step": 6, "train/lo')  # a line cut short by a crash
    resumed = JsonlLogger(path, resume_step=3)
    assert [r["step"] for r in lines(path)] == [0, 1, 2, 3]
    resumed.log(4, {"step": 4, "train/loss": 0.5})
    resumed.close(RunSummary())
    assert [r["step"] for r in lines(path)] == [0, 1, 2, 3, 4]


def test_a_fresh_run_starts_an_empty_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\n')
    JsonlLogger(path).close(RunSummary())
    assert path.read_text() == ""


def test_non_finite_values_are_null_everywhere(tmp_path):
    record = {"step": 1, "a": math.nan, "b": math.inf, "c": [1.0, -math.inf], "d": {"e": math.nan}}
    assert json_safe(record) == {
        "step": 1,
        "a": None,
        "b": None,
        "c": [1.0, None],
        "d": {"e": None},
    }
    log = JsonlLogger(tmp_path / "metrics.jsonl")
    log.log(1, record)
    assert lines(tmp_path / "metrics.jsonl") == [json_safe(record)]
    summary = RunSummary("relu", 0, final_val_loss=math.inf)
    summary.write(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["final_val_loss"] is None
    assert "NaN" not in dumps(record) and "Infinity" not in dumps(record)


def test_wandb_init_failing_without_a_message_leaves_training_going(
    token_cache, tmp_path, monkeypatch, capfd
):
    import wandb

    def refuse(*args, **kwargs):
        raise RuntimeError()  # str(e) == "": no first line to take

    from harness import metrics

    monkeypatch.setattr(wandb, "init", refuse)
    # A server that answers (the probe passes) but whose init fails: the online path's fallback.
    monkeypatch.setattr(metrics, "server_reachable", lambda url: True)
    summary = train([*tiny_overrides(token_cache, steps=4), "logger.mode=online"], tmp_path)
    assert summary.status == "completed" and summary.steps == 4
    err = capfd.readouterr().err
    assert "W&B online init failed (RuntimeError)" in err
    assert "W&B is unavailable (RuntimeError); metrics go to local files only" in err
    assert max(r["step"] for r in lines(tmp_path / "metrics.jsonl")) == 4


def test_wandb_log_failing_without_a_message_leaves_training_going(
    token_cache, tmp_path, monkeypatch, capfd
):
    from wandb.sdk.wandb_run import Run

    def refuse(self, *args, **kwargs):
        raise ValueError()

    monkeypatch.setattr(Run, "log", refuse)
    summary = train([*tiny_overrides(token_cache, steps=4), "logger.mode=offline"], tmp_path)
    assert summary.status == "completed"
    assert "W&B log failed at step 0 (ValueError); continuing" in capfd.readouterr().err
    assert max(r["step"] for r in lines(tmp_path / "metrics.jsonl")) == 4


@pytest.mark.parametrize("message", ["", "\n\n", "first\nsecond"])
def test_one_line_is_safe_on_any_message(message):
    from harness.errors import one_line

    text = one_line(OSError(message))
    assert "\n" not in text and text.startswith("OSError")
    assert one_line(OSError(message), typed=False) == ("first" if message.strip() else "OSError")
