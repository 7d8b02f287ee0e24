"""What telemetry costs: python -m bench.telemetry [model=small] [ffn=swiglu] [--steps N]

Times training steps side by side, alternating plain steps with steps that also collect the
activation statistics (forward hooks) and per-block gradient norms, and reports the extra time of a
logged step and its share of step time at the configured log interval. Writes JSON and Markdown
under results/telemetry/.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

from bench.timing import synchronize
from ffn_variants.model import GPT
from ffn_variants.telemetry import grad_norms
from harness.cli import compose_checked, fail
from harness.config import TrainConfig
from harness.errors import UserInputError
from harness.prepare import prepare
from harness.runtime import autocast, pick_device
from harness.train_step import TrainStep


def measure(cfg: TrainConfig, steps: int) -> dict:
    device = pick_device(cfg.trainer.device)
    run = prepare(GPT(cfg.model, cfg.resolved_ffn), cfg, device, compile=False)
    train_step = TrainStep.of(run, cfg, autocast(cfg.trainer, device))
    shape = (cfg.trainer.batch_size, cfg.model.block_size)
    x = torch.randint(0, cfg.model.vocab_size, shape, device=device)

    def step(with_telemetry: bool) -> float:
        """The trainer's step (harness.train_step), watched or not: hooks on the forward, then
        the per-block gradient norms, as a logging step takes them."""
        synchronize(device)
        start = time.perf_counter()
        train_step.forward_backward(lambda micro: (x, x), with_telemetry)
        if with_telemetry:
            grad_norms(run.model)
        train_step.optimizer_step(0)
        synchronize(device)
        return time.perf_counter() - start

    for _ in range(3):  # warm-up: allocator, kernels, first-use costs
        step(False), step(True)
    plain, logged = [], []
    for i in range(steps):
        print(f"\rstep pair {i + 1}/{steps}", end="", file=sys.stderr, flush=True)
        plain.append(step(False))
        logged.append(step(True))
    print(file=sys.stderr)
    t_plain, t_logged = statistics.median(plain), statistics.median(logged)
    interval = cfg.trainer.log_interval
    return {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "model": cfg.model.name,
        "ffn": cfg.ffn.name,
        "tokens_per_step": shape[0] * shape[1],
        "steps": steps,
        "median_step_s": t_plain,
        "median_logged_step_s": t_logged,
        "logged_step_overhead": t_logged / t_plain - 1,
        "log_interval": interval,
        "amortized_overhead": (t_logged / t_plain - 1) / interval,
        "torch": torch.__version__,
        "date": date.today().isoformat(),
    }


def to_markdown(r: dict) -> str:
    return "\n".join(
        [
            f"# Telemetry cost: {r['model']} / {r['ffn']} on {r['device']} ({r['date']})",
            "",
            "| step | median time | vs plain |",
            "|---|---:|---:|",
            f"| plain | {r['median_step_s'] * 1e3:.1f} ms | 1.00x |",
            f"| with activation stats + grad norms | {r['median_logged_step_s'] * 1e3:.1f} ms | "
            f"{1 + r['logged_step_overhead']:.2f}x |",
            "",
            f"At log_interval={r['log_interval']} telemetry adds {r['amortized_overhead']:.2%} to "
            f"the average step ({r['steps']} step pairs, {r['tokens_per_step']} tokens a step, "
            f"torch {r['torch']}).",
        ]
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="step pairs to time")
    parser.add_argument("--out", default="results/telemetry", help="folder for JSON and Markdown")
    args, overrides = parser.parse_known_args(argv)
    try:
        result = measure(compose_checked(overrides), args.steps)
    except UserInputError as e:
        fail(str(e))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = f"{result['model']}_{result['ffn']}_{'cuda' if 'cpu' not in result['device'] else 'cpu'}"
    (out / f"bench_{slug}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"bench_{slug}.md").write_text(to_markdown(result) + "\n")
    print(to_markdown(result))


if __name__ == "__main__":
    main(sys.argv[1:])
