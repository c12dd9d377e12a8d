"""Tensor surface: reductions, scans and sorting (see nnfast/ops/__init__.py).

sum / mean / max / min / amax / amin of float32 / float64 run nnfast's tensor kernels
(``basic_ops.reduce``); the other ops are NumPy / CuPy arithmetic on the input's own device.
Ops giving ``(values, indices)`` return PyTorch's named tuples (``.values`` / ``.indices``); the
gradient of their values goes back to the positions the indices name (``_Picked``).
Dims may be an int, a tuple or a list, negative counting from the end.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np

from .._dispatch import contiguous, is_cupy, kernels, xp_of
from ..autograd import basic_ops as ops
from ..autograd.function import Function
from ..tensor import Tensor, get_default_dtype

_Dim = Optional[Union[int, Sequence[int]]]
_INT64 = np.dtype(np.int64)


# ---------------------------------------------------------------- arguments
def _dims(op: str, dim: _Dim, ndim: int) -> Optional[tuple[int, ...]]:
    """``dim`` as non-negative axes; None (reduce every dim) for None, an empty list or a 0-d input."""
    if dim is None:
        return None
    seq = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    n = max(ndim, 1)  # a 0-d tensor takes dim 0 / -1, as in PyTorch
    axes = []
    for d in seq:
        if not -n <= d < n:
            raise IndexError(f"[{op}] expected dim in range [{-n}, {n - 1}], got {d}")
        axes.append(int(d) % n)
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"[{op}] expected each dim at most once, got {list(seq)}")
    return tuple(axes) if axes and ndim else None


def _dim1(op: str, dim: int, ndim: int) -> int:
    """One dim, normalised (0 for a 0-d input, which the ops see as a 1-vector)."""
    axes = _dims(op, dim, ndim)
    return axes[0] if axes else 0


def _vector(x: Tensor) -> Tensor:
    """A 0-d input as a 1-vector, so a dim op has an axis to work along (``_scalar`` undoes it)."""
    return x.reshape(1) if x.ndim == 0 else x


def _scalar(r: Tensor, x: Tensor) -> Tensor:
    return r.reshape(()) if x.ndim == 0 and r.ndim else r


def _float_only(op: str, x: Tensor) -> None:
    if x.dtype.kind not in "fc":
        raise RuntimeError(f"[{op}] expected a floating point input, got {x.dtype}")


def _cast(x: Tensor, dtype: Any) -> Tensor:
    """``x`` in ``dtype`` when given (PyTorch casts before reducing); else integer and bool
    inputs of a sum-like op accumulate in int64, as in PyTorch."""
    if dtype is not None:
        return x.to(dtype)
    if x.dtype.kind in "biu" and x.dtype != _INT64:
        return Tensor._wrap(x._data.astype(_INT64))
    return x


def _nonempty(op: str, x: Any, axes: Optional[tuple[int, ...]]) -> None:
    for d in range(x.ndim) if axes is None else axes:
        if x.shape[d] == 0:
            raise ValueError(f"[{op}] expected a non-empty dim {d} to reduce, got size 0")
    if x.size == 0 and axes is None:
        raise ValueError(f"[{op}] expected a non-empty tensor to reduce, got shape {tuple(x.shape)}")


def _keep(g: Any, axes: Optional[tuple[int, ...]], keepdim: bool) -> Any:
    """A reduction's result (or gradient) with its reduced axes kept as size 1, so it broadcasts."""
    return g if keepdim or axes is None else xp_of(g).expand_dims(g, axes)


# ---------------------------------------------------------------- named results
class _ValuesIndices(NamedTuple):
    values: Tensor
    indices: Tensor


def _result_type(name: str) -> Any:
    """PyTorch's ``torch.return_types.<name>``: a tuple with ``.values`` and ``.indices``."""
    return type(name, (_ValuesIndices,), {"__slots__": ()})


_RESULTS = {n: _result_type(n) for n in ("max", "min", "sort", "topk", "kthvalue", "median", "mode",
                                         "cummax", "cummin")}


class aminmax_result(NamedTuple):  # noqa: N801 - PyTorch's torch.return_types.aminmax
    min: Tensor
    max: Tensor


aminmax_result.__name__ = "aminmax"


# ---------------------------------------------------------------- gradients routed to indices
def _scatter_add(g: Any, idx: Any, dim: int, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``g`` added at ``idx`` along ``dim`` (repeated indices add up)."""
    xp = xp_of(g)
    gm, im = xp.moveaxis(g, dim, -1), xp.moveaxis(idx, dim, -1)
    n, k = shape[dim], im.shape[-1]
    rows = int(np.prod(gm.shape[:-1], dtype=np.int64))
    flat = (xp.arange(rows, dtype=np.int64)[:, None] * n + im.reshape(rows, k)).reshape(-1)
    out = xp.bincount(flat, weights=gm.reshape(-1), minlength=rows * n).astype(g.dtype)
    return xp.moveaxis(out.reshape(gm.shape[:-1] + (n,)), -1, dim)


class _Picked(Function):
    """``values`` taken from ``a`` at ``idx`` along ``dim`` (both computed by the caller; ``idx``
    without ``dim`` unless ``keepdim``); the gradient goes back to those positions."""

    @staticmethod
    def forward(ctx: Any, a: Any, values: Any, idx: Any, dim: int, keepdim: bool) -> Any:
        ctx.shape, ctx.idx, ctx.dim, ctx.keepdim = a.shape, idx, dim, keepdim
        return values

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        idx, dim = ctx.idx, ctx.dim
        if (not ctx.keepdim or idx.shape[dim] == 1) and ops._on_kernels(g):
            # one index per slice (max / min / kthvalue / median / mode): nnfast's max-backward scatter
            out = xp_of(g).empty(ctx.shape, dtype=g.dtype)
            kernels("max", out, g, idx).scatter_dim(out, ops._aligned(contiguous(g)), contiguous(idx), dim)
            return out, None, None, None, None
        if not ctx.keepdim:
            g, idx = xp_of(g).expand_dims(g, dim), xp_of(idx).expand_dims(idx, dim)
        return _scatter_add(g, idx, dim, ctx.shape), None, None, None, None


def _picked(x: Tensor, values: Any, idx: Any, dim: int, keepdim: bool, name: str) -> Any:
    return _RESULTS[name](_Picked.apply(x, values, idx, dim, keepdim), Tensor._wrap(idx))


def _take(xd: Any, idx: Any, dim: int, keepdim: bool) -> tuple[Any, Any]:
    """(values, indices) at ``idx`` (one per slice, ``dim`` kept as size 1), ``dim`` dropped unless ``keepdim``."""
    xp = xp_of(xd)
    vals = xp.take_along_axis(xd, idx, axis=dim)
    return (vals, idx) if keepdim else (vals.squeeze(dim), idx.squeeze(dim))


# ---------------------------------------------------------------- sum, mean, prod
# (The methods declared for type checkers in tensor.py name their tensor ``self``; the others ``input``.)
def sum_(self: Tensor, dim: _Dim = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (every dim when None); integer and bool inputs sum to int64."""
    x = _cast(self, dtype)
    axes = _dims("sum", dim, x.ndim)
    if x.dtype.kind in "biu":
        return Tensor._wrap(x._data.sum(axis=axes, keepdims=keepdim))
    return ops.Sum.apply(x, axes, keepdim)


def mean(self: Tensor, dim: _Dim = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    x = self.to(dtype) if dtype is not None else self
    if x.dtype.kind not in "fc":
        raise RuntimeError(f"[mean] expected a floating point or complex input (could not infer output dtype), "
                           f"got {x.dtype}")
    return ops.Mean.apply(x, _dims("mean", dim, x.ndim), keepdim)


class _NanToZero(Function):
    @staticmethod
    def forward(ctx: Any, a: Any) -> Any:
        ctx.keep = ~xp_of(a).isnan(a)
        return xp_of(a).where(ctx.keep, a, a.dtype.type(0))

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g * ctx.keep


def nansum(input: Tensor, dim: _Dim = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum with NaNs counted as zero (they get no gradient)."""
    x = _NanToZero.apply(input) if input.dtype.kind == "f" else input
    return sum_(x, dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim: _Dim = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean of the non-NaN elements."""
    x = input.to(dtype) if dtype is not None else input
    _float_only("nanmean", x)
    axes = _dims("nanmean", dim, x.ndim)
    count = (~xp_of(x._data).isnan(x._data)).sum(axis=axes, keepdims=keepdim)
    return nansum(x, axes, keepdim) / Tensor._wrap(xp_of(x._data).asarray(count, dtype=x.dtype))


class _Prod(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, axes: Optional[tuple[int, ...]], keepdim: bool) -> Any:
        ctx.save_for_backward(a)
        ctx.axes, ctx.keepdim = axes, keepdim
        return xp_of(a).asarray(a.prod(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        # d/dx_i = product of the others: computed from the non-zero product, so one zero in a
        # slice gets the others' product and two or more zeros give 0 everywhere (no 0 / 0).
        (a,) = ctx.saved_tensors
        xp = xp_of(a)
        zero = a == 0
        nonzero = xp.where(zero, a.dtype.type(1), a)
        p = nonzero.prod(axis=ctx.axes, keepdims=True)
        zeros = zero.sum(axis=ctx.axes, keepdims=True)
        others = xp.where(zeros == 0, p / nonzero, xp.where(zero & (zeros == 1), p, a.dtype.type(0)))
        return others * _keep(g, ctx.axes, ctx.keepdim), None, None


def prod(input: Tensor, dim: _Dim = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Product over ``dim`` (every element when None); integer and bool inputs give int64."""
    x = _cast(input, dtype)
    return _Prod.apply(x, _dims("prod", dim, x.ndim), keepdim)


# ---------------------------------------------------------------- var, std
def _correction(unbiased: Optional[bool], correction: Optional[float]) -> float:
    if correction is not None:
        return float(correction)
    return 0.0 if unbiased is False else 1.0


def _var(op: str, x: Tensor, dim: Any, unbiased: Optional[bool], keepdim: bool,
         correction: Optional[float]) -> tuple[Tensor, Optional[tuple[int, ...]]]:
    if isinstance(dim, bool):  # the legacy var(unbiased) overload
        dim, unbiased = None, dim
    _float_only(op, x)
    axes = _dims(op, dim, x.ndim)
    n = x.numel() if axes is None else int(np.prod([x.shape[d] for d in axes]))
    d = x - ops.Mean.apply(x, axes, True)
    # PyTorch divides by max(0, n - correction): a single element with correction 1 gives NaN
    return ops.Sum.apply(d * d, axes, keepdim) / max(n - _correction(unbiased, correction), 0.0), axes


def var(self: Tensor, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False, *,
        correction: Optional[float] = None) -> Tensor:
    """Variance over ``dim``, divided by n - correction (default 1; ``unbiased=False``: 0)."""
    return _var("var", self, dim, unbiased, keepdim, correction)[0]


class _Sqrt(Function):
    """sqrt of a variance; its backward stays in arrays for 0-d inputs (NumPy gives scalars there)."""

    @staticmethod
    def forward(ctx: Any, v: Any) -> Any:
        y = contiguous(xp_of(v).sqrt(v))  # an array, also for 0-d
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return ops.binary("div", contiguous(g), ops.binary("add", y, y))


def std(self: Tensor, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False, *,
        correction: Optional[float] = None) -> Tensor:
    return _Sqrt.apply(_var("std", self, dim, unbiased, keepdim, correction)[0])


def var_mean(input: Tensor, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False, *,
             correction: Optional[float] = None) -> tuple[Tensor, Tensor]:
    v, axes = _var("var_mean", input, dim, unbiased, keepdim, correction)
    return v, ops.Mean.apply(input, axes, keepdim)


def std_mean(input: Tensor, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False, *,
             correction: Optional[float] = None) -> tuple[Tensor, Tensor]:
    v, axes = _var("std_mean", input, dim, unbiased, keepdim, correction)
    return _Sqrt.apply(v), ops.Mean.apply(input, axes, keepdim)


# ---------------------------------------------------------------- max, min, amax, amin, argmax
class _AExtreme(Function):
    """amax / amin over axes; the gradient is shared evenly among the tied extremes (PyTorch's rule)."""

    @staticmethod
    def forward(ctx: Any, a: Any, op: str, axes: Optional[tuple[int, ...]], keepdim: bool) -> Any:
        if ops._on_kernels(a):
            out = ops.reduce(op, a, axes, keepdim)
        else:
            _nonempty(op, a, axes)
            out = xp_of(a).asarray(getattr(a, op)(axis=axes, keepdims=keepdim))
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, out = ctx.saved_tensors
        xp, o = xp_of(a), _keep(out, ctx.axes, ctx.keepdim)
        tied = (a == o) | (xp.isnan(a) & xp.isnan(o))  # a NaN extreme: the NaNs share the gradient
        count = tied.sum(axis=ctx.axes, keepdims=True).astype(g.dtype)
        return xp.where(tied, _keep(g, ctx.axes, ctx.keepdim) / count, g.dtype.type(0)), None, None, None


def _aextreme(op: str, x: Tensor, dim: _Dim, keepdim: bool) -> Tensor:
    axes = _dims("a" + op, dim, x.ndim)
    return _AExtreme.apply(x, op, axes, keepdim)


def amax(input: Tensor, dim: _Dim = (), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (every dim when empty); ties share the gradient evenly."""
    return _aextreme("max", input, dim, keepdim)


def amin(input: Tensor, dim: _Dim = (), keepdim: bool = False) -> Tensor:
    return _aextreme("min", input, dim, keepdim)


def _extreme_dim(op: str, input: Tensor, dim: int, keepdim: bool) -> Any:
    """(values, indices) of the first max / min along ``dim`` (a NaN, if any, as in PyTorch)."""
    d = _dim1(op, dim, input.ndim)
    x = _vector(input)
    xd, keep = x._data, keepdim and input.ndim > 0
    if ops._on_kernels(xd):
        vals, idx = ops.reduce(op, xd, (d,), keep, with_index=True)
    else:
        _nonempty(op, xd, (d,))
        idx = xp_of(xd).expand_dims((xd.argmax if op == "max" else xd.argmin)(axis=d), d)
        vals, idx = _take(xd, idx, d, keep)
    return _picked(x, vals, idx, d, keep, op)


class _Elementwise(Function):
    """maximum / minimum of two tensors (when the pointwise area has none); ties share the gradient."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any, op: str) -> Any:
        ctx.save_for_backward(a, b)
        ctx.op = op
        return getattr(xp_of(a), op)(a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        wins = (a > b) if ctx.op == "maximum" else (a < b)
        share = (wins + (a == b) * 0.5).astype(g.dtype)
        return (ops.unbroadcast(g * share, ops._shape(a)), ops.unbroadcast(g * (1 - share), ops._shape(b)),
                None)


def _elementwise(op: str, a: Tensor, b: Tensor) -> Tensor:
    from . import pointwise

    fn = pointwise.FUNCTIONS.get(op)
    return fn(a, b) if fn is not None else _Elementwise.apply(a, b, op)


def _extreme(op: str) -> Any:
    def extreme(self: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
        if isinstance(dim, Tensor):  # max(a, b): the elementwise overload
            return _elementwise(op + "imum", self, dim)
        if dim is None:
            return _AExtreme.apply(self, op, None, False)
        return _extreme_dim(op, self, dim, keepdim)

    extreme.__name__ = op
    extreme.__doc__ = (f"``{op}(self)``: the {op}imum value; ``{op}(self, dim, keepdim=False)``: (values, "
                       f"indices) along dim; ``{op}(self, other)``: the elementwise {op}imum.")
    return extreme


max_, min_ = _extreme("max"), _extreme("min")


def aminmax(input: Tensor, *, dim: Optional[int] = None, keepdim: bool = False) -> aminmax_result:
    return aminmax_result(_aextreme("min", input, dim, keepdim), _aextreme("max", input, dim, keepdim))


def _arg_extreme(op: str) -> Any:
    def arg(self: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
        xd = self._data
        if dim is None:  # the index into the flattened tensor
            xd, d = xd.reshape(-1), 0
        else:
            d = _dim1(op, dim, self.ndim)
            xd = xd.reshape(1) if xd.ndim == 0 else xd
        if ops._on_kernels(xd):
            idx = ops.reduce(op[3:], xd, (d,), False, with_index=True)[1]
        else:
            _nonempty(op, xd, (d,))
            idx = xp_of(xd).asarray(getattr(xd, op)(axis=d))
        if keepdim:
            idx = idx.reshape((1,) * self.ndim) if dim is None else xp_of(idx).expand_dims(idx, d)
        return Tensor._wrap(idx.reshape(()) if self.ndim == 0 else idx)

    arg.__name__ = op
    return arg


argmax, argmin = _arg_extreme("argmax"), _arg_extreme("argmin")


# ---------------------------------------------------------------- norm, logsumexp
class _PNorm(Function):
    """(sum |x|^p)^(1/p) for a finite p > 0; the gradient is 0 where the norm is 0 (PyTorch's subgradient)."""

    @staticmethod
    def forward(ctx: Any, a: Any, p: float, axes: Optional[tuple[int, ...]], keepdim: bool) -> Any:
        xp = xp_of(a)
        if p == 2 and ops._on_kernels(a):  # the usual 2-norm: a kernel multiply and a kernel row sum
            s = ops.reduce("sum", ops.binary("mul", a, a), axes, keepdim)
        else:
            ax = xp.abs(a)
            s = (ax if p == 1 else ax * ax if p == 2 else ax**p).sum(axis=axes, keepdims=keepdim)
        out = xp.asarray(s if p == 1 else xp.sqrt(s) if p == 2 else s ** (1.0 / p), dtype=a.dtype)
        ctx.save_for_backward(a, out)
        ctx.p, ctx.axes, ctx.keepdim = p, axes, keepdim
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, out = ctx.saved_tensors
        xp, p = xp_of(a), ctx.p
        n, gk = _keep(out, ctx.axes, ctx.keepdim), _keep(g, ctx.axes, ctx.keepdim)
        if p == 1:
            return xp.sign(a) * gk, None, None, None
        power = a if p == 2 else xp.sign(a) * xp.abs(a) ** (p - 1)
        scale = n if p == 2 else n ** (p - 1)
        safe = xp.where(scale == 0, a.dtype.type(1), scale)
        return xp.where(scale == 0, a.dtype.type(0), power * (gk / safe)), None, None, None


def norm(input: Tensor, p: Any = "fro", dim: _Dim = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """The vector p-norm over ``dim`` (every element when None): p a number, inf, -inf, or 'fro' (2)."""
    x = input.to(dtype) if dtype is not None else input
    _float_only("norm", x)
    if p is None or p == "fro":
        p = 2.0
    if isinstance(p, str):
        raise ValueError(f"[norm] expected p to be a number, inf or 'fro', got {p!r}")
    axes = _dims("norm", dim, x.ndim)
    if math.isinf(p):
        return _AExtreme.apply(ops.Abs.apply(x), "max" if p > 0 else "min", axes, keepdim)
    if p == 0:  # the number of non-zero elements (no gradient, as in PyTorch)
        nz = (x._data != 0).sum(axis=axes, keepdims=keepdim)
        return Tensor._wrap(xp_of(x._data).asarray(nz, dtype=x.dtype))
    if p < 0:
        raise ValueError(f"[norm] expected p >= 0 or +-inf, got {p}")
    return _PNorm.apply(x, float(p), axes, keepdim)


def vector_norm(x: Tensor, ord: Any = 2, dim: _Dim = None, keepdim: bool = False, *,  # noqa: A002
                dtype: Any = None) -> Tensor:
    """``torch.linalg.vector_norm``: ``norm`` with ``ord`` for p."""
    return norm(x, ord, dim, keepdim, dtype)


class _LogSumExp(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, axes: Optional[tuple[int, ...]], keepdim: bool) -> Any:
        xp = xp_of(a)
        m = a.max(axis=axes, keepdims=True) if a.size else xp.zeros((1,) * a.ndim, dtype=a.dtype)
        m = xp.where(xp.isfinite(m), m, a.dtype.type(0))  # all -inf (or inf) slices: no inf - inf
        out = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        ctx.save_for_backward(a, out)
        ctx.axes = axes
        return out if keepdim else out.squeeze(axes)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, out = ctx.saved_tensors
        gk = g.reshape(out.shape)
        return gk * xp_of(a).exp(a - out), None, None


def logsumexp(input: Tensor, dim: _Dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``dim``, computed around the maximum so it does not overflow."""
    x = input if input.dtype.kind == "f" else input.to(get_default_dtype())
    axes = _dims("logsumexp", dim, x.ndim)
    return _LogSumExp.apply(x, axes, keepdim)


# ---------------------------------------------------------------- scans
def _rev_cumsum(g: Any, dim: int) -> Any:
    xp = xp_of(g)
    return xp.flip(xp.cumsum(xp.flip(g, dim), axis=dim), dim)


class _CumSum(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, dim: int) -> Any:
        ctx.dim = dim
        return xp_of(a).cumsum(a, axis=dim)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return _rev_cumsum(g, ctx.dim), None


class _CumProd(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, dim: int) -> Any:
        out = xp_of(a).cumprod(a, axis=dim)
        ctx.save_for_backward(a, out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        # Before a slice's first zero z: sum_{j>=i} g_j out_j / x_i; after it: 0; at z itself:
        # prod_{k<z} x_k * sum_{j>=z} g_j prod_{z<k<=j} x_k (no division by the zero).
        a, out = ctx.saved_tensors
        xp, dim = xp_of(a), ctx.dim
        a, out, g = xp.moveaxis(a, dim, -1), xp.moveaxis(out, dim, -1), xp.moveaxis(g, dim, -1)
        zero = a == 0
        pos = xp.arange(a.shape[-1])
        z = xp.where(zero.any(axis=-1, keepdims=True), xp.argmax(zero, axis=-1, keepdims=True), a.shape[-1])
        one, nil = a.dtype.type(1), a.dtype.type(0)
        grad = xp.where(pos < z, _rev_cumsum(g * out, -1) / xp.where(zero, one, a), nil)
        before = xp.where(pos < z, a, one).prod(axis=-1, keepdims=True)
        after = xp.cumprod(xp.where(pos > z, a, one), axis=-1)
        grad = xp.where(pos == z, before * _rev_cumsum(g * after, -1), grad)
        return xp.moveaxis(grad, -1, dim), None


def _scan(op: str, fn: type[Function], input: Tensor, dim: int, dtype: Any) -> Tensor:
    d = _dim1(op, dim, input.ndim)
    x = _vector(_cast(input, dtype))
    return _scalar(fn.apply(x, d), input)


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sum along ``dim``; integer and bool inputs give int64."""
    return _scan("cumsum", _CumSum, input, dim, dtype)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running product along ``dim``; the gradient is exact with zeros in the input."""
    return _scan("cumprod", _CumProd, input, dim, dtype)


def _running(fn: Any, a: Any, dim: int) -> Any:
    """Inclusive running ``fn`` (xp.maximum / xp.minimum) along ``dim`` in log2(n) doubling steps
    of elementwise ops (ufunc.accumulate is not on every array module)."""
    xp = xp_of(a)
    out = xp.moveaxis(a, dim, -1).copy()
    step = 1
    while step < out.shape[-1]:
        out[..., step:] = fn(out[..., step:], out[..., :-step])
        step *= 2
    return xp.moveaxis(out, -1, dim)


def _cum_extreme(op: str) -> Any:
    def cum(input: Tensor, dim: int) -> Any:
        d = _dim1(op, dim, input.ndim)
        x = _vector(input)
        xd = x._data
        xp = xp_of(xd)
        values = _running(xp.maximum if op == "cummax" else xp.minimum, xd, d)
        # the index of the latest element equal to the running extreme (a NaN once one is seen)
        hit = xd == values
        if xd.dtype.kind == "f":
            hit |= xp.isnan(xd)
        pos = xp.arange(xd.shape[d], dtype=np.int64).reshape([-1 if i == d else 1 for i in range(xd.ndim)])
        idx = _running(xp.maximum, xp.where(hit, pos, 0), d)
        r = _picked(x, values, idx, d, True, op)
        return _RESULTS[op](_scalar(r.values, input), _scalar(r.indices, input))

    cum.__name__ = op
    return cum


cummax, cummin = _cum_extreme("cummax"), _cum_extreme("cummin")


# ---------------------------------------------------------------- logical reductions, counts
def _logical(op: str) -> Any:
    def logical(self: Tensor, dim: _Dim = None, keepdim: bool = False) -> Tensor:
        xd = self._data
        r = xp_of(xd).asarray(getattr(xd, op)(axis=_dims(op, dim, self.ndim), keepdims=keepdim))
        return Tensor._wrap(r.astype(np.uint8) if xd.dtype == np.uint8 else r)  # uint8 stays uint8, as in PyTorch

    logical.__name__ = op
    logical.__doc__ = f"Whether {op} elements (over ``dim``) are non-zero: a bool tensor."
    return logical


all_, any_ = _logical("all"), _logical("any")


def count_nonzero(input: Tensor, dim: _Dim = None) -> Tensor:
    xd = input._data
    r = (xd != 0).sum(axis=_dims("count_nonzero", dim, input.ndim))
    return Tensor._wrap(xp_of(xd).asarray(r, dtype=np.int64))


# ---------------------------------------------------------------- sorting, selection
def _argsort(xd: Any, dim: int, descending: bool) -> Any:
    """Stable sort order along ``dim``; descending keeps ties in their original order and puts
    NaNs first (ascending puts them last), as PyTorch."""
    xp = xp_of(xd)
    stable = {} if is_cupy(xd) else {"kind": "stable"}  # CuPy's sort is always stable and takes no kind
    if not descending:
        return xp.argsort(xd, axis=dim, **stable)
    rev = xp.flip(xp.argsort(xp.flip(xd, dim), axis=dim, **stable), dim)
    return (xd.shape[dim] - 1) - rev


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """(values, indices) sorted along ``dim`` (always stable); the gradient follows the indices."""
    d = _dim1("sort", dim, input.ndim)
    x = _vector(input)
    idx = _argsort(x._data, d, descending)
    r = _picked(x, xp_of(idx).take_along_axis(x._data, idx, axis=d), idx, d, True, "sort")
    return _RESULTS["sort"](_scalar(r.values, input), _scalar(r.indices, input))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    d = _dim1("argsort", dim, input.ndim)
    return _scalar(Tensor._wrap(_argsort(_vector(input)._data, d, descending)), input)


def msort(input: Tensor) -> Tensor:
    """``sort(input, dim=0).values``."""
    return sort(input, 0).values  # type: ignore[no-any-return]


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices, in sorted order."""
    d = _dim1("topk", dim, input.ndim)
    x = _vector(input)
    n = x.shape[d]
    if not 0 <= k <= n:
        raise RuntimeError(f"[topk] expected k in [0, {n}] (the size of dim {d}), got {k}")
    order = _argsort(x._data, d, largest)
    idx = xp_of(order).take(order, xp_of(order).arange(k), axis=d)
    r = _picked(x, xp_of(idx).take_along_axis(x._data, idx, axis=d), idx, d, True, "topk")
    return _RESULTS["topk"](_scalar(r.values, input), _scalar(r.indices, input))


def _select(name: str, input: Tensor, dim: int, keepdim: bool, position: Any) -> Any:
    """(values, indices) of the element at sorted ``position`` (an int, or an array with ``dim``
    of size 1) along ``dim``."""
    d = _dim1(name, dim, input.ndim)
    x = _vector(input)
    order = _argsort(x._data, d, False)
    xp = xp_of(order)
    if isinstance(position, int):
        position = xp.full([1 if i == d else s for i, s in enumerate(order.shape)], position, dtype=np.int64)
    keep = keepdim and input.ndim > 0
    vals, idx = _take(x._data, xp.take_along_axis(order, position, axis=d), d, keep)
    return _picked(x, vals, idx, d, keep, name)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """The k-th smallest element (k from 1) along ``dim`` and its index."""
    n = _vector(input).shape[_dim1("kthvalue", dim, input.ndim)]
    if not 1 <= k <= n:
        raise RuntimeError(f"[kthvalue] expected k in [1, {n}] (the size of dim {dim}), got {k}")
    return _select("kthvalue", input, dim, keepdim, k - 1)


def median(input: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Any:
    """The lower median (no averaging) and, with ``dim``, its index; a slice with a NaN gives NaN."""
    if dim is None:
        return median(input.reshape(-1), 0).values
    d = _dim1("median", dim, input.ndim)
    x = _vector(input)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"[median] expected a non-empty dim {d}, got size 0")
    xp = xp_of(x._data)
    nans = xp.isnan(x._data).sum(axis=d, keepdims=True) if x.dtype.kind == "f" else 0
    position = xp.where(nans > 0, n - nans, (n - 1) // 2).astype(np.int64)  # NaNs sort last
    return _select("median", input, dim, keepdim, position)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> Any:
    """The most frequent value along ``dim`` (the smallest among equally frequent ones) and the
    index of its last occurrence."""
    d = _dim1("mode", dim, input.ndim)
    x = _vector(input)
    xd = x._data
    xp = xp_of(xd)
    order = xp.moveaxis(_argsort(xd, d, False), d, -1)
    s = xp.take_along_axis(xp.moveaxis(xd, d, -1), order, axis=-1)
    pos = xp.arange(s.shape[-1])
    starts = xp.concatenate([xp.ones(s.shape[:-1] + (1,), dtype=bool), s[..., 1:] != s[..., :-1]], axis=-1)
    run = pos - _running(xp.maximum, xp.where(starts, pos, 0), -1) + 1  # length of the run so far
    best = xp.argmax(run == run.max(axis=-1, keepdims=True), axis=-1, keepdims=True)  # first: smallest value
    keep = keepdim and input.ndim > 0
    vals, idx = _take(xd, xp.moveaxis(xp.take_along_axis(order, best, axis=-1), -1, d), d, keep)
    return _picked(x, vals, idx, d, keep, "mode")


# ---------------------------------------------------------------- unique, counting, buckets
def _int64(a: Any) -> Tensor:
    return Tensor._wrap(a.astype(np.int64))


def _unique_results(values: Any, inverse: Any, counts: Any, return_inverse: bool, return_counts: bool) -> Any:
    out = [Tensor._wrap(values)]
    if return_inverse:
        out.append(_int64(inverse))
    if return_counts:
        out.append(_int64(counts))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim: Optional[int] = None) -> Any:
    """The distinct elements, or distinct slices along ``dim``; optionally the index of each input
    element in them (``return_inverse``) and how often each occurs (``return_counts``). Sorted
    whatever ``sorted`` says (PyTorch's CPU result is sorted too); NaNs count as distinct elements.
    No gradient."""
    xd = input._data
    xp = xp_of(xd)
    if dim is None:
        # NaNs are distinct from each other, as in PyTorch (NumPy >= 1.24 would merge them).
        kw = {"equal_nan": False} if xd.dtype.kind in "fc" else {}
        values, inverse, counts = xp.unique(xd, return_inverse=True, return_counts=True, **kw)
        inverse = inverse.reshape(xd.shape)
    else:
        d = _dim1("unique", dim, input.ndim)
        values, inverse, counts = xp.unique(xd, return_inverse=True, return_counts=True, axis=d)
        inverse = inverse.reshape(-1)
    return _unique_results(values, inverse, counts, return_inverse, return_counts)


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False,
                       dim: Optional[int] = None) -> Any:
    """Collapse runs of equal consecutive elements (or slices along ``dim``) to one."""
    xd = input._data
    xp = xp_of(xd)
    d = 0 if dim is None else _dim1("unique_consecutive", dim, input.ndim)
    rows = xd.reshape(-1, 1) if dim is None else xp.moveaxis(xd, d, 0).reshape(xd.shape[d], -1)
    n = rows.shape[0]
    starts = xp.ones(n, dtype=bool)
    if n > 1:
        starts[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    first = xp.nonzero(starts)[0]
    values = xd.reshape(-1)[first] if dim is None else xp.take(xd, first, axis=d)
    inverse = xp.cumsum(starts) - 1
    counts = xp.diff(xp.concatenate([first, xp.asarray([n], dtype=first.dtype)]))
    return _unique_results(values, inverse.reshape(xd.shape) if dim is None else inverse, counts,
                           return_inverse, return_counts)


def bincount(input: Tensor, weights: Optional[Tensor] = None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ... occurs in a 1-D non-negative integer tensor (or the sum of
    its ``weights``)."""
    xd = input._data
    if xd.ndim != 1 or xd.dtype.kind not in "iub" or (xd.size and int(xd.min()) < 0):
        raise RuntimeError(f"[bincount] expected a 1-D tensor of non-negative integers, got {xd.dtype} of "
                           f"shape {tuple(xd.shape)}")
    w = None if weights is None else weights._data
    r = xp_of(xd).bincount(xd, weights=w, minlength=minlength)
    return Tensor._wrap(r.astype(np.int64) if w is None else r.astype(w.dtype if w.dtype.kind == "f" else np.float64))


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """Counts in ``bins`` equal bins over [min, max] (the data's range when min == max); elements
    outside are ignored; the result has the input's dtype."""
    _float_only("histc", input)
    xd = input._data
    lo, hi = float(min), float(max)
    if lo == hi and xd.size:
        lo, hi = float(xd.min()), float(xd.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError(f"[histc] expected max >= min, got min {lo} and max {hi}")
    counts = xp_of(xd).histogram(xd, bins=bins, range=(lo, hi))[0]
    return Tensor._wrap(counts.astype(xd.dtype))


def searchsorted(sorted_sequence: Tensor, input: Any, *, out_int32: bool = False, right: bool = False,
                 side: Optional[str] = None, sorter: Optional[Tensor] = None) -> Tensor:
    """For each value, the index in the innermost dim of ``sorted_sequence`` where it would be
    inserted to keep it sorted (``right``/``side='right'``: after equal elements)."""
    seq = sorted_sequence._data
    xp = xp_of(seq)
    if side is not None and side not in ("left", "right") or side == "left" and right:
        raise RuntimeError(f"[searchsorted] expected side 'left' or 'right' agreeing with right={right}, got {side!r}")
    side = side or ("right" if right else "left")
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter._data, axis=-1)
    vals = input._data if isinstance(input, Tensor) else xp.asarray(input, dtype=seq.dtype)
    if seq.ndim <= 1:
        r = xp.searchsorted(seq.reshape(-1), vals, side=side)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise RuntimeError(f"[searchsorted] expected values with the leading dims of sorted_sequence "
                               f"{tuple(seq.shape[:-1])}, got {tuple(vals.shape)}")
        rows = [xp.searchsorted(s, v, side=side) for s, v in zip(seq.reshape(-1, seq.shape[-1]),
                                                                   vals.reshape(-1, vals.shape[-1]))]
        r = xp.stack(rows).reshape(vals.shape) if rows else xp.zeros(vals.shape, dtype=np.int64)
    return Tensor._wrap(xp.asarray(r).astype(np.int32 if out_int32 else np.int64))


def bucketize(input: Any, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each element: i with boundaries[i-1] < x <= boundaries[i] (``right``: <= x <)."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"[bucketize] expected 1-D boundaries, got shape {boundaries.shape}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# ---------------------------------------------------------------- tables
_BOTH: dict[str, Any] = {
    "sum": sum_, "mean": mean, "nansum": nansum, "nanmean": nanmean, "prod": prod, "var": var, "std": std,
    "max": max_, "min": min_, "amax": amax, "amin": amin, "aminmax": aminmax, "argmax": argmax,
    "argmin": argmin, "norm": norm, "logsumexp": logsumexp, "cumsum": cumsum, "cumprod": cumprod,
    "cummax": cummax, "cummin": cummin, "all": all_, "any": any_, "count_nonzero": count_nonzero,
    "sort": sort, "argsort": argsort, "msort": msort, "topk": topk, "kthvalue": kthvalue, "median": median,
    "mode": mode, "unique": unique, "unique_consecutive": unique_consecutive, "bincount": bincount,
    "histc": histc,
}

METHODS: dict[str, Any] = dict(_BOTH)
FUNCTIONS: dict[str, Any] = {
    **_BOTH, "var_mean": var_mean, "std_mean": std_mean, "searchsorted": searchsorted, "bucketize": bucketize,
}
