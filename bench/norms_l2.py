"""Per-element arithmetic cost of the norm kernels and the row sum, one thread, L2-resident.

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_l2.py [--rows 64] [--reps 200]

(--rows 16384 --reps 7: the same at 64 MB, one thread, memory-bound.)

Operands of (rows, 1024) float32 (256 KB each at 64 rows) stay in L2, so the figure is the
kernel's own cost per element (ns), not the memory system's: best of many short windows,
stable on a loaded machine. PyTorch (1 thread) in the same run. The bandwidth floor per
thread is bytes-per-element / (half the 2-thread copy rate): e.g. 12 B at 33 GB/s = 0.73 ns.
"""
import sys
import time

import numpy as np

import nnfast
import nnfast._C as C  # type: ignore
from nnfast._dispatch import REDUCE_CODES

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None

nnfast.set_num_threads(1)
rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 64
reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 200
D = 1024
n = rows * D
rng = np.random.default_rng(0)
x = rng.standard_normal((rows, D), dtype=np.float32)
g = rng.standard_normal((rows, D), dtype=np.float32)
y = np.empty_like(x)
w, b = np.ones(D, np.float32), np.zeros(D, np.float32)
mean, rstd = np.empty(rows), np.empty(rows)
C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5)
dw, db = np.zeros(D, np.float32), np.zeros(D, np.float32)
bm, bs = np.empty(D), np.empty(D)
x3, g3, y3 = x[:, :, None], g[:, :, None], y[:, :, None]
C.batch_norm_forward(y3, bm, bs, None, None, x3, w, b, True, 0.1, 1e-5)
# NCHW with HW = 49: (N, C, 49), C = 64, about the same element count.
N4 = max(1, n // (64 * 49))
x4 = rng.standard_normal((N4, 64, 49), dtype=np.float32)
g4 = rng.standard_normal((N4, 64, 49), dtype=np.float32)
y4 = np.empty_like(x4)
w4, b4 = np.ones(64, np.float32), np.zeros(64, np.float32)
dw4, db4 = np.zeros(64, np.float32), np.zeros(64, np.float32)
bm4, bs4 = np.empty(64), np.empty(64)
C.batch_norm_forward(y4, bm4, bs4, None, None, x4, w4, b4, True, 0.1, 1e-5)
row_out = np.empty(rows, np.float32)
rsum = REDUCE_CODES["sum"]


def best_ns(f, elems):
    f()
    t = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t / elems * 1e9


cases = [
    ("layer_norm fwd", n, lambda: C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5)),
    ("layer_norm bwd (dx dw db)", n, lambda: C.layer_norm_backward(y, dw, db, g, x, mean, rstd, w)),
    ("rms_norm bwd (dx dw)", n, lambda: C.layer_norm_backward(y, dw, None, g, x, None, rstd, w, True)),
    ("batch_norm fwd (N, C)", n, lambda: C.batch_norm_forward(y3, bm, bs, None, None, x3, w, b, True, 0.1, 1e-5)),
    ("batch_norm bwd (N, C)", n, lambda: C.batch_norm_backward(y3, dw, db, g3, x3, bm, bs, w, True)),
    ("batch_norm fwd (N, 64, 49)", x4.size,
     lambda: C.batch_norm_forward(y4, bm4, bs4, None, None, x4, w4, b4, True, 0.1, 1e-5)),
    ("batch_norm bwd (N, 64, 49)", x4.size, lambda: C.batch_norm_backward(y4, dw4, db4, g4, x4, bm4, bs4, w4, True)),
    ("sum over last dim (1024)", n, lambda: C.reduce_dim(row_out, None, x, 1, rsum)),
]
tcases = {}
if torch:
    T = torch.from_numpy
    tx, tg, tw, tb, tx4, tg4, tw4, tb4 = map(T, (x, g, w, b, x4, g4, w4, b4))
    _, tm, trs = torch.ops.aten.native_layer_norm(tx, (D,), tw, tb, 1e-5)
    _, tbm, tbs = torch.ops.aten.native_batch_norm(tx, tw, tb, None, None, True, 0.1, 1e-5)
    _, tbm4, tbs4 = torch.ops.aten.native_batch_norm(tx4, tw4, tb4, None, None, True, 0.1, 1e-5)
    trow = T(row_out.copy())
    tcases = {
        "layer_norm fwd": lambda: torch.nn.functional.layer_norm(tx, (D,), tw, tb),
        "layer_norm bwd (dx dw db)": lambda: torch.ops.aten.native_layer_norm_backward(
            tg, tx, (D,), tm, trs, tw, tb, [True, True, True]),
        "batch_norm fwd (N, C)": lambda: torch.nn.functional.batch_norm(tx, None, None, tw, tb, True),
        "batch_norm bwd (N, C)": lambda: torch.ops.aten.native_batch_norm_backward(
            tg, tx, tw, None, None, tbm, tbs, True, 1e-5, [True, True, True]),
        "batch_norm fwd (N, 64, 49)": lambda: torch.nn.functional.batch_norm(tx4, None, None, tw4, tb4, True),
        "batch_norm bwd (N, 64, 49)": lambda: torch.ops.aten.native_batch_norm_backward(
            tg4, tx4, tw4, None, None, tbm4, tbs4, True, 1e-5, [True, True, True]),
        "sum over last dim (1024)": lambda: torch.sum(tx, 1, out=trow),
    }
print(f"one thread, {rows} x {D} float32, best of {reps}, ns per element")
print(f"{'kernel':28} {'nnfast':>7} {'torch':>7} {'vs torch':>8}")
for name, elems, f in cases:
    a = best_ns(f, elems)
    tf = tcases.get(name)
    t = best_ns(tf, elems) if tf else float("nan")
    print(f"{name:28} {a:7.3f} {t:7.3f} {t / a:8.2f}", flush=True)
