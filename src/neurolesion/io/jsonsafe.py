"""Values ready for strict JSON: every output's JSON must parse outside Python too."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(obj: Any) -> Any:
    """`obj` with non-finite floats (NaN, infinity) as None, numpy scalars as Python ones, keys as strings.

    Python's json writes NaN as the bare word ``NaN``, which parsers outside Python (a browser's
    ``JSON.parse``, jq) reject; write the result with ``json.dumps(..., allow_nan=False)``.

    Args:
        obj: nested dicts, lists and tuples of JSON-able values and numpy scalars.

    Returns:
        The same structure (lists for tuples) with the replacements made.

    Example:
        >>> json_safe({"nmi": float("nan"), "scores": (1.0, np.float32(2.5), float("inf")), 3: np.int64(4)})
        {'nmi': None, 'scores': [1.0, 2.5, None], '3': 4}
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
