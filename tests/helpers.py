"""Shared helpers for the op-table tests."""
from __future__ import annotations

import numpy as np

import nnfast


def noncontig(a: np.ndarray) -> np.ndarray:
    """A non-contiguous view equal to ``a`` whose gaps hold NaN (so reading padding shows)."""
    if a.ndim == 0:
        return a
    from nnfast._dispatch import xp_of

    big = xp_of(a).full(a.shape[:-1] + (2 * a.shape[-1],), np.nan, dtype=a.dtype)  # on a's device
    big[..., ::2] = a
    v = big[..., ::2]
    assert not v.flags.c_contiguous or a.size <= 1
    return v


def leaf(a: np.ndarray, requires_grad: bool = True) -> nnfast.Tensor:
    """A leaf tensor sharing ``a``'s memory (keeps non-contiguous views as they are)."""
    return nnfast.from_numpy(a).requires_grad_(requires_grad)


def randn(rng: np.random.Generator, *shape: int, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def assert_close(actual, expected, rtol=1e-6, atol=1e-8, msg=""):
    a = np.asarray(actual.detach() if isinstance(actual, nnfast.Tensor) else actual, dtype=np.float64)
    np.testing.assert_allclose(a, np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol, err_msg=msg)
