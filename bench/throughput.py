"""Tokens/s and MFU of every variant at every size of an experiment, measured apart from the sweep.

    python -m bench.throughput experiment=contenders [key=value ...] [--rounds 5] [--warmup 1]
    make bench-throughput EXPERIMENT=contenders

The runs of a sweep time themselves, but under a parallel launcher they share the machine's cores,
so their tokens/s measure the contention as much as the variant. Here one process (torch's
default threads: every core) builds every (variant, model size) of the experiment's sweep with
the sweep's own settings (batch, block size, grad_accum, dtype, compile, log_interval), warms
each up, then times them interleaved: a block of trainer.log_interval optimizer steps of one,
then of the next, round after round, so drift of the machine's speed is shared by all. A block
is what a run repeats: its first step collects the telemetry (activation statistics and gradient
norms), the others do not. Per (variant, size): tokens/s per block, their median and spread
(p25-p75 over the median) over the rounds; MFU = tokens/s x training FLOPs per token / the peak
measured once at start-up in this process (harness.mfu), the same peak for all. Batches are
uniform random token ids: a step's time does not depend on the ids.

Writes throughput.json and throughput.md under results/<experiment>_throughput/ (--out), with the
machine and the load average before and after: a figure is worth keeping only when nothing else
ran. `python -m sweep.report` takes tokens/s and MFU from there.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import torch

from bench.timing import load_average, quartile, synchronize
from ffn_variants.model import GPT
from ffn_variants.telemetry import grad_norms
from harness.cli import compose_checked, compose_config, fail, override_sets
from harness.config import TrainConfig
from harness.errors import UserInputError
from harness.json_safe import dumps
from harness.mfu import device_peak
from harness.prepare import prepare
from harness.runtime import autocast, compute_dtype, pick_device
from harness.train_step import TrainStep
from harness.tuned import size_and_variant_jobs, sweep_jobs


def configs(overrides: list[str]) -> list[TrainConfig]:
    """One typed config per (variant, model size) of the sweep the overrides describe: the
    experiment's hydra.sweeper.params with the command line's sweeps replacing them per key."""
    first = compose_config(override_sets(overrides)[0], hydra_node=True)
    params = first.hydra.sweeper.params
    params = dict(params) if params is not None else {}
    found: dict[tuple[str, str], TrainConfig] = {}
    for job in size_and_variant_jobs(sweep_jobs(params, overrides)):
        cfg = compose_checked(job)
        found.setdefault((cfg.ffn.name, cfg.model.name), cfg)
    return list(found.values())


@dataclass
class Subject:
    """One (variant, size) built as its runs build it, and its timed blocks."""

    cfg: TrainConfig
    model: GPT
    train_step: TrainStep
    batch: tuple[torch.Tensor, torch.Tensor]
    device: torch.device
    blocks: list[float]  # seconds per block

    @classmethod
    def build(cls, cfg: TrainConfig, device: torch.device, models: int = 1) -> Subject:
        t = cfg.trainer
        torch.manual_seed(cfg.seed)
        run = prepare(GPT(cfg.model, cfg.resolved_ffn), cfg, device, models=models)
        step = TrainStep.of(run, cfg, autocast(t, device))
        shape = (t.batch_size, cfg.model.block_size)
        x = torch.randint(0, cfg.model.vocab_size, shape, device=device)
        y = torch.randint(0, cfg.model.vocab_size, shape, device=device)
        return cls(cfg, run.model, step, (x, y), device, [])

    @property
    def tokens_per_block(self) -> int:
        t = self.cfg.trainer
        return t.batch_size * self.cfg.model.block_size * t.grad_accum * t.log_interval

    def step(self, index: int, logged: bool) -> None:
        """One optimizer step, the trainer's own (harness.train_step); a logged one also reads
        its loss and gradient norms back, as the trainer's logging steps do."""
        self.train_step.forward_backward(lambda micro: self.batch, logged)
        if logged:
            grad_norms(self.model)
        self.train_step.optimizer_step(index)
        if logged:
            self.train_step.loss.item()
            self.train_step.nonfinite.read()

    def block(self) -> float:
        """Seconds for trainer.log_interval steps, the first of them logged."""
        synchronize(self.device)
        start = time.perf_counter()
        for i in range(self.cfg.trainer.log_interval):
            self.step(i, logged=i == 0)
        synchronize(self.device)
        return time.perf_counter() - start


def summarise(s: Subject, peak_flops: float) -> dict[str, Any]:
    rates = [s.tokens_per_block / b for b in s.blocks]
    median = statistics.median(rates)
    p25, p75 = (quartile(rates, 0.25), quartile(rates, 0.75)) if len(rates) > 1 else (median,) * 2
    train_flops = float(s.model.flops_per_token()["train"])
    return {
        "variant": s.cfg.ffn.name,
        "model": s.cfg.model.name,
        "tokens_per_s_median": median,
        "tokens_per_s_p25": p25,
        "tokens_per_s_p75": p75,
        "tokens_per_s_min": min(rates),
        "tokens_per_s_max": max(rates),
        "spread": (p75 - p25) / median,
        "blocks": len(rates),
        "steps_per_block": s.cfg.trainer.log_interval,
        "step_s_median": statistics.median(s.blocks) / s.cfg.trainer.log_interval,
        "train_flops_per_token": train_flops,
        "model_tflops": median * train_flops / 1e12,
        "mfu": median * train_flops / peak_flops,
        "params": s.model.param_counts(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def machine(device: torch.device) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "cores": cores,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def measure(cfgs: Sequence[TrainConfig], rounds: int, warmup: int, log=print) -> dict[str, Any]:
    if not cfgs:
        raise UserInputError("the sweep has no (variant, model size) to time")
    device = pick_device(cfgs[0].trainer.device)
    load_before = load_average()
    peak = device_peak(device, compute_dtype(cfgs[0].trainer, device))
    subjects = [Subject.build(c, device, len(cfgs)) for c in cfgs]
    for s in subjects:  # allocator, kernels, compilation, first-use costs
        for _ in range(warmup):
            s.block()
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}")
        for s in subjects:
            s.blocks.append(s.block())
    t = cfgs[0].trainer
    return {
        "experiment": cfgs[0].experiment,
        "date": date.today().isoformat(),
        "machine": machine(device),
        "peak_tflops": peak.tflops,
        "peak_source": peak.source,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "settings": {
            "batch_size": t.batch_size,
            "grad_accum": t.grad_accum,
            "block_size": sorted({c.model.block_size for c in cfgs}),
            "dtype": str(compute_dtype(t, device)).removeprefix("torch."),
            "compile": t.compile,
            "log_interval": t.log_interval,
        },
        "method": {
            "rounds": rounds,
            "warmup_blocks": warmup,
            "order": "interleaved: one block of each (variant, size) per round",
            "batches": "uniform random token ids",
        },
        "results": [summarise(s, peak.flops) for s in subjects],
    }


def to_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    rows = [
        f"| **{x['variant']}** | {x['model']} | {x['tokens_per_s_median']:,.0f} | "
        f"{x['tokens_per_s_p25']:,.0f}–{x['tokens_per_s_p75']:,.0f} ({x['spread']:.1%}) | "
        f"{x['mfu']:.1%} | {x['step_s_median'] * 1e3:.1f} |"
        for x in r["results"]
    ]
    load = r["load_average_before"]
    return "\n".join(
        [
            f"# Throughput: {r['experiment']} on {m['device_name']} ({r['date']})",
            "",
            "| variant | model | tokens/s (median) | p25–p75 (spread) | MFU | ms/step |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"One process, {m['threads']} torch threads on {m['cores']} cores ({m['host']}, "
            f"{m['platform']}, torch {m['torch']}); every variant and size interleaved, "
            f"{r['method']['rounds']} rounds of one {r['settings']['log_interval']}-step block "
            f"each (its first step logging telemetry) after {r['method']['warmup_blocks']} "
            f"warm-up block(s); batch {r['settings']['batch_size']} x block "
            f"{', '.join(map(str, r['settings']['block_size']))}, {r['settings']['dtype']}. MFU "
            f"against {r['peak_tflops']:.3g} TFLOP/s ({r['peak_source']}). Load average before: "
            f"{', '.join(f'{x:.2f}' for x in load) if load else 'n/a'}.",
        ]
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed blocks per (variant, size)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed blocks first, each")
    parser.add_argument("--out", default=None, help="default results/<experiment>_throughput")
    args, overrides = parser.parse_known_args(argv)
    try:
        if args.rounds < 1 or args.warmup < 0:
            raise UserInputError("--rounds must be at least 1 and --warmup at least 0")
        cfgs = configs(overrides)
        result = measure(cfgs, args.rounds, args.warmup, log=lambda m: print(m, file=sys.stderr))
    except UserInputError as e:
        fail(str(e))
    cores = result["machine"]["cores"] or 1
    if result["load_average_before"] and result["load_average_before"][0] > 0.25 * cores:
        print(
            f"warning: load average {result['load_average_before'][0]:.2f} on {cores} cores "
            "before the benchmark: something else was running, so these figures are not clean",
            file=sys.stderr,
        )
    out = Path(args.out or f"results/{result['experiment']}_throughput")
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(dumps(result, indent=2) + "\n")
    (out / "throughput.md").write_text(to_markdown(result) + "\n")
    print(to_markdown(result))
    print(f"wrote {out / 'throughput.json'} and {out / 'throughput.md'}")


if __name__ == "__main__":
    main(sys.argv[1:])
