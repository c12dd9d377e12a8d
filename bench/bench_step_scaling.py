"""How the MLP Adam steps scale from 1 to 2 threads, in wall time (run it on an idle machine):

  --gemms   each GEMM of the 784-1024-1024-10 batch-256 step (and the 784-128-10 batch-64 step's two
            big ones) with its real layouts and epilogue, best of 15 calls at 1 and at 2 threads,
            % of the measured FMA peak and the speedup;
  --phases  the bench's own step (zero_grad, forward + loss, backward, Adam, loss.item()) timed phase
            by phase over 35 steps after 5 warm-up steps, best / median ms, at --threads.

If the GEMMs scale ~2x and the whole step does not, the loss is outside the kernels (serial
Python, small ops, thread wake-ups). Usage:

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_step_scaling.py --gemms
    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_step_scaling.py --phases --threads 2 [--small]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import nnfast
import nnfast.nn as nn
from nnfast._native import _C


def best_us(fn, reps: int = 15) -> float:
    for _ in range(3):
        fn()
    b = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t0)
    return b * 1e6


def gemm_cases() -> list:
    rng = np.random.default_rng(0)

    def r(*s):
        return rng.standard_normal(s).astype(np.float32)

    cases = []

    def fwd(name, B, I, O, act):  # y = act(x W^T + b)
        x, w, b, c = r(B, I), r(O, I), r(O), np.empty((B, O), np.float32)
        cases.append((name, 2 * B * I * O, lambda: _C.gemm(c, x, w.T, 1.0, 0.0, b, 1 if act else 0)))

    def dx(name, B, I, O):  # dx = (dz W) * relu'(saved)
        dz, w, s, c = r(B, O), r(O, I), np.abs(r(B, I)), np.empty((B, I), np.float32)
        cases.append((name, 2 * B * I * O, lambda: _C.gemm(c, dz, w, 1.0, 0.0, None, 1, 0.0, 0.0, None, s)))

    def dw(name, B, I, O):  # dW += dz^T x, db += row sums of dz^T
        dz, x, c, db = r(B, O), r(B, I), np.zeros((O, I), np.float32), np.zeros(O, np.float32)
        cases.append((name, 2 * B * I * O, lambda: _C.gemm(c, dz.T, x, 1.0, 1.0, row_sums=db)))

    fwd("fwd1 256x1024x784", 256, 784, 1024, True)
    fwd("fwd2 256x1024x1024", 256, 1024, 1024, True)
    dx("dx2 256x1024x1024", 256, 1024, 1024)
    dw("dW2 1024x1024x256", 256, 1024, 1024)
    dw("dW1 1024x784x256", 256, 784, 1024)
    fwd("sq 700x800x400", 700, 400, 800, False)
    fwd("s fwd1 64x128x784", 64, 784, 128, True)
    dw("s dW1 128x784x64", 64, 784, 128)
    return cases


def run_gemms() -> None:
    peak = float(_C.fma_peak_gflops())
    print(f"peak/core {peak:.1f} GFLOP/s; wall time, best of 15 calls")
    for name, flops, f in gemm_cases():
        nnfast.set_num_threads(1)
        t1 = best_us(f)
        nnfast.set_num_threads(2)
        t2 = best_us(f)
        print(f"{name:24} 1t {t1:8.1f} us {flops / t1 / 1e3 / peak * 100:5.1f}%  "
              f"2t {t2:8.1f} us {flops / t2 / 1e3 / peak / 2 * 100:5.1f}%  speedup {t1 / t2:4.2f}")


def run_phases(threads: int, small: bool) -> None:
    nnfast.set_num_threads(threads)
    sizes, batch = ((784, 128, 10), 64) if small else ((784, 1024, 1024, 10), 256)
    rng = np.random.default_rng(0)
    x = nnfast.from_numpy(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = nnfast.from_numpy(rng.integers(0, sizes[-1], batch).astype(np.int64))
    layers = [nn.Linear(i, o, activation="relu" if k < len(sizes) - 2 else None)
              for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
    model = nn.Sequential(*layers)
    opt = nnfast.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    region = nnfast.autocast("cpu", dtype=nnfast.bfloat16, enabled=False)  # as the step bench runs it
    times: dict[str, list[float]] = {k: [] for k in ("zero", "fwd", "bwd", "opt", "item", "total")}
    for i in range(40):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        t1 = time.perf_counter()
        with region:
            loss = loss_fn(model(x), y)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        float(loss.item())
        t5 = time.perf_counter()
        if i >= 5:
            for k, a, b in (("zero", t0, t1), ("fwd", t1, t2), ("bwd", t2, t3), ("opt", t3, t4),
                            ("item", t4, t5), ("total", t0, t5)):
                times[k].append((b - a) * 1e3)
    print(f"threads {threads} sizes {sizes} batch {batch}, best/median ms: "
          + "  ".join(f"{k} {min(v):.3f}/{np.median(v):.3f}" for k, v in times.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemms", action="store_true")
    ap.add_argument("--phases", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="--phases: the 784-128-10 batch-64 step")
    a = ap.parse_args()
    if not (a.gemms or a.phases):
        ap.error("expected --gemms and/or --phases")
    if a.gemms:
        run_gemms()
    if a.phases:
        run_phases(a.threads, a.small)


if __name__ == "__main__":
    main()
