"""Matrix products on nnfast's GEMM: the raw broadcasting matmul and its autograd Function.

Every float product runs in ``nnfast._C.gemm`` (one 2-D product) or ``nnfast._C.bmm`` (a strided
batched GEMM); transposed and strided operands reach the kernels as strides, never as copies.
Batch dims broadcast by stride 0 (``broadcast_to``), so a shared matrix is not repeated in memory.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._dispatch import kernels, xp_of
from .basic_ops import _aligned, unbroadcast
from .function import Function

__all__ = ["matmul_raw", "bmm_raw", "MatMul"]


def _float_pair(a: Any, b: Any) -> bool:
    return bool(a.dtype == b.dtype and a.dtype in (np.float32, np.float64))


def bmm_raw(a: Any, b: Any, out: Any = None, alpha: float = 1.0, beta: float = 0.0) -> Any:
    """out[i] = alpha * a[i] @ b[i] + beta * out[i] for 3-D arrays of equal batch (stride 0 broadcasts)."""
    if out is None:
        out = xp_of(a).empty((a.shape[0], a.shape[1], b.shape[2]), dtype=a.dtype)
    kernels("bmm", out, a, b).bmm(out, a, b, alpha, beta)
    return out


def _fold_batch(x: Any, batch: tuple[int, ...]) -> Any:
    """``x`` broadcast to ``batch + x.shape[-2:]`` as one 3-D array (a view when the batch
    strides merge, as for contiguous or fully broadcast operands; else a copy)."""
    xp = xp_of(x)
    full = xp.broadcast_to(x, batch + x.shape[-2:])
    return full.reshape((-1,) + x.shape[-2:])


def _batched(a2: Any, b2: Any) -> Any:
    """(..., M, K) @ (..., K, N) with broadcast batch dims, through one batched GEMM."""
    m, n = a2.shape[-2], b2.shape[-1]
    if b2.ndim == 2 and a2.flags.c_contiguous:
        # A stack of rows times one matrix is one tall GEMM.
        out2 = xp_of(a2).empty((int(np.prod(a2.shape[:-1])), n), dtype=a2.dtype)
        kernels("matmul", out2, a2, b2).gemm(out2, a2.reshape(-1, a2.shape[-1]), b2, 1.0, 0.0)
        return out2.reshape(a2.shape[:-1] + (n,))
    batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    out = bmm_raw(_fold_batch(a2, batch), _fold_batch(b2, batch))
    return out.reshape(batch + (m, n))


def matmul_raw(a: Any, b: Any, op: str = "matmul") -> Any:
    """torch.matmul on arrays: 1-D operands gain (and lose) a unit dim, batch dims broadcast."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"[{op}] expected both operands to have at least one dimension, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"[{op}] expected matching inner dimensions, got shapes {tuple(a.shape)} @ "
                         f"{tuple(b.shape)}")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"[{op}] expected broadcastable batch dimensions, got shapes {tuple(a.shape)} @ "
                         f"{tuple(b.shape)}") from None
    if not _float_pair(a, b):
        if a.dtype == b.dtype and a.dtype.name == "bfloat16":
            from ..amp.autocast_mode import bf16_matmul_raw

            return bf16_matmul_raw(a, b, matmul_raw)  # the bf16 GEMM (fp32 accumulation)
        return a @ b  # integer / mixed products stay general user arithmetic (tests/test_error_table.py)
    a2, b2 = _aligned(a2), _aligned(b2)
    if a2.ndim == 2 and b2.ndim == 2:
        out = xp_of(a).empty((a2.shape[0], b2.shape[1]), dtype=a.dtype)
        kernels("matmul", out, a2, b2).gemm(out, a2, b2, 1.0, 0.0)
    else:
        out = _batched(a2, b2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


def _mT(x: Any) -> Any:
    return xp_of(x).swapaxes(x, -1, -2)


class MatMul(Function):
    """torch.matmul with gradients: dA = g @ B^T, dB = A^T @ g, summed over broadcast batch dims."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return matmul_raw(a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        xp = xp_of(g)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # b's axis first: for vector @ vector g is 0-d, and () -> (1,) -> (1, 1).
        g2 = xp.expand_dims(g, -1) if b.ndim == 1 else g
        g2 = xp.expand_dims(g2, -2) if a.ndim == 1 else g2
        da = db = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(matmul_raw(g2, _mT(b2)), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # dB of a shared matrix: one GEMM over the stacked rows instead of a batch sum.
                k = a2.shape[-1]
                db = matmul_raw(_mT(xp.ascontiguousarray(a2).reshape(-1, k)),
                                xp.ascontiguousarray(g2).reshape(-1, g2.shape[-1])).reshape(b.shape)
            else:
                db = unbroadcast(matmul_raw(_mT(a2), g2), b2.shape).reshape(b.shape)
        return da, db
