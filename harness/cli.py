"""Command-line checks that turn config mistakes into one-line errors before any work starts.

Hydra composes the config inside @hydra.main and prints a multi-line report on failure. Composing
each distinct choice of the command line first (with Hydra's compose API: the same code path)
lets us say what is wrong and how to fix it in one line, and exit with code 2.
"""

from __future__ import annotations

import errno
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ffn_variants.errors import UserInputError
from harness.config import check_choices

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
INFO_FLAGS = {"--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion",
              "-sc"}  # fmt: skip
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
        raise UserInputError(f"cannot parse the command line: {first_line(e)}") from None
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


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def explain(e: BaseException) -> str:
    """A one-line account of a composition error, with the fix."""
    if isinstance(e, MissingConfigException) and e.missing_cfg_file:
        group, _, name = e.missing_cfg_file.rpartition("/")
        known = ", ".join(e.options or [])
        if group:
            return f"unknown {group} '{name}'; known: {known} (files in configs/{group}/)"
        return f"config '{name}' not found"
    cause = e
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        message = first_line(cause)
        if "Missing mandatory value" in message:
            return f"{key} must be set: add {key}=... to the command line"
        where = f" (key {key})" if key and key not in message else ""
        return f"bad config: {message}{where}; see the keys with: python train.py --cfg job"
    return f"bad config: {first_line(e)}"


def compose_checked(overrides: list[str]) -> DictConfig:
    """Compose configs/train.yaml with `overrides`, resolving every value; UserInputError if bad."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        check_choices(cfg)
        return cfg
    except (HydraException, OmegaConfBaseException) as e:
        raise UserInputError(explain(e)) from None
    finally:
        GlobalHydra.instance().clear()


def check_output_dir(argv: list[str]) -> None:
    """UserInputError if the run's output dir cannot be created: before Hydra tries and fails."""
    multirun = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    value = next(
        (a.split("=", 1)[1] for a in argv if a.startswith(key + "=")),
        "multirun" if multirun else "outputs",
    )
    path = Path(value.split("${")[0] or ".").absolute()  # the part fixed before interpolations
    existing = path
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


def check_command_line(argv: list[str]) -> None:
    """Compose each distinct choice on the command line; UserInputError on the first bad one."""
    for overrides in override_sets(user_overrides(argv)):
        compose_checked(overrides)
    if not INFO_FLAGS & set(argv):  # those print and exit: nothing is written
        check_output_dir(argv)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
