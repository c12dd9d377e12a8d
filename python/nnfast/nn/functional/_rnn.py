"""The recurrent sequence ops under ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``: ``rnn_tanh``, ``rnn_relu``,
``lstm``, ``gru`` (PyTorch's ``torch._VF`` argument order, plus ``batch_sizes`` for packed input).

One autograd Function per layer (both directions) calls one kernel per direction, which runs the
whole time loop in C++ (csrc/cpu/rnn.cpp): the input projection of all steps as one GEMM, then per
step one GEMM and one fused gate kernel; backward per step one gate-backward kernel and one GEMM,
the weight gradients as GEMMs over all steps at the end. The layer's output, h_n and c_n come back
as views of one flat array (a Function has one output), so no step is ever a Python call.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

from ..._dispatch import contiguous, kernels, xp_of
from ...autograd.function import ACCUMULATED, Function
from ...tensor import Tensor
from ._checks import check_float, check_same_device, check_same_dtype

__all__ = ["rnn_tanh", "rnn_relu", "lstm", "gru"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_PER_DIR = 5  # w_ih, w_hh, b_ih, b_hh, w_hr (None where absent) per layer and direction


def _op_name(mode: str) -> str:
    return "RNN" if mode.startswith("RNN") else mode


class _Block:
    """Views carved in order from one flat allocation (each C-contiguous, aligned to the dtype): a layer's
    output and saved arrays (or backward's workspaces) are one allocation, not six per direction."""

    def __init__(self, xp: Any, dtype: Any, shapes: Sequence[Optional[tuple[int, ...]]]) -> None:
        total = sum(int(np.prod(s)) for s in shapes if s is not None)
        self.flat = xp.empty(total, dtype=dtype)
        self.views: list[Any] = []
        at = 0
        for s in shapes:
            if s is None:
                self.views.append(None)
                continue
            size = int(np.prod(s))
            self.views.append(self.flat[at:at + size].reshape(s))
            at += size


def _sizes(w: Sequence[Any], mode: str) -> tuple[int, int, int]:
    """(G*H, H, P) of one direction's weights."""
    GH = w[0].shape[0]
    return GH, GH // _GATES[mode], w[1].shape[1]


class RNNLayerFunction(Function):
    """One layer of an RNN / LSTM / GRU over a packed sequence, both directions.

    Arguments: x (R, I) packed rows, h0 (D, N, P) or None, c0 (D, N, H) or None (LSTM), then 5 weights
    per direction (w_ih, w_hh, b_ih, b_hh, w_hr; None where absent); keywords batch_sizes (T,) int64,
    mode, D, N. Returns one flat array holding output (R, D*P), h_n (D, N, P), c_n (D, N, H) (LSTM).

    Backward per direction: the gate-backward kernel gives dgates per step, dh_prev = dgates W_hh;
    dW_ih += dgates_x^T X, dW_hh += dgates^T H_prev, dW_hr += dH^T (o tanh c), db = column sums,
    dX = dgates_x W_ih (the second direction adds into it).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, h0: Any, c0: Any, *w: Any, batch_sizes: Any, mode: str, D: int, N: int) -> Any:
        K = kernels("rnn", x, h0, c0, *w)
        xp = xp_of(x)
        x = contiguous(x)
        R = x.shape[0]
        GH, H, P = _sizes(w, mode)
        lstm, gru = mode == "LSTM", mode == "GRU"
        ny, nh = R * D * P, D * N * P
        ws = [None if a is None else contiguous(a) for a in w]
        h0 = None if h0 is None else contiguous(h0)
        c0 = None if c0 is None else contiguous(c0)
        # One block: the returned output / h_n / c_n first, then per direction what backward reads.
        shapes: list[Optional[tuple[int, ...]]] = [(ny + nh + (D * N * H if lstm else 0),)]
        for d in range(D):
            proj = ws[_PER_DIR * d + 4] is not None
            shapes += [(R, GH), (R, H) if lstm else None, (R, H) if proj else None, (R, P),
                       (R, H) if lstm else None, (R, H) if gru else None, (P, GH)]
        views = _Block(xp, x.dtype, shapes).views
        flat = views[0]
        y = flat[:ny].reshape(R, D * P)
        h_n = flat[ny:ny + nh].reshape(D, N, P)
        c_n = flat[ny + nh:].reshape(D, N, H) if lstm else None
        saved = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh, w_hr = ws[_PER_DIR * d:_PER_DIR * (d + 1)]
            gates, c_all, h_raw, h_prev, c_prev, hn, w_hh_t = views[1 + 7 * d:8 + 7 * d]
            K.rnn_forward(y[:, d * P:(d + 1) * P], h_n[d], None if c_n is None else c_n[d], gates, c_all, h_raw,
                          h_prev, c_prev, hn, w_hh_t, x, w_ih, w_hh, b_ih, b_hh, w_hr,
                          None if h0 is None else h0[d], None if c0 is None else c0[d], batch_sizes, mode, d == 1)
            saved.append((gates, c_all, h_raw, h_prev, c_prev, hn))
        ctx.save_for_backward(x, *ws)
        ctx.steps, ctx.batch_sizes, ctx.mode, ctx.D, ctx.N = saved, batch_sizes, mode, D, N
        return flat

    @staticmethod
    def backward(ctx: Any, dflat: Any) -> Any:
        x, *ws = ctx.saved_tensors
        mode, D, N, batch_sizes = ctx.mode, ctx.D, ctx.N, ctx.batch_sizes
        need = ctx.needs_input_grad
        K = kernels("rnn", dflat)
        xp = xp_of(dflat)
        dflat = contiguous(dflat)
        R, I = x.shape
        GH, H, P = _sizes(ws, mode)
        lstm, gru = mode == "LSTM", mode == "GRU"
        ny, nh = R * D * P, D * N * P
        dy = dflat[:ny].reshape(R, D * P)
        dh_n = dflat[ny:ny + nh].reshape(D, N, P)
        dc_n = dflat[ny + nh:].reshape(D, N, H) if lstm else None
        dx = xp.empty((R, I), dtype=x.dtype) if need[0] else None
        dh0 = xp.empty((D, N, P), dtype=x.dtype)
        dc0 = xp.empty((D, N, H), dtype=x.dtype) if lstm else None
        proj = ws[4] is not None
        dgates, dgates_x, dh_all, dh_raw = _Block(xp, x.dtype, [(R, GH), (R, GH) if gru else None,
                                                                (R, P) if proj else None,
                                                                (N, H) if proj else None]).views
        grads: list[Any] = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh, w_hr = ws[_PER_DIR * d:_PER_DIR * (d + 1)]
            base = 3 + _PER_DIR * d
            bufs: list[Any] = []
            results: list[Any] = []
            for k, wk in enumerate((w_ih, w_hh, b_ih, b_hh, w_hr)):
                if wk is None or not need[base + k]:
                    bufs.append(None)
                    results.append(None)
                else:
                    b, r = ctx.param_grad(base + k, xp, wk.shape, wk.dtype)
                    bufs.append(b)
                    results.append(r)
            gates, c_all, h_raw, h_prev, c_prev, hn = ctx.steps[d]
            K.rnn_backward(dx, dh0[d], None if dc0 is None else dc0[d], *bufs, dgates, dgates_x, dh_all, dh_raw,
                           dy[:, d * P:(d + 1) * P], dh_n[d], None if dc_n is None else dc_n[d], x, w_ih, w_hh,
                           w_hr, gates, c_all, h_raw, h_prev, c_prev, hn, batch_sizes, mode, d == 1,
                           accumulate_grad_input=d > 0)
            grads.extend(results)
        return (dx, dh0 if need[1] else None, dc0 if need[2] else None, *grads)


# NNFAST_RNN_WAVEFRONT=1: a 2-layer LSTM runs as one LSTM2Function wavefront instead of layer by layer
# (one RNNLayerFunction each; the same values to rounding). Opt-in: idle on the 2-vCPU AVX-512 machine the
# word-LM step (bench_rnn.py --ab) took 15.50 ms as a wavefront against 14.46 ms layer by layer, because
# the layer-by-layer path already splits the batch rows with no barrier per step and keeps layer 1's input
# projection in one big GEMM. On the Intel Xeon (AVX-512 + AMX, 2 vCPUs, stop 30) only 1-thread CPU time could
# be measured (the machine was loaded): the wavefront took 28.6 ms against 26.6 ms layer by layer (bench_rnn.py
# --threads 1 --cpu-time --ab), so the default stays layer by layer. Read once.
_WAVEFRONT = os.environ.get("NNFAST_RNN_WAVEFRONT", "0") == "1"


class LSTM2Function(Function):
    """Two stacked LSTM layers (one direction, no projection, no dropout between them, hidden size H both)
    in one kernel call per pass (csrc/cpu/rnn.cpp lstm2_forward / lstm2_backward): with two threads layer 1
    runs one step behind layer 0 (a wavefront), so each thread owns a whole layer. The same values as two
    RNNLayerFunction calls.

    Arguments: x (R, I), h0 (2, N, H) or None, c0 (2, N, H) or None, then the 10 weight slots of the two
    layers (w_ih, w_hh, b_ih, b_hh, None each); keywords batch_sizes, N. Returns one flat array holding
    layer 1's output (R, H), h_n (2, N, H), c_n (2, N, H).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, h0: Any, c0: Any, *w: Any, batch_sizes: Any, N: int) -> Any:
        K = kernels("rnn", x, h0, c0, *w)
        xp = xp_of(x)
        x = contiguous(x)
        R, H = x.shape[0], w[1].shape[1]
        ws = [None if a is None else contiguous(a) for a in w]
        h0 = None if h0 is None else contiguous(h0)
        c0 = None if c0 is None else contiguous(c0)
        ny, nh = R * H, 2 * N * H
        # The returned output / h_n / c_n, then per layer what backward reads (and layer 0's output).
        shapes: list[Optional[tuple[int, ...]]] = [(ny + 2 * nh,), (R, H)]
        shapes += [(R, 4 * H), (R, H), (R, H), (R, H)] * 2
        views = _Block(xp, x.dtype, shapes).views
        flat = views[0]
        ys = (views[1], flat[:ny].reshape(R, H))
        h_n, c_n = flat[ny:ny + nh].reshape(2, N, H), flat[ny + nh:].reshape(2, N, H)
        layers = []
        for l in range(2):
            gates, c_all, h_prev, c_prev = views[2 + 4 * l:6 + 4 * l]
            w_ih, w_hh, b_ih, b_hh, _ = ws[_PER_DIR * l:_PER_DIR * (l + 1)]
            layers.append((ys[l], h_n[l], c_n[l], gates, c_all, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh,
                           None if h0 is None else h0[l], None if c0 is None else c0[l]))
        K.lstm2_forward(layers, x, batch_sizes)
        ctx.save_for_backward(x, *ws)
        ctx.layers, ctx.batch_sizes, ctx.N = layers, batch_sizes, N
        return flat

    @staticmethod
    def backward(ctx: Any, dflat: Any) -> Any:
        x, *ws = ctx.saved_tensors
        layers, N, batch_sizes = ctx.layers, ctx.N, ctx.batch_sizes
        need = ctx.needs_input_grad
        K = kernels("rnn", dflat)
        xp = xp_of(dflat)
        dflat = contiguous(dflat)
        R, I = x.shape
        H = ws[1].shape[1]
        ny, nh = R * H, 2 * N * H
        dh_n, dc_n = dflat[ny:ny + nh].reshape(2, N, H), dflat[ny + nh:].reshape(2, N, H)
        dx = xp.empty((R, I), dtype=x.dtype) if need[0] else None
        dh0, dc0 = xp.empty((2, N, H), dtype=x.dtype), xp.empty((2, N, H), dtype=x.dtype)
        dy0, dg0, dg1 = _Block(xp, x.dtype, [(R, H), (R, 4 * H), (R, 4 * H)]).views
        grads, results = [], []
        for l in range(2):
            bufs: list[Any] = []
            for k in range(_PER_DIR):
                i, wk = 3 + _PER_DIR * l + k, ws[_PER_DIR * l + k]
                b, r = (None, None) if wk is None or not need[i] else ctx.param_grad(i, xp, wk.shape, wk.dtype)
                bufs.append(b)
                results.append(r)
            grads.append((dh0[l], dc0[l], *bufs[:4], (dg0, dg1)[l], dh_n[l], dc_n[l]))
        K.lstm2_backward(dx, dy0, dflat[:ny].reshape(R, H), grads, layers, x, batch_sizes)
        return (dx, dh0 if need[1] else None, dc0 if need[2] else None, *results)


def _wavefront(mode: str, x: Tensor, slots: Sequence[Optional[Tensor]], num_layers: int, D: int, proj: bool,
               dropout: float, train: bool) -> bool:
    """Whether the layers run as one LSTM2Function: two unidirectional unprojected LSTM layers on the CPU
    with nothing (dropout) between them."""
    if not (_WAVEFRONT and mode == "LSTM" and num_layers == 2 and D == 1 and not proj
            and not (dropout > 0 and train) and x.device.type == "cpu"):
        return False
    w_hh0, w_ih1, w_hh1 = slots[1], slots[_PER_DIR], slots[_PER_DIR + 1]
    return w_hh0.shape == w_hh1.shape and w_ih1.shape == w_hh1.shape  # type: ignore[union-attr]


def _check_params(op: str, x: Tensor, params: Sequence[Any], mode: str, has_biases: bool, num_layers: int,
                  D: int, proj: bool) -> list[Optional[Tensor]]:
    """PyTorch's flat weight list (per layer and direction: w_ih, w_hh, [b_ih, b_hh], [w_hr]) as 5 slots each."""
    per = 2 + (2 if has_biases else 0) + (1 if proj else 0)
    if len(params) != per * num_layers * D:
        raise ValueError(f"[{op}] expected {per * num_layers * D} weight tensors, got {len(params)}")
    slots: list[Optional[Tensor]] = []
    for k in range(num_layers * D):
        p = list(params[per * k:per * (k + 1)])
        w_ih, w_hh = p[0], p[1]
        b_ih, b_hh = (p[2], p[3]) if has_biases else (None, None)
        w_hr = p[-1] if proj else None
        for t in (w_ih, w_hh, b_ih, b_hh, w_hr):
            if t is not None:
                check_float(op, t, "weight")
                check_same_dtype(op, x, t, "weight")
        check_same_device(op, x, w_ih, w_hh, b_ih, b_hh, w_hr)
        slots.extend((w_ih, w_hh, b_ih, b_hh, w_hr))
    return slots


def _run(mode: str, input: Tensor, hx: Any, params: Sequence[Any], has_biases: bool, num_layers: int,
         dropout: float, train: bool, bidirectional: bool, batch_first: bool,
         batch_sizes: Any = None) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    from ..functional import dropout as dropout_fn

    op = _op_name(mode)
    check_float(op, input)
    D = 2 if bidirectional else 1
    lstm = mode == "LSTM"
    h0, c0 = (hx if hx is not None else (None, None)) if lstm else (hx, None)
    proj = lstm and len(params) == (5 if has_biases else 3) * num_layers * D
    slots = _check_params(op, input, params, mode, has_biases, num_layers, D, proj)
    if batch_sizes is None:  # padded (T, N, I) / (N, T, I): every step has the whole batch
        if input.ndim != 3:
            raise ValueError(f"[{op}] expected input to be 3-D, got {input.ndim}-D")
        x = input.transpose(0, 1) if batch_first else input
        T, N = x.shape[0], x.shape[1]
        x = x.contiguous().reshape(T * N, x.shape[2])
        bs = np.full(T, N, dtype=np.int64)
    else:
        if input.ndim != 2:
            raise ValueError(f"[{op}] expected packed data to be 2-D, got {input.ndim}-D")
        x, bs = input, np.ascontiguousarray(np.asarray(batch_sizes, dtype=np.int64))
        N = int(bs[0]) if bs.size else 0
    w_ih0 = slots[0]
    assert w_ih0 is not None
    if x.shape[1] != w_ih0.shape[1]:
        raise ValueError(f"[{op}] expected input with {w_ih0.shape[1]} features (input_size), got {x.shape[1]}")
    for s, name in ((h0, "h0"), (c0, "c0")):
        if s is not None:
            check_float(op, s, name)
            check_same_dtype(op, input, s, name)
    out_h, out_c = [], []
    if _wavefront(mode, x, slots, num_layers, D, proj, dropout, train):
        H = slots[1].shape[1]  # type: ignore[union-attr]
        for name, s in (("h0", h0), ("c0", c0)):
            if s is not None and tuple(s.shape) != (2, N, H):
                raise ValueError(f"[{op}] expected {name} of shape {(2, N, H)}, got {tuple(s.shape)}")
        flat = LSTM2Function.apply(x, h0, c0, *slots, batch_sizes=bs, N=N)
        R = x.shape[0]
        ny, nh = R * H, 2 * N * H
        x, h_last, c_last = flat[:ny].reshape(R, H), flat[ny:ny + nh].reshape(2, N, H), flat[ny + nh:].reshape(2, N, H)
        if batch_sizes is None:
            y = x.reshape(T, N, H)
            x = y.transpose(0, 1) if batch_first else y
        return x, h_last, c_last
    for layer in range(num_layers):
        w = slots[_PER_DIR * D * layer:_PER_DIR * D * (layer + 1)]
        GH = w[0].shape[0]  # type: ignore[union-attr]
        H = GH // _GATES[mode]
        P = w[1].shape[1]  # type: ignore[union-attr]
        for name, s, width in (("h0", h0, P), ("c0", c0, H)):
            if s is not None and tuple(s.shape) != (num_layers * D, N, width):
                raise ValueError(f"[{op}] expected {name} of shape {(num_layers * D, N, width)}, got {tuple(s.shape)}")
        hl = None if h0 is None else h0[D * layer:D * (layer + 1)]
        cl = None if c0 is None else c0[D * layer:D * (layer + 1)]
        flat = RNNLayerFunction.apply(x, hl, cl, *w, batch_sizes=bs, mode=mode, D=D, N=N)
        R = x.shape[0]
        ny, nh = R * D * P, D * N * P
        x = flat[:ny].reshape(R, D * P)
        out_h.append(flat[ny:ny + nh].reshape(D, N, P))
        if lstm:
            out_c.append(flat[ny + nh:].reshape(D, N, H))
        if dropout > 0 and train and layer < num_layers - 1:
            x = dropout_fn(x, dropout, True)
    from ... import cat

    h_n = out_h[0] if num_layers == 1 else cat(out_h, 0)
    c_n = None if not lstm else (out_c[0] if num_layers == 1 else cat(out_c, 0))
    if batch_sizes is None:
        y = x.reshape(T, N, x.shape[1])
        x = y.transpose(0, 1) if batch_first else y
    return x, h_n, c_n


_DOC_ARGS = """
    ``params`` is PyTorch's flat weight list: per layer and direction w_ih (G*H, I), w_hh (G*H, P),
    then b_ih, b_hh (G*H,) when ``has_biases``{proj}. With ``batch_sizes`` (a PackedSequence's) the
    input is packed data (R, I) and the output packed data (R, D*P).

    Shape: input (T, N, I) (``batch_first``: (N, T, I)) or packed (R, I); {state}; output (T, N, D*P).
    Defaults: has_biases=True, num_layers=1, dropout=0.0, train=False, bidirectional=False,
    batch_first=False, batch_sizes=None.
    """


def rnn_tanh(input: Tensor, hx: Optional[Tensor], params: Sequence[Tensor], has_biases: bool = True,
             num_layers: int = 1, dropout: float = 0.0, train: bool = False, bidirectional: bool = False,
             batch_first: bool = False, batch_sizes: Any = None) -> tuple[Tensor, Tensor]:
    y, h, _ = _run("RNN_TANH", input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                   batch_first, batch_sizes)
    return y, h


def rnn_relu(input: Tensor, hx: Optional[Tensor], params: Sequence[Tensor], has_biases: bool = True,
             num_layers: int = 1, dropout: float = 0.0, train: bool = False, bidirectional: bool = False,
             batch_first: bool = False, batch_sizes: Any = None) -> tuple[Tensor, Tensor]:
    y, h, _ = _run("RNN_RELU", input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                   batch_first, batch_sizes)
    return y, h


def lstm(input: Tensor, hx: Optional[tuple[Tensor, Tensor]], params: Sequence[Tensor], has_biases: bool = True,
         num_layers: int = 1, dropout: float = 0.0, train: bool = False, bidirectional: bool = False,
         batch_first: bool = False, batch_sizes: Any = None) -> tuple[Tensor, Tensor, Tensor]:
    y, h, c = _run("LSTM", input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                   batch_first, batch_sizes)
    assert c is not None
    return y, h, c


def gru(input: Tensor, hx: Optional[Tensor], params: Sequence[Tensor], has_biases: bool = True,
        num_layers: int = 1, dropout: float = 0.0, train: bool = False, bidirectional: bool = False,
        batch_first: bool = False, batch_sizes: Any = None) -> tuple[Tensor, Tensor]:
    y, h, _ = _run("GRU", input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
                   batch_first, batch_sizes)
    return y, h


rnn_tanh.__doc__ = ("Elman RNN over a sequence, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), "
                    "multi-layer and optionally bidirectional; returns (output, h_n).\n" +
                    _DOC_ARGS.format(proj="", state="hx and h_n (num_layers*D, N, H)"))
rnn_relu.__doc__ = ("Elman RNN with ReLU, h_t = relu(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh); "
                    "returns (output, h_n).\n" + _DOC_ARGS.format(proj="", state="hx and h_n (num_layers*D, N, H)"))
lstm.__doc__ = ("LSTM over a sequence (gates i, f, g, o; c_t = f c_{t-1} + i g, h_t = o tanh(c_t), then "
                "h_t W_hr^T with a projection); returns (output, h_n, c_n).\n" +
                _DOC_ARGS.format(proj=", then w_hr (P, H) when projected",
                                 state="hx = (h0 (num_layers*D, N, P), c0 (num_layers*D, N, H)) or None"))
gru.__doc__ = ("GRU over a sequence (r, z = sigmoid, n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)), "
               "h_t = (1 - z) n + z h_{t-1}); returns (output, h_n).\n" +
               _DOC_ARGS.format(proj="", state="hx and h_n (num_layers*D, N, H)"))
