"""The smoke profile reproduces the committed results in tests/data/smoke bit for bit.

Refactoring must not change a number: every committed JSON is compared with the one
a smoke run writes now, ignoring only wall-clock fields, the version string and the
settings of other experiment families in ``profile_settings.extra`` (a new family adds
its own there). A new experiment's JSON is checked once its smoke output is committed
here.

The numbers are those of one vector code path (``RECORDED_PATH``): the paths agree to
rounding, not bit for bit, so the smoke run is made on that path, and the test is
skipped, saying why, on a CPU that lacks it."""
import json
import os

import pytest

import icalign as ica
from icalign.cli import main
from icalign.registry import EXPERIMENTS, load_builtin_experiments
from result_equality import without_wall_clock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMITTED = os.path.join(ROOT, "tests", "data", "smoke")
RECORDED_PATH = "avx512"  # the path the committed JSON was computed on


def _load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    extra = data.get("profile_settings", {}).get("extra")
    if isinstance(extra, dict):
        key = EXPERIMENTS[data["experiment"]].settings_key
        data["profile_settings"]["extra"] = {key: extra[key]} if key in extra else {}
    return without_wall_clock(data)


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    before = ica.simd_path()
    try:
        ica.set_simd_path(RECORDED_PATH)
    except ValueError as exc:
        pytest.skip(f"the committed smoke results are those of the {RECORDED_PATH} path, "
                    f"which this CPU lacks ({exc}); other paths differ in the last bits")
    out = tmp_path_factory.mktemp("smoke_rerun")
    try:
        # --jobs 1: in this process, on the path set here
        assert main(["reproduce", "--profile", "smoke", "--out", str(out), "--no-progress",
                     "--jobs", "1"]) == 0
    finally:
        ica.set_simd_path(before)
    return os.path.join(str(out), "smoke")


def test_smoke_json_is_bit_identical_to_the_committed_one(smoke_dir):
    load_builtin_experiments()
    committed = sorted(f for f in os.listdir(COMMITTED) if f.endswith(".json"))
    produced = sorted(f for f in os.listdir(smoke_dir) if f.endswith(".json"))
    assert set(committed) <= set(produced)
    for name in committed:
        # json floats round-trip exactly, so == compares the bits of every number
        assert _load(os.path.join(smoke_dir, name)) == _load(os.path.join(COMMITTED, name)), name
