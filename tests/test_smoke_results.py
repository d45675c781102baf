"""The smoke profile reproduces the committed results in tests/data/smoke bit for bit.

Refactoring must not change a number: every JSON the smoke run writes is compared
with the committed one, ignoring only wall-clock fields and the version string."""
import json
import os

import pytest

from icalign.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMITTED = os.path.join(ROOT, "tests", "data", "smoke")
VOLATILE = {"seconds", "train_seconds", "version"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _load(path):
    with open(path, encoding="utf-8") as f:
        return _strip(json.load(f))


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke_rerun")
    assert main(["reproduce", "--profile", "smoke", "--out", str(out), "--no-progress"]) == 0
    return os.path.join(str(out), "smoke")


def test_smoke_json_is_bit_identical_to_the_committed_one(smoke_dir):
    committed = sorted(f for f in os.listdir(COMMITTED) if f.endswith(".json"))
    produced = sorted(f for f in os.listdir(smoke_dir) if f.endswith(".json"))
    assert produced == committed
    for name in committed:
        # json floats round-trip exactly, so == compares the bits of every number
        assert _load(os.path.join(smoke_dir, name)) == _load(os.path.join(COMMITTED, name)), name
