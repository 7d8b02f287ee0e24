"""Tests for `python -m sweep.report`: stats with known answers, the report files, bad input."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import scipy.stats

from sweep.report import main
from sweep.runs import read_metrics
from sweep.stats import (
    aligned_mean_ci,
    kendall_tau,
    mean_ci,
    paired_difference,
    rank_lowest_first,
)
from tests.helpers.fake_runs import GATED, write_run

REPO = Path(__file__).resolve().parents[1]
T975_2 = 4.302652729911275  # t_{0.975, df=2}, for n = 3 seeds
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# final val loss per (variant, seed); best = final - 0.01
FINAL = {
    "relu": {0: 5.30, 1: 5.25, 2: 5.35},
    "gelu": {0: 5.20, 1: 5.22, 2: 5.27},
    "swiglu": {0: 5.05, 1: 5.10, 2: 5.08},
}


def expected_ci(values: list[float]) -> tuple[float, float]:
    n = len(values)
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return m, T975_2 * sd / math.sqrt(n)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 3 variants x 3 seeds sweep plus a failed and an empty run, reported once."""
    root = tmp_path_factory.mktemp("multirun") / "2026-11-22" / "10-00-00"
    job = 0
    for variant, by_seed in FINAL.items():
        for seed, loss in by_seed.items():
            write_run(root / str(job), variant, seed, loss, truncate=(variant, seed) == ("gelu", 1))
            job += 1
    write_run(root / "9", "swiglu", 3, None, status="failed", error="RuntimeError: CUDA OOM\nx")
    write_run(root / "10", "geglu", 0, summary=False, metrics=False)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    out = tmp_path_factory.mktemp("results")
    assert main([str(root), "--out", str(out)]) == 0
    dest = out / "glu_table-test"
    with (dest / "report.csv").open() as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    return {
        "dest": dest,
        "md": (dest / "report.md").read_text(),
        "csv": rows,
        "json": json.loads((dest / "summary.json").read_text()),
    }


# ----------------------------------------------------------------------------- pure stats


def test_mean_ci_known_values() -> None:
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == pytest.approx(2.0)
    assert h == pytest.approx(T975_2 * 1.0 / math.sqrt(3), rel=1e-9)
    m1, h1 = mean_ci([4.2])
    assert m1 == 4.2 and math.isnan(h1)
    assert all(math.isnan(x) for x in mean_ci([]))
    # a wider confidence level gives a wider interval
    assert mean_ci([1.0, 2.0, 3.0], confidence=0.99)[1] > h


def test_paired_difference_matches_ttest_rel() -> None:
    a, b = FINAL["swiglu"], FINAL["relu"]
    d, h, p, n = paired_difference(a, b)
    diffs = [a[s] - b[s] for s in (0, 1, 2)]
    em, eh = expected_ci(diffs)
    assert n == 3
    assert d == pytest.approx(em) and h == pytest.approx(eh, rel=1e-9)
    assert p == pytest.approx(
        scipy.stats.ttest_rel([a[s] for s in (0, 1, 2)], [b[s] for s in (0, 1, 2)]).pvalue, rel=1e-9
    )
    # only seeds both have are paired
    d2, _, _, n2 = paired_difference({0: 1.0, 1: 2.0, 7: 100.0}, {0: 0.5, 1: 1.0, 8: -5.0})
    assert n2 == 2 and d2 == pytest.approx(0.75)
    d1, h1, p1, n1 = paired_difference({0: 1.0}, {0: 0.5})
    assert (d1, n1) == (0.5, 1) and math.isnan(h1) and math.isnan(p1)
    assert paired_difference({0: 1.0}, {1: 1.0})[3] == 0


def test_aligned_mean_ci_and_ranks() -> None:
    steps, mean, half, n = aligned_mean_ci([{0: 1.0, 10: 2.0}, {0: 3.0, 10: 4.0, 20: 5.0}])
    assert steps.tolist() == [0, 10, 20] and n.tolist() == [2, 2, 1]
    assert mean.tolist() == [2.0, 3.0, 5.0] and math.isnan(half[2])
    assert rank_lowest_first({"a": 2.0, "b": 1.0, "c": 2.0, "d": float("nan")}) == {
        "b": 1,
        "a": 2,
        "c": 2,
        "d": 4,
    }


def test_kendall_tau_known_orderings() -> None:
    assert kendall_tau([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0])[0] == pytest.approx(1.0)
    assert kendall_tau([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])[0] == pytest.approx(-1.0)
    # one swapped pair of 4 items: (6 - 2 * 1) / 6
    assert kendall_tau([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])[0] == pytest.approx(4 / 6)


def test_truncated_last_line_is_tolerated(tmp_path: Path) -> None:
    p = tmp_path / "metrics.jsonl"
    p.write_text(
        '{"step": 0, "tokens": 0, "time_s": 0.1, "train/loss": 10.0}\n'
        '{"step": 1, "tokens": 10, "time_s": 0.2, "train/loss": 9.0}\n{"step": 2, "tok'
    )
    recs, bad = read_metrics(p)
    assert [r["step"] for r in recs] == [0, 1] and bad == 1


# ----------------------------------------------------------------------------- the report


def test_table_means_cis_ranks_and_csv(report: dict) -> None:
    rows = report["csv"]
    assert set(rows) == {"relu", "gelu", "swiglu"}  # geglu has no completed run
    for variant, by_seed in FINAL.items():
        r = rows[variant]
        m, h = expected_ci(list(by_seed.values()))
        assert int(r["n_seeds"]) == 3
        assert float(r["final_val_loss_mean"]) == pytest.approx(m, rel=1e-12)
        assert float(r["final_val_loss_ci_half_width"]) == pytest.approx(h, rel=1e-9)
        assert float(r["final_val_loss_ci_low"]) == pytest.approx(m - h, rel=1e-9)
        assert float(r["final_val_loss_ci_high"]) == pytest.approx(m + h, rel=1e-9)
        bm, bh = expected_ci([v - 0.01 for v in by_seed.values()])
        assert float(r["best_val_loss_mean"]) == pytest.approx(bm, rel=1e-12)
        assert float(r["best_val_loss_ci_half_width"]) == pytest.approx(bh, rel=1e-9)
        assert float(r["tokens_per_s_mean"]) == pytest.approx(1001.0)
        assert float(r["mfu_mean"]) == pytest.approx(0.26)
        assert float(r["params_total"]) == (1_000_300 if variant in GATED else 1_000_000)
    assert {v: int(rows[v]["rank"]) for v in rows} == {"swiglu": 1, "gelu": 2, "relu": 3}
    # paired difference vs relu, seed by seed
    for variant in ("gelu", "swiglu"):
        a = [FINAL[variant][s] for s in (0, 1, 2)]
        b = [FINAL["relu"][s] for s in (0, 1, 2)]
        em, eh = expected_ci([x - y for x, y in zip(a, b, strict=True)])
        r = rows[variant]
        assert float(r["diff_vs_relu_mean"]) == pytest.approx(em, rel=1e-9)
        assert float(r["diff_vs_relu_ci_half_width"]) == pytest.approx(eh, rel=1e-9)
        assert float(r["diff_vs_relu_p_value"]) == pytest.approx(
            scipy.stats.ttest_rel(a, b).pvalue, rel=1e-9
        )
        assert int(r["diff_vs_relu_n_pairs"]) == 3
    assert rows["relu"]["diff_vs_relu_mean"] == ""  # the baseline itself
    # summary.json carries the same rows
    js = {r["variant"]: r for r in report["json"]["rows"]}
    assert js["swiglu"]["final_val_loss_mean"] == pytest.approx(
        float(rows["swiglu"]["final_val_loss_mean"])
    )
    assert report["json"]["n_completed"] == 9 and report["json"]["n_failed"] == 2


def test_markdown_table_and_header(report: dict) -> None:
    md = report["md"]
    m, h = expected_ci(list(FINAL["swiglu"].values()))
    line = next(ln for ln in md.splitlines() if ln.startswith("| **swiglu**"))
    assert f"{m:.4f} ± {h:.4f}" in line and line.rstrip().endswith("| 1 |")
    assert "| 27.0% | 1,001 | 26.0% | 3 |" in line  # FFN share, tokens/s, MFU, seeds
    assert "measured: CPU float32 matmul at start-up" in md
    assert "Δ final vs relu" in md and "p (paired t)" in md
    assert "11 found, 9 completed, 2 failed/unfinished" in md
    assert "**parameter count**" in md and "0.03%" in md  # 1,000,300 vs 1,000,000
    assert "tiny" in md and "204,800" in md
    assert "How to read this" in md and "adjusted p is at most 0.05" in md
    assert "p (Holm)" in md and "## Verdict at familywise α 0.05" in md
    for png in ("val_loss.png", "final_loss.png", "activations.png"):
        assert f"]({png})" in md
    # relu > gelu > swiglu here, as in Shazeer's Table 1 (1.997 > 1.983 > 1.944)
    table_1 = md.split("### Shazeer (2020), Table 1")[1].split("###")[0]
    assert "| swiglu | 5.0767 | 1 | 1.944 | 1 |" in table_1
    assert "| relu | 5.3000 | 3 | 1.997 | 3 |" in table_1
    assert "Kendall's τ between the two orderings: +1.00" in table_1
    assert report["json"]["shazeer_table_1"]["kendall_tau"] == pytest.approx(1.0)


def test_failed_and_missing_runs_listed_and_excluded(report: dict) -> None:
    md = report["md"]
    failed_section = md.split("## Failed / unfinished runs")[1].split("## Plots")[0]
    assert "| swiglu-s3 | failed | RuntimeError: CUDA OOM" in failed_section
    assert "| geglu-s0 | missing | no summary.json" in failed_section
    assert "gelu-s1 (1)" in failed_section  # the truncated metrics line is reported
    assert "Variants with no completed run:** geglu" in md
    failed = {f["name"]: f for f in report["json"]["failed"]}
    assert set(failed) == {"swiglu-s3", "geglu-s0"}
    assert int(report["csv"]["swiglu"]["n_seeds"]) == 3


def test_plots_are_valid_pngs(report: dict) -> None:
    for png in ("val_loss.png", "final_loss.png", "activations.png"):
        data = (report["dest"] / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, png


def test_no_baseline_single_seed_nested_and_no_metrics(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    write_run(root / "a" / "0", "gelu", 0, 5.2, metrics=False, group="g1")
    write_run(root / "b" / "0", "swiglu", 0, 5.1, metrics=False, group="g2")
    write_run(root / "b" / "1", "swiglu", 1, 5.0, metrics=False, group="g2")
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--baseline", "relu"]) == 0
    dest = out / f"{tmp_path.name}_sweep"  # groups disagree: last two path parts
    md = (dest / "report.md").read_text()
    assert "not in this sweep" in md and "Δ final" not in md
    gelu = next(ln for ln in md.splitlines() if ln.startswith("| **gelu**"))
    assert "5.2000 ± n/a" in gelu
    assert "_Not plotted: no run logged val/loss._" in md
    assert not (dest / "val_loss.png").exists() and (dest / "final_loss.png").exists()
    # a report written inside the sweep dir is not mistaken for a run next time
    assert main([str(root), "--out", str(root / "reports"), "--name", "x"]) == 0
    assert main([str(root), "--out", str(root / "reports"), "--name", "x"]) == 0
    assert "3 found, 3 completed" in (root / "reports" / "x" / "report.md").read_text()


def test_swept_setting_splits_rows_and_pairs_within_it(tmp_path: Path) -> None:
    """An lr_scan: one row per (variant, lr), differences paired at the same lr and seed, and
    each variant's best lr; no run is mistaken for a duplicate of another lr's."""
    final = {
        ("relu", "1e-3"): [5.40, 5.50],
        ("relu", "3e-3"): [5.30, 5.34],
        ("swiglu", "1e-3"): [5.20, 5.26],
        ("swiglu", "3e-3"): [5.35, 5.41],
    }
    root = tmp_path / "lr_scan"
    job = 0
    for (variant, lr), losses in final.items():
        for seed, loss in enumerate(losses):
            write_run(
                root / str(job),
                variant,
                seed,
                loss,
                group="lr_scan-test",
                overrides=(f"optim.lr={lr}", "model=tiny"),
            )
            job += 1
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    dest = out / "lr_scan-test"
    with (dest / "report.csv").open() as f:
        rows = {(r["variant"], r["setting"]): r for r in csv.DictReader(f)}
    assert set(rows) == {(v, f"optim.lr={lr}") for v, lr in final}  # model=tiny never varies
    for (variant, lr), losses in final.items():
        r = rows[(variant, f"optim.lr={lr}")]
        assert float(r["final_val_loss_mean"]) == pytest.approx(sum(losses) / 2)
        if variant == "swiglu":
            diffs = [a - b for a, b in zip(losses, final[("relu", lr)], strict=True)]
            assert float(r["diff_vs_relu_mean"]) == pytest.approx(sum(diffs) / 2)
            assert int(r["diff_vs_relu_n_pairs"]) == 2
    md = (dest / "report.md").read_text()
    assert "8 found, 8 completed, 0 failed" in md
    best = md.split("### Best setting per variant")[1].split("##")[0]
    assert "| **swiglu** | optim.lr=1e-3 | 5.2300" in best
    assert "| **relu** | optim.lr=3e-3 | 5.3200" in best
    assert best.index("swiglu") < best.index("relu")  # the better variant first
    summary = json.loads((dest / "summary.json").read_text())
    assert {b["variant"]: b["setting"] for b in summary["best_settings"]} == {
        "swiglu": "optim.lr=1e-3",
        "relu": "optim.lr=3e-3",
    }


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_bad_dir_exits_2_with_one_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "nonexistent"
    if kind == "empty":
        target.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.report", str(target), "--out", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert str(target) in proc.stderr


def test_two_baselines_and_the_claims_checked(tmp_path: Path) -> None:
    """relu and relu2 as baselines; nanochat's claim (SwiGLU worse than ReLU^2) agrees,
    modded-nanogpt's (ReLU^2 better than GELU) is not reproduced here (the opposite holds, at
    models ~100x smaller than the claim's), Table 1's SwiGLU < ReLU cannot tell."""
    final = {
        "relu": [5.30, 5.20, 5.40],
        "relu2": [5.20, 5.21, 5.22],
        "gelu": [5.10, 5.12, 5.11],  # clearly better than relu2
        "swiglu": [5.30, 5.33, 5.31],  # clearly worse than relu2; vs relu: within the noise
    }
    root = tmp_path / "sweep"
    for job, (variant, seed) in enumerate((v, s) for v in final for s in range(3)):
        write_run(root / str(job), variant, seed, final[variant][seed], group="claims")
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--baseline", "relu", "--baseline", "relu2"]) == 0
    md = (out / "claims" / "report.md").read_text()
    assert "Δ final vs relu |" in md and "Δ final vs relu2 |" in md
    relu2_row = next(ln for ln in md.splitlines() if ln.startswith("| **relu2**"))
    assert "(baseline)" in relu2_row and "-0.0900" in relu2_row  # relu2 - relu, paired
    claims = md.split("### Claims, checked")[1]
    verdicts = {
        ln.split("|")[2].strip().split(":")[0]: ln.split("|")[-2].strip()
        for ln in claims.splitlines()
        if ln.startswith("| ") and " vs " in ln
    }
    assert verdicts["swiglu vs relu2"] == "agrees"
    assert verdicts["relu2 vs gelu"].startswith("not reproduced here (the opposite, at 10")
    assert verdicts["swiglu vs relu"].startswith("cannot tell (Holm-adjusted p ")
    with (out / "claims" / "report.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if r["variant"] == "swiglu")
    assert float(row["diff_vs_relu2_mean"]) == pytest.approx((0.10 + 0.12 + 0.09) / 3)
    claims_json = json.loads((out / "claims" / "summary.json").read_text())["claims"]
    assert "agrees" in {c["verdict"] for c in claims_json}
    assert all(0 <= c["diff_p_value"] <= c["diff_p_adjusted"] <= 1 for c in claims_json)


def test_a_claim_judged_by_its_adjusted_p_and_its_regime() -> None:
    from sweep.literature import verdict

    claim = {"diff_n_pairs": 5, "diff_mean": -0.02, "claim_better": False, "claim_params": 85e6}
    assert verdict({**claim, "diff_p_adjusted": 0.2}, 80e6) == "cannot tell (Holm-adjusted p 0.2)"
    assert verdict({**claim, "diff_p_adjusted": 0.01}, 80e6) == "disagrees"  # same regime
    assert verdict({**claim, "diff_p_adjusted": 0.01}, 0.8e6).startswith("not reproduced here")
    assert verdict({**claim, "diff_p_adjusted": 0.01, "claim_better": True}, 0.8e6) == "agrees"


def test_an_unknown_baseline_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "sweep" / "0", "relu", 0, 5.0)
    assert main([str(tmp_path / "sweep"), "--out", str(tmp_path), "--baseline", "relux"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown baseline relux; --baseline takes")


def test_the_report_as_a_wandb_run_read_back_offline(report: dict, tmp_path: Path) -> None:
    """--wandb offline: one report run in the sweep's group, read back with wandb's own reader:
    the table, the plots as images, report.md as a file."""
    from tests.helpers import wandb_records

    root = Path(report["json"]["sweep_dir"])
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.report",
            str(root),
            "--out",
            str(out),
            "--wandb",
            "offline",
            "--baseline",
            "relu",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wandb sync" in proc.stdout
    (run_dir,) = (out / "glu_table-test" / "wandb").glob("offline-run-*")
    (run,) = [r["run"] for r in wandb_records(run_dir, "run")]
    assert (run["job_type"], run["run_group"]) == ("report", "glu_table-test")
    assert run["display_name"] == "report-glu_table-test"
    (history,) = [r["history"]["item"] for r in wandb_records(run_dir, "history")]
    assert history["results._type"] == "table-file" and history["results.nrows"] == 3
    for plot in ("val_loss", "final_loss", "activations"):
        assert history[f"plots/{plot}._type"] == "image-file"
    files = [f["path"] for r in wandb_records(run_dir, "files") for f in r["files"]["files"]]
    assert "report.md" in files
    assert (run_dir / "files" / "report.md").read_text() == (
        out / "glu_table-test" / "report.md"
    ).read_text()
