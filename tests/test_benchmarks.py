"""The benchmarks' flop accounting: the products bench_bound.py times are the ones
bench_step.py counts, so the ceiling and the step's % of peak share one numerator."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.skipif(not (BENCH / "bench_bound.py").exists(),
                                reason="a checkout without benchmarks/")


def load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("ffn", [True, False])
def test_products_sum_to_the_counted_flops(ffn, causal):
    bound, step = load("bench_bound"), load("bench_step")
    for name, (cfg, batch) in step.SHAPES.items():
        products = bound.step_products(batch, **cfg, ffn=ffn, causal=causal)
        total = sum(bound.product_flops(p) for p in products)
        assert total == pytest.approx(step.step_flops(B=batch, **cfg, ffn=ffn, causal=causal),
                                      rel=1e-12), name


def test_products_of_the_quick_default_model():
    bound = load("bench_bound")
    products = {p[0]: p for p in bound.step_products(64, 5, 20, 36, 8, 3)}
    assert len(products) == 4 * 3 + 2 * 3 + 6
    # (name, count, M, K, N, A transposed, B transposed, credit)
    assert products["fwd mlp.c_proj"] == ("fwd mlp.c_proj", 8, 3840, 144, 36, False, False, 1.0)
    assert products["bwd-in attn.c_attn"][2:7] == (3840, 108, 36, False, True)
    assert products["bwd-w mlp.c_fc"][2:7] == (36, 3840, 144, True, False)
    assert products["attn dK = dS^T Q"][1:7] == (64 * 3 * 8, 60, 60, 12, True, False)
    assert products["attn S = Q K^T"][7] == pytest.approx(61 / 120)


def test_chunk_kernel_times_are_read_from_bench_kernels_output(tmp_path):
    bound = load("bench_bound")
    out = ("# path avx512, 1 thread, one chunk\n"
           "fwd attn.c_attn        120x36 @ 36x108            7.09 us    131.6 GFLOP/s   58.1% peak\n"
           "attention fwd          S2 H3 T60 hs12            13.74 us     38.4 GFLOP/s   16.9% peak\n"
           "of which softmax                                  7.42 us      0.0 GFLOP/s\n"
           "one layer on one chunk: 145.7 us = dense 82.3 (56%) + attention 41.9 (29%) + "
           "LayerNorm/GELU 21.5 (15%)\n")
    fake = tmp_path / "bench_kernels"
    fake.write_text("#!/bin/sh\ncat <<'OUT'\n" + out + "OUT\n")
    fake.chmod(0o755)
    times, raw = bound.chunk_kernels(fake, 36, 3, 200.0)
    assert raw == out
    assert times == {"fwd attn.c_attn": 7.09, "attention fwd": 13.74, "of which softmax": 7.42,
                     "layer": 145.7,
                     "LayerNorm/GELU": 21.5}
