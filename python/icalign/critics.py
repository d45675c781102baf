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

from .evaluate import normalized_error

#: norms below this count as zero
NORM_EPS = 1e-12

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
    f = (a[..., None] + b[..., None] * cands) / np.maximum(vnorm, NORM_EPS)
    best = np.take_along_axis(cands, np.argmax(f, axis=-1)[..., None], axis=-1)[..., 0]
    # no information: the response is (numerically) orthogonal to span{y*, eps}
    ynorm = np.linalg.norm(y, axis=-1)
    flat = np.max(np.abs(f), axis=-1) <= 1e-9 * np.maximum(ynorm, NORM_EPS)
    best = np.where(flat | (ynorm <= NORM_EPS), 0.5, best)
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
    """The perfect critic named ``reference``: 'oracle' (``oracle_rewards``, the
    definition of docs/math.md) or 'quality' (``quality_rewards``)."""
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
    """The mixing weight that best explains a response (``oracle_rewards``)."""

    label = "oracle"

    def __call__(self, inp, rng):
        return oracle_rewards(inp.responses, inp.ystar, inp.eps)


class QualityCritic(Critic):
    """Grades by measured quality: ``quality_rewards`` (the weight of the equally good
    task response). The oracle gives 1 to every answer that overshoots y* (as seen from eps), however far, and the trained models' answers
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
    replaced by a fresh U(0, 1) draw with probability ``p`` (the reward noise of
    docs/math.md, "The task"): p = 0 is the base critic, p = 1 a useless critic."""

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
    """A perfect critic (``base``) plus Gaussian noise of standard deviation ``sigma``,
    clipped to [0, 1]."""

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
    """1 - a perfect critic (``base``): orders every pair the wrong way."""

    def __init__(self, base: str = "oracle"):
        check_reference(base)
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

