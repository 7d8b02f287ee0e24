"""Per-variant learning rates: the grid, the chosen rate and its edge warning (python -m
sweep.tune on fabricated tuning sweeps), and stage 2 (hydra.sweeper.tuned) on the tiny fixture:
its jobs compose with their rates, a missing variant or size is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli import check_command_line
from harness.errors import UserInputError
from harness.tuned import TunedRates, lr_grid
from sweep.report import main as report_main
from sweep.tune import main as tune_main
from tests.helpers import REPO, fresh_cache, tiny_overrides
from tests.helpers.fake_runs import write_run

GRID = [0.00075, 0.0015, 0.003, 0.006, 0.012]  # the fabricated sweeps' grid: factor 2
DEFAULT_GRID = [0.0015, 0.00212132, 0.003, 0.00424264, 0.006]  # sqrt(2) apart


def test_the_grid_is_log_spaced_and_centred_on_the_default() -> None:
    assert lr_grid(3e-3) == DEFAULT_GRID
    assert lr_grid(3e-3, factor=2) == GRID
    assert lr_grid(1e-3, points=3, factor=4) == [0.00025, 0.001, 0.004]
    even = lr_grid(1e-2, points=4, factor=2)
    assert even[1] * even[2] == pytest.approx(1e-4, rel=1e-5)  # geometric centre
    for bad in (dict(points=2), dict(factor=1.0), dict(center=0.0)):
        with pytest.raises(UserInputError):
            lr_grid(**{"center": 3e-3, **bad})


def test_make_tune_prints_the_grid_of_the_experiment(capsys) -> None:
    assert tune_main(["--grid", "experiment=contenders"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(f"{x:g}" for x in DEFAULT_GRID)


# final val loss per (size, variant) at each rate of GRID; None: the run diverged
LOSSES = {
    ("tiny", "relu"): [5.40, 5.30, 5.20, 5.25, None],  # minimum inside the grid
    ("tiny", "swiglu"): [5.50, 5.40, 5.30, 5.20, 5.10],  # minimum at the largest rate
    ("cpu_d64", "relu"): [5.60, 5.70, 5.80, 5.90, 6.00],  # minimum at the smallest rate
    ("cpu_d64", "swiglu"): [5.90, 5.70, 5.60, 5.65, 5.80],
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("multirun") / "contenders_tune" / "2026-12-01_10-00-00"
    job = 0
    for (size, variant), losses in LOSSES.items():
        for lr, loss in zip(GRID, losses, strict=True):
            write_run(
                root / f"{job}_{variant}-s0",
                variant,
                0,
                loss,
                status="completed" if loss is not None else "diverged",
                model=size,
                lr=lr,
                overrides=(f"optim.lr={lr}", f"model={size}"),
                experiment="contenders",
            )
            job += 1
    out = tmp_path_factory.mktemp("results")
    return {"root": root, "out": out, "rc": tune_main([str(root), "--out", str(out)])}


def vertex(lrs: list[float], losses: list[float], weights: list[float] | None = None) -> float:
    """The oracle: numpy's weighted least-squares parabola in log lr, its minimum (polyfit's
    weights multiply the residuals: the square roots of ours)."""
    w = None if weights is None else np.sqrt(weights)
    a, b, _ = np.polyfit(np.log(lrs), losses, 2, w=w)
    return float(np.exp(-b / (2 * a)))


def test_the_chosen_rate_is_the_fitted_vertex_over_every_grid_point_clamped(
    tuned: dict,
) -> None:
    assert tuned["rc"] == 1  # two best points sit at the grid's edge: the grid must change
    dest = tuned["out"] / "contenders_tune"
    rates = TunedRates.load(dest / "tuned.yaml")
    # One seed: every completed rate weighs the same (relu's diverged rate has no loss)
    inner = {
        ("tiny", "relu"): vertex(GRID[:4], [5.40, 5.30, 5.20, 5.25]),
        ("cpu_d64", "swiglu"): vertex(GRID, [5.90, 5.70, 5.60, 5.65, 5.80]),
    }
    for (size, variant), want in inner.items():
        want = min(max(want, GRID[1]), GRID[3])  # clamped to the best point's neighbours
        assert rates.rates[size][variant] == pytest.approx(want, rel=1e-3)
    assert rates.rule.startswith("the vertex of a quadratic") and "clamped" in rates.rule
    # At the edge: the edge point itself, flagged.
    assert rates.rates["tiny"]["swiglu"] == 0.012 and rates.rates["cpu_d64"]["relu"] == 0.00075
    assert rates.experiment == "contenders" and rates.seeds == [0]
    assert rates.tuning_sweep == str(tuned["root"]) and rates.grid["tiny"]["relu"] == GRID
    md = (dest / "report.md").read_text()
    # relu's largest rate diverged: no loss there, and the table says why
    assert "| **relu** | tiny | 5.4000 | 5.3000 | **5.2000** | 5.2500 | diverged |" in md
    assert "tuning slice" in md and "quadratic in log lr" in md and "vertex 95% interval" in md
    assert (dest / "lr_loss.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((dest / "summary.json").read_text())
    curves = {(c["size"], c["variant"]): c for c in summary["curves"]}
    assert curves[("cpu_d64", "swiglu")]["best_on_grid"] == 0.003
    assert curves[("cpu_d64", "swiglu")]["chosen"] == rates.rates["cpu_d64"]["swiglu"]


def test_the_fit_weights_each_rate_by_its_seed_variance_and_gives_an_interval() -> None:
    from sweep.tune import fit_vertex

    # exact on a parabola in log lr whose minimum is 2.5, whatever the weights
    parabola = {
        x: [(np.log(x) - np.log(2.5)) ** 2 + e for e in (-0.01, 0.01)] for x in (1, 2, 4, 8)
    }
    fit = fit_vertex(parabola)
    assert fit.vertex == pytest.approx(2.5) and fit.low <= 2.5 <= fit.high and fit.curved
    # An unstable rate (seeds far apart) counts for little: the weighted oracle agrees
    losses = {1.0: [5.0, 5.02], 2.0: [4.6, 4.61], 4.0: [4.7, 4.72], 8.0: [4.0, 6.0]}
    var = {lr: np.var(v, ddof=1) for lr, v in losses.items()}
    floor = float(np.median(list(var.values())))
    lrs = [lr for lr, v in losses.items() for _ in v]
    ys = [y for v in losses.values() for y in v]
    w = [1 / max(var[lr], floor) for lr in lrs]
    assert fit_vertex(losses).vertex == pytest.approx(vertex(lrs, ys, w), rel=1e-9)
    assert fit_vertex(losses).vertex != pytest.approx(vertex(lrs, ys), rel=1e-3)
    # No minimum where the curve bends down; no fit with fewer than three rates
    assert not np.isfinite(fit_vertex({1.0: [4.0], 2.0: [4.5], 4.0: [4.0]}).vertex)
    assert not np.isfinite(fit_vertex({1.0: [4.0], 2.0: [4.5]}).vertex)


def test_an_edge_minimum_stops_with_the_grid_to_rerun(tuned: dict, tmp_path: Path, capsys) -> None:
    rates = TunedRates.load(tuned["out"] / "contenders_tune" / "tuned.yaml")
    assert rates.at_edge == {"tiny": ["swiglu"], "cpu_d64": ["relu"]}
    md = (tuned["out"] / "contenders_tune" / "report.md").read_text()
    assert "**Warning:**" in md
    assert "swiglu at tiny: the best rate 0.012 is the grid's largest" in md
    assert "relu at cpu_d64: the best rate 0.00075 is the grid's smallest" in md
    assert tune_main([str(tuned["root"]), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "WARNING: swiglu at tiny: the best rate 0.012 is the grid's largest" in err
    assert "TUNE_GRID=0.00075,0.0015,0.003,0.006,0.012,0.024,0.048" in err
    assert "TUNE_GRID=0.0001875,0.000375,0.00075," in err
    assert "WARNING: relu at cpu_d64" in err and "relu at tiny" not in err


def test_a_flat_curve_says_so_and_runs_judged_on_the_test_slice_are_refused(
    tmp_path: Path, capsys
) -> None:
    root = tmp_path / "contenders_tune" / "2026-12-01_10-00-00"
    # Two seeds each; seed spread 0.05; the neighbour at 0.006 is 0.01 behind: flat.
    grid = {0.0015: (5.30, 5.40), 0.003: (5.20, 5.25), 0.006: (5.21, 5.26)}
    job = 0
    for lr, pair in grid.items():
        for seed, loss in zip((100, 101), pair, strict=True):
            write_run(
                root / f"{job}_relu-s{seed}",
                "relu",
                seed,
                loss,
                lr=lr,
                overrides=(f"optim.lr={lr}",),
                experiment="contenders",
            )
            job += 1
    assert tune_main([str(root), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "contenders_tune" / "summary.json").read_text())
    (curve,) = summary["curves"]
    sd = np.sqrt(np.mean([np.var(p, ddof=1) for p in grid.values()]))
    assert curve["seed_sd"] == pytest.approx(sd)
    width = 1.959963984540054 * sd * np.sqrt(2 / 2)
    assert curve["flat"] and curve["resolution_nats"] == pytest.approx(width)
    assert curve["near_ties"] == [0.006]  # 0.01 behind the best, within the resolution
    md = (tmp_path / "out" / "contenders_tune" / "report.md").read_text()
    assert f"**flat**: rates within {width:.3f} nats cannot be told apart" in md
    rates = TunedRates.load(tmp_path / "out" / "contenders_tune" / "tuned.yaml")
    assert rates.flat == {"tiny": {"relu": float(f"{width:.4g}")}}
    # A run evaluated on the test slice cannot choose a rate.
    summary_file = root / "0_relu-s100" / "summary.json"
    data = json.loads(summary_file.read_text())
    data["data"] = {**(data.get("data") or {}), "eval_slice": "test"}
    summary_file.write_text(json.dumps(data))
    capsys.readouterr()
    assert tune_main([str(root), "--out", str(tmp_path / "out2")]) == 2
    assert "data.eval_slice=tune" in capsys.readouterr().err


def test_not_a_tuning_sweep_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    assert tune_main([str(tmp_path / "missing")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------ stage 2


def write_rates(path: Path, rates: dict) -> Path:
    TunedRates(
        rates=rates, experiment="contenders", tuning_sweep="multirun/x", seeds=[100, 101]
    ).write(path)
    return path


def test_a_missing_variant_or_size_fails_the_preflight(tmp_path: Path) -> None:
    """Every (size, variant) of the sweep is looked up before Hydra starts: those of the
    experiment's own sweep too (contenders sweeps eight variants)."""
    five = {"tiny": {v: 1e-3 for v in ("relu", "relu2", "leaky_relu2", "xielu", "geglu")}}
    sweep_dir = f"hydra.sweep.dir={tmp_path / 'sweep'}"
    argv = ["-m", "experiment=contenders", sweep_dir]
    with pytest.raises(UserInputError, match="no rate for swiglu at model tiny"):
        check_command_line([*argv, f"hydra.sweeper.tuned={write_rates(tmp_path / 'a', five)}"])
    other_size = {"cpu_d64": five["tiny"]}
    with pytest.raises(UserInputError, match="no rates for model tiny"):
        check_command_line(
            [*argv, f"hydra.sweeper.tuned={write_rates(tmp_path / 'b', other_size)}"]
        )
    six = {"tiny": {**five["tiny"], "swiglu": 2e-3, "polynorm": 1e-3, "swiglu_oai": 1e-3}}
    tuned = f"hydra.sweeper.tuned={write_rates(tmp_path / 'c', six)}"
    check_command_line([*argv, tuned])  # complete: passes
    with pytest.raises(UserInputError, match="drop optim.lr from the command line"):
        check_command_line([*argv, tuned, "optim.lr=1e-3,2e-3"])
    with pytest.raises(UserInputError, match="for one run give optim.lr=0.002"):
        check_command_line(["ffn=swiglu", tuned])
    # Judged on seeds the tuning never saw, and on the test slice.
    with pytest.raises(UserInputError, match="seed.s. 100 of this sweep also chose the rates"):
        check_command_line([*argv, tuned, "seed=0,100"])
    with pytest.raises(UserInputError, match="data.eval_slice=tune judges this sweep"):
        check_command_line([*argv, tuned, "data.eval_slice=tune"])
    assert not (tmp_path / "sweep").exists()


def multirun(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_stage_2_jobs_compose_with_their_tuned_rates(token_cache, tmp_path: Path) -> None:
    """Each job's overrides and composed config show its variant's rate; the report says the
    comparison was tuned and lists the rates; a missing variant is one line, exit 2, no dir."""
    cache = fresh_cache(token_cache, tmp_path / "cache")
    rates = write_rates(tmp_path / "tuned.yaml", {"tiny": {"relu": 0.004, "swiglu": 0.0015}})
    tiny = [o for o in tiny_overrides(cache, steps=2) if not o.startswith("optim.lr=")]
    common = ["ffn=relu,swiglu", *tiny, "logger.mode=disabled"]
    sweep = tmp_path / "sweep"
    proc = multirun([*common, f"hydra.sweeper.tuned={rates}", f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    for variant, lr in (("relu", 0.004), ("swiglu", 0.0015)):
        (job,) = sweep.glob(f"*_{variant}-s0")
        assert yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["optim"]["lr"] == lr
        assert yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())[-1] == (
            f"optim.lr={lr}"
        )
    out = tmp_path / "results"
    assert report_main([str(sweep), "--out", str(out), "--name", "r"]) == 0
    md = (out / "r" / "report.md").read_text()
    assert "per-variant tuned rates, from" in md and "tuning sweep `multirun/x`" in md
    assert "relu 0.004" in md and "swiglu 0.0015" in md
    assert "| variant | tuned lr |" in md  # one row per variant, not per rate
    assert "(optim.lr=" not in md

    missing = write_rates(tmp_path / "missing.yaml", {"tiny": {"relu": 0.004}})
    bad = tmp_path / "bad"
    proc = multirun([*common, f"hydra.sweeper.tuned={missing}", f"hydra.sweep.dir={bad}"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {missing} has no rate for swiglu at model tiny (it has relu); tune it (make "
        "tune EXPERIMENT=...) or drop hydra.sweeper.tuned"
    ]
    assert not bad.exists()
