"""JSON-safe plain values: numpy to Python, tuples to lists, NaN and infinity to None.

JSON has no NaN or infinity (PostgreSQL refuses them in a JSON column, browsers refuse them in
``JSON.parse``), and ``torch.load(weights_only=True)`` refuses numpy scalars, so results and
artifacts pass through here before they are stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def to_plain(obj: Any) -> Any:
    """``obj`` as plain JSON-ready Python: mappings (string keys), lists, bools, ints, finite
    floats (NaN and infinity become None), numpy values as their Python equivalents."""
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_plain(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        return finite_or_none(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def finite_or_none(value: Any) -> float | None:
    """``float(value)``, or None when it is NaN or infinite; raises as ``float()`` does on
    anything that is not a number."""
    number = float(value)
    return number if math.isfinite(number) else None


def finite_list(values: Any) -> list[float | None]:
    """Each value of a sequence or array through ``finite_or_none``."""
    return [finite_or_none(v) for v in values]


def rounded(value: Any, digits: int = 4) -> Any:
    """A number (Python or numpy; a bool counts as 0 or 1) rounded to ``digits``, None when
    NaN or infinite; anything ``float()`` cannot read (a label, None) comes back as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            return value
    number = finite_or_none(value)
    return None if number is None else round(number, digits)
