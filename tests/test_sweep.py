"""Sweep presets and launchers, through real Hydra.

The experiment overlays (glu_table, lr_scan) and launcher presets (parallel, slurm, slurm_local)
compose with the expected fields; a tiny 4-job multirun on the parallel (pool) launcher goes end
to end into sweep.report and W&B (one group, one run per job); the slurm_local preset runs a job
through submitit's local executor, which is preempted, requeued and resumes from its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from harness.cli import compose_checked
from harness.config import register_configs
from hydra_plugins.ffn_variants_launcher.pool_launcher import cores
from tests.helpers import fresh_cache, tiny_overrides, wandb_run

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
TABLE_1 = ["relu", "gelu", "swish", "glu", "bilinear", "reglu", "geglu", "swiglu"]
WITH_RELU2 = ["relu", "relu2", *TABLE_1[1:]]
SUBPROCESS_TIMEOUT_S = 300


# --------------------------------------------------------------------------------------- helpers


def compose_train(overrides: list[str]) -> DictConfig:
    """configs/train.yaml with its hydra node (sweeper params, launcher), as train.py sees it."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose("train", overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def sweep_values(params: DictConfig) -> dict[str, list[str]]:
    """hydra.sweeper.params expanded: key -> the values the basic sweeper will run."""
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return {
        o.key_or_group: list(o.sweep_string_iterator())
        if o.is_sweep_override()
        else [o.get_value_element_as_str()]
        for o in parsed
    }


def run_multirun(args: list[str], log: Path) -> subprocess.CompletedProcess:
    """python train.py -m ARGS in its own session, killed as a group if it hangs."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), "-m", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=SUBPROCESS_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(), "")


def child_pids(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


# ------------------------------------------------------------------------------ experiment presets


@pytest.mark.parametrize("model", [None, "small"])
def test_glu_table_sweeps_table_1_and_relu2_over_five_seeds(model):
    cfg = compose_train(["experiment=glu_table"] + ([f"model={model}"] if model else []))
    assert cfg.experiment == "glu_table"
    assert cfg.model.name == (model or "tiny")
    assert cfg.ffn.match == "params"
    typed = compose_checked(["experiment=glu_table"] + ([f"model={model}"] if model else []))
    assert typed.data.tokenizer == ("r50k_base" if model else "r50k_8k")  # follows the model
    assert 0 < cfg.trainer.max_steps <= 1000  # a CPU-sized default budget
    assert cfg.hydra.sweep.dir.startswith("multirun/glu_table/")
    values = sweep_values(cfg.hydra.sweeper.params)
    assert values == {"ffn": WITH_RELU2, "seed": ["0", "1", "2", "3", "4"]}
    for name in values["ffn"]:
        assert (CONFIGS / "ffn" / f"{name}.yaml").is_file()
        job = compose_train(["experiment=glu_table", f"ffn={name}", "seed=2"])
        assert (job.ffn.name, job.seed, job.experiment) == (name, 2, "glu_table")


def test_lr_scan_sweeps_learning_rates_per_variant():
    cfg = compose_train(["experiment=lr_scan"])
    assert cfg.experiment == "lr_scan"
    assert cfg.hydra.sweep.dir.startswith("multirun/lr_scan/")
    values = sweep_values(cfg.hydra.sweeper.params)
    assert values["ffn"] == WITH_RELU2
    assert [float(v) for v in values["optim.lr"]] == [1e-3, 3e-3, 1e-2]
    assert values["seed"] == ["0"]
    for lr in values["optim.lr"]:
        job = compose_train(["experiment=lr_scan", "ffn=geglu", f"optim.lr={lr}", "seed=0"])
        assert job.optim.lr == pytest.approx(float(lr))


def test_scaling_sweeps_variants_sizes_and_seeds_with_a_token_budget():
    cfg = compose_train(["experiment=scaling"])
    values = sweep_values(cfg.hydra.sweeper.params)
    assert values == {
        "ffn": ["relu", "relu2", "gelu", "geglu", "swiglu"],
        "model": ["cpu_d64", "cpu_d96", "tiny"],
        "seed": ["0", "1", "2"],
    }
    assert cfg.trainer.max_steps is None and cfg.trainer.tokens_per_param == 1.5
    assert cfg.optim.warmup_fraction == 0.05
    params = []
    for model in values["model"]:
        job = compose_checked(["experiment=scaling", f"model={model}", "ffn=swiglu"])
        assert job.model.d_model == 32 * job.model.n_layer == 32 * job.model.n_head
        assert (job.model.d_ff, job.model.vocab_size) == (4 * job.model.d_model, 8192)
        assert job.data.tokenizer == "r50k_8k"  # one tokenizer for every rung
        params.append(12 * job.model.n_layer * job.model.d_model**2)
    assert params == sorted(params) and params[-1] / params[0] > 5  # a ladder, not a step


# -------------------------------------------------------------------------------- launcher presets


def test_parallel_and_gpus_presets_are_the_pool_launcher():
    launcher = compose_train(["hydra/launcher=parallel"]).hydra.launcher
    assert launcher._target_.endswith("PoolLauncher")
    assert (launcher.n_jobs, launcher.devices, launcher.threads_per_job) == (2, None, None)
    more = compose_train(["hydra/launcher=parallel", "hydra.launcher.n_jobs=4"])
    assert more.hydra.launcher.n_jobs == 4
    gpus = compose_train(["hydra/launcher=gpus", "hydra.launcher.devices=[0,2]"]).hydra.launcher
    assert gpus._target_.endswith("PoolLauncher") and list(gpus.devices) == ["0", "2"]
    assert gpus.n_jobs is None


def sbatch_script(launcher: DictConfig) -> list[str]:
    """The sbatch script submitit would submit, from these parameters handed over as the Hydra
    plugin does (SlurmLauncher.launch); only the "is srun installed" check is skipped."""
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.slurm.slurm import SlurmExecutor

    class ScriptOnlySlurmExecutor(SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 1

    params = OmegaConf.to_container(launcher, resolve=True)
    params.pop("_target_")
    executor = ScriptOnlySlurmExecutor(
        folder=params.pop("submitit_folder"), max_num_timeout=params.pop("max_num_timeout")
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **executor._convert_parameters({k: v for k, v in params.items() if k in base}),
        **{k: v for k, v in params.items() if k not in base},
    )
    assert executor.max_num_timeout == launcher.max_num_timeout
    return executor._make_submission_file_text(
        "python -m submitit.core._submit x", "uid"
    ).splitlines()


def test_slurm_preset_asks_one_gpu_per_job_and_requeues_on_timeout(tmp_path):
    cfg = compose_train(
        [
            "hydra/launcher=slurm",
            "hydra.launcher.partition=gpu",
            "+hydra.launcher.additional_parameters.requeue=true",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (1, 1, 1)
    assert launcher.cpus_per_task >= 1 and launcher.mem_gb >= 1
    assert launcher.timeout_min > 0 and launcher.max_num_timeout > 0
    assert 0 < launcher.signal_delay_s < launcher.timeout_min * 60
    assert launcher.partition == "gpu"
    assert launcher.additional_parameters == {"requeue": True}
    default = compose_train(["hydra/launcher=slurm"]).hydra.launcher
    assert default.partition is None and default.additional_parameters == {}

    from submitit.slurm.slurm import SlurmJobEnvironment

    script = sbatch_script(launcher)
    for line in [
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --cpus-per-task={launcher.cpus_per_task}",
        f"#SBATCH --mem={launcher.mem_gb}GB",
        f"#SBATCH --time={launcher.timeout_min}",
        f"#SBATCH --signal={SlurmJobEnvironment.USR_SIG}@{launcher.signal_delay_s}",
        "#SBATCH --partition=gpu",
        "#SBATCH --open-mode=append",  # a requeued job appends to the same log
        "#SBATCH --requeue",
        f"#SBATCH --output={tmp_path}/.submitit/%j/%j_0_log.out",
    ]:
        assert line in script, line


def test_slurm_ddp_preset_starts_one_task_per_gpu(tmp_path):
    base = ["hydra/launcher=slurm_ddp", f"hydra.sweep.dir={tmp_path}"]
    launcher = compose_train(base).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.tasks_per_node == launcher.gpus_per_node == 4 and launcher.nodes == 1
    eight = compose_train([*base, "hydra.launcher.gpus_per_node=8", "hydra.launcher.nodes=2"])
    assert eight.hydra.launcher.tasks_per_node == 8
    script = sbatch_script(eight.hydra.launcher)
    for line in ["#SBATCH --gpus-per-node=8", "#SBATCH --ntasks-per-node=8", "#SBATCH --nodes=2"]:
        assert line in script, line
    assert any(line.startswith("srun ") for line in script)  # one process per task


def test_slurm_local_preset_mirrors_slurm_where_it_applies():
    local = compose_train(["hydra/launcher=slurm_local"]).hydra.launcher
    slurm = compose_train(["hydra/launcher=slurm"]).hydra.launcher
    assert local._target_.endswith("LocalLauncher")
    assert local.tasks_per_node == slurm.tasks_per_node == 1
    assert local.timeout_min == slurm.timeout_min


# ------------------------------------------------------------------------------------ end to end


def test_parallel_multirun_reports_paired_results_and_groups_wandb_runs(token_cache, tmp_path):
    """glu_table cut to relu,swiglu x 2 seeds, tiny, 2 jobs at a time; then sweep.report."""
    sweep_dir = tmp_path / "sweep_glu"
    result = run_multirun(
        [
            "experiment=glu_table",
            "ffn=relu,swiglu",
            "seed=0,1",
            *tiny_overrides(fresh_cache(token_cache, tmp_path / "tokens")),
            "hydra/launcher=parallel",
            "hydra.launcher.n_jobs=2",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        tmp_path / "multirun.log",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    threads = max(1, cores() // 2)
    assert f"4 jobs, 2 at a time (CPU, CPU; {threads} thread(s) each)" in result.stdout

    names = ["relu-s0", "relu-s1", "swiglu-s0", "swiglu-s1"]
    run_dirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir())
    assert [p.name for p in run_dirs] == [f"{i}_{n}" for i, n in enumerate(names)]
    group = "glu_table-sweep_glu"
    for run_dir, name in zip(run_dirs, names, strict=True):
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed", summary
        assert (summary["run_name"], summary["group"], summary["steps"]) == (name, group, 6)
        # A CPU job: no GPU visible to it, and its share of the cores.
        assert (summary["visible_devices"], summary["threads"]) == ("", threads)
        assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").experiment == "glu_table"

    # One W&B offline run per job, all in one group, named and tagged by variant and seed.
    assert len(list(sweep_dir.glob("*/wandb/offline-run-*/*.wandb"))) == 4
    runs = [wandb_run(d) for d in run_dirs]
    assert [r["display_name"] for r in runs] == names
    assert {r["run_group"] for r in runs} == {group}
    assert len({r["run_id"] for r in runs}) == 4
    for r in runs:
        variant, seed = r["display_name"].split("-s")
        assert {variant, f"seed{seed}"} <= set(r["tags"])

    # The report: both variants, 95% CIs over n=2 seeds, the paired difference vs relu.
    out = tmp_path / "results"
    report = subprocess.run(
        [sys.executable, "-m", "sweep.report", str(sweep_dir), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert report.returncode == 0, report.stderr
    text = (out / group / "report.md").read_text()
    assert "4 completed, 0 failed" in text
    rows = {
        line.split("|")[1].strip(" *"): line
        for line in text.splitlines()
        if line.startswith("| **")
    }
    assert set(rows) == {"relu", "swiglu"}
    assert "(baseline)" in rows["relu"]
    assert "±" in rows["relu"] and "±" in rows["swiglu"]
    assert "(n=2)" in rows["swiglu"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's process in /proc")
def test_slurm_local_job_is_requeued_on_preemption_and_resumes(token_cache, tmp_path):
    """One tiny job through submitit's local executor; submitit's preemption signal mid-run
    requeues it (the launcher's checkpoint()), and the rerun resumes from the trainer's latest
    checkpoint in the same run dir, ending completed."""
    from submitit.local.local import LocalJobEnvironment

    sweep_dir = tmp_path / "sweep_local"
    steps = 24
    args = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/launcher=slurm_local",
        "ffn=swiglu",
        "seed=1",
        *tiny_overrides(fresh_cache(token_cache, tmp_path / "tokens"), steps=steps),
        "trainer.ckpt_interval=4",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    log = tmp_path / "multirun.log"
    run_dir = sweep_dir / "0_swiglu-s1"
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            # Wait until the job trains (a checkpoint before the last step), then preempt it.
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
            while not any(
                int(p.stem.split("_")[1]) < steps for p in run_dir.glob("checkpoints/step_*.pt")
            ):
                assert proc.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, "the job never wrote a checkpoint"
                time.sleep(0.05)
            (job_folder,) = (sweep_dir / ".submitit").glob("[0-9]*")
            tasks = child_pids(int(job_folder.name))  # the controller's pid is the job id
            assert len(tasks) == 1, tasks
            os.kill(tasks[0], LocalJobEnvironment._usr_sig())
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 0, log.read_text()[-4000:]

    job_log = "".join(p.read_text() for p in sorted(job_folder.glob("*_0_log.*")))
    assert "this job is preempted" in job_log and "Requeued job" in job_log, job_log[-4000:]
    assert "resuming swiglu-s1 from" in job_log, job_log[-4000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["steps"]) == ("completed", steps), summary
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [m["step"] for m in metrics if "train/loss" in m]
    assert logged == sorted(set(logged)) and logged[-1] == steps  # resumed, not restarted twice
