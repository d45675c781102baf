"""Where trainings run: in this process, in local worker processes, or on a Dask cluster.

An executor has ``map(fn, iterable)`` in the sense of
``concurrent.futures.Executor.map`` (results in input order); ``fn`` must be a
top-level, picklable function. ``check_shared_folder(path)`` verifies before any
work starts that the executor's workers see ``path`` (the output folder that holds
the checkpoints) and ``close()`` (or a ``with`` block) releases what it started.

``SerialExecutor``: one call after the other in this process, with the thread count
the caller set (``icalign.set_num_threads``).

``ProcessExecutor``: ``workers`` local processes (the standard library's process
pool, started with ``spawn``), each running the C core on ``threads_per_worker``
threads, one task at a time. On a quiet machine two single-threaded trainings side
by side are as fast as one two-threaded training at the quick profile's sizes; when
other processes compete for the cores they are faster (the C core's threads
wait on each other at every layer whenever one is descheduled), so ``icalign
reproduce`` uses one single-threaded process per core by default (``default_jobs``). Results are bit-identical to the serial executor's (the C core's
results do not depend on its thread count). A worker process that dies (killed, out
of memory) stops the run with ``WorkerDied``; finished checkpoints are kept and
``--resume`` continues. Ctrl-C reaches the workers too: each saves its training's
checkpoint, and no worker starts a task queued to it after that; an idle worker
ignores it (the client then stops the pool).

``DaskExecutor``: every call is a ``dask.distributed`` task, either on a running
scheduler (``scheduler="tcp://host:8786"``) or on a ``LocalCluster`` of
``workers`` processes that this executor starts and stops. Assumptions and
guarantees:

- Shared folder. Workers write their checkpoints into the output folder, under the
  same absolute path as the client sees it (a shared file system, the usual HPC
  set-up). ``check_shared_folder`` writes a probe file from the client, has every
  worker read it and write its own, and fails with a clear message naming the
  workers that cannot.
- Threads. A task runs the C core with the worker's ``nthreads`` threads, never
  more: the worker's thread count is read inside the task and passed to
  ``icalign.set_num_threads``, and a per-process lock lets only one such task use
  the C core of a worker process at a time (a worker with 4 threads runs one
  training on 4 threads, not 4 trainings on 4 threads each). Workers started here
  declare a resource ``icalign=1`` and tasks ask for it, so the scheduler itself
  sends one task per worker at a time; for external workers, start them with
  ``--resources icalign=1`` to get the same balancing (without it the lock still
  keeps the thread bound, but queued tasks wait on their worker).
- Fault tolerance. When a worker process dies, the scheduler reruns its tasks on
  another (or the restarted) worker. Training tasks resume from the model's last
  atomic checkpoint (``icalign.train`` resumes bit-identically), so the results do
  not change. Dask gives up on a task after ``distributed.scheduler.allowed-failures``
  worker deaths (3 by default).
- Determinism. The C core gives bit-identical results for any thread count, and every
  task is a pure function of its arguments and the checkpoint on disk, so the
  results equal the serial executor's.
- Progress. ``map`` logs, on the client, each finished task as "k/n done" with the
  elapsed time and an ETA (weighted by ``weights`` when given, e.g. model FLOPs).

Dask is optional: ``pip install "icalign[cluster]"`` (in a checkout of the source:
``pip install ".[cluster]"``); it is imported only when a ``DaskExecutor`` is made.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Callable, Iterable, Optional, Sequence

from .planning import measure_rates, rate_table, rates_from_tables
from .profiles import format_seconds

DASK_HINT = ('the Dask executor needs dask.distributed; install it with '
             'pip install "icalign[cluster]" (or pip install ".[cluster]" in a checkout '
             'of the source, or pip install "dask[distributed]")')
RESOURCE = "icalign"

class ClusterError(RuntimeError):
    """A task could not be completed on the cluster (its workers kept dying)."""


class WorkerDied(RuntimeError):
    """A local worker process died while running a task (killed, or out of memory)."""


# One C core per process: a worker process runs at most one task in it at a time.
_CORE_LOCK = threading.Lock()


class _ProgressLog:
    """'k/n done' lines with elapsed time and an ETA weighted by ``weights``."""

    def __init__(self, weights: Sequence[float], log: Callable[[str], None], what: str):
        self.weights = [max(float(w), 0.0) for w in weights]
        self.total_weight = sum(self.weights) or float(len(self.weights)) or 1.0
        if not any(self.weights):
            self.weights = [1.0] * len(self.weights)
        self.log, self.what = log, what
        self.done_weight, self.done = 0.0, 0
        self.t0 = time.monotonic()

    def finished(self, index: int, label: str = "") -> None:
        self.done += 1
        self.done_weight += self.weights[index]
        elapsed = time.monotonic() - self.t0
        left = self.total_weight - self.done_weight
        eta = elapsed * left / self.done_weight if self.done_weight > 0 else float("inf")
        n = len(self.weights)
        tail = f", ETA ~{format_seconds(eta)}" if self.done < n else ""
        self.log(f"[{self.what}] {self.done}/{n} done{' (' + label + ')' if label else ''}, "
                 f"{format_seconds(elapsed)} elapsed{tail}")


def _default_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _weights_and_labels(items: list, weights, labels) -> tuple:
    """Default weights ``x.flops()`` and labels ``x.name`` when every item has them
    (a TrainSpec does); weights default to 1 otherwise, labels to ''."""
    if weights is None and all(callable(getattr(x, "flops", None)) for x in items):
        weights = [x.flops() for x in items]
    if labels is None and all(isinstance(getattr(x, "name", None), str) for x in items):
        labels = [x.name for x in items]
    weights = list(weights) if weights is not None else [1.0] * len(items)
    if len(weights) != len(items):
        raise ValueError(f"{len(weights)} weights for {len(items)} items")
    return weights, list(labels) if labels is not None else [""] * len(items)


def _heaviest_first(weights: Sequence[float]) -> list:
    """Indices in submission order: the longest tasks first shortens the wall time."""
    return sorted(range(len(weights)), key=lambda i: -weights[i])


def _collect(futures: dict, completed: Iterable, result: Callable,
             progress: "_ProgressLog", labels: list, ordered: bool):
    """Yields the results of ``futures`` ({future: input index}) as ``completed``
    (futures as they finish) delivers them: in input order, or with ``ordered=False``
    each as soon as it is done. ``result(future, label)`` returns a future's result or
    raises the executor's error."""
    results, next_out = {}, 0
    for fut in completed:
        i = futures[fut]
        value = result(fut, labels[i])
        progress.finished(i, labels[i])
        if not ordered:
            yield value
            continue
        results[i] = value
        while next_out in results:
            yield results.pop(next_out)
            next_out += 1


class _WorkerExecutor:
    """What the Dask and the process executors share: ``map`` / ``imap_unordered``
    submit every item at once, heaviest first, log the progress and stop the queued
    tasks when the caller stops reading (interrupted, or a task failed). A subclass
    gives ``_submit(fn, item, rank)`` (rank: higher runs first), ``_result(future,
    label)``, ``_as_completed(futures)``, ``_cancel(futures)`` and ``progress_name``;
    ``_prepare()`` runs before each call's submissions."""

    progress_name = "workers"

    def _prepare(self):
        pass

    def map(self, fn: Callable, iterable: Iterable, weights: Optional[Sequence[float]] = None,
            labels: Optional[Sequence[str]] = None) -> Iterable:
        """``fn(x)`` for every x as tasks of the workers, all submitted at once; yields
        the results in input order as they become available.

        weights (e.g. FLOPs per item; default ``x.flops()`` when every item has it, as
        a TrainSpec does) order the submission (heaviest first, which shortens the wall
        time) and weight the ETA of the progress lines; labels (default ``x.name``)
        name the finished items in them."""
        return self._run(fn, list(iterable), weights, labels, ordered=True)

    def imap_unordered(self, fn: Callable, iterable: Iterable,
                       weights: Optional[Sequence[float]] = None,
                       labels: Optional[Sequence[str]] = None) -> Iterable:
        """As ``map``, but yields each result as soon as its task is done."""
        return self._run(fn, list(iterable), weights, labels, ordered=False)

    def _run(self, fn, items, weights, labels, ordered):
        if not items:
            return
        weights, labels = _weights_and_labels(items, weights, labels)
        self._prepare()
        order = _heaviest_first(weights)
        futures = {self._submit(fn, items[i], len(items) - r): i for r, i in enumerate(order)}
        finished = False
        try:
            yield from _collect(futures, self._as_completed(futures), self._result,
                                _ProgressLog(weights, self.log, self.progress_name), labels,
                                ordered)
            finished = True
        finally:
            if not finished:
                self._cancel(futures)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class SerialExecutor:
    """Runs ``fn`` on each item in this process, in order, lazily (each item starts
    when the caller asks for its result): the default."""

    name = "local"
    workers = 1

    def __init__(self, log: Optional[Callable[[str], None]] = None):
        self.log = log or _default_log

    def map(self, fn: Callable, iterable: Iterable) -> Iterable:
        return map(fn, iterable)

    @staticmethod
    def measure_rates(specs: Sequence) -> Callable:
        """``planning.measure_rates`` in this process, on its threads."""
        return measure_rates(specs)

    def check_shared_folder(self, path) -> None:
        os.makedirs(os.fspath(path), exist_ok=True)

    def describe(self) -> str:
        return "this process"

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------- run on a worker
def _call_on_worker(fn: Callable, item):
    """Task body: ``fn(item)`` with the C core on the worker's own thread count."""
    from distributed import get_worker
    from . import set_num_threads
    try:
        worker = get_worker()
        nthreads = int(getattr(getattr(worker, "state", worker), "nthreads"))
    except ValueError:  # not inside a worker (e.g. a local fallback)
        nthreads = 1
    with _CORE_LOCK:
        set_num_threads(max(1, nthreads))
        return fn(item)


def _probe_on_worker(specs: list, dask_worker=None) -> dict:
    """``planning.rate_table`` on a worker (``Client.run``), on its thread count."""
    from . import set_num_threads
    nthreads = int(getattr(getattr(dask_worker, "state", dask_worker), "nthreads", 1) or 1)
    with _CORE_LOCK:
        set_num_threads(max(1, nthreads))
        return rate_table(specs)


def _probe_worker(probe: str, token: str) -> tuple:
    """Worker side of ``check_shared_folder``: read the client's probe, write our own."""
    host = socket.gethostname()
    try:
        with open(probe, encoding="utf-8") as f:
            seen = f.read().strip()
    except OSError as exc:
        return False, f"cannot read {probe} on host {host}: {exc.strerror or exc}"
    if seen != token:
        return False, f"{probe} on host {host} holds another probe (a different folder?)"
    mine = f"{probe}.{uuid.uuid4().hex}"
    try:
        with open(mine, "w", encoding="utf-8") as f:
            f.write(token)
    except OSError as exc:
        return False, f"cannot write into {os.path.dirname(probe)} on host {host}: " \
                      f"{exc.strerror or exc}"
    return True, mine


class DaskExecutor(_WorkerExecutor):
    """Runs tasks on a ``dask.distributed`` cluster (see the module docstring).

    scheduler: address of a running scheduler ("tcp://host:8786"), or
    workers: start a ``LocalCluster`` of this many worker processes on loopback,
        each with ``threads_per_worker`` threads (C core threads of its task).
    Exactly one of ``scheduler`` and ``workers`` is given.
    timeout: seconds to wait for the scheduler to answer; worker_wait: seconds to wait
        for its first worker (batch jobs, e.g. SLURM, may sit in a queue first).
    """

    name = "dask"
    progress_name = "cluster"
    evaluates = True  # the Runner runs each (experiment, seed) as a task too

    def __init__(self, scheduler: Optional[str] = None, workers: Optional[int] = None,
                 threads_per_worker: int = 1, log: Optional[Callable[[str], None]] = None,
                 timeout: float = 60.0, worker_wait: float = 1800.0):
        if (scheduler is None) == (workers is None):
            raise ValueError("give either scheduler (an address) or workers (a number of "
                             "local worker processes), not both or neither")
        for name, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        try:
            import distributed
        except ImportError as exc:
            raise ImportError(DASK_HINT) from exc
        self.log = log or _default_log
        self._cluster = None
        if workers is not None:
            import logging
            import warnings
            with warnings.catch_warnings():
                # the scheduler's small HTTP server moves off a busy port 8787 and says so
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                self._cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                    host="127.0.0.1", dashboard_address=None, resources={RESOURCE: 1},
                    silence_logs=logging.ERROR)
            self.client = distributed.Client(self._cluster, timeout=timeout)
        else:
            try:
                self.client = distributed.Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise ValueError(f"cannot connect to the Dask scheduler at {scheduler!r}: "
                                 f"{exc}") from exc
            if not self.client.scheduler_info().get("workers"):
                self.log(f"waiting up to {worker_wait:.0f} s for a worker of {scheduler}")
            try:
                self.client.wait_for_workers(1, timeout=worker_wait)
            except TimeoutError as exc:
                self.client.close()
                raise ValueError(f"the Dask scheduler at {scheduler!r} has no workers "
                                 f"(waited {worker_wait:.0f} s)") from exc
        self.scheduler = self.client.scheduler.address

    # ------------------------------------------------------------------ info
    def _workers_info(self) -> dict:
        info = self.client.scheduler_info(n_workers=-1) if _accepts_n_workers(self.client) \
            else self.client.scheduler_info()  # older versions list every worker
        return info["workers"]

    def worker_threads(self) -> dict:
        """{worker address: nthreads} of the workers connected now."""
        return {addr: int(w["nthreads"]) for addr, w in self._workers_info().items()}

    @property
    def workers(self) -> int:
        return len(self.worker_threads())

    def _use_resource(self) -> bool:
        info = self._workers_info()
        return bool(info) and all(w.get("resources", {}).get(RESOURCE, 0) >= 1
                                  for w in info.values())

    def describe(self) -> str:
        threads = self.worker_threads()
        kind = "local cluster" if self._cluster is not None else "Dask scheduler"
        return (f"{kind} {self.scheduler}: {len(threads)} worker(s), "
                f"{sum(threads.values())} thread(s)")

    # ------------------------------------------------------------------ work
    def check_shared_folder(self, path) -> None:
        """Fail with ValueError unless every worker can read and write ``path``."""
        path = os.path.abspath(os.fspath(path))
        os.makedirs(path, exist_ok=True)
        token = uuid.uuid4().hex
        probe = os.path.join(path, f".icalign-probe-{token}")
        with open(probe, "w", encoding="utf-8") as f:
            f.write(token)
        written = []
        try:
            answers = self.client.run(_probe_worker, probe, token)
            bad = {addr: msg for addr, (ok, msg) in answers.items() if not ok}
            for addr, (ok, msg) in answers.items():
                if ok:
                    written.append(msg)
                    if not os.path.exists(msg):
                        bad[addr] = f"wrote {msg}, which the client does not see"
            if bad:
                listed = "; ".join(f"{a}: {m}" for a, m in sorted(bad.items()))
                raise ValueError(
                    f"{len(bad)} of {len(answers)} Dask worker(s) cannot use the output folder "
                    f"{path} ({listed}). Workers write checkpoints there, so it must be on a "
                    f"file system shared with the client, under the same absolute path; pass "
                    f"an --out folder on such a file system")
        finally:
            for p in [probe] + written:
                try:
                    os.remove(p)
                except OSError:
                    pass

    def _prepare(self):
        # workers may have joined since the last call
        self._resource_kwargs = {"resources": {RESOURCE: 1}} if self._use_resource() else {}

    def _submit(self, fn, item, rank):
        return self.client.submit(_call_on_worker, fn, item, pure=False, priority=rank,
                                  **self._resource_kwargs)

    @staticmethod
    def _result(fut, label):
        import distributed
        try:
            return fut.result()
        except distributed.KilledWorker as exc:
            raise ClusterError(
                f"{label or 'a task'}: Dask gave up after its workers died repeatedly "
                f"while running it ({exc}); finished checkpoints are kept, rerun with "
                f"--resume") from exc

    @staticmethod
    def _as_completed(futures):
        import distributed
        return distributed.as_completed(list(futures))

    def _cancel(self, futures):
        self.client.cancel(list(futures))

    def measure_rates(self, specs: Sequence) -> Callable:
        """``rate(spec)``: each model shape's training FLOP/s measured on every worker
        at once with its thread count (``planning.rate_table``), averaged over workers."""
        tables = self.client.run(_probe_on_worker, list(specs))
        return rates_from_tables(list(tables.values()))

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None


# ---------------------------------------------------------------- local processes
# Set in each pool worker: the barrier makes all workers start a probe together; the
# stop event, set by the client when a run is interrupted or fails, keeps workers from
# starting the tasks already queued to them.
_POOL_BARRIER = None
_POOL_STOP = None


class RunStopped(RuntimeError):
    """A queued task that a worker did not start because its run had stopped."""


def _start_pool_worker(threads: int, barrier, stop) -> None:
    global _POOL_BARRIER, _POOL_STOP
    # A terminal's Ctrl-C reaches every process of the group: an idle worker, waiting
    # for its next task in the pool's own code, would die of it with a traceback. Idle
    # workers ignore it (the client stops the pool); a running task takes it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import set_num_threads
    set_num_threads(threads)
    _POOL_BARRIER, _POOL_STOP = barrier, stop
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _run_in_pool(fn: Callable, item):
    if _POOL_STOP is not None and _POOL_STOP.is_set():
        raise RunStopped("the run stopped before this task started")
    try:
        with _ctrl_c_interrupts():
            return fn(item)
    except KeyboardInterrupt:
        # Ctrl-C reaches the workers with the client; set here, the stop beats the next
        # queued task, which a worker takes before the client has handled the signal
        if _POOL_STOP is not None:
            _POOL_STOP.set()
        raise


@contextlib.contextmanager
def _ctrl_c_interrupts():
    """Ctrl-C raises KeyboardInterrupt inside the block (a training then saves its
    checkpoint); after it, the handler before it (in a pool worker: ignore) is back."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread takes signals (and may set their handlers)
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        # None: a handler set outside Python, which cannot be put back; ignore instead
        signal.signal(signal.SIGINT, signal.SIG_IGN if previous is None else previous)


def _exit_with_parent(parent: int) -> None:
    # A pool worker otherwise finishes its training after the run that started it was
    # killed, and would then write checkpoints beside the run that resumes it.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _probe_in_pool(specs: list) -> dict:
    """Pool task: ``planning.rate_table`` once every worker holds such a task, so the
    rates are those of trainings running side by side."""
    with _ctrl_c_interrupts():
        try:
            _POOL_BARRIER.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass  # a worker is missing: measure anyway
        return rate_table(specs)


def _main_script() -> Optional[str]:
    """The file of the main module when spawned worker processes import it (a script
    run by its path, or a module run with ``-m``), else None (a package's
    ``__main__``, as ``python -m icalign``, or an interactive session)."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None and (name == "__main__" or name.endswith(".__main__")):
        return None  # multiprocessing does not import these again
    path = getattr(main, "__file__", None)
    return path if isinstance(path, str) and path else None


def default_jobs() -> int:
    """The number of local worker processes ``icalign reproduce`` uses by default: one
    per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ProcessExecutor(_WorkerExecutor):
    """Runs tasks in ``workers`` local processes of ``threads_per_worker`` C-core
    threads each (see the module docstring).

    Examples
    --------
    >>> from icalign.executors import ProcessExecutor
    >>> with ProcessExecutor(workers=2, log=lambda msg: None) as ex:
    ...     list(ex.map(abs, [-3, 1, -2]))
    [3, 1, 2]
    """

    name = "processes"
    progress_name = "processes"

    def __init__(self, workers: int, threads_per_worker: int = 1,
                 log: Optional[Callable[[str], None]] = None):
        for name, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.workers, self.threads_per_worker = workers, threads_per_worker
        self.log = log or _default_log
        # spawn, not fork: a forked child inherits the parent's OpenMP runtime state
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_start_pool_worker,
            initargs=(threads_per_worker, context.Barrier(workers), self._stop))

    def worker_threads(self) -> dict:
        """{worker: C-core threads} of the worker processes."""
        return {f"process {i + 1}": self.threads_per_worker for i in range(self.workers)}

    def describe(self) -> str:
        return (f"{self.workers} local process(es) of {self.threads_per_worker} "
                f"C-core thread(s) each")

    def check_shared_folder(self, path) -> None:
        os.makedirs(os.fspath(path), exist_ok=True)  # the workers run on this machine

    def _submit(self, fn, item, rank):
        # the pool starts tasks in submission order, which is the rank's
        return self._pool.submit(_run_in_pool, fn, item)

    @staticmethod
    def _result(fut, label):
        try:
            return fut.result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            script = _main_script()
            # a script that starts the run at import starts it again in each worker,
            # which then dies at start-up: the usual cause when icalign is called so
            hint = (f"; if icalign is started from the Python script {script}, the call "
                    f"must be under `if __name__ == \"__main__\":` (worker processes "
                    f"import the script)" if script else "")
            raise WorkerDied(
                f"{label or 'a task'}: a worker process died while running it (killed, "
                f"or out of memory); finished checkpoints are kept, rerun with "
                f"--resume{hint}") from exc

    @staticmethod
    def _as_completed(futures):
        return concurrent.futures.as_completed(futures)

    def _cancel(self, futures):
        self._stop.set()  # interrupted, or a task failed: start nothing more
        for fut in futures:
            fut.cancel()

    def measure_rates(self, specs: Sequence) -> Callable:
        """``rate(spec)``: each model shape's training FLOP/s measured in every worker
        process at once (``planning.rate_table``), so it is the rate of trainings
        side by side, averaged over workers."""
        specs = list(specs)
        return rates_from_tables(list(self._pool.map(_probe_in_pool, [specs] * self.workers)))

    def close(self) -> None:
        """Waits for the tasks running in the workers, then stops them. Interrupted
        (Ctrl-C) while it waits, it stops the workers at once: a training then loses
        what it did since its last checkpoint, which stays whole."""
        self._stop.set()
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        except KeyboardInterrupt:
            # the standard pool offers no other way to stop a running task
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise

    def __exit__(self, kind, value, traceback):
        if kind is KeyboardInterrupt:
            self.log("interrupted: waiting for the trainings in the worker processes to "
                     "save their checkpoints (Ctrl-C again stops them at once)")
        self.close()
        return False


def _accepts_n_workers(client) -> bool:
    import inspect
    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


def make_executor(scheduler: Optional[str] = None, workers: Optional[int] = None,
                  threads_per_worker: int = 1, log: Optional[Callable[[str], None]] = None,
                  jobs: Optional[int] = 1):
    """The executor the CLI options ask for: Dask for ``scheduler`` or ``workers``;
    else ``jobs`` local worker processes (``ProcessExecutor``), or the serial
    executor for ``jobs=1``; ``jobs=None`` means ``default_jobs()``."""
    if scheduler is not None or workers is not None:
        return DaskExecutor(scheduler=scheduler, workers=workers,
                            threads_per_worker=threads_per_worker, log=log)
    jobs = default_jobs() if jobs is None else jobs
    if jobs == 1:
        return SerialExecutor(log=log)
    return ProcessExecutor(jobs, threads_per_worker=threads_per_worker, log=log)
