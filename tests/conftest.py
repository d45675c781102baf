"""Shared test helpers.

BLAS threads are pinned to one before NumPy loads: the float64 reference runs
many small products, and OpenBLAS threads fighting over two cores make it up to
40x slower (measured: 0.6 s vs 26 s for a paper-size forward+backward).
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import icalign as ica  # noqa: E402

import reference as ref  # noqa: E402


def model_with_reference_params(cfg, seed=0, scale=1.0):
    """A C model loaded with random reference parameters, and those parameters
    as float64 after rounding to float32 (what the C model really holds)."""
    params = ref.random_params(cfg, np.random.default_rng(seed), scale=scale)
    model = ica.Transformer(cfg, seed=seed)
    model.load_state_dict({k: v.astype(np.float32) for k, v in params.items()})
    return model, {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}


def task_arrays(batch_size, n_points, n_dims, seed=0, reward_noise=0.0):
    batch = ica.AlignmentTask(n_dims=n_dims, n_points=n_points).sample(
        batch_size, seed=seed, reward_noise=reward_noise)
    return batch.xs, batch.ys, batch.rs


def as64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def max_rel_error(actual, expected):
    """max |a - e| / max |e|: the error relative to the array's scale."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.abs(expected).max()
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / max(scale, 1e-30))


@pytest.fixture
def restore_threads():
    before = ica.get_num_threads()
    yield
    ica.set_num_threads(before)
