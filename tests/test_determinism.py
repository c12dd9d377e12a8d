"""Reductions that split work between threads must not depend on the thread count.

Layer norm's weight / bias gradient sums, batch norm on (N, C) (statistics in the
forward, the dy sums in the backward) and spectral norm's <dy, W> go to fixed-size
parts of rows added in a fixed order. Each kernel runs here in a child process with
NNFAST_NUM_THREADS=1 and =2 on shapes large enough to be split into several parts;
the results must be bit-identical.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r"""
import hashlib, json, sys
import numpy as np
import nnfast
C = nnfast._C
out = {}

def h(*arrays):
    m = hashlib.sha256()
    for a in arrays:
        m.update(np.ascontiguousarray(a).tobytes())
    return m.hexdigest()

for dt in (np.float32, np.float64):
    rng = np.random.default_rng(7)
    name = np.dtype(dt).name
    # layer norm: (M, D) rows, dweight / dbias are sums over rows
    M, D = 3001, 700
    x = (rng.standard_normal((M, D)) * 3 + 5).astype(dt)
    dy = rng.standard_normal((M, D)).astype(dt)
    w, b = rng.standard_normal(D).astype(dt), rng.standard_normal(D).astype(dt)
    y, mean, rstd = np.empty_like(x), np.empty(M), np.empty(M)
    C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5)
    dx, dw, db = np.empty_like(x), np.full(D, 0.5, dt), np.full(D, -0.25, dt)  # accumulate +=
    C.layer_norm_backward(dx, dw, db, dy, x, mean, rstd, w)
    out["layer_norm_" + name] = h(y, mean, rstd, dx, dw, db)
    # batch norm on (N, C, 1): statistics and dy sums over rows
    N, Cn = 5003, 300
    x = (rng.standard_normal((N, Cn, 1)) * 2 + 100).astype(dt)
    dy = rng.standard_normal((N, Cn, 1)).astype(dt)
    w, b = rng.standard_normal(Cn).astype(dt), rng.standard_normal(Cn).astype(dt)
    rm, rv = np.zeros(Cn, dt), np.ones(Cn, dt)
    y, mean, rstd = np.empty_like(x), np.empty(Cn), np.empty(Cn)
    C.batch_norm_forward(y, mean, rstd, rm, rv, x, w, b, True, 0.1, 1e-5)
    dx, dw, db = np.empty_like(x), np.full(Cn, 0.5, dt), np.full(Cn, -0.25, dt)
    C.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, True)
    out["batch_norm_" + name] = h(y, mean, rstd, rm, rv, dx, dw, db)
    # spectral norm: <dy, W> over all M * D elements
    M, D = 700, 1100
    W = rng.standard_normal((M, D)).astype(dt)
    dy = rng.standard_normal((M, D)).astype(dt)
    u, v = rng.standard_normal(M).astype(dt), rng.standard_normal(D).astype(dt)
    C.spectral_norm_power_iteration(u, v, W, 2, 1e-12)
    ys = np.empty_like(W)
    sigma = C.spectral_norm_forward(ys, W, u, v)
    dW = np.empty_like(W)
    C.spectral_norm_backward(dW, dy, W, u, v, sigma)
    out["spectral_norm_" + name] = h(u, v, ys, np.array([sigma]), dW)
print(json.dumps(out))
"""


def _run(threads: int) -> dict[str, str]:
    env = dict(os.environ, NNFAST_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_norm_reductions_bit_identical_for_1_and_2_threads():
    one, two = _run(1), _run(2)
    assert one.keys() == two.keys()
    diff = [k for k in one if one[k] != two[k]]
    assert not diff, f"results differ between 1 and 2 threads: {diff}"
