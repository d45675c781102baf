"""Critics: who scores a response (``docs/math.md``, "Critics and self-correction").

A critic returns rewards in [0, 1] for responses of a task; the self-correction loop
(``icalign.self_correction``) shows them to the model next to the responses.

``OracleCritic``       r̂ = argmax_{r in [0,1]} cos(ŷ, r y* + (1 - r) eps) (closed form).
``QualityCritic()``    the weight of the task response as good as ŷ (see below).
``ReplaceCritic(p)``   a perfect critic (``base``: oracle or quality), each score replaced
                       by U(0,1) with probability p.
``GaussianCritic(s)``  a perfect critic plus N(0, s²), clipped to [0, 1].
``InvertedCritic()``   1 - a perfect critic.
``SelfCritic(model)``  the model's own reward head (``ModelConfig(reward_head=True)``).

Design decisions:

* **Two perfect critics.** The oracle gives the weight that best *explains* an
  answer; answers beyond y* (as seen from eps) all get exactly 1 however far off
  they are, and trained models' answers mostly lie there (the PL/cosine objective
  favours directions like y* - c eps). The quality critic gives the weight of the
  task response with the same error. Both are exact on task responses; the
  experiments report both, with the oracle's set-up first.
* **Self-critic training.** A model built with ``ModelConfig(reward_head=True)``
  is trained from scratch with the ordinary recipe (exact rewards, fresh tasks)
  on PL + ``reward_weight`` x MSE(reward head, shown reward) over every y-token
  (in the registry, ``icalign.experiments.critic_quality.self_critic_spec``: the
  default model's recipe with ``reward_weight=10``). The weight is 10, not 1, because
  the MSE (about 0.08 at chance) is tiny next to the PL loss (15-18), so with weight 1
  the shared trunk learns reward features slowly (in development runs on E32/L4 models
  the head's self-check accuracy on task responses was 0.84 at weight 1 and 0.90 at
  weight 10, with no worse PL error; every run measures and reports its own).
  The head only ever sees task responses, which lie on the segment between eps
  and y*; the model's own answers do not, so its accuracy on them is lower
  (``SelfCorrection.accuracy(positions="answers")``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validation import real_array
from .evaluate import normalized_error

#: norms below this count as zero
NORM_EPS = 1e-12

def oracle_rewards(responses, ystar, eps) -> np.ndarray:
    """The oracle critic: the mixing weight that best explains each response,
    ``argmax_{r in [0,1]} cos(ŷ, r y* + (1 - r) eps)``.

    The definition of docs/math.md, section "Critics and self-correction".
    With v(r) = eps + r D, D = y* - eps, the cosine
    f(r) = (a + r b) / sqrt(c + 2 e r + g r^2) (a = ŷ·eps, b = ŷ·D, c = |eps|^2,
    e = eps·D, g = |D|^2) has a single stationary point on the real line,
    r0 = (a e - b c) / (b e - a g); the maximum over [0, 1] is at 0, 1 or
    clip(r0), whichever gives the largest cosine. Scale-free (a positive factor
    on ŷ multiplies f and leaves r0 unchanged) and exact for task responses
    (ŷ = v(r_i) gives r0 = r_i, where the cosine is 1). Every response beyond
    y* as seen from eps gets exactly 1, however far off it is.

    Parameters
    ----------
    responses : array_like, shape (B, M, d) or (B, d)
        The responses ŷ to score, M per task (or one).
    ystar, eps : array_like, shape (B, d)
        Each task's right answer and distractor.

    Returns
    -------
    numpy.ndarray, float64
        (B, M), or (B,) for (B, d) responses: weights in [0, 1]. A response
        orthogonal to span{y*, eps} (or zero) carries no information and
        gets 0.5.

    Raises
    ------
    ValueError
        If ``responses`` is neither 2-D nor 3-D, or ``ystar`` and ``eps`` are
        not (B, d) for the responses' B and d.

    Examples
    --------
    >>> import numpy as np
    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(4, seed=0)
    >>> r = ica.oracle_rewards(b.ys, b.ystar, b.eps)     # exact on task responses
    >>> r.shape, bool(np.allclose(r, b.rs_true, atol=1e-6))
    ((4, 20), True)
    >>> ica.oracle_rewards(2 * b.ystar - b.eps, b.ystar, b.eps)  # overshoots y*: 1
    array([1., 1., 1., 1.])
    >>> ica.oracle_rewards(np.zeros((4, 5)), b.ystar, b.eps)     # no information
    array([0.5, 0.5, 0.5, 0.5])
    """
    y = real_array("responses", responses)
    single = y.ndim == 2
    if single:
        y = y[:, None, :]
    if y.ndim != 3:
        raise ValueError(f"responses must be (B, M, d) or (B, d), got shape {y.shape}")
    ystar = real_array("ystar", ystar)
    eps = real_array("eps", eps)
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
    f = (a[..., None] + b[..., None] * cands) / np.maximum(vnorm, NORM_EPS)
    best = np.take_along_axis(cands, np.argmax(f, axis=-1)[..., None], axis=-1)[..., 0]
    # no information: the response is (numerically) orthogonal to span{y*, eps}
    ynorm = np.linalg.norm(y, axis=-1)
    flat = np.max(np.abs(f), axis=-1) <= 1e-9 * np.maximum(ynorm, NORM_EPS)
    best = np.where(flat | (ynorm <= NORM_EPS), 0.5, best)
    return best[:, 0] if single else best


def quality_rewards(responses, ystar, eps, iterations: int = 60) -> np.ndarray:
    """The quality critic: the mixing weight of the task response exactly as good
    as each response.

    The r in [0, 1] with cos(r y* + (1 - r) eps, y*) = cos(ŷ, y*) (0 if ŷ is
    worse than eps, 1 if it is as good as y*); docs/math.md, section "Critics
    and self-correction". An alternative to ``oracle_rewards`` for answers off
    the segment [eps, y*]: the oracle gives the weight that best *explains*
    the answer, which is 1 for every answer lying beyond y* as seen from eps,
    however far; this one grades by the error that is measured. Both are
    exact on task responses and scale-free. Along the segment the angle to y*
    falls monotonically (a line meets each ray from the origin once), so
    bisection finds r.

    Parameters
    ----------
    responses, ystar, eps : array_like
        As for ``oracle_rewards``: (B, M, d) or (B, d) responses, and each
        task's y* and eps, (B, d).
    iterations : int, default 60
        Bisection steps (the error in r is at most 2**-(iterations + 1)).

    Returns
    -------
    numpy.ndarray, float64
        (B, M), or (B,) for (B, d) responses: weights in [0, 1].

    Raises
    ------
    ValueError
        If the shapes do not fit: ``responses`` (B, M, d) or (B, d) with
        ``ystar`` and ``eps`` (B, d).

    Examples
    --------
    An answer beyond y* as seen from eps: the oracle gives it 1, this critic
    the weight of the task response that is as good:

    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(2, seed=0)
    >>> overshoot = 2 * b.ystar - b.eps
    >>> ica.oracle_rewards(overshoot, b.ystar, b.eps)
    array([1., 1.])
    >>> ica.quality_rewards(overshoot, b.ystar, b.eps).round(3)
    array([0.604, 0.498])
    >>> q = ica.quality_rewards(b.ys, b.ystar, b.eps)    # exact on task responses
    >>> bool(abs(q - b.rs_true).max() < 1e-6)
    True
    """
    y = real_array("responses", responses)
    single = y.ndim == 2
    if single:
        y = y[:, None, :]
    ystar = real_array("ystar", ystar)
    eps = real_array("eps", eps)
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

    ``self_correct`` builds one for every call of a critic.

    Attributes
    ----------
    responses : numpy.ndarray, shape (B, M, d), float64
        The responses to score (already placed in ``ys``).
    ystar, eps : numpy.ndarray, shape (B, d)
        The task's answer and distractor (for oracle-based critics).
    xs, ys : numpy.ndarray, shape (B, n, d)
        Queries and responses of the sequence built so far, covering at least
        every scored position.
    rs : numpy.ndarray, shape (B, n)
        Its rewards; those at and after the first scored position are not yet
        meaningful.
    positions : tuple of int
        The example positions of the M responses.

    Examples
    --------
    >>> import numpy as np
    >>> import icalign as ica
    >>> from icalign.critics import CriticInput
    >>> b = ica.AlignmentTask().sample(2, seed=0)
    >>> inp = CriticInput(b.ys[:, :3].astype(np.float64), b.ystar, b.eps,
    ...                   b.xs, b.ys, b.rs, positions=(0, 1, 2))
    >>> ica.OracleCritic()(inp, np.random.default_rng(0)).round(3)
    array([[0.873, 0.114, 0.404],
           [0.777, 0.161, 0.535]])
    """

    responses: np.ndarray
    ystar: np.ndarray
    eps: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    rs: np.ndarray
    positions: tuple


class Critic:
    """Base class of the critics: ``critic(inp, rng)`` scores responses.

    A subclass implements ``__call__(inp, rng)``, which takes a
    ``CriticInput`` and a ``numpy.random.Generator`` (the only source of
    randomness it may use, so that runs are reproducible) and returns finite
    rewards of shape (B, M), in [0, 1] for the critics of this module. See
    docs/math.md, section "Critics and self-correction".

    Attributes
    ----------
    label : str
        The name that results and plots show.
    sequential : bool
        True for critics that look at earlier rewards (the self-critic): they
        must score one position at a time. The others score any set of
        positions at once.

    Examples
    --------
    A critic that likes everything equally (pairwise accuracy 1/2):

    >>> import numpy as np
    >>> import icalign as ica
    >>> class Indifferent(ica.Critic):
    ...     label = "indifferent"
    ...     def __call__(self, inp, rng):
    ...         return np.full(inp.responses.shape[:2], 0.5)
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> b = ica.AlignmentTask().sample(4, seed=0)
    >>> res = ica.self_correct(model, b, Indifferent(), k=3, rounds=1)
    >>> res.critic, res.rs[0].tolist()
    ('indifferent', [0.5, 0.5, 0.5, 0.5])
    >>> Indifferent().to_dict()
    {'label': 'indifferent', 'kind': 'Indifferent'}
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
    """The perfect critic named ``reference``, applied to ``responses``.

    Parameters
    ----------
    reference : {'oracle', 'quality'}
        'oracle' (``oracle_rewards``, the definition of docs/math.md, section
        "Critics and self-correction") or 'quality' (``quality_rewards``).
    responses, ystar, eps : array_like
        As for ``oracle_rewards``.

    Returns
    -------
    numpy.ndarray, float64
        (B, M), or (B,) for (B, d) responses.

    Raises
    ------
    ValueError
        If ``reference`` is neither 'oracle' nor 'quality' (or the shapes do
        not fit).

    Examples
    --------
    >>> import icalign as ica
    >>> from icalign.critics import reference_rewards
    >>> b = ica.AlignmentTask().sample(2, seed=0)
    >>> reference_rewards("quality", b.ys[:, :2], b.ystar, b.eps).round(3)
    array([[0.873, 0.114],
           [0.777, 0.161]])
    >>> reference_rewards("truth", b.ys, b.ystar, b.eps)
    Traceback (most recent call last):
        ...
    ValueError: reference must be one of ('oracle', 'quality'), got 'truth'
    """
    if reference == "oracle":
        return oracle_rewards(responses, ystar, eps)
    if reference == "quality":
        return quality_rewards(responses, ystar, eps)
    raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")


def check_reference(base: str) -> None:
    """ValueError unless ``base`` names a perfect critic (one of ``REFERENCES``)."""
    if base not in REFERENCES:
        raise ValueError(f"the reference (base) critic must be one of {REFERENCES}, got "
                         f"{base!r}")


def _suffix(base):
    return "" if base == "oracle" else f" ({base})"


class OracleCritic(Critic):
    """The oracle critic: the mixing weight that best explains a response.

    Scores with ``oracle_rewards``; exact on task responses, 1 for every
    answer beyond y* as seen from eps. Label 'oracle'; ``make_critic('oracle')``.

    Examples
    --------
    >>> import icalign as ica
    >>> ica.OracleCritic(), ica.make_critic("oracle").to_dict()
    (OracleCritic('oracle'), {'label': 'oracle', 'kind': 'OracleCritic'})
    """

    label = "oracle"

    def __call__(self, inp, rng):
        return oracle_rewards(inp.responses, inp.ystar, inp.eps)


class QualityCritic(Critic):
    """The quality critic: grades by measured quality (``quality_rewards``).

    Gives the weight of the equally good task response. The oracle gives 1 to
    every answer that overshoots y* (as seen from eps), however far, and the
    trained models' answers mostly do; this one is the perfect critic of the
    error that is measured. Label 'quality'; ``make_critic('quality')``.

    Examples
    --------
    >>> import icalign as ica
    >>> ica.QualityCritic(), ica.make_critic("quality").to_dict()
    (QualityCritic('quality'), {'label': 'quality', 'kind': 'QualityCritic'})
    """

    label = "quality"

    def __call__(self, inp, rng):
        return quality_rewards(inp.responses, inp.ystar, inp.eps)


def _check_prob(name, value):
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


class ReplaceCritic(Critic):
    """A perfect critic with each score replaced by a U(0, 1) draw with probability p.

    The reward noise of docs/math.md, section "The task", applied to a
    critic: p = 0 is the base critic, p = 1 a useless one.
    ``make_critic('replace:P')`` builds one.

    Parameters
    ----------
    p : float
        Probability, in [0, 1], that a score is replaced (independently per
        score, by a fresh draw).
    base : {'oracle', 'quality'}, default 'oracle'
        The perfect critic whose scores are kept.

    Raises
    ------
    ValueError
        If ``p`` lies outside [0, 1] or ``base`` is unknown.

    Examples
    --------
    >>> import icalign as ica
    >>> c = ica.ReplaceCritic(0.25)
    >>> c, c.to_dict()
    (ReplaceCritic('replace p=0.25'), {'label': 'replace p=0.25', 'kind': 'ReplaceCritic', 'p': 0.25, 'base': 'oracle'})
    >>> ica.ReplaceCritic(0.5, base="quality").label
    'replace p=0.5 (quality)'
    >>> ica.ReplaceCritic(1.5)
    Traceback (most recent call last):
        ...
    ValueError: ReplaceCritic p must lie in [0, 1], got 1.5
    """

    def __init__(self, p: float, base: str = "oracle"):
        self.p = _check_prob("ReplaceCritic p", p)
        check_reference(base)
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
    """A perfect critic plus Gaussian noise, clipped to [0, 1].

    ``make_critic('gauss:SIGMA')`` builds one.

    Parameters
    ----------
    sigma : float
        Standard deviation of the noise (finite, >= 0; 0 is the base critic).
    base : {'oracle', 'quality'}, default 'oracle'
        The perfect critic the noise is added to.

    Raises
    ------
    ValueError
        If ``sigma`` is negative or not finite, or ``base`` is unknown.

    Examples
    --------
    >>> import icalign as ica
    >>> ica.GaussianCritic(0.3)
    GaussianCritic('gauss s=0.3')
    >>> ica.make_critic("gauss:0.1", base="quality").to_dict()
    {'label': 'gauss s=0.1 (quality)', 'kind': 'GaussianCritic', 'sigma': 0.1, 'base': 'quality'}
    """

    def __init__(self, sigma: float, base: str = "oracle"):
        sigma = float(sigma)
        if not (sigma >= 0.0 and math.isfinite(sigma)):
            raise ValueError(f"GaussianCritic sigma must be a finite number >= 0, got {sigma}")
        check_reference(base)
        self.sigma = sigma
        self.base = base
        self.label = f"gauss s={sigma:g}{_suffix(base)}"

    def __call__(self, inp, rng):
        r = reference_rewards(self.base, inp.responses, inp.ystar, inp.eps)
        return np.clip(r + self.sigma * rng.standard_normal(r.shape), 0.0, 1.0)

    def to_dict(self):
        return {**super().to_dict(), "sigma": self.sigma, "base": self.base}


class InvertedCritic(Critic):
    """1 - a perfect critic: orders every pair the wrong way (accuracy 0).

    Parameters
    ----------
    base : {'oracle', 'quality'}, default 'oracle'
        The perfect critic that is inverted.

    Raises
    ------
    ValueError
        If ``base`` is neither 'oracle' nor 'quality'.

    Examples
    --------
    On task responses it is never right:

    >>> import icalign as ica
    >>> b = ica.AlignmentTask().sample(8, seed=0)
    >>> res = ica.self_correct(ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2)),
    ...                        b, ica.InvertedCritic(), k=4, rounds=0)
    >>> res.critic, res.accuracy(positions="context").tolist()
    ('inverted', [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    """

    def __init__(self, base: str = "oracle"):
        check_reference(base)
        self.base = base
        self.label = f"inverted{_suffix(base)}"

    def __call__(self, inp, rng):
        return 1.0 - reference_rewards(self.base, inp.responses, inp.ystar, inp.eps)

    def to_dict(self):
        return {**super().to_dict(), "base": self.base}


class SelfCritic(Critic):
    """The self-critic: the model's own reward head.

    ``model.predict_rewards`` read at the y-token of the scored response,
    which sees x, the response and the triplets before it (with their
    rewards), but never y* or eps. Estimates are clipped to [0, 1], the range
    of the rewards the head was trained on. Sequential: it scores one position
    at a time (docs/math.md, section "Critics and self-correction").

    Parameters
    ----------
    model : Transformer
        A model built with ``ModelConfig(reward_head=True)`` (and trained with
        its reward head, for the scores to mean anything).
    label : str, default 'self'
        The name results show.

    Raises
    ------
    ValueError
        If the model has no reward head (or, when called, if asked to score
        more than one position).

    Examples
    --------
    >>> import icalign as ica
    >>> cfg = ica.ModelConfig(n_embd=8, n_layer=1, n_head=2, reward_head=True)
    >>> critic = ica.SelfCritic(ica.Transformer(cfg))
    >>> critic, critic.sequential
    (SelfCritic('self'), True)
    >>> b = ica.AlignmentTask().sample(4, seed=0)
    >>> res = ica.self_correct(critic.model, b, critic, k=3, rounds=1)
    >>> bool(((res.rs >= 0) & (res.rs <= 1)).all())
    True
    >>> ica.SelfCritic(ica.Transformer(cfg.replace(reward_head=False)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: SelfCritic needs a model built with ModelConfig(reward_head=True) and ...
    """

    sequential = True

    def __init__(self, model, label: str = "self"):
        if not getattr(model, "config", None) or not model.config.reward_head:
            raise ValueError("SelfCritic needs a model built with ModelConfig(reward_head=True) "
                             "and trained with its reward head (see icalign.experiments.critic_quality)")
        self.model = model
        self.label = label

    def __call__(self, inp, rng):
        if len(inp.positions) != 1:
            raise ValueError("SelfCritic scores one position at a time")
        n = int(inp.positions[0])
        rhat = self.model.predict_rewards(inp.xs[:, :n + 1], inp.ys[:, :n + 1],
                                          inp.rs[:, :n + 1])
        return np.clip(rhat[:, n:n + 1].astype(np.float64), 0.0, 1.0)


def _critic_number(spec: str, arg: str) -> float:
    try:
        return float(arg)
    except ValueError:
        raise ValueError(f"critic {spec!r}: {arg!r} is not a number (expected e.g. "
                         f"'replace:0.25' or 'gauss:0.3')") from None


def make_critic(spec, model=None, base: str = "oracle") -> Critic:
    """A critic from a ``Critic`` or a short name.

    Parameters
    ----------
    spec : Critic or str
        A critic (returned as is) or one of 'oracle', 'quality', 'inverted',
        'self', 'replace:P' (``ReplaceCritic(P)``) and 'gauss:SIGMA'
        (``GaussianCritic(SIGMA)``).
    model : Transformer, optional
        The model whose reward head 'self' reads (needed for 'self').
    base : {'oracle', 'quality'}, default 'oracle'
        The perfect critic the noisy critics and 'inverted' are built on.

    Returns
    -------
    Critic

    Raises
    ------
    TypeError
        If ``spec`` is neither a Critic nor a str.
    ValueError
        If the name is unknown, 'self' comes without a model (or one without
        a reward head), or a parameter is invalid.

    Examples
    --------
    >>> import icalign as ica
    >>> ica.make_critic("replace:0.5"), ica.make_critic("inverted", base="quality")
    (ReplaceCritic('replace p=0.5'), InvertedCritic('inverted (quality)'))
    >>> c = ica.OracleCritic()
    >>> ica.make_critic(c) is c
    True
    >>> ica.make_critic("noisy")
    Traceback (most recent call last):
        ...
    ValueError: unknown critic 'noisy'; expected 'oracle', 'quality', 'inverted', 'self', 'replace:P' or 'gauss:SIGMA'
    """
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
        return ReplaceCritic(_critic_number(spec, arg), base)
    if name == "gauss" and arg:
        return GaussianCritic(_critic_number(spec, arg), base)
    raise ValueError(f"unknown critic {spec!r}; expected 'oracle', 'quality', 'inverted', "
                     f"'self', 'replace:P' or 'gauss:SIGMA'")

