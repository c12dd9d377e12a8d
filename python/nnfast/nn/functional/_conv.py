"""Functional convolutions: ``conv1d``, ``conv2d``, ``conv_transpose2d``.

All three run on the 2-D kernels of csrc/cpu/conv.cpp (implicit GEMM on nnfast's packed GEMM):
a 1-D convolution is a 2-D one with H = 1, an unbatched input gets a batch of one, and a
transposed convolution is the data gradient of the convolution it transposes (its backward
is that convolution's forward and weight gradient). One kernel call per forward, one per
backward (input, weight and bias gradients together).
"""
from __future__ import annotations

import operator
from typing import Any, Optional, Sequence, Union

from ..._dispatch import contiguous, kernels, xp_of
from ...autograd.function import ACCUMULATED, Function
from ...tensor import Tensor
from ._checks import check_float, check_same_device, check_same_dtype, check_tensor
from ...amp.autocast_mode import amp_op

__all__ = ["conv1d", "conv2d", "conv_transpose2d"]

_IntOrPair = Union[int, Sequence[int]]
_Padding = Union[int, Sequence[int], str]


# ---------------------------------------------------------------- argument normalisation
def _tuple(op: str, v: Any, n: int, name: str) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints as a tuple of ``n`` ints."""
    try:
        if isinstance(v, Sequence) and not isinstance(v, str):
            t = tuple(operator.index(e) for e in v)
        else:
            t = (operator.index(v),) * n
    except TypeError:
        raise TypeError(f"[{op}] expected {name} to be an int or a tuple of {n} ints, got {v!r}") from None
    if len(t) == 1 and n > 1:
        t = t * n
    if len(t) != n:
        raise ValueError(f"[{op}] expected {name} to be an int or a tuple of {n} ints, got {v!r}")
    return t


def same_padding(kernel: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) zero padding per spatial dim that keeps the size at stride 1, as PyTorch:
    total = dilation * (kernel - 1), the odd element after."""
    out = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        out.append((total // 2, total - total // 2))
    return out


class _Geometry:
    """Checked 2-D geometry of a call: stride, symmetric padding, extra bottom/right padding
    ('same' with an even dilated kernel), dilation, groups."""

    def __init__(self, op: str, nd: int, stride: Any, padding: _Padding, dilation: Any, groups: Any,
                 kernel: Sequence[int]) -> None:
        self.stride = _tuple(op, stride, nd, "stride")
        self.dilation = _tuple(op, dilation, nd, "dilation")
        try:
            self.groups = operator.index(groups)
        except TypeError:
            raise TypeError(f"[{op}] expected groups to be an int, got {groups!r}") from None
        extra = (0,) * nd
        if isinstance(padding, str):
            if padding == "valid":
                pad = (0,) * nd
            elif padding == "same":
                if any(s != 1 for s in self.stride):
                    raise ValueError(f"[{op}] expected stride 1 with padding='same' (not supported for strided "
                                     f"convolutions), got stride={self.stride}")
                pairs = same_padding(kernel, self.dilation)
                pad = tuple(p[0] for p in pairs)
                extra = tuple(p[1] - p[0] for p in pairs)
            else:
                raise ValueError(f"[{op}] expected padding to be an int, a tuple, 'same' or 'valid', got {padding!r}")
        else:
            pad = _tuple(op, padding, nd, "padding")
        self.padding = pad
        self.extra = extra
        if min(self.stride) < 1:
            raise ValueError(f"[{op}] expected stride >= 1, got {self.stride}")
        if min(self.dilation) < 1:
            raise ValueError(f"[{op}] expected dilation >= 1, got {self.dilation}")
        if min(self.padding) < 0:
            raise ValueError(f"[{op}] expected padding >= 0, got {self.padding}")
        if self.groups < 1:
            raise ValueError(f"[{op}] expected groups >= 1, got {self.groups}")

    def as2d(self, nd: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
        """(stride, padding, dilation, extra) as (height, width) pairs; 1-D gets a unit height."""
        def two(t: tuple[int, ...], unit: int) -> tuple[int, int]:
            return (unit, t[0]) if nd == 1 else (t[0], t[1])
        return two(self.stride, 1), two(self.padding, 0), two(self.dilation, 1), two(self.extra, 0)


def _check_tensors(op: str, nd: int, input: Any, weight: Any, bias: Any) -> bool:
    """Types, dtypes, devices and ranks; returns whether the input is batched."""
    check_float(op, input)
    check_tensor(op, weight, "weight")
    check_same_dtype(op, input, weight, "weight")
    if bias is not None:
        check_tensor(op, bias, "bias")
        check_same_dtype(op, input, bias, "bias")
    check_same_device(op, input, weight, bias)
    if weight.ndim != nd + 2:
        raise ValueError(f"[{op}] expected a {nd + 2}-D weight, got {weight.ndim}-D of shape {tuple(weight.shape)}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"[{op}] expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got "
                         f"{input.ndim}-D of shape {tuple(input.shape)}")
    return bool(input.ndim == nd + 2)


def _check_channels(op: str, C: int, weight_shape: tuple[int, ...], groups: int, transposed: bool) -> int:
    """Channel / group rules; returns the output channels."""
    if transposed:
        if weight_shape[0] != C:
            raise ValueError(f"[{op}] expected weight of shape ({C}, out_channels / groups, ...) for {C} input "
                             f"channels, got {weight_shape}")
        if C % groups:
            raise ValueError(f"[{op}] expected input channels ({C}) divisible by groups ({groups})")
        return weight_shape[1] * groups
    if C % groups:
        raise ValueError(f"[{op}] expected input channels ({C}) divisible by groups ({groups})")
    if weight_shape[1] * groups != C:
        raise ValueError(f"[{op}] expected input to have {weight_shape[1] * groups} channels (weight {weight_shape}, "
                         f"groups={groups}), got {C} channels")
    if weight_shape[0] % groups:
        raise ValueError(f"[{op}] expected out_channels ({weight_shape[0]}) divisible by groups ({groups})")
    return weight_shape[0]


def _check_bias(op: str, bias: Any, OC: int) -> None:
    if bias is not None and tuple(bias.shape) != (OC,):
        raise ValueError(f"[{op}] expected bias of shape ({OC},), got {tuple(bias.shape)}")


def _to4d(a: Any, nd: int, batched: bool) -> Any:
    """A contiguous (N, C, H, W) view of an activation array (1-D: H = 1; unbatched: N = 1)."""
    a = contiguous(a)
    if not batched:
        a = a.reshape((1,) + a.shape)
    if nd == 1:
        a = a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])
    return a


def _weight4d(w: Any, nd: int) -> Any:
    w = contiguous(w)
    return w.reshape(w.shape[0], w.shape[1], 1, w.shape[2]) if nd == 1 else w


def _from4d(a: Any, nd: int, batched: bool) -> Any:
    if nd == 1:
        a = a.reshape(a.shape[0], a.shape[1], a.shape[3])
    return a if batched else a.reshape(a.shape[1:])


def forward_input(xp: Any, x4: Any, w4: Any, geom: tuple[Any, ...]) -> tuple[Any, tuple[int, int, int, int]]:
    """The (N, C, H, W) input a conv2d kernel reads and the shape of its output. 'same' with an even
    dilated kernel pads one more zero row / column at the end (``extra``) here, in x's dtype; the
    kernels take symmetric padding only. Shared by the float32 and the bf16 (autocast) nodes."""
    stride, padding, dilation, extra, _ = geom
    N, C, H, W = x4.shape
    if extra != (0, 0):
        xpad = xp.zeros((N, C, H + extra[0], W + extra[1]), dtype=x4.dtype)
        xpad[:, :, :H, :W] = x4
        x4 = xpad
    kh, kw = w4.shape[2], w4.shape[3]
    OH = (x4.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    OW = (x4.shape[3] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return x4, (N, w4.shape[0], OH, OW)


def input_grad(xp: Any, dx: Any, extra: tuple[int, int], hw: tuple[int, int], nd: int, batched: bool) -> Any:
    """The kernel's (N, C, H', W') input gradient as the caller's input shape: drops the 'same'
    padding's extra row / column (see ``forward_input``), then the 1-D / unbatched reshape."""
    if extra != (0, 0):
        dx = xp.ascontiguousarray(dx[:, :, :hw[0], :hw[1]])
    return _from4d(dx, nd, batched)


# ---------------------------------------------------------------- autograd
class ConvFunction(Function):
    """y = conv(x, W) + b, or its transpose (``transposed``): y = conv^T(x, W) + b.

    conv: y[n, o] = sum over c in o's group and (ky, kx) of W[o, c, ky, kx] x[n, c, s*oh - p + d*ky, ...].
    Backward: dx = conv^T(dy, W), dW = sum over (n, oh, ow) of dy (x) patches, db = sum of dy per channel.
    For the transposed op the roles swap: dx = conv(dy, W), dW = the conv weight gradient with the
    conv's input dy and output gradient x, db = sum of dy per output channel.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, op: str, nd: int, batched: bool,
                geom: tuple[Any, ...], transposed: bool, out_hw: Optional[tuple[int, int]]) -> Any:
        stride, padding, dilation, extra, groups = geom
        K = kernels(op, x, weight, bias)
        xp = xp_of(x)
        x4 = _to4d(x, nd, batched)
        w4 = _weight4d(weight, nd)
        b = None if bias is None else contiguous(bias)
        N, _, H, W = x4.shape
        if transposed:
            assert out_hw is not None
            y = xp.empty((N, w4.shape[1] * groups) + out_hw, dtype=x.dtype)
            K.conv_transpose2d_forward(y, x4, w4, b, stride, padding, dilation, groups)
        else:
            x4, out_shape = forward_input(xp, x4, w4, geom)
            y = xp.empty(out_shape, dtype=x.dtype)
            K.conv2d_forward(y, x4, w4, b, stride, padding, dilation, groups)
        ctx.save_for_backward(x4, w4)
        ctx.args = (op, nd, batched, geom, transposed, (H, W), weight.shape, bias is not None)
        return _from4d(y, nd, batched)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        x4, w4 = ctx.saved_tensors
        op, nd, batched, geom, transposed, (H, W), wshape, has_bias = ctx.args
        stride, padding, dilation, extra, groups = geom
        need = ctx.needs_input_grad
        want_w, want_b = need[1], has_bias and need[2]
        if not (need[0] or want_w or want_b):
            return None, None, None
        xp = xp_of(dy)
        K = kernels(op, dy)
        dy4 = _to4d(dy, nd, batched)
        dx = xp.empty(x4.shape, dtype=dy.dtype) if need[0] else None
        dw = db = dw_out = db_out = None
        if want_w:
            dw, dw_out = ctx.param_grad(1, xp, tuple(w4.shape), dy.dtype)
        if want_b:
            if dw_out is ACCUMULATED and ctx.inputs[2] is ctx.inputs[1]:
                db = db_out = xp.zeros((dy4.shape[1],), dtype=dy.dtype)
            else:
                db, db_out = ctx.param_grad(2, xp, (dy4.shape[1],), dy.dtype)
        if transposed:
            K.conv_transpose2d_backward(dx, dw, db, dy4, x4, w4, stride, padding, dilation, groups)
        else:
            K.conv2d_backward(dx, dw, db, dy4, x4, w4, stride, padding, dilation, groups)
        if dx is not None:
            dx = input_grad(xp, dx, extra, (H, W), nd, batched)
        if dw_out is not None and dw_out is not ACCUMULATED:
            dw_out = dw_out.reshape(wshape)
        return dx, dw_out, db_out


# ---------------------------------------------------------------- the functions
def _conv(op: str, nd: int, input: Tensor, weight: Tensor, bias: Optional[Tensor], stride: Any, padding: _Padding,
          dilation: Any, groups: Any) -> Tensor:
    batched = _check_tensors(op, nd, input, weight, bias)
    ksize = tuple(int(k) for k in weight.shape[2:])
    g = _Geometry(op, nd, stride, padding, dilation, groups, ksize)
    C = input.shape[1] if batched else input.shape[0]
    OC = _check_channels(op, C, tuple(weight.shape), g.groups, False)
    _check_bias(op, bias, OC)
    spatial = tuple(input.shape[-nd:])
    for i in range(nd):
        eff = g.dilation[i] * (ksize[i] - 1) + 1
        padded = spatial[i] + 2 * g.padding[i] + g.extra[i]
        if ksize[i] < 1 or eff > padded:
            raise ValueError(f"[{op}] expected a (dilated) kernel size {eff} no larger than the padded input "
                             f"size {padded} (dim {i})")
    stride2, pad2, dil2, extra2 = g.as2d(nd)
    out: Tensor = ConvFunction.apply(input, weight, bias, op, nd, batched, (stride2, pad2, dil2, extra2, g.groups),
                                     False, None)
    return out


@amp_op("conv1d")
def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: _IntOrPair = 1,
           padding: _Padding = 0, dilation: _IntOrPair = 1, groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation, as PyTorch) over the last dimension.

    Shape: input (N, C_in, L) or (C_in, L); weight (C_out, C_in / groups, k); bias (C_out,);
    output (N, C_out, L_out), L_out = (L + 2 padding - dilation (k - 1) - 1) // stride + 1.
    Defaults: bias=None, stride=1, padding=0 (also 'valid' or 'same'), dilation=1, groups=1.
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


@amp_op("conv2d")
def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: _IntOrPair = 1,
           padding: _Padding = 0, dilation: _IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch) over the last two dimensions, as an implicit
    GEMM on nnfast's packed GEMM.

    Shape: input (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in / groups, kH, kW); bias (C_out,);
    output (N, C_out, H_out, W_out), H_out = (H + 2 padding - dilation (kH - 1) - 1) // stride + 1.
    Defaults: bias=None, stride=1, padding=0 (also 'valid' or 'same'), dilation=1, groups=1.
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def transpose_output_size(op: str, size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                          padding: Sequence[int], dilation: Sequence[int], output_padding: Sequence[int]) -> tuple[int, ...]:
    """H_out = (H - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1 per spatial dim."""
    out = []
    for i, n in enumerate(size):
        if not (output_padding[i] < stride[i] or output_padding[i] < dilation[i]) or output_padding[i] < 0:
            raise ValueError(f"[{op}] expected output_padding smaller than stride or dilation, got "
                             f"output_padding={tuple(output_padding)}, stride={tuple(stride)}, "
                             f"dilation={tuple(dilation)}")
        o = (n - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + output_padding[i] + 1
        if o < 1:
            raise ValueError(f"[{op}] expected a positive output size, got {o} (dim {i})")
        out.append(o)
    return tuple(out)


@amp_op("conv_transpose2d")
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: _IntOrPair = 1,
                     padding: _IntOrPair = 0, output_padding: _IntOrPair = 0, groups: int = 1,
                     dilation: _IntOrPair = 1) -> Tensor:
    """2-D transposed convolution (the gradient of conv2d with respect to its input), as PyTorch.

    Shape: input (N, C_in, H, W) or (C_in, H, W); weight (C_in, C_out / groups, kH, kW); bias (C_out,);
    output (N, C_out, H_out, W_out),
    H_out = (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1.
    Defaults: bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1.
    """
    op = "conv_transpose2d"
    batched = _check_tensors(op, 2, input, weight, bias)
    if isinstance(padding, str):
        raise ValueError(f"[{op}] expected padding to be an int or a tuple of 2 ints, got {padding!r}")
    ksize = tuple(int(k) for k in weight.shape[2:])
    g = _Geometry(op, 2, stride, padding, dilation, groups, ksize)
    opad = _tuple(op, output_padding, 2, "output_padding")
    C = input.shape[1] if batched else input.shape[0]
    OC = _check_channels(op, C, tuple(weight.shape), g.groups, True)
    _check_bias(op, bias, OC)
    if min(ksize) < 1:
        raise ValueError(f"[{op}] expected a non-empty kernel, got weight of shape {tuple(weight.shape)}")
    out_hw = transpose_output_size(op, tuple(input.shape[-2:]), ksize, g.stride, g.padding, g.dilation, opad)
    stride2, pad2, dil2, extra2 = g.as2d(2)
    out: Tensor = ConvFunction.apply(input, weight, bias, op, 2, batched, (stride2, pad2, dil2, extra2, g.groups),
                                     True, (out_hw[0], out_hw[1]))
    return out

