"""What does in-context alignment optimise? The training objective swept over
Plackett-Luce and Bradley-Terry with cosine and neg_sq policy rewards; for each,
the trained transformer, GD on the same objective and the objective's own
optimum (the prediction minimising it over the t examples, ``surrogate_optimum``),
at exact and at noisy shown rewards. Not in the paper.

With several training seeds, a verdict about a trained model is decided across the
seeds: a one-sample t test (and its 95 % interval) of the per-seed differences at
t = 15. With one seed the per-task standard errors of the evaluation set are used
instead (paired where two methods answer the same tasks): they cover the sampling of
evaluation tasks, not the training seed of the model.
"""
from __future__ import annotations

import math

import numpy as np

from .. import plotting, stats
from ..baselines import DEFAULT_T, gd_baseline, simple_baseline
from ..evaluate import normalized_error, optimum_errors, transformer_predictions
from ..profiles import PROFILES
from ..registry import Claim, Experiment, register

KEY = "objectives"
SECTION = "Training objectives: what in-context alignment optimises (not in the paper)"
OBJECTIVES = (("pl", "cosine"), ("pl", "neg_sq"), ("bt", "cosine"), ("bt", "neg_sq"))
PAPER_OBJECTIVE = "PL-cosine"
CLOSE = 0.05          # |TF - optimum| at t = 15 counted as "reaches"
CONVERGED_ENOUGH = 0.95  # an optimum curve is a minimiser where this share converged
NOTE = (
    "Each objective trains its own copy of the default model (p = 0) and is evaluated at "
    "exact (p = 0) and noisy (p = 0.5) shown rewards. GD fits a linear map on the same "
    "objective; 'optimum' minimises that objective directly over the prediction. With "
    "exact rewards the neg_sq objectives have no finite minimiser (the ranking orders every "
    "pair along y* − eps, so the loss keeps falling along that line): their optimum curves "
    "then show the iterate at the step cap, and the JSON's `converged` says so. Per seed, "
    "`t15` and `paired_t15` hold means and standard errors over evaluation tasks; with "
    "several training seeds `per_seed` holds them for every seed and the claims test the "
    "per-seed differences across seeds.")

for _profile in PROFILES.values():
    _profile.extra.setdefault(KEY, {"objectives": [list(o) for o in OBJECTIVES],
                                    "noise_levels": [0.0, 0.5], "optimum_max_steps": 1000})


def objective_label(objective: str, reward: str) -> str:
    """'PL-cosine', 'BT-neg_sq', ...: the label of a (objective, reward) pair."""
    return f"{objective.upper()}-{reward}"


def _specs(profile):
    return [(objective_label(o, r), profile.train_spec(objective=o, reward=r))
            for o, r in profile.extra[KEY]["objectives"]]


def _models(profile):
    return [spec for _, spec in _specs(profile)]


def _p(p: float) -> str:
    return f"p={p:g}"


def _mean_se(x) -> dict:
    x = np.asarray(x, np.float64)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return {"mean": float(x.mean()), "se": se}


def _run(runner) -> dict:
    settings = runner.profile.extra[KEY]
    t = list(DEFAULT_T)
    i15 = t.index(15)
    specs = _specs(runner.profile)
    curves, converged, at15, paired, gd_steps = {}, {}, {}, {}, {}
    for p in settings["noise_levels"]:
        batch, sfx = runner.eval_batch(p), " " + _p(p)
        steps = runner.profile.gd_steps_at(p)
        gd_steps[_p(p)] = steps
        per_task = {}
        with runner.timer("baselines"):
            for name in ("best", "oracle"):
                per_task[name] = normalized_error(simple_baseline(name, batch, t), batch.ystar)
        for label, spec in specs:
            model = runner.trained_model(spec)
            with runner.timer("tf_eval"):
                per_task["TF " + label] = normalized_error(
                    transformer_predictions(model, batch, t), batch.ystar)
            with runner.timer("gd"):
                per_task["GD " + label] = normalized_error(
                    gd_baseline(batch, t, steps=steps, lr=runner.profile.gd_lr,
                                seed=runner.profile.gd_seed, objective=spec.objective,
                                reward=spec.reward), batch.ystar)
            with runner.timer("optimum"):
                per_task["optimum " + label], conv = optimum_errors(
                    batch, t, spec.objective, spec.reward, settings["optimum_max_steps"])
            converged[label + sfx] = conv.tolist()
        for key, e in per_task.items():
            curves[key + sfx] = runner.task_curve(key + sfx, e, trained=key.startswith("TF "))
            at15[key + sfx] = _mean_se(e[:, i15])
        labels = [label for label, _ in specs]
        for a in labels:
            for other in ["optimum " + a, "best"] + ["TF " + b for b in labels if b != a]:
                paired[f"TF {a} − {other}{sfx}"] = _mean_se(
                    per_task["TF " + a][:, i15] - per_task[other][:, i15])
    return {"curves": curves, "converged": converged, "t15": at15, "paired_t15": paired,
            "objectives": [label for label, _ in specs],
            "noise_levels": list(settings["noise_levels"]), "gd_steps": gd_steps,
            "optimum_max_steps": settings["optimum_max_steps"],
            "config": runner.profile.default_config().to_dict(),
            "models": {label: runner.model_info(spec) for label, spec in specs}}


# ---------------------------------------------------------------------- claims
def _f(x: float) -> str:
    return f"{x:.3f}"


def _pm(d: dict) -> str:
    return f"{d['mean']:+.3f} ± {2 * d['se']:.3f}"


def _per_seed(r, table: str, key: str) -> list:
    """The per-seed means of ``r[table][key]`` (one entry with one seed)."""
    seeds = r.get("per_seed", {}).get(table)
    return [row[key]["mean"] for row in seeds] if seeds else [r[table][key]["mean"]]


def _t15(r, key: str) -> float:
    """Mean over training seeds of a curve's error at t = 15."""
    return float(np.mean(_per_seed(r, "t15", key)))


def _difference(r, key: str) -> dict:
    """A difference at t = 15 (a ``paired_t15`` key) with its uncertainty: across
    training seeds (one-sample t test, 95 % t interval) when there are several, else
    over evaluation tasks (mean ± 2 paired standard errors). ``sign`` is +1 / -1 where
    it is significantly above / below 0, else 0."""
    values = _per_seed(r, "paired_t15", key)
    if len(values) > 1:
        test = stats.one_sample_t(values)
        v = stats.verdict(test, "positive")
        sign = {stats.HOLDS: 1, stats.OPPOSITE: -1}.get(v["verdict"], 0)
        return {"mean": test["mean"], "lo": test["lo"], "hi": test["hi"], "sign": sign,
                "text": stats.verdict_text(dict(v, seeds_needed=None))}
    d = r["paired_t15"][key]
    return {"mean": d["mean"], "lo": d["mean"] - 2 * d["se"], "hi": d["mean"] + 2 * d["se"],
            "sign": _sign(d), "text": _pm(d)}


def _attained(r, label, sfx) -> float:
    """Share of tasks whose optimum converged at t = 15."""
    return r["converged"][label + sfx][list(DEFAULT_T).index(15)]


def _sign(d: dict) -> int:
    """+1 / -1 where the mean is beyond two standard errors above / below 0, else 0."""
    if d["mean"] - 2 * d["se"] > 0:
        return 1
    if d["mean"] + 2 * d["se"] < 0:
        return -1
    return 0


def _uncertainty_text(r) -> str:
    k = len(_per_seed(r, "t15", next(iter(r["t15"]))))
    return (f"one-sample t test across {k} training seeds"
            if k > 1 else "± 2 paired task standard errors")


def _tested(claim: str, evidence: str, passed, criterion: str) -> Claim:
    """A claim decided by a test (across seeds, or over tasks with one seed): True
    holds, False its opposite holds, None not distinguishable (inconclusive)."""
    verdict = {True: stats.HOLDS, False: stats.OPPOSITE, None: stats.INCONCLUSIVE}[passed]
    return Claim.decided(SECTION, claim, evidence, verdict, criterion)


def _claims_at(r, p) -> list:
    sfx = " " + _p(p)
    labels = r["objectives"]
    tf = {a: _t15(r, f"TF {a}{sfx}") for a in labels}
    opt = {a: _t15(r, f"optimum {a}{sfx}") for a in labels}
    how = _uncertainty_text(r)
    attained = {a: _attained(r, a, sfx) >= CONVERGED_ENOUGH for a in labels}
    rows = []

    # 1. TF reaches its own objective's optimum
    parts, verdicts = [], []
    for a in labels:
        d = _difference(r, f"TF {a} − optimum {a}{sfx}")
        conv = _attained(r, a, sfx)
        parts.append(f"{a}: TF {_f(tf[a])}, optimum {_f(opt[a])} (converged "
                     f"{100 * conv:.0f} %), TF − optimum {d['text']}")
        if attained[a]:
            inside = -CLOSE <= d["lo"] and d["hi"] <= CLOSE
            outside = d["lo"] > CLOSE or d["hi"] < -CLOSE
            verdicts.append(True if inside else False if outside else None)
    claim = f"TF reaches its own objective's optimum ({_p(p)})"
    criterion = (f"|TF − optimum| ≤ {CLOSE} at t = 15 (the whole interval; {how}) for every "
                 f"objective whose optimum converged on ≥ {100 * CONVERGED_ENOUGH:.0f} % of "
                 f"tasks")
    evidence = "t = 15: " + "; ".join(parts)
    if verdicts:
        verdict = None if None in verdicts else all(verdicts)
        rows.append(_tested(claim, evidence, verdict, criterion))
    else:  # no optimum converged: nothing to test
        rows.append(Claim(SECTION, claim, evidence, None, criterion))

    # 2. which objective brings TF closest to y*
    order = sorted(labels, key=lambda a: tf[a])
    best = order[0]
    listed = ", ".join(f"{a} {_f(tf[a])}" for a in order)
    if best == PAPER_OBJECTIVE:
        d = _difference(r, f"TF {order[1]} − TF {best}{sfx}")
        verdict = True if d["sign"] > 0 else None
        detail = f"next {order[1]} − {best}: {d['text']}"
    else:
        d = _difference(r, f"TF {PAPER_OBJECTIVE} − TF {best}{sfx}")
        verdict = False if d["sign"] > 0 else None
        detail = f"{PAPER_OBJECTIVE} − {best}: {d['text']}"
    rows.append(_tested(f"The paper's objective ({PAPER_OBJECTIVE}) brings TF closest to y* "
                        f"({_p(p)})", f"TF at t = 15, best first: {listed}; {detail}", verdict,
                        f"lowest TF error at t = 15, significantly ({how}, 5 % level)"))

    # 3. does any objective let TF beat the best-rewarded response?
    diffs = {a: _difference(r, f"TF {a} − best{sfx}") for a in labels}
    closest = min(labels, key=lambda a: diffs[a]["mean"])
    signs = [diffs[a]["sign"] for a in labels]
    verdict = True if -1 in signs else False if all(s > 0 for s in signs) else None
    rows.append(_tested(f"Some objective lets TF beat the best-rewarded response ({_p(p)})",
                        f"t = 15: best {_f(_t15(r, 'best' + sfx))}; closest TF {closest} "
                        f"{_f(tf[closest])}, TF − best: {diffs[closest]['text']}", verdict,
                        f"some TF below best at t = 15, significantly ({how}, 5 % level)"))

    # 4. do the objectives rank alike for TF and for their optima?
    kept = [a for a in labels if attained[a]]
    tf_order = sorted(kept, key=lambda a: tf[a])
    opt_order = sorted(kept, key=lambda a: opt[a])
    dropped = [a for a in labels if not attained[a]]
    note = f" (left out, no finite optimum: {', '.join(dropped)})" if dropped else ""
    rows.append(Claim(SECTION, f"The objectives rank alike for TF and for their optima "
                               f"({_p(p)})",
                      f"t = 15, best first: TF {' < '.join(tf_order)}; optima "
                      f"{' < '.join(opt_order)}{note}",
                      (tf_order == opt_order) if len(kept) >= 2 else None,
                      "same order of the mean errors at t = 15 (means over seeds) among "
                      "objectives with a converged optimum"))
    return rows


def _claims(results) -> list:
    r = results[KEY]
    return [row for p in r["noise_levels"] for row in _claims_at(r, p)]


def beyond_the_paper(results: dict) -> str:
    """The README paragraph on what the training objective's optimum explains,
    written from a results folder's JSON.

    Parameters
    ----------
    results : dict
        ``report.load_results(dir)``: uses ``tf_vs_gd`` (its ``optimum`` curve) and,
        where present, ``objectives``.

    Returns
    -------
    str
        One Markdown paragraph; every number comes from ``results``.

    Examples
    --------
    >>> from icalign.experiments.objectives import beyond_the_paper
    >>> a = {"t": list(range(2, 16)), "profile": "smoke",
    ...      "curves": {k: [0.5] * 14 for k in ("TF", "GD", "best", "optimum")}}
    >>> beyond_the_paper({"tf_vs_gd": a}).startswith("**Beyond the paper")
    True
    """
    a = results["tf_vs_gd"]
    i15 = a["t"].index(15)
    c = {k: a["curves"][k][i15] for k in ("TF", "GD", "best", "optimum")}
    text = (
        f"**Beyond the paper: what in-context alignment optimises.** Minimised directly over "
        f"the prediction, the training objective itself (Plackett-Luce with the cosine "
        f"reward) errs {_f(c['optimum'])} at t = 15 with exact rewards ({a.get('profile')} "
        f"profile), where the transformer trained on it reaches {_f(c['TF'])} and GD "
        f"{_f(c['GD'])}, while the best-rewarded response errs {_f(c['best'])}: the plateau "
        f"near 0.3 is the objective's own optimum, not a shortfall of the transformer or of "
        f"GD. A ranking of responses says which way is better, and the objective's minimiser "
        f"overshoots y* in that direction. ")
    r = results.get(KEY)
    if r is None:
        return text + ("The sweep over the four objectives (`icalign reproduce --only "
                       "objectives`) is not part of these published results.")
    p0, p5 = r["noise_levels"][0], r["noise_levels"][-1]

    def at(key, p):
        return _t15(r, f"{key} {_p(p)}")

    labels = r["objectives"]
    conv = {(lab, p): _attained(r, lab, " " + _p(p)) for lab in labels for p in (p0, p5)}
    no_min = [lab for lab in labels if conv[(lab, p0)] < CONVERGED_ENOUGH]
    tf_best0 = min(labels, key=lambda lab: at("TF " + lab, p0))
    tf_best5 = min(labels, key=lambda lab: at("TF " + lab, p5))
    if no_min:
        text += (f"With exact rewards {', '.join(no_min)} have no finite minimiser (every "
                 f"pair is ordered along y* − eps, so the loss keeps falling along that "
                 f"line). ")
    n = r.get("profile_settings", {}).get("eval_size")
    text += (f"Across the four objectives (`objectives`{f', {n} evaluation tasks' if n else ''}) "
             f"TF comes closest to y* with "
             f"{tf_best0} ({_f(at('TF ' + tf_best0, p0))}) at p = {p0:g} and with {tf_best5} "
             f"({_f(at('TF ' + tf_best5, p5))}) at p = {p5:g}, where the best-rewarded "
             f"response errs {_f(at('best', p5))}. The claims table gives each comparison "
             f"with its test and interval.")
    return text


register(Experiment(KEY, "Training objectives: TF, GD and each objective's optimum", _run,
                    _models, plotting.plot_objectives, _claims, aliases=("objectives_sweep",),
                    group="objectives", order=30, settings=KEY, note=NOTE), replace=True)
