"""``scaled_dot_product_attention``.

PLACEHOLDER (replaced by the fused kernel before this lands): a composite of nnfast's batched
GEMM, softmax and dropout, so the attention modules can be built and tested against it.
"""
from __future__ import annotations

import math
from typing import Optional

from ...tensor import Tensor

__all__ = ["scaled_dot_product_attention"]


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T * scale + mask) V over the last two dims.

    Shape: query (*, L, E), key (*, S, E), value (*, S, Ev); output (*, L, Ev).
    Defaults: attn_mask=None, dropout_p=0.0, is_causal=False, scale=None (1/sqrt(E)), enable_gqa=False.
    """
    import nnfast
    from ...ops.linalg import matmul
    from ._activation import softmax
    from ._dropout import dropout
    L, S = query.shape[-2], key.shape[-2]
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = matmul(query, key.transpose(-2, -1)) * s
    if is_causal:
        keep = nnfast.ones(L, S, dtype=nnfast.bool, device=query.device).tril()
        scores = scores.masked_fill(keep.logical_not(), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == nnfast.bool:
            scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            scores = scores + attn_mask
    p = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        p = dropout(p, dropout_p)
    return matmul(p, value)
