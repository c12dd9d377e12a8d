"""``nnfast bench``: GEMM, memory-bound kernels and whole training steps,
timed against NumPy (and PyTorch when installed) in the same run."""
from __future__ import annotations

import importlib
import json
import time
from typing import Any, Optional

from .common import machine, table

SECTIONS = {
    "gemm": ("gemm", ["case", "layout", "threads", "nnfast_gflops", "numpy_gflops", "ratio_vs_numpy", "torch_gflops",
                      "pct_peak"]),
    "gemm_bf16": ("gemm_bf16", ["case", "threads", "bf16_kernel", "fp32_gflops", "bf16_gflops", "bf16_in_gflops",
                                "torch_bf16_gflops", "bf16_vs_fp32", "pct_bf16_peak"]),
    "memory": ("memory", ["kernel", "size_mb", "nnfast_gbs", "copy_gbs", "pct_copy_bw", "copy_spread", "nnfast_ms",
                          "numpy_ms", "speedup", "torch_ms", "vs_torch"]),
    "overhead": ("overhead", ["op", "nnfast_us", "torch_us"]),
    "step": ("step", ["model", "batch", "nnfast_ms", "numpy_ms", "vs_numpy", "torch_ms", "vs_torch",
                      "nnfast_gflops", "pct_peak", "nnfast_bf16_ms", "bf16_vs_fp32", "torch_bf16_ms",
                      "bf16_vs_torch_bf16"]),
    "distributed": ("distributed", ["case", "setup", "ms", "speedup", "gb_s", "pct_of_mpi4py", "overlap_pct"]),
}
# Sections that run only when named with --only: ``distributed`` launches ``mpiexec -n 2``.
OPT_IN = {"distributed"}


def main(quick: bool = False, json_path: Optional[str] = None, only: Optional[str] = None) -> int:
    wanted = [s.strip() for s in only.split(",")] if only else [s for s in SECTIONS if s not in OPT_IN]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"nnfast bench: error: unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, simd {info['simd']}, nnfast {info['nnfast']}, "
          f"numpy {info['numpy']}, commit {info['commit']}, {info['date']}, "
          f"measured fp32 FMA peak {info['fma_peak_gflops_per_core']:.1f} GFLOP/s per core")
    results: dict[str, Any] = {"machine": info, "quick": quick}
    for name in wanted:
        module, cols = SECTIONS[name]
        mod = importlib.import_module(f"{__name__}.{module}")
        t0 = time.perf_counter()
        rows = mod.run(quick=quick)
        results[name] = rows
        print(f"\n## {name} ({time.perf_counter() - t0:.0f} s)")
        present = [c for c in cols if any(c in r for r in rows)]
        print(table(rows, present))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2, default=float)
        print(f"\nwrote {json_path}")
    return 0
