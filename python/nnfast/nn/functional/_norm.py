"""Normalizations: batch, layer, RMS, group and instance norm (forward and
backward in nnfast's kernels).

Every Function reshapes its input to the kernel's layout without copying when
it can ((M, D) rows for layer / RMS norm, (N, C, L) for the channel norms),
saves the float64 mean / rstd its forward computed, and computes the input,
weight and bias gradients in one backward kernel call.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..._dispatch import contiguous, kernels, xp_of
from ...autograd.function import ACCUMULATED, Function
from ...tensor import Tensor
from ._checks import check_float, check_same_device, check_same_dtype, check_tensor
from ...amp.autocast_mode import amp_op

__all__ = ["batch_norm", "layer_norm", "rms_norm", "group_norm", "instance_norm"]

_ShapeArg = Union[int, Sequence[int]]


def _stats(xp: Any, *shape: int) -> Any:
    return xp.empty(shape, dtype=np.float64)


def _c(a: Any) -> Any:
    return None if a is None else contiguous(a)


def _channel_arrays(x: Any, weight: Any, bias: Any, *stats_shape: int) -> tuple[Any, Any, Any, Any, Any, Any]:
    """What the batch / group norm forward kernels take: x (N, C, *) as (N, C, L) (no copy when
    contiguous), an output like it, float64 mean and rstd of ``stats_shape``, contiguous weight and bias."""
    xp = xp_of(x)
    x3 = contiguous(x).reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))  # -1 is ambiguous when empty
    return x3, xp.empty_like(x3), _stats(xp, *stats_shape), _stats(xp, *stats_shape), _c(weight), _c(bias)


def _save_norm(ctx: Any, x: Any, mean: Any, rstd: Any, weight: Any, bias: Any, shape: tuple[int, ...],
               mode: Any) -> None:
    """What every norm's backward reads: the kernel-layout input, its statistics, the weight, the
    input's shape, whether a bias was given and the backward kernel's last argument ``mode``."""
    ctx.save_for_backward(x, mean, rstd, weight)
    ctx.shape, ctx.has_bias, ctx.mode = shape, bias is not None, mode


def _norm_backward(ctx: Any, dy: Any, kernel: Any) -> tuple[Any, Any, Any]:
    """(dx, dweight, dbias) of a norm saved by ``_save_norm``: the layer, batch and group norm
    backward kernels take the same arguments but the last (``ctx.mode``: rms / training / num_groups)."""
    x, mean, rstd, w = ctx.saved_tensors
    need = ctx.needs_input_grad
    want_w, want_b = w is not None and need[1], ctx.has_bias and need[2]
    if not (need[0] or want_w or want_b):
        return None, None, None
    xp = xp_of(dy)
    dx = xp.empty(x.shape, dtype=dy.dtype) if need[0] else None
    dw, db, dw_out, db_out = _param_grads(ctx, xp, want_w, want_b, (x.shape[1],), dy.dtype)
    kernel(dx, dw, db, contiguous(dy).reshape(x.shape), x, mean, rstd, w, ctx.mode)
    return (None if dx is None else dx.reshape(ctx.shape)), dw_out, db_out


def _param_grads(ctx: Any, xp: Any, want_w: bool, want_b: bool, shape: tuple[int, ...],
                 dtype: Any) -> tuple[Any, Any, Any, Any]:
    """Weight / bias (inputs 1, 2) gradient buffers, which the kernels add into: the existing
    ``.grad`` (result ACCUMULATED) or fresh zeros. Returns (kernel dw, kernel db, dw, db results)."""
    dw = db = dw_out = db_out = None
    if want_w:
        dw, dw_out = ctx.param_grad(1, xp, shape, dtype)
    if want_b:
        if dw_out is ACCUMULATED and ctx.inputs[2] is ctx.inputs[1]:  # one tensor as weight and bias
            db = db_out = xp.zeros(shape, dtype=dtype)
        else:
            db, db_out = ctx.param_grad(2, xp, shape, dtype)
    return dw, db, dw_out, db_out


def _check_param(op: str, x: Tensor, p: Any, name: str, shape: tuple[int, ...]) -> None:
    if p is None:
        return
    check_tensor(op, p, name)
    check_same_dtype(op, x, p, name)
    if tuple(p.shape) != shape:
        raise ValueError(f"[{op}] expected {name} of shape {shape}, got {tuple(p.shape)}")


def _check_running_stats(op: str, x: Tensor, running_mean: Any, running_var: Any, C: int) -> None:
    """Batch and instance norm's optional running statistics: (C,) tensors of x's dtype and device,
    contiguous because the kernels update them in place."""
    check_same_device(op, x, running_mean, running_var)
    for name, b in (("running_mean", running_mean), ("running_var", running_var)):
        if b is None:
            continue
        check_tensor(op, b, name)
        if b.dtype != x.dtype:
            raise TypeError(f"[{op}] expected {name} to have dtype {x.dtype}, got {b.dtype}")
        if tuple(b.shape) != (C,):
            raise ValueError(f"[{op}] expected {name} of shape ({C},), got {tuple(b.shape)}")
        if not b._data.flags.c_contiguous:
            raise ValueError(f"[{op}] expected {name} to be contiguous (it is updated in place)")


# ---------------------------------------------------------------- layer / RMS norm
class LayerNormFunction(Function):
    """y = (x - mean) * rstd * weight + bias over the last D elements of each row
    (rms: y = x * rstd * weight with rstd = 1 / sqrt(mean(x^2) + eps)).

    Backward, per row with g = dy * weight and xhat = (x - mean) * rstd:
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (rms: no mean(g) term);
    dweight = sum over rows of dy * xhat, dbias = sum of dy.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, D: int, eps: float, rms: bool) -> Any:
        K = kernels("rms_norm" if rms else "layer_norm", x, weight, bias)
        xp = xp_of(x)
        shape = x.shape
        x2 = contiguous(x).reshape(x.size // D if D else 0, D)  # -1 is ambiguous when empty
        M = x2.shape[0]
        y = xp.empty_like(x2)
        mean = None if rms else _stats(xp, M)
        rstd = _stats(xp, M)
        w = None if weight is None else contiguous(weight).reshape(D)
        b = None if bias is None else contiguous(bias).reshape(D)
        K.layer_norm_forward(y, mean, rstd, x2, w, b, eps, rms)
        _save_norm(ctx, x2, mean, rstd, w, bias, shape, rms)
        ctx.wshape = None if weight is None else weight.shape
        return y.reshape(shape)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        dx, dw, db = _norm_backward(ctx, dy, kernels("rms_norm" if ctx.mode else "layer_norm", dy).layer_norm_backward)
        return (dx, dw if dw is None or dw is ACCUMULATED else dw.reshape(ctx.wshape),
                db if db is None or db is ACCUMULATED else db.reshape(ctx.wshape))


def _normalized_shape(op: str, normalized_shape: _ShapeArg) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    try:
        return tuple(int(d) for d in normalized_shape)
    except TypeError:
        raise TypeError(f"[{op}] expected normalized_shape to be an int or a sequence of ints, "
                        f"got {type(normalized_shape).__name__}") from None


def _check_row_norm(op: str, input: Any, ns: tuple[int, ...], weight: Any, bias: Any) -> int:
    check_float(op, input)
    check_same_device(op, input, weight, bias)
    if len(ns) == 0:
        raise ValueError(f"[{op}] expected a non-empty normalized_shape")
    if input.ndim < len(ns) or tuple(input.shape[input.ndim - len(ns):]) != ns:
        raise ValueError(f"[{op}] expected input with shape [*, {', '.join(map(str, ns))}], "
                         f"got {list(input.shape)}")
    _check_param(op, input, weight, "weight", ns)
    _check_param(op, input, bias, "bias", ns)
    return math.prod(ns)


@amp_op("layer_norm")
def layer_norm(input: Tensor, normalized_shape: _ShapeArg, weight: Optional[Tensor] = None,
               bias: Optional[Tensor] = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and (biased)
    var over the trailing ``normalized_shape`` dimensions.

    Shape: input (*, *normalized_shape); weight and bias ``normalized_shape`` (each optional);
    output the input's shape.
    Defaults: weight=None (1), bias=None (0), eps=1e-05.
    """
    op = "layer_norm"
    ns = _normalized_shape(op, normalized_shape)
    D = _check_row_norm(op, input, ns, weight, bias)
    return LayerNormFunction.apply(input, weight, bias, D, float(eps), False)


@amp_op("rms_norm")
def rms_norm(input: Tensor, normalized_shape: _ShapeArg, weight: Optional[Tensor] = None,
             eps: Optional[float] = None) -> Tensor:
    """RMS normalization: y = x / sqrt(mean(x^2) + eps) * weight, the mean over the trailing
    ``normalized_shape`` dimensions.

    Shape: input (*, *normalized_shape); weight ``normalized_shape`` (optional); output the
    input's shape.
    Defaults: weight=None (1), eps=None (the machine epsilon of the input's dtype).
    """
    op = "rms_norm"
    ns = _normalized_shape(op, normalized_shape)
    D = _check_row_norm(op, input, ns, weight, None)
    e = float(np.finfo(input.dtype).eps) if eps is None else float(eps)
    return LayerNormFunction.apply(input, weight, None, D, e, True)


# ---------------------------------------------------------------- batch norm
class BatchNormFunction(Function):
    """Per-channel normalization of x (N, C, *) viewed as (N, C, L).

    training: batch statistics, running statistics (raw arrays, may be None)
    updated in place by the forward kernel. Backward with xhat = (x - mean) *
    rstd and n = N L: dx = weight * rstd * (dy - mean(dy) - xhat * mean(dy *
    xhat)); in eval the statistics are constants and dx = dy * weight * rstd.
    dweight = sum dy * xhat, dbias = sum dy.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, training: bool,
                momentum: float, eps: float) -> Any:
        K = kernels("batch_norm", x, weight, bias, running_mean, running_var)
        x3, y, mean, rstd, weight, bias = _channel_arrays(x, weight, bias, x.shape[1])
        K.batch_norm_forward(y, mean, rstd, running_mean, running_var, x3, weight, bias, training, momentum, eps)
        _save_norm(ctx, x3, mean, rstd, weight, bias, x.shape, training)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        return _norm_backward(ctx, dy, kernels("batch_norm", dy).batch_norm_backward)


def _channel_checks(op: str, input: Any, weight: Any, bias: Any) -> int:
    check_float(op, input)
    check_same_device(op, input, weight, bias)
    if input.ndim < 2:
        raise ValueError(f"[{op}] expected input with at least 2 dimensions (N, C, *), got {input.ndim}-D")
    C: int = input.shape[1]
    _check_param(op, input, weight, "weight", (C,))
    _check_param(op, input, bias, "bias", (C,))
    return C


def _raw(t: Any) -> Any:
    return None if t is None else t._data


@amp_op("batch_norm")
def batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
               weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization per channel: y = (x - mean) / sqrt(var + eps) * weight + bias.

    ``training``: mean and var are the (biased) batch statistics over every dim but 1, and the
    given ``running_mean`` / ``running_var`` are updated in place: running = (1 - momentum) *
    running + momentum * stat (unbiased variance). Otherwise the running statistics normalize.

    Shape: input (N, C, *); running_mean, running_var, weight, bias (C,); output the input's shape.
    Defaults: weight=None (1), bias=None (0), training=False, momentum=0.1, eps=1e-05.
    """
    op = "batch_norm"
    C = _channel_checks(op, input, weight, bias)
    _check_running_stats(op, input, running_mean, running_var, C)
    if training:
        per_channel = input.shape[0] * math.prod(input.shape[2:])
        if per_channel == 1:
            raise ValueError(f"[{op}] Expected more than 1 value per channel when training, "
                             f"got input size {list(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError(f"[{op}] expected running_mean and running_var when training=False")
    return BatchNormFunction.apply(input, weight, bias, _raw(running_mean), _raw(running_var), bool(training),
                                   float(momentum), float(eps))


# ---------------------------------------------------------------- group / instance norm
class GroupNormFunction(Function):
    """Normalization of x (N, C, *) per (sample, group of C / G channels),
    then a per-channel affine. Instance norm is G = C.

    Backward per (n, g) with g_i = dy_i * weight[c] and D = C / G * L:
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)); dweight[c] = sum over
    (n, l) of dy * xhat, dbias[c] = sum of dy. When running statistics are
    given (instance norm) they are updated from the per-instance statistics.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, groups: int, eps: float, running_mean: Any,
                running_var: Any, momentum: float) -> Any:
        K = kernels("group_norm", x, weight, bias)
        x3, y, mean, rstd, weight, bias = _channel_arrays(x, weight, bias, x.shape[0], groups)
        K.group_norm_forward(y, mean, rstd, x3, weight, bias, groups, eps)
        if running_mean is not None or running_var is not None:
            K.instance_norm_update_running(running_mean, running_var, mean, rstd, x3.shape[2], momentum, eps)
        _save_norm(ctx, x3, mean, rstd, weight, bias, x.shape, groups)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        return _norm_backward(ctx, dy, kernels("group_norm", dy).group_norm_backward)


@amp_op("group_norm")
def group_norm(input: Tensor, num_groups: int, weight: Optional[Tensor] = None, bias: Optional[Tensor] = None,
               eps: float = 1e-5) -> Tensor:
    """Group normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with (biased)
    statistics per sample over each group of C / num_groups channels (and all spatial positions).

    Shape: input (N, C, *) with C divisible by num_groups; weight, bias (C,); output the input's shape.
    Defaults: weight=None (1), bias=None (0), eps=1e-05.
    """
    op = "group_norm"
    C = _channel_checks(op, input, weight, bias)
    G = int(num_groups)
    if G <= 0 or C % G != 0:
        raise ValueError(f"[{op}] expected the number of channels ({C}) to be divisible by num_groups, got {G}")
    return GroupNormFunction.apply(input, weight, bias, G, float(eps), None, None, 0.0)


@amp_op("instance_norm")
def instance_norm(input: Tensor, running_mean: Optional[Tensor] = None, running_var: Optional[Tensor] = None,
                  weight: Optional[Tensor] = None, bias: Optional[Tensor] = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with (biased)
    statistics per (sample, channel) over the spatial dims.

    ``use_input_stats``: normalize with them and, when given, update the running statistics
    (averaged over the batch; running = (1 - momentum) * running + momentum * stat); otherwise
    normalize with ``running_mean`` / ``running_var``.

    Shape: input (N, C, *); running_mean, running_var, weight, bias (C,); output the input's shape.
    Defaults: running_mean=None, running_var=None, weight=None (1), bias=None (0),
    use_input_stats=True, momentum=0.1, eps=1e-05.
    """
    op = "instance_norm"
    C = _channel_checks(op, input, weight, bias)
    _check_running_stats(op, input, running_mean, running_var, C)
    if use_input_stats:
        if math.prod(input.shape[2:]) == 1:
            raise ValueError(f"[{op}] Expected more than 1 spatial element when training, "
                             f"got input size {list(input.shape)}")
        return GroupNormFunction.apply(input, weight, bias, C, float(eps), _raw(running_mean), _raw(running_var),
                                       float(momentum))
    if running_mean is None or running_var is None:
        raise ValueError(f"[{op}] expected running_mean and running_var when use_input_stats=False")
    return BatchNormFunction.apply(input, weight, bias, _raw(running_mean), _raw(running_var), False, 0.0,
                                   float(eps))
