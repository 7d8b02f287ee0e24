"""bench.inference on the tiny shape (its file: keys, positive figures, one entry per variant,
size and mode), and the report's "Cost to serve" from a fabricated file."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from bench import inference
from tests.helpers import TINY_MODEL
from tests.helpers.fake_runs import write_run

FIGURES = [
    "prefill_short_ms",
    "prefill_long_ms",
    "decode_b1_tokens_per_s",
    "decode_b8_tokens_per_s",
]


def test_the_benchmark_file_on_the_tiny_shape(tmp_path):
    args = ["experiment=contenders", "ffn=relu,swiglu,polynorm", *TINY_MODEL]
    with redirect_stdout(io.StringIO()):
        assert inference.main([*args, "--rounds", "2", "--no-compile", "--out", str(tmp_path)]) == 0
    dest = tmp_path / "contenders_inference"
    data = json.loads((dest / "inference.json").read_text())
    rows = data["results"]
    assert sorted((r["variant"], r["model"], r["mode"]) for r in rows) == [
        (v, "tiny", "eager") for v in ("polynorm", "relu", "swiglu")
    ]
    for r in rows:
        assert not r["error"] and r["memory_mib"] >= 0
        for key in FIGURES:
            assert r[key] > 0 and r[f"{key}_spread"] >= 0
    assert data["load_average_before"] and data["machine"]["device"] == "cpu"
    assert data["prompts"] == {"tiny": [8, 16]}  # block_size 32: a quarter and a half
    assert "Relative to relu" in (dest / "inference.md").read_text()
    assert (dest / "inference.png").read_bytes()[:4] == b"\x89PNG"


def fabricated(out: Path) -> None:
    base = {"model": "tiny", "mode": "eager", "impl": "auto", "memory_mib": 10.0, "error": None}
    rows = []
    for variant, prefill, decode in (("relu", 4.0, 800.0), ("swiglu", 5.0, 720.0)):
        rows.append(
            {
                **base,
                "variant": variant,
                "prefill_short_ms": prefill,
                "prefill_short_ms_spread": 0.05,
                "decode_b1_tokens_per_s": decode,
                "decode_b1_tokens_per_s_spread": 0.1,
            }
        )
    machine = {"device": "cpu", "device_name": "a CPU"}
    data = {"experiment": "glu_table", "date": "2026-12-04", "machine": machine, "rounds": 3}
    data.update(dtype="float32", load_average_before=[0.1, 0.1, 0.1], results=rows)
    (out / "glu_table_inference").mkdir(parents=True)
    (out / "glu_table_inference" / "inference.json").write_text(json.dumps(data))


def test_the_report_shows_the_cost_to_serve(tmp_path):
    from sweep.report import make_report

    root, out = tmp_path / "sweep", tmp_path / "results"
    for job, (variant, seed) in enumerate([(v, s) for v in ("relu", "swiglu") for s in (0, 1)]):
        write_run(root / str(job), variant, seed, 5.0 + 0.1 * seed)
    fabricated(out)
    dest, _ = make_report(root, out=out, name="r", log=lambda _: None)
    text = (dest / "report.md").read_text()
    section = text.split("## Cost to serve", 1)[1].split("\n## ", 1)[0]
    assert "Against **relu**" in section
    assert "| swiglu | tiny | eager | 1.25x ±5% | 0.90x ±10% |" in section


def test_no_inference_file_no_section(tmp_path):
    from sweep.report import make_report

    root = tmp_path / "sweep"
    write_run(root / "0", "relu", 0, 5.0)
    dest, _ = make_report(root, out=tmp_path / "results", name="r", log=lambda _: None)
    assert "Cost to serve" not in (dest / "report.md").read_text()


@pytest.mark.parametrize("bad", ["{", '{"results": 3}'])
def test_a_broken_inference_file_is_one_line(tmp_path, bad):
    from harness.errors import UserInputError
    from sweep import serving

    (tmp_path / "e_inference").mkdir()
    (tmp_path / "e_inference" / "inference.json").write_text(bad)
    with pytest.raises(UserInputError, match="inference"):
        serving.find(tmp_path, ["e"])
