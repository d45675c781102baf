"""The local process executor (the default of ``icalign reproduce`` on a machine with
several cores): results in input order and bit-identical to the serial executor,
each worker on its own thread count, the side-by-side rate probe, a dead worker as
a clear error, and no worker outliving the run that started it."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import icalign as ica
from icalign import executors
from icalign.cli import main
from icalign.profiles import PROFILES
from icalign.registry import plan
from icalign.runner import Runner
from result_equality import assert_same_checkpoint, without_wall_clock

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(ica.__file__)))


def threads_and_pid(x):
    import icalign as ica
    return x, ica.get_num_threads(), os.getpid()


def die(x):
    if x == 2:
        os._exit(3)
    return x


@pytest.fixture(scope="module")
def pool():
    with executors.ProcessExecutor(workers=2, log=lambda m: None) as ex:
        yield ex


def test_map_keeps_input_order_and_reports_progress():
    lines = []
    with executors.ProcessExecutor(workers=2, log=lines.append) as ex:
        out = list(ex.map(threads_and_pid, range(6), weights=[1, 5, 2, 2, 1, 1],
                          labels=[f"m{i}" for i in range(6)]))
    assert [o[0] for o in out] == list(range(6))
    assert len(lines) == 6 and lines[-1].startswith("[processes] 6/6 done")
    assert "ETA" in lines[0]
    assert len({o[2] for o in out} - {os.getpid()}) >= 1   # ran in other processes


def sleep_then_return(seconds):
    time.sleep(seconds)
    return seconds


def test_imap_unordered_yields_each_result_when_done(pool):
    """The runner reads trainings this way, so its 'models ready' count and time left
    follow the models that are really done."""
    assert list(pool.imap_unordered(sleep_then_return, [1.5, 0.05])) == [0.05, 1.5]
    assert list(pool.map(sleep_then_return, [0.5, 0.05])) == [0.5, 0.05]


def test_each_worker_runs_the_core_on_its_own_thread_count():
    expected = 2 if ica._core.has_openmp() else 1
    with executors.ProcessExecutor(workers=1, threads_per_worker=2, log=lambda m: None) as ex:
        assert {o[1] for o in ex.map(threads_and_pid, range(3))} == {expected}
        assert ex.worker_threads() == {"process 1": 2}
        assert "1 local process(es) of 2 C-core thread(s)" in ex.describe()


def test_arguments_are_checked():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be an int >= 1"):
            executors.ProcessExecutor(workers=bad)
    with pytest.raises(ValueError, match="threads_per_worker"):
        executors.ProcessExecutor(workers=1, threads_per_worker=0)
    assert isinstance(executors.make_executor(jobs=1), executors.SerialExecutor)
    assert executors.default_jobs() >= 1


def test_a_dead_worker_is_a_clear_error():
    with executors.ProcessExecutor(workers=1, log=lambda m: None) as ex:
        with pytest.raises(executors.WorkerDied, match="m2: a worker process died.*--resume"):
            list(ex.map(die, range(4), labels=[f"m{i}" for i in range(4)]))


def test_rates_are_probed_in_every_worker(pool):
    specs = plan(PROFILES["smoke"], None)[:3]
    rate = pool.measure_rates(specs)
    assert all(np.isfinite(rate(s)) and rate(s) > 0 for s in specs)


def test_smoke_in_worker_processes_equals_the_serial_run(pool, tmp_path):
    """Two seeds, so the seed path runs too; every JSON number and checkpoint equal."""
    quiet = dict(progress=False, log=lambda m: None, seeds=2)
    serial = Runner("smoke", out=str(tmp_path / "serial"), **quiet).run(figures=False)
    pooled = Runner("smoke", out=str(tmp_path / "pool"), executor=pool,
                    **quiet).run(figures=False)
    assert without_wall_clock(pooled) == without_wall_clock(serial)
    with open(tmp_path / "pool" / "smoke" / "run.json", encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["executor"]["kind"] == "processes"
    assert manifest["executor"]["workers"] == 2 and manifest["executor"]["threads"] == 2
    models = sorted(os.listdir(tmp_path / "serial" / "smoke" / "models"))
    assert len(models) == 20 and models == sorted(os.listdir(tmp_path / "pool" / "smoke" / "models"))
    for name in models:
        assert_same_checkpoint(tmp_path / "serial" / "smoke" / "models" / name,
                               tmp_path / "pool" / "smoke" / "models" / name)


def test_cli_default_and_jobs_option(tmp_path, capsys):
    assert main(["reproduce", "--profile", "smoke", "--only", "tf_vs_gd", "--jobs", "2",
                 "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert "2 local process(es) of 1 C-core thread(s)" in capsys.readouterr().err
    with open(tmp_path / "a" / "smoke" / "run.json", encoding="utf-8") as f:
        assert json.load(f)["executor"]["kind"] == "processes"
    assert main(["reproduce", "--profile", "smoke", "--only", "tf_vs_gd", "--threads", "1",
                 "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    with open(tmp_path / "b" / "smoke" / "run.json", encoding="utf-8") as f:
        assert json.load(f)["executor"]["kind"] == "local"   # --threads: one process
    with pytest.raises(SystemExit):
        main(["reproduce", "--profile", "smoke", "--jobs", "0", "--out", str(tmp_path / "c")])
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err
    assert main(["plan", "--profile", "smoke", "--jobs", "2"]) == 0
    assert "wall time on this machine (2 local process(es)" in capsys.readouterr().out


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie has exited
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_workers_do_not_outlive_a_killed_run(tmp_path):
    """A run killed with SIGKILL leaves no worker process training on behind it."""
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {PACKAGE_PARENT!r})
        from icalign.executors import ProcessExecutor

        def main():
            ex = ProcessExecutor(workers=1, log=lambda m: None)
            fut = ex._pool.submit(os.getpid)
            print(fut.result(), flush=True)
            ex._pool.submit(time.sleep, 60)
            time.sleep(0.5)
            os.kill(os.getpid(), 9)

        if __name__ == "__main__":
            main()
    """)
    path = tmp_path / "killed_run.py"
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                         timeout=120)
    worker = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _running(worker):
            return
        time.sleep(0.2)
    os.kill(worker, 9)
    pytest.fail(f"worker process {worker} still ran 10 s after its run was killed")


INTERRUPTED_RUN = """
import os, signal, sys, time
# as in a terminal, even when the test runs where SIGINT is ignored (a background job)
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {parent!r})
from icalign.executors import ProcessExecutor

def busy(x):
    print("started", x, flush=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        sum(range(1000))
    print("finished", x, flush=True)
    return x

if __name__ == "__main__":
    try:
        with ProcessExecutor(2, log=lambda m: None) as ex:
            list(ex.map(busy, range(6)))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def _ctrl_c_when(script, ready, timeout, settle=0.0):
    """Run ``script`` in a session of its own and, once ``ready(its output so far)``,
    send SIGINT to its process group, as a terminal's Ctrl-C does. Returns (the
    process, its whole output, seconds from the signal to its exit)."""
    import signal
    log = script.with_suffix(".out")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready(log.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        time.sleep(settle)
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        proc.wait(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, log.read_text(), took


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a process group")
def test_ctrl_c_stops_the_run_without_starting_queued_tasks(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) ends the run within
    seconds; the queued tasks are not started after it (they would each run to the end)."""
    path = tmp_path / "interrupted_run.py"
    path.write_text(INTERRUPTED_RUN.format(parent=PACKAGE_PARENT))
    proc, text, took = _ctrl_c_when(path, lambda log: log.count("started") >= 2, 60)
    assert "interrupted" in text and text.count("started") == 2 and "finished" not in text, text
    assert "Traceback" not in text, text
    assert took < 10


IDLE_WORKERS_RUN = """
import multiprocessing, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal
sys.path.insert(0, {parent!r})
from icalign import runner
from icalign.cli import main

def evaluate_slowly(self, name, remote):
    # the local process executor evaluates in this process: its workers wait idle
    print("evaluating; workers", *[p.pid for p in multiprocessing.active_children()],
          flush=True)
    time.sleep(60)

if __name__ == "__main__":
    runner.Runner._run_one = evaluate_slowly
    code = main(["reproduce", "--profile", "smoke", "--only", "tf_vs_gd", "--jobs", "2",
                 "--out", {out!r}, "--no-progress"])
    print("exit", code, "children left", len(multiprocessing.active_children()), flush=True)
    sys.exit(code)
"""


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a process group")
def test_ctrl_c_with_idle_workers_prints_no_traceback(tmp_path):
    """Ctrl-C while the workers wait for work (here: while the run evaluates) reaches
    them too, as a terminal sends it to the whole process group: the run ends with its
    own 'interrupted' lines only, promptly, and stops its workers."""
    path = tmp_path / "idle_workers_run.py"
    path.write_text(IDLE_WORKERS_RUN.format(parent=PACKAGE_PARENT, out=str(tmp_path / "out")))
    # 0.2 s after "evaluating" the workers are back waiting on the pool's queue
    proc, text, _ = _ctrl_c_when(path, lambda log: "evaluating" in log, 120, settle=0.2)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "interrupted: checkpoints are kept" in text and proc.returncode == 130, text
    assert "exit 130 children left 0" in text, text
    workers = [int(p) for p in text.split("evaluating; workers", 1)[1].split("\n", 1)[0].split()]
    assert workers and not any(_running(pid) for pid in workers), text


UNGUARDED_SCRIPT = """
import sys
sys.path.insert(0, {parent!r})
from icalign.cli import main
main(["reproduce", "--profile", "smoke", "--only", "tf_vs_gd", "--jobs", "2",
      "--out", {out!r}, "--no-progress"])
"""


def test_a_script_without_the_main_guard_is_named_as_the_likely_cause(tmp_path):
    """Each spawned worker imports the main script, which starts the run again there and
    dies of it: the error says so, not only 'killed, or out of memory'."""
    path = tmp_path / "unguarded.py"
    path.write_text(UNGUARDED_SCRIPT.format(parent=PACKAGE_PARENT, out=str(tmp_path / "out")))
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=300)
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("icalign: error: E8-") and "a worker process died" in error, \
        proc.stderr
    assert f"the Python script {path}, the call must be under " \
           f"`if __name__ == \"__main__\":`" in error, error
