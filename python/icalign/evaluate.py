"""Normalized error and error curves (``docs/math.md``, "Metrics")."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ._validation import check_int, real_array
from .baselines import (DEFAULT_T, SIMPLE_BASELINES, gd_baseline, simple_baseline,
                        surrogate_optimum)
from .task import TaskBatch

COS_EPS = 1e-8

# Evaluation sets draw from seeds at and above this value; ``train`` refuses
# them, so an evaluation task can never be a training task.
EVAL_SEED_BASE = 2 ** 40


def normalized_error(pred, ystar) -> np.ndarray:
    """1 - cos(pred, y*) over the last axis: 0 perfect, about 1 at chance, 2 opposite.

    The metric of docs/math.md, section "Metrics". It ignores the norm of
    ``pred``, which the cosine training objective leaves free.

    Parameters
    ----------
    pred : array_like, shape (..., d)
        Predictions, e.g. (B, d) or (B, T, d).
    ystar : array_like, shape (B, d) or the shape of ``pred``
        The right answers; a (B, d) ``ystar`` is compared with every
        prediction of its task along the middle axes of a (B, T, d) ``pred``.
        Norms are clamped below at 1e-8, as in the cosine policy reward.

    Returns
    -------
    numpy.ndarray, float64
        ``pred.shape[:-1]``: one error per prediction, in [0, 2].

    Raises
    ------
    ValueError
        If ``pred`` and ``ystar`` differ in the last axis d or in axes that
        do not broadcast, or either holds NaN or infinity.
    TypeError
        If either is not an array of real numbers.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(4, seed=0)
    >>> err = ica.normalized_error(b.ys, b.ystar)     # every response of every task
    >>> err.shape
    (4, 20)
    >>> bool(((err >= 0) & (err <= 2)).all())
    True
    >>> bool(abs(ica.normalized_error(3 * b.ystar, b.ystar)).max() < 1e-6)  # norm ignored
    True
    >>> ica.normalized_error(-b.ystar, b.ystar).round(6)
    array([2., 2., 2., 2.])
    """
    # NaN refused: it would come back as a NaN error, unnoticed in a mean over tasks.
    # In the arrays' own layout (it sets numpy's summation order), so that published
    # errors stay bit for bit those of earlier versions.
    pred = real_array("pred", pred, contiguous=False)
    ystar = real_array("ystar", ystar, contiguous=False)
    if pred.shape[-1] != ystar.shape[-1]:
        raise ValueError(f"pred (shape {pred.shape}) and ystar (shape {ystar.shape}) must "
                         f"share the last axis d")
    given = ystar.shape
    while ystar.ndim < pred.ndim:
        ystar = ystar[:, None, ...] if ystar.ndim >= 2 else ystar[None]
    try:
        np.broadcast_shapes(pred.shape, ystar.shape)
    except ValueError:
        # numpy's message names neither argument; every shape numpy broadcasts
        # is still accepted
        B, d = pred.shape[0], pred.shape[-1]
        expected = f"(B={B}, d={d})" + ("" if pred.ndim == 2 else f" or {pred.shape}")
        raise ValueError(f"ystar must have shape {expected} to match pred of shape "
                         f"{pred.shape}, got {given}") from None
    dot = np.sum(pred * ystar, axis=-1)
    norms = (np.maximum(np.linalg.norm(pred, axis=-1), COS_EPS)
             * np.maximum(np.linalg.norm(ystar, axis=-1), COS_EPS))
    return 1.0 - dot / norms


def transformer_predictions(model, batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T):
    """The model's predictions at the given numbers of examples.

    The prediction "at t" is the one read at x-token t, which has seen the
    examples 0..t-1 with their shown rewards (docs/math.md, section "Metrics");
    one forward pass over the first ``max(t_values) + 1`` examples gives all.

    Parameters
    ----------
    model : Transformer
        The model; with a causal one (the default) the prediction at t reads
        only the examples before it.
    batch : TaskBatch
        The tasks, with at least ``max(t_values) + 1`` examples each.
    t_values : iterable of int, default 2..15
        Numbers of examples, each in [0, ``model.config.n_points`` - 1].

    Returns
    -------
    numpy.ndarray
        float32, (B, len(t_values), d): each task's prediction at each t.

    Raises
    ------
    ValueError
        If a t needs more examples than ``model.config.n_points`` allows.

    Examples
    --------
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> b = ica.AlignmentTask().sample(4, seed=0)
    >>> pred = ica.transformer_predictions(model, b, t_values=[2, 15])
    >>> pred.shape
    (4, 2, 5)
    >>> full = model.predict(b.xs, b.ys, b.rs)     # the same values, read at x-tokens 2, 15
    >>> bool(abs(pred - full[:, [2, 15]]).max() < 1e-5)
    True
    >>> ica.transformer_predictions(model, b, t_values=[20])
    Traceback (most recent call last):
        ...
    ValueError: t up to 20 needs n_points >= 21; the model has 20
    """
    t_values = [int(t) for t in t_values]
    n = max(t_values) + 1
    if n > model.config.n_points:
        raise ValueError(f"t up to {n - 1} needs n_points >= {n}; the model has "
                         f"{model.config.n_points}")
    pred = model.predict(batch.xs[:, :n], batch.ys[:, :n], batch.rs[:, :n])
    return pred[:, t_values]


def task_errors(batch: TaskBatch, model=None, t_values: Iterable[int] = DEFAULT_T,
                baselines: Iterable[str] = ("GD",) + SIMPLE_BASELINES, gd_steps: int = 50,
                gd_lr: float = 0.1, seed: int = 0) -> dict[str, np.ndarray]:
    """Normalized error of every evaluation task, per method.

    The per-task values behind ``error_curves`` (docs/math.md, section
    "Metrics"): their mean over tasks is the curve, their spread gives the
    curve's standard error over tasks.

    Parameters
    ----------
    batch : TaskBatch
        The evaluation tasks (e.g. ``evaluation_set``).
    model : Transformer, optional
        If given, its errors are included under 'TF'.
    t_values : iterable of int, default 2..15
        Numbers of examples.
    baselines : iterable of str, default ('GD', 'mean', 'best', 'weighted', 'oracle')
        Baselines to include, by name.
    gd_steps, gd_lr, seed : int, float, int
        Adam steps, learning rate and seed of the 'GD' baseline.

    Returns
    -------
    dict of str to ndarray
        ``{'TF': (B, len(t)), 'GD': (B, len(t)), ...}`` float64 arrays.

    Raises
    ------
    ValueError
        If a baseline name is unknown.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(16, seed=0)
    >>> errors = ica.evaluate.task_errors(b, t_values=[2, 15], baselines=("mean",))
    >>> errors["mean"].shape
    (16, 2)
    """
    t_values = [int(t) for t in t_values]
    errors = {}
    if model is not None:
        errors["TF"] = normalized_error(transformer_predictions(model, batch, t_values),
                                        batch.ystar)
    for name in baselines:
        if name == "GD":
            pred = gd_baseline(batch, t_values, steps=gd_steps, lr=gd_lr, seed=seed)
        elif name in SIMPLE_BASELINES:
            pred = simple_baseline(name, batch, t_values)
        else:
            raise ValueError(f"unknown baseline {name!r}; expected 'GD' or one of "
                             f"{SIMPLE_BASELINES}")
        errors[name] = normalized_error(pred, batch.ystar)
    return errors


def error_curves(batch: TaskBatch, model=None, t_values: Iterable[int] = DEFAULT_T,
                 baselines: Iterable[str] = ("GD",) + SIMPLE_BASELINES, gd_steps: int = 50,
                 gd_lr: float = 0.1, seed: int = 0) -> dict[str, list[float]]:
    """Mean normalized error per t for the transformer and the baselines.

    The curves of docs/math.md, section "Metrics": for each method, the
    normalized error of its answer at each t, averaged over the tasks of
    ``batch``. The baselines are those of docs/math.md, section "Baselines".

    Parameters
    ----------
    batch : TaskBatch
        The evaluation tasks (e.g. ``evaluation_set``).
    model : Transformer, optional
        If given, its curve is included under 'TF'.
    t_values : iterable of int, default 2..15
        Numbers of examples.
    baselines : iterable of str, default ('GD', 'mean', 'best', 'weighted', 'oracle')
        Baselines to include, by name; an empty tuple gives only 'TF'.
    gd_steps, gd_lr, seed : int, float, int
        Adam steps, learning rate and seed of the 'GD' baseline
        (see ``gd_baseline``).

    Returns
    -------
    dict of str to list of float
        ``{'TF': [...], 'GD': [...], ...}``: one mean error per t, 'TF' first
        and the baselines in the order given.

    Raises
    ------
    ValueError
        If a baseline name is unknown (or the arguments of a baseline or the
        model are invalid).

    Examples
    --------
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> b = ica.AlignmentTask().sample(16, seed=0)
    >>> curves = ica.error_curves(b, model, t_values=[2, 15], baselines=("mean", "oracle"))
    >>> list(curves)
    ['TF', 'mean', 'oracle']
    >>> all(abs(e) < 1e-6 for e in curves["oracle"])   # two exact examples determine y*
    True
    >>> bool(curves["mean"][0] < curves["TF"][0])   # the untrained model is near chance
    True
    >>> ica.error_curves(b, baselines=("median",))
    Traceback (most recent call last):
        ...
    ValueError: unknown baseline 'median'; expected 'GD' or one of ('mean', 'best', 'weighted', 'oracle')
    """
    errors = task_errors(batch, model, t_values, baselines, gd_steps=gd_steps, gd_lr=gd_lr,
                         seed=seed)
    return {label: e.mean(axis=0).tolist() for label, e in errors.items()}


def optimum_errors(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T, objective: str = "pl",
                   reward: str = "cosine", max_steps: int = 2000):
    """Per-task normalized errors of an objective's surrogate optimum.

    Parameters
    ----------
    batch : TaskBatch
        The evaluation tasks.
    t_values : iterable of int, default 2..15
        Numbers of examples.
    objective, reward : str
        The objective (see ``surrogate_optimum``).
    max_steps : int, default 2000
        Cap on the minimisation's Adam updates.

    Returns
    -------
    errors : numpy.ndarray, shape (B, len(t_values)), float64
        1 - cos(optimum, y*) per task and t.
    converged : numpy.ndarray, shape (len(t_values),)
        Fraction of tasks whose minimisation converged, per t.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(32, seed=0)
    >>> err, conv = ica.optimum_errors(b, [2, 15])
    >>> err.shape, conv.tolist()
    ((32, 2), [1.0, 1.0])
    """
    opt = surrogate_optimum(batch, t_values, objective=objective, reward=reward,
                            max_steps=max_steps)
    return normalized_error(opt.pred, batch.ystar), opt.converged_fraction


def evaluation_set(task, size: int = 2000, seed: int = 0, reward_noise: float = 0.0) -> TaskBatch:
    """A fixed evaluation set, disjoint from every training batch.

    ``size`` tasks drawn from seed ``EVAL_SEED_BASE + seed`` (2**40 + seed), a
    stream that ``train`` refuses, so no evaluation task is ever a training
    task (docs/math.md, sections "Training" and "Metrics"). The true tasks
    (x, W*, W_eps, true rewards) are the same at every ``reward_noise``; only
    the shown rewards differ, so curves at different p compare like with
    like. The first n tasks do not depend on ``size``.

    Parameters
    ----------
    task : AlignmentTask
        The task family (d, N).
    size : int, default 2000
        Number of tasks.
    seed : int, default 0
        Which evaluation set (>= 0).
    reward_noise : float, default 0.0
        Probability p that a shown reward is replaced by a U(0, 1) draw.

    Returns
    -------
    TaskBatch
        Drawn at offset 0 of seed ``EVAL_SEED_BASE + seed``.

    Raises
    ------
    ValueError
        If ``seed`` is negative (or ``size`` or ``reward_noise`` is invalid).

    Examples
    --------
    >>> import icalign as ica
    >>> task = ica.AlignmentTask()
    >>> ev = ica.evaluation_set(task, size=8)
    >>> ev.batch_size, ev.seed == ica.EVAL_SEED_BASE
    (8, True)
    >>> noisy = ica.evaluation_set(task, size=8, reward_noise=0.5)
    >>> bool((noisy.ys == ev.ys).all()), bool((noisy.rs == ev.rs).all())
    (True, False)
    >>> bool((ica.evaluation_set(task, size=3).ys == ev.ys[:3]).all())
    True
    """
    seed = check_int("seed", seed, 0)
    return task.sample(int(size), seed=EVAL_SEED_BASE + seed, reward_noise=reward_noise)
