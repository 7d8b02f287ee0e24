"""Runs that survive: exact resume after SIGKILL, preemption, bad checkpoints, NaN, bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.checkpoint import list_checkpoints, load_latest, save_checkpoint
from harness.preemption import PREEMPT_SIGNALS, PreemptionFlag
from tests.helpers import REPO, fresh_cache, run_train, tiny_overrides

STEPS = 40
VOLATILE = {
    "time_s",
    "time/eval_s",
    "train/tokens_per_s",
    "train/mfu",
    "train/model_tflops",
}  # wall-clock


def resumable(cache: Path, run_dir: Path) -> list[str]:
    return [
        *tiny_overrides(cache, steps=STEPS),
        "trainer.batch_size=16",
        "trainer.log_interval=1",
        "trainer.eval_interval=10",
        "trainer.ckpt_interval=3",
        "trainer.deterministic=true",
        "logger.mode=disabled",
        f"hydra.run.dir={run_dir}",
    ]


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE} for line in lines]


def logged_step(run_dir: Path) -> int:
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return max(json.loads(line)["step"] for line in lines[:-1]) if len(lines) > 1 else 0
    except (FileNotFoundError, ValueError):
        return 0


def _default_sigint() -> None:
    # A child of a shell's background job starts with SIGINT ignored; a terminal's does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def only_dir(pattern: str, root: Path) -> Path:
    """The one dir under `root` matching `pattern` (a run dir Hydra named), or root/none yet."""
    found = sorted(root.glob(pattern))
    return found[0] if len(found) == 1 else root / "none yet"


def start_and_wait(
    args: list[str], run_dir: Path | str, until_step: int, cwd: Path = REPO
) -> subprocess.Popen:
    """Start train.py and return once it has logged `until_step` (the run is mid-flight);
    `run_dir` may be a glob under `cwd`, for a dir Hydra names."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
    )
    deadline = time.time() + 120
    while (
        logged_step(run_dir if isinstance(run_dir, Path) else only_dir(run_dir, cwd)) < until_step
    ):
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "the run never reached the step"
        time.sleep(0.01)
    return proc


@pytest.fixture(scope="module")
def reference_dir(token_cache, tmp_path_factory) -> Path:
    """A run that was never interrupted."""
    run_dir = tmp_path_factory.mktemp("reference")
    proc = run_train(resumable(token_cache, run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def reference(reference_dir) -> list[dict]:
    """The metrics of a run that was never interrupted."""
    return metrics(reference_dir)


@pytest.fixture(scope="module")
def muon_reference(token_cache, tmp_path_factory) -> list[dict]:
    """The metrics of a run under optim=muon that was never interrupted."""
    run_dir = tmp_path_factory.mktemp("muon_reference")
    proc = run_train([*resumable(token_cache, run_dir), "optim=muon"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return metrics(run_dir)


@pytest.mark.parametrize("optim", ["adamw", "muon"])
def test_sigkill_at_a_random_step_then_resume_is_bitwise_identical(
    optim, request, token_cache, tmp_path
):
    reference = request.getfixturevalue("reference" if optim == "adamw" else "muon_reference")
    kill_at = random.randint(4, STEPS - 12)
    args = [*resumable(token_cache, tmp_path), f"optim={optim}"]
    proc = start_and_wait(args, tmp_path, kill_at)
    proc.kill()
    proc.wait()
    killed_at = logged_step(tmp_path)
    assert killed_at < STEPS, "the run finished before it was killed"
    assert list_checkpoints(tmp_path / "checkpoints")
    resumed = run_train(args)  # trainer.resume=auto is the default
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    after = metrics(tmp_path)
    assert [m["step"] for m in after] == [m["step"] for m in reference]
    assert after == reference, f"killed near step {killed_at}"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == STEPS
    # The clock continues across the resume: times never go back, and the whole run's tokens
    # are over the whole run's time
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    times = [json.loads(x)["time_s"] for x in lines]
    assert times == sorted(times) and summary["wall_time_s"] >= times[-1]
    assert summary["tokens"] == STEPS * 16 * 32
    assert summary["tokens_per_s"] == pytest.approx(summary["tokens"] / summary["wall_time_s"])
    assert 0 < summary["eval_time_s"] < summary["wall_time_s"]
    if optim == "adamw":  # the same run uninterrupted: the same rate, within (generous) noise
        unbroken = json.loads(
            (request.getfixturevalue("reference_dir") / "summary.json").read_text()
        )
        ratio = summary["train_tokens_per_s"] / unbroken["train_tokens_per_s"]
        assert 0.4 < ratio < 2.5, (summary["train_tokens_per_s"], unbroken["train_tokens_per_s"])


@pytest.mark.parametrize("sig", sorted(PREEMPT_SIGNALS))
def test_every_preemption_signal_sets_the_flag_and_is_handed_back(sig):
    """SLURM's SIGTERM, SIGUSR1 and SIGUSR2 each become the flag the trainer checks (the process
    lives on to checkpoint); on leaving, the handler that was there before is back."""
    received = []
    previous = signal.signal(sig, lambda signum, _frame: received.append(signum))
    try:
        with PreemptionFlag() as flag:
            os.kill(os.getpid(), sig)
            assert flag.signal == sig
        os.kill(os.getpid(), sig)
        assert received == [sig]
    finally:
        signal.signal(sig, previous)


def test_preemption_signal_checkpoints_and_exits(reference, token_cache, tmp_path):
    """End to end with SIGTERM (the other signals take the same path: the test above)."""
    sig = signal.SIGTERM
    args = resumable(token_cache, tmp_path)
    proc = start_and_wait(args, tmp_path, 6)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "preempted"
    newest = list_checkpoints(tmp_path / "checkpoints")[-1]
    assert torch.load(newest, weights_only=True)["train_state"]["step"] == summary["steps"]
    assert "trainer.resume=auto" in out
    resumed = run_train(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert metrics(tmp_path) == reference


def test_checkpoints_are_pruned_and_a_corrupt_one_is_skipped(tmp_path, capsys):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"step": step, "w": torch.full((3,), float(step))}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "step_0000002.pt",
        "step_0000003.pt",
        "step_0000004.pt",
    ]
    assert not list(tmp_path.glob("*.tmp"))
    newest = list_checkpoints(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:40])  # truncated, as by a crash mid-write elsewhere
    path, state = load_latest(tmp_path)
    assert state["step"] == 3 and path.name == "step_0000003.pt"
    assert "step_0000004.pt is corrupt or truncated" in capsys.readouterr().err


def test_checkpoints_load_with_weights_only(token_cache, tmp_path):
    proc = run_train([*tiny_overrides(token_cache), f"hydra.run.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(list_checkpoints(tmp_path / "checkpoints")[-1], weights_only=True)
    assert set(state) == {"model", "optimizer", "train_state", "config"}
    assert {"rng", "step", "wandb_id", "tokens", "best_val_loss"} <= set(state["train_state"])
    assert state["config"]["ffn"]["name"] == "swiglu" and state["config"]["model"]["pos"] == "rope"


@pytest.mark.parametrize("optim", ["adamw", "muon"])
def test_nonfinite_stops_naming_step_and_layer(optim, token_cache, tmp_path):
    args = [*tiny_overrides(token_cache, steps=20), "optim.lr=1e30", "optim.warmup_steps=1"]
    args.append(f"optim={optim}")
    args += ["trainer.ckpt_interval=1", "logger.mode=disabled", f"hydra.run.dir={tmp_path}"]
    proc = run_train(args)
    assert proc.returncode == 1
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: non-finite loss or gradient at step ")
    assert "first non-finite gradient: " in error and "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged"
    bad_step = int(error.split("at step ")[1].split(";")[0])
    kept = [
        torch.load(p, weights_only=True)["train_state"]["step"]
        for p in list_checkpoints(tmp_path / "checkpoints")
    ]
    assert kept and max(kept) <= bad_step  # only good states are kept


@pytest.mark.parametrize("optim", ["adamw", "muon"])
def test_nonfinite_skip_counts_skipped_steps(optim, token_cache, tmp_path):
    args = [*tiny_overrides(token_cache, steps=8), "optim.lr=1e30", "optim.warmup_steps=1"]
    args.append(f"optim={optim}")
    args += ["trainer.on_nonfinite=skip", "logger.mode=disabled", f"hydra.run.dir={tmp_path}"]
    proc = run_train(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["skipped_steps"] > 0
    logged = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(m.get("train/skipped_steps", 0) for m in logged) > 0


def _corrupt_cache(cache: Path) -> Path:
    """A private copy of the fixture corpus's token cache (the tokenizer tiny_overrides get)
    with a flipped byte in train.bin."""
    from harness.data import DataConfig, prepare_tokens

    text = cache / "corpus.txt"
    text.write_text((REPO / "tests" / "fixtures" / "tiny.txt").read_text())
    data = prepare_tokens(
        DataConfig(
            name="c", source="files", path=str(text), tokenizer="r50k_8k", cache_dir=str(cache)
        )
    )
    train_bin = data.directory / "train.bin"
    raw = bytearray(train_bin.read_bytes())
    raw[10] ^= 0xFF
    train_bin.write_bytes(bytes(raw))
    return text


BAD_INPUTS = {  # errors caught inside the run (after Hydra made its dir), and the message
    "corrupt_cache": "sha256",
    "empty_corpus": "empty",
    "short_corpus": "tokens",
    "missing_corpus": "does not exist",
    "small_vocab": "model.vocab_size",
}


def bad_input_args(case: str, cache: Path) -> list[str]:
    """Overrides that make a run fail with the user error `case`."""
    corpus = cache / "corpus.txt"
    corpus.write_text((REPO / "tests" / "fixtures" / "tiny.txt").read_text())
    extra = []
    if case == "corrupt_cache":
        corpus = _corrupt_cache(cache)
    elif case == "empty_corpus":
        corpus.write_text("")
    elif case == "short_corpus":
        corpus.write_text("To be, or not to be, that is the question.")
    elif case == "missing_corpus":
        corpus = cache / "no_such_corpus.txt"
    elif case == "small_vocab":
        extra = ["model.vocab_size=1000"]
    return [*tiny_overrides(cache), f"data.path={corpus}", "data.name=c", *extra]


def assert_one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", [*BAD_INPUTS, "unwritable_dir"])
def test_bad_input_exits_2_and_leaves_nothing(case, token_cache, tmp_path):
    cache, run_dir = fresh_cache(token_cache, tmp_path / "cache"), tmp_path / "out" / "run"
    cache.mkdir(exist_ok=True)
    args = bad_input_args(case if case in BAD_INPUTS else "none", cache)
    if case == "unwritable_dir":
        run_dir = Path("/proc/ffn-variants-test/run")
    proc = run_train([*args, f"hydra.run.dir={run_dir}"])
    assert_one_line_error(proc, BAD_INPUTS.get(case, "cannot write the output dir"))
    assert not (tmp_path / "out").exists()  # no partial run dir, nor the parent it made
    assert not list((cache / "tokens").glob(".*tmp*"))  # no half-built token cache


@pytest.mark.parametrize(
    "case, where",
    [*((case, "relative") for case in [*BAD_INPUTS, "bad_shape"]), ("missing_corpus", "absolute")],
)
def test_a_failed_run_keeps_the_folders_the_user_made(case, where, token_cache, tmp_path):
    """mkdir -p demo/my_runs && python train.py ... hydra.run.dir=demo/my_runs/run1: the run
    fails on bad input, run1 goes, demo/my_runs (empty, made before the run) stays."""
    cache = fresh_cache(token_cache, tmp_path / "cache")
    cache.mkdir(exist_ok=True)
    work = tmp_path / "work"
    (work / "demo" / "my_runs").mkdir(parents=True)
    run_dir = "demo/my_runs/run1" if where == "relative" else str(work / "demo/my_runs/run1")
    args = bad_input_args(case if case in BAD_INPUTS else "none", cache)
    if case == "bad_shape":
        args.append("model.n_head=3")
    proc = run_train([*args, f"hydra.run.dir={run_dir}"], cwd=work)
    assert_one_line_error(proc, BAD_INPUTS.get(case, "not divisible by model.n_head=3"))
    assert (work / "demo" / "my_runs").is_dir()
    assert not (work / "demo" / "my_runs" / "run1").exists()


def test_wandb_online_without_login_goes_offline(token_cache, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env["HOME"] = str(tmp_path)  # no ~/.netrc, no W&B settings
    args = [
        *tiny_overrides(token_cache, steps=2),
        "logger.mode=online",
        f"hydra.run.dir={tmp_path}/r",
    ]
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "logging offline" in proc.stderr and "wandb sync" in proc.stdout
    assert list((tmp_path / "r" / "wandb").glob("offline-run-*"))


def test_ctrl_c_checkpoints_and_the_printed_command_resumes_it(reference, token_cache, tmp_path):
    """The first SIGINT is a stop, not a failure: a checkpoint at the current step, summary
    "interrupted", one line with the resume command and the dir, exit 130, no traceback. The
    same command (no run dir given: Hydra names one by the time) with trainer.resume=auto finds
    that dir, resumes it there and ends at the losses of a run never stopped."""
    work = tmp_path / "work"
    work.mkdir()
    args = resumable(token_cache, tmp_path)[:-1]  # no hydra.run.dir: the command as typed
    proc = start_and_wait(args, "outputs/swiglu-s0/*", 6, cwd=work)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out[-3000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    (run_dir,) = (work / "outputs" / "swiglu-s0").iterdir()
    last = out.splitlines()[-1]
    assert "rerun the same command with trainer.resume=auto" in last and str(run_dir) in last
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    newest = list_checkpoints(run_dir / "checkpoints")[-1]
    assert torch.load(newest, weights_only=True)["train_state"]["step"] == summary["steps"]
    time.sleep(1.1)  # a new ${now:} for the rerun, as a user's would have
    resumed = run_train([*args, "trainer.resume=auto"], cwd=work)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"continuing in {run_dir}" in resumed.stdout and "resuming" in resumed.stdout
    assert [d.name for d in (work / "outputs" / "swiglu-s0").iterdir()] == [run_dir.name]
    assert metrics(run_dir) == reference


def test_ctrl_c_stops_a_sweep_exit_130_and_the_same_command_completes_it(
    reference, token_cache, tmp_path
):
    """A 2-job sweep (basic launcher): job 0 completes, SIGINT in job 1 checkpoints it; the
    sweep-status callback lists it and exits 130; the same command with trainer.resume=auto
    continues in the same sweep dir: job 0 skipped, job 1 resumed to the losses of a run never
    stopped."""
    work = tmp_path / "work"
    work.mkdir()
    args = ["-m", *resumable(token_cache, tmp_path)[:-1], "seed=1,0"]
    proc = start_and_wait(args, "multirun/sweep/*/1_swiglu-s0", 6, cwd=work)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in out, out[-3000:]
    (sweep,) = (work / "multirun" / "sweep").iterdir()
    assert "1/2 jobs completed" in out and "1_swiglu-s0: interrupted" in out
    assert f"trainer.resume=auto (it continues in {sweep})" in out
    time.sleep(1.1)  # a new ${now:} for the rerun, as a user's would have
    rerun = run_train([*args, "trainer.resume=auto"], cwd=work)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"continuing in {sweep}" in rerun.stdout
    assert "job 0 (0_swiglu-s1): completed before, skipped" in rerun.stdout
    assert [d.name for d in (work / "multirun" / "sweep").iterdir()] == [sweep.name]
    assert metrics(sweep / "1_swiglu-s0") == reference
    assert json.loads((sweep / "1_swiglu-s0" / "summary.json").read_text())["status"] == "completed"


def test_an_unreachable_wandb_server_costs_a_sweep_seconds_not_a_minute_per_job(
    token_cache, tmp_path
):
    """A key set and the server pointed at a closed local port (a node with no route out): both
    jobs of a 2-job sweep go offline, the second without probing again, in seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env.update(HOME=str(tmp_path), WANDB_API_KEY="0" * 40, WANDB_BASE_URL="http://127.0.0.1:9")
    sweep = tmp_path / "sweep"
    args = ["-m", "ffn=relu,swiglu", *tiny_overrides(token_cache, steps=2), "logger.mode=online"]
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args, f"hydra.sweep.dir={sweep}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    wall = time.perf_counter() - began
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("is unreachable") == 2 and "as for an earlier job" in proc.stderr
    assert "wandb sync" in proc.stderr + proc.stdout
    for job in ("0_relu-s0", "1_swiglu-s0"):
        assert list((sweep / job / "wandb").glob("offline-run-*")), job
    assert wall < 60, f"{wall:.0f} s: W&B's own retries (over a minute per job) came back"
