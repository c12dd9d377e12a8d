"""Per-op dispatch cost, best-of estimator: the minimum over 15 loops of 2000 calls each, nnfast and
PyTorch alternated in one process. The minimum is what survives a loaded machine (the median of
`nnfast bench --only overhead` does not, there). Usage:

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/overhead_min.py [case ...]

Cases: raw, relu, "relu rec", linear, lin+ce, add, "lin+ce fwd+bwd" (default: all).
TORCH_THREADS (default 2) sets PyTorch's threads. ``--cpu``: process CPU time, both libraries on one
thread (survives a loaded machine better than wall time; use it for before/after A/Bs of two trees).
"""
import os
import sys
import time

import numpy as np
import torch

import nnfast
import nnfast.nn.functional as F

tf = torch.nn.functional
CPU = "--cpu" in sys.argv
torch.set_num_threads(1 if CPU else int(os.environ.get("TORCH_THREADS", "2")))
if CPU:
    nnfast.set_num_threads(1)
_clock = time.process_time_ns if CPU else time.perf_counter_ns


def best_us(fn, n=2000, rep=15):
    for _ in range(200):
        fn()
    best = float("inf")
    for _ in range(rep):
        t0 = _clock()
        for _ in range(n):
            fn()
        best = min(best, (_clock() - t0) / n / 1e3)
    return best


x, xg = nnfast.randn(4, 8), nnfast.randn(4, 8, requires_grad=True)
w, b, t = nnfast.randn(3, 8), nnfast.randn(3), nnfast.tensor([0, 1, 2, 0])
wg, bg = nnfast.randn(3, 8, requires_grad=True), nnfast.randn(3, requires_grad=True)
tx, tw, tb = torch.randn(4, 8), torch.randn(3, 8), torch.randn(3)
txg, tt = tx.clone().requires_grad_(), torch.tensor([0, 1, 2, 0])
twg, tbg = tw.clone().requires_grad_(), tb.clone().requires_grad_()
raw = np.empty((4, 8), np.float32)
CASES = [
    ("raw", lambda: nnfast._C.act_forward(raw, x._data, 1), None),
    ("relu", lambda: F.relu(x), lambda: tf.relu(tx)),
    ("relu rec", lambda: F.relu(xg), lambda: tf.relu(txg)),
    ("linear", lambda: F.linear(x, w, b), lambda: tf.linear(tx, tw, tb)),
    ("lin+ce", lambda: F.cross_entropy(F.linear(x, w, b), t), lambda: tf.cross_entropy(tf.linear(tx, tw, tb), tt)),
    ("add", lambda: x + x, lambda: tx + tx),
    ("lin+ce fwd+bwd", lambda: F.cross_entropy(F.linear(x, wg, bg), t).backward(),
     lambda: tf.cross_entropy(tf.linear(tx, twg, tbg), tt).backward()),
]
if __name__ == "__main__":
    sel = [a for a in sys.argv[1:] if a != "--cpu"]
    for name, ours, theirs in CASES:
        if sel and name not in sel:
            continue
        a = best_us(ours)
        bt = best_us(theirs) if theirs else float("nan")
        print(f"{name:15s} nnfast {a:7.2f} us   torch {bt:7.2f} us   ratio {a / bt:5.2f}")
