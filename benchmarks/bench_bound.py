#!/usr/bin/env python
"""A measured ceiling: a training step whose only cost is its products, run by BLAS.

Every product a training step must compute (the dense products of every layer, forward,
input gradient and weight gradient; the read-in and read-out; the six attention products
of every (sequence, head) pair) is timed on one thread in the BLAS libraries at hand:
Intel MKL through PyTorch (when it is installed) and OpenBLAS through NumPy. Each
product gets the best rate any library reaches for it, at the whole-batch size a
kernel-by-kernel implementation would call (M = B T rows; all B H attention pairs in
one batched call) or at 16 sequences (M = 16 T rows, operands that stay in L2). The
causal attention products are credited with only their visible pairs (T (T + 1) / 2 of
T^2), as if the masked half were free.

The sum of those times is the least time a step built on the best of these libraries
can take even if LayerNorm, GELU, softmax, the loss and Adam cost nothing; its counted
flops over that time is an upper bound of the % of the FMA peak such a step can reach.
A second ceiling adds the step's LayerNorm, GELU and softmax work (the softmax forward
and backward once each) at the speed of icalign's kernels, cache-hot, as bench_kernels
--chunk times them; the loss, Adam and the traffic of the saved activations still count
as free. Next to them: the layers'
products as icalign's chunk kernels run them (bench_kernels --chunk, one layer of one
2-sequence chunk, operands in cache, scaled to the step; its attention time includes
the softmax and the backward pass's recompute of the probabilities) and icalign's
whole measured step, both on one thread. One thread per core, two
single-threaded workers side by side (how ``icalign reproduce`` trains) reach the same
share of the two-thread peak at best. Every time is the best of --repeat interleaved
passes, and the percentages are of the best 1-thread FMA peak (peak.c) measured in
those passes: the clock of a virtual machine drifts.

    python benchmarks/bench_bound.py                     # quick shapes and the paper's model
    python benchmarks/bench_bound.py --shapes E36 --json bound.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_step  # noqa: E402  (the shapes, flop count, builds and step timing)


def step_products(B, n_dims, n_points, n_embd, n_layer, n_head, ffn=True, causal=True):
    """The products of one training step as (name, count, M, K, N, a_t, b_t, credit):
    ``count`` independent products op(A) (M x K) @ op(B) (K x N), where a_t / b_t say
    that the operand is used transposed, and ``credit`` the share of their flops a step
    needs (the visible pairs of a causal product). Their counted flops,
    sum of 2 M K N count credit, are ``bench_step.step_flops`` exactly."""
    T, E, d = 3 * n_points, n_embd, n_dims
    M, hs = B * T, E // n_head
    dense = [("attn.c_attn", E, 3 * E), ("attn.c_proj", E, E)]
    if ffn:
        dense += [("mlp.c_fc", E, 4 * E), ("mlp.c_proj", 4 * E, E)]
    products = []
    for name, K, N in dense:
        products += [(f"fwd {name}", n_layer, M, K, N, False, False, 1.0),
                     (f"bwd-in {name}", n_layer, M, N, K, False, True, 1.0),
                     (f"bwd-w {name}", n_layer, K, M, N, True, False, 1.0)]
    for name, rows, K, N in (("read_in", M, d, E), ("read_out", B * n_points, E, d)):
        products += [(f"fwd {name}", 1, rows, K, N, False, False, 1.0),
                     (f"bwd-in {name}", 1, rows, N, K, False, True, 1.0),
                     (f"bwd-w {name}", 1, K, rows, N, True, False, 1.0)]
    visible = (T + 1) / (2 * T) if causal else 1.0
    pairs = B * n_head * n_layer
    products += [("attn S = Q K^T", pairs, T, hs, T, False, True, visible),
                 ("attn O = P V", pairs, T, T, hs, False, False, visible),
                 ("attn dP = dO V^T", pairs, T, hs, T, False, True, visible),
                 ("attn dV = P^T dO", pairs, T, T, hs, True, False, visible),
                 ("attn dQ = dS K", pairs, T, T, hs, False, False, visible),
                 ("attn dK = dS^T Q", pairs, T, T, hs, True, False, visible)]
    return products


def product_flops(product):
    _, count, M, K, N, _, _, credit = product
    return 2.0 * M * K * N * count * credit


def library_rates(product, batch, n_layer):
    """{library and call size: GFLOP/s} of one product, for a call over the whole batch
    and one over 16 sequences; the rates count full products (credit 1)."""
    import numpy as np
    name, count, M, K, N, a_t, b_t, _ = product
    sizes = {}
    for seqs in sorted({batch, min(16, batch)}):
        if name.startswith("attn "):  # one batched call per layer: B H pairs
            sizes[seqs] = (count // n_layer * seqs // batch, M, K, N)
        elif a_t:  # a weight gradient sums over the rows, its K
            sizes[seqs] = (1, M, K // batch * seqs, N)
        else:
            sizes[seqs] = (1, M // batch * seqs, K, N)
    # library: (from NumPy, transpose the last two axes, matmul with out=, empty)
    libraries = {"OpenBLAS": (lambda x: x, lambda x: np.swapaxes(x, 1, 2), np.matmul,
                              lambda shape: np.empty(shape, np.float32))}
    try:
        import torch
        libraries["MKL"] = (torch.from_numpy, lambda x: x.transpose(1, 2), torch.matmul,
                            lambda shape: torch.empty(*shape))
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    rates = {}
    for seqs, (n, m, k, nn) in sizes.items():
        a = rng.standard_normal((n, k, m) if a_t else (n, m, k), dtype=np.float32)
        b = rng.standard_normal((n, nn, k) if b_t else (n, k, nn), dtype=np.float32)
        for library, (convert, transpose, matmul, empty) in libraries.items():
            a_op, b_op = convert(a), convert(b)
            a_op = transpose(a_op) if a_t else a_op
            b_op = transpose(b_op) if b_t else b_op
            out = empty((n, m, nn))
            if n == 1:  # a plain product, not a batch of one
                a_op, b_op, out = a_op[0], b_op[0], out[0]
            sec = bench_step.best_seconds(lambda: matmul(a_op, b_op, out=out), rounds=3)
            rates[f"{library} {seqs} seq"] = 2.0 * n * m * k * nn / sec / 1e9
    return rates


def parse_chunk_output(out):
    """From the output of bench_kernels --chunk: the per-chunk times (us) of every kernel
    by name (the sums too: "dense products, sum", "attention, sum"), the LayerNorm/GELU
    sum and the whole layer ("layer"); and the % of peak of every line that prints one."""
    times, percent = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("one layer on one chunk:"):  # 145.7 us = ... + LayerNorm/GELU 21.5
            times["layer"] = float(parts[parts.index("us") - 1])
            times["LayerNorm/GELU"] = float(parts[parts.index("LayerNorm/GELU") + 1])
        elif "us" in parts and not line.startswith("#"):  # name (22 columns), shape, time us
            name = line[:22].strip()
            times[name] = float(parts[parts.index("us") - 1])
            if parts[-1] == "peak":  # ... 55.1 GFLOP/s   54.5% peak
                percent[name] = float(parts[-2].rstrip("%"))
    return times, percent


def chunk_kernels(kernels_bin, E, H, peak):
    """icalign's per-chunk times (us) of one layer from bench_kernels --chunk
    (``parse_chunk_output``); and the output."""
    out = subprocess.run([str(kernels_bin), "--chunk", f"{E},{H}", "--peak", str(peak)],
                         check=True, capture_output=True, text=True).stdout
    return parse_chunk_output(out)[0], out


def bound_for_shape(name, args, kernels_bin, peak_bin, isa):
    cfg, batch = bench_step.SHAPES[name]
    batch = args.batch or batch
    products = step_products(batch, **cfg)
    counted = bench_step.step_flops(B=batch, **cfg)
    total = sum(product_flops(p) for p in products)
    assert abs(total - counted) <= 1e-9 * counted, (total, counted)
    # the rounds of every product interleave, so a slow spell of the machine does not
    # lower one product's rate only; each rate is the best of all rounds
    # (icalign's chunk kernels and step likewise: each time is the best of one run per
    # pass). The clock of this machine drifts by several % over minutes, so the FMA peak
    # is measured in every pass too, and the percentages use the best of those.
    E, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    best_rates, times, raw, step_medians, peaks = [{} for _ in products], {}, [], [], []
    for _ in range(args.repeat):
        peaks.append(bench_step.measure_peak(peak_bin)[(isa, 1)])
        for p, best in zip(products, best_rates):
            for key, rate in library_rates(p, batch, L).items():
                best[key] = max(best.get(key, 0.0), rate)
        pass_times, pass_raw = chunk_kernels(kernels_bin, E, H, peaks[-1])
        raw.append(pass_raw)
        times = {k: min(v, times.get(k, v)) for k, v in pass_times.items()}
        step = bench_step.run_worker("icalign", 1, args, shape=name)
        step_medians.append(statistics.median(step["times"]))
    peak = max(peaks)
    rows, t_best, t_dense, t_attn = [], 0.0, 0.0, 0.0
    for p, rates in zip(products, best_rates):
        lib, rate = max(rates.items(), key=lambda kv: kv[1])
        sec = product_flops(p) / (rate * 1e9)
        t_best += sec
        if p[0].startswith("attn "):
            t_attn += sec
        else:
            t_dense += sec
        rows.append(dict(product=p[0], count=p[1], M=p[2], K=p[3], N=p[4],
                         gflop=product_flops(p) / 1e9, rates=rates, best=lib,
                         best_pct=100 * rate / peak, ms=sec * 1e3))
    # icalign: its chunk kernels for the layers (read-in / read-out not in --chunk), and
    # its whole step (the best of the passes' medians), one thread each.
    chunks = (batch + 1) // 2  # 2-sequence chunks
    ours_dense = sum(v for k, v in times.items() if k.startswith(("fwd ", "bwd-in ", "bwd-w ")))
    ours_attn = times["attention fwd"] + times["attention bwd"]
    layer_flops = sum(product_flops(p) for p in products if "read_" not in p[0])
    ours_layers = (ours_dense + ours_attn) * chunks * L * 1e-6
    elementwise = (times["LayerNorm/GELU"] + times["of which softmax"]) * chunks * L * 1e-6
    in_cache = times["layer"] * chunks * L * 1e-6
    t_step = min(step_medians)
    return dict(shape=name, label=bench_step.shape_label(name), gflop=counted / 1e9,
                peak_gflops_1thread=peak, peaks_measured=peaks, chunk_kernel_us=times,
                products=rows, library_ms=t_best * 1e3, library_dense_ms=t_dense * 1e3,
                library_attention_ms=t_attn * 1e3, library_pct=100 * counted / t_best / 1e9 / peak,
                elementwise_ms=elementwise * 1e3,
                library_elementwise_pct=100 * counted / (t_best + elementwise) / 1e9 / peak,
                icalign_layer_products_ms=ours_layers * 1e3,
                icalign_dense_ms=ours_dense * chunks * L * 1e-3,
                icalign_layer_products_pct=100 * layer_flops / ours_layers / 1e9 / peak,
                library_layer_products_pct=100 * layer_flops / 1e9 / peak / sum(
                    r["ms"] * 1e-3 for r in rows if "read_" not in r["product"]),
                icalign_layers_in_cache_ms=in_cache * 1e3, icalign_step_ms=t_step * 1e3,
                icalign_step_medians_ms=[t * 1e3 for t in step_medians],
                icalign_step_pct=100 * counted / t_step / 1e9 / peak,
                chunk_kernels=raw)  # one bench_kernels output per pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="quick,paper",
                    help="comma list of models: paper, E36, E12, E48, E72, quick, all "
                         "(default quick,paper)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the shape's)")
    ap.add_argument("--steps", type=int, default=5, help="timed icalign steps (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=4,
                    help="passes over all products; each rate is the best pass (default 4)")
    ap.add_argument("--products", action="store_true", help="print every product's rates")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    args.simd = None
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    try:
        import torch
        torch.set_num_threads(1)
        libraries = f"MKL (torch {torch.__version__}) and OpenBLAS (NumPy)"
    except ImportError:
        libraries = "OpenBLAS (NumPy); PyTorch not installed, so no MKL"
    import numpy as np
    np_threads = os.environ["OPENBLAS_NUM_THREADS"]

    build_dir = Path(tempfile.mkdtemp(prefix="icalign-bound-"))
    peak_bin, kernels_bin = bench_step.build(build_dir)
    isa = "avx512" if ("avx512", 1) in bench_step.measure_peak(peak_bin) else "avx2"
    print(f"# Products-only ceiling, 1 thread: {libraries} (OPENBLAS_NUM_THREADS={np_threads}, "
          f"NumPy {np.__version__}); % of the best 1-thread FMA peak ({isa}) measured while "
          f"each model ran; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    results = dict(isa=isa, libraries=libraries, load_before=os.getloadavg(), shapes={})
    print("| model | GFLOP/step | FMA peak GFLOP/s | best library: dense ms | attention ms | products-only "
          "ceiling, % of peak | icalign LayerNorm, GELU, softmax ms | ceiling with them, % of peak | "
          "layer products: best library % | icalign chunk kernels % | icalign layers in cache ms | "
          "icalign step ms | icalign step % |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in bench_step.parse_shapes(args.shapes):
        r = bound_for_shape(name, args, kernels_bin, peak_bin, isa)
        results["shapes"][name] = r
        print(f"| {r['label']} | {r['gflop']:.2f} | {r['peak_gflops_1thread']:.1f} | "
              f"{r['library_dense_ms']:.1f} | "
              f"{r['library_attention_ms']:.1f} | **{r['library_pct']:.1f} %** | "
              f"{r['elementwise_ms']:.1f} | **{r['library_elementwise_pct']:.1f} %** | "
              f"{r['library_layer_products_pct']:.1f} % | {r['icalign_layer_products_pct']:.1f} % | "
              f"{r['icalign_layers_in_cache_ms']:.1f} | "
              f"{r['icalign_step_ms']:.1f} | {r['icalign_step_pct']:.1f} % |", flush=True)
    if args.products:
        for name, r in results["shapes"].items():
            print(f"\n## {r['label']}\n\n| product | count | M x K x N | GFLOP | "
                  + " | ".join(r["products"][0]["rates"]) + " | best % of peak |\n|"
                  + "---|" * (5 + len(r["products"][0]["rates"])))
            for p in r["products"]:
                print(f"| {p['product']} | {p['count']} | {p['M']}x{p['K']}x{p['N']} | "
                      f"{p['gflop']:.3f} | " + " | ".join(f"{v:.0f}" for v in p["rates"].values())
                      + f" | {p['best_pct']:.1f} % |")
    results["load_after"] = os.getloadavg()
    print(f"\nload average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
