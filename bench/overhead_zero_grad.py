"""zero_grad(set_to_none=False) alone: one multi-tensor kernel call (NNFAST_FUSED_ZERO, default) against
the fill one gradient at a time, alternated in one process, best-of wall time, on the grads of the
step benchmarks' MLPs (784-128-10 and 784-1024-1024-10). Usage:

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/overhead_zero_grad.py [--threads N]
"""
import sys
import time

import numpy as np

import nnfast
import nnfast.nn as nn
from nnfast.nn import module

if "--threads" in sys.argv:
    nnfast.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))


def best_us(opt, n, rep=9):
    best = float("inf")
    for _ in range(rep):
        t0 = time.perf_counter()
        for _ in range(n):
            opt.zero_grad(set_to_none=False)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


for sizes, n in (((784, 128, 10), 300), ((784, 1024, 1024, 10), 30)):
    model = nn.Sequential(*[nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:])])
    opt = nnfast.optim.SGD(model.parameters(), lr=0.1)
    times = {True: float("inf"), False: float("inf")}
    for _ in range(5):
        for fused in (True, False):
            for p in model.parameters():  # correctness first: every grad cleared in place
                p.grad = nnfast.from_numpy(np.full(p.shape, np.nan, np.float32))
            module._FUSED_ZERO[0] = fused
            opt.zero_grad(set_to_none=False)
            assert all(not p.grad.numpy().any() for p in model.parameters())
            times[fused] = min(times[fused], best_us(opt, n))
    module._FUSED_ZERO[0] = True
    mb = sum(p.numel() for p in model.parameters()) * 4 / 1e6
    print(f"{'-'.join(map(str, sizes)):17s} {mb:6.2f} MB, {nnfast.get_num_threads()} thread(s): one call "
          f"{times[True]:8.2f} us ({mb / times[True] * 1e3:5.1f} GB/s), one by one {times[False]:8.2f} us, "
          f"ratio {times[True] / times[False]:.2f}")
