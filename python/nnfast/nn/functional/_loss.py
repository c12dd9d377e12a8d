"""Losses: PyTorch's functional losses plus nnfast's rmse_loss, perceptron_loss
and linear_cross_entropy, each forward and backward in nnfast's kernels.

Class-dim losses (cross_entropy, nll_loss) hand the kernel an (N, C, S) view
of (N, C, d1, ...) inputs (a (C,) input is (1, C, 1)); pointwise losses hand
it (R, K) views with weights broadcast by zero strides. Python only checks
arguments, reshapes and allocates.
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional

import numpy as np

from ... import _dispatch
from ..._dispatch import contiguous, kernels, xp_of
from ...autograd import grad_mode
from ...autograd.function import Function, record_node
from ...tensor import Tensor
from ._checks import check_float, check_same_device, check_same_dtype
from ...amp.autocast_mode import amp_op

__all__ = [
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "smooth_l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "rmse_loss",
    "perceptron_loss",
    "linear_cross_entropy",
]

_RED = {"none": 0, "mean": 1, "sum": 2}
# nnfast::PointLoss codes (csrc/include/nnfast/loss.h).
_MSE, _L1, _HUBER, _SMOOTH_L1, _BCE, _BCE_LOGITS, _KLDIV, _KLDIV_LOG, _PERCEPTRON = range(9)


# ---------------------------------------------------------------------------------------- helpers
def _reduction(op: str, reduction: str, size_average: Any = None, reduce: Any = None,
               extra: tuple[str, ...] = ()) -> str:
    """PyTorch's reduction string, honouring the legacy size_average/reduce pair."""
    if size_average is not None or reduce is not None:
        sa = True if size_average is None else bool(size_average)
        rd = True if reduce is None else bool(reduce)
        reduction = "none" if not rd else ("mean" if sa else "sum")
    allowed = tuple(_RED) + extra
    if reduction not in allowed:
        raise ValueError(f"[{op}] expected reduction to be one of {', '.join(map(repr, allowed))}, got {reduction!r}")
    return reduction


def _needs_grad(t: Any) -> bool:
    return isinstance(t, Tensor) and t.requires_grad and grad_mode.is_grad_enabled()


def _no_grad_for(op: str, t: Any, name: str) -> None:
    if _needs_grad(t):
        raise NotImplementedError(f"[{op}] has no gradient with respect to {name}; pass a tensor without requires_grad")


def _target_tensor(op: str, target: Any) -> Tensor:
    if isinstance(target, np.ndarray):
        return Tensor(target)
    if not isinstance(target, Tensor):
        raise TypeError(f"[{op}] expected target to be an nnfast.Tensor, got {type(target).__name__}")
    return target


def _class_weight(op: str, input: Tensor, weight: Any, C: int) -> Any:
    if weight is None:
        return None
    check_float(op, weight, "weight")
    check_same_dtype(op, input, weight, "weight")
    check_same_device(op, input, weight)
    if weight.shape != (C,):
        raise ValueError(f"[{op}] expected weight of shape ({C},) (one per class), got {weight.shape}")
    _no_grad_for(op, weight, "weight")
    return weight


def _class_layout(op: str, input: Tensor) -> tuple[int, int, int]:
    """(N, C, S) of a class-dim input: (N, C, d1, ...) or (C,)."""
    shape = input._data.shape
    if len(shape) == 1:
        return 1, shape[0], 1
    if len(shape) < 1:
        raise ValueError(f"[{op}] expected input of shape (C,), (N, C) or (N, C, d1, ...), got {shape}")
    return shape[0], shape[1], (int(math.prod(shape[2:])) if len(shape) > 2 else 1)


def _class_loss_args(op: str, input: Tensor, target: Any, reduction: str, size_average: Any,
                     reduce: Any) -> tuple[Tensor, int, int]:
    """The checks cross_entropy and nll_loss share (float input, a target tensor on its device, a
    known reduction, at least one class); returns (target, reduction code, C)."""
    check_float(op, input)
    target = _target_tensor(op, target)
    check_same_device(op, input, target)
    red = _RED[_reduction(op, reduction, size_average, reduce)]
    C = _class_layout(op, input)[1]
    if C < 1 and input._data.ndim >= 2:
        raise ValueError(f"[{op}] expected input with at least one class, got shape {input.shape}")
    return target, red, C


def _as3(a: Any, N: int, C: int, S: int) -> Any:
    return a.reshape(N, C, S)


def _class_index_target(op: str, input: Tensor, target: Tensor) -> None:
    shape = input._data.shape
    want = shape[:1] + shape[2:] if len(shape) >= 2 else ()
    if target._data.dtype.kind not in "iu":
        raise TypeError(
            f"[{op}] expected target to be int64 class indices of shape {want} or a float tensor of the input's "
            f"shape {input.shape} (class probabilities), got {target.dtype} of shape {target.shape}"
        )
    if target._data.shape != want:
        raise ValueError(f"[{op}] expected target of shape {want} for input of shape {shape}, got {target.shape}")


def _target_rows(t: Any, N: int, S: int) -> Any:
    if t.dtype != np.int64:
        t = t.astype(np.int64)
    return t.reshape(N, S)


def _out_shape(input_shape: tuple[int, ...], red: int) -> tuple[int, ...]:
    if red != 0:
        return ()
    return input_shape[:1] + input_shape[2:] if len(input_shape) >= 2 else ()


def _class_loss_out(x: Any, red: int) -> tuple[tuple[int, int, int], Any]:
    """(N, C, S) of a class loss's input and the kernel's loss output: one value per (sample,
    position), or a single one when reduced."""
    N, C, S = _class_dims(x)
    return (N, C, S), xp_of(x).empty((N * S,) if red == 0 else (1,), dtype=x.dtype)


def _class_loss_result(ctx: Any, x: Any, loss: Any, red: int) -> Any:
    """The class loss in PyTorch's shape; records the reduction and input shape its backward reads."""
    ctx.red, ctx.in_shape = red, x.shape
    return loss.reshape(_out_shape(x.shape, red))


def _scale_saved(K: Any, saved: Any, g: Any, ga: Any, in_shape: tuple[int, ...]) -> Any:
    """A forward-saved d(loss)/d(input) times the incoming gradient ``g`` (``ga``: as the kernel takes it)."""
    if saved.ndim == 2:  # saved (N, C) by the cross_entropy fast path: the kernel takes (N, C, 1)
        saved = saved.reshape(saved.shape + (1,))
    d = xp_of(g).empty_like(saved)
    K.loss_scale_grad(d, saved, ga)
    return d.reshape(in_shape)


def _grad_arg(g: Any, red: int) -> Any:
    """Incoming gradient as the kernels take it: a float for a reduced loss, else a contiguous array."""
    if red != 0:
        return float(g)
    return contiguous(g).reshape(-1)


# ---------------------------------------------------------------------------------------- cross_entropy
class CrossEntropyFunction(Function):
    """Fused softmax cross-entropy, class-index targets.

    Forward is one kernel call that writes the loss and, when the input needs
    a gradient, d(loss)/d(logits) (already divided by the mean's weight sum);
    backward only scales that saved gradient by the incoming one.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, target: Any, weight: Any, ignore_index: int, label_smoothing: float, red: int,
                need_grad: bool) -> Any:
        K = kernels("cross_entropy", x, target, weight)
        (N, C, S), loss = _class_loss_out(x, red)
        dx = xp_of(x).empty((N, C, S), dtype=x.dtype) if need_grad else None
        K.cross_entropy(loss, dx, _as3(x, N, C, S), _target_rows(target, N, S),
                        None if weight is None else contiguous(weight), int(ignore_index), float(label_smoothing), red)
        ctx.save_for_backward(dx)
        return _class_loss_result(ctx, x, loss, red)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (saved,) = ctx.saved_tensors
        if saved is None:
            raise RuntimeError("[cross_entropy] expected the forward to have saved its gradient")
        if _is_unit_grad(g, ctx):
            # loss.backward() on the reduced loss: the saved gradient is the answer.
            # Handed over (not copied): the node is freed after this backward.
            return saved.reshape(ctx.in_shape), None, None
        return _scale_saved(kernels("cross_entropy", g), saved, g, _grad_arg(g, ctx.red), ctx.in_shape), None, None


class CrossEntropyProbFunction(Function):
    """Softmax cross-entropy with class-probability targets (the target may require grad)."""

    @staticmethod
    def forward(ctx: Any, x: Any, target: Any, weight: Any, label_smoothing: float, red: int, need_dx: bool,
                need_dt: bool) -> Any:
        K = kernels("cross_entropy", x, target, weight)
        xp = xp_of(x)
        (N, C, S), loss = _class_loss_out(x, red)
        dx = xp.empty((N, C, S), dtype=x.dtype) if need_dx else None
        dt = xp.empty((N, C, S), dtype=x.dtype) if need_dt else None
        K.cross_entropy_prob(loss, dx, dt, _as3(x, N, C, S), _as3(target, N, C, S),
                             None if weight is None else contiguous(weight), float(label_smoothing), red)
        ctx.save_for_backward(dx, dt)
        return _class_loss_result(ctx, x, loss, red)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        saved_dx, saved_dt = ctx.saved_tensors
        K = kernels("cross_entropy", g)
        ga = _grad_arg(g, ctx.red)
        need = ctx.needs_input_grad
        return tuple(None if saved is None or not need[i] else _scale_saved(K, saved, g, ga, ctx.in_shape)
                     for i, saved in enumerate((saved_dx, saved_dt))) + (None,)


def _is_unit_grad(g: Any, ctx: Any) -> bool:
    """True when the incoming gradient of a reduced loss is exactly 1 on the CPU and
    the graph is not retained, so the saved gradient can be returned as is."""
    if ctx.red == 0 or ctx._retain_graph or g.size != 1 or not isinstance(g, np.ndarray):
        return False
    return bool(g.item() == 1)  # (size 1: item() is the one value, without a reshaped view)


def _class_dims(x: Any) -> tuple[int, int, int]:
    if x.ndim == 1:
        return 1, x.shape[0], 1
    return x.shape[0], x.shape[1], int(math.prod(x.shape[2:]))


def cross_entropy(input: Tensor, target: Any, weight: Optional[Tensor] = None, size_average: Any = None,
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy between logits and class indices or class probabilities:
    loss_n = w[y_n] * (logsumexp(x_n) - x_n[y_n]), or -sum_c w_c p_c log softmax(x_n)_c for
    probability targets p.

    ``weight`` (C,) rescales each class; rows whose target is ``ignore_index`` add nothing;
    'mean' divides by the summed weight of the non-ignored rows (the number of rows for
    probability targets); ``label_smoothing`` e in [0, 1] mixes the target with the uniform
    distribution, (1 - e) * target + e / C (PyTorch's formula, weight included). The forward
    computes the logits-gradient in the same pass (fused kernel).

    Shape: input (N, C), (N, C, d1, ...) or (C,); target int64 class indices of shape (N,),
    (N, d1, ...) or () -- or a float tensor of the input's shape holding class probabilities;
    output () or, with reduction='none', the target's shape.
    Defaults: weight=None (all classes 1), ignore_index=-100, reduction='mean', label_smoothing=0.0.
    """
    # The fast path is tried before autocast's wrapper (one Python frame fewer per call), as F.linear's:
    # FAST_PATHS is off inside an autocast region and the kernel rejects bfloat16 logits, so every call
    # the wrapper would reroute reaches it through _cross_entropy_checked.
    if _FAST[0] and weight is None and reduction == "mean" and size_average is None and reduce is None \
            and not label_smoothing and type(ignore_index) is int:
        y = _cross_entropy_fast(input, target, ignore_index)
        if y is not None:
            return y
    return _cross_entropy_checked(input, target, weight, size_average, ignore_index, reduce, reduction,
                                  label_smoothing)


@amp_op("cross_entropy")
def _cross_entropy_checked(input: Tensor, target: Any, weight: Optional[Tensor] = None, size_average: Any = None,
                           ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                           label_smoothing: float = 0.0) -> Tensor:
    """``cross_entropy`` through autocast's wrapper and the checked path (errors worded here)."""
    op = "cross_entropy"
    target, red, C = _class_loss_args(op, input, target, reduction, size_average, reduce)
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"[{op}] expected label_smoothing in [0, 1], got {label_smoothing}")
    w = _class_weight(op, input, weight, C)
    if target._data.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(
                f"[{op}] expected a float (class-probability) target of the input's shape {input.shape}, "
                f"got {target.shape}"
            )
        check_same_dtype(op, input, target, "target")
        return CrossEntropyProbFunction.apply(input, target, w, float(label_smoothing), red, _needs_grad(input),
                                              _needs_grad(target))
    _class_index_target(op, input, target)
    return CrossEntropyFunction.apply(input, target, w, int(ignore_index), float(label_smoothing), red,
                                      _needs_grad(input))


_FAST = _dispatch.FAST_PATHS
_CPU = _dispatch._CPU_KERNELS  # op -> cpu kernel set (read per call: tests may patch a kernel)
_I64 = np.dtype(np.int64)
_empty = np.empty


def _cross_entropy_fast(input: Any, target: Any, ignore_index: int) -> Optional[Tensor]:
    """Mean cross-entropy of (N, C) CPU logits and (N,) int64 targets with the kernel called inline
    (no generic ``Function.apply``); None when anything is unusual, and the checked path then runs
    (and words any error)."""
    x = getattr(input, "_data", None)
    t = getattr(target, "_data", None)
    if type(x) is not np.ndarray or type(t) is not np.ndarray or x.ndim != 2 or t.dtype is not _I64 or t.ndim != 1:
        return None
    need = input.requires_grad and grad_mode._enabled[0]
    # The binding takes (N, C) logits, (N,) targets and a 0-d loss as they are (no reshapes).
    loss = _empty((), x.dtype)
    dx = _empty(x.shape, x.dtype) if need else None
    try:
        _CPU["cross_entropy"].cross_entropy(loss, dx, x, t, None, ignore_index, 0.0, 1)  # checks everything
    except (TypeError, ValueError):
        return None
    if not need:
        return Tensor._wrap(loss)
    ctx: Any = CrossEntropyFunction()
    ctx.saved_tensors = (dx,)
    ctx.red, ctx.in_shape = 1, x.shape
    y = Tensor._wrap(loss, True)
    record_node(ctx, (input, target, None, None, None, None, None), (x, t, None, ignore_index, 0.0, 1, need), y,
                None)  # dx, the one saved array, is neither an input nor the output
    return y


# ---------------------------------------------------------------------------------------- nll_loss
class NLLLossFunction(Function):
    @staticmethod
    def forward(ctx: Any, x: Any, target: Any, weight: Any, ignore_index: int, red: int) -> Any:
        K = kernels("nll_loss", x, target, weight)
        (N, C, S), loss = _class_loss_out(x, red)
        t = _target_rows(target, N, S)
        w = None if weight is None else contiguous(weight)
        K.nll_loss(loss, _as3(x, N, C, S), t, w, int(ignore_index), red)
        ctx.save_for_backward(t, w)
        ctx.ignore_index, ctx.dims = int(ignore_index), (N, C, S)
        return _class_loss_result(ctx, x, loss, red)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        t, w = ctx.saved_tensors
        dx = xp_of(g).empty(ctx.dims, dtype=g.dtype)
        kernels("nll_loss", g).nll_loss_backward(dx, _grad_arg(g, ctx.red), t, w, ctx.ignore_index, ctx.red)
        return dx.reshape(ctx.in_shape), None, None


@amp_op("nll_loss")
def nll_loss(input: Tensor, target: Any, weight: Optional[Tensor] = None, size_average: Any = None,
             ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: loss_n = -w[y_n] * x_n[y_n] on log-probabilities x at class indices y.

    Rows whose target is ``ignore_index`` add nothing; 'mean' divides by the summed weight of the
    counted rows.

    Shape: input (N, C), (N, C, d1, ...) or (C,); target int64 (N,), (N, d1, ...) or () in [0, C);
    output () or, with reduction='none', the target's shape.
    Defaults: weight=None (all classes 1), ignore_index=-100, reduction='mean'.
    """
    op = "nll_loss"
    target, red, C = _class_loss_args(op, input, target, reduction, size_average, reduce)
    w = _class_weight(op, input, weight, C)
    _class_index_target(op, input, target)
    return NLLLossFunction.apply(input, target, w, int(ignore_index), red)


# ---------------------------------------------------------------------------------------- pointwise losses
def _as2(a: Any) -> Any:
    """(R, K) view (or copy when the strides cannot merge) of an array, K = last dim."""
    if a.ndim == 0:
        return a.reshape(1, 1)
    K = a.shape[-1]
    return a.reshape(int(math.prod(a.shape[:-1])), K)


def _broadcast2(op: str, a: Any, shape: tuple[int, ...], name: str) -> Any:
    if a is None:
        return None
    try:
        b = xp_of(a).broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"[{op}] expected {name} broadcastable to the input's shape {shape}, got {a.shape}") from None
    return _as2(b)


class PointwiseLossFunction(Function):
    """l(x, y) elementwise (optionally weighted), reduced in the same kernel call."""

    @staticmethod
    def forward(ctx: Any, x: Any, y: Any, weight: Any, pos_weight: Any, kind: int, param: float, red: int,
                scale: float, op: str) -> Any:
        K = kernels(op, x, y, weight, pos_weight)
        x2, y2 = _as2(x), _as2(y)
        w2 = _broadcast2(op, weight, x.shape, "weight")
        p2 = _broadcast2(op, pos_weight, x.shape, "pos_weight")
        out = xp_of(x).empty(x.shape if red == 0 else (), dtype=x.dtype)
        K.pointwise_loss(out, x2, y2, w2, p2, kind, float(param), red, float(scale), op)
        ctx.save_for_backward(x2, y2, w2, p2)
        ctx.kind, ctx.param, ctx.red, ctx.scale, ctx.op, ctx.shape = kind, float(param), red, float(scale), op, x.shape
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        x2, y2, w2, p2 = ctx.saved_tensors
        xp = xp_of(g)
        dx = xp.empty(ctx.shape, dtype=x2.dtype) if ctx.needs_input_grad[0] else None
        dy = xp.empty(ctx.shape, dtype=x2.dtype) if ctx.needs_input_grad[1] else None
        if dx is None and dy is None:
            return None, None
        if ctx.red == 0:
            ge, gs = contiguous(g).reshape(-1), 1.0
        else:
            ge, gs = None, float(g) * ctx.scale
        kernels(ctx.op, g).pointwise_loss_backward(dx, dy, ge, gs, x2, y2, w2, p2, ctx.kind, ctx.param, ctx.op)
        return dx, dy


def _pointwise(op: str, input: Tensor, target: Any, kind: int, reduction: str, param: float = 0.0,
               weight: Any = None, pos_weight: Any = None, size_average: Any = None, reduce: Any = None,
               extra: tuple[str, ...] = ()) -> Tensor:
    check_float(op, input)
    target = _target_tensor(op, target)
    check_float(op, target, "target")
    check_same_dtype(op, input, target, "target")
    check_same_device(op, input, target, weight, pos_weight)
    if target.shape != input.shape:
        raise ValueError(f"[{op}] expected target of the input's shape {input.shape}, got {target.shape}")
    for t, name in ((weight, "weight"), (pos_weight, "pos_weight")):
        if t is not None:
            check_float(op, t, name)
            check_same_dtype(op, input, t, name)
            _no_grad_for(op, t, name)
    red_s = _reduction(op, reduction, size_average, reduce, extra)
    n = input.numel()
    if red_s == "batchmean":
        if input.ndim == 0:
            scale = 1.0
        else:
            scale = 1.0 / input.shape[0] if input.shape[0] > 0 else math.nan
    elif red_s == "mean":
        scale = 1.0 / n if n > 0 else math.nan
    else:
        scale = 1.0
    red = 2 if red_s == "batchmean" else _RED[red_s]
    return PointwiseLossFunction.apply(input, target, weight, pos_weight, kind, float(param), red, scale, op)


@amp_op("mse_loss")
def mse_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean") -> Tensor:
    """Mean squared error: loss = reduce((input - target)^2).

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum).
    """
    return _pointwise("mse_loss", input, target, _MSE, reduction, size_average=size_average, reduce=reduce)


@amp_op("l1_loss")
def l1_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
            reduction: str = "mean") -> Tensor:
    """Mean absolute error: loss = reduce(|input - target|); gradient sign(input - target), 0 at 0.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum).
    """
    return _pointwise("l1_loss", input, target, _L1, reduction, size_average=size_average, reduce=reduce)


@amp_op("huber_loss")
def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """Huber loss with d = input - target: 0.5 d^2 where |d| < delta, else delta * (|d| - delta / 2).

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum), delta=1.0.
    """
    if not delta > 0:
        raise ValueError(f"[huber_loss] expected delta > 0, got {delta}")
    return _pointwise("huber_loss", input, target, _HUBER, reduction, param=float(delta))


@amp_op("smooth_l1_loss")
def smooth_l1_loss(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Smooth L1 with d = input - target: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2
    (beta = 0: plain L1).

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum), beta=1.0.
    """
    if beta < 0:
        raise ValueError(f"[smooth_l1_loss] expected beta >= 0, got {beta}")
    return _pointwise("smooth_l1_loss", input, target, _SMOOTH_L1, reduction, param=float(beta),
                      size_average=size_average, reduce=reduce)


@amp_op("binary_cross_entropy")
def binary_cross_entropy(input: Tensor, target: Any, weight: Optional[Tensor] = None, size_average: Any = None,
                         reduce: Any = None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on probabilities x: loss = -w * (y log(x) + (1 - y) log(1 - x)), the logs
    clamped at -100 as in PyTorch.

    ``weight`` w broadcasts to the input's shape.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: weight=None (1), reduction='mean' ('none': per element, 'sum': the sum).
    """
    return _pointwise("binary_cross_entropy", input, target, _BCE, reduction, weight=weight,
                      size_average=size_average, reduce=reduce)


@amp_op("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Optional[Tensor] = None,
                                     size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                                     pos_weight: Optional[Tensor] = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable formula, on logits x:
    loss = w * ((1 - y) x + (1 + (p - 1) y) log(1 + exp(-x))).

    ``weight`` w and ``pos_weight`` p broadcast to the input's shape (``pos_weight`` usually
    (C,) over the last dim).

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: weight=None (1), reduction='mean' ('none': per element, 'sum': the sum), pos_weight=None (1).
    """
    return _pointwise("binary_cross_entropy_with_logits", input, target, _BCE_LOGITS, reduction, weight=weight,
                      pos_weight=pos_weight, size_average=size_average, reduce=reduce)


@amp_op("kl_div")
def kl_div(input: Tensor, target: Any, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """Pointwise KL divergence: loss = target * (log(target) - input), with ``input``
    log-probabilities (``log_target``: target holds log-probabilities too, loss =
    exp(target) * (target - input)).

    reduction='batchmean' divides the sum by input.shape[0] (the true KL of a batch); 'mean'
    divides by the number of elements.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none', 'sum', 'batchmean'), log_target=False.
    """
    return _pointwise("kl_div", input, target, _KLDIV_LOG if log_target else _KLDIV, reduction,
                      size_average=size_average, reduce=reduce, extra=("batchmean",))


def perceptron_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Perceptron criterion (nnfast addition): loss = reduce(max(0, -y * f(x))) with labels y in
    {-1, +1} and scores f(x) = ``input`` (gradient -y where a sample is misclassified, else 0).

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none', 'sum').
    """
    return _pointwise("perceptron_loss", input, target, _PERCEPTRON, reduction)


# ---------------------------------------------------------------------------------------- rmse_loss
class RMSELossFunction(Function):
    """sqrt(mean((x - y)^2)); gradient (x - y) / (n max(rmse, eps))."""

    @staticmethod
    def forward(ctx: Any, x: Any, y: Any, eps: float) -> Any:
        K = kernels("rmse_loss", x, y)
        x2, y2 = _as2(x), _as2(y)
        out = xp_of(x).empty((), dtype=x.dtype)
        K.rmse_loss(out, x2, y2)
        ctx.save_for_backward(x2, y2)
        ctx.rmse, ctx.eps, ctx.shape = float(out), float(eps), x.shape
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        x2, y2 = ctx.saved_tensors
        xp = xp_of(g)
        dx = xp.empty(ctx.shape, dtype=x2.dtype) if ctx.needs_input_grad[0] else None
        dy = xp.empty(ctx.shape, dtype=x2.dtype) if ctx.needs_input_grad[1] else None
        if dx is None and dy is None:
            return None, None
        n = max(1, x2.size)
        gs = float(g) / (2.0 * n * max(ctx.rmse, ctx.eps))
        kernels("rmse_loss", g).pointwise_loss_backward(dx, dy, None, gs, x2, y2, None, None, _MSE, 0.0, "rmse_loss")
        return dx, dy


def rmse_loss(input: Tensor, target: Any, reduction: str = "mean", eps: float = 1e-8) -> Tensor:
    """Root-mean-square error (nnfast addition): loss = sqrt(mean((input - target)^2)) over all elements.

    The forward value is the exact square root. Its gradient (x - y) / (n rmse) is computed as
    (x - y) / (n max(rmse, eps)), so it stays finite (zero) at a perfect fit.

    Shape: input (*), any shape; target (*), the same shape; output ().
    Defaults: reduction='mean' (the only one: an RMSE is a mean by definition), eps=1e-08.
    """
    op = "rmse_loss"
    check_float(op, input)
    target = _target_tensor(op, target)
    check_float(op, target, "target")
    check_same_dtype(op, input, target, "target")
    check_same_device(op, input, target)
    if reduction != "mean":
        raise ValueError(f"[{op}] expected reduction 'mean' (RMSE is a mean by definition), got {reduction!r}")
    if target.shape != input.shape:
        raise ValueError(f"[{op}] expected target of the input's shape {input.shape}, got {target.shape}")
    if not eps > 0:
        raise ValueError(f"[{op}] expected eps > 0, got {eps}")
    return RMSELossFunction.apply(input, target, float(eps))


# ---------------------------------------------------------------------------------------- linear_cross_entropy
# Logits of at most this many values (the kernel's tile, kLinearCETileElems) are kept from the forward
# on the CPU when a gradient will be asked for, so the backward reads them instead of recomputing them
# with a GEMM (same bits); a char-level head (1024 x 70) saves a third of its backward.
# NNFAST_LINEAR_CE_KEEP=0 (read once): always recompute (A/B of the two, same values).
_KEEP_LOGITS_MAX = 1 << 20
_KEEP_LOGITS = os.environ.get("NNFAST_LINEAR_CE_KEEP", "1") != "0"


class LinearCrossEntropyFunction(Function):
    """cross_entropy(x W^T + b, target) without the (N, C) logits: the forward
    keeps only the per-row log-sum-exp (and, when ``keep``, the small logits); the
    backward recomputes each logits tile (or reads the kept ones)."""

    @staticmethod
    def forward(ctx: Any, x: Any, W: Any, b: Any, target: Any, ignore_index: int, label_smoothing: float,
                red: int, chunk: int, keep: bool = False) -> Any:
        K = kernels("linear_cross_entropy", x, W, b, target)
        xp = xp_of(x)
        lead = x.shape[:-1]
        x2 = x.reshape(math.prod(lead), x.shape[-1])  # explicit: -1 is ambiguous for empty inputs
        N = x2.shape[0]
        t = contiguous(target.reshape(N).astype(np.int64, copy=False))
        bb = None if b is None else contiguous(b)
        loss = xp.empty((N,) if red == 0 else (1,), dtype=x.dtype)
        lse = xp.empty((N,), dtype=x.dtype)
        z = xp.empty((N, W.shape[0]), dtype=x.dtype) if keep else None
        K.linear_cross_entropy(loss, lse, x2, W, bb, t, int(ignore_index), float(label_smoothing), red, int(chunk),
                               logits=z)
        ctx.save_for_backward(x2, W, bb, t, lse, z)
        ctx.args = (int(ignore_index), float(label_smoothing), red, int(chunk))
        ctx.x_shape = x.shape
        return loss.reshape(lead if red == 0 else ())

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        x2, W, bb, t, lse, z = ctx.saved_tensors
        ignore_index, eps, red, chunk = ctx.args
        xp = xp_of(g)
        need = ctx.needs_input_grad
        dx = xp.empty(x2.shape, dtype=x2.dtype) if need[0] else None
        # dW / db accumulate in the kernel: into the existing .grad, or fresh zeros.
        dW = dW_out = db = db_out = None
        if need[1]:
            dW, dW_out = ctx.param_grad(1, xp, W.shape, x2.dtype)
        if bb is not None and need[2]:
            db, db_out = ctx.param_grad(2, xp, (W.shape[0],), x2.dtype)
        kernels("linear_cross_entropy", g).linear_cross_entropy_backward(
            dx, dW, db, _grad_arg(g, red), lse, x2, W, bb, t, ignore_index, eps, red, chunk, logits=z)
        return (None if dx is None else dx.reshape(ctx.x_shape)), dW_out, db_out


@amp_op("linear_cross_entropy")
def linear_cross_entropy(input: Tensor, weight: Tensor, bias: Optional[Tensor], target: Any,
                         ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0,
                         chunk_size: int = 4096) -> Tensor:
    """Fused classifier + cross-entropy (nnfast addition): loss = cross_entropy(input @ weight.T + bias,
    target), without ever holding the (N, C) logits.

    Logits are produced ``chunk_size`` classes at a time (times a block of rows) by nnfast's GEMM and
    folded into an online log-sum-exp; the backward recomputes each tile to form d(input),
    d(weight) and d(bias). Extra memory: about N + (row block x chunk_size) values instead of N x C
    (plus 2 N x C for the usual saved gradient and logits-gradient). On the CPU, logits of at most
    2^20 values are kept for the backward when a gradient is wanted (it then skips recomputing
    them; same values; ``NNFAST_LINEAR_CE_KEEP=0`` turns this off). Same semantics as
    ``cross_entropy`` otherwise (no class ``weight``).

    Shape: input (*, H); weight (C, H); bias (C,) or None; target int64 of shape input.shape[:-1];
    output () or, with reduction='none', input.shape[:-1].
    Defaults: ignore_index=-100, reduction='mean', label_smoothing=0.0, chunk_size=4096.
    """
    op = "linear_cross_entropy"
    check_float(op, input)
    check_float(op, weight, "weight")
    check_same_dtype(op, input, weight, "weight")
    if bias is not None:
        check_float(op, bias, "bias")
        check_same_dtype(op, input, bias, "bias")
    target = _target_tensor(op, target)
    check_same_device(op, input, weight, bias, target)
    red = _RED[_reduction(op, reduction)]
    if weight.ndim != 2:
        raise ValueError(f"[{op}] expected weight of shape (C, H), got {weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"[{op}] expected input with last dimension {weight.shape[1]} (H), got shape {input.shape}")
    if weight.shape[0] < 1:
        raise ValueError(f"[{op}] expected at least one class, got weight of shape {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"[{op}] expected bias of shape ({weight.shape[0]},), got {bias.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"[{op}] expected target to be int64 class indices, got {target.dtype}")
    if target.shape != input.shape[:-1]:
        raise ValueError(f"[{op}] expected target of shape {input.shape[:-1]}, got {target.shape}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"[{op}] expected label_smoothing in [0, 1], got {label_smoothing}")
    if int(chunk_size) < 1:
        raise ValueError(f"[{op}] expected chunk_size >= 1, got {chunk_size}")
    keep = (_KEEP_LOGITS and grad_mode._enabled[0] and input.device.type == "cpu"
            and math.prod(input.shape[:-1]) * weight.shape[0] <= _KEEP_LOGITS_MAX
            and (input.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)))
    return LinearCrossEntropyFunction.apply(input, weight, bias, target, int(ignore_index), float(label_smoothing),
                                            red, int(chunk_size), keep)
