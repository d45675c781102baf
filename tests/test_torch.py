"""The C core against an independent PyTorch model (skipped without torch)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import icalign as ica  # noqa: E402
import torch_model  # noqa: E402
from conftest import max_rel_error, model_with_reference_params, task_arrays  # noqa: E402

C = ica.ModelConfig
TINY = dict(n_dims=3, n_points=6, n_embd=12, n_layer=2)


@pytest.mark.parametrize("cfg,batch,objective,reward", [
    (C(**TINY, n_head=1), 4, "pl", "cosine"),
    (C(**TINY, n_head=3, softmax=False), 4, "bt", "cosine"),
    (C(**TINY, n_head=4, causal=False, ffn=False), 4, "pl", "neg_sq"),
    (C(**TINY, n_head=3, softmax=False, causal=False), 4, "bt", "neg_sq"),
    (C(**TINY, n_head=2, reward_head=True), 4, "pl", "cosine"),
    (C(n_dims=5, n_points=20, n_embd=96, n_layer=20, n_head=3), 8, "pl", "cosine"),
], ids=["1head", "linear-bt", "noncausal-noffn-negsq", "linear-noncausal", "reward-head",
        "paper-size"])
def test_c_core_matches_pytorch(cfg, batch, objective, reward):
    model, params = model_with_reference_params(cfg, seed=5)
    xs, ys, rs = task_arrays(batch, cfg.n_points, cfg.n_dims, seed=6)
    pred_t, loss_t, grads_t = torch_model.numpy_forward_and_grads(
        {k: v.astype(np.float64) for k, v in params.items()}, cfg.to_dict(), xs, ys, rs,
        objective, reward, dtype=torch.float64)
    assert max_rel_error(model.predict(xs, ys, rs), pred_t) <= 1e-4
    loss, grads = model.loss_and_grad(xs, ys, rs, objective=objective, reward=reward)
    assert loss == pytest.approx(loss_t, rel=1e-4)
    assert set(grads) == set(grads_t)
    for name in grads:
        if np.abs(grads_t[name]).max() > 0:
            assert max_rel_error(grads[name], grads_t[name]) <= 1e-3, name


def test_adam_matches_torch_optimizer():
    cfg = C(**TINY, n_head=3)
    model, params = model_with_reference_params(cfg, seed=1)
    xs, ys, rs = task_arrays(4, cfg.n_points, cfg.n_dims, seed=2)
    tm = torch_model.TorchModel(**{k: v for k, v in cfg.to_dict().items()}, dtype=torch.float64)
    tm.load_numpy_state_dict({k: v.astype(np.float64) for k, v in params.items()})
    opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
    args = [torch.as_tensor(a, dtype=torch.float64) for a in (xs, ys, rs)]
    for _ in range(3):
        torch_model.train_step(tm, opt, *args)
        model.step(xs, ys, rs, lr=1e-3)
    sd, sd_t = model.state_dict(), tm.numpy_state_dict()
    E = cfg.n_embd
    for name in sd:
        a, b = sd[name], sd_t[name]
        if name.endswith("attn.c_attn.bias"):
            # The key bias shifts every score of a query equally, so under softmax its
            # exact gradient is 0 and both sides hold rounding noise that Adam
            # normalises into +-lr steps of random sign: compare q and v parts only.
            a, b = np.delete(a, np.s_[E:2 * E]), np.delete(b, np.s_[E:2 * E])
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
