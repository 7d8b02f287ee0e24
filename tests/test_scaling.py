"""Compute multipliers on synthetic sweeps with known answers, and fits that cannot be made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sweep.report import main
from sweep.scaling import Point, fit_curve, multipliers
from tests.helpers.fake_runs import write_run

E, A, ALPHA, C0 = 3.0, 2.0, 0.3, 1e12
SIZES = {"cpu_d64": 1e12, "cpu_d96": 4e12, "cpu_d128": 16e12}


def curve(compute: float) -> float:
    return E + A * (compute / C0) ** -ALPHA


def synthetic(
    factor: float, seeds: int = 4, noise: float = 0.004, paired: bool = True, rng_seed: int = 1
) -> list[Point]:
    """relu on the curve; swiglu on it with its compute scaled by `factor` (a multiplier of
    `factor`); seed noise partly shared by the two (paired: the same batches) or not."""
    rng = np.random.default_rng(rng_seed)
    points = []
    for size, compute in SIZES.items():
        for seed in range(seeds):
            shared, own = rng.normal(0, noise, size=2)
            mine = 0.5 * shared + 0.87 * own if paired else own
            points.append(Point("relu", size, seed, compute, curve(compute) + shared))
            points.append(Point("swiglu", size, seed, compute, curve(factor * compute) + mine))
    return points


@pytest.mark.parametrize("factor", [1.3, 0.8])
@pytest.mark.parametrize("paired", [True, False])
def test_a_known_multiplier_is_found_within_its_interval(factor, paired):
    fits, rows = multipliers(synthetic(factor, seeds=5, paired=paired), "relu")
    assert fits["relu"].ok and fits["swiglu"].ok
    assert fits["relu"].alpha == pytest.approx(ALPHA, abs=0.1)
    assert [m.size for m in rows] == list(SIZES)  # in order of compute
    for m in rows:
        assert m.low <= factor <= m.high, m
        assert m.value == pytest.approx(factor, rel=0.1) and m.low < m.value < m.high


def test_the_intervals_cover_the_true_multiplier_about_95_percent_of_the_time(monkeypatch):
    import sweep.scaling

    monkeypatch.setattr(sweep.scaling, "BOOTSTRAP", 200)
    rows = [
        m
        for trial in range(20)
        for m in multipliers(synthetic(1.3, seeds=3, rng_seed=trial), "relu", seed=trial)[1]
    ]
    covered = sum(m.low <= 1.3 <= m.high for m in rows) / len(rows)
    assert len(rows) == 60 and covered >= 0.8, covered


def test_too_few_sizes_is_said_never_a_number():
    points = [p for p in synthetic(1.3) if p.size != "cpu_d128"]
    fits, rows = multipliers(points, "relu")
    assert fits["relu"].reason == "needs runs at 3 or more model sizes, has 2"
    assert all(m.value is None and "3 or more model sizes" in m.note for m in rows)


def test_losses_that_do_not_fall_are_said_never_a_number():
    flat = [
        Point("relu", s, seed, c, 4.0 + 0.01 * seed) for s, c in SIZES.items() for seed in range(3)
    ]
    assert fit_curve(flat).reason == "the mean loss does not fall as compute grows"
    rising = [Point("relu", s, 0, c, 3.0 + c / 1e13) for s, c in SIZES.items()]
    assert not fit_curve(rising).ok


def test_a_loss_below_the_baseline_floor_has_no_multiplier():
    points = synthetic(1.3, seeds=3)
    points = [
        p
        if p.variant == "relu" or p.size != "cpu_d128"
        else Point(p.variant, p.size, p.seed, p.compute, E - 0.5)
        for p in points
    ]
    _, rows = multipliers(points, "relu")
    last = rows[-1]
    assert last.size == "cpu_d128" and last.value is None and "floor" in last.note


def write_scaling_sweep(root: Path, factor: float, sizes=SIZES) -> None:
    tokens = 100_000
    job = 0
    for size, compute in sizes.items():
        for variant, scale in (("relu", 1.0), ("swiglu", factor)):
            for seed, noise in enumerate((0.003, -0.002, 0.001)):
                write_run(
                    root / str(job),
                    variant,
                    seed,
                    curve(scale * compute) + noise,
                    group="scaling-test",
                    overrides=(f"model={size}",),
                )
                summary = json.loads((root / str(job) / "summary.json").read_text())
                summary.update(model=size, tokens=tokens)
                summary["flops_per_token"]["train"] = compute / tokens
                # Each size its own parameters and FFN share: 10%, 20%, 30%.
                summary["params"]["total"] *= 1 + list(sizes).index(size)
                summary["flops_per_token"]["ffn_share"] = 0.1 * (1 + list(sizes).index(size))
                (root / str(job) / "summary.json").write_text(json.dumps(summary))
                job += 1


def test_the_report_of_a_scaling_sweep(tmp_path):
    write_scaling_sweep(tmp_path / "sweep", 1.3)
    assert main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")]) == 0
    dest = tmp_path / "out" / "scaling-test"
    md = (dest / "report.md").read_text()
    section = md.split("## Compute multipliers")[1].split("\n## ")[0]
    assert "### Against relu" in section
    rows = [ln for ln in section.splitlines() if ln.startswith("| **swiglu** | cpu_d")]
    assert len(rows) == 3
    for row in rows:
        value, low, high = (
            float(x)
            for x in row.split("|")[5]
            .replace("x", "")
            .replace("[", "")
            .replace("]", "")
            .replace(",", "")
            .split()
        )
        assert low <= 1.3 <= high and value == pytest.approx(1.3, rel=0.1)
    assert (dest / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    # Variants are compared at each size, never one size with another.
    assert "total parameters differ by 0.03% across variants" in md
    assert (
        "the FFN's share of the training FLOPs is 10.0% at model=cpu_d64, 20.0% at "
        "model=cpu_d96, 30.0% at model=cpu_d128."
    ) in md
    summary = json.loads((dest / "summary.json").read_text())
    assert summary["scaling"]["fits"]["relu"]["reason"] == ""
    assert len(summary["scaling"]["multipliers"]["relu"]) == 3


def test_the_report_says_why_there_is_no_multiplier(tmp_path):
    two = {k: v for k, v in SIZES.items() if k != "cpu_d128"}
    write_scaling_sweep(tmp_path / "sweep", 1.3, sizes=two)
    assert main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "scaling-test" / "report.md").read_text()
    section = md.split("## Compute multipliers")[1].split("\n## ")[0]
    assert "no fit: needs runs at 3 or more model sizes, has 2" in section
    assert "n/a (no baseline fit: needs runs at 3 or more model sizes, has 2)" in section
