"""What is and is not bit-identical across the SIMD paths (README, "Reliability").

Bit-identical on every path ('avx512', 'avx2', 'scalar'): the task sampler, the
parameter initialisation, ``pl_loss``/``bt_loss`` and their gradients, the Adam
update for a given gradient, ``gd_baseline`` and the simple baselines: each
element or reduction is computed with the same operations in the same order
whatever the vector width.

Not bit-identical: the transformer's forward and backward (``predict``,
``loss_and_grad``, hence ``step`` and whole training runs). The vector kernels
accumulate in different orders and with different FMA contraction per vector
width; the paths agree to float32 rounding (checked here at 1e-5 relative,
measured below 1e-6; each path is also checked against the float64 reference in
tests/test_dispatch.py). A training run is therefore bit-identical on any thread
count and across a resume only on the same path; continuing a checkpoint on
another path gives a run that differs by rounding.
"""
import numpy as np
import pytest

import icalign as ica

import simd_paths

PATHS = list(simd_paths.ALL)


SUPPORTED = simd_paths.supported(PATHS)
pytestmark = pytest.mark.skipif(len(SUPPORTED) < 2, reason="this CPU runs one SIMD path only")
CFG = ica.ModelConfig(n_dims=5, n_points=10, n_embd=24, n_layer=2, n_head=3)


def _on_each_path(fn):
    before = ica.simd_path()
    try:
        out = {}
        for p in SUPPORTED:
            ica.set_simd_path(p)
            out[p] = fn()
        return out
    finally:
        ica.set_simd_path(before)


def _flat(x):
    if isinstance(x, dict):
        return [a for k in sorted(x) for a in _flat(x[k])]
    if isinstance(x, (tuple, list)):
        return [a for v in x for a in _flat(v)]
    return [np.asarray(x)]


def _identical(results):
    first = _flat(results[SUPPORTED[0]])
    return all(all(np.array_equal(a, b) for a, b in zip(first, _flat(results[p])))
               for p in SUPPORTED[1:])


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((6, 10, 5)).astype(np.float32),
            rng.standard_normal((6, 10, 5)).astype(np.float32),
            rng.random((6, 10)).astype(np.float32))


def test_identical_task_sampler_and_initialisation():
    task = ica.AlignmentTask(5, 10)

    def run():
        b = task.sample(16, seed=3, reward_noise=0.3, offset=7)
        return (b.xs, b.ys, b.rs, b.rs_true, b.ystar, b.eps,
                ica.Transformer(CFG, seed=4).state_dict())
    assert _identical(_on_each_path(run))


@pytest.mark.parametrize("reward", ["cosine", "neg_sq"])
def test_identical_losses_and_gradients(reward):
    pred, ys, rs = _inputs()
    assert _identical(_on_each_path(lambda: (ica.pl_loss(pred, ys, rs, reward=reward),
                                             ica.bt_loss(pred, ys, rs, reward=reward))))


def test_identical_adam_update():
    def run():
        core = ica.Transformer(CFG, seed=1)._core
        for s in range(3):
            core.grads[...] = np.random.default_rng(s).standard_normal(
                core.grads.shape[0]).astype(np.float32)
            core.adam_update(1e-2)
        return core.params.copy(), core.adam_m.copy(), core.adam_v.copy()
    assert _identical(_on_each_path(run))


def test_identical_baselines():
    batch = ica.AlignmentTask(5, 10).sample(6, seed=2, reward_noise=0.25)
    t = range(2, 9)
    assert _identical(_on_each_path(lambda: (
        ica.gd_baseline(batch, t, steps=10),
        [ica.simple_baseline(k, batch, t) for k in ("mean", "best", "weighted", "oracle")])))


def test_model_agrees_to_rounding_across_paths():
    xs, ys, rs = _inputs(1)
    results = _on_each_path(lambda: (
        ica.Transformer(CFG, seed=1).predict(xs, ys, rs),
        ica.Transformer(CFG, seed=1).loss_and_grad(xs, ys, rs)[1]))
    first = _flat(results[SUPPORTED[0]])
    for p in SUPPORTED[1:]:
        for a, b in zip(first, _flat(results[p])):
            scale = max(float(np.max(np.abs(a))), 1e-30)
            assert float(np.max(np.abs(a.astype(np.float64) - b))) <= 1e-5 * scale, p
