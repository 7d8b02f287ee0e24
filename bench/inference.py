"""What each FFN costs to serve: prefill latency, decode tokens/s and memory, per variant and size.

    python -m bench.inference experiment=contenders [key=value ...] [--rounds 5] [--no-compile]
    make bench-inference EXPERIMENT=contenders

One process builds every (variant, model size) of the experiment's sweep (as bench.throughput
does), in inference: eval mode under torch.inference_mode(), bf16 weights on CUDA (float32 on a
CPU), `ffn.impl` as the sweep sets it (on CUDA `auto` is the fused Triton op, forward only: under
inference mode nothing is saved for a backward). Each is measured eager and compiled
(compiled: the one-token step compiled over a fixed-shape KV cache, ffn_variants.decode, so that
every decode step has one shape; on CUDA mode="reduce-overhead", which replays each step as a
CUDA graph, as gpt-fast serves; the prefill eager), after a warm-up, interleaved round by round
so that drift of the machine is shared by all:
  - prefill: one forward over a prompt of block_size/4 tokens ("short") and of block_size/2
    ("long"), batch 1, filling the KV cache, in ms;
  - decode: DECODE_TOKENS tokens one at a time through the KV cache after an 8-token prompt, at
    batch 1 and at batch DECODE_BATCH, in tokens/s (batch x tokens / time);
  - memory: the weights, plus what a batch-DECODE_BATCH decode allocates on top of what was there
    before it (CUDA: the peak allocated; CPU: the growth of the resident set, a rough figure).
Medians and spread (p25-p75 over the median) over the rounds, with the machine and its load
average before and after: figures are worth keeping only when nothing else ran. The weights are
random: a step's time does not depend on their values.

Writes inference.json, inference.md and inference.png under results/<experiment>_inference/
(--out); `python -m sweep.report` shows them as "Cost to serve".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import torch

from bench.throughput import configs, machine
from bench.timing import load_average, quartile, synchronize
from ffn_variants.decode import Decoder, sample_next
from ffn_variants.model import GPT
from harness.cli import fail
from harness.config import TrainConfig
from harness.errors import UserInputError
from harness.json_safe import dumps
from harness.prepare import prepare
from harness.runtime import pick_device
from sweep.serving import ratios

DECODE_TOKENS = 32
DECODE_PROMPT = 8
DECODE_BATCH = 8
MODES = ("eager", "compiled")
FILENAME = "inference.json"


def prompt_lengths(block_size: int) -> tuple[int, int]:
    return max(1, block_size // 4), max(2, block_size // 2)


def rss_bytes() -> int:
    """This process's resident set now (Linux), 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class Subject:
    """One (variant, size, mode) with its model and its measurements."""

    cfg: TrainConfig
    mode: str
    model: GPT
    run: Callable[..., Any] | None  # compiled: how its decode step compiles (harness.prepare)
    times: dict[str, list[float]] = field(default_factory=dict)
    memory_mib: float | None = None
    error: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.cfg.ffn.name, self.cfg.model.name, self.mode


def build(cfg: TrainConfig, mode: str, device: torch.device, models: int = 1) -> Subject:
    torch.manual_seed(0)
    compiled = mode == "compiled"
    run = prepare(
        GPT(cfg.model, cfg.resolved_ffn), cfg, device, serve=True, compile=compiled, models=models
    )
    return Subject(cfg, mode, run.model, run.compile_step)


def decoder(s: Subject) -> Decoder:
    """GPT.generate's decoder for this subject: compiled, its one-token step runs over the
    fixed-shape cache (an FFN that mixes positions is decoded over its whole context)."""
    return Decoder(s.model, s.run)


def prefill_s(s: Subject, length: int, device: torch.device) -> float:
    idx = torch.randint(0, s.cfg.model.vocab_size, (1, length), device=device)
    d = decoder(s)
    synchronize(device)
    began = time.perf_counter()
    d.prefill(idx)
    synchronize(device)
    return time.perf_counter() - began


def decode_tokens(block_size: int) -> int:
    """DECODE_TOKENS, or what fits after the prompt in a shorter context."""
    return min(DECODE_TOKENS, block_size - DECODE_PROMPT)


def decode_s(s: Subject, batch: int, device: torch.device) -> float:
    """Seconds for decode_tokens() one-token steps after a short prompt (greedy), as
    GPT.generate decodes them."""
    d = decoder(s)
    idx = torch.randint(0, s.cfg.model.vocab_size, (batch, DECODE_PROMPT), device=device)
    logits = d.prefill(idx)
    synchronize(device)
    began = time.perf_counter()
    for _ in range(decode_tokens(s.cfg.model.block_size)):
        logits = d.step(sample_next(logits, temperature=0))
    synchronize(device)
    return time.perf_counter() - began


def one_pass(s: Subject, device: torch.device) -> dict[str, float]:
    short, long = prompt_lengths(s.cfg.model.block_size)
    n = decode_tokens(s.cfg.model.block_size)
    with torch.inference_mode():
        return {
            "prefill_short_ms": 1e3 * prefill_s(s, short, device),
            "prefill_long_ms": 1e3 * prefill_s(s, long, device),
            "decode_b1_tokens_per_s": n / decode_s(s, 1, device),
            f"decode_b{DECODE_BATCH}_tokens_per_s": DECODE_BATCH
            * n
            / decode_s(s, DECODE_BATCH, device),
        }


def warm_up(s: Subject, device: torch.device) -> None:
    """The first pass (compilation included), then the memory figure: the model's weights plus
    what a batch-DECODE_BATCH decode needs on top of what was allocated before it (the KV cache
    and the activations). Other subjects' models stay resident, so only the growth counts."""
    one_pass(s, device)
    weights = sum(p.numel() * p.element_size() for p in s.model.parameters())
    with torch.inference_mode():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            decode_s(s, DECODE_BATCH, device)
            working = torch.cuda.max_memory_allocated(device) - before
        else:
            before = rss_bytes()
            decode_s(s, DECODE_BATCH, device)
            working = max(0, rss_bytes() - before)
    s.memory_mib = (weights + working) / 2**20


def summarise(s: Subject) -> dict[str, Any]:
    variant, model, mode = s.key
    out: dict[str, Any] = {"variant": variant, "model": model, "mode": mode}
    out["impl"] = str(s.cfg.ffn.impl)
    out["memory_mib"] = s.memory_mib
    out["error"] = s.error or None
    for name, values in s.times.items():
        median = statistics.median(values)
        out[name] = median
        out[f"{name}_spread"] = (quartile(values, 0.75) - quartile(values, 0.25)) / median
    return out


def measure(
    cfgs: Sequence[TrainConfig], rounds: int, modes: Sequence[str], log=print
) -> dict[str, Any]:
    device = pick_device(cfgs[0].trainer.device)
    load_before = load_average()
    subjects = []
    for cfg in cfgs:
        for mode in modes:
            s = build(cfg, mode, device, models=len(cfgs))
            log(f"warm-up {'/'.join(s.key)}")
            try:
                warm_up(s, device)
                subjects.append(s)
            except Exception as e:  # a mode that fails (a compiler error) loses its row only
                s.error = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
                log(f"  failed: {s.error}")
                subjects.append(s)
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}")
        for s in subjects:
            if s.error:
                continue
            for name, value in one_pass(s, device).items():
                s.times.setdefault(name, []).append(value)
    return {
        "date": date.today().isoformat(),
        "prompts": {c.model.name: prompt_lengths(c.model.block_size) for c in cfgs},
        "machine": machine(device),
        "dtype": "bfloat16" if device.type == "cuda" else "float32",
        "rounds": rounds,
        "decode_tokens": DECODE_TOKENS,
        "decode_batch": DECODE_BATCH,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "results": [summarise(s) for s in subjects],
    }


def to_markdown(result: dict[str, Any], baseline: str) -> str:
    m, load = result["machine"], result["load_average_before"]
    rows = [r for r in result["results"] if not r.get("error")]
    first = rows[0] if rows else {}
    keys = [k for k in first if k.startswith(("prefill_", "decode_")) and "spread" not in k]
    head = ["variant", "model", "mode", *keys, "memory MiB"]
    lines = [
        f"# Cost to serve: {result.get('experiment')}",
        "",
        f"{result['date']}, {m.get('device_name', m.get('device'))} ({m.get('platform')}, torch "
        f"{m.get('torch')}), {result['dtype']}, median of {result['rounds']} interleaved rounds "
        f"(± spread: p25-p75 over the median); decode: {result['decode_tokens']} tokens through "
        f"the KV cache. Load average before: "
        f"{', '.join(f'{x:.2f}' for x in load) if load else 'n/a'}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 3 + "---:|" * (len(head) - 3),
    ]
    for r in rows:
        cells = [f"{r[k]:,.2f} ±{100 * (r.get(f'{k}_spread') or 0):.0f}%" for k in keys]
        mem = f"{r['memory_mib']:.0f}" if r.get("memory_mib") is not None else "n/a"
        lines.append("| " + " | ".join([r["variant"], r["model"], r["mode"], *cells, mem]) + " |")
    lines += [
        "",
        f"Relative to {baseline} (prefill: time ratio, lower is cheaper; decode: rate "
        "ratio, higher is cheaper):",
        "",
    ]
    rel = ratios(result, baseline)
    lines += ["| " + " | ".join(["variant", "model", "mode", *keys]) + " |"]
    lines += ["|" + "---|" * 3 + "---:|" * len(keys)]
    for r in rel:
        cells = [f"{r[k]:.2f}x" if k in r else "n/a" for k in keys]
        lines.append("| " + " | ".join([r["variant"], r["model"], r["mode"], *cells]) + " |")
    failed = [r for r in result["results"] if r.get("error")]
    if failed:
        lines += [
            "",
            "Failed: " + "; ".join(f"{r['variant']}/{r['mode']}: {r['error']}" for r in failed),
        ]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], baseline: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = [r for r in ratios(result, baseline) if r["mode"] == "eager"]
    if not rel:
        return
    keys = [k for k in rel[0] if k.startswith(("prefill_", "decode_")) and "spread" not in k]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rel)), 3.8))
    width = 0.8 / len(keys)
    for i, k in enumerate(keys):
        xs = [j + i * width for j in range(len(rel))]
        ax.bar(xs, [r.get(k, 0) for r in rel], width, label=k)
    ax.axhline(1.0, color="0.3", lw=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rel))])
    ax.set_xticklabels([f"{r['variant']}\n{r['model']}" for r in rel], fontsize=8)
    ax.set_ylabel(f"ratio to {baseline} (eager)")
    ax.set_title("Cost to serve: prefill time (lower is cheaper), decode rate (higher)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true", help="eager only")
    ap.add_argument("--baseline", default="relu")
    ap.add_argument("--out", type=Path, default=Path("results"))
    return ap.parse_known_args(argv)


def main(argv: list[str]) -> int:
    args, overrides = parse_args(argv)
    try:
        if args.rounds < 1:
            raise UserInputError("--rounds must be at least 1")
        cfgs = configs(overrides)
    except UserInputError as e:
        fail(str(e))
    experiment = cfgs[0].experiment
    modes = ("eager",) if args.no_compile else MODES
    result = {"experiment": experiment, **measure(cfgs, args.rounds, modes)}
    dest = args.out / f"{experiment}_inference"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / FILENAME).write_text(dumps(result, indent=2) + "\n")
    (dest / "inference.md").write_text(to_markdown(result, args.baseline))
    plot(result, args.baseline, dest / "inference.png")
    print(f"wrote {dest / FILENAME}, {dest / 'inference.md'} and {dest / 'inference.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
