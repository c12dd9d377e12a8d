"""Recurrent cells with PyTorch's names, parameter layout and gate order: ``RNNCell``,
``LSTMCell``, ``GRUCell``.

Each step is two GEMMs (``F.linear`` with the bias fused: input and hidden projections of all
gates at once, gates stacked along the output dim in PyTorch's order) and the gate arithmetic
on the activation and tensor kernels. Parameters: ``weight_ih`` (G*H, in), ``weight_hh``
(G*H, H), ``bias_ih`` / ``bias_hh`` (G*H,) with G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z,
n); all initialised U(-1/sqrt(H), 1/sqrt(H)) as PyTorch does. Inputs may be batched (N, in) or
unbatched (in,); a missing state is zeros.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from ..tensor import Tensor
from . import functional as F
from . import init
from ._params import add_parameters, finish_init
from .module import Module

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


class _CellBase(Module):
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if int(input_size) <= 0 or int(hidden_size) <= 0:
            raise ValueError(f"[{type(self).__name__}] expected positive sizes, got input_size={input_size}, "
                             f"hidden_size={hidden_size}")
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bool(bias)
        G, H = self.gates, self.hidden_size
        add_parameters(self, dtype, weight_ih=(G * H, self.input_size), weight_hh=(G * H, H),
                       bias_ih=(G * H,) if bias else None, bias_hh=(G * H,) if bias else None)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"

    def _batched(self, input: Tensor) -> tuple[Tensor, bool]:
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"[{name}] expected input to be 1-D or 2-D, got {input.ndim}-D")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"[{name}] expected input with {self.input_size} features, got {input.shape[-1]}")
        return (input.unsqueeze(0), True) if input.ndim == 1 else (input, False)

    def _state(self, h: Optional[Tensor], input: Tensor, unbatched: bool) -> Tensor:
        if h is None:
            return Tensor._wrap(_zeros_like_rows(input, self.hidden_size))
        h = h.unsqueeze(0) if unbatched else h
        if tuple(h.shape) != (input.shape[0], self.hidden_size):
            raise ValueError(f"[{type(self).__name__}] expected hidden state of shape "
                             f"{(input.shape[0], self.hidden_size)}, got {tuple(h.shape)}")
        return h

    def _gates(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return F.linear(x, self.weight_ih, self.bias_ih), F.linear(h, self.weight_hh, self.bias_hh)


def _zeros_like_rows(input: Tensor, n: int) -> Any:
    from .._dispatch import xp_of

    return xp_of(input._data).zeros((input.shape[0], n), dtype=input.dtype)


class RNNCell(_CellBase):
    """An Elman cell: h' = nonlinearity(x W_ih^T + b_ih + h W_hh^T + b_hh), 'tanh' or 'relu'.

    Shape: input (N, input_size) or (input_size,); hx like the output, (N, hidden_size) or
    (hidden_size,), zeros when omitted.
    Defaults: bias=True, nonlinearity='tanh'.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"[RNNCell] expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        x, unbatched = self._batched(input)
        h = self._state(hx, x, unbatched)
        gi, gh = self._gates(x, h)
        out = F.tanh(gi + gh) if self.nonlinearity == "tanh" else F.relu(gi + gh)
        return out.squeeze(0) if unbatched else out


class LSTMCell(_CellBase):
    """An LSTM cell, (h', c') from (x, (h, c)): gates i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T +
    b_hh); c' = sigmoid(f) * c + sigmoid(i) * tanh(g); h' = sigmoid(o) * tanh(c').

    Shape: input (N, input_size) or (input_size,); h and c (N, hidden_size) or (hidden_size,),
    zeros when omitted; returns (h', c') of that shape.
    Defaults: bias=True.
    """

    gates = 4

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._batched(input)
        h = self._state(None if hx is None else hx[0], x, unbatched)
        c = self._state(None if hx is None else hx[1], x, unbatched)
        gi, gh = self._gates(x, h)
        g = gi + gh
        H = self.hidden_size
        i, f = F.sigmoid(g[:, :H]), F.sigmoid(g[:, H:2 * H])
        cand, o = F.tanh(g[:, 2 * H:3 * H]), F.sigmoid(g[:, 3 * H:])
        c1 = f * c + i * cand
        h1 = o * F.tanh(c1)
        return (h1.squeeze(0), c1.squeeze(0)) if unbatched else (h1, c1)


class GRUCell(_CellBase):
    """A GRU cell, h' from (x, h): r, z = sigmoid(gates), n = tanh(x W_in^T + b_in + r * (h W_hn^T +
    b_hn)); h' = (1 - z) * n + z * h.

    Shape: input (N, input_size) or (input_size,); hx (N, hidden_size) or (hidden_size,), zeros
    when omitted.
    Defaults: bias=True.
    """

    gates = 3

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        x, unbatched = self._batched(input)
        h = self._state(hx, x, unbatched)
        gi, gh = self._gates(x, h)
        H = self.hidden_size
        r = F.sigmoid(gi[:, :H] + gh[:, :H])
        z = F.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = F.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        out = n + z * (h - n)
        return out.squeeze(0) if unbatched else out
