"""The error a user can fix: its message is one line that says what is wrong and how to fix it."""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad config, data or paths. Entry points print the message alone and exit with code 2.

    A ValueError, so the config dataclasses' checks (which raise ValueError, as ffn_variants'
    own do) and this error are caught as one kind.
    """


def one_line(e: BaseException, limit: int = 300, typed: bool = True) -> str:
    """An exception as one short line: the first non-blank line of its message, prefixed with the
    exception's type unless `typed` is false; the type alone when the message is empty."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    if not text:
        return type(e).__name__
    return f"{type(e).__name__}: {text}" if typed else text
