"""Normalization kernels benchmark: nnfast vs NumPy formulas, same run.

Each case checks nnfast's float32 result against the NumPy formula first,
then times both interleaved and reports the median time, the effective
bandwidth over the minimum bytes moved (forward reads x and writes y; backward
reads dy and x and writes dx; parameters and statistics are negligible) and
the NumPy / nnfast speed ratio, on 1 and 2 threads.

    python bench/bench_norm.py [--quick] [--threads 1,2]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

try:
    import nnfast
except ImportError:  # run from a checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import nnfast

_C = nnfast._C
EPS = 1e-5


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


# ---------------------------------------------------------------- cases: (setup -> (nnfast fn, numpy fn, bytes))
def layer_norm_case(M: int, D: int, rms: bool, backward: bool):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, D)).astype(np.float32)
    w = rng.standard_normal(D).astype(np.float32)
    b = None if rms else rng.standard_normal(D).astype(np.float32)
    dy = rng.standard_normal((M, D)).astype(np.float32)
    y = np.empty_like(x)
    mean = None if rms else np.empty(M)
    rstd = np.empty(M)
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = None if rms else np.empty_like(w)
    _C.layer_norm_forward(y, mean, rstd, x, w, b, EPS, rms)

    def np_fwd():
        if rms:
            r = 1 / np.sqrt((x * x).mean(1, keepdims=True) + EPS)
            return x * r * w
        m = x.mean(1, keepdims=True)
        r = 1 / np.sqrt(x.var(1, keepdims=True) + EPS)
        return (x - m) * r * w + b

    def np_bwd():
        m = 0 if rms else x.mean(1, keepdims=True)
        r = 1 / np.sqrt((x * x).mean(1, keepdims=True) + EPS) if rms else 1 / np.sqrt(x.var(1, keepdims=True) + EPS)
        xh = (x - m) * r
        g = dy * w
        dxr = r * (g - (0 if rms else g.mean(1, keepdims=True)) - xh * (g * xh).mean(1, keepdims=True))
        return dxr, (dy * xh).sum(0), None if rms else dy.sum(0)

    if backward:
        def nn_fn():
            _C.layer_norm_backward(dx, dw, db, dy, x, mean, rstd, w, rms)
        nn_fn()
        want = np_bwd()
        np.testing.assert_allclose(dx, want[0], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(dw, want[1], rtol=1e-3, atol=1e-2)
        return nn_fn, np_bwd, 3 * x.nbytes

    def nn_fn():
        _C.layer_norm_forward(y, mean, rstd, x, w, b, EPS, rms)
    np.testing.assert_allclose(y, np_fwd(), rtol=1e-4, atol=1e-4)
    return nn_fn, np_fwd, 2 * x.nbytes


def batch_norm_case(N: int, C: int, L: int, backward: bool):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, L)).astype(np.float32)
    w = rng.standard_normal(C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    dy = rng.standard_normal((N, C, L)).astype(np.float32)
    y = np.empty_like(x)
    mean, rstd = np.empty(C), np.empty(C)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    _C.batch_norm_forward(y, mean, rstd, None, None, x, w, b, True, 0.1, EPS)
    wc, bc = w.reshape(1, C, 1), b.reshape(1, C, 1)

    def np_fwd():
        m = x.mean((0, 2), keepdims=True)
        r = 1 / np.sqrt(x.var((0, 2), keepdims=True) + EPS)
        return (x - m) * r * wc + bc

    def np_bwd():
        m = x.mean((0, 2), keepdims=True)
        r = 1 / np.sqrt(x.var((0, 2), keepdims=True) + EPS)
        xh = (x - m) * r
        sdy, sdx = dy.sum((0, 2), keepdims=True), (dy * xh).sum((0, 2), keepdims=True)
        n = N * L
        return wc * r * (dy - sdy / n - xh * sdx / n), sdx.ravel(), sdy.ravel()

    if backward:
        def nn_fn():
            _C.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, True)
        nn_fn()
        want = np_bwd()
        np.testing.assert_allclose(dx, want[0], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(db, want[2], rtol=1e-3, atol=1e-2)
        return nn_fn, np_bwd, 3 * x.nbytes

    def nn_fn():
        _C.batch_norm_forward(y, mean, rstd, None, None, x, w, b, True, 0.1, EPS)
    np.testing.assert_allclose(y, np_fwd(), rtol=1e-4, atol=1e-4)
    return nn_fn, np_fwd, 2 * x.nbytes


def group_norm_case(N: int, C: int, L: int, G: int, backward: bool):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, L)).astype(np.float32)
    w = rng.standard_normal(C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    dy = rng.standard_normal((N, C, L)).astype(np.float32)
    y = np.empty_like(x)
    mean, rstd = np.empty((N, G)), np.empty((N, G))
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    _C.group_norm_forward(y, mean, rstd, x, w, b, G, EPS)
    wc, bc = w.reshape(1, C, 1), b.reshape(1, C, 1)

    def np_fwd():
        xr = x.reshape(N, G, -1)
        m = xr.mean(2, keepdims=True)
        r = 1 / np.sqrt(xr.var(2, keepdims=True) + EPS)
        return ((xr - m) * r).reshape(N, C, L) * wc + bc

    def np_bwd():
        xr = x.reshape(N, G, -1)
        m = xr.mean(2, keepdims=True)
        r = 1 / np.sqrt(xr.var(2, keepdims=True) + EPS)
        xh = ((xr - m) * r).reshape(N, C, L)
        g = (dy * wc).reshape(N, G, -1)
        xhr = xh.reshape(N, G, -1)
        dxr = r * (g - g.mean(2, keepdims=True) - xhr * (g * xhr).mean(2, keepdims=True))
        return dxr.reshape(N, C, L), (dy * xh).sum((0, 2)), dy.sum((0, 2))

    if backward:
        def nn_fn():
            _C.group_norm_backward(dx, dw, db, dy, x, mean, rstd, w, G)
        nn_fn()
        want = np_bwd()
        np.testing.assert_allclose(dx, want[0], rtol=1e-3, atol=1e-3)
        return nn_fn, np_bwd, 3 * x.nbytes

    def nn_fn():
        _C.group_norm_forward(y, mean, rstd, x, w, b, G, EPS)
    np.testing.assert_allclose(y, np_fwd(), rtol=1e-4, atol=1e-4)
    return nn_fn, np_fwd, 2 * x.nbytes


def cases(quick: bool):
    out = []
    for bwd in (False, True):
        tag = "bwd" if bwd else "fwd"
        out += [
            (f"layer_norm {tag} 4096x1024", lambda b=bwd: layer_norm_case(4096, 1024, False, b)),
            (f"rms_norm   {tag} 4096x1024", lambda b=bwd: layer_norm_case(4096, 1024, True, b)),
            (f"batch_norm {tag} 4096x1024", lambda b=bwd: batch_norm_case(4096, 1024, 1, b)),
            (f"batch_norm {tag} 32x64x1024", lambda b=bwd: batch_norm_case(32, 64, 1024, b)),
            (f"group_norm {tag} 32x64x1024 G8", lambda b=bwd: group_norm_case(32, 64, 1024, 8, b)),
        ]
        if not quick:
            out.append((f"layer_norm {tag} 256x8192", lambda b=bwd: layer_norm_case(256, 8192, False, b)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    reps = 5 if args.quick else 15
    print(f"# {platform.machine()} {platform.processor() or ''} simd={_C.cpu_isa()} numpy={np.__version__}")
    print(f"{'case':34s} {'thr':>3s} {'nnfast ms':>10s} {'GB/s':>7s} {'numpy ms':>9s} {'ratio':>6s}")
    n0 = _C.get_num_threads()
    try:
        for name, make in cases(args.quick):
            nn_fn, np_fn, nbytes = make()
            t_np = _median_time(np_fn, max(3, reps // 3))
            for nt in threads:
                _C.set_num_threads(nt)
                nn_fn()
                t = _median_time(nn_fn, reps)
                print(f"{name:34s} {nt:3d} {t * 1e3:10.3f} {nbytes / t / 1e9:7.1f} {t_np * 1e3:9.2f} "
                      f"{t_np / t:6.1f}x")
    finally:
        _C.set_num_threads(n0)


if __name__ == "__main__":
    main()
