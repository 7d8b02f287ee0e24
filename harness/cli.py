"""Command-line checks that turn config mistakes into one-line errors before any work starts.

Hydra composes the config inside @hydra.main and prints a multi-line report on failure. Composing
each distinct choice of the command line first (with Hydra's compose API: the same code path) and
converting it to the typed config lets us say what is wrong and how to fix it in one line, and
exit with code 2, before Hydra creates any directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import sys
import tempfile
import typing
from collections.abc import Iterable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from harness import tuned
from harness.config import TrainConfig, register_configs, to_train_config
from harness.errors import UserInputError, one_line

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
INFO_FLAGS = {
    "--cfg",
    "-c",
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "-i",
    "--shell-completion",
    "-sc",
}
HYDRA_FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
    "--info",
    "-i",
    "--package",
    "-p",
}


def user_overrides(argv: Iterable[str]) -> list[str]:
    """The key=value overrides of a command line, without Hydra's own flags and hydra.* keys."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in HYDRA_FLAGS_WITH_VALUE
            continue
        key = arg.lstrip("+~").split("=", 1)[0]
        if not key.startswith("hydra"):
            out.append(arg)
    return out


def override_sets(overrides: list[str]) -> list[list[str]]:
    """One override list per distinct value of every sweep: each value is composed once."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise UserInputError(f"cannot parse the command line: {one_line(e, typed=False)}") from None
    choices = []
    for raw, o in zip(overrides, parsed, strict=True):
        if o.is_sweep_override():
            key = raw.split("=", 1)[0]
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([raw])
    base = [c[0] for c in choices]
    sets = [base]
    for i, values in enumerate(choices):
        for v in values[1:]:
            sets.append(base[:i] + [v] + base[i + 1 :])
    return sets


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' when one known word is clearly the closest, else ''."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def schema_keys(path: str) -> list[str]:
    """The keys of the config node at dotted `path` ('' is the root), from the dataclasses."""
    node: type = TrainConfig
    for part in [p for p in path.split(".") if p]:
        hints = typing.get_type_hints(node)
        if part not in hints or not dataclasses.is_dataclass(hints[part]):
            return []
        node = hints[part]
    return [f.name for f in dataclasses.fields(node)]


def _explain_missing_option(e: MissingConfigException) -> str:
    group, _, name = (e.missing_cfg_file or "").rpartition("/")
    if not group:
        return f"config '{name}' not found"
    options = e.options or []
    return (
        f"unknown {group} '{name}'{did_you_mean(name, options)}; known: {', '.join(options)} "
        f"(files in configs/{group}/)"
    )


def _explain_omegaconf(e: OmegaConfBaseException) -> str:
    key = str(getattr(e, "full_key", "") or "")
    message = one_line(e, typed=False)
    if isinstance(e, (ConfigKeyError, ConfigAttributeError)) and key:
        parent = key.rpartition(".")[0]
        known = [f"{parent}.{k}" if parent else k for k in schema_keys(parent)]
        return (
            f"unknown key {key}{did_you_mean(key, known)}; "
            "see the keys with: python train.py --cfg job"
        )
    if isinstance(e, ValidationError) and "expected one of" in message and key:
        value = message.split("'")[1] if message.count("'") >= 2 else "?"
        allowed = message.split("expected one of [", 1)[1].rstrip("]")
        return f"{key}={value} is not one of: {allowed}"
    if "Missing mandatory value" in message:
        return f"{key} must be set: add {key}=... to the command line"
    where = f" (key {key})" if key and key not in message else ""
    return f"bad config: {message}{where}; see the keys with: python train.py --cfg job"


def explain(e: BaseException) -> str:
    """A one-line account of a composition error, with the fix."""
    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        return _explain_missing_option(e)
    cause = e
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    if isinstance(cause, OmegaConfBaseException):
        return _explain_omegaconf(cause)
    return f"bad config: {one_line(e, typed=False)}"


def compose_config(overrides: list[str], hydra_node: bool = False) -> DictConfig:
    """configs/train.yaml composed with `overrides`; UserInputError (one line) if it fails."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose("train", overrides=overrides, return_hydra_config=hydra_node)
    except (HydraException, OmegaConfBaseException) as e:
        raise UserInputError(explain(e)) from None
    finally:
        GlobalHydra.instance().clear()


def compose_checked(overrides: list[str]) -> TrainConfig:
    """The typed, checked config for `overrides`; UserInputError (one line) if anything is bad."""
    return _typed(compose_config(overrides))


def _typed(cfg: DictConfig) -> TrainConfig:
    try:
        return to_train_config(cfg)
    except OmegaConfBaseException as e:
        raise UserInputError(explain(e)) from None


def _fixed_part(path: str) -> Path:
    """The part of a configured path before its first interpolation, as an absolute path."""
    return Path(path.split("${")[0] or ".").absolute()


def is_sweep(argv: list[str]) -> bool:
    """Whether the command line is a multirun, as Hydra's own argument parser reads it (-m,
    --multirun, or combined flags): the one answer, handed on to everything that asks."""
    from hydra._internal.utils import get_args_parser

    try:
        args, _ = get_args_parser().parse_known_args(argv)
    except SystemExit:  # a command line Hydra itself will refuse, and say why
        return False
    return bool(args.multirun)


def output_key(argv: list[str]) -> str:
    return "hydra.sweep.dir" if is_sweep(argv) else "hydra.run.dir"


def hydra_overrides(argv: list[str]) -> list[str]:
    """The hydra.* and hydra/<group> overrides of a command line."""
    return [a for a in argv if not a.startswith("-") and "=" in a and a not in user_overrides(argv)]


def _planned(cfg: DictConfig | None, argv: list[str]) -> Path:
    key = output_key(argv)
    try:
        if cfg is not None:
            return Path(str(OmegaConf.select(cfg, key))).absolute()
    except OmegaConfBaseException:
        pass
    raw = next((a.split("=", 1)[1] for a in argv if a.startswith(key + "=")), "outputs")
    return _fixed_part(raw)


def check_output_dir(argv: list[str]) -> None:
    """UserInputError if the run's output dir cannot be created: before Hydra tries and fails."""
    multirun = is_sweep(argv)
    key = output_key(argv)
    value = next(
        (a.split("=", 1)[1] for a in argv if a.startswith(key + "=")),
        "multirun" if multirun else "outputs",
    )
    existing = _fixed_part(value)
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "a file is in the way")
        tempfile.TemporaryDirectory(dir=existing).cleanup()  # a real write, undone at once
    except OSError as e:
        reason = e.strerror or str(e)
        raise UserInputError(
            f"cannot write the output dir {value} ({reason} at {existing}); "
            f"set {key}=<a writable path>"
        ) from None


def search_path_overrides(argv: list[str]) -> list[str]:
    """--config-dir DIR (or -cd DIR) as the override that puts DIR on Hydra's search path, so
    that the checks compose a user's own config files (ffn=my_ffn) as Hydra will."""
    dirs = []
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag in ("--config-dir", "-cd"):
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if value:
                dirs.append(f"file://{Path(value).absolute()}")
    given = [a for a in argv if a.startswith("hydra.searchpath=")]
    return given[-1:] if given else ([f"hydra.searchpath=[{','.join(dirs)}]"] if dirs else [])


def check_command_line(argv: list[str]) -> Path:
    """Compose each distinct choice on the command line once; UserInputError on the first bad
    one. Returns the planned run (or sweep) dir, read from the first choice's composition."""
    sets = override_sets(user_overrides(argv))
    search = search_path_overrides(argv)

    def composed(overrides: list[str], hydra_node: bool = False) -> DictConfig:
        return compose_config(overrides + search, hydra_node)

    try:
        hydra_keys = [o for o in hydra_overrides(argv) if not o.startswith("hydra.searchpath=")]
        first = compose_config(sets[0] + hydra_keys + search, hydra_node=True)
    except UserInputError:
        first = None  # a bad hydra.* override: Hydra reports it; the keys are checked below
    if first is None:
        _typed(composed(sets[0]))
    else:
        planned = _planned(first, argv)
        multirun = is_sweep(argv)
        tuned.check_sweep(first, user_overrides(argv), composed, multirun)
        with open_dict(first):
            del first["hydra"]
        _typed(first)
    for overrides in sets[1:]:
        _typed(composed(overrides))
    if not INFO_FLAGS & set(argv):  # those print and exit: nothing is written
        check_output_dir(argv)
    return planned if first is not None else _planned(None, argv)


def wants_dry_run(argv: list[str]) -> bool:
    """trainer.dry_run=true on the command line."""
    values = [o.split("=", 1)[1] for o in user_overrides(argv) if o.startswith("trainer.dry_run=")]
    return bool(values) and values[-1].strip().lower() in ("true", "1", "yes", "on")


def job_configs(argv: list[str]) -> list[TrainConfig]:
    """The typed config of every job the command line runs: one, or each of a sweep's."""
    overrides, search = user_overrides(argv), search_path_overrides(argv)
    if not is_sweep(argv):
        return [compose_checked(overrides + search)]
    hydra_keys = [o for o in hydra_overrides(argv) if not o.startswith("hydra.searchpath=")]
    first = compose_config(override_sets(overrides)[0] + hydra_keys + search, hydra_node=True)
    params = OmegaConf.select(first, "hydra.sweeper.params")
    params = OmegaConf.to_container(params) if params is not None else {}
    return [compose_checked(job + search) for job in tuned.sweep_jobs(params, overrides)]


def fail(message: str) -> typing.NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
