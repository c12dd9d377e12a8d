"""GEMM benchmark: nnfast vs NumPy (and PyTorch when importable), same run.

Checks correctness first, then times each library in alternating blocks
(nnfast, NumPy, torch, nnfast, ...) so machine noise hits all of them alike
(blocks, not single calls, and a pause between them, because idle BLAS/OpenMP
threads spin for a while after a call and would slow the next library's
threads), and reports the
median (and best) GFLOP/s and the nnfast / NumPy ratio, on 1 and 2 threads, for
square sizes in every transpose case (NN, NT = A @ B.T, TN = A.T @ B) and the
shapes of MLP training (forward, dX and dW GEMMs of 784-1024-1024-10 nets).

    python bench/bench_gemm.py [--quick] [--full] [--threads 1,2] [--json out.json]

NumPy's thread count is set with threadpoolctl when it is installed; otherwise
each thread count runs in a child process started with OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS / MKL_NUM_THREADS set (BLAS libraries read them at load time).

Fair NumPy baseline: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines)
pin NumPy's OpenBLAS to older kernels when NumPy loads. When either is set, the
measurements run in a child process with both unset, and every row records the
OpenBLAS kernel that ran (threadpoolctl's ``architecture``) in ``numpy_blas``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

# Variables that pin NumPy's OpenBLAS to handicapped kernels (read when NumPy loads).
PINNED_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_pinned() -> bool:
    """Whether this process's NumPy was loaded with its OpenBLAS kernel choice pinned."""
    return any(v in os.environ for v in PINNED_BLAS_VARS)


def unpinned_env() -> dict[str, str]:
    """This process's environment without the OpenBLAS pinning variables."""
    return {k: v for k, v in os.environ.items() if k not in PINNED_BLAS_VARS}


def blas_info() -> str:
    """The BLAS behind NumPy as threadpoolctl sees it: library, version, kernel architecture."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    libs = [f"{d.get('internal_api')} {d.get('version')} {d.get('architecture')} ({d.get('num_threads')} threads)"
            for d in threadpool_info() if d.get("user_api") == "blas"]
    return "; ".join(libs) or "none found"


TRAINING_SHAPES = [
    # (name, M, N, K, layout): layout gives op(A), op(B); N = plain, T = transposed view.
    # The GEMMs nn.Linear runs (weight W is (out, in), as in PyTorch) for the
    # 784-1024-1024-10 MLP at batch 256 and 784-128-10 at batch 64:
    # forward x @ W^T (NT), dX = dz @ W (NN), dW = dz^T @ x (TN).
    ("fwd x.W^T 256x784.(1024x784)^T", 256, 1024, 784, "NT"),
    ("fwd x.W^T 256x1024.(1024x1024)^T", 256, 1024, 1024, "NT"),
    ("fwd x.W^T 64x784.(128x784)^T", 64, 128, 784, "NT"),
    ("dX dz.W 256x1024.1024x784", 256, 784, 1024, "NN"),
    ("dW dz^T.x (256x1024)^T.256x784", 1024, 784, 256, "TN"),
    ("dW dz^T.x (256x1024)^T.256x1024", 1024, 1024, 256, "TN"),
]


def _cases(quick: bool, full: bool) -> list[tuple[str, int, int, int, str]]:
    """Square sizes 128..4096 (256 and 1024 with quick; ``full`` is kept for
    compatibility: 4096 is always in the full run) in every transpose case,
    then the training shapes."""
    sizes = [256, 1024] if quick else [128, 256, 512, 1024, 2048, 4096]
    layouts = ["NN", "NT", "TN"]
    out = [(f"square {n}", n, n, n, lay) for n in sizes for lay in layouts]
    shapes = TRAINING_SHAPES[:3] if quick else TRAINING_SHAPES
    return out + [(name, m, n, k, lay) for (name, m, n, k, lay) in shapes]


def _operands(m: int, n: int, k: int, layout: str, dtype: Any,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Transposed operands are views of contiguous arrays: no copies anywhere.
    a = rng.standard_normal((k, m)).astype(dtype).T if layout[0] == "T" else rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k)).astype(dtype).T if layout[1] == "T" else rng.standard_normal((k, n)).astype(dtype)
    return a, b


def _load_nnfast() -> Any:
    try:
        from nnfast import _C
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
        from nnfast import _C
    return _C


def _load_torch() -> Any:
    try:
        import torch

        return torch
    except Exception:
        return None


def _time_rounds(fns: dict[str, Callable[[], Any]], reps: int, nt: int) -> dict[str, list[float]]:
    """Times each library in short blocks, alternating libraries between blocks.

    With several threads, idle BLAS / OpenMP worker threads keep spinning for a
    while after a call (OpenBLAS for up to ~0.1 s) and would steal the cores of
    the next library's call, so libraries alternate block by block with a pause,
    not call by call. Alternating blocks still spreads machine noise over all.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    rounds = 3
    per = max(1, (reps + rounds - 1) // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            if nt > 1:
                time.sleep(0.2)
                fn()  # re-wake this library's threads
            for _ in range(per):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return times


def _bench_threads(nt: int, quick: bool, full: bool, dtype: Any = np.float32,
                   use_torch: bool = True) -> list[dict[str, Any]]:
    _C = _load_nnfast()
    _C.set_num_threads(nt)
    torch = _load_torch() if use_torch else None
    if torch is not None:
        torch.set_num_threads(nt)
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=nt)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    results = []
    try:
        for name, m, n, k, lay in _cases(quick, full):
            a, b = _operands(m, n, k, lay, dtype, rng)
            c_nn = np.empty((m, n), dtype)
            c_np = np.empty((m, n), dtype)
            _C.gemm(c_nn, a, b)
            np.matmul(a, b, out=c_np)
            # Correctness before timing: against NumPy, scaled by the K-term magnitude.
            scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64) if m * n * k <= 2**31 else \
                np.abs(a) @ np.abs(b)  # float32 bound for 4096^3: the float64 product would take longer than the timing
            err = float(np.max(np.abs(c_nn.astype(np.float64) - c_np.astype(np.float64)) / (scale + 1.0)))
            ok = err < 1e-5 * max(1.0, k / 256)
            if not ok:
                raise AssertionError(f"[bench_gemm] nnfast result wrong for {name} {lay}: rel err {err:.3g}")
            fns: dict[str, Callable[[], Any]] = {"nnfast": lambda: _C.gemm(c_nn, a, b),
                                                 "numpy": lambda: np.matmul(a, b, out=c_np)}
            if torch is not None:
                ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c_np.copy())
                fns["torch"] = lambda: torch.mm(ta, tb, out=tc)
            # Warm-up, then enough repeats for ~0.25 s per library (5..50).
            t0 = time.perf_counter()
            for fn in fns.values():
                fn()
            one = (time.perf_counter() - t0) / len(fns)
            reps = int(min(50, max(5, 0.25 / max(one, 1e-9))))
            if quick:
                reps = max(3, reps // 2)
            times = _time_rounds(fns, reps, nt)
            flops = 2.0 * m * n * k
            row = {"case": name, "layout": lay, "M": m, "N": n, "K": k, "threads": nt, "dtype": np.dtype(dtype).name,
                   "reps": reps, "max_rel_err": err, "numpy_blas": blas_info(), "blas_pinned": blas_pinned()}
            for lib, ts in times.items():
                ts = sorted(ts)
                row[f"{lib}_gflops"] = flops / ts[len(ts) // 2] * 1e-9
                row[f"{lib}_best_gflops"] = flops / ts[0] * 1e-9
            row["ratio_vs_numpy"] = row["nnfast_gflops"] / row["numpy_gflops"]
            if "torch_gflops" in row:
                row["ratio_vs_torch"] = row["nnfast_gflops"] / row["torch_gflops"]
            results.append(row)
    finally:
        if limiter is not None:
            limiter.unregister() if hasattr(limiter, "unregister") else limiter.restore_original_limits()
    return results


def _have_threadpoolctl() -> bool:
    try:
        import threadpoolctl  # noqa: F401

        return True
    except ImportError:
        return False


def run(quick: bool = False, full: bool = False, threads: tuple[int, ...] = (1, 2),
        use_torch: bool = True) -> list[dict[str, Any]]:
    """Benchmark rows (one dict per case and thread count); raises if a result is wrong."""
    rows: list[dict[str, Any]] = []
    for nt in threads:
        if _have_threadpoolctl() and not blas_pinned():
            rows += _bench_threads(nt, quick, full, use_torch=use_torch)
            continue
        # A child with the pinning variables unset (and thread counts set for BLAS libraries
        # that read them at load time).
        env = unpinned_env()
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NNFAST_NUM_THREADS"):
            env[var] = str(nt)
        cmd = [sys.executable, "-m", "nnfast.bench.gemm", "--child", str(nt)]
        if quick:
            cmd.append("--quick")
        if full:
            cmd.append("--full")
        if not use_torch:
            cmd.append("--no-torch")
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        rows += json.loads(out.stdout.strip().splitlines()[-1])
    peak = _load_nnfast().fma_peak_gflops()
    if peak:
        for r in rows:
            r["pct_peak"] = 100 * r["nnfast_gflops"] / (peak * r["threads"])
            r["peak_gflops_per_core"] = peak
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    has_torch = any("torch_gflops" in r for r in rows)
    hdr = f"{'case':30s} {'lay':3s} {'thr':>3s} {'nnfast':>8s} {'numpy':>8s}" + (f" {'torch':>8s}" if has_torch else "")
    print(hdr + f" {'x numpy':>8s}   (median GFLOP/s; best in brackets)")
    for r in rows:
        line = (f"{r['case']:30s} {r['layout']:3s} {r['threads']:3d} {r['nnfast_gflops']:8.1f} {r['numpy_gflops']:8.1f}")
        if has_torch:
            line += f" {r.get('torch_gflops', float('nan')):8.1f}"
        line += f" {r['ratio_vs_numpy']:8.2f}   [{r['nnfast_best_gflops']:.1f} vs {r['numpy_best_gflops']:.1f}]"
        print(line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few sizes, fewer repeats")
    p.add_argument("--full", action="store_true", help="include 4096^3")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        rows = _bench_threads(args.child, args.quick, args.full, use_torch=not args.no_torch)
        print(json.dumps(rows))
        return 0
    threads = tuple(int(t) for t in args.threads.split(","))
    rows = run(quick=args.quick, full=args.full, threads=threads, use_torch=not args.no_torch)
    _C = _load_nnfast()
    print(f"# {platform.processor() or platform.machine()}, nnfast isa={_C.cpu_isa()}, numpy {np.__version__}")
    print(f"# NumPy BLAS: {rows[0].get('numpy_blas') if rows else '?'}; "
          f"OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE {'SET (pinned)' if rows and rows[0].get('blas_pinned') else 'unset'} "
          "for the NumPy contender; 0.2 s pause between contenders")
    _print(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.uname()._asdict(), "isa": _C.cpu_isa(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
