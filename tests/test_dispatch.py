"""Every SIMD dispatch path of the C core against the float64 NumPy reference.

For each path the CPU supports ('avx512', 'avx2', 'scalar', forced with
icalign.set_simd_path) the model's prediction and its loss gradient are compared
with tests/reference.py on configurations that reach every kernel branch: 1, 3 and
4 heads, FFN on/off, softmax/linear attention, causal/non-causal, LayerNorm on/off
(affine only), odd widths that
leave tails in every tile, and the paper's model at batch 8. Tolerances: forward
max error <= 1e-4 of the largest |prediction|; each parameter gradient max error
<= 1e-3 of that gradient's largest magnitude.

Each path must also give bit-identical results on 1, 2 and 3 threads (reductions
run in an order fixed by the shapes, never by the thread count).
"""

import os
import sys

import numpy as np
import pytest

import icalign as ica

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
import simd_paths  # noqa: E402

PATHS = list(simd_paths.ALL)


SUPPORTED = simd_paths.supported(PATHS)


@pytest.fixture(params=PATHS)
def simd_path(request):
    path = request.param
    if path not in SUPPORTED:
        pytest.skip(f"this CPU does not run the {path} path")
    before, threads = ica.simd_path(), ica.get_num_threads()
    ica.set_simd_path(path)
    yield path
    ica.set_simd_path(before)
    ica.set_num_threads(threads)


# (id, ModelConfig kwargs, B, N, objective, reward)
CASES = [
    ("h1-ffn-softmax-causal", dict(n_dims=3, n_points=6, n_embd=16, n_layer=2, n_head=1),
     3, 6, "pl", "cosine"),
    ("h3-ffn-softmax-causal-odd", dict(n_dims=5, n_points=7, n_embd=21, n_layer=2, n_head=3),
     5, 7, "pl", "neg_sq"),
    ("h4-noffn-softmax-causal", dict(n_dims=4, n_points=9, n_embd=64, n_layer=2, n_head=4,
                                     ffn=False), 3, 8, "bt", "cosine"),
    ("h4-ffn-linear-causal", dict(n_dims=5, n_points=6, n_embd=40, n_layer=2, n_head=4,
                                  softmax=False), 4, 6, "pl", "cosine"),
    ("h3-ffn-softmax-noncausal", dict(n_dims=5, n_points=6, n_embd=48, n_layer=2, n_head=3,
                                      causal=False), 3, 5, "bt", "neg_sq"),
    ("h1-noffn-linear-noncausal", dict(n_dims=2, n_points=5, n_embd=8, n_layer=3, n_head=1,
                                       softmax=False, ffn=False, causal=False), 2, 5, "pl",
     "neg_sq"),
    ("h3-ffn-reward-head", dict(n_dims=5, n_points=8, n_embd=96, n_layer=2, n_head=3,
                                reward_head=True), 3, 8, "pl", "cosine"),
    ("paper-b8", dict(), 8, 20, "pl", "cosine"),
    ("h2-ffn-softmax-causal-noln", dict(n_dims=5, n_points=7, n_embd=22, n_layer=2, n_head=2,
                                        layernorm=False), 5, 7, "pl", "neg_sq"),
    ("h4-noffn-linear-noncausal-noln", dict(n_dims=3, n_points=6, n_embd=20, n_layer=3,
                                            n_head=4, softmax=False, ffn=False, causal=False,
                                            layernorm=False), 3, 6, "bt", "cosine"),
]


def _setup(kw, B, N, seed=7):
    cfg = ica.ModelConfig(**kw)
    rng = np.random.default_rng(seed)
    # float32-representable parameters and inputs, so the reference sees exactly
    # what the C core sees and only the arithmetic differs
    params = {k: v.astype(np.float32).astype(np.float64)
              for k, v in ref.random_params(cfg, rng).items()}
    xs = rng.standard_normal((B, N, cfg.n_dims)).astype(np.float32)
    ys = rng.standard_normal((B, N, cfg.n_dims)).astype(np.float32)
    rs = rng.uniform(0.0, 1.0, (B, N)).astype(np.float32)
    model = ica.Transformer(cfg, seed=0)
    model.load_state_dict({k: v.astype(np.float32) for k, v in params.items()})
    return cfg, params, model, xs, ys, rs


_REFERENCE = {}


def _reference(case):
    """The reference's prediction, loss and gradients of a case, computed once
    for all paths (the paper-size case is the slow part of this file)."""
    name, kw, B, N, objective, reward = case
    if name not in _REFERENCE:
        cfg, params, _, xs, ys, rs = _setup(kw, B, N)
        f64 = [a.astype(np.float64) for a in (xs, ys, rs)]
        pred = ref.forward(params, cfg, *f64)[0]
        loss, grads = ref.total_loss_and_grad(params, cfg, *f64, objective, reward, 1.0)
        _REFERENCE[name] = (pred, loss, grads)
    return _REFERENCE[name]


def _max_rel(got, want):
    scale = np.max(np.abs(want))
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / max(scale, 1e-30))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_path_matches_reference(simd_path, case):
    _, kw, B, N, objective, reward = case
    pred_ref, loss_ref, grads_ref = _reference(case)
    _, _, model, xs, ys, rs = _setup(kw, B, N)

    pred = model.predict(xs, ys, rs)
    err = _max_rel(pred, pred_ref)
    assert err <= 1e-4, f"{simd_path}: forward error {err:.2e}"

    loss, grads = model.loss_and_grad(xs, ys, rs, objective=objective, reward=reward)
    assert abs(loss - loss_ref) <= 1e-4 * max(1.0, abs(loss_ref))
    errors = {name: _max_rel(grads[name], g) for name, g in grads_ref.items()
              if np.max(np.abs(g)) > 0}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-3, f"{simd_path}: gradient of {worst} off by {errors[worst]:.2e}"


THREAD_CASES = [
    ("odd-tails", dict(n_dims=5, n_points=7, n_embd=21, n_layer=2, n_head=3), 5, 7),
    ("paper-width", dict(n_dims=5, n_points=20, n_embd=96, n_layer=2, n_head=3), 24, 20),
    ("noln-noncausal", dict(n_dims=5, n_points=7, n_embd=24, n_layer=2, n_head=2,
                            layernorm=False, causal=False), 9, 7),
]


@pytest.mark.parametrize("case", THREAD_CASES, ids=[c[0] for c in THREAD_CASES])
def test_path_bit_identical_across_threads(simd_path, case):
    _, kw, B, N = case
    _, _, model, xs, ys, rs = _setup(kw, B, N, seed=3)
    results = []
    for threads in (1, 2, 3):
        ica.set_num_threads(threads)
        pred = model.predict(xs, ys, rs)
        loss, grads = model.loss_and_grad(xs, ys, rs, objective="pl", reward="cosine")
        results.append((threads, pred, loss, grads))
    _, pred1, loss1, grads1 = results[0]
    for threads, pred, loss, grads in results[1:]:
        assert np.array_equal(pred, pred1), f"{simd_path}: prediction differs on {threads} threads"
        assert loss == loss1, f"{simd_path}: loss differs on {threads} threads"
        for name in grads1:
            assert np.array_equal(grads[name], grads1[name]), (
                f"{simd_path}: gradient of {name} differs on {threads} threads")


def test_training_step_bit_identical_across_threads(simd_path):
    """A few Adam steps (forward, loss, backward, update) on 1 and 2 threads."""
    kw = dict(n_dims=5, n_points=10, n_embd=48, n_layer=2, n_head=3)
    task = ica.AlignmentTask(n_dims=5, n_points=10)
    states = []
    for threads in (1, 2):
        ica.set_num_threads(threads)
        model = ica.Transformer(ica.ModelConfig(**kw), seed=1)
        for step in range(3):
            b = task.sample(16, seed=step)
            model.step(b.xs, b.ys, b.rs, lr=1e-3)
        states.append(model.state_dict())
    for name in states[0]:
        assert np.array_equal(states[0][name], states[1][name]), name
