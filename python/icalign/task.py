"""The synthetic task: mixed linear alignment (docs/math.md, section "The task")."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from ._validation import check_float, check_int


@dataclass(frozen=True)
class TaskBatch:
    """A batch of alignment tasks, as ``AlignmentTask.sample`` returns it.

    Attributes
    ----------
    xs : numpy.ndarray, shape (B, N, d), float32
        Queries (the same x repeated for every example of a task).
    ys : numpy.ndarray, shape (B, N, d), float32
        Responses y_i = r_i y* + (1 - r_i) eps.
    rs : numpy.ndarray, shape (B, N), float32
        Rewards shown to models and baselines (noisy when reward_noise > 0).
    rs_true : numpy.ndarray, shape (B, N), float32
        The true mixing weights r_i.
    ystar, eps : numpy.ndarray, shape (B, d), float32
        The right answer x W* and the distractor x W_eps (never shown).
    seed, offset : int
        Where the batch was drawn: task i is stream ``offset + i`` of ``seed``.
    reward_noise : float
        The probability p with which a shown reward was replaced.

    Examples
    --------
    >>> import icalign as ica
    >>> b = ica.AlignmentTask(n_dims=5, n_points=20).sample(8, seed=0)
    >>> b.batch_size, b.n_points, b.n_dims
    (8, 20, 5)
    >>> b[:2].ys.shape
    (2, 20, 5)
    """

    xs: np.ndarray
    ys: np.ndarray
    rs: np.ndarray
    rs_true: np.ndarray
    ystar: np.ndarray
    eps: np.ndarray
    seed: int
    offset: int
    reward_noise: float

    @property
    def batch_size(self) -> int:
        """Number of tasks B."""
        return self.xs.shape[0]

    @property
    def n_points(self) -> int:
        """Examples per task N."""
        return self.xs.shape[1]

    @property
    def n_dims(self) -> int:
        """Width d of queries and responses."""
        return self.xs.shape[2]

    def __getitem__(self, index) -> "TaskBatch":
        """Select tasks (rows), e.g. ``batch[:16]`` or ``batch[[0, 3]]``.

        Parameters
        ----------
        index : slice, int or array_like of int or bool
            Rows to keep (an int keeps one row as a batch of one).

        Returns
        -------
        TaskBatch
            Contiguous copies of the selected rows, with the same seed,
            offset and reward noise.
        """
        if not isinstance(index, slice):
            index = np.atleast_1d(np.asarray(index))
        pick = lambda a: np.ascontiguousarray(a[index])  # noqa: E731
        return TaskBatch(pick(self.xs), pick(self.ys), pick(self.rs), pick(self.rs_true),
                         pick(self.ystar), pick(self.eps), self.seed, self.offset,
                         self.reward_noise)


class AlignmentTask:
    """Sampler of mixed linear alignment tasks (d dims, N examples each).

    The task and its reward noise are defined in docs/math.md, section "The
    task". Sequence i of ``sample(batch_size, seed, offset=o)`` is drawn from
    the counter-based stream (seed, o + i) alone: the same task whatever the
    batch size, the split into batches or the thread count. The noise coins
    are drawn whatever ``reward_noise`` is, so the same seed gives the same
    tasks (x, W*, W_eps, true rewards) at every noise level; only the shown
    rewards differ.

    Parameters
    ----------
    n_dims : int, default 5
        Width d of queries and responses.
    n_points : int, default 20
        Examples N per task.

    Raises
    ------
    ValueError
        If a size is not an int >= 1.

    Examples
    --------
    >>> import numpy as np
    >>> import icalign as ica
    >>> task = ica.AlignmentTask(n_dims=5, n_points=20)
    >>> b = task.sample(4, seed=0)
    >>> r = b.rs_true[..., None]
    >>> bool(np.allclose(b.ys, r * b.ystar[:, None] + (1 - r) * b.eps[:, None], atol=1e-5))
    True

    Splitting a batch does not change its tasks:

    >>> bool((task.sample(2, seed=0, offset=2).ys == b.ys[2:]).all())
    True
    """

    def __init__(self, n_dims: int = 5, n_points: int = 20):
        for name, value in (("n_dims", n_dims), ("n_points", n_points)):
            check_int(f"AlignmentTask {name}", value, 1, 2**31, span=" in [1, 2**31 - 1]")
        self.n_dims = int(n_dims)
        self.n_points = int(n_points)

    def sample(self, batch_size: int, seed: int = 0, reward_noise: float = 0.0,
               offset: int = 0) -> TaskBatch:
        """Draw ``batch_size`` tasks.

        Parameters
        ----------
        batch_size : int
            Number of tasks B, in [1, 2**31 - 1].
        seed : int, default 0
            Key of the random streams, in [0, 2**64). Seeds at and above
            2**40 are reserved for evaluation sets (``train`` refuses them).
        reward_noise : float, default 0.0
            Probability p in [0, 1] with which each shown reward is replaced
            by a fresh U(0, 1) draw (a critic of quality 1 - p).
        offset : int, default 0
            Task i comes from stream ``offset + i``, in [0, 2**64).

        Returns
        -------
        TaskBatch

        Raises
        ------
        ValueError
            If an argument is outside its range or not an int.

        Examples
        --------
        >>> import icalign as ica
        >>> task = ica.AlignmentTask()
        >>> exact, noisy = task.sample(64, seed=1), task.sample(64, seed=1, reward_noise=0.5)
        >>> bool((exact.ys == noisy.ys).all()), bool((exact.rs == exact.rs_true).all())
        (True, True)
        >>> 0.3 < float((noisy.rs != noisy.rs_true).mean()) < 0.7
        True
        """
        check_int("batch_size", batch_size, 1, 2**31, span=" in [1, 2**31 - 1]")
        reward_noise = check_float("reward_noise", reward_noise, 0.0, 1.0)
        for name, value in (("seed", seed), ("offset", offset)):
            check_int(name, value, 0, 2**64, span=" in [0, 2**64)")
        arrays = _core.sample_tasks(int(batch_size), self.n_points, self.n_dims, int(seed),
                                    int(offset), float(reward_noise))
        return TaskBatch(*arrays, seed=int(seed), offset=int(offset),
                         reward_noise=float(reward_noise))

    def __repr__(self) -> str:
        return f"AlignmentTask(n_dims={self.n_dims}, n_points={self.n_points})"
