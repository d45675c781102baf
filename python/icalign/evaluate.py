"""Normalized error and error curves (``docs/math.md``, "Metrics")."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ._validation import check_int
from .baselines import DEFAULT_T, SIMPLE_BASELINES, gd_baseline, simple_baseline
from .task import TaskBatch

COS_EPS = 1e-8

# Evaluation sets draw from seeds at and above this value; ``train`` refuses
# them, so an evaluation task can never be a training task.
EVAL_SEED_BASE = 2 ** 40


def normalized_error(pred, ystar) -> np.ndarray:
    """1 - cos(pred, y*) elementwise over the last axis (0 perfect, ~1 chance).

    ``pred`` (..., d); ``ystar`` (B, d) broadcasts against (B, T, d). Norms are
    clamped below at 1e-8, as in the cosine policy reward.
    """
    pred = np.asarray(pred, dtype=np.float64)
    ystar = np.asarray(ystar, dtype=np.float64)
    if pred.shape[-1] != ystar.shape[-1]:
        raise ValueError(f"pred (shape {pred.shape}) and ystar (shape {ystar.shape}) must "
                         f"share the last axis d")
    while ystar.ndim < pred.ndim:
        ystar = ystar[:, None, ...] if ystar.ndim >= 2 else ystar[None]
    dot = np.sum(pred * ystar, axis=-1)
    norms = (np.maximum(np.linalg.norm(pred, axis=-1), COS_EPS)
             * np.maximum(np.linalg.norm(ystar, axis=-1), COS_EPS))
    return 1.0 - dot / norms


def transformer_predictions(model, batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T):
    """(B, len(t), d): the model's prediction at example t, which sees t examples."""
    t_values = [int(t) for t in t_values]
    n = max(t_values) + 1
    if n > model.config.n_points:
        raise ValueError(f"t up to {n - 1} needs n_points >= {n}; the model has "
                         f"{model.config.n_points}")
    pred = model.predict(batch.xs[:, :n], batch.ys[:, :n], batch.rs[:, :n])
    return pred[:, t_values]


def error_curves(batch: TaskBatch, model=None, t_values: Iterable[int] = DEFAULT_T,
                 baselines: Iterable[str] = ("GD",) + SIMPLE_BASELINES, gd_steps: int = 50,
                 gd_lr: float = 0.1, seed: int = 0) -> dict[str, list[float]]:
    """Mean normalized error per t for the transformer ('TF', if given) and each
    named baseline ('GD', 'mean', 'best', 'weighted', 'oracle')."""
    t_values = [int(t) for t in t_values]
    curves = {}
    if model is not None:
        curves["TF"] = normalized_error(transformer_predictions(model, batch, t_values),
                                        batch.ystar).mean(axis=0).tolist()
    for name in baselines:
        if name == "GD":
            pred = gd_baseline(batch, t_values, steps=gd_steps, lr=gd_lr, seed=seed)
        elif name in SIMPLE_BASELINES:
            pred = simple_baseline(name, batch, t_values)
        else:
            raise ValueError(f"unknown baseline {name!r}; expected 'GD' or one of "
                             f"{SIMPLE_BASELINES}")
        curves[name] = normalized_error(pred, batch.ystar).mean(axis=0).tolist()
    return curves


def evaluation_set(task, size: int = 2000, seed: int = 0, reward_noise: float = 0.0) -> TaskBatch:
    """A fixed evaluation set: ``size`` tasks from seed ``EVAL_SEED_BASE + seed``,
    a stream that training never uses. The true tasks (x, W*, W_eps, true
    rewards) are the same at every ``reward_noise``; only the shown rewards
    differ, so curves at different p compare like with like."""
    seed = check_int("seed", seed, 0)
    return task.sample(int(size), seed=EVAL_SEED_BASE + seed, reward_noise=reward_noise)
