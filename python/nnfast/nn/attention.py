"""``MultiheadAttention`` with PyTorch's parameters and layout, on nnfast's GEMM and the
scaled dot-product attention kernel (``F.multi_head_attention_forward``)."""
from __future__ import annotations

from typing import Any, Optional

from ..tensor import Tensor
from . import functional as F
from . import init
from ._params import add_parameters
from .linear import Linear
from .module import Module

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """``nn.Linear`` under the name PyTorch gives ``MultiheadAttention.out_proj``'s class (as in
    PyTorch, it lives in this module and is not exported from ``nnfast.nn``).

    Shape: input (*, in_features); output (*, out_features).
    Defaults: bias=True, device=None, dtype=None, activation=None.
    """


class MultiheadAttention(Module):
    """Multi-head attention: MultiHead(Q, K, V) = Concat(head_1..head_h) W_O, head_i =
    Attention(Q W_Q_i, K W_K_i, V W_V_i), with PyTorch's parameters: ``in_proj_weight`` (3E, E)
    when kdim == vdim == embed_dim, else ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim),
    ``v_proj_weight`` (E, vdim); ``in_proj_bias`` (3E,); ``out_proj`` (a Linear E -> E);
    ``bias_k`` / ``bias_v`` (1, 1, E) when add_bias_kv. Initialised as PyTorch: xavier_uniform_
    projections, zero biases, xavier_normal_ bias_k / bias_v.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns (output, weights or None). With
    need_weights=False the attention runs in ``F.scaled_dot_product_attention`` (the fast path).

    Shape: query (L, N, E) ((N, L, E) if batch_first, or unbatched (L, E)); key (S, N, kdim);
    value (S, N, vdim); output like query; weights (N, L, S) (or (N, num_heads, L, S) when
    average_attn_weights=False).
    Defaults: dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False, kdim=None (embed_dim),
    vdim=None (embed_dim), batch_first=False, device=None, dtype=None.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: Optional[int] = None,
                 vdim: Optional[int] = None, batch_first: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"[MultiheadAttention] expected positive embed_dim and num_heads, "
                             f"got {embed_dim} and {num_heads}")
        if embed_dim % num_heads != 0:
            raise ValueError(f"[MultiheadAttention] expected embed_dim ({embed_dim}) divisible by "
                             f"num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"[MultiheadAttention] expected dropout in [0, 1], got {dropout}")
        self.embed_dim = int(embed_dim)
        self.kdim = int(kdim) if kdim is not None else self.embed_dim
        self.vdim = int(vdim) if vdim is not None else self.embed_dim
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.head_dim = self.embed_dim // self.num_heads
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            add_parameters(self, dtype, in_proj_weight=(3 * E, E), q_proj_weight=None, k_proj_weight=None,
                           v_proj_weight=None)
        else:
            add_parameters(self, dtype, in_proj_weight=None, q_proj_weight=(E, E), k_proj_weight=(E, self.kdim),
                           v_proj_weight=(E, self.vdim))
        add_parameters(self, dtype, in_proj_bias=(3 * E,) if bias else None)
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, dtype=dtype)
        if add_bias_kv:
            add_parameters(self, dtype, bias_k=(1, 1, E), bias_v=(1, 1, E))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()
        if device is not None:
            self.to(device)

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Optional[Tensor]]:
        is_batched = query.ndim == 3
        if self.batch_first and is_batched:
            # Transpose once per distinct tensor so "query is key is value" survives (one GEMM).
            if key is value:
                if query is key:
                    query = key = value = query.transpose(1, 0)
                else:
                    query, key = query.transpose(1, 0), key.transpose(1, 0)
                    value = key
            else:
                query, key, value = query.transpose(1, 0), key.transpose(1, 0), value.transpose(1, 0)
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight,
            self.out_proj.bias, training=self.training, key_padding_mask=key_padding_mask,
            need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal)
        if self.batch_first and is_batched:
            out = out.transpose(1, 0)
        return out, weights

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            s += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.batch_first:
            s += ", batch_first=True"
        return s

