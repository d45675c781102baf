"""Measure the hand-built gradient-descent transformers and render docs/theory.md.

    PYTHONPATH=python python scripts/theory_results.py [--model CHECKPOINT]
        [--render-only | --probe-only]

Writes docs/theory/results.json (accuracy on 256 tasks per row, error against each
approximation constant, ablations, the depth analogue and, with --model, the
attention probe of a trained model) and fills the marked tables of docs/theory.md
from it. --render-only re-renders the tables from the existing JSON.
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

from icalign import theory  # noqa: E402

RESULTS = os.path.join(ROOT, "docs", "theory", "results.json")
DOC = os.path.join(ROOT, "docs", "theory.md")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj)  # json writes a non-finite error as Infinity
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def render(results):
    with open(DOC) as f:
        text = f.read()
    parts = {"accuracy-table": theory.render_accuracy_table(results["accuracy"]),
             "ablation-table": theory.render_ablation_table(results["ablations"])}
    if "probe" in results:
        parts["probe"] = theory.render_probe(results["probe"])
    for key, body in parts.items():
        begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
        i, j = text.index(begin) + len(begin), text.index(end)
        text = text[:i] + "\n" + body + "\n" + text[j:]
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint of a trained model to probe")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--probe-only", action="store_true",
                    help="add the probe of --model to the existing JSON")
    ap.add_argument("--tasks", type=int, default=256)
    args = ap.parse_args()
    if args.render_only or args.probe_only:
        with open(RESULTS) as f:
            results = json.load(f)
        if args.probe_only:
            results["probe"] = _jsonable(theory.probe_trained_model(args.model))
            with open(RESULTS, "w") as f:
                json.dump(results, f, indent=1)
    else:
        results = _jsonable(theory.measure(n_tasks=args.tasks, model_path=args.model))
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            json.dump(results, f, indent=1)
    text = render(results)
    with open(DOC, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
