"""The objectives experiment on the smoke profile, and the README paragraph written
from the published quick run's JSON."""
import json
import os

import pytest

from icalign import report
from icalign.cli import main
from icalign.experiments import objectives

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED = os.path.join(ROOT, "docs", "quick")


@pytest.fixture(scope="module")
def smoke_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("objectives_smoke")
    assert main(["reproduce", "--profile", "smoke", "--only", "objectives", "--out", str(out),
                 "--no-progress"]) == 0
    with open(os.path.join(str(out), "smoke", "objectives.json"), encoding="utf-8") as f:
        return json.load(f)


def test_every_objective_has_tf_gd_and_optimum_at_every_noise_level(smoke_result):
    r = smoke_result
    labels = [objectives.objective_label(o, w) for o, w in objectives.OBJECTIVES]
    assert r["objectives"] == labels and r["noise_levels"] == [0.0, 0.5]
    for p in ("p=0", "p=0.5"):
        for label in labels:
            for method in ("TF", "GD", "optimum"):
                assert len(r["curves"][f"{method} {label} {p}"]) == len(r["t"]) == 14
            assert len(r["converged"][f"{label} {p}"]) == 14
            assert r["paired_t15"][f"TF {label} − optimum {label} {p}"]["se"] >= 0
        for name in ("best", "oracle"):
            assert f"{name} {p}" in r["curves"]
    # exact rewards: the neg_sq objectives have no finite minimiser, and it is reported
    assert r["converged"]["PL-neg_sq p=0"][-1] == 0.0
    assert r["converged"]["PL-cosine p=0"] == [1.0] * 14
    # each objective trained its own model
    assert len({m["name"] for m in r["models"].values()}) == 4


def test_claims_plot_and_paragraph(smoke_result):
    rows = report.all_claims({"objectives": smoke_result})
    assert len(rows) == 8 and all(row.section == objectives.SECTION for row in rows)
    pytest.importorskip("matplotlib")
    fig = report.plot_experiment(smoke_result)
    assert len(fig.axes) == 2
    a = {"t": smoke_result["t"], "profile": "smoke",
         "curves": {k: [0.25] * 14 for k in ("TF", "GD", "best", "optimum")}}
    text = objectives.beyond_the_paper({"tf_vs_gd": a, "objectives": smoke_result})
    best = smoke_result["t15"]["best p=0.5"]["mean"]
    assert f"{best:.3f}" in text and "0.250" in text


def test_readme_paragraph_is_written_from_the_published_json():
    if not os.path.isdir(PUBLISHED):
        pytest.skip("docs/quick is not part of this checkout")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert objectives.beyond_the_paper(report.load_results(PUBLISHED)) in readme


def test_evaluation_time_is_split_by_part(smoke_result):
    """The optima, GD and the transformer are timed apart, so run.json's split says where
    this experiment's time goes (it was once all 'other')."""
    timing = smoke_result["timing"]
    assert timing["optimum"] > 0 and timing["gd"] > 0 and timing["tf_eval"] > 0
    parts = sum(timing[p] for p in ("tf_eval", "gd", "baselines", "optimum", "critic"))
    assert timing["other"] < parts


def test_claims_decided_by_a_test_are_never_left_unmarked():
    """An undecided test is 'inconclusive', like every other tested claim in the
    report; only a claim with nothing to test (no converged optimum) or a plain
    comparison of means may read '—'."""
    if not os.path.isdir(PUBLISHED):
        pytest.skip("docs/quick is not part of this checkout")
    rows = report.all_claims({"objectives": report.load_results(PUBLISHED)["objectives"]})
    tested = [row for row in rows if "significantly" in row.criterion
              or "the whole interval" in row.criterion]
    assert len(tested) == 6
    for row in tested:
        assert row.mark in ("✓", "✗", "inconclusive"), (row.claim, row.mark)
