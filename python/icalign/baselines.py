"""Per-task baselines, computed in C (OpenMP over task x t).

Each baseline answers at t from exactly what the transformer sees at example
t: examples 0..t-1 with their shown rewards. Results are (B, len(t_values), d).
Definitions: docs/math.md, section "Baselines".
"""
from __future__ import annotations

from dataclasses import dataclass
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
                lr: float = 0.1, seed: int = 0, objective: str = "pl",
                reward: str = "cosine") -> np.ndarray:
    """Gradient descent on an alignment objective, per task and per t.

    A bias-free linear map W (d x d), initialised U(-1/sqrt d, 1/sqrt d), is
    fitted by Adam (``lr``, ``steps``) on the objective of x W against the t
    examples; the answer is x W. The default objective, Plackett-Luce with
    cosine reward, is the published baseline.

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
    objective : {'pl', 'bt'}, default 'pl'
        Plackett-Luce or Bradley-Terry, as in ``Transformer.step``.
    reward : {'cosine', 'neg_sq'}, default 'cosine'
        Policy reward scoring x W against each response.

    Returns
    -------
    numpy.ndarray, shape (B, len(t_values), d), float32

    Raises
    ------
    ValueError
        If ``t_values`` is empty or out of range, ``steps`` < 0, ``lr`` is
        not a finite number > 0, or the objective or reward is unknown.
    FloatingPointError
        If a fit diverges (too large an ``lr``) so that a prediction is not
        finite; the message names the task and t.

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
    return _core.gd_baseline(batch.xs, batch.ys, batch.rs, t_list, steps=steps, lr=lr, seed=seed,
                             objective=objective, reward=reward)


@dataclass(frozen=True)
class SurrogateOptimum:
    """What :func:`surrogate_optimum` returns.

    Attributes
    ----------
    pred : numpy.ndarray, shape (B, len(t_values), d), float32
        The minimiser found (the last iterate where not converged).
    grad_norm : numpy.ndarray, shape (B, len(t_values)), float32
        The scale-free gradient of log L there (see :func:`surrogate_optimum`).
    steps : numpy.ndarray, shape (B, len(t_values)), int32
        Adam updates made.
    converged : numpy.ndarray, shape (B, len(t_values)), bool
        ``grad_norm <= tol``.
    tol : float
    max_steps : int

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(4, seed=0, reward_noise=0.5)
    >>> opt = ica.surrogate_optimum(b, [5, 15], objective="bt", reward="neg_sq")
    >>> opt.converged.shape, opt.converged_fraction.shape
    ((4, 2), (2,))
    """

    pred: np.ndarray
    grad_norm: np.ndarray
    steps: np.ndarray
    converged: np.ndarray
    tol: float
    max_steps: int

    @property
    def converged_fraction(self) -> np.ndarray:
        """(len(t_values),) fraction of tasks whose minimisation converged, per t."""
        return self.converged.mean(axis=0)


def surrogate_optimum(batch: TaskBatch, t_values: Iterable[int] = DEFAULT_T,
                      objective: str = "pl", reward: str = "cosine", max_steps: int = 2000,
                      lr: float = 0.02, tol: float = 1e-6) -> SurrogateOptimum:
    """The prediction that minimises an alignment objective over the t examples.

    Per task and per t, the objective of one prediction against examples
    0..t-1 (ranked by shown reward, best first, as in training) is minimised
    directly over the prediction, with no model in between: the best that any
    learner of that objective can do from those examples.

    Parameters
    ----------
    batch : TaskBatch
        The tasks; only responses and shown rewards are used.
    t_values : iterable of int, default 2..15
        Numbers of examples, each in [1, N].
    objective : {'pl', 'bt'}, default 'pl'
        Plackett-Luce or Bradley-Terry.
    reward : {'cosine', 'neg_sq'}, default 'cosine'
        Policy reward scoring the prediction against each response.
    max_steps : int, default 2000
        Cap on Adam updates per task and t (>= 0).
    lr : float, default 0.02
        Adam step size for u = yhat / S, S the RMS length of the t responses.
    tol : float, default 1e-6
        Convergence threshold on the scale-free gradient of log L (Notes).

    Returns
    -------
    SurrogateOptimum
        ``pred`` with ``grad_norm``, ``steps`` and ``converged`` per task and
        t. Where ``converged`` is False the cap came first: ``pred`` is then
        the last iterate, returned and flagged, never dropped.

    Raises
    ------
    ValueError
        If ``t_values`` is empty or out of range, the objective or reward is
        unknown, ``max_steps`` < 0, ``lr`` is not a finite number > 0 or
        ``tol`` not a finite number >= 0.
    FloatingPointError
        If Adam diverges (too large an ``lr``) so that a minimiser is not
        finite; the message names the task and t.

    Notes
    -----
    *Convergence.* Before every update, ``R |dL/dyhat| / L`` is computed, with
    ``R = |yhat|`` for the cosine reward (whose objective ignores the length
    of the prediction) and ``R = S`` for neg_sq: the gradient of log L in a
    scale-free variable. A task stops at the first iterate where it is at
    most ``tol``, or after ``max_steps`` updates; ``grad_norm`` is its final
    value. Where the objective only approaches its infimum at infinity
    (L -> 0 along a direction that orders every pair as the ranking does),
    this ratio does not vanish, so such tasks reach the cap and are reported
    unconverged rather than stopped at an arbitrary point.

    *Optimiser.* Adam (beta 0.9/0.999, eps 1e-8) with one second-moment
    estimate for the whole vector, so every step is a multiple of the running
    mean of gradients: the answer does not depend on the coordinate system
    and the iterates stay in the span of the start and the gradients.

    *neg_sq.* ``-|yhat - y_i|^2 + |yhat - y_j|^2 = 2 yhat.(y_i - y_j) - |y_i|^2
    + |y_j|^2``: the objective is convex and depends on the prediction only
    through its projections on the response differences. The start is the
    mean response, so the answer is the minimiser within the affine hull of
    the responses. The reward is not scale-free: score gaps grow with the
    square of the data's scale. On the synthetic task all response differences
    are parallel to y* - eps; when the shown ranking orders every pair along
    it (always, with exact rewards) the objective decreases without bound
    along that line and the cap is reached.

    *cosine.* The objective is not convex. The start is the lowest-loss
    candidate among the mean response, the responses and their negatives.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(8, seed=0)
    >>> opt = ica.surrogate_optimum(b, [2, 15], objective="pl", reward="cosine")
    >>> opt.pred.shape, bool(opt.converged.all())
    ((8, 2, 5), True)
    >>> exact = ica.surrogate_optimum(b, [15], reward="neg_sq", max_steps=100)
    >>> exact.converged_fraction.tolist()  # exact rewards: no finite minimiser
    [0.0]
    """
    _check_batch(batch)
    pred, grad_norm, steps = _core.surrogate_optimum(
        batch.ys, batch.rs, _t_list(t_values), objective=objective, reward=reward,
        max_steps=int(max_steps), lr=float(lr), tol=float(tol))
    return SurrogateOptimum(pred, grad_norm, steps, grad_norm <= np.float32(tol), float(tol),
                            int(max_steps))


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
    FloatingPointError
        If an answer overflows float32 (responses near its limit); the
        message names the task and t.

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
