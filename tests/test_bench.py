"""``nnfast bench --quick`` runs end to end (each benchmark checks its results
against a reference before timing) and writes every section to JSON. Timings
are never asserted; only that each row carries its ratios and ceilings."""
import json
import subprocess
import sys

import nnfast


def test_fma_peak_probe_is_positive_and_fp64_is_about_half():
    f32 = nnfast._C.fma_peak_gflops(False, 0.05)
    f64 = nnfast._C.fma_peak_gflops(True, 0.05)
    assert f32 > 0 and f64 > 0
    assert 0.2 < f64 / f32 < 0.9  # twice the lanes for fp32; loose for a loaded machine


def test_bench_quick_prints_tables_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "nnfast", "bench", "--quick", "--json", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    for section in ("## gemm", "## gemm_bf16", "## memory", "## overhead", "## step"):
        assert section in r.stdout
    data = json.loads(out.read_text())
    assert data["machine"]["fma_peak_gflops_per_core"] > 0
    gemm = data["gemm"]
    assert {r["threads"] for r in gemm} == {1, 2}
    assert {r["layout"] for r in gemm} >= {"NN", "NT", "TN"}
    assert all(r["nnfast_gflops"] > 0 and r["ratio_vs_numpy"] > 0 and r["pct_peak"] > 0 for r in gemm)
    bf16 = data["gemm_bf16"]
    assert [r["case"] for r in bf16] == ["square 512", "square 1024"]
    assert all(r["bf16_gflops"] > 0 and r["bf16_vs_fp32"] > 0 for r in bf16)
    if nnfast._C.bf16_kernel() == "avx512_bf16":
        assert all(r["pct_bf16_peak"] > 0 for r in bf16)
    memory = {r["kernel"]: r for r in data["memory"]}
    assert memory["copy ceiling (fastest of the above)"]["pct_copy_bw"] == 100.0
    for name in ("relu fwd", "cross_entropy loss+grad (rows of 1000)", "layer_norm bwd", "batch_norm fwd (train, 1024 features)",
                 "dropout fwd", "Adam step", "SGD (momentum) step", "LAMB step"):
        assert memory[name]["nnfast_gbs"] > 0 and memory[name]["pct_copy_bw"] > 0
    step = data["step"]
    assert [r["model"] for r in step] == ["784-128-10", "784-1024-1024-10"]
    assert all(r["vs_numpy"] > 0 and r["pct_peak"] > 0 for r in step)
    assert all(r["nnfast_us"] > 0 for r in data["overhead"])
