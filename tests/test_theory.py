"""The hand-built gradient-descent transformers of icalign.theory.

* the reference GD iterations against finite differences of the losses, written
  here from their definitions (scipy's logsumexp as an independent oracle) and
  against the float64 reference losses;
* the constructions against GD through the float64 reference forward pass (item:
  median relative error <= 1e-3, worst <= 1e-2), and through the C forward pass.
"""
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logsumexp

import icalign as ica
from icalign import theory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402


def _rank(ys, rs):
    return np.asarray(ys)[np.argsort(-np.asarray(rs), kind="stable")]


def pl_loss_def(yhat, ys, rs):
    """-sum_i [r(yhat, y_tau(i)) - log sum_{j>=i} exp r(yhat, y_tau(j))], r = -|yhat - y|^2."""
    r = -((_rank(ys, rs) - yhat) ** 2).sum(axis=1)
    return -sum(r[i] - logsumexp(r[i:]) for i in range(r.size))


def bt_loss_def(yhat, ys, rs):
    """mean over i < j (by shown reward) of -log sigmoid(r_i - r_j)."""
    r = -((_rank(ys, rs) - yhat) ** 2).sum(axis=1)
    terms = [np.logaddexp(0.0, r[j] - r[i]) for i in range(r.size) for j in range(i + 1, r.size)]
    return float(np.mean(terms))


def central_fd(f, y, eps=1e-6):
    g = np.zeros_like(y)
    for m in range(y.size):
        e = np.zeros_like(y)
        e[m] = eps
        g[m] = (f(y + e) - f(y - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("kind", ["pl", "bt"])
@pytest.mark.parametrize("n", [2, 3, 7])
def test_gradients_match_finite_differences_and_reference(kind, n):
    rng = np.random.default_rng(n)
    grad, loss = ((theory.pl_grad, pl_loss_def) if kind == "pl"
                  else (theory.bt_grad, bt_loss_def))
    for _ in range(3):
        ys = rng.standard_normal((n, 4))
        rs = rng.standard_normal(n)
        yhat = 0.5 * rng.standard_normal(4)
        g = grad(yhat, ys, rs)
        fd = central_fd(lambda y: loss(y, ys, rs), yhat)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
        # the package's own objective with the neg_sq reward is the same loss
        _, gref = ref.prefix_loss(yhat, ys, rs, kind, "neg_sq")
        np.testing.assert_allclose(g, gref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["pl", "bt"])
def test_gd_iteration_is_gradient_descent_on_the_prediction(kind):
    rng = np.random.default_rng(3)
    xs, ys, rs = theory.random_tasks(2, 3, 6, seed=4)
    gd = theory.pl_gd if kind == "pl" else theory.bt_gd
    loss = pl_loss_def if kind == "pl" else bt_loss_def
    y0 = rng.standard_normal(3)
    out = gd(xs, ys, rs, lr=0.05, steps=2, y0=y0)
    for b in range(2):
        y = y0.copy()
        for _ in range(2):  # the last example supplies the query only
            y = y - 0.05 * central_fd(lambda v: loss(v, ys[b, :-1], rs[b, :-1]), y)
        np.testing.assert_allclose(out[b], y, rtol=1e-6, atol=1e-8)
    # one task without a batch axis
    np.testing.assert_allclose(gd(xs[0], ys[0], rs[0], 0.05, 2, y0), out[0])


def test_random_tasks_respect_the_reward_gap():
    xs, ys, rs = theory.random_tasks(16, 5, 20, delta=0.02, seed=0)
    assert xs.shape == ys.shape == (16, 20, 5) and rs.shape == (16, 20)
    gaps = np.diff(np.sort(rs[:, :-1], axis=1), axis=1)
    assert gaps.min() >= 0.02
    assert np.all(xs == xs[:, :1])


def _reference_predict(construction, xs, ys, rs):
    cfg = SimpleNamespace(reward_head=False, **construction.config)
    return ref.forward(construction.params, cfg, xs, ys, rs)[0][:, -1]


BUILD = {"pl": (theory.pl_gd_parameters, theory.pl_gd),
         "bt": (theory.bt_gd_parameters, theory.bt_gd)}


@pytest.mark.parametrize("kind", ["pl", "bt"])
@pytest.mark.parametrize("n_points,steps", [(6, 1), (6, 3), (11, 1)])
def test_construction_matches_gd_in_float64(kind, n_points, steps):
    build, gd = BUILD[kind]
    c = build(5, n_points, 0.1, steps)
    xs, ys, rs = theory.random_tasks(12, 5, n_points, seed=n_points + steps)
    err = theory.relative_error(_reference_predict(c, xs, ys, rs), gd(xs, ys, rs, 0.1, steps))
    assert np.median(err) <= 1e-3 and err.max() <= 1e-2, err


@pytest.mark.parametrize("kind", ["pl", "bt"])
def test_construction_starts_from_a_given_prediction(kind):
    build, gd = BUILD[kind]
    W0 = np.random.default_rng(0).standard_normal((5, 5)) / 3
    c = build(5, 6, 0.1, 2, y0_weight=W0)
    xs, ys, rs = theory.random_tasks(8, 5, 6, seed=9)
    target = gd(xs, ys, rs, 0.1, 2, y0=xs[:, -1] @ W0.T)
    err = theory.relative_error(_reference_predict(c, xs, ys, rs), target)
    assert np.median(err) <= 1e-3 and err.max() <= 1e-2, err


# ------------------------------------------------------------------------------------
# the C model
# ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pl", "bt"])
@pytest.mark.parametrize("n_points,steps", [(11, 1), (11, 3), (20, 1)])
def test_c_construction_matches_gd(kind, n_points, steps):
    build, gd = BUILD[kind]
    construct = theory.construct_pl_gd if kind == "pl" else theory.construct_bt_gd
    model = construct(5, n_points, lr=0.1, steps=steps)
    assert isinstance(model, ica.Transformer) and not model.config.layernorm
    xs, ys, rs = theory.random_tasks(16, 5, n_points, seed=100 + n_points + steps)
    pred = model.predict(xs.astype(np.float32), ys.astype(np.float32), rs.astype(np.float32))
    err = theory.relative_error(pred[:, -1], gd(xs, ys, rs, 0.1, steps))
    assert np.median(err) <= 1e-3 and err.max() <= 1e-2, err


def test_c_and_reference_forward_agree_on_a_construction():
    c = theory.pl_gd_parameters(5, 6, 0.1, 2)
    xs, ys, rs = theory.random_tasks(4, 5, 6, seed=3)
    pred = c.transformer().predict(xs, ys, rs)[:, -1]
    np.testing.assert_allclose(pred, _reference_predict(c, xs, ys, rs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["pl", "bt"])
def test_each_ablation_makes_the_error_large(kind):
    build, _ = BUILD[kind]
    c = build(5, 9, 0.1, 1)
    xs, ys, rs = theory.random_tasks(16, 5, 9, seed=5)
    assert np.median(theory.construction_errors(c, xs, ys, rs)) <= 1e-3
    # far beyond the accuracy criterion (median 1e-3): one block less drops only the
    # smallest ranking term, the other ablations break the step altogether
    floor = {"linear_attention": 0.5, "merged_heads": 0.5, "no_ffn": 0.5, "fewer_blocks": 1e-2}
    for which in theory.ABLATIONS:
        err = theory.construction_errors(theory.ablate(c, which), xs, ys, rs)
        assert np.median(err) >= floor[which], (which, np.median(err))
    # every ranking / pair block removed makes it worse
    blocks = [np.median(theory.construction_errors(theory.ablate(c, "fewer_blocks", b),
                                                   xs, ys, rs))
              for b in range(theory._pair_or_rank_blocks(c) + 1)]
    assert all(a > b for a, b in zip(blocks, blocks[1:])), blocks


def test_ranking_head_ranks_in_the_attention_maps():
    model = theory.construct_pl_gd(5, 8, lr=0.1)
    xs, ys, rs = theory.random_tasks(8, 5, 8, seed=6)
    maps = model.attention_maps(xs, ys, rs)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    probe = theory.probe_attention(maps, ys, rs, model.predict(xs, ys, rs)[:, -1])
    # block 1, head 0 (the first ranking head) puts all its mass on the best example
    assert probe["top_mass"][1, 0] > 0.999
    assert probe["top_mass"][1, 1] < 0.9  # the normaliser head spreads its mass


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError):
        theory.pl_gd_parameters(5, 1, 0.1)
    with pytest.raises(ValueError):
        theory.pl_gd_parameters(5, 6, 0.1, blocks_per_step=9)
    with pytest.raises(ValueError):
        theory.ablate(theory.pl_gd_parameters(5, 6, 0.1), "no_softmax")


def test_docs_tables_are_rendered_from_the_committed_results():
    """docs/theory.md holds exactly what scripts/theory_results.py renders from
    docs/theory/results.json (the numbers are not typed by hand), and the committed
    accuracy rows meet the criterion on 256 tasks each."""
    import importlib.util
    import json
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "theory_results", os.path.join(root, "scripts", "theory_results.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with open(script.RESULTS) as f:
        results = json.load(f)
    with open(script.DOC) as f:
        assert f.read() == script.render(results)
    rows = results["accuracy"]
    assert {(r["kind"], r["steps"]) for r in rows} == {(k, s) for k in ("pl", "bt")
                                                       for s in (1, 3)}
    assert max(r["n_points"] for r in rows) == 20
    for r in rows:
        assert r["n_tasks"] == 256 and r["median"] <= 1e-3 and r["max"] <= 1e-2, r
