"""L1 / L2 penalties on parameters, as differentiable scalars (nnfast).

    loss = criterion(model(x), y) + 1e-4 * nn.regularization.l2_penalty(model.parameters())

Both sums run in one kernel call over all the given tensors (accumulated in
double, in a fixed order) and their gradients in one more:
d l1 / dp = sign(p) (0 at 0), d l2 / dp = 2 p. ``l2_penalty`` is the plain
sum of squares (no 1/2), so ``lam * l2_penalty`` matches SGD weight decay
``2 * lam``.
"""
from __future__ import annotations

from typing import Any, Iterable, Union, cast

import numpy as np

from .._dispatch import contiguous, kernels, xp_of
from ..autograd.function import Function
from ..tensor import Tensor
from .module import Module

__all__ = ["l1_penalty", "l2_penalty"]

_L1, _L2 = 1, 2


class PenaltyFunction(Function):
    """s = sum_i sum |p_i| (kind 1) or sum_i sum p_i^2 (kind 2)."""

    @staticmethod
    def forward(ctx: Any, kind: int, *params: Any) -> Any:
        op = "l2_penalty" if kind == _L2 else "l1_penalty"
        K = kernels(op, *params)
        arrays = [contiguous(p) for p in params]
        total = K.penalty_sum(arrays, kind)
        ctx.save_for_backward(*arrays)
        ctx.kind = kind
        return xp_of(arrays[0]).asarray(total, dtype=arrays[0].dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        arrays = ctx.saved_tensors
        need = ctx.needs_input_grad[1:]
        xs = [a for a, n in zip(arrays, need) if n]
        grads = [xp_of(a).empty_like(a) for a in xs]
        if xs:
            op = "l2_penalty" if ctx.kind == _L2 else "l1_penalty"
            kernels(op, *xs).penalty_backward(grads, xs, ctx.kind, float(g))
        it = iter(grads)
        return (None,) + tuple(next(it) if n else None for n in need)


def _params(op: str, parameters: Union[Tensor, Module, Iterable[Tensor]]) -> list[Tensor]:
    items: Iterable[Tensor]
    if isinstance(parameters, Tensor):
        items = [parameters]
    elif isinstance(parameters, Module):
        items = parameters.parameters()
    else:  # (a cast: Module's __getattr__ makes mypy keep it in the union here)
        items = cast("Iterable[Tensor]", parameters)
    ps = [p for p in items if p is not None]
    if not ps:
        raise ValueError(f"[{op}] expected at least one parameter")
    for p in ps:
        if not isinstance(p, Tensor):
            raise TypeError(f"[{op}] expected nnfast.Tensor parameters, got {type(p).__name__}")
        if p.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"[{op}] expected float32 or float64 parameters, got {p.dtype}")
    return ps


def l1_penalty(parameters: Union[Tensor, Module, Iterable[Tensor]]) -> Tensor:
    """sum over the parameters of sum |p| (a 0-d tensor of the first parameter's dtype)."""
    return PenaltyFunction.apply(_L1, *_params("l1_penalty", parameters))


def l2_penalty(parameters: Union[Tensor, Module, Iterable[Tensor]]) -> Tensor:
    """sum over the parameters of sum p^2 (a 0-d tensor of the first parameter's dtype)."""
    return PenaltyFunction.apply(_L2, *_params("l2_penalty", parameters))
