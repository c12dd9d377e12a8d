"""The 784-128-10 batch-64 Adam step (nnfast.bench.step's model and step) timed in process CPU time,
both libraries on one thread, alternated, best-of: a figure that survives a loaded machine. With
``--prof``: nnfast's step under cProfile (the kernels against the Python around them). With
``--threads N`` (N > 1): both on N threads, wall time best-of (noise on a shared machine). Usage:

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/step_cpu.py [--prof] [--threads N] [--big]
"""
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import numpy as np  # noqa: E402
import torch  # noqa: E402

import nnfast  # noqa: E402
from nnfast.bench.step import nnfast_step_fn, torch_step_fn  # noqa: E402

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
CLOCK = time.process_time if THREADS == 1 else time.perf_counter
nnfast.set_num_threads(THREADS)
torch.set_num_threads(THREADS)
rng = np.random.default_rng(0)
# --big: the 784-1024-1024-10 batch-256 step (issue 18's second target) instead.
BIG = "--big" in sys.argv
sizes, batch = ((784, 1024, 1024, 10), 256) if BIG else ((784, 128, 10), 64)
x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], batch).astype(np.int64)
nnfast.manual_seed(0)
ours, theirs = nnfast_step_fn(sizes, x, y), torch_step_fn(torch, sizes, x, y)


def best_us(fn, n=5 if BIG else 100, rep=5):
    best = float("inf")
    for _ in range(rep):
        t0 = CLOCK()
        for _ in range(n):
            fn()
        best = min(best, (CLOCK() - t0) / n * 1e6)
    return best


for f in (ours, theirs):
    for _ in range(3 if BIG else 30):
        f()
a, b = float("inf"), float("inf")
for _ in range(4):
    a, b = min(a, best_us(ours)), min(b, best_us(theirs))
clock = "CPU" if THREADS == 1 else "wall"
print(f"{'-'.join(map(str, sizes))} batch {batch} Adam step, {THREADS} thread(s) {clock} time: nnfast {a:.1f} us  torch {b:.1f} us  ratio {a / b:.3f}")
if "--prof" in sys.argv:
    import cProfile
    import pstats

    cProfile.run("for _ in range(1000): ours()", "/tmp/step_cpu.prof")
    pstats.Stats("/tmp/step_cpu.prof").sort_stats("tottime").print_stats(15)
