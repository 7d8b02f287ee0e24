"""A plan before spending: `python train.py <overrides> trainer.dry_run=true` (or `-m ...`).

The pre-flight composes and checks the command line as for a run, then prints what each job
would do: its parameters and the FFN's share of the training FLOPs, its steps and tokens, the
passes over the training split (with the warning a run gives above one), its training FLOPs and
the time they take at trainer.plan_mfu of this machine's measured peak (or of trainer.plan_gpu's
datasheet peak); then exits 0 having written nothing. The passes need the size of the training
split: from the token cache when it was built, else bounded by data.max_tokens, else unknown
until the data is tokenized (the first run does it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ffn_variants.model import GPT
from harness.config import TrainConfig
from harness.data.cache import cached_counts
from harness.data.sampler import n_windows
from harness.mfu import Peak, device_peak, table_peak
from harness.runtime import compute_dtype, pick_device, planned_steps


@dataclass(frozen=True)
class Plan:
    name: str
    optimizer: str  # optim.name and optim.lr
    params: int
    non_embedding: int
    ffn_share: float
    tokens_per_step: int
    steps: int
    train_flops: float
    train_tokens: int | None  # the training split, where known
    bound: bool  # train_tokens is an estimate from data.max_tokens, not the built cache

    @property
    def tokens(self) -> int:
        return self.steps * self.tokens_per_step

    block_size: int = 1

    @property
    def passes(self) -> float | None:
        """Windows drawn over windows in the split, as summary.json's data.epochs counts them."""
        if not self.train_tokens:
            return None
        return self.tokens / self.block_size / n_windows(self.train_tokens, self.block_size)


def plan_of(cfg: TrainConfig) -> Plan:
    t, m, d = cfg.trainer, cfg.model, cfg.data
    with torch.device("meta"):
        gpt = GPT(m, cfg.resolved_ffn)
    counts = gpt.param_counts()
    flops = gpt.flops_per_token()
    per_step = t.batch_size * m.block_size * t.grad_accum
    steps = planned_steps(t, counts["non_embedding"], per_step)
    cached = cached_counts(d)
    train = cached.get("train_tokens") if cached else None
    bound = train is None and d.max_tokens is not None
    if bound:
        train = round(d.max_tokens * (1 - d.held_out_fraction))
    return Plan(
        name=f"{cfg.ffn.name}-s{cfg.seed}",
        optimizer=f"{cfg.optim.name}, lr {cfg.optim.lr:g}",
        params=counts["total"],
        non_embedding=counts["non_embedding"],
        ffn_share=flops["ffn_share"],
        tokens_per_step=per_step,
        steps=steps,
        train_flops=flops["train"] * steps * per_step,
        train_tokens=train,
        bound=bound,
        block_size=m.block_size,
    )


def planning_peak(cfg: TrainConfig) -> Peak:
    """The peak the time is planned against: plan_gpu's datasheet, else this machine's."""
    if cfg.trainer.plan_gpu is not None:
        name, tflops = table_peak(cfg.trainer.plan_gpu)
        return Peak(tflops * 1e12, f"datasheet: {name} dense bf16")
    device = pick_device(cfg.trainer.device, None)
    return device_peak(device, compute_dtype(cfg.trainer, device))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def describe(plan: Plan, seconds: float) -> str:
    if plan.passes is None:
        passes = "passes unknown until the data is tokenized"
    else:
        passes = f"{'at most ' if plan.bound else ''}{plan.passes:.2f} passes"
    return (
        f"{plan.name}: {plan.optimizer}; {plan.params:,} params ({plan.non_embedding:,} "
        "non-embedding), FFN "
        f"{plan.ffn_share:.1%} of the FLOPs; {plan.steps:,} steps x {plan.tokens_per_step:,} "
        f"= {plan.tokens:,} tokens, {passes}; {plan.train_flops:.2e} training FLOPs, about "
        f"{_duration(seconds)}"
    )


def print_plans(configs: list[TrainConfig]) -> None:
    """One line per job, the warnings, and the totals."""
    peak = planning_peak(configs[0])
    mfu = configs[0].trainer.plan_mfu
    plans = [plan_of(c) for c in configs]
    for p in plans:
        print(describe(p, p.train_flops / (peak.flops * mfu)), flush=True)
    for p in plans:
        if p.passes is not None and p.passes > 1:
            print(
                f"warning: {p.name} plans {p.passes:.1f} passes over the training split "
                f"({p.tokens:,} tokens, {p.train_tokens:,} in it): a comparison there ranks how "
                "fast each variant memorises it; use a larger corpus (data=fineweb_edu), a "
                "higher data.max_tokens, or fewer trainer.max_steps",
                flush=True,
            )
    total = sum(p.train_flops for p in plans)
    print(
        f"dry run: {len(plans)} job(s), {total:.2e} training FLOPs, about "
        f"{_duration(total / (peak.flops * mfu))} at {mfu:.0%} MFU of {peak.tflops:.3g} TFLOP/s "
        f"({peak.source}); evaluations, start-up and compilation come on top. No run dir was "
        "written.",
        flush=True,
    )
