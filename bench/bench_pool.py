"""Pooling / resampling / BatchNorm2d benchmark: nnfast vs PyTorch CPU, same run, same threads.

Each case checks nnfast's float32 result against PyTorch first, then times forward and
forward+backward through each library's autograd (interleaved repeats, best-of and median),
and reports the minimum bytes moved, the effective GB/s and its share of the machine's copy
bandwidth (these ops are memory-bound), and the PyTorch / nnfast time ratio.

    python bench/bench_pool.py [--quick] [--threads 2] [--repeats 15]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any, Callable

import numpy as np

try:
    import nnfast
except ImportError:  # run from a checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import nnfast

import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.bench.memory import copy_bandwidth

try:
    import torch
except ImportError:  # pragma: no cover - the comparison needs it
    torch = None


def _times(fn: Callable[[], Any], reps: int) -> list[float]:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def _cases(quick: bool) -> list[tuple[str, tuple[int, ...], Any, Any, Callable[[Any], int], Callable[[Any], int]]]:
    """(name, input shape, nnfast fn, torch fn, forward bytes(y), backward bytes(y)) with float32 data."""
    N = 8 if quick else 32
    img = (N, 64, 56, 56)
    f4 = 4

    cases = [
        ("max_pool2d 2x2", img, lambda t: F.max_pool2d(t, 2), lambda t: torch.nn.functional.max_pool2d(t, 2),
         lambda x, y: x * f4 + y * (f4 + 8), lambda x, y: y * (f4 + 8) + x * f4),
        ("max_pool2d 3x3/s2 p1", img, lambda t: F.max_pool2d(t, 3, 2, 1),
         lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1),
         lambda x, y: x * f4 + y * (f4 + 8), lambda x, y: y * (f4 + 8) + x * f4),
        ("avg_pool2d 2x2", img, lambda t: F.avg_pool2d(t, 2), lambda t: torch.nn.functional.avg_pool2d(t, 2),
         lambda x, y: (x + y) * f4, lambda x, y: (x + y) * f4),
        ("avg_pool2d 3x3/s2 p1", img, lambda t: F.avg_pool2d(t, 3, 2, 1),
         lambda t: torch.nn.functional.avg_pool2d(t, 3, 2, 1), lambda x, y: (x + y) * f4, lambda x, y: (x + y) * f4),
        ("adaptive_avg_pool2d 1x1", img, lambda t: F.adaptive_avg_pool2d(t, 1),
         lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 1), lambda x, y: (x + y) * f4,
         lambda x, y: (x + y) * f4),
        ("bilinear x2", (N, 64, 28, 28), lambda t: F.interpolate(t, scale_factor=2, mode="bilinear"),
         lambda t: torch.nn.functional.interpolate(t, scale_factor=2, mode="bilinear"), lambda x, y: (x + y) * f4,
         lambda x, y: (x + y) * f4),
        ("nearest x2", (N, 64, 28, 28), lambda t: F.interpolate(t, scale_factor=2),
         lambda t: torch.nn.functional.interpolate(t, scale_factor=2), lambda x, y: (x + y) * f4,
         lambda x, y: (x + y) * f4),
    ]
    bn_n, bn_t = nn.BatchNorm2d(64), (torch.nn.BatchNorm2d(64) if torch else None)
    cases.append(("BatchNorm2d N=64 C=64 28x28", (64, 64, 28, 28), bn_n, bn_t,
                  lambda x, y: 2 * x * f4, lambda x, y: 3 * x * f4))  # fwd: read x, write y; bwd: dy, x -> dx
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    if torch is None:
        sys.exit("bench_pool.py compares with PyTorch: install torch")
    nnfast.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    reps = 5 if a.quick else a.repeats
    bw = copy_bandwidth(1 << 24, a.threads)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"# bench_pool: {cpu}, {a.threads} threads, float32, copy bandwidth {bw:.1f} GB/s "
          f"(read + write, {a.threads} threads); nnfast {nnfast.__version__}, torch {torch.__version__}; "
          f"best of {reps} (median in brackets)")
    print("| case | pass | MB moved | nnfast ms | torch ms | torch/nnfast | nnfast GB/s | % of copy bw |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, shape, fn_n, fn_t, fwd_bytes, bwd_bytes in _cases(a.quick):
        x = rng.standard_normal(shape).astype(np.float32)
        xn, xt = nnfast.from_numpy(x), torch.from_numpy(x.copy())
        with nnfast.no_grad():
            yn = fn_n(xn)
        with torch.no_grad():
            yt = fn_t(xt)
        np.testing.assert_allclose(yn.numpy(), yt.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
        g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        gn, gt = nnfast.from_numpy(g), torch.from_numpy(g.copy())

        def n_fwd() -> None:
            with nnfast.no_grad():
                fn_n(xn)

        def t_fwd() -> None:
            with torch.no_grad():
                fn_t(xt)

        xn_g = nnfast.from_numpy(x).requires_grad_(True)
        xt_g = torch.from_numpy(x.copy()).requires_grad_(True)

        def n_fb() -> None:
            xn_g.grad = None
            fn_n(xn_g).backward(gn)

        def t_fb() -> None:
            xt_g.grad = None
            fn_t(xt_g).backward(gt)

        n_fb(), t_fb()
        np.testing.assert_allclose(xn_g.grad.numpy(), xt_g.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)
        xs, ys = x.size, int(np.prod(yt.shape))
        for label, fn, tf, nbytes in (("fwd", n_fwd, t_fwd, fwd_bytes(xs, ys)),
                                      ("fwd+bwd", n_fb, t_fb, fwd_bytes(xs, ys) + bwd_bytes(xs, ys))):
            fn(), tf()
            tn, tt = [], []
            for _ in range(reps):  # interleaved: both see the same machine load
                tn += _times(fn, 1)
                tt += _times(tf, 1)
            bn, bt_ = min(tn), min(tt)
            gbs = nbytes / bn / 1e9
            print(f"| {name} | {label} | {nbytes / 1e6:.1f} | {bn * 1e3:.2f} ({np.median(tn) * 1e3:.2f}) | "
                  f"{bt_ * 1e3:.2f} ({np.median(tt) * 1e3:.2f}) | {bt_ / bn:.2f} | {gbs:.1f} | {100 * gbs / bw:.0f}% |")


if __name__ == "__main__":
    main()
