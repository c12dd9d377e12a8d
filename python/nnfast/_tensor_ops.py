"""Operators and methods of ``Tensor`` that build on the tape (``basic_ops``)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ._dispatch import xp_of
from .autograd import basic_ops as ops
from .autograd import grad_mode
from .autograd.function import Function
from .tensor import Tensor


def _operand(x: Any, like: Tensor) -> Any:
    """Tensors pass through; Python scalars/arrays become arrays of ``like``'s kind."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, bool)) and like.dtype.kind == "f":
        return xp_of(like._data).asarray(x, dtype=like.dtype)
    return xp_of(like._data).asarray(x)


def _binary(fn: type[Function], swap: bool = False) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        o = _operand(other, self)
        return fn.apply(o, self) if swap else fn.apply(self, o)

    return method


def _compare(op: str) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        o = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(getattr(self._data, op)(o))

    return method


def _dims(args: tuple[Any, ...]) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def reshape(self: Tensor, *shape: Any) -> Tensor:
    return ops.Reshape.apply(self, _dims(shape))


def permute(self: Tensor, *dims: Any) -> Tensor:
    return ops.Permute.apply(self, _dims(dims))


def transpose(self: Tensor, dim0: int, dim1: int) -> Tensor:
    axes = list(range(self.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return ops.Permute.apply(self, tuple(axes))


def t(self: Tensor) -> Tensor:
    if self.ndim > 2:
        raise ValueError(f"[t] expected a tensor with at most 2 dims, got {self.ndim}")
    return self if self.ndim < 2 else transpose(self, 0, 1)


def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    n = self.ndim
    if n == 0:
        return reshape(self, 1)
    s, e = start_dim % n, end_dim % n
    shape = self.shape[:s] + (int(np.prod(self.shape[s : e + 1])),) + self.shape[e + 1 :]
    return reshape(self, shape)


def unsqueeze(self: Tensor, dim: int) -> Tensor:
    n = self.ndim + 1
    d = dim % n
    return reshape(self, self.shape[:d] + (1,) + self.shape[d:])


def squeeze(self: Tensor, dim: Optional[int] = None) -> Tensor:
    if dim is None:
        return reshape(self, tuple(s for s in self.shape if s != 1))
    d = dim % max(self.ndim, 1)
    if self.ndim == 0 or self.shape[d] != 1:
        return self
    return reshape(self, self.shape[:d] + self.shape[d + 1 :])


def expand(self: Tensor, *sizes: Any) -> Tensor:
    shape = _dims(sizes)
    shape = tuple(self.shape[i - (len(shape) - self.ndim)] if s == -1 else s for i, s in enumerate(shape))
    return ops.Expand.apply(self, shape)


def getitem(self: Tensor, index: Any) -> Tensor:
    if isinstance(index, Tensor):
        index = index._data
    elif isinstance(index, tuple):
        index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
    return ops.GetItem.apply(self, index)


def setitem(self: Tensor, index: Any, value: Any) -> None:
    if grad_mode.is_grad_enabled() and self.requires_grad:
        raise RuntimeError("[setitem] expected no in-place write to a tensor that requires grad")
    if isinstance(index, Tensor):
        index = index._data
    self._data[index] = value._data if isinstance(value, Tensor) else value


def clamp(self: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    return ops.Clamp.apply(self, min, max)


def pow_(self: Tensor, exponent: Any) -> Tensor:
    return ops.Pow.apply(self, _operand(exponent, self))


def rpow(self: Tensor, base: Any) -> Tensor:
    return ops.Pow.apply(_operand(base, self), self)


def _neg(self: Tensor) -> Tensor:
    return ops.Neg.apply(self)


def _pos(self: Tensor) -> Tensor:
    return self


def _abs(self: Tensor) -> Tensor:
    return ops.Abs.apply(self)


def _exp(self: Tensor) -> Tensor:
    return ops.Exp.apply(self)


def _log(self: Tensor) -> Tensor:
    return ops.Log.apply(self)


def _sqrt(self: Tensor) -> Tensor:
    return ops.Sqrt.apply(self)


def _T(self: Tensor) -> Tensor:
    return permute(self, tuple(reversed(range(self.ndim))))


def _isfinite(self: Tensor) -> Tensor:
    return Tensor._wrap(xp_of(self._data).isfinite(self._data))


def _isnan(self: Tensor) -> Tensor:
    return Tensor._wrap(xp_of(self._data).isnan(self._data))


def methods() -> dict[str, Any]:
    """The operators and methods ``install`` sets on ``Tensor`` (declared for type checkers in tensor.py)."""
    add, sub, mul, div, matmul = _binary(ops.Add), _binary(ops.Sub), _binary(ops.Mul), _binary(ops.Div), \
        _binary(ops.MatMul)
    table: dict[str, Any] = {
        "__add__": add, "__radd__": _binary(ops.Add, swap=True),
        "__sub__": sub, "__rsub__": _binary(ops.Sub, swap=True),
        "__mul__": mul, "__rmul__": _binary(ops.Mul, swap=True),
        "__truediv__": div, "__rtruediv__": _binary(ops.Div, swap=True),
        "__matmul__": matmul, "__rmatmul__": _binary(ops.MatMul, swap=True),
        "__neg__": _neg, "__pos__": _pos, "__pow__": pow_, "__rpow__": rpow, "__abs__": _abs,
        "__getitem__": getitem, "__setitem__": setitem,
        "add": add, "sub": sub, "mul": mul, "div": div, "matmul": matmul, "mm": matmul, "pow": pow_,
        "neg": _neg, "abs": _abs, "exp": _exp, "log": _log, "sqrt": _sqrt, "clamp": clamp, "clip": clamp,
        "reshape": reshape, "view": reshape, "permute": permute,
        "transpose": transpose, "t": t, "T": property(_T), "flatten": flatten, "unsqueeze": unsqueeze,
        "squeeze": squeeze, "expand": expand,
        "isfinite": _isfinite, "isnan": _isnan,
    }
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        table[name] = _compare(name)
    return table


def install() -> None:
    for name, fn in methods().items():
        setattr(Tensor, name, fn)


def cat(tensors: Any, dim: int = 0) -> Tensor:
    return ops.Cat.apply(dim, *tensors)


def stack(tensors: Any, dim: int = 0) -> Tensor:
    return ops.Stack.apply(dim, *tensors)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    c = cond._data if isinstance(cond, Tensor) else cond
    like = a if isinstance(a, Tensor) else b
    return ops.Where.apply(c, _operand(a, like), _operand(b, like))
