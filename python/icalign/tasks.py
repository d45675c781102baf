"""Training one (model, seed) of ``icalign reproduce`` as a top-level function of
picklable arguments (``train_spec``), so that an executor can run it in this process,
in other processes or on other machines that share the output folder
(``icalign.executors``). ``icalign.runner.evaluate_experiment`` is its counterpart for
the evaluation."""
from __future__ import annotations

import os
import time

import numpy as np

from .manifest import trained_on
from .model import Transformer
from .profiles import TrainSpec
from .task import AlignmentTask
from .training import history_from_checkpoint, load_checkpoint, train


def checkpoint_path(models_dir: str, spec: TrainSpec) -> str:
    """Where the model of ``spec`` is cached: ``models_dir/<spec.name>.npz``."""
    return os.path.join(models_dir, spec.name + ".npz")


def train_spec(spec: TrainSpec, models_dir: str, checkpoint_every: float = 120.0,
               progress: bool = True) -> dict:
    """Train the model of ``spec`` into its checkpoint under ``models_dir`` (resuming
    an unfinished one); returns what happened as a dict: name, steps_done,
    resumed_from, seconds (this call), final_loss (mean of the last 20 steps),
    diverged_at_step (None unless the loss turned non-finite: then the checkpoint
    holds the last finite state), message and trained_on (``manifest.trained_on``:
    the vector path and CPU of the process that trained).

    A top-level function of picklable arguments: executors may run it in other
    processes or on other machines that share ``models_dir``."""
    path = checkpoint_path(models_dir, spec)
    model = Transformer(spec.config, seed=spec.seed)
    task = AlignmentTask(spec.config.n_dims, spec.config.n_points)
    t0 = time.monotonic()
    diverged, message = None, None
    try:
        history = train(model, task, progress=(spec.name if progress else False),
                        checkpoint=path, checkpoint_every=checkpoint_every,
                        **spec.train_kwargs())
    except FloatingPointError as exc:
        # A diverging ablation (e.g. unnormalised linear attention) is a result to
        # report, not a reason to lose the whole run: train() saved its last finite
        # state, which the experiments evaluate.
        history = history_from_checkpoint(load_checkpoint(path))
        diverged, message = history.steps_done, str(exc)
    return {"name": spec.name, "steps_done": history.steps_done,
            "resumed_from": history.resumed_from, "seconds": time.monotonic() - t0,
            "final_loss": float(np.mean(history.losses[-20:])) if len(history) else None,
            "diverged_at_step": diverged, "message": message, "trained_on": trained_on()}
