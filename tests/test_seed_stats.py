"""Statistics across seeds (icalign.stats), checked against SciPy on fixed numbers.

SciPy is only an oracle here; icalign does not depend on it at run time."""
import math

import numpy as np
import pytest

from icalign import stats

sps = pytest.importorskip("scipy.stats")

SEEDS3 = [0.412, 0.398, 0.431]
SEEDS5 = [0.21, 0.25, 0.19, 0.23, 0.22]


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 29, 200, 2.5])
@pytest.mark.parametrize("q", [0.5, 0.6, 0.8, 0.9, 0.975, 0.995, 0.9999, 0.025, 1e-6])
def test_t_quantile_matches_scipy(q, df):
    assert stats.student_t_ppf(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("t", [-5.0, -1.3, 0.0, 0.7, 2.2, 40.0])
def test_t_cdf_matches_scipy(t):
    for df in (1, 2, 7, 50):
        assert stats.student_t_cdf(t, df) == pytest.approx(sps.t.cdf(t, df), rel=1e-10,
                                                            abs=1e-14)


def test_t_quantile_rejects_bad_arguments():
    for q in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError):
            stats.student_t_ppf(q, 3)
    with pytest.raises(ValueError):
        stats.student_t_ppf(0.9, 0)


@pytest.mark.parametrize("values", [SEEDS3, SEEDS5, [1.0, 2.0]])
def test_mean_ci_matches_scipy(values):
    ci = stats.mean_ci(values)
    lo, hi = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert ci["mean"] == pytest.approx(np.mean(values), rel=1e-14)
    assert ci["lo"] == pytest.approx(lo, rel=1e-10)
    assert ci["hi"] == pytest.approx(hi, rel=1e-10)
    assert ci["sem"] == pytest.approx(sps.sem(values), rel=1e-12)
    assert ci["note"] == ""


def test_mean_ci_with_one_seed_has_no_interval():
    ci = stats.mean_ci([0.4])
    assert ci["n"] == 1 and ci["mean"] == 0.4 and ci["note"] == "one seed"
    assert ci["lo"] is None and ci["hi"] is None and ci["sd"] is None


def test_curve_ci_is_columnwise_mean_ci():
    curves = np.array([[0.9, 0.5, 0.3], [0.8, 0.55, 0.28], [0.95, 0.45, 0.33]])
    c = stats.curve_ci(curves)
    for j in range(3):
        ci = stats.mean_ci(curves[:, j])
        assert c["mean"][j] == ci["mean"] and c["lo"][j] == ci["lo"] and c["hi"][j] == ci["hi"]
    one = stats.curve_ci(curves[:1])
    assert one["lo"] is None and one["note"] == "one seed" and one["mean"] == curves[0].tolist()


def test_task_standard_error_matches_scipy():
    rng = np.random.default_rng(0)
    errors = rng.random((50, 4))
    se = stats.task_standard_error(errors)
    assert se["n_tasks"] == 50
    np.testing.assert_allclose(se["se"], sps.sem(errors, axis=0), rtol=1e-12)
    np.testing.assert_allclose(se["mean"], errors.mean(axis=0), rtol=1e-14)
    single = stats.task_standard_error(errors[:, 0])
    assert single["se"] == pytest.approx(sps.sem(errors[:, 0]), rel=1e-12)


def test_tasks_for_standard_error():
    assert stats.tasks_for_standard_error(0.2, 0.005) == 1600
    assert 0.2 / math.sqrt(stats.tasks_for_standard_error(0.21, 0.005)) <= 0.005


def test_paired_t_matches_scipy():
    a = [0.31, 0.35, 0.29, 0.33]
    b = [0.36, 0.38, 0.35, 0.37]
    r = stats.paired_t(a, b)
    ref = sps.ttest_rel(a, b)
    assert r["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (r["lo"], r["hi"]) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert r["effect"] == pytest.approx(np.mean(np.subtract(a, b)), rel=1e-12)


def test_one_sample_t_matches_scipy():
    r = stats.one_sample_t(SEEDS5, null=0.2)
    ref = sps.ttest_1samp(SEEDS5, 0.2)
    assert r["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_constant_differences_are_exact():
    r = stats.paired_t([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert r["p_value"] == 0.0 and r["t"] == math.inf
    r = stats.paired_t([1.0, 2.0], [1.0, 2.0])
    assert r["p_value"] == 1.0 and r["t"] == 0.0


def test_trend_test_matches_scipy_slopes_and_t_test():
    # 3 seeds x 4 depths: error falls with depth, seed offsets differ a lot
    v = np.array([[0.50, 0.42, 0.40, 0.35],
                  [0.60, 0.55, 0.49, 0.47],
                  [0.45, 0.41, 0.38, 0.30]])
    depths = [2, 4, 6, 8]
    r = stats.trend_test(v, x=depths)
    slopes = [sps.linregress(depths, row).slope for row in v]
    np.testing.assert_allclose(r["slopes"], slopes, rtol=1e-12)
    ref = sps.ttest_1samp(slopes, 0.0)
    assert r["t"] == pytest.approx(ref.statistic, rel=1e-10)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert r["effect"] < 0 and r["p_value"] < 0.05
    assert stats.verdict(r, "negative")["verdict"] == "holds"
    assert stats.verdict(r, "positive")["verdict"] == "opposite"
    # default x = ranks: same sign, same p-value for equally spaced configurations
    ranks = stats.trend_test(v)
    assert ranks["p_value"] == pytest.approx(r["p_value"], rel=1e-12)


def test_trend_test_agrees_with_page_in_direction():
    v = np.array([[0.9, 0.7, 0.6, 0.4], [0.8, 0.75, 0.5, 0.45], [0.85, 0.6, 0.62, 0.3]])
    r = stats.trend_test(v)
    page = sps.page_trend_test(-v)  # Page's L tests an increasing trend
    assert r["p_value"] < 0.05 and page.pvalue < 0.05


def test_verdict_inconclusive_and_seeds_needed():
    r = stats.paired_t([0.30, 0.36, 0.31], [0.32, 0.33, 0.34])
    v = stats.verdict(r, "negative")
    assert v["verdict"] == "inconclusive" and v["mark"] == "inconclusive"
    assert v["p_value"] > 0.05
    assert v["seeds_needed"] is None or v["seeds_needed"] > 3
    assert "paired t test" in v["text"] and "p = " in v["text"]
    one = stats.verdict(stats.paired_t([0.3], [0.4]), "negative")
    assert one["verdict"] == "inconclusive" and "one seed" in one["text"]


def test_seeds_needed_matches_power_of_the_t_test():
    # effect = sd: the t test needs ~10 seeds for 80 % power at alpha 0.05
    k = stats.seeds_needed(1.0, 1.0)
    power = lambda n: 1 - sps.nct.cdf(sps.t.ppf(0.975, n - 1), n - 1, math.sqrt(n))  # noqa: E731
    assert 8 <= k <= 12 and power(k) >= 0.75
    assert stats.seeds_needed(0.0, 1.0) is None and stats.seeds_needed(1.0, None) is None
    assert stats.seeds_needed(0.5, 0.1) == 2 or stats.seeds_needed(0.5, 0.1) == 3


def test_one_sample_interval_bounds_the_effect():
    r = stats.one_sample_t(SEEDS5, null=0.2)
    ci = stats.mean_ci(SEEDS5)
    assert r["lo"] == pytest.approx(ci["lo"] - 0.2) and r["hi"] == pytest.approx(ci["hi"] - 0.2)
