"""Norm kernels (64 MB float32, rows of 1024; NCHW rows (N, 64, 49)) vs a 2-thread NumPy copy and PyTorch, same run.

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_bench.py [--mb 64]
"""
import sys, time, threading
import numpy as np
from nnfast import _native as _n  # noqa: F401
import nnfast._C as C  # type: ignore
try:
    import torch
    torch.set_num_threads(2)
except ImportError:  # pragma: no cover
    torch = None

mb = int(sys.argv[sys.argv.index("--mb") + 1]) if "--mb" in sys.argv else 64
n = mb * (1 << 20) // 4
D = 1024
R = n // D
rng = np.random.default_rng(0)
x = rng.standard_normal((R, D), dtype=np.float32)
g = rng.standard_normal((R, D), dtype=np.float32)
y = np.empty_like(x)
w, b = np.ones(D, np.float32), np.zeros(D, np.float32)
mean, rstd = np.empty(R), np.empty(R)
C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5)
dw, db = np.zeros(D, np.float32), np.zeros(D, np.float32)
bm, bs = np.empty(D), np.empty(D)
x3, g3, y3 = x[:, :, None], g[:, :, None], y[:, :, None]
# NCHW with small HW: (N, 64, 49), about the same bytes.
N4 = n // (64 * 49)
x4, g4 = x.reshape(-1)[: N4 * 64 * 49].reshape(N4, 64, 49), g.reshape(-1)[: N4 * 64 * 49].reshape(N4, 64, 49)
y4 = y.reshape(-1)[: N4 * 64 * 49].reshape(N4, 64, 49)
w4, b4, dw4, db4 = np.ones(64, np.float32), np.zeros(64, np.float32), np.zeros(64, np.float32), np.zeros(64, np.float32)
bm4, bs4 = np.empty(64), np.empty(64)
C.batch_norm_forward(y4, bm4, bs4, None, None, x4, w4, b4, True, 0.1, 1e-5)


def best(f, reps=7):
    f()
    t = 1e9
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t


def copy2():
    h = R // 2
    th = threading.Thread(target=np.copyto, args=(y[h:], x[h:]))
    th.start(); np.copyto(y[:h], x[:h]); th.join()


tx, tg, tw, tb = (torch.from_numpy(a) for a in (x, g, w, b)) if torch else (None,) * 4
txg = tx.clone().requires_grad_() if torch else None
cases = [
    ("layer_norm fwd", 2, lambda: C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5),
     lambda: torch.nn.functional.layer_norm(tx, (D,), tw, tb)),
    ("layer_norm bwd", 3, lambda: C.layer_norm_backward(y, dw, db, g, x, mean, rstd, w),
     lambda: torch.ops.aten.native_layer_norm_backward(tg, tx, (D,), tm, trs, tw, tb, [True, True, True])),
    ("rms_norm fwd", 2, lambda: C.layer_norm_forward(y, None, rstd, x, w, None, 1e-5, True),
     lambda: torch.nn.functional.rms_norm(tx, (D,), tw, 1e-5)),
    ("rms_norm bwd", 3, lambda: C.layer_norm_backward(y, dw, None, g, x, None, rstd, w, True), None),
    ("batch_norm fwd (train)", 2, lambda: C.batch_norm_forward(y3, bm, bs, None, None, x3, w, b, True, 0.1, 1e-5),
     lambda: torch.nn.functional.batch_norm(tx, None, None, tw, tb, True)),
    ("batch_norm bwd", 3, lambda: C.batch_norm_backward(y3, dw, db, g3, x3, bm, bs, w, True),
     lambda: torch.ops.aten.native_batch_norm_backward(tg, tx, tw, None, None, tbm, tbs, True, 1e-5, [True, True, True])),
    ("batch_norm fwd (N,64,49)", 2, lambda: C.batch_norm_forward(y4, bm4, bs4, None, None, x4, w4, b4, True, 0.1, 1e-5),
     lambda: torch.nn.functional.batch_norm(tx4, None, None, tw4, tb4, True)),
    ("batch_norm bwd (N,64,49)", 3, lambda: C.batch_norm_backward(y4, dw4, db4, g4, x4, bm4, bs4, w4, True),
     lambda: torch.ops.aten.native_batch_norm_backward(tg4, tx4, tw4, None, None, tbm4, tbs4, True, 1e-5,
                                                       [True, True, True])),
]
if torch:
    _, tm, trs = torch.ops.aten.native_layer_norm(tx, (D,), tw, tb, 1e-5)
    _, tbm, tbs = torch.ops.aten.native_batch_norm(tx, tw, tb, None, None, True, 0.1, 1e-5)
    tx4, tg4, tw4, tb4 = (torch.from_numpy(a) for a in (x4, g4, w4, b4))
    _, tbm4, tbs4 = torch.ops.aten.native_batch_norm(tx4, tw4, tb4, None, None, True, 0.1, 1e-5)
C.batch_norm_forward(y3, bm, bs, None, None, x3, w, b, True, 0.1, 1e-5)
tc = best(copy2)
cbw = 2 * 4 * n / tc / 1e9
print(f"{mb} MB: 2-thread numpy copy {cbw:.1f} GB/s ({tc*1e3:.2f} ms)")
print(f"{'kernel':24} {'ms':>7} {'GB/s':>6} {'%copy':>6} {'torch ms':>9} {'vs torch':>8}")
for name, k, f, tf in cases:
    t = best(f)
    tt = best(tf) if (torch and tf) else float("nan")
    gbs = k * 4 * n / t / 1e9
    print(f"{name:24} {t*1e3:7.2f} {gbs:6.1f} {100*gbs/cbw:6.0f} {tt*1e3:9.2f} {tt/t:8.2f}")
