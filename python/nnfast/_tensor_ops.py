"""Operators and methods of ``Tensor`` that build on the tape (``basic_ops``)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _dispatch
from ._dispatch import BINARY_CODES, FAST_PATHS, xp_of
from .autograd import basic_ops as ops
from .autograd.linalg_ops import MatMul
from .autograd import grad_mode
from .autograd.function import Function, record_node
from .tensor import _BFLOAT16, Tensor, get_default_dtype


# ---------------------------------------------------------------- type promotion (PyTorch's rules)
# Categories bool < integer < float. Operands fall in three groups: tensors with dims, 0-dim
# tensors, Python numbers; a later group only counts when it raises the category of the ones
# before it (so float32 tensor + 2.5 stays float32, int64 tensor + 2.5 gets the default dtype).
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_BOOL, _INT64 = np.dtype(np.bool_), np.dtype(np.int64)
_BF16 = _BFLOAT16 if _BFLOAT16 is not None else _BOOL  # the bool stand-in never matches a 'V' check
_NUMBERS = (bool, int, float, np.bool_, np.integer, np.floating)


def _category(dt: np.dtype[Any]) -> int:
    return 2 if dt.kind == "f" or dt == _BF16 else 1 if dt.kind in "iu" else 0


def _arith_kind(dt: np.dtype[Any]) -> bool:
    """bool, integer or floating (bfloat16, an ml_dtypes 'V' dtype, included)."""
    return dt.kind in "biuf" or dt == _BF16


def promote_types(type1: Any, type2: Any) -> np.dtype[Any]:
    """The smallest dtype both ``type1`` and ``type2`` convert to without losing their category."""
    a: np.dtype[Any] = np.dtype(type1)
    b: np.dtype[Any] = np.dtype(type2)
    for d in (a, b):
        if not _arith_kind(d):
            raise TypeError(f"[promote_types] expected bool, integer or floating dtypes, got {d}")
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    out: np.dtype[Any] = np.promote_types(a, b)
    return out


def _number_dtype(x: Any) -> np.dtype[Any]:
    """The dtype a Python (or NumPy) number takes in arithmetic: bool, int64, or the default float."""
    if isinstance(x, (bool, np.bool_)):
        return _BOOL
    if isinstance(x, (int, np.integer)):
        return _INT64
    return get_default_dtype()


def _combine(higher: Optional[np.dtype[Any]], lower: Optional[np.dtype[Any]]) -> Optional[np.dtype[Any]]:
    """A lower-priority group's dtype joins only when it raises the category."""
    if higher is None or lower is None:
        return higher if lower is None else lower
    if _category(higher) == 2:
        return higher
    if higher.kind == "b" or _category(lower) == 2:
        return promote_types(higher, lower)
    return higher


def _result_dtype(op: str, operands: Any) -> np.dtype[Any]:
    groups: list[Optional[np.dtype[Any]]] = [None, None, None]  # dims, 0-dim, numbers
    for x in operands:
        if x is None:
            continue
        if isinstance(x, _NUMBERS):
            g, d = 2, _number_dtype(x)
        else:
            arr = x._data if isinstance(x, Tensor) else x
            ad = getattr(arr, "dtype", None)
            if ad is None or not _arith_kind(ad):
                raise TypeError(f"[{op}] expected tensors or numbers, got {type(x).__name__}"
                                + ("" if ad is None else f" of dtype {ad}"))
            d = ad
            g = 0 if arr.ndim else 1
        groups[g] = d if groups[g] is None else promote_types(groups[g], d)
    out = _combine(groups[0], _combine(groups[1], groups[2]))
    if out is None:
        raise TypeError(f"[{op}] expected at least one tensor or number")
    return out


def result_type(tensor1: Any, tensor2: Any) -> np.dtype[Any]:
    """The dtype arithmetic between ``tensor1`` and ``tensor2`` (tensors or numbers) gives."""
    return _result_dtype("result_type", (tensor1, tensor2))


def can_cast(from_: Any, to: Any) -> bool:
    """Whether an in-place op may write a ``from_`` result into a ``to`` tensor: never float to
    integer/bool, nor integer to bool."""
    return _category(np.dtype(from_)) <= _category(np.dtype(to))


def _to(x: Any, dtype: np.dtype[Any], like: Any) -> Any:
    """``x`` as ``dtype``: tensors through the (differentiable) cast, numbers as 0-d arrays on
    ``like``'s device; None stays None."""
    if x is None:
        return None
    if isinstance(x, Tensor):
        return x if x._data.dtype == dtype else x.to(dtype)
    return xp_of(like).asarray(x, dtype=dtype)


def _check_shapes(op: str, xs: Any) -> None:
    shapes = [tuple(x.shape) for x in xs if x is not None and getattr(x, "ndim", False)]
    if len(shapes) > 1 and any(s != shapes[0] for s in shapes):
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"[{op}] expected broadcastable shapes, got "
                             + " and ".join(str(s) for s in shapes)) from None


def promote(op: str, *xs: Any, floating: bool = False, dtype: Optional[np.dtype[Any]] = None
            ) -> tuple[np.dtype[Any], list[Any]]:
    """The operands of a pointwise op in their common dtype (``floating``: integer results become
    the default float dtype, as true division and exp do; ``dtype``: this dtype instead)."""
    like = None
    for x in xs:
        if isinstance(x, Tensor):
            like = x._data
            break
    if like is None:
        raise TypeError(f"[{op}] expected at least one tensor argument")
    dt = _result_dtype(op, xs) if dtype is None else dtype
    if floating and _category(dt) != 2:
        dt = get_default_dtype()
    _check_shapes(op, xs)
    return dt, [_to(x, dt, like) for x in xs]


def _bool_sub_error(op: str) -> TypeError:
    return TypeError(f"[{op}] expected non-bool operands: subtraction, the `-` operator, with two bool tensors "
                     "is not supported; use the `^` or `logical_xor()` operator instead")


def arith(fn: type[Function], op: str, a: Any, b: Any) -> Tensor:
    """``fn(a, b)`` under PyTorch's promotion (one of a, b a Tensor)."""
    dt, (a, b) = promote(op, a, b, floating=fn is ops.Div)
    if dt.kind == "b" and fn is ops.Sub:
        raise _bool_sub_error(op)
    return fn.apply(a, b)


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _binary(fn: type[Function], op: str, swap: bool = False) -> Any:
    """The operator ``self (op) other`` (``swap``: ``other (op) self``). Same-dtype float operands,
    and a float tensor with a Python number, need no promotion: that fast path is inlined here."""
    apply = fn.apply
    binary_cls: Any = fn  # an autograd.basic_ops._Binary subclass
    code, saves = BINARY_CODES[op], bool(binary_cls.saves_inputs)
    # Its kernels are read per call (tests patch them), from the set's __dict__: a dict lookup
    # is cheaper than the attribute (KernelSet's __getattr__ keeps CPython from specialising it).
    kernels = vars(_dispatch._CPU_KERNELS[op])
    ndarray, empty, asarray, wrap, fast = np.ndarray, np.empty, np.asarray, Tensor._wrap, FAST_PATHS
    new, tensor_cls = object.__new__, Tensor

    def method(self: Tensor, other: Any) -> Tensor:
        a = self._data
        d = a.dtype
        if fast[0] and type(a) is ndarray and (d is _F32 or d is _F64):
            # Fast path: CPU float operands of one dtype, the same shape or a Python number; the
            # kernel is called inline and the node recorded as Function.apply would.
            t = other if isinstance(other, Tensor) else None
            if t is not None:
                b = t._data
                ok = type(b) is ndarray and (b is a or (b.dtype is d and b.shape == a.shape))
            else:
                ok = type(other) is float or type(other) is int
                b = asarray(other, d) if ok else None
            if ok:
                try:
                    if swap:
                        out = empty(a.shape, d)
                        kernels["binary_op"](out, b, a, code)
                    else:  # the kernel allocates the result (b has a's shape or is 0-d)
                        out = kernels["binary_new"](a, b, code)
                except ValueError:  # e.g. more dims than the kernel takes: the general path below
                    ok = False
            if ok:
                if not ((self.requires_grad or (t is not None and t.requires_grad)) and grad_mode._enabled[0]):
                    # Tensor._wrap(out) inlined (out is a fresh ndarray): this return is the hot one.
                    # One store per statement: a tuple assignment builds and unpacks a tuple first.
                    r = new(tensor_cls)
                    r._data = out
                    r.grad = None
                    r.grad_fn = None
                    r._hooks = None
                    r._post_hooks = None
                    r._vc = [0]
                    r._view = None
                    r.requires_grad = False
                    return r
                x, y, tx, ty = (b, a, t, self) if swap else (a, b, self, t)
                ctx: Any = fn()
                ctx.shapes = (x.shape, y.shape)
                versions = None
                if saves:
                    ctx.saved_tensors = (x, y)
                    versions = [(v._vc, v._vc[0], v._data.shape) for v in (tx, ty) if v is not None] or None
                res = wrap(out, True)
                record_node(ctx, (tx, ty), (x, y), res, versions)
                return res
        if isinstance(other, Tensor):
            if d == other._data.dtype and d.kind == "f":
                return apply(other, self) if swap else apply(self, other)
        elif d.kind == "f" and isinstance(other, (float, int)):
            o = xp_of(self._data).asarray(other, dtype=d)
            return apply(o, self) if swap else apply(self, o)
        return arith(fn, op, other, self) if swap else arith(fn, op, self, other)

    return method


def compare(ufunc: str, a: Any, b: Any) -> Tensor:
    """``xp.<ufunc>(a, b)`` (a comparison: a bool tensor) in the operands' common dtype."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype == b._data.dtype:
        x, y = a._data, b._data
    else:
        _, (x, y) = promote(ufunc, a, b)
        x, y = (v._data if isinstance(v, Tensor) else v for v in (x, y))
    return Tensor._wrap(getattr(xp_of(x if hasattr(x, "ndim") else y), ufunc)(x, y))


def _compare(ufunc: str, swap: bool = False) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        return compare(ufunc, other, self) if swap else compare(ufunc, self, other)

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




def _pos(self: Tensor) -> Tensor:
    return self


def _T(self: Tensor) -> Tensor:
    return permute(self, tuple(reversed(range(self.ndim))))


def _array_operand(x: Any, like: Tensor) -> Any:
    """For ``@``: tensors pass through, Python data becomes an array on ``like``'s device (numbers of
    ``like``'s float dtype)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, bool)) and like.dtype.kind == "f":
        return xp_of(like._data).asarray(x, dtype=like.dtype)
    return xp_of(like._data).asarray(x)


def _matmul(self: Tensor, other: Any) -> Tensor:
    return MatMul.apply(self, _array_operand(other, self))


def _rmatmul(self: Tensor, other: Any) -> Tensor:
    return MatMul.apply(_array_operand(other, self), self)


def methods() -> dict[str, Any]:
    """The operators and methods ``install`` sets on ``Tensor`` (declared for type checkers in tensor.py)."""
    matmul = _matmul
    table: dict[str, Any] = {
        "__add__": _binary(ops.Add, "add"), "__radd__": _binary(ops.Add, "add", swap=True),
        "__sub__": _binary(ops.Sub, "sub"), "__rsub__": _binary(ops.Sub, "sub", swap=True),
        "__mul__": _binary(ops.Mul, "mul"), "__rmul__": _binary(ops.Mul, "mul", swap=True),
        "__truediv__": _binary(ops.Div, "div"), "__rtruediv__": _binary(ops.Div, "div", swap=True),
        "__matmul__": matmul, "__rmatmul__": _rmatmul, "__pos__": _pos,
        "__getitem__": getitem, "__setitem__": setitem,
        "matmul": matmul, "mm": matmul, "reshape": reshape, "view": reshape, "permute": permute,
        "transpose": transpose, "t": t, "T": property(_T), "flatten": flatten, "unsqueeze": unsqueeze,
        "squeeze": squeeze, "expand": expand,
    }
    for name, ufunc in (("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                        ("eq", "equal"), ("ne", "not_equal")):
        table[f"__{name}__"] = _compare(ufunc)
    return table


def install() -> None:
    for name, fn in methods().items():
        setattr(Tensor, name, fn)


def cat(tensors: Any, dim: int = 0) -> Tensor:
    return ops.Cat.apply(dim, *tensors)


def stack(tensors: Any, dim: int = 0) -> Tensor:
    return ops.Stack.apply(dim, *tensors)


def where(condition: Any, input: Any = None, other: Any = None) -> Any:  # noqa: A002
    """``input`` where ``condition`` (a bool tensor) holds, else ``other`` (tensors or numbers, in
    their promoted dtype); differentiable in both. ``where(condition)`` alone: the indices of its
    True elements, one int64 tensor per dim."""
    if not isinstance(condition, Tensor) or condition.dtype != _BOOL:
        got = condition.dtype if isinstance(condition, Tensor) else type(condition).__name__
        raise TypeError(f"[where] expected condition to be a bool tensor, got {got}")
    c = condition._data
    if input is None and other is None:
        return tuple(Tensor._wrap(i) for i in xp_of(c).nonzero(c))
    if input is None or other is None:
        raise TypeError("[where] expected both input and other, or neither")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = Tensor._wrap(xp_of(c).asarray(input, dtype=_result_dtype("where", (input, other))))
    _check_shapes("where", (c, input, other))
    _, (a, b) = promote("where", input, other)
    return ops.Where.apply(c, a, b)
