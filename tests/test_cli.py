"""train.py's pre-flight: each distinct choice composed once, the planned run dir read from it."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness.cli as cli
from harness.errors import UserInputError


@pytest.fixture
def compositions(monkeypatch) -> list[list[str]]:
    """The override lists compose_config is called with (it still composes for real)."""
    calls: list[list[str]] = []
    real = cli.compose_config

    def counting(overrides: list[str], hydra_node: bool = False):
        calls.append(list(overrides))
        return real(overrides, hydra_node)

    monkeypatch.setattr(cli, "compose_config", counting)
    return calls


def test_a_plain_run_is_composed_once_before_hydra(compositions, tmp_path):
    planned = cli.check_command_line(["ffn=geglu", f"hydra.run.dir={tmp_path}/run"])
    assert planned == (tmp_path / "run").absolute()
    assert len(compositions) == 1


def test_the_planned_dir_follows_the_run_dir_pattern(compositions):
    planned = cli.check_command_line(["ffn=geglu", "seed=3"])
    assert planned.parent == (Path("outputs") / "geglu-s3").absolute()


def test_a_sweep_composes_each_distinct_value_once(compositions):
    planned = cli.check_command_line(["-m", "ffn=relu,geglu,swiglu", "seed=0,1"])
    assert len(compositions) == 4  # the base choice, then geglu, swiglu and seed=1
    assert planned.parent == (Path("multirun") / "sweep").absolute()


def test_a_bad_value_in_a_sweep_is_one_line(compositions):
    with pytest.raises(UserInputError, match="unknown ffn 'nope'") as e:
        cli.check_command_line(["-m", "ffn=relu,nope"])
    assert "\n" not in str(e.value)


def test_whether_a_command_is_a_sweep_is_hydras_own_reading():
    from harness.cli import is_sweep

    assert is_sweep(["-m", "ffn=relu"]) and is_sweep(["ffn=relu", "--multirun"])
    assert not is_sweep(["ffn=relu", "seed=0,1"])  # a comma list alone is no sweep
    assert not is_sweep(["data.path=/x/-m"])  # nor an override that contains the flag's text
    from tests.helpers import REPO

    by_hand = [p for p in REPO.glob("harness/**/*.py") if '"-m" in ' in p.read_text()]
    assert by_hand == [], by_hand  # decided once, in harness.cli.is_sweep
