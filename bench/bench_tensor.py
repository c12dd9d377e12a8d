"""Tensor arithmetic kernels (binary ops, reductions, casts, SGD step) against PyTorch, same run.

Usage: NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_tensor.py [--mb 16 64] [--reps 15]

Best-of --reps, nnfast and torch calls alternated, preallocated outputs on both sides.
Prints nnfast ms, torch ms, vs_torch (> 1: nnfast faster) and GB/s of the bytes each op must move.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import nnfast
from nnfast import _C as C
from nnfast._dispatch import BINARY_CODES, REDUCE_CODES


def best_pair(f, g, reps):
    f(); g()
    bf = bg = float("inf")
    for _ in range(reps):
        t = time.perf_counter(); f(); bf = min(bf, time.perf_counter() - t)
        t = time.perf_counter(); g(); bg = min(bg, time.perf_counter() - t)
    return bf, bg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="both libraries (default: nnfast's count)")
    args = ap.parse_args()
    if args.threads:
        nnfast.set_num_threads(args.threads)
    torch.set_num_threads(nnfast.get_num_threads())
    add, mul = BINARY_CODES["add"], BINARY_CODES["mul"]
    rsum, rmax = REDUCE_CODES["sum"], REDUCE_CODES["max"]
    print(f"{'kernel':28s} {'MB':>4s} {'nnfast_ms':>9s} {'torch_ms':>9s} {'vs_torch':>8s} {'GB/s':>6s}")
    for mb in args.mb:
        n = mb << 18
        rng = np.random.default_rng(0)
        x = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        R, D = n // 1024, 1024
        xr, outr = x.reshape(R, D), out.reshape(R, D)
        row = g[:D].copy()
        col_out, row_out, idx = np.empty(D, np.float32), np.empty(R, np.float32), np.empty(R, np.int64)
        out64 = np.empty(n, np.float64)
        T = torch.from_numpy
        tx, tg, txr, trow, tout, toutr, tcol, trow_out, tout64, tidx = map(
            T, (x, g, xr, row, out, outr, col_out, row_out, out64, idx))
        p = nnfast.nn.Parameter(x.copy()); p.grad = nnfast.from_numpy(g.copy() * 1e-2)
        opt = nnfast.optim.SGD([p], lr=1e-3, momentum=0.9)
        tp = torch.nn.Parameter(T(x.copy())); tp.grad = T(g.copy() * 1e-2)
        topt = torch.optim.SGD([tp], lr=1e-3, momentum=0.9, foreach=False)
        cases = [
            ("add (same shape)", 12 * n, lambda: C.binary_op(out, x, g, add), lambda: torch.add(tx, tg, out=tout)),
            ("mul (R x 1024) * row", 8 * n, lambda: C.binary_op(outr, xr, row, mul),
             lambda: torch.mul(txr, trow, out=toutr)),
            ("sum over rows -> 1024", 4 * n, lambda: C.reduce_dim(col_out, None, xr, 0, rsum),
             lambda: torch.sum(txr, 0, out=tcol)),
            ("sum over last dim", 4 * n, lambda: C.reduce_dim(row_out, None, xr, 1, rsum),
             lambda: torch.sum(txr, 1, out=trow_out)),
            ("max+argmax over last dim", 4 * n, lambda: C.reduce_dim(row_out, idx, xr, 1, rmax),
             lambda: torch.max(txr, 1, out=(trow_out, tidx))),
            ("cast f32 -> f64", 12 * n, lambda: C.cast(out64, x), lambda: tout64.copy_(tx)),
            ("SGD (momentum) step", 20 * n, opt.step, topt.step),
        ]
        for name, nbytes, f, tf in cases:
            a, b = best_pair(f, tf, args.reps)
            print(f"{name:28s} {mb:4d} {a * 1e3:9.3f} {b * 1e3:9.3f} {b / a:8.2f} {nbytes / a / 1e9:6.1f}", flush=True)


if __name__ == "__main__":
    main()
