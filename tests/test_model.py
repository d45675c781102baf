"""The C model against the float64 reference (SPEC section 2 and 3)."""
import numpy as np
import pytest

import icalign as ica
import reference as ref
from conftest import as64, max_rel_error, model_with_reference_params, task_arrays

C = ica.ModelConfig
TINY = dict(n_dims=3, n_points=6, n_embd=12, n_layer=2)

CONFIGS = [
    pytest.param(C(**TINY, n_head=1), 4, id="1head"),
    pytest.param(C(**TINY, n_head=3), 4, id="3heads"),
    pytest.param(C(**TINY, n_head=4), 4, id="4heads"),
    pytest.param(C(**TINY, n_head=3, ffn=False), 4, id="no-ffn"),
    pytest.param(C(**TINY, n_head=3, softmax=False), 4, id="linear"),
    pytest.param(C(**TINY, n_head=3, causal=False), 4, id="non-causal"),
    pytest.param(C(**TINY, n_head=4, softmax=False, causal=False, ffn=False), 4,
                 id="linear-noncausal-noffn"),
    pytest.param(C(**TINY, n_head=2, reward_head=True), 4, id="reward-head"),
    pytest.param(C(n_dims=5, n_points=20, n_embd=96, n_layer=20, n_head=3), 8, id="paper-size"),
]


def compare(cfg, batch, n=None, objective="pl", reward="cosine", reward_weight=1.0, seed=0):
    n = n or cfg.n_points
    model, params = model_with_reference_params(cfg, seed=seed)
    xs, ys, rs = task_arrays(batch, n, cfg.n_dims, seed=seed + 1)
    pred = model.predict(xs, ys, rs)
    ref_pred, ref_rhat, _ = ref.forward(params, cfg, *as64(xs, ys, rs))
    assert pred.shape == (batch, n, cfg.n_dims) and pred.dtype == np.float32
    assert max_rel_error(pred, ref_pred) <= 1e-4
    if cfg.reward_head:
        assert max_rel_error(model.predict_rewards(xs, ys, rs), ref_rhat) <= 1e-4

    loss, grads = model.loss_and_grad(xs, ys, rs, objective=objective, reward=reward,
                                      reward_weight=reward_weight)
    ref_loss, ref_grads = ref.total_loss_and_grad(params, cfg, *as64(xs, ys, rs), objective,
                                                  reward, reward_weight)
    assert abs(loss - ref_loss) <= 1e-4 * max(1.0, abs(ref_loss))
    assert list(grads) == list(ref_grads)
    errors = {name: max_rel_error(grads[name], ref_grads[name]) for name in ref_grads
              if np.abs(ref_grads[name]).max() > 0}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-3, f"{worst}: relative gradient error {errors[worst]:.2e}"


@pytest.mark.parametrize("cfg,batch", CONFIGS)
def test_forward_and_gradients_match_reference(cfg, batch):
    compare(cfg, batch)


@pytest.mark.parametrize("objective", ["pl", "bt"])
@pytest.mark.parametrize("reward", ["cosine", "neg_sq"])
def test_every_objective_and_reward(objective, reward):
    compare(C(**TINY, n_head=3), 3, objective=objective, reward=reward)


def test_fewer_examples_than_n_points():
    compare(C(**TINY, n_head=3), 3, n=4)


def test_reward_weight_scales_only_the_reward_head_loss():
    compare(C(**TINY, n_head=2, reward_head=True), 3, reward_weight=0.25)


def test_wpe_rows_beyond_the_sequence_get_no_gradient():
    cfg = C(**TINY, n_head=3)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(2, 4, cfg.n_dims)
    _, grads = model.loss_and_grad(xs, ys, rs)
    assert np.all(grads["wpe"][12:] == 0) and np.abs(grads["wpe"][:12]).max() > 0


def test_gpt2_initialisation():
    cfg = C(n_dims=5, n_points=20, n_embd=96, n_layer=4, n_head=3)
    sd = ica.Transformer(cfg, seed=3).state_dict()
    assert list(sd) == list(ref.param_shapes(cfg))
    for name, shape in ref.param_shapes(cfg).items():
        assert sd[name].shape == shape and sd[name].dtype == np.float32
    assert sd["wpe"].std() == pytest.approx(0.02, rel=0.03)
    assert sd["h.0.attn.c_attn.weight"].std() == pytest.approx(0.02, rel=0.03)
    assert sd["h.1.mlp.c_fc.weight"].std() == pytest.approx(0.02, rel=0.03)
    proj_std = 0.02 / np.sqrt(2 * cfg.n_layer)
    assert sd["h.2.attn.c_proj.weight"].std() == pytest.approx(proj_std, rel=0.05)
    assert sd["h.3.mlp.c_proj.weight"].std() == pytest.approx(proj_std, rel=0.05)
    assert np.all(sd["h.0.ln_1.weight"] == 1) and np.all(sd["ln_f.bias"] == 0)
    assert np.all(sd["h.0.attn.c_attn.bias"] == 0) and np.all(sd["h.0.mlp.c_proj.bias"] == 0)
    for name, fan_in in (("read_in.weight", 5), ("read_in.bias", 5),
                         ("read_out.weight", 96), ("read_out.bias", 96)):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(sd[name]).max() <= bound
        if sd[name].size >= 96:  # enough draws to come near the bound of U(-b, b)
            assert np.abs(sd[name]).max() > 0.9 * bound
    assert sd["read_in.weight"].mean() == pytest.approx(0.0, abs=0.05)


def test_seeds_reproduce_and_differ():
    cfg = C(**TINY, n_head=3)
    a, b, c = (ica.Transformer(cfg, seed=s).state_dict() for s in (7, 7, 8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["wpe"], c["wpe"])


def test_state_dict_round_trip_and_copies():
    cfg = C(**TINY, n_head=3)
    src, dst = ica.Transformer(cfg, seed=1), ica.Transformer(cfg, seed=2)
    sd = src.state_dict()
    sd["wpe"][:] = 5.0  # a copy: the model must not change
    assert not np.any(src.state_dict()["wpe"] == 5.0)
    dst.load_state_dict(sd)
    assert all(np.array_equal(dst.state_dict()[k], sd[k]) for k in sd)
    xs, ys, rs = task_arrays(2, 6, 3)
    src.load_state_dict(sd)
    assert np.array_equal(src.predict(xs, ys, rs), dst.predict(xs, ys, rs))


def test_adam_step_matches_hand_written_update():
    cfg = C(**TINY, n_head=3)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(3, 6, 3)
    p0 = model.state_dict()
    m = {k: np.zeros_like(v, dtype=np.float64) for k, v in p0.items()}
    v = {k: np.zeros_like(v, dtype=np.float64) for k, v in p0.items()}
    p = {k: x.astype(np.float64) for k, x in p0.items()}
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    for t in (1, 2):
        loss_grads = model.loss_and_grad(xs, ys, rs)[1]
        loss = model.step(xs, ys, rs, lr=lr)
        assert np.isfinite(loss)
        for k in p:
            g = loss_grads[k].astype(np.float64)
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            p[k] = p[k] - lr * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
    after = model.state_dict()
    for k in p:
        # float32 arithmetic against float64: a few ulps of the step size
        np.testing.assert_allclose(after[k], p[k], rtol=1e-5, atol=2e-6, err_msg=k)
    assert model.optimizer_state()["adam_steps"] == 2


def test_step_equals_loss_and_grad_then_adam():
    cfg = C(**TINY, n_head=3)
    a, _ = model_with_reference_params(cfg)
    b, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(3, 6, 3)
    loss_a = a.step(xs, ys, rs, lr=1e-3)
    loss_b, _ = b.loss_and_grad(xs, ys, rs)
    b._core.adam_update(1e-3)
    assert loss_a == loss_b
    assert all(np.array_equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_training_fits_a_fixed_batch():
    """step() descends: a small model memorises a fixed batch."""
    cfg = C(n_dims=5, n_points=10, n_embd=32, n_layer=2, n_head=2)
    model = ica.Transformer(cfg, seed=0)
    batch = ica.AlignmentTask(n_dims=5, n_points=10).sample(8, seed=0)
    losses = [model.step(batch.xs, batch.ys, batch.rs, lr=3e-3) for _ in range(60)]
    final = model.loss_and_grad(batch.xs, batch.ys, batch.rs)[0]
    assert final < losses[0] - 0.3, (losses[0], final)


def test_predict_chunks_equal_one_call():
    cfg = C(**TINY, n_head=3)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(10, 6, 3)
    assert np.array_equal(model.predict(xs, ys, rs, batch_size=3), model.predict(xs, ys, rs))


def test_inputs_are_converted_once_from_float64_lists_and_views():
    cfg = C(**TINY, n_head=3)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(2, 6, 3)
    expected = model.predict(xs, ys, rs)
    np.testing.assert_array_equal(model.predict(xs.astype(np.float64), ys.tolist(), rs[..., None]),
                                  expected)
    # non-contiguous views are accepted (copied once)
    big = np.zeros((2, 6, 6), np.float32)
    big[..., ::2] = xs
    np.testing.assert_array_equal(model.predict(big[..., ::2], ys, rs), expected)
