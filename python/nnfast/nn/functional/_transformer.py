"""``multi_head_attention_forward``: the functional form of ``nn.MultiheadAttention``.

Every product runs on nnfast's kernels: the in-projections and the out-projection are
``F.linear`` (one GEMM with the bias fused in its epilogue; self-attention's packed q/k/v
projection is ONE GEMM of width 3E), the attention itself is ``F.scaled_dot_product_attention``
when no weights are asked for, else nnfast's batched GEMM + softmax kernels (as PyTorch does).
Head split and merge are reshapes / transposes, except on self-attention's fast path
(``packed_self_attention``: the packed q/k/v GEMM output goes to the attention kernel as strided
views and the heads come back merged, in one autograd node). Semantics follow ``torch.nn.functional``:
bool masks mean "True = masked out" here (they become 0 / -inf float masks), ``key_padding_mask``
is merged into ``attn_mask``, ``is_causal`` is a hint that needs ``attn_mask``.
"""
from __future__ import annotations

import math

import numpy as np
from typing import Any, Optional

from ..._dispatch import kernels, xp_of
from ..._random import next_kernel_seed
from ...autograd.function import Function
from ...tensor import Tensor
from ._attention import _offset_table, _offsets, scaled_dot_product_attention
from ._checks import check_float, check_tensor
from ._activation import softmax
from ._dropout import dropout as _dropout
from ._linear import linear
from ._misc import pad

__all__ = ["multi_head_attention_forward", "packed_self_attention"]

_OP = "MultiheadAttention"


def _fail(what: str) -> ValueError:
    return ValueError(f"[{_OP}] expected {what}")


def _canonical_mask(mask: Optional[Tensor], name: str, dtype: object) -> Optional[Tensor]:
    """A bool mask (True = not allowed) becomes the additive float mask 0 / -inf of ``dtype``;
    a float mask is kept (cast to ``dtype``); other dtypes are refused."""
    if mask is None:
        return None
    import nnfast
    if not isinstance(mask, Tensor):
        raise TypeError(f"[{_OP}] expected {name} to be a Tensor, got {type(mask).__name__}")
    if mask.dtype == nnfast.bool:
        out: Tensor = nnfast.zeros(tuple(mask.shape), dtype=dtype, device=mask.device)
        filled: Tensor = out.masked_fill(mask, float("-inf"))
        return filled
    if not mask.is_floating_point():
        raise TypeError(f"[{_OP}] expected {name} of dtype bool or floating point, got {mask.dtype}")
    return mask if mask.dtype == dtype else mask.to(dtype)


def _shape_check(query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor],
                 attn_mask: Optional[Tensor], num_heads: int) -> bool:
    """PyTorch's _mha_shape_check: True for batched (L, N, E) inputs, False for unbatched (L, E)."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise _fail(f"key and value to be 3-D for a 3-D (batched) query, got {key.ndim}-D and {value.ndim}-D")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise _fail(f"a 2-D key_padding_mask (N, S) for batched inputs, got {key_padding_mask.ndim}-D")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise _fail(f"a 2-D or 3-D attn_mask for batched inputs, got {attn_mask.ndim}-D")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise _fail(f"key and value to be 2-D for a 2-D (unbatched) query, got {key.ndim}-D and {value.ndim}-D")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise _fail(f"a 1-D key_padding_mask (S,) for unbatched inputs, got {key_padding_mask.ndim}-D")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise _fail(f"a 2-D or 3-D attn_mask for unbatched inputs, got {attn_mask.ndim}-D")
            want = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != want:
                raise _fail(f"a 3-D attn_mask of shape {want}, got {tuple(attn_mask.shape)}")
        return False
    raise _fail(f"an unbatched 2-D or batched 3-D query, got a {query.ndim}-D query")


def _in_projection_packed(q: Tensor, k: Tensor, v: Tensor, w: Tensor,
                          b: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """q/k/v projections by the packed (3E, E) weight: one GEMM for self-attention, two when
    key is value (encoder-decoder attention), else three."""
    E = q.shape[-1]
    if k is v:
        if q is k:
            qkv = linear(q, w, b)
            q_, k_, v_ = qkv.chunk(3, -1)
            return q_, k_, v_
        b_q = b_kv = None
        if b is not None:
            b_q, b_kv = b[:E], b[E:]
        kv = linear(k, w[E:], b_kv)
        k_, v_ = kv.chunk(2, -1)
        return linear(q, w[:E], b_q), k_, v_
    w_q, w_k, w_v = w.chunk(3)
    b_q = b_k = b_v = None
    if b is not None:
        b_q, b_k, b_v = b.chunk(3)
    return linear(q, w_q, b_q), linear(k, w_k, b_k), linear(v, w_v, b_v)


_SDPA = "scaled_dot_product_attention"  # the kernels it runs


def _heads(a: Any, H: int, batch_first: bool) -> tuple[Any, Any, Any]:
    """q, k, v of a packed (N, L, 3E) (batch_first) or (L, N, 3E) array as (N, H, L, D) strided
    views: the kernel reads them in place (row stride 3E, or N * 3E), no copy."""
    if not batch_first:
        a = a.transpose(1, 0, 2)
    N, L, E3 = a.shape
    a5 = a.reshape(N, L, 3, H, E3 // (3 * H))  # splits the unit-stride dim: always a view
    return a5[:, :, 0].transpose(0, 2, 1, 3), a5[:, :, 1].transpose(0, 2, 1, 3), a5[:, :, 2].transpose(0, 2, 1, 3)


# False: the CPU takes the CuPy path's split / merge copies too (bench/gpt_parts.py's in-process A/B).
_HEADS_IN_PLACE = True

# Per-head matrix offsets of (N, H, rows, D) strided views, by layout (they repeat every step).
_MAT_OFFSETS: dict[tuple[Any, ...], np.ndarray] = {}


def _mat_table(*views: Any) -> np.ndarray:
    """(len(views), N * H) int64 element offsets of the (rows, D) matrices of each (N, H, rows, D) view
    (from the view's own data pointer), cached by layout: the kernel's ``out_offsets``."""
    key = tuple((v.shape, v.strides, v.itemsize) for v in views)
    t = _MAT_OFFSETS.get(key)
    if t is None:
        t = np.stack([_offsets(v, v.shape[:2], 1) for v in views])
        t.setflags(write=False)
        if len(_MAT_OFFSETS) >= 256:
            _MAT_OFFSETS.clear()
        _MAT_OFFSETS[key] = t
    return t


def _split(a: Any, H: int, batch_first: bool) -> Any:
    """(N, L, H * D) or (L, N, H * D) merged heads as an (N, H, L, D) view."""
    s = a.shape
    a4 = a.reshape(s[0], s[1], H, s[2] // H)
    return a4.transpose(0, 2, 1, 3) if batch_first else a4.transpose(1, 2, 0, 3)


class PackedSelfAttentionFunction(Function):
    """out = merge_heads(sdpa(split_heads(qkv))) in one node. The fused attention kernel reads the
    heads of qkv in place (strided views); on the CPU it also writes the merged output, reads the
    output gradient and writes dq / dk / dv into their thirds of one packed gradient in place
    (``out_offsets``: no split / merge copies, no zero-filled buffers, no per-head index, permute or
    reshape nodes in the graph). CuPy arrays take one merge copy forward and split copies backward."""

    @staticmethod
    def forward(ctx: Any, qkv: Any, H: int, batch_first: bool, scale: float, is_causal: bool, dropout_p: float,
                seed: int, offset: int) -> Any:
        xp = xp_of(qkv)
        if qkv.strides[-1] != qkv.itemsize:  # the kernel wants unit column stride
            qkv = xp.ascontiguousarray(qkv)
        q, k, v = _heads(qkv, H, batch_first)
        N, _, L, D = q.shape
        offs = _offset_table((N, H), (1, 1), q, k, v, None)
        lse = xp.empty((N * H, L), dtype=qkv.dtype)
        ctx.offs, ctx.shape, ctx.batch_first = offs, qkv.shape, batch_first
        ctx.args = (scale, is_causal, dropout_p, seed, offset)
        K = kernels(_SDPA, qkv)
        ctx.in_place = xp is np and _HEADS_IN_PLACE
        if ctx.in_place:  # the kernel writes the heads merged, (N, L, H, D) or (L, N, H, D)
            merged = np.empty(qkv.shape[:2] + (H * D,), dtype=qkv.dtype)
            o4 = _split(merged, H, batch_first)
            K.sdpa_forward(o4, lse, q, k, v, None, offs, scale, is_causal, dropout_p, seed, offset,
                           out_offsets=_mat_table(o4))
            ctx.save_for_backward(q, k, v, merged, lse)  # merged is the output: its version is tracked
            return merged
        out = xp.empty((N * H, L, D), dtype=qkv.dtype)
        K.sdpa_forward(out, lse, q, k, v, None, offs, scale, is_causal, dropout_p, seed, offset)
        ctx.save_for_backward(q, k, v, out, lse)
        o4 = out.reshape(N, H, L, D)  # heads merged: one copy
        merged = o4.transpose(0, 2, 1, 3) if batch_first else o4.transpose(2, 0, 1, 3)
        return xp.ascontiguousarray(merged).reshape(qkv.shape[:2] + (H * D,))

    @staticmethod
    def backward(ctx: Any, dout: Any) -> Any:
        q, k, v, out, lse = ctx.saved_tensors
        xp = xp_of(dout)
        N, H, L, D = q.shape
        bf = ctx.batch_first
        K = kernels(_SDPA, dout)
        if ctx.in_place:
            if dout.shape[-1] > 1 and dout.strides[-1] != dout.itemsize:
                dout = np.ascontiguousarray(dout)
            dqkv = np.empty(ctx.shape, dtype=out.dtype)
            dq, dk, dv = _heads(dqkv, H, bf)
            dy, o4 = _split(dout, H, bf), _split(out, H, bf)
            K.sdpa_backward(dq, dk, dv, None, dy, o4, lse, q, k, v, None, ctx.offs, *ctx.args,
                            out_offsets=_mat_table(dq, dk, dv, dy, o4))
            return dqkv, None, None, None, None, None, None, None
        d4 = dout.reshape(dout.shape[:2] + (H, D))
        dsplit = xp.ascontiguousarray(d4.transpose(0, 2, 1, 3) if bf else d4.transpose(1, 2, 0, 3))
        dq, dk, dv = (xp.empty((N * H, L, D), dtype=out.dtype) for _ in range(3))
        K.sdpa_backward(dq, dk, dv, None, dsplit.reshape(N * H, L, D), out, lse, q, k, v, None, ctx.offs, *ctx.args)
        dqkv = xp.empty(ctx.shape[:2] + (3, H, D), dtype=out.dtype)
        for i, g in enumerate((dq, dk, dv)):
            g4 = g.reshape(N, H, L, D)
            dqkv[:, :, i] = g4.transpose(0, 2, 1, 3) if bf else g4.transpose(2, 0, 1, 3)
        return dqkv.reshape(ctx.shape), None, None, None, None, None, None, None


def packed_self_attention(qkv: Tensor, num_heads: int, is_causal: bool = False, dropout_p: float = 0.0,
                          scale: Optional[float] = None, batch_first: bool = True) -> Tensor:
    """Multi-head self-attention on the packed output of one q/k/v projection GEMM, heads split
    and merged inside: the same values as splitting ``qkv`` (last dim: q, k, v, each ``num_heads``
    heads of D = E / num_heads features, as ``in_proj_weight`` / nanoGPT's ``c_attn`` lay it out)
    into (N, num_heads, L, D) heads, ``scaled_dot_product_attention(q, k, v, None, dropout_p,
    is_causal, scale)`` and merging the heads back, in one autograd node on the fused kernel.

    Shape: qkv (N, L, 3E) if batch_first else (L, N, 3E); output (N, L, E) or (L, N, E).
    Defaults: is_causal=False, dropout_p=0.0, scale=None (1/sqrt(D)), batch_first=True.
    """
    op = "packed_self_attention"
    check_tensor(op, qkv, "qkv")
    check_float(op, qkv, "qkv")
    if qkv.ndim != 3:
        raise ValueError(f"[{op}] expected a 3-D qkv, got {qkv.ndim}-D")
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads <= 0:
        raise ValueError(f"[{op}] expected a positive int num_heads, got {num_heads!r}")
    if qkv.shape[-1] % (3 * num_heads) != 0:
        raise ValueError(f"[{op}] expected a last dim divisible by 3 * num_heads = {3 * num_heads}, "
                         f"got {qkv.shape[-1]}")
    dropout_p = float(dropout_p)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"[{op}] expected dropout_p in [0, 1), got {dropout_p}")
    D = qkv.shape[-1] // (3 * num_heads)
    s = (1.0 / math.sqrt(D) if D > 0 else 1.0) if scale is None else float(scale)
    seed, offset = next_kernel_seed() if dropout_p > 0.0 else (0, 0)
    out: Tensor = PackedSelfAttentionFunction.apply(qkv, num_heads, bool(batch_first), s, bool(is_causal), dropout_p,
                                                    seed, offset)
    return out


def multi_head_attention_forward(
    query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
    in_proj_weight: Optional[Tensor], in_proj_bias: Optional[Tensor], bias_k: Optional[Tensor],
    bias_v: Optional[Tensor], add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
    out_proj_bias: Optional[Tensor], training: bool = True, key_padding_mask: Optional[Tensor] = None,
    need_weights: bool = True, attn_mask: Optional[Tensor] = None, use_separate_proj_weight: bool = False,
    q_proj_weight: Optional[Tensor] = None, k_proj_weight: Optional[Tensor] = None,
    v_proj_weight: Optional[Tensor] = None, static_k: Optional[Tensor] = None, static_v: Optional[Tensor] = None,
    average_attn_weights: bool = True, is_causal: bool = False,
) -> tuple[Tensor, Optional[Tensor]]:
    """Multi-head attention: softmax(Q K^T / sqrt(head_dim) + mask) V per head, between an input
    projection (packed ``in_proj_weight`` or separate ``q/k/v_proj_weight``) and ``out_proj``.

    Masks: ``attn_mask`` bool (True = not allowed) or float (added to the scores), 2-D (L, S) or
    3-D (N*num_heads, L, S); ``key_padding_mask`` (N, S) bool (True = ignore that key) or float.
    ``is_causal`` is a hint that ``attn_mask`` is the causal mask (it then may be skipped).

    Shape: query (L, N, E) or unbatched (L, E); key (S, N, kdim); value (S, N, vdim); output
    (L, N, E); weights (N, L, S) averaged over heads, (N, num_heads, L, S) if not
    average_attn_weights, or None when need_weights=False.
    Defaults: training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
    use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None, v_proj_weight=None,
    static_k=None, static_v=None, average_attn_weights=True, is_causal=False.
    """
    is_batched = _shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not is_batched:
        # Keep "q is k is v" (self-attention's single GEMM) through the unsqueeze.
        same_kv = key is value
        same_qk = query is key
        query = query.unsqueeze(1)
        key = query if same_qk else key.unsqueeze(1)
        value = key if same_kv else value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    if embed_dim != embed_dim_to_check:
        raise _fail(f"query's embedding dim {embed_dim_to_check}, got {embed_dim}")
    if num_heads <= 0 or embed_dim % num_heads != 0:
        raise _fail(f"embed_dim ({embed_dim}) divisible by num_heads ({num_heads})")
    head_dim = embed_dim // num_heads
    if key.shape[1] != bsz or value.shape[1] != bsz:
        raise _fail(f"query, key and value with the same batch size, got {bsz}, {key.shape[1]}, {value.shape[1]}")
    if value.shape[0] != src_len:
        raise _fail(f"key and value with the same sequence length, got {src_len} and {value.shape[0]}")
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise _fail("q_proj_weight, k_proj_weight and v_proj_weight when use_separate_proj_weight=True")
        for name, w, x in (("query", q_proj_weight, query), ("key", k_proj_weight, key),
                           ("value", v_proj_weight, value)):
            if w.ndim != 2 or w.shape[0] != embed_dim or w.shape[1] != x.shape[-1]:
                raise _fail(f"{name} feature size {w.shape[1]} (its projection weight {tuple(w.shape)}), "
                            f"got {x.shape[-1]}")
    else:
        if in_proj_weight is None:
            raise _fail("in_proj_weight when use_separate_proj_weight=False")
        if tuple(in_proj_weight.shape) != (3 * embed_dim, embed_dim):
            raise _fail(f"in_proj_weight of shape {(3 * embed_dim, embed_dim)}, got {tuple(in_proj_weight.shape)}")
        if tuple(key.shape) != tuple(value.shape) or key.shape[-1] != embed_dim:
            raise _fail(f"key and value of shape (S, N, {embed_dim}), got {tuple(key.shape)} and {tuple(value.shape)}")
    if static_k is not None or static_v is not None:
        raise NotImplementedError(f"[{_OP}] static_k / static_v are not supported")

    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError(f"[{_OP}] expected attn_mask with the is_causal hint (the causal mask itself)")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the kernel applies causality itself
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", query.dtype)
        if key_padding_mask is not None:
            is_causal = False  # the merged mask is no longer the causal one

    if (not use_separate_proj_weight and query is key and key is value and not need_weights and attn_mask is None
            and key_padding_mask is None and bias_k is None and bias_v is None and not add_zero_attn):
        # Self-attention fast path: one q/k/v GEMM, the heads read in place by the kernel and
        # merged on the way out (one autograd node between the two projections).
        assert in_proj_weight is not None
        qkv = linear(query, in_proj_weight, in_proj_bias)  # (L, N, 3E)
        out = packed_self_attention(qkv, num_heads, is_causal, dropout_p if training else 0.0, batch_first=False)
        out = linear(out, out_proj_weight, out_proj_bias)
        return (out.squeeze(1) if not is_batched else out), None

    if not use_separate_proj_weight:
        assert in_proj_weight is not None
        q, k, v = _in_projection_packed(query, key, value, in_proj_weight, in_proj_bias)
    else:
        assert q_proj_weight is not None and k_proj_weight is not None and v_proj_weight is not None
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = in_proj_bias.chunk(3)
        q, k, v = linear(query, q_proj_weight, b_q), linear(key, k_proj_weight, b_k), linear(value, v_proj_weight, b_v)

    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise _fail(f"a 2-D attn_mask of shape {(tgt_len, src_len)}, got {tuple(attn_mask.shape)}")
            attn_mask = attn_mask.unsqueeze(0)
        elif tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
            raise _fail(f"a 3-D attn_mask of shape {(bsz * num_heads, tgt_len, src_len)}, "
                        f"got {tuple(attn_mask.shape)}")

    import nnfast
    if bias_k is not None and bias_v is not None:
        k = nnfast.cat([k, bias_k.reshape(1, 1, embed_dim).expand(1, bsz, embed_dim)])
        v = nnfast.cat([v, bias_v.reshape(1, 1, embed_dim).expand(1, bsz, embed_dim)])
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    elif bias_k is not None or bias_v is not None:
        raise _fail("bias_k and bias_v both given or both None")

    # Heads: (L, N, E) -> (N*H, L, D), batch-major as the batched GEMM wants it.
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)

    if add_zero_attn:
        zeros = nnfast.zeros(bsz * num_heads, 1, head_dim, dtype=k.dtype, device=k.device)
        k = nnfast.cat([k, zeros], 1)
        v = nnfast.cat([v, zeros], 1)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]

    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise _fail(f"key_padding_mask of shape {(bsz, src_len)}, got {tuple(key_padding_mask.shape)}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm

    if not training:
        dropout_p = 0.0

    if need_weights:
        from ...ops.linalg import matmul
        scores = matmul(q * math.sqrt(1.0 / head_dim), k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = softmax(scores, dim=-1)
        if dropout_p > 0.0:
            weights = _dropout(weights, dropout_p)
        out = matmul(weights, v)  # (N*H, L, D)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not is_batched:
            out, weights = out.squeeze(1), weights.squeeze(0)
        return out, weights

    if attn_mask is not None:
        if attn_mask.shape[0] == 1:
            attn_mask = attn_mask.unsqueeze(0)                       # (1, 1, L, S): broadcast
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(tgt_len * bsz, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if not is_batched:
        out = out.squeeze(1)
    return out, None
