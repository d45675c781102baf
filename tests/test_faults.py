"""Faults around training and results: damaged checkpoints, a full disk, a
read-only folder, a diverging run.

* A truncated, corrupted or foreign ``.npz`` given as a checkpoint raises a
  ValueError naming the file and the problem, and the model is left exactly as
  it was (never a partial load).
* A checkpoint or result write that fails (no space left, permission denied)
  raises an OSError naming the file; the earlier file stays intact and no
  temporary file is left. ``icalign reproduce`` reports it in one line (no
  traceback) and exits non-zero, earlier results untouched.
* A diverging run (too large a learning rate) raises FloatingPointError with
  the step and the loss; the checkpoint on disk is the last finite state and
  the model is put back to it.
"""
import errno
import json
import os
import tempfile

import numpy as np
import pytest

import icalign as ica
from icalign import cli

CFG = ica.ModelConfig(n_dims=3, n_points=6, n_embd=8, n_layer=1, n_head=2)
TASK = ica.AlignmentTask(3, 6)
ARGS = dict(steps=4, batch_size=4, lr=1e-3, seed=0, progress=False)


def _model():
    return ica.Transformer(CFG, seed=0)


def _state(model):
    c = model._core
    return c.params.copy(), c.adam_m.copy(), c.adam_v.copy(), c.adam_steps


def _same_state(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "good.npz"
    ica.train(_model(), TASK, checkpoint=str(path), **{**ARGS, "steps": 2})
    return path


def _rewrite(src, dst, change):
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(dst, **arrays)


def _edit_meta(**changes):
    def change(arrays):
        meta = json.loads(str(arrays["meta"]))
        for k, v in changes.items():
            if v is None:
                meta.pop(k, None)
            else:
                meta[k] = v
        arrays["meta"] = np.array(json.dumps(meta))
    return change


def _first_param(arrays):
    return next(k for k in arrays if k.startswith("param/"))


DAMAGE = {
    # name: (how to make the file from the good bytes / arrays, words the message must hold)
    "truncated": (lambda b, p, d: open(d, "wb").write(b[:len(b) // 2]), ["truncated", "zip"]),
    "corrupted": (lambda b, p, d: open(d, "wb").write(
        b[:len(b) // 2] + bytes(x ^ 0xFF for x in b[len(b) // 2:len(b) // 2 + 8])
        + b[len(b) // 2 + 8:]), ["corrupt", "CRC", "zip"]),
    "empty": (lambda b, p, d: open(d, "wb").close(), ["empty", "zip"]),
    "text": (lambda b, p, d: open(d, "w").write("not a checkpoint\n"), ["zip", ".npz"]),
    "foreign": (lambda b, p, d: np.savez(d, x=np.zeros(3)), ["not an icalign checkpoint"]),
    "meta_not_json": (lambda b, p, d: _rewrite(p, d, lambda a: a.__setitem__(
        "meta", np.array("{oops"))), ["meta"]),
    "meta_missing_step": (lambda b, p, d: _rewrite(p, d, _edit_meta(step=None)), ["step"]),
    "missing_adam_m": (lambda b, p, d: _rewrite(p, d, lambda a: a.pop("adam_m")), ["adam_m"]),
    "short_adam_v": (lambda b, p, d: _rewrite(p, d, lambda a: a.__setitem__(
        "adam_v", a["adam_v"][:5])), ["adam_v"]),
    "nan_adam_m": (lambda b, p, d: _rewrite(p, d, lambda a: a.__setitem__(
        "adam_m", np.full_like(a["adam_m"], np.nan))), ["adam_m", "non-finite"]),
    "bad_param_shape": (lambda b, p, d: _rewrite(p, d, lambda a: a.__setitem__(
        _first_param(a), a[_first_param(a)][..., :1])), ["shape"]),
    "nan_param": (lambda b, p, d: _rewrite(p, d, lambda a: a.__setitem__(
        _first_param(a), np.full_like(a[_first_param(a)], np.inf))), ["non-finite"]),
    "losses_vs_step": (lambda b, p, d: _rewrite(p, d, lambda a: a.__setitem__(
        "losses", a["losses"][:1])), ["losses", "step"]),
    "negative_adam_steps": (lambda b, p, d: _rewrite(p, d, lambda a: a.__setitem__(
        "adam_steps", np.int64(-3))), ["adam_steps"]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_checkpoint_is_refused_whole(tmp_path, good_checkpoint, damage):
    make, words = DAMAGE[damage]
    path = tmp_path / f"{damage}.npz"
    make(good_checkpoint.read_bytes(), str(good_checkpoint), str(path))
    model = _model()
    before = _state(model)
    with pytest.raises(ValueError) as info:
        ica.train(model, TASK, checkpoint=str(path), **ARGS)
    msg = str(info.value)
    assert str(path) in msg, msg
    assert any(w.lower() in msg.lower() for w in words), msg
    assert _same_state(before, _state(model)), "a refused checkpoint changed the model"
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.")):
        ica.load_checkpoint(str(path))
    assert sorted(os.listdir(tmp_path)) == [f"{damage}.npz"], "files left behind"


# ------------------------------------------------------------------ failing writes
def _fail_fsync(monkeypatch, code, after=0):
    """Every fsync of a file being written after the first ``after`` fails with
    ``code`` (ENOSPC surfaces there on a full disk); directory fsyncs pass."""
    import stat
    real = os.fsync
    count = {"n": 0}

    def fsync(fd):
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            count["n"] += 1
            if count["n"] > after:
                raise OSError(code, os.strerror(code))
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)


def _deny_create(monkeypatch, after=0):
    """A folder that turns read-only after ``after`` files (simulated: tests may run
    as root, who may write anyway)."""
    real = tempfile.mkstemp
    count = {"n": 0}

    def mkstemp(*a, **kw):
        count["n"] += 1
        if count["n"] > after:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real(*a, **kw)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("fault", ["full_disk", "read_only"])
def test_checkpoint_write_failure_keeps_the_old_checkpoint(tmp_path, monkeypatch, fault):
    path = tmp_path / "ck.npz"
    # a checkpoint after every step; the third write fails
    (_fail_fsync if fault == "full_disk" else _deny_create)(
        monkeypatch, *((errno.ENOSPC,) if fault == "full_disk" else ()), after=2)
    with pytest.raises(OSError) as info:
        ica.train(_model(), TASK, checkpoint=str(path), checkpoint_every=1e-9, **ARGS)
    msg = str(info.value)
    assert str(path) in msg and ("space" in msg or "ermission" in msg), msg
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ck.npz"], "a temporary file was left behind"
    assert ica.load_checkpoint(str(path))["step"] == 2     # the last good write, whole
    h = ica.train(_model(), TASK, checkpoint=str(path), **ARGS)   # and it resumes
    assert h.resumed_from == 2 and h.completed


def _results(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))
            if f.endswith(".json") or f.endswith(".md")}


@pytest.mark.parametrize("fault", ["full_disk", "read_only"])
def test_reproduce_reports_a_failing_write_and_keeps_earlier_results(tmp_path, monkeypatch,
                                                                     capsys, fault):
    out = str(tmp_path / "out")
    # --jobs 1: the model checkpoints are written by this process, whose writes fail
    args = ["reproduce", "--profile", "smoke", "--only", "tf_vs_gd", "--out", out,
            "--no-progress", "--jobs", "1"]
    assert cli.main(args) == 0
    folder = os.path.join(out, "smoke")
    before = _results(folder)
    capsys.readouterr()
    if fault == "full_disk":
        _fail_fsync(monkeypatch, errno.ENOSPC)
    else:
        _deny_create(monkeypatch)
    # another experiment into the same folder: its model, JSON and the report fail
    code = cli.main(["reproduce", "--profile", "smoke", "--only", "depth", "--out", out,
                     "--resume", "--no-progress", "--jobs", "1"])
    err = capsys.readouterr().err
    monkeypatch.undo()
    assert code != 0, err
    assert "icalign: error:" in err and "Traceback" not in err
    assert ("No space left" in err) or ("ermission denied" in err), err
    assert out in err, err
    assert _results(folder) == before
    leftovers = [f for f in os.listdir(folder) if f.endswith(".tmp")]
    assert not leftovers


# ------------------------------------------------------------------ divergence
def test_divergence_is_reported_and_the_last_finite_checkpoint_kept(tmp_path):
    path = tmp_path / "ck.npz"
    model = _model()
    with pytest.raises(FloatingPointError) as info:
        ica.train(model, TASK, steps=50, batch_size=4, lr=1e6, seed=0, progress=False,
                  checkpoint=str(path), checkpoint_every=1e-9)
    exc = info.value
    msg = str(exc)
    assert "diverged at step" in msg and "loss" in msg, msg
    assert isinstance(exc.step, int) and 0 <= exc.step < 50
    assert f"step {exc.step}" in msg
    ck = ica.load_checkpoint(str(path))
    assert ck["step"] <= exc.step
    assert all(np.isfinite(v).all() for v in ck["state_dict"].values())
    assert np.isfinite(ck["losses"]).all() and len(ck["losses"]) == ck["step"]
    # the model is back at that state, ready to continue with a smaller lr
    for name, value in model.state_dict().items():
        assert np.array_equal(value, ck["state_dict"][name]), name
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_divergence_without_checkpoint_is_reported(tmp_path):
    model = _model()
    with pytest.raises(FloatingPointError, match=r"diverged at step \d+.*loss"):
        ica.train(model, TASK, steps=50, batch_size=4, lr=1e30, seed=0, progress=False)


def test_divergence_at_the_first_step_keeps_a_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    with pytest.raises(FloatingPointError) as info:
        ica.train(_model(), TASK, steps=5, batch_size=4, lr=1e30, seed=0, progress=False,
                  checkpoint=str(path))
    ck = ica.load_checkpoint(str(path))     # the state before the diverging step
    assert ck["step"] <= info.value.step
    assert all(np.isfinite(v).all() for v in ck["state_dict"].values())


# ------------------------------------------------------------------ numeric faults
def test_reward_at_the_float32_limit_is_an_error_not_a_nan_gradient():
    """A reward at the float32 limit on the last example, which no scored prediction
    reads: its token's read-in gradient overflowed while the loss stayed finite, and
    loss_and_grad handed out a NaN gradient. Now the core refuses it (the loss, or
    failing that the gradient, is checked); step refuses the update."""
    rng = np.random.default_rng(9632)
    xs = rng.standard_normal((1, 3, 3)).astype(np.float32)
    ys = rng.standard_normal((1, 3, 3)).astype(np.float32)
    rs = rng.random((1, 3)).astype(np.float32)
    rs[0, 2] = np.finfo(np.float32).max
    model = _model()
    before = _state(model)
    with pytest.raises(FloatingPointError, match="(loss|gradient) is not finite"):
        model.loss_and_grad(xs, ys, rs)
    with pytest.raises(FloatingPointError):
        model.step(xs, ys, rs, lr=1e-3)
    assert _same_state(before, _state(model))
