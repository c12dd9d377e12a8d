"""Pooling modules: max / average / adaptive pooling (PyTorch's names, arguments, defaults
and reprs; no parameters or buffers). Each forwards to its ``nn.functional`` op."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxUnpool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"]

_Size = Union[int, Sequence[int]]


def _pair(v: Any) -> Any:
    """MaxUnpool2d stores its sizes as pairs (PyTorch's _pair)."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _single(v: Any) -> Any:
    """AvgPool1d stores its sizes as 1-tuples (PyTorch's _single)."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


class _MaxPoolNd(Module):
    _f: Any = None

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0, dilation: _Size = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Any:
        return type(self)._f(input, self.kernel_size, self.stride, self.padding, self.dilation,
                             ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-d max pooling (``F.max_pool1d``).

    Shape: input (N, C, L) or (C, L); output (N, C, L_out), L_out = floor((L + 2 padding - dilation
    (kernel_size - 1) - 1) / stride) + 1 (ceil with ceil_mode).
    Defaults: stride=None (kernel_size), padding=0, dilation=1, return_indices=False, ceil_mode=False.
    """

    _f = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """2-d max pooling (``F.max_pool2d``); return_indices gives (output, int64 indices) for MaxUnpool.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out), H_out = floor((H + 2 padding -
    dilation (kernel_size - 1) - 1) / stride) + 1 (ceil with ceil_mode).
    Defaults: stride=None (kernel_size), padding=0, dilation=1, return_indices=False, ceil_mode=False.
    """

    _f = staticmethod(F.max_pool2d)


class MaxUnpool2d(Module):
    """Partial inverse of MaxPool2d (``F.max_unpool2d``): places each input value at its saved index,
    zeros elsewhere; forward(input, indices, output_size=None).

    Shape: input and indices (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out) with H_out =
    (H - 1) stride - 2 padding + kernel_size, or output_size.
    Defaults: stride=None (kernel_size), padding=0.
    """

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def forward(self, input: Tensor, indices: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """1-d average pooling (``F.avg_pool1d``).

    Shape: input (N, C, L) or (C, L); output (N, C, L_out), L_out = floor((L + 2 padding - kernel_size)
    / stride) + 1 (ceil with ceil_mode).
    Defaults: stride=None (kernel_size), padding=0, ceil_mode=False, count_include_pad=True.
    """

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """2-d average pooling (``F.avg_pool2d``).

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, H_out, W_out), H_out = floor((H + 2 padding -
    kernel_size) / stride) + 1 (ceil with ceil_mode).
    Defaults: stride=None (kernel_size), padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None.
    """

    def __init__(self, kernel_size: _Size, stride: Optional[_Size] = None, padding: _Size = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePool(Module):
    _f: Any = None

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Any:
        return type(self)._f(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """1-d adaptive average pooling to ``output_size`` (``F.adaptive_avg_pool1d``): out[l] = mean of
    input[floor(l L / L_out) : ceil((l + 1) L / L_out)].

    Shape: input (N, C, L) or (C, L); output (N, C, output_size).
    Defaults: none (output_size is required).
    """

    _f = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    """2-d adaptive average pooling to ``output_size`` (an int, or a pair whose None entries keep the
    input's size; ``F.adaptive_avg_pool2d``): out[i, j] = mean of rows [floor(i H / H_out),
    ceil((i + 1) H / H_out)) and the matching columns.

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, *output_size).
    Defaults: none (output_size is required).
    """

    _f = staticmethod(F.adaptive_avg_pool2d)


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        return type(self)._f(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """1-d adaptive max pooling (``F.adaptive_max_pool1d``).

    Shape: input (N, C, L) or (C, L); output (N, C, output_size).
    Defaults: return_indices=False.
    """

    _f = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """2-d adaptive max pooling (``F.adaptive_max_pool2d``).

    Shape: input (N, C, H, W) or (C, H, W); output (N, C, *output_size).
    Defaults: return_indices=False.
    """

    _f = staticmethod(F.adaptive_max_pool2d)
