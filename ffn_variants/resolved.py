"""The FFN a run trains, decided once: from the config's choice (`FFNSpec`) to one value
(`ResolvedFFN`) that the model, the trainer, the report's records and the benchmarks receive.

`resolve_ffn` is the only place that looks the variant up (ffn_variants.registry), checks the
options its factory takes, matches its width (ffn_variants.sizing), counts it
(ffn_variants.counting) and probes it on a real input (ffn_variants.probe). Nothing downstream
looks a name up, matches or counts again: it builds layers with `ResolvedFFN.build()` and reads
the counts it holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import torch
import torch.nn as nn

from ffn_variants.counting import Counts, FlopCount
from ffn_variants.probe import probe_ffn
from ffn_variants.registry import (
    Impl,
    Variant,
    factory_options,
    get_variant,
    make_ffn,
    variant_from_target,
)
from ffn_variants.sizing import Match, matched_d_ff


def check_dropout(key: str, p: float) -> None:
    """ValueError unless 0 <= p < 1 (torch accepts 1, which zeroes every activation)."""
    if not (math.isfinite(p) and 0.0 <= p < 1.0):
        raise ValueError(f"{key}={p} must be in [0, 1)")


@dataclass
class FFNSpec:
    """Which FFN, how it is matched and built (the config's `ffn` group). `name` is a registered
    variant (the built-ins, or one registered with ffn_variants.register_ffn), or, with `target`,
    the name under which the callable `target` ("pkg.module:attr", called as
    f(d_model, d_ff, **kwargs)) is reported."""

    name: str = "swiglu"
    target: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    match: Match = Match.params
    bias: bool = False
    dropout: float = 0.0
    impl: Impl = Impl.auto

    def __post_init__(self) -> None:
        check_dropout("ffn.dropout", self.dropout)

    def variant(self) -> Variant:
        """The registered variant `name`, or the one `target` names; ValueError otherwise."""
        if self.target is None:
            if self.name == "custom":
                raise ValueError(
                    "ffn=custom needs ffn.target=<module>:<callable> and ffn.name=<its name> "
                    "(docs/extending.md)"
                )
            if self.kwargs:
                raise ValueError(f"ffn.kwargs are for ffn.target; ffn '{self.name}' has none")
            return get_variant(self.name)
        return variant_from_target(self.name, self.target, dict(self.kwargs))


class ModelShape(Protocol):
    """What resolving needs of a model config (ffn_variants.model.GPTConfig has it)."""

    d_model: int
    d_ff: int  # the dense FFN's width, which the variant is matched to
    multiple_of: int


@dataclass(frozen=True, eq=False)
class ResolvedFFN:
    """One FFN choice, resolved for one model shape: what to build and what it counts."""

    variant: Variant
    options: Mapping[str, Any]  # bias, dropout, impl: those the factory takes
    impl: Impl
    match: Match
    d_model: int
    dense_d_ff: int  # the dense ReLU FFN's width it is matched to
    d_ff: int  # its own hidden width
    params: int  # one layer
    flops: FlopCount  # one layer's forward, per token
    mixes_positions: bool  # its output at a position depends on others (no KV-cache decoding)

    @property
    def name(self) -> str:
        return self.variant.name

    def build(self) -> nn.Module:
        """One layer, initialised from the caller's RNG."""
        return make_ffn(self.variant, self.d_model, self.d_ff, self.options, self.impl)


def resolve_ffn(spec: FFNSpec, model: ModelShape) -> ResolvedFFN:
    """`spec` for a model of `model`'s shape; ValueError naming the fix where the variant is
    unknown, its factory cannot take the options, no width matches it within 1%, or its forward
    fails or changes the shape on a real input."""
    variant = spec.variant()
    impl = Impl(spec.impl)
    options = factory_options(variant, spec.bias, spec.dropout, impl)
    if impl == Impl.quack:  # an activation QuACK has no epilogue for: refused now
        if spec.bias:
            # QuACK's LinearActFunc sums the bias gradient in its interleaved layout: the
            # gradient would reach the wrong units (its own MLP refuses bias in training too).
            raise ValueError(
                "ffn.impl=quack trains without biases (QuACK's fused GEMM gives a permuted "
                "bias gradient); drop ffn.bias=true or use ffn.impl=triton"
            )
        with torch.device("meta"):
            make_ffn(variant, 8, 8, options, impl)
    counts = Counts(variant, model.d_model, spec.bias)
    d_ff = matched_d_ff(
        variant, model.d_model, model.d_ff, model.multiple_of, spec.match, spec.bias, counts
    )
    probe = probe_ffn(variant, model.d_model, d_ff, spec.bias)
    return ResolvedFFN(
        variant=variant,
        options=MappingProxyType(options),
        impl=impl,
        match=Match(spec.match),
        d_model=model.d_model,
        dense_d_ff=model.d_ff,
        d_ff=d_ff,
        params=counts.params(d_ff),
        flops=counts.flops(d_ff),
        mixes_positions=probe.mixes_positions,
    )
