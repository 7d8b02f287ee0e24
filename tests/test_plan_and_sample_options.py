"""The small things a user meets: trainer.plan_gpu read case-insensitively with a suggestion,
and a warning where nothing reads it; the sampler's help shows its defaults and its errors say
what the defaults are."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.config import TrainerConfig
from tests.helpers import REPO


def test_plan_gpu_is_read_case_insensitively_and_suggests_a_name(capsys):
    assert TrainerConfig(dry_run=True, plan_gpu="h100").plan_gpu == "H100"
    with pytest.raises(ValueError, match="did you mean H100"):
        TrainerConfig(dry_run=True, plan_gpu="H10O")
    assert "warning" not in capsys.readouterr().err
    TrainerConfig(plan_gpu="H100")  # without a dry run: read by nothing
    assert "is read only by a plan (trainer.dry_run=true)" in capsys.readouterr().err


def test_the_samplers_help_shows_its_defaults():
    out = subprocess.run(
        [sys.executable, "-m", "harness.tools.sample", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout
    assert "(default: 200)" in out and "(default: 0.8)" in out


def test_a_bad_top_k_names_the_default():
    from harness.errors import UserInputError
    from harness.tools.sample import check_options, parse_args

    with pytest.raises(UserInputError, match="the default 200"):
        check_options(parse_args(["run", "--top-k", "0"]))
