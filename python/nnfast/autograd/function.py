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
arrays; leaf gradients accumulate into ``Tensor.grad``. A backward that adds
a leaf's gradient into ``ctx.grad_buffer(i)`` itself (e.g. a GEMM with
beta = 1) returns ``ACCUMULATED`` in that slot, so no temporary is made.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import anomaly, grad_mode

if TYPE_CHECKING:
    from ..tensor import Tensor


class _Accumulated:
    """Marker returned by a backward for a gradient it already added into the leaf's buffer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ACCUMULATED"


ACCUMULATED: Any = _Accumulated()


class Function:
    # No __init__: a node is made on every op, so its fields start as class defaults (the
    # instance dict only gets what a forward or the recording sets).
    __slots__ = ("__dict__",)
    inputs: tuple[Any, ...] = ()
    needs_input_grad: tuple[bool, ...] = ()
    saved_tensors: tuple[Any, ...] = ()
    _released = False
    # Set by the engine on nodes backpropagated with retain_graph=True: backward
    # must then leave its saved arrays untouched (it may not hand them out).
    _retain_graph = False
    # A view op (reshape, permute, basic indexing ...): an output that shares the input's memory
    # also shares its version counter, so writing through either is seen by both.
    is_view = False
    # A view op whose forward can be replayed on another base (its other arguments are plain
    # values): an in-place op on such a view rewrites the base's graph, as PyTorch's CopySlices.
    replayable = True
    # Set per node only when needed (class defaults keep the common node cheap to make):
    _versions: Any = None         # (counter, version, shape) of the saved inputs / output
    _grad_hooks: Any = None       # hooks of the non-leaf tensor this node produced
    _retained: Any = None         # weakref to that tensor when it called retain_grad()
    _next: tuple[Any, ...] = ()   # each input's node when this one was recorded (None: a leaf)
    _sole_consumer = False        # set by the engine per backward: one edge feeds this node's gradient

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved_tensors = arrays

    def grad_buffer(self, i: int) -> Any:
        """The ``.grad`` array of input ``i`` when backward may add into it in place, else None.

        Only for a leaf that requires grad, has no hooks (they must see the
        gradient alone), already holds a writeable C-contiguous gradient of its
        own dtype and shape, and outside anomaly mode (which inspects each
        gradient). Adding in place is what accumulation does anyway; it just
        skips the temporary and the extra pass over it.
        """
        inputs = self.inputs
        t = inputs[i] if i < len(inputs) else None
        if t is None or t.grad_fn is not None or not t.requires_grad or t._hooks:
            return None
        gt = t.grad
        if gt is None or anomaly._enabled[0]:
            return None
        g = gt._data
        d = t._data
        gd, dd = g.dtype, d.dtype
        if (gd is not dd and gd != dd) or g.shape != d.shape:  # (builtin dtypes are singletons)
            return None
        f = g.flags
        if not f.c_contiguous or not f.writeable:
            return None
        if type(g) is not type(d):
            return None
        return g

    def param_grad(self, i: int, xp: Any, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
        """``(buffer, result)`` for the gradient of input ``i`` from a kernel that accumulates into it
        (the parameter-gradient rule of csrc/include/nnfast/common.h): ``grad_buffer(i)`` viewed as
        ``shape`` with result ACCUMULATED when allowed, else fresh zeros returned as they are."""
        buf = self.grad_buffer(i)
        if buf is not None:
            return buf.reshape(shape), ACCUMULATED
        z = xp.zeros(shape, dtype=dtype)
        return z, z

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
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        Tensor = _TENSOR[0] if _TENSOR else _tensor_class()
        ctx = cls()
        # One pass over the arguments: unwrap tensors, note whether any needs a gradient (the
        # per-input tuples are only built when the node is recorded).
        raw = []
        record = False
        for a in args:
            if isinstance(a, Tensor):
                raw.append(a._data)
                if a.requires_grad:
                    record = True
            else:
                raw.append(a)
        out = cls.forward(ctx, *raw, **kwargs)
        record = record and grad_mode._enabled[0]
        result = Tensor._wrap(out, record)
        if cls.is_view and raw and isinstance(args[0], Tensor) and _shares_memory(out, raw[0]):
            result._vc = args[0]._vc
            if record and cls.replayable:
                result._view = _view_link(args[0], cls, args[1:], kwargs)
        if record:
            record_node(ctx, tuple(a if isinstance(a, Tensor) else None for a in args), raw, result)
        elif ctx.saved_tensors:
            ctx.saved_tensors = ()
        if anomaly._enabled[0]:
            anomaly.check_forward(cls.__name__, out)
        return result


def record_node(ctx: Function, inputs: tuple[Any, ...], raw: Any, result: Any, versions: Any = ()) -> None:
    """Put ``ctx`` on the tape as the node that made ``result`` from ``inputs`` (one entry per
    positional argument of the forward: the Tensor, or None), whose arrays are ``raw``.

    ``Function.apply`` and the ops' fast paths (which run their kernels inline) both end here,
    so a recorded node looks the same whichever way it was made. A fast path that knows which of
    its arrays backward reads passes their ``versions`` itself ((counter, version, shape) each, as
    ``_saved_versions`` makes them; None when none is an input or the output)."""
    ctx.inputs = inputs
    # The graph is frozen here: a later in-place op gives an input a new node, which must not
    # change what this node's gradient flows into.
    ctx._next = tuple([None if t is None else t.grad_fn for t in inputs])  # (lists: faster than generators)
    ctx.needs_input_grad = tuple([t is not None and t.requires_grad for t in inputs])
    result.grad_fn = ctx
    if versions != ():
        ctx._versions = versions
    elif ctx.saved_tensors:
        ctx._versions = _saved_versions(ctx.saved_tensors, inputs, raw, result)


def _shares_memory(a: Any, b: Any) -> bool:
    try:
        return bool(np.may_share_memory(a, b))
    except TypeError:  # CuPy arrays: compare the allocations
        return getattr(getattr(a, "data", None), "mem", 1) is getattr(getattr(b, "data", None), "mem", 2)


def _view_link(src: Any, cls: Any, rest: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(base, replay): the tensor this view's memory belongs to, and base -> this view (chained views
    compose, so the base is the root)."""
    if src._view is None:
        return src, lambda t: cls.apply(t, *rest, **kwargs)
    base, outer = src._view
    return base, lambda t: cls.apply(outer(t), *rest, **kwargs)


def _saved_versions(saved: tuple[Any, ...], inputs: Sequence[Any], raw: Sequence[Any], result: Any) -> Any:
    """(counter, version, shape) of each tensor whose array backward reads (an input or the
    output saved as it is), so backward can tell when one was modified in place since."""
    ids = {id(a) for a in saved}
    out = [(t._vc, t._vc[0], t.shape) for t, a in zip(inputs, raw) if t is not None and id(a) in ids]
    if id(result._data) in ids:
        out.append((result._vc, 0, result.shape))
    return out or None


def check_versions(node: Function) -> None:
    """Raise PyTorch's error when an array saved by ``node`` was modified in place after the forward."""
    for counter, version, shape in node._versions or ():
        if counter[0] != version:
            raise RuntimeError(
                "[backward] one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: a tensor of shape {tuple(shape)} used by {node.name} is at version "
                f"{counter[0]}; expected version {version} instead. Hint: make the in-place update out of "
                "place (x = x + y instead of x += y), or clone() the tensor before modifying it"
            )


_TENSOR: list[type[Tensor]] = []


def _tensor_class() -> type[Tensor]:
    # Imported lazily (tensor.py imports this package) and cached: no import per op.
    if not _TENSOR:
        from ..tensor import Tensor

        _TENSOR.append(Tensor)
    return _TENSOR[0]
