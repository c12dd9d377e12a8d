"""Python-side argument checks shared by the functional ops (the C++
bindings re-check dtype, shapes and memory before any kernel runs)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...tensor import Tensor

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_tensor(op: str, x: Any, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expected {name} to be an nnfast.Tensor, got {type(x).__name__}")
    return x


def check_float(op: str, x: Any, name: str = "input") -> Tensor:
    # Runs several times per op: attribute lookups kept to the minimum.
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expected {name} to be an nnfast.Tensor, got {type(x).__name__}")
    t = x
    d = t._data
    if d.dtype not in _FLOATS:
        raise TypeError(f"[{op}] expected {name} to be float32 or float64, got {d.dtype}")
    if type(d) is np.ndarray and not d.flags.aligned:  # kernels load whole elements
        raise ValueError(f"[{op}] expected {name} aligned to its itemsize ({d.itemsize} bytes), got a misaligned "
                         "array (a view at an odd byte offset); pass a copy")
    return t


def check_same_dtype(op: str, ref: Tensor, other: Any, name: str) -> None:
    if other is not None and other.dtype != ref.dtype:
        raise TypeError(f"[{op}] expected {name} to have dtype {ref.dtype}, got {other.dtype}")


def check_same_device(op: str, ref: Tensor, *others: Any) -> None:
    kind = type(ref._data)
    for o in others:
        # Same array type and NumPy: both on the CPU (no device objects built).
        if o is None or (type(o._data) is kind and kind is np.ndarray):
            continue
        if o.device != ref.device:
            raise RuntimeError(f"[{op}] expected all tensors on one device, got {ref.device} and {o.device}")
