"""bf16 copies of float32 weights that Adam keeps up to date (the autocast linear's weight cast).

Under autocast a linear reads its float32 weight rounded to bf16. Converting it in every forward
is a pass over all the weights each step; instead the first forward registers its cast here, and
Adam's kernel (``adam_step(..., bf16_copies=...)``) rounds each updated param into that copy in
the same pass as the update, while the values are still in cache. A copy is valid while its
weight keeps the same array and version: the optimizer records the version its step leaves; any
other in-place write (``mul_``, ``load_state_dict``, another optimizer) bumps the version and the
next forward converts afresh. Entries die with the weight's array (a weak reference).
"""
from __future__ import annotations

import os
import sys
import weakref
from typing import Any, Optional

import numpy as np

from ..tensor import _BFLOAT16, Tensor
from ._convert import convert_bf16

# Whether forwards register copies and Adam writes them (NNFAST_BF16_ADAM_COPY=0 at import turns
# it off; tests and bench/bench_bf16_step.py flip ENABLED[0]); off, every forward converts the
# weights (the earlier behaviour). Same-run A/B, loaded machine, CPU time, 784-1024-1024-10 MLP:
# Adam + copies took 0.28-0.30 ms less than Adam + the separate conversions (1.8M params, 1 and 2
# threads); the bf16 step 1.6-5 % less than every other bf16 variant, in 3 runs of 3.
ENABLED = [os.environ.get("NNFAST_BF16_ADAM_COPY", "1") != "0"]

# id(weight array) -> [weakref to it, its version cell, the version the copy matches, bf16 copy]
_COPIES: dict[int, list[Any]] = {}


def weight_copy(weight: Tensor) -> Any:
    """The weight's float32 array rounded to bf16: the registered copy when it matches the weight's
    array and version, else a fresh conversion (registered for a leaf that requires grad)."""
    w = weight._data
    e = _COPIES.get(id(w))
    if e is not None and e[0]() is w and e[1] is weight._vc and e[2] == weight._vc[0]:
        return e[3]
    low = convert_bf16(w, _BFLOAT16)  # a float32 NumPy weight (the only kind the linear routes pass)
    if low is None:
        low = w.astype(_BFLOAT16)
    if ENABLED[0] and weight.requires_grad and weight.grad_fn is None and type(w) is np.ndarray:
        if e is None or e[0]() is not w:
            weakref.finalize(w, _COPIES.pop, id(w), None)
        _COPIES[id(w)] = [weakref.ref(w), weight._vc, weight._vc[0], low]
    return low


def adam_copies(params: list[Tensor], p_arrays: list[Any]) -> Optional[list[Any]]:
    """For one fused Adam call: per param its registered bf16 copy (the kernel writes the rounded
    update into it) or None; None when no param has one. A copy still held elsewhere (a graph kept
    with retain_graph saved it for backward) is replaced by a new array, never overwritten."""
    if not _COPIES or not ENABLED[0]:
        return None
    out: list[Any] = []
    for p, a in zip(params, p_arrays):
        w = p._data
        e = _COPIES.get(id(w))
        if e is None or e[0]() is not w or a is not w or e[1] is not p._vc:
            out.append(None)
            continue
        e[2] = -1  # invalid until copies_written: a failed step leaves no stale copy behind
        if sys.getrefcount(e[3]) > 2:  # this entry and getrefcount's argument
            e[3] = np.empty_like(e[3])
        out.append(e[3])
    return out if any(c is not None for c in out) else None


def copies_written(params: list[Tensor], copies: list[Any]) -> None:
    """After the kernel wrote ``copies``: each matches its param at the version the optimizer's
    step leaves (it bumps every stepped param's version by one right after the group's kernel)."""
    for p, c in zip(params, copies):
        if c is not None:
            _COPIES[id(p._data)][2] = p._vc[0] + 1
