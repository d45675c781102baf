"""Results on disk: loading the JSON files (and the models they describe), and
rendering report.md and the figures from them. Nothing here trains or evaluates."""
from __future__ import annotations

import json
import os
import sys
from typing import Optional

from ._files import atomic_write_text
from .model import Transformer
from .profiles import format_seconds
from .registry import EXPERIMENTS, Claim, load_builtin_experiments
from .training import (TrainHistory, history_from_checkpoint, load_checkpoint,
                       model_from_checkpoint)


# ====================================================================== loading
def load_result(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_results(directory: str) -> dict:
    """{experiment name: result} from every experiment JSON in ``directory``
    (a DIR/<profile> folder), in registry order, unknown names last."""
    load_builtin_experiments()
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no results directory {directory!r}")
    found = {}
    for fn in sorted(os.listdir(directory)):
        if fn.endswith(".json"):
            try:
                data = load_result(os.path.join(directory, fn))
            except ValueError as exc:
                raise ValueError(f"{os.path.join(directory, fn)} is not valid JSON: {exc}") \
                    from exc
            if isinstance(data, dict) and "experiment" in data:
                found[data["experiment"]] = data
    order = [n for n in EXPERIMENTS if n in found] + [n for n in found if n not in EXPERIMENTS]
    return {n: found[n] for n in order}


def load_model(directory: str, model_info: dict) -> Transformer:
    """The trained model a result JSON describes (``result["models"][label]``),
    loaded from its checkpoint in ``directory`` (the DIR/<profile> folder)."""
    return model_from_checkpoint(load_checkpoint(os.path.join(directory,
                                                              model_info["checkpoint"])))


def load_history(directory: str, model_info: dict) -> TrainHistory:
    """The training history (loss per step) of a model a result JSON describes."""
    return history_from_checkpoint(load_checkpoint(os.path.join(directory,
                                                                model_info["checkpoint"])))


# ====================================================================== report.md
def all_claims(results: dict) -> list:
    load_builtin_experiments()
    rows = []
    for name, exp in EXPERIMENTS.items():
        if exp.claims is not None and name in results:
            rows.extend(exp.claims(results))
    return rows


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def claims_markdown(claims: list) -> str:
    """Claims as markdown tables, one per section (sections in order of first
    appearance, rows in their given order)."""
    for c in claims:
        if not isinstance(c, Claim):
            raise TypeError(f"claims must be icalign.registry.Claim objects, got "
                            f"{type(c).__name__}")
    sections = list(dict.fromkeys(c.section for c in claims))
    claims = sorted(claims, key=lambda c: sections.index(c.section))
    out, section = [], None
    for c in claims:
        if c.section != section:
            section = c.section
            out += ["", f"### {section}", "", "| Claim | Measured | Criterion | |",
                    "| --- | --- | --- | :-: |"]
        out.append(f"| {_cell(c.claim)} | {_cell(c.evidence)} | {_cell(c.criterion)} | "
                   f"{c.mark} |")
    return "\n".join(out).strip() + "\n"


def curves_table(result: dict, show=None) -> str:
    """Markdown table of a result's curves over its x values (for error
    curves over t: t = 2, 5, 10, 15 unless ``show`` says otherwise)."""
    key = result.get("x_key", "t")
    xs = list(result[key])
    if show is None:
        show = (2, 5, 10, 15) if key == "t" else xs
    cols = [x for x in show if x in xs]
    name = "t" if key == "t" else key.rstrip("s")
    lines = ["| | " + " | ".join(f"{name}={x}" for x in cols) + " |",
             "| --- |" + " ---: |" * len(cols)]
    for label, ys in result["curves"].items():
        if len(ys) != len(xs):
            raise ValueError(f"curve {label!r} of {result.get('experiment')!r} has {len(ys)} "
                             f"values for {len(xs)} values of {key!r}")
        unc = result.get("uncertainty", {}).get(label, {})
        lines.append(f"| {label} | " + " | ".join(_cell_value(ys, unc, xs.index(x))
                                                  for x in cols) + " |")
    return "\n".join(lines) + "\n"


def _cell_value(ys, unc: dict, i: int) -> str:
    """'0.512 ± 0.013' (half-width of the 95 % interval) or '0.512' without one."""
    lo, hi = unc.get("lo"), unc.get("hi")
    if lo is None or hi is None:
        return f"{ys[i]:.3f}"
    return f"{ys[i]:.3f} ± {(hi[i] - lo[i]) / 2:.3f}"


def _largest_task_se(results: dict) -> Optional[float]:
    """The largest task-sampling standard error at t = 15 over every curve."""
    found = []
    for res in results.values():
        if res.get("x_key", "t") != "t" or 15 not in res.get("t", []):
            continue
        i = res["t"].index(15)
        for unc in res.get("uncertainty", {}).values():
            se = unc.get("se") or unc.get("task_se")
            if se is not None:
                found.append(se[i])
    return max(found) if found else None


def _uncertainty_text(results: dict) -> list:
    """How the report's intervals and verdicts were made."""
    first = next(iter(results.values()))
    k = len(first.get("seeds", {}).get("training_seeds", [0]))
    n_tasks = first.get("profile_settings", {}).get("eval_size")
    seeds = (f"{k} training seeds: trained-model numbers are means ± the half-width of the "
             f"95 % Student t interval across seeds" if k > 1 else
             "one training seed: trained-model numbers carry no interval, and the claims "
             "decided about them by a test across seeds are inconclusive (rerun with "
             "--seeds 3 or more)")
    worst = _largest_task_se(results)
    tasks = f"{n_tasks} evaluation tasks" + ("" if worst is None else
                                             f" (largest task-sampling standard error of "
                                             f"any curve at t = 15: {worst:.4f})")
    return [f"Decided from {seeds}; baselines are ± 1.96 standard errors over the "
            f"{tasks}. ✓: the claim holds (at the 5 % level where a test decides it; "
            f"the test is then shown), ✗: its opposite holds, inconclusive: not "
            f"distinguishable with these "
            f"seeds (with an estimate of the seeds that would resolve it where one is "
            f"cheap). Orderings (depth, heads, reward noise) are decided by a trend test: "
            f"the per-seed least-squares slope across the ordered configurations, tested "
            f"with a one-sample t test across seeds.", ""]


def _header(first: dict) -> list:
    lines = [f"# icalign reproduction report — profile `{first.get('profile')}`", "",
             f"Generated by icalign {first.get('version')} from the JSON files in this folder "
             f"(`icalign report` rebuilds it). Every number below is read from those files.", ""]
    settings = first.get("profile_settings", {})
    if settings:
        lines += [f"Profile: {settings.get('description', '')}.", "",
                  f"Default model: n_embd {settings.get('n_embd')}, {settings.get('n_layer')} "
                  f"layers, {settings.get('n_head')} heads; training: {settings.get('steps')} "
                  f"steps x batch {settings.get('batch_size')}, Adam lr {settings.get('lr')} "
                  f"(schedule: {settings.get('lr_schedule') or 'constant'}); evaluation: "
                  f"{settings.get('eval_size')} fixed tasks, t = 2..15; GD: "
                  f"{settings.get('gd_steps')} Adam steps at lr {settings.get('gd_lr')} "
                  f"(int(50 − 25p) at reward noise p).", ""]
    return lines


def _experiment_section(directory: str, name: str, res: dict) -> list:
    lines = [f"### {name}: {res.get('title', '')}", ""]
    if os.path.exists(os.path.join(directory, name + ".png")):
        lines += [f"![{name}]({name}.png)", ""]
    exp = EXPERIMENTS.get(name)
    note = exp.note if exp is not None and exp.note else res.get("note")
    if note:
        lines += [note, ""]
    diverged = [f"{label} (at step {info['diverged_at_step']})"
                for label, info in res.get("models", {}).items()
                if isinstance(info, dict) and info.get("diverged_at_step") is not None]
    if diverged:
        lines += ["**Diverged in training** (evaluated at the last finite state): "
                  + ", ".join(diverged) + ".", ""]
    if "curves" in res and res.get("x_key", "t") in res:
        lines += [curves_table(res), ""]
    lines += [f"{format_seconds(res.get('seconds', float('nan')))} "
              f"(training of models first used here included).", ""]
    return lines


def render_report(directory: str, results: Optional[dict] = None) -> str:
    """report.md of a DIR/<profile> folder: the claims, then every experiment."""
    results = load_results(directory) if results is None else results
    if not results:
        raise ValueError(f"{directory!r} holds no experiment results")
    claims = all_claims(results)
    n_pass = sum(c.mark == "✓" for c in claims)
    n_fail = sum(c.mark == "✗" for c in claims)
    n_open = sum(c.mark == "inconclusive" for c in claims)
    lines = _header(next(iter(results.values())))
    lines += [f"## Claims ({n_pass} ✓, {n_fail} ✗, {n_open} inconclusive)", "",
              "Errors are the normalized error 1 − cos(ŷ, y*) averaged over the evaluation "
              "tasks; \"mean over t\" averages t = 2..15.", ""]
    lines += _uncertainty_text(results)
    lines.append(claims_markdown(claims) if claims else "(no claims: no experiment with "
                                                          "claims has results here)\n")
    lines += ["", "## Experiments", ""]
    for name, res in results.items():
        lines += _experiment_section(directory, name, res)
    return "\n".join(lines)


def claim_marks(report_text: str) -> dict:
    """{claim: mark} from the claims tables of a report.md (this version's or an
    earlier one's: the claim is the first cell, the mark the last)."""
    marks = {}
    for line in report_text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) >= 3 and line.startswith("| ") and cells[0] not in ("Claim", "---"):
            if cells[-1] in ("✓", "✗", "—", "inconclusive"):
                marks[cells[0].replace("\\|", "|")] = cells[-1]
    return marks


def verdict_changes(old_report: str, new_report: str) -> str:
    """A markdown table of the claims whose mark differs between two report.md texts
    (e.g. a one-seed run and a several-seed run), in the new report's order; claims the
    earlier report does not have are listed as such."""
    return marks_changes(claim_marks(old_report), claim_marks(new_report))


def marks_changes(old: dict, new: dict) -> str:
    """``verdict_changes`` of two {claim: mark} dicts (``claim_marks``)."""
    rows = [f"| {_cell(c)} | {old.get(c, 'not in the earlier report')} | {m} |"
            for c, m in new.items() if old.get(c) != m]
    if not rows:
        return "No claim changed its verdict.\n"
    return "\n".join(["| Claim | before | now |", "| --- | :-: | :-: |"] + rows) + "\n"


# ====================================================================== figures
def plot_experiment(result: dict, **kwargs):
    """The figure of any registered experiment's result (``kwargs``: e.g. ``ax``)."""
    load_builtin_experiments()
    exp = EXPERIMENTS.get(result.get("experiment"))
    if exp is None or exp.plot is None:
        raise ValueError(f"no plot registered for experiment {result.get('experiment')!r}")
    return exp.plot(result, **kwargs)


def build_outputs(directory: str, figures: bool = True, report: bool = True, log=None) -> dict:
    """(Re)build the PNGs and report.md of DIR/<profile> from its JSON files."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = load_results(directory)
    written = {"figures": [], "report": None}
    if figures:
        from . import plotting
        if not plotting.have_matplotlib():
            log("figures skipped: " + plotting.MATPLOTLIB_HINT)
        else:
            for name, res in results.items():
                exp = EXPERIMENTS.get(name)
                if exp is None or exp.plot is None:
                    continue
                path = os.path.join(directory, name + ".png")
                plotting.save_figure(exp.plot(res), path)
                written["figures"].append(path)
    if report:
        path = os.path.join(directory, "report.md")
        atomic_write_text(path, render_report(directory, results))
        written["report"] = path
        log(f"wrote {path}")
    return written
