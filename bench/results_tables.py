"""Markdown tables for bench/RESULTS.md from `nnfast bench --json PATH`.

    nnfast bench --json /tmp/bench.json && python bench/results_tables.py /tmp/bench.json

Prints one table per section with the ratios the targets are stated in, so the
recorded figures are exactly the measured ones (nothing typed by hand).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable


def _f(v: Any, digits: int = 1) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _pct(v: Any) -> str:
    return "" if v is None else f"{v:.0f}%"


def _table(header: str, align: str, rows: list[dict[str, Any]], cells: Callable[[dict[str, Any]], list[str]]) -> str:
    out = [header, align]
    out += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(out)


def gemm(rows: list[dict[str, Any]]) -> str:
    return _table("| case | layout | threads | nnfast GFLOP/s | NumPy GFLOP/s | PyTorch GFLOP/s | nnfast / NumPy "
                  "| nnfast / PyTorch | nnfast % of peak |", "|---|---|---:|---:|---:|---:|---:|---:|---:|", rows,
                  lambda r: [r["case"], r["layout"], str(r["threads"]), _f(r["nnfast_gflops"]), _f(r["numpy_gflops"]),
                             _f(r.get("torch_gflops")), _f(r["ratio_vs_numpy"], 2), _f(r.get("ratio_vs_torch"), 2),
                             _pct(r.get("pct_peak"))])


def memory(rows: list[dict[str, Any]]) -> str:
    return _table("| kernel | nnfast GB/s | % of 2-thread copy | nnfast ms | NumPy ms | speed-up vs NumPy "
                  "| PyTorch ms | speed-up vs PyTorch |", "|---|---:|---:|---:|---:|---:|---:|---:|", rows,
                  lambda r: [r["kernel"], _f(r["nnfast_gbs"]), _pct(r["pct_copy_bw"]), _f(r.get("nnfast_ms"), 2),
                             _f(r.get("numpy_ms"), 2), _f(r.get("speedup"), 1), _f(r.get("torch_ms"), 2),
                             _f(r.get("vs_torch"), 1)])


def step(rows: list[dict[str, Any]]) -> str:
    return _table("| model | batch | nnfast ms | NumPy ms | nnfast / NumPy | PyTorch ms | nnfast / PyTorch "
                  "| nnfast GFLOP/s | % of 2-core peak |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|", rows,
                  lambda r: [r["model"], str(r["batch"]), _f(r["nnfast_ms"], 2), _f(r["numpy_ms"], 1),
                             _f(r["vs_numpy"], 2), _f(r.get("torch_ms"), 1), _f(r.get("vs_torch"), 2),
                             _f(r["nnfast_gflops"]), _pct(r.get("pct_peak"))])


def overhead(rows: list[dict[str, Any]]) -> str:
    return _table("| op | nnfast µs | PyTorch µs |", "|---|---:|---:|", rows,
                  lambda r: [r["op"], _f(r["nnfast_us"], 2), _f(r.get("torch_us"), 2)])


def distributed(rows: list[dict[str, Any]]) -> str:
    return _table("| case | setup | ms | speed-up vs 1 process | GB/s | % of mpi4py | % overlapped |",
                  "|---|---|---:|---:|---:|---:|---:|", rows,
                  lambda r: [r["case"], r["setup"], _f(r.get("ms"), 2), _f(r.get("speedup"), 2), _f(r.get("gb_s"), 2),
                             _pct(r.get("pct_of_mpi4py")), _pct(r.get("overlap_pct"))])


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    m = data["machine"]
    print(f"Machine: {m['cpu']}, {m['cores']} cores, SIMD {m['simd']}, {m['threads']} threads, NumPy {m['numpy']}, "
          f"nnfast {m['nnfast']}, commit {m['commit']}, {m['date']}; measured fp32 FMA peak "
          f"{m.get('fma_peak_gflops_per_core', 0):.1f} GFLOP/s per core.\n")
    for name, fn in (("gemm", gemm), ("memory", memory), ("step", step), ("overhead", overhead),
                     ("distributed", distributed)):
        if name in data:
            print(f"### {name}\n\n{fn(data[name])}\n")


if __name__ == "__main__":
    main(sys.argv[1])
