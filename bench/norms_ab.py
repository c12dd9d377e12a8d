"""1-thread process-CPU-time A/B of one NNFAST_NORM_* switch on (R, 1024) float32 norms, with a
NumPy copy as the noise control (survives a loaded machine; alternates 0 / 1 in one process, best of REPS).

    OMP_WAIT_POLICY=passive NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/norms_ab.py NNFAST_NORM_F32SUM 4096,16384 12

Rows 4096 / 16384 are 16 / 64 MB per operand; figures in ns per element (off, on, on/off).
"""
import os, sys, time
import numpy as np
import nnfast
import nnfast._C as C
nnfast.set_num_threads(1)
clock = time.process_time
D = 1024
var = sys.argv[1]; rowsl = [int(r) for r in sys.argv[2].split(",")]; reps = int(sys.argv[3])
for rows in rowsl:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, D), dtype=np.float32); g = rng.standard_normal((rows, D), dtype=np.float32)
    y = np.empty_like(x); w, b = np.ones(D, np.float32), np.zeros(D, np.float32)
    mean, rstd = np.empty(rows), np.empty(rows)
    C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5)
    dw, db = np.zeros(D, np.float32), np.zeros(D, np.float32)
    bm, bs = np.empty(D), np.empty(D)
    x3, g3, y3 = x[:, :, None], g[:, :, None], y[:, :, None]
    C.batch_norm_forward(y3, bm, bs, None, None, x3, w, b, True, 0.1, 1e-5)
    cases = [
     ("copy", lambda: np.copyto(y, x)),
     ("ln fwd", lambda: C.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5)),
     ("ln bwd", lambda: C.layer_norm_backward(y, dw, db, g, x, mean, rstd, w)),
     ("ln bwd dx only", lambda: C.layer_norm_backward(y, None, None, g, x, mean, rstd, w)),
     ("rms bwd", lambda: C.layer_norm_backward(y, dw, None, g, x, None, rstd, w, True)),
     ("bn fwd", lambda: C.batch_norm_forward(y3, bm, bs, None, None, x3, w, b, True, 0.1, 1e-5)),
     ("bn bwd", lambda: C.batch_norm_backward(y3, dw, db, g3, x3, bm, bs, w, True)),
     ("bn bwd sums only", lambda: C.batch_norm_backward(None, dw, db, g3, x3, bm, bs, w, True)),
    ]
    res = {}
    inner = max(1, 4096 // rows)
    for _ in range(reps):
        for mode in ("0", "1"):
            os.environ[var] = mode
            for name, f in cases:
                try:
                    t0 = clock()
                    for _ in range(inner): f()
                    t = (clock() - t0) / inner
                except Exception as e:
                    t = float('nan')
                res[name, mode] = min(res.get((name, mode), 1e9), t)
    print(f"rows {rows} x {D} float32 ({rows*D*4/2**20:.2f} MB), 1 thread CPU time, best of {reps}, ns/elem, {var}=0 / 1")
    for name, _ in cases:
        a, c = res[name, "0"], res[name, "1"]
        print(f"  {name:18} {a/rows/D*1e9:7.3f} {c/rows/D*1e9:7.3f} {c/a:7.3f}")
