"""The shape of the package: every module imports on its own, the intra-package
import graph has no cycle, no module imports another's private names, and the
registry's fingerprints follow each experiment's declared settings."""
import ast
import concurrent.futures
import copy
import json
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest

import icalign as ica
from icalign import profiles, registry, runner as runner_mod

PACKAGE_DIR = os.path.dirname(os.path.abspath(ica.__file__))
PACKAGE_PARENT = os.path.dirname(PACKAGE_DIR)
# the checkout: tests/.. (the package itself may be installed elsewhere)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules():
    """{module name: path} of every Python module of the package."""
    out = {}
    for root, _, files in os.walk(PACKAGE_DIR):
        for fn in files:
            if fn.endswith(".py") or (fn.startswith("_core") and fn.endswith((".so", ".pyd"))):
                rel = os.path.relpath(os.path.join(root, fn), PACKAGE_PARENT)
                rel = rel[:-3] if fn.endswith(".py") else rel.split(".")[0]
                name = rel.replace(os.sep, ".")
                out[name[:-len(".__init__")] if name.endswith(".__init__") else name] = \
                    os.path.join(root, fn)
    return out


MODULES = _modules()


def _imports(name, path):
    """[(imported module, [names])] of the intra-package imports of a module, as
    written in its source (top level and inside functions)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    if not path.endswith(".py"):
        return []
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "icalign":
                continue
            names = [a.name for a in node.names]
            # "from . import x" / "from .pkg import mod" import modules, not names
            mods = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            found += [(m, []) for m in mods]
            rest = [n for n in names if f"{target}.{n}" not in MODULES]
            if rest:
                found.append((target, rest))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "icalign"]
    return found


def test_no_module_imports_private_names_of_another():
    bad = [f"{name}: from {target} import {n}"
           for name, path in MODULES.items() for target, names in _imports(name, path)
           for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, "\n".join(bad)


def test_import_graph_has_no_cycle():
    graph = {name: {t for t, _ in _imports(name, path) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    # a package's __init__ may re-export its modules; the cycle that matters is between
    # modules, so edges into the top-level package (imports of icalign itself) count too
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):]
                                                                     + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_registry_imports_no_experiment():
    targets = {t for t, _ in _imports("icalign.registry", MODULES["icalign.registry"])}
    assert not [t for t in targets if t.startswith("icalign.experiments")]
    plotting = {t for t, _ in _imports("icalign.plotting", MODULES["icalign.plotting"])}
    assert plotting <= {"icalign._files"}          # a leaf


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports_in_isolation(name):
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                          text=True, env=env, timeout=120,
                          cwd=os.path.dirname(PACKAGE_PARENT))
    assert proc.returncode == 0 or name == "icalign.__main__", proc.stderr


def test_builtin_experiments_load_once_in_report_order():
    first = dict(registry.load_builtin_experiments())
    assert registry.load_builtin_experiments() == first
    names = list(first)
    assert names[:6] == ["tf_vs_gd", "reward_noise", "depth", "attention", "heads", "ffn"]
    assert names[6:9] == ["critic_accuracy_gain", "critic_rounds", "critic_model_size"]


def test_fingerprint_follows_each_experiments_settings(monkeypatch):
    """Changing the critic settings invalidates the critic experiments' results (so
    --resume reruns them) and nothing else."""
    registry.load_builtin_experiments()
    runner = runner_mod.Runner("smoke", out="unused", log=lambda m: None)
    before = {n: runner.fingerprint(n) for n in registry.EXPERIMENTS}
    critic = [n for n, e in registry.EXPERIMENTS.items() if e.settings_key == "critic"]
    assert critic == ["critic_accuracy_gain", "critic_rounds", "critic_model_size"]
    for key, value in (("n_tasks", 16), ("rounds", 2)):
        extra = copy.deepcopy(runner.profile.extra)
        extra["critic"][key] = value
        monkeypatch.setattr(runner.profile, "extra", extra)
        after = {n: runner.fingerprint(n) for n in registry.EXPERIMENTS}
        assert {n for n in after if after[n] != before[n]} == set(critic), key
    monkeypatch.undo()
    assert {n: runner.fingerprint(n) for n in registry.EXPERIMENTS} == before


def test_runner_trains_through_any_executor(tmp_path):
    """Training goes through ``executor.map``: a process pool gives the same models
    as the default in-process executor."""
    spec = profiles.PROFILES["smoke"].train_spec()
    serial = runner_mod.Runner("smoke", out=str(tmp_path / "serial"), progress=False,
                               log=lambda m: None)
    serial.train_models([spec])
    # spawn, not fork: a forked child of a process that already ran OpenMP can hang
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pooled = runner_mod.Runner("smoke", out=str(tmp_path / "pool"), progress=False,
                                   log=lambda m: None, executor=pool)
        [info] = pooled.train_models([spec])
    assert info["name"] == spec.name and info["steps_done"] == spec.steps
    a, b = serial.trained_model(spec).state_dict(), pooled.trained_model(spec).state_dict()
    assert all((a[k] == b[k]).all() for k in a)
    assert serial.model_info(spec)["final_loss"] == pooled.model_info(spec)["final_loss"]


def test_reading_results_never_trains(tmp_path):
    runner = runner_mod.Runner("smoke", out=str(tmp_path), progress=False, log=lambda m: None)
    spec = runner.profile.train_spec()
    for read in (runner.trained_model, runner.history, runner.model_info):
        with pytest.raises(RuntimeError, match="not trained"):
            read(spec)
    assert not os.path.exists(runner.model_path(spec))


def test_version_has_one_source():
    from icalign import _version
    assert ica.__version__ == _version.__version__
    pyproject = os.path.join(REPO, "pyproject.toml")
    if os.path.exists(pyproject):
        with open(pyproject, encoding="utf-8") as f:
            text = f.read()
        assert 'dynamic = ["version"]' in text and ica.__version__ not in text


def test_cli_version_and_module_entry():
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "icalign", "--version"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"icalign {ica.__version__}"
    proc = subprocess.run([sys.executable, "-m", "icalign", "plan", "--profile", "huge"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_entry_point_group_is_loaded(monkeypatch):
    """A third-party package registers experiments through the entry-point group."""
    calls = []

    class EP:
        name = "demo"

        def load(self):
            calls.append(1)
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_entry_points", lambda: [EP()])
    registry.load_builtin_experiments()
    registry.load_builtin_experiments()
    assert calls == [1]
    assert json.dumps(list(registry.EXPERIMENTS))  # the built-ins are still there


def test_the_documented_way_to_add_an_experiment_works(tmp_path):
    """The example of docs/architecture.md, run as a module of icalign.experiments."""
    import re
    path = os.path.join(REPO, "docs", "architecture.md")
    if not os.path.exists(path):
        pytest.skip("docs/ is not part of this checkout")
    with open(path, encoding="utf-8") as f:
        code = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
    code = "\n".join(line[3:] if line.startswith("   ") else line for line in code.split("\n"))
    registry.load_builtin_experiments()
    extras = {name: copy.deepcopy(p.extra) for name, p in profiles.PROFILES.items()}
    try:
        exec(compile(code, path, "exec"), {"__name__": "icalign.experiments._doc_example",
                                          "__package__": "icalign.experiments"})
        res = runner_mod.Runner("smoke", out=str(tmp_path), progress=False,
                                log=lambda m: None).run(["plbt"])
        assert set(res["pl_vs_bt"]["curves"]) == {"pl", "bt"}
        text = (tmp_path / "smoke" / "report.md").read_text()
        assert "### PL vs BT" in text and "PL trains at least as well" in text
    finally:
        registry.unregister("pl_vs_bt")
        for name, p in profiles.PROFILES.items():
            p.extra = extras[name]


def test_every_plot_draws_into_given_axes_and_returns_the_figure():
    """Plot functions take ``ax`` (``axes`` for several panels) and return the figure,
    for every experiment's committed smoke result; the library picks no backend."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    from icalign import plotting, report
    data = os.path.join(REPO, "tests", "data", "smoke")
    with open(os.path.join(PACKAGE_DIR, "plotting.py"), encoding="utf-8") as f:
        assert "matplotlib.use(" not in f.read()
    results = report.load_results(data)
    assert set(results) == set(registry.load_builtin_experiments())
    panels = {"reward_noise": 2, "heads": 2, "critic_accuracy_gain": 2, "objectives": 2}
    for name, result in results.items():
        n = panels.get(name, 1)
        fig, axes = plt.subplots(1, n)
        kwargs = {"axes": axes} if n > 1 else {"ax": axes}
        assert report.plot_experiment(result, **kwargs) is fig, name
        assert all(ax.has_data() for ax in fig.axes if ax.get_label() != "<colorbar>"), name
        plt.close(fig)
        own = report.plot_experiment(result)
        assert own is not fig and own.axes
        plt.close(own)
    fig, ax = plt.subplots()
    assert plotting.plot_history(ica.TrainHistory(np.arange(5.0), 0.0, 5), ax=ax) is fig
    plt.close(fig)
