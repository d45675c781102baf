"""Argument checks shared by the public API (one idiom, one message format)."""
from __future__ import annotations

import numbers
from typing import Optional


def check_int(name: str, value, low: Optional[int] = 0, high: Optional[int] = None,
              span: Optional[str] = None, error: type = ValueError) -> int:
    """``value`` as an int, or ``error`` naming ``name`` if it is not an integer
    (``bool`` is refused) or lies outside ``[low, high)`` (None: unbounded).

    ``span`` replaces the default wording of the range in the message
    (" >= low" or " in [low, high)")."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Integral)
    if ok and ((low is not None and value < low) or (high is not None and value >= high)):
        ok = False
    if not ok:
        if span is None:
            if high is not None:
                span = f" in [{low}, {high})"
            elif low is not None:
                span = f" >= {low}"
            else:
                span = ""
        raise error(f"{name} must be an int{span}, got {value!r}")
    return int(value)
