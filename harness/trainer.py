"""The Trainer: one run from a typed config, everything it produces under its run dir.

    summary = Trainer(cfg, run_dir).train()

`train()` is the loop; each thing the loop does is a method named for it. The run's progress is a
`TrainState`; a checkpoint is `Trainer.state_dict()` (model, optimizer, TrainState, config), so a
run resumes exactly: batches are a function of (seed, step), and the state holds every RNG state
and the W&B run id. Metrics go through one `MetricsSink` to metrics.jsonl and W&B.

Data-parallel (torchrun, or SLURM through submitit): every process trains its share of the rows
of the same global batches under DistributedDataParallel; rank 0 alone evaluates and writes
metrics, W&B, checkpoints and the summary (harness.distributed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ffn_variants.model import GPT
from ffn_variants.telemetry import grad_norms
from harness import distributed
from harness.checkpoint import find_resume, save_checkpoint
from harness.config import LoggerMode, OnNonFinite, TrainConfig, as_plain_dict
from harness.data import (
    BatchSampler,
    DeviceBatches,
    EvalWindows,
    held_out_slices,
    prepare_tokens,
)
from harness.data.bpb import bits_per_byte, nats_and_bytes
from harness.data.tokenizer import TRUNCATED, get_encoding
from harness.diskfull import (
    DiskFullError,
    as_disk_full,
    free_bytes,
    human_bytes,
    is_disk_full,
    state_nbytes,
)
from harness.errors import UserInputError, one_line
from harness.metrics import JsonlLogger, MetricLogger, MetricsSink, WandbLogger, warn
from harness.mfu import device_peak, mfu
from harness.nonfinite import NonFiniteNote
from harness.preemption import Preempted, PreemptionFlag
from harness.prepare import prepare
from harness.runtime import (
    autocast,
    compute_dtype,
    lr_at,
    pick_device,
    planned_steps,
    use_deterministic_algorithms,
)
from harness.sampling import sample_texts
from harness.state import Throughput, TrainState
from harness.summary import RunStatus, RunSummary
from harness.train_step import TrainStep


class NonFiniteError(RuntimeError):
    """Loss or gradients went NaN/Inf and trainer.on_nonfinite=stop."""


def peak_memory_mib(device: torch.device) -> float | None:
    """The most memory allocated at once on a CUDA device so far (None elsewhere)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


class Trainer:
    """Builds the run's data, model and optimizer, then trains it with `train()`."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, group: str | None = None) -> None:
        self.cfg, self.run_dir, self.group = cfg, run_dir, group
        self.state = TrainState()
        self.sink: MetricsSink | None = None
        self.last_checkpoint: tuple[int, Path] | None = None  # (step, path): for a disk-full error
        self.setup()

    # ------------------------------------------------------------------------------- set-up

    def setup(self) -> None:
        """Processes, device, data, model and optimizer; UserInputError for what a user can fix.

        Nothing is written to the run dir here: a run that fails in set-up leaves no trace.
        """
        t = self.cfg.trainer
        self.dist = distributed.init()
        self.state.world_size = self.dist.world_size
        if t.deterministic:
            use_deterministic_algorithms()
        self.device = pick_device(t.device, self.dist.local_rank if self.dist.enabled else None)
        torch.manual_seed(self.cfg.seed)  # the same initial weights in every process
        self.autocast = autocast(t, self.device)
        self.setup_data()
        self.setup_model()
        self.tokens_per_step = t.batch_size * self.cfg.model.block_size * t.grad_accum
        non_embedding = self.model.param_counts()["non_embedding"]
        self.max_steps = planned_steps(t, non_embedding, self.tokens_per_step)
        self.plan_data_budget()
        self.peak = device_peak(self.device, compute_dtype(t, self.device))
        self.summary = self.initial_summary()

    def setup_data(self) -> None:
        t, m, d = self.cfg.trainer, self.cfg.model, self.dist
        if t.batch_size % d.world_size:
            raise UserInputError(
                f"trainer.batch_size={t.batch_size} does not split over {d.world_size} processes; "
                f"use a multiple of {d.world_size}"
            )
        with distributed.main_first():  # one process builds the token cache, the others read it
            data = prepare_tokens(self.cfg.data, min_tokens=m.block_size + 1, progress=d.main)
        vocab = int(data.manifest.get("vocab_size", 0))
        if vocab > m.vocab_size:
            smaller = [n for n, size in TRUNCATED.items() if size <= m.vocab_size]
            raise UserInputError(
                f"the tokenizer {self.cfg.data.tokenizer} has {vocab} tokens but "
                f"model.vocab_size={m.vocab_size}; set model.vocab_size>={vocab}"
                + (f" or data.tokenizer={smaller[-1]}" if smaller else "")
            )
        self.data_info = {"name": data.manifest.get("name"), "train_tokens": len(data.train)}
        shard = (d.rank, d.world_size)
        self.train_batches = BatchSampler(
            data.train, t.batch_size, m.block_size, self.cfg.seed, shard, t.grad_accum
        )
        self.batches = DeviceBatches(self.train_batches, self.device, t.grad_accum)
        eval_slice = self.cfg.data.eval_slice
        self.val_windows = EvalWindows(
            held_out_slices(data.val)[eval_slice],
            t.batch_size,
            m.block_size,
            t.eval_tokens,
            f"held-out slice data.eval_slice={eval_slice}",
        )
        # val/bpb's denominator: the UTF-8 bytes of every validation target, looked up once.
        table = torch.from_numpy(data.token_bytes).to(self.device)
        self.val_target_bytes = [table[y.to(self.device)] for _, y in self.val_windows]
        self.data_info["eval_slice"] = str(eval_slice)
        self.data_info["val_tokens"] = self.val_windows.n_tokens
        self.data_info["val_bytes"] = int(sum(b.sum() for b in self.val_target_bytes))

    def plan_data_budget(self) -> None:
        """summary.json's data.epochs: the passes over the training split this run plans (and,
        at the end, made); above one pass, a warning before the first step."""
        train_tokens = self.data_info["train_tokens"]
        planned = self.train_batches.passes(self.max_steps)  # each window once per pass
        self.data_info["epochs"] = {"planned": planned, "done": 0.0}
        if planned > 1 and self.dist.main:
            warn(
                f"this run plans {planned:.1f} passes over the training split of "
                f"{self.data_info['name']} ({self.max_steps * self.tokens_per_step:,} tokens "
                f"planned, {train_tokens:,} in the split): a comparison there ranks how fast "
                "each variant memorises it; use a larger corpus (data=fineweb_edu), a higher "
                "data.max_tokens, or fewer trainer.max_steps"
            )

    def setup_model(self) -> None:
        m, ffn = self.cfg.model, self.cfg.resolved_ffn
        if ffn.d_ff % m.multiple_of:
            warn(
                f"no multiple of model.multiple_of={m.multiple_of} matches {ffn.name} "
                f"within 1%, so d_ff={ffn.d_ff} (see ffn_variants.sizing)"
            )
        run = prepare(GPT(m, ffn), self.cfg, self.device, ddp=self.dist.enabled)
        self.step_fn = TrainStep.of(run, self.cfg, self.autocast, self.dist.main)
        self.model, self.optimizer = run.model, self.step_fn.optimizer

    def initial_summary(self) -> RunSummary:
        c = self.cfg
        return RunSummary(
            variant=c.ffn.name,
            seed=c.seed,
            model=c.model.name,
            match=str(c.ffn.match),
            group=self.group,
            params=self.model.param_counts(),
            flops_per_token=self.model.flops_per_token(),
            device=str(self.device),
            host=socket.gethostname(),
            pid=os.getpid(),
            data=self.data_info,
            peak_tflops=self.peak.tflops,
            peak_source=self.peak.source,
            world_size=self.dist.world_size,
            visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            threads=torch.get_num_threads(),
        )

    # ----------------------------------------------------------------------------- the loop

    def train(self) -> RunSummary:
        """Train to trainer.max_steps, from the checkpoint trainer.resume names if any."""
        resumed = self.resume()
        self.step_fn.nonfinite.count.fill_(self.state.skipped_steps)
        try:
            self.open_logs(resumed)
        except OSError as e:
            if is_disk_full(e):
                raise self.disk_full(e) from None
            raise
        self.warn_if_short_of_space()
        with self.finishing(), PreemptionFlag() as preempt:
            paused = self.throughput.paused  # evaluations and checkpoints: not training time
            if self.state.step == 0:
                with paused():
                    self.evaluate()  # the loss at initialisation: where every curve starts
            while not self.done:
                self.log(self.train_step())
                with paused():
                    if self.due(self.cfg.trainer.eval_interval) or self.done:
                        self.evaluate()
                    if self.due(self.cfg.trainer.ckpt_interval) and not self.done:
                        self.save_checkpoint()
                self.stop_if_preempted(preempt)
            self.save_checkpoint()
            self.end_sample = self.sample_text()
        return self.summary

    def sample_text(self) -> str | None:
        """A short continuation of a document start, seeded by the run's seed (reruns print the
        same text): what the model writes, in the summary, summary.json and W&B."""
        n = self.cfg.trainer.sample_tokens
        if n < 1 or not self.dist.main:
            return None
        enc = get_encoding(self.cfg.data.tokenizer, self.cfg.data.cache_dir)
        n = min(n, self.cfg.model.block_size - 1)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self.autocast:
            (text,) = sample_texts(
                self.model, enc, [enc.eot_token], max_new_tokens=n, seed=self.cfg.seed
            )
        return text

    @property
    def done(self) -> bool:
        return self.state.step >= self.max_steps

    def due(self, interval: int) -> bool:
        """Whether the step just taken is a multiple of `interval` (0: never)."""
        return interval > 0 and self.state.step % interval == 0

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
        lr = lr_at(s.step, self.cfg.optim, self.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        log_now = (s.step + 1) % self.cfg.trainer.log_interval == 0 or s.step == 0
        activations = self.step_fn.forward_backward(
            lambda micro: self.batches.get(s.step, micro), log_now, self.throughput.paused
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
            self.handle_nonfinite(note)

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

    def handle_nonfinite(self, note: NonFiniteNote) -> None:
        """trainer.on_nonfinite: stop (NonFiniteError) or count the steps skipped since the last
        read."""
        names, i = self.step_fn.param_names, note.first_param
        layer = names[i] if 0 <= i < len(names) else "none (the loss itself)"
        if self.cfg.trainer.on_nonfinite == OnNonFinite.stop:
            raise NonFiniteError(
                f"non-finite loss or gradient at step {note.first_step}; first non-finite "
                f"gradient: {layer}; the last good checkpoint is kept "
                "(trainer.on_nonfinite=skip skips such steps instead)"
            )
        new = note.count - self.state.skipped_steps
        self.state.skipped_steps = note.count
        warn(
            f"non-finite loss/gradient in {new} step(s) before step {self.state.step} (the first "
            f"ever at step {note.first_step}, layer {layer}); skipped ({note.count} so far)"
        )

    @torch.no_grad()
    def evaluate(self) -> None:
        """Loss and bits per byte over the fixed validation batches; logged, and kept in the state.

        Rank 0 alone, on the plain model (no collective): the other processes go on and wait for
        it in the next step's gradient all-reduce.
        """
        s = self.state
        self.read_device_state()  # no evaluation of weights a non-finite step reached
        if not self.dist.main:
            return
        began = time.perf_counter()
        metrics = self.validation_metrics()
        s.val_loss, s.val_bpb = metrics["val/loss"], metrics["val/bpb"]
        s.best_val_loss = min(s.best_val_loss, s.val_loss)
        s.best_val_bpb = min(s.best_val_bpb, s.val_bpb)
        metrics["time/eval_s"] = time.perf_counter() - began
        self.log({**metrics, "val/best_loss": s.best_val_loss, "val/best_bpb": s.best_val_bpb})
        train_part = f"train {s.train_loss:.4f}  " if s.step else ""
        self.bar.write(f"step {s.step:>6}  {train_part}val {s.val_loss:.4f} ({s.val_bpb:.4f} bpb)")

    @torch.no_grad()
    def validation_metrics(self) -> dict[str, float]:
        """val/loss: the mean loss per token over the evaluation windows, in nats. val/bpb: the
        loss summed over their targets in bits, per UTF-8 byte of the text those targets decode
        to (harness.data.bpb; end-of-text targets count in neither sum)."""
        self.model.eval()
        sums = torch.zeros(2, device=self.device)  # nats over all targets; over bpb's targets
        for (x, y), target_bytes in zip(self.val_windows, self.val_target_bytes, strict=True):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with self.autocast:
                logits, _ = self.model(x, y)
            per_token = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
            sums[0] += per_token.sum()
            sums[1] += nats_and_bytes(per_token, target_bytes.flatten())[0]
        self.model.train()
        total, bpb_nats = sums.tolist()
        return {
            "val/loss": total / self.val_windows.n_tokens,
            "val/bpb": bits_per_byte(bpb_nats, self.data_info["val_bytes"]),
        }

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
        """Every process's state, written once by rank 0; the others wait until it is on disk."""
        t = self.cfg.trainer
        if not t.checkpoint:
            return
        self.read_device_state()  # never a checkpoint after a non-finite step (stop)
        state = self.state_dict()  # a collective: every rank's RNG state
        if self.dist.main:
            path = save_checkpoint(
                self.run_dir / "checkpoints", self.state.step, state, t.keep_checkpoints
            )
            self.last_checkpoint = (self.state.step, path)
        distributed.barrier()

    def checkpoint_bytes(self) -> int:
        """About one checkpoint's size: the weights and AdamW's two moments, in float32."""
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return 3 * weights + state_nbytes(dict(self.model.named_buffers()))

    def warn_if_short_of_space(self) -> None:
        """Warn (never refuse) when the run dir's filesystem has less free space than the
        checkpoints will take: keep_checkpoints of them plus the one being written."""
        t = self.cfg.trainer
        if not (t.checkpoint and self.dist.main):
            return
        if t.keep_checkpoints > 0:
            count = t.keep_checkpoints + 1
        else:
            count = 1 + (self.max_steps // t.ckpt_interval if t.ckpt_interval > 0 else 0)
        size = self.checkpoint_bytes()
        free = free_bytes(self.run_dir)
        if free < count * size:
            warn(
                f"{human_bytes(free)} free under {self.run_dir}, and the checkpoints need about "
                f"{human_bytes(count * size)} ({count} x {human_bytes(size)}); the run may stop "
                "on a full disk: free space, or set trainer.keep_checkpoints / "
                "trainer.ckpt_interval, or another hydra.run.dir"
            )

    def disk_full(self, e: BaseException) -> DiskFullError:
        """A disk-full error anywhere in the run, naming the last good checkpoint."""
        return as_disk_full(e, "the run's files", self.run_dir).with_checkpoint(
            self.last_checkpoint
        )

    def resume(self) -> bool:
        """Load the checkpoint trainer.resume names, if any; True if the run continues one."""
        found = find_resume(self.cfg.trainer.resume, self.run_dir)
        if found is None:
            return False
        path, state = found
        self.last_checkpoint = (int(state.get("train_state", {}).get("step", 0)), path)
        saved_world = state.get("train_state", {}).get("world_size", 1)
        if saved_world != self.dist.world_size:
            raise UserInputError(
                f"checkpoint {path} was written by a run of {saved_world} process(es) and this run "
                f"has {self.dist.world_size}; resume it with the same number (torchrun "
                f"--nproc_per_node={saved_world}), or use another run dir or trainer.resume=never"
            )
        if self.cfg.trainer.resume == "auto":
            check_same_config(state.get("config", {}), as_plain_dict(self.cfg), path)
        try:
            self.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as e:
            saved = state.get("config", {}) if isinstance(state, dict) else {}
            raise UserInputError(
                f"checkpoint {path} does not fit this model (saved with ffn="
                f"{saved.get('ffn', {}).get('name')}, model={saved.get('model', {}).get('name')}: "
                f"{one_line(e, typed=False)}); use another run dir "
                "or trainer.resume=never"
            ) from None
        if self.dist.main:
            print(
                f"resuming {self.summary.run_name} from {path} at step {self.state.step}",
                flush=True,
            )
        return True

    # ------------------------------------------------------------------------- logs and finish

    def open_logs(self, resumed: bool) -> None:
        """summary.json (running), metrics.jsonl, W&B and the progress bar: rank 0's alone."""
        self.sink = MetricsSink(self.loggers(resumed) if self.dist.main else [], self.tokens)
        self.start_tokens = self.state.tokens
        self.throughput = Throughput()
        self.bar = tqdm(
            total=self.max_steps,
            initial=self.state.step,
            desc=self.summary.run_name,
            disable=not (self.cfg.trainer.progress and self.dist.main),
            unit="step",
            dynamic_ncols=True,
            mininterval=1.0,
            file=sys.stdout,
        )

    def tokens(self) -> int:
        return self.state.tokens

    def loggers(self, resumed: bool) -> list[MetricLogger]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.summary.write(self.run_dir)
        loggers: list[MetricLogger] = [
            JsonlLogger(self.run_dir / "metrics.jsonl", self.state.step if resumed else None)
        ]
        mode, why = self.cfg.logger.resolved_mode()
        print(f"W&B: {mode} ({why})", flush=True)
        if mode != LoggerMode.disabled:
            wandb = WandbLogger(
                self.cfg.logger,
                mode=mode,
                name=self.summary.run_name,
                group=self.group,
                tags=[self.cfg.ffn.name, self.cfg.model.name, f"seed{self.cfg.seed}"],
                config={
                    **as_plain_dict(self.cfg),
                    "params": self.summary.params,
                    "flops_per_token": self.summary.flops_per_token,
                },
                run_dir=self.run_dir,
                run_id=self.state.wandb_id,
            )
            self.state.wandb_id = wandb.id
            loggers.append(wandb)
        return loggers

    @contextlib.contextmanager
    def finishing(self) -> Iterator[None]:
        """Within: the loop. After it, however it ended: finish() with the matching status."""
        status, error = RunStatus.completed, None
        try:
            yield
        except Preempted as e:
            status, error = e.status, str(e)
            raise
        except NonFiniteError as e:
            status, error = RunStatus.diverged, str(e)
            raise
        except BaseException as e:
            if is_disk_full(e):
                full = self.disk_full(e)
                status, error = RunStatus.failed, str(full)
                raise full from None
            status, error = RunStatus.failed, f"{type(e).__name__}: {e}"
            raise
        finally:
            self.finish(status, error)

    def finish(self, status: RunStatus, error: str | None) -> None:
        """Write the final summary.json and close the loggers (W&B finishes its run)."""
        self.bar.close()
        s, wall = self.state, self.sink.elapsed()
        trained = s.tokens - self.start_tokens
        tokens_per_s = trained / max(wall, 1e-9)
        utilisation, tflops = self.utilisation(tokens_per_s)
        paused = self.throughput.excluded_total
        train_rate = trained / max(wall - paused, 1e-9)
        epochs = {
            **self.data_info["epochs"],
            "done": self.train_batches.passes(s.step),
        }
        self.summary = dataclasses.replace(
            self.summary,
            status=status,
            error=error,
            steps=s.step,
            tokens=s.tokens,
            data={**self.summary.data, "epochs": epochs},
            tokens_per_s=tokens_per_s,
            train_tokens_per_s=train_rate,
            train_mfu=self.utilisation(train_rate)[0],
            eval_time_s=paused,
            wall_time_s=wall,
            mfu=utilisation,
            model_tflops=tflops,
            final_val_loss=s.val_loss,
            best_val_loss=s.best_val_loss,
            final_val_bpb=s.val_bpb,
            best_val_bpb=s.best_val_bpb,
            final_train_loss=s.train_loss,
            sample=getattr(self, "end_sample", None),
            skipped_steps=s.skipped_steps,
            peak_memory_mib=peak_memory_mib(self.device),
            ended_at=time.time(),
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


# What may change between a run and its resumption: how it is logged, shown and checkpointed, and
# where its data cache lives. Anything else would resume one run's checkpoints into another.
RESUMABLE_CHANGES = (
    "logger.",
    "trainer.resume",
    "trainer.progress",
    "trainer.keep_checkpoints",
    "trainer.ckpt_interval",
    "data.cache_dir",
)


def flat_config(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out |= flat_config(v, f"{prefix}{k}.")
        return out
    return {prefix.rstrip("."): node}


def check_same_config(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """UserInputError (one line) when trainer.resume=auto finds a checkpoint of a run started
    with another config: the run dir belongs to a different run."""
    old, new = flat_config(saved), flat_config(current)
    differ = [
        k
        for k in sorted(old.keys() & new.keys())
        if old[k] != new[k] and not k.startswith(RESUMABLE_CHANGES)
    ]
    if differ:
        shown = ", ".join(f"{k}={old[k]} (now {new[k]})" for k in differ[:4])
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise UserInputError(
            f"the run dir's checkpoint {path} is of a run with another config: {shown}{more}; "
            "rerun with the same overrides to resume it, or use another hydra.run.dir, or "
            "trainer.resume=never to start over there"
        )
