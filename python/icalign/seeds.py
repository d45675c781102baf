"""Several training seeds: one result from K per-seed results, and claims decided from them.

A run with K seeds trains every model K times, with training seeds
``train_seed + k`` (k = 0..K-1; seed s sets both the initialisation and the task
stream), and evaluates each on the same fixed evaluation tasks. An experiment runs
once per seed and ``merge_seed_payloads`` combines the K payloads into its JSON:

- ``curves[label]``: the mean curve over seeds (with K = 1 the curve itself);
- ``seed_curves[label]``: each seed's curve, for every curve of a trained model;
- ``uncertainty[label]``: for a trained model's curve ``{"kind": "seeds", "n": K,
  "lo", "hi", "task_se"}``, the pointwise 95 % Student t interval across seeds (None
  with one seed, and ``note`` "one seed") and the largest over seeds of its
  task-sampling standard error; for a curve that is the same for every seed (the
  baselines GD, mean, best, weighted and oracle, the task optimum: every curve an
  experiment makes with ``Runner.task_curve(..., trained=False)``) ``{"kind":
  "tasks", "n": n_tasks, "se", "lo", "hi"}``, its standard error over the
  evaluation tasks and mean +- 1.96 se;
- ``models[label]``: seed 0's model, and ``seed_models[label]`` every seed's;
- any other value that differs between seeds is kept per seed in
  ``per_seed[key]`` (and seed 0's value stays under ``key``).

The claim helpers (``compare``, ``within``, ``trend``) return the three-valued
``icalign.stats.verdict`` dicts: a trained model's numbers are tested across seeds
(paired t test, one-sample t test against a baseline evaluated on the same tasks, or
the seed-paired trend test); two baselines are compared with a z test on their task
standard errors, treated as independent, which overstates the spread of a
difference measured on the same tasks (conservative).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from . import stats

Z95 = 1.959963984540054       # two-sided 95 % normal quantile

# Evaluation tasks needed for a task-sampling standard error below 0.005 at t = 15:
# the largest per-task standard deviation of the normalized error at t = 15 among the
# curves (measured on 4000 tasks of n_dims 5: mean response 0.31, weighted mean 0.25,
# GD 0.18, best response 0.03; trained transformers lie between GD and the mean
# response) gives n >= (0.31 / 0.005)^2 = 3844; the quick and paper profiles use 5000
# (standard error <= 0.0044).
TARGET_SE_T15 = 0.005
WORST_TASK_SD_T15 = 0.31


def training_seeds(base: int, k: int) -> list:
    """The K training seeds of a run: base, base + 1, ..., base + K - 1."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"the number of seeds must be an int >= 1, got {k!r}")
    return [int(base) + i for i in range(k)]


def _same(a, b) -> bool:
    return a == b if not isinstance(a, float) or not math.isnan(a) else \
        isinstance(b, float) and math.isnan(b)


def merge_seed_payloads(payloads: Sequence[dict], baseline_se: dict,
                        model_task_se: Optional[Sequence[dict]] = None,
                        confidence: float = stats.CONFIDENCE) -> dict:
    """One payload from an experiment's K per-seed payloads (see the module notes).

    baseline_se: {label: {"se": [...], "n_tasks": n}} for the curves that are
    baselines (computed on the evaluation tasks, identical for every seed).
    model_task_se: per seed, {label: [...]}: the task-sampling standard error of a
    trained model's curve; the largest over seeds is kept as ``task_se``."""
    if not payloads:
        raise ValueError("no payloads to merge")
    k = len(payloads)
    first = payloads[0]
    out = {key: value for key, value in first.items()
           if key not in ("curves", "models")}
    per_seed = {}
    for key in out:
        values = [p.get(key) for p in payloads]
        if not all(_same(v, values[0]) for v in values[1:]):
            per_seed[key] = values
    if "curves" in first:
        curves, seed_curves, unc = {}, {}, {}
        for label, ys in first["curves"].items():
            rows = np.array([p["curves"][label] for p in payloads], dtype=np.float64)
            if label in baseline_se:
                se = np.asarray(baseline_se[label]["se"], dtype=np.float64)
                mean = rows[0]
                curves[label] = list(first["curves"][label])
                unc[label] = {"kind": "tasks", "n": int(baseline_se[label]["n_tasks"]),
                              "se": se.tolist(), "lo": (mean - Z95 * se).tolist(),
                              "hi": (mean + Z95 * se).tolist()}
                continue
            ci = stats.curve_ci(rows, confidence)
            # with one seed the curve is kept as computed (no re-summing)
            curves[label] = list(first["curves"][label]) if k == 1 else ci["mean"]
            seed_curves[label] = rows.tolist()
            unc[label] = {"kind": "seeds", "n": k, "lo": ci["lo"], "hi": ci["hi"],
                          "note": ci["note"]}
            if model_task_se and all(label in m for m in model_task_se):
                unc[label]["task_se"] = np.max([m[label] for m in model_task_se],
                                               axis=0).tolist()
        out["curves"] = curves
        out["seed_curves"] = seed_curves
        out["uncertainty"] = unc
    if "models" in first:
        out["models"] = first["models"]
        out["seed_models"] = {label: [p["models"][label] for p in payloads]
                              for label in first["models"]}
    if per_seed:
        out["per_seed"] = per_seed
    return out


# ---------------------------------------------------------------- reading results
def _index(res: dict, at) -> Optional[int]:
    if at is None:
        return None
    xs = res[res.get("x_key", "t")]
    return xs.index(at)


def _reduce(curve, idx):
    a = np.asarray(curve, dtype=np.float64)
    return float(a.mean()) if idx is None else float(a[idx])


def is_seeded(res: dict, label: str) -> bool:
    """True for a trained model's curve (varies with the training seed)."""
    if "seed_curves" in res:
        return label in res["seed_curves"]
    return label in res.get("curves", {}) and \
        res.get("uncertainty", {}).get(label, {}).get("kind") != "tasks"


def seed_values(res: dict, label: str, at=None) -> np.ndarray:
    """Per-seed values of a trained model's curve: at x = ``at``, or the mean over all
    x when ``at`` is None. A result without seed curves counts as one seed."""
    idx = _index(res, at)
    rows = res.get("seed_curves", {}).get(label) or [res["curves"][label]]
    return np.array([_reduce(row, idx) for row in rows])


def baseline_value(res: dict, label: str, at=None) -> tuple:
    """(value, task standard error) of a baseline curve at ``at`` (or its mean over x,
    whose error is bounded by the mean of the pointwise errors)."""
    idx = _index(res, at)
    value = _reduce(res["curves"][label], idx)
    se = res.get("uncertainty", {}).get(label, {}).get("se")
    if se is None:
        return value, None
    return value, _reduce(se, idx)


def _z_test(effect: float, se: Optional[float], what: str) -> dict:
    if se is None:
        return {"n": 1, "effect": effect, "p_value": None, "sd": None, "lo": None,
                "hi": None, "test": what}
    if se == 0.0:
        p = 0.0 if effect else 1.0
    else:
        p = math.erfc(abs(effect) / se / math.sqrt(2.0))
    return {"n": 2, "effect": effect, "p_value": p, "sd": None, "lo": effect - Z95 * se,
            "hi": effect + Z95 * se, "test": what}


def compare(res: dict, a: str, b: str, at=None, expect: str = "negative") -> dict:
    """Verdict on "a - b has the sign ``expect``" (default: a has the lower error), at
    x = ``at`` or on the mean over x."""
    if is_seeded(res, a) and is_seeded(res, b):
        test = stats.paired_t(seed_values(res, a, at), seed_values(res, b, at))
    elif is_seeded(res, a) or is_seeded(res, b):
        seeded, base = (a, b) if is_seeded(res, a) else (b, a)
        value, _ = baseline_value(res, base, at)
        test = stats.one_sample_t(seed_values(res, seeded, at), value)
        if seeded == b:
            test = dict(test, effect=-test["effect"],
                        lo=None if test["lo"] is None else -test["hi"],
                        hi=None if test["hi"] is None else -test["lo"])
        test["test"] = f"one-sample t test against the baseline, df = {test['df']}"
    else:
        (va, sa), (vb, sb) = baseline_value(res, a, at), baseline_value(res, b, at)
        se = None if sa is None or sb is None else math.hypot(sa, sb)
        test = _z_test(va - vb, se, "z test on task standard errors")
    return stats.verdict(test, expect)


def within(res: dict, label: str, lo: float, hi: float, at=None) -> dict:
    """Verdict on "the value lies in [lo, hi]": holds when its whole 95 % interval
    does, opposite when the interval lies outside, inconclusive otherwise."""
    if is_seeded(res, label):
        ci = stats.mean_ci(seed_values(res, label, at))
        mean, c_lo, c_hi = ci["mean"], ci["lo"], ci["hi"]
        test, n = "95 % t interval across seeds", ci["n"]
    else:
        mean, se = baseline_value(res, label, at)
        c_lo, c_hi = (None, None) if se is None else (mean - Z95 * se, mean + Z95 * se)
        test, n = "mean ± 1.96 task standard errors", 2
    if c_lo is None:
        v = stats.INCONCLUSIVE
    elif lo <= c_lo and c_hi <= hi:
        v = stats.HOLDS
    elif c_hi < lo or c_lo > hi:
        v = stats.OPPOSITE
    else:
        v = stats.INCONCLUSIVE
    interval = "(one seed, no interval)" if c_lo is None \
        else f"[{c_lo:.3f}, {c_hi:.3f}] ({test})"
    target = f"≤ {hi:g}" if lo == -math.inf else f"[{lo:g}, {hi:g}]"
    return {"verdict": v, "mark": stats.VERDICT_MARKS[v], "p_value": None, "effect": mean,
            "lo": c_lo, "hi": c_hi, "n": n, "test": test, "seeds_needed": None,
            "text": f"{label} {mean:.3f} {interval} vs {target}"}


def trend(res: dict, labels: Sequence[str], x: Optional[Sequence[float]] = None, at=None,
          expect: str = "negative") -> dict:
    """Verdict on the trend of the curves ``labels`` (in the claimed order, at
    positions ``x``; default ranks) at ``at`` or on the mean over x: the seed-paired
    trend test for trained models, a z test on the least-squares slope for baselines."""
    if all(is_seeded(res, lab) for lab in labels):
        values = np.column_stack([seed_values(res, lab, at) for lab in labels])
        return stats.verdict(stats.trend_test(values, x), expect)
    xs = np.arange(len(labels), dtype=np.float64) if x is None else np.asarray(x, float)
    vals, ses = zip(*(baseline_value(res, lab, at) for lab in labels))
    dx = xs - xs.mean()
    w = dx / float(stats.pairwise_dot(dx, dx))
    slope = float(stats.pairwise_dot(w, np.asarray(vals)))
    se = None if any(s is None for s in ses) else float(math.sqrt(np.sum((w * ses) ** 2)))
    return stats.verdict(_z_test(slope, se, "z test on the least-squares slope (task "
                                            "standard errors)"), expect)


def combine(*verdicts: dict) -> str:
    """All of several verdicts: holds if all hold, opposite if any is opposite,
    inconclusive otherwise."""
    kinds = [v["verdict"] for v in verdicts]
    if any(k == stats.OPPOSITE for k in kinds):
        return stats.OPPOSITE
    return stats.HOLDS if all(k == stats.HOLDS for k in kinds) else stats.INCONCLUSIVE


# ---------------------------------------------------------------- one seed's result
def n_seeds(res: dict) -> int:
    """The number of training seeds a result was made with."""
    return len(res.get("seeds", {}).get("training_seeds", [0]))


def seed_result(res: dict, k: int) -> dict:
    """Seed k's own result, rebuilt from a merged one: its curves, its models and its
    values of everything that differs between seeds (``per_seed``)."""
    out = dict(res)
    for key, values in res.get("per_seed", {}).items():
        out[key] = values[k]
    if "seed_curves" in res:
        out["curves"] = {label: (res["seed_curves"][label][k] if label in res["seed_curves"]
                                 else ys) for label, ys in res["curves"].items()}
    if "seed_models" in res:
        out["models"] = {label: infos[k] for label, infos in res["seed_models"].items()}
    return out


def agreement(verdicts: Sequence[str]) -> str:
    """One verdict from per-seed verdicts of a claim that is tested within each seed:
    holds (or opposite) only when it does in every seed, else inconclusive."""
    kinds = set(verdicts)
    if kinds == {stats.HOLDS}:
        return stats.HOLDS
    if kinds == {stats.OPPOSITE}:
        return stats.OPPOSITE
    return stats.INCONCLUSIVE
