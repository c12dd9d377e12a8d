"""Functional pooling and resampling: max / average / adaptive pooling, ``interpolate``,
``pixel_shuffle`` / ``pixel_unshuffle`` (forward and backward in nnfast's kernels).

Every op views its input (N, C, *spatial) (or unbatched (C, *spatial)) as planes
(N * C, H, W) without copying when it is contiguous (1-d ops are H = 1), computes the
output size and checks PyTorch's argument rules here, and calls one forward kernel;
the backward kernel writes the input gradient plane by plane (deterministic). Max
pooling's indices are int64, the flat h * W + w within each plane, as PyTorch's.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..._dispatch import contiguous, kernels, xp_of
from ...autograd.function import Function
from ...tensor import Tensor
from ._checks import check_float
from ...amp.autocast_mode import amp_op

__all__ = [
    "max_pool1d", "max_pool2d", "max_unpool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "interpolate", "upsample", "upsample_nearest",
    "upsample_bilinear", "pixel_shuffle", "pixel_unshuffle",
]

_Size = Union[int, Sequence[int]]
_OptSize = Union[None, int, Sequence[Optional[int]]]
_Pair = tuple[int, int]
_Pair_f = tuple[float, float]


# ---------------------------------------------------------------- argument handling
def _ints(op: str, v: Any, n: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints (PyTorch's _single / _pair) as an n-tuple."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),) * n
    try:
        if isinstance(v, (str, bytes)):
            raise TypeError
        t = tuple(int(e) for e in v)
    except (TypeError, ValueError):
        raise TypeError(f"[{op}] expected {name} to be an int or a sequence of {n} ints, "
                        f"got {type(v).__name__}") from None
    if len(t) == 1:
        return t * n
    if len(t) != n:
        raise ValueError(f"[{op}] expected {name} to be an int or a sequence of {n} ints, got {tuple(v)}")
    return t


def _as_planes(op: str, input: Any, nsp: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Checks input is (N, C, *spatial) or (C, *spatial) with ``nsp`` spatial dims.
    Returns (planes, leading dims, spatial dims)."""
    check_float(op, input)
    names = "(C, L)" if nsp == 1 else "(C, H, W)"
    if input.ndim not in (nsp + 1, nsp + 2):
        raise ValueError(f"[{op}] expected a {nsp + 1}-D {names} or {nsp + 2}-D (N, {names[1:]} input, "
                         f"got {input.ndim}-D with shape {tuple(input.shape)}")
    shape = tuple(input.shape)
    lead, spatial = shape[:-nsp], shape[-nsp:]
    if any(s == 0 for s in shape[-nsp - 1:]):
        raise ValueError(f"[{op}] expected non-empty channel and spatial dimensions, got shape {shape}")
    return math.prod(lead), lead, spatial


def _plane_view(x: Any, planes: int, spatial: tuple[int, ...]) -> Any:
    """x as a C-contiguous (planes, H, W) array (1-d: H = 1)."""
    H, W = (1, spatial[0]) if len(spatial) == 1 else spatial
    return contiguous(x).reshape(planes, H, W)


def _hw(t: tuple[int, ...], fill: int) -> _Pair:
    """A 1- or 2-tuple as (h, w); 1-d ops put ``fill`` on the dummy H axis."""
    return (fill, t[0]) if len(t) == 1 else (t[0], t[1])


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape: floor (or ceil) of the window count; with ceil_mode the
    last window must start inside the input or its left padding."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _window_args(op: str, input: Any, nsp: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                 ceil_mode: bool) -> tuple[int, tuple[int, ...], tuple[int, ...], tuple[_Pair, ...], _Pair]:
    """Checks a windowed pooling's arguments (PyTorch's rules); returns planes, leading dims,
    output spatial dims, the (h, w) kernel / stride / padding / dilation and the (h, w) input."""
    planes, lead, spatial = _as_planes(op, input, nsp)
    k = _ints(op, kernel_size, nsp, "kernel_size")
    s = k if stride is None or (not isinstance(stride, (int, np.integer)) and len(stride) == 0) \
        else _ints(op, stride, nsp, "stride")
    p = _ints(op, padding, nsp, "padding")
    d = _ints(op, dilation, nsp, "dilation")
    for name, v, lo in (("kernel_size", k, 1), ("stride", s, 1), ("padding", p, 0), ("dilation", d, 1)):
        if min(v) < lo:
            raise ValueError(f"[{op}] expected {name} >= {lo}, got {v}")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"[{op}] expected padding at most half of kernel_size, got padding={p} and "
                         f"kernel_size={k}")
    out = tuple(_pool_out(n, ki, si, pi, di, ceil_mode) for n, ki, si, pi, di in zip(spatial, k, s, p, d))
    if min(out) < 1:
        raise ValueError(f"[{op}] expected an output size >= 1, got {out} from input size {spatial} "
                         f"(kernel larger than the padded input)")
    return planes, lead, out, (_hw(k, 1), _hw(s, 1), _hw(p, 0), _hw(d, 1)), _hw(spatial, 1)


def _result(y: Any, lead: tuple[int, ...], out: tuple[int, ...]) -> Any:
    return y.reshape(lead + out)


# ---------------------------------------------------------------- max pooling
class MaxPoolFunction(Function):
    """y = max over each window; the int64 flat index of the chosen element is kept (the first
    maximum wins, NaN propagates). Backward: dx = scatter-sum of dy through the indices.
    ``window`` None means adaptive windows (start = floor(i In / Out), end = ceil((i+1) In / Out))."""

    @staticmethod
    def forward(ctx: Any, x: Any, planes: int, lead: tuple[int, ...], out: tuple[int, ...],
                window: Optional[tuple[_Pair, ...]], indices_out: list[Any]) -> Any:
        op = "max_pool2d" if window is not None else "adaptive_max_pool2d"
        K = kernels(op, x)
        xp = xp_of(x)
        x3 = _plane_view(x, planes, tuple(x.shape[len(lead):]))
        OH, OW = _hw(out, 1)
        y = xp.empty((planes, OH, OW), dtype=x.dtype)
        idx = xp.empty((planes, OH, OW), dtype=np.int64)
        if window is None:
            K.adaptive_max_pool2d_forward(y, idx, x3)
        else:
            K.max_pool2d_forward(y, idx, x3, *window)
        ctx.indices, ctx.in_shape, ctx.op = idx, x.shape, op
        indices_out.append(_result(idx, lead, out))
        return _result(y, lead, out)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        idx = ctx.indices
        planes = idx.shape[0]
        shape = ctx.in_shape
        in_plane = math.prod(shape) // planes if planes else 0
        xp = xp_of(dy)
        dx = xp.empty(shape, dtype=dy.dtype)
        kernels(ctx.op, dy).max_pool2d_backward(dx.reshape(planes, 1, in_plane),
                                                contiguous(dy).reshape(idx.shape), idx)
        return dx


def _max_pool(op: str, nsp: int, input: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
              ceil_mode: bool, return_indices: bool) -> Any:
    planes, lead, out, window, _ = _window_args(op, input, nsp, kernel_size, stride, padding, dilation, ceil_mode)
    holder: list[Any] = []
    y = MaxPoolFunction.apply(input, planes, lead, out, window, holder)
    return (y, Tensor._wrap(holder[0])) if return_indices else y


@amp_op("max_pool1d")
def max_pool1d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
               dilation: _Size = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """1-d max pooling: out[n, c, l] = max over the window of input[n, c, l * stride - padding +
    k * dilation], k < kernel_size (padding counts as -inf).

    Shape: input (N, C, L) or (C, L); output (N, C, L_out) with L_out = floor((L + 2 padding -
    dilation (kernel_size - 1) - 1) / stride) + 1 (ceil with ceil_mode); indices (int64, the
    position within L) of the same shape when return_indices.
    Defaults: stride=None (kernel_size), padding=0, dilation=1, ceil_mode=False, return_indices=False.
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@amp_op("max_pool2d")
def max_pool2d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
               dilation: _Size = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """2-d max pooling over (H, W) windows (kernel_size, stride, padding, dilation per axis; padding
    counts as -inf, the first maximum wins, NaN propagates).

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out), H_out = floor((H + 2
    padding - dilation (kernel_size - 1) - 1) / stride) + 1 (ceil with ceil_mode, the last window
    starting inside the input or its left padding); indices (int64, h * W + w within each plane)
    of the output's shape when return_indices.
    Defaults: stride=None (kernel_size), padding=0, dilation=1, ceil_mode=False, return_indices=False.
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ---------------------------------------------------------------- max unpooling
class MaxUnpoolFunction(Function):
    """y = zeros, y[indices] = x per plane (the inverse placement of max pooling); dx = dy[indices]."""

    @staticmethod
    def forward(ctx: Any, x: Any, indices: Any, out: _Pair) -> Any:
        K = kernels("max_unpool2d", x, indices)
        lead = tuple(x.shape[:-2])
        planes = math.prod(lead)
        x3 = contiguous(x).reshape((planes,) + tuple(x.shape[-2:]))
        i3 = contiguous(indices).reshape(x3.shape)
        y = xp_of(x).empty((planes,) + tuple(out), dtype=x.dtype)
        K.max_unpool2d_forward(y, x3, i3)
        ctx.indices, ctx.x3_shape, ctx.y3_shape, ctx.in_shape = i3, x3.shape, y.shape, x.shape
        return y.reshape(lead + tuple(out))

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        dx = xp_of(dy).empty(ctx.x3_shape, dtype=dy.dtype)
        kernels("max_unpool2d", dy).max_unpool2d_backward(dx, contiguous(dy).reshape(ctx.y3_shape), ctx.indices)
        return dx.reshape(ctx.in_shape), None


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: _Size, stride: Optional[_Size] = None,
                 padding: _Size = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """Partial inverse of ``max_pool2d``: out = 0 except out[n, c].flat[indices[n, c, h, w]] = input[n, c, h, w]
    (a later duplicate index wins).

    Shape: input and int64 indices (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out) with
    H_out = (H - 1) stride - 2 padding + kernel_size, or ``output_size`` (its last two entries, within
    one stride of that size).
    Defaults: stride=None (kernel_size), padding=0, output_size=None.
    """
    op = "max_unpool2d"
    _as_planes(op, input, 2)
    if not isinstance(indices, Tensor):
        raise TypeError(f"[{op}] expected indices to be an nnfast.Tensor, got {type(indices).__name__}")
    if indices.dtype != np.int64:
        raise TypeError(f"[{op}] expected indices to be int64, got {indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(f"[{op}] expected indices of the input's shape {tuple(input.shape)}, "
                         f"got {tuple(indices.shape)}")
    k = _ints(op, kernel_size, 2, "kernel_size")
    s = k if stride is None else _ints(op, stride, 2, "stride")
    p = _ints(op, padding, 2, "padding")
    default = tuple((n - 1) * si - 2 * pi + ki for n, si, pi, ki in zip(input.shape[-2:], s, p, k))
    if output_size is None:
        out = default
    else:
        sizes = tuple(int(v) for v in output_size)[-2:]
        if len(sizes) != 2:
            raise ValueError(f"[{op}] expected output_size with 2 (or 4) entries, got {tuple(output_size)}")
        for d, (want, lo_hi, si) in enumerate(zip(sizes, default, s)):
            if not lo_hi - si < want < lo_hi + si:
                raise ValueError(f"[{op}] expected output_size[{d}] between {lo_hi - si} and {lo_hi + si} "
                                 f"(exclusive), got {want}")
        out = sizes
    if min(out) < 1:
        raise ValueError(f"[{op}] expected an output size >= 1, got {out}")
    plane = out[0] * out[1]
    idx = indices._data
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= plane):
        raise ValueError(f"[{op}] expected indices in [0, {plane}) (output planes of {out[0]}x{out[1]}), "
                         f"got values in [{int(idx.min())}, {int(idx.max())}]")
    return MaxUnpoolFunction.apply(input, indices, out)


# ---------------------------------------------------------------- average pooling
class AvgPoolFunction(Function):
    """y = window sum / divisor (avg_pool2d's rules, or adaptive windows when ``window`` is None);
    backward spreads dy / divisor over each window."""

    @staticmethod
    def forward(ctx: Any, x: Any, planes: int, lead: tuple[int, ...], out: tuple[int, ...],
                window: Optional[tuple[_Pair, ...]], count_include_pad: bool, divisor_override: int) -> Any:
        op = "avg_pool2d" if window is not None else "adaptive_avg_pool2d"
        K = kernels(op, x)
        x3 = _plane_view(x, planes, tuple(x.shape[len(lead):]))
        OH, OW = _hw(out, 1)
        y = xp_of(x).empty((planes, OH, OW), dtype=x.dtype)
        if window is None:
            K.adaptive_avg_pool2d_forward(y, x3)
        else:
            K.avg_pool2d_forward(y, x3, *window, count_include_pad, divisor_override)
        ctx.op, ctx.x3_shape, ctx.y3_shape, ctx.in_shape, ctx.window = op, x3.shape, y.shape, x.shape, window
        ctx.cip, ctx.div = count_include_pad, divisor_override
        return _result(y, lead, out)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        K = kernels(ctx.op, dy)
        dx = xp_of(dy).empty(ctx.x3_shape, dtype=dy.dtype)
        d3 = contiguous(dy).reshape(ctx.y3_shape)
        if ctx.window is None:
            K.adaptive_avg_pool2d_backward(dx, d3)
        else:
            K.avg_pool2d_backward(dx, d3, *ctx.window, ctx.cip, ctx.div)
        return dx.reshape(ctx.in_shape)


def _avg_pool(op: str, nsp: int, input: Tensor, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool,
              count_include_pad: bool, divisor_override: Optional[int]) -> Tensor:
    planes, lead, out, window, _ = _window_args(op, input, nsp, kernel_size, stride, padding, 1, ceil_mode)
    div = 0
    if divisor_override is not None:
        div = int(divisor_override)
        if div == 0:
            raise ValueError(f"[{op}] expected a non-zero divisor_override, got 0")
    return AvgPoolFunction.apply(input, planes, lead, out, window[:3], bool(count_include_pad), div)


@amp_op("avg_pool1d")
def avg_pool1d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """1-d average pooling: the mean of each window (zero padding counted in the divisor when
    count_include_pad).

    Shape: input (N, C, L) or (C, L); output (N, C, L_out), L_out = floor((L + 2 padding -
    kernel_size) / stride) + 1 (ceil with ceil_mode).
    Defaults: stride=None (kernel_size), padding=0, ceil_mode=False, count_include_pad=True.
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


@amp_op("avg_pool2d")
def avg_pool2d(input: Tensor, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """2-d average pooling: each (H, W) window's sum divided by divisor_override, or by the window
    size including zero padding (count_include_pad) or only its elements inside the input.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out), H_out = floor((H + 2
    padding - kernel_size) / stride) + 1 (ceil with ceil_mode).
    Defaults: stride=None (kernel_size), padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None.
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ---------------------------------------------------------------- adaptive pooling
def _adaptive_out(op: str, output_size: Any, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """output_size as an int or a tuple whose None entries keep the input's size."""
    n = len(spatial)
    if output_size is None or isinstance(output_size, (int, np.integer)):
        sizes: tuple[Any, ...] = (output_size,) * n
    else:
        sizes = tuple(output_size)
        if len(sizes) != n:
            raise ValueError(f"[{op}] expected output_size to be an int or a sequence of {n}, got {output_size}")
    out = tuple(s if o is None else int(o) for o, s in zip(sizes, spatial))
    if min(out) < 1:
        raise ValueError(f"[{op}] expected output_size >= 1, got {out}")
    return out


def _adaptive(op: str, nsp: int, input: Tensor, output_size: Any) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    planes, lead, spatial = _as_planes(op, input, nsp)
    return planes, lead, _adaptive_out(op, output_size, spatial)


@amp_op("adaptive_avg_pool1d")
def adaptive_avg_pool1d(input: Tensor, output_size: _Size) -> Tensor:
    """1-d adaptive average pooling: output l averages input[floor(l L / L_out) : ceil((l + 1) L / L_out)].

    Shape: input (N, C, L) or (C, L); output (N, C, L_out) with L_out = output_size.
    Defaults: none (output_size is required).
    """
    planes, lead, out = _adaptive("adaptive_avg_pool1d", 1, input, output_size)
    return AvgPoolFunction.apply(input, planes, lead, out, None, True, 0)


@amp_op("adaptive_avg_pool2d")
def adaptive_avg_pool2d(input: Tensor, output_size: _OptSize) -> Tensor:
    """2-d adaptive average pooling: output (i, j) averages rows [floor(i H / H_out), ceil((i + 1) H /
    H_out)) and the matching columns.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out) = output_size (an int for
    both, or a pair whose None entries keep the input's size).
    Defaults: none (output_size is required).
    """
    planes, lead, out = _adaptive("adaptive_avg_pool2d", 2, input, output_size)
    return AvgPoolFunction.apply(input, planes, lead, out, None, True, 0)


@amp_op("adaptive_max_pool1d")
def adaptive_max_pool1d(input: Tensor, output_size: _Size, return_indices: bool = False) -> Any:
    """1-d adaptive max pooling over the adaptive windows (see ``adaptive_avg_pool1d``).

    Shape: input (N, C, L) or (C, L); output and int64 indices (N, C, L_out).
    Defaults: return_indices=False.
    """
    planes, lead, out = _adaptive("adaptive_max_pool1d", 1, input, output_size)
    holder: list[Any] = []
    y = MaxPoolFunction.apply(input, planes, lead, out, None, holder)
    return (y, Tensor._wrap(holder[0])) if return_indices else y


@amp_op("adaptive_max_pool2d")
def adaptive_max_pool2d(input: Tensor, output_size: _OptSize, return_indices: bool = False) -> Any:
    """2-d adaptive max pooling over the adaptive windows (see ``adaptive_avg_pool2d``); the first
    maximum wins, NaN propagates.

    Shape: input (N, C, H, W) or (C, H, W); output and int64 indices (h * W + w) (N, C, H_out, W_out).
    Defaults: return_indices=False.
    """
    planes, lead, out = _adaptive("adaptive_max_pool2d", 2, input, output_size)
    holder: list[Any] = []
    y = MaxPoolFunction.apply(input, planes, lead, out, None, holder)
    return (y, Tensor._wrap(holder[0])) if return_indices else y


# ---------------------------------------------------------------- interpolation
_NEAREST = ("nearest", "nearest-exact")
_MODES = {"nearest": (1, 2), "nearest-exact": (1, 2), "linear": (1,), "bilinear": (2,)}


class InterpolateFunction(Function):
    """Nearest (source floor(dst * ratio)), nearest-exact (floor((dst + 0.5) ratio)) or (bi)linear
    resampling of each plane; backward adds each output's gradient to its source taps."""

    @staticmethod
    def forward(ctx: Any, x: Any, planes: int, lead: tuple[int, ...], out: tuple[int, ...], mode: str,
                align_corners: bool, scales: _Pair_f) -> Any:
        K = kernels("interpolate", x)
        x3 = _plane_view(x, planes, tuple(x.shape[len(lead):]))
        OH, OW = _hw(out, 1)
        y = xp_of(x).empty((planes, OH, OW), dtype=x.dtype)
        K.interpolate_forward(y, x3, mode, align_corners, *scales)
        ctx.args, ctx.x3_shape, ctx.y3_shape = (mode, align_corners) + tuple(scales), x3.shape, y.shape
        ctx.in_shape = x.shape
        return _result(y, lead, out)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        dx = xp_of(dy).empty(ctx.x3_shape, dtype=dy.dtype)
        d3 = contiguous(dy).reshape(ctx.y3_shape)
        kernels("interpolate", dy).interpolate_backward(dx, d3, *ctx.args)
        return dx.reshape(ctx.in_shape)


def interpolate(input: Tensor, size: Optional[_Size] = None, scale_factor: Union[None, float, Sequence[float]] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None, antialias: bool = False) -> Tensor:
    """Resample the spatial dimensions to ``size`` or by ``scale_factor`` (output = floor(in *
    scale_factor)). Modes: 'nearest' (PyTorch's legacy floor(dst * in / out)), 'nearest-exact',
    'linear' (3-D input), 'bilinear' (4-D input), with align_corners for the linear modes. When
    scale_factor is given and recompute_scale_factor is not True, the source coordinates use
    1 / scale_factor, as PyTorch does; otherwise in / out.

    Shape: input (N, C, L) or (N, C, H, W); output (N, C, *size).
    Defaults: size=None, scale_factor=None (exactly one is required), mode='nearest',
    align_corners=None (False for linear modes), recompute_scale_factor=None, antialias=False.
    """
    op = "interpolate"
    check_float(op, input)
    if mode not in _MODES:
        raise ValueError(f"[{op}] expected mode to be one of {', '.join(repr(m) for m in _MODES)}, got {mode!r}")
    nsp = input.ndim - 2
    if nsp not in _MODES[mode]:
        want = " or ".join(f"{n + 2}-D" for n in _MODES[mode])
        raise ValueError(f"[{op}] expected a {want} input for mode {mode!r}, got {input.ndim}-D")
    if antialias:
        raise NotImplementedError(f"[{op}] antialias=True is not supported")
    if mode in _NEAREST:
        if align_corners is not None:
            raise ValueError(f"[{op}] expected align_corners=None with mode {mode!r} (it only applies to the "
                             "linear modes)")
        align = False
    else:
        align = bool(align_corners) if align_corners is not None else False
    spatial = tuple(input.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError(f"[{op}] expected exactly one of size or scale_factor, got "
                         f"{'both' if size is not None else 'neither'}")
    scales: tuple[float, ...] = (0.0,) * nsp
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"[{op}] expected recompute_scale_factor to be set only with scale_factor")
        out = _ints(op, size, nsp, "size")
    else:
        sf = (float(scale_factor),) * nsp if isinstance(scale_factor, (int, float, np.number)) else \
            tuple(float(v) for v in scale_factor)  # type: ignore[union-attr]
        if len(sf) != nsp:
            raise ValueError(f"[{op}] expected scale_factor to be a float or a sequence of {nsp}, got {scale_factor}")
        if min(sf) <= 0 or not all(math.isfinite(v) for v in sf):
            raise ValueError(f"[{op}] expected positive finite scale factors, got {sf}")
        out = tuple(int(math.floor(float(n) * s)) for n, s in zip(spatial, sf))
        if not recompute_scale_factor:
            scales = sf
    if min(out) < 1:
        raise ValueError(f"[{op}] expected an output size >= 1, got {out} for input size {spatial}")
    if min(spatial) < 1 or input.shape[1] == 0:
        raise ValueError(f"[{op}] expected non-empty channel and spatial dimensions, got {tuple(input.shape)}")
    planes = input.shape[0] * input.shape[1]
    sc: _Pair_f = (0.0, scales[0]) if nsp == 1 else (scales[0], scales[1])
    return InterpolateFunction.apply(input, planes, tuple(input.shape[:2]), out, mode, align, sc)


def upsample(input: Tensor, size: Optional[_Size] = None, scale_factor: Union[None, float, Sequence[float]] = None,
             mode: str = "nearest", align_corners: Optional[bool] = None) -> Tensor:
    """Deprecated alias of ``interpolate`` (PyTorch keeps it).

    Shape: as ``interpolate``.
    Defaults: size=None, scale_factor=None, mode='nearest', align_corners=None.
    """
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Optional[_Size] = None,
                     scale_factor: Union[None, float, Sequence[float]] = None) -> Tensor:
    """``interpolate(input, size, scale_factor, mode='nearest')``.

    Shape: as ``interpolate``.
    Defaults: size=None, scale_factor=None.
    """
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Optional[_Size] = None,
                      scale_factor: Union[None, float, Sequence[float]] = None) -> Tensor:
    """``interpolate(input, size, scale_factor, mode='bilinear', align_corners=True)``.

    Shape: input (N, C, H, W); output (N, C, H_out, W_out).
    Defaults: size=None, scale_factor=None.
    """
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- pixel shuffle
class PixelShuffleFunction(Function):
    """A permutation: (*, C r^2, H, W) <-> (*, C, H r, W r); the backward of one direction is the other."""

    @staticmethod
    def forward(ctx: Any, x: Any, r: int, unshuffle: bool) -> Any:
        K = kernels("pixel_unshuffle" if unshuffle else "pixel_shuffle", x)
        lead = tuple(x.shape[:-3])
        x4 = contiguous(x).reshape((math.prod(lead),) + tuple(x.shape[-3:]))
        C, H, W = x4.shape[1:]
        out = (C * r * r, H // r, W // r) if unshuffle else (C // (r * r), H * r, W * r)
        y = xp_of(x).empty((x4.shape[0],) + out, dtype=x.dtype)
        K.pixel_shuffle(y, x4, r, unshuffle)
        ctx.r, ctx.unshuffle, ctx.x4_shape, ctx.in_shape = r, unshuffle, x4.shape, x.shape
        return y.reshape(lead + out)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        K = kernels("pixel_unshuffle" if ctx.unshuffle else "pixel_shuffle", dy)
        dx = xp_of(dy).empty(ctx.x4_shape, dtype=dy.dtype)
        d4 = contiguous(dy).reshape((ctx.x4_shape[0],) + tuple(dy.shape[-3:]))
        K.pixel_shuffle(dx, d4, ctx.r, not ctx.unshuffle)
        return dx.reshape(ctx.in_shape)


def _check_shuffle(op: str, input: Any, factor: Any, name: str) -> int:
    check_float(op, input)
    if input.ndim < 3:
        raise ValueError(f"[{op}] expected an input with at least 3 dimensions (*, C, H, W), got {input.ndim}-D")
    if not isinstance(factor, (int, np.integer)) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"[{op}] expected {name} to be a positive int, got {factor!r}")
    return int(factor)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Rearrange (*, C r^2, H, W) into (*, C, H r, W r): out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w].

    Shape: input (*, C r^2, H, W); output (*, C, H r, W r) with r = upscale_factor.
    Defaults: none (upscale_factor is required).
    """
    op = "pixel_shuffle"
    r = _check_shuffle(op, input, upscale_factor, "upscale_factor")
    if input.shape[-3] % (r * r):
        raise ValueError(f"[{op}] expected the channel dimension ({input.shape[-3]}) divisible by "
                         f"upscale_factor^2 = {r * r}")
    return PixelShuffleFunction.apply(input, r, False)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of ``pixel_shuffle``: (*, C, H r, W r) into (*, C r^2, H, W).

    Shape: input (*, C, H r, W r); output (*, C r^2, H, W) with r = downscale_factor.
    Defaults: none (downscale_factor is required).
    """
    op = "pixel_unshuffle"
    r = _check_shuffle(op, input, downscale_factor, "downscale_factor")
    if input.shape[-2] % r or input.shape[-1] % r:
        raise ValueError(f"[{op}] expected height and width divisible by downscale_factor = {r}, got "
                         f"{tuple(input.shape[-2:])}")
    return PixelShuffleFunction.apply(input, r, True)
