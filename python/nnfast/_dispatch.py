"""Picks the kernel module for the device an array lives on.

A kernel missing on a backend raises NotImplementedError; nothing silently
falls back to NumPy or to another device.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._native import _C

_cuda_module: Any = None


def is_cupy(a: Any) -> bool:
    return type(a).__module__.startswith("cupy")


def xp_of(a: Any) -> Any:
    """The array module (numpy or cupy) that owns ``a``."""
    if isinstance(a, np.ndarray):
        return np
    if is_cupy(a):
        import cupy

        return cupy
    return np


def kernels(op: str, *arrays: Any) -> Any:
    """Kernel module serving ``arrays``; they must all live on one device."""
    ndarray = np.ndarray
    for a in arrays:  # fast path: every array is a NumPy array (no list, no generator)
        if a is not None and type(a) is not ndarray:
            break
    else:
        return _C
    on_gpu = [is_cupy(a) for a in arrays if a is not None]
    if any(on_gpu):
        if not all(on_gpu):
            raise RuntimeError(f"[{op}] expected all tensors on the same device, got cpu and cuda")
        raise NotImplementedError(f"[{op}] has no kernel on cuda in this build")
    return _C


def contiguous(a: np.ndarray) -> np.ndarray:
    """A C-contiguous view, copying only when needed (layout, not math)."""
    if isinstance(a, np.generic):  # arithmetic on 0-d arrays gives NumPy scalars; kernels take arrays
        return np.asarray(a)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)
