"""Alignment losses over whole sequences, computed in C.

The losses, the sequence objective and the derivation of their gradients are in
docs/math.md, section "Losses and their gradients".
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._validation import check_str


def _call(pred, ys, rs, objective, reward):
    check_str("objective", objective)
    check_str("reward", reward)
    return _core.sequence_loss(pred, ys, rs, objective=objective, reward=reward)


def pl_loss(pred, ys, rs, reward: str = "cosine") -> tuple[float, np.ndarray]:
    """Plackett-Luce training objective and its exact gradient.

    For each sequence and each n = 2..N-1, the prediction ``pred[:, n]`` is
    scored against the first n (response, shown reward) pairs ranked best first;
    the loss is the mean over n, then over the batch.

    Parameters
    ----------
    pred : array_like, shape (B, N, d)
        Predictions, one per example (as ``Transformer.predict`` returns them).
    ys : array_like, shape (B, N, d)
        Responses.
    rs : array_like, shape (B, N) or (B, N, 1)
        Shown rewards; they rank the responses (ties: earlier example first).
    reward : {'cosine', 'neg_sq'}, default 'cosine'
        Policy reward: cos(pred, y) or -|pred - y|^2.

    Returns
    -------
    loss : float
    dpred : numpy.ndarray, shape (B, N, d), float32
        The gradient of ``loss`` with respect to ``pred``; rows n = 0 and 1
        are zero.

    Raises
    ------
    ValueError
        If N < 3, shapes disagree, an input is non-finite, ``reward`` is
        unknown or the loss is not finite.
    TypeError
        If an input is not real numeric.

    Examples
    --------
    >>> import numpy as np
    >>> import icalign as ica
    >>> b = ica.AlignmentTask(n_dims=5, n_points=6).sample(2, seed=0)
    >>> pred = np.random.default_rng(0).standard_normal(b.ys.shape).astype(np.float32)
    >>> loss, dpred = ica.pl_loss(pred, b.ys, b.rs)
    >>> dpred.shape, bool((dpred[:, :2] == 0).all())
    ((2, 6, 5), True)

    The gradient matches a central finite difference:

    >>> p = pred.astype(np.float64); h = 1e-2; p[1, 4, 2] += h
    >>> up = ica.pl_loss(p, b.ys, b.rs)[0]; p[1, 4, 2] -= 2 * h
    >>> down = ica.pl_loss(p, b.ys, b.rs)[0]
    >>> bool(abs((up - down) / (2 * h) - dpred[1, 4, 2]) < 1e-4)
    True
    """
    return _call(pred, ys, rs, "pl", reward)


def bt_loss(pred, ys, rs, reward: str = "cosine") -> tuple[float, np.ndarray]:
    """Bradley-Terry training objective and its exact gradient.

    As ``pl_loss``, with the loss of a prediction the mean over the ordered
    pairs of the ranking (i above j) of -log sigmoid(s_i - s_j).

    Parameters
    ----------
    pred, ys, rs, reward
        As for ``pl_loss``.

    Returns
    -------
    loss, dpred : float, numpy.ndarray
        As for ``pl_loss``.

    Raises
    ------
    ValueError, TypeError
        As for ``pl_loss``.

    Examples
    --------
    A prediction equal to the best response of every prefix gets a lower
    loss than one equal to the worst:

    >>> import numpy as np
    >>> import icalign as ica
    >>> b = ica.AlignmentTask(n_dims=5, n_points=6).sample(16, seed=0)
    >>> good = np.broadcast_to(b.ystar[:, None], b.ys.shape)
    >>> bool(ica.bt_loss(good, b.ys, b.rs)[0] < ica.bt_loss(-good, b.ys, b.rs)[0])
    True
    """
    return _call(pred, ys, rs, "bt", reward)


def sequence_loss(pred, ys, rs, objective: str = "pl", reward: str = "cosine"):
    """``pl_loss`` or ``bt_loss`` chosen by name.

    Parameters
    ----------
    pred, ys, rs, reward
        As for ``pl_loss``.
    objective : {'pl', 'bt'}, default 'pl'
        Plackett-Luce or Bradley-Terry.

    Returns
    -------
    tuple of (float, numpy.ndarray)
        The loss and its gradient with respect to ``pred``, as ``pl_loss``
        or ``bt_loss`` return them.

    Raises
    ------
    ValueError
        If ``objective`` is unknown, or as for ``pl_loss``.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask(n_dims=5, n_points=6).sample(2, seed=0)
    >>> ica.sequence_loss(b.ys, b.ys, b.rs, "bt")[0] == ica.bt_loss(b.ys, b.ys, b.rs)[0]
    True
    """
    return _call(pred, ys, rs, objective, reward)
