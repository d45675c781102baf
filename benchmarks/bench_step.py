#!/usr/bin/env python
"""Benchmark of icalign's C core against PyTorch on this machine.

Prints, as markdown tables:
  1. the fp32 FMA peak (benchmarks/peak.c, built here with the system C compiler);
  2. per-kernel GFLOP/s and % of peak at the paper's shapes (benchmarks/bench_kernels.c);
  3. the training step of the paper's model (batch 256, N 20 -> T 60, n_embd 96,
     20 layers, 3 heads, PL loss with cosine reward, Adam), icalign vs PyTorch, on
     1 and 2 threads: median step time, GFLOP/s and % of peak, speed-up, scaling;
  4. peak resident memory of a process that runs paper-size training steps;
  5. the PL loss (forward + backward over the batch) vs the vectorised PyTorch loss.

Every timed run happens in a fresh subprocess (clean thread settings and RSS).
PyTorch is optional: without it the torch columns say "n/a".

    python benchmarks/bench_step.py                 # everything (~3-5 minutes)
    python benchmarks/bench_step.py --steps 3 --no-kernels
    python benchmarks/bench_step.py --json results.json

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
    model = ica.Transformer(ica.ModelConfig(**PAPER), seed=0)
    task = ica.AlignmentTask(n_dims=PAPER["n_dims"], n_points=PAPER["n_points"])
    batches = [task.sample(args.batch, seed=i) for i in range(args.warmup + args.steps)]
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
    task = ica.AlignmentTask(n_dims=PAPER["n_dims"], n_points=PAPER["n_points"])
    model = tm.TorchModel(**PAPER)
    tm.gpt2_init_(model, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    batches = [task.sample(args.batch, seed=i) for i in range(args.warmup + args.steps)]
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
        args.batch, seed=0)
    pred = np.random.default_rng(0).standard_normal(b.xs.shape).astype(np.float32)

    def best_of(fn, reps, rounds=5):
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - t0) / reps)
        return best

    out = dict(icalign=best_of(lambda: ica.pl_loss(pred, b.ys, b.rs, reward="cosine"), 200))
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

    out["torch"] = best_of(torch_pl, 20)
    return out


def run_worker(kind, threads, args, simd=None):
    cmd = [sys.executable, __file__, "--worker", kind, "--threads", str(threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    if simd:
        cmd += ["--simd", simd]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def torch_available():
    try:
        import torch  # noqa: F401
        _torch_model()
        return True
    except Exception:
        return False


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts to time (default 1,2)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per run (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-kernels", action="store_true", help="skip bench_kernels.c")
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
    flops = step_flops(B=args.batch)
    results["flops_per_step"] = flops
    rows = []
    for th in threads:
        ic = run_worker("icalign", th, args, args.simd)
        tt = run_worker("torch", th, args) if have_torch else None
        rows.append((th, ic, tt))
    results["step"] = {th: dict(icalign=ic, torch=tt) for th, ic, tt in rows}

    isa = rows[0][1]["simd"]
    print(f"## Training step, paper model (batch {args.batch}, T 60, n_embd 96, 20 layers, "
          f"3 heads, PL/cosine, Adam): {flops / 1e9:.1f} GFLOP per step\n")
    print("| threads | icalign s/step (median) | icalign CPU s/step | icalign GFLOP/s | "
          "% of peak | torch s/step (median) | speed-up vs torch |\n"
          "|---|---|---|---|---|---|---|")
    med = {}
    for th, ic, tt in rows:
        t_ic = statistics.median(ic["times"])
        med[th] = t_ic
        peak = peaks.get((isa, th))  # the peak of the ISA icalign ran (none for scalar)
        pct = f"{100 * flops / t_ic / 1e9 / peak:.1f}%" if peak else "n/a"
        t_t = statistics.median(tt["times"]) if tt else None
        print(f"| {th} | {t_ic:.3f} | {statistics.median(ic['cpu']):.3f} | "
              f"{flops / t_ic / 1e9:.1f} | {pct} | "
              f"{f'{t_t:.3f}' if t_t else 'n/a'} | {f'{t_t / t_ic:.2f}x' if t_t else 'n/a'} |")
    print()
    if 1 in med and 2 in med:
        print(f"Thread scaling 1 -> 2 (icalign): {med[1] / med[2]:.2f}x")
        tt1 = next((tt for th, ic, tt in rows if th == 1), None)
        tt2 = next((tt for th, ic, tt in rows if th == 2), None)
        if tt1 and tt2:
            print(f"Thread scaling 1 -> 2 (torch):   "
                  f"{statistics.median(tt1['times']) / statistics.median(tt2['times']):.2f}x")
    print(f"icalign path: {isa}; per-step times (s): " +
          "; ".join(f"{th} thr: {', '.join(f'{x:.3f}' for x in ic['times'])}" for th, ic, _ in rows))
    print("Peak RSS of the process running paper-size steps: " +
          "; ".join(f"icalign {th} thr {ic['rss_mib']:.0f} MiB" for th, ic, _ in rows) +
          ("; " + "; ".join(f"torch {th} thr {tt['rss_mib']:.0f} MiB" for th, _, tt in rows if tt)
           if have_torch else ""))
    print()

    loss_th = max(threads)
    lo = run_worker("loss", loss_th, args)
    results["pl_loss"] = lo
    print(f"## PL loss + gradient over the batch ({args.batch} x 20 x 5), {loss_th} threads\n")
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
