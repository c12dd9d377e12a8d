"""scaled_dot_product_attention under autocast on the bf16 GEMM (issue 17).

Inside a cpu autocast region the fused attention kernel runs its tile products -- S = scale Q K^T
and O += P V forward; dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q backward -- on nnfast's bf16
GEMM (``sdpa_forward_bf16`` / ``sdpa_backward_bf16``): every operand, the P / dS tiles included,
is rounded to bf16 as the GEMM packs it (vdpbf16ps where the CPU has AVX512-BF16, the portable
convert + float32 path elsewhere) and products accumulate in float32. The online softmax, its
running max / sum, lse, D = rowsum(dO * O) and dS stay float32. The kernel stays fused (no L x S
buffer).

bf16 q / k / v outside autocast (``attention_bf16_inputs``, from autocast_mode's bf16-input branch) take
the same kernels, as torch runs bf16 attention in bf16, instead of the float32 kernel on widened inputs.

Dtypes follow PyTorch's autocast: float32 q / k / v reach the kernel as they are (rounding them
at packing gives the same values as autocast's bf16 cast, without a cast pass and a bf16 copy),
bf16 ones widened exactly; a float32 attn_mask is rounded to bf16 (autocast casts it too). The
output is bf16; gradients come back in each input's dtype.

``NNFAST_AMP_ATTENTION=0`` (read once at import; ``ENABLED[0]`` in process) keeps the previous
route: the bf16-rounded inputs widened to float32 through the float32 kernel, output rounded.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from ..tensor import _BFLOAT16, Tensor

ENABLED = [os.environ.get("NNFAST_AMP_ATTENTION", "1") != "0"]
OP = "scaled_dot_product_attention"

_F32 = np.dtype(np.float32)
_NAMES = ("query", "key", "value", "attn_mask")


def _operands(args: Any, kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """(q, k, v, attn_mask) wherever they were passed, and the other keyword arguments."""
    n = min(len(args), len(_NAMES))
    ops = list(args[:n]) + [kwargs.get(name) for name in _NAMES[n:]]
    rest = dict(kwargs)
    for name in _NAMES[n:]:
        rest.pop(name, None)
    return ops, rest


def attention_bf16_inputs(args: Any, kwargs: dict[str, Any]) -> Optional[Tensor]:
    """Outside autocast, bf16 q / k / v on the CPU (a model cast with .to(bfloat16), as torch runs
    them): the bf16 kernels, output and gradients bf16. None (the caller's route, float32 kernel on
    the widened inputs) unless all three are bf16 and the mask is absent, bool or bf16."""
    (q, k, v, mask), _ = _operands(args, kwargs)
    for t in (q, k, v):
        if not isinstance(t, Tensor) or t.is_cuda or t._data.dtype != _BFLOAT16:
            return None
    if isinstance(mask, Tensor) and mask._data.dtype not in (np.dtype(np.bool_), _BFLOAT16):
        return None
    return attention_autocast(args, kwargs)


def attention_autocast(args: Any, kwargs: dict[str, Any]) -> Optional[Tensor]:
    """The op on the bf16 kernels, or None (float64 / cuda operands: the caller's generic route)."""
    from ..nn.functional._attention import sdpa
    from .autocast_mode import _narrow, _to_lower, _widen

    (q, k, v, mask), rest = _operands(args, kwargs)
    for t in (q, k, v):
        if not isinstance(t, Tensor) or t.is_cuda or t._data.dtype not in (_F32, _BFLOAT16):
            return None
    if isinstance(mask, Tensor) and mask._data.dtype == _F32:
        mask = _to_lower(mask)  # autocast rounds a float mask to bf16, as the other operands
    q, k, v = _widen(q), _widen(k), _widen(v)
    if isinstance(mask, Tensor):
        mask = _widen(mask)
    y = sdpa(q, k, v, mask, *args[4:], bf16=True, **rest)
    return _narrow(y)
