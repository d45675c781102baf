"""The fast sanitizer subset of the normal suite.

The C core (csrc/*.c without the CPython binding) is compiled together with the
standalone driver tests/c/driver.c under AddressSanitizer and
UndefinedBehaviorSanitizer (any finding aborts) and run: model creation,
forward, loss and gradient, Adam steps, both losses, the task sampler and all
baselines on tiny shapes, every SIMD path the CPU runs, 1 and 2 threads, the
error paths, with leak detection. The binary is cached under build/sanitize/
by a hash of the sources and flags, so only the first run compiles (~10 s).

The full runs (the whole test suite on an ASan+UBSan build of the extension,
valgrind memcheck) are tests/sanitize.sh.
"""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CSRC = os.path.join(ROOT, "csrc")
DRIVER = os.path.join(HERE, "c", "driver.c")
FLAGS = ["-std=c11", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all"]


def _compiler():
    for name in (os.environ.get("CC"), "gcc", "clang", "cc"):
        if name and shutil.which(name):
            return name
    return None


def _sources():
    return sorted(os.path.join(CSRC, f) for f in os.listdir(CSRC)
                  if f.endswith(".c") and f != "binding.c") + [DRIVER]


def _supports(cc, flags, tmp):
    probe = os.path.join(tmp, "probe.c")
    with open(probe, "w") as f:
        f.write("int main(void) { return 0; }\n")
    res = subprocess.run([cc, *flags, probe, "-o", os.path.join(tmp, "probe")],
                         capture_output=True)
    return res.returncode == 0


def build_driver(tmp_path):
    """Path of the sanitized driver (built or cached); skips without a compiler."""
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler")
    if not sys.platform.startswith("linux"):
        pytest.skip("the sanitizer build is set up for Linux")
    flags = list(FLAGS)
    if not _supports(cc, flags, str(tmp_path)):
        pytest.skip(f"{cc} cannot build with -fsanitize=address,undefined")
    if _supports(cc, flags + ["-fopenmp"], str(tmp_path)):
        flags.append("-fopenmp")
    h = hashlib.sha256(" ".join([cc] + flags).encode())
    for path in _sources() + sorted(os.path.join(CSRC, f) for f in os.listdir(CSRC)
                                    if f.endswith(".h")):
        with open(path, "rb") as f:
            h.update(path.encode() + f.read())
    cache = os.path.join(ROOT, "build", "sanitize", h.hexdigest()[:16])
    exe = os.path.join(cache, "driver")
    if not os.path.exists(exe):
        os.makedirs(cache, exist_ok=True)
        tmp_exe = os.path.join(cache, f"driver.{os.getpid()}.tmp")
        res = subprocess.run([cc, *flags, "-I", CSRC, *_sources(), "-lm", "-o", tmp_exe],
                             capture_output=True, text=True)
        assert res.returncode == 0, f"sanitizer build failed:\n{res.stderr[-4000:]}"
        os.replace(tmp_exe, exe)
    return exe


def test_c_core_under_asan_ubsan(tmp_path):
    exe = build_driver(tmp_path)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", OMP_WAIT_POLICY="passive")
    env.pop("LD_PRELOAD", None)
    res = subprocess.run([exe, "quick"], capture_output=True, text=True, env=env, timeout=600)
    if "LeakSanitizer does not work under ptrace" in res.stderr:
        env["ASAN_OPTIONS"] = env["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
        res = subprocess.run([exe, "quick"], capture_output=True, text=True, env=env,
                             timeout=600)
    report = res.stdout + res.stderr
    assert "runtime error" not in report, report[-6000:]
    assert "Sanitizer" not in report, report[-6000:]
    assert res.returncode == 0, report[-6000:]
    assert "driver: ok" in res.stdout
