"""The synthetic panels (a)-(f) of the paper's Figure 2: the trained transformer
against gradient descent and simple baselines, under reward noise, and the
architecture ablations (``docs/math.md``, "Claims and what each tests")."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import plotting, seeds, stats
from ..evaluate import optimum_errors
from ..profiles import Profile, depth_series, head_series
from ..registry import Claim, Experiment, register

SYNTH = "Synthetic experiments (the paper's Figure 2)"
BASE = "Against simple baselines and the task optimum (not in the paper)"

REWARD_NOISE_NOTE = (
    "TF is the default model, trained with exact rewards (p = 0) and evaluated with noisy "
    "shown rewards: p is a property of the critic whose rewards are shown, not of training "
    "(docs/math.md, \"The task\"). GD runs int(50 − 25p) Adam steps as in the published "
    "sweep. All methods see the same tasks at every p; only the shown rewards differ.")


# ---------------------------------------------------------------------- runs
def p_label(p: float) -> str:
    return f"p={p:g}"


def _models_default(profile):
    return [profile.train_spec()]


def _run_tf_vs_gd(runner) -> dict:
    spec = runner.profile.train_spec()
    model = runner.trained_model(spec)
    curves = runner.curves(model, 0.0)
    # the minimiser of the training objective itself (PL, cosine reward)
    with runner.timer("optimum"):
        errors, converged = optimum_errors(runner.eval_batch(0.0), objective=spec.objective,
                                           reward=spec.reward)
    curves["optimum"] = runner.task_curve("optimum", errors, trained=False)
    return {"curves": curves, "config": spec.config.to_dict(),
            "models": {"TF": runner.model_info(spec)},
            "gd_steps": runner.profile.gd_steps_at(0.0),
            "optimum": {"objective": spec.objective, "reward": spec.reward,
                        "converged": converged.tolist()}}


def _run_reward_noise(runner) -> dict:
    spec = runner.profile.train_spec()
    model = runner.trained_model(spec)
    curves, gd_steps = {}, {}
    for p in runner.profile.noise_levels:
        curves.update(runner.curves(model, p, suffix=" " + p_label(p)))
        gd_steps[p_label(p)] = runner.profile.gd_steps_at(p)
    return {"curves": curves, "config": spec.config.to_dict(),
            "noise_levels": list(runner.profile.noise_levels), "gd_steps": gd_steps,
            "models": {"TF": runner.model_info(spec)}}


def _ablation(label_configs: Callable[[Profile], list]) -> tuple:
    """(models, run) of an ablation panel: one TF curve per (label, config)."""
    def models(profile):
        return [profile.train_spec(cfg) for _, cfg in label_configs(profile)]

    def run(runner):
        curves, models_info = {}, {}
        for label, cfg in label_configs(runner.profile):
            spec = runner.profile.train_spec(cfg)
            model = runner.trained_model(spec)
            curves.update(runner.curves(model, 0.0, baselines=(), tf_label=label))
            models_info[label] = runner.model_info(spec)
        return {"curves": curves, "config": runner.profile.default_config().to_dict(),
                "models": models_info}
    return models, run


def _attention_configs(p):
    return [("softmax", p.default_config()),
            ("linear", p.default_config().replace(softmax=False))]


def _ffn_configs(p):
    return [("ffn", p.default_config()), ("no ffn", p.default_config().replace(ffn=False))]


def _head_configs(p):
    seen, out = set(), []
    for items in head_series(p).values():
        for label, cfg in items:
            if label not in seen:
                seen.add(label)
                out.append((label, cfg))
    return out


_heads_models, _heads_ablation = _ablation(_head_configs)


def _run_heads(runner):
    result = _heads_ablation(runner)
    result["series"] = {title: [label for label, _ in items]
                        for title, items in head_series(runner.profile).items()}
    return result


# ---------------------------------------------------------------------- claims
# Every claim is decided statistically from the training seeds (icalign.seeds): a
# trained model's numbers are compared across seeds, baselines by their standard
# errors over the evaluation tasks; orderings use the seed-paired trend test.

def _fmt(x):
    return f"{x:.3f}"


def _show(res, label, at=None):
    """'0.512 ± 0.013': the value (mean over seeds) with the half-width of its 95 %
    interval (seeds for a trained model, 1.96 task standard errors for a baseline)."""
    if seeds.is_seeded(res, label):
        ci = stats.mean_ci(seeds.seed_values(res, label, at))
        return _fmt(ci["mean"]) + ("" if ci["half_width"] is None
                                   else f" ± {ci['half_width']:.3f}")
    value, se = seeds.baseline_value(res, label, at)
    return _fmt(value) + ("" if se is None else f" ± {seeds.Z95 * se:.3f}")


def _decided(section, claim, evidence, verdict, criterion):
    if isinstance(verdict, dict):
        evidence = f"{evidence}; {verdict['text']}"
        verdict = verdict["verdict"]
    return Claim.decided(section, claim, evidence, verdict, criterion)


_BASELINE_WORDS = {"mean": "mean response", "weighted": "reward-softmax-weighted mean",
                   "best": "best-rewarded response"}


def _gap_claim(r):
    """(a) TF approaches GD: the per-seed gap |TF − GD| shrinks from t = 2 to t = 15,
    or is within 0.05 at t = 15."""
    gd2, _ = seeds.baseline_value(r, "GD", 2)
    gd15, _ = seeds.baseline_value(r, "GD", 15)
    gap2 = np.abs(seeds.seed_values(r, "TF", 2) - gd2)
    gap15 = np.abs(seeds.seed_values(r, "TF", 15) - gd15)
    shrink = stats.verdict(stats.one_sample_t(gap15 - gap2), "negative")
    close = stats.mean_ci(gap15)
    if shrink["verdict"] == stats.HOLDS or (close["hi"] is not None and close["hi"] <= 0.05):
        verdict = stats.HOLDS
    elif shrink["verdict"] == stats.OPPOSITE and close["lo"] is not None \
            and close["lo"] > 0.05:
        verdict = stats.OPPOSITE
    else:
        verdict = stats.INCONCLUSIVE
    gap_ci = "" if close["hi"] is None else f" [{close['lo']:.3f}, {close['hi']:.3f}]"
    return _decided(SYNTH, "(a) TF approaches GD as t grows (p = 0)",
                    f"TF {_show(r, 'TF', 2)} → {_show(r, 'TF', 15)}, GD {_show(r, 'GD', 2)} → "
                    f"{_show(r, 'GD', 15)} (t = 2 → 15); gap {_fmt(float(gap2.mean()))} → "
                    f"{_fmt(float(gap15.mean()))}{gap_ci}; change of the gap: "
                    f"{shrink['text']}", verdict,
                    "|TF − GD| smaller at t = 15 than at t = 2 (one-sample t test of the "
                    "per-seed change), or its 95 % interval at t = 15 within 0.05")


def _claims_tf_vs_gd(results):
    r = results["tf_vs_gd"]
    near = [seeds.within(r, label, 0.2, 0.4, at=15) for label in ("TF", "GD")]
    rows = [_gap_claim(r),
            _decided(SYNTH, "(a) both near 0.3 at t = 15 (at the paper's scale)",
                     "; ".join(v["text"] for v in near), seeds.combine(*near),
                     "95 % intervals of TF and GD within 0.3 ± 0.1 (the quick/smoke models "
                     "are smaller than the paper's)")]
    for name in ("mean", "weighted", "best"):
        rows.append(_decided(BASE, f"TF beats the {_BASELINE_WORDS[name]} (p = 0)",
                             f"mean over t: TF {_show(r, 'TF')} vs {name} {_show(r, name)}; "
                             f"t = 15: {_show(r, 'TF', 15)} vs {_show(r, name, 15)}",
                             seeds.compare(r, "TF", name), "TF lower, mean over t"))
    rows.append(_decided(BASE, "GD beats the best-rewarded response (p = 0)",
                         f"mean over t: GD {_show(r, 'GD')} vs best {_show(r, 'best')}; "
                         f"t = 15: {_show(r, 'GD', 15)} vs {_show(r, 'best', 15)}",
                         seeds.compare(r, "GD", "best"), "GD lower, mean over t"))
    oracle15, _ = seeds.baseline_value(r, "oracle", 15)
    close = seeds.within(r, "TF", -math.inf, oracle15 + 0.05, at=15)
    rows.append(_decided(BASE, "TF close to the task optimum (p = 0)",
                         f"t = 15: TF {_show(r, 'TF', 15)}, GD {_show(r, 'GD', 15)}, oracle "
                         f"{_show(r, 'oracle', 15)}", close,
                         "95 % interval of TF − oracle at t = 15 below 0.05"))
    return rows


def _claims_reward_noise(results):
    r = results["reward_noise"]
    ps = r["noise_levels"]
    rows = []
    for method in ("TF", "GD"):
        labels = [f"{method} {p_label(p)}" for p in ps]
        listed = ", ".join(f"{p_label(p)}: {_show(r, lab, 15)}" for p, lab in zip(ps, labels))
        rows.append(_decided(SYNTH, f"(b) {method} error rises with p",
                             f"t = 15: {listed}", seeds.trend(r, labels, x=ps, at=15,
                                                               expect="positive"),
                             "positive trend of the error at t = 15 over p"))
    if 1.0 in ps:
        near = [seeds.within(r, f"{m} p=1", 0.85, 1.15, at=15) for m in ("TF", "GD")]
        best = f"; a random response: best {_show(r, 'best p=1', 15)}" \
            if "best p=1" in r["curves"] else ""
        rows.append(_decided(SYNTH, "(b) error ≈ 1 at p = 1 (useless critic)",
                             "t = 15: " + "; ".join(v["text"] for v in near) + best,
                             seeds.combine(*near), "95 % intervals of TF and GD within 1 ± 0.15"))
    mid = [p for p in ps if 0 < p < 1]
    if mid:
        lab = p_label(mid[len(mid) // 2])
        rows.append(_decided(BASE, f"TF beats the best-rewarded response under a noisy critic "
                                   f"({lab})",
                             f"mean over t: TF {_show(r, 'TF ' + lab)} vs best "
                             f"{_show(r, 'best ' + lab)}; t = 15: {_show(r, 'TF ' + lab, 15)} "
                             f"vs {_show(r, 'best ' + lab, 15)}",
                             seeds.compare(r, "TF " + lab, "best " + lab),
                             "TF lower, mean over t"))
    return rows


def _number(label: str) -> int:
    """The number in a label such as 'layers=8' or 'heads=3 (E=36)'."""
    return int(label.split("=")[1].split()[0])


def _listed(r, labels):
    return ", ".join(f"{label}: {_show(r, label)}" for label in labels)


def _claims_depth(results):
    r = results["depth"]
    labels = sorted(r["curves"], key=_number)
    return [_decided(SYNTH, "(c) deeper is better", "mean over t: " + _listed(r, labels),
                     seeds.trend(r, labels, x=[_number(lab) for lab in labels]),
                     "error falls with depth: negative trend (per layer, mean over t)")]


def _pair(name, claim, better, worse):
    def claims(results):
        r = results[name]
        return [_decided(SYNTH, claim, "mean over t: " + _listed(r, [better, worse]),
                         seeds.compare(r, better, worse),
                         f"{better} lower (paired across seeds, mean over t)")]
    return claims


def _claims_heads(results):
    r = results["heads"]
    rows = []
    for title, labels in r["series"].items():
        rows.append(_decided(SYNTH, f"(e) more heads help ({title})",
                             "mean over t: " + _listed(r, labels),
                             seeds.trend(r, labels, x=[_number(lab) for lab in labels]),
                             "error falls with the number of heads: negative trend "
                             "(per head, mean over t)"))
    return rows


# ---------------------------------------------------------------------- registration
_depth_models, _depth_run = _ablation(depth_series)
_att_models, _att_run = _ablation(_attention_configs)
_ffn_models, _ffn_run = _ablation(_ffn_configs)

register(Experiment("tf_vs_gd", "(a) transformer vs gradient descent and simple baselines",
                    _run_tf_vs_gd, _models_default, plotting.plot_tf_vs_gd, _claims_tf_vs_gd,
                    aliases=("a",), order=10), replace=True)
register(Experiment("reward_noise", "(b) reward noise p: TF and GD under a noisy critic",
                    _run_reward_noise, _models_default, plotting.plot_reward_noise,
                    _claims_reward_noise, aliases=("b",), order=11, note=REWARD_NOISE_NOTE),
         replace=True)
register(Experiment("depth", "(c) number of layers", _depth_run, _depth_models,
                    plotting.plot_ablation, _claims_depth,
                    aliases=("c",), order=12), replace=True)
register(Experiment("attention", "(d) softmax vs linear attention", _att_run, _att_models,
                    plotting.plot_ablation,
                    _pair("attention", "(d) softmax attention beats linear attention",
                          "softmax", "linear"),
                    aliases=("d",), order=13), replace=True)
register(Experiment("heads", "(e) number of attention heads", _run_heads, _heads_models,
                    plotting.plot_heads, _claims_heads, aliases=("e",), order=14), replace=True)
register(Experiment("ffn", "(f) with and without the FFN", _ffn_run, _ffn_models,
                    plotting.plot_ablation,
                    _pair("ffn", "(f) removing the FFN hurts", "ffn", "no ffn"),
                    aliases=("f",), order=15), replace=True)
