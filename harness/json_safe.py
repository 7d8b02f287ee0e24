"""One policy for values JSON cannot hold: a NaN or an infinity becomes null.

Used by every file and record the harness writes (metrics.jsonl, summary.json, the report's
summary.json and CSV, W&B tables), so a reader meets one convention: null is "no finite value".
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(x: Any) -> Any:
    """`x` with every non-finite float (in dicts, lists and tuples too) replaced by None."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x


def dumps(x: Any, **kwargs: Any) -> str:
    """json.dumps of json_safe(x); strict JSON (a non-finite value left over is an error)."""
    return json.dumps(json_safe(x), allow_nan=False, **kwargs)
