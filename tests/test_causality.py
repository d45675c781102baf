"""Changing example n leaves every earlier prediction untouched, only under the mask."""
import numpy as np
import pytest

import icalign as ica
from conftest import model_with_reference_params, task_arrays

C = ica.ModelConfig


@pytest.mark.parametrize("softmax", [True, False])
@pytest.mark.parametrize("which", ["ys", "rs"])
def test_causal_predictions_ignore_later_examples(softmax, which):
    cfg = C(n_dims=3, n_points=8, n_embd=12, n_layer=2, n_head=3, softmax=softmax)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(3, 8, 3)
    base = model.predict(xs, ys, rs)
    for n in (0, 3, 6):
        ys2, rs2 = ys.copy(), rs.copy()
        if which == "ys":
            ys2[:, n] += 1.5
        else:
            rs2[:, n] = 1.0 - rs2[:, n]
        pred = model.predict(xs, ys2, rs2)
        # exact: under the mask the earlier rows never read the changed tokens
        assert np.array_equal(pred[:, :n + 1], base[:, :n + 1])
        assert np.abs(pred[:, n + 1:] - base[:, n + 1:]).max() > 1e-6


@pytest.mark.parametrize("which", ["ys", "rs"])
def test_non_causal_predictions_see_later_examples(which):
    cfg = C(n_dims=3, n_points=8, n_embd=12, n_layer=2, n_head=3, causal=False)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(3, 8, 3)
    base = model.predict(xs, ys, rs)
    ys2, rs2 = ys.copy(), rs.copy()
    if which == "ys":
        ys2[:, 5] += 1.5
    else:
        rs2[:, 5] = 1.0 - rs2[:, 5]
    pred = model.predict(xs, ys2, rs2)
    assert np.abs(pred[:, :5] - base[:, :5]).max() > 1e-6


def test_reward_head_reads_the_response_but_not_its_reward():
    cfg = C(n_dims=3, n_points=8, n_embd=12, n_layer=2, n_head=3, reward_head=True)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(3, 8, 3)
    base = model.predict_rewards(xs, ys, rs)
    rs2 = rs.copy()
    rs2[:, 4] = 1.0 - rs2[:, 4]
    assert np.array_equal(model.predict_rewards(xs, ys, rs2)[:, :5], base[:, :5])
    ys2 = ys.copy()
    ys2[:, 4] += 1.0
    assert np.abs(model.predict_rewards(xs, ys2, rs)[:, 4] - base[:, 4]).max() > 1e-6
