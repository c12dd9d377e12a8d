"""Per-op dispatch cost from Python on tiny tensors (where the kernel itself is ~free).

Measures the full path a user pays: argument checks, the tape, the binding's
checks, GIL release and the kernel call, in microseconds per op.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .common import median_time, torch_or_none


def run(quick: bool = False) -> list[dict[str, Any]]:
    import nnfast
    import nnfast.nn.functional as F

    x = nnfast.randn(4, 8)
    xg = nnfast.randn(4, 8, requires_grad=True)
    w, b = nnfast.randn(3, 8), nnfast.randn(3)
    t = nnfast.tensor([0, 1, 2, 0])
    raw = np.empty((4, 8), np.float32)
    wg, bg = nnfast.randn(3, 8, requires_grad=True), nnfast.randn(3, requires_grad=True)
    cases = [
        ("raw binding act_forward (4x8)", lambda: nnfast._C.act_forward(raw, x._data, 1), None),
        ("F.relu (4x8), no grad", lambda: F.relu(x), "relu"),
        ("F.relu (4x8), recording", lambda: F.relu(xg), "relu"),
        ("F.linear (4x8 -> 3)", lambda: F.linear(x, w, b), "linear"),
        ("F.linear + F.cross_entropy (4x8 -> 3)", lambda: F.cross_entropy(F.linear(x, w, b), t), "ce"),
        ("tensor add (4x8)", lambda: x + x, "add"),
        # a training step's loss in miniature: the tape recorded, walked back, grads accumulated
        ("F.linear + F.cross_entropy, forward + backward", lambda: F.cross_entropy(F.linear(x, wg, bg), t).backward(),
         "ce_train"),
    ]
    torch = torch_or_none()
    if torch is not None:
        tx, tw, tb = torch.randn(4, 8), torch.randn(3, 8), torch.randn(3)
        txg = tx.clone().requires_grad_()
        tt = torch.tensor([0, 1, 2, 0])
        tf = torch.nn.functional
        twg, tbg = tw.clone().requires_grad_(), tb.clone().requires_grad_()
        tmap = {"relu": lambda: tf.relu(tx), "linear": lambda: tf.linear(tx, tw, tb),
                "ce": lambda: tf.cross_entropy(tf.linear(tx, tw, tb), tt), "add": lambda: tx + tx,
                "ce_train": lambda: tf.cross_entropy(tf.linear(tx, twg, tbg), tt).backward()}
        tmap_rec = {"relu": lambda: tf.relu(txg)}
    rows = []
    for name, fn, key in cases:
        us = median_time(fn, repeats=5 if quick else 9, warmup=50, min_time=0.02) * 1e6
        row: dict[str, Any] = {"op": name, "nnfast_us": us}
        if torch is not None and key is not None:
            tfn = tmap_rec[key] if "recording" in name else tmap[key]
            row["torch_us"] = median_time(tfn, repeats=5 if quick else 9, warmup=50, min_time=0.02) * 1e6
            row["ratio"] = us / row["torch_us"]
        rows.append(row)
    return rows
