"""The run manifest: ``run.json`` in a profile folder, written at the end of
``Runner.run``, says how the results came about: when, how long, on what executor,
with how many seeds, which models were trained in the run and which loaded from
earlier checkpoints, where the time went (training; evaluation split into the
transformer's forward passes, per-task GD, the other baselines and the critic loops),
and on what: the CPU and the C core's vector path each model was trained on, and the
run's Python and NumPy. With the same icalign, Python and NumPy, a rerun on the same
vector path reproduces the results bit for bit on any CPU; on another path the C core
agrees to float32 rounding only, and trained models, whose training amplifies
rounding, then agree statistically, not bit for bit.

``PhaseTimer`` is the small accumulator behind the time split: the runner times its
calls with it (``with timer("gd"): ...``), an experiment's timings travel with its
result (``timing`` in its JSON), and the manifest sums them over the experiments run.
Timing measures wall-clock seconds only; it changes no computed number.
"""
from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from typing import Iterable, Optional

import numpy as np

from . import _core
from ._files import atomic_write_text
from ._version import __version__

#: The parts of an experiment's evaluation time, in the order they are shown.
TIMING_PARTS = ("tf_eval", "gd", "baselines", "optimum", "critic", "other")
#: How the parts are named in the README's time table.
TIMING_LABELS = {"tf_eval": "TF evaluation (transformer forward passes)",
                 "gd": "GD baseline (per-task Adam on the PL loss)",
                 "baselines": "other baselines (mean, best, weighted, oracle)",
                 "optimum": "objective optima (the training objective minimised per task)",
                 "critic": "critic loops (self-correction studies)",
                 "other": "other (evaluation sets, statistics, merging seeds)"}
MANIFEST_NAME = "run.json"


class PhaseTimer:
    """Wall-clock seconds accumulated per named part.

    A part timed inside another counts for the inner part only (the outer part
    gets its own time less the inner one), so the parts never overlap.

    Examples
    --------
    >>> from icalign.manifest import PhaseTimer
    >>> timer = PhaseTimer()
    >>> with timer("gd"):
    ...     with timer("tf_eval"):
    ...         pass
    >>> sorted(timer.seconds), all(s >= 0 for s in timer.seconds.values())
    (['gd', 'tf_eval'], True)
    >>> taken = timer.take()
    >>> timer.seconds
    {}
    """

    def __init__(self):
        self.seconds: dict = {}
        self._stack: list = []

    @contextmanager
    def __call__(self, part: str):
        frame = [time.perf_counter(), 0.0]      # start, seconds of timed parts inside
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[0]
            self.seconds[part] = self.seconds.get(part, 0.0) + elapsed - frame[1]
            if self._stack:
                self._stack[-1][1] += elapsed

    def take(self) -> dict:
        """The seconds accumulated so far, {part: seconds}; starts again from zero."""
        out, self.seconds = self.seconds, {}
        return out


def experiment_timing(parts: Iterable[dict], seconds: float) -> dict:
    """The ``timing`` of one experiment's result: its timed parts summed over its runs
    (one per training seed), and ``other``, the rest of its ``seconds`` of evaluation.

    Parameters
    ----------
    parts : iterable of dict
        Per run, {part: seconds} from ``PhaseTimer.take`` (a "seconds" entry, the
        run's own total, is ignored).
    seconds : float
        The experiment's evaluation seconds in all (summed over its runs).

    Returns
    -------
    dict
        {part: seconds} for every part of ``TIMING_PARTS``, and ``seconds``.

    Examples
    --------
    >>> from icalign.manifest import experiment_timing
    >>> experiment_timing([{"tf_eval": 1.0, "gd": 2.0, "seconds": 3.5},
    ...                    {"tf_eval": 1.5, "seconds": 1.5}], 5.0)
    {'tf_eval': 2.5, 'gd': 2.0, 'baselines': 0.0, 'optimum': 0.0, 'critic': 0.0, 'other': 0.5, 'seconds': 5.0}
    """
    total = {p: 0.0 for p in TIMING_PARTS}
    for run in parts:
        for part, s in run.items():
            if part != "seconds":
                total[part if part in total else "other"] += float(s)
    total["other"] += max(0.0, float(seconds) - sum(total.values()))
    return {**total, "seconds": float(seconds)}


def sum_timings(timings: Iterable[Optional[dict]]) -> dict:
    """{part: seconds} summed over experiments' ``timing`` dicts (None ones skipped).

    Examples
    --------
    >>> from icalign.manifest import sum_timings
    >>> sum_timings([{"gd": 1.0, "seconds": 1.0}, None, {"gd": 0.5, "critic": 2.0,
    ...                                                 "seconds": 2.5}])
    {'tf_eval': 0.0, 'gd': 1.5, 'baselines': 0.0, 'optimum': 0.0, 'critic': 2.0, 'other': 0.0, 'seconds': 3.5}
    """
    total = {p: 0.0 for p in TIMING_PARTS + ("seconds",)}
    for timing in timings:
        for part, s in (timing or {}).items():
            if part in total:
                total[part] += float(s)
    return total


def executor_info(executor) -> dict:
    """How an executor runs tasks, for the manifest.

    Parameters
    ----------
    executor : object
        ``executors.SerialExecutor``, ``executors.DaskExecutor`` or any object with
        ``map``.

    Returns
    -------
    dict
        kind (its ``name``, else its class name), description (its ``describe()``),
        workers, and threads in all (for this process: the C core's thread count).

    Examples
    --------
    >>> from icalign.executors import SerialExecutor
    >>> from icalign.manifest import executor_info
    >>> info = executor_info(SerialExecutor())
    >>> info["kind"], info["description"], info["workers"], info["threads"] >= 1
    ('local', 'this process', 1, True)
    """
    kind = getattr(executor, "name", type(executor).__name__)
    describe = getattr(executor, "describe", None)
    info = {"kind": kind, "description": describe() if callable(describe) else str(kind)}
    threads = getattr(executor, "worker_threads", None)
    if callable(threads):
        per_worker = threads()
        info.update(workers=len(per_worker), threads=sum(per_worker.values()))
    else:
        info.update(workers=int(getattr(executor, "workers", 1) or 1),
                    threads=_core.get_num_threads())
    return info


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` knows.

    Examples
    --------
    >>> from icalign.manifest import cpu_name
    >>> isinstance(cpu_name(), str) and len(cpu_name()) > 0
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def trained_on() -> dict:
    """Where this process trains (``train_spec`` returns it with each model, so a
    manifest can say what produced which numbers).

    Returns
    -------
    dict
        ``{"simd_path": the C core's vector path now, "cpu": cpu_name()}``.

    Examples
    --------
    >>> import icalign as ica
    >>> from icalign.manifest import trained_on
    >>> trained_on()["simd_path"] == ica.simd_path()
    True
    """
    return {"simd_path": _core.simd_path(), "cpu": cpu_name()}


def _trained_on_counts(trained: list) -> list:
    counts = {}
    for d in trained:
        where = d.get("trained_on")
        if where:
            key = (where["simd_path"], where["cpu"])
            counts[key] = counts.get(key, 0) + 1
    return [{"simd_path": path, "cpu": cpu, "models": n}
            for (path, cpu), n in sorted(counts.items())]


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second (e.g. '2026-01-31T12:00:00Z')."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_manifest(directory: str, manifest: dict) -> str:
    """Write ``manifest`` as ``directory/run.json`` (atomically); returns the path."""
    path = os.path.join(directory, MANIFEST_NAME)
    atomic_write_text(path, json.dumps(manifest, indent=1) + "\n")
    return path


def load_manifest(directory: str) -> Optional[dict]:
    """The ``run.json`` of a profile folder, or None when it has none."""
    path = os.path.join(directory, MANIFEST_NAME)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_manifest(profile: str, seeds: Iterable[int], executor, started: str,
                 marks: tuple, trained: list, loaded: list, planned: int,
                 results: dict, finished_earlier: list) -> dict:
    """The contents of ``run.json`` for one ``Runner.run``.

    Parameters
    ----------
    profile : str
        The profile's name.
    seeds : iterable of int
        The run's training seeds.
    executor : object
        The executor that trained (and, unless it is the serial one, evaluated).
    started : str
        When the run started (``utc_now``); it ends now.
    marks : tuple of 5 floats
        ``time.monotonic()`` at the start, the start of training, the start of the
        evaluation, the start of the figures and report, and the end.
    trained : list of dict
        ``tasks.train_spec``'s dicts of the models trained in this run.
    loaded : list of str
        The models the run needed that were finished already (loaded from their
        checkpoints, not trained).
    planned : int
        The (model, seed) pairs of the selected experiments.
    results : dict
        {name: result} of the experiments run now (their ``timing`` is summed).
    finished_earlier : list of str
        The selected experiments skipped because their results were complete.

    Returns
    -------
    dict
        JSON-ready: times (UTC ISO and wall-clock seconds), seeds, executor
        (``executor_info``), platform (this process's CPU, vector path, Python and
        NumPy), experiments, models (counts and names: trained, loaded, resumed from a
        checkpoint; ``trained_on``: how many were trained on each vector path and CPU)
        and the time split (training: its wall seconds and
        the sum of the models' training seconds; evaluation: its wall seconds and the
        seconds per part summed over the experiments, which exceed the wall seconds
        when workers evaluate side by side; outputs: figures and report).
    """
    t_start, t_train, t_eval, t_outputs, t_end = marks
    return {
        "profile": profile, "started": started, "ended": utc_now(),
        "wall_seconds": t_end - t_start, "seeds": list(seeds),
        "executor": executor_info(executor), "version": __version__,
        "platform": dict(trained_on(), python=platform.python_version(),
                         numpy=np.__version__),
        "experiments": {"run": list(results), "finished_earlier": list(finished_earlier)},
        "models": {"planned": planned, "trained": len(trained), "loaded": len(loaded),
                   "trained_names": [d["name"] for d in trained], "loaded_names": list(loaded),
                   "resumed_names": [d["name"] for d in trained if d.get("resumed_from")],
                   "trained_on": _trained_on_counts(trained)},
        "time": {"training": {"wall_seconds": t_eval - t_train,
                              "model_seconds": sum(d["seconds"] for d in trained)},
                 "evaluation": dict(sum_timings(r.get("timing") for r in results.values()),
                                    wall_seconds=t_outputs - t_eval),
                 "outputs_seconds": t_end - t_outputs}}
