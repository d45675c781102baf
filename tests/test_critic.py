"""Critic-quality experiments: critics, the self-correction loop, statistics,
the three experiment functions and their claims."""
import json
import math

import numpy as np
import pytest

import icalign as ica
from icalign import critic_studies, critics, plotting, report, runner as runner_mod
from icalign import self_correction, stats
from icalign.experiments import critic_quality as cq
from icalign.profiles import PROFILES
from icalign.registry import EXPERIMENTS, Claim, load_builtin_experiments

TASK = ica.AlignmentTask(n_dims=5, n_points=20)


@pytest.fixture(scope="module")
def batch():
    return TASK.sample(128, seed=7)


@pytest.fixture(scope="module")
def tiny_model():
    """Untrained but deterministic: enough to check the loop's bookkeeping."""
    return ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2, reward_head=True),
                           seed=3)


def score(critic, batch, responses=None, seed=0):
    ys = batch.ys if responses is None else responses
    inp = critics.CriticInput(np.asarray(ys, np.float64), batch.ystar.astype(np.float64),
                        batch.eps.astype(np.float64), batch.xs, batch.ys, batch.rs,
                        tuple(range(ys.shape[1])))
    return critic(inp, np.random.default_rng(seed))


# --------------------------------------------------------------------------- oracle critic

def test_oracle_recovers_true_mixing_weights(batch):
    r = critics.oracle_rewards(batch.ys, batch.ystar, batch.eps)
    assert r.shape == batch.rs_true.shape
    # the responses are stored in float32, hence the tolerance
    np.testing.assert_allclose(r, batch.rs_true, atol=2e-5)


def test_oracle_recovers_exact_weights_in_float64(batch):
    rng = np.random.default_rng(0)
    r_true = rng.uniform(0, 1, (batch.batch_size, 6))
    ystar, eps = batch.ystar.astype(np.float64), batch.eps.astype(np.float64)
    ys = r_true[..., None] * ystar[:, None] + (1 - r_true[..., None]) * eps[:, None]
    np.testing.assert_allclose(critics.oracle_rewards(ys, ystar, eps), r_true, atol=1e-9)


def test_oracle_is_scale_invariant(batch):
    rng = np.random.default_rng(1)
    resp = rng.standard_normal((batch.batch_size, 7, 5))
    base = critics.oracle_rewards(resp, batch.ystar, batch.eps)
    for scale in (1e-3, 0.37, 4.0, 250.0):
        np.testing.assert_allclose(critics.oracle_rewards(scale * resp, batch.ystar, batch.eps),
                                   base, atol=1e-9)
    per = rng.uniform(0.01, 100, (batch.batch_size, 7, 1))
    np.testing.assert_allclose(critics.oracle_rewards(per * resp, batch.ystar, batch.eps), base,
                               atol=1e-9)
    # a negative factor is a different direction: it must change some scores
    assert np.abs(critics.oracle_rewards(-resp, batch.ystar, batch.eps) - base).max() > 0.1


def test_oracle_matches_a_grid_search(batch):
    rng = np.random.default_rng(2)
    resp = rng.standard_normal((32, 5, 5)) + 0.5 * batch.ystar[:32, None]
    ystar, eps = batch.ystar[:32].astype(np.float64), batch.eps[:32].astype(np.float64)
    got = critics.oracle_rewards(resp, ystar, eps)
    grid = np.linspace(0, 1, 20001)
    v = grid[None, :, None] * ystar[:, None] + (1 - grid[None, :, None]) * eps[:, None]
    vn = v / np.linalg.norm(v, axis=-1, keepdims=True)
    cos = np.einsum("bmd,bgd->bmg", resp, vn)
    best = grid[np.argmax(cos, axis=-1)]
    # compare the cosines reached (argmax may be flat near the optimum)
    def cos_at(r):
        w = r[..., None] * ystar[:, None] + (1 - r[..., None]) * eps[:, None]
        return np.sum(resp * w, -1) / np.linalg.norm(w, axis=-1)
    assert np.all(cos_at(got) >= cos_at(best) - 1e-9)
    np.testing.assert_allclose(got, best, atol=2e-3)
    assert np.all((got == 0) | (got == 1) | ((got > 0) & (got < 1)))
    assert (got == 0).any() or (got == 1).any(), "the sample should exercise the endpoints"


def test_quality_critic_grades_by_measured_error(batch):
    # exact on task responses, like the oracle
    np.testing.assert_allclose(critics.quality_rewards(batch.ys, batch.ystar, batch.eps),
                               batch.rs_true, atol=2e-5)
    rng = np.random.default_rng(3)
    ystar, eps = batch.ystar.astype(np.float64), batch.eps.astype(np.float64)
    resp = rng.standard_normal((batch.batch_size, 6, 5)) + ystar[:, None]
    q = critics.quality_rewards(resp, ystar, eps)
    np.testing.assert_allclose(critics.quality_rewards(3.7 * resp, ystar, eps), q, atol=1e-9)
    # the on-segment response of weight q is exactly as good as the response
    v = q[..., None] * ystar[:, None] + (1 - q[..., None]) * eps[:, None]
    err_v, err_r = ica.normalized_error(v, ystar), ica.normalized_error(resp, ystar)
    inside = (q > 1e-6) & (q < 1 - 1e-6)
    np.testing.assert_allclose(err_v[inside], err_r[inside], atol=1e-9)
    assert np.all(err_r[q <= 1e-6] >= err_v[q <= 1e-6] - 1e-9)    # worse than eps -> 0
    # an answer beyond y* (overshoot along y* - eps): the oracle says 1, quality says < 1
    over = ystar + 0.8 * (ystar - eps)
    assert np.all(critics.oracle_rewards(over, ystar, eps) == 1.0)
    assert np.all(critics.quality_rewards(over, ystar, eps) < 1.0)


def test_oracle_validates_shapes(batch):
    with pytest.raises(ValueError, match="ystar and eps"):
        critics.oracle_rewards(batch.ys, batch.ystar[:3], batch.eps)


# ------------------------------------------------------------------------- noisy critics

def mean_acc(critic, batch, seed=0):
    return float(np.nanmean(self_correction.pairwise_accuracy(score(critic, batch, seed=seed),
                                                batch.rs_true)))


def test_pairwise_accuracy_known_cases():
    t = np.array([[0.1, 0.5, 0.9, 0.3]])
    assert self_correction.pairwise_accuracy(t, t)[0] == 1.0
    assert self_correction.pairwise_accuracy(1 - t, t)[0] == 0.0
    assert self_correction.pairwise_accuracy(np.full_like(t, 0.4), t)[0] == 0.5
    # one of 6 pairs swapped (0.5 vs 0.9)
    assert self_correction.pairwise_accuracy(np.array([[0.1, 0.95, 0.9, 0.3]]), t)[0] == pytest.approx(5 / 6)
    # true ties are left out; a row without pairs is NaN
    # a pair mask: only pairs with the last element
    mask = np.zeros((4, 4), bool)
    mask[:, 3] = mask[3, :] = True
    c = np.array([[0.1, 0.5, 0.9, 0.95]])  # 0.3 placed above 0.5 and 0.9: 1 of 3 right
    assert self_correction.pairwise_accuracy(c, t, mask)[0] == pytest.approx(1 / 3)
    assert self_correction.pairwise_accuracy(c, t)[0] == pytest.approx(4 / 6)
    tt = np.array([[1.0, 1.0, 0.2]])
    assert self_correction.pairwise_accuracy(np.array([[0.3, 0.9, 0.1]]), tt)[0] == 1.0
    assert np.isnan(self_correction.pairwise_accuracy(np.array([[0.3]]), np.array([[0.2]]))[0])


def test_replace_critic_accuracy_falls_toward_chance_with_p():
    batch = TASK.sample(2000, seed=11)
    accs = [mean_acc(critics.ReplaceCritic(p), batch) for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert accs[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(accs, accs[1:])), accs
    assert abs(accs[-1] - 0.5) < 0.02, accs
    # a pair with neither score replaced keeps its order; with one replaced by u ~ U(0,1)
    # it stays right with probability E[r_hi] = 2/3 (E[1 - r_lo] likewise); with both, 1/2:
    # accuracy = (1 - p)^2 + 2 p (1 - p) 2/3 + p^2 / 2
    for p, acc in zip((0.25, 0.5, 0.75), accs[1:4]):
        expected = (1 - p) ** 2 + 2 * p * (1 - p) * 2 / 3 + p * p / 2
        assert acc == pytest.approx(expected, abs=0.01), (p, acc)


def test_gaussian_critic_accuracy_falls_with_sigma(batch):
    accs = [mean_acc(critics.GaussianCritic(s), batch) for s in (0.0, 0.05, 0.2, 0.5, 2.0)]
    assert accs[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] > 0.45


def test_inverted_critic_is_below_chance(batch):
    assert mean_acc(critics.InvertedCritic(), batch) < 0.01


def test_critic_noise_is_seeded(batch):
    c = critics.GaussianCritic(0.3)
    np.testing.assert_array_equal(score(c, batch, seed=5), score(c, batch, seed=5))
    assert not np.array_equal(score(c, batch, seed=5), score(c, batch, seed=6))


def test_make_critic_names(tiny_model):
    assert isinstance(critics.make_critic("oracle"), critics.OracleCritic)
    assert isinstance(critics.make_critic("quality"), critics.QualityCritic)
    assert critics.make_critic("replace:0.3").p == 0.3
    assert critics.make_critic("gauss:0.2").sigma == 0.2
    assert isinstance(critics.make_critic("self", tiny_model), critics.SelfCritic)
    for bad in ("nope", "replace", "replace:1.5", "gauss:-1"):
        with pytest.raises(ValueError):
            critics.make_critic(bad)
    with pytest.raises(ValueError, match="reward_head"):
        critics.SelfCritic(ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=1)))


# ----------------------------------------------------------------- the self-correction loop

class SpyModel:
    """Records every predict call (its N) and checks it against n_points."""

    def __init__(self, model):
        self.model, self.config, self.calls = model, model.config, []

    def predict(self, xs, ys, rs):
        assert xs.shape[1] <= self.config.n_points
        self.calls.append((xs.shape[1], xs.copy(), ys.copy(), rs.copy()))
        return self.model.predict(xs, ys, rs)

    def predict_rewards(self, xs, ys, rs):
        return self.model.predict_rewards(xs, ys, rs)


@pytest.mark.parametrize("rescale", ["context", "none"])
def test_loop_appends_exactly_the_claimed_triplets(tiny_model, batch, rescale):
    k, R = 4, 3
    spy = SpyModel(tiny_model)
    res = self_correction.self_correct(spy, batch, "oracle", k, R, rescale=rescale, seed=1)
    B = batch.batch_size
    assert res.xs.shape == (B, k + R, 5) and res.ys.shape == (B, k + R, 5)
    assert res.rs.shape == (B, k + R) and res.answers.shape == (B, R + 1, 5)
    assert res.errors.shape == (B, R + 1)
    # one predict per answer, on exactly k + j + 1 examples
    assert [c[0] for c in spy.calls] == [k + j + 1 for j in range(R + 1)]
    # the context: the task's first k triplets with the oracle's rewards
    np.testing.assert_array_equal(res.ys[:, :k], batch.ys[:, :k])
    np.testing.assert_allclose(res.rs[:, :k], batch.rs_true[:, :k], atol=2e-5)
    # every x is the task's query
    np.testing.assert_array_equal(res.xs, np.broadcast_to(batch.xs[:, :1], res.xs.shape))
    ctx_norm = np.linalg.norm(batch.ys[:, :k].astype(np.float64), axis=-1).mean(1)
    for j in range(R):
        app = res.ys[:, k + j].astype(np.float64)
        ans = res.answers[:, j]
        if rescale == "context":
            # same direction as the answer, norm = mean norm of the context responses
            cos = np.sum(app * ans, -1) / (np.linalg.norm(app, axis=-1)
                                           * np.linalg.norm(ans, axis=-1))
            np.testing.assert_allclose(cos, 1.0, atol=1e-5)
            np.testing.assert_allclose(np.linalg.norm(app, axis=-1), ctx_norm, rtol=1e-5)
        else:
            np.testing.assert_allclose(app, ans, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(res.appended[:, j], app)
        # its reward is the oracle's score of the appended response
        np.testing.assert_allclose(res.rs[:, k + j], critics.oracle_rewards(app, batch.ystar,
                                                                        batch.eps), atol=1e-6)
        np.testing.assert_allclose(res.true_rewards[:, k + j], res.rs[:, k + j], atol=1e-6)
    at_one = critics.oracle_rewards(res.appended, batch.ystar, batch.eps) >= 1 - 1e-9
    assert res.oracle_at_one() == pytest.approx(at_one.mean())
    # each answer is the model's prediction from exactly the claimed context
    for j in range(R + 1):
        n = k + j
        pad = np.zeros((B, 1, 5), np.float32)
        xs = np.concatenate([res.xs[:, :n], batch.xs[:, :1]], axis=1)
        ys = np.concatenate([res.ys[:, :n], pad], axis=1)
        rs = np.concatenate([res.rs[:, :n], np.zeros((B, 1), np.float32)], axis=1)
        np.testing.assert_allclose(res.answers[:, j], tiny_model.predict(xs, ys, rs)[:, n],
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.errors, ica.normalized_error(res.answers, batch.ystar))


def test_loop_reference_sets_the_true_weights_of_answers(tiny_model, batch):
    k = 3
    res = self_correction.self_correct(tiny_model, batch, critics.GaussianCritic(0.2, base="quality"), k, 2,
                         reference="quality", seed=4)
    assert res.reference == "quality"
    np.testing.assert_allclose(res.true_rewards[:, :k], batch.rs_true[:, :k])
    np.testing.assert_allclose(res.true_rewards[:, k:],
                               critics.quality_rewards(res.appended, batch.ystar, batch.eps),
                               atol=1e-7)
    np.testing.assert_allclose(res.oracle_appended,
                               critics.oracle_rewards(res.appended, batch.ystar, batch.eps),
                               atol=1e-7)
    # noisy critics on the quality base: p = 0 / sigma = 0 is the quality critic itself
    inp_q = critics.quality_rewards(res.appended, batch.ystar, batch.eps)
    resp = res.appended
    assert np.allclose(score(critics.ReplaceCritic(0.0, base="quality"), batch, resp), inp_q)
    assert np.allclose(score(critics.InvertedCritic(base="quality"), batch, resp), 1 - inp_q)
    assert critics.ReplaceCritic(0.5, base="quality").label == "replace p=0.5 (quality)"
    with pytest.raises(ValueError, match="reference"):
        self_correction.self_correct(tiny_model, batch, "oracle", 2, 1, reference="truth")
    with pytest.raises(ValueError, match="reference"):
        critics.GaussianCritic(0.1, base="truth")


def test_loop_never_reads_beyond_n_points(tiny_model, batch):
    N = tiny_model.config.n_points
    for k in (1, 5):
        spy = SpyModel(tiny_model)
        res = self_correction.self_correct(spy, batch[:8], "oracle", k, N - k - 1)
        assert max(c[0] for c in spy.calls) == N
        assert res.ys.shape[1] == N - 1
        with pytest.raises(ValueError, match="n_points"):
            self_correction.self_correct(tiny_model, batch[:8], "oracle", k, N - k)
    with pytest.raises(ValueError, match="k must be"):
        self_correction.self_correct(tiny_model, batch[:8], "oracle", 0, 1)
    with pytest.raises(ValueError, match="rounds"):
        self_correction.self_correct(tiny_model, batch[:8], "oracle", 2, -1)
    with pytest.raises(ValueError, match="rescale"):
        self_correction.self_correct(tiny_model, batch[:8], "oracle", 2, 1, rescale="unit")


def test_loop_refuses_non_causal_models(batch):
    m = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=1, causal=False))
    with pytest.raises(ValueError, match="causal"):
        self_correction.self_correct(m, batch[:4], "oracle", 2, 1)


def test_noisy_critic_scores_context_and_answers(tiny_model, batch):
    """The same critic scores the context and the answers (replace p=1: all uniform)."""
    res = self_correction.self_correct(tiny_model, batch, critics.ReplaceCritic(1.0), 6, 4, seed=2)
    assert abs(np.nanmean(res.accuracy()) - 0.5) < 0.05
    assert not np.allclose(res.rs[:, :6], batch.rs_true[:, :6], atol=0.05)
    res2 = self_correction.self_correct(tiny_model, batch, critics.ReplaceCritic(1.0), 6, 4, seed=2)
    np.testing.assert_array_equal(res.rs, res2.rs)
    inv = self_correction.self_correct(tiny_model, batch, "inverted", 6, 2)
    np.testing.assert_allclose(inv.rs, 1 - inv.true_rewards, atol=2e-5)
    assert np.nanmean(inv.accuracy()) < 0.01


def test_self_critic_scores_each_position_from_what_precedes_it(tiny_model, batch):
    k, R = 3, 2
    for ctx in (None, "oracle"):
        res = self_correction.self_correct(tiny_model, batch[:16], "self", k, R, context_critic=ctx)
        assert res.critic == "self"
        start = 0 if ctx is None else k
        for n in range(start, k + R):
            rh = tiny_model.predict_rewards(res.xs[:, :n + 1], res.ys[:, :n + 1],
                                            res.rs[:, :n + 1])[:, n]
            np.testing.assert_allclose(res.rs[:, n], np.clip(rh, 0, 1), atol=1e-6)
        if ctx == "oracle":
            np.testing.assert_allclose(res.rs[:, :k], batch.rs_true[:16, :k], atol=2e-5)


# --------------------------------------------------------------------------- statistics

def test_betainc_closed_forms():
    for x in (0.0, 0.1, 0.5, 0.93, 1.0):
        assert stats.betainc(1, 1, x) == pytest.approx(x, abs=1e-14)
        assert stats.betainc(2.5, 1, x) == pytest.approx(x ** 2.5, abs=1e-13)
        assert stats.betainc(1, 3.5, x) == pytest.approx(1 - (1 - x) ** 3.5, abs=1e-13)
        # I_x(1/2, 1/2) = (2/pi) asin(sqrt x)
        assert stats.betainc(0.5, 0.5, x) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)),
                                                           abs=1e-12)
    with pytest.raises(ValueError):
        stats.betainc(0, 1, 0.5)
    with pytest.raises(ValueError):
        stats.betainc(1, 1, 1.5)


def test_student_t_two_sided_known_values():
    # df = 1 (Cauchy): p = 1 - (2/pi) atan|t|; df = 2: p = 1 - |t| / sqrt(2 + t^2)
    for t in (0.0, 0.3, 1.0, 4.0, 50.0):
        assert stats.student_t_sf2(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t),
                                                          abs=1e-12)
        assert stats.student_t_sf2(-t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t),
                                                           abs=1e-12)
    # critical values of Student's t (standard tables, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2):
    # t_{0.975, 10} = 2.228, t_{0.975, 30} = 2.042, t_{0.995, 20} = 2.845
    assert stats.student_t_sf2(2.228, 10) == pytest.approx(0.05, abs=2e-4)
    assert stats.student_t_sf2(2.042, 30) == pytest.approx(0.05, abs=2e-4)
    assert stats.student_t_sf2(2.845, 20) == pytest.approx(0.01, abs=1e-4)
    assert stats.student_t_sf2(math.inf, 5) == 0.0


def test_pearson_known_cases():
    x = np.arange(10.0)
    r = stats.pearson(x, 3 * x + 1)
    assert r["pearson_r"] == pytest.approx(1.0) and r["p_value"] == 0.0
    assert r["slope"] == pytest.approx(3.0) and r["intercept"] == pytest.approx(1.0)
    # symmetric parabola: r = 0 exactly, p = 1
    xs = np.array([-2.0, -1, 0, 1, 2])
    r0 = stats.pearson(xs, xs ** 2)
    assert abs(r0["pearson_r"]) < 1e-12 and r0["p_value"] == pytest.approx(1.0)
    # a worked case: n = 5, r = 0.8 -> t = 0.8 sqrt(3 / 0.36) = 2.3094, df 3; two-sided
    # p from the df-3 closed form of Student's t CDF
    y = np.array([1.0, 3, 2, 5, 4])
    rr = stats.pearson(np.arange(5.0), y)
    assert rr["pearson_r"] == pytest.approx(0.8)
    t = 0.8 * math.sqrt(3 / 0.36)
    th = math.atan(t / math.sqrt(3))
    p_closed = 1 - 2 / math.pi * (th + math.sin(th) * math.cos(th))
    assert rr["p_value"] == pytest.approx(p_closed, abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        stats.pearson(x, np.ones(10))
    with pytest.raises(ValueError, match="at least 3"):
        stats.pearson([1, 2], [1, 2])


def test_pearson_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (3, 4, 7, 25, 300):
        x = rng.standard_normal(n)
        y = 0.3 * x + rng.standard_normal(n)
        ours, ref = stats.pearson(x, y), scipy_stats.pearsonr(x, y)
        assert ours["pearson_r"] == pytest.approx(ref[0], abs=1e-12)
        assert ours["p_value"] == pytest.approx(ref[1], rel=1e-9, abs=1e-15)


def test_betainc_matches_scipy():
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(1)
    for a, b, x in zip(rng.uniform(0.05, 60, 300), rng.uniform(0.05, 60, 300),
                       rng.uniform(0, 1, 300)):
        assert stats.betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), abs=1e-12)


def test_permutation_pvalue():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(30)
    assert stats.permutation_pvalue(x, x + 0.1 * rng.standard_normal(30), 2000) == \
        pytest.approx(1 / 2001)
    p_null = stats.permutation_pvalue(x, rng.standard_normal(30), 2000, seed=1)
    assert p_null > 0.01
    assert stats.permutation_pvalue(x, x ** 3, 500, seed=3) == \
        stats.permutation_pvalue(x, x ** 3, 500, seed=3)
    # agrees with the t test on a moderate effect
    y = 0.4 * x + rng.standard_normal(30)
    assert stats.permutation_pvalue(x, y, 20000, seed=2) == \
        pytest.approx(stats.pearson(x, y)["p_value"], abs=0.02)


# --------------------------------------------------------------- experiments end to end

@pytest.fixture(scope="module")
def small_models():
    """Briefly trained tiny models (the shapes of the smoke profile)."""
    ica.set_num_threads(1)
    sm = ica.Transformer(ica.ModelConfig(n_embd=16, n_layer=2, n_head=2, reward_head=True))
    ica.train(sm, TASK, steps=20, batch_size=16, lr=1e-3, reward_weight=10.0, progress=False)
    sizes = [ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=1), seed=0), sm]
    ica.train(sizes[0], TASK, steps=20, batch_size=16, lr=1e-3, progress=False)
    return sm, sizes


def test_experiments_end_to_end(small_models, tmp_path):
    sm, sizes = small_models
    ag = critic_studies.critic_accuracy_gain(sm, TASK, k_values=(2, 4), n_tasks=24, n_permutations=200)
    assert [(v["reference"], v["context"]) for v in ag["variants"]] == \
        list(critic_studies.DEFAULT_VARIANTS)
    assert ag["points"] == ag["variants"][0]["points"]          # the oracle's set-up on top
    labels = {p["critic"] for p in ag["points"]}
    assert {"oracle", "self", "inverted", "replace p=1"} <= labels
    assert len(ag["points"]) == 2 * len(critic_studies.DEFAULT_ACCURACY_CRITICS)
    for v in ag["variants"]:
        for p in v["points"]:
            assert {"critic", "accuracy", "gain", "k"} <= set(p) and 0 <= p["accuracy"] <= 1
            assert p["gain"] == pytest.approx(p["error_before"] - p["error_after"],
                                              abs=1e-12)
        acc = [p["accuracy"] for p in v["points"]]
        gain = [p["gain"] for p in v["points"]]
        assert v["pearson_r"] == pytest.approx(np.corrcoef(acc, gain)[0, 1], abs=1e-9)
        assert 0 <= v["p_value"] <= 1 and 0 < v["p_value_permutation"] <= 1
    assert [p["accuracy"] for p in ag["points"] if p["critic"] == "oracle"] == [1.0, 1.0]

    # the quality variant: noisy quality critics judge only the answers (oracle context),
    # so the first answer is the same whatever judges the answers
    q = ag["variants"][1]
    for k in (2, 4):
        before = {p["error_before"] for p in q["points"] if p["k"] == k}
        assert max(before) - min(before) < 1e-12
    acc_q = {(p["critic"], p["k"]): p["accuracy"] for p in q["points"]}
    assert acc_q[("quality", 2)] == 1.0 and acc_q[("inverted (quality)", 2)] < 0.5
    assert ("replace p=0.5 (quality)", 4) in acc_q
    with pytest.raises(ValueError, match="reference"):
        critic_studies.critic_accuracy_gain(sm, TASK, k_values=(2,), n_tasks=4,
                               variants=[("truth", "critic")])

    rd = critic_studies.critic_rounds(sm, TASK, k=4, rounds=5, n_tasks=24)
    assert rd["rounds"] == [0, 1, 2, 3, 4, 5]
    assert {"oracle", "self", "self (oracle context)"} <= set(rd["curves"])
    assert all(len(c) == 6 for c in rd["curves"].values())
    assert rd["curves"]["self (oracle context)"][0] == rd["curves"]["oracle"][0]
    for lab, c in rd["curves"].items():
        ab = rd["after_best"][lab]
        assert ab["best_round"] == int(np.argmin(c))
        assert ab["rise"] == pytest.approx(c[-1] - c[ab["best_round"]], abs=1e-12)
        assert rd["gain_se"][lab][0] == 0.0 and len(rd["gain_se"][lab]) == 6
    with pytest.raises(ValueError, match="context"):
        critic_studies.critic_rounds(sm, TASK, n_tasks=4, context="truth")
    # one held-out policy: by default the studies use the first tasks of the fixed
    # evaluation set, the tasks the registered experiments evaluate on
    on_eval_set = critic_studies.critic_rounds(sm, TASK, k=4, rounds=5, n_tasks=24,
                                               batch=ica.evaluation_set(TASK, 64))
    assert on_eval_set["curves"] == rd["curves"]

    ms = critic_studies.critic_model_size(sizes, TASK, k=4, n_tasks=24)
    assert ms["sizes"] == [m.num_parameters for m in sizes]
    assert len(ms["gain"]) == 2 and ms["config"][1]["n_embd"] == 16
    assert set(ms["by_critic"]) == {"oracle", "quality"}
    assert ms["gain"] == ms["by_critic"]["oracle"]["gain"]
    assert ms["by_critic"]["quality"]["error_before"] == ms["error_before"]
    with pytest.raises(ValueError, match="model"):
        critic_studies.critic_model_size(sizes, TASK, critics=[critics.SelfCritic(sm)], n_tasks=4)

    for res in (ag, rd, ms):
        json.loads(json.dumps(res, allow_nan=False))
    rows = cq.critic_claims(ag, rd, ms)
    assert len(rows) == 2 + 3 + 2 and all(isinstance(r, Claim) for r in rows)
    assert [len(cq.claim_accuracy_gain(ag)), len(cq.claim_rounds(rd)),
            len(cq.claim_model_size(ms))] == [2, 3, 2]
    assert all(r.verdict in ("holds", "opposite", "inconclusive") and r.evidence and r.criterion
               for r in rows)

    pytest.importorskip("matplotlib")
    for plot, result in ((plotting.plot_accuracy_gain, ag), (plotting.plot_rounds, rd),
                         (plotting.plot_model_size, ms)):
        name = result["experiment"]
        fig = plot(result)
        assert fig.axes and all(ax.has_data() for ax in fig.axes)
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_claims_follow_the_numbers():
    def verdicts(rows):
        return [r.verdict for r in rows]
    ag = {"pearson_r": 0.6, "p_value": 0.01, "slope": 0.2, "n_points": 20,
          "p_value_permutation": 0.01}
    assert verdicts(cq.claim_accuracy_gain(ag)) == ["holds"]
    assert cq.claim_accuracy_gain(ag)[0].passed
    assert verdicts(cq.claim_accuracy_gain({**ag, "p_value": 0.2})) == ["inconclusive"]
    assert verdicts(cq.claim_accuracy_gain({**ag, "pearson_r": -0.6})) == ["opposite"]
    assert cq.claim_accuracy_gain({**ag, "pearson_r": -0.6})[0].passed is False
    two = {"variants": [ag, {**ag, "reference": "quality", "context": "oracle",
                             "p_value": 0.3}]}
    assert verdicts(cq.claim_accuracy_gain(two)) == ["holds", "inconclusive"]
    rd = {"curves": {"oracle": [0.5, 0.4, 0.35, 0.33, 0.34, 0.36],
                     "self": [0.5, 0.48, 0.55, 0.6, 0.62, 0.65]},
          "gain_se": {"oracle": [0.0] + [0.01] * 5, "self": [0.0] + [0.01] * 5},
          "after_best": {"oracle": {"best_round": 3, "rise": 0.03, "rise_se": 0.01},
                         "self": {"best_round": 1, "rise": 0.17, "rise_se": 0.01}},
          "accuracy": {"oracle": 1.0, "self": 0.6}}
    assert verdicts(cq.claim_rounds(rd)) == ["holds", "holds"]
    # gains or rises within noise decide nothing
    noisy = {**rd, "gain_se": {"oracle": [0.0] + [0.1] * 5, "self": [0.0] + [0.1] * 5},
             "after_best": {**rd["after_best"],
                            "self": {"best_round": 1, "rise": 0.17, "rise_se": 0.1}}}
    assert verdicts(cq.claim_rounds(noisy)) == ["inconclusive", "inconclusive"]
    rd2 = {**rd, "curves": {"oracle": [0.5, 0.45, 0.5, 0.5, 0.5, 0.5],
                            "self": [0.5, 0.4, 0.35, 0.3, 0.3, 0.3]},
           "after_best": {"oracle": {"best_round": 1, "rise": 0.05, "rise_se": 0.01},
                          "self": {"best_round": 3, "rise": 0.0, "rise_se": 0.01}}}
    assert verdicts(cq.claim_rounds(rd2)) == ["inconclusive", "inconclusive"]
    # the opposites: an accurate critic that only hurts, a self-critic that keeps gaining
    rd3 = {**rd, "curves": {"oracle": [0.3, 0.35, 0.4, 0.45, 0.5, 0.55],
                            "self": [0.5, 0.45, 0.4, 0.35, 0.3, 0.25]},
           "after_best": {"oracle": {"best_round": 0, "rise": 0.25, "rise_se": 0.01},
                          "self": {"best_round": 5, "rise": 0.0, "rise_se": 0.01}}}
    assert verdicts(cq.claim_rounds(rd3)) == ["opposite", "opposite"]
    ms = {"sizes": [100, 1000, 10000], "gain": [0.001, 0.02, 0.1], "gain_se": [0.01] * 3,
          "labels": ["a", "b", "c"], "critic": "oracle", "rounds": 1}
    assert verdicts(cq.claim_model_size(ms)) == ["holds"]
    assert verdicts(cq.claim_model_size({**ms, "gain": [0.05, 0.02, 0.1]})) == ["opposite"]
    assert verdicts(cq.claim_model_size({**ms, "gain": [0.0, 0.0, 0.01]})) == ["inconclusive"]
    both = {**ms, "by_critic": {"oracle": {"gain": [0.0, 0.0, 0.01], "gain_se": [0.01] * 3},
                                "quality": {"gain": [0.0, 0.05, 0.1], "gain_se": [0.01] * 3}}}
    assert verdicts(cq.claim_model_size(both)) == ["inconclusive", "holds"]


# ------------------------------------------------------------------------- registry

def test_registry_runs_the_critic_experiments_on_smoke(tmp_path):
    """The three experiments are registered, share the panels' models and write JSON,
    PNG and report rows."""
    pytest.importorskip("matplotlib")
    import os
    load_builtin_experiments()
    for name in cq.EXPERIMENT_NAMES:
        assert name in EXPERIMENTS
    prof = PROFILES["smoke"]
    sizes = [s.name for s in EXPERIMENTS["critic_model_size"].models(prof)]
    panels = {s.name for n in ("depth", "heads") for s in EXPERIMENTS[n].models(prof)}
    assert set(sizes) <= panels                      # no extra models for experiment 3
    assert cq.self_critic_spec(prof).config.reward_head
    ica.set_num_threads(1)
    runner = runner_mod.Runner("smoke", out=str(tmp_path), progress=False,
                               log=lambda m: None)
    results = runner.run(list(cq.EXPERIMENT_NAMES))
    d = tmp_path / "smoke"
    for name in cq.EXPERIMENT_NAMES:
        assert (d / f"{name}.json").exists() and (d / f"{name}.png").exists()
    assert results["critic_rounds"]["x_key"] == "rounds"
    text = (d / "report.md").read_text()
    assert cq.CLAIM_SECTION in text
    rows = report.all_claims(results)
    assert len([r for r in rows if r.section == cq.CLAIM_SECTION]) == 7   # 2 + 3 + 2
    back = runner_mod.load_or_run("smoke", str(tmp_path), list(cq.EXPERIMENT_NAMES),
                                  progress=False)
    assert back["critic_rounds"]["curves"] == results["critic_rounds"]["curves"]
    assert os.path.exists(runner.model_path(cq.self_critic_spec(prof)))
