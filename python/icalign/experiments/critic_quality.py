"""The critic-quality experiments: self-correction gain against critic accuracy,
over several rounds, and against model size (``docs/math.md``, "Critics and
self-correction" and "Claims and what each tests").

Importing this module registers ``critic_accuracy_gain``, ``critic_rounds`` and
``critic_model_size`` and adds their settings to every profile as
``profile.extra["critic"]`` (their declared settings key, so the settings enter the
results' fingerprints). Models:

* the **self-critic model**: the profile's default model with a reward head, trained with
  the profile's recipe plus ``reward_weight`` (see ``icalign.critics``) — experiments 1
  and 2;
* the **size models**: the models of the depth panel and of the heads panel at fixed head
  size (width and depth vary), shared with those panels through the model cache —
  experiment 3.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .. import critic_studies, plotting, seeds
from ..critic_studies import DEFAULT_VARIANTS
from ..profiles import PROFILES, Profile, depth_series, head_series
from ..registry import Claim, Experiment, register
from ..self_correction import self_check_accuracy

SETTINGS_KEY = "critic"

#: Settings per profile (overridable through ``profile.extra["critic"]``):
#: n_tasks evaluation tasks (the first of the runner's fixed evaluation set), the k values,
#: rounds and (reference, context) variants of experiment 1, k and rounds of experiment 2,
#: the perfect critics of experiment 3, the reward-head loss weight.
_COMMON = {"gain_rounds": 1, "k": 4, "rounds": 5, "reward_weight": 10.0, "seed": 0,
           "variants": [list(v) for v in DEFAULT_VARIANTS],
           "size_critics": ["oracle", "quality"]}
CRITIC_SETTINGS = {
    "smoke": {**_COMMON, "n_tasks": 32, "k_values": [2, 4]},
    "quick": {**_COMMON, "n_tasks": 500, "k_values": [2, 4, 8]},
    "paper": {**_COMMON, "n_tasks": 2000, "k_values": [2, 4, 8],
              "variants": [["oracle", "critic"], ["quality", "oracle"], ["oracle", "oracle"],
                           ["quality", "critic"]]},
}
_DEFAULT = CRITIC_SETTINGS["quick"]

for _name, _profile in PROFILES.items():
    _profile.extra.setdefault(SETTINGS_KEY, dict(CRITIC_SETTINGS.get(_name, _DEFAULT)))


def settings(profile: Profile) -> dict:
    return {**_DEFAULT, **profile.extra.get(SETTINGS_KEY, {})}


def self_critic_spec(profile: Profile):
    """The default model with a reward head, trained jointly (PL + reward_weight x MSE)."""
    return profile.train_spec(profile.default_config().replace(reward_head=True),
                              reward_weight=float(settings(profile)["reward_weight"]))


def size_configs(profile: Profile) -> list:
    """(label, config) of the depth panel and the heads panel at fixed head size."""
    out, seen = [], set()
    series = list(head_series(profile).values())[0]      # heads x head_size: width varies
    for label, cfg in list(depth_series(profile)) + series:
        key = (cfg.n_embd, cfg.n_layer, cfg.n_head)
        if key not in seen:
            seen.add(key)
            out.append((f"E{cfg.n_embd} L{cfg.n_layer} H{cfg.n_head}", cfg))
    return out


# ---------------------------------------------------------------------- runs
def _eval(runner):
    return settings(runner.profile), runner.eval_batch(0.0)


def _run_accuracy_gain(runner) -> dict:
    s, batch = _eval(runner)
    spec = self_critic_spec(runner.profile)
    model = runner.trained_model(spec)
    with runner.timer("critic"):
        res = critic_studies.critic_accuracy_gain(
            model, runner.task, k_values=s["k_values"], rounds=s["gain_rounds"],
            n_tasks=s["n_tasks"], seed=s["seed"], variants=s["variants"], batch=batch)
        res["self_check"] = self_check_accuracy(model, batch[:s["n_tasks"]])
    res["models"] = {"self": runner.model_info(spec)}
    return res


def _run_rounds(runner) -> dict:
    s, batch = _eval(runner)
    spec = self_critic_spec(runner.profile)
    model = runner.trained_model(spec)
    with runner.timer("critic"):
        res = critic_studies.critic_rounds(model, runner.task, k=s["k"], rounds=s["rounds"],
                                           n_tasks=s["n_tasks"], seed=s["seed"], batch=batch)
    res["models"] = {"self": runner.model_info(spec)}
    return res


def _size_models(profile):
    return [profile.train_spec(cfg) for _, cfg in size_configs(profile)]


def _run_model_size(runner) -> dict:
    s, batch = _eval(runner)
    items = size_configs(runner.profile)
    specs = _size_models(runner.profile)
    models = [runner.trained_model(sp) for sp in specs]
    with runner.timer("critic"):
        res = critic_studies.critic_model_size(
            models, runner.task, critics=s["size_critics"], k=s["k"],
            rounds=s["gain_rounds"], n_tasks=s["n_tasks"], seed=s["seed"],
            labels=[lab for lab, _ in items], batch=batch)
    res["models"] = {lab: runner.model_info(sp) for (lab, _), sp in zip(items, specs)}
    return res


# ---------------------------------------------------------------------- claims
#: report.md section of the critic rows
CLAIM_SECTION = "Critic quality and self-correction (the paper's LLM findings, synthetic world)"


def _fmt(x, nd=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{nd}f}"


def _row(claim, evidence, holds, opposite, criterion) -> Claim:
    """A claim tested on the evaluation tasks of one model: holds, its opposite holds
    (both judged by the task-level test in the criterion), or neither."""
    verdict = "holds" if holds else ("opposite" if opposite else "inconclusive")
    return Claim.decided(CLAIM_SECTION, claim, evidence, verdict, criterion)


def _variant_words(v):
    ref = f"the {v.get('reference', 'oracle')} critic"
    ctx = ("each critic scores the context and the answers"
           if v.get("context", "critic") == "critic"
           else "the oracle scores the context, the critic only the model's answers")
    return ref, ctx


def claim_accuracy_gain(result: Mapping, alpha: float = 0.05) -> list[Claim]:
    """Paper: self-correction gain correlates positively and significantly (p < 0.05)
    with the critic's (self-check) accuracy. One row per (reference, context) variant."""
    rows = []
    for v in result.get("variants") or [result]:
        r, p = v["pearson_r"], v["p_value"]
        ref, ctx = _variant_words(v)
        evidence = (f"Pearson r = {_fmt(r)}, p = {_fmt(p)} (t test; permutation p = "
                    f"{_fmt(v.get('p_value_permutation'))}), slope = {_fmt(v['slope'])} gain "
                    f"per unit accuracy over {v['n_points']} (critic, k) settings; "
                    f"{result.get('rounds', 1)} round(s)")
        ab = v.get("above_chance")
        if ab:
            evidence += (f"; accuracy >= 0.5 only: r = {_fmt(ab['pearson_r'])}, "
                         f"p = {_fmt(ab['p_value'])} ({ab['n_points']} settings)")
        rows.append(_row(f"Self-correction gain grows with critic accuracy (paper: significant "
                         f"positive correlation) — noisy versions of {ref}; {ctx}",
                         evidence, r > 0 and p < alpha, r < 0 and p < alpha,
                         f"Pearson r > 0 with two-sided p < {alpha:g} over all settings "
                         f"(✗: r < 0 with p < {alpha:g})"))
    return rows


def claim_rounds(result: Mapping, accurate: Sequence[str] = ("oracle", "quality"),
                 poor: str = "self") -> list[Claim]:
    """Paper: with an accurate critic the error keeps falling for a few rounds (~3); with
    the model's own (poor) critic it degrades after about one round. Differences are judged
    by their paired standard errors over tasks (``gain_se``, ``after_best``)."""
    rows = []
    curves = result["curves"]
    acc = result.get("accuracy", {})
    for label in ([accurate] if isinstance(accurate, str) else accurate):
        if label not in curves:
            continue
        c = curves[label]
        b = int(np.argmin(c))
        gse = result["gain_se"][label][b]
        gain = c[0] - c[b]
        rows.append(_row(f"With an accurate critic ({label}) self-correction keeps gaining "
                         f"for a few rounds (paper: up to ~3)",
                         f"error by round {[round(v, 3) for v in c]}; lowest at round {b}, "
                         f"gain {_fmt(gain)} ± {_fmt(gse)} (critic accuracy "
                         f"{_fmt(acc.get(label))})",
                         b >= 2 and gain > 2 * gse,
                         all(c[0] - c[r] < -2 * result["gain_se"][label][r]
                             for r in range(2, len(c))) and len(c) > 2,
                         "error lowest at round >= 2, below round 0 by more than 2 paired "
                         "standard errors (✗: every round >= 2 above round 0 by as much)"))
    if poor in curves:
        c = curves[poor]
        ab = result["after_best"][poor]
        b = ab["best_round"]
        gse = result["gain_se"][poor][b]
        first = "no gain at any round" if b == 0 else f"gain {_fmt(c[0] - c[b])} ± {_fmt(gse)}"
        rows.append(_row(f"With its own critic ({poor}) self-correction degrades (paper: after "
                         f"about one round)",
                         f"error by round {[round(v, 3) for v in c]}; lowest at round {b} "
                         f"({first}), then rises by "
                         f"{_fmt(ab['rise'])} ± {_fmt(ab['rise_se'])} to round {len(c) - 1} "
                         f"(self-critic accuracy {_fmt(acc.get(poor))})",
                         b <= 1 and ab["rise"] > 2 * ab["rise_se"],
                         b == len(c) - 1 and c[0] - c[b] > 2 * gse,
                         "error lowest at round <= 1, and the last round above it by more "
                         "than 2 paired standard errors (✗: still falling at the last round, "
                         "by more than 2 standard errors)"))
    return rows


def claim_model_size(result: Mapping) -> list[Claim]:
    """Paper: a too-small model cannot self-correct even with a near-perfect critic (1.8B
    failed, 7B succeeded). One row per critic."""
    sizes = np.asarray(result["sizes"])
    i_small, i_big = int(np.argmin(sizes)), int(np.argmax(sizes))
    by = result.get("by_critic") or {result.get("critic", "oracle"): result}
    rows = []
    for label, r in by.items():
        gains, ses = np.asarray(r["gain"]), np.asarray(r["gain_se"])
        ok = (i_small != i_big and not gains[i_small] > 2 * ses[i_small]
              and gains[i_big] > 2 * ses[i_big])
        parts = [f"{lab} ({s:,} params): {_fmt(g)} ± {_fmt(se)}" for lab, s, g, se
                 in zip(result["labels"], result["sizes"], r["gain"], r["gain_se"])]
        rows.append(_row(f"A too-small model cannot self-correct even with a near-perfect "
                         f"critic ({label}); the largest can",
                         f"gain after {result.get('rounds', 1)} round(s): " + "; ".join(parts),
                         ok, i_small != i_big and gains[i_small] > 2 * ses[i_small],
                         "smallest model's gain < 2 standard errors, largest model's "
                         "gain > 2 standard errors (✗: the smallest gains by more than 2)"))
    return rows


def critic_claims(accuracy_gain: Mapping | None = None, rounds: Mapping | None = None,
                  model_size: Mapping | None = None) -> list[Claim]:
    """The report's claims of whichever of the three results are given."""
    rows = []
    if accuracy_gain is not None:
        rows.extend(claim_accuracy_gain(accuracy_gain))
    if rounds is not None:
        rows.extend(claim_rounds(rounds))
    if model_size is not None:
        rows.extend(claim_model_size(model_size))
    return rows


# ---------------------------------------------------------------------- registration
def _claims_of(fn, name):
    """The claims of result ``name``. With several training seeds each claim is tested
    within every seed (on its own model and tasks) and holds, or its opposite holds,
    only when it does in every seed; the evidence shown is the first seed's."""
    def claims(results):
        res = results[name]
        k = seeds.n_seeds(res)
        if k == 1:
            return fn(res)
        per_seed = [fn(seeds.seed_result(res, i)) for i in range(k)]
        rows = []
        for j, first in enumerate(per_seed[0]):
            verdicts = [rows_k[j].verdict for rows_k in per_seed]
            marks = " ".join({"holds": "✓", "opposite": "✗"}.get(rows_k[j].verdict, "?")
                             for rows_k in per_seed)
            rows.append(Claim.decided(first.section, first.claim,
                                      f"first seed: {first.evidence}; per seed: {marks} "
                                      f"(✓ holds, ✗ opposite, ? inconclusive in that seed)",
                                      seeds.agreement(verdicts),
                                      first.criterion + f"; in each of the {k} seeds"))
        return rows
    return claims


def _self_critic_models(profile):
    return [self_critic_spec(profile)]


register(Experiment("critic_accuracy_gain", "critic accuracy vs self-correction gain",
                    _run_accuracy_gain, _self_critic_models, plotting.plot_accuracy_gain,
                    _claims_of(claim_accuracy_gain, "critic_accuracy_gain"),
                    aliases=("critic-gain",), group="critic", x_key="points", order=20,
                    settings=SETTINGS_KEY), replace=True)
register(Experiment("critic_rounds", "multi-round self-correction with oracle, noisy and "
                    "self critics", _run_rounds, _self_critic_models, plotting.plot_rounds,
                    _claims_of(claim_rounds, "critic_rounds"),
                    aliases=("critic-rounds",), group="critic", x_key="rounds", order=21,
                    settings=SETTINGS_KEY), replace=True)
register(Experiment("critic_model_size", "self-correction with a near-perfect critic vs model "
                    "size", _run_model_size, _size_models, plotting.plot_model_size,
                    _claims_of(claim_model_size, "critic_model_size"),
                    aliases=("critic-size",), group="critic", x_key="sizes", order=22,
                    settings=SETTINGS_KEY), replace=True)

#: names of the experiments of this family, in report order
EXPERIMENT_NAMES = ("critic_accuracy_gain", "critic_rounds", "critic_model_size")
