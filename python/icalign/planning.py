"""How long a reproduction takes: model-hours, wall time here and on W workers.

``icalign plan`` sums the training FLOPs of every (model, seed) of a profile and
turns them into time with a throughput: measured on this machine by a few timed
training steps of every distinct model shape of the plan (``measure_rates``: the
C core's efficiency differs about twofold between n_embd 12 and 72, so one probe
does not fit all), or the assumed throughput when measuring is skipped. An executor
with several workers measures in all of them at once (``measure_rates`` of
``executors.ProcessExecutor`` and ``DaskExecutor``), so the rates are those of
trainings side by side. Wall time on W workers assumes each worker trains at those
rates and the longest trainings start first (``makespan``); evaluation,
which is a small fraction, is not counted.
"""
from __future__ import annotations

import heapq
import time
from typing import Callable, Iterable, Sequence, Union


def makespan(durations: Iterable[float], workers: int) -> float:
    """Wall time of independent jobs of the given durations on ``workers`` equal
    workers when the longest job is started first on the first free worker (the
    order the executors' ``map`` submits in); at least
    max(durations) and sum(durations) / workers."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    free = [0.0] * workers
    for d in sorted((float(d) for d in durations), reverse=True):
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def measure_flops_per_second(spec, steps: int = 2, max_batch: int = 64) -> float:
    """Training throughput of this machine for ``spec``'s model: FLOPs per second of
    ``steps`` timed steps (batch at most ``max_batch``, to keep the measurement to a
    few seconds; the FLOPs scale with the batch) after one warm-up step, on the C
    core's current threads. Each step samples its batch, as ``train`` does."""
    from .model import Transformer
    from .task import AlignmentTask
    batch_size = min(int(spec.batch_size), int(max_batch))
    model = Transformer(spec.config, seed=0)
    task = AlignmentTask(spec.config.n_dims, spec.config.n_points)
    seconds = 0.0
    for s in range(steps + 1):  # step 0 warms up: allocations, caches
        t0 = time.perf_counter()
        batch = task.sample(batch_size, seed=0, offset=s * batch_size)
        model.step(batch.xs, batch.ys, batch.rs, lr=spec.lr)
        seconds += (time.perf_counter() - t0) if s > 0 else 0.0
    per_step = spec.flops() / max(spec.steps, 1) * batch_size / spec.batch_size
    return per_step * steps / max(seconds, 1e-9)


def shape_key(spec) -> tuple:
    """What a training's speed depends on: the model config and the batch size."""
    return (spec.config, spec.batch_size)


def rate_table(specs: Sequence, steps: int = 2, max_batch: int = 64) -> dict:
    """{``shape_key``: FLOP/s}: ``measure_flops_per_second`` once for each distinct
    model shape of ``specs``, on the C core's current threads."""
    measured = {}
    for spec in specs:
        if shape_key(spec) not in measured:
            measured[shape_key(spec)] = measure_flops_per_second(spec, steps=steps,
                                                                 max_batch=max_batch)
    return measured


def rates_from_tables(tables: Sequence[dict]) -> Callable:
    """``rate(spec)`` from one or more ``rate_table`` results (one per worker that
    measured): the mean of the tables' FLOP/s for the spec's shape."""
    keys = set().union(*tables)
    mean = {k: sum(t[k] for t in tables if k in t) / sum(1 for t in tables if k in t)
            for k in keys}

    def rate(spec) -> float:
        return mean[shape_key(spec)]
    return rate


def measure_rates(specs: Sequence, steps: int = 2, max_batch: int = 64) -> Callable:
    """Throughput of this machine per model shape (``rate_table``). Returns
    ``rate(spec)``, the FLOP/s measured for that spec's shape."""
    return rates_from_tables([rate_table(specs, steps=steps, max_batch=max_batch)])


def plan_times(specs: Sequence, seeds: int, rate: Union[float, Callable],
               workers: Sequence[int] = ()) -> dict:
    """{"trainings", "tflop", "model_hours", "wall_here", "wall_on": {W: seconds}} for
    every spec trained with ``seeds`` seeds at ``rate`` FLOP/s: a number, or a
    function of the spec (``measure_rates``)."""
    rate_of = rate if callable(rate) else (lambda spec: rate)
    rates = [rate_of(s) for s in specs]
    if min(rates, default=1.0) <= 0:
        raise ValueError(f"rates must be > 0, got {min(rates)}")
    durations = [s.flops() / r for s, r in zip(specs, rates) for _ in range(seeds)]
    total = sum(durations)
    return {"trainings": len(durations), "tflop": sum(s.flops() for s in specs) * seeds / 1e12,
            "model_hours": total / 3600.0, "wall_here": total,
            "wall_on": {int(w): makespan(durations, int(w)) for w in workers}}
