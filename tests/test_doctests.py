"""The Examples sections of the docstrings run as doctests, on whichever icalign is
imported (the in-place build or an installed package)."""
import doctest
import importlib
import pkgutil

import pytest

import icalign

# Modules whose public API must show runnable examples ("icalign" is the package
# itself: the helpers defined in its __init__).
DOCUMENTED = ("icalign",) + tuple(f"icalign.{name}" for name in (
    "config", "model", "task", "losses", "baselines", "stats", "evaluate", "critics",
    "self_correction", "critic_studies", "training", "registry", "profiles", "manifest",
    "summary"))

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module.__name__) if t.examples]


def _modules():
    """The modules to run: the documented ones, and every other public module that
    has examples. A module that cannot be imported here (an optional dependency is
    missing) is kept, with the reason, and skipped."""
    names = {"icalign"}
    for info in pkgutil.walk_packages(icalign.__path__, prefix="icalign."):
        if not info.name.split(".")[-1].startswith("_"):
            names.add(info.name)
    params = []
    for name in sorted(names | set(DOCUMENTED)):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            params.append(pytest.param(name, marks=pytest.mark.skip(
                reason=f"{name} cannot be imported here: {exc}")))
            continue
        if name in DOCUMENTED or _examples(module):
            params.append(name)
    return params


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    tests = _examples(module)
    assert tests, f"{name} has no docstring examples"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("name", DOCUMENTED)
def test_public_functions_document_parameters_and_examples(name):
    """numpydoc: every public function or class of the documented modules whose
    docstring spans more than a line has an Examples section, or says what it
    returns (one-line docstrings of small helpers and properties are fine)."""
    module = importlib.import_module(name)
    missing = []
    for attr, obj in vars(module).items():
        if attr.startswith("_") or getattr(obj, "__module__", None) != name:
            continue
        if not (isinstance(obj, type) or callable(obj)):
            continue
        doc = obj.__doc__ or ""
        if not doc.strip():
            missing.append(f"{attr}: no docstring")
        elif "\n" in doc.strip() and "Examples" not in doc and "Returns" not in doc:
            missing.append(f"{attr}: neither Returns nor Examples")
    assert not missing, f"{name}: " + "; ".join(missing)
