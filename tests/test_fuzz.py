"""Fuzzing of the whole public API (tests/fuzz_api.py) in a child process.

The fuzz body runs in a subprocess so that a crash in the C core (a segfault,
an abort) fails this test with the signal, the last case and faulthandler's
traceback instead of killing pytest.

Profiles: the bounded one (derandomized: the same cases every run, a few
seconds) runs in the normal suite. ``ICALIGN_FUZZ=long`` runs the long one
(2000 examples per target, random seed; minutes); ``ICALIGN_FUZZ=N`` runs N
examples per target. The number of cases is printed (``-s``) and checked.
"""
import json
import os
import subprocess
import sys

import icalign as ica

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(ica.__file__)))
BOUNDED_EXAMPLES = 100
LONG_EXAMPLES = 2000


def run_fuzz(tmp_path, *args, timeout=1800):
    """Run tests/fuzz_api.py; returns (summary dict or None, returncode, diagnostics)."""
    last = tmp_path / "last_case.txt"
    env = dict(os.environ, ICALIGN_FUZZ_LAST_CASE=str(last), PYTHONFAULTHANDLER="1")
    # the icalign this test imported (an installed one, or a sanitizer build's copy)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_api.py"), *args],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp_path)
    summary = None
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            summary = json.loads(line)
            break
    diag = ""
    if proc.returncode < 0 or summary is None:
        case = last.read_text() if last.exists() else "(none recorded)"
        diag = (f"fuzz process died (return code {proc.returncode}); last case: {case}\n"
                f"stderr tail:\n{proc.stderr[-6000:]}")
    return summary, proc.returncode, diag


def _profile():
    value = os.environ.get("ICALIGN_FUZZ", "")
    if value == "long":
        return LONG_EXAMPLES, ["--seed", str(int.from_bytes(os.urandom(4), "little"))]
    if value.isdigit():
        return int(value), []
    return BOUNDED_EXAMPLES, []


def test_fuzz_public_api(tmp_path):
    examples, extra = _profile()
    summary, rc, diag = run_fuzz(tmp_path, "--examples", str(examples), *extra)
    assert rc >= 0 and summary is not None, diag
    failures = "\n\n".join(f"[{f['target']}]\n" + "\n".join(f["errors"])
                           for f in summary["failures"])
    seed = f", {' '.join(extra)}" if extra else ""  # a random seed, to rerun the same cases
    assert not summary["failures"], f"contract violations{seed}:\n{failures}"
    assert rc == 0
    print(f"\nfuzz: {summary['total']} cases ({examples} examples per target{seed}): "
          f"{summary['cases']}")
    # every target ran, and the bounded profile really exercises them
    assert len(summary["cases"]) >= 13
    assert summary["total"] >= 5 * examples
    left = sorted(set(os.listdir(tmp_path)) - {"last_case.txt", ".hypothesis"})
    assert not left, f"the fuzz run left files behind: {left}"


def test_crash_is_reported_not_fatal(tmp_path):
    """The harness itself: a segfault in the child becomes a test failure with the
    signal and the last case, and pytest survives."""
    script = tmp_path / "crash.py"
    script.write_text("import ctypes, faulthandler\nfaulthandler.enable()\n"
                      "open('last_case.txt', 'w').write('deliberate: string_at(0)')\n"
                      "ctypes.string_at(0)\n")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # not under ASan
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, env=env)
    assert proc.returncode < 0
    assert "Segmentation fault" in proc.stderr
    assert (tmp_path / "last_case.txt").read_text().startswith("deliberate")
