"""sweep.dashboard: the W&B workspace and Report of a real offline sweep, without a W&B server.

One tiny sweep (relu, swiglu x 2 seeds on the fixture corpus, W&B offline) and its report are
made once; the views built from it plot only keys the runs logged (read back with wandb's own
reader), group by config keys the runs have, round-trip through wandb-workspaces' own models,
colour variants as the report's plots do, and list a failed job.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

pytest.importorskip("wandb_workspaces", reason="the 'wandb' extra: pip install -e '.[wandb]'")

from harness.summary import RunStatus, RunSummary  # noqa: E402
from sweep import dashboard  # noqa: E402
from tests.helpers import (  # noqa: E402
    REPO,
    fresh_cache,
    run_train,
    tiny_overrides,
    wandb_history_keys,
    wandb_records,
    wandb_run,
)
from tests.helpers.fake_runs import write_run  # noqa: E402

GROUP = "glu_table-sweep"  # experiment-<sweep dir name>
SECTIONS = ["Loss", "Compute", "Gradients", "Activations", "Run table"]


def build(sweep_dir: Path, out: Path, *args: str) -> tuple[int, str]:
    """python -m sweep.dashboard, in this process: (exit code, stdout)."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = dashboard.main([str(sweep_dir), "--out", str(out), *args])
    return rc, buf.getvalue()


def specs(out: Path) -> tuple[dict, dict]:
    d = out / GROUP / "wandb"
    return (json.loads((d / f"{n}.json").read_text()) for n in ("workspace", "report"))


def workspace_sections(ws: dict) -> list[dict]:
    return ws["spec"]["section"]["panelBankConfig"]["sections"]


def report_grids(report: dict) -> list[dict]:
    return [b["metadata"] for b in report["spec"]["blocks"] if b["type"] == "panel-grid"]


def plotted_keys(ws: dict, report: dict) -> set[str]:
    """Every metric a line plot of either view draws, its x-axis included."""
    panels = [p for s in workspace_sections(ws) for p in s["panels"]]
    panels += [p for g in report_grids(report) for p in g["panelBankSectionConfig"]["panels"]]
    keys = set()
    for p in panels:
        if p["viewType"] == "Run History Line Plot":
            keys |= set(p["config"]["metrics"]) | {p["config"]["xAxis"]}
    return keys


def markdown_texts(ws: dict, report: dict) -> tuple[str, str]:
    panels = [p for s in workspace_sections(ws) for p in s["panels"]]
    in_ws = "\n".join(p["config"]["value"] for p in panels if p["viewType"] == "Markdown Panel")
    blocks = report["spec"]["blocks"]
    in_report = "\n".join(b["content"] for b in blocks if b["type"] == "markdown-block")
    return in_ws, in_report


def run_table(text: str) -> list[str]:
    """The rows of the run table in a view's Markdown (after its header and rule)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| variant | model | seed"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def config_has(config: dict, backend_key: str) -> bool:
    """Whether a W&B config holds `ffn.value.name`-style key (W&B's '.value' after the top)."""
    top, _, rest = backend_key.partition(".value")
    node = config.get(top)
    for part in filter(None, rest.lstrip(".").split(".")):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return top in config


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def sweep(token_cache, tmp_path_factory) -> dict:
    """A real 2 x 2 offline sweep and its sweep.report; the dashboard built from both."""
    tmp = tmp_path_factory.mktemp("dashboard")
    sweep_dir, out = tmp / "sweep", tmp / "results"
    proc = run_train(
        [
            "-m",
            "experiment=glu_table",
            "ffn=relu,swiglu",
            "seed=0,1",
            *tiny_overrides(fresh_cache(token_cache, tmp / "tokens")),
            f"hydra.sweep.dir={sweep_dir}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    from sweep import plots, report

    seen = []  # the colours the report's plots were drawn with

    def spy(names):
        seen.append(real(names))
        return seen[-1]

    real, plots.variant_colors = plots.variant_colors, spy
    try:
        with redirect_stdout(io.StringIO()):
            assert report.main([str(sweep_dir), "--out", str(out)]) == 0
    finally:
        plots.variant_colors = real
    rc, stdout = build(sweep_dir, out)
    ws, rep = specs(out)
    run_dirs = sorted(p for p in sweep_dir.iterdir() if (p / "summary.json").is_file())
    return dict(
        dir=sweep_dir,
        out=out,
        rc=rc,
        stdout=stdout,
        ws=ws,
        report=rep,
        run_dirs=run_dirs,
        plot_colors=seen,
    )


# --------------------------------------------------------------------------------------- tests


def test_offline_writes_both_specs_and_prints_sync_then_save(sweep):
    assert sweep["rc"] == 0, sweep["stdout"]
    out = sweep["stdout"].splitlines()
    for name in ("workspace", "report"):
        assert f"wrote {sweep['out'] / GROUP / 'wandb' / name}.json" in out
    (sync,) = [line.strip() for line in out if line.strip().startswith("wandb sync ")]
    save = f"python -m sweep.dashboard {sweep['dir']} --save --out {sweep['out']}"
    assert out[-1].strip() == save and out.index(f"  {sync}") < len(out) - 1  # sync, then save
    # The printed command syncs exactly the sweep's four offline runs (wandb's own dry run).
    dry = subprocess.run(
        ["bash", "-c", sync.replace("wandb sync ", "wandb sync --dry-run ", 1)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert dry.returncode == 0, dry.stderr
    assert "Would sync 4 run(s)" in dry.stdout + dry.stderr
    ids = {wandb_run(d)["run_id"] for d in sweep["run_dirs"]}
    assert all(f"run-{i}.wandb" in dry.stdout + dry.stderr for i in ids)


def test_sections_in_order_with_charts_of_every_logged_key(sweep):
    ws, rep = sweep["ws"], sweep["report"]
    assert [s["name"] for s in workspace_sections(ws)] == SECTIONS
    headings = [b["children"][0]["text"] for b in rep["spec"]["blocks"] if b["type"] == "heading"]
    assert [h for h in headings if h in SECTIONS] == SECTIONS
    history = set().union(*(wandb_history_keys(d) for d in sweep["run_dirs"]))
    plotted = plotted_keys(ws, rep)
    assert plotted <= history, plotted - history  # nothing is plotted that was not logged
    assert ("val/bpb" in plotted) == ("val/bpb" in history)
    wanted = {"tokens", "val/loss", "train/loss", "train/tokens_per_s", "train/mfu"}
    wanted |= {"train/model_tflops", "grad_norm/total", "grad_norm/ffn", "grad_norm/attn"}
    assert wanted <= plotted
    logged = {k for k in history if k.startswith(("act/", "grad_norm/"))}
    assert logged and logged <= plotted  # every layer's line, every statistic, every block
    by_name = {s["name"]: s for s in workspace_sections(ws)}
    for name in SECTIONS[:4]:
        lines = [p for p in by_name[name]["panels"] if p["viewType"] == "Run History Line Plot"]
        assert lines, name
        for p in lines:
            c = p["config"]
            assert (c["xAxis"], c["groupAgg"], c["groupArea"]) == ("tokens", "mean", "minmax")
    act = by_name["Activations"]
    first = [p["config"]["chartTitle"] for p in act["panels"][:3]]  # one statistic's row
    assert first[0].startswith("gate (GLU) / act (dense): ")
    assert first[1].startswith("value (GLU): ") and first[2].startswith("gate x value (GLU): ")
    assert act["flowConfig"]["columnsPerPage"] == 3
    rms = next(p for p in act["panels"] if p["config"]["chartTitle"].startswith("gate"))
    assert {"act/L0/gate/rms", "act/L1/gate/rms", "act/L0/act/rms"} <= set(rms["config"]["metrics"])


def test_filtered_to_the_group_and_grouped_by_config_keys_the_runs_have(sweep):
    ws, rep = sweep["ws"], sweep["report"]
    runs = [wandb_run(d) for d in sweep["run_dirs"]]
    runsets = [ws["spec"]["section"]["runSets"][0]] + [g["runSets"][0] for g in report_grids(rep)]
    for rs in runsets:
        filters = {f["key"]["name"]: f["value"] for f in rs["filters"]["filters"]}
        assert filters == {"group": GROUP, "jobType": "train"}
        assert {r["run_group"] for r in runs} == {GROUP}
        assert {r["job_type"] for r in runs} == {"train"}
        grouping = [k["name"] for k in rs["grouping"] if k["section"] == "config"]
        assert grouping == ["ffn.value.name"]  # the variant; nothing else varies here
        columns = list(rs["runFeed"]["columnOrder"])
        for r in runs:
            config = r["config"]["update"]
            for key in grouping + [c.split(":", 1)[1] for c in columns if c.startswith("config:")]:
                assert config_has(config, key), (key, r["display_name"])
    summary = set()
    for d in sweep["run_dirs"]:
        for rec in wandb_records(d, "summary"):
            summary |= set(rec["summary"].get("update", {}))
    columns = ws["spec"]["section"]["runSets"][0]["runFeed"]["columnOrder"]
    assert {c.split(":", 1)[1] for c in columns if c.startswith("summary:")} <= summary


def test_specs_round_trip_through_wandb_workspaces_models(sweep):
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces.reports.v2 import internal as report_models
    from wandb_workspaces.workspaces import internal as workspace_models

    d = sweep["out"] / GROUP / "wandb"
    view = ws.Workspace._from_model(
        workspace_models.View.model_validate_json((d / "workspace.json").read_text())
    )
    again = json.loads(view._to_model().model_dump_json(by_alias=True, exclude_none=True))
    assert again == sweep["ws"]
    assert [s.name for s in view.sections] == SECTIONS
    report = wr.Report._from_model(
        report_models.ReportViewspec.model_validate_json((d / "report.json").read_text())
    )
    again = json.loads(report._to_model().model_dump_json(by_alias=True, exclude_none=True))
    assert again == sweep["report"]
    assert report.title == f"FFN variant sweep: {GROUP}"


def test_report_quotes_report_md_and_says_its_numbers_come_from_there(sweep):
    _, text = markdown_texts(sweep["ws"], sweep["report"])
    report_md = (sweep["out"] / GROUP / "report.md").read_text()
    table = [line for line in report_md.splitlines() if line.startswith("| **")]
    assert table and all(line in text for line in table)  # the results table, verbatim
    assert "## Plots" not in text and ".png" not in text  # W&B draws the charts instead
    assert "copied from" in text and "not the report's statistics" in text
    assert str(sweep["out"] / GROUP / "report.md") in text


def test_variant_colours_are_the_report_plots_colours(sweep):
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from sweep.colors import TAB10
    from sweep.wandb_views import workspace_from_json

    assert TAB10 == tuple(to_hex(c) for c in plt.get_cmap("tab10").colors)
    plotted = sweep["plot_colors"][0]  # make_plots' colours: one per report row
    assert set(plotted) == {"relu", "swiglu"}
    view = workspace_from_json(json.dumps(sweep["ws"]))
    assert view.runset_settings.group_colors == plotted
    for d in sweep["run_dirs"]:  # each run too, by its W&B id
        run = wandb_run(d)
        color = view.runset_settings.run_settings[run["run_id"]].color
        assert color == plotted[run["config"]["update"]["ffn"]["name"]]
    grid = report_grids(sweep["report"])[0]
    assert set(plotted.values()) <= set(grid["customRunColors"].values())


def test_a_failed_job_builds_and_is_listed_in_the_run_table(sweep, tmp_path):
    root = tmp_path / "sweep"
    shutil.copytree(sweep["dir"], root, ignore=shutil.ignore_patterns("checkpoints"))
    failed = root / "3_swiglu-s1"  # crashed mid-run: a failure record, its W&B run kept
    error = "RuntimeError: CUDA out of memory"
    RunSummary("swiglu", 1, status=RunStatus.failed, error=error).write(failed)
    dead = root / "4_geglu-s0" / ".hydra"  # died before writing anything else
    dead.mkdir(parents=True)
    (dead / "overrides.yaml").write_text("- ffn=geglu\n- seed=0\n- experiment=glu_table\n")
    out = tmp_path / "results"
    rc, stdout = build(root, out)
    assert rc == 0, stdout
    ws, rep = specs(out)
    for text in markdown_texts(ws, rep):
        rows = {line.split("|")[10].strip(): line for line in run_table(text)}
        assert set(rows) == {"0_relu-s0", "1_relu-s1", "2_swiglu-s0", "3_swiglu-s1", "4_geglu-s0"}
        assert f"failed: {error}" in rows["3_swiglu-s1"]
        assert "| missing: no summary.json" in rows["4_geglu-s0"]
        assert "| none |" in rows["4_geglu-s0"]  # no W&B run
        assert "| completed |" in rows["0_relu-s0"]
    assert f"no {out / GROUP / 'report.md'} yet" in stdout  # no report yet; views all the same
    assert [s["name"] for s in workspace_sections(ws)] == SECTIONS


@pytest.mark.parametrize("version", [None, "0.4.1"])
def test_missing_or_old_wandb_workspaces_is_one_line_naming_the_extra(version, monkeypatch, capsys):
    from importlib import metadata

    def fake_version(name):
        if version is None:
            raise metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(metadata, "version", fake_version)
    assert dashboard.main(["nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wandb-workspaces>=" in err[0] and ".[wandb]" in err[0]
    assert ("not installed" if version is None else f"found {version}") in err[0]


def test_save_without_a_login_writes_the_specs_and_exits_0(sweep, tmp_path):
    """--save where the runs are synced but there is no login: no URL, the specs, the way on."""
    root = tmp_path / "sweep"
    shutil.copytree(sweep["dir"], root, ignore=shutil.ignore_patterns("checkpoints"))
    for f in root.glob("*/wandb/offline-run-*/*.wandb"):
        f.with_suffix(".wandb.synced").touch()  # as `wandb sync` leaves them
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env |= {"HOME": str(tmp_path), "WANDB_BASE_URL": "http://127.0.0.1:9"}  # nothing listens
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.dashboard", str(root), "--save", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("not saved to W&B: ") for line in lines), proc.stdout
    assert not any(line.startswith("saved: ") for line in lines)
    assert not any("wandb sync" in line for line in lines)  # all synced: only the save is left
    assert lines[-1].strip() == f"python -m sweep.dashboard {root} --save --out {out}"
    assert all((out / GROUP / "wandb" / f"{n}.json").is_file() for n in ("workspace", "report"))


def test_save_with_unsynced_offline_runs_says_sync_first(sweep, tmp_path):
    rc, stdout = build(sweep["dir"], tmp_path / "results", "--save")
    assert rc == 0
    assert "not saved to W&B: 4 of the sweep's W&B runs are offline, not synced yet" in stdout
    assert "wandb sync " in stdout


def test_a_sweep_over_models_groups_by_variant_then_model(tmp_path):
    """Fabricated run dirs (no W&B): grouping follows the overrides the sweep varies, and each
    group's colour is its report plot's (variants as in the scaling plot, rows as elsewhere)."""
    from sweep.plots import variant_colors

    root = tmp_path / "sweep"
    jobs = [(v, m, s) for v in ("relu", "swiglu") for m in ("cpu_d64", "tiny") for s in (0, 1)]
    for i, (variant, model, seed) in enumerate(jobs):
        job = root / f"{i}_{variant}-s{seed}"
        write_run(job, variant, seed, final=5.0, overrides=(f"model={model}",))
        config = {"ffn": {"name": variant}, "model": {"name": model}, "seed": seed}
        (job / ".hydra" / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    sweep = dashboard.load(root, tmp_path / "results")
    assert sweep.grouping == ["ffn.name", "model.name"]
    labels = variant_colors({r.label for r in sweep.runs})  # the val-loss plot's rows
    variants = variant_colors(["relu", "swiglu"])  # the scaling plot's variants
    assert sweep.group_colors() == {
        ("relu",): variants["relu"],
        ("swiglu",): variants["swiglu"],
        **{(v, m): labels[f"{v} (model={m})"] for v, m, _ in jobs},
    }
    assert sweep.wandb == {} and [s.name for s in sweep.sections] == SECTIONS
    rc, stdout = build(root, tmp_path / "results")
    assert rc == 0 and "no job of this sweep logged to W&B" in stdout
    from sweep.wandb_views import workspace_from_json

    ws = (tmp_path / "results" / "glu_table-test" / "wandb" / "workspace.json").read_text()
    view = workspace_from_json(ws)
    assert [g.name for g in view.runset_settings.groupby] == ["ffn.name", "model.name"]
    assert len(view.runset_settings.group_colors) == 6  # 2 variants + 4 (variant, model)
