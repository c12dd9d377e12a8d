"""bfloat16 <-> float32 / float64 conversions on nnfast's kernel (``csrc/cpu/convert.cpp``).

Storage stays ``ml_dtypes.bfloat16``: a real NumPy dtype, so bf16 tensors print, index, view,
save (safetensors ``BF16``) and hand themselves to NumPy / PyTorch code like any other array;
a raw ``uint16`` view would make every one of those a special case. Only the conversions, which
training runs on every step, are nnfast's own: round to nearest even from the exact source value,
subnormals kept, NaN kept (quiet), multithreaded.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import kernels
from ..tensor import _BFLOAT16

_WIDE = (np.dtype(np.float32), np.dtype(np.float64))


def convert_bf16(a: Any, dtype: Optional[np.dtype[Any]]) -> Optional[Any]:
    """``a`` converted to ``dtype`` when exactly one side is bfloat16 and the other float32 / float64
    and ``a`` is a NumPy array (the CPU kernel); None for every other cast (the caller's job)."""
    src = getattr(a, "dtype", None)
    if _BFLOAT16 is None or dtype is None or type(a) is not np.ndarray:
        return None
    if not ((src == _BFLOAT16 and dtype in _WIDE) or (dtype == _BFLOAT16 and src in _WIDE)):
        return None
    if not (a.flags.c_contiguous and a.flags.aligned):
        a = np.ascontiguousarray(a)  # one copy; the kernel reads unit stride
        if not a.flags.aligned:
            a = a.copy()
    out = np.empty(a.shape, dtype=dtype)
    kernels("convert", out, a).convert(out, a)
    return out
