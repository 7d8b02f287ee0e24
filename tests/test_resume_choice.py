"""trainer.resume says what it chose and why: another command's stopped run, unreadable
checkpoints, a changed config refused by name, a longer run extended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checkpoint import find_resume
from harness.errors import UserInputError
from harness.resume_dir import unfinished_dir
from harness.run_checkpoints import check_same_config


def stopped_run(d: Path, overrides: list[str], checkpoint: bytes = b"not a checkpoint") -> Path:
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (d / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "step_000010.pt").write_bytes(checkpoint)
    return d


def test_auto_says_why_it_starts_fresh_beside_another_commands_run(tmp_path, capsys):
    old = stopped_run(
        tmp_path / "swiglu-s0" / "2026-12-07_10-00-00", ["ffn=swiglu", "trainer.max_steps=40"]
    )
    planned = tmp_path / "swiglu-s0" / "2026-12-07_11-00-00"
    now = ["ffn=swiglu", "trainer.max_steps=60", "trainer.resume=auto"]
    assert unfinished_dir(planned, now, multirun=False) is None
    out = capsys.readouterr().out
    assert f"starting fresh: {old} was interrupted with other overrides" in out
    assert "trainer.max_steps=40 -> 60" in out and "rerun that command" in out
    same = ["ffn=swiglu", "trainer.max_steps=40", "trainer.resume=auto"]
    assert unfinished_dir(planned, same, multirun=False) == old


def test_auto_says_when_every_checkpoint_is_unreadable(tmp_path, capsys):
    run = stopped_run(tmp_path / "run", ["ffn=swiglu"])
    assert find_resume("auto", run) is None
    err = capsys.readouterr().err
    assert f"starting fresh: {run}'s checkpoints are all unreadable (step_000010.pt)" in err
    assert "trying the previous checkpoint" not in err  # there is no previous one


def test_a_changed_config_is_refused_by_name_and_a_longer_run_extends():
    saved = {"ffn": {"name": "swiglu"}, "trainer": {"max_steps": 40}, "optim": {"lr": 0.003}}
    longer = {**saved, "trainer": {"max_steps": 60}}
    assert check_same_config(saved, saved, Path("c.pt")) == ""
    assert check_same_config(saved, longer, Path("c.pt")) == "trainer.max_steps=40 -> 60"
    other = {**saved, "optim": {"lr": 0.001}}
    with pytest.raises(UserInputError, match=r"optim.lr=0.003 \(now 0.001\)"):
        check_same_config(saved, other, Path("c.pt"))
