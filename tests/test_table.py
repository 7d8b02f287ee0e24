"""sweep.table: typed rows from fabricated run dirs, with means, CIs, paired differences and ranks
computed here by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from sweep.runs import load_sweep
from sweep.table import ROW_COLUMNS, Diff, Row, best_settings, build_rows, by_setting, columns
from tests.helpers.fake_runs import write_run

FINAL = {"relu": [5.3, 5.2, 5.4], "swiglu": [5.1, 5.15, 5.2]}


@pytest.fixture
def rows(tmp_path) -> list[Row]:
    job = 0
    for variant, losses in FINAL.items():
        for seed, loss in enumerate(losses):
            write_run(tmp_path / str(job), variant, seed, loss)
            job += 1
    write_run(tmp_path / "9", "gelu", 0, None, status="failed", error="boom")
    return build_rows(load_sweep(tmp_path), ["relu"])


def test_one_row_per_variant_with_completed_runs_ranked_by_loss(rows):
    assert [(r.variant, r.rank, r.n_seeds, r.seeds) for r in rows] == [
        ("swiglu", 1, 3, "0 1 2"),
        ("relu", 2, 3, "0 1 2"),
    ]


def test_means_and_cis_match_a_hand_computation(rows):
    swiglu = rows[0]
    values = FINAL["swiglu"]
    half = scipy.stats.t.ppf(0.975, 2) * scipy.stats.sem(values)
    assert swiglu.final_val_loss_mean == pytest.approx(5.15)
    assert swiglu.final_val_loss_ci_half_width == pytest.approx(half)
    assert swiglu.final_val_loss_ci_low == pytest.approx(5.15 - half)
    assert swiglu.best_val_loss_mean == pytest.approx(5.14)  # write_run's best is final - 0.01
    assert swiglu.params_total == 1_000_300 and swiglu.d_ff == 512 and swiglu.ffn_share == 0.27
    assert swiglu.tokens_per_s_mean == pytest.approx(1001.0)  # 1000 + seed, seeds 0..2


def test_the_paired_difference_against_the_baseline(rows):
    swiglu, relu = rows
    d = swiglu.diffs["relu"]
    per_seed = [a - b for a, b in zip(FINAL["swiglu"], FINAL["relu"], strict=True)]
    test = scipy.stats.ttest_rel(FINAL["swiglu"], FINAL["relu"])
    assert d.mean == pytest.approx(sum(per_seed) / 3) and d.n_pairs == 3
    assert d.p_value == pytest.approx(test.pvalue)
    assert d.ci_high == pytest.approx(d.mean + d.ci_half_width)
    assert relu.diffs["relu"] == Diff()  # the baseline against itself: no difference
    assert math.isnan(relu.diffs["relu"].mean)


def test_one_flat_record_for_csv_json_and_wandb(rows):
    flat = rows[0].flat(["relu"])
    assert list(flat) == columns(["relu"])
    assert list(flat)[: len(ROW_COLUMNS)] == ROW_COLUMNS and ROW_COLUMNS[0] == "rank"
    assert flat["diff_vs_relu_n_pairs"] == 3 and flat["variant"] == "swiglu"


def test_best_setting_per_variant_and_grouping_by_setting(tmp_path):
    for job, (lr, loss) in enumerate([("1e-3", 5.4), ("3e-3", 5.1)]):
        write_run(tmp_path / str(job), "relu", 0, loss, overrides=(f"optim.lr={lr}",))
    rows = build_rows(load_sweep(tmp_path), ["relu"])
    assert [r.setting for r in best_settings(rows)] == ["optim.lr=3e-3"]
    assert list(by_setting(rows)) == ["optim.lr=3e-3", "optim.lr=1e-3"]


def test_holm_matches_statsmodels_on_random_families() -> None:
    from statsmodels.stats.multitest import multipletests

    from sweep.stats import holm

    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 10, 15):
        p = rng.uniform(0, 0.2, size=m)
        p[rng.integers(0, m)] = p.min()  # ties too
        want = multipletests(p, alpha=0.05, method="holm")[1]
        assert holm(list(p)) == pytest.approx(list(want), rel=1e-12)
    # NaN (no test) is neither adjusted nor counted in m
    got = holm([0.01, float("nan"), 0.04])
    assert np.isnan(got[1]) and got[0] == pytest.approx(0.02) and got[2] == pytest.approx(0.04)


def test_seeds_for_80_percent_power_match_statsmodels() -> None:
    from statsmodels.stats.power import TTestPower

    from sweep.stats import paired_power, seeds_for_power

    for sd, delta, alpha in ((0.035, 0.01, 0.05), (0.02, 0.02, 0.05), (0.02, 0.01, 0.005)):
        effect = delta / sd
        n = seeds_for_power(sd, delta, alpha)
        assert paired_power(n, effect, alpha) == pytest.approx(
            TTestPower().power(effect_size=effect, nobs=n, alpha=alpha), rel=1e-6
        )
        exact = TTestPower().solve_power(effect_size=effect, alpha=alpha, power=0.8)
        assert n == int(np.ceil(exact))  # the smallest whole number of seeds reaching 80%
    assert seeds_for_power(float("nan"), 0.01) is None
