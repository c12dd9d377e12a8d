"""Activation / dropout kernel throughput against a memory copy and NumPy.

Usage: python bench/bench_activation.py [--mb 16] [--dtype float32] [--threads N]
       python bench/bench_activation.py --l1   (arithmetic cost per element, see l1_costs)

Each row checks the kernel against a float64 NumPy formula first, then times
(best of --reps) the kernel writing into a preallocated output, the same
formula in NumPy, and np.copyto of the same bytes. GB/s counts the bytes the
op must move (read input(s) + write output); the floor is the copy's GB/s.
"vs copy" divides by nnfast's threaded copy timed call by call alternated with
that row's kernel (best of each): the copy rate moves with the machine's other
load, so a copy timed once up front is not a steady floor.
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


def _best_vs_copy(fn, copy, reps):
    """Best seconds of fn and of copy, called alternately (the copy sees the machine as fn did)."""
    fn()
    copy()
    bf = bc = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        copy()
        bf, bc = min(bf, t1 - t0), min(bc, time.perf_counter() - t1)
    return bf, bc


def l1_costs() -> None:
    """The arithmetic per element of each memory-bound kernel: one thread (nnfast and
    PyTorch), operands resident in L1/L2 (8192 activations; 64 rows of 1000 / 1024),
    best of 40 short runs, so a loaded machine still gives stable figures. A kernel reaches
    the bandwidth floor when this cost is below bytes-per-element / per-thread copy
    bandwidth (8 B / 13 GB/s = 0.62 ns forward at 26 GB/s over 2 threads)."""
    try:
        import torch
        torch.set_num_threads(1)
    except Exception:  # pragma: no cover
        torch = None
    nnfast.set_num_threads(1)
    rng = np.random.default_rng(0)

    def cost(fn, n):
        # Short windows (~0.1-0.3 ms) so that some of them escape preemption on a loaded machine.
        fn()
        reps = max(3, 100_000 // n)
        best = float("inf")
        for _ in range(40):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - t0) / reps)
        return best / n * 1e9

    n = 8192
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    tx, tg, ty = (torch.from_numpy(a) for a in (x, g, y)) if torch else (None,) * 3
    tf = torch.nn.functional if torch else None
    acts = [("relu", "relu", lambda: torch.relu(tx), lambda: torch.ops.aten.threshold_backward(tg, tx, 0)),
            ("sigmoid", "sigmoid", lambda: torch.sigmoid(tx, out=ty), lambda: torch.ops.aten.sigmoid_backward(tg, tx)),
            ("tanh", "tanh", lambda: torch.tanh(tx, out=ty), lambda: torch.ops.aten.tanh_backward(tg, tx)),
            ("silu", "silu", lambda: tf.silu(tx), lambda: torch.ops.aten.silu_backward(tg, tx)),
            ("gelu (tanh)", ("gelu", {"approximate": "tanh"}), lambda: tf.gelu(tx, approximate="tanh"),
             lambda: torch.ops.aten.gelu_backward(tg, tx, approximate="tanh")),
            ("gelu (erf)", "gelu", lambda: tf.gelu(tx), lambda: torch.ops.aten.gelu_backward(tg, tx)),
            ("elu", "elu", lambda: tf.elu(tx), None),
            ("softplus", "softplus", lambda: tf.softplus(tx), None),
            ("mish", "mish", lambda: tf.mish(tx), None)]
    print(f"ns per element, 1 thread, L1-resident, best of 40 (simd={nnfast.info()['simd']})")
    print(f"{'kernel':<28}{'nnfast':>9}{'torch':>9}{'vs torch':>10}")

    def row(name, ours, theirs, m):
        a = cost(ours, m)
        b = cost(theirs, m) if (torch and theirs) else float("nan")
        print(f"{name:<28}{a:>9.3f}{b:>9.3f}{b / a:>10.2f}")

    for name, spec, tfwd, tbwd in acts:
        code = codes.resolve(spec)[0]
        row(name + " fwd", lambda: _C.act_forward(y, x, code), tfwd, n)
        row(name + " bwd", lambda: _C.act_backward(y, g, x, code), tbwd, n)
    B, K = 64, 1000
    z = rng.standard_normal((B, K)).astype(np.float32)
    zo, gz = np.empty_like(z), rng.standard_normal((B, K)).astype(np.float32)
    sm = np.empty_like(z)
    _C.softmax_forward(sm, z, 1)
    tgt = rng.integers(0, K, B)
    tz, tgz, tsm, tt = (torch.from_numpy(a) for a in (z, gz, sm, tgt)) if torch else (None,) * 4
    row("softmax fwd (rows of 1000)", lambda: _C.softmax_forward(zo, z, 1), lambda: torch.softmax(tz, 1), B * K)
    row("log_softmax fwd", lambda: _C.softmax_forward(zo, z, 1, True), lambda: torch.log_softmax(tz, 1), B * K)
    row("softmax bwd", lambda: _C.softmax_backward(zo, gz, sm, 1),
        lambda: torch.ops.aten._softmax_backward_data(tgz, tsm, 1, torch.float32), B * K)
    loss = np.empty(1, np.float32)
    row("cross_entropy loss+grad", lambda: _C.cross_entropy(loss, zo.reshape(B, K, 1), z.reshape(B, K, 1),
                                                              tgt.reshape(B, 1), None, -100, 0.0, 1),
        lambda: tf.cross_entropy(tz, tt), B * K)
    R, D = 64, 1024
    xr = rng.standard_normal((R, D)).astype(np.float32)
    gr, yr = rng.standard_normal((R, D)).astype(np.float32), np.empty((R, D), np.float32)
    w, b = np.ones(D, np.float32), np.zeros(D, np.float32)
    mean, rstd, dw, db = np.empty(R), np.empty(R), np.zeros(D, np.float32), np.zeros(D, np.float32)
    _C.layer_norm_forward(yr, mean, rstd, xr, w, b, 1e-5)
    bm, br = np.empty(D), np.empty(D)
    txr, tw, tb = (torch.from_numpy(a) for a in (xr, w, b)) if torch else (None,) * 3
    row("layer_norm fwd (rows 1024)", lambda: _C.layer_norm_forward(yr, mean, rstd, xr, w, b, 1e-5),
        lambda: tf.layer_norm(txr, (D,), tw, tb), R * D)
    row("layer_norm bwd", lambda: _C.layer_norm_backward(yr, dw, db, gr, xr, mean, rstd, w), None, R * D)
    row("batch_norm fwd (train)", lambda: _C.batch_norm_forward(yr[:, :, None], bm, br, None, None, xr[:, :, None],
                                                                w, b, True, 0.1, 1e-5),
        lambda: tf.batch_norm(txr, None, None, tw, tb, True), R * D)
    row("batch_norm bwd", lambda: _C.batch_norm_backward(yr[:, :, None], dw, db, gr[:, :, None], xr[:, :, None],
                                                         bm, br, w, True), None, R * D)
    xf = x.copy()
    row("dropout fwd", lambda: _C.dropout_forward(y, xf, 0.1, 7, 0), lambda: tf.dropout(tx, 0.1, True), n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=16.0, help="input size in MB")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--l1", action="store_true", help="ns per element on one thread, operands in L1/L2")
    args = ap.parse_args()
    if args.l1:
        l1_costs()
        return
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
    copy = lambda: _C.act_forward(y, x, codes.IDENTITY)  # noqa: E731
    t_copy = _best(copy, args.reps)
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
        t, tc = _best_vs_copy(lambda: _C.act_forward(y, x, code, a, b), copy, args.reps)
        tn = _best(lambda: ref(x), max(3, args.reps // 4))
        print(f"{name:<22}{t * 1e3:>10.3f}{bytes_rw / t / 1e9:>8.1f}{tn * 1e3:>10.3f}{tn / t:>9.1f}"
              f"{tc / t:>9.2f}")
    # backward (reads dy and saved, writes dx)
    for name, code in [("relu backward", codes.RELU), ("gelu backward", codes.GELU)]:
        t, tc = _best_vs_copy(lambda: _C.act_backward(y, g, x, code, 0.0, 0.0), copy, args.reps)
        print(f"{name:<22}{t * 1e3:>10.3f}{1.5 * bytes_rw / t / 1e9:>8.1f}{'':>10}{'':>9}{1.5 * tc / t:>9.2f}")
    # dropout and softmax
    _C.dropout_forward(y, x, 0.5, 1, 0)
    kept = y != 0
    assert np.array_equal(y[kept], x[kept] * dt.type(2.0))
    t, tc = _best_vs_copy(lambda: _C.dropout_forward(y, x, 0.5, 1, 0), copy, args.reps)
    rng2 = np.random.default_rng(1)
    tn = _best(lambda: x * (rng2.random(n, dtype=np.float32) >= 0.5) * dt.type(2.0), max(3, args.reps // 4))
    print(f"{'dropout p=0.5':<22}{t * 1e3:>10.3f}{bytes_rw / t / 1e9:>8.1f}{tn * 1e3:>10.3f}{tn / t:>9.1f}"
          f"{tc / t:>9.2f}")
    rows2 = x.reshape(-1, 1000) if n % 1000 == 0 else x[: n // 1000 * 1000].reshape(-1, 1000)
    ys = np.empty_like(rows2)
    _C.softmax_forward(ys, rows2, -1, False)

    def np_softmax(v):
        e = np.exp(v - v.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    assert np.allclose(ys, np_softmax(rows2.astype(np.float64)), rtol=1e-5, atol=1e-7)
    t, tc = _best_vs_copy(lambda: _C.softmax_forward(ys, rows2, -1, False), copy, args.reps)
    tn = _best(lambda: np_softmax(rows2), max(3, args.reps // 4))
    print(f"{'softmax rows of 1000':<22}{t * 1e3:>10.3f}{2 * rows2.nbytes / t / 1e9:>8.1f}{tn * 1e3:>10.3f}"
          f"{tn / t:>9.1f}{tc * rows2.size / x.size / t:>9.2f}")


if __name__ == "__main__":
    main()
