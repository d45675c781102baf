"""GD on any alignment objective and the surrogate optimum, against the float64
NumPy versions in numpy_baselines.py."""
from __future__ import annotations

import numpy as np
import pytest

import icalign as ica
import numpy_baselines as ref
from numpy_baselines import gd_init

OBJECTIVES = [(o, r) for o in ("pl", "bt") for r in ("cosine", "neg_sq")]


@pytest.fixture(scope="module")
def batch():
    return ica.AlignmentTask(5, 20).sample(12, seed=3)


@pytest.fixture(scope="module")
def noisy_batch():
    return ica.AlignmentTask(5, 20).sample(12, seed=3, reward_noise=0.5)


@pytest.mark.parametrize("objective,reward", OBJECTIVES)
def test_reference_gradient_matches_finite_differences(objective, reward):
    rng = np.random.default_rng(0)
    Y, r, yhat = rng.normal(size=(6, 5)), rng.uniform(size=6), rng.normal(size=5)
    _, grad = ref.objective_loss_grad(yhat, Y, r, objective, reward)
    h = 1e-6
    for i in range(5):
        e = np.eye(5)[i] * h
        fd = (ref.objective_loss_grad(yhat + e, Y, r, objective, reward)[0]
              - ref.objective_loss_grad(yhat - e, Y, r, objective, reward)[0]) / (2 * h)
        assert fd == pytest.approx(grad[i], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("objective,reward", OBJECTIVES)
def test_gd_with_each_objective_matches_numpy(batch, objective, reward):
    t_values = [2, 7, 15]
    got = ica.gd_baseline(batch, t_values, objective=objective, reward=reward)
    for b in range(4):
        for i, t in enumerate(t_values):
            want = ref.gd_fit(batch.xs[b, 0], batch.ys[b, :t], batch.rs[b, :t],
                              gd_init(0, b, t, 5), objective=objective, reward=reward)
            np.testing.assert_allclose(got[b, i], want, rtol=2e-5,
                                       atol=2e-5 * np.abs(want).max())


def test_gd_default_is_pl_cosine(batch):
    np.testing.assert_array_equal(ica.gd_baseline(batch, [3, 9]),
                                  ica.gd_baseline(batch, [3, 9], objective="pl",
                                                  reward="cosine"))


def _loss(yhat, batch, b, t, objective, reward):
    return ref.objective_loss_grad(yhat, batch.ys[b, :t], batch.rs[b, :t], objective, reward)[0]


@pytest.mark.parametrize("noisy", [False, True])
@pytest.mark.parametrize("objective,reward", OBJECTIVES)
def test_optimum_converges_below_gd_and_every_response(batch, noisy_batch, objective, reward,
                                                       noisy):
    """Where the minimisation converged, the scale-free gradient of log L
    (recomputed in float64 at the returned float32 prediction) is below the
    tolerance, and no candidate (the GD prediction on the same objective, every
    task response) has a lower objective. Where it did not, that is reported,
    and the objective is still below every response's."""
    tasks = noisy_batch if noisy else batch
    t_values = [2, 5, 15]
    opt = ica.surrogate_optimum(tasks, t_values, objective=objective, reward=reward)
    gd = ica.gd_baseline(tasks, t_values, objective=objective, reward=reward)
    assert opt.converged.shape == opt.grad_norm.shape == opt.steps.shape == (12, 3)
    np.testing.assert_array_equal(opt.converged, opt.grad_norm <= np.float32(opt.tol))
    assert np.all(opt.steps[~opt.converged] == opt.max_steps)
    if reward == "cosine":
        assert opt.converged.all()
    for b in range(tasks.batch_size):
        for i, t in enumerate(t_values):
            Y, r = tasks.ys[b, :t], tasks.rs[b, :t]
            yhat = opt.pred[b, i].astype(np.float64)
            loss = _loss(yhat, tasks, b, t, objective, reward)
            # the float32 rounding of the prediction moves loss and gradient a little
            slack = 1e-6 * (1.0 + abs(loss))
            if opt.converged[b, i]:
                grad = ref.scale_free_gradient(yhat, Y, r, objective, reward)
                assert grad <= (opt.tol + 1e-4) * loss
                assert loss <= _loss(gd[b, i], tasks, b, t, objective, reward) + slack
            else:  # the last iterate, still descending: GD may have gone further
                assert opt.grad_norm[b, i] > opt.tol
            for y in Y:
                assert loss <= _loss(y, tasks, b, t, objective, reward) + slack


def test_neg_sq_with_exact_rewards_is_reported_unconverged(batch):
    """Exact rewards order every response pair along y* - eps: the neg_sq
    objective decreases without bound along it, and the cap is reported."""
    opt = ica.surrogate_optimum(batch, [10], objective="pl", reward="neg_sq", max_steps=300)
    assert not opt.converged.any()
    assert np.all(opt.steps == 300)
    assert opt.converged_fraction.tolist() == [0.0]
    direction = batch.ystar - batch.eps
    cos = np.sum(opt.pred[:, 0] * direction, 1) / (
        np.linalg.norm(opt.pred[:, 0], axis=1) * np.linalg.norm(direction, axis=1))
    assert np.all(cos > 0.0)


def test_optimum_matches_scipy_on_the_cosine_objective(batch):
    optimize = pytest.importorskip("scipy.optimize")
    opt = ica.surrogate_optimum(batch, [6], objective="pl", reward="cosine")
    for b in range(4):
        f = lambda z: ref.objective_loss_grad(z, batch.ys[b, :6], batch.rs[b, :6])  # noqa: E731
        best = min((optimize.minimize(f, y, jac=True, method="BFGS", options={"gtol": 1e-10})
                    for y in batch.ys[b, :6].astype(np.float64)), key=lambda res: res.fun)
        assert f(opt.pred[b, 0].astype(np.float64))[0] <= best.fun + 1e-5


@pytest.mark.parametrize("objective,reward", [("bt", "neg_sq"), ("pl", "cosine")])
def test_bit_identical_across_threads(noisy_batch, objective, reward):
    before = ica.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            ica.set_num_threads(n)
            opt = ica.surrogate_optimum(noisy_batch, [2, 8, 15], objective=objective,
                                        reward=reward, max_steps=500)
            gd = ica.gd_baseline(noisy_batch, [2, 8, 15], objective=objective, reward=reward)
            results.append((opt.pred, opt.grad_norm, opt.steps, gd))
    finally:
        ica.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs,match", [
    ({"objective": "ranknet"}, "objective"),
    ({"reward": "dot"}, "reward"),
    ({"max_steps": -1}, "max_steps"),
    ({"lr": 0.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"tol": -1.0}, "tol"),
    ({"tol": float("inf")}, "tol"),
    ({"t_values": [0]}, "t_values"),
    ({"t_values": [21]}, "t_values"),
    ({"t_values": []}, "t_values"),
])
def test_optimum_rejects_bad_arguments(batch, kwargs, match):
    kwargs = {"t_values": [3], **kwargs}
    with pytest.raises(ValueError, match=match):
        ica.surrogate_optimum(batch, **kwargs)


@pytest.mark.parametrize("kwargs,match", [({"objective": "x"}, "objective"),
                                          ({"reward": "x"}, "reward")])
def test_gd_rejects_bad_objective(batch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ica.gd_baseline(batch, [3], **kwargs)
