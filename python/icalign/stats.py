"""Small statistics for the critic-quality experiments, in NumPy and the standard library.

Pearson correlation with its least-squares line, a two-sided p-value from the exact
Student t distribution (through a regularized incomplete beta function implemented
here, so that SciPy is not a runtime dependency) and a seeded permutation test. Their
use is described in docs/math.md, section "Critics and self-correction".

Sums of products go through `pairwise_dot`, never ``@``: NumPy hands ``@`` to BLAS,
whose kernel, and with it the order of the additions, depends on the CPU, so a
statistic would differ in its last bits from one machine to the next.
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


def pairwise_dot(a, b, axis: int = -1):
    """Sum of the products of ``a`` and ``b`` along ``axis``, the same bits on every CPU.

    NumPy's pairwise summation of ``a * b`` (broadcast): unlike ``a @ b``, whose BLAS
    kernel is chosen for the CPU at hand and adds in that kernel's order, the order of
    the additions here is fixed by the shapes alone.

    Parameters
    ----------
    a, b : array_like
        Operands that broadcast together.
    axis : int, default -1
        The axis summed over.

    Returns
    -------
    numpy.ndarray or numpy.float64
        The sums; a scalar for 1-D operands.

    Examples
    --------
    >>> from icalign.stats import pairwise_dot
    >>> float(pairwise_dot([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
    32.0
    >>> pairwise_dot([[1.0, 2.0], [3.0, 4.0]], [1.0, -1.0]).tolist()
    [-1.0, -1.0]
    """
    return np.sum(np.multiply(a, b), axis=axis)


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
    sxx, syy, sxy = (float(pairwise_dot(dx, dx)), float(pairwise_dot(dy, dy)),
                     float(pairwise_dot(dx, dy)))
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
    norm = math.sqrt(float(pairwise_dot(dx, dx)) * float(pairwise_dot(dy, dy)))
    if norm == 0.0:
        raise ValueError("permutation_pvalue: x or y is constant")
    observed = abs(float(pairwise_dot(dx, dy))) / norm
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.broadcast_to(dy, (n_permutations, dy.size)), axis=1)
    r_perm = np.abs(pairwise_dot(perms, dx)) / norm
    hits = int(np.sum(r_perm >= observed * (1.0 - 1e-12)))
    return (1.0 + hits) / (1.0 + n_permutations)


# ====================================================================== across seeds
# Everything below decides results from K independent training seeds (and, for the
# baselines, from the spread over evaluation tasks). All of it is NumPy and the
# standard library; SciPy serves only as an oracle in the tests.

CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE


def student_t_cdf(t: float, df: float) -> float:
    """Cumulative distribution P(T <= t) of Student's t with ``df`` degrees of freedom.

    Parameters
    ----------
    t : float
    df : float
        Degrees of freedom, > 0.

    Returns
    -------
    float
        ``1 - student_t_sf2(t, df) / 2`` for t >= 0, its mirror image below.

    Examples
    --------
    >>> from icalign.stats import student_t_cdf
    >>> round(student_t_cdf(2.0, 3), 6)
    0.930337
    """
    t = float(t)
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    half_tail = 0.5 * student_t_sf2(t, df)
    return 1.0 - half_tail if t >= 0 else half_tail


def student_t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t: the t with P(T <= t) = q.

    Inverts the two-sided tail probability ``student_t_sf2`` (a regularized
    incomplete beta function, so exact up to rounding): the upper tail probability
    2 min(q, 1 - q) is bracketed by doubling and then bisected to the last bit, which
    costs ~100 evaluations of the incomplete beta function and is monotone by
    construction (no Newton step can overshoot in the heavy tails of small df).

    Parameters
    ----------
    q : float
        Probability, 0 < q < 1.
    df : float
        Degrees of freedom, > 0.

    Returns
    -------
    float
        The quantile (``scipy.stats.t.ppf(q, df)``).

    Raises
    ------
    ValueError
        If q is not strictly between 0 and 1 or df <= 0.

    Examples
    --------
    >>> from icalign.stats import student_t_ppf
    >>> round(student_t_ppf(0.975, 2), 6)    # the 95 % interval of 3 seeds
    4.302653
    """
    q, df = float(q), float(df)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie strictly between 0 and 1, got {q}")
    if not df > 0.0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if q == 0.5:
        return 0.0
    tail = 2.0 * min(q, 1.0 - q)        # wanted P(|T| >= t)
    lo, hi = 0.0, 1.0
    while student_t_sf2(hi, df) > tail:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            return math.copysign(math.inf, q - 0.5)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if student_t_sf2(mid, df) > tail:
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    return t if q > 0.5 else -t


def _finite_1d(values, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError(f"{name}: no values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: values must be finite, got {x.tolist()}")
    return x


def mean_ci(values, confidence: float = CONFIDENCE) -> dict:
    """Mean of ``values`` (one number per seed) with a Student t confidence interval.

    The interval is mean +- t_{(1+c)/2, n-1} sd / sqrt(n), sd with ddof = 1.

    Parameters
    ----------
    values : array_like
        Finite values, at least one.
    confidence : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    dict
        JSON-able ``{n, mean, sd, sem, df, t_crit, lo, hi, half_width, confidence,
        note}``. With one value there is no spread to estimate: sd, sem, t_crit, lo,
        hi and half_width are None and note is "one seed"; otherwise note is "".

    Examples
    --------
    >>> from icalign.stats import mean_ci
    >>> ci = mean_ci([0.41, 0.40, 0.43])
    >>> round(ci["mean"], 4), round(ci["lo"], 4), round(ci["hi"], 4)
    (0.4133, 0.3754, 0.4513)
    >>> mean_ci([0.4])["note"]
    'one seed'
    """
    x = _finite_1d(values, "mean_ci")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n, mean = int(x.size), float(x.mean())
    out = {"n": n, "mean": mean, "sd": None, "sem": None, "df": n - 1, "t_crit": None,
           "lo": None, "hi": None, "half_width": None, "confidence": confidence,
           "note": "one seed" if n == 1 else ""}
    if n == 1:
        return out
    sd = float(x.std(ddof=1))
    sem = sd / math.sqrt(n)
    t_crit = student_t_ppf(0.5 + confidence / 2.0, n - 1)
    half = t_crit * sem
    out.update(sd=sd, sem=sem, t_crit=t_crit, lo=mean - half, hi=mean + half, half_width=half)
    return out


def curve_ci(curves, confidence: float = CONFIDENCE) -> dict:
    """Pointwise mean and Student t interval of K curves, one row per seed.

    Parameters
    ----------
    curves : array_like
        A (K, n_x) array.
    confidence : float
        Coverage of the intervals.

    Returns
    -------
    dict
        ``{"n", "mean", "lo", "hi", "half_width", "confidence", "note"}`` with lists of
        n_x values; with K = 1 the bounds are None and note is "one seed".

    Examples
    --------
    >>> from icalign.stats import curve_ci
    >>> c = curve_ci([[0.9, 0.5], [0.8, 0.55], [0.95, 0.45]])
    >>> [round(m, 4) for m in c["mean"]], [round(lo, 4) for lo in c["lo"]]
    ([0.8833, 0.5], [0.6936, 0.3758])
    """
    a = np.asarray(curves, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"curve_ci needs a (seeds, points) array, got shape {a.shape}")
    cols = [mean_ci(a[:, j], confidence) for j in range(a.shape[1])]
    k = int(a.shape[0])
    pick = lambda key: None if k == 1 else [c[key] for c in cols]  # noqa: E731
    return {"n": k, "mean": [c["mean"] for c in cols], "lo": pick("lo"), "hi": pick("hi"),
            "half_width": pick("half_width"), "confidence": confidence,
            "note": "one seed" if k == 1 else ""}


def task_standard_error(errors) -> dict:
    """Mean and standard error over evaluation tasks of per-task errors.

    The uncertainty of a baseline curve, whose only randomness is which evaluation
    tasks were drawn: se = sd(ddof=1) / sqrt(n_tasks) per column.

    Parameters
    ----------
    errors : array_like
        An (n_tasks, n_x) array (or (n_tasks,)), n_tasks >= 2, finite.

    Returns
    -------
    dict
        ``{"n_tasks", "mean", "se"}``: lists for a 2-d input, floats for a 1-d one.

    Examples
    --------
    >>> from icalign.stats import task_standard_error
    >>> task_standard_error([[0.1, 0.2], [0.3, 0.2], [0.2, 0.5]])["se"][1]
    0.1
    """
    a = np.asarray(errors, dtype=np.float64)
    squeeze = a.ndim == 1
    if squeeze:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"task_standard_error needs >= 2 tasks in an (n_tasks, n_x) array, "
                         f"got shape {np.shape(errors)}")
    if not np.all(np.isfinite(a)):
        raise ValueError("task_standard_error: errors must be finite")
    mean = a.mean(axis=0)
    se = a.std(axis=0, ddof=1) / math.sqrt(a.shape[0])
    if squeeze:
        return {"n_tasks": int(a.shape[0]), "mean": float(mean[0]), "se": float(se[0])}
    return {"n_tasks": int(a.shape[0]), "mean": mean.tolist(), "se": se.tolist()}


def tasks_for_standard_error(per_task_sd: float, target_se: float) -> int:
    """Evaluation tasks n so that sd / sqrt(n) <= target_se.

    Parameters
    ----------
    per_task_sd : float
        Standard deviation of the per-task error, >= 0.
    target_se : float
        Standard error wanted, > 0.

    Returns
    -------
    int
        ceil((sd / target)^2), at least 2.

    Examples
    --------
    >>> from icalign.stats import tasks_for_standard_error
    >>> tasks_for_standard_error(0.31, 0.005)
    3844
    """
    if not (per_task_sd >= 0 and target_se > 0):
        raise ValueError(f"need per_task_sd >= 0 and target_se > 0, got {per_task_sd}, "
                         f"{target_se}")
    return max(2, int(math.ceil((per_task_sd / target_se) ** 2 - 1e-12)))


def one_sample_t(values, null: float = 0.0, confidence: float = CONFIDENCE) -> dict:
    """Two-sided one-sample t test of mean(values) = ``null``, with the interval of the
    effect.

    Parameters
    ----------
    values : array_like
        One value per seed.
    null : float
        The mean under the null hypothesis.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    dict
        The ``mean_ci`` dict, except that lo and hi bound the effect mean - null (the
        mean's interval shifted by null), plus ``{"null", "effect", "t", "p_value",
        "test"}``; with one value t and p_value are None (nothing to test).

    Examples
    --------
    >>> from icalign.stats import one_sample_t
    >>> r = one_sample_t([0.21, 0.25, 0.19, 0.23, 0.22], null=0.2)
    >>> round(r["effect"], 4), round(r["p_value"], 4)
    (0.02, 0.1161)
    """
    ci = mean_ci(values, confidence)
    effect = ci["mean"] - float(null)
    out = dict(ci, null=float(null), effect=effect, t=None, p_value=None,
               test=f"one-sample t test, df = {ci['df']}")
    if ci["lo"] is not None:
        out.update(lo=ci["lo"] - float(null), hi=ci["hi"] - float(null))
    if ci["n"] == 1:
        return out
    if ci["sem"] == 0.0:
        # identical values: the difference is exact (or exactly zero)
        out.update(t=math.copysign(math.inf, effect) if effect else 0.0,
                   p_value=0.0 if effect else 1.0)
        return out
    t = effect / ci["sem"]
    out.update(t=t, p_value=student_t_sf2(t, ci["df"]))
    return out


def paired_t(a, b, confidence: float = CONFIDENCE) -> dict:
    """Paired t test across seeds of a - b (a[k] and b[k] come from seed k).

    Parameters
    ----------
    a, b : array_like
        One value per seed each, same length.
    confidence : float
        Coverage of the interval of the mean difference.

    Returns
    -------
    dict
        ``one_sample_t`` of the differences (effect = mean of a - b, lo/hi its
        interval, p_value two-sided) with test "paired t test, df = K - 1".

    Examples
    --------
    >>> from icalign.stats import paired_t
    >>> r = paired_t([0.31, 0.35, 0.29, 0.33], [0.36, 0.38, 0.35, 0.37])
    >>> round(r["effect"], 4), round(r["p_value"], 4)
    (-0.045, 0.0061)
    """
    a = _finite_1d(a, "paired_t")
    b = _finite_1d(b, "paired_t")
    if a.shape != b.shape:
        raise ValueError(f"paired_t: a and b need one value per seed each, got {a.size} and "
                         f"{b.size}")
    out = one_sample_t(a - b, 0.0, confidence)
    out["test"] = f"paired t test, df = {out['df']}"
    return out


def trend_test(values, x=None, confidence: float = CONFIDENCE) -> dict:
    """Trend of a quantity over ordered configurations, paired by seed.

    ``values`` is a (K seeds, C configurations) array: row k holds seed k's result
    (e.g. mean error) at each configuration, columns in the claimed order; ``x`` the
    configurations' positions (default ranks 0..C-1; pass e.g. depths to weigh the
    steps by size). For each seed the least-squares slope of value on x is computed,
    and a one-sample t test across the K seeds asks whether the mean slope is 0.

    Why this test rather than Page's L test: (1) each seed trains a whole series of
    models, so the seed is the independent unit and slopes paired by seed remove the
    seed-to-seed offset that would otherwise drown a trend; (2) with the small K
    here (3-5 seeds) Page's L, which uses only within-seed ranks, has a coarse
    discrete null distribution and throws away how large the differences are, while
    the slope keeps them and yields an effect size with a confidence interval (error
    change per configuration step) and an estimate of the K needed; (3) a single
    non-monotone step (e.g. two depths nearly tied) does not flip the verdict as a
    chain of pairwise comparisons would. The price is the normality assumption on
    the per-seed slopes, which averages over C configurations and many tasks.

    Parameters
    ----------
    values : array_like
        A (K seeds, C >= 2 configurations) array, columns in the claimed order.
    x : array_like, optional
        Positions of the configurations (default ranks 0..C-1).
    confidence : float
        Coverage of the interval of the mean slope.

    Returns
    -------
    dict
        ``one_sample_t`` of the slopes plus ``{"slopes", "x", "test"}``.

    Examples
    --------
    >>> from icalign.stats import trend_test
    >>> r = trend_test([[0.50, 0.42, 0.40, 0.35], [0.60, 0.55, 0.49, 0.47],
    ...                 [0.45, 0.41, 0.38, 0.30]], x=[2, 4, 6, 8])
    >>> [round(v, 4) for v in r["slopes"]], round(r["p_value"], 4)
    ([-0.0235, -0.0225, -0.024], 0.0004)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] < 2:
        raise ValueError(f"trend_test needs a (seeds, configurations >= 2) array, got shape "
                         f"{v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("trend_test: values must be finite")
    xs = np.arange(v.shape[1], dtype=np.float64) if x is None \
        else np.asarray(x, dtype=np.float64).ravel()
    if xs.size != v.shape[1]:
        raise ValueError(f"trend_test: {xs.size} positions for {v.shape[1]} configurations")
    dx = xs - xs.mean()
    sxx = float(pairwise_dot(dx, dx))
    if sxx == 0.0:
        raise ValueError("trend_test: the configuration positions are all equal")
    slopes = pairwise_dot(v - v.mean(axis=1, keepdims=True), dx) / sxx
    out = one_sample_t(slopes, 0.0, confidence)
    out.update(slopes=slopes.tolist(), x=xs.tolist(),
               test=f"trend: per-seed least-squares slope, one-sample t, df = {out['df']}")
    return out


def seeds_needed(effect: float, sd: float | None, alpha: float = ALPHA,
                 power: float = 0.8, max_k: int = 1000) -> int | None:
    """Seeds K for which a t test would detect an effect of this size and spread.

    The smallest K for which a two-sided one-sample (or paired) t test at level
    ``alpha`` detects a true mean ``effect`` with spread ``sd`` with probability
    ~``power``: K >= ((t_{1-alpha/2, K-1} + t_{power, K-1}) sd / |effect|)^2 (the usual
    approximation to the noncentral t).

    Parameters
    ----------
    effect : float
        The mean effect observed.
    sd : float or None
        Its standard deviation across seeds.
    alpha, power : float
        Level and power of the test.
    max_k : int
        The largest K considered.

    Returns
    -------
    int or None
        None when it cannot be estimated (no spread, zero effect) or exceeds max_k.

    Examples
    --------
    >>> from icalign.stats import seeds_needed
    >>> seeds_needed(1.0, 1.0)     # an effect as large as its spread
    10
    """
    if sd is None or not math.isfinite(sd) or sd <= 0 or not effect or not math.isfinite(effect):
        return None
    ratio = sd / abs(effect)
    for k in range(2, max_k + 1):
        crit = student_t_ppf(1.0 - alpha / 2.0, k - 1) + student_t_ppf(power, k - 1)
        if k >= (crit * ratio) ** 2:
            return k
    return None


HOLDS, OPPOSITE, INCONCLUSIVE = "holds", "opposite", "inconclusive"
VERDICT_MARKS = {HOLDS: "✓", OPPOSITE: "✗", INCONCLUSIVE: "inconclusive"}


def verdict(test: dict, expect: str, alpha: float = ALPHA) -> dict:
    """Three-valued verdict of a test from ``one_sample_t``, ``paired_t`` or ``trend_test``.

    - "holds": p < alpha and the effect has the predicted sign;
    - "opposite": p < alpha and the effect has the other sign;
    - "inconclusive": p >= alpha, or one seed (no test possible).

    Parameters
    ----------
    test : dict
        The test's result.
    expect : {"positive", "negative"}
        The sign of the effect the claim predicts (e.g. "negative" for "a has lower
        error than b" tested on a - b).
    alpha : float
        Level of the test.

    Returns
    -------
    dict
        ``{"verdict", "mark" (✓/✗/inconclusive), "p_value", "effect", "lo", "hi",
        "n", "test", "seeds_needed", "text"}``: ``seeds_needed`` (only when
        inconclusive with a spread) is the K that would resolve the observed effect at
        that spread with 80 % power; ``text`` is a one-line summary for report tables.

    Examples
    --------
    >>> from icalign.stats import paired_t, verdict
    >>> v = verdict(paired_t([0.31, 0.35, 0.29, 0.33], [0.36, 0.38, 0.35, 0.37]), "negative")
    >>> v["verdict"], v["mark"]
    ('holds', '✓')
    >>> v["text"]
    'effect -0.045 [-0.0655, -0.0245], paired t test, df = 3, p = 0.0061'
    """
    if expect not in ("positive", "negative"):
        raise ValueError(f"expect must be 'positive' or 'negative', got {expect!r}")
    p, effect = test.get("p_value"), float(test["effect"])
    if p is not None and p < alpha and effect != 0.0:
        v = HOLDS if (effect > 0) == (expect == "positive") else OPPOSITE
    else:
        v = INCONCLUSIVE
    need = seeds_needed(effect, test.get("sd"), alpha) if v == INCONCLUSIVE else None
    out = {"verdict": v, "mark": VERDICT_MARKS[v], "p_value": p, "effect": effect,
           "lo": test.get("lo"), "hi": test.get("hi"), "n": test["n"],
           "test": test.get("test", ""), "seeds_needed": need}
    out["text"] = verdict_text(out)
    return out


def _g(x: float) -> str:
    return f"{x:+.3g}"


def verdict_text(v: dict) -> str:
    """The one-line summary of a ``verdict`` dict, for report tables.

    Parameters
    ----------
    v : dict
        A ``verdict`` dict.

    Returns
    -------
    str
        E.g. 'effect +0.012 [+0.004, +0.020], paired t test, df = 2, p = 0.02', or
        the one-seed / inconclusive variants.
    """
    if v["n"] == 1:
        return f"effect {_g(v['effect'])} (one seed: no test)"
    parts = [f"effect {_g(v['effect'])}"]
    if v.get("lo") is not None:
        parts[0] += f" [{_g(v['lo'])}, {_g(v['hi'])}]"
    if v.get("test"):
        parts.append(v["test"])
    if v.get("p_value") is not None:
        p = v["p_value"]
        parts.append(f"p = {p:.2g}" if p >= 1e-4 else "p < 1e-4")
    text = ", ".join(parts)
    if v["verdict"] == INCONCLUSIVE and v.get("seeds_needed"):
        text += f"; ~{v['seeds_needed']} seeds would resolve it"
    return text
