"""``scaled_dot_product_attention``: one fused kernel call forward, one backward.

The kernel (csrc/cpu/attention.cpp) walks key blocks with an online softmax and never
materialises the L x S score matrix: forward saves only the output and one log-sum-exp per
query row, backward recomputes the probabilities tile by tile. Batch dims broadcast without
copies: each operand reaches the kernel as its own array plus one element offset per
batch-head (a broadcast dim repeats an offset; grouped-query attention repeats a key / value
head's offset for the query heads that share it). Gradients come back per batch-head and are
summed here over the broadcast dims and shared heads.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..._dispatch import contiguous, kernels, xp_of
from ..._random import next_kernel_seed
from ...autograd.function import Function
from ...tensor import Tensor
from ._checks import check_float, check_same_device, check_tensor
from ...amp.autocast_mode import amp_op

__all__ = ["scaled_dot_product_attention"]

_OP = "scaled_dot_product_attention"


def _offsets(a: Any, batch: tuple[int, ...], rep: int) -> np.ndarray:
    """Element offsets (flattened ``batch``, C order) of the matrices of ``a`` (.., rows, cols),
    its batch dims broadcast to ``batch``; ``rep`` > 1 repeats each head (dim -3) that many times."""
    nb = a.ndim - 2
    item = a.itemsize
    off = np.zeros(a.shape[:nb], dtype=np.int64)
    for d in range(nb):
        step = np.arange(a.shape[d], dtype=np.int64) * (a.strides[d] // item)
        off = off + step.reshape((-1,) + (1,) * (nb - 1 - d))
    if rep > 1:
        off = np.repeat(off, rep, axis=-1)
    return np.broadcast_to(off, batch).reshape(-1)


# The offset table depends only on shapes and strides, which repeat every training step:
# building it costs a dozen small NumPy calls, so it is kept (read-only) per layout.
_OFFSET_TABLES: dict[tuple[Any, ...], np.ndarray] = {}


def _offset_table(batch: tuple[int, ...], reps: tuple[int, int], q: Any, k: Any, v: Any, mask: Any) -> np.ndarray:
    """(4, BH) element offsets of q, k, v and mask (row 3 is 0 without a mask), cached by layout."""
    key = (batch, reps, q.itemsize, q.shape, q.strides, k.shape, k.strides, v.shape, v.strides,
           None if mask is None else (mask.shape, mask.strides, mask.itemsize))
    offs = _OFFSET_TABLES.get(key)
    if offs is None:
        offs = np.zeros((4, math.prod(batch)), dtype=np.int64)
        offs[0] = _offsets(q, batch, 1)
        offs[1] = _offsets(k, batch, reps[0])
        offs[2] = _offsets(v, batch, reps[1])
        if mask is not None:
            offs[3] = _offsets(mask, batch, 1)
        offs.setflags(write=False)
        if len(_OFFSET_TABLES) >= 256:  # bounded: shapes that vary every call (generation) must not grow it
            _OFFSET_TABLES.clear()
        _OFFSET_TABLES[key] = offs
    return offs


def _unit_last(a: Any) -> Any:
    """``a`` itself when its last dim has unit stride (the kernel's requirement), else a contiguous copy."""
    return a if a.shape[-1] <= 1 or a.size == 0 or a.strides[-1] == a.itemsize else contiguous(a)


def _sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast gradient back to ``shape`` (leading dims, then dims of size 1)."""
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


class SDPAFunction(Function):
    """out = dropout(softmax(scale q k^T + mask)) v per batch-head; saved: out and the row lse.

    Backward (kernel): P = exp(scale q k^T + mask - lse), D = rowsum(dout * out),
    dv = Pd^T dout, dS = P (dropout'(dout v^T) - D), dq = scale dS k, dk = scale dS^T q,
    dmask = dS; here the per-batch-head gradients are summed back to each input's shape.
    ``bf16`` (autocast, float32 arrays on the CPU): the ``*_bf16`` kernels, every tile product on the
    bf16 GEMM (operands rounded to bf16, float32 accumulation; softmax and its statistics float32).
    """

    @staticmethod
    def forward(ctx: Any, q: Any, k: Any, v: Any, mask: Any, batch: tuple[int, ...], reps: tuple[int, int],
                scale: float, is_causal: bool, dropout_p: float, seed: int, offset: int,
                bf16: bool = False) -> Any:
        K = kernels(_OP, q, k, v)
        xp = xp_of(q)
        L, S, E, Ev = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
        qa, ka, va = _unit_last(q), _unit_last(k), _unit_last(v)
        BH = math.prod(batch)
        ma = None
        if mask is not None:
            ma = xp.broadcast_to(mask, mask.shape[:-2] + (L, S))
        offs = _offset_table(batch, reps, qa, ka, va, ma)
        out = xp.empty((BH, L, Ev), dtype=q.dtype)
        lse = xp.empty((BH, L), dtype=q.dtype)
        (K.sdpa_forward_bf16 if bf16 else K.sdpa_forward)(out, lse, qa, ka, va, ma, offs, scale, is_causal,
                                                          dropout_p, seed, offset)
        ctx.save_for_backward(qa, ka, va, ma, out, lse)
        ctx.offs, ctx.batch, ctx.reps, ctx.bf16 = offs, batch, reps, bf16
        ctx.shapes = (q.shape, k.shape, v.shape, None if mask is None else mask.shape)
        ctx.args = (scale, is_causal, dropout_p, seed, offset)
        return out.reshape(batch + (L, Ev))

    @staticmethod
    def backward(ctx: Any, dout: Any) -> Any:
        qa, ka, va, ma, out, lse = ctx.saved_tensors
        need = ctx.needs_input_grad
        xp = xp_of(dout)
        BH, L, Ev = out.shape
        S, E = ka.shape[-2], qa.shape[-1]
        dq = xp.empty((BH, L, E), dtype=out.dtype)
        dk = xp.empty((BH, S, E), dtype=out.dtype)
        dv = xp.empty((BH, S, Ev), dtype=out.dtype)
        want_mask = ma is not None and ma.dtype != np.bool_ and need[3]
        dm = xp.empty((BH, L, S), dtype=out.dtype) if want_mask else None
        K = kernels(_OP, dout)
        (K.sdpa_backward_bf16 if ctx.bf16 else K.sdpa_backward)(dq, dk, dv, dm, contiguous(dout).reshape(BH, L, Ev),
                                                                out, lse, qa, ka, va, ma, ctx.offs, *ctx.args)
        qs, ks, vs, ms = ctx.shapes
        b = ctx.batch

        def back(g: Any, shape: tuple[int, ...], rep: int) -> Any:
            g = g.reshape(b + g.shape[1:])
            if rep > 1:  # query heads sharing a key / value head: sum each group of rep heads
                g = _sum_to(g, shape[:-3] + (shape[-3] * rep,) + shape[-2:])
                g = g.reshape(g.shape[:-3] + (shape[-3], rep) + g.shape[-2:]).sum(axis=-3)
            return xp.ascontiguousarray(_sum_to(g, shape))

        return (back(dq, qs, 1) if need[0] else None, back(dk, ks, ctx.reps[0]) if need[1] else None,
                back(dv, vs, ctx.reps[1]) if need[2] else None, back(dm, ms, 1) if want_mask else None,
                None, None, None, None, None, None, None, None)


@amp_op("scaled_dot_product_attention")
def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T * scale + mask) V over the last two dims, in one fused kernel.

    ``attn_mask``: bool (True = takes part) or float (added to the scores), broadcastable to
    (*, L, S). ``is_causal``: key j takes part in query row i iff j <= i (torch.tril of the
    L x S matrix); an error together with ``attn_mask``. A query row with no key taking part
    gives zeros (and zero gradients), as PyTorch's CPU kernel. ``dropout_p`` drops attention
    probabilities with nnfast's counter-based RNG (``nnfast.manual_seed``); the mask is
    regenerated in backward, never stored. ``enable_gqa``: key / value with fewer heads (dim -3)
    than query, each shared by query heads // their heads consecutive query heads.

    Shape: query (*, L, E), key (*, S, E), value (*, S, Ev) with broadcastable batch dims *;
    output (*, L, Ev).
    Defaults: attn_mask=None, dropout_p=0.0, is_causal=False, scale=None (1/sqrt(E)), enable_gqa=False.
    """
    return sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)


def sdpa(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
         is_causal: bool = False, scale: Optional[float] = None, enable_gqa: bool = False, *,
         bf16: bool = False) -> Tensor:
    """scaled_dot_product_attention's checks and node; ``bf16``: the bf16 tile products (autocast's
    route, amp/_attention_bf16.py; float32 CPU tensors only)."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(_OP, t, name)
        check_float(_OP, t, name)
    check_same_device(_OP, query, key, value, attn_mask)
    for name, t in (("key", key), ("value", value)):
        if t.dtype != query.dtype:
            raise TypeError(f"[{_OP}] expected {name} to have dtype {query.dtype}, got {t.dtype}")
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"[{_OP}] expected query, key and value of rank >= 2, got ranks "
                         f"{query.ndim}, {key.ndim}, {value.ndim}")
    L, E = query.shape[-2], query.shape[-1]
    S = key.shape[-2]
    if key.shape[-1] != E:
        raise ValueError(f"[{_OP}] expected key with the feature size of query ({E}), got {key.shape[-1]}")
    if value.shape[-2] != S:
        raise ValueError(f"[{_OP}] expected value with as many rows as key ({S}), got {value.shape[-2]}")
    dropout_p = float(dropout_p)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"[{_OP}] expected dropout_p in [0, 1), got {dropout_p}")
    if attn_mask is not None:
        check_tensor(_OP, attn_mask, "attn_mask")
        if is_causal:
            raise ValueError(f"[{_OP}] expected attn_mask and is_causal not both set")
        if attn_mask.dtype != np.bool_ and attn_mask.dtype != query.dtype:
            raise TypeError(f"[{_OP}] expected attn_mask of dtype bool or {query.dtype}, got {attn_mask.dtype}")
        if attn_mask.ndim < 2:
            raise ValueError(f"[{_OP}] expected attn_mask of rank >= 2, got rank {attn_mask.ndim}")
    reps = [1, 1]
    kb, vb = list(key.shape[:-2]), list(value.shape[:-2])
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3 and value.ndim >= 3:
        H = query.shape[-3]
        for i, (name, t, tb) in enumerate((("key", key, kb), ("value", value, vb))):
            h = t.shape[-3]
            if h != H:
                if h == 0 or H % h:
                    raise ValueError(f"[{_OP}] expected the heads of query ({H}) to be a multiple of the heads "
                                     f"of {name} ({h}) with enable_gqa")
                reps[i] = H // h
                tb[-1] = H
    try:
        batch = tuple(np.broadcast_shapes(tuple(query.shape[:-2]), tuple(kb), tuple(vb)))
        if attn_mask is not None:
            np.broadcast_shapes(tuple(attn_mask.shape), batch + (L, S))
            if len(attn_mask.shape) > len(batch) + 2 or \
                    np.broadcast_shapes(tuple(attn_mask.shape), batch + (L, S)) != batch + (L, S):
                raise ValueError
    except ValueError:
        raise ValueError(f"[{_OP}] expected query {tuple(query.shape)}, key {tuple(key.shape)}, value "
                         f"{tuple(value.shape)}" + ("" if attn_mask is None else
                                                     f" and attn_mask {tuple(attn_mask.shape)}") +
                         " with broadcastable batch dims") from None
    s = (1.0 / math.sqrt(E) if E > 0 else 1.0) if scale is None else float(scale)
    seed, offset = next_kernel_seed() if dropout_p > 0.0 else (0, 0)
    return SDPAFunction.apply(query, key, value, attn_mask, batch, (reps[0], reps[1]), s, bool(is_causal),
                              dropout_p, seed, offset, bool(bf16))
