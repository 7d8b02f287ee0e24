"""The report as one W&B run in the sweep's group: python -m sweep.report ... --wandb [offline].

The run (job_type "report") holds the results table as a wandb.Table, the multipliers as another
where the sweep has them, each plot as an image, and report.md as a file. Online without a login
or a network it is saved offline for `wandb sync`, like the training runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.config import LoggerConfig
from harness.errors import one_line
from harness.json_safe import json_safe
from harness.metrics import wandb_init, warn
from sweep.model import ReportInput
from sweep.table import columns


def _logger_settings(rep: ReportInput) -> dict[str, Any]:
    """logger.project and logger.entity of the sweep's runs (their .hydra/config.yaml)."""
    for run in rep.ok:
        try:
            cfg = yaml.safe_load((run.path / ".hydra" / "config.yaml").read_text())
            return cfg.get("logger") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
    return {}


def _group(rep: ReportInput) -> str:
    groups = {r.summary.group for r in rep.ok if r.summary.group}
    return groups.pop() if len(groups) == 1 else rep.name


def results_table(wandb: Any, rep: ReportInput) -> Any:
    keys = columns(rep.baselines)
    rows = [json_safe(r.flat(rep.baselines)) for r in rep.rows]
    return wandb.Table(columns=keys, data=[[r[k] for k in keys] for r in rows])


def multipliers_table(wandb: Any, rep: ReportInput) -> Any | None:
    if rep.scaling is None:
        return None
    columns = [
        "baseline",
        "variant",
        "model",
        "training_flops",
        "mean_final_loss",
        "multiplier",
        "ci_low",
        "ci_high",
        "note",
        "seconds_multiplier",
        "seconds_ci_low",
        "seconds_ci_high",
    ]
    data = [
        [
            b,
            m.variant,
            m.size,
            m.compute,
            m.loss,
            m.value,
            m.low,
            m.high,
            m.note,
            m.seconds_value,
            m.seconds_low,
            m.seconds_high,
        ]
        for b, ms in rep.scaling.multipliers.items()
        for m in ms
    ]
    return wandb.Table(columns=columns, data=data)


def log_report(rep: ReportInput, dest: Path, mode: str = "online") -> Path | None:
    """Log the report written in `dest` as one W&B run; its local run dir, or None on failure."""
    import wandb  # imported only when the report is logged to W&B

    logger = _logger_settings(rep)
    kwargs = dict(
        project=logger.get("project") or LoggerConfig.project,
        entity=logger.get("entity"),
        group=_group(rep),
        job_type="report",
        name=f"report-{rep.name}",
        dir=str(dest),
        config={
            "sweep_dir": str(rep.root),
            "baselines": rep.baselines,
            "runs": len(rep.runs),
            "completed": len(rep.ok),
        },
    )
    try:
        run = wandb_init(wandb, mode, kwargs)
        record = {"results": results_table(wandb, rep)}
        if (multipliers := multipliers_table(wandb, rep)) is not None:
            record["multipliers"] = multipliers
        record |= {
            f"plots/{name.removesuffix('.png')}": wandb.Image(str(dest / name))
            for name, why in rep.plots.items()
            if why is None
        }
        run.log(record)
        run.save(str(dest / "report.md"), base_path=str(dest), policy="now")
        run_dir, offline = Path(run.dir).parent, run.settings.mode == "offline"
        run.finish()
    except Exception as e:
        warn(f"W&B report failed ({one_line(e)}); the files in {dest} hold all of it")
        return None
    if offline:
        print(f"W&B report saved offline; upload it with: wandb sync {run_dir}", flush=True)
    return run_dir
