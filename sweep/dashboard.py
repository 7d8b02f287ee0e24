"""W&B views of a sweep, built from code: a saved workspace and a W&B Report.

    python -m sweep.dashboard SWEEP_DIR [--save] [--name NAME] [--out results]

From the sweep's runs as sweep.runs finds them (summary.json, metrics.jsonl, .hydra/) and the
W&B run dirs they left, it plans the charts from the metric keys the runs really logged, then
builds with wandb-workspaces (the `wandb` extra):

- a workspace for the project, filtered to the sweep's W&B group (training runs only), runs
  grouped by variant (and by each other setting the sweep varies, e.g. the model), a colour per
  variant as in the report's plots (sweep.colors), and the sections Loss, Compute, Gradients,
  Activations and Run table;
- a Report: the sections of results/<name>/report.md as Markdown blocks, then panel grids of
  the same charts over a runset filtered to the group.

Both specs are written as JSON under results/<name>/wandb/. With --save, a login and a network
(and the runs uploaded), both are saved to W&B and their URLs printed; otherwise the command says
what to `wandb sync` and how to save afterwards. Neither path touches the report's own files, and
neither fails: only bad input (exit 2) or a missing wandb-workspaces (exit 2) does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import UserInputError, one_line
from sweep.dashboard_plan import EXTRA, MIN_WORKSPACES, Sweep, load


def workspaces_problem() -> str | None:
    """Why wandb-workspaces cannot be used (one line), or None."""
    from importlib import metadata

    need = ".".join(map(str, MIN_WORKSPACES))
    fix = f"install the '{EXTRA}' extra: pip install -e '.[{EXTRA}]' (make install does)"
    try:
        version = metadata.version("wandb-workspaces")
        import wandb_workspaces  # noqa: F401
    except (metadata.PackageNotFoundError, ImportError):
        return f"sweep.dashboard needs wandb-workspaces>={need}, which is not installed; {fix}"
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
    if parts < MIN_WORKSPACES:
        return f"sweep.dashboard needs wandb-workspaces>={need}, found {version}; {fix}"
    return None


def write_specs(sweep: Sweep, workspace_json: str, report_json: str) -> list[Path]:
    dest = sweep.dest / "wandb"
    dest.mkdir(parents=True, exist_ok=True)
    paths = [dest / "workspace.json", dest / "report.json"]
    for path, text in zip(paths, (workspace_json, report_json), strict=True):
        path.write_text(json.dumps(json.loads(text), indent=2) + "\n", encoding="utf-8")
    return paths


def sync_command(sweep: Sweep) -> str | None:
    """`wandb sync ...` for the sweep's offline runs not yet synced (None if there are none)."""
    todo = [
        d
        for w in sweep.wandb.values()
        if w.offline and not w.synced
        for d in w.dirs
        if d.name.startswith("offline-run-")
    ]
    if not todo:
        return None
    flat = all(d.parent.parent.parent == sweep.root for d in todo)
    if flat and len(todo) > 4:
        return f"wandb sync {sweep.root}/*/wandb/offline-run-*"
    return "wandb sync " + " ".join(str(d) for d in todo)


class NotReady(Exception):
    """W&B cannot take the views yet (no login, no network, runs not uploaded)."""


def save(sweep: Sweep) -> list[str]:
    """Save the workspace and the Report to W&B; their URLs. NotReady when W&B cannot."""
    import wandb

    from sweep import wandb_views

    unsynced = [w for w in sweep.wandb.values() if w.offline and not w.synced]
    if unsynced:
        raise NotReady(f"{len(unsynced)} of the sweep's W&B runs are offline, not synced yet")
    try:
        api = wandb.Api(timeout=30)
        entity = sweep.entity or api.default_entity
        remote = {r.id for r in api.runs(f"{entity}/{sweep.project}", {"group": sweep.group})}
    except Exception as e:
        raise NotReady(one_line(e)) from e
    missing = [w.run_id for w in sweep.wandb.values() if w.run_id not in remote]
    if missing:
        raise NotReady(
            f"{len(missing)} of the sweep's runs are not in {entity}/{sweep.project} on W&B "
            f"(e.g. {missing[0]})"
        )
    workspace = wandb_views.workspace(sweep, entity).save()
    report = wandb_views.report(sweep, entity, online=True).save()
    return [workspace.url, report.url]


def dashboard(sweep: Sweep, do_save: bool, log=print) -> int:
    """Build and write both views; save them if asked and W&B can take them. Exit code."""
    from sweep import wandb_views

    workspace = wandb_views.workspace(sweep, sweep.entity or "")
    report = wandb_views.report(sweep, sweep.entity or "", online=False)
    paths = write_specs(sweep, wandb_views.dump(workspace), wandb_views.dump(report))
    charts = sum(len(s.charts) for s in sweep.sections)
    log(
        f"W&B views of group {sweep.group!r} (project {sweep.project}): "
        f"{', '.join(s.name for s in sweep.sections)}; {charts} charts"
    )
    if sweep.report_md is None:
        log(
            f"note: no {sweep.report_path} yet, so the Report has no tables; make it with "
            f"python -m sweep.report {sweep.root}, then run this again"
        )
    if not sweep.wandb:
        log("note: no job of this sweep logged to W&B (logger.mode=disabled?): the views are empty")
    for path in paths:
        log(f"wrote {path}")
    if do_save:
        try:
            for url in save(sweep):
                log(f"saved: {url}")
            return 0
        except NotReady as e:
            log(f"not saved to W&B: {e}")
        except Exception as e:
            log(f"not saved to W&B: {one_line(e)}")
    sync = sync_command(sweep)
    log("to save them to W&B (needs `wandb login` and a network):")
    if sync:
        log(f"  {sync}")
    log(f"  python -m sweep.dashboard {sweep.root} --save" + _name_args(sweep))
    return 0


def _name_args(sweep: Sweep) -> str:
    default = Path("results")
    out = "" if sweep.dest.parent == default else f" --out {sweep.dest.parent}"
    return out + (f" --name {sweep.name}" if sweep.named else "")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m sweep.dashboard",
        description="A saved W&B workspace and a W&B Report for a sweep, built from code: "
        "both specs as JSON under <out>/<name>/wandb/; with --save (a login, a network, the "
        "runs synced) saved to W&B too.",
    )
    ap.add_argument("sweep_dir", type=Path, help="the multirun dir (as for sweep.report)")
    ap.add_argument("--save", action="store_true", help="save both views to W&B")
    ap.add_argument("--name", default=None, help="the report's name (default as sweep.report)")
    ap.add_argument(
        "--out", type=Path, default=Path("results"), help="parent dir of <name>/ (results)"
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problem = workspaces_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        sweep = load(args.sweep_dir, args.out, args.name)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sweep.named = args.name is not None
    return dashboard(sweep, args.save)


if __name__ == "__main__":
    sys.exit(main())
