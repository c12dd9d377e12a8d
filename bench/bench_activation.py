"""Activation / dropout kernel throughput against a memory copy and NumPy.

Usage: python bench/bench_activation.py [--mb 16] [--dtype float32] [--threads N]

Each row checks the kernel against a float64 NumPy formula first, then times
(best of --reps) the kernel writing into a preallocated output, the same
formula in NumPy, and np.copyto of the same bytes. GB/s counts the bytes the
op must move (read input(s) + write output); the floor is the copy's GB/s.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import nnfast
from nnfast import _C
from nnfast.nn.functional import _act_codes as codes

try:
    from scipy.special import erf as _erf  # only for the reference
except Exception:  # pragma: no cover
    _erf = np.vectorize(math.erf)


def _best(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=16.0, help="input size in MB")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        nnfast.set_num_threads(args.threads)
    dt = np.dtype(args.dtype)
    n = int(args.mb * 2**20) // dt.itemsize
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * 3).astype(dt)
    y = np.empty_like(x)
    g = rng.standard_normal(n).astype(dt)
    x64 = x.astype(np.float64)
    info = nnfast.info()
    print(f"n={n} ({args.mb} MB {dt}), simd={info['simd']}, threads={info['num_threads']}")

    rows = [
        ("relu", codes.RELU, lambda v: np.maximum(v, 0)),
        ("leaky_relu", codes.LEAKY_RELU, lambda v: np.where(v > 0, v, 0.01 * v)),
        ("sigmoid", codes.SIGMOID, lambda v: 1 / (1 + np.exp(-v))),
        ("tanh", codes.TANH, np.tanh),
        ("gelu", codes.GELU, lambda v: 0.5 * v * (1 + _erf(v / np.sqrt(2)))),
        ("gelu_tanh", codes.GELU_TANH,
         lambda v: 0.5 * v * (1 + np.tanh(0.7978845608028654 * (v + 0.044715 * v**3)))),
        ("silu", codes.SILU, lambda v: v / (1 + np.exp(-v))),
        ("elu", codes.ELU, lambda v: np.where(v > 0, v, np.expm1(v))),
        ("softplus", codes.SOFTPLUS, lambda v: np.logaddexp(0, v)),
    ]
    a_of = {codes.LEAKY_RELU: (0.01, 0.0), codes.ELU: (1.0, 0.0), codes.SOFTPLUS: (1.0, 20.0)}
    bytes_rw = 2 * x.nbytes
    # The floor: a copy of the same bytes. np.copyto is one thread; the identity
    # activation is nnfast's own threaded SIMD copy, the fair floor for the rows below.
    t_np_copy = _best(lambda: np.copyto(y, x), args.reps)
    t_copy = _best(lambda: _C.act_forward(y, x, codes.IDENTITY), args.reps)
    print(f"{'op':<22}{'nnfast ms':>10}{'GB/s':>8}{'numpy ms':>10}{'speedup':>9}{'vs copy':>9}")
    print(f"{'copy (np.copyto)':<22}{t_np_copy * 1e3:>10.3f}{bytes_rw / t_np_copy / 1e9:>8.1f}")
    print(f"{'copy (nnfast threads)':<22}{t_copy * 1e3:>10.3f}{bytes_rw / t_copy / 1e9:>8.1f}")
    tol = 1e-5 if dt == np.float32 else 1e-12
    for name, code, ref in rows:
        a, b = a_of.get(code, (0.0, 0.0))
        _C.act_forward(y, x, code, a, b)
        r = ref(x64)
        err = np.max(np.abs(y - r) / (np.abs(r) + 1))
        assert err < tol, (name, err)
        t = _best(lambda: _C.act_forward(y, x, code, a, b), args.reps)
        tn = _best(lambda: ref(x), max(3, args.reps // 4))
        print(f"{name:<22}{t * 1e3:>10.3f}{bytes_rw / t / 1e9:>8.1f}{tn * 1e3:>10.3f}{tn / t:>9.1f}"
              f"{t_copy / t:>9.2f}")
    # backward (reads dy and saved, writes dx)
    for name, code in [("relu backward", codes.RELU), ("gelu backward", codes.GELU)]:
        t = _best(lambda: _C.act_backward(y, g, x, code, 0.0, 0.0), args.reps)
        print(f"{name:<22}{t * 1e3:>10.3f}{1.5 * bytes_rw / t / 1e9:>8.1f}{'':>10}{'':>9}{1.5 * t_copy / t:>9.2f}")
    # dropout and softmax
    _C.dropout_forward(y, x, 0.5, 1, 0)
    kept = y != 0
    assert np.array_equal(y[kept], x[kept] * dt.type(2.0))
    t = _best(lambda: _C.dropout_forward(y, x, 0.5, 1, 0), args.reps)
    rng2 = np.random.default_rng(1)
    tn = _best(lambda: x * (rng2.random(n, dtype=np.float32) >= 0.5) * dt.type(2.0), max(3, args.reps // 4))
    print(f"{'dropout p=0.5':<22}{t * 1e3:>10.3f}{bytes_rw / t / 1e9:>8.1f}{tn * 1e3:>10.3f}{tn / t:>9.1f}"
          f"{t_copy / t:>9.2f}")
    rows2 = x.reshape(-1, 1000) if n % 1000 == 0 else x[: n // 1000 * 1000].reshape(-1, 1000)
    ys = np.empty_like(rows2)
    _C.softmax_forward(ys, rows2, -1, False)

    def np_softmax(v):
        e = np.exp(v - v.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    assert np.allclose(ys, np_softmax(rows2.astype(np.float64)), rtol=1e-5, atol=1e-7)
    t = _best(lambda: _C.softmax_forward(ys, rows2, -1, False), args.reps)
    tn = _best(lambda: np_softmax(rows2), max(3, args.reps // 4))
    print(f"{'softmax rows of 1000':<22}{t * 1e3:>10.3f}{2 * rows2.nbytes / t / 1e9:>8.1f}{tn * 1e3:>10.3f}"
          f"{tn / t:>9.1f}{t_copy / t:>9.2f}")


if __name__ == "__main__":
    main()
