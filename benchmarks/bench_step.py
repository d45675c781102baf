#!/usr/bin/env python
"""Benchmark of icalign's C core against PyTorch on this machine.

Prints, as markdown tables:
  1. the fp32 FMA peak (benchmarks/peak.c, built here with the system C compiler);
  2. per-kernel GFLOP/s and % of peak at the paper's shapes (benchmarks/bench_kernels.c);
  3. the training step of the models chosen with --shapes (default: the paper's,
     batch 256, N 20 -> T 60, n_embd 96, 20 layers, 3 heads; the quick profile's
     E 36 / 12 / 48 / 72 at 8 layers, head size 12, batch 64), PL loss with cosine
     reward, Adam, icalign vs PyTorch, on 1 and 2 threads: median step time,
     GFLOP/s and % of peak, speed-up, scaling;
  4. peak resident memory of a process that runs paper-size training steps;
  5. the PL loss (forward + backward over the batch) vs the vectorised PyTorch loss.

Every timed run happens in a fresh subprocess (clean thread settings and RSS).
PyTorch is optional: without it the torch columns say "n/a".

    python benchmarks/bench_step.py                 # everything (~3-5 minutes)
    python benchmarks/bench_step.py --steps 3 --no-kernels
    python benchmarks/bench_step.py --json results.json
    python benchmarks/bench_step.py --shapes quick --no-kernels   # the quick-profile models
    python benchmarks/bench_step.py --shapes paper,E36 --threads 2

The load average is printed before and after: other processes on the machine
slow both sides; compare numbers from the same run only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAPER = dict(n_dims=5, n_points=20, n_embd=96, n_layer=20, n_head=3)
BATCH = 256

# Model shapes that --shapes can time: name -> (config, batch). "paper" is the
# published model; the quick-profile models (3000 steps of batch 64, 8 layers,
# head size 12) are the ones users train most.
SHAPES = {
    "paper": (PAPER, BATCH),
    "E36": (dict(PAPER, n_embd=36, n_layer=8, n_head=3), 64),  # the quick profile's default
    "E12": (dict(PAPER, n_embd=12, n_layer=8, n_head=1), 64),
    "E48": (dict(PAPER, n_embd=48, n_layer=8, n_head=4), 64),
    "E72": (dict(PAPER, n_embd=72, n_layer=8, n_head=6), 64),
}
SHAPE_GROUPS = {"quick": ["E36", "E12", "E48", "E72"], "all": list(SHAPES)}


def parse_shapes(text):
    """Shape names from a comma list of names and groups (quick, all)."""
    names = []
    for part in text.split(","):
        part = part.strip()
        for name in SHAPE_GROUPS.get(part, [part]):
            if name not in SHAPES:
                raise SystemExit(f"unknown shape {name!r}: choose from "
                                 f"{', '.join([*SHAPES, *SHAPE_GROUPS])}")
            if name not in names:
                names.append(name)
    return names


def shape_label(name):
    cfg, batch = SHAPES[name]
    return (f"E{cfg['n_embd']} L{cfg['n_layer']} H{cfg['n_head']} "
            f"(head size {cfg['n_embd'] // cfg['n_head']}), batch {batch}")


# ----------------------------------------------------------------------------- flops
def step_flops(B=BATCH, n_dims=5, n_points=20, n_embd=96, n_layer=20, n_head=3, ffn=True,
               causal=True):
    """Floating-point operations of one training step (multiply-add = 2), counting the
    dense products (forward, input gradient, weight gradient) and the attention
    products actually needed (the causal lower triangle, diagonal included; the
    backward pass's recompute of Q K^T is not counted). LayerNorm, GELU, softmax,
    the loss and Adam are not counted."""
    T, E, d = 3 * n_points, n_embd, n_dims
    M = B * T
    kn = E * 3 * E + E * E + (E * 4 * E + 4 * E * E if ffn else 0)  # sum of K*N per layer
    dense = 3 * 2 * M * kn * n_layer
    dense += 3 * 2 * M * d * E                       # read_in
    dense += 3 * 2 * B * n_points * E * d            # read_out
    pairs = T * (T + 1) / 2 if causal else T * T
    hs = E // n_head
    attn = (2 + 4) * 2 * pairs * hs * B * n_head * n_layer  # fwd: QK, PV; bwd: dP, dS K, dS^T Q, P^T dO
    return dense + attn


def best_seconds(fn, reps=None, rounds=5, min_seconds=0.1):
    """Best time of one call of fn over `rounds` timed loops of `reps` calls (by default
    as many as take about min_seconds, judged from one call after a warm-up call)."""
    fn()
    if reps is None:
        t0 = time.perf_counter()
        fn()
        reps = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-7)))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


# ----------------------------------------------------------------------------- builds
def cc():
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "cc"


def build(build_dir: Path):
    build_dir.mkdir(parents=True, exist_ok=True)
    peak = build_dir / "peak"
    kernels = build_dir / "bench_kernels"
    csrc = sorted(str(p) for p in (ROOT / "csrc").glob("*.c") if p.name != "binding.c")
    subprocess.run([cc(), "-O2", "-fopenmp", str(ROOT / "benchmarks/peak.c"), "-o", str(peak)],
                   check=True)
    subprocess.run([cc(), "-std=c11", "-O3", "-fno-math-errno", "-fopenmp",
                    f"-I{ROOT / 'csrc'}", str(ROOT / "benchmarks/bench_kernels.c"), *csrc,
                    "-lm", "-o", str(kernels)], check=True)
    return peak, kernels


def measure_peak(peak_bin):
    out = subprocess.run([str(peak_bin), "0.3"], check=True, capture_output=True, text=True).stdout
    peaks = {}
    for line in out.strip().splitlines():
        isa, th, gf = line.split()
        peaks[(isa, int(th.split("=")[1]))] = float(gf.split("=")[1])
    return peaks


# ----------------------------------------------------------------------------- workers
def _worker_icalign(args):
    sys.path.insert(0, str(ROOT / "python"))
    import numpy as np
    import icalign as ica
    if args.simd:
        ica.set_simd_path(args.simd)
    ica.set_num_threads(args.threads)
    cfg, batch = SHAPES[args.shape]
    model = ica.Transformer(ica.ModelConfig(**cfg), seed=0)
    task = ica.AlignmentTask(n_dims=cfg["n_dims"], n_points=cfg["n_points"])
    batches = [task.sample(args.batch or batch, seed=i) for i in range(args.warmup + args.steps)]
    times, cpus = [], []
    for i, b in enumerate(batches):
        t0, c0 = time.perf_counter(), time.process_time()
        model.step(b.xs, b.ys, b.rs, lr=1e-4)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # MiB (Linux: KiB)
    return dict(times=times, cpu=cpus, rss_mib=rss, simd=ica.simd_path(),
                threads=ica.get_num_threads())


def _torch_model():
    sys.path.insert(0, str(ROOT / "tests"))
    import torch_model  # noqa: F401  (tests/torch_model.py)
    return torch_model


def _worker_torch(args):
    import numpy as np
    import torch
    tm = _torch_model()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "python"))
    import icalign as ica
    cfg, batch = SHAPES[args.shape]
    task = ica.AlignmentTask(n_dims=cfg["n_dims"], n_points=cfg["n_points"])
    model = tm.TorchModel(**cfg)
    tm.gpt2_init_(model, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    batches = [task.sample(args.batch or batch, seed=i) for i in range(args.warmup + args.steps)]
    times, cpus = [], []
    for i, b in enumerate(batches):
        xs, ys, rs = (torch.from_numpy(np.ascontiguousarray(a)) for a in (b.xs, b.ys, b.rs))
        t0, c0 = time.perf_counter(), time.process_time()
        tm.train_step(model, opt, xs, ys, rs, objective="pl", reward="cosine")
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return dict(times=times, cpu=cpus, rss_mib=rss, threads=torch.get_num_threads(),
                version=torch.__version__)


def _worker_loss(args):
    """PL loss + gradient over the batch: icalign (C) vs the vectorised torch loss."""
    import numpy as np
    sys.path.insert(0, str(ROOT / "python"))
    import icalign as ica
    ica.set_num_threads(args.threads)
    b = ica.AlignmentTask(n_dims=PAPER["n_dims"], n_points=PAPER["n_points"]).sample(
        args.batch or BATCH, seed=0)
    pred = np.random.default_rng(0).standard_normal(b.xs.shape).astype(np.float32)

    out = dict(icalign=best_seconds(lambda: ica.pl_loss(pred, b.ys, b.rs, reward="cosine"),
                                    reps=200))
    try:
        import torch
    except ImportError:
        return out
    tm = _torch_model()
    torch.set_num_threads(args.threads)
    ys, rs = torch.from_numpy(b.ys), torch.from_numpy(b.rs)

    def torch_pl():
        p = torch.from_numpy(pred).requires_grad_()
        tm.sequence_loss(p, ys, rs, "pl", "cosine").backward()

    out["torch"] = best_seconds(torch_pl, reps=20)
    return out


def start_worker(kind, threads, args, simd=None, shape="paper", script=__file__):
    """A worker process of `script` (this file, or another checkout's bench_step.py)."""
    cmd = [sys.executable, str(script), "--worker", kind, "--threads", str(threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--shape", shape]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    if simd:
        cmd += ["--simd", simd]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def finish_worker(proc, kind):
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_worker(kind, threads, args, simd=None, shape="paper"):
    return finish_worker(start_worker(kind, threads, args, simd, shape), kind)


def compare_executors(name, args, cpus):
    """Training throughput of one model on every core against one single-threaded model
    per core, all at once (what a process pool of 1-thread workers does)."""
    one = run_worker("icalign", cpus, args, args.simd, shape=name)
    procs = [start_worker("icalign", 1, args, args.simd, shape=name) for _ in range(cpus)]
    many = [finish_worker(p, "icalign") for p in procs]
    t_one = statistics.median(one["times"])
    t_many = [statistics.median(r["times"]) for r in many]
    rate_one, rate_many = 1.0 / t_one, sum(1.0 / t for t in t_many)
    print(f"| {shape_label(name)} | {t_one * 1e3:.1f} | {rate_one:.1f} | "
          f"{', '.join(f'{t * 1e3:.1f}' for t in t_many)} | {rate_many:.1f} | "
          f"{rate_many / rate_one:.2f}x |")
    return dict(one=one, many=many, steps_per_s_one=rate_one, steps_per_s_many=rate_many)


def torch_available():
    try:
        import torch  # noqa: F401
        _torch_model()
        return True
    except Exception:
        return False


def time_shape(name, threads, args, peaks, have_torch):
    """Times the training step of one shape on each thread count, prints its table;
    returns its results and the summary rows (name, flops, threads, median s, % peak)."""
    cfg, batch = SHAPES[name]
    batch = args.batch or batch
    flops = step_flops(B=batch, **cfg)
    rows = []
    for th in threads:
        ic = run_worker("icalign", th, args, args.simd, shape=name)
        tt = run_worker("torch", th, args, shape=name) if have_torch else None
        rows.append((th, ic, tt))
    isa = rows[0][1]["simd"]
    print(f"## Training step, {shape_label(name)}, T {3 * cfg['n_points']}, PL/cosine, Adam: "
          f"{flops / 1e9:.2f} GFLOP per step\n")
    print("| threads | icalign s/step (median) | icalign CPU s/step | icalign GFLOP/s | "
          "% of peak | torch s/step (median) | speed-up vs torch |\n"
          "|---|---|---|---|---|---|---|")
    med, summary = {}, []
    for th, ic, tt in rows:
        t_ic = statistics.median(ic["times"])
        med[th] = t_ic
        peak = peaks.get((isa, th))  # the peak of the ISA icalign ran (none for scalar)
        pct = f"{100 * flops / t_ic / 1e9 / peak:.1f}%" if peak else "n/a"
        summary.append((name, flops, th, t_ic, pct))
        t_t = statistics.median(tt["times"]) if tt else None
        print(f"| {th} | {t_ic:.4f} | {statistics.median(ic['cpu']):.4f} | "
              f"{flops / t_ic / 1e9:.1f} | {pct} | "
              f"{f'{t_t:.4f}' if t_t else 'n/a'} | {f'{t_t / t_ic:.2f}x' if t_t else 'n/a'} |")
    print()
    if 1 in med and 2 in med:
        print(f"Thread scaling 1 -> 2 (icalign): {med[1] / med[2]:.2f}x")
        tt1 = next((tt for th, ic, tt in rows if th == 1), None)
        tt2 = next((tt for th, ic, tt in rows if th == 2), None)
        if tt1 and tt2:
            print(f"Thread scaling 1 -> 2 (torch):   "
                  f"{statistics.median(tt1['times']) / statistics.median(tt2['times']):.2f}x")
    print(f"icalign path: {isa}; per-step times (ms): " +
          "; ".join(f"{th} thr: {', '.join(f'{x * 1e3:.1f}' for x in ic['times'])}"
                    for th, ic, _ in rows))
    print("Peak RSS of the process running the steps: " +
          "; ".join(f"icalign {th} thr {ic['rss_mib']:.0f} MiB" for th, ic, _ in rows) +
          ("; " + "; ".join(f"torch {th} thr {tt['rss_mib']:.0f} MiB" for th, _, tt in rows if tt)
           if have_torch else ""))
    print()
    return dict(flops_per_step=flops, batch=batch, config=cfg,
                runs={th: dict(icalign=ic, torch=tt) for th, ic, tt in rows}), summary


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts to time (default 1,2)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per run (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None,
                    help="batch size (default: the shape's, 256 for paper, 64 for quick)")
    ap.add_argument("--shapes", default="paper",
                    help="comma list of models to time: paper, E36, E12, E48, E72, or the "
                         "groups quick (E36,E12,E48,E72) and all (default paper)")
    ap.add_argument("--shape", default="paper", help=argparse.SUPPRESS)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-kernels", action="store_true", help="skip bench_kernels.c")
    ap.add_argument("--no-loss", action="store_true", help="skip the PL loss comparison")
    ap.add_argument("--executors", action="store_true",
                    help="also compare, per shape, one model on all cores against one "
                         "single-threaded model per core trained at once (steps/s)")
    ap.add_argument("--simd", default=None, help="force a dispatch path for icalign")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        args.threads = int(args.threads)
        fn = dict(icalign=_worker_icalign, torch=_worker_torch, loss=_worker_loss)[args.worker]
        print(json.dumps(fn(args)))
        return

    threads = [int(t) for t in args.threads.split(",")]
    results = dict(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                   load_before=os.getloadavg())
    print(f"# icalign benchmark: {os.cpu_count()} CPUs, load average before "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

    build_dir = Path(tempfile.mkdtemp(prefix="icalign-bench-"))
    peak_bin, kernels_bin = build(build_dir)
    peaks = measure_peak(peak_bin)
    results["peak_gflops"] = {f"{k[0]}/{k[1]}": v for k, v in peaks.items()}
    print("## FMA peak (benchmarks/peak.c)\n")
    print("| ISA | threads | GFLOP/s |\n|---|---|---|")
    for (isa, th), gf in sorted(peaks.items()):
        print(f"| {isa} | {th} | {gf:.1f} |")
    print()
    if not args.no_kernels:
        best_isa = args.simd or ("avx512" if ("avx512", 1) in peaks
                                 else "avx2" if ("avx2", 1) in peaks else None)
        results["kernels"] = {}
        for th in threads:
            peak = peaks.get((best_isa, th)) if best_isa else None
            cmd = [str(kernels_bin), "--threads", str(th)]
            if peak:
                cmd += ["--peak", str(peak)]
            if args.simd:
                cmd += ["--simd", args.simd]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results["kernels"][th] = out
            print(f"## Kernels, {th} thread(s) (benchmarks/bench_kernels.c)\n")
            print("```\n" + out.rstrip() + "\n```\n")
    shutil.rmtree(build_dir, ignore_errors=True)

    have_torch = not args.no_torch and torch_available()
    shapes = parse_shapes(args.shapes)
    results["step"] = {}
    summary = []
    for name in shapes:
        results["step"][name], rows = time_shape(name, threads, args, peaks, have_torch)
        summary += rows
    if len(shapes) > 1:
        print("## Summary: training step per model\n")
        print("| model | GFLOP/step | threads | ms/step (median) | GFLOP/s | % of peak |\n"
              "|---|---|---|---|---|---|")
        for name, flops, th, t, pct in summary:
            print(f"| {shape_label(name)} | {flops / 1e9:.2f} | {th} | {t * 1e3:.1f} | "
                  f"{flops / t / 1e9:.0f} | {pct} |")
        print()

    if args.executors:
        cpus = max(threads)
        print(f"## One {cpus}-thread training vs {cpus} single-threaded trainings at once\n")
        print(f"| model | {cpus}-thread ms/step | steps/s | 1-thread ms/step of each | "
              f"steps/s (sum) | gain |\n|---|---|---|---|---|---|")
        results["executors"] = {name: compare_executors(name, args, cpus) for name in shapes}
        print()

    if not args.no_loss:
        loss_th = max(threads)
        lo = run_worker("loss", loss_th, args)
        results["pl_loss"] = lo
        print(f"## PL loss + gradient over the batch ({args.batch or BATCH} x 20 x 5), "
              f"{loss_th} threads\n")
        print("| icalign | torch (vectorised) | speed-up |\n|---|---|---|")
        if "torch" in lo:
            print(f"| {lo['icalign'] * 1e6:.0f} us | {lo['torch'] * 1e6:.0f} us | "
                  f"{lo['torch'] / lo['icalign']:.0f}x |")
        else:
            print(f"| {lo['icalign'] * 1e6:.0f} us | n/a | n/a |")
    results["load_after"] = os.getloadavg()
    print(f"\nload average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
