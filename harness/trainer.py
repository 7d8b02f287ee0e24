"""The training loop: data, model, AdamW with warmup + cosine, eval, telemetry, checkpoints.

`train(cfg, run_dir)` runs one job and returns its summary. Everything it produces lands in the
run dir: metrics.jsonl, summary.json, checkpoints/ and the W&B files. A run resumes exactly from
its latest checkpoint: batches are a function of (seed, step), and the checkpoint holds the model,
optimizer, every RNG state and the W&B run id.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from ffn_variants.data import BatchSampler, DataConfig, prepare_tokens
from ffn_variants.errors import UserInputError
from ffn_variants.model import GPT, FFNSpec, GPTConfig
from ffn_variants.sizing import ffn_flops, transformer_flops_per_token
from ffn_variants.telemetry import activation_stats, grad_norms
from harness.checkpoint import load_latest, save_checkpoint
from harness.config import check_choices, to_dataclass
from harness.metrics import MetricsFile, WandbRun, warn, write_json_atomic

VAL_SEED = 1234  # every run is evaluated on the same validation batches
# SIGTERM: SLURM preemption or scancel; SIGUSR1/SIGUSR2: SLURM's warning before the time limit
# (submitit asks for SIGUSR2 by default).
PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class NonFiniteError(RuntimeError):
    """Loss or gradients went NaN/Inf and trainer.on_nonfinite=stop."""


class Preempted(Exception):
    """A preemption signal arrived; a checkpoint was written and the job should be requeued."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"{signal.Signals(signum).name} at step {step}; checkpoint written")
        self.signum = signum


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(
            f"trainer.device={name} but CUDA is not available; use trainer.device=cpu"
        )
    return device


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to base_lr, then cosine decay to base_lr * min_ratio at `total`."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, optim: Any, fused: bool) -> torch.optim.AdamW:
    """AdamW; weight decay applies to matrices, not to norm gains or biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=optim.lr,
        betas=(optim.beta1, optim.beta2),
        eps=optim.eps,
        fused=fused or None,
    )


def first_nonfinite_grad(model: torch.nn.Module) -> str | None:
    for name, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            return name
    return None


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class PreemptionFlag:
    """Turns preemption signals into a flag checked between steps; restores the handlers after.

    The step in flight finishes, a checkpoint is written, then Preempted is raised; the caller
    passes the signal on to the handler it replaced (submitit's requeue) or exits.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> PreemptionFlag:
        for sig in PREEMPT_SIGNALS:
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals to the launcher
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@torch.no_grad()
def evaluate(model: GPT, sampler: BatchSampler, batches: int, device, autocast) -> float:
    model.eval()
    losses = []
    for i in range(batches):
        x, y = (t.to(device, non_blocking=True) for t in sampler.get(i))
        with autocast:
            _, loss = model(x, y)
        losses.append(loss.float())
    model.train()
    return torch.stack(losses).mean().item()


def train(cfg: Any, run_dir: Path, *, group: str | None = None) -> dict[str, Any]:
    """Train one run as `cfg` says, writing everything under run_dir; returns the summary."""
    check_choices(cfg)
    t = cfg.trainer
    run_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(t.device)
    if t.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)
    use_bf16 = t.dtype == "bf16" or (t.dtype == "auto" and device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    model_cfg = to_dataclass(GPTConfig, cfg.model)
    ffn_spec = to_dataclass(FFNSpec, cfg.ffn)
    try:
        model_cfg.check()
    except ValueError as e:
        raise UserInputError(str(e)) from None

    data = prepare_tokens(to_dataclass(DataConfig, cfg.data), min_tokens=model_cfg.block_size + 1)
    vocab = int(data.manifest.get("vocab_size", 0))
    if vocab > model_cfg.vocab_size:
        raise UserInputError(
            f"the tokenizer has {vocab} tokens but model.vocab_size={model_cfg.vocab_size}; "
            f"set model.vocab_size>={vocab}"
        )
    train_batches = BatchSampler(data.train, t.batch_size, model_cfg.block_size, cfg.seed)
    val_batches = BatchSampler(data.val, t.batch_size, model_cfg.block_size, VAL_SEED)

    try:
        model = GPT(model_cfg, ffn_spec).to(device)
    except ValueError as e:  # an unknown variant, impl or match, or sizes that cannot match
        raise UserInputError(str(e)) from None
    counts = model.param_counts()
    ffn_fpt = ffn_flops(ffn_spec.name, model_cfg.d_model, model.d_ff)
    flops = {
        "ffn": ffn_fpt,
        "total": transformer_flops_per_token(
            model_cfg.n_layer,
            model_cfg.d_model,
            model_cfg.block_size,
            model_cfg.vocab_size,
            ffn_fpt,
        ),
    }
    optimizer = make_optimizer(model, cfg.optim, fused=device.type == "cuda")
    step_fn = torch.compile(model) if t.compile else model

    run_name = f"{cfg.ffn.name}-s{cfg.seed}"
    resolved = OmegaConf.to_container(cfg, resolve=True)
    summary: dict[str, Any] = {
        "run_name": run_name,
        "variant": cfg.ffn.name,
        "seed": cfg.seed,
        "status": "running",
        "error": None,
        "model": cfg.model.name,
        "match": cfg.ffn.match,
        "params": counts,
        "flops_per_token": flops,
        "group": group,
        "device": str(device),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "data": {"name": data.manifest.get("name"), "train_tokens": int(len(data.train))},
    }

    # Resume: the latest good checkpoint in the run dir, or an explicit path.
    start_step, best_val, skipped, wandb_id, tokens_done = 0, math.inf, 0, None, 0
    ckpt_dir = run_dir / "checkpoints"
    if t.resume not in ("never", "auto"):
        source = Path(t.resume)
        ckpt_dir_in = source / "checkpoints" if (source / "checkpoints").is_dir() else source
        found = load_latest(ckpt_dir_in) if source.is_dir() else _load_file(source)
        if found is None:
            raise UserInputError(f"trainer.resume={t.resume}: no readable checkpoint there")
    else:
        found = load_latest(ckpt_dir) if t.resume == "auto" else None
    val_loss = train_loss = math.nan
    if found is not None:
        path, state = found
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            saved = state.get("config", {})
            raise UserInputError(
                f"checkpoint {path} does not fit this model (saved with ffn="
                f"{saved.get('ffn', {}).get('name')}, model={saved.get('model', {}).get('name')}: "
                f"{str(e).splitlines()[0]}); use another run dir or trainer.resume=never"
            ) from None
        set_rng_state(state["rng"], device)
        start_step, best_val = state["step"], state["best_val"]
        skipped, wandb_id, tokens_done = state["skipped"], state["wandb_id"], state["tokens"]
        val_loss, train_loss = state["val_loss"], state["train_loss"]
        print(f"resuming {run_name} from {path} at step {start_step}", flush=True)

    metrics = MetricsFile(run_dir / "metrics.jsonl")
    metrics.truncate_after(start_step if found is not None else -1)
    write_json_atomic(run_dir / "summary.json", summary)
    wandb_run = WandbRun(
        mode=cfg.logger.mode,
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        group=cfg.logger.group or group,
        name=run_name,
        tags=[cfg.ffn.name, cfg.model.name, f"seed{cfg.seed}", *cfg.logger.tags],
        config={**resolved, "params": counts, "flops_per_token": flops},
        run_dir=run_dir,
        run_id=wandb_id,
    )

    def checkpoint(step: int) -> None:
        if not t.checkpoint:
            return
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(device),
            "step": step,
            "best_val": best_val,
            "val_loss": val_loss,
            "train_loss": train_loss,
            "skipped": skipped,
            "tokens": tokens_done,
            "wandb_id": wandb_run.id,
            "config": resolved,
        }
        save_checkpoint(ckpt_dir, step, state, t.keep_checkpoints)

    tokens_per_step = t.batch_size * model_cfg.block_size * t.grad_accum
    params = [p for p in model.parameters() if p.requires_grad]
    start_time = time.perf_counter()
    window_time, window_tokens = time.perf_counter(), 0
    status, error, exit_code = "completed", None, 0
    bar = tqdm(
        total=t.max_steps,
        initial=start_step,
        disable=not t.progress,
        desc=run_name,
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0,
        file=sys.stdout,
    )

    def run_eval(step: int) -> None:
        nonlocal val_loss, best_val
        val_loss = evaluate(model, val_batches, t.eval_batches, device, autocast)
        best_val = min(best_val, val_loss)
        record = {"val/loss": val_loss, "val/best_loss": best_val}
        elapsed = time.perf_counter() - start_time
        metrics.log({"step": step, "tokens": tokens_done, "time_s": elapsed, **record})
        wandb_run.log(record, step=step)
        train_part = f"train {train_loss:.4f}  " if step else ""
        bar.write(f"step {step:>6}  {train_part}val {val_loss:.4f}")

    model.train()
    try:
        with PreemptionFlag() as preempt:
            step = start_step
            if step == 0:
                run_eval(0)  # the loss at initialisation: where every curve starts
            while step < t.max_steps:
                lr = lr_at(
                    step, cfg.optim.lr, cfg.optim.warmup_steps, t.max_steps, cfg.optim.min_lr_ratio
                )
                for group_ in optimizer.param_groups:
                    group_["lr"] = lr
                log_now = (step + 1) % t.log_interval == 0 or step == 0
                loss_sum = torch.zeros((), device=device)
                act = {}
                for micro in range(t.grad_accum):
                    x, y = (b.to(device, non_blocking=True) for b in train_batches.get(step, micro))
                    hooks = activation_stats(model) if log_now and micro == 0 else nullcontext({})
                    with hooks as act_stats, autocast:
                        _, loss = step_fn(x, y)
                    if log_now and micro == 0:
                        act = dict(act_stats)
                    (loss / t.grad_accum).backward()
                    loss_sum += loss.detach()
                train_loss = (loss_sum / t.grad_accum).item()
                norms = grad_norms(model) if log_now else {}
                total_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip or math.inf)
                if not (math.isfinite(train_loss) and torch.isfinite(total_norm).item()):
                    layer = first_nonfinite_grad(model) or "none (the loss itself)"
                    if t.on_nonfinite != "skip":
                        raise NonFiniteError(
                            f"non-finite loss or gradient at step {step}; first non-finite "
                            f"gradient: {layer}; the last good checkpoint is kept "
                            f"(trainer.on_nonfinite=skip skips such steps instead)"
                        )
                    skipped += 1
                    warn(
                        f"non-finite loss/gradient at step {step} (first layer: {layer}); "
                        f"step skipped ({skipped} so far)"
                    )
                    if not log_now:  # logged steps carry the count anyway
                        record = {"train/skipped_steps": skipped}
                        elapsed = time.perf_counter() - start_time
                        metrics.log(
                            {"step": step + 1, "tokens": tokens_done, "time_s": elapsed, **record}
                        )
                        wandb_run.log(record, step=step + 1)
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                tokens_done += tokens_per_step
                window_tokens += tokens_per_step
                bar.update(1)

                if log_now:
                    now = time.perf_counter()
                    tps = window_tokens / max(now - window_time, 1e-9)
                    window_time, window_tokens = now, 0
                    record = {
                        "train/loss": train_loss,
                        "train/lr": lr,
                        "train/tokens_per_s": tps,
                        "train/skipped_steps": skipped,
                        **norms,
                        **act,
                    }
                    metrics.log(
                        {"step": step, "tokens": tokens_done, "time_s": now - start_time, **record}
                    )
                    wandb_run.log(record, step=step)
                    bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{tps:,.0f}", refresh=False)
                if step % t.eval_interval == 0 or step == t.max_steps:
                    run_eval(step)
                if t.ckpt_interval and step % t.ckpt_interval == 0 and step < t.max_steps:
                    checkpoint(step)
                if preempt.signal is not None:
                    checkpoint(step)
                    raise Preempted(preempt.signal, step)
            checkpoint(step)
    except Preempted as e:
        status, error, exit_code = "preempted", str(e), 1
        raise
    except NonFiniteError as e:
        status, error, exit_code = "diverged", str(e), 1
        raise
    except BaseException as e:
        status, error, exit_code = "failed", f"{type(e).__name__}: {e}", 1
        raise
    finally:
        bar.close()
        wall = time.perf_counter() - start_time
        summary.update(
            status=status,
            error=error,
            steps=step if "step" in locals() else start_step,
            tokens=tokens_done,
            tokens_per_s=(tokens_done - start_step * tokens_per_step) / max(wall, 1e-9),
            wall_time_s=wall,
            final_val_loss=val_loss if math.isfinite(val_loss) else None,
            best_val_loss=best_val if math.isfinite(best_val) else None,
            final_train_loss=train_loss if math.isfinite(train_loss) else None,
            skipped_steps=skipped,
        )
        write_json_atomic(run_dir / "summary.json", summary)
        metrics.close()
        wandb_run.finish(
            {k: v for k, v in summary.items() if k not in ("data",)},
            exit_code=exit_code,
            preempted=status == "preempted",
        )
    return summary


def _load_file(path: Path) -> tuple[Path, dict[str, Any]] | None:
    if not path.is_file():
        return None
    try:
        return path, torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        warn(f"checkpoint {path} is unreadable ({type(e).__name__})")
        return None
