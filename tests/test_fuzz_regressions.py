"""Fixed cases the fuzzing (tests/fuzz_api.py) found in the Python layer, kept as plain
tests so they run whatever the fuzz profile draws. (The C core's are in
tests/test_core_safety.py and tests/test_faults.py.)"""
import dataclasses

import numpy as np
import pytest

import icalign as ica

CFG = ica.ModelConfig(n_dims=3, n_points=6, n_embd=8, n_layer=1, n_head=2)


def _batch():
    return ica.AlignmentTask(3, 6).sample(2, seed=1)


@pytest.mark.parametrize("field", ["n_dims", "n_points", "n_embd", "n_layer", "n_head"])
def test_config_sizes_beyond_int32_are_value_errors(field):
    # was OverflowError from the C argument parser
    with pytest.raises(ValueError, match=f"ModelConfig.{field} must be <= 2\\*\\*31 - 1"):
        ica.ModelConfig(**{field: 2**31})


@pytest.mark.parametrize("field", ["n_dims", "n_points"])
def test_task_sizes_beyond_int32_are_value_errors(field):
    with pytest.raises(ValueError, match=field):
        ica.AlignmentTask(**{field: 2**31})


def test_float64_parameter_beyond_float32_is_refused():
    # 1e39 is finite in float64 and was loaded as inf
    model = ica.Transformer(CFG)
    sd = model.state_dict()
    sd["wpe"] = sd["wpe"].astype(np.float64)
    sd["wpe"][0, 0] = 1e39
    before = model._core.params.copy()
    with pytest.raises(ValueError, match="wpe: holds non-finite values \\(beyond the float32"):
        model.load_state_dict(sd)
    assert np.array_equal(model._core.params, before)


@pytest.mark.parametrize("bad", [None, [], 3, "sd"])
def test_load_state_dict_needs_a_mapping(bad):
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        ica.Transformer(CFG).load_state_dict(bad)


@pytest.mark.parametrize("call, pattern", [
    (lambda m, b: m.step(b.xs, b.ys, b.rs, lr=1e-3, objective=None), "objective must be a str"),
    (lambda m, b: m.loss_and_grad(b.xs, b.ys, b.rs, reward_weight=None),
     "reward_weight must be a real number"),
    (lambda m, b: m.step(b.xs, b.ys, b.rs, lr="fast"), "lr must be a real number"),
    (lambda m, b: m.step(b.xs, b.ys, b.rs, lr=-3.4e-301), "lr must be a finite number >= 0"),
    (lambda m, b: m.predict(b.xs, b.ys, b.rs, batch_size=2.0), "batch_size must be an int"),
    (lambda m, b: ica.pl_loss(b.ys, b.ys, b.rs, reward=b"cosine"), "reward must be a str"),
    (lambda m, b: ica.gd_baseline(b, [2, 3], seed=-1), "seed must be an int"),
    (lambda m, b: ica.gd_baseline(b, "23"), "t_values must be an iterable of ints"),
    (lambda m, b: ica.gd_baseline(b, [2], lr=6.6e-156), "lr must be a number > 0 that float32"),
    (lambda m, b: ica.gd_baseline(b, [2.5]), r"t_values\[0\] must be an int"),
    (lambda m, b: ica.simple_baseline("mean", b, [2], temperature=None),
     "temperature must be a real number"),
    (lambda m, b: ica.AlignmentTask(3, 6).sample(2, reward_noise=None),
     "reward_noise must be a real number"),
    (lambda m, b: ica.oracle_rewards(b.ys.astype(np.complex64), b.ystar, b.eps),
     "responses has dtype complex64"),
    (lambda m, b: ica.make_critic("replace:x"), "'x' is not a number"),
    (lambda m, b: ica.self_check_accuracy(ica.Transformer(CFG.replace(reward_head=True)), b,
                                          n_context=2), "n_context must be an int >= 3"),
])
def test_arguments_are_named(call, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        call(ica.Transformer(CFG), _batch())


def test_critic_rewards_do_not_depend_on_the_memory_layout():
    # numpy's reductions over a Fortran-ordered view rounded differently
    rng = np.random.default_rng(4)
    y = rng.standard_normal((1, 4, 3))
    ystar, eps = rng.standard_normal((1, 3)), rng.standard_normal((1, 3))
    for fn in (ica.oracle_rewards, ica.quality_rewards):
        want = fn(y, ystar, eps)
        for view in (np.asfortranarray(y), np.ascontiguousarray(y[:, ::-1])[:, ::-1]):
            assert np.array_equal(fn(view, ystar, eps), want)


def test_chunked_predict_matches_one_call_and_checks_shapes_first():
    # predict in chunks wrote its output only at the end (a huge batch ran for hours before
    # its MemoryError) and sliced ys and rs like xs (a longer ys went unnoticed at first)
    cfg = CFG.replace(reward_head=True)
    model = ica.Transformer(cfg)
    b = ica.AlignmentTask(3, 6).sample(7, seed=2)
    whole = model.predict(b.xs, b.ys, b.rs)
    assert np.array_equal(model.predict(b.xs, b.ys, b.rs, batch_size=3), whole)
    assert np.array_equal(model.predict_rewards(b.xs, b.ys, b.rs, batch_size=2),
                          model.predict_rewards(b.xs, b.ys, b.rs))
    longer = np.concatenate([b.ys, b.ys[:1]])
    with pytest.raises(ValueError, match="ys must have shape"):
        model.predict(b.xs, longer, b.rs, batch_size=3)


def test_one_response_per_task_may_come_with_list_arguments():
    # the long fuzz profile expected a refusal here: 2-D responses (B, d) are one response
    # per task, and a list eps is the same layout; the harness now judges lists as arrays
    responses = np.array([[0.25]], np.float64)
    ystar, eps = np.array([[1.0]]), np.array([[-0.5]])
    want = ica.oracle_rewards(responses, ystar, eps)
    assert want.shape == (1,)
    np.testing.assert_array_equal(ica.oracle_rewards(responses, ystar, eps.tolist()), want)
    np.testing.assert_array_equal(ica.oracle_rewards(responses.tolist(), ystar.tolist(),
                                                     eps.tolist()), want)
    # ... and with a float64 ystar beyond float32 (the critics compute in float64)
    far = ica.oracle_rewards(responses, np.array([[1e39]]), eps)
    assert far.shape == (1,) and np.all(np.isfinite(far))


def test_step_whose_adam_moment_would_overflow_is_refused_and_leaves_the_model():
    # the long fuzz profile expected reward_weight 4.5e20 to step: the gradient's square
    # overflows Adam's float32 second moment, which would freeze those parameters for
    # good; the step refuses instead, as documented, and changes nothing
    cfg = ica.ModelConfig(n_dims=3, n_points=6, n_embd=8, n_layer=1, n_head=2,
                          reward_head=True)
    model = ica.Transformer(cfg, seed=0)
    b = ica.AlignmentTask(3, 6).sample(1, seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match="Adam update .* non-finite"):
        model.step(b.xs, b.ys, b.rs, lr=1e-3, reward_weight=1e25)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    model.step(b.xs, b.ys, b.rs, lr=1e-3, reward_weight=1e15)  # well inside float32: steps


@pytest.mark.parametrize("fit", ["gd", "optimum"])
def test_a_diverging_fit_is_an_error_not_a_silent_nan(fit):
    # the long fuzz profile (seeds 285337193, 3873455132): gd_baseline with lr 2e38
    # returned NaN; both Adam fits now say where they diverged
    b = ica.AlignmentTask(4, 5).sample(2, seed=0)
    call = ((lambda lr: ica.gd_baseline(b, [2, 4], lr=lr, steps=2)) if fit == "gd" else
            (lambda lr: ica.surrogate_optimum(b, [2, 4], lr=lr, max_steps=50).pred))
    with pytest.raises(FloatingPointError, match=r"diverged: its answer for task \d+ "
                                                 r"at t = [24] is not finite"):
        call(3e38)
    assert np.all(np.isfinite(call(1e10)))  # large, but finite: returned as it is


def test_a_baseline_that_overflows_is_an_error_not_a_silent_inf():
    # found while moving the check above into the shared baseline runner: the oracle's
    # least squares returned inf for finite responses near the float32 limit
    b = ica.AlignmentTask(2, 4).sample(1, seed=0)
    ys = np.full_like(b.ys, 3e38)
    ys[:, 1::2] *= -1
    huge = dataclasses.replace(b, ys=ys)
    with pytest.raises(FloatingPointError, match=r"overflowed: its answer for task 0 at "
                                                 r"t = 2 is not finite"):
        ica.oracle_baseline(huge, [2, 4])
    assert np.all(np.isfinite(ica.mean_baseline(huge, [2, 4])))  # finite: returned
