"""Bit-identical results on 1 and 2 threads and across runs."""
import numpy as np
import pytest

import icalign as ica
from conftest import model_with_reference_params, task_arrays

C = ica.ModelConfig
CONFIGS = [
    C(n_dims=5, n_points=20, n_embd=48, n_layer=3, n_head=3),
    C(n_dims=3, n_points=10, n_embd=16, n_layer=2, n_head=4, softmax=False, ffn=False),
    C(n_dims=3, n_points=10, n_embd=16, n_layer=2, n_head=2, reward_head=True, causal=False),
    C(n_dims=3, n_points=10, n_embd=16, n_layer=2, n_head=2, layernorm=False),
]


def run(cfg, threads):
    ica.set_num_threads(threads)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(19, cfg.n_points, cfg.n_dims)  # odd batch: uneven splits
    loss, grads = model.loss_and_grad(xs, ys, rs)
    pred = model.predict(xs, ys, rs)
    losses = [model.step(xs, ys, rs, lr=1e-3) for _ in range(2)]
    return loss, grads, pred, losses, model.state_dict()


@pytest.mark.parametrize("cfg", CONFIGS, ids=["default", "linear-noffn", "reward-noncausal",
                                         "no-layernorm"])
def test_one_and_two_threads_are_bit_identical(cfg, restore_threads):
    one, two, again = run(cfg, 1), run(cfg, 2), run(cfg, 2)
    for other in (two, again):
        assert one[0] == other[0]
        assert all(np.array_equal(one[1][k], other[1][k]) for k in one[1])
        assert np.array_equal(one[2], other[2])
        assert one[3] == other[3]
        assert all(np.array_equal(one[4][k], other[4][k]) for k in one[4])


def test_losses_are_bit_identical_across_threads(restore_threads):
    xs, ys, rs = task_arrays(33, 20, 5)
    pred = np.random.default_rng(0).standard_normal(xs.shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        ica.set_num_threads(threads)
        results.append([ica.pl_loss(pred, ys, rs), ica.bt_loss(pred, ys, rs, reward="neg_sq")])
    for (l1, g1), (l2, g2) in zip(*results):
        assert l1 == l2 and np.array_equal(g1, g2)


def test_thread_count_is_settable(restore_threads):
    ica.set_num_threads(1)
    assert ica.get_num_threads() == 1
    ica.set_num_threads(2)
    # a build without OpenMP runs on one thread whatever is asked, and says so
    assert ica.get_num_threads() == (2 if ica._core.has_openmp() else 1)
    with pytest.raises(ValueError, match="threads"):
        ica.set_num_threads(0)
