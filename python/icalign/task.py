"""The synthetic task of SPEC section 1: mixed linear alignment."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from ._validation import check_int


@dataclass(frozen=True)
class TaskBatch:
    """A batch of alignment tasks.

    xs, ys: (B, N, d) queries (the same x repeated) and responses;
    rs: (B, N) rewards shown to models and baselines (noisy when reward_noise > 0);
    rs_true: (B, N) the true mixing weights r_i of y_i = r_i y* + (1 - r_i) eps;
    ystar, eps: (B, d) the right answer x W* and the distractor x W_eps.
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
        return self.xs.shape[0]

    @property
    def n_points(self) -> int:
        return self.xs.shape[1]

    @property
    def n_dims(self) -> int:
        return self.xs.shape[2]

    def __getitem__(self, index) -> "TaskBatch":
        """Select tasks (rows), e.g. ``batch[:16]``."""
        if not isinstance(index, slice):
            index = np.atleast_1d(np.asarray(index))
        pick = lambda a: np.ascontiguousarray(a[index])  # noqa: E731
        return TaskBatch(pick(self.xs), pick(self.ys), pick(self.rs), pick(self.rs_true),
                         pick(self.ystar), pick(self.eps), self.seed, self.offset,
                         self.reward_noise)


class AlignmentTask:
    """Sampler of mixed linear alignment tasks (d dims, N examples each).

    Sequence i of ``sample(batch_size, seed, offset=o)`` is drawn from the
    counter-based stream (seed, o + i) alone: the same task whatever the batch
    size, the split into batches or the thread count. The noise coins are drawn
    whatever ``reward_noise`` is, so the same seed gives the same tasks (x, W*,
    W_eps, true rewards) at every noise level; only the shown rewards differ.
    """

    def __init__(self, n_dims: int = 5, n_points: int = 20):
        for name, value in (("n_dims", n_dims), ("n_points", n_points)):
            check_int(f"AlignmentTask {name}", value, 1)
        self.n_dims = int(n_dims)
        self.n_points = int(n_points)

    def sample(self, batch_size: int, seed: int = 0, reward_noise: float = 0.0,
               offset: int = 0) -> TaskBatch:
        """Draw ``batch_size`` tasks; with probability ``reward_noise`` each shown
        reward is replaced by a fresh U(0, 1) draw (a critic of quality 1 - p)."""
        check_int("batch_size", batch_size, 1, 2**31, span=" in [1, 2**31 - 1]")
        if not (0.0 <= float(reward_noise) <= 1.0):
            raise ValueError(f"reward_noise must lie in [0, 1], got {reward_noise!r}")
        for name, value in (("seed", seed), ("offset", offset)):
            check_int(name, value, 0, 2**64, span=" in [0, 2**64)")
        arrays = _core.sample_tasks(int(batch_size), self.n_points, self.n_dims, int(seed),
                                    int(offset), float(reward_noise))
        return TaskBatch(*arrays, seed=int(seed), offset=int(offset),
                         reward_noise=float(reward_noise))

    def __repr__(self) -> str:
        return f"AlignmentTask(n_dims={self.n_dims}, n_points={self.n_points})"
