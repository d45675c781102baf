"""Per-task baselines of SPEC section 5, computed in C (OpenMP over task x t).

Each baseline answers at t from exactly what the transformer sees at example
t: examples 0..t-1 with their shown rewards. Results are (B, len(t_values), d).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from . import _core
from .task import TaskBatch

DEFAULT_T = tuple(range(2, 16))
SIMPLE_BASELINES = ("mean", "best", "weighted", "oracle")


def _t_list(t_values: Iterable[int]) -> list[int]:
    values = [int(t) for t in t_values]
    if not values:
        raise ValueError("t_values is empty")
    return values


def gd_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T, steps: int = 50,
                lr: float = 0.1, seed: int = 0) -> np.ndarray:
    """Gradient descent on the PL loss: per task and per t, a bias-free linear map
    W (d x d), init U(-1/sqrt d, 1/sqrt d), fitted by Adam (lr, steps) on the PL
    loss with cosine reward over the t examples; the answer is x W."""
    return _core.gd_baseline(batch.xs, batch.ys, batch.rs, _t_list(t_values), steps=int(steps),
                             lr=float(lr), seed=int(seed))


def simple_baseline(kind: str, batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T,
                    temperature: float = 1.0) -> np.ndarray:
    """'mean' response, 'best'-rewarded response (first on ties), reward-softmax
    'weighted' mean (weights softmax(r / temperature)), or the task optimum
    'oracle': the least-squares y* of y_i = r_i y* + (1 - r_i) eps on the shown
    rewards (exact from two examples when rewards are exact)."""
    return _core.simple_baseline(batch.ys, batch.rs, _t_list(t_values), kind,
                                 temperature=float(temperature))


def mean_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T) -> np.ndarray:
    return simple_baseline("mean", batch, t_values)


def best_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T) -> np.ndarray:
    return simple_baseline("best", batch, t_values)


def weighted_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T,
                      temperature: float = 1.0) -> np.ndarray:
    return simple_baseline("weighted", batch, t_values, temperature)


def oracle_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T) -> np.ndarray:
    return simple_baseline("oracle", batch, t_values)
