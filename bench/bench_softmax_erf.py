"""ReLU, tanh, GELU (tanh / erf) fwd/bwd and softmax / log_softmax fwd against PyTorch, same run.

Usage: python bench/bench_softmax_erf.py [--threads 2] [--reps 15] [--cpu-time]
--cpu-time: process CPU time instead of wall time (with --threads 1 the figure to compare on a
loaded machine; with more threads it sums the threads' time).
Prints ms (best of --reps), GB/s of the bytes the op must move (read + write), % of the copy
ceiling of the same bytes, and PyTorch's time / ours (> 1: nnfast faster), at 16 and 64 MB.
The ceiling is nnfast.bench.memory.copy_ceiling, the one definition `nnfast bench --only memory`
uses too (fastest of NumPy 1 / 2 threads and nnfast's streaming threaded copy), timed here with
this bench's best-of like the kernels. PyTorch writes into a preallocated output as ours do
(ATen's out= / grad_input= overloads, softmax included).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import nnfast
from nnfast import _C
from nnfast.bench.memory import copy_ceiling
from nnfast.nn.functional import _act_codes as codes


_clock = time.perf_counter


def _best(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = _clock()
        fn()
        best = min(best, _clock() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--cpu-time", action="store_true")
    args = ap.parse_args()
    global _clock
    if args.cpu_time:
        _clock = time.process_time
    nnfast.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    tf = torch.nn.functional
    print(f"threads={args.threads} simd={nnfast.info()['simd']} clock={'cpu' if args.cpu_time else 'wall'}")
    print(f"{'kernel':<24}{'MB':>4}{'ms':>8}{'GB/s':>7}{'%copy':>7}{'torch ms':>9}{'vs torch':>9}")
    best = lambda f: _best(f, args.reps)  # noqa: E731
    for mb in (16, 64):
        n = mb * 2**20 // 4
        rng = np.random.default_rng(0)
        x = (rng.standard_normal(n) * 3).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        z = x[: n // 1000 * 1000].reshape(-1, 1000)
        gz = g[: z.size].reshape(z.shape)
        tgz = torch.from_numpy(gz)
        zo = np.empty_like(z)
        tz, tzo = torch.from_numpy(z), torch.from_numpy(zo)
        copies = copy_ceiling(n, best)
        print("  ".join(f"{k} {v:.1f} GB/s" for k, v in copies.items()) + f" ({mb} MB)")
        ceiling = copies["ceiling"]
        ty = torch.from_numpy(y)  # PyTorch writes into a preallocated output too (out= / grad_input=)
        aten = torch.ops.aten
        rows = [
            ("relu fwd", 2, lambda: _C.act_forward(y, x, codes.RELU), lambda: torch.clamp_min(tx, 0, out=ty)),
            ("relu bwd", 3, lambda: _C.act_backward(y, g, x, codes.RELU, 0.0, 0.0),
             lambda: aten.threshold_backward.grad_input(tg, tx, 0, grad_input=ty)),
            ("tanh fwd", 2, lambda: _C.act_forward(y, x, codes.TANH), lambda: torch.tanh(tx, out=ty)),
            ("gelu (tanh) fwd", 2, lambda: _C.act_forward(y, x, codes.GELU_TANH),
             lambda: aten.gelu.out(tx, approximate="tanh", out=ty)),
            ("gelu (erf) fwd", 2, lambda: _C.act_forward(y, x, codes.GELU), lambda: aten.gelu.out(tx, out=ty)),
            ("gelu (erf) bwd", 3, lambda: _C.act_backward(y, g, x, codes.GELU, 0.0, 0.0),
             lambda: aten.gelu_backward.grad_input(tg, tx, grad_input=ty)),
            ("softmax fwd (1000)", 2, lambda: _C.softmax_forward(zo, z, 1), lambda: aten._softmax.out(tz, 1, False, out=tzo)),
            ("softmax bwd (1000)", 3, lambda: _C.softmax_backward(zo, gz, z, 1),
             lambda: aten._softmax_backward_data.out(tgz, tz, 1, torch.float32, grad_input=tzo)),
            ("log_softmax fwd (1000)", 2, lambda: _C.softmax_forward(zo, z, 1, True),
             lambda: aten._log_softmax.out(tz, 1, False, out=tzo)),
        ]
        for name, k, ours, theirs in rows:
            a = b = float("inf")
            for _ in range(2):  # alternate contenders on a loaded machine
                a = min(a, _best(ours, args.reps))
                b = min(b, _best(theirs, args.reps))
            gbs = k * x.nbytes / a / 1e9
            pct = 100 * gbs / ceiling
            print(f"{name:<24}{mb:>4}{a * 1e3:>8.2f}{gbs:>7.1f}{pct:>7.0f}{b * 1e3:>9.2f}{b / a:>9.2f}")


if __name__ == "__main__":
    main()
