"""A/B of the gemm-smallk changes, in one command (< 1 min):

    python bench/bench_smallk.py [--threads 1] [--rounds 2]

1. Linear's bias added in the GEMM kernel's store of C (default) vs in a second pass over C
   (NNFAST_GEMM_STORE_BIAS=0), at GPT-nano's K = 48 shapes (M = 1024), with torch.addmm.
2. Conv2d forward with the weight packed once per call (default) vs once per image
   (NNFAST_CONV_PREPACK=0), with torch's conv2d.
Each variant runs in its own process (the switches are read once); the variants alternate for
--rounds rounds and each figure is the best over them. 1 thread: process CPU time; more: wall.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = r"""
import sys, time, numpy as np, torch, nnfast
from nnfast._native import _C
nt = int(sys.argv[1])
nnfast.set_num_threads(nt); torch.set_num_threads(nt)
clock = time.process_time if nt == 1 else time.perf_counter
def best(fn, n, rep=7):
    for _ in range(3): fn()
    b = 1e9
    for _ in range(rep):
        t = clock()
        for _ in range(n): fn()
        b = min(b, (clock() - t) / n)
    return b * 1e6
r = np.random.default_rng(0)
for K, N in [(48, 144), (48, 48), (48, 192), (192, 48)]:
    x = r.standard_normal((1024, K), dtype=np.float32); w = r.standard_normal((N, K), dtype=np.float32)
    b = r.standard_normal(N, dtype=np.float32); out = np.empty((1024, N), np.float32)
    tx, tw, tb = map(torch.from_numpy, (x, w, b)); tout = torch.empty(1024, N)
    print(f"linear 1024x{K}->{N} +bias", best(lambda: _C.gemm(out, x, w.T, 1.0, 0.0, b), 50),
          best(lambda: torch.addmm(tb, tx, tw.t(), out=tout), 50))
for (n, c, oc, h) in [(64, 32, 64, 28), (64, 64, 128, 14)]:
    x = r.standard_normal((n, c, h, h), dtype=np.float32); w = r.standard_normal((oc, c, 3, 3), dtype=np.float32)
    b = r.standard_normal(oc, dtype=np.float32); y = np.empty((n, oc, h, h), np.float32)
    tx, tw, tb = map(torch.from_numpy, (x, w, b))
    print(f"conv fwd N{n} {c}->{oc} {h}x{h} 3x3", best(lambda: _C.conv2d_forward(y, x, w, b, (1, 1), (1, 1), (1, 1), 1), 3, 5),
          best(lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=1), 3, 5))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    variants = {"new": {}, "old": {"NNFAST_GEMM_STORE_BIAS": "0", "NNFAST_CONV_PREPACK": "0"}}
    res: dict[str, dict[str, list[float]]] = {}
    for _ in range(a.rounds):
        for name, extra in variants.items():
            env = dict(os.environ, OMP_WAIT_POLICY="passive", **extra)
            out = subprocess.run([sys.executable, "-c", CHILD, str(a.threads)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                label, ours, torch_us = line.rsplit(" ", 2)
                cur = res.setdefault(label, {}).setdefault(name, [1e18, 1e18])
                cur[0] = min(cur[0], float(ours)); cur[1] = min(cur[1], float(torch_us))
    clock = "CPU time" if a.threads == 1 else "wall"
    print(f"threads {a.threads}, best of {a.rounds} rounds x 7, {clock}, us")
    print(f"{'case':34s} {'new':>10s} {'old':>10s} {'new/old':>8s} {'torch':>10s} {'new/torch':>9s}")
    for label, v in res.items():
        n, o = v["new"][0], v["old"][0]
        t = min(v["new"][1], v["old"][1])
        print(f"{label:34s} {n:10.1f} {o:10.1f} {n / o:8.2f} {t:10.1f} {n / t:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
