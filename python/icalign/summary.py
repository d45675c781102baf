"""The results section of README.md, generated from a results folder.

``readme_results(directory)`` renders, from the JSON files of a DIR/<profile> folder
(and its ``run.json``, when the run wrote one): the run line, the grid of figures, a
headline summary of the claims grouped by verdict, the claims whose verdict changed
since an earlier report (when the folder holds ``previous_verdicts.json``), the time
split of the run, and the claims section of report.md verbatim. ``update_readme``
writes it between the marker comments ``<!-- results:begin -->`` and
``<!-- results:end -->`` of a README (``icalign report DIR --readme README.md``), so the
numbers there are always those of the files and never typed by hand.
"""
from __future__ import annotations

import json
import os
import re
from typing import Optional

from ._files import atomic_write_text
from .manifest import TIMING_LABELS, TIMING_PARTS, load_manifest
from .profiles import format_seconds
from .report import all_claims, claim_marks, load_results, marks_changes, render_report

BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
PREVIOUS_NAME = "previous_verdicts.json"
#: The headline groups: (mark, heading); the inconclusive heading gets the seed count.
GROUPS = (("✓", "Reproduced (✓)"), ("✗", "Opposite holds (✗)"),
          ("inconclusive", "Inconclusive with {seeds}"), ("—", "Not tested (informational)"))


def _seeds_words(k: int) -> str:
    return "one training seed" if k == 1 else f"{k} training seeds"


def compact_evidence(evidence: str) -> str:
    """The key part of a claim's evidence: its first and last '; '-separated parts
    (the measured numbers and the test, or the first and last of a series); a '; '
    inside brackets does not separate.

    Examples
    --------
    >>> from icalign.summary import compact_evidence
    >>> compact_evidence("TF 0.51 → 0.29; gap 0.14 → 0.01; effect -0.13 (p = 0.01)")
    'TF 0.51 → 0.29; …; effect -0.13 (p = 0.01)'
    >>> compact_evidence("r = 0.55, p = 0.002 (t test; permutation p = 0.001)")
    'r = 0.55, p = 0.002 (t test; permutation p = 0.001)'
    """
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(evidence):     # split at "; " outside brackets only
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and evidence.startswith("; ", i):
            parts.append(evidence[start:i].strip())
            start = i + 2
    parts = [p for p in parts + [evidence[start:].strip()] if p]
    if len(parts) <= 2:
        return "; ".join(parts)
    return f"{parts[0]}; …; {parts[-1]}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _training_seeds(results: dict) -> int:
    first = next(iter(results.values()))
    return len(first.get("seeds", {}).get("training_seeds", [0]))


def _models(results: dict) -> dict:
    """{model name: training seconds} of every model (and seed) the results used."""
    found = {}
    for res in results.values():
        infos = [i for i in res.get("models", {}).values() if isinstance(i, dict)]
        infos += [i for seq in res.get("seed_models", {}).values() for i in seq
                  if isinstance(i, dict)]
        for info in infos:
            if "name" in info:
                found[info["name"]] = info.get("train_seconds") or 0.0
    return found


def _run_line(results: dict, manifest: Optional[dict], link: str) -> list:
    first = next(iter(results.values()))
    k = _training_seeds(results)
    models = _models(results)
    head = (f"Profile `{first.get('profile')}`, {_seeds_words(k)}, {len(results)} "
            f"experiments, {len(models)} trained models")
    if manifest is not None:
        ex = manifest.get("executor", {})
        m = manifest.get("models", {})
        where = ex.get("description", ex.get("kind"))
        if ex.get("kind") == "local":
            where += f" ({_count(ex.get('threads', 1), 'thread')})"
        how = (f"{format_seconds(manifest['wall_seconds'])} wall clock from "
               f"{manifest.get('started')} to {manifest.get('ended')} on {where}; "
               f"{_count(m.get('trained', 0), 'model')} trained in this run, "
               f"{m.get('loaded', 0)} loaded from earlier checkpoints")
        places = [f"{_count(w['models'], 'model')} on the {w['simd_path']} path of "
                  f"{w['cpu']}" for w in m.get("trained_on", [])]
        if places:
            how += " (" + "; ".join(places) + ")"
    else:
        how = (f"no run manifest (run.json) in the folder: the models' training time "
               f"summed from the JSON files is {format_seconds(sum(models.values()))}")
    return [f"**The run.** {head}: {how}. Files: [`{link}/`]({link}/); the full report with "
            f"per-experiment tables: [`{link}/report.md`]({link}/report.md).", ""]


def _figure_grid(directory: str, results: dict, link: str) -> list:
    cells = [f"![{name}]({link}/{name}.png)" for name in results
             if os.path.exists(os.path.join(directory, name + ".png"))]
    if not cells:
        return []
    if len(cells) % 2:
        cells.append("")
    return (["| | |", "| :-: | :-: |"]
            + [f"| {cells[i]} | {cells[i + 1]} |" for i in range(0, len(cells), 2)] + [""])


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def headline(claims: list, seeds: int) -> list:
    """The claims grouped by verdict, as markdown lines: per group (reproduced,
    opposite, inconclusive with ``seeds`` training seeds, informational) a heading and
    one item per claim with its compact evidence (``compact_evidence``).

    Examples
    --------
    >>> from icalign.registry import Claim
    >>> from icalign.summary import headline
    >>> rows = [Claim.decided("S", "A beats B", "A 0.2 vs B 0.3; p = 0.01", "holds"),
    ...         Claim.decided("S", "C beats D", "C 0.4 vs D 0.4; p = 0.6", "inconclusive")]
    >>> print("\\n".join(headline(rows, 3)))
    *Reproduced (✓)*
    <BLANKLINE>
    - A beats B: A 0.2 vs B 0.3; p = 0.01
    <BLANKLINE>
    *Inconclusive with 3 training seeds*
    <BLANKLINE>
    - C beats D: C 0.4 vs D 0.4; p = 0.6
    <BLANKLINE>
    """
    lines = []
    for mark, title in GROUPS:
        rows = [c for c in claims if c.mark == mark]
        if rows:
            lines += [f"*{title.format(seeds=_seeds_words(seeds))}*", ""]
            lines += [f"- {c.claim}: {compact_evidence(c.evidence)}" for c in rows] + [""]
    return lines


def _changes(directory: str, claims: list) -> list:
    path = os.path.join(directory, PREVIOUS_NAME)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        previous = json.load(f)
    now = {c.claim: c.mark for c in claims}
    return [f"**Verdicts changed since {previous['label']}** "
            f"({previous.get('summary', '')}):", "",
            marks_changes(previous["marks"], now).rstrip("\n"), ""]


def _time_table(manifest: Optional[dict]) -> list:
    t = (manifest or {}).get("time")
    if not t:
        return []
    m = manifest.get("models", {})
    ev = t["evaluation"]
    rows = [("Training", f"{_count(m.get('trained', 0), 'model')} trained, "
                         f"{m.get('loaded', 0)} loaded",
             t["training"]["wall_seconds"], t["training"]["model_seconds"]),
            ("Evaluation", "all experiments run", ev["wall_seconds"], ev["seconds"])]
    # a part that a run's version did not time apart is left out, not shown as 0
    rows += [(f"of which: {TIMING_LABELS[p]}", "", None, ev[p]) for p in TIMING_PARTS if p in ev]
    rows += [("Figures and report", "", t["outputs_seconds"], None),
             ("Whole run", "", manifest["wall_seconds"], None)]
    fmt = (lambda s: "" if s is None else format_seconds(s))
    lines = ["**Where the time went** (from run.json; summed seconds add up the models or "
             "experiments, which exceed the wall clock when workers run side by side):", "",
             "| Phase | | Wall clock | Summed |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {name} | {what} | {fmt(wall)} | {fmt(total)} |"
              for name, what, wall, total in rows]
    return lines + [""]


def _claims_section(report_text: str) -> list:
    """report.md's claims section with every heading one level deeper."""
    section = report_text[report_text.index("## Claims"):report_text.index("## Experiments")]
    return ["#" + line if line.startswith("##") else line
            for line in section.strip().splitlines()]


def readme_results(directory: str, link: Optional[str] = None) -> str:
    """The README's results block (between the markers) for a DIR/<profile> folder.

    Parameters
    ----------
    directory : str
        A profile folder of ``icalign reproduce`` (its JSON files, PNGs, and
        ``run.json`` and ``previous_verdicts.json`` when present).
    link : str, optional
        The folder as the README links it (default: ``directory``), e.g.
        ``docs/quick`` for a README at the repository root.

    Returns
    -------
    str
        Markdown, starting with ``BEGIN`` and ending with ``END`` and a newline.

    Examples
    --------
    >>> import os, icalign
    >>> from icalign.summary import readme_results
    >>> root = os.path.dirname(os.path.dirname(os.path.dirname(icalign.__file__)))
    >>> folder = os.path.join(root, "docs", "quick")
    >>> block = readme_results(folder, link="docs/quick") if os.path.isdir(folder) else None
    >>> block is None or (block.startswith("<!-- results:begin -->")
    ...                   and "#### Synthetic experiments" in block)
    True
    """
    results = load_results(directory)
    if not results:
        raise ValueError(f"{directory!r} holds no experiment results")
    link = (directory if link is None else link).replace(os.sep, "/").rstrip("/")
    manifest = load_manifest(directory)
    claims = all_claims(results)
    k = _training_seeds(results)
    counts = ", ".join(f"{sum(c.mark == mark for c in claims)} {mark}"
                       for mark in ("✓", "✗", "inconclusive"))
    lines = [BEGIN, f"<!-- Generated by `icalign report {link} --readme README.md` from the "
                    f"files in {link}; edits here are overwritten. -->", ""]
    lines += _run_line(results, manifest, link)
    lines += _figure_grid(directory, results, link)
    lines += [f"**Headline** ({len(claims)} claims: {counts}; decided from "
              f"{_seeds_words(k)}):", ""]
    lines += headline(claims, k)
    lines += _changes(directory, claims)
    lines += _time_table(manifest)
    lines += _claims_section(render_report(directory, results))
    return "\n".join(lines + ["", END]) + "\n"


def replace_block(text: str, block: str) -> str:
    """``text`` with its part from ``BEGIN`` to ``END`` (both included) replaced by
    ``block``; ValueError unless ``text`` has the markers once each, in order.

    Examples
    --------
    >>> from icalign.summary import BEGIN, END, replace_block
    >>> readme = f"# Title\\n{BEGIN}\\nold\\n{END}\\nrest\\n"
    >>> replace_block(readme, f"{BEGIN}\\nnew\\n{END}\\n")
    '# Title\\n<!-- results:begin -->\\nnew\\n<!-- results:end -->\\nrest\\n'
    """
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the README must hold {BEGIN} and then {END}, once each")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    if text[end:end + 1] == "\n":
        end += 1
    return text[:start] + block + text[end:]


def update_readme(readme: str, directory: str) -> str:
    """Rewrite the results block of a README (atomically) from a results folder.

    Parameters
    ----------
    readme : str
        The README's path; it must hold ``BEGIN`` and ``END`` (see ``replace_block``).
    directory : str
        The DIR/<profile> folder, linked from the README relative to its folder.

    Returns
    -------
    str
        The block written (``readme_results``).

    Examples
    --------
    >>> import os, tempfile, icalign
    >>> from icalign.summary import BEGIN, END, update_readme
    >>> root = os.path.dirname(os.path.dirname(os.path.dirname(icalign.__file__)))
    >>> folder = os.path.join(root, "docs", "quick")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "README.md")
    ...     with open(path, "w", encoding="utf-8") as f:
    ...         _ = f.write(f"# Results\\n{BEGIN}\\n{END}\\n")
    ...     ok = not os.path.isdir(folder) or "Headline" in update_readme(path, folder)
    >>> ok
    True
    """
    link = os.path.relpath(os.path.abspath(directory),
                           os.path.dirname(os.path.abspath(readme)))
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    block = readme_results(directory, link=link)
    atomic_write_text(readme, replace_block(text, block))
    return block


def save_previous_verdicts(directory: str, earlier_report: str,
                           label: Optional[str] = None) -> dict:
    """Keep the verdicts of an earlier report.md in ``directory/previous_verdicts.json``,
    so that the README block lists the claims whose verdict changed since.

    Parameters
    ----------
    directory : str
        The results folder the README block is rendered from.
    earlier_report : str
        The text of the earlier report.md.
    label : str, optional
        How the block names the earlier report (default: from the seeds its
        uncertainty paragraph states, e.g. "the run with one training seed").

    Returns
    -------
    dict
        What was written: label, the earlier claims heading, {claim: mark}.
    """
    found = re.search(r"^Decided from (one|\d+) training seed", earlier_report, re.M)
    if label is None:
        label = (f"the run with {'one' if found.group(1) == 'one' else found.group(1)} "
                 f"training seed{'' if found.group(1) in ('one', '1') else 's'}"
                 if found else "the earlier report")
    heading = re.search(r"^## Claims \((.*)\)$", earlier_report, re.M)
    data = {"label": label, "summary": "its claims: " + heading.group(1) if heading else "",
            "marks": claim_marks(earlier_report)}
    atomic_write_text(os.path.join(directory, PREVIOUS_NAME),
                      json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return data
