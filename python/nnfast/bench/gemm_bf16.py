"""bf16 GEMM benchmark: nnfast's bf16 GEMM vs its float32 GEMM (and PyTorch's bf16 mm), same run.

Square sizes 1024, 2048, 4096 (512 and 1024 with ``quick``) on 2 threads by default.
The bf16 contenders: float32 operands rounded to bf16 while packing (what a Linear
layer with float32 master weights runs under autocast) and bf16 operands. Reports
GFLOP/s (median of alternating blocks, as the float32 GEMM bench), the ratio to
nnfast's float32 GEMM and the percentage of the bf16 peak measured in this run
with a probe of the kernel in use: ``tdpbf16ps`` (4 accumulator tiles) where the
AMX-BF16 kernel runs, else ``vdpbf16ps`` (0 where the CPU has no AVX512-BF16: the
portable path then runs, and only the ratio means anything). On an AMX CPU the
``vdpbf16ps`` probe is printed next to it, and the CPU-time rows add the
AVX512-BF16 kernel (``avx512``, as NNFAST_BF16=avx512_bf16) for the A/B.

    python -m nnfast.bench.gemm_bf16 [--quick] [--threads 2] [--json out.json] [--cpu-time] [--mlp]

``x grid`` / ``x rule``: the default thread schedule (shared B) over the per-thread grid / the
candidate size rule (NNFAST_BF16_SHARED_B=auto: the grid where its B slab fits half an L2), same run.

``--cpu-time`` adds single-thread rows timed by process CPU time (best of 4), which a
loaded machine disturbs less than wall time (it still shares caches and cores); with
``--mlp`` they include the MLP layer shapes too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

import numpy as np

from .common import cpu_name
from .gemm import _load_nnfast, _load_torch, _time_rounds


def _check(_C: Any, bf16: Any, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Max error of the first 64 rows of c = bf16(a) @ bf16(b) relative to the bf16 rounding bound."""
    rows = min(64, a.shape[0])
    a64, b64 = a[:rows].astype(np.float64), b.astype(np.float64)
    want = a64 @ b64
    tol = (2 * 2.0 ** -8 + a.shape[1] * 2.0 ** -24) * (np.abs(a64) @ np.abs(b64)) + 1e-30
    err = float(np.max(np.abs(c[:rows].astype(np.float64) - want) / tol))
    if not err <= 1.0:
        raise AssertionError(f"[bench_gemm_bf16] bf16 GEMM outside its error bound ({err:.3g} x bound)")
    return err


def _peaks(_C: Any, seconds: float = 0.3) -> tuple[float, float]:
    """(peak of the kernel in use, vdpbf16ps peak) per core, GFLOP/s; equal unless the AMX kernel runs."""
    peak = float(_C.bf16_peak_gflops(seconds))
    if _C.bf16_kernel() != "amx_bf16":
        return peak, peak
    old = _C.bf16_level()
    try:
        _C.set_bf16_level("avx512_bf16")
        return peak, float(_C.bf16_peak_gflops(seconds))
    finally:
        _C.set_bf16_level(old)


def _with_level(_C: Any, level: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    """fn run at bf16 level `level` (restored after)."""
    def run() -> Any:
        old = _C.bf16_level()
        _C.set_bf16_level(level)
        try:
            return fn()
        finally:
            _C.set_bf16_level(old)
    return run


def _schedule(setting: str, fn: Callable[[], Any]) -> None:
    """Runs fn with a thread schedule: "0" the per-thread grid (each thread packs its own B slab),
    "auto" the kernel's size rule (the grid where its B slab fits half an L2, else shared B); the
    default is shared B (B packed once, read by every thread)."""
    os.environ["NNFAST_BF16_SHARED_B"] = setting
    try:
        fn()
    finally:
        os.environ.pop("NNFAST_BF16_SHARED_B", None)


def run(quick: bool = False, threads: tuple[int, ...] = (2,), sizes: tuple[int, ...] = (),
        mlp: bool = False) -> list[dict[str, Any]]:
    """Benchmark rows, one per case and thread count; raises if a result is outside its bound."""
    import ml_dtypes

    bf16 = ml_dtypes.bfloat16
    _C = _load_nnfast()
    torch = _load_torch()
    peak, vdp_peak = _peaks(_C)
    fp32_peak = float(_C.fma_peak_gflops(False, 0.3))
    sizes = sizes or ((512, 1024) if quick else (1024, 2048, 4096))
    rng = np.random.default_rng(0)
    cases: list[tuple[str, np.ndarray, np.ndarray]] = []
    for n in sizes:
        cases.append((f"square {n}", rng.standard_normal((n, n)).astype(np.float32),
                      rng.standard_normal((n, n)).astype(np.float32)))
    if mlp:
        # The MLP layer's GEMMs: forward x.W^T (NT) and the weight gradient dz^T.x (TN).
        for m, n, k, lay in ((256, 1024, 784, "NT"), (256, 1024, 1024, "NT"), (1024, 784, 256, "TN")):
            x = rng.standard_normal((m, k) if lay == "NT" else (k, m)).astype(np.float32)
            w = rng.standard_normal((n, k) if lay == "NT" else (k, n)).astype(np.float32)
            cases.append((f"{lay} {m}x{n}x{k}", x if lay == "NT" else x.T, w.T if lay == "NT" else w))
    rows: list[dict[str, Any]] = []
    old = _C.get_num_threads()
    try:
        for nt in threads:
            _C.set_num_threads(nt)
            if torch is not None:
                torch.set_num_threads(nt)
            for name, a, b in cases:
                n_m, n_k, n_n = a.shape[0], a.shape[1], b.shape[1]
                ab, bb = a.astype(bf16), b.astype(bf16)
                c32 = np.empty((n_m, n_n), np.float32)
                c16 = np.empty((n_m, n_n), np.float32)
                _C.gemm(c16, a, b, precision="bf16")
                err = _check(_C, bf16, a, b, c16)
                fns: dict[str, Callable[[], Any]] = {
                    "fp32": lambda: _C.gemm(c32, a, b),
                    "bf16": lambda: _C.gemm(c16, a, b, precision="bf16"),
                    "bf16_in": lambda: _C.gemm(c16, ab, bb, precision="bf16"),
                    "bf16_grid": lambda: _schedule("0", lambda: _C.gemm(c16, a, b, precision="bf16")),
                    "bf16_rule": lambda: _schedule("auto", lambda: _C.gemm(c16, a, b, precision="bf16")),
                }
                if torch is not None:
                    ta, tb = torch.from_numpy(np.ascontiguousarray(a)).bfloat16(), torch.from_numpy(
                        np.ascontiguousarray(b)).bfloat16()
                    ta, tb = (ta if a.flags.c_contiguous else ta.t().contiguous().t()), (
                        tb if b.flags.c_contiguous else tb.t().contiguous().t())
                    fns["torch_bf16"] = lambda: torch.mm(ta, tb)
                t0 = time.perf_counter()
                for fn in fns.values():
                    fn()
                one = (time.perf_counter() - t0) / len(fns)
                reps = int(min(30, max(3, 0.3 / max(one, 1e-9))))
                if quick:
                    reps = max(3, reps // 2)
                times = _time_rounds(fns, reps, nt)
                flops = 2.0 * n_m * n_n * n_k
                row: dict[str, Any] = {"case": name, "threads": nt, "bf16_kernel": _C.bf16_kernel(),
                                       "max_err_over_bound": err, "reps": reps}
                for lib, ts in times.items():
                    row[f"{lib}_gflops"] = flops / sorted(ts)[len(ts) // 2] * 1e-9
                row["bf16_vs_grid"] = row["bf16_gflops"] / row["bf16_grid_gflops"]
                row["bf16_vs_rule"] = row["bf16_gflops"] / row["bf16_rule_gflops"]
                row["bf16_vs_fp32"] = row["bf16_gflops"] / row["fp32_gflops"]
                if peak > 0:
                    row["pct_bf16_peak"] = 100 * row["bf16_gflops"] / (peak * nt)
                    row["pct_bf16_peak_bf16_in"] = 100 * row["bf16_in_gflops"] / (peak * nt)
                row["bf16_peak_gflops_per_core"] = peak
                row["vdpbf16ps_peak_gflops_per_core"] = vdp_peak
                row["fp32_pct_peak"] = 100 * row["fp32_gflops"] / (fp32_peak * nt)
                if "torch_bf16_gflops" in row:
                    row["bf16_vs_torch_bf16"] = row["bf16_gflops"] / row["torch_bf16_gflops"]
                rows.append(row)
    finally:
        _C.set_num_threads(old)
    return rows


def cpu_time_rows(sizes: tuple[int, ...] = (512, 1024, 2048), mlp: bool = False) -> list[dict[str, Any]]:
    """Single-thread GFLOP/s by process CPU time (best of 4): fp32, bf16 NN and bf16 NT (A @ W^T);
    with ``mlp`` also fp32 and bf16 on the MLP layer shapes (forward NT, weight-gradient TN)."""
    _C = _load_nnfast()
    peak, _ = _peaks(_C)
    amx = _C.bf16_kernel() == "amx_bf16"
    fp32_peak = float(_C.fma_peak_gflops(False, 0.3))
    rng = np.random.default_rng(1)
    rows: list[dict[str, Any]] = []
    old = _C.get_num_threads()
    _C.set_num_threads(1)
    try:
        for n in sizes:
            a = rng.standard_normal((n, n)).astype(np.float32)
            b = rng.standard_normal((n, n)).astype(np.float32)
            w = np.ascontiguousarray(b.T)
            c = np.empty((n, n), np.float32)

            def best(fn: Callable[[], Any]) -> float:
                fn()
                t = min(_cpu_seconds(fn) for _ in range(4))
                return 2.0 * n ** 3 / max(t, 1e-9) * 1e-9

            row: dict[str, Any] = {"case": f"square {n}", "threads": 1, "clock": "cpu",
                                   "fp32_gflops": best(lambda: _C.gemm(c, a, b)),
                                   "bf16_gflops": best(lambda: _C.gemm(c, a, b, precision="bf16")),
                                   "bf16_nt_gflops": best(lambda: _C.gemm(c, a, w.T, precision="bf16"))}
            if amx:
                row["avx512_bf16_gflops"] = best(_with_level(_C, "avx512_bf16",
                                                             lambda: _C.gemm(c, a, b, precision="bf16")))
            row["bf16_vs_fp32"] = row["bf16_gflops"] / row["fp32_gflops"]
            row["fp32_pct_peak"] = 100 * row["fp32_gflops"] / fp32_peak if fp32_peak else float("nan")
            if peak > 0:
                row["pct_bf16_peak"] = 100 * row["bf16_gflops"] / peak
                row["pct_bf16_peak_nt"] = 100 * row["bf16_nt_gflops"] / peak
            rows.append(row)
        for m, n, k, lay in ((256, 1024, 784, "NT"), (256, 1024, 1024, "NT"), (1024, 784, 256, "TN")) if mlp else ():
            x = rng.standard_normal((m, k) if lay == "NT" else (k, m)).astype(np.float32)
            w = rng.standard_normal((n, k) if lay == "NT" else (k, n)).astype(np.float32)
            xa, wb = (x, w.T) if lay == "NT" else (x.T, w)
            cm = np.empty((m, n), np.float32)
            flops = 2.0 * m * n * k

            def best_mlp(fn: Callable[[], Any]) -> float:
                fn()
                return flops / max(min(_cpu_seconds(fn) for _ in range(8)), 1e-9) * 1e-9

            mrow: dict[str, Any] = {"case": f"{lay} {m}x{n}x{k}", "threads": 1, "clock": "cpu",
                                    "fp32_gflops": best_mlp(lambda: _C.gemm(cm, xa, wb)),
                                    "bf16_gflops": best_mlp(lambda: _C.gemm(cm, xa, wb, precision="bf16"))}
            if amx:
                mrow["avx512_bf16_gflops"] = best_mlp(_with_level(_C, "avx512_bf16",
                                                                  lambda: _C.gemm(cm, xa, wb, precision="bf16")))
            mrow["bf16_vs_fp32"] = mrow["bf16_gflops"] / mrow["fp32_gflops"]
            mrow["fp32_pct_peak"] = 100 * mrow["fp32_gflops"] / fp32_peak if fp32_peak else float("nan")
            if peak > 0:
                mrow["pct_bf16_peak"] = 100 * mrow["bf16_gflops"] / peak
            rows.append(mrow)
    finally:
        _C.set_num_threads(old)
    return rows


def _cpu_seconds(fn: Callable[[], Any]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'case':16s} {'thr':>3s} {'fp32':>7s} {'bf16':>7s} {'bf16in':>7s} {'grid16':>7s} {'torch16':>7s} "
          f"{'x fp32':>7s} {'x grid':>7s} {'x rule':>7s} {'%peak16':>7s} {'%peak32':>7s}   (median GFLOP/s)")
    for r in rows:
        print(f"{r['case']:16s} {r['threads']:3d} {r['fp32_gflops']:7.1f} {r['bf16_gflops']:7.1f} "
              f"{r['bf16_in_gflops']:7.1f} {r['bf16_grid_gflops']:7.1f} {r.get('torch_bf16_gflops', float('nan')):7.1f} "
              f"{r['bf16_vs_fp32']:7.2f} {r['bf16_vs_grid']:7.2f} {r['bf16_vs_rule']:7.2f} "
              f"{r.get('pct_bf16_peak', float('nan')):7.1f} {r['fp32_pct_peak']:7.1f}")


def main(argv: list[str] | None = None) -> int:
    """Command line: prints the table (and writes JSON with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="512 and 1024 only, fewer repeats")
    p.add_argument("--threads", default="2", help="comma-separated thread counts (default 2)")
    p.add_argument("--sizes", default="", help="comma-separated square sizes (default 1024,2048,4096)")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    p.add_argument("--cpu-time", action="store_true", help="also single-thread rows timed by CPU time")
    p.add_argument("--mlp", action="store_true", help="also the MLP layer shapes (forward NT, weight-gradient TN)")
    args = p.parse_args(argv)
    _C = _load_nnfast()
    threads = tuple(int(t) for t in args.threads.split(","))
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    rows = run(quick=args.quick, threads=threads, sizes=sizes, mlp=args.mlp)
    print(f"# {cpu_name()}, bf16 level {_C.bf16_level()} (kernel {_C.bf16_kernel()}), isa {_C.cpu_isa()}, "
          f"bf16 peak {rows[0]['bf16_peak_gflops_per_core']:.1f} GFLOP/s per core")
    if _C.bf16_kernel() == "amx_bf16":
        print(f"# peak probes per core: tdpbf16ps {rows[0]['bf16_peak_gflops_per_core']:.1f}, "
              f"vdpbf16ps {rows[0]['vdpbf16ps_peak_gflops_per_core']:.1f} GFLOP/s (%peak16 is of tdpbf16ps)")
    _print(rows)
    cpu_rows = cpu_time_rows(mlp=args.mlp) if args.cpu_time else []
    if cpu_rows:
        print("\n# 1 thread, CPU time (best of 4): GFLOP/s (% of peak)")
        for r in cpu_rows:
            nt_part = (f"bf16 NT {r['bf16_nt_gflops']:6.1f} ({r.get('pct_bf16_peak_nt', float('nan')):3.0f} %)  "
                       if "bf16_nt_gflops" in r else "")
            print(f"{r['case']:16s} fp32 {r['fp32_gflops']:6.1f} ({r['fp32_pct_peak']:3.0f} %)  bf16 "
                  f"{r['bf16_gflops']:6.1f} ({r.get('pct_bf16_peak', float('nan')):3.0f} %)  {nt_part}"
                  f"x fp32 {r['bf16_vs_fp32']:.2f}"
                  + (f"  avx512 {r['avx512_bf16_gflops']:6.1f} (x {r['bf16_gflops'] / r['avx512_bf16_gflops']:.2f})"
                     if "avx512_bf16_gflops" in r else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_name(), "bf16_level": _C.bf16_level(), "rows": rows, "cpu_time_rows": cpu_rows},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
