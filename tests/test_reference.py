"""Self-checks of the float64 NumPy reference (tests/reference.py).

Gradients are checked by central finite differences; loss values against brute-force
definitions written independently here.
"""

import itertools
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402


@dataclass
class Cfg:
    n_dims: int = 3
    n_points: int = 5
    n_embd: int = 8
    n_layer: int = 2
    n_head: int = 2
    softmax: bool = True
    ffn: bool = True
    causal: bool = True
    reward_head: bool = False
    layernorm: bool = True


def make_batch(rng, cfg, B, N):
    xs = rng.standard_normal((B, N, cfg.n_dims))
    ys = rng.standard_normal((B, N, cfg.n_dims))
    rs = rng.uniform(0.0, 1.0, (B, N))
    return xs, ys, rs


def assert_close_fd(num, ana, what, rtol=1e-6, atol=1e-9):
    err = abs(num - ana)
    assert err <= rtol * max(abs(num), abs(ana)) + atol, (
        f"{what}: finite difference {num!r} vs analytic {ana!r} (err {err:.3g})")


# ---------------------------------------------------------------------------------------
# full model + loss gradient by central finite differences
# ---------------------------------------------------------------------------------------

# (id, cfg kwargs, N, objective, reward)
GRAD_CASES = [
    ("softmax-ffn-causal-h2-pl-cos", dict(), 5, "pl", "cosine"),
    ("softmax-ffn-causal-h1-bt-negsq-rh-Nlt", dict(n_head=1, reward_head=True), 4, "bt", "neg_sq"),
    ("linear-noffn-causal-h2-pl-negsq", dict(softmax=False, ffn=False), 5, "pl", "neg_sq"),
    ("softmax-ffn-noncausal-h3-bt-cos-rh", dict(n_embd=12, n_head=3, causal=False,
                                               reward_head=True), 5, "bt", "cosine"),
    ("linear-ffn-noncausal-h1-pl-cos-Nlt", dict(softmax=False, causal=False, n_head=1), 3,
     "pl", "cosine"),
    ("linear-ffn-causal-h3-bt-cos-rh", dict(softmax=False, n_embd=6, n_head=3,
                                            reward_head=True), 5, "bt", "cosine"),
    ("softmax-noffn-noncausal-h2-pl-negsq-rh-Nlt", dict(ffn=False, causal=False,
                                                        reward_head=True), 4, "pl", "neg_sq"),
    ("softmax-noffn-causal-h1-l3-bt-cos", dict(ffn=False, n_head=1, n_layer=3), 5, "bt", "cosine"),
    ("noln-softmax-ffn-causal-h2-pl-negsq", dict(layernorm=False), 5, "pl", "neg_sq"),
    ("noln-linear-ffn-noncausal-h2-bt-cos-rh", dict(layernorm=False, softmax=False, causal=False,
                                                     reward_head=True), 4, "bt", "cosine"),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_total_grad_finite_differences(case):
    _, kw, N, objective, reward = case
    cfg = Cfg(**kw)
    rng = np.random.default_rng(1234)
    params = ref.random_params(cfg, rng)
    xs, ys, rs = make_batch(rng, cfg, B=2, N=N)
    rw = 0.7

    def loss_at(p):
        return ref.total_loss_and_grad(p, cfg, xs, ys, rs, objective, reward, rw)[0]

    loss, grads = ref.total_loss_and_grad(params, cfg, xs, ys, rs, objective, reward, rw)
    assert np.isfinite(loss)
    assert list(grads) == list(ref.param_shapes(cfg))
    for name, shape in ref.param_shapes(cfg).items():
        assert grads[name].shape == shape, name
        assert grads[name].dtype == np.float64, name

    # wpe rows beyond the used T = 3N receive no gradient
    assert np.all(grads["wpe"][3 * N:] == 0.0)

    eps = 1e-6
    for name, p in params.items():
        flat_count = p.size
        if name == "wpe":  # sample only rows that are used
            idx_pool = np.arange(3 * N * cfg.n_embd)
        else:
            idx_pool = np.arange(flat_count)
        picks = rng.choice(idx_pool, size=min(4, idx_pool.size), replace=False)
        g_flat = grads[name].reshape(-1)
        for i in picks:
            pp = dict(params)
            q = p.copy().reshape(-1)
            q[i] = p.reshape(-1)[i] + eps
            pp[name] = q.reshape(p.shape)
            lp = loss_at(pp)
            q[i] = p.reshape(-1)[i] - eps
            pp[name] = q.reshape(p.shape)
            lm = loss_at(pp)
            # absolute floor: central-difference round-off ~ 1e-16 |loss| / eps
            assert_close_fd((lp - lm) / (2 * eps), g_flat[i], f"{name}[{i}]",
                            atol=1e-9 * max(1.0, abs(loss)))


def test_param_shapes_order_and_names():
    cfg = Cfg(n_layer=1, reward_head=True)
    names = list(ref.param_shapes(cfg))
    assert names == [
        "read_in.weight", "read_in.bias", "wpe",
        "h.0.ln_1.weight", "h.0.ln_1.bias",
        "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
        "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias",
        "h.0.ln_2.weight", "h.0.ln_2.bias",
        "h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias",
        "h.0.mlp.c_proj.weight", "h.0.mlp.c_proj.bias",
        "ln_f.weight", "ln_f.bias", "read_out.weight", "read_out.bias",
        "read_reward.weight", "read_reward.bias",
    ]
    s = ref.param_shapes(Cfg(ffn=False, n_layer=2))
    assert not any("ln_2" in k or "mlp" in k for k in s)
    assert "read_reward.weight" not in s
    assert s["wpe"] == (15, 8) and s["h.1.attn.c_attn.weight"] == (8, 24)


def test_sequence_loss_grad_finite_differences():
    rng = np.random.default_rng(7)
    B, N, d = 2, 5, 3
    pred = rng.standard_normal((B, N, d))
    ys = rng.standard_normal((B, N, d))
    rs = rng.uniform(size=(B, N))
    rs[0, 1] = rs[0, 0]  # a tie
    for objective in ("pl", "bt"):
        for reward in ("cosine", "neg_sq"):
            loss, dpred = ref.sequence_loss(pred, ys, rs, objective, reward)
            assert np.all(dpred[:, :2] == 0.0)
            for idx in itertools.product(range(B), range(2, N), range(d)):
                p1 = pred.copy(); p1[idx] += 1e-6
                p2 = pred.copy(); p2[idx] -= 1e-6
                num = (ref.sequence_loss(p1, ys, rs, objective, reward)[0]
                       - ref.sequence_loss(p2, ys, rs, objective, reward)[0]) / 2e-6
                assert_close_fd(num, dpred[idx], f"{objective}/{reward} dpred{idx}")
            # explicit averaging
            manual = np.mean([
                np.mean([ref.prefix_loss(pred[b, n], ys[b, :n], rs[b, :n], objective, reward)[0]
                         for n in range(2, N)]) for b in range(B)])
            assert abs(manual - loss) < 1e-12


def test_reward_head_loss():
    rng = np.random.default_rng(3)
    rhat = rng.standard_normal((2, 4))
    rs = rng.uniform(size=(2, 4))
    loss, d = ref.reward_head_loss(rhat, rs, 0.5)
    assert abs(loss - 0.5 * np.mean((rhat - rs) ** 2)) < 1e-14
    np.testing.assert_allclose(d, 0.5 * 2 * (rhat - rs) / 8, rtol=1e-14)


# ---------------------------------------------------------------------------------------
# prefix loss: gradient and brute-force values
# ---------------------------------------------------------------------------------------

def brute_rho(a, b, reward):
    if reward == "cosine":
        return float(a @ b) / (max(np.linalg.norm(a), 1e-8) * max(np.linalg.norm(b), 1e-8))
    return -float(np.sum((a - b) ** 2))


def brute_order(r):
    """Best first; ties by index — by explicit selection, not argsort."""
    remaining = list(range(len(r)))
    order = []
    while remaining:
        best = remaining[0]
        for j in remaining[1:]:
            if r[j] > r[best]:
                best = j
        order.append(best)
        remaining.remove(best)
    return order


def brute_pl(yhat, Y, r, reward):
    s = [brute_rho(yhat, Y[j], reward) for j in brute_order(r)]
    logp = 0.0
    for i in range(len(s)):
        logp += s[i] - math.log(sum(math.exp(sj) for sj in s[i:]))
    return -logp


def brute_bt(yhat, Y, r, reward):
    s = [brute_rho(yhat, Y[j], reward) for j in brute_order(r)]
    total, count = 0.0, 0
    for i in range(len(s)):
        for j in range(i + 1, len(s)):
            total += -math.log(1.0 / (1.0 + math.exp(-(s[i] - s[j]))))
            count += 1
    return total / count


@pytest.mark.parametrize("objective", ["pl", "bt"])
@pytest.mark.parametrize("reward", ["cosine", "neg_sq"])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_prefix_loss_values_and_grad(objective, reward, k):
    rng = np.random.default_rng(100 + k)
    d = 4
    for trial in range(3):
        yhat = rng.standard_normal(d)
        Y = rng.standard_normal((k, d))
        r = rng.uniform(size=k)
        if trial == 1 and k >= 3:
            r[2] = r[0]  # tie
        if trial == 2:
            r[:] = 0.5  # all tied -> index order
        loss, g = ref.prefix_loss(yhat, Y, r, objective, reward)
        if objective == "pl":
            expect = brute_pl(yhat, Y, r, reward)
        else:
            expect = brute_bt(yhat, Y, r, reward) if k >= 2 else 0.0
        assert abs(loss - expect) <= 1e-12 * max(1.0, abs(expect))
        for i in range(d):
            e = np.zeros(d); e[i] = 1e-6
            num = (ref.prefix_loss(yhat + e, Y, r, objective, reward)[0]
                   - ref.prefix_loss(yhat - e, Y, r, objective, reward)[0]) / 2e-6
            assert_close_fd(num, g[i], f"{objective}/{reward} k={k} dyhat[{i}]")


def test_prefix_loss_tie_order_matters():
    # With a tie, the lower index is ranked first: swapping the two tied responses
    # changes the PL/BT loss.
    rng = np.random.default_rng(5)
    yhat = rng.standard_normal(3)
    Y = rng.standard_normal((3, 3))
    r = np.array([0.4, 0.9, 0.4])
    for objective in ("pl", "bt"):
        l1 = ref.prefix_loss(yhat, Y, r, objective, "cosine")[0]
        l2 = ref.prefix_loss(yhat, Y[[2, 1, 0]], r, objective, "cosine")[0]
        assert abs(l1 - l2) > 1e-6
        # explicit order [1, 0, 2] with strictly decreasing rewards gives the same loss
        l3 = ref.prefix_loss(yhat, Y[[1, 0, 2]], np.array([3.0, 2.0, 1.0]), objective, "cosine")[0]
        assert abs(l1 - l3) < 1e-13


def test_pl_k2_closed_form():
    rng = np.random.default_rng(11)
    for reward in ("cosine", "neg_sq"):
        for _ in range(5):
            yhat = rng.standard_normal(5)
            Y = rng.standard_normal((2, 5))
            r = rng.uniform(size=2)
            hi, lo = (0, 1) if r[0] >= r[1] else (1, 0)
            s1, s2 = brute_rho(yhat, Y[hi], reward), brute_rho(yhat, Y[lo], reward)
            loss = ref.prefix_loss(yhat, Y, r, "pl", reward)[0]
            assert abs(loss - math.log1p(math.exp(s2 - s1))) < 1e-12 * max(1, abs(loss))
            # BT with k=2 is the same single pair
            assert abs(ref.prefix_loss(yhat, Y, r, "bt", reward)[0] - loss) < 1e-12 * max(1, loss)


def test_pl_is_a_distribution_over_rankings():
    # exp(-L) over all k! rankings (realised by choosing the rewards) sums to 1.
    rng = np.random.default_rng(12)
    k, d = 4, 3
    yhat = rng.standard_normal(d)
    Y = rng.standard_normal((k, d))
    total = 0.0
    for perm in itertools.permutations(range(k)):
        r = np.empty(k)
        r[list(perm)] = np.arange(k, 0, -1)  # perm[0] best
        total += math.exp(-ref.prefix_loss(yhat, Y, r, "pl", "cosine")[0])
    assert abs(total - 1.0) < 1e-12


def test_pl_stable_for_large_scores():
    # neg_sq scores can be large in magnitude; logsumexp must not overflow.
    yhat = np.array([100.0, 0.0])
    Y = np.array([[0.0, 0.0], [100.0, 1.0], [-50.0, 0.0]])
    r = np.array([0.9, 0.5, 0.1])
    loss, g = ref.prefix_loss(yhat, Y, r, "pl", "neg_sq")
    assert np.isfinite(loss) and np.all(np.isfinite(g))
    loss, g = ref.prefix_loss(yhat, Y, r, "bt", "neg_sq")
    assert np.isfinite(loss) and np.all(np.isfinite(g))


def test_cosine_zero_vector_clamp():
    s, g = ref.policy_reward(np.zeros(3), np.ones((2, 3)), "cosine")
    assert np.all(s == 0.0) and np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------
# causality of the reference
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("softmax", [True, False])
def test_causality(softmax):
    rng = np.random.default_rng(21)
    B, N = 2, 5
    for causal in (True, False):
        cfg = Cfg(softmax=softmax, causal=causal, reward_head=True)
        params = ref.random_params(cfg, rng)
        xs, ys, rs = make_batch(rng, cfg, B, N)
        pred0, rhat0, _ = ref.forward(params, cfg, xs, ys, rs)
        assert pred0.shape == (B, N, cfg.n_dims) and rhat0.shape == (B, N)
        for n in range(N):
            for which in ("y", "r"):
                ys1, rs1 = ys.copy(), rs.copy()
                if which == "y":
                    ys1[:, n] += 1.0
                else:
                    rs1[:, n] += 0.5
                pred1, rhat1, _ = ref.forward(params, cfg, xs, ys1, rs1)
                if causal:
                    np.testing.assert_allclose(pred1[:, :n + 1], pred0[:, :n + 1],
                                               rtol=0, atol=1e-13)
                    if n + 1 < N:
                        assert np.all(np.abs(pred1[:, n + 1:] - pred0[:, n + 1:]).max(-1) > 1e-6)
                    # reward head reads the y-token of example n: sees y_n, not r_n
                    np.testing.assert_allclose(rhat1[:, :n], rhat0[:, :n], rtol=0, atol=1e-13)
                    if which == "r":
                        np.testing.assert_allclose(rhat1[:, n], rhat0[:, n], rtol=0, atol=1e-13)
                    else:
                        assert np.all(np.abs(rhat1[:, n] - rhat0[:, n]) > 1e-6)
                else:
                    assert np.all(np.abs(pred1 - pred0).max(-1) > 1e-6)


def test_forward_accepts_rs_with_trailing_axis_and_short_N():
    cfg = Cfg()
    rng = np.random.default_rng(2)
    params = ref.random_params(cfg, rng)
    xs, ys, rs = make_batch(rng, cfg, 2, 3)
    p1, _, _ = ref.forward(params, cfg, xs, ys, rs)
    p2, _, _ = ref.forward(params, cfg, xs, ys, rs[..., None])
    np.testing.assert_array_equal(p1, p2)
    # prefix consistency: a causal model's first 3 predictions don't depend on later triplets
    xs5, ys5, rs5 = make_batch(rng, cfg, 2, 5)
    xs5[:, :3], ys5[:, :3], rs5[:, :3] = xs, ys, rs
    p5, _, _ = ref.forward(params, cfg, xs5, ys5, rs5)
    np.testing.assert_allclose(p5[:, :3], p1, rtol=0, atol=1e-13)
    with pytest.raises(ValueError):
        ref.forward(params, cfg, *make_batch(rng, cfg, 1, 6))


# ---------------------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------------------

def test_adam_update_matches_scalar_loop():
    rng = np.random.default_rng(9)
    p = rng.standard_normal(5)
    g1 = rng.standard_normal(5)
    g2 = rng.standard_normal(5)
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8

    P, M, V = p.copy(), np.zeros(5), np.zeros(5)
    P, M, V = ref.adam_update(P, g1, M, V, 1, lr)
    P, M, V = ref.adam_update(P, g2, M, V, 2, lr)

    for i in range(5):
        pi, mi, vi = p[i], 0.0, 0.0
        for t, g in ((1, g1[i]), (2, g2[i])):
            mi = b1 * mi + (1 - b1) * g
            vi = b2 * vi + (1 - b2) * g * g
            mhat = mi / (1 - b1 ** t)
            vhat = vi / (1 - b2 ** t)
            pi = pi - lr * mhat / (math.sqrt(vhat) + eps)
        assert abs(P[i] - pi) < 1e-15
        assert abs(M[i] - mi) < 1e-15
        assert abs(V[i] - vi) < 1e-15
    # first Adam step moves each coordinate by ~lr in the direction of -sign(g)
    P1, _, _ = ref.adam_update(p, g1, np.zeros(5), np.zeros(5), 1, lr)
    np.testing.assert_allclose(P1 - p, -lr * np.sign(g1), rtol=1e-6)
