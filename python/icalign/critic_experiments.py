"""The critic-quality experiments in the experiment registry of ``icalign.experiments``.

Importing this module registers ``critic_accuracy_gain``, ``critic_rounds`` and
``critic_model_size`` (``icalign.experiments`` imports it at its end) and adds their
settings to every profile as ``profile.extra["critic"]`` (so they enter the results'
fingerprints). Models:

* the **self-critic model**: the profile's default model with a reward head, trained with
  the profile's recipe plus ``reward_weight`` (see ``icalign.critic`` for the design) —
  experiments 1 and 2;
* the **size models**: the models of the depth panel and of the heads panel at fixed head
  size (width and depth vary), shared with those panels through the model cache —
  experiment 3.
"""
from __future__ import annotations

from . import critic as C
from .experiments import (PROFILES, Claim, Experiment, Profile, _depth_configs, _head_series,
                          register)

#: Settings per profile (overridable through ``profile.extra["critic"]``):
#: n_tasks evaluation tasks (the first of the runner's fixed evaluation set), the k values,
#: rounds and (reference, context) variants of experiment 1, k and rounds of experiment 2,
#: the perfect critics of experiment 3, the reward-head loss weight.
_COMMON = {"gain_rounds": 1, "k": 4, "rounds": 5, "reward_weight": 10.0, "seed": 0,
           "variants": [list(v) for v in C.DEFAULT_VARIANTS],
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
    _profile.extra.setdefault("critic", dict(CRITIC_SETTINGS.get(_name, _DEFAULT)))


def settings(profile: Profile) -> dict:
    return {**_DEFAULT, **profile.extra.get("critic", {})}


def self_critic_spec(profile: Profile):
    """The default model with a reward head, trained jointly (PL + reward_weight x MSE)."""
    return profile.train_spec(profile.default_config().replace(reward_head=True),
                              reward_weight=float(settings(profile)["reward_weight"]))


def size_configs(profile: Profile) -> list:
    """(label, config) of the depth panel and the heads panel at fixed head size."""
    out, seen = [], set()
    series = list(_head_series(profile).values())[0]      # heads x head_size: width varies
    for label, cfg in list(_depth_configs(profile)) + series:
        key = (cfg.n_embd, cfg.n_layer, cfg.n_head)
        if key not in seen:
            seen.add(key)
            out.append((f"E{cfg.n_embd} L{cfg.n_layer} H{cfg.n_head}", cfg))
    return out


def _eval(runner):
    s = settings(runner.profile)
    return s, runner.eval_batch(0.0)


def _run_accuracy_gain(runner) -> dict:
    s, batch = _eval(runner)
    spec = self_critic_spec(runner.profile)
    model = runner.trained_model(spec)
    res = C.critic_accuracy_gain(model, runner.task, k_values=s["k_values"],
                                 rounds=s["gain_rounds"], n_tasks=s["n_tasks"], seed=s["seed"],
                                 variants=s["variants"], batch=batch)
    res["self_check"] = C.self_check_accuracy(model, batch[:s["n_tasks"]])
    res["models"] = {"self": runner.model_info(spec)}
    return res


def _run_rounds(runner) -> dict:
    s, batch = _eval(runner)
    spec = self_critic_spec(runner.profile)
    model = runner.trained_model(spec)
    res = C.critic_rounds(model, runner.task, k=s["k"], rounds=s["rounds"],
                          n_tasks=s["n_tasks"], seed=s["seed"], batch=batch)
    res["models"] = {"self": runner.model_info(spec)}
    return res


def _run_model_size(runner) -> dict:
    s, batch = _eval(runner)
    items = size_configs(runner.profile)
    specs = [runner.profile.train_spec(cfg) for _, cfg in items]
    models = [runner.trained_model(sp) for sp in specs]
    res = C.critic_model_size(models, runner.task, critics=s["size_critics"], k=s["k"],
                              rounds=s["gain_rounds"], n_tasks=s["n_tasks"], seed=s["seed"],
                              labels=[lab for lab, _ in items], batch=batch)
    res["models"] = {lab: runner.model_info(sp) for (lab, _), sp in zip(items, specs)}
    return res


def _claims(fn, name):
    def claims(results):
        rows = fn(results[name])
        return [Claim(section=r["section"], claim=r["claim"], evidence=r["evidence"],
                      passed=r["passed"], criterion=r["criterion"]) for r in rows]
    return claims


register(Experiment("critic_accuracy_gain", "critic accuracy vs self-correction gain",
                    _run_accuracy_gain, lambda p: [self_critic_spec(p)], C.plot_accuracy_gain,
                    _claims(C.claim_accuracy_gain, "critic_accuracy_gain"),
                    aliases=("critic-gain",), group="critic", x_key="points"))
register(Experiment("critic_rounds", "multi-round self-correction with oracle, noisy and "
                    "self critics", _run_rounds, lambda p: [self_critic_spec(p)],
                    C.plot_rounds, _claims(C.claim_rounds, "critic_rounds"),
                    aliases=("critic-rounds",), group="critic", x_key="rounds"))
register(Experiment("critic_model_size", "self-correction with a near-perfect critic vs model "
                    "size", _run_model_size,
                    lambda p: [p.train_spec(cfg) for _, cfg in size_configs(p)],
                    C.plot_model_size, _claims(C.claim_model_size, "critic_model_size"),
                    aliases=("critic-size",), group="critic", x_key="sizes"))
