"""Pointwise activations (forward and backward in nnfast's kernels)."""
from __future__ import annotations

from typing import Any

from ..._dispatch import contiguous, kernels, xp_of
from ...autograd.function import Function
from ...tensor import Tensor
from . import _act_codes as codes
from ._checks import check_float

__all__ = ["relu", "activation"]


class ActivationFunction(Function):
    """y = act(x); backward saves y when act' is a function of y, else x."""

    @staticmethod
    def forward(ctx: Any, x: Any, act: int, a: float, b: float) -> Any:
        K = kernels("activation", x)
        x = contiguous(x)
        y = xp_of(x).empty_like(x)
        K.act_forward(y, x, act, a, b)
        ctx.save_for_backward(y if act in codes.GRAD_FROM_OUTPUT else x)
        ctx.act, ctx.a, ctx.b = act, a, b
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        (saved,) = ctx.saved_tensors
        dy = contiguous(dy)
        dx = xp_of(dy).empty_like(dy)
        kernels("activation", dy).act_backward(dx, dy, saved, ctx.act, ctx.a, ctx.b)
        return dx


def activation(input: Tensor, name: Any) -> Tensor:
    """Apply a pointwise activation given by name (see ``_act_codes.resolve``)."""
    check_float("activation", input)
    code, a, b = codes.resolve(name)
    return ActivationFunction.apply(input, code, a, b)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(0, x) elementwise."""
    check_float("relu", input)
    return ActivationFunction.apply(input, codes.RELU, 0.0, 0.0)
