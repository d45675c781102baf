"""Training loop with atomic, resumable checkpoints (``docs/math.md``, "Training").

The data a step sees is a pure function of its index: step s trains on
``task.sample(batch_size, seed=seed, offset=s * batch_size)``. Together with the
parameters and Adam moments stored in the checkpoint this makes a resumed run
bit-identical to an uninterrupted one: nothing else carries state.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from ._files import atomic_write
from ._progress import DeferInterrupt, Progress
from ._validation import check_float, check_int
from ._version import __version__
from .config import ModelConfig
from .evaluate import EVAL_SEED_BASE
from .model import Transformer
from .task import AlignmentTask

CHECKPOINT_FORMAT = 1
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainHistory:
    """What a ``train`` call did: the loss of every step since step 0 (also the
    steps of earlier, resumed calls), wall-clock seconds summed over all calls,
    and whether all ``steps`` are done.

    Behaves like a sequence of per-step losses: ``len(h)``, ``h[-1]``,
    ``list(h)`` and ``np.asarray(h)`` work, so ``plt.plot(h)`` plots the curve.

    Attributes
    ----------
    losses : numpy.ndarray, float64
        The loss of every step done, from step 0.
    seconds : float
        Wall-clock training time, summed over all calls.
    steps : int
        The steps asked for.
    resumed_from : int
        The step this call started from (0 unless resumed from a checkpoint).
    arguments : dict
        The training arguments that decide the trajectory (as stored in the
        checkpoint).
    steps_done : int
        ``len(losses)``.
    completed : bool
        Whether ``steps_done >= steps``.

    Examples
    --------
    >>> import numpy as np
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> h = ica.train(model, ica.AlignmentTask(), steps=4, batch_size=4, lr=1e-3,
    ...               progress=False)
    >>> h                                               # doctest: +ELLIPSIS
    TrainHistory(4/4 steps, ... s, last loss ...)
    >>> len(h), h.completed, np.asarray(h).shape, h.smoothed(window=2).shape
    (4, True, (4,), (4,))
    >>> h.arguments["batch_size"], h.arguments["lr"]
    (4, 0.001)
    """

    losses: np.ndarray
    seconds: float
    steps: int
    resumed_from: int = 0
    arguments: dict = field(default_factory=dict)

    @property
    def steps_done(self) -> int:
        return int(self.losses.shape[0])

    @property
    def completed(self) -> bool:
        return self.steps_done >= self.steps

    def __len__(self) -> int:
        return self.steps_done

    def __getitem__(self, index):
        return self.losses[index]

    def __iter__(self):
        return iter(self.losses.tolist())

    def __array__(self, dtype=None, copy=None):
        return self.losses.astype(dtype) if dtype is not None else self.losses.copy()

    def smoothed(self, window: int = 50) -> np.ndarray:
        """Running mean over ``window`` steps (shorter at the start), for plots.

        Returns a float64 array of ``steps_done`` values; raises ValueError if
        ``window`` < 1.
        """
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        c = np.cumsum(np.concatenate([[0.0], self.losses]))
        idx = np.arange(1, self.steps_done + 1)
        lo = np.maximum(idx - window, 0)
        return (c[idx] - c[lo]) / (idx - lo)

    def __repr__(self) -> str:
        last = f", last loss {self.losses[-1]:.4f}" if self.steps_done else ""
        return (f"TrainHistory({self.steps_done}/{self.steps} steps, "
                f"{self.seconds:.1f} s{last})")


# ------------------------------------------------------------------ checkpoints
def save_checkpoint(path: Union[str, os.PathLike], arrays: dict) -> None:
    """Write ``arrays`` to ``path`` as .npz atomically.

    The data go to a temporary file in the same directory, are flushed and
    fsync'ed, and only then renamed over ``path`` (os.replace is atomic on
    POSIX and Windows), so a crash or Ctrl-C at any moment leaves either the
    old checkpoint or the new one, never a half-written file (docs/math.md,
    section "Training"). ``train`` writes its checkpoints with it.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists); its directory must exist.
    arrays : dict of str to array_like
        The entries, as for ``numpy.savez``.

    Raises
    ------
    OSError
        If the file cannot be written (``path`` is then left as it was).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from icalign import save_checkpoint
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "arrays.npz")
    ...     save_checkpoint(path, {"a": np.arange(3)})
    ...     with np.load(path) as z:
    ...         print(z["a"], os.listdir(d))
    [0 1 2] ['arrays.npz']
    """
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: Union[str, os.PathLike]) -> dict:
    """Read a checkpoint written by ``train``.

    Parameters
    ----------
    path : str or os.PathLike
        The .npz file.

    Returns
    -------
    dict
        'config' (ModelConfig), 'arguments' (dict: the training arguments),
        'version' (str: the icalign that wrote it), 'step' (int: steps done),
        'losses' (float64 array: the loss of every step), 'seconds' (float),
        'state_dict' ({name: array}) and 'optimizer' ({'adam_m', 'adam_v',
        'adam_steps'}). ``icalign.training.model_from_checkpoint`` and
        ``icalign.training.history_from_checkpoint`` turn it into a model and a
        TrainHistory.

    Raises
    ------
    ValueError
        If the file cannot be read, is truncated, corrupted or not an icalign
        checkpoint, has another format, or has an entry that is missing,
        mis-shaped, non-finite or inconsistent with the others. Everything is
        checked before anything is returned; the message names the file and
        the problem.

    Examples
    --------
    >>> import os, tempfile
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "model.npz")
    ...     _ = ica.train(model, ica.AlignmentTask(), steps=3, batch_size=4, lr=1e-3,
    ...                   progress=False, checkpoint=path)
    ...     ck = ica.load_checkpoint(path)
    >>> ck["step"], ck["losses"].shape, ck["config"] == model.config
    (3, (3,), True)
    >>> ck["arguments"]["steps"], ck["optimizer"]["adam_steps"]
    (3, 3)
    """
    path = os.fspath(path)
    data = _read_npz(path)
    if "meta" not in data:
        raise ValueError(f"{path!r} is not an icalign checkpoint (no 'meta' entry; it holds "
                         f"{sorted(data)[:6]})")
    try:
        meta = json.loads(str(data.pop("meta")))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ValueError(f"checkpoint {path!r} has an unreadable 'meta' entry ({exc})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path!r} has format {meta.get('format')!r}; this icalign "
                         f"reads format {CHECKPOINT_FORMAT}")
    missing = [k for k in ("config", "arguments", "version", "step", "seconds") if k not in meta]
    missing += [k for k in ("losses", "adam_m", "adam_v", "adam_steps") if k not in data]
    if missing:
        raise ValueError(f"checkpoint {path!r} is incomplete: no {', '.join(missing)}")
    try:
        config = ModelConfig.from_dict(meta["config"])
        step, seconds = int(meta["step"]), float(meta["seconds"])
        adam_steps = int(data["adam_steps"])
        arguments = dict(meta["arguments"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {path!r} has a bad 'meta' entry: {exc}") from None
    losses = np.asarray(data["losses"])
    state = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    problems = []
    if losses.shape != (step,):
        problems.append(f"losses has shape {losses.shape} but the checkpoint is at step {step}")
    if adam_steps < 0:
        problems.append(f"adam_steps is {adam_steps}")
    for name, value in [("losses", losses), ("adam_m", data["adam_m"]),
                        ("adam_v", data["adam_v"])] + [("param/" + k, v) for k, v in state.items()]:
        if value.dtype.kind not in "fiu":
            problems.append(f"{name} has dtype {value.dtype}")
        elif not np.all(np.isfinite(value)):
            problems.append(f"{name} holds non-finite values")
    if data["adam_m"].shape != data["adam_v"].shape or data["adam_m"].ndim != 1:
        problems.append(f"adam_m and adam_v have shapes {data['adam_m'].shape} and "
                        f"{data['adam_v'].shape}; expected two equal 1-D arrays")
    if not problems:    # names and shapes against the model the config describes
        reference = Transformer(config)
        expected = {name: shape for name, shape, _ in reference._table}
        for name in sorted(set(expected) | set(state)):
            if name not in state:
                problems.append(f"parameter {name} is missing")
            elif name not in expected:
                problems.append(f"parameter {name} is not in the model")
            elif state[name].shape != expected[name]:
                problems.append(f"parameter {name} has shape {state[name].shape}, expected "
                                f"{expected[name]}")
        size = reference._core.params.shape
        if data["adam_m"].shape != size:
            problems.append(f"adam_m and adam_v have shape {data['adam_m'].shape}, expected "
                            f"{size}")
    if problems:
        raise ValueError(f"checkpoint {path!r} is damaged: " + "; ".join(problems))
    return {
        "config": config, "arguments": arguments, "version": meta["version"], "step": step,
        "seconds": seconds, "losses": losses.astype(np.float64), "state_dict": state,
        "optimizer": {"adam_m": data["adam_m"], "adam_v": data["adam_v"],
                      "adam_steps": adam_steps},
    }


def _read_npz(path: str) -> dict:
    """Every array of an .npz file, or ValueError naming the file and the problem."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {path!r}: {exc.strerror or exc}") from exc
    if size == 0:
        raise ValueError(f"cannot read checkpoint {path!r}: the file is empty")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {path!r}: {exc.strerror or exc}") from exc
    if magic != b"PK\x03\x04":
        raise ValueError(f"cannot read checkpoint {path!r}: not an .npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"cannot read checkpoint {path!r}: the zip archive is truncated or "
                         f"corrupt ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise ValueError(f"cannot read checkpoint {path!r}: corrupt entry ({exc})") from exc


def model_from_checkpoint(ck: dict) -> Transformer:
    """The model a loaded checkpoint (``load_checkpoint``) holds, with its parameters.

    Returns a new Transformer of the checkpoint's config and initialisation
    seed with the stored parameters loaded (not the Adam moments: to continue
    training, call ``train`` with the checkpoint instead).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import icalign as ica
    >>> from icalign.training import model_from_checkpoint
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "model.npz")
    ...     _ = ica.train(model, ica.AlignmentTask(), steps=2, batch_size=4, lr=1e-3,
    ...                   progress=False, checkpoint=path)
    ...     restored = model_from_checkpoint(ica.load_checkpoint(path))
    >>> b = ica.AlignmentTask().sample(2, seed=0)
    >>> bool(np.array_equal(restored.predict(b.xs, b.ys, b.rs), model.predict(b.xs, b.ys, b.rs)))
    True
    """
    model = Transformer(ck["config"], seed=int(ck["arguments"]["model_seed"]))
    model.load_state_dict(ck["state_dict"])
    return model


def history_from_checkpoint(ck: dict) -> "TrainHistory":
    """The training history (loss per step) a loaded checkpoint holds.

    Returns a TrainHistory with the checkpoint's losses, seconds, steps and
    arguments, as ``train`` returned it when it wrote the checkpoint.

    Examples
    --------
    >>> import os, tempfile
    >>> import icalign as ica
    >>> from icalign.training import history_from_checkpoint
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "run.npz")
    >>> cfg = ica.ModelConfig(n_embd=8, n_layer=1, n_head=2)
    >>> h = ica.train(ica.Transformer(cfg), ica.AlignmentTask(), steps=2, batch_size=4,
    ...               lr=1e-3, progress=False, checkpoint=path)
    >>> stored = history_from_checkpoint(ica.load_checkpoint(path))
    >>> tmp.cleanup()
    >>> list(stored) == list(h), stored.completed, stored.arguments == h.arguments
    (True, True, True)
    """
    return TrainHistory(ck["losses"], ck["seconds"], int(ck["arguments"]["steps"]),
                        arguments=ck["arguments"])


def _checkpoint_arrays(model: Transformer, arguments: dict, losses: list, seconds: float):
    meta = {"format": CHECKPOINT_FORMAT, "config": model.config.to_dict(),
            "arguments": arguments, "version": __version__, "step": len(losses),
            "seconds": seconds, "completed": len(losses) >= arguments["steps"]}
    arrays = {"meta": np.array(json.dumps(meta, sort_keys=True)),
              "losses": np.asarray(losses, dtype=np.float64)}
    for name, value in model.state_dict().items():
        arrays["param/" + name] = value
    opt = model.optimizer_state()
    arrays.update(adam_m=opt["adam_m"], adam_v=opt["adam_v"],
                  adam_steps=np.int64(opt["adam_steps"]))
    return arrays


# ------------------------------------------------------------------ learning rate
def learning_rate(step: int, steps: int, lr: float, schedule: Optional[str]) -> float:
    """Learning rate of step ``step`` (0-based) of ``steps``.

    None / 'constant': ``lr`` throughout (the paper). 'cosine': linear warm-up
    over the first 5% of steps (at least 1), then cosine decay to 0 at the end
    (docs/math.md, section "Training"); lets a short run use a larger peak lr
    without ending noisy.

    Parameters
    ----------
    step : int
        The step, from 0.
    steps : int
        Steps of the whole run.
    lr : float
        The (peak) learning rate.
    schedule : {None, 'constant', 'cosine'}
        The schedule.

    Returns
    -------
    float
        The learning rate of that step (0 at the end of a cosine schedule).

    Raises
    ------
    ValueError
        If ``schedule`` is not None, 'constant' or 'cosine'.

    Examples
    --------
    >>> from icalign.training import learning_rate
    >>> learning_rate(7, 100, 1e-3, None)
    0.001
    >>> [round(learning_rate(s, 100, 1e-3, "cosine"), 6) for s in (0, 4, 52, 99)]
    [0.0002, 0.001, 0.000508, 0.0]
    """
    if schedule in (None, "constant"):
        return lr
    if schedule == "cosine":
        warmup = max(1, steps // 20)
        if step < warmup:
            return lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return lr * 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ValueError(f"lr_schedule must be None or one of {LR_SCHEDULES}, got {schedule!r}")


# ------------------------------------------------------------------ train
def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _check_arguments(model, task, steps, batch_size, lr, seed, objective, reward,
                     reward_noise, reward_weight, checkpoint_every, lr_schedule) -> dict:
    """Validate ``train``'s arguments; returns everything that decides the trajectory
    (a checkpoint must agree on all of it)."""
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be an icalign.Transformer, got {type(model).__name__}")
    if not isinstance(task, AlignmentTask):
        raise TypeError(f"task must be an icalign.AlignmentTask, got {type(task).__name__}")
    check_int("steps", steps, 0)
    check_int("batch_size", batch_size, 1)
    check_int("seed", seed, 0)
    if seed >= EVAL_SEED_BASE:
        raise ValueError(f"seed must be < 2**40 = {EVAL_SEED_BASE}: larger seeds are reserved for "
                         f"evaluation sets (icalign.evaluation_set), got {seed}")
    check_float("lr", lr, 0.0, low_open=True)
    check_float("reward_noise", reward_noise, 0.0, 1.0)
    check_float("reward_weight", reward_weight, 0.0)
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, float)) \
            or not checkpoint_every > 0:
        raise ValueError(f"checkpoint_every must be a number of seconds > 0, "
                         f"got {checkpoint_every!r}")
    _check_choice("objective", objective, ("pl", "bt"))
    _check_choice("reward", reward, ("cosine", "neg_sq"))
    _check_choice("lr_schedule", lr_schedule, (None,) + LR_SCHEDULES)
    cfg = model.config
    if (task.n_dims, task.n_points) != (cfg.n_dims, cfg.n_points):
        raise ValueError(f"task (n_dims={task.n_dims}, n_points={task.n_points}) does not match "
                         f"the model config (n_dims={cfg.n_dims}, n_points={cfg.n_points})")
    return {"steps": int(steps), "batch_size": int(batch_size), "lr": float(lr),
            "seed": int(seed), "objective": objective, "reward": reward,
            "reward_noise": float(reward_noise), "reward_weight": float(reward_weight),
            "lr_schedule": lr_schedule, "model_seed": int(model.seed)}


def _resume(model: Transformer, checkpoint, arguments: dict) -> tuple:
    """Load ``checkpoint`` into ``model`` (parameters and Adam state) if the file
    exists; returns (losses so far, seconds so far). Refuses a checkpoint made with
    another config or other training arguments."""
    if checkpoint is None or not os.path.exists(checkpoint):
        return [], 0.0
    path = os.fspath(checkpoint)
    ck = load_checkpoint(path)
    if ck["config"] != model.config:
        raise ValueError(f"checkpoint {path!r} was made for config {ck['config']}, but the "
                         f"model has {model.config}; use another checkpoint path or delete "
                         f"the file to start over")
    diff = {k: (ck["arguments"].get(k), v) for k, v in arguments.items()
            if ck["arguments"].get(k) != v}
    if diff:
        listed = ", ".join(f"{k}: checkpoint {a!r} vs call {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"checkpoint {path!r} was made with other training arguments "
                         f"({listed}); use another checkpoint path or delete the file to "
                         f"start over")
    if ck["step"] > arguments["steps"]:
        raise ValueError(f"checkpoint {path!r} is at step {ck['step']}, past "
                         f"steps={arguments['steps']}")
    _load_whole(model, ck, path)
    return ck["losses"].tolist(), ck["seconds"]


def _load_whole(model: Transformer, ck: dict, path: str) -> None:
    """Parameters and Adam state of ``ck`` into ``model``, all or nothing."""
    core = model._core
    before = (core.params.copy(), core.adam_m.copy(), core.adam_v.copy(), core.adam_steps)
    try:
        model.load_state_dict(ck["state_dict"])
        model.load_optimizer_state(ck["optimizer"])
    except (ValueError, TypeError) as exc:
        core.params[...], core.adam_m[...], core.adam_v[...] = before[:3]
        core.adam_steps = before[3]
        raise ValueError(f"checkpoint {path!r} does not fit the model: {exc}") from None


class _Saver:
    """Writes the checkpoint of a running ``train`` call, and only a consistent one."""

    def __init__(self, model, checkpoint, arguments, losses, seconds_before):
        self.model, self.checkpoint, self.arguments = model, checkpoint, arguments
        self.losses, self.seconds_before = losses, seconds_before
        self.start = len(losses)
        self.t0 = time.monotonic()
        self.adam_at_start = model._core.adam_steps
        core = model._core
        # the starting state, for a run that diverges before its first checkpoint
        self.initial = (core.params.copy(), core.adam_m.copy(), core.adam_v.copy(),
                        core.adam_steps) if checkpoint is not None else None

    def elapsed(self) -> float:
        return self.seconds_before + (time.monotonic() - self.t0)

    def save_initial(self) -> None:
        """Write the state this call started from (a diverging run's last finite one
        when no checkpoint was written yet)."""
        core = self.model._core
        core.params[...], core.adam_m[...], core.adam_v[...] = self.initial[:3]
        core.adam_steps = self.initial[3]
        save_checkpoint(self.checkpoint, _checkpoint_arrays(
            self.model, self.arguments, self.losses[:self.start], self.elapsed()))

    def __call__(self, only_finite: bool = False) -> None:
        # Only a state whose Adam count matches the loss history is consistent
        # (a second Ctrl-C can land inside a step); otherwise keep the last file.
        # After a divergence only a finite state may replace it.
        core = self.model._core
        if only_finite and not (np.isfinite(core.params).all() and np.isfinite(core.adam_m).all()
                                and np.isfinite(core.adam_v).all()):
            return
        if self.checkpoint is not None and \
                core.adam_steps - self.adam_at_start == len(self.losses) - self.start:
            save_checkpoint(self.checkpoint, _checkpoint_arrays(
                self.model, self.arguments, self.losses, self.elapsed()))


class TrainingDiverged(FloatingPointError):
    """``train`` stopped because the loss or the parameters stopped being finite.

    Attributes
    ----------
    step : int
        The 0-based step that diverged.
    loss : float
        Its loss: NaN or inf, or the finite loss of a step whose update would
        have made the parameters non-finite.
    lr : float
        Its learning rate.
    checkpoint : str or None
        The checkpoint holding the last finite state (the model is reset to
        it), or None without a checkpoint (the model then holds the state in
        which the divergence was detected).

    Examples
    --------
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> try:
    ...     ica.train(model, ica.AlignmentTask(), steps=20, batch_size=4, lr=1e30,
    ...               progress=False)
    ... except ica.TrainingDiverged as exc:
    ...     print(exc.step, exc.checkpoint, isinstance(exc, FloatingPointError))
    1 None True
    """

    def __init__(self, message, step, loss, lr, checkpoint):
        super().__init__(message)
        self.step, self.loss, self.lr, self.checkpoint = step, loss, lr, checkpoint


def _diverged(model, exc, step, lr, save, checkpoint, batch, a) -> TrainingDiverged:
    """Keep the last finite checkpoint, put the model back to it, and describe it."""
    loss = getattr(exc, "loss", None)
    if loss is None:    # the step refused its update: the loss it saw, if finite
        try:
            loss = model.loss_and_grad(batch.xs, batch.ys, batch.rs, objective=a["objective"],
                                       reward=a["reward"], reward_weight=a["reward_weight"])[0]
        except (FloatingPointError, ValueError):
            loss = float("nan")
    loss = float(loss)
    save(only_finite=True)
    if checkpoint is not None and not os.path.exists(checkpoint):
        save.save_initial()
    where = "the model holds the state in which it diverged (no checkpoint)"
    if checkpoint is not None and os.path.exists(checkpoint):
        path = os.fspath(checkpoint)
        ck = load_checkpoint(path)
        _load_whole(model, ck, path)
        where = (f"the last finite state (step {ck['step']}) is in {path!r}, and the model "
                 f"was reset to it")
    return TrainingDiverged(f"training diverged at step {step}: loss {loss:g} at lr {lr:g} "
                            f"({exc}); {where}; try a smaller lr", step, loss, lr,
                            os.fspath(checkpoint) if checkpoint is not None else None)


def _step_loop(model, task, a: dict, losses: list, save: _Saver, bar: Progress,
               checkpoint, checkpoint_every) -> None:
    """Steps len(losses)..steps-1; appends each loss, saves every ``checkpoint_every``
    seconds, and before a divergence error."""
    last_save = time.monotonic()
    steps, batch_size = a["steps"], a["batch_size"]
    with DeferInterrupt() as interrupt:
        for s in range(len(losses), steps):
            batch = task.sample(batch_size, seed=a["seed"], offset=s * batch_size,
                                reward_noise=a["reward_noise"])
            step_lr = learning_rate(s, steps, a["lr"], a["lr_schedule"])
            try:
                loss = model.step(batch.xs, batch.ys, batch.rs, lr=step_lr,
                                  objective=a["objective"], reward=a["reward"],
                                  reward_weight=a["reward_weight"])
            except FloatingPointError as exc:
                raise _diverged(model, exc, s, step_lr, save, checkpoint, batch, a) from exc
            losses.append(float(loss))
            bar.update(s + 1, float(loss))
            if interrupt.requested:
                raise KeyboardInterrupt
            if checkpoint is not None and time.monotonic() - last_save >= checkpoint_every:
                save()
                last_save = time.monotonic()


def train(model: Transformer, task: AlignmentTask, steps: int = 3000, batch_size: int = 256,
          lr: float = 1e-4, seed: int = 0, progress: Union[bool, str] = True,
          checkpoint: Optional[Union[str, os.PathLike]] = None, objective: str = "pl",
          reward: str = "cosine", reward_noise: float = 0.0, reward_weight: float = 1.0,
          checkpoint_every: float = 120.0, lr_schedule: Optional[str] = None) -> TrainHistory:
    """Train ``model`` in place with Adam (``docs/math.md``, "Training"); returns a
    TrainHistory.

    Step s uses ``task.sample(batch_size, seed=seed, offset=s * batch_size,
    reward_noise=reward_noise)``: fresh tasks every step, and the data position
    is the step number alone.

    Parameters
    ----------
    model : Transformer
        The model, updated in place (parameters and Adam moments).
    task : AlignmentTask
        The task family; its n_dims and n_points must match the model's.
    steps : int, default 3000
        Total steps (>= 0), counting those of a resumed checkpoint.
    batch_size : int, default 256
        Tasks per step (>= 1).
    lr : float, default 1e-4
        Adam learning rate (the peak with ``lr_schedule='cosine'``), > 0.
    seed : int, default 0
        Data seed, in [0, 2**40): larger seeds are reserved for
        ``evaluation_set``.
    progress : bool or str, default True
        True for a tqdm bar (loss, steps/s, ETA) or, without tqdm, a text line
        every ~10 s on stderr; a string does the same with that label; False
        for silence.
    checkpoint : str or os.PathLike, optional
        Path of an .npz checkpoint. Written atomically every
        ``checkpoint_every`` seconds, at the end and on Ctrl-C (then
        KeyboardInterrupt is re-raised); a diverging run leaves its last finite
        state there. If the
        file exists, training resumes from it and ends bit-identical to an
        uninterrupted run; a finished checkpoint loads the trained parameters
        and returns at once.
    objective : {'pl', 'bt'}, default 'pl'
        Plackett-Luce or Bradley-Terry loss.
    reward : {'cosine', 'neg_sq'}, default 'cosine'
        Policy reward of a prediction against a response.
    reward_noise : float, default 0.0
        Probability p, in [0, 1], that a shown reward is replaced by U(0, 1).
    reward_weight : float, default 1.0
        Weight of the reward-head loss (models with a reward head only).
    checkpoint_every : float, default 120.0
        Seconds between checkpoints (> 0).
    lr_schedule : {None, 'constant', 'cosine'}, default None
        None/'constant' (the paper) or 'cosine' (see ``learning_rate``).

    Returns
    -------
    TrainHistory
        The loss of every step (with those of earlier, resumed calls).

    Raises
    ------
    TypeError
        If ``model`` is not a Transformer, ``task`` not an AlignmentTask, or an
        argument has the wrong type.
    ValueError
        If an argument is invalid, the task does not match the model, or the
        checkpoint was made with another config or other training arguments
        (or is past ``steps``, unreadable or damaged: the model is then left as
        it was).
    TrainingDiverged
        A FloatingPointError: the loss or the parameters stopped being finite
        (e.g. too large an lr). It carries ``step`` and ``loss``; the
        checkpoint keeps the last finite state and the model is reset to it.
    OSError
        If writing the checkpoint fails (full disk, no permission); it names
        the file, and the previous checkpoint stays whole.
    KeyboardInterrupt
        Re-raised after Ctrl-C, once the checkpoint is written.

    Examples
    --------
    >>> import os, tempfile
    >>> import icalign as ica
    >>> task = ica.AlignmentTask()
    >>> cfg = ica.ModelConfig(n_embd=8, n_layer=1, n_head=2)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "model.npz")
    ...     first = ica.train(ica.Transformer(cfg), task, steps=2, batch_size=4, lr=1e-3,
    ...                       progress=False, checkpoint=path)
    ...     # the checkpoint is finished: the same call loads it and returns at once
    ...     again = ica.train(ica.Transformer(cfg), task, steps=2, batch_size=4, lr=1e-3,
    ...                       progress=False, checkpoint=path)
    >>> len(first), again.resumed_from, list(again) == list(first)
    (2, 2, True)
    >>> ica.train(ica.Transformer(cfg), task, steps=2, seed=2**40, progress=False)
    Traceback (most recent call last):
        ...
    ValueError: seed must be < 2**40 = 1099511627776: larger seeds are reserved for evaluation sets (icalign.evaluation_set), got 1099511627776
    """
    arguments = _check_arguments(model, task, steps, batch_size, lr, seed, objective, reward,
                                 reward_noise, reward_weight, checkpoint_every, lr_schedule)
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path (str or os.PathLike) or None, got "
                        f"{type(checkpoint).__name__}")
    losses, seconds_before = _resume(model, checkpoint, arguments)
    start = len(losses)

    def history(seconds):
        return TrainHistory(np.asarray(losses, dtype=np.float64), seconds, int(steps),
                            resumed_from=start, arguments=dict(arguments))

    if start and progress:
        # a resumed call otherwise looks like one that skipped steps, or did nothing
        what = "already finished, nothing to train" if start >= steps else \
            "training resumes there"
        print(f"checkpoint {os.fspath(checkpoint)!r} is at step {start} of {int(steps)}: "
              f"{what}", file=sys.stderr, flush=True)
    if start >= steps:
        return history(seconds_before)
    bar = Progress(progress, int(steps), start, progress if isinstance(progress, str)
                    else "train")
    save = _Saver(model, checkpoint, arguments, losses, seconds_before)
    try:
        _step_loop(model, task, arguments, losses, save, bar, checkpoint, checkpoint_every)
    except KeyboardInterrupt:
        bar.close()
        save()
        if checkpoint is not None:
            print(f"\ninterrupted at step {len(losses)}/{steps}; checkpoint "
                  f"{os.fspath(checkpoint)!r} resumes it", file=sys.stderr, flush=True)
        raise
    bar.close()
    save()
    return history(save.elapsed())
