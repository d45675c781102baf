"""The self-correction loop (``docs/math.md``, "Critics and self-correction").

Self-correction as in-context alignment: the context holds k triplets
(x, y_i, r̂_i) of a task whose rewards r̂_i come from a *critic*
(``icalign.critics``); the trained transformer answers ŷ_0 at x-token k. One round:
the critic scores the latest answer, the triplet (x, ŷ, r̂) is appended at example
position k + round, and the model answers again at the next x-token.

Design decisions:

* **Rescaling.** The transformer is trained with the cosine policy reward, so the
  norm of its answer is arbitrary (it is whatever the read-out happens to give,
  often far from the norm of a task response). Every response the model ever saw
  in training lies on the segment between eps and y*, with norm comparable to
  them. Before an answer is appended, it is therefore rescaled (direction kept)
  to the mean norm of the k initial context responses of its task
  (``rescale="context"``, the default). This keeps the appended token in the
  input range the model was trained on and changes nothing that is measured:
  the error 1 - cos and the oracle critic are scale-free. ``rescale="none"``
  appends the raw answer (kept for comparison).
* **Grounding of the self-critic.** The initial k triplets take their rewards
  from the same critic as the appended answers. For the self-critic this means
  the reward head scores context response n from the triplets before it, whose
  rewards are its own earlier scores: nothing in the context is grounded in the
  truth, and since y* and eps have the same distribution, an ungrounded critic
  is at chance in expectation in this synthetic world. The loop therefore also
  accepts a separate ``context_critic``; the experiments report both ``self``
  (everything self-scored) and ``self (oracle context)`` (context scored by the
  oracle, the model's own answers by its reward head), which is the closer
  analogue of an LLM judging its own answer with knowledge it already has.
* **Noise.** Every critic draws from one ``numpy.random.default_rng(seed)`` per run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import stats
from ._validation import check_int, real_array
from .critics import (NORM_EPS, Critic, CriticInput, check_reference, make_critic,
                      oracle_rewards, reference_rewards)
from .evaluate import normalized_error
from .task import TaskBatch

_TIE_TOL = 1e-12


@dataclass
class SelfCorrection:
    """Everything one self-correction run built, for B tasks, k context triplets and R rounds.

    ``self_correct`` returns it; docs/math.md, section "Critics and
    self-correction", describes the loop.

    Attributes
    ----------
    k, rounds : int
        Context triplets k and rounds R.
    answers : numpy.ndarray, shape (B, R+1, d), float64
        Raw model answers ŷ_0..ŷ_R (ŷ_j read at x-token k + j).
    appended : numpy.ndarray, shape (B, R, d), float64
        The responses appended at positions k..k+R-1 (ŷ_0..ŷ_{R-1}, rescaled
        unless ``rescale='none'``).
    xs, ys : numpy.ndarray, shape (B, k+R, d), float32
        The full context built: the k task triplets, then the appended ones.
    rs : numpy.ndarray, shape (B, k+R), float32
        The rewards shown: the context critic's for the first k, the
        critic's for the appended answers.
    true_rewards : numpy.ndarray, shape (B, k+R), float64
        The true weights: the task's r_i for the context, the reference
        critic's score ('oracle' by default, or 'quality') for the appended
        answers.
    errors : numpy.ndarray, shape (B, R+1), float64
        1 - cos(ŷ_j, y*).
    critic, context_critic : str
        Labels of the critics.
    rescale, reference : str
        The ``self_correct`` arguments of the same names.
    oracle_appended : numpy.ndarray, shape (B, R), float64
        The oracle's scores of the appended answers (whatever the reference).
    info : dict
        Free-form extra information.

    Examples
    --------
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> b = ica.AlignmentTask().sample(8, seed=0)
    >>> res = ica.self_correct(model, b, "oracle", k=4, rounds=2)
    >>> res.answers.shape, res.appended.shape, res.rs.shape, res.errors.shape
    ((8, 3, 5), (8, 2, 5), (8, 6), (8, 3))
    >>> len(res.mean_errors()), res.gains().shape
    (3, (8,))
    >>> res.accuracy(positions="context").tolist()    # the oracle ranks task responses right
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """

    k: int
    rounds: int
    answers: np.ndarray
    appended: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    rs: np.ndarray
    true_rewards: np.ndarray
    errors: np.ndarray
    critic: str
    context_critic: str
    rescale: str
    reference: str = "oracle"
    oracle_appended: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def mean_errors(self) -> list[float]:
        """Mean error over the tasks per round 0..R (a list of R + 1 floats)."""
        return self.errors.mean(axis=0).tolist()

    def gains(self, rounds: int | None = None) -> np.ndarray:
        """Per-task gain error(ŷ_0) - error(ŷ_rounds) (default: after all rounds).

        Positive where self-correction helped. Returns a (B,) array; raises
        ValueError unless 0 <= ``rounds`` <= R.
        """
        r = self.rounds if rounds is None else int(rounds)
        if not 0 <= r <= self.rounds:
            raise ValueError(f"rounds must lie in [0, {self.rounds}], got {r}")
        return self.errors[:, 0] - self.errors[:, r]

    def oracle_at_one(self) -> float:
        """Fraction of the appended answers whose oracle reward is exactly 1, i.e. that lie
        at or beyond y* as seen from eps (the best mixing weight is clipped at the end of
        [0, 1]): for these the oracle cannot tell a better answer from a worse one."""
        if self.rounds == 0:
            return float("nan")
        return float(np.mean(self.oracle_appended >= 1.0 - 1e-9))

    def accuracy(self, rounds: int | None = None, positions: str = "all") -> np.ndarray:
        """Per-task pairwise critic accuracy (see ``pairwise_accuracy``).

        Parameters
        ----------
        rounds : int, optional
            Count the answers appended in the first ``rounds`` rounds
            (default: all R).
        positions : {'all', 'context', 'appended', 'answers'}, default 'all'
            'all': the k context responses and those answers; 'context': the
            context only; 'appended': the appended answers only; 'answers':
            the pairs with at least one appended answer (how well the critic
            places the model's answers among all responses).

        Returns
        -------
        numpy.ndarray, shape (B,), float64
            The critic's rewards ``rs`` against ``true_rewards``; NaN for a
            task without untied pairs.

        Raises
        ------
        ValueError
            If ``positions`` is unknown.
        """
        r = self.rounds if rounds is None else int(rounds)
        m = self.k + r
        if positions == "all":
            return pairwise_accuracy(self.rs[:, :m], self.true_rewards[:, :m])
        if positions == "context":
            return pairwise_accuracy(self.rs[:, :self.k], self.true_rewards[:, :self.k])
        if positions == "appended":
            return pairwise_accuracy(self.rs[:, self.k:m], self.true_rewards[:, self.k:m])
        if positions == "answers":
            idx = np.arange(m)
            pairs = (idx[:, None] >= self.k) | (idx[None, :] >= self.k)
            return pairwise_accuracy(self.rs[:, :m], self.true_rewards[:, :m], pairs)
        raise ValueError(f"positions must be 'all', 'context', 'appended' or 'answers', got "
                         f"{positions!r}")


def pairwise_accuracy(critic_rewards, true_rewards, pairs=None) -> np.ndarray:
    """Per-row fraction of pairs (i < j) that the critic orders like the true weights.

    The critic accuracy of docs/math.md, section "Critics and
    self-correction". Pairs whose true weights tie (within 1e-12) are left
    out; a critic tie counts 1/2.

    Parameters
    ----------
    critic_rewards, true_rewards : array_like, shape (B, M)
        The critic's scores and the true weights of M responses per row.
    pairs : array_like of bool, shape (M, M), optional
        Mask of the pairs (i, j), i < j, to count (default: all); entries on
        and below the diagonal are ignored.

    Returns
    -------
    numpy.ndarray, shape (B,), float64
        Accuracy in [0, 1] per row (0.5 at chance); NaN for a row without a
        pair to count.

    Raises
    ------
    ValueError
        If the two arrays are not both (B, M), or ``pairs`` is not (M, M).

    Examples
    --------
    >>> import icalign as ica
    >>> truth = [[0.2, 0.4, 0.6], [0.2, 0.4, 0.6]]
    >>> ica.pairwise_accuracy([[0.1, 0.5, 0.9], [0.9, 0.5, 0.1]], truth)
    array([1., 0.])
    >>> ica.pairwise_accuracy([[0.5, 0.5, 0.9]], [[0.2, 0.4, 0.6]]).round(4)  # a tie: 1/2
    array([0.8333])
    >>> ica.pairwise_accuracy([[0.1, 0.5]], [[0.3, 0.3]])     # no untied pair
    array([nan])
    """
    c = real_array("critic_rewards", critic_rewards)
    t = real_array("true_rewards", true_rewards)
    if c.shape != t.shape or c.ndim != 2:
        raise ValueError(f"critic and true rewards must both be (B, M), got {c.shape} and "
                         f"{t.shape}")
    iu, ju = np.triu_indices(c.shape[1], k=1)
    if pairs is not None:
        pairs = np.asarray(pairs, dtype=bool)
        if pairs.shape != (c.shape[1], c.shape[1]):
            raise ValueError(f"pairs must be ({c.shape[1]}, {c.shape[1]}), got {pairs.shape}")
        keep = pairs[iu, ju]
        iu, ju = iu[keep], ju[keep]
    dt = t[:, iu] - t[:, ju]
    dc = c[:, iu] - c[:, ju]
    valid = np.abs(dt) > _TIE_TOL
    score = np.where(np.abs(dc) <= _TIE_TOL, 0.5, (np.sign(dc) == np.sign(dt)).astype(float))
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (score * valid).sum(axis=1) / np.maximum(n, 1), np.nan)


def _rescale(y: np.ndarray, target_norm: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(y, axis=-1, keepdims=True)
    return y * (target_norm[:, None] / np.maximum(norm, NORM_EPS))


RESCALE_MODES = ("context", "none")


def _check_loop(model, batch: TaskBatch, k, rounds, rescale: str, reference: str) -> tuple:
    """Validate ``self_correct``'s arguments; returns (k, rounds) as ints."""
    cfg = model.config
    if not cfg.causal:
        raise ValueError("self_correct needs a causal model: with causal=False the answer at "
                         "x-token n would see the placeholder triplet n and later ones")
    k = check_int("k", k, low=None, error=TypeError)
    rounds = check_int("rounds", rounds, low=None, error=TypeError)
    if k < 1:
        raise ValueError(f"k must be >= 1 context triplets, got {k}")
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    if k + rounds + 1 > cfg.n_points:
        raise ValueError(f"k={k} context triplets and {rounds} rounds need k + rounds + 1 = "
                         f"{k + rounds + 1} example positions, but the model has n_points="
                         f"{cfg.n_points}: at most {cfg.n_points - k - 1} rounds with k={k}")
    if batch.n_points < k:
        raise ValueError(f"the batch has {batch.n_points} examples per task, fewer than k={k}")
    if batch.n_dims != cfg.n_dims:
        raise ValueError(f"the batch has d={batch.n_dims}, the model n_dims={cfg.n_dims}")
    if rescale not in RESCALE_MODES:
        raise ValueError(f"rescale must be one of {RESCALE_MODES}, got {rescale!r}")
    check_reference(reference)
    return k, rounds


def self_correct(model, batch: TaskBatch, critic, k: int, rounds: int,
                 context_critic=None, rescale: str = "context", seed: int = 0,
                 reference: str = "oracle") -> SelfCorrection:
    """Run ``rounds`` rounds of self-correction on every task of ``batch`` at once.

    The loop of docs/math.md, section "Critics and self-correction". The
    context is the first ``k`` examples of each task with rewards from
    ``context_critic``; the model answers at x-token k; each round the critic
    scores the latest answer, (x, ŷ, r̂) is appended at position k + round (ŷ
    rescaled, see the module notes) and the model answers at the next
    x-token. One ``model.predict`` per round on the whole batch, on exactly
    k + round + 1 examples: the answer at x-token n sees only triplets
    0..n-1 (the model must be causal), so the zero placeholders at the
    answer's own position are never read.

    Parameters
    ----------
    model : Transformer
        A causal model; ``k + rounds + 1 <= model.config.n_points``.
    batch : TaskBatch
        The tasks (at least ``k`` examples each). Their x, y* and eps and
        the first ``k`` responses with their true weights are used, not their
        shown rewards.
    critic : Critic or str
        Who scores the answers (any ``make_critic`` spec; 'self' uses
        ``model``'s reward head).
    k : int
        Context triplets, >= 1.
    rounds : int
        Rounds R, >= 0 (0: only the first answer).
    context_critic : Critic or str, optional
        Who scores the k context responses (default: ``critic``).
    rescale : {'context', 'none'}, default 'context'
        Rescale each answer to the mean norm of its task's context responses
        before appending it, or append it as is.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``, the critics' only source of noise.
    reference : {'oracle', 'quality'}, default 'oracle'
        The perfect critic giving the true weights of the appended answers,
        against which critic accuracy is measured.

    Returns
    -------
    SelfCorrection

    Raises
    ------
    TypeError
        If ``k`` or ``rounds`` is not an int (or a critic spec is neither a
        Critic nor a str).
    ValueError
        If the model is not causal, ``k`` < 1, ``rounds`` < 0, the positions
        do not fit ``n_points``, the batch does not fit the model, ``rescale``
        or ``reference`` is unknown, or a critic returns the wrong shape or
        non-finite values.

    Examples
    --------
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> b = ica.AlignmentTask().sample(8, seed=0)
    >>> res = ica.self_correct(model, b, "replace:0.5", k=4, rounds=3, context_critic="oracle")
    >>> res.critic, res.context_critic, res.errors.shape
    ('replace p=0.5', 'oracle', (8, 4))
    >>> same = ica.self_correct(model, b, "replace:0.5", k=4, rounds=3, context_critic="oracle")
    >>> bool((same.rs == res.rs).all())     # the same seed, the same noise
    True
    >>> ica.self_correct(model, b, "oracle", k=4, rounds=16)
    Traceback (most recent call last):
        ...
    ValueError: k=4 context triplets and 16 rounds need k + rounds + 1 = 21 example positions, but the model has n_points=20: at most 15 rounds with k=4
    """
    k, rounds = _check_loop(model, batch, k, rounds, rescale, reference)
    critic = make_critic(critic, model)
    context_critic = critic if context_critic is None else make_critic(context_critic, model)
    rng = np.random.default_rng(seed)

    B, d = batch.batch_size, batch.n_dims
    n_total = k + rounds + 1
    xs = np.empty((B, n_total, d), dtype=np.float32)
    xs[:, :k] = batch.xs[:, :k]
    xs[:, k:] = batch.xs[:, :1]          # the query is the same x for every example
    ys = np.zeros((B, n_total, d), dtype=np.float32)
    ys[:, :k] = batch.ys[:, :k]
    rs = np.zeros((B, n_total), dtype=np.float32)
    true_r = np.zeros((B, n_total), dtype=np.float64)
    true_r[:, :k] = batch.rs_true[:, :k]
    oracle_app = np.zeros((B, rounds), dtype=np.float64)
    ystar = batch.ystar.astype(np.float64)
    eps = batch.eps.astype(np.float64)

    def score(c: Critic, positions: Sequence[int]) -> np.ndarray:
        inp = CriticInput(ys[:, list(positions)].astype(np.float64), ystar, eps,
                          xs, ys, rs, tuple(positions))
        out = np.asarray(c(inp, rng), dtype=np.float64)
        if out.shape != (B, len(positions)) or not np.all(np.isfinite(out)):
            raise ValueError(f"critic {c.label!r} returned shape {out.shape} (expected "
                             f"{(B, len(positions))}) or non-finite values")
        return out

    if context_critic.sequential:
        for n in range(k):
            rs[:, n] = score(context_critic, [n])[:, 0]
    else:
        rs[:, :k] = score(context_critic, list(range(k)))

    ctx_norm = np.linalg.norm(batch.ys[:, :k].astype(np.float64), axis=-1).mean(axis=1)
    answers = np.zeros((B, rounds + 1, d), dtype=np.float64)
    for j in range(rounds + 1):
        n = k + j                        # the x-token read for this answer
        if j > 0:
            prev = answers[:, j - 1]
            ys[:, n - 1] = _rescale(prev, ctx_norm) if rescale == "context" else prev
            appended = ys[:, n - 1].astype(np.float64)
            oracle_app[:, j - 1] = oracle_rewards(appended, ystar, eps)
            true_r[:, n - 1] = oracle_app[:, j - 1] if reference == "oracle" else \
                reference_rewards(reference, appended, ystar, eps)
            rs[:, n - 1] = score(critic, [n - 1])[:, 0]
        pred = model.predict(xs[:, :n + 1], ys[:, :n + 1], rs[:, :n + 1])
        answers[:, j] = pred[:, n]
    errors = normalized_error(answers, ystar)
    m = k + rounds
    return SelfCorrection(k=k, rounds=rounds, answers=answers,
                          appended=ys[:, k:m].astype(np.float64).copy(), xs=xs[:, :m].copy(),
                          ys=ys[:, :m].copy(), rs=rs[:, :m].copy(), true_rewards=true_r[:, :m],
                          errors=errors, critic=critic.label, context_critic=context_critic.label,
                          rescale=rescale, reference=reference, oracle_appended=oracle_app)


# ------------------------------------------------------------------ self-check accuracy


def self_check_accuracy(model, batch: TaskBatch, n_context: int | None = None) -> dict:
    """How well a reward head ranks task responses given the true shown rewards before them.

    The head's estimate at example n (which sees triplets 0..n-1 with the batch's shown
    rewards, and x_n, y_n) is compared with the true mixing weights over examples
    1..n_context-1 (example 0 has no context).

    Parameters
    ----------
    model : Transformer
        A model built with ``ModelConfig(reward_head=True)``.
    batch : TaskBatch
        The tasks; their shown rewards form the context.
    n_context : int, optional
        Examples per task to use, >= 3 (default: all of the batch's); capped at
        ``model.config.n_points``.

    Returns
    -------
    dict
        "accuracy": mean pairwise accuracy (``pairwise_accuracy``) per task;
        "mse": mean squared error of the estimates; "corr": their Pearson
        correlation with the true weights over all tasks (0 when the estimates
        or the weights are constant); "n_context": the number of examples used.

    Raises
    ------
    ValueError
        If the model has no reward head, or fewer than 3 examples are usable.

    Examples
    --------
    >>> import icalign as ica
    >>> cfg = ica.ModelConfig(n_embd=8, n_layer=1, n_head=2, reward_head=True)
    >>> b = ica.AlignmentTask().sample(8, seed=0)
    >>> out = ica.self_check_accuracy(ica.Transformer(cfg), b, n_context=10)
    >>> sorted(out), out["n_context"]
    (['accuracy', 'corr', 'mse', 'n_context'], 10)
    >>> 0.0 <= out["accuracy"] <= 1.0
    True
    """
    n = batch.n_points if n_context is None else check_int("n_context", n_context, 3)
    n = min(n, model.config.n_points, batch.n_points)
    if n < 3:
        raise ValueError(f"self_check_accuracy needs n_context >= 3 examples (two scored "
                         f"ones to rank), but the batch and model allow {n}")
    rhat = model.predict_rewards(batch.xs[:, :n], batch.ys[:, :n], batch.rs[:, :n])
    est, true = rhat[:, 1:].astype(np.float64), batch.rs_true[:, 1:n].astype(np.float64)
    acc = pairwise_accuracy(est, true)
    # a constant estimate (or constant truth) has no correlation: 0, not NaN
    flat_e, flat_t = est.ravel(), true.ravel()
    corr = stats.pearson(flat_e, flat_t)["pearson_r"] \
        if np.std(flat_e) > 0 and np.std(flat_t) > 0 else 0.0
    return {"accuracy": float(np.nanmean(acc)), "mse": float(np.mean((est - true) ** 2)),
            "corr": corr, "n_context": n}


