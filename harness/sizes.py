"""The matched-size table for a model config: python -m harness.sizes model=small [ffn.match=flops]

One row per variant: hidden width, FFN parameters and FLOPs per layer beside the dense ReLU FFN's,
and the whole model's parameters, counted on a model built without memory (meta device).
"""

from __future__ import annotations

import sys

import torch

from ffn_variants.errors import UserInputError
from ffn_variants.model import GPT, FFNSpec
from ffn_variants.sizing import format_table, matching_table
from ffn_variants.variants import VARIANTS
from harness.cli import compose_checked, fail
from harness.config import ModelConfig, register_configs, to_dataclass


def sizes_report(cfg) -> str:
    """The matching table and whole-model counts for the composed config `cfg`."""
    m = to_dataclass(ModelConfig, cfg.model)
    try:
        rows = matching_table(m.d_model, m.d_ff, m.multiple_of, cfg.ffn.match, cfg.ffn.bias)
    except ValueError as e:
        raise UserInputError(str(e)) from None
    lines = [
        f"model {m.name}: n_layer {m.n_layer}, d_model {m.d_model}, dense d_ff {m.d_ff}, "
        f"multiple_of {m.multiple_of}, matched on {cfg.ffn.match}",
        "",
        format_table(rows),
        "",
        "| ffn | total params | non-embedding | vs relu |",
        "|---|---:|---:|---:|",
    ]
    totals = {}
    with torch.device("meta"):
        for name in VARIANTS:
            spec = FFNSpec(name=name, match=cfg.ffn.match, bias=cfg.ffn.bias)
            totals[name] = GPT(m, spec).param_counts()
    for name, c in totals.items():
        diff = c["total"] / totals["relu"]["total"] - 1
        lines.append(f"| {name} | {c['total']:,} | {c['non_embedding']:,} | {diff:+.2%} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    register_configs()
    try:
        print(sizes_report(compose_checked(argv)))
    except UserInputError as e:
        fail(str(e))


if __name__ == "__main__":
    main(sys.argv[1:])
