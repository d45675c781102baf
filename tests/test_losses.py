"""C losses against their definitions (SPEC section 3)."""
import itertools

import numpy as np
import pytest

import icalign as ica
import reference as ref
from conftest import as64


def scores(yhat, Y, reward):
    if reward == "cosine":
        na = max(np.linalg.norm(yhat), 1e-8)
        nb = np.maximum(np.linalg.norm(Y, axis=1), 1e-8)
        return Y @ yhat / (na * nb)
    return -np.sum((Y - yhat) ** 2, axis=1)


def ranking(r):
    """Best first; ties keep index order."""
    return sorted(range(len(r)), key=lambda i: (-r[i], i))


def brute_pl(yhat, Y, r, reward):
    """-log P(ranking) under Plackett-Luce, one factor per position."""
    s = scores(yhat, Y, reward)[ranking(r)]
    return -sum(np.log(np.exp(s[i]) / np.exp(s[i:]).sum()) for i in range(len(s)))


def brute_bt(yhat, Y, r, reward):
    s = scores(yhat, Y, reward)[ranking(r)]
    pairs = [(i, j) for i in range(len(s)) for j in range(i + 1, len(s))]
    return np.mean([-np.log(1 / (1 + np.exp(-(s[i] - s[j])))) for i, j in pairs])


def brute_sequence(pred, ys, rs, objective, reward):
    fn = brute_pl if objective == "pl" else brute_bt
    B, N, _ = pred.shape
    return np.mean([np.mean([fn(pred[b, n], ys[b, :n], rs[b, :n], reward)
                             for n in range(2, N)]) for b in range(B)])


def random_case(B=3, N=7, d=4, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal((B, N, d)).astype(np.float32)
    ys = rng.standard_normal((B, N, d)).astype(np.float32)
    rs = rng.random((B, N)).astype(np.float32)
    if ties:
        rs = np.round(rs * 2) / 2  # values in {0, .5, 1}: many ties
    return pred, ys, rs


@pytest.mark.parametrize("objective", ["pl", "bt"])
@pytest.mark.parametrize("reward", ["cosine", "neg_sq"])
@pytest.mark.parametrize("ties", [False, True])
def test_sequence_loss_matches_brute_force(objective, reward, ties):
    pred, ys, rs = random_case(seed=1, ties=ties)
    loss, dpred = ica.sequence_loss(pred, ys, rs, objective=objective, reward=reward)
    expected = brute_sequence(*as64(pred, ys, rs), objective, reward)
    assert loss == pytest.approx(expected, rel=1e-6)
    ref_loss, ref_dpred = ref.sequence_loss(*as64(pred, ys, rs), objective, reward)
    np.testing.assert_allclose(dpred, ref_dpred, rtol=1e-5, atol=1e-7)
    assert np.all(dpred[:, :2] == 0)


def test_ties_are_ranked_by_index():
    # two identical rewards: swapping the tied responses must change the loss
    pred = np.array([[[1, 0], [1, 0], [1, 0]]], np.float32)
    ys = np.array([[[1, 0], [0, 1], [0, 0]]], np.float32)
    rs = np.array([[0.5, 0.5, 0.0]], np.float32)
    loss, _ = ica.pl_loss(pred, ys, rs)
    loss_swapped, _ = ica.pl_loss(pred, ys[:, [1, 0, 2]], rs)
    s = np.array([1.0, 0.0])  # cos with y_0 = 1, with y_1 = 0; y_0 ranks first
    assert loss == pytest.approx(np.log(1 + np.exp(s[1] - s[0])), rel=1e-6)
    assert loss_swapped == pytest.approx(np.log(1 + np.exp(s[0] - s[1])), rel=1e-6)


@pytest.mark.parametrize("reward", ["cosine", "neg_sq"])
def test_pl_with_two_pairs_is_the_logistic_closed_form(reward):
    pred, ys, rs = random_case(B=5, N=3, d=3, seed=2)
    loss, _ = ica.pl_loss(pred, ys, rs, reward=reward)
    expected = []
    for b in range(5):
        s = scores(pred[b, 2].astype(np.float64), ys[b, :2].astype(np.float64), reward)
        better, worse = (0, 1) if rs[b, 0] >= rs[b, 1] else (1, 0)
        expected.append(np.log1p(np.exp(s[worse] - s[better])))
    assert loss == pytest.approx(np.mean(expected), rel=1e-6)
    # and BT with one pair is the same number
    assert ica.bt_loss(pred, ys, rs, reward=reward)[0] == pytest.approx(loss, rel=1e-6)


def test_pl_probabilities_sum_to_one_over_rankings():
    rng = np.random.default_rng(3)
    yhat, Y = rng.standard_normal(3), rng.standard_normal((4, 3))
    total = sum(np.exp(-brute_pl(yhat, Y[list(p)], np.array([4., 3., 2., 1.]), "cosine"))
                for p in itertools.permutations(range(4)))
    assert total == pytest.approx(1.0, rel=1e-9)
    # the C loss is the same quantity
    pred = np.zeros((1, 5, 3), np.float32)
    pred[0, 4] = yhat
    ys = np.zeros((1, 5, 3), np.float32)
    ys[0, :4] = Y
    rs = np.array([[0.9, 0.1, 0.5, 0.3, 0.0]], np.float32)
    # only n = 4 depends on pred[0, 4]: compare gradients with the reference there
    _, dpred = ica.pl_loss(pred, ys, rs)
    _, ref_d = ref.sequence_loss(*as64(pred, ys, rs), "pl", "cosine")
    np.testing.assert_allclose(dpred[0, 4], ref_d[0, 4], rtol=1e-5)


def test_neg_sq_with_huge_scores_stays_finite():
    pred, ys, rs = random_case(seed=4)
    for objective in ("pl", "bt"):
        loss, dpred = ica.sequence_loss(pred * 300, ys, rs, objective=objective, reward="neg_sq")
        ref_loss, ref_d = ref.sequence_loss(*as64(pred * 300, ys, rs), objective, "neg_sq")
        assert np.isfinite(loss) and np.all(np.isfinite(dpred))
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        np.testing.assert_allclose(dpred, ref_d, rtol=1e-4, atol=1e-6 * np.abs(ref_d).max())


def test_zero_prediction_uses_the_clamped_norm():
    _, ys, rs = random_case(seed=5)
    loss, dpred = ica.pl_loss(np.zeros_like(ys), ys, rs)
    ref_loss, ref_d = ref.sequence_loss(np.zeros(ys.shape), *as64(ys, rs), "pl", "cosine")
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(dpred, ref_d, rtol=1e-5, atol=1e-8)


def test_sequence_loss_gradient_by_finite_differences():
    pred, ys, rs = random_case(B=2, N=6, d=3, seed=6)
    _, dpred = ica.pl_loss(pred, ys, rs)
    p64, y64, r64 = as64(pred, ys, rs)
    h = 1e-6
    for idx in [(0, 2, 0), (1, 3, 2), (0, 5, 1)]:
        up, down = p64.copy(), p64.copy()
        up[idx] += h
        down[idx] -= h
        numeric = (ref.sequence_loss(up, y64, r64)[0] - ref.sequence_loss(down, y64, r64)[0]) / (2 * h)
        assert dpred[idx] == pytest.approx(numeric, rel=1e-4, abs=1e-7)
