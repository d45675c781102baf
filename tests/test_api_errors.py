"""Bad arguments to normalized_error and the loss functions raise an error that
names the function's own arguments, their shapes and what was expected."""
import re

import numpy as np
import pytest

import icalign as ica

LOSSES = [ica.pl_loss, ica.bt_loss, ica.sequence_loss]


def loss_inputs(B=2, N=3, d=5):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((B, N, d)).astype(np.float32),
            rng.standard_normal((B, N, d)).astype(np.float32),
            rng.random((B, N)).astype(np.float32))


@pytest.mark.parametrize("fn", LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("which,bad,message", [
    ("ys", (2, 4, 5),
     "ys must have shape (B=2, N=3, d=5) like pred, got (2, 4, 5) (axis 1 is 4, expected 3)"),
    ("ys", (2, 3, 4),
     "ys must have shape (B=2, N=3, d=5) like pred, got (2, 3, 4) (axis 2 is 4, expected 5)"),
    ("rs", (3, 3),
     "rs must have shape (B=2, N=3) or (B, N, 1) like pred, got (3, 3) (axis 0 is 3, "
     "expected 2)"),
    ("rs", (2, 3, 2),
     "rs must have shape (B=2, N=3) or (B, N, 1) like pred, got (2, 3, 2) (axis 2 is 2, "
     "expected 1)"),
    ("pred", (3, 5), "pred must have shape (B, N, d), got shape (3, 5) (2 dimensions)"),
])
def test_loss_shape_errors_name_the_loss_arguments(fn, which, bad, message):
    """The losses have no xs: a mis-shaped ys or rs is measured against pred."""
    args = dict(zip(("pred", "ys", "rs"), loss_inputs()))
    args[which] = np.zeros(bad, dtype=np.float32)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        fn(args["pred"], args["ys"], args["rs"])


@pytest.mark.parametrize("fn", LOSSES, ids=lambda f: f.__name__)
def test_loss_still_accepts_lists_and_a_trailing_reward_axis(fn):
    pred, ys, rs = loss_inputs()
    loss, dpred = fn(pred.tolist(), ys.tolist(), rs[..., None])
    assert np.isfinite(loss) and dpred.shape == pred.shape
    assert loss == fn(pred, ys, rs)[0]


@pytest.mark.parametrize("fn", LOSSES, ids=lambda f: f.__name__)
def test_loss_type_errors_are_unchanged(fn):
    """Type and rank problems are still reported for the argument at fault."""
    pred, ys, rs = loss_inputs()
    with pytest.raises(TypeError, match="^rs has dtype object"):
        fn(pred, ys[:, :2], object())
    with pytest.raises(TypeError, match="^ys must be an array of real numbers"):
        fn(pred, [[1.0], [1.0, 2.0]], rs)


@pytest.mark.parametrize("value,shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("which,where,index", [("pred", (1, 2, 0), 20), ("ystar", (1, 0), 4)])
def test_normalized_error_refuses_non_finite_input(which, where, index, value, shown):
    """A NaN once came back as a NaN error; it is refused as the model refuses it,
    naming the first non-finite value in C order."""
    args = {"pred": np.ones((2, 3, 4)), "ystar": np.ones((2, 4))}
    args[which].flat[-1] = np.nan                # a later one is not the one reported
    args[which][where] = value
    with pytest.raises(ValueError, match="^" + re.escape(
            f"{which} holds a non-finite value ({shown}) at flat index {index}") + "$"):
        ica.normalized_error(args["pred"], args["ystar"])


def test_normalized_error_nan_in_a_list():
    with pytest.raises(ValueError, match=r"^pred holds a non-finite value \(nan\) at flat "
                                         r"index 0$"):
        ica.normalized_error([[np.nan, 1.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]])


@pytest.mark.parametrize("pred,ystar,message", [
    ((4, 5), (3, 5), "ystar must have shape (B=4, d=5) to match pred of shape (4, 5), got (3, 5)"),
    ((4, 6, 5), (3, 5), "ystar must have shape (B=4, d=5) or (4, 6, 5) to match pred of "
                        "shape (4, 6, 5), got (3, 5)"),
    ((4, 6, 5), (4, 3, 5), "ystar must have shape (B=4, d=5) or (4, 6, 5) to match pred of "
                           "shape (4, 6, 5), got (4, 3, 5)"),
])
def test_normalized_error_shape_mismatch_names_both_arguments(pred, ystar, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        ica.normalized_error(np.ones(pred), np.ones(ystar))


@pytest.mark.parametrize("pred,ystar,out", [
    ((4, 5), (4, 5), (4,)),
    ((4, 6, 5), (4, 5), (4, 6)),
    ((4, 6, 5), (4, 6, 5), (4, 6)),
    ((4, 6, 7, 5), (4, 5), (4, 6, 7)),
    ((4, 5), (5,), (4,)),           # one answer for every prediction
    ((5,), (5,), ()),
    ((4, 6, 5), (4, 1, 5), (4, 6)),  # numpy broadcasting along the middle axes
])
def test_normalized_error_accepted_shapes(pred, ystar, out):
    rng = np.random.default_rng(1)
    p, y = rng.standard_normal(pred), rng.standard_normal(ystar)
    err = ica.normalized_error(p, y)
    assert err.shape == out and err.dtype == np.float64
    assert ((err >= 0) & (err <= 2)).all()
