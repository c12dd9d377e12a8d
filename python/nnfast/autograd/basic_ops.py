"""General tensor arithmetic on the tape: broadcasting operators, reductions,
views and indexing.

These serve user arithmetic (custom losses, glue code) with NumPy/CuPy math;
matrix products go through nnfast's GEMM kernel. The standard layers, losses
and optimizers do not use them for their math: they have fused kernels.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .._dispatch import kernels, xp_of
from .function import Function


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape`` (the reverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


class Add(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.shapes = (_shape(a), _shape(b))
        return a + b

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.shapes = (_shape(a), _shape(b))
        return a - b

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        sa, sb = ctx.shapes
        return unbroadcast(g, sa), unbroadcast(-g, sb)


class Mul(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        da = unbroadcast(g * b, _shape(a)) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * a, _shape(b)) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        da = unbroadcast(g / b, _shape(a)) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-g * a / (b * b), _shape(b)) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx: Any, a: Any) -> Any:
        return -a

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return -g


class Pow(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b, y = ctx.saved_tensors
        xp = xp_of(g)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(g * b * a ** (b - 1), _shape(a))
        if ctx.needs_input_grad[1]:
            loga = xp.log(xp.where(a > 0, a, 1))
            db = unbroadcast(g * y * loga, _shape(b))
        return da, db


def _unary(name: str, fn: str, grad: Callable[[Any, Any, Any], Any], save_output: bool) -> type[Function]:
    """A pointwise Function y = xp.<fn>(a) whose backward is ``grad(g, a, y)``; it saves y
    (``save_output``) or a, never both."""

    def forward(ctx: Any, a: Any) -> Any:
        y = getattr(xp_of(a), fn)(a)
        ctx.save_for_backward(y if save_output else a)
        return y

    def backward(ctx: Any, g: Any) -> Any:
        (saved,) = ctx.saved_tensors
        return grad(g, None, saved) if save_output else grad(g, saved, None)

    return type(name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})


Exp = _unary("Exp", "exp", lambda g, a, y: g * y, save_output=True)
Log = _unary("Log", "log", lambda g, a, y: g / a, save_output=False)
Sqrt = _unary("Sqrt", "sqrt", lambda g, a, y: g / (2 * y), save_output=True)


class Abs(Function):
    @staticmethod
    def forward(ctx: Any, a: Any) -> Any:
        ctx.save_for_backward(a)
        return xp_of(a).abs(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return g * xp_of(a).sign(a)


class Clamp(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, lo: Any, hi: Any) -> Any:
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        return xp_of(a).clip(a, lo, hi)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        mask = xp_of(a).ones_like(a, dtype=bool)
        if ctx.lo is not None:
            mask &= a >= ctx.lo
        if ctx.hi is not None:
            mask &= a <= ctx.hi
        return g * mask


def _axes(dim: Any, ndim: int) -> Optional[tuple[int, ...]]:
    if dim is None:
        return None
    if isinstance(dim, int):
        dim = (dim,)
    out = []
    for d in dim:
        if not -ndim <= d < max(ndim, 1):
            raise IndexError(f"[reduce] expected dim in [{-ndim}, {ndim - 1}], got {d}")
        out.append(d % max(ndim, 1))
    return tuple(out)


def _expand_back(g: Any, shape: tuple[int, ...], axes: Optional[tuple[int, ...]], keepdim: bool) -> Any:
    if axes is not None and not keepdim:
        g = xp_of(g).expand_dims(g, axes)
    return xp_of(g).broadcast_to(g, shape)


class Sum(Function):
    """Sum over ``dim`` (or all); ``Mean`` is the same with the gradient divided by the count."""

    mean = False

    @classmethod
    def forward(cls, ctx: Any, a: Any, dim: Any = None, keepdim: bool = False) -> Any:
        ctx.shape = a.shape
        ctx.axes = _axes(dim, a.ndim)
        ctx.keepdim = keepdim
        if not cls.mean:
            return xp_of(a).asarray(a.sum(axis=ctx.axes, keepdims=keepdim))
        ctx.count = a.size if ctx.axes is None else int(np.prod([a.shape[i] for i in ctx.axes]))
        return xp_of(a).asarray(a.mean(axis=ctx.axes, keepdims=keepdim))

    @classmethod
    def backward(cls, ctx: Any, g: Any) -> Any:
        if cls.mean:
            g = g / max(ctx.count, 1)
        return _expand_back(g, ctx.shape, ctx.axes, ctx.keepdim).copy()


class Mean(Sum):
    mean = True


class Max(Function):
    """max over a dim (or all); the gradient goes to the first maximal element."""

    @staticmethod
    def forward(ctx: Any, a: Any, dim: Any = None, keepdim: bool = False) -> Any:
        xp = xp_of(a)
        ctx.shape = a.shape
        ctx.dim, ctx.keepdim = dim, keepdim
        if dim is None:
            idx = xp.argmax(a)
            ctx.idx = idx
            return xp.asarray(a.reshape(-1)[idx])
        idx = xp.argmax(a, axis=dim)
        ctx.idx = idx
        out = xp.take_along_axis(a, xp.expand_dims(idx, dim), axis=dim)
        return out if keepdim else out.squeeze(dim)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        xp = xp_of(g)
        out = xp.zeros(ctx.shape, dtype=g.dtype)
        if ctx.dim is None:
            out.reshape(-1)[ctx.idx] = g
            return out
        gi = g if ctx.keepdim else xp.expand_dims(g, ctx.dim)
        xp.put_along_axis(out, xp.expand_dims(ctx.idx, ctx.dim), gi, axis=ctx.dim)
        return out


class Reshape(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, axes: tuple[int, ...]) -> Any:
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g.transpose(np.argsort(ctx.axes))


class Expand(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = a.shape
        return xp_of(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return unbroadcast(g, ctx.shape)


class GetItem(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, index: Any) -> Any:
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return a[index]

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        xp = xp_of(g)
        out = xp.zeros(ctx.shape, dtype=ctx.dtype)
        # add.at handles repeated integer indices correctly
        xp.add.at(out, ctx.index, g)
        return out


class Cat(Function):
    @staticmethod
    def forward(ctx: Any, dim: int, *arrays: Any) -> Any:
        ctx.dim = dim
        ctx.sizes = [a.shape[dim] for a in arrays]
        return xp_of(arrays[0]).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        splits = np.cumsum(ctx.sizes)[:-1]
        return (None, *xp_of(g).split(g, splits, axis=ctx.dim))


class Stack(Function):
    @staticmethod
    def forward(ctx: Any, dim: int, *arrays: Any) -> Any:
        ctx.dim = dim
        return xp_of(arrays[0]).stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        xp = xp_of(g)
        return (None, *[xp.take(g, i, axis=ctx.dim) for i in range(g.shape[ctx.dim])])


class Where(Function):
    @staticmethod
    def forward(ctx: Any, cond: Any, a: Any, b: Any) -> Any:
        ctx.cond = cond
        ctx.shapes = (_shape(a), _shape(b))
        return xp_of(cond).where(cond, a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        xp = xp_of(g)
        zero = xp.zeros((), dtype=g.dtype)
        return None, unbroadcast(xp.where(ctx.cond, g, zero), ctx.shapes[0]), \
            unbroadcast(xp.where(ctx.cond, zero, g), ctx.shapes[1])


class Cast(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, dtype: Any) -> Any:
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g.astype(ctx.dtype) if ctx.dtype.kind == "f" else None


class ToDevice(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, dev: Any) -> Any:
        from ..tensor import _device_of, _to_device_array

        ctx.src = _device_of(a)
        return _to_device_array(a, dev)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        from ..tensor import _to_device_array

        return _to_device_array(g, ctx.src)


class Clone(Function):
    @staticmethod
    def forward(ctx: Any, a: Any) -> Any:
        return a.copy()

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g


# ---------------------------------------------------------------- matmul
def _gemm(out: Any, a: Any, b: Any, beta: float = 0.0) -> Any:
    kernels("matmul", out, a, b).gemm(out, a, b, 1.0, beta)
    return out


def mm_raw(a: Any, b: Any) -> Any:
    """2-D product through nnfast's GEMM (transposed views need no copy)."""
    out = xp_of(a).empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    return _gemm(out, a, b)


def _aligned(a: Any) -> Any:
    """``a``, or a copy when its data is not aligned to the itemsize (the GEMM loads whole elements)."""
    return a if getattr(a.flags, "aligned", True) else a.copy()


def _matmul_raw(a: Any, b: Any) -> Any:
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"[matmul] expected both operands to have at least one dimension, got shapes {a.shape} "
                         f"and {b.shape}")
    if a.dtype.kind != "f" or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        return a @ b  # integer / mixed products stay general user arithmetic
    a, b = _aligned(a), _aligned(b)
    if a.ndim == 2 and b.ndim == 2:
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"[matmul] expected matching inner dimensions, got {a.shape} @ {b.shape}")
        return mm_raw(a, b)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"[matmul] expected matching inner dimensions, got {a.shape} @ {b.shape}")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    xp = xp_of(a)
    A = xp.broadcast_to(a2, batch + a2.shape[-2:])
    B = xp.broadcast_to(b2, batch + b2.shape[-2:])
    out = xp.empty(batch + (a2.shape[-2], b2.shape[-1]), dtype=a.dtype)
    for idx in np.ndindex(*batch):
        _gemm(out[idx], A[idx], B[idx])
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


class MatMul(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return _matmul_raw(a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        da = db = None
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        # b's axis first: for vector @ vector g is 0-d, and () -> (1,) -> (1, 1).
        if b.ndim == 1:
            g2 = xp_of(g).expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = xp_of(g).expand_dims(g2, -2)
        if ctx.needs_input_grad[0]:
            da = unbroadcast(_matmul_raw(g2, xp_of(b2).swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            db = unbroadcast(_matmul_raw(xp_of(a2).swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return da, db
