"""Before/after training-step times of two checkouts, timed in alternating pairs.

A virtual machine's speed drifts (a neighbour, the host's clock), often by more than
the change being measured, and in steps of minutes. So the two builds are not timed
one after the other, each for minutes, but in short bursts that alternate: for every
model and thread count, ``--pairs`` times, a fresh process of the *before* checkout
times ``--steps`` steps, then one of the *after* checkout. Each pair gives a ratio of
the two bursts' median step times; the speed-up is the median of those ratios, with
their range. The FMA peak (``peak.c``) is measured before and after the bursts.

    # both checkouts built in place (python setup.py build_ext --inplace)
    python benchmarks/compare_steps.py run --before /path/to/old/checkout \\
        --shapes quick,paper --threads 2,1 --pairs 5 --json compare.json
    python benchmarks/compare_steps.py table compare.json    # the table again, from JSON

Every burst's step times are in the JSON. The same comparison of one layer's kernels
in cache reads the outputs of ``bench_kernels --chunk`` of both builds, run in
alternating passes, each headed by a line ``### pass P before|after --chunk E,H``::

    python benchmarks/compare_steps.py chunks chunks.txt     # best pass of each build
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bound import parse_chunk_output  # noqa: E402
from bench_step import (SHAPES, build, finish_worker, measure_peak,  # noqa: E402
                        parse_shapes, shape_label, start_worker, step_flops)

ROOT = Path(__file__).resolve().parent.parent


def describe(checkout):
    """The commit of a checkout (with -dirty when it has changes), or its path."""
    try:
        return subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                              check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(checkout)


def burst(checkout, shape, threads, steps, warmup):
    """The bench_step.py worker result (step times in "times") of `steps` steps after
    `warmup`, in a fresh process of that checkout's bench_step.py."""
    timing = SimpleNamespace(steps=steps, warmup=warmup, batch=None)
    script = Path(checkout) / "benchmarks" / "bench_step.py"
    return finish_worker(start_worker("icalign", threads, timing, shape=shape, script=script),
                         f"icalign ({checkout})")


def peaks_now():
    build_dir = Path(tempfile.mkdtemp(prefix="icalign-compare-"))
    try:
        peak_bin, _ = build(build_dir)
        return {f"{isa}/{th}": gf for (isa, th), gf in measure_peak(peak_bin).items()}
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def run(args):
    for name, path in (("--before", args.before), ("--after", args.after)):
        if not (Path(path) / "benchmarks" / "bench_step.py").is_file():
            raise SystemExit(f"{name} {path}: not a checkout with benchmarks/bench_step.py")
    shapes = parse_shapes(args.shapes)
    threads = [int(t) for t in args.threads.split(",")]
    result = dict(before=describe(args.before), after=describe(args.after),
                  load_before=os.getloadavg(), peaks=[peaks_now()], pairs=args.pairs,
                  flops={s: step_flops(B=SHAPES[s][1], **SHAPES[s][0]) for s in shapes},
                  bursts=[])
    for shape in shapes:
        for th in threads:
            for pair in range(args.pairs):
                for build_name in ("before", "after"):
                    w = burst(getattr(args, build_name), shape, th, args.steps, args.warmup)
                    result["bursts"].append(dict(shape=shape, threads=th, pair=pair,
                                                 build=build_name, times=w["times"],
                                                 simd=w["simd"]))
                print(f"{shape} {th} thr pair {pair + 1}/{args.pairs}: before "
                      f"{statistics.median(result['bursts'][-2]['times']) * 1e3:.1f} ms, after "
                      f"{statistics.median(result['bursts'][-1]['times']) * 1e3:.1f} ms",
                      flush=True)
    result["peaks"].append(peaks_now())
    result["load_after"] = os.getloadavg()
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.json)
    print()
    print(format_table(summarise(result)))
    print(footer(result))


def summarise(result):
    """Rows (shape, flops, threads, before s, after s, speed-up, lowest, highest ratio,
    before % of peak, after % of peak) from a run's bursts."""
    rows = []
    cells = {}
    for b in result["bursts"]:
        cells.setdefault((b["shape"], b["threads"]), {}).setdefault(b["pair"], {})[b["build"]] = b
    for (shape, th), pairs in cells.items():
        complete = [p for p in pairs.values() if "before" in p and "after" in p]
        if not complete:
            continue
        before = [statistics.median(p["before"]["times"]) for p in complete]
        after = [statistics.median(p["after"]["times"]) for p in complete]
        ratios = [b / a for b, a in zip(before, after)]
        flops = result["flops"][shape]
        simd = complete[0]["after"]["simd"]
        peaks = [p[f"{simd}/{th}"] for p in result["peaks"] if f"{simd}/{th}" in p]
        peak = statistics.median(peaks) if peaks else None
        tb, ta = statistics.median(before), statistics.median(after)
        pb, pa = ((100 * flops / t / 1e9 / peak for t in (tb, ta)) if peak else (None, None))
        rows.append((shape, flops, th, tb, ta, statistics.median(ratios), min(ratios),
                     max(ratios), pb, pa))
    return rows


def format_table(rows):
    pct = lambda x: "n/a" if x is None else f"{x:.1f} %"  # noqa: E731
    ms = lambda s: f"{s:.3f} s" if s >= 1 else f"{s * 1e3:.1f} ms"  # noqa: E731
    lines = ["| model | GFLOP/step | threads | before | after | speed-up (range over pairs) | "
             "before % of peak | after % of peak |",
             "|---|---|---|---|---|---|---|---|"]
    last = None
    for shape, flops, th, tb, ta, ratio, lo, hi, pb, pa in rows:
        head = f"| {shape_label(shape)} | {flops / 1e9:.2f}" if shape != last else "| |"
        lines.append(f"{head} | {th} | {ms(tb)} | {ms(ta)} | {ratio:.2f}× ({lo:.2f}–{hi:.2f}) | "
                     f"{pct(pb)} | {pct(pa)} |")
        last = shape
    return "\n".join(lines)


def footer(result):
    keys = sorted({k for p in result["peaks"] for k in p})
    return (f"before: {result['before']}, after: {result['after']}; {result['pairs']} pairs; "
            f"FMA peak (GFLOP/s, at the start and the end): "
            + "; ".join(f"{k} {', '.join(str(p[k]) for p in result['peaks'] if k in p)}"
                        for k in keys)
            + f"; load average {result['load_before'][0]:.2f} before, "
              f"{result['load_after'][0]:.2f} after")


def read_chunk_passes(text):
    """{(E,H text, build): [(layer, dense, attention, LayerNorm/GELU us, % of peak), ...]}
    from alternating ``bench_kernels --chunk`` outputs headed ``### pass P BUILD --chunk E,H``."""
    passes = {}
    for block in text.split("### ")[1:]:
        head = block.splitlines()[0].split()
        if len(head) != 5 or head[0] != "pass" or head[3] != "--chunk":
            raise ValueError(f"not a pass header: '### {block.splitlines()[0]}'")
        times, percent = parse_chunk_output(block)
        if "layer" not in times or "layer, counted flops" not in percent:
            raise ValueError(f"no layer sum in the output of '### {block.splitlines()[0]}'")
        passes.setdefault((head[4], head[2]), []).append(
            (times["layer"], times["dense products, sum"], times["attention, sum"],
             times["LayerNorm/GELU"], percent["layer, counted flops"]))
    return passes


def format_chunk_table(passes):
    """Per shape, the best pass (shortest layer) of each build: its layer time, parts and
    % of peak, before -> after."""
    lines = ["| n_embd, heads | passes | layer (us) | dense products | attention | "
             "LayerNorm + GELU | layer % of peak |", "|---|---|---|---|---|---|---|"]
    for eh in sorted({k[0] for k in passes}, key=lambda x: int(x.split(",")[0])):
        if (eh, "before") not in passes or (eh, "after") not in passes:
            continue
        b, a = (min(passes[(eh, x)]) for x in ("before", "after"))
        n = min(len(passes[(eh, "before")]), len(passes[(eh, "after")]))
        cells = " | ".join(f"{b[i]:.1f} → {a[i]:.1f}" for i in range(4))
        lines.append(f"| {eh} | {n} | {cells} | {b[4]:.1f} → {a[4]:.1f} % |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="time two checkouts in alternating pairs")
    r.add_argument("--before", required=True, help="the checkout to compare against")
    r.add_argument("--after", default=str(ROOT), help="default: this checkout")
    r.add_argument("--shapes", default="quick,paper",
                   help="models, as bench_step.py --shapes (default quick,paper)")
    r.add_argument("--threads", default="2,1")
    r.add_argument("--pairs", type=int, default=5)
    r.add_argument("--steps", type=int, default=5, help="timed steps per burst")
    r.add_argument("--warmup", type=int, default=2, help="untimed steps per burst")
    r.add_argument("--json", default=None, help="write every burst here")
    t = sub.add_parser("table", help="print the table of a run's JSON")
    t.add_argument("json")
    c = sub.add_parser("chunks", help="before/after of alternating bench_kernels --chunk passes")
    c.add_argument("file")
    args = ap.parse_args(argv)
    if args.command == "chunks":
        with open(args.file, encoding="utf-8") as f:
            print(format_chunk_table(read_chunk_passes(f.read())))
        return
    if args.command == "run":
        if args.pairs < 1 or args.steps < 1 or args.warmup < 0:
            raise SystemExit(f"--pairs and --steps must be >= 1 and --warmup >= 0, got "
                             f"{args.pairs}, {args.steps}, {args.warmup}")
        run(args)
    else:
        with open(args.json, encoding="utf-8") as f:
            result = json.load(f)
        print(format_table(summarise(result)))
        print(footer(result))


if __name__ == "__main__":
    main()
