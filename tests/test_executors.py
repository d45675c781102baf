"""Executors: serial and Dask (a LocalCluster on loopback), thread bounds, the
shared-folder check, and a worker killed in the middle of a training."""
import functools
import json
import os
import signal
import sys
import threading
import time

import pytest

import icalign as ica
from icalign import executors, planning
from icalign.profiles import TrainSpec
from icalign.runner import Runner, train_spec
from result_equality import assert_same_checkpoint, without_wall_clock

distributed = pytest.importorskip("distributed")

CFG = dict(n_dims=5, n_points=20, n_embd=16, n_layer=2, n_head=2)


def train_job(job):
    """A training to a checkpoint, as the runner's tasks do (top level: picklable)."""
    import icalign as ica
    cfg = ica.ModelConfig(**job["config"])
    model = ica.Transformer(cfg, seed=job["seed"])
    h = ica.train(model, ica.AlignmentTask(cfg.n_dims, cfg.n_points), steps=job["steps"],
                  batch_size=job["batch_size"], lr=1e-3, seed=job["seed"], progress=False,
                  checkpoint=job["path"], checkpoint_every=job.get("every", 60.0))
    return {"resumed_from": h.resumed_from, "steps": h.steps_done,
            "threads": ica.get_num_threads(), "pid": os.getpid()}


def threads_job(x):
    import icalign as ica
    t0 = time.monotonic()
    time.sleep(0.2)
    return {"x": x, "threads": ica.get_num_threads(), "pid": os.getpid(),
            "start": t0, "end": time.monotonic()}


def square(x):
    return x * x


@pytest.fixture(scope="module")
def cluster():
    ex = executors.DaskExecutor(workers=2, threads_per_worker=1, log=lambda m: None)
    yield ex
    ex.close()


def test_makespan():
    assert planning.makespan([3, 3, 2, 2, 2], 2) == 7  # longest first, not the optimum 6
    assert planning.makespan([5, 1, 1], 4) == 5
    assert planning.makespan([1] * 6, 1) == 6
    with pytest.raises(ValueError):
        planning.makespan([1], 0)


def test_serial_executor_maps_in_order(tmp_path):
    with executors.make_executor() as ex:
        assert isinstance(ex, executors.SerialExecutor)
        assert list(ex.map(square, [3, 1, 2])) == [9, 1, 4]
        ex.check_shared_folder(tmp_path / "out")
        assert (tmp_path / "out").is_dir()


def test_missing_dask_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"icalign\[cluster\]") as info:
        executors.DaskExecutor(workers=1)
    # and the install from a checkout of the source, as the README does it
    assert 'pip install ".[cluster]"' in str(info.value)


def test_executor_arguments_are_checked():
    with pytest.raises(ValueError, match="either"):
        executors.DaskExecutor()
    with pytest.raises(ValueError, match="either"):
        executors.DaskExecutor(scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(ValueError, match="workers"):
        executors.DaskExecutor(workers=0)


def test_dask_map_keeps_order_and_reports_progress(cluster):
    lines = []
    cluster.log = lines.append
    try:
        out = list(cluster.map(square, range(6), weights=[1, 5, 2, 2, 1, 1],
                               labels=[f"m{i}" for i in range(6)]))
    finally:
        cluster.log = lambda m: None
    assert out == [x * x for x in range(6)]
    assert len(lines) == 6 and lines[-1].startswith("[cluster] 6/6 done")
    assert "ETA" in lines[0]
    assert cluster.workers == 2 and "2 worker(s)" in cluster.describe()


def test_each_worker_uses_its_own_thread_count_one_task_at_a_time():
    with executors.DaskExecutor(workers=1, threads_per_worker=2, log=lambda m: None) as ex:
        out = list(ex.map(threads_job, range(3)))
    assert [o["threads"] for o in out] == [2 if ica._core.has_openmp() else 1] * 3
    spans = sorted((o["start"], o["end"]) for o in out)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), \
        "two tasks ran the C core of one worker at once"


def test_shared_folder_probe(cluster, tmp_path):
    cluster.check_shared_folder(tmp_path / "shared")
    assert os.listdir(tmp_path / "shared") == []   # probes cleaned up


def _hide_probes_from_this_worker():
    """Make this worker unable to open files under any *icalign-probe* path (as if the
    folder were not mounted on its host)."""
    import builtins
    from icalign import executors as mod

    def blind_open(path, *args, **kwargs):
        if "icalign-probe" in os.fspath(path):
            raise FileNotFoundError(2, "No such file or directory")
        return builtins.open(path, *args, **kwargs)
    mod.open = blind_open


def _restore_open():
    from icalign import executors as mod
    mod.__dict__.pop("open", None)


def test_shared_folder_probe_names_the_blind_worker(cluster, tmp_path):
    addr = sorted(cluster.worker_threads())[0]
    cluster.client.run(_hide_probes_from_this_worker, workers=[addr])
    try:
        with pytest.raises(ValueError, match="1 of 2 Dask worker") as info:
            cluster.check_shared_folder(tmp_path / "out")
        assert addr in str(info.value) and "shared with the client" in str(info.value)
    finally:
        cluster.client.run(_restore_open)


def test_dask_training_equals_serial_training(cluster, tmp_path):
    jobs = [dict(config=CFG, seed=s, steps=20, batch_size=8,
                 path=str(tmp_path / d / f"s{s}.npz")) for d in ("dask", "serial") for s in (0, 1)]
    out = list(cluster.map(train_job, jobs[:2]))
    assert [o["threads"] for o in out] == [1, 1]
    list(executors.SerialExecutor().map(train_job, jobs[2:]))
    for a, b in zip(jobs[:2], jobs[2:]):
        assert_same_checkpoint(a["path"], b["path"])
    with pytest.raises(AssertionError):   # and the seeds do differ
        assert_same_checkpoint(jobs[0]["path"], jobs[1]["path"])


def test_killed_worker_resumes_from_its_checkpoint(cluster, tmp_path):
    """The runner's own training task on a worker killed (SIGKILL) mid-training: Dask
    reruns it, it resumes from the checkpoint and ends bit-identical."""
    steps = 1500
    spec = TrainSpec(ica.ModelConfig(**CFG), steps=steps, batch_size=32, lr=1e-3, seed=3)
    fn = functools.partial(train_spec, models_dir=str(tmp_path / "dask"), checkpoint_every=0.05,
                           progress=False)
    path = str(tmp_path / "dask" / (spec.name + ".npz"))
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("out", list(cluster.map(fn, [spec]))))
    runner.start()
    killed = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and killed is None:
        time.sleep(0.05)
        if not os.path.exists(path):
            continue
        try:
            step = ica.load_checkpoint(path)["step"]
        except ValueError:
            continue
        if not 0 < step < steps * 0.7:
            continue
        busy = [a for a, keys in cluster.client.processing().items() if keys]
        if busy:
            pid = cluster.client.run(os.getpid, workers=busy)[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed = (pid, step)
    runner.join(120)
    assert killed is not None, "the training ended before a checkpoint could be interrupted"
    (out,) = box["out"]
    assert out["resumed_from"] >= killed[1] > 0 and out["steps_done"] == steps
    reference = functools.partial(train_spec, models_dir=str(tmp_path / "serial"),
                                  checkpoint_every=1e9, progress=False)
    list(executors.SerialExecutor().map(reference, [spec]))
    assert_same_checkpoint(path, str(tmp_path / "serial" / (spec.name + ".npz")))


def test_smoke_on_two_workers_equals_the_local_run(cluster, tmp_path):
    """icalign reproduce on a 2-worker LocalCluster: the same JSON numbers and checkpoints
    as in this process (two seeds, so the seed path runs too)."""
    quiet = dict(progress=False, log=lambda m: None, seeds=2)
    local = Runner("smoke", out=str(tmp_path / "local"), **quiet).run(figures=False)
    lines = []
    cluster.log = lines.append
    try:
        dask = Runner("smoke", out=str(tmp_path / "dask"), executor=cluster,
                      **quiet).run(figures=False)
    finally:
        cluster.log = lambda m: None
    assert without_wall_clock(dask) == without_wall_clock(local)
    # 10 models x 2 seeds of training, then 10 experiments x 2 seeds of evaluation
    assert sum(line.startswith("[cluster] 20/20 done") for line in lines) == 2
    # the evaluation timings travel back from the workers into the JSON and run.json
    assert all(r["timing"]["seconds"] > 0 for r in dask.values())
    with open(tmp_path / "dask" / "smoke" / "run.json", encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["executor"]["kind"] == "dask" and manifest["executor"]["workers"] == 2
    assert manifest["time"]["evaluation"]["critic"] > 0
    models = sorted(os.listdir(tmp_path / "local" / "smoke" / "models"))
    assert len(models) == 20 and models == sorted(os.listdir(tmp_path / "dask" / "smoke" / "models"))
    for name in models:
        assert_same_checkpoint(tmp_path / "local" / "smoke" / "models" / name,
                               tmp_path / "dask" / "smoke" / "models" / name)


def test_connects_to_a_running_scheduler(cluster):
    with executors.make_executor(scheduler=cluster.scheduler, log=lambda m: None) as ex:
        assert isinstance(ex, executors.DaskExecutor) and ex.workers == 2
        assert list(ex.map(square, [4, 5])) == [16, 25]
    assert list(cluster.map(square, [2])) == [4]      # closing a client leaves the cluster up


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot connect to the Dask scheduler"):
        executors.DaskExecutor(scheduler="tcp://127.0.0.1:9", timeout=1)


def test_reproduce_stops_before_training_when_a_worker_cannot_see_the_folder(cluster,
                                                                             tmp_path):
    addr = sorted(cluster.worker_threads())[0]
    cluster.client.run(_hide_probes_from_this_worker, workers=[addr])
    try:
        runner = Runner("smoke", out=str(tmp_path), executor=cluster, progress=False,
                        log=lambda m: None)
        with pytest.raises(ValueError, match="cannot use the output folder"):
            runner.run(["a"], figures=False)
    finally:
        cluster.client.run(_restore_open)
    assert os.listdir(tmp_path / "smoke" / "models") == []      # nothing was trained


def die(x):
    os._exit(1)


def test_a_task_that_keeps_killing_workers_is_a_clear_error():
    import dask
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with executors.DaskExecutor(workers=1, log=lambda m: None) as ex:
            with pytest.raises(executors.ClusterError, match="rerun with --resume"):
                list(ex.map(die, [1], labels=["E8-L2"]))


@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_a_scheduler_without_workers_is_a_clear_error():
    empty = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None)
    lines = []
    try:
        with pytest.raises(ValueError, match="has no workers"):
            executors.DaskExecutor(scheduler=empty.scheduler_address, worker_wait=0.5,
                                   log=lines.append)
    finally:
        empty.close()
    assert lines and "waiting up to" in lines[0]
