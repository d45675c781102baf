"""The Examples sections of the docstrings run as doctests, on whichever icalign is
imported (the in-place build or an installed package)."""
import doctest
import importlib
import pkgutil

import pytest

import icalign

# Modules whose public API must show runnable examples.
DOCUMENTED = ("config", "model", "task", "losses", "baselines", "stats")

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules():
    names = {f"icalign.{name}" for name in DOCUMENTED}
    for info in pkgutil.walk_packages(icalign.__path__, prefix="icalign."):
        if not info.name.split(".")[-1].startswith("_"):
            names.add(info.name)
    return sorted(names)


def _examples(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module.__name__) if t.examples]


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:          # an optional dependency of that module is missing
        pytest.skip(f"{name} cannot be imported here: {exc}")
    tests = _examples(module)
    if name.split(".", 1)[1] in DOCUMENTED:
        assert tests, f"{name} has no docstring examples"
    if not tests:
        pytest.skip(f"{name} has no docstring examples")
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("name", [f"icalign.{n}" for n in DOCUMENTED])
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
