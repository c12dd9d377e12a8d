"""Conv2d training step benchmark: forward + backward (input, weight and bias gradients), nnfast vs
PyTorch CPU (oneDNN) in the same run, same thread count, float32.

    python bench/bench_conv.py [--threads 2] [--repeats 7] [--quick] [--split] [--cpu-time]
    python bench/bench_conv.py --ab NNFAST_CONV_PHASE_CHUNK [--rounds 4] [--threads 1]

--split also times each product alone (forward, input gradient, weight gradient, bias gradient, and the
weight + bias gradients of one backward) against PyTorch's (aten.convolution_backward with that output mask),
with each side's % of peak. --cpu-time measures process CPU time instead of
wall time (robust on a loaded machine; use it with --threads 1). Old-path A/B in one shell:
NNFAST_CONV_IMPLICIT=0 (im2col instead of implicit GEMM), NNFAST_GEMM_ALT_TILE=0 (12 x 32 tile only),
NNFAST_CONV_STORE_BIAS=0 (forward bias as a separate pass), NNFAST_CONV_PACK_FAST=0 (generic patch packers),
NNFAST_CONV_PACK_PF=0 (no software prefetch in the packers), NNFAST_CONV_STRIDED_DW=0 (strided dW via im2col),
NNFAST_CONV_PACK_STRIDED=0 (strided forward pack by masked gathers), NNFAST_CONV_STRIDED_DX=0 (strided dx via
im2col + col2im instead of per-phase stride-1 forwards), NNFAST_CONV_PACK_STRIDED_T=0 (strided dW pack by masked
gathers), NNFAST_CONV_PACK_T_COLS=0 ("same" dW pack in block order), NNFAST_CONV_MULTI_IMAGE=0 (one image per
forward / dx GEMM), NNFAST_CONV_FOLD_DB=0 (bias gradient as its own pass over dy, not in dW's),
NNFAST_CONV_DW_DIRECT=0 (stride-1 dW of >= 512 positions by the packed GEMM, not the direct kernel; on Intel
the GEMM is the default, NNFAST_CONV_DW_INTEL_GEMM=0 takes the direct kernel there too), NNFAST_CONV_DW_MASK_CACHE=0 (the
direct dW kernel rebuilds its tap tables per image instead of keeping them per thread), NNFAST_CONV_PHASE_CHUNK=0
(strided dx phases over the whole batch, each with its own scatter pass over dx).

--ab NAME: the switches are read once per process, so this runs the --split timings (process CPU time,
--threads, default 1) in child processes, NAME=1 and NAME=0 alternating for --rounds rounds, and prints per
layer and part the best nnfast time of each (and torch's, best over both), on / off and on / torch.

Checks nnfast against PyTorch first, then times the two libraries in alternating blocks (so machine
noise hits both alike) and prints the best and median time per step, GFLOP/s, % of the machine's
fp32 FMA peak (nnfast's single-core probe x threads) and the ratio nnfast / torch (< 1: nnfast faster).
FLOPs: forward 2 N OC OH OW (C / G) kh kw; the two backward products the same each (bias: ignored).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import time
from typing import Callable

import numpy as np

import nnfast
import nnfast.nn.functional as F

LAYERS = [
    # name, N, C, OC, H, W, k, stride, padding
    ("N64 32->64 28x28 3x3 s1 p1", 64, 32, 64, 28, 28, 3, 1, 1),
    ("N64 64->128 14x14 3x3 s1 p1", 64, 64, 128, 14, 14, 3, 1, 1),
    ("N64 64->128 14x14 1x1 s1", 64, 64, 128, 14, 14, 1, 1, 0),
    ("N64 64->128 28x28 3x3 s2 p1", 64, 64, 128, 28, 28, 3, 2, 1),
]


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _split(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray, s: int, p: int, repeats: int,
           clock: Callable[[], float], flops: float, peak: float, machine: bool = False) -> None:
    """Each product alone through the raw kernels: nnfast ms / torch ms (best of `repeats`) and, but
    for db, nnfast's / torch's % of the fp32 FMA peak (`flops`: one product's FLOPs)."""
    import torch
    from nnfast._native import _C

    y = np.empty(g.shape, np.float32)
    dx, dw, db = np.empty_like(x), np.zeros_like(w), np.zeros_like(b)
    geo = ((s, s), (p, p), (1, 1), 1)
    xt, wt, bt, gt = (torch.tensor(a) for a in (x, w, b, g))
    tgeo = ([s, s], [p, p], [1, 1], False, [0, 0], 1)
    parts = {
        "fwd": (lambda: _C.conv2d_forward(y, x, w, b, *geo),
                lambda: torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)),
        "dx": (lambda: _C.conv2d_backward(dx, None, None, g, x, w, *geo),
               lambda: torch.ops.aten.convolution_backward(gt, xt, wt, [b.size], *tgeo, [True, False, False])),
        "dW": (lambda: _C.conv2d_backward(None, dw, None, g, x, w, *geo),
               lambda: torch.ops.aten.convolution_backward(gt, xt, wt, [b.size], *tgeo, [False, True, False])),
        "db": (lambda: _C.conv2d_backward(None, None, db, g, x, w, *geo),
               lambda: torch.ops.aten.convolution_backward(gt, xt, wt, [b.size], *tgeo, [False, False, True])),
        # the weight and bias gradients of one backward (NNFAST_CONV_FOLD_DB: db in dW's pass)
        "dW+db": (lambda: _C.conv2d_backward(None, dw, db, g, x, w, *geo),
                  lambda: torch.ops.aten.convolution_backward(gt, xt, wt, [b.size], *tgeo, [False, True, True])),
    }
    out = []
    for part, (fn_n, fn_t) in parts.items():
        best = {"n": float("inf"), "t": float("inf")}
        for _ in range(repeats):
            for key, fn in (("n", fn_n), ("t", fn_t)):
                t0 = clock()
                fn()
                best[key] = min(best[key], clock() - t0)
        pk = "" if part == "db" else f", {100 * flops / best['n'] / 1e9 / peak:.0f}/{100 * flops / best['t'] / 1e9 / peak:.0f} % peak"
        out.append(f"{part} {best['n'] * 1e3:.1f}/{best['t'] * 1e3:.1f} ms ({best['n'] / best['t']:.2f}{pk})")
        if machine:
            print(f"#AB|{part}|{best['n']!r}|{best['t']!r}")
    print("    split nnfast/torch: " + ", ".join(out))


def ab(args: argparse.Namespace) -> int:
    """--ab NAME: per layer and part, the best of --rounds child runs with NAME=1 and with NAME=0."""
    import os
    import sys

    threads = args.threads if "--threads" in sys.argv else 1
    cmd = [sys.executable, os.path.abspath(__file__), "--split", "--cpu-time", "--machine", "--threads",
           str(threads), "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    best: dict[tuple[str, str, str], float] = {}
    for r in range(args.rounds):
        for flag in (("1", "0") if r % 2 == 0 else ("0", "1")):
            out = subprocess.run(cmd, env=dict(os.environ, **{args.ab: flag}), check=True, capture_output=True,
                                 text=True).stdout
            layer = ""
            for line in out.splitlines():
                f = line.split("|")
                if f[0] == "#AB-LAYER":
                    layer = f[1]
                elif f[0] == "#AB":
                    for key, v in (((layer, f[1], flag), float(f[2])), ((layer, f[1], "torch"), float(f[3]))):
                        best[key] = min(best.get(key, float("inf")), v)
    print(f"{args.ab}: {threads} thread(s), process CPU time, best of {args.rounds} runs x {args.repeats} repeats")
    print(f"{'layer':<30} {'part':<6} {'on ms':>7} {'off ms':>7} {'torch ms':>8} {'on/off':>6} {'on/torch':>8}")
    for layer, part in dict.fromkeys((k[0], k[1]) for k in best):
        on, off, t = best[layer, part, "1"], best[layer, part, "0"], best[layer, part, "torch"]
        print(f"{layer:<30} {part:<6} {on * 1e3:7.2f} {off * 1e3:7.2f} {t * 1e3:8.2f} {on / off:6.3f} {on / t:8.3f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="first two layers, 3 repeats")
    ap.add_argument("--split", action="store_true", help="also time forward / dx / dW / db alone")
    ap.add_argument("--cpu-time", action="store_true", help="process CPU time instead of wall time")
    ap.add_argument("--ab", metavar="NAME", help="A/B one NNFAST_ switch per part in alternating child processes")
    ap.add_argument("--rounds", type=int, default=4, help="--ab: child runs per setting")
    ap.add_argument("--machine", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ab:
        return ab(args)
    import torch

    nnfast.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    layers = LAYERS[:2] if args.quick else LAYERS
    repeats = 3 if args.quick else args.repeats
    peak = float(nnfast._C.fma_peak_gflops()) * args.threads
    print(f"CPU: {cpu_name()} | threads {args.threads} | simd {nnfast.info()['simd']} | "
          f"fp32 FMA peak {peak:.0f} GFLOP/s ({args.threads} cores) | torch {torch.__version__}")
    print(f"{'layer':<30} {'GFLOP':>6} {'nnfast ms':>10} {'torch ms':>9} {'nnfast GF/s':>11} {'% peak':>7} "
          f"{'torch GF/s':>10} {'ratio':>6}")
    clock = time.process_time if args.cpu_time else time.perf_counter
    rng = np.random.default_rng(0)
    for name, N, C, OC, H, W, k, s, p in layers:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((OC, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
        b = rng.standard_normal(OC).astype(np.float32)
        OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        g = rng.standard_normal((N, OC, OH, OW)).astype(np.float32)
        flops = 3 * 2.0 * N * OC * OH * OW * C * k * k
        xn, wn, bn = (nnfast.tensor(a, requires_grad=True) for a in (x, w, b))
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        gt = torch.tensor(g)

        def step_nnfast() -> None:
            xn.grad = wn.grad = bn.grad = None
            F.conv2d(xn, wn, bn, stride=s, padding=p).backward(g)

        def step_torch() -> None:
            xt.grad = wt.grad = bt.grad = None
            torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p).backward(gt)

        step_nnfast()
        step_torch()  # correctness before timing
        for a, t in ((xn, xt), (wn, wt), (bn, bt)):
            ref = t.grad.numpy()
            assert a.grad is not None
            np.testing.assert_allclose(a.grad.numpy(), ref, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(ref).max())))
        times: dict[str, list[float]] = {"nnfast": [], "torch": []}
        for _ in range(repeats):
            for lib, fn in (("nnfast", step_nnfast), ("torch", step_torch)):
                t0 = clock()
                fn()
                times[lib].append(clock() - t0)
                time.sleep(0.05)  # let idle OpenMP threads stop spinning before the other library runs
        bn_, bt_ = min(times["nnfast"]), min(times["torch"])
        print(f"{name:<30} {flops / 1e9:6.2f} {bn_ * 1e3:10.1f} {bt_ * 1e3:9.1f} {flops / bn_ / 1e9:11.1f} "
              f"{100 * flops / bn_ / 1e9 / peak:6.1f}% {flops / bt_ / 1e9:10.1f} {bn_ / bt_:6.2f}"
              f"   (median {statistics.median(times['nnfast']) * 1e3:.1f} / "
              f"{statistics.median(times['torch']) * 1e3:.1f} ms)")
        if args.split:
            if args.machine:
                print(f"#AB-LAYER|{name}")
            _split(x, w, b, g, s, p, repeats, clock, flops / 3, peak, args.machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
