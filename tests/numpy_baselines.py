"""Straightforward NumPy versions of the task sampler's RNG, of the baselines
(docs/math.md, "Baselines") and of the four alignment objectives of one
prediction (Plackett-Luce or Bradley-Terry, with cosine or neg_sq reward),
written independently of the C core, for tests.

The C core draws from Philox4x32-10 keyed by splitmix64(seed) and a domain;
it is ported here so that the GD baseline can be compared exactly, from the
same initial W, rather than only statistically.
"""
from __future__ import annotations

import math

import numpy as np

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
DOMAIN_TASK, DOMAIN_GD = 2, 3


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def philox4x32_10(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c3 ^ k1) & M32, \
            p0 & M32
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return [c0, c1, c2, c3]


class Stream:
    """One counter-based stream (seed, domain, stream id)."""

    def __init__(self, seed: int, domain: int, stream: int):
        key = splitmix64(splitmix64(seed) ^ ((domain * 0xD6E8FEB86659FD93) & M64))
        self.key = [key & M32, key >> 32]
        self.block_index = 0
        self.stream = stream
        self.words: list[int] = []

    def u32(self) -> int:
        if not self.words:
            counter = [self.block_index & M32, self.block_index >> 32, self.stream & M32,
                       self.stream >> 32]
            self.words = philox4x32_10(counter, self.key)
            self.block_index += 1
        return self.words.pop(0)

    def uniform(self) -> float:
        a, b = self.u32() >> 5, self.u32() >> 6
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)

    def normal(self) -> float:
        u1, u2 = 1.0 - self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


def gd_init(seed: int, b: int, t: int, d: int) -> np.ndarray:
    """The C GD baseline's initial W for task b and t: U(-1/sqrt d, 1/sqrt d)."""
    rng = Stream(seed, DOMAIN_GD, (b << 32) | t)
    bound = 1.0 / math.sqrt(d)
    return np.array([bound * (2.0 * rng.uniform() - 1.0) for _ in range(d * d)]).reshape(d, d)


def ranking(r: np.ndarray) -> np.ndarray:
    """Indices best first; ties by index."""
    return np.argsort(-np.asarray(r, np.float64), kind="stable")


NORM_EPS = 1e-8


def scores(yhat, Y, reward):
    """Policy rewards s_j = rho(yhat, y_j) and ds/dyhat (k, d)."""
    yhat = np.asarray(yhat, np.float64)
    Y = np.asarray(Y, np.float64)
    if reward == "cosine":
        norm = np.linalg.norm(yhat)
        na = max(norm, NORM_EPS)
        nb = np.maximum(np.linalg.norm(Y, axis=1), NORM_EPS)
        s = Y @ yhat / (na * nb)
        radial = s[:, None] * yhat[None, :] / na ** 2 if norm > NORM_EPS else 0.0
        return s, Y / (na * nb)[:, None] - radial
    if reward == "neg_sq":
        diff = yhat[None, :] - Y
        return -(diff ** 2).sum(axis=1), -2.0 * diff
    raise ValueError(reward)


def ranking_loss(s, objective):
    """Loss of scores s (ordered best first) and dL/ds."""
    k = len(s)
    if objective == "pl":
        loss, ds = 0.0, np.zeros(k)
        for i in range(k):
            tail = s[i:]
            m = tail.max()
            lse = m + math.log(np.exp(tail - m).sum())
            loss += lse - s[i]
            ds[i:] += np.exp(tail - lse)
            ds[i] -= 1.0
        return loss, ds
    if objective == "bt":
        loss, ds = 0.0, np.zeros(k)
        if k < 2:
            return loss, ds
        w = 2.0 / (k * (k - 1))
        for i in range(k):
            for j in range(i + 1, k):
                z = s[j] - s[i]
                loss += w * np.logaddexp(0.0, z)
                sig = 0.5 * (1.0 + math.tanh(0.5 * z))
                ds[i] -= w * sig
                ds[j] += w * sig
        return loss, ds
    raise ValueError(objective)


def objective_loss_grad(yhat, Y, r, objective="pl", reward="cosine"):
    """The objective of one prediction over the examples (Y, r), ranked by r
    best first (ties by index), and its gradient with respect to yhat."""
    Y = np.asarray(Y, np.float64)[ranking(r)]
    s, dsdy = scores(yhat, Y, reward)
    loss, ds = ranking_loss(s, objective)
    return loss, ds @ dsdy


def pl_loss_grad(yhat, Y, r):
    """Plackett-Luce loss of one prediction with cosine reward and d loss/d yhat."""
    return objective_loss_grad(yhat, Y, r, "pl", "cosine")


def gd_fit(x, Y, r, W0, steps=50, lr=0.1, objective="pl", reward="cosine"):
    """Adam (0.9, 0.999, 1e-8, bias-corrected) on the objective of x W over the
    examples; the prediction is rounded to float32 as the C core stores it."""
    W = np.array(W0, np.float64)
    m = np.zeros_like(W)
    v = np.zeros_like(W)
    x = np.asarray(x, np.float64)
    for step in range(1, steps + 1):
        pred = (x @ W).astype(np.float32).astype(np.float64)
        _, dy = objective_loss_grad(pred, Y, r, objective, reward)
        g = np.outer(x, dy)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        W -= lr / (1 - 0.9 ** step) * m / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
    return (x @ W).astype(np.float32)


def scale_free_gradient(yhat, Y, r, objective="pl", reward="cosine"):
    """|dL/dyhat| times |yhat| (cosine) or the RMS response length (neg_sq)."""
    _, grad = objective_loss_grad(yhat, Y, r, objective, reward)
    if reward == "cosine":
        scale = np.linalg.norm(yhat)
    else:
        scale = np.sqrt(np.mean(np.sum(np.asarray(Y, np.float64) ** 2, axis=1)))
    return float(scale * np.linalg.norm(grad))


def mean_response(Y, r):
    return np.asarray(Y, np.float64).mean(axis=0)


def best_response(Y, r):
    return np.asarray(Y, np.float64)[int(np.argmax(r))]


def weighted_response(Y, r, temperature=1.0):
    w = np.exp(np.asarray(r, np.float64) / temperature)
    return (w[:, None] * np.asarray(Y, np.float64)).sum(axis=0) / w.sum()


def oracle_response(Y, r):
    """Least squares of y_i = r_i a + (1 - r_i) b; returns a (the fitted y*)."""
    r = np.asarray(r, np.float64)
    A = np.stack([r, 1.0 - r], axis=1)
    coef, *_ = np.linalg.lstsq(A, np.asarray(Y, np.float64), rcond=None)
    return coef[0]
