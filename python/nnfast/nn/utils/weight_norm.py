"""Weight normalization (Salimans & Kingma, 2016) as PyTorch's
``torch.nn.utils.weight_norm``: the parameter ``name`` is replaced by
``name_g`` (magnitude) and ``name_v`` (direction), and a forward pre-hook
recomputes ``name = name_g * name_v / ||name_v||`` before every forward.
The norm, the product and their gradients run in nnfast's kernels."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..._dispatch import contiguous, kernels, xp_of
from ...autograd import grad_mode
from ...autograd.function import ACCUMULATED, Function
from ...tensor import Tensor
from ..module import Module, Parameter
from ._reparam import remove_reparam, reparam_target, restore_parameter

__all__ = ["weight_norm", "remove_weight_norm", "WeightNorm"]


def _layout(shape: tuple[int, ...], dim: Optional[int]) -> tuple[int, int, int]:
    """(N, C, L) view of a tensor whose norm is taken over all dims but ``dim``
    (``dim`` None or -1: over the whole tensor, as in PyTorch)."""
    size = int(np.prod(shape)) if shape else 1
    if dim is None or dim == -1:
        return 1, 1, size
    return int(np.prod(shape[:dim])), int(shape[dim]), int(np.prod(shape[dim + 1:]))


def _norm_dim(op: str, dim: Optional[int], ndim: int) -> int:
    if dim is None or dim == -1:
        return -1
    d = int(dim)
    if d < -1:
        d += ndim
    if not 0 <= d < ndim:
        raise ValueError(f"[{op}] expected dim in [-{ndim}, {ndim}) or None, got {dim}")
    return d


def _g_shape(shape: tuple[int, ...], dim: int) -> tuple[int, ...]:
    if dim == -1:
        return ()
    return tuple(s if i == dim else 1 for i, s in enumerate(shape))


class WeightNormFunction(Function):
    """w = g * v / ||v|| with the norm over every dim of v except ``dim``.

    Backward per kept index c with s = sum(dw * v): dg = s / ||v||,
    dv = g / ||v|| * (dw - v * s / ||v||^2).
    """

    @staticmethod
    def forward(ctx: Any, v: Any, g: Any, dim: int) -> Any:
        K = kernels("weight_norm", v, g)
        N, C, L = _layout(v.shape, dim)
        v3 = contiguous(v).reshape(N, C, L)
        g1 = contiguous(g).reshape(C)
        w = xp_of(v).empty_like(v3)
        norm = xp_of(v).empty((C,), dtype=np.float64)
        K.weight_norm_forward(w, norm, v3, g1)
        ctx.save_for_backward(v3, g1, norm)
        ctx.vshape, ctx.gshape = v.shape, g.shape
        return w.reshape(v.shape)

    @staticmethod
    def backward(ctx: Any, dw: Any) -> Any:
        v3, g1, norm = ctx.saved_tensors
        K = kernels("weight_norm", dw)
        xp = xp_of(dw)
        need = ctx.needs_input_grad
        if not (need[0] or need[1]):
            return None, None
        dv = xp.empty_like(v3) if need[0] else None
        dg = dg_out = None  # dg accumulates in the kernel: into the existing .grad, or fresh zeros
        if need[1]:
            dg, dg_out = ctx.param_grad(1, xp, g1.shape, g1.dtype)
        K.weight_norm_backward(dv, dg, contiguous(dw).reshape(v3.shape), v3, g1, norm)
        if dg_out is not None and dg_out is not ACCUMULATED:
            dg_out = dg_out.reshape(ctx.gshape)
        return (None if dv is None else dv.reshape(ctx.vshape)), dg_out


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """g * v / ||v|| (differentiable in v and g); ``g`` has v's shape with 1 in
    every dim but ``dim`` (or is 0-d when ``dim`` is -1)."""
    op = "weight_norm"
    if not isinstance(v, Tensor) or not isinstance(g, Tensor):
        raise TypeError(f"[{op}] expected weight_v and weight_g to be nnfast Tensors")
    if v.dtype not in (np.float32, np.float64):
        raise TypeError(f"[{op}] expected weight_v to be float32 or float64, got {v.dtype}")
    if g.dtype != v.dtype:
        raise TypeError(f"[{op}] expected weight_g to have dtype {v.dtype}, got {g.dtype}")
    d = _norm_dim(op, dim, v.ndim)
    _, C, _ = _layout(v.shape, d)
    if g.numel() != C:
        raise ValueError(f"[{op}] expected weight_g with {C} elements for dim={dim}, got shape {g.shape}")
    return WeightNormFunction.apply(v, g, d)


def _norm_except_dim(v: Any, dim: int) -> Any:
    """||v|| over all dims but ``dim``, shaped like weight_g (kernel-computed)."""
    N, C, L = _layout(v.shape, dim)
    v3 = contiguous(v).reshape(N, C, L)
    K = kernels("weight_norm", v)
    xp = xp_of(v)
    norm = xp.empty((C,), dtype=np.float64)
    K.weight_norm_forward(xp.empty_like(v3), norm, v3, xp.ones((C,), dtype=v.dtype))
    return norm.astype(v.dtype).reshape(_g_shape(v.shape, dim))


class WeightNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from g and v."""

    def __init__(self, name: str, dim: int) -> None:
        self.name = name
        self.dim = dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return WeightNormFunction.apply(v, g, self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: Optional[int]) -> "WeightNorm":
        op = "weight_norm"
        weight = reparam_target(module, name, op, WeightNorm)
        fn = WeightNorm(name, _norm_dim(op, dim, weight.ndim))
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight._data, fn.dim)))
        module.register_parameter(name + "_v", Parameter(weight._data))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        with grad_mode.no_grad():
            weight = self.compute_weight(module)
        restore_parameter(module, self.name, weight, self.name + "_g", self.name + "_v")

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: Optional[int] = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``name_g * name_v / ||name_v||`` (norm
    over every dim except ``dim``; ``dim=None`` or -1: the whole tensor).
    Returns the module."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo ``weight_norm``: fold g and v back into one parameter ``name``."""
    return remove_reparam(module, name, "weight_norm", WeightNorm)
