"""Resampling modules: ``Upsample``, ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``,
``PixelShuffle`` / ``PixelUnshuffle`` (PyTorch's names, arguments and reprs; no state)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle"]

_Size = Union[int, Sequence[int]]
_Scale = Union[None, float, Sequence[float]]


class Upsample(Module):
    """Resample to ``size`` or by ``scale_factor`` (``F.interpolate``).

    Shape: input (N, C, L) or (N, C, H, W); output (N, C, *size) or floor(in * scale_factor).
    Defaults: size=None, scale_factor=None (one is required), mode='nearest', align_corners=None,
    recompute_scale_factor=None.
    """

    def __init__(self, size: Optional[_Size] = None, scale_factor: _Scale = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if scale_factor is None or isinstance(scale_factor, (int, float)):
            self.scale_factor: Any = None if scale_factor is None else float(scale_factor)
        else:
            self.scale_factor = tuple(float(f) for f in scale_factor)
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest upsampling of (N, C, H, W) (``Upsample(mode='nearest')``).

    Shape: input (N, C, H, W); output (N, C, H_out, W_out).
    Defaults: size=None, scale_factor=None (one is required).
    """

    def __init__(self, size: Optional[_Size] = None, scale_factor: _Scale = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling with align_corners=True (``Upsample(mode='bilinear', align_corners=True)``).

    Shape: input (N, C, H, W); output (N, C, H_out, W_out).
    Defaults: size=None, scale_factor=None (one is required).
    """

    def __init__(self, size: Optional[_Size] = None, scale_factor: _Scale = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r) (``F.pixel_shuffle``).

    Shape: input (*, C r^2, H, W); output (*, C, H r, W r), r = upscale_factor.
    Defaults: none (upscale_factor is required).
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W) (``F.pixel_unshuffle``).

    Shape: input (*, C, H r, W r); output (*, C r^2, H, W), r = downscale_factor.
    Defaults: none (downscale_factor is required).
    """

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
