"""bench.throughput (every variant and size of an experiment, one process, interleaved) on the
tiny fixture's shape, and how the report uses its file: tokens/s and MFU with their source, runs
that shared their machine marked, compute multipliers in training seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.throughput import main as bench_main
from sweep.report import main as report_main
from sweep.runs import load_sweep
from tests.helpers import TINY_MODEL
from tests.helpers.fake_runs import SCALING_SIZES, write_run, write_scaling_sweep

TINY_SHAPE = [
    *TINY_MODEL,
    "model.vocab_size=2048",
    "trainer.batch_size=2",
    "trainer.log_interval=2",
]


def test_bench_times_each_variant_and_size_of_the_experiment(tmp_path: Path) -> None:
    """experiment=scaling sweeps 3 sizes; the command line's ffn list replaces its variants."""
    out = tmp_path / "bench"
    args = ["experiment=scaling", "ffn=relu,swiglu", *TINY_SHAPE, "--rounds", "3"]
    bench_main([*args, "--out", str(out)])
    r = json.loads((out / "throughput.json").read_text())
    assert r["experiment"] == "scaling"
    got = {(x["variant"], x["model"]) for x in r["results"]}
    assert got == {(v, m) for v in ("relu", "swiglu") for m in ("cpu_d64", "cpu_d96", "tiny")}
    for x in r["results"]:
        assert x["blocks"] == 3 and x["steps_per_block"] == 2
        assert x["tokens_per_s_p25"] <= x["tokens_per_s_median"] <= x["tokens_per_s_p75"]
        assert x["spread"] == pytest.approx(
            (x["tokens_per_s_p75"] - x["tokens_per_s_p25"]) / x["tokens_per_s_median"]
        )
        flops = x["tokens_per_s_median"] * x["train_flops_per_token"]
        assert x["mfu"] == pytest.approx(flops / (r["peak_tflops"] * 1e12))
    assert r["settings"]["batch_size"] == 2 and r["settings"]["log_interval"] == 2
    assert r["method"]["order"].startswith("interleaved")
    assert {"host", "device_name", "cores", "threads", "torch"} <= set(r["machine"])
    assert "load_average_before" in r
    md = (out / "throughput.md").read_text()
    assert "| **swiglu** | tiny |" in md and "One process" in md


def bench_file(path: Path, tokens_per_s: dict[tuple[str, str], float]) -> Path:
    path.mkdir(parents=True)
    results = [
        {"variant": v, "model": m, "tokens_per_s_median": t, "spread": 0.02, "mfu": t / 1e4}
        for (v, m), t in tokens_per_s.items()
    ]
    data = {
        "experiment": "glu_table",
        "date": "2026-12-01",
        "machine": {"device_name": "Test CPU", "threads": 2},
        "results": results,
    }
    (path / "throughput.json").write_text(json.dumps(data))
    return path / "throughput.json"


def test_runs_that_overlapped_on_one_machine_are_marked_shared(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    write_run(root / "0", "relu", 0, 5.3, timed=(100.0, 200.0))
    write_run(root / "1", "swiglu", 0, 5.2, timed=(150.0, 250.0))  # beside relu-s0
    write_run(root / "2", "relu", 1, 5.3, timed=(300.0, 400.0))
    write_run(root / "3", "swiglu", 1, 5.2, timed=(400.0, 500.0))  # after it: not shared
    shared = {r.name: r.shared_with for r in load_sweep(root)}
    assert shared == {"relu-s0": 1, "swiglu-s0": 1, "relu-s1": 0, "swiglu-s1": 0}

    out = tmp_path / "out"
    assert report_main([str(root), "--out", str(out), "--name", "runs"]) == 0
    md = (out / "runs" / "report.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("| **relu**"))
    assert "1,000 (shared)" in line  # its seeds' mean tokens/s, marked
    assert "from the runs' own summaries" in md and "**(shared)**" in md

    # with a bench file: tokens/s and MFU from it, and said so
    bench = bench_file(tmp_path / "b", {("relu", "tiny"): 4000.0, ("swiglu", "tiny"): 3000.0})
    args = [str(root), "--out", str(out), "--name", "bench", "--throughput", str(bench)]
    assert report_main(args) == 0
    md = (out / "bench" / "report.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("| **swiglu**"))
    assert "| 3,000 | 30.0% |" in line and "(shared)" not in line
    assert f"all rows from bench.throughput `{bench}` (2026-12-01; Test CPU, 2 threads" in md
    rows = {
        r["variant"]: r for r in json.loads((out / "bench" / "summary.json").read_text())["rows"]
    }
    assert rows["swiglu"]["throughput_source"] == "bench.throughput"
    assert (
        rows["swiglu"]["tokens_per_s"] == 3000.0 and rows["swiglu"]["tokens_per_s_mean"] == 1000.5
    )
    assert rows["relu"]["runs_shared"] == 1


def test_the_bench_file_is_found_by_the_experiments_name(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for i, v in enumerate(("relu", "swiglu")):
        write_run(root / str(i), v, 0, 5.0 + i)
    out = tmp_path / "results"
    bench_file(out / "glu_table_throughput", {("relu", "tiny"): 2000.0})
    assert report_main([str(root), "--out", str(out), "--name", "r"]) == 0
    md = (out / "r" / "report.md").read_text()
    assert "1 rows from bench.throughput" in md and "the others from the runs' own summaries" in md


def test_multipliers_in_training_seconds(tmp_path: Path) -> None:
    """swiglu reaches relu's loss with 1/1.3 of the FLOPs but runs at half the tokens/s (same
    FLOPs per token): 1.3x in FLOPs, 0.65x in seconds."""

    def curve(c: float) -> float:
        return 3.0 + 2.0 * (c / 1e12) ** -0.3

    write_scaling_sweep(tmp_path / "sweep", curve, (0.003, -0.002, 0.001))
    speeds = {
        (v, m): 1000.0 * (0.5 if v == "swiglu" else 1.0)
        for v in ("relu", "swiglu")
        for m in SCALING_SIZES
    }
    bench = bench_file(tmp_path / "b", speeds)
    out = tmp_path / "out"
    args = [str(tmp_path / "sweep"), "--out", str(out), "--name", "s", "--throughput", str(bench)]
    assert report_main(args) == 0
    ms = json.loads((out / "s" / "summary.json").read_text())["scaling"]["multipliers"]["relu"]
    for m in ms:
        assert m["value"] == pytest.approx(1.3, rel=0.1)
        assert m["seconds_value"] == pytest.approx(m["value"] * 0.5)
        assert m["seconds_low"] == pytest.approx(m["low"] * 0.5)
        assert m["seconds_source"] == "bench.throughput"
    md = (out / "s" / "report.md").read_text()
    section = md.split("## Compute multipliers")[1].split("\n## ")[0]
    assert (
        "in training seconds [95% CI]" in section and "Tokens/s from: bench.throughput" in section
    )
    row = next(ln for ln in section.splitlines() if ln.startswith("| **swiglu** | cpu_d96"))
    assert f"| {ms[1]['seconds_value']:.2f}x [" in row
