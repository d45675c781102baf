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
    verdict.

    An experiment's ``claims(results)`` returns them; docs/math.md, section
    "Claims and what each tests", lists the built-in ones.

    Parameters
    ----------
    section : str
        The heading the row is listed under.
    claim, evidence : str
        What is claimed, and the measured numbers that decide it.
    passed : bool or None
        True (✓), False (✗) or None (informational, or inconclusive).
    criterion : str, default ''
        When the claim passes, in words.
    verdict : str or None, default None
        For claims decided statistically (``icalign.stats.verdict``): "holds" (✓),
        "opposite" (✗: the opposite holds significantly) or "inconclusive" (not
        distinguishable with the seeds at hand); it then decides the mark, and
        ``passed`` is True, False or None to match.

    Examples
    --------
    >>> from icalign.registry import Claim
    >>> c = Claim("Synthetic", "TF beats the mean response", "0.21 < 0.27", True,
    ...           criterion="mean error over t below the mean response's")
    >>> c.claim, c.passed
    ('TF beats the mean response', True)
    """

    section: str
    claim: str
    evidence: str
    passed: Optional[bool]
    criterion: str = ""
    verdict: Optional[str] = None

    @classmethod
    def decided(cls, section: str, claim: str, evidence: str, verdict: str,
                criterion: str = "") -> "Claim":
        """A claim with a three-valued statistical verdict."""
        if verdict not in ("holds", "opposite", "inconclusive"):
            raise ValueError(f"verdict must be 'holds', 'opposite' or 'inconclusive', got "
                             f"{verdict!r}")
        passed = {"holds": True, "opposite": False}.get(verdict)
        return cls(section, claim, evidence, passed, criterion, verdict)

    @property
    def mark(self) -> str:
        if self.verdict == "inconclusive":
            return "inconclusive"
        return "—" if self.passed is None else ("✓" if self.passed else "✗")


@dataclass
class Experiment:
    """A registered experiment (see the module notes).

    Parameters
    ----------
    name : str
        Unique name (also of its results file).
    title : str
        Heading in report.md.
    run : callable
        ``run(runner) -> dict``: computes the JSON payload of the results.
    models : callable, default: no models
        ``models(profile) -> [TrainSpec]``: the models it needs, declared up
        front so that the runner trains them first (and shares them between
        experiments).
    plot : callable, optional
        ``plot(result, ...) -> Figure``.
    claims : callable, optional
        ``claims(results) -> [Claim]``: its rows of report.md.
    aliases : tuple of str, default ()
        Other names accepted for it (e.g. panel letters).
    group : str, default 'synthetic'
        The family it belongs to.
    x_key : str, default 't'
        Key of the x values its "curves" are given at ("t" for the error
        curves, e.g. "rounds" for self-correction rounds); report.md
        tabulates curves over it.
    order : float, default 100.0
        Position in run and report order (ties: registration order); the
        synthetic panels use 10-19, the critic-quality experiments 20-29,
        later families larger numbers.
    settings : str, optional
        Key of the experiment's settings in ``profile.extra`` (default: its
        name, see ``settings_key``); they enter the fingerprint of its
        results, so changing them invalidates results that ``--resume``
        would otherwise reuse.
    note : str, optional
        A sentence shown under the experiment in report.md (and kept in its
        JSON).

    Examples
    --------
    >>> from icalign.registry import Experiment
    >>> toy = Experiment(name="toy", title="A toy experiment",
    ...                  run=lambda runner: {"answer": 42}, aliases=("t0",), order=999)
    >>> toy.run(None), toy.settings_key, toy.models(None)
    ({'answer': 42}, 'toy', [])
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
    """Add an experiment to the registry (run order: ``order``, then registration).

    Parameters
    ----------
    experiment : Experiment
        The experiment.
    replace : bool, default False
        Replace an experiment registered under the same name.

    Returns
    -------
    Experiment
        ``experiment``, so that a module can register and keep it in one line.

    Raises
    ------
    TypeError
        If ``experiment`` is not an Experiment.
    ValueError
        If its name or an alias is taken (by another experiment, or by this
        name without ``replace``).

    Examples
    --------
    >>> from icalign.registry import EXPERIMENTS, Experiment, register, resolve, unregister
    >>> toy = Experiment(name="toy", title="A toy experiment", run=lambda runner: {},
    ...                  aliases=("t0",), order=999)
    >>> register(toy) is toy, resolve(["t0"])
    (True, ['toy'])
    >>> register(toy)
    Traceback (most recent call last):
        ...
    ValueError: experiment name or alias 'toy' is already registered (by 'toy'); pass replace=True to replace it
    >>> unregister("toy")
    >>> "toy" in EXPERIMENTS
    False
    """
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
    """Remove an experiment (for tests and interactive use).

    An unknown name is ignored. Built-in experiments are registered once per
    process, on first import of their module; ``register`` puts one back.

    Examples
    --------
    >>> from icalign.registry import EXPERIMENTS, Experiment, register, unregister
    >>> _ = register(Experiment(name="scratch", title="scratch", run=lambda runner: {}))
    >>> unregister("scratch"), "scratch" in EXPERIMENTS
    (None, False)
    >>> unregister("scratch")          # already gone: nothing happens
    """
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
    experiments on import). Idempotent: later calls import nothing. A plugin
    that fails to load is reported on stderr and skipped.

    Returns
    -------
    dict of str to Experiment
        ``EXPERIMENTS``, the registry itself, in run order.

    Examples
    --------
    >>> from icalign.registry import load_builtin_experiments
    >>> experiments = load_builtin_experiments()
    >>> "tf_vs_gd" in experiments, "critic_rounds" in experiments
    (True, True)
    >>> load_builtin_experiments() is experiments
    True
    """
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
    """Experiment names in registry order from names or aliases (None: all).

    Loads the built-in experiments first (``load_builtin_experiments``).

    Parameters
    ----------
    names : iterable of str or None
        Names or aliases (surrounding spaces and empty strings are ignored);
        None selects every experiment.

    Returns
    -------
    list of str
        The selected names, each once, in run order.

    Raises
    ------
    ValueError
        If a name is unknown (the message lists the valid ones) or nothing is
        selected.

    Examples
    --------
    >>> from icalign.registry import resolve
    >>> resolve(["critic-rounds", " a ", "tf_vs_gd"])
    ['tf_vs_gd', 'critic_rounds']
    >>> resolve(["z"])                        # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: unknown experiment(s) ['z']; valid names (aliases): tf_vs_gd (a), ...
    """
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
    """The distinct models the selected experiments train, in first-use order.

    Parameters
    ----------
    profile : Profile
        The sizes of the reproduction.
    names : iterable of str, optional
        Experiments to plan for, as for ``resolve`` (default: all).

    Returns
    -------
    list of TrainSpec
        Each distinct spec once (two experiments asking for the same spec
        share one model).

    Raises
    ------
    ValueError
        As for ``resolve``.

    Examples
    --------
    >>> from icalign.profiles import PROFILES
    >>> from icalign.registry import Experiment, plan, register, unregister
    >>> smoke = PROFILES["smoke"]
    >>> for name in ("toy1", "toy2"):
    ...     _ = register(Experiment(name=name, title=name, run=lambda runner: {},
    ...                             models=lambda profile: [profile.train_spec()]))
    >>> [spec.name for spec in plan(smoke, ["toy1", "toy2"])]     # one shared model
    ['E8-L2-H2-...']
    >>> for name in ("toy1", "toy2"):
    ...     unregister(name)
    """
    seen, out = set(), []
    for name in resolve(names):
        for spec in EXPERIMENTS[name].models(profile):
            if spec.name not in seen:
                seen.add(spec.name)
                out.append(spec)
    return out
