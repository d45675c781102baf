"""Every notebook runs top to bottom (nbclient), both as committed (reading the
published results in docs/quick, training nothing) and re-running the smoke
profile; any cell error fails the test."""
import glob
import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    # shared by all notebooks, as ../results is when they are run for real
    return str(tmp_path_factory.mktemp("nb_results"))


def test_notebooks_exist():
    names = [os.path.basename(p) for p in NOTEBOOKS]
    assert "01_in_context_alignment.ipynb" in names
    assert "02_architecture_ablations.ipynb" in names
    assert "03_critic_quality.ipynb" in names
    assert "04_theory.ipynb" in names


@pytest.mark.parametrize("rerun", [False, True], ids=["committed", "rerun-smoke"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path, rerun, results_dir, monkeypatch):
    for name in ("ICALIGN_RERUN", "ICALIGN_PROFILE", "ICALIGN_RESULTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ICALIGN_THREADS", "1")
    if rerun:
        monkeypatch.setenv("ICALIGN_RERUN", "1")
        monkeypatch.setenv("ICALIGN_PROFILE", "smoke")
        monkeypatch.setenv("ICALIGN_RESULTS", results_dir)
    elif not os.path.isdir(os.path.join(ROOT, "docs", "quick")):
        pytest.skip("docs/quick is not part of this checkout")
    published = os.path.join(ROOT, "docs", "quick")
    before = {f: os.path.getmtime(os.path.join(published, f)) for f in os.listdir(published)} \
        if os.path.isdir(published) else {}
    # the kernel imports the same icalign as this test process
    import icalign
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(icalign.__file__)))
    monkeypatch.setenv("PYTHONPATH", package_parent + os.pathsep
                       + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()  # raises CellExecutionError on any cell error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # the figures and the claims table (04: the accuracy table) were produced
    assert any("image/png" in o.get("data", {}) for o in outputs)
    table = "| loss |" if os.path.basename(path).startswith("04_") else "| Claim |"
    assert any(table in o.get("data", {}).get("text/markdown", "") for o in outputs)
    # nothing in the published results is rewritten
    if before:
        assert {f: os.path.getmtime(os.path.join(published, f))
                for f in os.listdir(published)} == before
