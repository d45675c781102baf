"""Alignment losses over whole sequences (SPEC section 3), computed in C."""
from __future__ import annotations

import numpy as np

from . import _core


def pl_loss(pred, ys, rs, reward: str = "cosine") -> tuple[float, np.ndarray]:
    """Plackett-Luce training objective and its exact gradient.

    For each sequence and each n = 2..N-1, the prediction ``pred[:, n]`` is
    scored against the first n (response, shown reward) pairs ranked best first;
    the loss is the mean over n, then over the batch. Returns
    ``(loss, dpred)`` with ``dpred`` shaped like ``pred`` (B, N, d).
    """
    return _core.sequence_loss(pred, ys, rs, objective="pl", reward=reward)


def bt_loss(pred, ys, rs, reward: str = "cosine") -> tuple[float, np.ndarray]:
    """Bradley-Terry training objective (mean over ordered pairs) and its gradient."""
    return _core.sequence_loss(pred, ys, rs, objective="bt", reward=reward)


def sequence_loss(pred, ys, rs, objective: str = "pl", reward: str = "cosine"):
    """``pl_loss`` or ``bt_loss`` chosen by name ('pl' or 'bt')."""
    return _core.sequence_loss(pred, ys, rs, objective=objective, reward=reward)
