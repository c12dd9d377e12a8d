"""Convolution modules: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d`` (NCHW, PyTorch's parameters)."""
from __future__ import annotations

import math
import operator
from typing import Any, Optional, Sequence, Union

from ..tensor import Tensor
from . import functional as F
from . import init
from ._params import add_parameters, finish_init
from .functional._conv import same_padding, transpose_output_size
from .module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]

_IntOrTuple = Union[int, Sequence[int]]
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(name: str, op: str, v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, Sequence) and not isinstance(v, str):
        t = tuple(operator.index(e) for e in v)
        if len(t) != n:
            raise ValueError(f"[{op}] expected {name} to be an int or a tuple of {n} ints, got {v!r}")
        return t
    return (operator.index(v),) * n


class _ConvNd(Module):
    """What Conv1d / Conv2d / ConvTranspose2d share: PyTorch's attributes, parameters and init."""

    _nd = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple, stride: _IntOrTuple,
                 padding: Union[str, _IntOrTuple], dilation: _IntOrTuple, groups: int, bias: bool,
                 padding_mode: str, device: Any, dtype: Any, output_padding: _IntOrTuple = 0) -> None:
        super().__init__()
        op, nd = type(self).__name__, self._nd
        if groups <= 0:
            raise ValueError(f"[{op}] expected groups to be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"[{op}] expected in_channels ({in_channels}) divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"[{op}] expected out_channels ({out_channels}) divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"[{op}] expected padding_mode in {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _ntuple("kernel_size", op, kernel_size, nd)
        self.stride = _ntuple("stride", op, stride, nd)
        self.dilation = _ntuple("dilation", op, dilation, nd)
        self.output_padding = _ntuple("output_padding", op, output_padding, nd)
        self.transposed = self._transposed
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"[{op}] expected padding to be an int, a tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"[{op}] expected stride 1 with padding='same' (not supported for strided "
                                 "convolutions)")
            self.padding: Union[str, tuple[int, ...]] = padding
            pairs = same_padding(self.kernel_size, self.dilation) if padding == "same" else [(0, 0)] * nd
        else:
            self.padding = _ntuple("padding", op, padding, nd)
            pairs = [(p, p) for p in self.padding]
        # F.pad's order: last dim first, (before, after) each (PyTorch's _reversed_padding_repeated_twice).
        self._reversed_padding_repeated_twice = [p for pair in reversed(pairs) for p in pair]
        self.padding_mode = padding_mode
        if self._transposed:
            wshape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            wshape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        add_parameters(self, dtype, weight=wshape, bias=(self.out_channels,) if bias else None)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        """PyTorch's init: weight kaiming_uniform(a=sqrt(5)) (bound 1 / sqrt(fan_in)), bias U(+-1 / sqrt(fan_in)),
        fan_in = weight.size(1) * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        zero = (0,) * self._nd
        if self.padding != zero:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != zero:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        conv = F.conv1d if self._nd == 1 else F.conv2d
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class _Conv(_ConvNd):
    """Conv1d / Conv2d: PyTorch's constructor signature (kernel_size etc. an int or a tuple of _nd ints)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple, stride: _IntOrTuple = 1,
                 padding: Union[str, _IntOrTuple] = 0, dilation: _IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_Conv):
    """1-D convolution layer over (N, C_in, L) inputs; ``weight`` (out_channels, in_channels / groups,
    kernel_size) and ``bias`` (out_channels,), initialised as PyTorch (kaiming_uniform with a=sqrt(5)).
    ``padding_mode`` other than 'zeros' pads with F.pad first, as PyTorch.

    Shape: input (N, C_in, L) or (C_in, L); output (N, C_out, L_out),
    L_out = (L + 2 padding - dilation (kernel_size - 1) - 1) // stride + 1.
    Defaults: stride=1, padding=0 (or 'same' / 'valid'), dilation=1, groups=1, bias=True,
    padding_mode='zeros', device=None (cpu), dtype=None (float32).
    """

    _nd = 1


class Conv2d(_Conv):
    """2-D convolution layer over (N, C_in, H, W) inputs (implicit GEMM on nnfast's GEMM);
    ``weight`` (out_channels, in_channels / groups, kH, kW) and ``bias`` (out_channels,), initialised
    as PyTorch (kaiming_uniform with a=sqrt(5)). ``padding_mode`` other than 'zeros' pads with F.pad first.

    Shape: input (N, C_in, H, W) or (C_in, H, W); output (N, C_out, H_out, W_out),
    H_out = (H + 2 padding - dilation (kH - 1) - 1) // stride + 1.
    Defaults: stride=1, padding=0 (or 'same' / 'valid'), dilation=1, groups=1, bias=True,
    padding_mode='zeros', device=None (cpu), dtype=None (float32).
    """

    _nd = 2


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution layer (the input gradient of a Conv2d); ``weight`` (in_channels,
    out_channels / groups, kH, kW) and ``bias`` (out_channels,), initialised as PyTorch.
    ``forward(input, output_size=None)``: ``output_size`` picks the output_padding that gives that size.

    Shape: input (N, C_in, H, W) or (C_in, H, W); output (N, C_out, H_out, W_out),
    H_out = (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1.
    Defaults: stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1,
    padding_mode='zeros' (the only mode, as PyTorch), device=None (cpu), dtype=None (float32).
    """

    _nd = 2
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrTuple, stride: _IntOrTuple = 1,
                 padding: _IntOrTuple = 0, output_padding: _IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: _IntOrTuple = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f"[ConvTranspose2d] expected padding_mode 'zeros' (the only mode PyTorch supports "
                             f"for ConvTranspose2d), got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"[ConvTranspose2d] expected padding to be an int or a tuple, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype, output_padding)

    def _output_padding(self, input: Tensor, output_size: Optional[Sequence[int]]) -> tuple[int, ...]:
        if output_size is None:
            return self.output_padding
        op = "ConvTranspose2d"
        size = [int(s) for s in output_size][-2:]
        if len(size) != 2:
            raise ValueError(f"[{op}] expected output_size with 2 spatial sizes, got {output_size!r}")
        pad = self.padding
        assert not isinstance(pad, str)
        base = transpose_output_size(op, tuple(input.shape[-2:]), self.kernel_size, self.stride, pad, self.dilation,
                                     (0, 0))
        out = []
        for i in range(2):
            extra = size[i] - base[i]
            if extra < 0 or extra >= max(self.stride[i], self.dilation[i]):
                raise ValueError(f"[{op}] expected output_size in [{base[i]}, "
                                 f"{base[i] + max(self.stride[i], self.dilation[i]) - 1}] for dim {i}, got {size[i]}")
            out.append(extra)
        return tuple(out)

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        opad = self._output_padding(input, output_size)
        pad = self.padding
        assert not isinstance(pad, str)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, pad, opad, self.groups,
                                  self.dilation)
