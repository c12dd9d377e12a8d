"""Distances, padding, one-hot and the smaller losses of ``torch.nn.functional``.

Built from Tensor operators (add/sub/mul/div and sums on the tensor kernels, softplus /
logsigmoid on the activation kernels), so autograd comes from the tape. Two small Functions
live here: the p-norm over a dim (finite subgradient at zero, as PyTorch) and ``pad`` (an
index map per padded dim: a gather forward, a scatter-add backward).
"""
from __future__ import annotations

import math
import operator
from typing import Any, Optional, Sequence

import numpy as np

from ..._dispatch import xp_of
from ...autograd.function import Function
from ...tensor import Tensor
from ..._tensor_ops import where
from ._activation import logsigmoid, softplus
from ._checks import check_float, check_tensor
from ._loss import _reduction
from ...amp.autocast_mode import amp_op

__all__ = [
    "normalize",
    "pad",
    "cosine_similarity",
    "pairwise_distance",
    "one_hot",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "cosine_embedding_loss",
    "gaussian_nll_loss",
    "poisson_nll_loss",
    "triplet_margin_loss",
]


# ---------------------------------------------------------------------------------------- norms
def _dim(op: str, dim: Any, ndim: int) -> int:
    d = operator.index(dim)
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"[{op}] expected dim in [{-n}, {n - 1}], got {d}")
    return d % n


def _norm(op: str, x: Tensor, p: Any, dim: Any, keepdim: bool = True) -> Tensor:
    p = float(p)
    if not p > 0:
        raise ValueError(f"[{op}] expected a norm degree p > 0, got {p}")
    axis = _dim(op, dim, x.ndim)
    if x.ndim == 0:
        x = x.reshape(1)
    from ...ops.reduction import norm  # the p-norm of the tensor surface (kernels for p = 2)

    y: Tensor = norm(x, p, axis, keepdim=True)
    return y if keepdim else y.squeeze(axis)


def _clamp_value_only(t: Tensor, lo: float) -> Tensor:
    """``t`` clamped below at ``lo`` in value while the gradient passes as if unclamped
    (PyTorch clamps these norms in place under no_grad)."""
    return t + (t.clamp(min=lo) - t).detach()


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None) -> Tensor:
    """normalize(x) = x / max(||x||_p, eps), the norm taken over ``dim``.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: p=2.0, dim=1, eps=1e-12, out=None (out= is not supported).
    """
    check_float("normalize", input)
    if out is not None:
        raise NotImplementedError("[normalize] expected out=None (out= is not supported)")
    return input / _norm("normalize", input, p, dim).clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """cos(x1, x2) = sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) over ``dim`` (inputs broadcast).

    Shape: x1 (*1), x2 (*2) broadcastable to (*); output (*) without ``dim``.
    Defaults: dim=1, eps=1e-08.
    """
    check_float("cosine_similarity", x1, "x1")
    check_float("cosine_similarity", x2, "x2")
    try:
        shape = tuple(np.broadcast_shapes(x1.shape, x2.shape))
    except ValueError:
        raise ValueError(f"[cosine_similarity] expected broadcastable shapes, got {x1.shape} and {x2.shape}") from None
    a, b = x1.expand(*shape), x2.expand(*shape)
    axis = _dim("cosine_similarity", dim, len(shape))
    na = _clamp_value_only(_norm("cosine_similarity", a, 2, axis), eps)
    nb = _clamp_value_only(_norm("cosine_similarity", b, 2, axis), eps)
    return ((a / na) * (b / nb)).sum(axis)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """dist(x1, x2) = ||x1 - x2 + eps||_p over the last dim (inputs broadcast).

    Shape: x1 (*, D), x2 (*, D) broadcastable; output (*) (keepdim: (*, 1)).
    Defaults: p=2.0, eps=1e-06, keepdim=False.
    """
    check_float("pairwise_distance", x1, "x1")
    check_float("pairwise_distance", x2, "x2")
    nd = max(x1.ndim, x2.ndim)
    if nd == 0:
        raise ValueError("[pairwise_distance] expected inputs with at least one dim, got 0-d tensors")
    return _norm("pairwise_distance", x1 - x2 + eps, p, nd - 1, keepdim)


# ---------------------------------------------------------------------------------------- pad
_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_index(mode: str, n: int, lo: int, hi: int) -> np.ndarray:
    """Input position of each output position along one dim (-1: the constant value)."""
    j = np.arange(-lo, n + hi)
    if mode == "constant":
        return np.where((j >= 0) & (j < n), j, -1)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    if mode == "circular":
        return j % n
    period = 2 * (n - 1)  # reflect: mirror about the edge elements, which are not repeated
    m = np.abs(j) % max(period, 1)
    return np.where(m >= n, period - m, m)


def _along(axis: int, k: Any) -> tuple[Any, ...]:
    return (slice(None),) * axis + (k,)


class _Pad(Function):
    """Gathers along each padded axis by an index map (``maps``: (axis, index map, left pad)). Backward
    copies the interior block back and adds each padded position into its source, one slice at a
    time (pads are narrow), with basic indexing only: any array module serves."""

    @staticmethod
    def forward(ctx: Any, x: Any, maps: list[tuple[int, np.ndarray, int]], value: float) -> Any:
        xp = xp_of(x)
        ctx.maps, ctx.shape = maps, x.shape
        out = x
        for axis, idx, _ in maps:
            out = xp.take(out, xp.asarray(np.maximum(idx, 0)), axis=axis)
            if (idx < 0).any():
                out[_along(axis, xp.asarray(np.flatnonzero(idx < 0)))] = value
        return out if out is not x else x.copy()

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        xp = xp_of(g)
        shape = list(g.shape)
        for axis, idx, lo in reversed(ctx.maps):
            n, m = ctx.shape[axis], len(idx)
            shape[axis] = n
            acc = xp.zeros(tuple(shape), dtype=g.dtype)
            j0, j1 = max(lo, 0), min(lo + n, m)  # output positions that are the input itself
            if j1 > j0:
                acc[_along(axis, slice(j0 - lo, j1 - lo))] = g[_along(axis, slice(j0, j1))]
            for j in np.flatnonzero(idx >= 0):
                if not j0 <= j < j1:
                    acc[_along(axis, int(idx[j]))] += g[_along(axis, int(j))]
            g = acc
        return g, None, None


def _pad_checks(input: Tensor, pad: Sequence[int], mode: str) -> int:
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"[pad] expected mode in {_PAD_MODES}, got {mode!r}")
    if len(pad) % 2:
        raise ValueError(f"[pad] expected a pad sequence of even length, got {len(pad)}")
    k = len(pad) // 2
    if k > input.ndim:
        raise ValueError(f"[pad] expected at most 2 * input.dim() = {2 * input.ndim} pad values, got {len(pad)}")
    if mode != "constant":
        if not 1 <= k <= 3 or input.ndim not in (k + 1, k + 2):
            raise NotImplementedError(f"[pad] expected {mode} padding of the last 1-3 dims of a ({k + 1})-d or "
                                      f"({k + 2})-d input, got {len(pad)} pad values for a {input.ndim}-d input")
        check_float("pad", input)
    return k


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: Optional[float] = None) -> Tensor:
    """pad(x): ``pad = (left_last, right_last, left_prev, right_prev, ...)`` sizes added to the last dims;
    mode 'constant' fills ``value`` (negative sizes crop), 'reflect' mirrors without repeating the
    edge, 'replicate' repeats the edge, 'circular' wraps around.

    Shape: input (*); output (*) with dim -1-i grown by pad[2i] + pad[2i+1].
    Defaults: mode='constant', value=None (0).
    """
    check_tensor("pad", input)
    pad = [operator.index(p) for p in pad]
    k = _pad_checks(input, pad, mode)
    if value is not None and mode != "constant":
        raise ValueError(f"[pad] expected value only with mode='constant', got mode={mode!r}")
    maps = []
    for i in range(k):
        axis, lo, hi = input.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        n = input.shape[axis]
        if mode == "constant" and n + lo + hi < 0:
            raise ValueError(f"[pad] expected a non-negative output size on dim {axis}, got {n + lo + hi}")
        if mode != "constant" and (min(lo, hi) < 0 or (mode == "reflect" and max(lo, hi) >= n)
                                   or (mode == "circular" and max(lo, hi) > n) or n == 0):
            raise ValueError(f"[pad] expected {mode} padding of dim {axis} (size {n}) in "
                             f"[0, {n - 1 if mode == 'reflect' else n}], got ({lo}, {hi})")
        if lo or hi:
            maps.append((axis, _pad_index(mode, n, lo, hi), lo))
    out: Tensor = _Pad.apply(input, maps, 0.0 if value is None else value)
    return out


# ---------------------------------------------------------------------------------------- one_hot
def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """one_hot(t)[..., c] = 1 if t[...] == c else 0 (int64).

    Shape: tensor (*) int64 class indices; output (*, num_classes).
    Defaults: num_classes=-1 (max(tensor) + 1).
    """
    check_tensor("one_hot", tensor, "tensor")
    x = tensor._data
    if x.dtype != np.int64:
        raise TypeError(f"[one_hot] expected an int64 index tensor, got {x.dtype}")
    xp = xp_of(x)
    if num_classes == -1:
        if x.size == 0:
            raise RuntimeError("[one_hot] expected num_classes for an empty tensor (cannot infer it)")
        num_classes = int(x.max()) + 1
    if x.size and int(x.min()) < 0:
        raise RuntimeError("[one_hot] expected non-negative class values")
    if num_classes < 0 or (x.size and int(x.max()) >= num_classes):
        raise RuntimeError(f"[one_hot] expected class values below num_classes = {num_classes}")
    out = (x[..., None] == xp.arange(num_classes, dtype=np.int64)).astype(np.int64)
    return Tensor._wrap(out)


# ---------------------------------------------------------------------------------------- losses
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _loss_args(op: str, reduction: str, size_average: Any, reduce: Any, *tensors: Any) -> str:
    for i, t in enumerate(tensors):
        check_float(op, t, f"input{i + 1}" if len(tensors) > 1 else "input")
    return _reduction(op, reduction, size_average, reduce)


def _target(op: str, target: Any, like: Tensor) -> Tensor:
    t = check_tensor(op, target, "target")
    return t if t.dtype == like.dtype else t.to(like.dtype)


@amp_op("margin_ranking_loss")
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """loss = max(0, -y * (x1 - x2) + margin), y in {1, -1}.

    Shape: input1 (*), input2 (*), target (*) broadcastable; output () or (*) with reduction='none'.
    Defaults: margin=0.0, reduction='mean'.
    """
    red = _loss_args("margin_ranking_loss", reduction, size_average, reduce, input1, input2)
    if not input1.ndim == input2.ndim == check_tensor("margin_ranking_loss", target, "target").ndim:
        raise ValueError(f"[margin_ranking_loss] expected input1, input2 and target of one ndim, got "
                         f"{input1.ndim}, {input2.ndim} and {target.ndim}")
    y = _target("margin_ranking_loss", target, input1)
    return _reduce((-y * (input1 - input2) + margin).clamp(min=0), red)


@amp_op("hinge_embedding_loss")
def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average: Any = None,
                         reduce: Any = None, reduction: str = "mean") -> Tensor:
    """loss = x where y = 1, max(0, margin - x) where y = -1.

    Shape: input (*), target (*) the same shape; output () or (*) with reduction='none'.
    Defaults: margin=1.0, reduction='mean'.
    """
    red = _loss_args("hinge_embedding_loss", reduction, size_average, reduce, input)
    y = _target("hinge_embedding_loss", target, input)
    zero = input * 0.0
    hinge = where(y != 1, (margin - input).clamp(min=0), zero)
    return _reduce(hinge + where(y != -1, input, zero), red)


@amp_op("soft_margin_loss")
def soft_margin_loss(input: Tensor, target: Tensor, size_average: Any = None, reduce: Any = None,
                     reduction: str = "mean") -> Tensor:
    """loss = log(1 + exp(-y * x)) (softplus on the activation kernel).

    Shape: input (*), target (*) the same shape; output () or (*) with reduction='none'.
    Defaults: reduction='mean'.
    """
    red = _loss_args("soft_margin_loss", reduction, size_average, reduce, input)
    y = _target("soft_margin_loss", target, input)
    return _reduce(softplus(-y * input), red)


@amp_op("multilabel_soft_margin_loss")
def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                                size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """loss_n = -mean_c w_c (y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)).

    Shape: input (N, C) or (C,), target the same shape; output () or (N,) with reduction='none'.
    Defaults: weight=None, reduction='mean'.
    """
    red = _loss_args("multilabel_soft_margin_loss", reduction, size_average, reduce, input)
    y = _target("multilabel_soft_margin_loss", target, input)
    loss = -(y * logsigmoid(input) + (1.0 - y) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.mean(input.ndim - 1) if input.ndim else loss, red)


@amp_op("cosine_embedding_loss")
def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> Tensor:
    """loss = 1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1
    (cos = x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)) over the last dim).

    Shape: input1 (N, D) or (D,), input2 the same, target (N,) or (); output () or (N,) with reduction='none'.
    Defaults: margin=0.0, reduction='mean'.
    """
    red = _loss_args("cosine_embedding_loss", reduction, size_average, reduce, input1, input2)
    if input1.ndim not in (1, 2) or input1.shape != input2.shape or target.ndim != input1.ndim - 1:
        raise ValueError(f"[cosine_embedding_loss] expected inputs (N, D) or (D,) of one shape and target (N,) or (), "
                         f"got {input1.shape}, {input2.shape} and {target.shape}")
    y = _target("cosine_embedding_loss", target, input1)
    if input1.ndim == 1:  # as a batch of one: elementwise ops on 0-d tensors stay off the tape
        return _unbatch(cosine_embedding_loss(input1.unsqueeze(0), input2.unsqueeze(0), y.reshape(1), margin,
                                              reduction=red), red)
    cos = (input1 * input2).sum(1) / (((input1 * input1).sum(1) + 1e-12) * ((input2 * input2).sum(1) + 1e-12)).sqrt()
    zero = cos * 0.0
    return _reduce(where(y == 1, 1.0 - cos, zero) + where(y == -1, (cos - margin).clamp(min=0), zero), red)


def _unbatch(loss: Tensor, reduction: str) -> Tensor:
    return loss.reshape(()) if reduction == "none" else loss


def _gaussian_var(input: Tensor, var: Tensor) -> Tensor:
    if var.shape == input.shape:
        return var
    if input.ndim and var.shape == input.shape[:-1]:
        return var.unsqueeze(-1)
    if input.ndim and var.shape[:-1] == input.shape[:-1] and var.ndim and var.shape[-1] == 1:
        return var
    raise ValueError(f"[gaussian_nll_loss] expected var of shape {input.shape}, {input.shape[:-1]} or "
                     f"{input.shape[:-1] + (1,)}, got {var.shape}")


@amp_op("gaussian_nll_loss")
def gaussian_nll_loss(input: Tensor, target: Tensor, var: Any, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """loss = (log(max(var, eps)) + (input - target)^2 / max(var, eps)) / 2 (+ log(2 pi) / 2 if full).

    Shape: input (N, *), target the same, var the same or with the last dim 1 or dropped; output () or
    (N, *) with reduction='none'.
    Defaults: full=False, eps=1e-06, reduction='mean'.
    """
    red = _loss_args("gaussian_nll_loss", reduction, None, None, input)
    if not isinstance(var, Tensor):
        var = input * 0.0 + float(var)
    check_float("gaussian_nll_loss", var, "var")
    v = _gaussian_var(input, var)
    if bool((v._data < 0).any()):
        raise ValueError("[gaussian_nll_loss] expected var without negative entries")
    v = _clamp_value_only(v, eps)
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, red)


@amp_op("poisson_nll_loss")
def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average: Any = None, eps: float = 1e-8, reduce: Any = None,
                     reduction: str = "mean") -> Tensor:
    """loss = exp(x) - y x (log_input) or x - y log(x + eps); full adds Stirling's
    y log y - y + log(2 pi y) / 2 where y > 1.

    Shape: input (*), target (*) the same shape; output () or (*) with reduction='none'.
    Defaults: log_input=True, full=False, eps=1e-08, reduction='mean'.
    """
    red = _loss_args("poisson_nll_loss", reduction, size_average, reduce, input)
    y = _target("poisson_nll_loss", target, input)
    loss = input.exp() - y * input if log_input else input - y * (input + eps).log()
    if full:
        ys = where(y > 1, y, y * 0.0 + 1.0)  # a safe log argument; masked out below anyway
        stirling = ys * ys.log() - ys + 0.5 * (2 * math.pi * ys).log()
        loss = loss + where(y > 1, stirling, stirling * 0.0)
    return _reduce(loss, red)


@amp_op("triplet_margin_loss")
def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average: Any = None, reduce: Any = None,
                        reduction: str = "mean") -> Tensor:
    """loss = max(d(a, p) - d(a, n) + margin, 0), d the pairwise p-distance (swap: d(a, n) replaced by
    min(d(a, n), d(p, n))).

    Shape: anchor, positive, negative (N, D) or (D,); output () or (N,) with reduction='none'.
    Defaults: margin=1.0, p=2, eps=1e-06, swap=False, reduction='mean'.
    """
    red = _loss_args("triplet_margin_loss", reduction, size_average, reduce, anchor, positive, negative)
    if not (anchor.ndim == positive.ndim == negative.ndim and anchor.ndim in (1, 2)):
        raise ValueError(f"[triplet_margin_loss] expected anchor, positive and negative of one ndim, 1 or 2, got "
                         f"{anchor.ndim}, {positive.ndim} and {negative.ndim}")
    if anchor.ndim == 1:  # as a batch of one (see cosine_embedding_loss)
        return _unbatch(triplet_margin_loss(anchor.unsqueeze(0), positive.unsqueeze(0), negative.unsqueeze(0), margin,
                                            p, eps, swap, reduction=red), red)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = where(d_swap < d_neg, d_swap, d_neg)
    return _reduce((margin + d_pos - d_neg).clamp(min=0), red)
