"""Task sampler statistics and reproducibility, and every baseline against an
independent NumPy implementation (tests/numpy_baselines.py)."""
import math
import os
import sys

import numpy as np
import pytest

import icalign as ica

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_baselines as nb  # noqa: E402

T_VALUES = list(range(2, 16))


@pytest.fixture
def threads():
    before = ica.get_num_threads()
    yield
    ica.set_num_threads(before)


# ------------------------------------------------------------------ sampler
def test_sampler_statistics():
    task = ica.AlignmentTask(n_dims=5, n_points=20)
    b = task.sample(2000, seed=3)
    r = b.rs_true.ravel().astype(np.float64)
    assert np.array_equal(b.rs, b.rs_true)  # p = 0: the shown reward is the true one
    # U(0, 1): moments and the Kolmogorov-Smirnov distance (40000 draws:
    # 5-sigma bounds, so a correct sampler fails with negligible probability)
    assert abs(r.mean() - 0.5) < 5 * math.sqrt(1 / 12 / r.size)
    assert abs(r.var() - 1 / 12) < 0.004
    ks = np.max(np.abs(np.sort(r) - (np.arange(1, r.size + 1) - 0.5) / r.size))
    assert ks < 1.63 / math.sqrt(r.size) * 1.5
    # one query repeated; y_i the stated mixture of y* and eps
    assert np.array_equal(b.xs, np.repeat(b.xs[:, :1], 20, axis=1))
    mix = (b.rs_true[..., None].astype(np.float64) * b.ystar[:, None]
           + (1 - b.rs_true[..., None].astype(np.float64)) * b.eps[:, None])
    np.testing.assert_allclose(b.ys, mix, rtol=1e-5, atol=1e-5)
    # y* = x W*, eps = x W_eps with standard normal W: per coordinate variance |x|^2
    xn2 = (b.xs[:, 0].astype(np.float64) ** 2).sum(axis=1)
    assert abs(np.mean(b.ystar.astype(np.float64) ** 2 / xn2[:, None]) - 1) < 0.05
    assert abs(np.mean(b.eps.astype(np.float64) ** 2 / xn2[:, None]) - 1) < 0.05


def test_sampler_matches_ported_rng():
    """The first draws of a task are x ~ N(0, I) from stream (seed, offset + i):
    the Philox port used for the exact GD comparison reproduces them."""
    b = ica.AlignmentTask(5, 20).sample(3, seed=11, offset=7)
    for i in range(3):
        rng = nb.Stream(11, nb.DOMAIN_TASK, 7 + i)
        x = np.array([rng.normal() for _ in range(5)], dtype=np.float32)
        np.testing.assert_array_equal(b.xs[i, 0], x)


@pytest.mark.parametrize("p", [0.25, 0.7, 1.0])
def test_reward_noise(p):
    task = ica.AlignmentTask(5, 20)
    clean = task.sample(1500, seed=5)
    noisy = task.sample(1500, seed=5, reward_noise=p)
    # the true tasks do not depend on p
    for name in ("xs", "ys", "rs_true", "ystar", "eps"):
        np.testing.assert_array_equal(getattr(noisy, name), getattr(clean, name))
    replaced = np.mean(noisy.rs != noisy.rs_true)
    n = noisy.rs.size
    assert abs(replaced - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-9
    shown = noisy.rs.ravel().astype(np.float64)
    assert abs(shown.mean() - 0.5) < 0.01  # replacements are U(0, 1) too
    if p == 1.0:  # a useless critic: shown and true rewards uncorrelated
        assert abs(np.corrcoef(shown, noisy.rs_true.ravel())[0, 1]) < 0.03


def test_seed_offset_reproducibility():
    task = ica.AlignmentTask(5, 20)
    a, b = task.sample(20, seed=1), task.sample(20, seed=1)
    for name in ("xs", "ys", "rs", "rs_true", "ystar", "eps"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(task.sample(20, seed=2).xs, a.xs)
    part = task.sample(8, seed=1, offset=5, reward_noise=0.4)
    whole = task.sample(20, seed=1, reward_noise=0.4)
    np.testing.assert_array_equal(part.ys, whole.ys[5:13])
    np.testing.assert_array_equal(part.rs, whole.rs[5:13])


def test_thread_count_independence(threads):
    task = ica.AlignmentTask(5, 20)
    out = {}
    for n in (1, 2):
        ica.set_num_threads(n)
        batch = task.sample(257, seed=9, reward_noise=0.3)
        out[n] = (batch, ica.gd_baseline(batch[:40], T_VALUES, steps=20),
                  ica.simple_baseline("oracle", batch, T_VALUES))
    for name in ("xs", "ys", "rs", "rs_true", "ystar", "eps"):
        np.testing.assert_array_equal(getattr(out[1][0], name), getattr(out[2][0], name))
    np.testing.assert_array_equal(out[1][1], out[2][1])
    np.testing.assert_array_equal(out[1][2], out[2][2])


def test_evaluation_set_is_fixed_and_separate():
    task = ica.AlignmentTask(5, 20)
    e1, e2 = ica.evaluation_set(task, 16), ica.evaluation_set(task, 16)
    np.testing.assert_array_equal(e1.ys, e2.ys)
    assert e1.seed == ica.EVAL_SEED_BASE
    noisy = ica.evaluation_set(task, 16, reward_noise=0.5)
    np.testing.assert_array_equal(noisy.ystar, e1.ystar)
    model = ica.Transformer(ica.ModelConfig(n_embd=4, n_layer=1, n_head=1), seed=0)
    with pytest.raises(ValueError, match="reserved for evaluation"):
        ica.train(model, task, steps=1, batch_size=2, seed=ica.EVAL_SEED_BASE, progress=False)


# ------------------------------------------------------------------ baselines
@pytest.fixture(scope="module")
def small_batch():
    return ica.AlignmentTask(5, 20).sample(6, seed=21, reward_noise=0.3)


@pytest.mark.parametrize("kind,ref", [("mean", nb.mean_response), ("best", nb.best_response),
                                      ("weighted", nb.weighted_response),
                                      ("oracle", nb.oracle_response)])
def test_simple_baselines_match_numpy(small_batch, kind, ref):
    b = small_batch
    got = ica.simple_baseline(kind, b, T_VALUES)
    for i in range(b.batch_size):
        for j, t in enumerate(T_VALUES):
            want = ref(b.ys[i, :t], b.rs[i, :t])
            np.testing.assert_allclose(got[i, j], want, rtol=2e-4, atol=2e-5,
                                       err_msg=f"{kind} task {i} t={t}")


def test_oracle_is_exact_with_exact_rewards():
    b = ica.AlignmentTask(5, 20).sample(50, seed=4)
    err = ica.normalized_error(ica.simple_baseline("oracle", b, [2, 15]), b.ystar)
    assert err.max() < 1e-4


def test_gd_baseline_matches_numpy_adam(small_batch):
    """Same initial W (the ported counter-based RNG), same Adam, same PL loss."""
    b = small_batch
    steps, lr, seed = 30, 0.1, 7
    got = ica.gd_baseline(b, T_VALUES, steps=steps, lr=lr, seed=seed)
    init = ica.gd_baseline(b, T_VALUES, steps=0, lr=lr, seed=seed)
    for i in range(b.batch_size):
        for j, t in enumerate(T_VALUES):
            W0 = nb.gd_init(seed, i, t, 5)
            np.testing.assert_allclose(init[i, j], (b.xs[i, 0].astype(np.float64) @ W0),
                                       rtol=1e-5, atol=1e-6)
            want = nb.gd_fit(b.xs[i, 0], b.ys[i, :t], b.rs[i, :t], W0, steps=steps, lr=lr)
            np.testing.assert_allclose(got[i, j], want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"task {i} t={t}")


def test_gd_decreases_the_pl_loss():
    b = ica.AlignmentTask(5, 20).sample(40, seed=8)
    t_values = [3, 8, 15]
    losses = {}
    for steps in (0, 10, 50):
        pred = ica.gd_baseline(b, t_values, steps=steps, lr=0.1, seed=0)
        losses[steps] = np.array([[nb.pl_loss_grad(pred[i, j], b.ys[i, :t], b.rs[i, :t])[0]
                                   for j, t in enumerate(t_values)] for i in range(40)])
    assert losses[10].mean() < losses[0].mean()
    assert losses[50].mean() < losses[10].mean()
    assert np.mean(losses[50] < losses[0]) > 0.9
    # and fitting the ranking moves the answer toward y*
    err = {s: ica.normalized_error(ica.gd_baseline(b, [15], steps=s), b.ystar).mean()
           for s in (0, 50)}
    assert err[50] < err[0] - 0.2
