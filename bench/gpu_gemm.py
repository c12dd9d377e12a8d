"""CUDA GEMM benchmark: nnfast's CUDA GEMM vs CuPy's matmul (cuBLAS), on a GPU machine.

    python bench/gpu_gemm.py [--quick] [--reps N] [--json PATH] [--tf32 off|on|both]

For every case (squares 1024 / 2048 / 4096 in NN, NT, TN, and the GEMMs of MLP
training: forward x @ W^T, dX = dz @ W, dW = dz^T @ x) it first checks nnfast's
result against a float64 CuPy product, then times

  * nnfast through the Python API: ``a @ b`` on ``nnfast.tensor(..., device="cuda")``
    (the transposed operands are views, so NT / TN are stride swaps, not copies),
    and ``F.linear(x, W)`` for the forward shapes;
  * nnfast's raw binding ``nnfast._C_cuda.gemm(out, A, B)`` on CuPy arrays, when the
    build has it (no Python-side overhead);
  * ``cupy.matmul`` (cuBLAS),

with CUDA events over blocks of calls (median of the blocks), and prints GFLOP/s and
the nnfast / cuBLAS ratio. "TF32 on" runs in a child process with NNFAST_CUDA_TF32=1
(nnfast's tensor-core path, UNVERIFIED until this script has passed on a GPU) and
CUPY_TF32=1 (cuBLAS TF32), since both libraries read the setting once per process.

Importing this file needs neither CuPy nor a GPU (bench/gpu_check.sh runs it on one).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

SQUARES = [1024, 2048, 4096]
# (name, M, N, K, layout): op(A) is M x K, op(B) is K x N; T = a transposed view.
# The GEMMs of MLP training are the CPU benchmark's (nnfast.bench.gemm.TRAINING_SHAPES);
# these are added: a larger batch, closer to what a GPU is used for.
LARGE_SHAPES = [("fwd x.W^T 4096x1024.(4096x1024)^T", 4096, 4096, 1024, "NT")]


def _import_nnfast() -> Any:
    try:
        import nnfast
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
        import nnfast
    return nnfast


def cases(quick: bool) -> list[tuple[str, int, int, int, str]]:
    sizes = SQUARES[:2] if quick else SQUARES
    out = [(f"square {n} {lay}", n, n, n, lay) for n in sizes for lay in ("NN", "NT", "TN")]
    _import_nnfast()  # imported here, not at the top: importing this file needs no nnfast build
    from nnfast.bench.gemm import TRAINING_SHAPES

    mlp_shapes = TRAINING_SHAPES + LARGE_SHAPES
    return out + (mlp_shapes[:4] if quick else mlp_shapes)


def _operands(cp: Any, m: int, n: int, k: int, layout: str, rng: Any) -> tuple[Any, Any]:
    """float32 CuPy operands; a transposed operand is a .T view of a contiguous array."""
    a = rng.standard_normal((k, m), dtype=cp.float32).T if layout[0] == "T" else \
        rng.standard_normal((m, k), dtype=cp.float32)
    b = rng.standard_normal((n, k), dtype=cp.float32).T if layout[1] == "T" else \
        rng.standard_normal((k, n), dtype=cp.float32)
    return a, b


def _time(cp: Any, fn: Callable[[], Any], reps: int, blocks: int = 5) -> float:
    """Median seconds per call over `blocks` blocks of `reps` calls (CUDA events)."""
    fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(blocks):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3 / reps)
    return float(np.median(times))


def _rel_err(cp: Any, got: Any, ref64: Any) -> float:
    scale = float(cp.abs(ref64).max()) or 1.0
    return float(cp.abs(got.astype(cp.float64) - ref64).max()) / scale


def run_child(quick: bool, reps: int, tf32: bool) -> list[dict[str, Any]]:
    """All cases in this process (its TF32 setting came from the environment)."""
    import cupy as cp

    nnfast = _import_nnfast()
    import importlib

    F = importlib.import_module("nnfast.nn.functional")
    raw = getattr(getattr(nnfast, "_C_cuda", None), "gemm", None)
    tol = 5e-3 if tf32 else 1e-4
    rng = cp.random.default_rng(0)
    results = []
    for name, m, n, k, layout in cases(quick):
        a, b = _operands(cp, m, n, k, layout, rng)
        ref = cp.matmul(a.astype(cp.float64), b.astype(cp.float64))
        ta, tb = nnfast.tensor(a, device="cuda"), nnfast.tensor(b, device="cuda")
        row: dict[str, Any] = {"case": name, "M": m, "N": n, "K": k, "layout": layout, "tf32": tf32}
        flop = 2.0 * m * n * k

        def api() -> Any:
            return ta @ tb

        out = api()
        err = _rel_err(cp, out._data, ref)
        row["err_api"] = err
        row["ok"] = bool(err <= tol)
        if not row["ok"]:
            print(f"  WRONG: {name}: nnfast (a @ b) relative error {err:.3g} > {tol:g}", file=sys.stderr)
        row["gflops_api"] = flop / _time(cp, api, reps) / 1e9

        if layout == "NT":  # the nn.Linear forward: x @ W^T with W stored (out, in)
            tw = nnfast.tensor(cp.ascontiguousarray(b.T), device="cuda")

            def lin() -> Any:
                return F.linear(ta, tw)

            err = _rel_err(cp, lin()._data, ref)
            row["err_linear"] = err
            row["ok"] = row["ok"] and err <= tol
            row["gflops_linear"] = flop / _time(cp, lin, reps) / 1e9

        if raw is not None:
            c = cp.empty((m, n), dtype=cp.float32)

            def rawfn() -> Any:
                return raw(c, a, b)

            rawfn()
            err = _rel_err(cp, c, ref)
            row["err_raw"] = err
            row["ok"] = row["ok"] and err <= tol
            row["gflops_raw"] = flop / _time(cp, rawfn, reps) / 1e9

        def cublas() -> Any:
            return cp.matmul(a, b)

        row["gflops_cublas"] = flop / _time(cp, cublas, reps) / 1e9
        best = max(row.get("gflops_raw", 0.0), row["gflops_api"])
        row["ratio"] = best / row["gflops_cublas"]
        results.append(row)
        print(f"  {name:40s} tf32={'on ' if tf32 else 'off'} nnfast {best:9.1f} GFLOP/s  "
              f"cuBLAS {row['gflops_cublas']:9.1f}  ratio {row['ratio']:.2f}  "
              f"{'ok' if row['ok'] else 'WRONG'}", flush=True)
    return results


def _spawn(quick: bool, reps: int, tf32: bool) -> Optional[list[dict[str, Any]]]:
    env = dict(os.environ)
    env["NNFAST_CUDA_TF32"] = "1" if tf32 else "0"
    env["CUPY_TF32"] = "1" if tf32 else "0"
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--reps", str(reps)]
    if quick:
        cmd.append("--quick")
    if tf32:
        cmd.append("--child-tf32")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULTS "):
            return list(json.loads(line[len("RESULTS "):]))
        print(line)
    print(f"child (tf32={'on' if tf32 else 'off'}) failed with exit code {proc.returncode}", file=sys.stderr)
    return None


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    print(f"{'case':42s} {'tf32':4s} {'api':>9s} {'linear':>9s} {'raw':>9s} {'cuBLAS':>9s} {'ratio':>6s}  check")
    for r in rows:
        def f(key: str) -> str:
            return f"{r[key]:9.1f}" if key in r else f"{'-':>9s}"
        print(f"{r['case']:42s} {'on' if r['tf32'] else 'off':4s} {f('gflops_api')} {f('gflops_linear')} "
              f"{f('gflops_raw')} {f('gflops_cublas')} {r['ratio']:6.2f}  {'ok' if r['ok'] else 'WRONG'}")
    print("GFLOP/s (float32; ratio = best nnfast path / cuBLAS via CuPy)")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes")
    ap.add_argument("--reps", type=int, default=10, help="calls per timed block")
    ap.add_argument("--tf32", choices=["off", "on", "both"], default="both")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-tf32", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        child_rows = run_child(args.quick, args.reps, args.child_tf32)
        print("RESULTS " + json.dumps(child_rows), flush=True)
        return 0 if all(r["ok"] for r in child_rows) else 1

    try:
        import cupy  # noqa: F401
    except ImportError:
        print("gpu_gemm: CuPy is not importable; this benchmark needs a CUDA GPU machine", file=sys.stderr)
        return 2
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    ok = True
    for tf32 in ([False, True] if args.tf32 == "both" else [args.tf32 == "on"]):
        print(f"== TF32 {'on' if tf32 else 'off'}", flush=True)
        got = _spawn(args.quick, args.reps, tf32)
        if got is None:
            ok = False
            continue
        rows += got
        ok = ok and all(r["ok"] for r in got)
    print_table(rows)
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0 if ok and rows else 1


if __name__ == "__main__":
    sys.exit(main())
