"""The matched-size table for a model config: python -m harness.tools.sizes model=small

One row per variant: hidden width, FFN parameters and FLOPs per layer beside the dense ReLU FFN's,
and the whole model's parameters, training FLOPs per token and the FFN's share of them, counted on
a model built without memory (meta device).
"""

from __future__ import annotations

import dataclasses
import sys

import torch

from ffn_variants.model import GPT
from ffn_variants.resolved import resolve_ffn
from ffn_variants.sizing import FFNSize, format_table
from ffn_variants.variants import VARIANTS
from harness.cli import compose_checked, fail
from harness.config import TrainConfig
from harness.errors import UserInputError


def sizes_report(cfg: TrainConfig) -> str:
    """The matching table and whole-model counts for the config `cfg`."""
    m, f = cfg.model, cfg.ffn
    # The built-ins, and the configured FFN where it is a user's.
    specs = {name: dataclasses.replace(f, name=name, target=None, kwargs={}) for name in VARIANTS}
    specs.setdefault(f.name, f)
    resolved = {name: resolve_ffn(spec, m) for name, spec in specs.items()}
    dense = resolved["relu"]
    rows = [
        FFNSize(name, r.d_ff, r.params, r.flops.total, dense.params, dense.flops.total)
        for name, r in resolved.items()
    ]
    lines = [
        f"model {m.name}: n_layer {m.n_layer}, d_model {m.d_model}, dense d_ff {m.d_ff}, "
        f"multiple_of {m.multiple_of}, matched on {f.match}",
        "",
        format_table(rows),
        "",
        "| ffn | total params | non-embedding | vs relu | training FLOPs/token | FFN share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    with torch.device("meta"):
        models = {name: GPT(m, ffn) for name, ffn in resolved.items()}
    relu_total = models["relu"].param_counts()["total"]
    for name, model in models.items():
        c, flops = model.param_counts(), model.flops_per_token()
        vs_relu = c["total"] / relu_total - 1
        lines.append(
            f"| {name} | {c['total']:,} | {c['non_embedding']:,} | {vs_relu:+.2%} "
            f"| {flops['train']:,.0f} | {flops['ffn_share']:.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    try:
        print(sizes_report(compose_checked(argv)))
    except (UserInputError, ValueError) as e:  # ValueError: a variant that cannot be matched
        fail(" ".join(str(e).split()))


if __name__ == "__main__":
    main(sys.argv[1:])
