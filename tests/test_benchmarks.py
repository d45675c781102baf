"""The benchmarks' flop accounting: the products bench_bound.py times are the ones
bench_step.py counts, so the ceiling and the step's % of peak share one numerator."""
import importlib.util
import json
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


def _compare_result():
    def b(pair, build, times):
        return dict(shape="E36", threads=1, pair=pair, build=build, times=times, simd="avx2")
    return dict(before="aaa", after="bbb", pairs=3, load_before=[0.5] * 3, load_after=[0.7] * 3,
                peaks=[{"avx2/1": 100.0}, {"avx2/1": 80.0}], flops={"E36": 3.0e9},
                bursts=[b(0, "before", [0.09, 0.10, 0.11]), b(0, "after", [0.05, 0.06]),
                        b(1, "before", [0.12]), b(1, "after", [0.04]),
                        b(2, "before", [0.08]), b(2, "after", [0.08])])


def test_compare_steps_pairs_bursts_and_takes_the_median_ratio():
    compare = load("compare_steps")
    rows = compare.summarise(_compare_result())
    assert len(rows) == 1
    shape, flops, th, tb, ta, ratio, lo, hi, pb, pa = rows[0]
    assert (shape, th) == ("E36", 1)
    # burst medians: before 0.10, 0.12, 0.08; after 0.055, 0.04, 0.08
    assert tb == pytest.approx(0.10) and ta == pytest.approx(0.055)
    assert (lo, ratio, hi) == pytest.approx((1.0, 0.10 / 0.055, 3.0))
    # % of the median of the peaks measured at the start and the end (90 GFLOP/s)
    assert pb == pytest.approx(100 * 3.0 / 0.10 / 90) and pa == pytest.approx(100 * 3.0 / 0.055 / 90)
    table = compare.format_table(rows)
    assert "| E36 L8 H3 (head size 12), batch 64 | 3.00 | 1 | 100.0 ms | 55.0 ms | 1.82× (1.00–3.00)" \
        in table


def test_compare_steps_table_reads_the_json_and_a_missing_after_burst_drops_its_pair(
        tmp_path, capsys):
    compare = load("compare_steps")
    result = _compare_result()
    result["bursts"] = result["bursts"][:-1]  # pair 2 lost its after burst
    path = tmp_path / "compare.json"
    path.write_text(json.dumps(result))
    compare.main(["table", str(path)])
    out = capsys.readouterr().out
    assert "| 110.0 ms | 47.5 ms |" in out and "before: aaa, after: bbb" in out


def test_compare_steps_rejects_a_path_that_is_not_a_checkout(tmp_path):
    compare = load("compare_steps")
    with pytest.raises(SystemExit, match="not a checkout"):
        compare.main(["run", "--before", str(tmp_path), "--pairs", "1"])


def _chunk_output(layer, dense, attn, lngelu, pct):
    return (f"# path avx2, 1 thread, one chunk\n"
            f"dense products, sum                             {dense} us     80.3 GFLOP/s   "
            f"78.4% peak\n"
            f"attention, sum                                   {attn} us     26.1 GFLOP/s   "
            f"25.5% peak\n"
            f"of which softmax                                 12.49 us      0.0 GFLOP/s\n"
            f"one layer on one chunk: {layer} us = dense {dense} (60%) + attention {attn} (26%) + "
            f"LayerNorm/GELU {lngelu} (14%)\n"
            f"layer, counted flops                            {layer} us     55.1 GFLOP/s   "
            f"{pct}% peak\n")


def test_compare_steps_chunks_keeps_the_best_pass_of_each_build():
    compare = load("compare_steps")
    text = ("### pass 1 before --chunk 36,3\n" + _chunk_output(280.0, 140.0, 62.0, 78.0, 44.5)
            + "### pass 1 after --chunk 36,3\n" + _chunk_output(240.0, 139.0, 60.0, 41.0, 52.0)
            + "### pass 2 before --chunk 36,3\n" + _chunk_output(274.7, 140.6, 61.8, 72.3, 45.4)
            + "### pass 2 after --chunk 36,3\n" + _chunk_output(229.0, 137.9, 59.2, 31.9, 54.5))
    passes = compare.read_chunk_passes(text)
    assert len(passes[("36,3", "before")]) == 2
    table = compare.format_chunk_table(passes)
    assert ("| 36,3 | 2 | 274.7 → 229.0 | 140.6 → 137.9 | 61.8 → 59.2 | 72.3 → 31.9 | "
            "45.4 → 54.5 % |") in table
    with pytest.raises(ValueError, match="no layer sum"):
        compare.read_chunk_passes("### pass 1 after --chunk 36,3\n# path avx2\n")
