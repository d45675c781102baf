"""The synthetic panels (a)-(f) of the paper's Figure 2: the trained transformer
against gradient descent and simple baselines, under reward noise, and the
architecture ablations (``docs/math.md``, "Claims and what each tests")."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import plotting
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
    return {"curves": runner.curves(model, 0.0), "config": spec.config.to_dict(),
            "models": {"TF": runner.model_info(spec)},
            "gd_steps": runner.profile.gd_steps_at(0.0)}


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
def _val(res, label, t=15):
    return res["curves"][label][res["t"].index(t)]


def _mean(res, label):
    return float(np.mean(res["curves"][label]))


def _fmt(x):
    return f"{x:.3f}"


_BASELINE_WORDS = {"mean": "mean response", "weighted": "reward-softmax-weighted mean",
                   "best": "best-rewarded response"}


def _claims_tf_vs_gd(results):
    r = results["tf_vs_gd"]
    tf2, gd2, tf15, gd15 = _val(r, "TF", 2), _val(r, "GD", 2), _val(r, "TF"), _val(r, "GD")
    gap2, gap15 = abs(tf2 - gd2), abs(tf15 - gd15)
    rows = [Claim(SYNTH, "(a) TF approaches GD as t grows (p = 0)",
                  f"TF {_fmt(tf2)} → {_fmt(tf15)}, GD {_fmt(gd2)} → {_fmt(gd15)} (t = 2 → 15); "
                  f"gap {_fmt(gap2)} → {_fmt(gap15)}",
                  gap15 < gap2 or gap15 <= 0.05,
                  "|TF − GD| at t = 15 below that at t = 2, or ≤ 0.05"),
            Claim(SYNTH, "(a) both near 0.3 at t = 15 (at the paper's scale)",
                  f"TF {_fmt(tf15)}, GD {_fmt(gd15)}",
                  abs(tf15 - 0.3) <= 0.1 and abs(gd15 - 0.3) <= 0.1,
                  "both within 0.3 ± 0.1 (the quick/smoke models are smaller than the paper's)")]
    for name in ("mean", "weighted", "best"):
        rows.append(Claim(BASE, f"TF beats the {_BASELINE_WORDS[name]} (p = 0)",
                          f"TF {_fmt(_mean(r, 'TF'))} vs {name} {_fmt(_mean(r, name))} (mean "
                          f"over t); t = 15: {_fmt(tf15)} vs {_fmt(_val(r, name))}",
                          _mean(r, "TF") < _mean(r, name), "TF lower, mean over t"))
    rows.append(Claim(BASE, "GD beats the best-rewarded response (p = 0)",
                      f"GD {_fmt(_mean(r, 'GD'))} vs best {_fmt(_mean(r, 'best'))} (mean over "
                      f"t); t = 15: {_fmt(gd15)} vs {_fmt(_val(r, 'best'))}",
                      _mean(r, "GD") < _mean(r, "best"), "GD lower, mean over t"))
    rows.append(Claim(BASE, "TF close to the task optimum (p = 0)",
                      f"t = 15: TF {_fmt(tf15)}, GD {_fmt(gd15)}, oracle "
                      f"{_fmt(_val(r, 'oracle'))}",
                      tf15 - _val(r, "oracle") <= 0.05, "TF − oracle ≤ 0.05 at t = 15"))
    return rows


def _claims_reward_noise(results):
    r = results["reward_noise"]
    ps = r["noise_levels"]
    rows = []
    for method in ("TF", "GD"):
        vals = [_val(r, f"{method} {p_label(p)}") for p in ps]
        listed = ", ".join(f"{p_label(p)}: {_fmt(v)}" for p, v in zip(ps, vals))
        rows.append(Claim(SYNTH, f"(b) {method} error rises monotonically with p",
                          f"t = 15: {listed}",
                          all(b >= a for a, b in zip(vals, vals[1:])),
                          "non-decreasing in p at t = 15"))
    if 1.0 in ps:
        tf1, gd1 = _val(r, "TF p=1"), _val(r, "GD p=1")
        best1 = _val(r, "best p=1") if "best p=1" in r["curves"] else float("nan")
        rows.append(Claim(SYNTH, "(b) error ≈ 1 at p = 1 (useless critic)",
                          f"t = 15: TF {_fmt(tf1)}, GD {_fmt(gd1)} (a random response: best "
                          f"{_fmt(best1)})",
                          abs(tf1 - 1) <= 0.15 and abs(gd1 - 1) <= 0.15,
                          "TF and GD within 1 ± 0.15"))
    mid = [p for p in ps if 0 < p < 1]
    if mid:
        lab = p_label(mid[len(mid) // 2])
        rows.append(Claim(BASE, f"TF beats the best-rewarded response under a noisy critic "
                                f"({lab})",
                          f"TF {_fmt(_mean(r, 'TF ' + lab))} vs best "
                          f"{_fmt(_mean(r, 'best ' + lab))} (mean over t); t = 15: "
                          f"{_fmt(_val(r, 'TF ' + lab))} vs {_fmt(_val(r, 'best ' + lab))}",
                          _mean(r, "TF " + lab) < _mean(r, "best " + lab),
                          "TF lower, mean over t"))
    return rows


def _ordered(name, claim, labels_better_first, criterion_text):
    """Claims of a panel: the curves' means over t are in the given order."""
    def claims(results):
        r = results[name]
        labels = labels_better_first(r) if callable(labels_better_first) \
            else labels_better_first
        vals = [_mean(r, label) for label in labels]
        listed = ", ".join(f"{label}: {_fmt(v)} ({_fmt(_val(r, label))} at t = 15)"
                           for label, v in zip(labels, vals))
        return [Claim(SYNTH, claim, "mean over t: " + listed,
                      all(a < b for a, b in zip(vals, vals[1:])), criterion_text)]
    return claims


def _claims_heads(results):
    r = results["heads"]
    rows = []
    for title, labels in r["series"].items():
        vals = [_mean(r, label) for label in labels]
        listed = ", ".join(f"{label}: {_fmt(v)}" for label, v in zip(labels, vals))
        monotone = all(b <= a for a, b in zip(vals, vals[1:]))
        rows.append(Claim(SYNTH, f"(e) more heads help ({title})",
                          f"mean over t: {listed}; monotone: {'yes' if monotone else 'no'}",
                          vals[-1] < vals[0],
                          "most heads lower than 1 head (mean over t)"))
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
                    plotting.plot_ablation,
                    _ordered("depth", "(c) deeper is better",
                             lambda r: sorted(r["curves"], key=lambda s: -int(s.split("=")[1])),
                             "error strictly decreasing with depth (mean over t)"),
                    aliases=("c",), order=12), replace=True)
register(Experiment("attention", "(d) softmax vs linear attention", _att_run, _att_models,
                    plotting.plot_ablation,
                    _ordered("attention", "(d) softmax attention beats linear attention",
                             ["softmax", "linear"], "softmax lower (mean over t)"),
                    aliases=("d",), order=13), replace=True)
register(Experiment("heads", "(e) number of attention heads", _run_heads, _heads_models,
                    plotting.plot_heads, _claims_heads, aliases=("e",), order=14), replace=True)
register(Experiment("ffn", "(f) with and without the FFN", _ffn_run, _ffn_models,
                    plotting.plot_ablation,
                    _ordered("ffn", "(f) removing the FFN hurts", ["ffn", "no ffn"],
                             "with FFN lower (mean over t)"),
                    aliases=("f",), order=15), replace=True)
