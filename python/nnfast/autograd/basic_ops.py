"""General tensor arithmetic on the tape: broadcasting operators, reductions,
views and indexing.

Float32 / float64 operands of one dtype run nnfast's tensor kernels (``csrc/cpu/tensor.cpp``,
``csrc/cuda/tensor.cu``) on either device: the broadcasting add / sub / mul / div and their
backward (including the un-broadcast sums), sum / mean / max / min over dims with the max
backward scatter, argmax / argmin, and float casts. Other dtypes (integers, bool, mixed
float widths) stay NumPy / CuPy arithmetic, as do pow / exp / log / sqrt / abs / clamp and
the views; matrix products go through nnfast's GEMM kernel. The standard layers, losses and
optimizers do not use any of this for their math: they have fused kernels.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Optional

import numpy as np

from .._dispatch import BINARY_CODES as _BINARY_CODES
from .._dispatch import REDUCE_CODES as _REDUCE_CODES
from .._dispatch import contiguous, kernels, xp_of
from .. import _special
from .function import Function

# ---------------------------------------------------------------- the tensor kernels
_XP_BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
_MAX_DIMS = 8  # kMaxDims of nnfast/tensor.h
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _on_kernels(*arrays: Any) -> bool:
    """Whether the tensor kernels take these operands: float32 / float64 arrays of one dtype."""
    dt = getattr(arrays[0], "dtype", None)
    return dt in _KERNEL_DTYPES and all(getattr(x, "dtype", None) == dt and x.ndim <= _MAX_DIMS for x in arrays)


def binary(op: str, a: Any, b: Any) -> Any:
    """``a (op) b`` with NumPy broadcasting (op: add, sub, mul, div). Kept lean: on tiny
    tensors the Python around the kernel call is most of the cost."""
    dt = getattr(a, "dtype", None)
    if dt not in _KERNEL_DTYPES or getattr(b, "dtype", None) != dt:
        return _XP_BINARY[op](a, b)
    sa, sb = a.shape, b.shape
    if sa == sb or not sb:  # same shape, or a 0-d operand (a Python scalar): no broadcast arithmetic
        shape = sa
    elif not sa:
        shape = sb
    else:
        try:
            shape = np.broadcast_shapes(sa, sb)
        except ValueError:
            raise ValueError(f"[{op}] expected broadcastable shapes, got {tuple(sa)} and {tuple(sb)}") from None
    if len(shape) > _MAX_DIMS:
        return _XP_BINARY[op](a, b)
    a, b = _aligned(a), _aligned(b)
    out = np.empty(shape, dtype=dt) if type(a) is np.ndarray else xp_of(a).empty(shape, dtype=dt)
    kernels(op, out, a, b).binary_op(out, a, b, _BINARY_CODES[op])
    return out


def _scalar_like(x: Any, value: float) -> Any:
    return xp_of(x).asarray(value, dtype=x.dtype)


def neg(x: Any) -> Any:
    """``-x`` (a multiply by -1: exact, and -0 for +0 as negation gives)."""
    return binary("mul", x, _scalar_like(x, -1.0)) if _on_kernels(x) else -x


def reduce(op: str, x: Any, axes: Optional[tuple[int, ...]], keepdim: bool, with_index: bool = False) -> Any:
    """Sum / mean / max / min of ``x`` over ``axes`` (None: all; normalised, in range) in one
    kernel pass; with ``with_index`` also the int64 index of the extreme within the reduced
    axes, flattened (numpy.argmax's). Reduced axes that are not one run are moved last first
    (a copy: layout, not math), so every element is accumulated once, in double."""
    nd = x.ndim
    axes = tuple(range(nd)) if axes is None else tuple(sorted(set(axes)))
    kept = [d for d in range(nd) if d not in axes]
    out_shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape)) if keepdim else \
        tuple(x.shape[d] for d in kept)
    n = int(np.prod([x.shape[d] for d in axes], dtype=np.int64))
    if not axes or axes == tuple(range(axes[0], axes[0] + len(axes))):
        start = axes[0] if axes else 0
        view = contiguous(x).reshape(x.shape[:start] + (n,) + x.shape[start + len(axes):])
        dim = start
    else:
        view = xp_of(x).ascontiguousarray(x.transpose(kept + list(axes))).reshape(
            tuple(x.shape[d] for d in kept) + (n,))
        dim = len(kept)
    view = _aligned(view)
    xp = xp_of(x)
    out = xp.empty(out_shape, dtype=x.dtype)
    index = xp.empty(out_shape, dtype=np.int64) if with_index else None
    kernels(op, out, view).reduce_dim(out, index, view, dim, _REDUCE_CODES[op])
    return (out, index) if with_index else out


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape`` (the reverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, s in enumerate(shape) if s == 1 and g.shape[extra + i] != 1)
    if _on_kernels(g):
        return reduce("sum", g, axes, keepdim=False).reshape(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _shape(x: Any) -> tuple[int, ...]:
    s = getattr(x, "shape", None)  # arrays (NumPy, CuPy, emulated): their shape tuple
    return tuple(np.shape(x)) if s is None else tuple(s)


class _Binary(Function):
    """``a (op) b`` with broadcasting; a subclass names ``op`` (a kernel op of ``binary``) or
    ``xp_fn`` (an array-module function, for the ops without kernels) and gives the gradient of
    each input at full (broadcast) shape, which ``backward`` sums back to the input's shape."""

    op = ""
    xp_fn: Any = None  # a staticmethod(fn(a, b)) in subclasses
    saves_inputs = True

    @classmethod
    def forward(cls, ctx: Any, a: Any, b: Any) -> Any:
        ctx.shapes = (_shape(a), _shape(b))
        if cls.saves_inputs:
            ctx.save_for_backward(a, b)
        fn = cls.xp_fn
        return binary(cls.op, a, b) if fn is None else fn(a, b)

    @classmethod
    def backward(cls, ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors if cls.saves_inputs else (None, None)
        (sa, sb), (need_a, need_b) = ctx.shapes, ctx.needs_input_grad[:2]
        return (unbroadcast(cls.grad_a(g, a, b), sa) if need_a else None,
                unbroadcast(cls.grad_b(g, a, b), sb) if need_b else None)

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        return g

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:
        return g


def _xp(name: str) -> Any:
    """``xp.<name>(a, b)`` on the operands' array module (a staticmethod for ``_Binary.xp_fn``)."""
    def fn(a: Any, b: Any) -> Any:
        return getattr(xp_of(a), name)(a, b)

    return staticmethod(fn)


class Add(_Binary):
    op, saves_inputs = "add", False


class Sub(_Binary):
    op, saves_inputs = "sub", False

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:
        return neg(g)


class Mul(_Binary):
    op = "mul"

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        return binary("mul", g, b)

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:
        return binary("mul", g, a)


class Div(_Binary):
    op = "div"

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        return binary("div", g, b)

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:  # -g a / b^2, as PyTorch forms it
        return binary("div", binary("mul", neg(g), a), binary("mul", b, b))


class Neg(Function):
    @staticmethod
    def forward(ctx: Any, a: Any) -> Any:
        return neg(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return neg(g)


def _zero(g: Any) -> Any:
    return xp_of(g).zeros((), dtype=g.dtype)


def _zeros(g: Any) -> Any:
    return xp_of(g).zeros(g.shape, dtype=g.dtype)


class Pow(_Binary):
    """``a ** b``; gradients as PyTorch forms them: 0 for a where b == 0, and for b where
    a == 0 and b >= 0 (elsewhere ``y log a``, NaN for a < 0)."""

    xp_fn = _xp("power")

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        xp = xp_of(g)
        if getattr(b, "ndim", 1) == 0 and b.dtype.kind == "f" and float(b) in (1.0, 2.0):
            # x ** 2 (and x ** 1), the common cases: one kernel multiply, no pow pass
            return g if float(b) == 1.0 else binary("mul", binary("mul", g, a), _scalar_like(g, 2.0))
        with np.errstate(divide="ignore", invalid="ignore"):  # masked below (0 ** -1 where b == 0)
            return xp.where(b == 0, _zero(g), g * b * a ** (b - 1))

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:
        xp = xp_of(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where((a == 0) & (b >= 0), _zero(g), g * a**b * xp.log(a))


class Maximum(_Binary):
    """Elementwise max propagating NaN; a tie sends half the gradient to each input (PyTorch's rule).
    ``Minimum`` is the same with the comparisons turned."""

    xp_fn = _xp("maximum")
    sign = 1

    @classmethod
    def grad_a(cls, g: Any, a: Any, b: Any) -> Any:
        return _split(g, a, b, cls.sign)

    @classmethod
    def grad_b(cls, g: Any, a: Any, b: Any) -> Any:
        return _split(g, b, a, cls.sign)


def _split(g: Any, mine: Any, other: Any, sign: int) -> Any:
    """The gradient share of ``mine`` in max (sign 1) / min (sign -1): all where it wins, half on a tie."""
    xp = xp_of(g)
    loses = mine < other if sign > 0 else mine > other
    share = xp.where(mine == other, g / 2, g)
    return xp.where(loses, _zero(g), share)


class Minimum(Maximum):
    xp_fn = _xp("minimum")
    sign = -1


class Fmax(_Binary):
    """Elementwise max ignoring NaN (``fmax``); the gradient goes to ``a`` where a >= b or b is NaN,
    else to ``b``. ``Fmin`` is the same with ``a <= b``."""

    xp_fn = _xp("fmax")
    sign = 1

    @classmethod
    def _a_wins(cls, a: Any, b: Any) -> Any:
        return ((a >= b) if cls.sign > 0 else (a <= b)) | xp_of(b).isnan(b)

    @classmethod
    def grad_a(cls, g: Any, a: Any, b: Any) -> Any:
        return xp_of(g).where(cls._a_wins(a, b), g, _zero(g))

    @classmethod
    def grad_b(cls, g: Any, a: Any, b: Any) -> Any:
        return xp_of(g).where(cls._a_wins(a, b), _zero(g), g)


class Fmin(Fmax):
    xp_fn = _xp("fmin")
    sign = -1


class Atan2(_Binary):
    xp_fn = _xp("arctan2")

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        return g * b / (a * a + b * b)

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:
        return -g * a / (a * a + b * b)


class Hypot(_Binary):
    xp_fn = _xp("hypot")

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        return g * a / xp_of(a).hypot(a, b)

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:
        return g * b / xp_of(a).hypot(a, b)


def _xlogy(a: Any, b: Any) -> Any:
    xp = xp_of(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where((a == 0) & ~xp.isnan(b), _zero(a * b), a * xp.log(b))


class Xlogy(_Binary):
    """``a * log(b)``, 0 where a == 0 (unless b is NaN)."""

    xp_fn = staticmethod(_xlogy)

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        return xp_of(g).where((a == 0) & (b <= 0), _zero(g), _xlogy(g, b))

    @staticmethod
    def grad_b(g: Any, a: Any, b: Any) -> Any:
        return g * a / b


class Remainder(_Binary):
    """Python's ``a % b`` (the sign of b); d/db = -floor(a / b). ``Fmod`` is C's (the sign of a),
    d/db = -trunc(a / b)."""

    xp_fn = _xp("remainder")

    @staticmethod
    def quotient(a: Any, b: Any) -> Any:
        return xp_of(a).floor_divide(a, b)

    @classmethod
    def grad_b(cls, g: Any, a: Any, b: Any) -> Any:
        return -g * cls.quotient(a, b)


class Fmod(Remainder):
    xp_fn = _xp("fmod")

    @staticmethod
    def quotient(a: Any, b: Any) -> Any:
        return xp_of(a).trunc(a / b)


class _Stepwise(_Binary):
    """A binary op whose result is piecewise constant (rounded division): zero gradients."""

    saves_inputs = False

    @staticmethod
    def grad_a(g: Any, a: Any, b: Any) -> Any:
        return _zeros(g)

    grad_b = grad_a


def _trunc_div(a: Any, b: Any) -> Any:
    xp = xp_of(a)
    if a.dtype.kind == "f" or getattr(b, "dtype", a.dtype).kind == "f":
        return xp.trunc(a / b)
    q = xp.floor_divide(a, b)  # integers: floor, then one step toward zero where it rounded down
    return q + ((q < 0) & (q * b != a))


class FloorDiv(_Stepwise):
    xp_fn = _xp("floor_divide")


class TruncDiv(_Stepwise):
    xp_fn = staticmethod(_trunc_div)


def _unary(name: str, fn: Any, grad: Optional[Callable[[Any, Any, Any], Any]], save_output: bool = False
           ) -> type[Function]:
    """A pointwise Function y = fn(a) (``fn``: an array-module function name, or a callable on the
    array) whose backward is ``grad(g, a, y)`` (None: zero, a piecewise-constant op); it saves y
    (``save_output``) or a, never both."""

    def forward(ctx: Any, a: Any) -> Any:
        y = getattr(xp_of(a), fn)(a) if isinstance(fn, str) else fn(a)
        if grad is not None:
            ctx.save_for_backward(y if save_output else a)
        return y

    def backward(ctx: Any, g: Any) -> Any:
        if grad is None:
            return _zeros(g)
        (saved,) = ctx.saved_tensors
        return grad(g, None, saved) if save_output else grad(g, saved, None)

    return type(name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})


_LN2, _LN10 = float(np.log(2.0)), float(np.log(10.0))


def _sign(a: Any) -> Any:
    xp = xp_of(a)
    s = xp.sign(a)
    return xp.where(xp.isnan(a), _zero(s), s) if a.dtype.kind == "f" else s  # sign(NaN) = 0, as PyTorch


def _sqrt1m(a: Any) -> Any:
    return xp_of(a).sqrt(1 - a * a)


Exp = _unary("Exp", "exp", lambda g, a, y: g * y, save_output=True)
Exp2 = _unary("Exp2", "exp2", lambda g, a, y: g * y * _LN2, save_output=True)
Expm1 = _unary("Expm1", "expm1", lambda g, a, y: g * (y + 1), save_output=True)
Log = _unary("Log", "log", lambda g, a, y: g / a)
Log2 = _unary("Log2", "log2", lambda g, a, y: g / (a * _LN2))
Log10 = _unary("Log10", "log10", lambda g, a, y: g / (a * _LN10))
Log1p = _unary("Log1p", "log1p", lambda g, a, y: g / (a + 1))
Sqrt = _unary("Sqrt", "sqrt", lambda g, a, y: g / (2 * y), save_output=True)
Rsqrt = _unary("Rsqrt", lambda a: 1 / xp_of(a).sqrt(a), lambda g, a, y: -0.5 * g * y * y * y, save_output=True)
Reciprocal = _unary("Reciprocal", lambda a: 1 / a, lambda g, a, y: -g * y * y, save_output=True)
Sin = _unary("Sin", "sin", lambda g, a, y: g * xp_of(a).cos(a))
Cos = _unary("Cos", "cos", lambda g, a, y: -g * xp_of(a).sin(a))
Tan = _unary("Tan", "tan", lambda g, a, y: g * (1 + y * y), save_output=True)
Asin = _unary("Asin", "arcsin", lambda g, a, y: g / _sqrt1m(a))
Acos = _unary("Acos", "arccos", lambda g, a, y: -g / _sqrt1m(a))
Atan = _unary("Atan", "arctan", lambda g, a, y: g / (1 + a * a))
Sinh = _unary("Sinh", "sinh", lambda g, a, y: g * xp_of(a).cosh(a))
Cosh = _unary("Cosh", "cosh", lambda g, a, y: g * xp_of(a).sinh(a))
# erf / erfc / erfinv: whole-array expressions (nnfast/_special.py), no per-element host loop.
Erf = _unary("Erf", _special.erf, lambda g, a, y: g * (2 / np.sqrt(np.pi)) * xp_of(a).exp(-a * a))
Erfc = _unary("Erfc", _special.erfc, lambda g, a, y: g * (-2 / np.sqrt(np.pi)) * xp_of(a).exp(-a * a))
Erfinv = _unary("Erfinv", _special.erfinv, lambda g, a, y: g * (np.sqrt(np.pi) / 2) * xp_of(y).exp(y * y),
                save_output=True)
Frac = _unary("Frac", lambda a: a - xp_of(a).trunc(a), lambda g, a, y: g)
Sign = _unary("Sign", _sign, None)
Floor = _unary("Floor", "floor", None)
Ceil = _unary("Ceil", "ceil", None)
Trunc = _unary("Trunc", "trunc", None)


class Round(Function):
    """Round half to even, at ``decimals`` decimal places; zero gradient."""

    @staticmethod
    def forward(ctx: Any, a: Any, decimals: int) -> Any:
        rint = xp_of(a).rint
        if decimals == 0:
            return rint(a)
        scale = 10.0 ** abs(decimals)  # scaled as PyTorch does: up by a power of ten, or down
        return rint(a * scale) / scale if decimals > 0 else rint(a / scale) * scale

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return _zeros(g), None


class Abs(Function):
    @staticmethod
    def forward(ctx: Any, a: Any) -> Any:
        ctx.save_for_backward(a)
        return xp_of(a).abs(a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return g * _sign(a)


class Logit(Function):
    """``log(a / (1 - a))`` with ``a`` first clamped to [eps, 1 - eps] when eps is given (the
    gradient is then 0 outside that range)."""

    @staticmethod
    def forward(ctx: Any, a: Any, eps: Optional[float]) -> Any:
        xp = xp_of(a)
        ctx.save_for_backward(a)
        ctx.eps = eps
        z = a if eps is None else xp.clip(a, eps, 1 - eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.log(z / (1 - z))

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        xp = xp_of(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = g / (a * (1 - a))
        if ctx.eps is not None:
            d = xp.where((a < ctx.eps) | (a > 1 - ctx.eps), _zero(g), d)
        return d, None


class NanToNum(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, nan: float, posinf: Optional[float], neginf: Optional[float]) -> Any:
        ctx.save_for_backward(a)
        return xp_of(a).nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (a,) = ctx.saved_tensors
        return g * xp_of(a).isfinite(a), None, None, None


class Clamp(Function):
    """``min(max(a, lo), hi)`` (lo, hi: arrays broadcastable with ``a``, or None). Gradients as
    PyTorch's: ``a`` where lo <= a <= hi; ``lo`` where a < lo < hi; ``hi`` where a > hi or hi < lo."""

    @staticmethod
    def forward(ctx: Any, a: Any, lo: Any, hi: Any) -> Any:
        ctx.save_for_backward(a, lo, hi)
        ctx.shapes = (_shape(a), None if lo is None else _shape(lo), None if hi is None else _shape(hi))
        xp = xp_of(a)
        y = a if lo is None else xp.maximum(a, lo)
        return y if hi is None else xp.minimum(y, hi)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, lo, hi = ctx.saved_tensors
        xp, zero, need = xp_of(g), _zero(g), ctx.needs_input_grad
        keep = xp.ones((), dtype=bool)
        if lo is not None:
            keep = keep & (a >= lo)
        if hi is not None:
            keep = keep & (a <= hi)
        grads = [xp.where(keep, g, zero) if need[0] else None, None, None]
        if lo is not None and need[1]:
            grads[1] = xp.where((a < lo) & (lo < hi) if hi is not None else a < lo, g, zero)
        if hi is not None and need[2]:
            grads[2] = xp.where((a > hi) | (hi < lo) if lo is not None else a > hi, g, zero)
        return tuple(None if d is None else unbroadcast(xp.broadcast_to(d, g.shape), s)
                     for d, s in zip(grads, ctx.shapes))


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

    op = "sum"

    @classmethod
    def forward(cls, ctx: Any, a: Any, dim: Any = None, keepdim: bool = False) -> Any:
        ctx.shape = a.shape
        ctx.axes = _axes(dim, a.ndim)
        ctx.keepdim = keepdim
        ctx.count = a.size if ctx.axes is None else int(np.prod([a.shape[i] for i in ctx.axes]))
        if _on_kernels(a):
            return reduce(cls.op, a, ctx.axes, keepdim)
        r = a.sum(axis=ctx.axes, keepdims=keepdim) if cls.op == "sum" else a.mean(axis=ctx.axes, keepdims=keepdim)
        return xp_of(a).asarray(r)

    @classmethod
    def backward(cls, ctx: Any, g: Any) -> Any:
        spread = _expand_back(g, ctx.shape, ctx.axes, ctx.keepdim)
        if cls.op == "sum":
            return spread.copy()
        return binary("div", spread, _scalar_like(g, max(ctx.count, 1)))  # one pass: spread and scale


class Mean(Sum):
    op = "mean"


class Reshape(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Any, a: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g.reshape(ctx.shape)


class Permute(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Any, a: Any, axes: tuple[int, ...]) -> Any:
        ctx.axes = axes
        return a.transpose(axes)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g.transpose(np.argsort(ctx.axes))


class Expand(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Any, a: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = a.shape
        return xp_of(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return unbroadcast(g, ctx.shape)


class GetItem(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Any, a: Any, index: Any) -> Any:
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        r = a[index]
        if isinstance(r, np.generic):  # a single element: index with a trailing ... for a 0-d view instead
            r = a[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return r

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        out = xp_of(g).zeros(ctx.shape, dtype=ctx.dtype)
        if isinstance(ctx.index, (int, slice, type(None), type(Ellipsis), tuple)) and all(
                isinstance(i, (int, slice, type(None), type(Ellipsis)))
                for i in (ctx.index if isinstance(ctx.index, tuple) else (ctx.index,))):
            out[ctx.index] = g  # basic indexing: every element is picked at most once
        else:
            np.add.at(out, ctx.index, g)  # repeated indices are summed, in order (deterministic)
        return out, None


class Cat(Function):
    @staticmethod
    def forward(ctx: Any, dim: int, *arrays: Any) -> Any:
        ctx.dim = dim
        ctx.sizes = [a.shape[dim] for a in arrays]
        return xp_of(arrays[0]).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        splits = np.cumsum(ctx.sizes)[:-1].tolist()  # a list: the split points are host values
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


def cast(a: Any, dtype: Any) -> Any:
    """``a.astype(dtype)``: nnfast's kernel between float32 and float64 (round to nearest even)."""
    dtype = np.dtype(dtype)
    if not (getattr(a, "dtype", None) in _KERNEL_DTYPES and dtype in _KERNEL_DTYPES):
        from ..amp._convert import convert_bf16  # bfloat16 <-> float on nnfast's kernel

        out = convert_bf16(a, dtype)
        return a.astype(dtype) if out is None else out
    src = _aligned(contiguous(a))
    out = xp_of(a).empty(a.shape, dtype=dtype)
    kernels("cast", out, src).cast(out, src)
    return out


class Cast(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, dtype: Any) -> Any:
        ctx.dtype = a.dtype
        return cast(a, dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return cast(g, ctx.dtype) if ctx.dtype.kind in "fV" else None  # V: ml_dtypes' bfloat16


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


def _aligned(a: Any) -> Any:
    """``a``, or a copy when its data is not aligned to the itemsize (the GEMM loads whole elements)."""
    return a if getattr(a.flags, "aligned", True) else a.copy()
