"""Norm kernels vs the same run's copy ceiling and PyTorch; or, with --l2, their per-element cost.

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_bench.py [--mb 64] [--only batch_norm]
    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_bench.py --l2 [--rows 64] [--reps 200]
    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_bench.py --ab [--threads 1] [--mb 64]
    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_bench.py --ab --var NNFAST_NORM_NCHW --only 49
    OMP_WAIT_POLICY=passive NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_bench.py --ab \
        --var NNFAST_NORM_COLS --only 49 --threads 1

Default (bandwidth): float32 rows (R, 1024) and NCHW (N, 64, 49) of about --mb MB each, 2 threads,
best of --reps (7); GB/s counts the bytes a kernel must move (fwd: read x, write y; bwd: read dy
and x, write dx) against the same run's copy ceiling (read + write): nnfast.bench.memory.copy_ceiling,
the one definition every memory-bound bench divides by (fastest of NumPy 1 / 2 threads and nnfast's
streaming threaded copy), timed with this bench's best-of like the kernels. %floor counts instead the
passes a kernel cannot avoid (batch norm past the L3: fwd 3, bwd 5; see floor_passes).

--l2: one thread, (--rows, 1024) float32 operands (256 KB each at 64 rows, L2-resident), best of
--reps (200): the kernel's own cost per element in ns, not the memory system's; stable on a
loaded machine. The bandwidth floor per thread is bytes-per-element / (half the 2-thread copy
rate): e.g. 12 B at 33 GB/s = 0.73 ns. (--l2 --rows 16384 --reps 7: the same at 64 MB.)

--ab: the same process times each kernel with the float32 non-temporal output stores off
(NNFAST_NORM_STREAM=0) and on, alternating, best of --reps (10); with --threads 1 it uses
process CPU time (run with OMP_WAIT_POLICY=passive), which survives a loaded machine. --var NAME
toggles another switch the same way: NNFAST_NORM_NCHW (0: the (N, C, L) batch norm one channel
at a time instead of in groups of channels read as contiguous stretches), NNFAST_NORM_COLS (0: the
groups' sums in per-channel register accumulators instead of one per element of the stretch),
NNFAST_NORM_PREFETCH (0: no software prefetch of the groups' strided stretches), NNFAST_NORM_NSPLIT
(opt-in 1: the threads split the rows inside one group of twice the channels; for it, on / off reads 1 / 0),
NNFAST_NORM_FOLD (0: the float32 output passes of batch norm and the layer / RMS norm dx subtract the split
mean in two steps instead of folding its low part into the constant of one multiply-add), NNFAST_NORM_ROWPF
(0: the layer / RMS norm float32 dx pass does not prefetch the next rows' dy and x), NNFAST_NORM_REVERSE (0:
the batch norm float32 output pass takes the rows front to back instead of last to first),
NNFAST_NORM_F32SUM (0: the float32 layer / RMS norm backward's first pass and the (N, C) batch norm
backward's column sums in double lanes instead of float lanes added into double), NNFAST_NORM_ROWSTATS
(opt-in 1: the float32 layer / RMS norm forward's row statistics in float lanes), NNFAST_NORM_F32STATS
(opt-in 1: the (N, C) batch norm forward's statistics in float lanes), NNFAST_NORM_ROWS8 (0: the batch norm
column sums 4 rows per pass instead of 8); for the opt-in ones on / off reads 1 / 0.
"""
import os
import sys
import time

import numpy as np

import nnfast
from nnfast.bench.memory import copy_ceiling
import nnfast._C as C  # type: ignore
from nnfast._dispatch import REDUCE_CODES

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def arg(name, default, cast=int):
    return cast(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


l2 = "--l2" in sys.argv
ab = "--ab" in sys.argv
threads = 1 if l2 else arg("--threads", 2)
nnfast.set_num_threads(threads)
if torch:
    torch.set_num_threads(threads)
D = 1024
if l2:
    rows = arg("--rows", 64)
    reps = arg("--reps", 200)
else:
    mb = arg("--mb", 64)
    rows = mb * (1 << 20) // 4 // D
    reps = arg("--reps", 10 if ab else 7)
only = arg("--only", "", str)
var = arg("--var", "NNFAST_NORM_STREAM", str)
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
# NCHW with HW = 49: (N4, 64, 49), about the same element count.
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


# --threads 1: process CPU time (run with OMP_WAIT_POLICY=passive), which survives a loaded machine.
clock = time.process_time if threads == 1 else time.perf_counter


def best(f):
    f()
    t = 1e9
    for _ in range(reps):
        t0 = clock()
        f()
        t = min(t, clock() - t0)
    return t


# name, elements, bytes per element moved (x4 bytes), nnfast call
cases = [
    ("layer_norm fwd", n, 2, lambda: C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5)),
    ("layer_norm bwd", n, 3, lambda: C.layer_norm_backward(y, dw, db, g, x, mean, rstd, w)),
    ("rms_norm fwd", n, 2, lambda: C.layer_norm_forward(y, None, rstd, x, w, None, 1e-5, True)),
    ("rms_norm bwd", n, 3, lambda: C.layer_norm_backward(y, dw, None, g, x, None, rstd, w, True)),
    ("batch_norm fwd (N,C)", n, 2, lambda: C.batch_norm_forward(y3, bm, bs, None, None, x3, w, b, True, 0.1, 1e-5)),
    ("batch_norm bwd (N,C)", n, 3, lambda: C.batch_norm_backward(y3, dw, db, g3, x3, bm, bs, w, True)),
    ("batch_norm fwd (N,64,49)", x4.size, 2,
     lambda: C.batch_norm_forward(y4, bm4, bs4, None, None, x4, w4, b4, True, 0.1, 1e-5)),
    ("batch_norm bwd (N,64,49)", x4.size, 3, lambda: C.batch_norm_backward(y4, dw4, db4, g4, x4, bm4, bs4, w4, True)),
]
# Memory passes (x4 bytes per element) a kernel cannot avoid once its inputs outgrow the 32 MB L3:
# batch norm needs every row's column statistics before its first output, so the forward reads x
# twice (3 passes with y) and the backward reads dy and x twice (5); the row norms keep a row in
# cache between their passes (2 / 3). %floor: the copy ceiling's time for these bytes / the time.
floor_passes = {"batch_norm fwd": 3, "batch_norm bwd": 5}
if l2:
    cases.append(("sum over last dim (1024)", n, 1, lambda: C.reduce_dim(row_out, None, x, 1, rsum)))
cases = [c for c in cases if only in c[0]]
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
        "layer_norm bwd": lambda: torch.ops.aten.native_layer_norm_backward(
            tg, tx, (D,), tm, trs, tw, tb, [True, True, True]),
        "rms_norm fwd": lambda: torch.nn.functional.rms_norm(tx, (D,), tw, 1e-5),
        "batch_norm fwd (N,C)": lambda: torch.nn.functional.batch_norm(tx, None, None, tw, tb, True),
        "batch_norm bwd (N,C)": lambda: torch.ops.aten.native_batch_norm_backward(
            tg, tx, tw, None, None, tbm, tbs, True, 1e-5, [True, True, True]),
        "batch_norm fwd (N,64,49)": lambda: torch.nn.functional.batch_norm(tx4, None, None, tw4, tb4, True),
        "batch_norm bwd (N,64,49)": lambda: torch.ops.aten.native_batch_norm_backward(
            tg4, tx4, tw4, None, None, tbm4, tbs4, True, 1e-5, [True, True, True]),
        "sum over last dim (1024)": lambda: torch.sum(tx, 1, out=trow),
    }

if ab:
    res = {}
    for _ in range(reps):
        for mode in ("0", "1"):
            os.environ[var] = mode
            for name, _, _, f in cases:
                t0 = clock()
                f()
                t = clock() - t0
                res[name, mode] = min(res.get((name, mode), 1e9), t)
    print(f"{mb} MB, {threads} thread(s), best of {reps}, {var}=0 / 1 (ms)")
    print(f"{'kernel':24} {'off':>7} {'on':>7} {'on/off':>7}")
    for name, _, _, _ in cases:
        a, b = res[name, "0"], res[name, "1"]
        print(f"{name:24} {a*1e3:7.2f} {b*1e3:7.2f} {b / a:7.3f}")
elif l2:
    print(f"one thread, {rows} x {D} float32, best of {reps}, ns per element")
    print(f"{'kernel':28} {'nnfast':>7} {'torch':>7} {'vs torch':>8}")
    for name, elems, _, f in cases:
        a = best(f) / elems * 1e9
        tf = tcases.get(name)
        t = best(tf) / elems * 1e9 if tf else float("nan")
        print(f"{name:28} {a:7.3f} {t:7.3f} {t / a:8.2f}", flush=True)
else:
    copies = copy_ceiling(n, best)
    cbw = copies["ceiling"]
    print(f"{mb} MB: copy ceiling {cbw:.1f} GB/s (" + ", ".join(f"{k} {v:.1f}" for k, v in copies.items()
                                                     if k != "ceiling") + ")")
    print(f"{'kernel':24} {'ms':>7} {'GB/s':>6} {'%copy':>6} {'%floor':>6} {'torch ms':>9} {'vs torch':>8}")
    for name, elems, k, f in cases:
        t = best(f)
        tf = tcases.get(name)
        tt = best(tf) if tf else float("nan")
        gbs = k * 4 * elems / t / 1e9
        big = 2 * 4 * elems > (32 << 20)  # the inputs do not fit the L3
        kf = next((v for p, v in floor_passes.items() if name.startswith(p)), k) if big else k
        print(f"{name:24} {t*1e3:7.2f} {gbs:6.1f} {100*gbs/cbw:6.0f} {100*gbs*kf/k/cbw:6.0f} {tt*1e3:9.2f} "
              f"{tt/t:8.2f}", flush=True)
