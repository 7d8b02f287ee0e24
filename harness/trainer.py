"""The Trainer: one run from a typed config, everything it produces under its run dir.

    summary = Trainer(cfg, run_dir).train()

`train()` is the loop; each thing the loop does is a method named for it, and the parts around it
are components: data (harness.run_data), how the model runs (harness.prepare), the step
(harness.train_step), evaluation, checkpoints and resumption (harness.run_checkpoints), loggers
and the summary (harness.run_logs). A checkpoint is `Trainer.state_dict()` (model, optimizer,
TrainState, config); batches are a function of (seed, step), so a run resumes exactly. Under
torchrun every process trains its rows of the same batches (DDP); rank 0 alone evaluates and
writes (harness.distributed).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ffn_variants.model import GPT
from ffn_variants.telemetry import grad_norms
from harness import distributed
from harness.config import OnNonFinite, TrainConfig, as_plain_dict
from harness.diskfull import is_disk_full
from harness.evaluation import validation_metrics
from harness.metrics import MetricsSink, warn
from harness.mfu import device_peak, mfu
from harness.nonfinite import act_on
from harness.optim import ownership, set_rates
from harness.preemption import Preempted, PreemptionFlag
from harness.prepare import prepare
from harness.run_checkpoints import Checkpoints
from harness.run_data import RunData
from harness.run_logs import final_summary, initial_summary, open_loggers, progress_bar, status_of
from harness.runtime import autocast, compute_dtype, pick_device, planned_steps
from harness.runtime import use_deterministic_algorithms as deterministic
from harness.sampling import end_of_run_sample
from harness.state import Throughput, TrainState
from harness.summary import RunStatus, RunSummary
from harness.train_step import TrainStep


class Trainer:
    """Builds the run's data, model and optimizer, then trains it with `train()`.

    Nothing is written to the run dir while it is built: a run that fails in set-up (a
    UserInputError for what a user can fix) leaves no trace."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, group: str | None = None) -> None:
        t, m = cfg.trainer, cfg.model
        self.cfg, self.run_dir, self.group = cfg, run_dir, group
        self.state = TrainState()
        self.dist = distributed.init()
        self.state.world_size = self.dist.world_size
        if t.deterministic:
            deterministic()
        self.device = pick_device(t.device, self.dist.local_rank if self.dist.enabled else None)
        torch.manual_seed(cfg.seed)  # the same initial weights in every process
        self.autocast = autocast(t, self.device)
        self.data = RunData(cfg, self.dist, self.device)
        run = prepare(GPT(m, cfg.resolved_ffn), cfg, self.device, ddp=self.dist.enabled)
        self.step_fn = TrainStep.of(run, cfg, self.autocast, self.dist.main)
        self.model, self.optimizer = run.model, self.step_fn.optimizer
        self.tokens_per_step = t.batch_size * m.block_size * t.grad_accum
        non_embedding = self.model.param_counts()["non_embedding"]
        self.max_steps = planned_steps(t, non_embedding, self.tokens_per_step)
        budget = "trainer.max_steps" if t.max_steps is not None else "trainer.tokens_per_param"
        self.data.plan(self.max_steps, self.tokens_per_step, self.dist.main, budget)
        self.peak = device_peak(self.device, compute_dtype(t, self.device))
        self.checkpoints = Checkpoints(t, run_dir, self.dist.main)
        self.summary = initial_summary(
            cfg,
            self.model,
            self.device,
            self.data.info,
            self.peak,
            self.dist.world_size,
            group,
            {"name": str(cfg.optim.name), "params": ownership(self.model, cfg.optim.name)},
        )
        # Opened by train(): the loggers, the progress bar, the throughput clock.
        self.sink = MetricsSink([], self.tokens)
        self.bar = progress_bar(self.summary.run_name, self.max_steps, 0, shown=False)
        self.throughput = Throughput()
        self.paused_before = 0.0  # evaluation time of the segments before a resume
        self.end_sample: str | None = None
        self.val_documents: dict[str, dict[str, float]] = {}  # the last evaluation's, per document
        self.preempt: PreemptionFlag | None = None  # while train() runs

    # ----------------------------------------------------------------------------- the loop

    def train(self) -> RunSummary:
        """Train to trainer.max_steps, from the checkpoint trainer.resume names if any."""
        resumed = self.resume()
        self.step_fn.nonfinite.count.fill_(self.state.skipped_steps)
        try:
            self.open_logs(resumed)
        except OSError as e:
            if is_disk_full(e):
                raise self.checkpoints.disk_full(e) from None
            raise
        self.checkpoints.warn_if_short_of_space(self.model, self.optimizer, self.max_steps)
        with self.finishing(), PreemptionFlag(self.abort_now) as preempt:
            self.preempt = preempt
            paused = self.throughput.paused  # evaluations and checkpoints: not training time
            if self.state.step == 0:
                with paused():
                    self.evaluate()  # the loss at initialisation: where every curve starts
                self.stop_if_preempted(preempt)
            while not self.done:
                self.log(self.train_step())
                with paused():
                    if self.due(self.cfg.trainer.eval_interval) or self.done:
                        self.evaluate()
                    if self.due(self.cfg.trainer.ckpt_interval) and not self.done:
                        self.save_checkpoint()
                self.stop_if_preempted(preempt)
            self.save_checkpoint()
            if self.dist.main:
                self.end_sample = end_of_run_sample(self.model, self.cfg, self.autocast)
        return self.summary

    @property
    def done(self) -> bool:
        return self.state.step >= self.max_steps

    def due(self, interval: int) -> bool:
        """Whether the step just taken is a multiple of `interval` (0: never)."""
        return interval > 0 and self.state.step % interval == 0

    def abort_now(self) -> str:
        """A second Ctrl-C: the process exits at once; summary.json says so first (it would
        stay "running"), and what is kept."""
        last = self.checkpoints.last
        kept = (
            f"the checkpoint of step {last[0]} stays"
            if last is not None
            else "no checkpoint was written: a rerun starts over"
        )
        if self.dist.main:
            with contextlib.suppress(Exception):
                self.finish(RunStatus.interrupted, f"stopped at once by a second Ctrl-C; {kept}")
        return kept

    def stop_if_preempted(self, preempt: PreemptionFlag) -> None:
        """After a preemption signal to any process: one checkpoint, then every process raises
        Preempted (train.py hands the signal on)."""
        signum = distributed.max_int(preempt.signal or 0)
        if signum:
            self.save_checkpoint()
            raise Preempted(signum, self.state.step)

    def train_step(self) -> dict[str, float]:
        """One optimizer step over grad_accum micro-batches; returns what to log (maybe nothing).

        A step that does not log never waits for the device: its loss, gradient norm and
        non-finite check stay there until a step that logs (or evaluates, or checkpoints) reads
        them."""
        s = self.state
        lr = set_rates(self.optimizer, s.step, self.cfg.optim, self.max_steps)
        log_now = (s.step + 1) % self.cfg.trainer.log_interval == 0 or s.step == 0
        activations = self.step_fn.forward_backward(
            lambda micro: self.data.batches.get(s.step, micro), log_now, self.throughput.paused
        )
        norms = grad_norms(self.model) if log_now else {}
        self.step_fn.optimizer_step(s.step)
        s.step += 1
        s.tokens += self.tokens_per_step
        self.throughput.add(self.tokens_per_step)
        self.bar.update(1)
        if not log_now:
            return {}
        self.read_device_state()
        record = {"train/loss": s.train_loss, "train/lr": lr, **self.window_rate()}
        return {**record, "train/skipped_steps": s.skipped_steps, **norms, **activations}

    def read_device_state(self) -> None:
        """The host's copy of the last step's loss and of the non-finite note (one sync); a
        non-finite step stops the run here (trainer.on_nonfinite=stop) or is counted (skip)."""
        s = self.state
        s.train_loss = self.step_fn.loss.item()
        note = self.step_fn.nonfinite.read()
        if note.count > s.skipped_steps:
            stop = self.cfg.trainer.on_nonfinite == OnNonFinite.stop
            names = self.step_fn.param_names
            s.skipped_steps = act_on(note, names, stop, s.skipped_steps, s.step)

    def window_rate(self) -> dict[str, float]:
        """tokens/s and MFU of the training steps since the last log (none for the warm-up
        window); shown on the progress bar too."""
        s, tokens_per_s = self.state, self.throughput.read()
        if tokens_per_s is None:
            self.bar.set_postfix(dict(loss=f"{s.train_loss:.3f}", tok_s="warm-up"), refresh=False)
            return {}
        utilisation, tflops = self.utilisation(tokens_per_s)
        postfix = dict(
            loss=f"{s.train_loss:.3f}", tok_s=f"{tokens_per_s:,.0f}", mfu=f"{utilisation:.1%}"
        )
        self.bar.set_postfix(postfix, refresh=False)
        return {
            "train/tokens_per_s": tokens_per_s,
            "train/model_tflops": tflops,
            "train/mfu": utilisation,
        }

    @torch.no_grad()
    def evaluate(self) -> None:
        """Loss and bits per byte over the fixed validation windows; logged, and kept in the
        state. Rank 0 alone, on the plain model (no collective): the other processes go on and
        wait for it in the next step's gradient all-reduce."""
        s = self.state
        self.read_device_state()  # no evaluation of weights a non-finite step reached
        if not self.dist.main:
            return
        began = time.perf_counter()
        stop = self.preempt.stopping if self.preempt is not None else None
        metrics, documents = validation_metrics(
            self.model, self.data, self.device, self.autocast, stop
        )
        if metrics is None:  # a stop signal cut it short: nothing half-measured is logged
            return
        self.val_documents = documents
        s.val_loss, s.val_bpb = metrics["val/loss"], metrics["val/bpb"]
        s.best_val_loss = min(s.best_val_loss, s.val_loss)
        s.best_val_bpb = min(s.best_val_bpb, s.val_bpb)
        metrics["time/eval_s"] = time.perf_counter() - began
        self.log({**metrics, "val/best_loss": s.best_val_loss, "val/best_bpb": s.best_val_bpb})
        train_part = f"train {s.train_loss:.4f}  " if s.step else ""
        self.bar.write(f"step {s.step:>6}  {train_part}val {s.val_loss:.4f} ({s.val_bpb:.4f} bpb)")

    def log(self, record: dict[str, float]) -> None:
        if record:
            self.sink.log(self.state.step, record)

    # ------------------------------------------------------------------- state and checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "train_state": self.state.state_dict(),
            "config": as_plain_dict(self.cfg),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.state.load_state_dict(state["train_state"], self.dist.rank)

    def save_checkpoint(self) -> None:
        if self.cfg.trainer.checkpoint:
            self.read_device_state()  # never a checkpoint after a non-finite step (stop)
            self.state.wall_time_s = self.sink.elapsed()
            self.state.paused_s = self.paused_before + self.throughput.excluded_total
            self.checkpoints.save(self.state.step, self.state_dict())  # a collective: RNG states

    def resume(self) -> bool:
        """Load the checkpoint trainer.resume names, if any; True if the run continues one."""
        config = as_plain_dict(self.cfg)
        path = self.checkpoints.resume(self.dist.world_size, config, self.load_state_dict)
        if path is not None and self.dist.main:
            print(f"resuming {self.summary.run_name} from {path} at step {self.state.step}")
        return path is not None

    # ------------------------------------------------------------------------- logs and finish

    def open_logs(self, resumed: bool) -> None:
        """summary.json (running), metrics.jsonl, W&B and the progress bar: rank 0's alone."""
        main = self.dist.main
        loggers = (
            open_loggers(self.cfg, self.run_dir, self.summary, self.state, resumed, self.group)
            if main
            else []
        )
        self.sink = MetricsSink(loggers, self.tokens, offset=self.state.wall_time_s)
        self.paused_before = self.state.paused_s
        self.throughput = Throughput()
        shown = self.cfg.trainer.progress and main
        self.bar = progress_bar(self.summary.run_name, self.max_steps, self.state.step, shown)

    def tokens(self) -> int:
        return self.state.tokens

    @contextlib.contextmanager
    def finishing(self) -> Iterator[None]:
        """Within: the loop. After it, however it ended: finish() with the matching status."""
        status, error = RunStatus.completed, None
        try:
            yield
        except BaseException as e:
            if is_disk_full(e):
                e = self.checkpoints.disk_full(e)
                status, error = status_of(e)
                raise e from None
            status, error = status_of(e)
            raise
        finally:
            self.finish(status, error)

    def finish(self, status: RunStatus, error: str | None) -> None:
        """Write the final summary.json and close the loggers (W&B finishes its run)."""
        self.bar.close()
        self.summary = final_summary(
            self.summary,
            status,
            error,
            self.state,
            trained=self.state.tokens,  # the whole run's, over its whole time (a resume too)
            wall=self.sink.elapsed(),
            paused=self.paused_before + self.throughput.excluded_total,
            epochs=self.data.epochs(self.state.step),
            utilisation=self.utilisation,
            sample=self.end_sample,
            documents=self.val_documents,
            device=self.device,
        )
        if self.dist.main:
            try:
                self.summary.write(self.run_dir)
            except OSError as e:
                if not is_disk_full(e):
                    raise
                warn(f"summary.json could not record status {status} either (disk full)")
        self.sink.close(self.summary)

    def utilisation(self, tokens_per_s: float) -> tuple[float, float]:
        """(MFU, model TFLOP/s) of one device, from the run's tokens/s over all processes."""
        per_device = tokens_per_s / self.dist.world_size
        return mfu(per_device, self.summary.flops_per_token["train"], self.peak)
