"""train(): bit-identical resume, argument checks, atomic checkpoints."""
import os
import signal

import numpy as np
import pytest

import icalign as ica
from icalign import training as train_mod

CFG = ica.ModelConfig(n_dims=5, n_points=20, n_embd=8, n_layer=2, n_head=2)
KW = dict(steps=6, batch_size=4, lr=3e-3, seed=5, progress=False)


class InterruptingTask(ica.AlignmentTask):
    """Sends a real SIGINT (Ctrl-C) while the batch of step ``at`` is drawn."""

    def __init__(self, at, batch_size):
        super().__init__(CFG.n_dims, CFG.n_points)
        self.at_offset = at * batch_size

    def sample(self, batch_size, seed=0, reward_noise=0.0, offset=0):
        if offset == self.at_offset:
            signal.raise_signal(signal.SIGINT)
        return super().sample(batch_size, seed=seed, reward_noise=reward_noise, offset=offset)


def _state(model):
    return model.state_dict(), model.optimizer_state()


def _assert_same(a, b):
    (sa, oa), (sb, ob) = a, b
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    np.testing.assert_array_equal(oa["adam_m"], ob["adam_m"])
    np.testing.assert_array_equal(oa["adam_v"], ob["adam_v"])
    assert int(oa["adam_steps"]) == int(ob["adam_steps"])


@pytest.mark.parametrize("schedule", [None, "cosine"])
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, schedule):
    task = ica.AlignmentTask(CFG.n_dims, CFG.n_points)
    ref = ica.Transformer(CFG, seed=1)
    h_ref = ica.train(ref, task, lr_schedule=schedule, **KW)
    assert h_ref.completed and len(h_ref) == 6

    path = tmp_path / "run.npz"
    m1 = ica.Transformer(CFG, seed=1)
    with pytest.raises(KeyboardInterrupt):
        ica.train(m1, InterruptingTask(at=3, batch_size=4), checkpoint=path,
                  lr_schedule=schedule, **KW)
    ck = ica.load_checkpoint(path)
    # the Ctrl-C arrived while step 3's batch was drawn: that step still ran
    assert ck["step"] == 4
    assert ck["config"] == CFG and ck["version"] == ica.__version__
    assert ck["arguments"]["lr_schedule"] == schedule

    m2 = ica.Transformer(CFG, seed=1)  # a fresh process would start from scratch
    h2 = ica.train(m2, task, checkpoint=path, lr_schedule=schedule, **KW)
    assert h2.resumed_from == 4
    np.testing.assert_array_equal(np.asarray(h2), np.asarray(h_ref))
    _assert_same(_state(m2), _state(ref))
    np.testing.assert_array_equal(np.asarray(ica.load_checkpoint(path)["losses"]),
                                  np.asarray(h_ref))


def test_finished_checkpoint_returns_at_once(tmp_path, monkeypatch):
    task = ica.AlignmentTask(CFG.n_dims, CFG.n_points)
    path = tmp_path / "done.npz"
    m1 = ica.Transformer(CFG, seed=0)
    h1 = ica.train(m1, task, checkpoint=path, **KW)
    m2 = ica.Transformer(CFG, seed=0)

    def no_step(*a, **k):
        raise AssertionError("a finished checkpoint must not train")
    monkeypatch.setattr(m2, "step", no_step)
    h2 = ica.train(m2, task, checkpoint=path, **KW)
    np.testing.assert_array_equal(np.asarray(h2), np.asarray(h1))
    _assert_same(_state(m2), _state(m1))


def test_checkpoint_with_other_arguments_is_refused(tmp_path):
    task = ica.AlignmentTask(CFG.n_dims, CFG.n_points)
    path = tmp_path / "c.npz"
    ica.train(ica.Transformer(CFG, seed=0), task, checkpoint=path, **KW)
    with pytest.raises(ValueError, match=r"lr: checkpoint 0.003 vs call 0.001"):
        ica.train(ica.Transformer(CFG, seed=0), task, checkpoint=path, **{**KW, "lr": 1e-3})
    with pytest.raises(ValueError, match="reward_noise"):
        ica.train(ica.Transformer(CFG, seed=0), task, checkpoint=path, reward_noise=0.5, **KW)
    with pytest.raises(ValueError, match="was made for config"):
        ica.train(ica.Transformer(CFG.replace(ffn=False), seed=0), task, checkpoint=path, **KW)


def test_interrupted_write_leaves_old_checkpoint(tmp_path, monkeypatch):
    task = ica.AlignmentTask(CFG.n_dims, CFG.n_points)
    path = tmp_path / "w.npz"
    real_savez = np.savez
    calls = []

    def savez_crashing_after_first(f, **arrays):
        calls.append(1)
        real_savez(f, **arrays)
        if len(calls) > 1:
            f.truncate(f.tell() // 2)  # half of the new file is on disk ...
            raise KeyboardInterrupt  # ... when the process is interrupted
    monkeypatch.setattr(train_mod.np, "savez", savez_crashing_after_first)
    with pytest.raises(KeyboardInterrupt):  # saves after every step: step 1 ok, step 2 cut
        ica.train(ica.Transformer(CFG, seed=0), task, checkpoint=path, checkpoint_every=1e-9,
                  **KW)
    monkeypatch.undo()
    assert len(calls) >= 2
    assert os.listdir(tmp_path) == ["w.npz"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not the temp file's 0600
    ck = ica.load_checkpoint(path)  # the step-1 checkpoint, whole
    assert ck["step"] == 1 and len(ck["losses"]) == 1
    # and it still resumes to the uninterrupted result
    ref = ica.Transformer(CFG, seed=0)
    ica.train(ref, task, **KW)
    m = ica.Transformer(CFG, seed=0)
    ica.train(m, task, checkpoint=path, **KW)
    _assert_same(_state(m), _state(ref))


def test_history_is_array_like_and_validates():
    task = ica.AlignmentTask(CFG.n_dims, CFG.n_points)
    h = ica.train(ica.Transformer(CFG, seed=0), task, **{**KW, "steps": 3})
    assert len(h) == 3 and h.steps_done == 3 and len(list(h)) == 3
    assert np.asarray(h).shape == (3,) and np.isfinite(np.asarray(h)).all()
    assert h.smoothed(2).shape == (3,) and h[-1] == np.asarray(h)[-1]
    for bad, match in (({"steps": -1}, "steps"), ({"lr": 0.0}, "lr"),
                       ({"objective": "xx"}, "objective"), ({"lr_schedule": "step"}, "lr_schedule"),
                       ({"reward_noise": 2.0}, "reward_noise")):
        with pytest.raises(ValueError, match=match):
            ica.train(ica.Transformer(CFG, seed=0), task, **{**KW, **bad})
    with pytest.raises(ValueError, match="does not match the model config"):
        ica.train(ica.Transformer(CFG, seed=0), ica.AlignmentTask(5, 10), **KW)


def test_cosine_schedule():
    lrs = [train_mod.learning_rate(s, 100, 1.0, "cosine") for s in range(100)]
    assert lrs[0] == pytest.approx(0.2) and lrs[4] == pytest.approx(1.0)
    assert all(b <= a for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] < 0.01
    assert train_mod.learning_rate(50, 100, 0.3, None) == 0.3


def test_text_progress_without_tqdm(monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm here")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    task = ica.AlignmentTask(CFG.n_dims, CFG.n_points)
    ica.train(ica.Transformer(CFG, seed=0), task, **{**KW, "steps": 2, "progress": "tiny"})
    err = capsys.readouterr().err
    assert "tiny: step 2/2 loss" in err and "steps/s" in err


def test_resumed_call_says_where_it_starts(tmp_path, capsys):
    task = ica.AlignmentTask(CFG.n_dims, CFG.n_points)
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        ica.train(ica.Transformer(CFG, seed=1), InterruptingTask(at=3, batch_size=4),
                  checkpoint=path, **KW)
    capsys.readouterr()
    ica.train(ica.Transformer(CFG, seed=1), task, checkpoint=path, **{**KW, "progress": True})
    assert f"checkpoint {str(path)!r} is at step 4 of 6: training resumes there" in \
        capsys.readouterr().err
    ica.train(ica.Transformer(CFG, seed=1), task, checkpoint=path, **{**KW, "progress": True})
    assert "is at step 6 of 6: already finished, nothing to train" in \
        capsys.readouterr().err
    ica.train(ica.Transformer(CFG, seed=1), task, checkpoint=path, **KW)   # progress off
    assert capsys.readouterr().err == ""
