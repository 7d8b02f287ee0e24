"""Feed-forward blocks for a transformer, sized to match a dense baseline.

    from ffn_variants import build_ffn, matched_d_ff, register_ffn

The built-in variants and a user's FFN (any callable `(d_model, d_ff, **kwargs) -> nn.Module`,
registered with `register_ffn`) are built, counted and matched the same way; `resolve_ffn` turns
a choice (`FFNSpec`) into the one value (`ResolvedFFN`) a model is built from.
"""

from ffn_variants.registry import VARIANTS, Impl, Variant, build_ffn, get_variant, register_ffn
from ffn_variants.resolved import FFNSpec, ResolvedFFN, resolve_ffn
from ffn_variants.sizing import Match, matched_d_ff  # noqa: I001 (after the built-ins)
from ffn_variants.variants import DenseFFN, GatedFFN  # registers the built-ins

__all__ = [
    "VARIANTS",
    "DenseFFN",
    "FFNSpec",
    "GatedFFN",
    "Impl",
    "Match",
    "ResolvedFFN",
    "Variant",
    "build_ffn",
    "get_variant",
    "matched_d_ff",
    "register_ffn",
    "resolve_ffn",
]
