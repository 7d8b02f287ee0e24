"""The wandb-workspaces objects of a planned sweep (sweep.dashboard): a workspace and a Report.

Building and serialising them needs no W&B server; saving does (sweep.dashboard.save). A Report
runset names its project only when it is saved: wandb-workspaces looks the project up on the
server as it serialises a runset that names one.
"""

from __future__ import annotations

import re

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws
from wandb_workspaces import expr
from wandb_workspaces.reports.v2 import internal as report_internal
from wandb_workspaces.workspaces import internal as workspace_internal

from sweep.dashboard_plan import NOTE, RUN_COLUMNS, VARIANT_KEY, X_AXIS, Chart, Sweep

GRID_WIDTH = 24  # a Report panel grid is 24 units wide
CHART_HEIGHT = 8
RUNSET = "sweep runs"


def dump(view: ws.Workspace | wr.Report) -> str:
    """The view as W&B stores it (JSON)."""
    return view._to_model().model_dump_json(by_alias=True, exclude_none=True)


def workspace_from_json(text: str) -> ws.Workspace:
    return ws.Workspace._from_model(workspace_internal.View.model_validate_json(text))


def report_from_json(text: str) -> wr.Report:
    return wr.Report._from_model(report_internal.ReportViewspec.model_validate_json(text))


def _filters(sweep: Sweep) -> list:
    """The sweep's training runs: its W&B group, without the report run sweep.report logs."""
    return [expr.Metric("Group") == sweep.group, expr.Metric("JobType") == "train"]


def line_plot(chart: Chart, sweep: Sweep, layout: wr.Layout | None = None) -> wr.LinePlot:
    """`chart.keys` against tokens; grouped runs as their mean with a min-max band."""
    return wr.LinePlot(
        title=chart.title,
        x=X_AXIS,
        y=list(chart.keys),
        title_x=X_AXIS,
        aggregate=True,
        groupby_aggfunc="mean",
        groupby_rangefunc="minmax",
        smoothing_type="none",
        max_runs_to_show=max(10, len(sweep.wandb)),
        layout=layout or wr.Layout(),
    )


# ---------------------------------------------------------------------------------- workspace


def workspace(sweep: Sweep, entity: str) -> ws.Workspace:
    """The project's saved view of this sweep."""
    sections = []
    for s in sweep.sections:
        panels: list = [line_plot(c, sweep) for c in s.charts]
        if s.markdown is not None:
            panels.append(wr.MarkdownPanel(markdown=s.markdown))
        if s.compare_runs:
            panels.append(wr.RunComparer(diff_only="split"))
        rows = max(len(s.rows), 1) if s.charts else len(panels)
        sections.append(
            ws.Section(
                name=s.name,
                panels=panels,
                is_open=True,
                layout_settings=ws.SectionLayoutSettings(columns=s.columns, rows=rows),
                panel_settings=ws.SectionPanelSettings(x_axis=X_AXIS, smoothing_type="none"),
            )
        )
    group_colors = {
        path[0] if len(path) == 1 else ws.GroupPath(*path): color
        for path, color in sweep.group_colors().items()
    }
    return ws.Workspace(
        entity=entity,
        project=sweep.project,
        name=f"FFN variants: {sweep.name}",
        sections=sections,
        settings=ws.WorkspaceSettings(
            x_axis=X_AXIS, smoothing_type="none", max_runs=max(10, len(sweep.wandb))
        ),
        runset_settings=ws.RunsetSettings(
            filters=_filters(sweep),
            groupby=[expr.Config(k) for k in sweep.grouping],
            order=[expr.Ordering(expr.Config(VARIANT_KEY), ascending=True)],
            group_colors=group_colors,
            run_settings={i: ws.RunSettings(color=c) for i, c in sweep.run_colors().items()},
            pinned_columns=[column for _, column in RUN_COLUMNS],
        ),
    )


# ------------------------------------------------------------------------------------- Report


def report_sections(markdown: str) -> list[tuple[str | None, str]]:
    """report.md as (heading, body) per '## ' section; the part before the first heading has
    heading None and loses its '# ' title line. The Plots section (local PNGs) is left out: the
    Report draws the charts from W&B instead."""
    parts = re.split(r"(?m)^## ", markdown)
    head = "\n".join(line for line in parts[0].splitlines() if not line.startswith("# "))
    out: list[tuple[str | None, str]] = [(None, head.strip())] if head.strip() else []
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        if title.strip() != "Plots":
            out.append((title.strip(), body.strip()))
    return out


def _runset(sweep: Sweep, entity: str, online: bool) -> wr.Runset:
    return wr.Runset(
        entity=entity if online else "",
        project=sweep.project if online else "",
        name=RUNSET,
        filters=_filters(sweep),
        groupby=[f"config.{k}" for k in sweep.grouping],
        order=[wr.OrderBy(wr.Config(VARIANT_KEY), ascending=True)],
        pinned_columns=[column for _, column in RUN_COLUMNS],
    )


def _colors(sweep: Sweep) -> dict:
    groups = {
        wr.RunsetGroup(
            runset_name=RUNSET,
            keys=tuple(
                wr.RunsetGroupKey(key=wr.Config(k), value=v)
                for k, v in zip(sweep.grouping, path, strict=False)
            ),
        ): color
        for path, color in sweep.group_colors().items()
    }
    return {**sweep.run_colors(), **groups}


def panel_grid(sweep: Sweep, panels: list, entity: str, online: bool) -> wr.PanelGrid:
    return wr.PanelGrid(
        runsets=[_runset(sweep, entity, online)], panels=panels, custom_run_colors=_colors(sweep)
    )


def chart_grid(section, sweep: Sweep, entity: str, online: bool) -> wr.PanelGrid:
    """A section's charts at their places: a row of the grid per row of charts."""
    width = GRID_WIDTH // max(section.columns, 1)
    panels = [
        line_plot(c, sweep, wr.Layout(x=c.column * width, y=i * CHART_HEIGHT, w=width, h=8))
        for i, row in enumerate(section.rows)
        for c in row
    ]
    return panel_grid(sweep, panels, entity, online)


def report(sweep: Sweep, entity: str, online: bool) -> wr.Report:
    """The Report: report.md's text and tables, then the charts over the sweep's runs."""
    where = f"`{sweep.report_path}`"
    intro = (
        f"Sweep `{sweep.root}`: W&B group `{sweep.group}` in project `{sweep.project}`, "
        f"{len(sweep.runs)} jobs.\n\n" + NOTE.format(report=sweep.report_path)
    )
    blocks: list = [wr.MarkdownBlock(text=intro)]
    if sweep.report_md is None:
        blocks.append(
            wr.MarkdownBlock(
                text=f"No {where} yet: make it with `python -m sweep.report {sweep.root}` and "
                f"build this Report again (`python -m sweep.dashboard {sweep.root}`)."
            )
        )
    else:
        blocks.append(wr.H1(f"The report ({sweep.report_path.name})"))
        for title, body in report_sections(sweep.report_md):
            if title:
                blocks.append(wr.H2(title))
            if body:
                blocks.append(wr.MarkdownBlock(text=body))
    blocks.append(wr.H1("Charts (W&B's views of the same runs)"))
    for s in sweep.sections:
        blocks.append(wr.H2(s.name))
        if s.charts:
            blocks.append(chart_grid(s, sweep, entity, online))
        if s.markdown is not None:
            blocks.append(wr.MarkdownBlock(text=s.markdown))
        if s.compare_runs:
            full = wr.Layout(x=0, y=0, w=GRID_WIDTH, h=10)
            comparer = wr.RunComparer(diff_only="split", layout=full)
            blocks.append(panel_grid(sweep, [comparer], entity, online))
        if not s.charts and s.markdown is None:
            blocks.append(wr.P(f"No run of this sweep logged {s.name.lower()} metrics."))
    return wr.Report(
        entity=entity,
        project=sweep.project,
        title=f"FFN variant sweep: {sweep.name}"[:128],
        description=f"W&B group {sweep.group}; every number is from {sweep.report_path}.",
        blocks=blocks,  # the default width: wandb-workspaces reads no other back
    )
