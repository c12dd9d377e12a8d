"""Per-GEMM breakdown of the two MLP Adam steps (784-128-10 batch 64, 784-1024-1024-10 batch 256):
each GEMM the step runs, with its real operand layouts and epilogues, nnfast vs torch, 1 thread,
process CPU time, best-of (a figure that survives a loaded machine), plus the % of the FMA peak.
With --ab SWITCH: each variant (SWITCH unset / SWITCH=0) in its own process (switches are read
once), alternated --rounds times, best per shape. Usage:

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_step_gemm.py [--ab NNFAST_GEMM_...]
        [--rounds N] [--only PREFIX] [--no-torch]

--no-torch skips PyTorch's timings (halves an A/B's run time; the torch columns then read 0).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, numpy as np, torch, nnfast
from nnfast._native import _C
nnfast.set_num_threads(1); torch.set_num_threads(1)
rng = np.random.default_rng(0)
def r(*s): return rng.standard_normal(s).astype(np.float32)
def best(fn, rep=7):
    for _ in range(3): fn()
    n, t = 1, 0.0
    while t < 0.01:  # enough calls per timing for the process clock's resolution
        n *= 2; t0 = time.process_time()
        for _ in range(n): fn()
        t = time.process_time() - t0
    b = 1e9
    for _ in range(rep):
        t0 = time.process_time()
        for _ in range(n): fn()
        b = min(b, (time.process_time() - t0) / n)
    return b * 1e6
cases = []
def lin_fwd(name, B, I, O, act):
    x, w, b = r(B, I), r(O, I), r(O); c = np.empty((B, O), np.float32)
    xt, wt, bt = map(torch.from_numpy, (x, w, b))
    f = (lambda: torch.relu(torch.addmm(bt, xt, wt.T))) if act else (lambda: torch.addmm(bt, xt, wt.T))
    cases.append((name, 2 * B * I * O, lambda: _C.gemm(c, x, w.T, 1.0, 0.0, b, 1 if act else 0), f))
def lin_dx(name, B, I, O, act):
    dz, w, s = r(B, O), r(O, I), np.abs(r(B, I)); c = np.empty((B, I), np.float32)
    dzt, wt = torch.from_numpy(dz), torch.from_numpy(w)
    cases.append((name, 2 * B * I * O,
                  (lambda: _C.gemm(c, dz, w, 1.0, 0.0, None, 1, 0.0, 0.0, None, s)) if act else (lambda: _C.gemm(c, dz, w)),
                  lambda: dzt @ wt))
def lin_dw(name, B, I, O):
    dz, x = r(B, O), r(B, I); c = np.zeros((O, I), np.float32); db = np.zeros(O, np.float32)
    dzt, xt = torch.from_numpy(dz), torch.from_numpy(x); ct, dbt = torch.from_numpy(c.copy()), torch.from_numpy(db.copy())
    def tf():
        ct.addmm_(dzt.T, xt); dbt.add_(dzt.sum(0))
    cases.append((name, 2 * B * I * O, lambda: _C.gemm(c, dz.T, x, 1.0, 1.0, row_sums=db), tf))
lin_fwd("s fwd1 64x128x784 NT", 64, 784, 128, True)
lin_fwd("s fwd2 64x10x128 NT", 64, 128, 10, False)
lin_dx("s dx2 64x128x10 +relu'", 64, 128, 10, True)
lin_dw("s dW2 10x128x64 TN+db", 64, 128, 10)
lin_dw("s dW1 128x784x64 TN+db", 64, 784, 128)
lin_fwd("b fwd1 256x1024x784 NT", 256, 784, 1024, True)
lin_fwd("b fwd2 256x1024x1024 NT", 256, 1024, 1024, True)
lin_fwd("b fwd3 256x10x1024 NT", 256, 1024, 10, False)
lin_dx("b dx3 256x1024x10 +relu'", 256, 1024, 10, True)
lin_dw("b dW3 10x1024x256 TN+db", 256, 1024, 10)
lin_dx("b dx2 256x1024x1024 +relu'", 256, 1024, 1024, True)
lin_dw("b dW2 1024x1024x256 TN+db", 256, 1024, 1024)
lin_dw("b dW1 1024x784x256 TN+db", 256, 784, 1024)
only = sys.argv[1] if len(sys.argv) > 1 else ""
skip_torch = len(sys.argv) > 2 and sys.argv[2] == "1"
out = {}
for name, fl, ours, theirs in cases:
    if only and not name.startswith(only): continue
    out[name] = [fl, best(ours), 0.0 if skip_torch else best(theirs)]
print(json.dumps({"peak": float(_C.fma_peak_gflops()), "rows": out}))
"""


def run(env_extra: dict, only: str, skip_torch: bool = False) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS="1", **env_extra)
    p = subprocess.run([sys.executable, "-c", CHILD, only, "1" if skip_torch else "0"], env=env, capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def main() -> None:
    ab = sys.argv[sys.argv.index("--ab") + 1] if "--ab" in sys.argv else None
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else (3 if ab else 1)
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else ""
    variants = {"on": {}} if not ab else {"on": {}, "off": {ab: "0"}}
    best: dict = {}
    peak = 0.0
    for _ in range(rounds):
        for v, env in variants.items():
            res = run(env, only, "--no-torch" in sys.argv)
            peak = res["peak"]
            for name, (fl, us, tus) in res["rows"].items():
                b = best.setdefault(name, {"flops": fl, "torch": tus})
                b[v] = min(b.get(v, 1e18), us)
                b["torch"] = min(b["torch"], tus)
    print(f"1 thread, process CPU time, best of {rounds} round(s); FMA peak {peak:.1f} GFLOP/s")
    hdr = f"{'GEMM':30} {'on us':>9} {'GF/s':>6} {'%pk':>5}"
    if ab:
        hdr += f" {'off us':>9} {'on/off':>7}"
    print(hdr + f" {'torch us':>9} {'vs torch':>8}")
    for name, b in best.items():
        gf = b["flops"] / b["on"] / 1e3
        line = f"{name:30} {b['on']:9.1f} {gf:6.1f} {100 * gf / peak:5.1f}"
        if ab:
            line += f" {b['off']:9.1f} {b['on'] / b['off']:7.3f}"
        print(line + f" {b['torch']:9.1f} {b['on'] / b['torch'] if b['torch'] else 0.0:8.3f}")


if __name__ == "__main__":
    main()
