"""icalign reproduce --seeds, report on a several-seed run, and plan --seeds."""
import json
import os
import subprocess
import sys

import icalign

# the folder holding the icalign under test: the in-place build or an installed package
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(icalign.__file__)))


def cli(*args):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    return subprocess.run([sys.executable, "-m", "icalign", *args], capture_output=True,
                          text=True, env=env, check=True)


def test_three_seed_smoke_reproduce_and_report(tmp_path):
    cli("reproduce", "--profile", "smoke", "--seeds", "3", "--only", "a,c,objectives",
        "--out", str(tmp_path), "--no-progress", "--threads", "1")
    d = tmp_path / "smoke"
    for path in sorted(d.glob("*.json")):
        if path.name == "run.json":
            continue
        res = json.loads(path.read_text())
        for label, unc in res["uncertainty"].items():
            # a curve that is the same for every seed has no spread across seeds:
            # it must carry its standard error over the evaluation tasks instead
            same = label not in res["seed_curves"] or \
                all(row == res["seed_curves"][label][0] for row in res["seed_curves"][label])
            assert (unc["kind"] == "tasks") == same, (path.name, label, unc["kind"])
            if unc["kind"] == "tasks" and any(res["curves"][label]):
                assert max(unc["se"]) > 0, (path.name, label)
    a = json.loads((d / "tf_vs_gd.json").read_text())
    assert a["uncertainty"]["optimum"]["kind"] == "tasks"
    assert {label for label, unc in json.loads((d / "objectives.json").read_text())[
        "uncertainty"].items() if unc["kind"] == "seeds"} == \
        {"TF PL-cosine p=0", "TF PL-cosine p=0.5"} | {f"TF {o} p={p}" for o in (
            "PL-neg_sq", "BT-cosine", "BT-neg_sq") for p in ("0", "0.5")}
    res = json.loads((d / "depth.json").read_text())
    assert res["seeds"]["training_seeds"] == [0, 1, 2]
    assert all(len(rows) == 3 for rows in res["seed_curves"].values())
    assert len({m["name"] for m in res["seed_models"]["layers=2"]}) == 3   # three models
    for label, unc in res["uncertainty"].items():
        assert unc["kind"] == "seeds" and len(unc["lo"]) == len(res["t"])
        assert all(lo <= m <= hi for lo, m, hi in zip(unc["lo"], res["curves"][label],
                                                       unc["hi"]))
    a = json.loads((d / "tf_vs_gd.json").read_text())
    assert a["uncertainty"]["GD"]["kind"] == "tasks" and a["uncertainty"]["GD"]["n"] == 32
    assert "GD" not in a["seed_curves"]
    (d / "report.md").unlink()
    cli("report", str(d), "--no-figures")
    report = (d / "report.md").read_text()
    assert "Decided from 3 training seeds" in report
    assert "trend: per-seed least-squares slope" in report      # depth ordering
    assert "one-sample t test against the baseline" in report  # TF vs a baseline
    assert " ± " in report and "inconclusive" in report


def test_plan_prints_model_hours_and_wall_time_on_workers():
    out = cli("plan", "--profile", "paper", "--seeds", "3", "--workers", "8", "--assume").stdout
    assert "with 3 seed(s): 48 trainings" in out and "model-hours" in out
    assert "wall time on this machine" in out and "on 8 workers" in out


def test_verdict_changes_between_two_reports():
    from icalign.report import claim_marks, verdict_changes
    before = ("| Claim | Measured | Criterion | |\n| --- | --- | --- | :-: |\n"
              "| (c) deeper is better | x | y | ✗ |\n| (d) softmax wins | x | y | ✓ |\n")
    after = ("| Claim | Measured | Criterion | |\n| --- | --- | --- | :-: |\n"
             "| (c) deeper is better | x \\| z | y | inconclusive |\n"
             "| (d) softmax wins | x | y | ✓ |\n| (g) new | x | y | ✓ |\n")
    assert claim_marks(after) == {"(c) deeper is better": "inconclusive",
                                  "(d) softmax wins": "✓", "(g) new": "✓"}
    table = verdict_changes(before, after)
    assert "| (c) deeper is better | ✗ | inconclusive |" in table
    assert "| (g) new | not in the earlier report | ✓ |" in table and "softmax" not in table
    assert verdict_changes(before, before) == "No claim changed its verdict.\n"
