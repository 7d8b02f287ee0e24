"""The report in bits per byte (beside the loss, its CI, CSV and JSON fields, a ranking of its own,
the scaling fit's y-axis), the seeds a 0.01 or 0.02 difference needs, the outlier panels of the
activation plot, and a tuned sweep ranked beside a shared-rate one (--shared)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import scipy.stats

from sweep.report import main
from tests.helpers.fake_runs import write_run, write_scaling_sweep

# (final val loss, final val bpb) per variant and seed
FINAL = {
    "relu": {0: (5.30, 2.50), 1: (5.25, 2.48), 2: (5.35, 2.53), 3: (5.28, 2.49)},
    "swiglu": {0: (5.29, 2.47), 1: (5.22, 2.46), 2: (5.33, 2.50), 3: (5.28, 2.48)},
    "xielu": {0: (5.20, 2.45), 1: (5.21, 2.44), 2: (5.25, 2.47), 3: (5.22, 2.45)},
}


def t975(n: int) -> float:
    return float(scipy.stats.t.ppf(0.975, n - 1))


def seeds_for(sd: float, delta: float, alpha: float = 0.05) -> int:
    """The oracle: the smallest n at which statsmodels' TTestPower (a one-sample, i.e. paired,
    two-sided t-test) gives 80% power at effect delta / sd, counted up by hand."""
    from statsmodels.stats.power import TTestPower

    n = 2
    while TTestPower().power(effect_size=delta / sd, nobs=n, alpha=alpha) < 0.8:
        n += 1
    return n


def sd_of_differences(variant: str, metric: int) -> float:
    d = [FINAL[variant][s][metric] - FINAL["relu"][s][metric] for s in range(4)]
    m = sum(d) / len(d)
    return math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("multirun") / "contenders" / "2026-12-01_10-00-00"
    job = 0
    for variant, by_seed in FINAL.items():
        for seed, (loss, bpb) in by_seed.items():
            write_run(
                root / f"{job}_{variant}-s{seed}",
                variant,
                seed,
                loss,
                bpb=bpb,
                lr=0.003,
                experiment="contenders",
                kurtosis=True,
            )
            job += 1
    out = tmp_path_factory.mktemp("results")
    assert main([str(root), "--out", str(out), "--name", "r"]) == 0
    dest = out / "r"
    with (dest / "report.csv").open() as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    return {
        "root": root,
        "out": out,
        "md": (dest / "report.md").read_text(),
        "csv": rows,
        "json": json.loads((dest / "summary.json").read_text()),
    }


def test_bpb_beside_the_loss_with_its_ci_in_table_csv_and_json(report: dict) -> None:
    r = report["csv"]["xielu"]
    bpbs = [b for _, b in FINAL["xielu"].values()]
    mean = sum(bpbs) / 4
    sd = math.sqrt(sum((b - mean) ** 2 for b in bpbs) / 3)
    assert float(r["final_val_bpb_mean"]) == pytest.approx(mean, rel=1e-12)
    assert float(r["final_val_bpb_ci_half_width"]) == pytest.approx(t975(4) * sd / 2, rel=1e-9)
    assert float(r["best_val_bpb_mean"]) == pytest.approx(mean - 0.005, rel=1e-12)
    d = [FINAL["xielu"][s][1] - FINAL["relu"][s][1] for s in range(4)]
    assert float(r["diff_bpb_vs_relu_mean"]) == pytest.approx(sum(d) / 4, rel=1e-9)
    assert float(r["diff_bpb_vs_relu_sd"]) == pytest.approx(sd_of_differences("xielu", 1))
    js = {x["variant"]: x for x in report["json"]["rows"]}
    assert js["xielu"]["final_val_bpb_mean"] == pytest.approx(mean)
    md = report["md"]
    assert "| final val bpb |" in md.split("## Results")[1].split("\n\n")[1]
    line = next(ln for ln in md.splitlines() if ln.startswith("| **xielu**"))
    assert f"{mean:.4f} ± {t975(4) * sd / 2:.4f}" in line
    assert "- **Learning rate:** one shared rate for every variant, optim.lr=0.003" in md


def test_ranked_by_bpb(report: dict) -> None:
    section = report["md"].split("### Ranked by bits per byte")[1].split("\n## ")[0]
    lines = section.splitlines()
    body = lines[next(i for i, ln in enumerate(lines) if ln.startswith("|---")) + 1 :]
    order = [ln.split("|")[1].strip() for ln in body if ln.startswith("| ")]
    assert order == ["xielu", "swiglu", "relu"]
    assert "Δ bpb vs relu" in section


def test_the_contenders_claims_are_checked(report: dict) -> None:
    claims = {(c["variant"], c["other"]): c for c in report["json"]["claims"]}
    c = claims[("xielu", "swiglu")]
    assert c["source"].startswith("Huang & Schlag (2024)")
    # Significant alone (p < 0.05), not once Holm adjusts over the family of 3 (statsmodels).
    from statsmodels.stats.multitest import multipletests

    def p(a: str, b: str) -> float:
        return scipy.stats.ttest_rel(*([FINAL[v][s][0] for s in range(4)] for v in (a, b))).pvalue

    raw = [p("swiglu", "relu"), p("xielu", "relu"), p("xielu", "swiglu")]
    adjusted = multipletests(raw, alpha=0.05, method="holm")[1]
    assert c["diff_p_value"] == pytest.approx(raw[2]) and raw[2] < 0.05
    assert c["diff_p_adjusted"] == pytest.approx(adjusted[2]) and adjusted[2] > 0.05
    assert c["verdict"] == f"cannot tell (Holm-adjusted p {adjusted[2]:.3g})"
    shazeer = claims[("swiglu", "relu")]  # the same pair as the baseline column: one p for both
    assert shazeer["diff_p_adjusted"] == pytest.approx(adjusted[0])
    assert float(report["csv"]["swiglu"]["diff_vs_relu_p_adjusted"]) == pytest.approx(adjusted[0])
    assert "| xielu vs swiglu: xIELU better than SwiGLU |" in report["md"]


def test_the_seeds_a_difference_of_0_01_and_0_02_needs(report: dict) -> None:
    """From the measured paired sds (median over the variants against relu), in nats and bpb."""
    needs = {(e["baseline"], e["metric"]): e for e in report["json"]["seeds_needed"]}
    for metric, col in (("loss", 0), ("bpb", 1)):
        sds = sorted(sd_of_differences(v, col) for v in ("swiglu", "xielu"))
        e = needs[("relu", metric)]
        assert e["sd_median"] == pytest.approx(sum(sds) / 2) and e["sd_max"] == pytest.approx(
            sds[1]
        )
        m = e["family_size"]
        # One family for both units: 2 against relu, and xielu vs swiglu, the pair a literature
        # claim uses
        assert m == report["json"]["families"]["loss"]["size"] == 3
        assert list(report["json"]["families"]) == ["loss"]
        for delta in (0.01, 0.02):
            got = e["seeds"][str(delta)]
            assert got["alpha_0.05_at_median_sd"] == seeds_for(sum(sds) / 2, delta)
            assert got["alpha_0.05_at_max_sd"] == seeds_for(sds[1], delta)
            assert got["family_at_median_sd"] == seeds_for(sum(sds) / 2, delta, 0.05 / m)
    scope = report["md"].split("## What this sweep can and cannot tell")[1].split("\n## ")[0]
    assert "Seeds a user needs, at **80% power**" in scope and "noncentral t" in scope
    sd = needs[("relu", "loss")]["sd_median"]
    assert f"| relu | nats | {sd:.4f} (up to" in scope
    assert f"| {seeds_for(sd, 0.01):,} (up to" in scope
    assert "| relu | bits/byte |" in scope


def test_the_activation_plot_draws_kurtosis_and_alignment(tmp_path: Path) -> None:
    from sweep import plots
    from sweep.runs import load_sweep

    for i, v in enumerate(("relu", "swiglu")):
        write_run(tmp_path / "sweep" / str(i), v, 0, 5.0, kurtosis=True)
    by_label = {r.label: [r.metrics] for r in load_sweep(tmp_path / "sweep")}
    panels = {
        title: lines for _, _, title, lines in plots.activation_panels(by_label, ["relu", "swiglu"])
    }
    kurtosis = panels["W2 input (act / gate x value): excess kurtosis"]
    assert set(kurtosis) == {"relu", "swiglu"}  # relu's act, swiglu's product: one panel
    (x, _), mean = kurtosis["relu"]
    assert mean[-1] == pytest.approx(4.0)  # 2 + step / 50 at step 100, both layers
    alignment = panels["gate/value weights (GLU): mean |cos| of matching rows"]
    assert set(alignment) == {"swiglu"} and alignment["swiglu"][1][0] == pytest.approx(0.05)
    colors = plots.variant_colors(by_label)
    assert plots.plot_activations(by_label, tmp_path / "a.png", colors, list(by_label)) is None
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_the_scaling_fit_in_bpb(tmp_path: Path) -> None:
    """--y bpb fits bits per byte: a variant whose bpb (not its loss) follows the curve at 1.3x
    the compute gets its multiplier from the bpb."""

    def curve(c: float) -> float:
        return 1.2 + 1.0 * (c / 1e12) ** -0.3

    write_scaling_sweep(tmp_path / "sweep", curve, (0.002, -0.001, 0.001), y="bpb")
    out = tmp_path / "out"
    assert main([str(tmp_path / "sweep"), "--out", str(out), "--name", "s", "--y", "bpb"]) == 0
    summary = json.loads((out / "s" / "summary.json").read_text())
    ms = summary["scaling"]["multipliers"]["relu"]
    assert [m["value"] for m in ms] == pytest.approx([1.3] * 3, rel=0.1)
    md = (out / "s" / "report.md").read_text()
    assert "Per variant, final val bpb against training compute" in md
    # the loss is flat: in nats there is no fit
    assert main([str(tmp_path / "sweep"), "--out", str(out), "--name", "n"]) == 0
    assert "does not fall" in (out / "n" / "report.md").read_text()


GRID = [0.00075, 0.0015, 0.003, 0.006, 0.012]


def write_tuned_sweep(root: Path, rates: dict[str, float], file: Path) -> None:
    """A 4-seed sweep whose runs trained at `rates` from the tuned-rates `file` (written here):
    relu first, then swiglu, then xielu."""
    from harness.tuned import TunedRates

    TunedRates(
        {"tiny": rates},
        experiment="contenders",
        tuning_sweep="multirun/contenders_tune/2026-12-01",
        grid={"tiny": {v: GRID for v in rates}},
        seeds=[0],
        steps=[600],
    ).write(file)
    losses = {"relu": 5.10, "swiglu": 5.15, "xielu": 5.30}
    job = 0
    for variant, lr in rates.items():
        for seed in range(4):
            write_run(
                root / f"{job}_{variant}-s{seed}",
                variant,
                seed,
                losses[variant] + 0.01 * seed,
                lr=lr,
                tuned=str(file),
                experiment="contenders",
            )
            job += 1


def test_a_tuned_sweep_beside_a_shared_rate_one(report: dict, tmp_path: Path) -> None:
    """--shared: both rankings side by side, with each sweep's rates."""
    tuned, file = tmp_path / "tuned", tmp_path / "tuned.yaml"
    write_tuned_sweep(tuned, {"relu": 0.006, "swiglu": 0.0015, "xielu": 0.003}, file)
    out = tmp_path / "out"
    assert (
        main([str(tuned), "--out", str(out), "--name", "t", "--shared", str(report["root"])]) == 0
    )
    md = (out / "t" / "report.md").read_text()
    assert (
        f"- **Learning rate:** per-variant tuned rates, from `{file}`, chosen by the tuning sweep "
        "`multirun/contenders_tune/2026-12-01` (grid 0.00075, 0.0015, 0.003, 0.006, 0.012; seeds "
        "0; 600 steps, judged on the tuning slice) by one rule: the vertex of a quadratic in log "
        "lr through its best grid point and neighbours. Rates: relu 0.006, swiglu 0.0015, "
        "xielu 0.003."
    ) in md
    section = md.split("## The ranking at each learning-rate policy")[1].split("\n## ")[0]
    assert "final val loss (tuned per variant)" in section
    assert "final val loss (shared lr 0.003)" in section
    relu = next(ln for ln in section.splitlines() if ln.startswith("| relu |"))
    cells = [c.strip() for c in relu.split("|")[1:-1]]
    assert cells[2] == "0.006" and cells[4] == "1"  # tuned: relu ranks first
    assert cells[5] == "0.003" and cells[7] == "3"  # shared: last
    summary = json.loads((out / "t" / "summary.json").read_text())
    assert summary["learning_rate"]["tuned"] is True
    assert summary["shared_rate_comparison"]["lrs"] == [0.003]


def test_one_tuned_rate_for_every_variant_is_also_the_shared_rate_comparison(
    tmp_path: Path,
) -> None:
    """Tuning that picks one rate for all says so: the ranking is also the shared-rate one."""
    file = tmp_path / "tuned.yaml"
    write_tuned_sweep(tmp_path / "tuned", {"relu": 0.003, "swiglu": 0.003, "xielu": 0.003}, file)
    out = tmp_path / "out"
    assert main([str(tmp_path / "tuned"), "--out", str(out), "--name", "t"]) == 0
    md = (out / "t" / "report.md").read_text()
    assert "Rates: relu 0.003, swiglu 0.003, xielu 0.003. Every variant's best rate" in md
    assert "its ranking is the shared-rate ranking" in md
    write_tuned_sweep(tmp_path / "mixed", {"relu": 0.006, "swiglu": 0.003, "xielu": 0.003}, file)
    assert main([str(tmp_path / "mixed"), "--out", str(out), "--name", "m"]) == 0
    assert "shared-rate ranking" not in (out / "m" / "report.md").read_text()
