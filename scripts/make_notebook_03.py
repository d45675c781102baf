"""Writes notebooks/03_critic_quality.ipynb (unexecuted); run from the repository root."""
import nbformat as nbf
nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
md("""# 03 — Critic quality and self-correction

The paper's practical message (Wang et al., NeurIPS 2024, §5): self-correction is only as good as the critic.
Here the three findings are tested in the synthetic world of SPEC §1, where the critic can be dialled exactly:

1. **Accuracy → gain**: the gain from self-correction grows with the critic's accuracy (paper: significant positive correlation, p < 0.05).
2. **Rounds**: with an accurate critic the model keeps gaining for a few rounds (~3); with its own critic it degrades after about one round.
3. **Model size**: a too-small model cannot self-correct even with a near-perfect critic.

*Self-correction loop*: k task triplets with a critic's rewards form the context; the model answers ŷ₀; each round the critic scores the latest answer, (x, ŷ, r̂) is appended and the model answers again.
Critics: the **oracle** (the mixing weight that best *explains* the answer, argmax over r ∈ [0,1] of cos(ŷ, r·y* + (1−r)·eps) — the issue's definition), the **quality** critic (the weight of the task response with the *same error* as ŷ; an addition: the oracle gives 1 to every answer that overshoots y*, however far, and trained models' answers mostly do), noisy versions of either (U(0,1) replacement with probability p, Gaussian noise σ, inverted), and the model's own reward head (`self`).
Accuracy = fraction of response pairs ordered like the true weights (task responses: their mixing weight; the model's answers: the reference critic's score); gain = error(ŷ₀) − error after the round(s), error = 1 − cos(ŷ, y*).
All logic lives in `icalign.critic`; this notebook only runs and shows it."""),
code("""# Which results to show. Every number and figure below comes from the icalign package:
#   PROFILE  "quick" (default), "paper" (SPEC section 4; hours) or "smoke" (seconds; numbers mean nothing)
#   RESULTS  an `icalign reproduce --out` folder: finished critic results there are loaded,
#            missing ones are run. ../results is where `icalign reproduce` run from the
#            repository root writes.
# The environment variables let tests run this notebook on the smoke profile.
import os
import icalign as ica
from icalign import critic
from IPython.display import Markdown, display

PROFILE = os.environ.get("ICALIGN_PROFILE", "quick")
RESULTS = os.environ.get("ICALIGN_RESULTS", os.path.join("..", "results"))
if os.environ.get("ICALIGN_THREADS"):
    ica.set_num_threads(int(os.environ["ICALIGN_THREADS"]))
print(f"icalign {ica.__version__}, profile {PROFILE!r}, results in {RESULTS}")"""),
code("""results = critic.load_or_run(PROFILE, RESULTS)
display(Markdown(critic.claims_markdown(results["claims"])))"""),
md("""## 1. Gain vs critic accuracy
One point per (critic setting, k), one panel per variant: left, the issue's set-up (noisy oracles score the context and the answers); right, noisy quality critics judge only the model's answers (the oracle scores the context, so ŷ₀ is the same for every critic, as in the paper where the first answer does not depend on the critic). Dashed: least-squares fit; r and the exact t-test p-value in the legend."""),
code("""ag = results["critic_accuracy_gain"]
critic.plot_accuracy_gain(ag);
for v in ag["variants"]:
    print(f"reference {v['reference']}, context scored by {v['context']}: r = {v['pearson_r']:.3f}, "
          f"p = {v['p_value']:.3g}")
    for p in v["points"]:
        print(f"  k={p['k']:2d} {p['critic']:26s} accuracy {p['accuracy']:.3f}  gain {p['gain']:+.4f} "
              f"({p['error_before']:.3f} -> {p['error_after']:.3f})")"""),
md("""## 2. Multi-round self-correction
Mean error per round for each critic (`self`: every reward from the model's reward head; `self (oracle context)`: context scored by the oracle, the model's answers by its own head). `at 1`: the fraction of appended answers the oracle scores exactly 1."""),
code("""rd = results["critic_rounds"]
critic.plot_rounds(rd);
for label, curve in rd["curves"].items():
    print(f"{label:22s} accuracy {rd['accuracy'][label]:.3f}  at 1 {rd['answers_oracle_at_1'][label]:.2f}  "
          + " ".join(f"{v:.3f}" for v in curve))"""),
md("""## 3. Model size
Gain after one round with the two near-perfect critics, for models of several widths and depths trained with the same budget (in the registry: the depth panel and the heads panel at fixed head size)."""),
code("""ms = results["critic_model_size"]
critic.plot_model_size(ms);
for crit, r in ms["by_critic"].items():
    for lab, s, g, se in zip(ms["labels"], ms["sizes"], r["gain"], r["gain_se"]):
        print(f"{crit:8s} {lab:14s} {s:8,d} params  gain {g:+.4f} ± {se:.4f}")"""),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "notebooks/03_critic_quality.ipynb")
