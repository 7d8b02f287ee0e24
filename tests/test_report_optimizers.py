"""A sweep over optimizers: the interaction of each difference with the optimizer (a paired
difference of differences, Holm over its own family) and Kendall's tau between the rankings,
recomputed from runs.csv alone with scipy and statsmodels."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.multitest import multipletests

from sweep.report import main
from tests.helpers.fake_runs import write_run

SEEDS = range(6)
RNG = np.random.default_rng(3)
NOISE = RNG.normal(0, 0.02, size=6)
# Under AdamW swiglu is 0.06 behind relu2; under Muon level with it: an interaction of -0.06
BASE = {
    ("adamw", "relu"): 5.30,
    ("adamw", "relu2"): 5.25,
    ("adamw", "swiglu"): 5.31,
    ("muon", "relu"): 5.20,
    ("muon", "relu2"): 5.16,
    ("muon", "swiglu"): 5.16,
}
FINAL = {k: {s: float(v + NOISE[s] + RNG.normal(0, 0.005)) for s in SEEDS} for k, v in BASE.items()}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multirun") / "contenders_optim" / "2026-12-07_10-00-00"
    for job, ((o, v), s) in enumerate(itertools.product(FINAL, SEEDS)):
        write_run(
            root / f"{job}_{v}-s{s}",
            v,
            s,
            FINAL[o, v][s],
            overrides=(f"optim={o}",),
            experiment="contenders_optim",
        )
    out = tmp_path_factory.mktemp("results")
    args = [
        str(root),
        "--out",
        str(out),
        "--name",
        "r",
        "--baseline",
        "relu",
        "--baseline",
        "relu2",
    ]
    assert main(args) == 0
    return out / "r"


def test_the_interaction_and_tau_are_recomputed_from_runs_csv(report: Path) -> None:
    with (report / "runs.csv").open() as f:
        runs = list(csv.DictReader(f))
    loss = {
        (r["optimizer"], r["variant"], int(r["seed"])): float(r["final_val_loss"]) for r in runs
    }
    summary = json.loads((report / "summary.json").read_text())
    across = summary["across_optimizers"]
    assert across["reference"] == "adamw"
    pairs = [(v, b) for b in ("relu", "relu2") for v in ("relu", "relu2", "swiglu") if v != b]
    raw, means = [], []
    for v, b in pairs:
        inter = [
            (loss["muon", v, s] - loss["muon", b, s]) - (loss["adamw", v, s] - loss["adamw", b, s])
            for s in SEEDS
        ]
        means.append(np.mean(inter))
        raw.append(scipy.stats.ttest_1samp(inter, 0.0).pvalue)
    adjusted = multipletests(raw, alpha=0.05, method="holm")[1]
    got = {(i["variant"], i["baseline"]): i for i in across["interactions"]}
    assert set(got) == set(pairs) and across["family_size"] == len(pairs)
    for (v, b), m, p, a in zip(pairs, means, raw, adjusted, strict=True):
        assert got[v, b]["mean"] == pytest.approx(m, abs=1e-12)
        assert got[v, b]["p_value"] == pytest.approx(p, rel=1e-9)
        assert got[v, b]["p_adjusted"] == pytest.approx(a, rel=1e-9)
    assert got["swiglu", "relu2"]["significant"] and got["swiglu", "relu2"]["mean"] < -0.04
    variants = ["relu", "relu2", "swiglu"]
    mean = {
        (o, v): np.mean([loss[o, v, s] for s in SEEDS]) for o in ("adamw", "muon") for v in variants
    }
    tau, p = scipy.stats.kendalltau(
        [mean["adamw", v] for v in variants], [mean["muon", v] for v in variants]
    )
    assert across["kendall_tau"]["muon"]["tau"] == pytest.approx(tau)
    assert across["kendall_tau"]["muon"]["p_value"] == pytest.approx(p)


def test_the_report_shows_rankings_interactions_and_the_claim_under_muon(report: Path) -> None:
    md = (report / "report.md").read_text()
    section = md.split("## Across optimizers")[1].split("\n## ")[0]
    assert "**adamw**: relu2 < " in section and "**muon**:" in section
    assert "Kendall's τ between the rankings: muon vs adamw: τ =" in section
    assert "| swiglu − relu2 | muon |" in section
    assert "interactions survive Holm: " in section and "swiglu − relu2 under muon" in section
    assert (
        "nanochat's *SwiGLU worse than ReLU²* (made under Muon), judged under Muon here:" in section
    )
    # The ranking and family under each optimizer: rows per optimizer, paired within it
    assert "swiglu (optim=muon)" in md and "swiglu (optim=adamw)" in md
