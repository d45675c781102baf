"""run.json, the run manifest, and the README results block generated from a results
folder (``icalign report DIR --readme README.md``)."""
import json
import os

import pytest

import numpy as np

import icalign as ica
from icalign import manifest, summary
from icalign.cli import main
from icalign.runner import Runner

QUIET = dict(progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A smoke run of two experiments, then a resumed run adding a third."""
    out = tmp_path_factory.mktemp("manifest")
    first = Runner("smoke", out=str(out), **QUIET)
    first.run(["tf_vs_gd", "critic_rounds"], figures=False)
    with open(os.path.join(first.dir, "run.json"), encoding="utf-8") as f:
        before = json.load(f)
    Runner("smoke", out=str(out), resume=True, **QUIET).run(
        ["tf_vs_gd", "critic_rounds", "attention"], figures=False)
    return first.dir, before, manifest.load_manifest(first.dir)


def test_manifest_of_a_fresh_run(smoke):
    _, m, _ = smoke
    assert m["profile"] == "smoke" and m["seeds"] == [0]
    assert m["started"] <= m["ended"] and m["started"].endswith("Z")
    assert m["executor"]["kind"] == "local" and m["executor"]["threads"] >= 1
    assert m["experiments"]["run"] == ["tf_vs_gd", "critic_rounds"]
    assert m["models"]["trained"] == 2 and m["models"]["loaded"] == 0
    assert m["platform"]["simd_path"] == ica.simd_path()
    assert m["platform"]["cpu"] == manifest.cpu_name() and m["platform"]["cpu"]
    assert m["platform"]["numpy"] == np.__version__
    # both models trained in this process, so on its path and CPU
    assert m["models"]["trained_on"] == [{"simd_path": ica.simd_path(),
                                          "cpu": manifest.cpu_name(), "models": 2}]
    t = m["time"]
    assert 0 < t["training"]["model_seconds"] <= t["training"]["wall_seconds"] + 1e-6
    ev = t["evaluation"]
    assert ev["tf_eval"] > 0 and ev["gd"] > 0 and ev["baselines"] > 0 and ev["critic"] > 0
    assert sum(ev[p] for p in manifest.TIMING_PARTS) == pytest.approx(ev["seconds"])
    assert ev["seconds"] <= ev["wall_seconds"] + 1e-6
    parts = t["training"]["wall_seconds"] + ev["wall_seconds"] + t["outputs_seconds"]
    assert parts <= m["wall_seconds"] + 1e-6


def test_resumed_run_says_which_models_were_loaded(smoke):
    directory, first, m = smoke
    assert m["experiments"] == {"run": ["attention"],
                                "finished_earlier": ["tf_vs_gd", "critic_rounds"]}
    # attention needs the default model (trained by the first run) and the linear one
    assert m["models"]["loaded"] == 1 and m["models"]["trained"] == 1
    assert m["models"]["loaded_names"][0] in first["models"]["trained_names"]
    assert m["models"]["trained_names"][0] not in first["models"]["trained_names"]
    with open(os.path.join(directory, "attention.json"), encoding="utf-8") as f:
        timing = json.load(f)["timing"]
    assert set(timing) == set(manifest.TIMING_PARTS) | {"seconds"}
    assert m["time"]["evaluation"]["seconds"] == pytest.approx(timing["seconds"])


def test_readme_block_from_a_folder_with_a_manifest(smoke, tmp_path):
    directory, _, _ = smoke
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{summary.BEGIN}\nstale\n{summary.END}\nafter\n",
                      encoding="utf-8")
    with open(os.path.join(directory, "report.md"), encoding="utf-8") as f:
        earlier = f.read().replace("| ✓ |", "| ✗ |")
    old = tmp_path / "old.md"
    old.write_text(earlier, encoding="utf-8")
    assert main(["report", directory, "--no-figures", "--readme", str(readme),
                 "--changes-from", str(old)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# x\n\nbefore\n" + summary.BEGIN) and text.endswith(
        summary.END + "\nafter\n") and "stale" not in text
    assert "wall clock" in text and "1 model trained in this run, 1 loaded" in text
    assert f"(1 model on the {ica.simd_path()} path of {manifest.cpu_name()})" in text
    assert "**Where the time went**" in text and "critic loops" in text
    assert "**Verdicts changed since the run with one training seed**" in text
    assert "### Claims" in text and "## Claims" not in text.replace("### Claims", "")
    link = os.path.relpath(directory, str(tmp_path)).replace(os.sep, "/")
    block = text[text.index(summary.BEGIN):text.index(summary.END) + len(summary.END)] + "\n"
    assert block == summary.readme_results(directory, link=link)
    # rewriting from the same files changes nothing
    assert main(["report", directory, "--no-figures", "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == text


def test_readme_without_markers_is_refused(smoke, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no block here\n", encoding="utf-8")
    assert main(["report", smoke[0], "--no-figures", "--readme", str(readme)]) == 2
    assert readme.read_text(encoding="utf-8") == "# no block here\n"


def test_trained_on_follows_the_vector_path(tmp_path):
    """Each model says where it was trained: a path forced for the training shows up."""
    from icalign.profiles import TrainSpec
    from icalign.tasks import train_spec
    spec = TrainSpec(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2, n_points=6), steps=3,
                     batch_size=4, lr=1e-3)
    before = ica.simd_path()
    try:
        ica.set_simd_path("scalar")
        out = train_spec(spec, str(tmp_path), progress=False)
    finally:
        ica.set_simd_path(before)
    assert out["trained_on"] == {"simd_path": "scalar", "cpu": manifest.cpu_name()}
