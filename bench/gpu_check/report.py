"""report.md and results.json, rewritten after every stage."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bench.gpu_check.config import LOG_INTERVAL, TEST_MARKS
from bench.gpu_check.goals import goals
from bench.gpu_check.records import Report
from harness.fmt import or_na


def markdown(report: Report, kernel_md: str = "", inference_md: str = "") -> str:
    v = report.versions
    budget = "none" if report.budget_s is None else f"{report.budget_s:.0f} s"
    lines = [
        f"# GPU acceptance: {report.gpu}",
        "",
        f"- date: {report.date}; budget: {budget}",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Stages",
        "",
        "| stage | status | estimate s | took s | note |",
        "|---|---|---:|---:|---|",
        *(
            f"| {s.name} | {s.status} | {s.estimate_s:.0f} | {or_na(s.wall_s, '.0f')} | {s.note} |"
            for s in report.stages
        ),
        "",
        f'## Tests (`-m "{TEST_MARKS}"`, on CUDA)',
        "",
        "| file | passed | failed | skipped |",
        "|---|---:|---:|---:|",
        *(
            f"| {f} | {c['passed']} | {c['failed']} | {c['skipped']} |"
            for f, c in report.tests.items()
        ),
    ]
    if report.test_failures:
        lines += ["", "Failed:", "", *(f"- `{f}`" for f in report.test_failures)]
    lines += [
        "",
        "## Trainings (ffn=swiglu, trainer=gpu; steady state: median of the second half's "
        f"log windows of {LOG_INTERVAL} steps, one of them with activation statistics)",
        "",
        "| model | impl | compile | steps | tokens/s | MFU | TFLOP/s | peak memory GiB | final val "
        "loss | status | took s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for t in report.trainings:
        mem = None if t.peak_memory_mib is None else t.peak_memory_mib / 1024
        lines.append(
            f"| {t.model} | {t.impl} | {t.compile} | {t.steps} | {or_na(t.tokens_per_s, ',.0f')} "
            f"| {or_na(t.mfu, '.1%')} | {or_na(t.model_tflops, '.1f')} | {or_na(mem, '.2f')} "
            f"| {or_na(t.final_val_loss, '.4f')} | {t.status} | {or_na(t.wall_s, '.0f')} |"
        )
    for t in report.trainings:
        if t.error:
            lines += ["", f"{t.name}: the last lines of stderr", "", "```", t.error, "```"]
    lines += ["", "## Goals", "", "| goal | met | measured |", "|---|---|---|"]
    for goal, met, measured in goals(report):
        lines.append(
            f"| {goal} | {'n/a' if met is None else 'yes' if met else 'no'} | {measured} |"
        )
    lines += ["", "## Kernels", "", kernel_md or "_not run_"]
    if inference_md:
        lines += ["", "## Inference (bench.inference)", "", inference_md]
    return "\n".join(lines) + "\n"


def write(report: Report, out: Path) -> None:
    """report.md and results.json, each replaced whole."""
    kernel_md = "\n".join(p.read_text() for p in sorted(out.glob("bench_*.md")))
    served = out / "contenders_inference" / "inference.md"
    inference_md = (
        served.read_text().split("\n", 2)[-1] if report.inference and served.exists() else ""
    )
    data = {**asdict(report), "goals": [list(g) for g in goals(report)]}
    for name, text in (
        ("report.md", markdown(report, kernel_md, inference_md)),
        ("results.json", json.dumps(data, indent=2, default=str) + "\n"),
    ):
        tmp = out / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)
