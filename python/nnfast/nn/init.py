"""Parameter initialization, in place, with PyTorch's names and formulas."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .. import _random
from .._dispatch import xp_of
from ..tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "trunc_normal_",
]


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    xp = xp_of(t._data)
    t._data[...] = xp.asarray(values.astype(t.dtype, copy=False))
    return t


def _rng(generator: Optional[np.random.Generator]) -> np.random.Generator:
    return generator if generator is not None else _random.default_generator()


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """Recommended gain for an activation (as ``torch.nn.init.calculate_gain``): 1 for linear and
    sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu, 3/4 for selu.

    Defaults: param=None (leaky_relu's negative slope; 0.01 when None).
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"[calculate_gain] expected a known nonlinearity, got {nonlinearity!r}")


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"[init] expected a tensor with at least 2 dims for fan computation, got {t.ndim}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill ``tensor`` in place with samples of U(a, b); returns it.

    Defaults: a=0.0, b=1.0, generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    return _fill(tensor, _rng(generator).uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill ``tensor`` in place with samples of N(mean, std^2); returns it.

    Defaults: mean=0.0, std=1.0, generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    return _fill(tensor, _rng(generator).normal(mean, std, tensor.shape))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Any = None) -> Tensor:
    """Fill ``tensor`` in place with N(mean, std^2) truncated to [a, b] (by rejection: the exact
    distribution); returns it.

    Defaults: mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    rng = _rng(generator)
    n = int(np.prod(tensor.shape))
    out = np.empty(n)
    filled = 0
    while filled < n:
        draw = rng.normal(mean, std, max(2 * (n - filled), 16))
        draw = draw[(draw >= a) & (draw <= b)][: n - filled]
        out[filled : filled + draw.size] = draw
        filled += draw.size
    return _fill(tensor, out.reshape(tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill ``tensor`` in place with the value ``val``: tensor[...] = val; returns it."""
    tensor._data[...] = val
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` in place with zeros: tensor[...] = 0; returns it."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` in place with ones: tensor[...] = 1; returns it."""
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D ``tensor`` in place with the identity matrix: tensor[i, j] = 1 if i == j else 0."""
    if tensor.ndim != 2:
        raise ValueError("[eye_] expected a 2-D tensor")
    return _fill(tensor, np.eye(tensor.shape[0], tensor.shape[1]))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot uniform init in place: U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)),
    fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (tensor of >= 2 dims).

    Defaults: gain=1.0, generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot normal init in place: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)),
    fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (tensor of >= 2 dims).

    Defaults: gain=1.0, generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"[kaiming] expected mode 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(max(fan, 1))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Any = None) -> Tensor:
    """He uniform init in place: U(-bound, bound) with bound = sqrt(3) * gain / sqrt(fan),
    gain = calculate_gain(nonlinearity, a) and fan = fan_in or fan_out by ``mode``
    (fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (tensor of >= 2 dims)).

    Defaults: a=0.0 (leaky_relu's negative slope), mode='fan_in', nonlinearity='leaky_relu', generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Any = None) -> Tensor:
    """He normal init in place: N(0, std^2) with std = gain / sqrt(fan), gain =
    calculate_gain(nonlinearity, a) and fan = fan_in or fan_out by ``mode`` (fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (tensor of >= 2 dims)).

    Defaults: a=0.0 (leaky_relu's negative slope), mode='fan_in', nonlinearity='leaky_relu', generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """(Semi-)orthogonal init in place: tensor = gain * Q, Q from the QR decomposition of a Gaussian
    (rows x prod(other dims)) matrix, its columns' signs fixed by diag(R) (Q^T Q = I or Q Q^T = I).

    Defaults: gain=1.0, generator=None (nnfast's global generator, seeded by ``nnfast.manual_seed``).
    """
    if tensor.ndim < 2:
        raise ValueError("[orthogonal_] expected a tensor with at least 2 dims")
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape[1:]))
    flat = _rng(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))
