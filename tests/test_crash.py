"""Crash consistency: SIGKILL at any point loses at most the work since the last
checkpoint, and resuming ends bit-identical to an uninterrupted run.

The kills happen in child processes (tests/killhook.py) at chosen points: before
a step, half-way through a checkpoint's bytes, after the data are fsync'ed but
before the rename, and right after the rename; plus kills at random times from
outside. A checkpoint is written after every step, so most random kills land
in or around a write.

The normal suite kills ``train`` at 4 points and ``icalign reproduce`` at 3.
``ICALIGN_KILL_SWEEP=1`` runs the full sweep: 10 kills at random points
(random events and counts, and timers that strike wherever the process is)
of a 120-step training run, and 10 of ``icalign reproduce --resume``;
``ICALIGN_KILL_SEED`` repeats a sweep.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import icalign as ica

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(ica.__file__)))
sys.path.insert(0, HERE)
import killhook  # noqa: E402

STEPS = 24
SWEEP = os.environ.get("ICALIGN_KILL_SWEEP") == "1"


def _env():
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, HERE] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _child(spec, *args):
    return [sys.executable, os.path.join(HERE, "killhook.py"), spec, "--", *args]


def _run(cmd, cwd, kill_after=None):
    """Run cmd; with kill_after (seconds) SIGKILL it from outside at that time.
    Returns the return code (-9 when killed)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    return proc.returncode


def _train_reference():
    model = ica.Transformer(killhook.TRAIN_CONFIG(), seed=3)
    task = ica.AlignmentTask(n_dims=3, n_points=6)
    history = ica.train(model, task, steps=STEPS, batch_size=4, lr=3e-3, seed=5, progress=False,
                        lr_schedule="cosine")
    return model, np.asarray(history)


def _assert_same_as_reference(out_path, reference):
    model, losses = reference
    got = np.load(out_path)
    assert np.array_equal(got["losses"], losses), "loss history differs after resuming"
    for name, value in model.state_dict().items():
        assert np.array_equal(got["param/" + name], value), f"parameter {name} differs"
    opt = model.optimizer_state()
    assert np.array_equal(got["adam_m"], opt["adam_m"])
    assert np.array_equal(got["adam_v"], opt["adam_v"])
    assert int(got["adam_steps"]) == int(opt["adam_steps"]) == STEPS


def _kill_sequence(tmp_path, plan):
    """Run the training child once per kill in ``plan`` (each resuming from the
    checkpoint the previous one left), then once to the end. Returns the number
    of kills that really happened."""
    ck, out = str(tmp_path / "ck.npz"), str(tmp_path / "final.npz")
    killed = 0
    for spec, delay in plan:
        rc = _run(_child(spec, "train", ck, out, str(STEPS)), tmp_path, kill_after=delay)
        killed += rc == -signal.SIGKILL
        if os.path.exists(ck):  # whatever is published is a whole, loadable checkpoint
            ica.load_checkpoint(ck)
    assert _run(_child("none", "train", ck, out, str(STEPS)), tmp_path) == 0
    # temporary files of killed writers are cleared by the next write
    assert sorted(os.listdir(tmp_path)) == ["ck.npz", "final.npz"]
    return killed


@pytest.fixture(scope="module")
def reference():
    return _train_reference()


def test_train_killed_at_chosen_points_resumes_bit_identical(tmp_path, reference):
    # counts are per process: a resumed child's k-th write follows its k-th step
    plan = [("partial:3", None), ("fsync:4", None), ("step:5", None), ("replace:3", None)]
    killed = _kill_sequence(tmp_path, plan)
    assert killed == len(plan)
    _assert_same_as_reference(tmp_path / "final.npz", reference)


SWEEP_KILLS = 10


def _sweep_seed():
    return int(os.environ.get("ICALIGN_KILL_SEED", time.time_ns() % 2**32))


def _random_spec(rng, top, max_ms):
    kind = rng.choice(["step", "partial", "fsync", "replace", "timer", "timer"])
    if kind == "timer":
        return f"timer:{rng.randint(1, max_ms)}"
    return f"{kind}:{rng.randint(1, max(1, top))}"


@pytest.mark.skipif(not SWEEP, reason="the 10-point kill sweep runs with ICALIGN_KILL_SWEEP=1")
def test_train_kill_sweep(tmp_path):
    """10 SIGKILLs at random points (random events and counts, and timers that
    strike wherever the process is). Each run resumes what the previous kill
    left; a run that completes is checked against the reference and the next
    starts afresh."""
    steps = 120
    global STEPS
    STEPS, saved = steps, STEPS
    try:
        reference = _train_reference()
        seed = _sweep_seed()
        rng = random.Random(seed)
        ck, out = str(tmp_path / "ck.npz"), str(tmp_path / "final.npz")
        killed, completed, specs = 0, 0, []
        while killed < SWEEP_KILLS:
            done = ica.load_checkpoint(ck)["step"] if os.path.exists(ck) else 0
            spec = _random_spec(rng, (steps - done) // 3, 1500)
            rc = _run(_child(spec, "train", ck, out, str(steps)), tmp_path)
            if rc == 0:
                _assert_same_as_reference(out, reference)
                completed += 1
                os.unlink(ck)
                os.unlink(out)
            else:
                killed += 1
                specs.append(spec)
                if os.path.exists(ck):
                    ica.load_checkpoint(ck)     # published files are whole
        assert _run(_child("none", "train", ck, out, str(steps)), tmp_path) == 0
        _assert_same_as_reference(out, reference)
        print(f"\ntrain kill sweep (seed {seed}): {killed} kills survived "
              f"({completed + 1} runs completed bit-identical): {specs}")
    finally:
        STEPS = saved


# ------------------------------------------------------------------ reproduce --resume
WALL_CLOCK_KEYS = {"seconds", "wall_seconds", "elapsed", "started", "finished", "date",
                   "time", "timestamp", "train_seconds", "timing"}


def _strip_wall_clock(obj):
    if isinstance(obj, dict):
        return {k: _strip_wall_clock(v) for k, v in obj.items()
                if k not in WALL_CLOCK_KEYS and not k.endswith("_seconds")}
    if isinstance(obj, list):
        return [_strip_wall_clock(v) for v in obj]
    return obj


def _results(folder):
    """The experiments' JSON files, wall-clock fields aside. run.json is left out: it is
    the manifest of the last run (its times, which models it trained and which it
    loaded), not a result, and a resumed run rightly differs there."""
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and name != "run.json":
            with open(os.path.join(folder, name)) as f:
                out[name] = _strip_wall_clock(json.load(f))
    return out


REPRO_ONLY = "tf_vs_gd,depth"


def _reproduce(out, *extra):
    # --jobs 1: every write happens in the process whose writes the hook counts (with
    # worker processes the checkpoints are written by them)
    return ["cli", "reproduce", "--profile", "smoke", "--only", REPRO_ONLY, "--out", out,
            "--no-progress", "--jobs", "1", *extra]


@pytest.fixture(scope="module")
def reproduce_reference(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reference"))
    assert _run(_child("none", *_reproduce(out)), out) == 0
    return _results(os.path.join(out, "smoke"))


def _reproduce_with_kills(out, plan):
    killed = 0
    for spec, delay in plan:
        rc = _run(_child(spec, *_reproduce(out, "--resume")), out, kill_after=delay)
        killed += rc == -signal.SIGKILL
    assert _run(_child("none", *_reproduce(out, "--resume")), out) == 0
    return killed


def test_reproduce_killed_then_resumed_gives_the_same_json(tmp_path, reproduce_reference):
    # a smoke run of these two experiments writes 2 models, 2 JSON files, 2 figures and
    # report.md: killed inside the first model's write, before the first JSON is
    # published, and right after a figure is
    plan = [("partial:1", None), ("fsync:2", None), ("replace:4", None)]
    killed = _reproduce_with_kills(str(tmp_path), plan)
    assert killed == len(plan)
    assert _results(tmp_path / "smoke") == reproduce_reference


@pytest.mark.skipif(not SWEEP, reason="the 10-point kill sweep runs with ICALIGN_KILL_SWEEP=1")
def test_reproduce_kill_sweep(tmp_path, reproduce_reference):
    seed = _sweep_seed()
    rng = random.Random(seed)
    out = str(tmp_path)
    killed, completed, specs = 0, 0, []
    while killed < SWEEP_KILLS:
        spec = _random_spec(rng, 4, 4000)
        rc = _run(_child(spec, *_reproduce(out, "--resume")), out)
        if rc == 0:
            assert _results(tmp_path / "smoke") == reproduce_reference
            completed += 1
            shutil.rmtree(tmp_path / "smoke")
        else:
            killed += 1
            specs.append(spec)
    assert _run(_child("none", *_reproduce(out, "--resume")), out) == 0
    assert _results(tmp_path / "smoke") == reproduce_reference
    print(f"\nreproduce kill sweep (seed {seed}): {killed} kills survived "
          f"({completed + 1} runs completed with identical JSON): {specs}")
