"""Small statistics for the critic-quality experiments, in NumPy and the standard library.

Pearson correlation with its least-squares line, a two-sided p-value from the exact
Student t distribution (through a regularized incomplete beta function implemented
here, so that SciPy is not a runtime dependency) and a seeded permutation test. Their
use is described in docs/math.md, section "Critics and self-correction".
"""
from __future__ import annotations

import math

import numpy as np

_BETACF_MAX_ITER = 10_000
_BETACF_EPS = 1e-15
_TINY = 1e-300


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz method).

    Converges quickly for x < (a + 1) / (a + b + 2); the caller uses the symmetry
    I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
    """
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    dd = 1.0 - qab * x / qap
    dd = _TINY if abs(dd) < _TINY else dd
    dd = 1.0 / dd
    h = dd
    for m in range(1, _BETACF_MAX_ITER + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        dd = 1.0 + aa * dd
        dd = _TINY if abs(dd) < _TINY else dd
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        dd = 1.0 / dd
        h *= dd * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        dd = 1.0 + aa * dd
        dd = _TINY if abs(dd) < _TINY else dd
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        dd = 1.0 / dd
        delta = dd * c
        h *= delta
        if abs(delta - 1.0) < _BETACF_EPS:
            return h
    raise RuntimeError(f"incomplete beta continued fraction did not converge for "
                       f"a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b).

    Parameters
    ----------
    a, b : float
        Shape parameters, > 0.
    x : float
        Upper limit of integration, in [0, 1].

    Returns
    -------
    float
        I_x(a, b), the CDF at x of the Beta(a, b) distribution.

    Raises
    ------
    ValueError
        If a or b is not > 0, or x lies outside [0, 1].
    RuntimeError
        If the continued fraction does not converge (not seen in practice).

    Examples
    --------
    >>> from icalign.stats import betainc
    >>> round(betainc(2.0, 3.0, 0.4), 6)
    0.5248
    >>> round(betainc(1.0, 1.0, 0.3), 12)  # the uniform distribution
    0.3
    """
    a, b, x = float(a), float(b), float(x)
    if not (a > 0.0 and b > 0.0):
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if not (0.0 <= x <= 1.0):
        raise ValueError(f"betainc needs 0 <= x <= 1, got x={x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def student_t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| >= |t|) of Student's t distribution.

    Computed as I_{df / (df + t^2)}(df / 2, 1 / 2).

    Parameters
    ----------
    t : float
        The statistic (an infinite t gives 0).
    df : float
        Degrees of freedom, > 0.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``df`` is not > 0 or ``t`` is NaN.

    Examples
    --------
    >>> from icalign.stats import student_t_sf2
    >>> round(student_t_sf2(2.0, 10), 6)
    0.073388
    >>> student_t_sf2(0.0, 5)
    1.0
    """
    df = float(df)
    if not df > 0.0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    t = float(t)
    if math.isnan(t):
        raise ValueError("t is NaN")
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def pearson(x, y) -> dict:
    """Pearson correlation, least-squares line and the exact t-test p-value.

    The p-value is two-sided, under the null of no correlation: the t test with
    n - 2 degrees of freedom, t = r sqrt((n - 2) / (1 - r^2)); the same test as
    ``scipy.stats.pearsonr``.

    Parameters
    ----------
    x, y : array_like
        Finite values of the same length n >= 3 (flattened), neither constant.

    Returns
    -------
    dict
        JSON-able ``{n, pearson_r, slope, intercept, t, p_value}``, with
        ``y ~ slope * x + intercept`` the least-squares line.

    Raises
    ------
    ValueError
        If the lengths differ, n < 3, a value is not finite, or x or y is
        constant.

    Examples
    --------
    >>> from icalign.stats import pearson
    >>> res = pearson([1, 2, 3, 4, 5], [1, 3, 2, 5, 4])
    >>> round(res["pearson_r"], 6), round(res["slope"], 6), round(res["p_value"], 6)
    (0.8, 0.8, 0.104088)
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    n = x.size
    if n < 3:
        raise ValueError(f"pearson needs at least 3 points, got {n}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("pearson: x and y must be finite")
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
    if sxx == 0.0 or syy == 0.0:
        raise ValueError("pearson: x or y is constant; the correlation is undefined")
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    slope = sxy / sxx
    intercept = float(y.mean() - slope * x.mean())
    df = n - 2
    if abs(r) == 1.0:
        t, p = math.copysign(math.inf, r), 0.0
    else:
        t = r * math.sqrt(df / (1.0 - r * r))
        p = student_t_sf2(t, df)
    return {"n": int(n), "pearson_r": float(r), "slope": float(slope),
            "intercept": intercept, "t": float(t), "p_value": float(p)}


def permutation_pvalue(x, y, n_permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided permutation p-value of Pearson r.

    The fraction of random pairings (y shuffled by a seeded generator) with |r|
    at least the observed |r|, counting the observed pairing itself:
    (1 + hits) / (1 + n_permutations).

    Parameters
    ----------
    x, y : array_like
        Values of the same length >= 3 (flattened), neither constant.
    n_permutations : int, default 10000
        Number of random pairings (>= 1).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    float
        A p-value in (0, 1].

    Raises
    ------
    ValueError
        If the lengths differ or are below 3, ``n_permutations`` < 1, or x or
        y is constant.

    Examples
    --------
    >>> from icalign.stats import permutation_pvalue
    >>> p = permutation_pvalue([1, 2, 3, 4, 5], [1, 3, 2, 5, 4], n_permutations=999)
    >>> 0.05 < p < 0.3
    True
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"x and y must have the same length >= 3, got {x.size} and {y.size}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    dx = x - x.mean()
    dy = y - y.mean()
    norm = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if norm == 0.0:
        raise ValueError("permutation_pvalue: x or y is constant")
    observed = abs(float(dx @ dy)) / norm
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.broadcast_to(dy, (n_permutations, dy.size)), axis=1)
    r_perm = np.abs(perms @ dx) / norm
    hits = int(np.sum(r_perm >= observed * (1.0 - 1e-12)))
    return (1.0 + hits) / (1.0 + n_permutations)
