"""A number for a console line or a table cell: n/a when it is missing or not finite."""

from __future__ import annotations

import math


def or_na(value: float | None, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)
