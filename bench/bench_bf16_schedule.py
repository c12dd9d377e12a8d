"""bf16 GEMM thread schedules, same process: shared B (NNFAST_BF16_SHARED_B=1) against the
per-thread grid (=0), alternated, best of ROUNDS (default 10). Prints wall and process-CPU-time
GFLOP/s and grid/shared ratios (> 1: the grid is faster). The default (variable unset) is shared B;
NNFAST_BF16_SHARED_B=auto is the candidate rule: the grid where its per-thread B slab (one K block
x N/threads bf16) fits in 512 KiB, else shared B (2 threads only).

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python OMP_WAIT_POLICY=passive python bench/bench_bf16_schedule.py
"""
import os
import time

import ml_dtypes
import numpy as np

from nnfast import _C

bf = ml_dtypes.bfloat16
_C.set_num_threads(2)
rng = np.random.default_rng(0)
def mk(shape, dt): return rng.standard_normal(shape).astype(np.float32).astype(dt)
cases = [(1024,1024,1024,"N","N",np.float32),(2048,2048,2048,"N","N",np.float32),
         (256,1024,784,"N","T",np.float32),(256,1024,1024,"N","T",np.float32),(1024,784,256,"T","N",np.float32),
         (256,1024,784,"N","T",bf),(256,1024,1024,"N","T",bf),(256,1024,1024,"N","N",bf),(1024,1024,256,"T","N",bf)]
rounds = int(os.environ.get("ROUNDS", 10))
for (m,n,k,la,lb,dt) in cases:
    a = mk((m,k),dt) if la=="N" else mk((k,m),dt).T
    b = mk((k,n),dt) if lb=="N" else mk((n,k),dt).T
    c = np.empty((m,n),np.float32)
    def run(): _C.gemm(c,a,b,precision="bf16")
    run(); t1 = time.perf_counter(); run(); one = time.perf_counter()-t1
    reps = max(3, int(0.03/max(one,1e-6)))
    w = {"s":[], "g":[]}; cp = {"s":[], "g":[]}
    for r in range(rounds):
        for mode in ("s","g") if r%2==0 else ("g","s"):
            os.environ["NNFAST_BF16_SHARED_B"] = "1" if mode=="s" else "0"
            run()
            t0=time.perf_counter(); p0=time.process_time()
            for _ in range(reps): run()
            w[mode].append((time.perf_counter()-t0)/reps); cp[mode].append((time.process_time()-p0)/reps)
    f = 2*m*n*k*1e-9
    ws, wg = min(w["s"]), min(w["g"]); cs, cg = min(cp["s"]), min(cp["g"])
    os.environ.pop("NNFAST_BF16_SHARED_B")
    # which one the default rule picks: time is ambiguous, so report the rule by shape
    print(f"{m:5d}x{n:5d}x{k:5d} {la}{lb} {'bf16' if dt is bf else 'f32 '}  wall(best) shared {f/ws:6.1f} grid {f/wg:6.1f} grid/shared {ws/wg:5.3f} | cpu shared {f/cs:6.1f} grid {f/cg:6.1f} grid/shared {cs/cg:5.3f}", flush=True)
