"""Adam writing the bf16 weight copies in its pass (``adam_step(..., bf16_copies=...)``) against
Adam followed by separate ``_C.convert`` passes (what an autocast forward does otherwise), on the
784-1024-1024-10 MLP's params (1.8M), same process, alternated, caches disturbed by a 32 MB pass
before each call. Process CPU time (use OMP_WAIT_POLICY=passive); NT threads (default 1).

    NT=1 OMP_WAIT_POLICY=passive NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_bf16_adam_copy.py
"""
import os
import time

import ml_dtypes
import numpy as np

from nnfast import _C

BF = np.dtype(ml_dtypes.bfloat16)
_C.set_num_threads(int(os.environ.get("NT", "1")))
rng = np.random.default_rng(0)
shapes = [(1024, 784), (1024,), (1024, 1024), (1024,), (10, 1024), (10,)]
ps = [rng.standard_normal(s).astype(np.float32) * 0.01 for s in shapes]
gs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
ms = [np.zeros(s, np.float32) for s in shapes]
vs = [np.zeros(s, np.float32) for s in shapes]
cps = [np.empty(s, BF) if len(s) == 2 else None for s in shapes]  # the weights' copies
flush = np.zeros(8 << 20, np.float32)


def adam(copies):
    kw = {} if copies is None else {"bf16_copies": copies}
    _C.adam_step(ps, gs, ms, vs, None, [5] * len(ps), 1e-6, 0.9, 0.999, 1e-8, 0.0, False, False, False, **kw)


def convert():
    for p, c in zip(ps, cps):
        if c is not None:
            _C.convert(c, p)


cases = {"adam alone": lambda: adam(None), "adam + copies (fused)": lambda: adam(cps),
         "adam, then convert": lambda: (adam(None), convert()), "convert alone": convert}
res: dict[str, list[float]] = {k: [] for k in cases}
for r in range(int(os.environ.get("ROUNDS", 40))):
    for k in (list(cases) if r % 2 == 0 else list(cases)[::-1]):
        flush += 1
        t = time.process_time()
        cases[k]()
        res[k].append(time.process_time() - t)
for k, v in res.items():
    print(f"{k:24s} best {min(v) * 1e3:.3f} ms  median {np.median(v) * 1e3:.3f} ms")
