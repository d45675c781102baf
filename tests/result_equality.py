"""Comparing two runs' results: the numbers of their JSON and their checkpoints, which
must be identical whatever executor ran them (wall-clock fields aside)."""
import numpy as np

import icalign as ica

WALL_CLOCK = ("seconds", "train_seconds", "timing", "version")


def without_wall_clock(value):
    """A result (nested dicts and lists) without its wall-clock fields and version."""
    if isinstance(value, dict):
        return {k: without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [without_wall_clock(v) for v in value]
    return value


def checkpoint_arrays(path):
    """A checkpoint's arrays (parameters, Adam moments, losses) and its step."""
    ck = ica.load_checkpoint(path)
    out = {"losses": ck["losses"], "adam_m": ck["optimizer"]["adam_m"],
           "adam_v": ck["optimizer"]["adam_v"]}
    out.update({"param/" + k: v for k, v in ck["state_dict"].items()})
    return out, ck["step"]


def assert_same_checkpoint(a, b):
    (xa, sa), (xb, sb) = checkpoint_arrays(a), checkpoint_arrays(b)
    assert sa == sb and sorted(xa) == sorted(xb)
    for k in xa:
        assert np.array_equal(xa[k], xb[k]), k
