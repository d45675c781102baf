"""Critic quality and self-correction (SPEC section 6, "Critic quality"; issue 4).

Self-correction as in-context alignment: the context holds k triplets
(x, y_i, r̂_i) of a task whose rewards r̂_i come from a *critic*; the trained
transformer answers ŷ_0 at x-token k. One round: the critic scores the latest
answer, the triplet (x, ŷ, r̂) is appended at example position k + round, and
the model answers again at the next x-token.

Critics
-------
``OracleCritic``       r̂ = argmax_{r in [0,1]} cos(ŷ, r y* + (1 - r) eps) (closed form).
``QualityCritic()``    the weight of the task response as good as ŷ (an extra, see below).
``ReplaceCritic(p)``   a perfect critic (``base``: oracle or quality), each score replaced
                       by U(0,1) with probability p.
``GaussianCritic(s)``  a perfect critic plus N(0, s²), clipped to [0, 1].
``InvertedCritic()``   1 - a perfect critic.
``SelfCritic(model)``  the model's own reward head (``ModelConfig(reward_head=True)``).

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
* **Self-critic training.** A model built with ``ModelConfig(reward_head=True)``
  is trained from scratch with the ordinary recipe (exact rewards, fresh tasks)
  on PL + ``reward_weight`` x MSE(reward head, shown reward) over every y-token
  (in the registry, ``critic_experiments.self_critic_spec``: the default model's recipe with
  ``reward_weight=10``). The weight is 10, not 1, because the MSE (about 0.08 at
  chance) is tiny next to the PL loss (15-18), so with weight 1 the shared trunk
  learns reward features slowly (in development runs on E32/L4 models the head's
  self-check accuracy on task responses was 0.84 at weight 1 and 0.90 at weight
  10, with no worse PL error; every run measures and reports its own).
  The head only ever sees task responses, which lie on the segment between eps
  and y*; the model's own answers do not, so its accuracy on them is lower
  (``SelfCorrection.accuracy(positions="answers")``).
* **Two perfect critics.** The issue's oracle gives the weight that best *explains* an
  answer; answers beyond y* (as seen from eps) all get exactly 1 however far off
  they are, and trained models' answers mostly lie there (the PL/cosine objective
  favours directions like y* - c eps). The quality critic gives the weight of the
  task response with the same error. Both are exact on task responses; the
  experiments report both (``DEFAULT_VARIANTS``, ``critic_model_size(critics=...)``)
  with the issue's set-up first.
* **Noise.** Every critic draws from one ``numpy.random.default_rng(seed)`` per run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from .evaluate import normalized_error
from .stats import pearson, permutation_pvalue
from .task import AlignmentTask, TaskBatch

_NORM_EPS = 1e-12
_TIE_TOL = 1e-12
#: version of the experiment results' layout (stored as "format"; bump when keys change)
RESULT_FORMAT = 3

# ---------------------------------------------------------------------------- critics


def oracle_rewards(responses, ystar, eps) -> np.ndarray:
    """The mixing weight that best explains each response:
    ``argmax_{r in [0,1]} cos(ŷ, r y* + (1 - r) eps)``.

    ``responses`` (B, M, d) or (B, d); ``ystar``, ``eps`` (B, d). Returns (B, M)
    (or (B,)) in float64. With v(r) = eps + r D, D = y* - eps, the cosine
    f(r) = (a + r b) / sqrt(c + 2 e r + g r^2) (a = ŷ·eps, b = ŷ·D, c = |eps|^2,
    e = eps·D, g = |D|^2) has a single stationary point on the real line,
    r0 = (a e - b c) / (b e - a g); the maximum over [0, 1] is at 0, 1 or
    clip(r0), whichever gives the largest cosine. Scale-free (a positive factor
    on ŷ multiplies f and leaves r0 unchanged) and exact for task responses
    (ŷ = v(r_i) gives r0 = r_i, where the cosine is 1). A response orthogonal
    to span{y*, eps} (or zero) carries no information and gets 0.5.
    """
    y = np.asarray(responses, dtype=np.float64)
    single = y.ndim == 2
    if single:
        y = y[:, None, :]
    if y.ndim != 3:
        raise ValueError(f"responses must be (B, M, d) or (B, d), got shape {y.shape}")
    ystar = np.asarray(ystar, dtype=np.float64)
    eps = np.asarray(eps, dtype=np.float64)
    if ystar.shape != (y.shape[0], y.shape[2]) or eps.shape != ystar.shape:
        raise ValueError(f"ystar and eps must be (B, d) = {(y.shape[0], y.shape[2])}, got "
                         f"{ystar.shape} and {eps.shape}")
    D = ystar - eps
    a = np.einsum("bmd,bd->bm", y, eps)
    b = np.einsum("bmd,bd->bm", y, D)
    c = np.sum(eps * eps, axis=-1)[:, None]
    e = np.sum(eps * D, axis=-1)[:, None]
    g = np.sum(D * D, axis=-1)[:, None]
    den = b * e - a * g
    with np.errstate(divide="ignore", invalid="ignore"):
        r0 = np.where(np.abs(den) > 0, (a * e - b * c) / np.where(den == 0, 1.0, den), 0.0)
    r0 = np.clip(np.nan_to_num(r0, nan=0.0), 0.0, 1.0)
    cands = np.stack([np.zeros_like(r0), np.ones_like(r0), r0], axis=-1)  # (B, M, 3)
    vnorm = np.sqrt(np.maximum(c[..., None] + 2 * e[..., None] * cands
                               + g[..., None] * cands ** 2, 0.0))
    f = (a[..., None] + b[..., None] * cands) / np.maximum(vnorm, _NORM_EPS)
    best = np.take_along_axis(cands, np.argmax(f, axis=-1)[..., None], axis=-1)[..., 0]
    # no information: the response is (numerically) orthogonal to span{y*, eps}
    ynorm = np.linalg.norm(y, axis=-1)
    flat = np.max(np.abs(f), axis=-1) <= 1e-9 * np.maximum(ynorm, _NORM_EPS)
    best = np.where(flat | (ynorm <= _NORM_EPS), 0.5, best)
    return best[:, 0] if single else best


def quality_rewards(responses, ystar, eps, iterations: int = 60) -> np.ndarray:
    """The mixing weight of the task response that is exactly as good as each response:
    the r in [0, 1] with cos(r y* + (1 - r) eps, y*) = cos(ŷ, y*) (0 if ŷ is worse than
    eps, 1 if it is as good as y*).

    An alternative to ``oracle_rewards`` for answers off the segment [eps, y*]: the oracle
    gives the weight that best *explains* the answer, which is 1 for every answer lying
    beyond y* as seen from eps, however far; this one grades by the error that is measured.
    Both are exact on task responses and scale-free. Along the segment the angle to y*
    falls monotonically (a line meets each ray from the origin once), so bisection finds r.
    """
    y = np.asarray(responses, dtype=np.float64)
    single = y.ndim == 2
    if single:
        y = y[:, None, :]
    ystar = np.asarray(ystar, dtype=np.float64)
    eps = np.asarray(eps, dtype=np.float64)
    if y.ndim != 3 or ystar.shape != (y.shape[0], y.shape[2]) or eps.shape != ystar.shape:
        raise ValueError(f"responses (B, M, d) with ystar and eps (B, d), got {y.shape}, "
                         f"{ystar.shape} and {eps.shape}")
    target = 1.0 - normalized_error(y, ystar)                    # (B, M)
    lo = np.zeros(target.shape)
    hi = np.ones(target.shape)
    for _ in range(int(iterations)):
        mid = 0.5 * (lo + hi)
        v = mid[..., None] * ystar[:, None] + (1.0 - mid[..., None]) * eps[:, None]
        below = (1.0 - normalized_error(v, ystar)) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    r = 0.5 * (lo + hi)
    return r[:, 0] if single else r


@dataclass
class CriticInput:
    """What a critic may look at when scoring the responses at ``positions``.

    responses: (B, M, d) the responses to score (already placed in ``ys``);
    ystar, eps: (B, d) the task's answer and distractor (for oracle-based critics);
    xs, ys, rs: (B, n, d), (B, n, d), (B, n) the sequence built so far, covering at
    least every scored position (rewards at and after the first scored position are
    not yet meaningful);
    positions: the example positions of the M responses.
    """

    responses: np.ndarray
    ystar: np.ndarray
    eps: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    rs: np.ndarray
    positions: tuple


class Critic:
    """A critic returns rewards in [0, 1] for responses, (B, M) from ``CriticInput``.

    ``sequential`` critics (the self-critic) look at earlier rewards and must score
    one position at a time; the others score any set of positions at once.
    """

    label = "critic"
    sequential = False

    def __call__(self, inp: CriticInput, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"label": self.label, "kind": type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"


REFERENCES = ("oracle", "quality")


def reference_rewards(reference: str, responses, ystar, eps) -> np.ndarray:
    """The perfect critic named ``reference``: 'oracle' (``oracle_rewards``, the issue's
    definition) or 'quality' (``quality_rewards``)."""
    if reference == "oracle":
        return oracle_rewards(responses, ystar, eps)
    if reference == "quality":
        return quality_rewards(responses, ystar, eps)
    raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")


def _check_base(base):
    if base not in REFERENCES:
        raise ValueError(f"the reference (base) critic must be one of {REFERENCES}, got "
                         f"{base!r}")


def _suffix(base):
    return "" if base == "oracle" else f" ({base})"


class OracleCritic(Critic):
    """The mixing weight that best explains a response (``oracle_rewards``)."""

    label = "oracle"

    def __call__(self, inp, rng):
        return oracle_rewards(inp.responses, inp.ystar, inp.eps)


class QualityCritic(Critic):
    """Grades by measured quality: ``quality_rewards`` (the weight of the equally good
    task response). Not one of the issue's critics: the oracle gives 1 to every answer
    that overshoots y* (as seen from eps), however far, and the trained models' answers
    mostly do; this one is the perfect critic of the error that is measured."""

    label = "quality"

    def __call__(self, inp, rng):
        return quality_rewards(inp.responses, inp.ystar, inp.eps)


def _check_prob(name, value):
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


class ReplaceCritic(Critic):
    """A perfect critic (``base``: 'oracle' or 'quality'), each score independently
    replaced by a fresh U(0, 1) draw with probability ``p`` (the reward noise of SPEC
    section 1): p = 0 is the base critic, p = 1 a useless critic."""

    def __init__(self, p: float, base: str = "oracle"):
        self.p = _check_prob("ReplaceCritic p", p)
        _check_base(base)
        self.base = base
        self.label = f"replace p={self.p:g}{_suffix(base)}"

    def __call__(self, inp, rng):
        r = reference_rewards(self.base, inp.responses, inp.ystar, inp.eps)
        coin = rng.random(r.shape) < self.p
        fresh = rng.random(r.shape)
        return np.where(coin, fresh, r)

    def to_dict(self):
        return {**super().to_dict(), "p": self.p, "base": self.base}


class GaussianCritic(Critic):
    """A perfect critic (``base``) plus Gaussian noise of standard deviation ``sigma``,
    clipped to [0, 1]."""

    def __init__(self, sigma: float, base: str = "oracle"):
        sigma = float(sigma)
        if not (sigma >= 0.0 and math.isfinite(sigma)):
            raise ValueError(f"GaussianCritic sigma must be a finite number >= 0, got {sigma}")
        _check_base(base)
        self.sigma = sigma
        self.base = base
        self.label = f"gauss s={sigma:g}{_suffix(base)}"

    def __call__(self, inp, rng):
        r = reference_rewards(self.base, inp.responses, inp.ystar, inp.eps)
        return np.clip(r + self.sigma * rng.standard_normal(r.shape), 0.0, 1.0)

    def to_dict(self):
        return {**super().to_dict(), "sigma": self.sigma, "base": self.base}


class InvertedCritic(Critic):
    """1 - a perfect critic (``base``): orders every pair the wrong way."""

    def __init__(self, base: str = "oracle"):
        _check_base(base)
        self.base = base
        self.label = f"inverted{_suffix(base)}"

    def __call__(self, inp, rng):
        return 1.0 - reference_rewards(self.base, inp.responses, inp.ystar, inp.eps)

    def to_dict(self):
        return {**super().to_dict(), "base": self.base}


class SelfCritic(Critic):
    """The model's own reward head: ``model.predict_rewards`` read at the y-token of
    the scored response, which sees x, the response and the triplets before it (with
    their rewards), but never y* or eps. Estimates are clipped to [0, 1], the range
    of the rewards the head was trained on.
    """

    sequential = True

    def __init__(self, model, label: str = "self"):
        if not getattr(model, "config", None) or not model.config.reward_head:
            raise ValueError("SelfCritic needs a model built with ModelConfig(reward_head=True) "
                             "and trained with its reward head (see icalign.critic_experiments)")
        self.model = model
        self.label = label

    def __call__(self, inp, rng):
        if len(inp.positions) != 1:
            raise ValueError("SelfCritic scores one position at a time")
        n = int(inp.positions[0])
        rhat = self.model.predict_rewards(inp.xs[:, :n + 1], inp.ys[:, :n + 1],
                                          inp.rs[:, :n + 1])
        return np.clip(rhat[:, n:n + 1].astype(np.float64), 0.0, 1.0)


def make_critic(spec, model=None, base: str = "oracle") -> Critic:
    """A critic from a ``Critic`` or a short name: 'oracle', 'quality', 'inverted', 'self',
    'replace:P', 'gauss:SIGMA'. 'self' needs ``model`` (with a reward head); the noisy ones
    and 'inverted' are built on the perfect critic ``base`` ('oracle' or 'quality')."""
    if isinstance(spec, Critic):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a critic must be a Critic or a name, got {type(spec).__name__}")
    name, _, arg = spec.partition(":")
    if name == "oracle" and not arg:
        return OracleCritic()
    if name == "quality" and not arg:
        return QualityCritic()
    if name == "inverted" and not arg:
        return InvertedCritic(base)
    if name == "self" and not arg:
        if model is None:
            raise ValueError("critic 'self' needs the model")
        return SelfCritic(model)
    if name == "replace" and arg:
        return ReplaceCritic(float(arg), base)
    if name == "gauss" and arg:
        return GaussianCritic(float(arg), base)
    raise ValueError(f"unknown critic {spec!r}; expected 'oracle', 'quality', 'inverted', "
                     f"'self', 'replace:P' or 'gauss:SIGMA'")


# ------------------------------------------------------------------- the self-correction loop


@dataclass
class SelfCorrection:
    """Everything one self-correction run built, for B tasks, k context triplets and R rounds.

    answers: (B, R+1, d) raw model answers ŷ_0..ŷ_R (ŷ_j read at x-token k + j);
    appended: (B, R, d) the responses appended at positions k..k+R-1 (rescaled ŷ_0..ŷ_{R-1});
    xs, ys, rs: (B, k+R, d/d/-) the full context built: the k task triplets with the
        critic's rewards, then the appended triplets (x, ŷ, r̂);
    true_rewards: (B, k+R) the true weights: the task's r_i for the context, the reference
        critic's score ('oracle' by default, or 'quality') for the appended answers;
    oracle_appended: (B, R) the oracle's scores of the appended answers (whatever the
        reference);
    errors: (B, R+1) 1 - cos(ŷ_j, y*).
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
        return self.errors.mean(axis=0).tolist()

    def gains(self, rounds: int | None = None) -> np.ndarray:
        """Per-task gain error(ŷ_0) - error(ŷ_rounds) (default: after all rounds)."""
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
        """Per-task pairwise critic accuracy (see ``pairwise_accuracy``) over the k context
        responses and the answers appended in the first ``rounds`` rounds
        (``positions='all'``), only the context (``'context'``), only the appended answers
        (``'appended'``), or the pairs with at least one appended answer (``'answers'``:
        how well the critic places the model's answers among all responses)."""
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

    Pairs whose true weights tie (within 1e-12) are left out; a critic tie counts 1/2.
    ``critic_rewards``, ``true_rewards`` (B, M) -> (B,); NaN for a row without pairs.
    ``pairs``: optional (M, M) boolean mask of the pairs (i, j) to count.
    """
    c = np.asarray(critic_rewards, dtype=np.float64)
    t = np.asarray(true_rewards, dtype=np.float64)
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
    return y * (target_norm[:, None] / np.maximum(norm, _NORM_EPS))


RESCALE_MODES = ("context", "none")


def self_correct(model, batch: TaskBatch, critic, k: int, rounds: int,
                 context_critic=None, rescale: str = "context", seed: int = 0,
                 reference: str = "oracle") -> SelfCorrection:
    """Run ``rounds`` rounds of self-correction on every task of ``batch`` at once.

    The context is the first ``k`` examples of each task with rewards from
    ``context_critic`` (default: ``critic``); the model answers at x-token k; each round
    the critic scores the latest answer, (x, ŷ, r̂) is appended at position k + round
    (ŷ rescaled, see the module notes) and the model answers at the next x-token. One
    ``model.predict`` per round on the whole batch, on exactly k + round + 1 examples:
    the answer at x-token n sees only triplets 0..n-1 (the model must be causal), so the
    zero placeholders at the answer's own position are never read. Needs
    ``k + rounds + 1 <= model.config.n_points``. Critic noise comes from
    ``numpy.random.default_rng(seed)``. ``reference`` ('oracle' or 'quality') gives the
    true weights of the appended answers, against which critic accuracy is measured.
    """
    cfg = model.config
    if not cfg.causal:
        raise ValueError("self_correct needs a causal model: with causal=False the answer at "
                         "x-token n would see the placeholder triplet n and later ones")
    for name, value in (("k", k), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
    k, rounds = int(k), int(rounds)
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
    _check_base(reference)
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
    1..n_context-1 (example 0 has no context). Returns {"accuracy", "mse", "corr"}.
    """
    n = batch.n_points if n_context is None else int(n_context)
    n = min(n, model.config.n_points)
    rhat = model.predict_rewards(batch.xs[:, :n], batch.ys[:, :n], batch.rs[:, :n])
    est, true = rhat[:, 1:].astype(np.float64), batch.rs_true[:, 1:n].astype(np.float64)
    acc = pairwise_accuracy(est, true)
    return {"accuracy": float(np.nanmean(acc)), "mse": float(np.mean((est - true) ** 2)),
            "corr": float(np.corrcoef(est.ravel(), true.ravel())[0, 1]), "n_context": n}


# ------------------------------------------------------------------------- experiments

DEFAULT_ACCURACY_CRITICS = ("reference", "gauss:0.1", "gauss:0.3", "gauss:1", "replace:0.25",
                            "replace:0.5", "replace:0.75", "replace:1", "inverted", "self")
DEFAULT_ROUND_CRITICS = ("oracle", "quality", "gauss:0.3", "replace:0.5", "self")
#: (reference, context) variants of experiment 1: the issue's (the oracle's noisy versions
#: score the context and the answers) first, then the quality critic's noisy versions
#: judging only the answers (context by the oracle, so ŷ_0 is shared)
DEFAULT_VARIANTS = (("oracle", "critic"), ("quality", "oracle"))


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se


def _eval_batch(model, task, n_tasks, seed, offset, batch=None):
    """The evaluation tasks: the first ``n_tasks`` of ``batch`` if given (e.g. the
    registry's fixed evaluation set), else ``task.sample(n_tasks, seed, offset)``."""
    if batch is not None:
        if batch.batch_size < n_tasks:
            raise ValueError(f"the evaluation batch has {batch.batch_size} tasks, fewer than "
                             f"n_tasks={n_tasks}")
        if batch.reward_noise != 0.0:
            raise ValueError("the evaluation batch must have exact shown rewards "
                             "(reward_noise=0); the critics decide the rewards here")
        return batch[:int(n_tasks)]
    task = task or AlignmentTask(model.config.n_dims, model.config.n_points)
    return task.sample(int(n_tasks), seed=int(seed), offset=int(offset))


CONTEXT_MODES = ("critic", "oracle")


def _critic_runs(model, critics, context, self_both=False, base="oracle"):
    """Expand critic specs into (label, critic, context_critic) runs.

    ``context='critic'``: each critic also scores the k context triplets;
    ``'oracle'``: the oracle scores the context and the critic only the model's answers,
    so ŷ_0 is the same for every critic. 'reference' is the perfect critic ``base``; noisy
    critics and 'inverted' are built on ``base``. 'self' runs only with a reward head; with
    ``self_both`` (and context='critic') it gives a second run 'self (oracle context)'.
    """
    if context not in CONTEXT_MODES:
        raise ValueError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
    _check_base(base)
    include_self = bool(model.config.reward_head)
    runs = []
    for spec in critics:
        if spec == "self" or isinstance(spec, SelfCritic):
            if not include_self:
                continue
            sc = spec if isinstance(spec, SelfCritic) else SelfCritic(model)
            runs.append((sc.label, sc, OracleCritic() if context == "oracle" else None))
            if self_both and context == "critic":
                runs.append((f"{sc.label} (oracle context)", sc, OracleCritic()))
        else:
            c = make_critic(base if spec == "reference" else spec, model, base=base)
            runs.append((c.label, c, OracleCritic() if context == "oracle" else None))
    return runs


def _accuracy_gain_variant(model, batch, critics, k_values, rounds, reference, context,
                           rescale, seed, n_permutations):
    runs = _critic_runs(model, critics, context, base=reference)
    points = []
    for k in k_values:
        for i, (label, crit, ctx) in enumerate(runs):
            res = self_correct(model, batch, crit, k, rounds, context_critic=ctx,
                               rescale=rescale, seed=seed + 1000 * k + i, reference=reference)
            gain, gain_se = _mean_se(res.gains())
            acc, acc_se = _mean_se(res.accuracy(
                positions="all" if context == "critic" else "answers"))
            points.append({"critic": label, "k": k, "accuracy": acc, "accuracy_se": acc_se,
                           "gain": gain, "gain_se": gain_se,
                           "accuracy_answers": float(np.nanmean(res.accuracy(
                               positions="answers"))) if rounds >= 1 else None,
                           "error_before": float(res.errors[:, 0].mean()),
                           "error_after": float(res.errors[:, -1].mean())})
    acc = np.array([p["accuracy"] for p in points])
    gain = np.array([p["gain"] for p in points])
    st = pearson(acc, gain)
    above = acc >= 0.5
    st_above = pearson(acc[above], gain[above]) if above.sum() >= 3 and \
        np.ptp(acc[above]) > 0 and np.ptp(gain[above]) > 0 else None
    return {"reference": reference, "context": context, "points": points,
            "pearson_r": st["pearson_r"], "p_value": st["p_value"], "slope": st["slope"],
            "intercept": st["intercept"], "n_points": st["n"],
            "p_value_permutation": permutation_pvalue(acc, gain, n_permutations, seed=seed),
            "above_chance": None if st_above is None else
            {"pearson_r": st_above["pearson_r"], "p_value": st_above["p_value"],
             "slope": st_above["slope"], "n_points": st_above["n"]}}


def critic_accuracy_gain(model, task: AlignmentTask | None = None,
                         critics: Iterable = DEFAULT_ACCURACY_CRITICS,
                         k_values: Iterable[int] = (2, 4, 8), rounds: int = 1,
                         n_tasks: int = 256, seed: int = 0, offset: int = 10**9,
                         rescale: str = "context",
                         variants: Sequence[tuple] = DEFAULT_VARIANTS,
                         n_permutations: int = 10_000, batch: TaskBatch | None = None) -> dict:
    """Experiment 1: self-correction gain against critic accuracy.

    For every critic setting and every k, ``rounds`` rounds of self-correction on the same
    ``n_tasks`` held-out tasks (``offset`` keeps them away from training streams); one point
    per (critic, k) with its mean gain error(ŷ_0) - error(ŷ_rounds) and mean pairwise
    accuracy against the true weights (the task's for context responses, the reference
    critic's for the answers). Pearson r, the least-squares line and a two-sided p-value
    (exact t test, and a permutation test) over the points.

    ``variants``: (reference, context) pairs, each a full set of points. ``reference``
    ('oracle' or 'quality') is the perfect critic: 'reference' in ``critics`` and the base
    of the noisy and inverted critics, and the truth of accuracy. ``context='critic'``:
    the critic also scores the k context triplets, accuracy over all pairs (the issue's
    set-up); ``'oracle'``: the oracle scores the context, so ŷ_0 is the same for every
    critic, and accuracy counts the pairs involving the model's answers. The first variant
    gives the top-level numbers; all are under "variants". The 'self' critic runs only if
    the model has a reward head. ``batch``: evaluate on its first ``n_tasks`` tasks (e.g.
    the registry's fixed evaluation set, exact rewards) instead of ``task.sample(n_tasks,
    seed, offset)``; the same holds for ``critic_rounds`` and ``critic_model_size``.
    """
    k_values = [int(k) for k in k_values]
    variants = [tuple(v) for v in variants]
    if not variants or any(len(v) != 2 for v in variants):
        raise ValueError(f"variants must be a non-empty list of (reference, context) pairs, "
                         f"got {variants!r}")
    for ref, ctx in variants:
        _check_base(ref)
        if ctx not in CONTEXT_MODES:
            raise ValueError(f"context must be one of {CONTEXT_MODES}, got {ctx!r}")
    batch = _eval_batch(model, task, n_tasks, seed, offset, batch)
    results = [_accuracy_gain_variant(model, batch, list(critics), k_values, rounds, ref, ctx,
                                      rescale, seed, n_permutations) for ref, ctx in variants]
    main = results[0]
    return {"experiment": "critic_accuracy_gain", "format": RESULT_FORMAT, **main,
            "variants": results, "rounds": int(rounds), "k_values": k_values,
            "n_tasks": int(n_tasks), "seed": int(seed), "rescale": rescale,
            "model": _model_info(model)}


def critic_rounds(model, task: AlignmentTask | None = None,
                  critics: Iterable = DEFAULT_ROUND_CRITICS, k: int = 4, rounds: int = 5,
                  n_tasks: int = 256, seed: int = 0, offset: int = 10**9,
                  rescale: str = "context", context: str = "critic",
                  batch: TaskBatch | None = None) -> dict:
    """Experiment 2: mean error per round 0..``rounds`` for each critic (same tasks for all).

    Labels: the critic labels ('oracle', 'gauss s=0.3', 'replace p=0.5', ...) and, with a
    reward head, 'self'. With ``context='critic'`` each critic also scores the context
    (and 'self (oracle context)' is added: context by the oracle, answers by the reward
    head); with ``'oracle'`` the oracle scores every context, so round 0 is shared. Also
    each critic's accuracy (all pairs; pairs involving answers) and per-round standard
    errors.
    """
    batch = _eval_batch(model, task, n_tasks, seed, offset, batch)
    runs = _critic_runs(model, critics, context, self_both=True)
    curves, se, accuracy, acc_answers, gain_se, after_best, at_one = ({} for _ in range(7))
    for i, (label, crit, ctx) in enumerate(runs):
        res = self_correct(model, batch, crit, k, rounds, context_critic=ctx, rescale=rescale,
                           seed=seed + i)
        e = res.errors
        n = e.shape[0]
        curves[label] = res.mean_errors()
        se[label] = (e.std(axis=0, ddof=1) / math.sqrt(n)).tolist()
        # paired standard errors: of the gain err_0 - err_r, and of the rise after the best
        gain_se[label] = ((e[:, :1] - e).std(axis=0, ddof=1) / math.sqrt(n)).tolist()
        b = int(np.argmin(e.mean(axis=0)))
        rise = e[:, -1] - e[:, b]
        after_best[label] = {"best_round": b, "rise": float(rise.mean()),
                             "rise_se": float(rise.std(ddof=1) / math.sqrt(n))}
        at_one[label] = res.oracle_at_one()
        accuracy[label] = float(np.nanmean(res.accuracy()))
        acc_answers[label] = float(np.nanmean(res.accuracy(positions="answers"))) \
            if rounds >= 1 else None
    return {"experiment": "critic_rounds", "format": RESULT_FORMAT, "x_key": "rounds",
            "rounds": list(range(rounds + 1)),
            "curves": curves,
            "se": se, "gain_se": gain_se, "after_best": after_best, "accuracy": accuracy,
            "accuracy_answers": acc_answers, "answers_oracle_at_1": at_one,
            "context": context, "k": int(k),
            "n_tasks": int(n_tasks), "seed": int(seed), "rescale": rescale,
            "model": _model_info(model)}


def critic_model_size(models: Sequence, task: AlignmentTask | None = None,
                      critics: Sequence = ("oracle", "quality"), k: int = 4, rounds: int = 1,
                      n_tasks: int = 256, seed: int = 0, offset: int = 10**9,
                      rescale: str = "context", labels: Sequence[str] | None = None,
                      batch: TaskBatch | None = None) -> dict:
    """Experiment 3: gain with near-perfect critics (default: the oracle, and the quality
    critic) for trained models of several sizes, on the same tasks. ``sizes`` are parameter
    counts, in the order given; ``gain`` (with ``gain_se``, ``error_after``, ``accuracy``)
    the mean gain after ``rounds`` rounds with the first critic, ``by_critic`` the same for
    every critic; ``error_before`` is shared (both perfect critics score task responses
    alike). ``config``: each model's ModelConfig as a dict."""
    models = list(models)
    critics = [make_critic(c) for c in critics]
    if not models or not critics:
        raise ValueError("critic_model_size needs at least one model and one critic")
    if any(isinstance(c, SelfCritic) for c in critics):
        raise ValueError("critic_model_size compares models: use critics that do not depend "
                         "on the model ('oracle', 'quality', noisy ones)")
    if labels is not None and len(labels) != len(models):
        raise ValueError(f"{len(labels)} labels for {len(models)} models")
    dims = {(m.config.n_dims, m.config.n_points) for m in models}
    n_dims = models[0].config.n_dims
    if len({d for d, _ in dims}) != 1:
        raise ValueError(f"all models must share n_dims, got {sorted(dims)}")
    batch = _eval_batch(models[0], task or AlignmentTask(
        n_dims, min(m.config.n_points for m in models)), n_tasks, seed, offset, batch)
    by = {c.label: {"gain": [], "gain_se": [], "error_before": [], "error_after": [],
                    "accuracy": []} for c in critics}
    out = {"experiment": "critic_model_size", "format": RESULT_FORMAT, "sizes": [],
           "labels": [], "answers_oracle_at_1": [], "config": []}
    for i, m in enumerate(models):
        for c in critics:
            res = self_correct(m, batch, c, k, rounds, rescale=rescale, seed=seed)
            g, g_se = _mean_se(res.gains())
            row = by[c.label]
            row["gain"].append(g)
            row["gain_se"].append(g_se)
            row["error_before"].append(float(res.errors[:, 0].mean()))
            row["error_after"].append(float(res.errors[:, -1].mean()))
            row["accuracy"].append(float(np.nanmean(res.accuracy())))
            if c is critics[0]:
                out["answers_oracle_at_1"].append(res.oracle_at_one())
        cfg = m.config
        out["sizes"].append(int(m.num_parameters))
        out["labels"].append(labels[i] if labels is not None else
                             f"E{cfg.n_embd} L{cfg.n_layer} H{cfg.n_head}")
        out["config"].append(cfg.to_dict())
    first = by[critics[0].label]
    out.update({"gain": first["gain"], "gain_se": first["gain_se"],
                "error_before": first["error_before"], "error_after": first["error_after"],
                "accuracy": first["accuracy"], "by_critic": by, "critic": critics[0].label,
                "critics": [c.label for c in critics], "k": int(k), "rounds": int(rounds),
                "n_tasks": int(n_tasks), "seed": int(seed), "rescale": rescale})
    return out


def _model_info(model) -> dict:
    return {"config": model.config.to_dict(), "parameters": int(model.num_parameters)}


# -------------------------------------------------------------------------------- claims

#: report.md section of the critic rows
CLAIM_SECTION = "Critic quality and self-correction (the paper's LLM findings, synthetic world)"


def _fmt(x, nd=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{nd}f}"


def _row(experiment, claim, evidence, passed, criterion):
    """A report row; keys as icalign.experiments.Claim (section, claim, evidence, passed,
    criterion) plus the experiment name."""
    return {"section": CLAIM_SECTION, "experiment": experiment, "claim": claim,
            "evidence": evidence, "passed": bool(passed), "criterion": criterion}


def _variant_words(v):
    ref = "the oracle (the issue's critic)" if v.get("reference", "oracle") == "oracle" \
        else f"the {v['reference']} critic"
    ctx = ("each critic scores the context and the answers"
           if v.get("context", "critic") == "critic"
           else "the oracle scores the context, the critic only the model's answers")
    return ref, ctx


def claim_accuracy_gain(result: Mapping, alpha: float = 0.05) -> list[dict]:
    """Paper: self-correction gain correlates positively and significantly (p < 0.05)
    with the critic's (self-check) accuracy. One row per (reference, context) variant."""
    rows = []
    for v in result.get("variants") or [result]:
        r, p = v["pearson_r"], v["p_value"]
        ref, ctx = _variant_words(v)
        evidence = (f"Pearson r = {_fmt(r)}, p = {_fmt(p)} (t test; permutation p = "
                    f"{_fmt(v.get('p_value_permutation'))}), slope = {_fmt(v['slope'])} gain "
                    f"per unit accuracy over {v['n_points']} (critic, k) settings; "
                    f"{result.get('rounds', 1)} round(s)")
        ab = v.get("above_chance")
        if ab:
            evidence += (f"; accuracy >= 0.5 only: r = {_fmt(ab['pearson_r'])}, "
                         f"p = {_fmt(ab['p_value'])} ({ab['n_points']} settings)")
        rows.append(_row("critic_accuracy_gain",
                         f"Self-correction gain grows with critic accuracy (paper: significant "
                         f"positive correlation) — noisy versions of {ref}; {ctx}",
                         evidence, r > 0 and p < alpha,
                         f"Pearson r > 0 with two-sided p < {alpha:g} over all settings"))
    return rows


def claim_rounds(result: Mapping, accurate: Sequence[str] = ("oracle", "quality"),
                 poor: str = "self") -> list[dict]:
    """Paper: with an accurate critic the error keeps falling for a few rounds (~3); with
    the model's own (poor) critic it degrades after about one round. Differences are judged
    by their paired standard errors over tasks (``gain_se``, ``after_best``)."""
    rows = []
    curves = result["curves"]
    acc = result.get("accuracy", {})
    for label in ([accurate] if isinstance(accurate, str) else accurate):
        if label not in curves:
            continue
        c = curves[label]
        b = int(np.argmin(c))
        gse = result["gain_se"][label][b]
        gain = c[0] - c[b]
        rows.append(_row("critic_rounds",
                         f"With an accurate critic ({label}) self-correction keeps gaining "
                         f"for a few rounds (paper: up to ~3)",
                         f"error by round {[round(v, 3) for v in c]}; lowest at round {b}, "
                         f"gain {_fmt(gain)} ± {_fmt(gse)} (critic accuracy "
                         f"{_fmt(acc.get(label))})",
                         b >= 2 and gain > 2 * gse,
                         "error lowest at round >= 2, below round 0 by more than 2 paired "
                         "standard errors"))
    if poor in curves:
        c = curves[poor]
        ab = result["after_best"][poor]
        b = ab["best_round"]
        gse = result["gain_se"][poor][b]
        first = "no gain at any round" if b == 0 else f"gain {_fmt(c[0] - c[b])} ± {_fmt(gse)}"
        rows.append(_row("critic_rounds",
                         f"With its own critic ({poor}) self-correction degrades (paper: after "
                         f"about one round)",
                         f"error by round {[round(v, 3) for v in c]}; lowest at round {b} "
                         f"({first}), then rises by "
                         f"{_fmt(ab['rise'])} ± {_fmt(ab['rise_se'])} to round {len(c) - 1} "
                         f"(self-critic accuracy {_fmt(acc.get(poor))})",
                         b <= 1 and ab["rise"] > 2 * ab["rise_se"],
                         "error lowest at round <= 1, and the last round above it by more "
                         "than 2 paired standard errors"))
    return rows


def claim_model_size(result: Mapping) -> list[dict]:
    """Paper: a too-small model cannot self-correct even with a near-perfect critic (1.8B
    failed, 7B succeeded). One row per critic."""
    sizes = np.asarray(result["sizes"])
    i_small, i_big = int(np.argmin(sizes)), int(np.argmax(sizes))
    by = result.get("by_critic") or {result.get("critic", "oracle"): result}
    rows = []
    for label, r in by.items():
        gains, ses = np.asarray(r["gain"]), np.asarray(r["gain_se"])
        ok = (i_small != i_big and not gains[i_small] > 2 * ses[i_small]
              and gains[i_big] > 2 * ses[i_big])
        parts = [f"{lab} ({s:,} params): {_fmt(g)} ± {_fmt(se)}" for lab, s, g, se
                 in zip(result["labels"], result["sizes"], r["gain"], r["gain_se"])]
        rows.append(_row("critic_model_size",
                         f"A too-small model cannot self-correct even with a near-perfect "
                         f"critic ({label}); the largest can",
                         f"gain after {result.get('rounds', 1)} round(s): " + "; ".join(parts),
                         ok, "smallest model's gain < 2 standard errors, largest model's "
                             "gain > 2 standard errors"))
    return rows


def critic_claims(accuracy_gain: Mapping | None = None, rounds: Mapping | None = None,
                  model_size: Mapping | None = None) -> list[dict]:
    """Report rows {section, experiment, claim, evidence, passed, criterion}."""
    rows = []
    if accuracy_gain is not None:
        rows.extend(claim_accuracy_gain(accuracy_gain))
    if rounds is not None:
        rows.extend(claim_rounds(rounds))
    if model_size is not None:
        rows.extend(claim_model_size(model_size))
    return rows


# ------------------------------------------------------------------------------ plots


def _axes(ax):
    import matplotlib.pyplot as plt
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4))
    return ax.figure, ax


def plot_accuracy_gain(result: Mapping, axes=None):
    """Scatter of gain vs critic accuracy (marker per k), LS line, r and p in the legend;
    one panel per (reference, context) variant."""
    import matplotlib.pyplot as plt
    variants = result.get("variants") or [result]
    if axes is None:
        fig, axes = plt.subplots(1, len(variants), figsize=(5.2 * len(variants), 4.2),
                                 squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    markers = "osD^v<>"
    for ax, v in zip(axes, variants):
        pts = v["points"]
        for i, k in enumerate(sorted({p["k"] for p in pts})):
            sel = [p for p in pts if p["k"] == k]
            ax.scatter([p["accuracy"] for p in sel], [p["gain"] for p in sel],
                       marker=markers[i % len(markers)], label=f"k = {k}", alpha=0.8)
        xs = np.linspace(min(p["accuracy"] for p in pts), max(p["accuracy"] for p in pts), 50)
        ax.plot(xs, v["slope"] * xs + v["intercept"], "k--",
                label=f"LS fit: r = {v['pearson_r']:.2f}, p = {v['p_value']:.2g}")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.axvline(0.5, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("critic accuracy (pairwise ranking)")
        ax.set_ylabel(f"gain after {result.get('rounds', 1)} round(s) (error drop)")
        ctx = "critic scores context" if v.get("context", "critic") == "critic" \
            else "oracle scores context"
        ax.set_title(f"noisy {v.get('reference', 'oracle')} critics; {ctx}", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("Self-correction gain vs critic accuracy")
    fig.tight_layout()
    return fig


def plot_rounds(result: Mapping, ax=None):
    """Mean normalized error per self-correction round, one line per critic."""
    fig, ax = _axes(ax)
    rounds = result["rounds"]
    for label, curve in result["curves"].items():
        se = result.get("se", {}).get(label)
        acc = result.get("accuracy", {}).get(label)
        name = f"{label} (acc {acc:.2f})" if acc is not None else label
        ax.errorbar(rounds, curve, yerr=se, marker="o", capsize=2, label=name)
    ax.set_xlabel("self-correction round")
    ax.set_ylabel("normalized error 1 - cos(ŷ, y*)")
    ax.set_title(f"Multi-round self-correction (k = {result.get('k')})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_model_size(result: Mapping, ax=None):
    """Gain with near-perfect critics against model size (parameters, log axis)."""
    fig, ax = _axes(ax)
    by = result.get("by_critic") or {result.get("critic", "oracle"): result}
    for j, (label, r) in enumerate(by.items()):
        ax.errorbar(np.asarray(result["sizes"]) * (1 + 0.04 * j), r["gain"],
                    yerr=r.get("gain_se"), marker="o", ls="none", capsize=3,
                    label=f"{label} critic")
    for s, g, lab in zip(result["sizes"], result["gain"], result["labels"]):
        ax.annotate(lab, (s, g), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"gain after {result.get('rounds', 1)} round(s)")
    ax.set_title("Self-correction with a near-perfect critic vs model size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------- whole runs

CRITIC_PLOTS = {"critic_accuracy_gain": plot_accuracy_gain, "critic_rounds": plot_rounds,
                "critic_model_size": plot_model_size}
EXPERIMENT_NAMES = tuple(CRITIC_PLOTS)

