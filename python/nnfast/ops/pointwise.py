"""Tensor surface: pointwise ops (see nnfast/ops/__init__.py).

Arithmetic, math functions, comparisons and logic under PyTorch's type promotion (the rules and
``result_type`` / ``promote_types`` / ``can_cast`` live in ``nnfast._tensor_ops``, next to the
core operators). add / sub / mul / div run nnfast's tensor kernels for float32 / float64; sigmoid,
tanh, relu and softmax run the activation kernels of ``nnfast.nn.functional``; the rest is
NumPy / CuPy arithmetic on the tensor's own device. Gradients: ``nnfast.autograd.basic_ops``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np

from .._dispatch import xp_of
from .._tensor_ops import arith, can_cast, compare, promote, promote_types, result_type, where
from ..autograd import basic_ops as ops
from ..autograd.function import Function
from ..tensor import Tensor, get_default_dtype

_Op = Callable[..., Any]


def _tensor(op: str, x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"[{op}] expected a Tensor input, got {type(x).__name__}")
    return x


def _floating(op: str, x: Any) -> Tensor:
    """``x`` as a float tensor: integer / bool tensors become the default float dtype (as PyTorch's
    math functions do)."""
    t = _tensor(op, x)
    return t if t._data.dtype.kind == "f" else t.to(get_default_dtype())


def _raw(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


@functools.lru_cache(maxsize=None)
def _functional() -> Any:
    from ..nn import functional  # loaded after this module: nnfast.nn needs the full Tensor

    return functional


# ---------------------------------------------------------------- arithmetic
def _scaled(op: str, x: Any, other: Any, alpha: Any) -> Any:
    """``other * alpha`` for add / sub (an integral result refuses a float alpha, as PyTorch)."""
    if alpha == 1:
        return other
    if isinstance(alpha, float) and promote(op, x, other)[0].kind != "f":
        raise TypeError(f"[{op}] expected an integer alpha for integral tensors, got {alpha}")
    return arith(ops.Mul, op, other, alpha) if isinstance(other, Tensor) else other * alpha


_add, _sub, _mul = Tensor.__add__, Tensor.__sub__, Tensor.__mul__  # the core operators (fast path)


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``input + alpha * other``."""
    return _add(_tensor("add", input), _scaled("add", input, other, alpha))


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``input - alpha * other``."""
    return _sub(_tensor("sub", input), _scaled("sub", input, other, alpha))


def rsub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``other - alpha * input``."""
    return arith(ops.Sub, "rsub", other, _scaled("rsub", other, input, alpha))


def mul(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _mul(input, other) if isinstance(input, Tensor) else arith(ops.Mul, "mul", input, other)


def _int_division(op: str, fn: type[Function], a: Any, b: Any) -> Tensor:
    """A rounding division / remainder; integer operands refuse a zero divisor (PyTorch's
    ZeroDivisionError) instead of NumPy's silent 0."""
    dt, (x, y) = promote(op, a, b)
    if dt.kind != "f" and bool((_raw(y) == 0).any()):
        raise RuntimeError(f"[{op}] expected nonzero divisors for integer division (ZeroDivisionError)")
    return fn.apply(x, y)


def div(input: Any, other: Any, *, rounding_mode: Optional[str] = None) -> Tensor:  # noqa: A002
    """``input / other``: true division (integers give the default float dtype), or rounded
    toward zero (``'trunc'``) or down (``'floor'``) in the operands' promoted dtype."""
    if rounding_mode is None:
        return arith(ops.Div, "div", input, other)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"[div] expected rounding_mode None, 'trunc' or 'floor', got {rounding_mode!r}")
    return _int_division("div", ops.TruncDiv if rounding_mode == "trunc" else ops.FloorDiv, input, other)


def true_divide(input: Any, other: Any) -> Tensor:  # noqa: A002
    return arith(ops.Div, "true_divide", input, other)


def floor_divide(input: Any, other: Any) -> Tensor:  # noqa: A002
    return _int_division("floor_divide", ops.FloorDiv, input, other)


def remainder(input: Any, other: Any) -> Tensor:  # noqa: A002
    """Python's modulus: the result has the sign of ``other``."""
    return _int_division("remainder", ops.Remainder, input, other)


def fmod(input: Any, other: Any) -> Tensor:  # noqa: A002
    """C's modulus: the result has the sign of ``input``."""
    return _int_division("fmod", ops.Fmod, input, other)


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001,A002
    """``input ** exponent`` (either may be a number)."""
    dt, (a, b) = promote("pow", input, exponent)
    if dt.kind in "iu" and bool((_raw(b) < 0).any()):
        raise ValueError("[pow] expected non-negative exponents for integer tensors: integers to negative "
                         "integer powers are not allowed")
    return ops.Pow.apply(a, b)


def _rpow(self: Tensor, base: Any) -> Tensor:
    return pow(base, self)


def _binary_op(fn: type[Function], op: str, floating: bool = False) -> _Op:
    def f(input: Any, other: Any) -> Tensor:  # noqa: A002
        _, (a, b) = promote(op, input, other, floating=floating)
        return fn.apply(a, b)

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}(input, other)`` with broadcasting and type promotion; differentiable."
    return f


maximum = _binary_op(ops.Maximum, "maximum")
minimum = _binary_op(ops.Minimum, "minimum")
fmax = _binary_op(ops.Fmax, "fmax")
fmin = _binary_op(ops.Fmin, "fmin")
atan2 = _binary_op(ops.Atan2, "atan2", floating=True)
hypot = _binary_op(ops.Hypot, "hypot", floating=True)
xlogy = _binary_op(ops.Xlogy, "xlogy", floating=True)


def _reject_bool(op: str, x: Tensor) -> Tensor:
    if x._data.dtype.kind == "b":
        raise TypeError(f"[{op}] expected a non-bool tensor: {op} of a bool tensor is not supported; "
                        "to invert a mask use the `~` operator or logical_not()")
    return x


def neg(input: Any) -> Tensor:  # noqa: A002
    return ops.Neg.apply(_reject_bool("neg", _tensor("neg", input)))


def abs(input: Any) -> Tensor:  # noqa: A001,A002
    return ops.Abs.apply(_reject_bool("abs", _tensor("abs", input)))


def square(input: Any) -> Tensor:  # noqa: A002
    x = _tensor("square", input)
    if x._data.dtype.kind == "b":  # as PyTorch: bool squares to int64
        x = x.to(np.int64)
    return arith(ops.Mul, "square", x, x)


def _float_unary(fn: type[Function], op: str) -> _Op:
    def f(input: Any) -> Tensor:  # noqa: A002
        return fn.apply(_floating(op, input))

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}(input)`` (integer inputs give the default float dtype); differentiable."
    return f


def _rounding(fn: type[Function], op: str) -> _Op:
    """floor / ceil / trunc: integer tensors come back unchanged (a copy)."""
    def f(input: Any) -> Tensor:  # noqa: A002
        x = _tensor(op, input)
        return fn.apply(x) if x._data.dtype.kind == "f" else Tensor._wrap(x._data.copy())

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}(input)``; zero gradient."
    return f


exp, exp2, expm1 = _float_unary(ops.Exp, "exp"), _float_unary(ops.Exp2, "exp2"), _float_unary(ops.Expm1, "expm1")
log, log2, log10 = _float_unary(ops.Log, "log"), _float_unary(ops.Log2, "log2"), _float_unary(ops.Log10, "log10")
log1p, sqrt, rsqrt = _float_unary(ops.Log1p, "log1p"), _float_unary(ops.Sqrt, "sqrt"), _float_unary(ops.Rsqrt, "rsqrt")
reciprocal = _float_unary(ops.Reciprocal, "reciprocal")
sin, cos, tan = _float_unary(ops.Sin, "sin"), _float_unary(ops.Cos, "cos"), _float_unary(ops.Tan, "tan")
asin, acos, atan = _float_unary(ops.Asin, "asin"), _float_unary(ops.Acos, "acos"), _float_unary(ops.Atan, "atan")
sinh, cosh, erf = _float_unary(ops.Sinh, "sinh"), _float_unary(ops.Cosh, "cosh"), _float_unary(ops.Erf, "erf")
erfc, erfinv = _float_unary(ops.Erfc, "erfc"), _float_unary(ops.Erfinv, "erfinv")
floor, ceil, trunc = _rounding(ops.Floor, "floor"), _rounding(ops.Ceil, "ceil"), _rounding(ops.Trunc, "trunc")


def sign(input: Any) -> Tensor:  # noqa: A002
    """-1, 0 or 1 by the sign of each element (0 for NaN); zero gradient."""
    x = _tensor("sign", input)
    return ops.Sign.apply(x) if x._data.dtype.kind != "b" else Tensor._wrap(x._data.copy())


def frac(input: Any) -> Tensor:  # noqa: A002
    """``input - trunc(input)``."""
    x = _tensor("frac", input)
    if x._data.dtype.kind != "f":
        raise TypeError(f"[frac] expected a floating-point tensor, got {x.dtype}")
    return ops.Frac.apply(x)


def round(input: Any, *, decimals: int = 0) -> Tensor:  # noqa: A001,A002
    """Round half to even at ``decimals`` decimal places (negative: to tens, hundreds ...)."""
    x = _tensor("round", input)
    if x._data.dtype.kind != "f":
        return Tensor._wrap(x._data.copy())
    return ops.Round.apply(x, int(decimals))


def clamp(input: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A001,A002
    """Each element limited to [min, max] (numbers or broadcastable tensors; either may be None;
    min > max gives max)."""
    if min is None and max is None:
        raise ValueError("[clamp] expected at least one of 'min' or 'max' not None")
    _, (x, lo, hi) = promote("clamp", _tensor("clamp", input), min, max)
    return ops.Clamp.apply(x, lo, hi)


def clamp_min(input: Any, min: Any) -> Tensor:  # noqa: A001,A002
    return clamp(input, min=min)


def clamp_max(input: Any, max: Any) -> Tensor:  # noqa: A001,A002
    return clamp(input, max=max)


def lerp(input: Any, end: Any, weight: Any) -> Tensor:  # noqa: A002
    """``input + weight * (end - input)``; differentiable in all three."""
    return add(input, mul(weight, sub(end, input)))


def addcmul(input: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:  # noqa: A002
    """``input + value * tensor1 * tensor2``."""
    return add(input, mul(tensor1, tensor2), alpha=value)


def addcdiv(input: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:  # noqa: A002
    """``input + value * tensor1 / tensor2`` (true division; integer tensor1 / tensor2 are refused,
    as in PyTorch)."""
    if all(isinstance(t, Tensor) and t._data.dtype.kind != "f" for t in (tensor1, tensor2)):
        raise TypeError("[addcdiv] expected floating-point tensor1 or tensor2: integer division with "
                        "addcdiv is not supported; use div(tensor1, tensor2, rounding_mode=...)")
    return add(input, div(tensor1, tensor2), alpha=value)


def logit(input: Any, eps: Optional[float] = None) -> Tensor:  # noqa: A002
    """``log(p / (1 - p))``, p = input clamped to [eps, 1 - eps] when eps is given."""
    return ops.Logit.apply(_floating("logit", input), eps)


def nan_to_num(input: Any, nan: float = 0.0, posinf: Optional[float] = None,  # noqa: A002
               neginf: Optional[float] = None) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (default: the dtype's
    largest / lowest finite value)."""
    x = _tensor("nan_to_num", input)
    if x._data.dtype.kind != "f":
        return Tensor._wrap(x._data.copy())
    return ops.NanToNum.apply(x, nan, posinf, neginf)


# ---------------------------------------------------------------- activations (nnfast's kernels)
def sigmoid(input: Any) -> Tensor:  # noqa: A002
    return _functional().sigmoid(_floating("sigmoid", input))  # type: ignore[no-any-return]


def tanh(input: Any) -> Tensor:  # noqa: A002
    return _functional().tanh(_floating("tanh", input))  # type: ignore[no-any-return]


def relu(input: Any) -> Tensor:  # noqa: A002
    x = _tensor("relu", input)
    if x._data.dtype.kind in "iu":  # integer relu: no kernel, no gradient
        return Tensor._wrap(xp_of(x._data).maximum(x._data, 0).astype(x._data.dtype))
    return _functional().relu(x)  # type: ignore[no-any-return]


def softmax(input: Any, dim: Optional[int] = None, dtype: Any = None) -> Tensor:  # noqa: A002
    return _functional().softmax(_tensor("softmax", input), dim, dtype=dtype)  # type: ignore[no-any-return]


def log_softmax(input: Any, dim: Optional[int] = None, dtype: Any = None) -> Tensor:  # noqa: A002
    return _functional().log_softmax(_tensor("log_softmax", input), dim,  # type: ignore[no-any-return]
                                     dtype=dtype)


# ---------------------------------------------------------------- comparisons and tests
def _comparison(ufunc: str, op: str) -> _Op:
    def f(input: Any, other: Any) -> Tensor:  # noqa: A002
        return compare(ufunc, _tensor(op, input), other)

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}`` in the operands' promoted dtype: a bool tensor."
    return f


eq, ne = _comparison("equal", "eq"), _comparison("not_equal", "ne")
lt, le = _comparison("less", "lt"), _comparison("less_equal", "le")
gt, ge = _comparison("greater", "gt"), _comparison("greater_equal", "ge")


def _test(op: str, test: Callable[[Any, Any], Any], non_float: bool) -> _Op:
    """A float-value test (isnan ...); integer and bool tensors answer ``non_float`` everywhere."""
    def f(input: Any) -> Tensor:  # noqa: A002
        x = _tensor(op, input)._data
        xp = xp_of(x)
        return Tensor._wrap(test(xp, x) if x.dtype.kind == "f" else xp.full(x.shape, non_float, dtype=bool))

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}``: a bool tensor."
    return f


isnan = _test("isnan", lambda xp, x: xp.isnan(x), False)
isinf = _test("isinf", lambda xp, x: xp.isinf(x), False)
isfinite = _test("isfinite", lambda xp, x: xp.isfinite(x), True)
isposinf = _test("isposinf", lambda xp, x: xp.isinf(x) & (x > 0), False)
isneginf = _test("isneginf", lambda xp, x: xp.isinf(x) & (x < 0), False)


def isclose(input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
            equal_nan: bool = False) -> Tensor:
    """``|input - other| <= atol + rtol * |other|`` elementwise (infinities equal only to themselves)."""
    _, (a, b) = promote("isclose", _tensor("isclose", input), other)
    a, b = _raw(a), _raw(b)
    return Tensor._wrap(xp_of(a).isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
             equal_nan: bool = False) -> bool:
    """Whether ``isclose`` holds for every element."""
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input: Any, other: Any) -> bool:  # noqa: A002
    """Whether both tensors have the same shape and the same elements."""
    return tuple(input.shape) == tuple(other.shape) and bool(eq(input, other)._data.all())


def _logical(ufunc: str) -> _Op:
    def f(input: Any, other: Any) -> Tensor:  # noqa: A002
        a = _tensor(ufunc, input)._data
        return Tensor._wrap(getattr(xp_of(a), ufunc)(a, _raw(other)))

    f.__name__ = ufunc
    f.__doc__ = f"Elementwise ``{ufunc}`` of the operands' truth values: a bool tensor."
    return f


logical_and, logical_or, logical_xor = _logical("logical_and"), _logical("logical_or"), _logical("logical_xor")


def logical_not(input: Any) -> Tensor:  # noqa: A002
    a = _tensor("logical_not", input)._data
    return Tensor._wrap(xp_of(a).logical_not(a))


def _integral(op: str, *xs: Any) -> tuple[Any, ...]:
    dt, conv = promote(op, *xs)
    if dt.kind not in "biu":
        raise TypeError(f"[{op}] expected integer or bool tensors, got {dt}")
    return tuple(_raw(x) for x in conv)


def _bitwise(ufunc: str) -> _Op:
    def f(input: Any, other: Any) -> Tensor:  # noqa: A002
        a, b = _integral(ufunc, input, other)
        return Tensor._wrap(getattr(xp_of(a if hasattr(a, "ndim") else b), ufunc)(a, b))

    f.__name__ = ufunc
    f.__doc__ = f"Elementwise ``{ufunc}`` of integer or bool tensors (logical for bool)."
    return f


bitwise_and, bitwise_or, bitwise_xor = _bitwise("bitwise_and"), _bitwise("bitwise_or"), _bitwise("bitwise_xor")


def bitwise_not(input: Any) -> Tensor:  # noqa: A002
    (a,) = _integral("bitwise_not", _tensor("bitwise_not", input))
    return Tensor._wrap(xp_of(a).invert(a))


def _swapped(fn: _Op) -> _Op:
    """The reflected operator (``2 - x`` calls ``x.__rsub__(2)``)."""
    def method(self: Tensor, other: Any) -> Tensor:
        return fn(other, self)  # type: ignore[no-any-return]

    return method


def _where_method(self: Tensor, condition: Any, y: Any) -> Tensor:
    return where(condition, self, y)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- the tables
FUNCTIONS: dict[str, Any] = {
    "add": add, "sub": sub, "subtract": sub, "rsub": rsub, "mul": mul, "multiply": mul, "div": div, "divide": div,
    "true_divide": true_divide, "floor_divide": floor_divide, "remainder": remainder, "fmod": fmod, "pow": pow,
    "neg": neg, "negative": neg, "abs": abs, "absolute": abs, "reciprocal": reciprocal, "square": square,
    "sqrt": sqrt, "rsqrt": rsqrt, "exp": exp, "exp2": exp2, "expm1": expm1, "log": log, "log2": log2,
    "log10": log10, "log1p": log1p, "sin": sin, "cos": cos, "tan": tan, "asin": asin, "arcsin": asin,
    "acos": acos, "arccos": acos, "atan": atan, "arctan": atan, "atan2": atan2, "arctan2": atan2, "sinh": sinh,
    "cosh": cosh, "sign": sign, "sgn": sign, "floor": floor, "ceil": ceil, "round": round, "trunc": trunc,
    "fix": trunc, "frac": frac, "clamp": clamp, "clip": clamp, "clamp_min": clamp_min, "clamp_max": clamp_max,
    "maximum": maximum, "minimum": minimum, "fmax": fmax, "fmin": fmin, "lerp": lerp, "addcmul": addcmul,
    "addcdiv": addcdiv, "hypot": hypot, "erf": erf, "erfc": erfc, "erfinv": erfinv, "logit": logit, "nan_to_num": nan_to_num, "xlogy": xlogy,
    "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "softmax": softmax, "log_softmax": log_softmax,
    "eq": eq, "ne": ne, "not_equal": ne, "lt": lt, "less": lt, "le": le, "less_equal": le, "gt": gt,
    "greater": gt, "ge": ge, "greater_equal": ge, "isnan": isnan, "isinf": isinf, "isfinite": isfinite,
    "isposinf": isposinf, "isneginf": isneginf, "isclose": isclose, "allclose": allclose, "equal": equal,
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor, "logical_not": logical_not,
    "bitwise_and": bitwise_and, "bitwise_or": bitwise_or, "bitwise_xor": bitwise_xor, "bitwise_not": bitwise_not,
    "where": where, "result_type": result_type, "promote_types": promote_types, "can_cast": can_cast,
}

def _method(fn: _Op) -> _Op:
    """``Tensor.<name>(self, ...)`` for the function ``<name>(input, ...)`` (methods name their
    receiver ``self``, as tensor.py declares them)."""
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        return fn(self, *args, **kwargs)

    method.__name__, method.__qualname__, method.__doc__ = fn.__name__, f"Tensor.{fn.__name__}", fn.__doc__
    return method


_NOT_METHODS = ("rsub", "where", "result_type", "promote_types", "can_cast")
METHODS: dict[str, Any] = {name: _method(fn) for name, fn in FUNCTIONS.items() if name not in _NOT_METHODS}
METHODS.update({
    "where": _where_method,
    "__floordiv__": METHODS["floor_divide"], "__rfloordiv__": _swapped(floor_divide),
    "__mod__": METHODS["remainder"], "__rmod__": _swapped(remainder),
    "__pow__": METHODS["pow"], "__rpow__": _rpow, "__neg__": METHODS["neg"], "__abs__": METHODS["abs"],
    "__and__": METHODS["bitwise_and"], "__rand__": _swapped(bitwise_and), "__or__": METHODS["bitwise_or"],
    "__ror__": _swapped(bitwise_or), "__xor__": METHODS["bitwise_xor"], "__rxor__": _swapped(bitwise_xor),
    "__invert__": METHODS["bitwise_not"],
})
