"""The experiment registry: what ``icalign reproduce`` can run.

Experiment   a named unit with ``run(runner) -> dict`` (its JSON payload),
             ``models(profile) -> [TrainSpec]`` (declared up front: the runner trains
             them before any experiment runs, shows overall progress and estimates
             time), an optional ``plot(result, ...) -> Figure`` and
             ``claims(results) -> [Claim]`` for report.md.
Claim        one row of report.md.

The built-in experiments live in the ``icalign.experiments`` package, one module per
family, each registering itself on import; ``load_builtin_experiments`` imports them
all and then the modules of the ``icalign.experiments`` entry-point group, so a
third-party package can add experiments without touching this one. This module
imports no experiment.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from .profiles import Profile, TrainSpec

ENTRY_POINT_GROUP = "icalign.experiments"
BUILTIN_PACKAGE = "icalign.experiments"


@dataclass
class Claim:
    """One row of report.md: the claim, the measured numbers deciding it and the
    verdict (True ✓, False ✗, None: informational)."""

    section: str
    claim: str
    evidence: str
    passed: Optional[bool]
    criterion: str = ""


@dataclass
class Experiment:
    """A registered experiment (see the module notes).

    order: position in run and report order (ties: registration order); the
        synthetic panels use 10-19, the critic-quality experiments 20-29, later
        families larger numbers.
    settings: key of the experiment's settings in ``profile.extra`` (default: its
        name); they enter the fingerprint of its results, so changing them
        invalidates results that ``--resume`` would otherwise reuse.
    x_key: key of the x values its "curves" are given at ("t" for the error curves,
        e.g. "rounds" for self-correction rounds); report.md tabulates curves over it.
    note: a sentence shown under the experiment in report.md (and kept in its JSON).
    """

    name: str
    title: str
    run: Callable[["object"], dict]
    models: Callable[[Profile], list] = lambda profile: []
    plot: Optional[Callable[..., object]] = None
    claims: Optional[Callable[[dict], list]] = None
    aliases: tuple = ()
    group: str = "synthetic"
    x_key: str = "t"
    order: float = 100.0
    settings: Optional[str] = None
    note: Optional[str] = None

    @property
    def settings_key(self) -> str:
        return self.name if self.settings is None else self.settings


EXPERIMENTS: dict[str, Experiment] = {}
_sequence: dict[str, int] = {}


def register(experiment: Experiment, replace: bool = False) -> Experiment:
    """Add an experiment to the registry (run order: ``order``, then registration)."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register expects an icalign.registry.Experiment, got "
                        f"{type(experiment).__name__}")
    taken = {a: n for n, e in EXPERIMENTS.items() for a in (n,) + tuple(e.aliases)}
    for key in (experiment.name,) + tuple(experiment.aliases):
        if key in taken and not (replace and taken[key] == experiment.name):
            raise ValueError(f"experiment name or alias {key!r} is already registered "
                             f"(by {taken[key]!r}); pass replace=True to replace it")
    _sequence.setdefault(experiment.name, len(_sequence))
    EXPERIMENTS[experiment.name] = experiment
    ordered = sorted(EXPERIMENTS.values(), key=lambda e: (e.order, _sequence[e.name]))
    EXPERIMENTS.clear()
    EXPERIMENTS.update((e.name, e) for e in ordered)
    return experiment


def unregister(name: str) -> None:
    """Remove an experiment (for tests and interactive use)."""
    EXPERIMENTS.pop(name, None)
    _sequence.pop(name, None)


_loaded = False


def _entry_points():
    from importlib import metadata
    eps = metadata.entry_points()
    if hasattr(eps, "select"):
        return list(eps.select(group=ENTRY_POINT_GROUP))
    return list(eps.get(ENTRY_POINT_GROUP, ()))  # Python < 3.10


def load_builtin_experiments() -> dict:
    """Import every module of the ``icalign.experiments`` package and every module
    named in the ``icalign.experiments`` entry-point group (each registers its
    experiments on import); returns ``EXPERIMENTS``. Idempotent: later calls
    import nothing."""
    global _loaded
    if not _loaded:
        _loaded = True
        package = importlib.import_module(BUILTIN_PACKAGE)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")
        for ep in _entry_points():
            try:
                ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the run
                print(f"icalign: could not load experiments from entry point {ep.name!r}: "
                      f"{exc}", file=sys.stderr)
    return EXPERIMENTS


def resolve(names: Optional[Iterable[str]]) -> list[str]:
    """Experiment names in registry order from names or aliases (None: all)."""
    load_builtin_experiments()
    if names is None:
        return list(EXPERIMENTS)
    lookup = {}
    for n, e in EXPERIMENTS.items():
        lookup[n] = n
        for a in e.aliases:
            lookup[a] = n
    wanted, unknown = set(), []
    for raw in names:
        key = raw.strip()
        if not key:
            continue
        if key not in lookup:
            unknown.append(key)
        else:
            wanted.add(lookup[key])
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; valid names (aliases): "
                         f"{describe_names()}")
    if not wanted:
        raise ValueError("no experiment selected")
    return [n for n in EXPERIMENTS if n in wanted]


def describe_names() -> str:
    """'tf_vs_gd (a), reward_noise (b), ...': every experiment with its aliases."""
    load_builtin_experiments()
    return ", ".join(f"{n} ({'/'.join(e.aliases)})" if e.aliases else n
                     for n, e in EXPERIMENTS.items())


def plan(profile: Profile, names: Optional[Iterable[str]] = None) -> list[TrainSpec]:
    """The distinct models the selected experiments train, in first-use order."""
    seen, out = set(), []
    for name in resolve(names):
        for spec in EXPERIMENTS[name].models(profile):
            if spec.name not in seen:
                seen.add(spec.name)
                out.append(spec)
    return out
