"""Run the three critic experiments on saved models (see critic_explore.py).
Usage: python scripts/critic_analyse.py SELF_MODEL.npz [SIZE_MODEL.npz ...] [--rescale none] [--n 512]
       [--variants oracle,critic quality,oracle] [--gain-rounds 1] [--rounds-k 4] [--out DIR]
"""
import argparse
import json

import numpy as np

import icalign as ica
from icalign import critic as C

ica.set_num_threads(1)


def load(path):
    z = np.load(path)
    cfg = ica.ModelConfig.from_dict(json.loads(str(z["config"])))
    m = ica.Transformer(cfg)
    m.load_state_dict({k: z[k] for k in z.files if k != "config"})
    return m


ap = argparse.ArgumentParser()
ap.add_argument("self_model")
ap.add_argument("sizes", nargs="*")
ap.add_argument("--rescale", default="context")
ap.add_argument("--n", type=int, default=512)
ap.add_argument("--gain-rounds", type=int, default=1)
ap.add_argument("--out", default=None)
ap.add_argument("--variants", nargs="+", default=["oracle,critic", "quality,oracle"])
ap.add_argument("--rounds-k", type=int, default=4)
a = ap.parse_args()
task = ica.AlignmentTask()
sm = load(a.self_model)
held = task.sample(a.n, seed=0, offset=10**9)
if sm.config.reward_head:
    print("self-check", C.self_check_accuracy(sm, held))
variants = [tuple(v.split(",")) for v in a.variants]
ag = C.critic_accuracy_gain(sm, task, n_tasks=a.n, rescale=a.rescale, rounds=a.gain_rounds,
                            variants=variants)
for v in ag["variants"]:
    print(f"variant reference={v['reference']} context={v['context']}")
    for p in v["points"]:
        print(f"  k={p['k']} {p['critic']:26s} acc {p['accuracy']:.3f} gain {p['gain']:+.4f} "
              f"± {p['gain_se']:.4f}  err {p['error_before']:.3f} -> {p['error_after']:.3f}")
    print(f"  r={v['pearson_r']:.3f} p={v['p_value']:.3g} slope={v['slope']:.3f} perm p="
          f"{v['p_value_permutation']:.3g} above-chance {v['above_chance']}")
rd = C.critic_rounds(sm, task, n_tasks=a.n, rescale=a.rescale, k=a.rounds_k,
                     critics=("oracle", "quality", "gauss:0.1", "gauss:0.3", "replace:0.5", "replace:1",
                              "self"))
for lab, c in rd["curves"].items():
    print(f"  {lab:22s} acc {rd['accuracy'][lab]:.3f} ans {rd['accuracy_answers'][lab]:.3f} at1 {rd['answers_oracle_at_1'][lab]:.2f} "
          + " ".join(f"{v:.3f}" for v in c))
res = {"critic_accuracy_gain": ag, "critic_rounds": rd}
if a.sizes:
    ms = C.critic_model_size([load(p) for p in a.sizes], task, n_tasks=a.n, rescale=a.rescale,
                             rounds=a.gain_rounds)
    for crit, r in ms["by_critic"].items():
        for lab, s, g, se, eb, ea in zip(ms["labels"], ms["sizes"], r["gain"], r["gain_se"],
                                         r["error_before"], r["error_after"]):
            print(f"  {crit:8s} {lab:14s} {s:7d} gain {g:+.4f} ± {se:.4f}  err {eb:.3f} -> "
                  f"{ea:.3f}")
    res["critic_model_size"] = ms
for row in C.critic_claims(res.get("critic_accuracy_gain"), res.get("critic_rounds"),
                           res.get("critic_model_size")):
    print("OK " if row["passed"] else "NO ", row["claim"], "|", row["evidence"])
if a.out:
    import matplotlib
    matplotlib.use("Agg")
    C.save_critic_results(res, a.out)
