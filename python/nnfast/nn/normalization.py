"""Normalization layers with PyTorch's names, signatures, defaults, parameter
and buffer names: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm,
RMSNorm, GroupNorm."""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..tensor import Tensor
from . import functional as F
from ._params import add_parameters, dtype_or_default, finish_init, reset_affine, shape_tuple
from .module import Module

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "LayerNorm", "RMSNorm", "GroupNorm",
]

_ShapeArg = Union[int, Sequence[int]]


class _NormBase(Module):
    """Shared state of batch and instance norm: weight / bias (C,) when
    ``affine``; running_mean, running_var and num_batches_tracked buffers when
    ``track_running_stats``."""

    _name = "batch_norm"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if int(num_features) <= 0:
            raise ValueError(f"[{type(self).__name__}] expected num_features > 0, got {num_features}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = dtype_or_default(dtype)
        C = self.num_features
        add_parameters(self, dtype, weight=(C,) if affine else None, bias=(C,) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros((C,), dtype=dt)))
            self.register_buffer("running_var", Tensor(np.ones((C,), dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        finish_init(self, device)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        reset_affine(self.weight, self.bias)

    def _check_input_dim(self, input: Tensor) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _dims: tuple[int, ...] = ()

    def _check_input_dim(self, input: Tensor) -> None:
        if not isinstance(input, Tensor):
            raise TypeError(f"[{type(self).__name__}] expected input to be an nnfast.Tensor, "
                            f"got {type(input).__name__}")
        if input.ndim not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(f"[{type(self).__name__}] expected {want} input (got {input.ndim}D input)")
        if input.shape[1] != self.num_features:
            raise ValueError(f"[{type(self).__name__}] expected input with {self.num_features} channels "
                             f"(dim 1), got shape {input.shape}")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked._data += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked._data)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if use_running else None,
                            self.running_var if use_running else None, self.weight, self.bias, bn_training,
                            factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalization per channel C: y = (x - mean) / sqrt(var + eps) * weight + bias.

    While training, mean and var are the (biased) statistics of the batch over N (and L), and the
    running statistics are updated as running = (1 - momentum) * running + momentum * batch_stat
    (the unbiased variance; ``momentum=None``: a cumulative average over the batches seen). In
    eval mode the running statistics normalize instead (still the batch's when
    ``track_running_stats=False``). weight starts at ones and bias at zeros, both (C,).

    Shape: input (N, C) or (N, C, L); output the same shape.
    Defaults: eps=1e-05, momentum=0.1, affine=True (learnable weight and bias),
    track_running_stats=True; device=None (cpu), dtype=None (the default dtype).
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization per channel C: y = (x - mean) / sqrt(var + eps) * weight + bias.

    While training, mean and var are the (biased) statistics of the batch over N, H and W, and the
    running statistics are updated as running = (1 - momentum) * running + momentum * batch_stat
    (the unbiased variance; ``momentum=None``: a cumulative average over the batches seen). In
    eval mode the running statistics normalize instead (still the batch's when
    ``track_running_stats=False``). weight starts at ones and bias at zeros, both (C,).

    Shape: input (N, C, H, W); output the same shape.
    Defaults: eps=1e-05, momentum=0.1, affine=True (learnable weight and bias),
    track_running_stats=True; device=None (cpu), dtype=None (the default dtype).
    """

    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization per channel C: y = (x - mean) / sqrt(var + eps) * weight + bias.

    While training, mean and var are the (biased) statistics of the batch over N, D, H and W, and the
    running statistics are updated as running = (1 - momentum) * running + momentum * batch_stat
    (the unbiased variance; ``momentum=None``: a cumulative average over the batches seen). In
    eval mode the running statistics normalize instead (still the batch's when
    ``track_running_stats=False``). weight starts at ones and bias at zeros, both (C,).

    Shape: input (N, C, D, H, W); output the same shape.
    Defaults: eps=1e-05, momentum=0.1, affine=True (learnable weight and bias),
    track_running_stats=True; device=None (cpu), dtype=None (the default dtype).
    """

    _dims = (5,)


class _InstanceNorm(_NormBase):
    _batched_dim = 3  # rank of a batched input; one less is an unbatched (C, *) input

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device: Any = None, dtype: Any = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def _check_input_dim(self, input: Tensor) -> None:
        if not isinstance(input, Tensor):
            raise TypeError(f"[{type(self).__name__}] expected input to be an nnfast.Tensor, "
                            f"got {type(input).__name__}")
        d = self._batched_dim
        if input.ndim not in (d - 1, d):
            raise ValueError(f"[{type(self).__name__}] expected {d - 1}D or {d}D input (got {input.ndim}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        feature_dim = input.ndim - (self._batched_dim - 1)
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"[{type(self).__name__}] expected input's size at dim={feature_dim} to match "
                                 f"num_features ({self.num_features}), but got: {input.shape[feature_dim]}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                          "warning by not passing in num_features, which is not used because affine=False")
        unbatched = input.ndim == self._batched_dim - 1
        x = input.unsqueeze(0) if unbatched else input
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and var
    (biased) per sample and channel over L.

    With ``track_running_stats`` the running statistics (averaged over the batch) are updated as
    running = (1 - momentum) * running + momentum * stat and used in eval mode. weight / bias (C,)
    exist only with ``affine``.

    Shape: input (N, C, L) or unbatched (C, L); output the same shape.
    Defaults: eps=1e-05, momentum=0.1, affine=False, track_running_stats=False; device=None (cpu),
    dtype=None (the default dtype).
    """

    _batched_dim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and var
    (biased) per sample and channel over H and W.

    With ``track_running_stats`` the running statistics (averaged over the batch) are updated as
    running = (1 - momentum) * running + momentum * stat and used in eval mode. weight / bias (C,)
    exist only with ``affine``.

    Shape: input (N, C, H, W) or unbatched (C, H, W); output the same shape.
    Defaults: eps=1e-05, momentum=0.1, affine=False, track_running_stats=False; device=None (cpu),
    dtype=None (the default dtype).
    """

    _batched_dim = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and var
    (biased) per sample and channel over D, H and W.

    With ``track_running_stats`` the running statistics (averaged over the batch) are updated as
    running = (1 - momentum) * running + momentum * stat and used in eval mode. weight / bias (C,)
    exist only with ``affine``.

    Shape: input (N, C, D, H, W) or unbatched (C, D, H, W); output the same shape.
    Defaults: eps=1e-05, momentum=0.1, affine=False, track_running_stats=False; device=None (cpu),
    dtype=None (the default dtype).
    """

    _batched_dim = 5


class LayerNorm(Module):
    """Layer normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and (biased)
    var over the trailing ``normalized_shape`` dimensions of each sample.

    weight (ones) and bias (zeros) have shape ``normalized_shape``; the same statistics are used
    in training and eval mode.

    Shape: input (*, *normalized_shape); output the same shape.
    Defaults: eps=1e-05, elementwise_affine=True (learnable weight), bias=True (learnable bias
    when elementwise_affine); device=None (cpu), dtype=None (the default dtype).
    """

    def __init__(self, normalized_shape: _ShapeArg, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.normalized_shape = shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        shape = self.normalized_shape if elementwise_affine else None
        add_parameters(self, dtype, weight=shape, bias=shape if bias else None)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        reset_affine(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(Module):
    """RMS normalization: y = x / sqrt(mean(x^2) + eps) * weight, the mean over the trailing
    ``normalized_shape`` dimensions of each sample.

    weight (ones) has shape ``normalized_shape``; no bias and no mean subtraction.

    Shape: input (*, *normalized_shape); output the same shape.
    Defaults: eps=None (the machine epsilon of the input's dtype, as PyTorch 2.4+),
    elementwise_affine=True; device=None (cpu), dtype=None (the default dtype).
    """

    def __init__(self, normalized_shape: _ShapeArg, eps: Optional[float] = None, elementwise_affine: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.normalized_shape = shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        add_parameters(self, dtype, weight=self.normalized_shape if elementwise_affine else None)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        reset_affine(self.weight, None)

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Group normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and (biased)
    var per sample over each of ``num_groups`` groups of C / num_groups channels (and all spatial
    positions), then a per-channel affine.

    num_channels must be divisible by num_groups; weight (ones) and bias (zeros) are (C,).

    Shape: input (N, C, *); output the same shape.
    Defaults: eps=1e-05, affine=True; device=None (cpu), dtype=None (the default dtype).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if int(num_groups) <= 0 or int(num_channels) % int(num_groups) != 0:
            raise ValueError(f"[GroupNorm] expected num_channels ({num_channels}) to be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = int(num_groups)
        self.num_channels = int(num_channels)
        self.eps = eps
        self.affine = affine
        C = (self.num_channels,) if affine else None
        add_parameters(self, dtype, weight=C, bias=C)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        reset_affine(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if isinstance(input, Tensor) and input.ndim >= 2 and input.shape[1] != self.num_channels:
            raise ValueError(f"[group_norm] expected input with {self.num_channels} channels (dim 1), "
                             f"got shape {input.shape}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
