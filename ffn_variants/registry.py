"""The variant registry: every FFN, built-in or a user's, is a factory called the same way.

A variant is a name and an importable callable `factory(d_model, d_ff, **kwargs) -> nn.Module`
with its keyword arguments. The built-ins (ffn_variants.variants) are registered with the same
`register_ffn` a user calls; a user's module can also come from a "pkg.module:attr" target
(`variant_from_target`, what `ffn.target=` in a config resolves through). Either way the module is
built by `build_ffn`, sized by counting what it builds (ffn_variants.counting, .sizing) and
watched through the telemetry protocol (ffn_variants.telemetry).

Three options every FFN may take, passed only to a factory that accepts them (by name or through
**kwargs): `bias`, `dropout` and `impl` (Impl). A factory without an `impl` argument still honours
impl="compile" (its module's forward is compiled); a value other than the default for an option
the factory does not take is an error, not silently dropped.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import torch.nn as nn

Factory = Callable[..., nn.Module]


class Impl(StrEnum):
    """How an FFN computes its elementwise part (for a gated one: act(gate) * value)."""

    auto = "auto"  # the fused Triton kernel where it can run (CUDA), else torch
    triton = "triton"  # the fused Triton kernel, forward and backward
    torch = "torch"  # plain PyTorch
    compile = "compile"  # torch.compile of the plain PyTorch function (or the whole module)
    quack = (
        "quack"  # QuACK's GEMM with the activation in its epilogue (SM90+; ffn_variants.quack_ffn)
    )


OPTION_DEFAULTS: dict[str, Any] = {"bias": False, "dropout": 0.0, "impl": Impl.auto}


@dataclass(frozen=True, eq=False)
class Variant:
    """A named FFN: factory(d_model, d_ff, **kwargs) builds one layer of it. Compared by
    identity: a run resolves its variant once (ffn_variants.resolved) and hands that on."""

    name: str
    factory: Factory
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    formula: str = ""  # for people: what the module computes
    source: str = ""  # where the factory came from, for messages: "pkg.mod:attr"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))
        if not self.source:
            object.__setattr__(self, "source", qualified_name(self.factory))


VARIANTS: dict[str, Variant] = {}  # every registered variant, built-ins first
BUILTIN_NAMES: set[str] = set()
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a config file, W&B tag and dir name


def qualified_name(obj: Any) -> str:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}:{qualname}" if module and qualname else repr(obj)


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"ffn name {name!r} must be letters, digits, '_', '.' or '-' (it names run dirs, "
            "W&B tags and report rows)"
        )


def register_ffn(
    name: str,
    factory: Factory,
    *,
    formula: str = "",
    replace: bool = False,
    builtin: bool = False,
    **kwargs: Any,
) -> Variant:
    """Register `factory` as the FFN `name`: build_ffn(name, d_model, d_ff) then calls
    factory(d_model, d_ff, **kwargs). A name already taken is a ValueError unless replace=True
    (never for a built-in's name)."""
    check_name(name)
    if name in BUILTIN_NAMES and not builtin:
        raise ValueError(f"ffn name '{name}' is a built-in variant; give yours another name")
    if name in VARIANTS and not (replace or builtin):
        raise ValueError(f"ffn '{name}' is already registered; pass replace=True to replace it")
    variant = Variant(name, factory, kwargs, formula)
    check_signature(variant)
    VARIANTS[name] = variant
    if builtin:
        BUILTIN_NAMES.add(name)
    return variant


def get_variant(name: str) -> Variant:
    """The registered variant called `name`; a ValueError lists the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown ffn '{name}'; known: {', '.join(VARIANTS)}; or bring your own with "
            "ffn.target=<module>:<callable> (docs/extending.md)"
        ) from None


def as_variant(variant: Variant | str) -> Variant:
    """A Variant given a Variant or a registered name: the public functions' one conversion."""
    return get_variant(variant) if isinstance(variant, str) else variant


def resolve_target(target: str) -> Any:
    """The object a "pkg.module:attr" (or "pkg.module.attr") target names; ValueError if none."""
    if not isinstance(target, str) or not target.strip():
        raise ValueError("ffn.target must be '<module>:<callable>', e.g. my_pkg.my_ffn:MyFFN")
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"ffn.target={target} must be '<module>:<callable>'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:  # the user's module may fail in any way on import
        raise ValueError(
            f"ffn.target={target}: cannot import {module_name} ({type(e).__name__}: {e}); "
            "is it on PYTHONPATH or in the directory you launch from?"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"ffn.target={target}: {module_name} has no '{attr}'") from None
    if not callable(obj):
        raise ValueError(f"ffn.target={target} is a {type(obj).__name__}, not a callable")
    return obj


def variant_from_target(name: str, target: str, kwargs: Mapping[str, Any] | None = None) -> Variant:
    """The variant `name` built by the callable `target` names, with its keyword arguments."""
    check_name(name)
    if name in BUILTIN_NAMES:
        raise ValueError(
            f"ffn.name={name} is a built-in variant; name yours otherwise (ffn.name=...) so "
            "that the report and W&B can tell them apart"
        )
    variant = Variant(name, resolve_target(target), kwargs or {}, source=target)
    check_signature(variant)
    return variant


def _accepts(factory: Factory) -> tuple[set[str], bool]:
    """The keyword names factory takes, and whether it takes **kwargs."""
    params = inspect.signature(factory).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def check_signature(variant: Variant) -> None:
    """ValueError unless factory(d_model, d_ff, **kwargs) is a valid call."""
    try:
        signature = inspect.signature(variant.factory)
    except (TypeError, ValueError):
        return  # a builtin without a signature: the build will tell
    try:
        signature.bind(1, 1, **variant.kwargs)
    except TypeError as e:
        args = ", ".join(["d_model", "d_ff", *(f"{k}=..." for k in variant.kwargs)])
        raise ValueError(
            f"ffn '{variant.name}': {variant.source} cannot be called as f({args}): {e}; an FFN "
            "factory takes (d_model, d_ff, **kwargs) and returns an nn.Module"
        ) from None


def factory_options(variant: Variant, bias: bool, dropout: float, impl: Impl | str) -> dict:
    """The options to pass to variant.factory: those it accepts; ValueError for one it does not
    accept but is set to something else than its default."""
    names, var_kw = _accepts(variant.factory)
    given = {"bias": bias, "dropout": dropout, "impl": Impl(impl)}
    options = {}
    for key, value in given.items():
        if key in variant.kwargs:
            continue  # the variant fixes it itself
        if var_kw or key in names:
            options[key] = value
        elif key == "impl" and value not in (Impl.triton, Impl.quack):
            continue  # auto and torch are what the module does anyway; compile: build_ffn
        elif key == "impl":
            raise ValueError(
                f"ffn.impl={value}: the fused kernels are for the built-in activations, and "
                f"{variant.source} (ffn '{variant.name}') takes no 'impl'; use ffn.impl=compile "
                "(torch.compile of any module) or auto"
            )
        elif value != OPTION_DEFAULTS[key]:
            raise ValueError(
                f"ffn.{key}={value} but {variant.source} (ffn '{variant.name}') takes no "
                f"'{key}' argument; leave ffn.{key} at {OPTION_DEFAULTS[key]} or add it to the "
                "factory's signature"
            )
    return options


def build_ffn(
    variant: Variant | str,
    d_model: int,
    d_ff: int,
    *,
    bias: bool = False,
    dropout: float = 0.0,
    impl: Impl | str = Impl.auto,
) -> nn.Module:
    """One layer of `variant` (a Variant or a registered name) at hidden width d_ff (already
    sized: see ffn_variants.sizing)."""
    variant = as_variant(variant)
    return make_ffn(variant, d_model, d_ff, factory_options(variant, bias, dropout, impl), impl)


def make_ffn(
    variant: Variant, d_model: int, d_ff: int, options: Mapping[str, Any], impl: Impl | str
) -> nn.Module:
    """One layer of `variant` with the factory options already checked (factory_options)."""
    module = variant.factory(d_model, d_ff, **variant.kwargs, **options)
    if not isinstance(module, nn.Module):
        raise ValueError(
            f"ffn '{variant.name}': {variant.source}(d_model, d_ff) returned a "
            f"{type(module).__name__}, not an nn.Module"
        )
    if Impl(impl) == Impl.compile and "impl" not in options:
        module.compile()  # the module's own forward, compiled: impl=compile for any module
    return module
