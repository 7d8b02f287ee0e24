"""The verdict's statistics recomputed from the report's per-run CSV alone, with independent
tools: scipy for the means, intervals and paired t-tests, statsmodels for Holm's adjustment over
the family the report names."""

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

BASELINES = ("relu", "relu2")
# final val loss per seed: relu2 clearly lowest; swiglu and xielu within a seed's noise of relu
RNG = np.random.default_rng(0)
NOISE = RNG.normal(0, 0.02, size=6)  # shared per seed: the pairing removes it
FINAL = {
    v: {s: float(base + NOISE[s] + RNG.normal(0, 0.006)) for s in range(6)}
    for v, base in (("relu", 5.30), ("relu2", 5.25), ("swiglu", 5.297), ("xielu", 5.305))
}
# The final evaluation per held-out document: each document's own difficulty, and relu2's lead
# carried by two documents of five only (so it holds on this text, not across texts), while
# swiglu - relu is spread evenly; the token-weighted mean of each run is its final loss.
TOKENS = {"a": 300, "b": 200, "c": 250, "d": 150, "e": 100}
LEAD = {"a": -0.12, "b": -0.11, "c": 0.03, "d": 0.02, "e": 0.03}


def per_document(v: str, s: int) -> dict[str, tuple[int, float]]:
    rng = np.random.default_rng([s, len(v)])
    offsets = {k: 0.2 * i + rng.normal(0, 0.01) for i, k in enumerate(TOKENS)}
    if v == "relu2":
        offsets = {k: o + LEAD[k] for k, o in offsets.items()}
    total = sum(TOKENS.values())
    shift = sum(TOKENS[k] * o for k, o in offsets.items()) / total
    return {k: (TOKENS[k], FINAL[v][s] + o - shift) for k, o in offsets.items()}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multirun") / "contenders" / "2026-12-06_10-00-00"
    for job, (v, s) in enumerate(itertools.product(FINAL, range(6))):
        write_run(
            root / f"{job}_{v}-s{s}",
            v,
            s,
            FINAL[v][s],
            lr=0.003,
            experiment="contenders",
            bpb=FINAL[v][s] * 0.55,
            documents=per_document(v, s),
        )
    write_run(root / "99_relu-s9", "relu", 9, None, status="failed", error="RuntimeError: x")
    out = tmp_path_factory.mktemp("results")
    args = [str(root), "--out", str(out), "--name", "r"]
    assert main([*args, *(a for b in BASELINES for a in ("--baseline", b))]) == 0
    return out / "r"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_the_per_run_csv_reproduces_the_report(report: Path) -> None:
    runs = read_csv(report / "runs.csv")
    assert len(runs) == 25 and sum(r["status"] == "completed" for r in runs) == 24
    assert next(r for r in runs if r["seed"] == "9")["status"].startswith("failed (excluded")
    assert {k for k in runs[0]} >= {
        "variant",
        "model",
        "seed",
        "lr",
        "final_val_loss",
        "best_val_loss",
        "final_val_bpb",
        "final_train_loss",
        "tokens",
        "status",
    }
    loss = {
        (r["variant"], int(r["seed"])): float(r["final_val_loss"])
        for r in runs
        if r["status"] == "completed"
    }
    rows = {r["variant"]: r for r in read_csv(report / "report.csv")}
    for v in FINAL:
        x = np.array([loss[(v, s)] for s in range(6)])
        half = scipy.stats.t.ppf(0.975, 5) * x.std(ddof=1) / np.sqrt(6)
        assert float(rows[v]["final_val_loss_mean"]) == pytest.approx(x.mean(), rel=1e-12)
        assert float(rows[v]["final_val_loss_ci_half_width"]) == pytest.approx(half, rel=1e-9)
    # The family: each variant against each baseline, each pair once (relu2 vs relu once), plus
    # xielu vs swiglu, the pair the literature check (Huang & Schlag) uses.
    family = [(v, b) for b in BASELINES for v in FINAL if v != b and (b, v) != ("relu2", "relu")]
    family = [p for p in family if p != ("relu", "relu2")] + [("xielu", "swiglu")]
    raw = [
        scipy.stats.ttest_rel(
            [loss[(a, s)] for s in range(6)], [loss[(b, s)] for s in range(6)]
        ).pvalue
        for a, b in family
    ]
    adjusted = dict(zip(family, multipletests(raw, alpha=0.05, method="holm")[1], strict=True))
    summary = json.loads((report / "summary.json").read_text())
    pairs = summary["families"]["loss"]["pairs"]
    assert summary["families"]["loss"]["size"] == len(family) == 6
    assert {frozenset((p["variant"], p["other"])) for p in pairs} == {frozenset(p) for p in family}
    for p in pairs:
        key = next(k for k in family if set(k) == {p["variant"], p["other"]})
        assert p["p_adjusted"] == pytest.approx(adjusted[key], rel=1e-9)
    for v, b in itertools.product(FINAL, BASELINES):
        if v == b:
            continue
        d = np.array([loss[(v, s)] - loss[(b, s)] for s in range(6)])
        key = next(k for k in family if set(k) == {v, b})
        assert float(rows[v][f"diff_vs_{b}_mean"]) == pytest.approx(d.mean(), rel=1e-9)
        assert float(rows[v][f"diff_vs_{b}_p_adjusted"]) == pytest.approx(adjusted[key])


def test_the_verdict_words_follow_the_adjusted_p(report: Path) -> None:
    md = (report / "report.md").read_text()
    verdict = md.split("## Verdict at familywise α 0.05")[1].split("\n## ")[0]
    summary = json.loads((report / "summary.json").read_text())
    kept = [p for p in summary["families"]["loss"]["pairs"] if p["p_adjusted"] <= 0.05]
    survive = "survives" if len(kept) == 1 else "survive"
    assert f"{len(kept)} of 6 comparisons {survive} the adjustment" in verdict
    assert "**relu2** is lower than **relu**" in verdict  # 0.05 nats at sd ~0.008: survives
    said = {
        frozenset(ln.split("**")[1::2][:2]) for ln in verdict.splitlines() if "is lower than" in ln
    }
    assert said == {frozenset((p["variant"], p["other"])) for p in kept}
    # relu2's lead rests on two documents of five: it survives Holm, but on this text only
    assert "0 of them hold across texts" in verdict or "hold across texts" in verdict
    findings = {frozenset((f["variant"], f["other"])): f for f in summary["findings"]}
    assert findings[frozenset(("relu2", "relu"))]["holds_across_texts"] is False
    assert "on this text only" in verdict
    # bold Δ cells exactly where the adjusted p survives
    rows = {r["variant"]: r for r in read_csv(report / "report.csv")}
    table = md.split("## Results")[1].split("\n\n")[1]
    for line in table.splitlines()[2:]:
        v = line.split("|")[1].strip().strip("*")
        cells = line.split("|")
        for b in BASELINES:
            if v == b:
                continue
            adjusted = float(rows[v][f"diff_vs_{b}_p_adjusted"])
            i = 1 + [
                c.strip()
                for c in md.split("## Results")[1].split("\n\n")[1].splitlines()[0].split("|")[1:]
            ].index(f"Δ final vs {b}")
            assert cells[i].strip().startswith("**") == (adjusted <= 0.05), (v, b)


def test_along_training_the_differences_their_sign_changes_and_the_gaps(tmp_path: Path) -> None:
    """swiglu is ahead of relu at step 50 on every seed and behind it at 100: a crossing."""
    root = tmp_path / "sweep"
    data = {"eval_slice": "test", "val_tokens": 49_152}
    for seed in range(3):
        e = 0.01 * seed
        for job, (v, curve) in enumerate(
            (
                ("relu", {0: 9.0, 50: 6.0 + e, 100: 5.0 + e}),
                ("swiglu", {0: 9.0, 50: 5.9 + e, 100: 5.1 + 2 * e}),
            )
        ):
            write_run(root / f"{seed}{job}", v, seed, curve[100], val_curve=curve, data=data)
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--name", "r"]) == 0
    summary = json.loads((out / "r" / "summary.json").read_text())
    (a,) = summary["along_training"]
    assert (a["variant"], a["baseline"], a["steps"]) == ("swiglu", "relu", [0, 50, 100])
    want = [np.mean([0.1 + 0.01 * s for s in range(3)]), 0.0]
    assert a["mean"][1:] == pytest.approx([-0.1, want[0]])
    assert a["sign_changes_at"] == [100]
    md = (out / "r" / "report.md").read_text()
    section = md.split("## Along training")[1].split("\n## ")[0]
    assert "| swiglu − relu | -0.1000 ± 0.0000 |" in section and "| 100 |" in section
    assert "1 of 1 differences change sign during training (swiglu − relu)" in section
    assert (out / "r" / "diff_along.png").read_bytes()[:4] == b"\x89PNG"
    gaps = {g["variant"]: g for g in summary["train_val_gap"]}
    assert gaps["relu"]["gap"] == pytest.approx(0.0)  # the fake runs' train loss = final val
    assert "### Train–val gap" in section
    assert "every loss averages 49,152 tokens of the held-out split's test slice" in md
    assert summary["evaluation"]["slices"] == ["test"]
    assert summary["evaluation"]["tokens"] == [49152]


def bootstrap_oracle(d: np.ndarray, tokens: np.ndarray, draws: int, seed: int) -> tuple:
    """The two-level bootstrap written out draw by draw: resample seeds, then documents."""
    rng = np.random.default_rng(seed)
    n_seeds, n_docs = d.shape
    seeds = rng.integers(0, n_seeds, size=(draws, n_seeds))
    docs = rng.integers(0, n_docs, size=(draws, n_docs))
    stats = []
    for b in range(draws):
        by_doc = [np.mean([d[s, k] for s in seeds[b]]) for k in docs[b]]
        w = tokens[docs[b]]
        stats.append(float(np.dot(by_doc, w) / w.sum()))
    return tuple(np.percentile(stats, [2.5, 97.5]))


def test_the_text_level_view_is_recomputed_from_the_per_document_table(report: Path) -> None:
    from sweep.documents import BOOTSTRAP_DRAWS, BOOTSTRAP_SEED

    rows = read_csv(report / "documents.csv")
    assert len(rows) == 24 * len(TOKENS)  # every completed run, every document
    table = {(r["variant"], int(r["seed"]), r["document"]): float(r["loss"]) for r in rows}
    tokens = np.array([TOKENS[k] for k in sorted(TOKENS)], dtype=float)
    summary = json.loads((report / "summary.json").read_text())
    for t in summary["text_level"]:
        v, o = t["variant"], t["other"]
        d = np.array([[table[v, s, k] - table[o, s, k] for k in sorted(TOKENS)] for s in range(6)])
        by_doc = d.mean(axis=0)
        assert t["mean"] == pytest.approx(float(by_doc @ tokens / tokens.sum()), abs=1e-12)
        assert (t["favour_variant"], t["favour_other"]) == (
            int((by_doc < 0).sum()),
            int((by_doc > 0).sum()),
        )
        low, high = bootstrap_oracle(d, tokens, BOOTSTRAP_DRAWS, BOOTSTRAP_SEED)
        assert (t["ci_low"], t["ci_high"]) == pytest.approx((low, high), rel=1e-9)
    lead = next(t for t in summary["text_level"] if {t["variant"], t["other"]} == {"relu", "relu2"})
    assert lead["ci_low"] < 0 < lead["ci_high"]  # two documents carry it: not across texts
    assert sorted([lead["favour_variant"], lead["favour_other"]]) == [2, 3]


def test_bpb_is_the_same_family_in_another_unit(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    assert list(summary["families"]) == ["loss"]
    assert "the same tests in another unit" in summary["family_unit_reason"]
    rows = {r["variant"]: r for r in read_csv(report / "report.csv")}
    for v in FINAL:
        for b in BASELINES:
            if v != b:
                nats = rows[v][f"diff_vs_{b}_p_adjusted"]
                assert rows[v][f"diff_bpb_vs_{b}_p_adjusted"] == nats


def test_the_along_training_table_is_recomputed_from_evals_csv(report: Path) -> None:
    evals = read_csv(report / "evals.csv")
    assert {int(r["step"]) for r in evals} == {0, 50, 100}
    curve = {(r["variant"], int(r["seed"]), int(r["step"])): float(r["val_loss"]) for r in evals}
    summary = json.loads((report / "summary.json").read_text())
    for a in summary["along_training"]:
        for step, mean in zip(a["steps"], a["mean"], strict=True):
            d = [curve[a["variant"], s, step] - curve[a["baseline"], s, step] for s in range(6)]
            assert mean == pytest.approx(float(np.mean(d)), abs=1e-12)


def test_a_one_seed_sweep_says_why_it_has_no_verdict(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for job, (v, final) in enumerate((("relu", 5.3), ("swiglu", 5.2))):
        write_run(root / f"{job}_{v}-s0", v, 0, final)
    assert main([str(root), "--out", str(tmp_path / "out"), "--name", "one"]) == 0
    md = (tmp_path / "out" / "one" / "report.md").read_text()
    verdict = md.split("## Verdict at familywise α 0.05")[1].split("\n## ")[0]
    assert "No verdict: each variant has 1 seed here" in verdict
