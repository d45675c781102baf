"""Threads: every public C computation is bit-identical on 1, 2 and 3 threads,
on every SIMD path this CPU runs; calls on different models from different
Python threads (the GIL released) give the serial results bit for bit; and
changing the thread count or the SIMD path from another thread never reaches
a call in progress (each call reads both once, when it starts).
"""
import threading

import numpy as np
import pytest

import icalign as ica
from icalign import _core

import simd_paths

PATHS = simd_paths.supported()

SMALL = dict(n_dims=3, n_points=7, n_embd=12, n_layer=2, n_head=3)
CONFIGS = {
    "ffn-softmax-reward": dict(SMALL, softmax=True, ffn=True, causal=True, reward_head=True),
    "linear-noffn-noncausal": dict(SMALL, softmax=False, ffn=False, causal=False,
                                   reward_head=False),
}


@pytest.fixture
def settings():
    """Restore the thread count and the SIMD path after the test."""
    threads, path = ica.get_num_threads(), ica.simd_path()
    yield
    ica.set_num_threads(threads)
    ica.set_simd_path(path)


def batch(B, N, d, seed=3, noise=0.2):
    return _core.sample_tasks(B, N, d, seed, 0, noise)


def digest(*arrays):
    """Bytes of every array (and float), for exact comparison."""
    return b"".join(np.ascontiguousarray(a).tobytes() if isinstance(a, np.ndarray)
                    else np.float64(a).tobytes() for a in arrays)


def every_computation():
    """One result per public C computation, as bytes: forward, loss_and_grad
    (both objectives, both rewards), step, adam_update, sequence_loss (both
    objectives, both rewards), sample_tasks, gd_baseline and the four simple
    baselines. Batches are odd-sized so that chunks and groups split
    unevenly (B=13: 7 chunks of 2 sequences, 2 groups)."""
    out = {}
    for name, cfg in CONFIGS.items():
        m = _core.Model(**cfg, seed=5)
        xs, ys, rs, *_ = batch(13, 7, 3)
        pred, rhat = m.forward(xs, ys, rs)
        out[f"{name}/forward"] = digest(pred, *(() if rhat is None else (rhat,)))
        for objective in ("pl", "bt"):
            for reward in ("cosine", "neg_sq"):
                loss = m.loss_and_grad(xs, ys, rs, objective=objective, reward=reward,
                                       reward_weight=0.5)
                out[f"{name}/loss_and_grad/{objective}/{reward}"] = digest(loss, m.grads)
        losses = [m.step(xs, ys, rs, 1e-3) for _ in range(2)]
        m.adam_update(1e-3, 0.8, 0.99, 1e-6)
        out[f"{name}/step+adam"] = digest(*losses, m.params, m.adam_m, m.adam_v)
    for B, N, d in ((11, 9, 3), (3, 5, 8)):
        tasks = batch(B, N, d)
        out[f"sample_tasks/{B}"] = digest(*tasks)
        xs, ys, rs = tasks[:3]
        pred = np.random.default_rng(B).standard_normal((B, N, d)).astype(np.float32)
        for objective in ("pl", "bt"):
            for reward in ("cosine", "neg_sq"):
                out[f"sequence_loss/{B}/{objective}/{reward}"] = digest(
                    *_core.sequence_loss(pred, ys, rs, objective, reward))
        t_values = list(range(1, N + 1))
        out[f"gd_baseline/{B}"] = digest(_core.gd_baseline(xs, ys, rs, t_values, 5, 0.05, 7))
        for kind in ("mean", "best", "weighted", "oracle"):
            out[f"{kind}_baseline/{B}"] = digest(_core.simple_baseline(ys, rs, t_values, kind,
                                                                       0.3))
    return out


@pytest.mark.skipif(not _core.has_openmp(), reason="built without OpenMP")
@pytest.mark.parametrize("path", PATHS)
def test_every_computation_is_bit_identical_on_1_2_3_threads(path, settings):
    ica.set_simd_path(path)
    results = {}
    for threads in (1, 2, 3):
        ica.set_num_threads(threads)
        results[threads] = every_computation()
    for threads in (2, 3):
        differ = [k for k in results[1] if results[1][k] != results[threads][k]]
        assert not differ, f"{path}: {threads} threads differ from 1 thread in {differ}"


# ------------------------------------------------------------- concurrency

def training_run(seed, steps=3):
    """A small training run on its own model: the bytes of every result."""
    cfg = dict(n_dims=5, n_points=10, n_embd=32, n_layer=2, n_head=4, softmax=True, ffn=True,
               causal=True, reward_head=(seed % 2 == 1))
    m = _core.Model(**cfg, seed=seed)
    xs, ys, rs, *_ = batch(9, 10, 5, seed=seed)
    results = [digest(*(a for a in m.forward(xs, ys, rs) if a is not None))]
    for _ in range(steps):
        results.append(digest(m.step(xs, ys, rs, 1e-3), m.grads))
    results.append(digest(m.params))
    results.append(digest(*_core.sequence_loss(m.forward(xs, ys, rs)[0], ys, rs, "bt")))
    results.append(digest(_core.gd_baseline(xs, ys, rs, [2, 5, 10], 4, 0.1, seed)))
    return results


def run_threads(fn, args_list):
    """fn(*args) for every args in its own Python thread; results in order."""
    results, errors = [None] * len(args_list), []

    def work(i, args):
        try:
            results[i] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_concurrent_calls_on_different_models_equal_serial_calls(settings):
    ica.set_num_threads(2)
    seeds = [1, 2, 3, 4]
    serial = [training_run(s) for s in seeds]
    for _ in range(2):
        assert run_threads(training_run, [(s,) for s in seeds]) == serial


def test_changing_threads_and_simd_path_does_not_reach_a_running_call(settings):
    """A thread flips set_num_threads and set_simd_path as fast as it can while
    others train. Results do not depend on the thread count, so each run must
    equal the serial run of the path it started on... but a run spans many
    calls, each of which may start on another path. So each call is compared
    instead: every forward and every loss_and_grad result (loss and gradient
    together) must equal the serial result of one path, never a mixture of
    two (a path switched between the forward pass and its backward recompute
    gives neither)."""
    cfg = dict(n_dims=5, n_points=10, n_embd=32, n_layer=3, n_head=4, softmax=True, ffn=True,
               causal=True, reward_head=False)
    xs, ys, rs, *_ = batch(15, 10, 5, seed=9)

    def one_call(seed):
        m = _core.Model(**cfg, seed=seed)
        pred = m.forward(xs, ys, rs)[0]
        loss = m.loss_and_grad(xs, ys, rs)
        return digest(pred), digest(loss, m.grads)

    expected = {}
    for path in PATHS:
        ica.set_simd_path(path)
        ica.set_num_threads(1)
        for seed in (1, 2):
            fwd, grad = one_call(seed)
            expected.setdefault(seed, (set(), set()))
            expected[seed][0].add(fwd)
            expected[seed][1].add(grad)

    stop = threading.Event()

    def flipper():
        i = 0
        while not stop.is_set():
            ica.set_num_threads(1 + i % 3)
            ica.set_simd_path(PATHS[i % len(PATHS)])
            i += 1

    flip = threading.Thread(target=flipper)
    flip.start()
    try:
        for _ in range(3):
            got = run_threads(lambda s: one_call(s), [(1,), (2,), (1,)])
            for seed, (fwd, grad) in zip((1, 2, 1), got):
                assert fwd in expected[seed][0], "forward matches no SIMD path"
                assert grad in expected[seed][1], "loss and gradient mix SIMD paths"
    finally:
        stop.set()
        flip.join()
