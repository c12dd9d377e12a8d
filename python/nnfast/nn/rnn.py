"""Recurrent layers with PyTorch's names, parameter layout and gate order: ``RNN``, ``LSTM``, ``GRU``
(whole sequences, one fused C++ time loop per layer and direction: nn.functional._rnn) and the cells
``RNNCell``, ``LSTMCell``, ``GRUCell``.

A cell step is the sequence kernel of its layer run for one time step (``F.lstm`` / ``F.gru`` /
``F.rnn_tanh`` / ``F.rnn_relu`` with T = 1): the input and hidden projections of all gates at once
(GEMMs, gates stacked along the output dim in PyTorch's order) and one fused gate kernel. Parameters: ``weight_ih`` (G*H, in), ``weight_hh``
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
from .utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


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

    def _params(self) -> list[Tensor]:
        ps = [self.weight_ih, self.weight_hh]
        return ps + [self.bias_ih, self.bias_hh] if self.bias else ps


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
        fn = F.rnn_tanh if self.nonlinearity == "tanh" else F.rnn_relu
        out = fn(x.unsqueeze(0), h.unsqueeze(0), self._params(), self.bias)[1][0]
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
        _, hn, cn = F.lstm(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)), self._params(), self.bias)
        h1, c1 = hn[0], cn[0]
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
        out = F.gru(x.unsqueeze(0), h.unsqueeze(0), self._params(), self.bias)[1][0]
        return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------- whole-sequence layers
class RNNBase(Module):
    """The multi-layer recurrent layer shared by RNN, LSTM and GRU (PyTorch's ``nn.RNNBase``).

    Parameters per layer k and direction (suffix ``_reverse``): ``weight_ih_l{k}`` (G*H, in),
    ``weight_hh_l{k}`` (G*H, P), ``bias_ih_l{k}`` / ``bias_hh_l{k}`` (G*H,), ``weight_hr_l{k}`` (P, H) for a
    projected LSTM; in is input_size for layer 0, else D*P. All U(-1/sqrt(H), 1/sqrt(H)).

    Shape: input (L, N, H_in) ((N, L, H_in) when batch_first), (L, H_in) unbatched, or a PackedSequence;
    output (L, N, D*P) (or a PackedSequence); h_n (num_layers*D, N, P).
    Defaults: num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False, proj_size=0.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        name = _MODE_NAMES[mode]
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"[{name}] expected dropout to be a number in [0, 1], got {dropout!r}")
        for what, v, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                             ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"[{name}] expected {what} to be an int >= {low}, got {v!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"[{name}] expected proj_size=0: only LSTM supports projections, got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"[{name}] expected proj_size < hidden_size, got proj_size={proj_size}, "
                             f"hidden_size={hidden_size}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size = bool(bidirectional), proj_size
        G = _MODE_GATES[mode]
        D = 2 if bidirectional else 1
        P = proj_size or hidden_size
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                shapes: dict[str, Any] = {f"weight_ih{sfx}": (G * hidden_size, input_size if layer == 0 else D * P),
                                          f"weight_hh{sfx}": (G * hidden_size, P)}
                if bias:
                    shapes[f"bias_ih{sfx}"] = (G * hidden_size,)
                    shapes[f"bias_hh{sfx}"] = (G * hidden_size,)
                if proj_size:
                    shapes[f"weight_hr{sfx}"] = (proj_size, hidden_size)
                add_parameters(self, dtype, **shapes)
                self._flat_weights_names.extend(shapes)
        finish_init(self, device)

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        w = self._flat_weights
        return [w[i:i + per] for i in range(0, len(w), per)]

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.mode.startswith("RNN_") and self.mode != "RNN_TANH":
            s += ", nonlinearity='relu'"
        return s

    def _states(self, hx: Any, N: int, unbatched: bool, sorted_indices: Any) -> Any:
        """hx as the functional op takes it: batched, permuted into the packed order."""
        if hx is None:
            return None
        name = _MODE_NAMES[self.mode]
        lstm = self.mode == "LSTM"
        states = list(hx) if lstm else [hx]
        if lstm and len(states) != 2:
            raise ValueError(f"[{name}] expected hx to be a tuple (h_0, c_0)")
        D = 2 if self.bidirectional else 1
        out = []
        for k, s in enumerate(states):
            if not isinstance(s, Tensor):
                raise TypeError(f"[{name}] expected hx to hold nnfast Tensors, got {type(s).__name__}")
            want = 2 if unbatched else 3
            if s.ndim != want:
                raise ValueError(f"[{name}] expected {'c_0' if k else 'h_0'} to be {want}-D for "
                                 f"{'unbatched' if unbatched else 'batched'} input, got {s.ndim}-D")
            s = s.unsqueeze(1) if unbatched else s
            width = self.hidden_size if k else (self.proj_size or self.hidden_size)
            shape = (self.num_layers * D, N, width)
            if tuple(s.shape) != shape:
                raise ValueError(f"[{name}] expected {'c_0' if k else 'h_0'} of shape {shape}, got {tuple(s.shape)}")
            if sorted_indices is not None:
                s = s.index_select(1, sorted_indices)
            out.append(s)
        return tuple(out) if lstm else out[0]

    def forward(self, input: Any, hx: Any = None) -> Any:
        name = _MODE_NAMES[self.mode]
        packed = isinstance(input, PackedSequence)
        sorted_indices = unsorted_indices = None
        if packed:
            data, batch_sizes = input.data, input.batch_sizes
            sorted_indices, unsorted_indices = input.sorted_indices, input.unsorted_indices
            N = int(batch_sizes[0]) if len(batch_sizes) else 0
            unbatched = False
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"[{name}] expected input to be an nnfast Tensor or PackedSequence, "
                                f"got {type(input).__name__}")
            if input.ndim not in (2, 3):
                raise ValueError(f"[{name}] expected input to be 2-D (unbatched) or 3-D, got {input.ndim}-D")
            unbatched = input.ndim == 2
            data = input.unsqueeze(1) if unbatched else input
            batch_sizes = None
            N = data.shape[0 if self.batch_first and not unbatched else 1]
        if data.shape[-1] != self.input_size:
            raise ValueError(f"[{name}] expected input with {self.input_size} features (input_size), "
                             f"got {data.shape[-1]}")
        h = self._states(hx, N, unbatched, sorted_indices)
        fn = _FUNCTIONALS[self.mode]
        res = fn(data, h, self._flat_weights, self.bias, self.num_layers, self.dropout, self.training,
                 self.bidirectional, self.batch_first and not unbatched, batch_sizes)
        out, states = res[0], list(res[1:])
        if unsorted_indices is not None:
            states = [s.index_select(1, unsorted_indices) for s in states]
        if packed:
            out = PackedSequence(out, input.batch_sizes, sorted_indices, unsorted_indices)
        elif unbatched:
            out = out.squeeze(1)
            states = [s.squeeze(1) for s in states]
        return out, (tuple(states) if self.mode == "LSTM" else states[0])


class RNN(RNNBase):
    """Multi-layer Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    Returns (output, h_n); output holds the last layer's h_t for every t.
    Shape: input (L, N, H_in) ((N, L, H_in) when batch_first), (L, H_in) or a PackedSequence; h_0 / h_n
    (num_layers*D, N, H) ((num_layers*D, H) unbatched); output (L, N, D*H).
    Defaults: num_layers=1, nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0,
    bidirectional=False.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"[RNN] expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, 0, device, dtype)


class LSTM(RNNBase):
    """Multi-layer LSTM: gates i, f, g, o from x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;
    c_t = f c_{t-1} + i g, h_t = o tanh(c_t) (then h_t W_hr^T with proj_size > 0).

    Returns (output, (h_n, c_n)).
    Shape: input (L, N, H_in) ((N, L, H_in) when batch_first), (L, H_in) or a PackedSequence; h_0 / h_n
    (num_layers*D, N, P), c_0 / c_n (num_layers*D, N, H) with P = proj_size or H; output (L, N, D*P).
    Defaults: num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False, proj_size=0.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Multi-layer GRU: r, z = sigmoid(...), n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)),
    h_t = (1 - z) n + z h_{t-1}.

    Returns (output, h_n).
    Shape: input (L, N, H_in) ((N, L, H_in) when batch_first), (L, H_in) or a PackedSequence; h_0 / h_n
    (num_layers*D, N, H); output (L, N, D*H).
    Defaults: num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


_MODE_NAMES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
_MODE_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_FUNCTIONALS: dict[str, Any] = {"RNN_TANH": F.rnn_tanh, "RNN_RELU": F.rnn_relu, "LSTM": F.lstm, "GRU": F.gru}
