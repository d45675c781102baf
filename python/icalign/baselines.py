"""Per-task baselines, computed in C (OpenMP over task x t).

Each baseline answers at t from exactly what the transformer sees at example
t: examples 0..t-1 with their shown rewards. Results are (B, len(t_values), d).
Definitions: docs/math.md, section "Baselines".
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from . import _core
from ._validation import check_int, check_positive_float32, check_str
from .task import TaskBatch

DEFAULT_T = tuple(range(2, 16))
SIMPLE_BASELINES = ("mean", "best", "weighted", "oracle")


def _t_list(t_values: Iterable[int]) -> list[int]:
    if isinstance(t_values, (str, bytes)) or not isinstance(t_values, Iterable):
        raise TypeError(f"t_values must be an iterable of ints, e.g. range(2, 16), got "
                        f"{type(t_values).__name__}")
    values = [check_int(f"t_values[{i}]", t, 1) for i, t in enumerate(t_values)]
    if not values:
        raise ValueError("t_values is empty")
    return values


def _check_batch(batch) -> None:
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be an icalign.TaskBatch, got {type(batch).__name__}")


def gd_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T, steps: int = 50,
                lr: float = 0.1, seed: int = 0) -> np.ndarray:
    """Gradient descent on the PL loss, per task and per t.

    A bias-free linear map W (d x d), initialised U(-1/sqrt d, 1/sqrt d), is
    fitted by Adam (``lr``, ``steps``) on the Plackett-Luce loss with cosine
    reward of x W against the t examples; the answer is x W.

    Parameters
    ----------
    batch : TaskBatch
        The tasks; GD sees their queries, responses and shown rewards.
    t_values : iterable of int, default 2..15
        Numbers of examples, each in [1, N].
    steps : int, default 50
        Adam steps (>= 0; 0 returns x W at initialisation).
    lr : float, default 0.1
        Adam learning rate (> 0).
    seed : int, default 0
        Seed of the initialisations (each (task, t) has its own stream).

    Returns
    -------
    numpy.ndarray, shape (B, len(t_values), d), float32

    Raises
    ------
    ValueError
        If ``t_values`` is empty or out of range, ``steps`` < 0 or ``lr`` is
        not a finite number > 0.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(64, seed=0)
    >>> gd = ica.gd_baseline(b, t_values=[2, 15])
    >>> gd.shape
    (64, 2, 5)
    >>> err = ica.normalized_error(gd, b.ystar).mean(axis=0)
    >>> bool(err[1] < err[0] < 1.0)
    True
    """
    _check_batch(batch)
    t_list = _t_list(t_values)
    steps = check_int("steps", steps, 0, 2**31, span=" in [0, 2**31 - 1]")
    lr = check_positive_float32("lr", lr)
    seed = check_int("seed", seed, 0, 2**64, span=" in [0, 2**64)")
    return _core.gd_baseline(batch.xs, batch.ys, batch.rs, t_list, steps=steps, lr=lr, seed=seed)


def simple_baseline(kind: str, batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T,
                    temperature: float = 1.0) -> np.ndarray:
    """A baseline without parameters, chosen by name.

    Parameters
    ----------
    kind : {'mean', 'best', 'weighted', 'oracle'}
        'mean': the mean response; 'best': the response with the highest
        shown reward (the first on ties); 'weighted': the mean with weights
        softmax(r / temperature); 'oracle', the task optimum: the
        least-squares y* of y_i = r_i y* + (1 - r_i) eps on the shown rewards
        (exact from two examples when rewards are exact).
    batch : TaskBatch
        The tasks; only responses and shown rewards are used.
    t_values : iterable of int, default 2..15
        Numbers of examples, each in [1, N].
    temperature : float, default 1.0
        Softmax temperature of 'weighted' (finite, > 0).

    Returns
    -------
    numpy.ndarray
        float32, shape (B, len(t_values), d): the answer per task and t.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, ``t_values`` is empty or out of range, or the
        temperature is invalid.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(16, seed=0)
    >>> mean = ica.simple_baseline("mean", b, t_values=[3])
    >>> bool(abs(mean[:, 0] - b.ys[:, :3].mean(axis=1)).max() < 1e-5)
    True
    >>> best = ica.simple_baseline("best", b, t_values=[3])[:, 0]
    >>> i = b.rs[:, :3].argmax(axis=1)
    >>> bool((best == b.ys[range(16), i]).all())
    True
    >>> ica.simple_baseline("median", b)
    Traceback (most recent call last):
        ...
    ValueError: kind must be 'mean', 'best', 'weighted' or 'oracle', got 'median'
    """
    check_str("kind", kind)
    _check_batch(batch)
    t_list = _t_list(t_values)
    temperature = check_positive_float32("temperature", temperature)
    return _core.simple_baseline(batch.ys, batch.rs, t_list, kind, temperature=temperature)


def mean_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T) -> np.ndarray:
    """``simple_baseline("mean", batch, t_values)``: the mean of the t responses."""
    return simple_baseline("mean", batch, t_values)


def best_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T) -> np.ndarray:
    """``simple_baseline("best", batch, t_values)``: the best-rewarded response."""
    return simple_baseline("best", batch, t_values)


def weighted_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T,
                      temperature: float = 1.0) -> np.ndarray:
    """``simple_baseline("weighted", ...)``: the reward-softmax-weighted mean."""
    return simple_baseline("weighted", batch, t_values, temperature)


def oracle_baseline(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T) -> np.ndarray:
    """``simple_baseline("oracle", batch, t_values)``: the task optimum.

    Examples
    --------
    With exact rewards two examples determine y*:

    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(16, seed=0)
    >>> err = ica.normalized_error(ica.oracle_baseline(b, [2, 15]), b.ystar)
    >>> bool(err.max() < 1e-4)
    True
    """
    return simple_baseline("oracle", batch, t_values)
