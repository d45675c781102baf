"""The smoke profile reproduces the committed results in tests/data bit for bit.

Refactoring must not change a number: every committed JSON is compared with the one
a smoke run writes now, ignoring only wall-clock fields, the version string and the
settings of other experiment families in ``profile_settings.extra`` (a new family adds
its own there). A new experiment's JSON is checked once its smoke output is committed
here.

The vector code paths agree to rounding, not bit for bit, so each path has its own
record (``RECORDED``): ``tests/data/smoke`` for AVX-512 and ``tests/data/smoke-avx2``
for AVX2. Each smoke run is made on its path, and is skipped, saying why, on a CPU
that lacks it (an AVX-512 CPU checks both records, an AVX2-only one the second).

A record holds on every CPU that runs its path, Intel's or AMD's: the vector code uses
only operations whose results IEEE 754 fixes, the build never fuses a multiply and an
add that the source keeps apart, and the statistics do not depend on the BLAS kernels
and NumPy loops chosen for the CPU. The last three tests guard these."""
import ast
import glob
import json
import os
import platform
import re
import subprocess
import sys

import pytest

import icalign as ica
from icalign.cli import main
from icalign.registry import EXPERIMENTS, load_builtin_experiments
import simd_paths
from result_equality import without_wall_clock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(ica.__file__)))
DATA = os.path.join(ROOT, "tests", "data")
RECORDED = {"avx512": "smoke", "avx2": "smoke-avx2"}  # vector path -> its record in DATA


def _load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    extra = data.get("profile_settings", {}).get("extra")
    if isinstance(extra, dict):
        key = EXPERIMENTS[data["experiment"]].settings_key
        data["profile_settings"]["extra"] = {key: extra[key]} if key in extra else {}
    return without_wall_clock(data)


@pytest.fixture(scope="module", params=sorted(RECORDED))
def smoke_run(request, tmp_path_factory):
    """(committed record, fresh smoke output) of one vector path."""
    path = request.param
    before = ica.simd_path()
    try:
        ica.set_simd_path(path)
    except ValueError as exc:
        pytest.skip(f"the committed smoke results in tests/data/{RECORDED[path]} are those of "
                    f"the {path} path, which this CPU lacks ({exc}); other paths differ in "
                    f"the last bits")
    out = tmp_path_factory.mktemp(f"smoke_rerun_{path}")
    try:
        # --jobs 1: in this process, on the path set here
        assert main(["reproduce", "--profile", "smoke", "--out", str(out), "--no-progress",
                     "--jobs", "1"]) == 0
    finally:
        ica.set_simd_path(before)
    return os.path.join(DATA, RECORDED[path]), os.path.join(str(out), "smoke")


def _assert_reproduces(committed_dir, produced_dir):
    load_builtin_experiments()
    committed = sorted(f for f in os.listdir(committed_dir) if f.endswith(".json"))
    produced = sorted(f for f in os.listdir(produced_dir) if f.endswith(".json"))
    assert committed, f"no committed smoke results in {committed_dir}"
    assert set(committed) <= set(produced)
    for name in committed:
        # json floats round-trip exactly, so == compares the bits of every number
        assert (_load(os.path.join(produced_dir, name))
                == _load(os.path.join(committed_dir, name))), name


def test_smoke_json_is_bit_identical_to_the_committed_one(smoke_run):
    _assert_reproduces(*smoke_run)


@pytest.mark.parametrize("path", sorted(RECORDED))
def test_smoke_json_does_not_depend_on_the_blas_and_numpy_loops_of_the_cpu(path, tmp_path):
    """Another CPU makes OpenBLAS pick other kernels and NumPy other loops: force the
    oldest x86 kernels and NumPy's baseline loops, and the record must still hold."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"the records are of x86 vector paths; this is {platform.machine()}")
    if not simd_paths.supported([path]):
        pytest.skip(f"this CPU does not run the {path} path")
    import numpy as np
    found = np.show_config(mode="dicts").get("SIMD Extensions", {}).get("found") or []
    env = dict(os.environ, ICALIGN_SIMD=path, OPENBLAS_CORETYPE="Nehalem",
               NPY_DISABLE_CPU_FEATURES=" ".join(found), OMP_WAIT_POLICY="passive")
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, "-m", "icalign", "reproduce", "--profile", "smoke",
                           "--out", str(tmp_path), "--no-progress", "--jobs", "1"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _assert_reproduces(os.path.join(DATA, RECORDED[path]), str(tmp_path / "smoke"))


# rcp/rsqrt estimates: (v)rcpps, rsqrtps, rcp14, rsqrt14, rcp28... Their results are
# left to the implementation; Intel and AMD cores give different bits for the same
# input, so a record made on one would fail on the other.
HARDWARE_ESTIMATE = re.compile(r"_mm\d*_(mask_|maskz_)?(rcp|rsqrt)\w*|\bv?(rcp|rsqrt)(14|28)?[ps][sd]\b")


def test_vector_code_uses_no_implementation_defined_estimate():
    sources = glob.glob(os.path.join(ROOT, "csrc", "*.[ch]"))
    assert sources, "no C sources found under csrc/"
    found = []
    for path in sorted(sources):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # comments may name the instructions; keep their newlines for the line numbers
        code = re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: "\n" * m.group().count("\n"), text,
                      flags=re.S)
        for number, line in enumerate(code.splitlines(), 1):
            if HARDWARE_ESTIMATE.search(line):
                found.append(f"{os.path.basename(path)}:{number}: {line.strip()}")
    assert not found, ("hardware reciprocal estimates make results differ between CPU "
                       "vendors; divide instead:\n" + "\n".join(found))


def test_build_keeps_multiplies_and_adds_apart():
    """Clang contracts a * b + c into one FMA by default (GCC does in GNU C mode): with
    CFLAGS=-march=native a clang build then missed the records, and with
    -ffp-contract=off it reproduced them bit for bit."""
    setup = os.path.join(ROOT, "setup.py")
    if not os.path.exists(setup):
        pytest.skip("no setup.py: not a source checkout")
    with open(setup, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    flags = [ast.literal_eval(node.value) for node in ast.walk(tree)
             if isinstance(node, ast.Assign)
             and any(getattr(t, "id", None) == "BASE_FLAGS" for t in node.targets)]
    assert flags, "setup.py defines no BASE_FLAGS"
    assert "-ffp-contract=off" in flags[0], flags[0]
