"""conv1d / conv2d / conv_transpose2d under autocast on the bf16 GEMM (issue 17).

Inside a cpu autocast region a convolution on float32 (or bf16) CPU tensors runs as one node,
``ConvBF16Function``, on the C++ ``*_bf16`` kernels (csrc/cpu/conv_bf16.cpp): the input and the
weight are rounded to bf16 (as PyTorch's autocast casts them), the patches are gathered straight
into bf16 and every product -- forward, input gradient, weight gradient -- is a bf16 GEMM with
float32 accumulation (vdpbf16ps where the CPU has AVX512-BF16, the portable path elsewhere). The
bias stays the float32 master and is added in float32; the output is bf16 (PyTorch's dtype).
Backward: dx in the input's own dtype, dW and db in the parameters' dtype, accumulated in float32
straight into an existing float32 ``.grad`` (no bf16 copy of the weight gradient).

``NNFAST_AMP_CONV=0`` (read once at import; ``ENABLED[0]`` in process) keeps the previous route:
the bf16-rounded inputs widened to float32 through the float32 conv kernels, output rounded to bf16.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from .._dispatch import contiguous, kernels
from ..autograd.function import ACCUMULATED, Function
from ..tensor import _BFLOAT16, Tensor

ENABLED = [os.environ.get("NNFAST_AMP_CONV", "1") != "0"]
# The *_bf16 kernels are CPU-only entries of the conv ops' kernel sets (their cuda= lists leave
# them out): NumPy arrays only reach them.

_F32 = np.dtype(np.float32)
_LOW = (_F32, _BFLOAT16)
OPS = frozenset({"conv1d", "conv2d", "conv_transpose2d"})


def _as_bf16(a: Any) -> Any:
    from ..autograd.basic_ops import cast as cast_array

    return a if a.dtype == _BFLOAT16 else cast_array(a, _BFLOAT16)


def _as_f32(a: Any) -> Any:
    from ..autograd.basic_ops import cast as cast_array

    return contiguous(a) if a.dtype == _F32 else cast_array(a, _F32)


class ConvBF16Function(Function):
    """y = conv(x, W) + b (or its transpose) in bf16: x float32 or bf16, W and b the parameters
    (float32 masters, or bf16). Forward saves x and W rounded to bf16 (half the bytes; what
    PyTorch's casts save too); backward runs the input and weight gradients on the bf16 GEMM."""

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, op: str, nd: int, batched: bool, geom: tuple[Any, ...],
                transposed: bool, out_hw: Optional[tuple[int, int]], w_low: Any = None) -> Any:
        from ..nn.functional._conv import _from4d, _to4d, _weight4d, forward_input

        stride, padding, dilation, extra, groups = geom
        K = kernels(op)
        x4 = _to4d(_as_bf16(x), nd, batched)
        w4 = _weight4d(w_low if w_low is not None else _as_bf16(weight), nd)
        b = None if bias is None else _as_f32(bias)
        N, _, H, W = x4.shape
        if transposed:
            assert out_hw is not None
            y = np.empty((N, w4.shape[1] * groups) + out_hw, dtype=_BFLOAT16)
            K.conv_transpose2d_forward_bf16(y, x4, w4, b, stride, padding, dilation, groups)
        else:
            x4, out_shape = forward_input(np, x4, w4, geom)
            y = np.empty(out_shape, dtype=_BFLOAT16)
            K.conv2d_forward_bf16(y, x4, w4, b, stride, padding, dilation, groups)
        ctx.save_for_backward(x4, w4)
        ctx.args = (op, nd, batched, geom, transposed, (H, W), weight.shape, bias is not None)
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return _from4d(y, nd, batched)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        from ..autograd.basic_ops import cast as cast_array
        from ..nn.functional._conv import _to4d, input_grad

        x4, w4 = ctx.saved_tensors
        op, nd, batched, geom, transposed, (H, W), wshape, has_bias = ctx.args
        x_dtype, w_dtype, b_dtype = ctx.dtypes
        stride, padding, dilation, extra, groups = geom
        need = ctx.needs_input_grad
        want_w, want_b = need[1], has_bias and need[2]
        if not (need[0] or want_w or want_b):
            return None, None, None
        K = kernels(op)
        dy4 = _to4d(dy if dy.dtype in _LOW else _as_f32(dy), nd, batched)
        dx = np.empty(x4.shape, dtype=x_dtype) if need[0] else None

        def grad(i: int, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
            # float32 parameters: straight into their .grad (or fresh zeros); bf16 ones: float32
            # zeros accumulated by the kernel, rounded to bf16 once afterwards.
            if dtype == _F32:
                g: tuple[Any, Any] = ctx.param_grad(i, np, shape, _F32)
                return g
            z = np.zeros(shape, dtype=_F32)
            return z, None

        dw = db = dw_out = db_out = None
        if want_w:
            dw, dw_out = grad(1, tuple(w4.shape), w_dtype)
        if want_b:
            db, db_out = grad(2, (dy4.shape[1],), b_dtype)
        if transposed:
            K.conv_transpose2d_backward_bf16(dx, dw, db, dy4, x4, w4, stride, padding, dilation, groups)
        else:
            K.conv2d_backward_bf16(dx, dw, db, dy4, x4, w4, stride, padding, dilation, groups)
        if dx is not None:
            dx = input_grad(np, dx, extra, (H, W), nd, batched)
        if want_w:
            if dw_out is None:
                dw_out = cast_array(dw, w_dtype)
            if dw_out is not ACCUMULATED:
                dw_out = dw_out.reshape(wshape)
        if want_b and db_out is None:
            db_out = cast_array(db, b_dtype)
        return dx, dw_out, db_out


def _conv_params(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                 groups: Any = 1) -> tuple[Any, ...]:
    return input, weight, bias, stride, padding, dilation, groups, 0


def _conv_transpose_params(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                           output_padding: Any = 0, groups: Any = 1, dilation: Any = 1) -> tuple[Any, ...]:
    return input, weight, bias, stride, padding, dilation, groups, output_padding


def _eligible(input: Any, weight: Any, bias: Any, nd: int) -> bool:
    """CPU (NumPy) float32 / bf16 tensors of the op's ranks; anything else takes the general route,
    which words its own error."""
    ts = (input, weight) + (() if bias is None else (bias,))
    if not all(isinstance(t, Tensor) and type(t._data) is np.ndarray and t._data.dtype in _LOW
               and t._data.flags.aligned for t in ts):
        return False
    return weight.ndim == nd + 2 and input.ndim in (nd + 1, nd + 2) and (bias is None or bias.ndim == 1)


def _weight_low(weight: Tensor) -> Any:
    """The float32 master weight rounded to bf16 (the copy Adam keeps up to date, see _weight_copies)."""
    from . import _weight_copies

    if weight._data.dtype != _F32:
        return None
    return _weight_copies.weight_copy(weight)


def conv_autocast(name: str, args: Any, kwargs: dict[str, Any]) -> Optional[Tensor]:
    """``name``(*args, **kwargs) as a ConvBF16Function node, or None where it does not apply (then
    the caller takes the general route: bf16-rounded inputs through the float32 kernels)."""
    from ..nn.functional._conv import (_Geometry, _check_bias, _check_channels, _tuple, transpose_output_size)

    transposed = name == "conv_transpose2d"
    try:
        input, weight, bias, stride, padding, dilation, groups, output_padding = \
            (_conv_transpose_params if transposed else _conv_params)(*args, **kwargs)
    except TypeError:
        return None
    nd = 1 if name == "conv1d" else 2
    if not _eligible(input, weight, bias, nd):
        return None
    if transposed and isinstance(padding, str):
        return None
    batched = input.ndim == nd + 2
    ksize = tuple(int(k) for k in weight.shape[2:])
    g = _Geometry(name, nd, stride, padding, dilation, groups, ksize)
    C = input.shape[1] if batched else input.shape[0]
    OC = _check_channels(name, C, tuple(weight.shape), g.groups, transposed)
    _check_bias(name, bias, OC)
    out_hw = None
    if transposed:
        opad = _tuple(name, output_padding, 2, "output_padding")
        if min(ksize) < 1:
            return None
        out_hw = transpose_output_size(name, tuple(input.shape[-2:]), ksize, g.stride, g.padding, g.dilation, opad)
        out_hw = (out_hw[0], out_hw[1])
    else:
        spatial = tuple(input.shape[-nd:])
        for i in range(nd):
            eff = g.dilation[i] * (ksize[i] - 1) + 1
            if ksize[i] < 1 or eff > spatial[i] + 2 * g.padding[i] + g.extra[i]:
                return None  # the general route raises its "[op] expected ..." error
    stride2, pad2, dil2, extra2 = g.as2d(nd)
    out: Tensor = ConvBF16Function.apply(input, weight, bias, name, nd, batched,
                                         (stride2, pad2, dil2, extra2, g.groups), transposed, out_hw,
                                         w_low=_weight_low(weight))
    return out
