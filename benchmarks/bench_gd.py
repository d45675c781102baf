#!/usr/bin/env python
"""Benchmark of the GD baseline (SPEC section 5) against a vectorised PyTorch version.

The GD baseline fits, for every task and every t = 2..15, a d x d map W by 50 Adam
steps (lr 0.1) on the Plackett-Luce loss with cosine reward over the first t
examples: 256 tasks x 14 values of t = 3584 independent fits of 50 steps each.
icalign runs them in C with OpenMP over (task, t). The PyTorch version is the fast
one a user would write: one W per (task, t), all fitted at once by batched Adam on
the sequence loss of tests/torch_model.py (the loss at example t depends only on
W[:, t], so the fits do not interact; Adam is invariant to the loss's averaging).

    python benchmarks/bench_gd.py            # 256 tasks, median of 5 runs
    python benchmarks/bench_gd.py --tasks 1024 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import icalign as ica

ROOT = Path(__file__).resolve().parent.parent
T_VALUES = list(range(2, 16))


def time_it(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_gd(batch, steps=50, lr=0.1):
    """Errors of the batched-Adam PyTorch GD baseline at t = 2..15, shape (B, 14)."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    import torch_model

    n = max(T_VALUES) + 1
    xs = torch.as_tensor(batch.xs[:, :n])
    ys = torch.as_tensor(batch.ys[:, :n])
    rs = torch.as_tensor(batch.rs[:, :n])
    B, d = xs.shape[0], xs.shape[2]
    bound = 1.0 / d ** 0.5
    W = torch.empty(B, n, d, d).uniform_(-bound, bound).requires_grad_()
    opt = torch.optim.Adam([W], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        pred = torch.einsum("bd,bnde->bne", xs[:, 0], W)
        torch_model.sequence_loss(pred, ys, rs, "pl", "cosine").backward()
        opt.step()
    with torch.no_grad():
        pred = torch.einsum("bd,bnde->bne", xs[:, 0], W)[:, T_VALUES].numpy()
    return ica.normalized_error(pred, batch.ystar)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()

    batch = ica.AlignmentTask().sample(args.tasks, seed=0)
    print(f"GD baseline: {args.tasks} tasks x t = 2..15 x 50 Adam steps "
          f"({args.tasks * len(T_VALUES)} fits); load average {os.getloadavg()[0]:.2f}\n")
    print("| implementation | threads | seconds (median) | mean error at t = 15 |")
    print("| --- | ---: | ---: | ---: |")
    for threads in (1, 2):
        ica.set_num_threads(threads)
        seconds = time_it(lambda: ica.gd_baseline(batch, T_VALUES), args.repeats)
        err = ica.normalized_error(ica.gd_baseline(batch, T_VALUES), batch.ystar)[:, -1].mean()
        print(f"| icalign (C, OpenMP) | {threads} | {seconds:.4f} | {err:.3f} |")
    if args.no_torch:
        return
    try:
        import torch
    except ImportError:
        print("| PyTorch | - | n/a (torch not installed) | |")
        return
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        seconds = time_it(lambda: torch_gd(batch), max(1, args.repeats // 2))
        err = torch_gd(batch)[:, -1].mean()
        print(f"| PyTorch {torch.__version__} (batched Adam) | {threads} | {seconds:.4f} | "
              f"{err:.3f} |")


if __name__ == "__main__":
    main()
