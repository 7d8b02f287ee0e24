"""The error a user can fix: its message is one line that says what is wrong and how to fix it."""

from __future__ import annotations


class UserInputError(ValueError):
    """Bad config, data or paths. Entry points print the message alone and exit with code 2.

    A ValueError, so the config dataclasses' checks (which raise ValueError, as ffn_variants'
    own do) and this error are caught as one kind.
    """


def one_line(e: BaseException, limit: int = 300) -> str:
    """An exception as one short line, for messages that must stay on one line."""
    text = " ".join(str(e).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
