"""Tensor arithmetic kernels (binary ops, reductions, casts, SGD step) against PyTorch, same run.

Usage: NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_tensor.py [--mb 16 64] [--reps 15]
       [--threads N] [--cpu-time] [--only add cast ...]

Best-of --reps, nnfast and torch calls alternated, preallocated outputs on both sides.
Prints nnfast ms, torch ms, vs_torch (> 1: nnfast faster) and GB/s of the bytes each op must move.
--cpu-time: both libraries on one thread, process CPU time (survives a loaded machine better than
wall time). --ab NNFAST_X [--rounds K]: child runs with NNFAST_X=0 (old) and =1 (new), alternated K
times, each case's best nnfast ms of each side and old / new (> 1: the new path faster).
The A/B switches: NNFAST_TENSOR_STREAM=0 runs the tensor ops without streaming stores, NNFAST_TENSOR_FAST=0
with the old streaming rule, plain stores and element-wise row-sum tails, NNFAST_TENSOR_COLSUM=0 with the
old column sums, NNFAST_TENSOR_ARGMAX=0 with the generic row max / min; NNFAST_TENSOR_L3_MB=<MB> replaces
the CPU's L3 size in the streaming rule.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

import nnfast
from nnfast import _C as C
from nnfast._dispatch import BINARY_CODES, REDUCE_CODES
from nnfast.tensor import _BFLOAT16


def best_pair(f, g, reps, clock=time.perf_counter):
    f(); g()
    bf = bg = float("inf")
    for _ in range(reps):
        t = clock(); f(); bf = min(bf, clock() - t)
        t = clock(); g(); bg = min(bg, clock() - t)
    return bf, bg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="both libraries (default: nnfast's count)")
    ap.add_argument("--cpu-time", action="store_true", help="1 thread each, process CPU time")
    ap.add_argument("--only", nargs="+", default=None, help="cases whose name starts with one of these")
    ap.add_argument("--ab", default=None, help="an A/B switch: children with it =0 and =1, alternated")
    ap.add_argument("--rounds", type=int, default=4, help="--ab: alternations")
    args = ap.parse_args()
    if args.ab:
        ab(args)
        return
    if args.cpu_time:
        args.threads = 1
    if args.threads:
        nnfast.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
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
        x64 = x[: n // 2].astype(np.float64)  # mb MB of float64
        out32h = np.empty(n // 2, np.float32)
        bf = np.empty(n, _BFLOAT16)
        T = torch.from_numpy
        tx, tg, txr, trow, tout, toutr, tcol, trow_out, tout64, tidx, tx64, tout32h = map(
            T, (x, g, xr, row, out, outr, col_out, row_out, out64, idx, x64, out32h))
        tbf = torch.empty(n, dtype=torch.bfloat16)
        C.convert(bf, x)
        p = nnfast.nn.Parameter(x.copy()); p.grad = nnfast.from_numpy(g.copy() * 1e-2)
        opt = nnfast.optim.SGD([p], lr=1e-3, momentum=0.9)
        tp = torch.nn.Parameter(T(x.copy())); tp.grad = T(g.copy() * 1e-2)
        topt = torch.optim.SGD([tp], lr=1e-3, momentum=0.9, foreach=False)
        cases = [
            ("add (same shape)", 12 * n, lambda: C.binary_op(out, x, g, add), lambda: torch.add(tx, tg, out=tout)),
            ("sub (same shape)", 12 * n, lambda: C.binary_op(out, x, g, BINARY_CODES["sub"]),
             lambda: torch.sub(tx, tg, out=tout)),
            ("mul (same shape)", 12 * n, lambda: C.binary_op(out, x, g, mul), lambda: torch.mul(tx, tg, out=tout)),
            ("div (same shape)", 12 * n, lambda: C.binary_op(out, x, g, BINARY_CODES["div"]),
             lambda: torch.div(tx, tg, out=tout)),
            ("mul (R x 1024) * row", 8 * n, lambda: C.binary_op(outr, xr, row, mul),
             lambda: torch.mul(txr, trow, out=toutr)),
            ("sum over rows -> 1024", 4 * n, lambda: C.reduce_dim(col_out, None, xr, 0, rsum),
             lambda: torch.sum(txr, 0, out=tcol)),
            ("sum over last dim", 4 * n, lambda: C.reduce_dim(row_out, None, xr, 1, rsum),
             lambda: torch.sum(txr, 1, out=trow_out)),
            ("max+argmax over last dim", 4 * n, lambda: C.reduce_dim(row_out, idx, xr, 1, rmax),
             lambda: torch.max(txr, 1, out=(trow_out, tidx))),
            ("cast f32 -> f64", 12 * n, lambda: C.cast(out64, x), lambda: tout64.copy_(tx)),
            ("cast f64 -> f32", 6 * n, lambda: C.cast(out32h, x64), lambda: tout32h.copy_(tx64)),
            ("cast f32 -> bf16", 6 * n, lambda: C.convert(bf, x), lambda: tbf.copy_(tx)),
            ("cast bf16 -> f32", 6 * n, lambda: C.convert(out, bf), lambda: tout.copy_(tbf)),
            ("SGD (momentum) step", 20 * n, opt.step, topt.step),
        ]
        for name, nbytes, f, tf in cases:
            if args.only and not any(name.startswith(o) for o in args.only):
                continue
            a, b = best_pair(f, tf, args.reps, clock)
            print(f"{name:28s} {mb:4d} {a * 1e3:9.3f} {b * 1e3:9.3f} {b / a:8.2f} {nbytes / a / 1e9:6.1f}", flush=True)


def ab(args: argparse.Namespace) -> None:
    """The same cases in child processes with args.ab=0 and =1 (switches are read once per process)."""
    argv = [a for a in sys.argv[1:]]
    i = argv.index("--ab")
    del argv[i:i + 2]
    if "--rounds" in argv:
        j = argv.index("--rounds")
        del argv[j:j + 2]
    best: dict[tuple[str, str], dict[str, float]] = {}
    for _ in range(args.rounds):
        for side in ("0", "1"):
            out = subprocess.run([sys.executable, __file__, *argv], env=dict(os.environ, **{args.ab: side}),
                                 check=True, capture_output=True, text=True).stdout
            for line in out.splitlines()[1:]:
                name, rest = line[:28].strip(), line[28:].split()
                d = best.setdefault((name, rest[0]), {})
                d[side] = min(d.get(side, float("inf")), float(rest[1]))
    print(f"{args.ab}: {'kernel':28s} {'MB':>4s} {'old_ms':>9s} {'new_ms':>9s} {'old/new':>7s}")
    for (name, mb), d in best.items():
        print(f"{' ' * (len(args.ab) + 2)}{name:28s} {mb:>4s} {d['0']:9.3f} {d['1']:9.3f} {d['0'] / d['1']:7.2f}")


if __name__ == "__main__":
    main()
