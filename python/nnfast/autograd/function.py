"""The autograd tape: a node per differentiable operation.

A ``Function`` subclass holds the forward and its backward side by side.
Both work on raw arrays (NumPy on CPU, CuPy on GPU); ``apply`` unwraps the
Tensor arguments, runs ``forward``, and when any input needs a gradient
records the call as a node of the output's graph::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = np.exp(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, dy):
            (y,) = ctx.saved_tensors
            return dy * y

``backward`` returns one gradient per positional argument of ``forward``
(``None`` for non-differentiable ones). Activation gradients are fresh
arrays; leaf gradients accumulate into ``Tensor.grad``.
"""
from __future__ import annotations

from typing import Any

from . import anomaly, grad_mode


class Function:
    __slots__ = ("inputs", "needs_input_grad", "saved_tensors", "_released", "__dict__")

    def __init__(self) -> None:
        self.inputs: tuple[Any, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.saved_tensors: tuple[Any, ...] = ()
        self._released = False

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved_tensors = arrays

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        Tensor = _tensor_class()
        ctx = cls()
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *raw, **kwargs)
        record = False
        if grad_mode._enabled[0]:
            for a in args:
                if isinstance(a, Tensor) and a.requires_grad:
                    record = True
                    break
        result = Tensor._wrap(out, record)
        if record:
            ctx.inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
            result.grad_fn = ctx
        else:
            ctx.saved_tensors = ()
        if anomaly._enabled[0]:
            anomaly.check_forward(cls.__name__, out)
        return result


_TENSOR: list[Any] = []


def _tensor_class() -> Any:
    # Imported lazily (tensor.py imports this package) and cached: no import per op.
    if not _TENSOR:
        from ..tensor import Tensor

        _TENSOR.append(Tensor)
    return _TENSOR[0]
