"""Argument checks shared by the public API (one idiom, one message format)."""
from __future__ import annotations

import math
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


def check_float(name: str, value, low: float = -math.inf, high: float = math.inf,
                low_open: bool = False) -> float:
    """A finite real number (int or float, not bool) in [low, high] (or (low, high])."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high:
        if math.isinf(high):
            span = "" if math.isinf(low) else f" {'>' if low_open else '>='} {low:g}"
        else:
            span = f" in {'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a finite number{span}, got {value!r}")
    return value


def check_positive_float32(name: str, value) -> float:
    """A real number > 0 that stays finite and non-zero in float32 (the C core's
    type): 1e-50 would round to 0 there, 1e39 to inf."""
    value = check_float(name, value, 0.0, low_open=True)
    if not 1.401298464324817e-45 <= value <= 3.4028234663852886e+38:
        raise ValueError(f"{name} must be a number > 0 that float32 holds (about 1.4e-45 "
                         f"to 3.4e38), got {value!r}")
    return value


def check_str(name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r} ({type(value).__name__})")
    return value


def real_array(name: str, value, contiguous: bool = True):
    """``value`` as a float64 array, C-contiguous unless ``contiguous`` is False (then
    in its own layout, copied only to change the dtype): TypeError naming ``name``
    unless its dtype is real (bool, int, float), ValueError naming the first NaN or
    infinity (in C order) and its flat index."""
    import numpy as np
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - e.g. ragged nested lists
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {arr.dtype}; expected real numbers (float, int "
                        f"or bool)")
    # C order whatever the input's layout: numpy's reductions then run in the same
    # order, so a Fortran-ordered or strided view gives the same bits
    arr = (np.ascontiguousarray if contiguous else np.asarray)(arr, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(np.argmin(finite.ravel()))  # the first False
        # the C core's wording (ica_check_finite), so that a NaN reads the same
        # whichever entry point it reaches
        raise ValueError(f"{name} holds a non-finite value ({arr.flat[bad]:g}) at flat "
                         f"index {bad}")
    return arr
