"""Dropout: inverted scaling, a counter-based mask drawn inside the kernel.

The mask of a call is a pure function of (seed, offset, element index): the
seed comes from ``nnfast.manual_seed`` and each call takes a fresh offset
(``nnfast._random.next_kernel_seed``), so masks differ call to call and repeat
exactly after re-seeding. Backward regenerates the mask from the same
(seed, offset) instead of storing it.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..._dispatch import contiguous, kernels, xp_of
from ..._random import kernel_first, next_kernel_seed
from ...autograd import grad_mode
from ...autograd.function import Function
from ...tensor import Tensor
from ._checks import check_float
from ...amp.autocast_mode import amp_op

__all__ = ["dropout", "dropout1d", "dropout2d"]


class DropoutFunction(Function):
    """y = mask * x / (1 - p); dx = mask * dy / (1 - p) with the mask regenerated."""

    @staticmethod
    def forward(ctx: Any, x: Any, p: float, seed: int, offset: int, first: int) -> Any:
        K = kernels("dropout", x)
        x = contiguous(x)
        y = xp_of(x).empty_like(x)
        K.dropout_forward(y, x, p, seed, offset, first)
        ctx.p, ctx.seed, ctx.offset, ctx.first = p, seed, offset, first
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        dy = contiguous(dy)
        dx = xp_of(dy).empty_like(dy)
        kernels("dropout", dy).dropout_backward(dx, dy, ctx.p, ctx.seed, ctx.offset, ctx.first)
        return dx


@amp_op("dropout")
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """dropout(x) = x * m / (1 - p), m_i ~ Bernoulli(1 - p): zero each element with probability ``p``
    and scale the rest by 1 / (1 - p).

    Identity (the input itself) when ``training`` is False or ``p == 0``; all zeros (with a zero
    gradient) when ``p == 1``. The mask comes from a counter-based RNG seeded by
    ``nnfast.manual_seed``.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: p=0.5, training=True, inplace=False (True writes into ``input`` when no gradient is
    recorded for it, see ``F.relu``).
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[dropout] expected a dropout probability between 0 and 1, got {p}")
    check_float("dropout", input)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    seed, offset = next_kernel_seed()
    first = kernel_first(input.numel())  # a data-parallel rank's slice of the global batch's mask
    if inplace and not (grad_mode.is_grad_enabled() and input.requires_grad):
        K = kernels("dropout", input._data)
        x = input._data
        if not x.flags.writeable:
            raise ValueError("[dropout] expected a writeable input for the in-place op, got a read-only array")
        if x.flags.c_contiguous:
            K.dropout_forward(x, x, p, seed, offset, first)
        else:
            tmp = contiguous(x)
            K.dropout_forward(tmp, tmp, p, seed, offset, first)
            x[...] = tmp
        input._vc[0] += 1  # an in-place write: a backward that saved input sees it
        return input
    return DropoutFunction.apply(input, p, seed, offset, first)


def _feature_dropout(op: str, input: Tensor, p: float, training: bool, inplace: bool, batched_ndim: int) -> Tensor:
    """Channel-wise dropout: one Bernoulli(1 - p) draw per (n, c) channel, drawn by the dropout kernel
    on a (N, C, 1, ...) tensor of ones, then broadcast over the channel by the tensor multiply (its
    gradient is dy times the same mask)."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[{op}] expected a dropout probability between 0 and 1, got {p}")
    check_float(op, input)
    nd = input.ndim
    if nd not in (batched_ndim - 1, batched_ndim):
        names = "(C, L)" if batched_ndim == 3 else "(C, H, W)"
        raise ValueError(f"[{op}] expected a {batched_ndim - 1}-D {names} or {batched_ndim}-D "
                         f"(N, {names[1:]} input, got {nd}-D")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    lead = 1 if nd == batched_ndim - 1 else 2
    if batched_ndim == 4 and nd == 3:
        lead = 2  # PyTorch: a 3-D input to dropout2d is taken as (N, C, L) (channel-wise 1-d dropout)
        warnings.warn("dropout2d: received a 3-D input; it is taken as (N, C, L) (channel-wise 1-d dropout), "
                      "as PyTorch does. Use dropout1d for that, or pass a 4-D (N, C, H, W) input.", UserWarning,
                      stacklevel=3)
    mask_shape = tuple(input.shape[:lead]) + (1,) * (nd - lead)
    xp = xp_of(input._data)
    ones = Tensor._wrap(xp.ones(mask_shape, dtype=input.dtype))
    mask = dropout(ones, p, True, inplace=True)
    if inplace and not (grad_mode.is_grad_enabled() and input.requires_grad):
        x = input._data
        if not x.flags.writeable:
            raise ValueError(f"[{op}] expected a writeable input for the in-place op, got a read-only array")
        out = input * mask
        x[...] = out._data
        input._vc[0] += 1
        return input
    return input * mask


@amp_op("dropout1d")
def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel-wise dropout: zero each whole channel input[n, c, :] with probability ``p`` and scale
    the kept ones by 1 / (1 - p).

    Shape: input (N, C, L) or (C, L); output the same shape.
    Defaults: p=0.5, training=True, inplace=False.
    """
    return _feature_dropout("dropout1d", input, p, training, inplace, 3)


@amp_op("dropout2d")
def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel-wise dropout: zero each whole feature map input[n, c, :, :] with probability ``p`` and
    scale the kept ones by 1 / (1 - p). A 3-D input is taken as (N, C, L), as PyTorch does.

    Shape: input (N, C, H, W) or (N, C, L); output the same shape.
    Defaults: p=0.5, training=True, inplace=False.
    """
    return _feature_dropout("dropout2d", input, p, training, inplace, 4)
