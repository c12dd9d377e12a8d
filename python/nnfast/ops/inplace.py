"""In-place ops (``x.add_(y)``, ``x += y``, ``x.zero_()`` ...) with PyTorch's rules.

* Every in-place write bumps the storage's version counter (shared by its views, ``.data`` and
  ``.detach()``); a backward that needs the overwritten values raises PyTorch's
  "modified by an inplace operation" error instead of computing a wrong gradient.
* A leaf that requires grad cannot be modified in place while grad mode is on (wrap the update in
  ``nnfast.no_grad()``, or write through ``.data``).
* When the write must be recorded (grad mode on, and ``self`` or an operand requires grad) the op
  runs out of place on a snapshot of ``self``; ``self`` takes the result's values and its node,
  so the graph continues from the in-place op as in PyTorch.

Each ``name_`` method here is the out-of-place method ``name`` (from the other areas) run through
``apply_inplace``; adding one is adding its name to ``_FROM_OUT_OF_PLACE``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._dispatch import xp_of
from ..autograd import grad_mode
from ..autograd.basic_ops import unbroadcast
from ..autograd.function import Function
from ..tensor import Tensor


def bump_version(t: Tensor) -> None:
    """Record an in-place write to ``t``'s storage."""
    t._vc[0] += 1


def check_leaf(t: Tensor, op: str) -> None:
    if grad_mode._enabled[0] and t.requires_grad and t.grad_fn is None:
        raise RuntimeError(
            f"[{op}] a leaf Variable that requires grad is being used in an in-place operation; "
            "do the update under nnfast.no_grad() (or on .data)"
        )


def write(t: Tensor, values: Any, op: str) -> None:
    """Store ``values`` (an array or scalar broadcastable to ``t``) into ``t``'s storage, in place."""
    d = t._data
    v = values._data if isinstance(values, Tensor) else values
    vdt = getattr(v, "dtype", None)
    if vdt is not None and vdt != d.dtype and not np.can_cast(vdt, d.dtype, "same_kind"):
        raise RuntimeError(f"[{op}] expected a result castable to {d.dtype}: result type {vdt} can't be cast "
                           f"to the desired output type {d.dtype}")
    vshape = tuple(getattr(v, "shape", ()))
    if vshape != tuple(d.shape):
        try:
            if np.broadcast_shapes(vshape, d.shape) != tuple(d.shape):
                raise ValueError
        except ValueError:
            raise RuntimeError(f"[{op}] expected a result of shape {tuple(d.shape)}: output with shape "
                               f"{list(d.shape)} doesn't match the broadcast shape {list(vshape)}") from None
    if not d.flags.writeable:
        raise RuntimeError(f"[{op}] expected a writeable tensor; this one is a read-only (broadcast or "
                           "memory-mapped) view: clone() it first")
    d[...] = v  # casts as copyto(casting='unsafe') would, after the same_kind check above
    bump_version(t)


class Overwrite(Function):
    """``self`` replaced by a constant (``fill_``, ``zero_``, random fills): no gradient flows to the old values."""

    @staticmethod
    def forward(ctx: Any, old: Any, values: Any) -> Any:
        return values

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return xp_of(g).zeros(g.shape, dtype=g.dtype), None


class CopyFrom(Function):
    """``self.copy_(src)``: src broadcast and cast to self's shape and dtype; the gradient goes to src."""

    @staticmethod
    def forward(ctx: Any, old: Any, src: Any) -> Any:
        ctx.src_shape, ctx.src_dtype = tuple(src.shape), src.dtype
        xp = xp_of(old)
        return xp.broadcast_to(xp.asarray(src), old.shape).astype(old.dtype, copy=True)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        gs = unbroadcast(g, ctx.src_shape) if ctx.src_dtype.kind == "f" else None
        if gs is not None and gs.dtype != ctx.src_dtype:
            gs = gs.astype(ctx.src_dtype)
        return xp_of(g).zeros(g.shape, dtype=g.dtype), gs


def _snapshot(t: Tensor) -> Tensor:
    s = Tensor._wrap(t._data.copy(), t.requires_grad)
    s.grad_fn = t.grad_fn
    return s


def apply_inplace(self: Tensor, op: str, compute: Callable[[Tensor], Tensor]) -> Tensor:
    """Run ``compute`` (the out-of-place op on a tensor) and make its result ``self``'s new value."""
    if not grad_mode._enabled[0]:
        write(self, compute(self)._data, op)
        return self
    check_leaf(self, op)
    if self.grad_fn is not None and type(self.grad_fn).is_view:
        if self._view is None:
            raise RuntimeError(f"[{op}] expected a tensor that is not a view of another tensor that requires "
                               "grad (this view cannot be replayed): use the out-of-place op")
        return _inplace_on_view(self, op, compute)
    if self.requires_grad:
        src = _snapshot(self)  # the node may save the old values: give it a copy of its own
        r = compute(src)
    else:
        r = compute(self)
        if r.requires_grad:  # an operand requires grad: its node may have saved self's array
            r = compute(_snapshot(self))
    if tuple(r.shape) != tuple(self.shape):
        write(self, r._data, op)  # raises the shape error
    if self.requires_grad and not r.requires_grad:
        r = Overwrite.apply(src, r._data)
    write(self, r._data, op)
    if r.requires_grad:
        self.grad_fn = r.grad_fn
        self.requires_grad = True
    return self


class _ViewScatter(Function):
    """``base`` with the region ``replay`` selects replaced by ``values``: the graph of an in-place op
    on a view, seen from its base (PyTorch's CopySlices)."""

    @staticmethod
    def forward(ctx: Any, base: Any, values: Any, replay: Callable[[Tensor], Tensor]) -> Any:
        ctx.replay = replay
        out = base.copy()
        _region(out, replay)[...] = values
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        gb = g.copy()
        _region(gb, ctx.replay)[...] = 0
        return gb, _region(g, ctx.replay).copy(), None


def _region(a: Any, replay: Callable[[Tensor], Tensor]) -> Any:
    """The view of array ``a`` that ``replay`` selects (run outside the graph)."""
    with grad_mode.no_grad():
        return replay(Tensor._wrap(a))._data


def _inplace_on_view(self: Tensor, op: str, compute: Callable[[Tensor], Tensor]) -> Tensor:
    """An in-place op on a view of a tensor in the graph: recompute the whole base as 'old base with
    the view's region replaced by the op's result', make that the base's node, and re-derive the
    view's node from the base (so gradients reach both the base's history and the op's operands)."""
    base, replay = self._view
    if base.requires_grad and base.grad_fn is None:
        raise RuntimeError(f"[{op}] a view of a leaf Variable that requires grad is being used in an in-place "
                           "operation; do the update under nnfast.no_grad()")
    old = _snapshot(base)
    r = compute(replay(old))
    if tuple(r.shape) != tuple(self.shape):
        write(self, r._data, op)  # raises the shape error
    new_base = _ViewScatter.apply(old, r, replay)
    write(base, new_base._data, op)
    base.grad_fn, base.requires_grad = new_base.grad_fn, new_base.requires_grad
    fresh = replay(base)
    self.grad_fn, self.requires_grad = fresh.grad_fn, fresh.requires_grad
    return self


# ---------------------------------------------------------------- the methods
def _from_out_of_place(name: str) -> Callable[..., Tensor]:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return apply_inplace(self, name + "_", lambda s: getattr(s, name)(*args, **kwargs))

    method.__name__ = name + "_"
    method.__doc__ = f"In-place version of :meth:`Tensor.{name}`."
    return method


def _operator(name: str) -> Callable[[Tensor, Any], Tensor]:
    """``x op= y`` for the operator ``name`` (``__add__`` ...): errors are named as ``add_``."""
    label = name.strip("_") + "_"

    def method(self: Tensor, other: Any) -> Tensor:
        return apply_inplace(self, label, lambda s: getattr(s, name)(other))

    method.__name__ = "__i" + name.lstrip("_")
    return method


def zero_(self: Tensor) -> Tensor:
    return fill_(self, 0)


def fill_(self: Tensor, value: Any) -> Tensor:
    v = value._data if isinstance(value, Tensor) else value
    if getattr(v, "size", 1) != 1:
        raise RuntimeError(f"[fill_] expected a 0-dim value tensor, got shape {tuple(v.shape)}")
    if hasattr(v, "shape"):
        v = v.reshape(()).item()
    xp = xp_of(self._data)
    return apply_inplace(self, "fill_", lambda s: Tensor._wrap(xp.full(s.shape, v, dtype=s.dtype)))


def copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor._wrap(xp_of(self._data).asarray(src))
    elif src.device != self.device:
        src = src.to(self.device)
    return apply_inplace(self, "copy_", lambda s: CopyFrom.apply(s, src))


def set_values(self: Tensor, op: str, values: Any) -> Tensor:
    """Overwrite ``self`` with ``values`` (an array of its shape) under the in-place rules: what the
    random fills (``normal_``, ``uniform_`` ...) use."""
    return apply_inplace(self, op, lambda s: Tensor._wrap(values))


# Out-of-place methods whose ``name_`` twin is the op then a write (each must exist on Tensor
# by the time it is called; areas that do not define one simply leave the twin failing loudly).
_FROM_OUT_OF_PLACE = (
    "add", "sub", "mul", "div", "pow", "clamp", "clip", "clamp_min", "clamp_max", "neg", "abs", "exp", "log",
    "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sign", "sin", "cos", "tanh", "sigmoid", "relu", "floor",
    "ceil", "round", "trunc", "frac", "fmod", "remainder", "lerp", "addcmul", "addcdiv", "masked_fill",
    "index_fill", "index_add", "index_copy", "scatter", "scatter_add", "scatter_reduce", "maximum", "minimum",
    "tril", "triu", "t", "squeeze", "unsqueeze", "transpose", "logical_not", "logical_and", "logical_or",
    "square", "nan_to_num", "hardtanh", "leaky_relu", "elu", "true_divide", "subtract", "multiply", "divide",
    "copysign", "atan2", "exponential", "uniform", "normal", "bernoulli", "random", "geometric", "log_normal",
    "cauchy", "fmax", "fmin", "xlogy", "erf", "erfc", "erfinv", "sinh", "cosh", "tan", "asin", "acos", "atan", "log2",
    "log10", "exp2", "sgn", "deg2rad", "rad2deg", "float_power", "hypot", "logit", "heaviside", "digamma",
    "lgamma", "mvlgamma", "polygamma", "renorm", "put", "index_put", "masked_scatter", "cumsum", "cumprod",
)

METHODS: dict[str, Any] = {
    "zero_": zero_, "fill_": fill_, "copy_": copy_,
    "__iadd__": _operator("__add__"), "__isub__": _operator("__sub__"), "__imul__": _operator("__mul__"),
    "__itruediv__": _operator("__truediv__"), "__ipow__": _operator("__pow__"),
    "__imatmul__": _operator("__matmul__"), "__ifloordiv__": _operator("__floordiv__"),
    "__imod__": _operator("__mod__"), "__iand__": _operator("__and__"), "__ior__": _operator("__or__"),
    "__ixor__": _operator("__xor__"),
}
FUNCTIONS: dict[str, Any] = {}


def methods() -> dict[str, Any]:
    """METHODS plus ``name_`` for every ``name`` of ``_FROM_OUT_OF_PLACE`` that Tensor has (installed last)."""
    table = {name + "_": _from_out_of_place(name) for name in _FROM_OUT_OF_PLACE
             if hasattr(Tensor, name) and not hasattr(Tensor, name + "_")}
    table.update(METHODS)
    return table
