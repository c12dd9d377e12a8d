"""Op-registry entries of the recurrent family: the sequence ops F.lstm / F.gru / F.rnn_tanh / F.rnn_relu
through the whole sequence (outputs, h_n and c_n concatenated, so gradcheck covers every path into the
inputs, the initial states and every weight), against a float64 NumPy loop over time written here.

Configurations: T = 1, batch 1, odd hidden sizes, 2 layers, bidirectional, no bias, proj_size, and
packed sequences (variable lengths, via pack_padded_sequence / pad_packed_sequence)."""
from __future__ import annotations

import numpy as np

import nnfast
import nnfast.nn.functional as F
from nnfast.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from opinfo import ErrorInput, OpInfo, Sample, register

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
FUNCS = {"LSTM": F.lstm, "GRU": F.gru, "RNN_TANH": F.rnn_tanh, "RNN_RELU": F.rnn_relu}
TOL = {np.float32: (2e-5, 2e-5), np.float64: (1e-10, 1e-10)}


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_direction(mode, x, h0, c0, w, lengths, reverse):
    """One layer, one direction, float64: per sequence n, steps over its first lengths[n] inputs."""
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    T, N, _ = x.shape
    H = w_ih.shape[0] // GATES[mode]
    P = w_hh.shape[1]
    y = np.zeros((T, N, P))
    h_n, c_n = np.zeros((N, P)), np.zeros((N, H))
    for n in range(N):
        h, c = h0[n].copy(), (c0[n].copy() if c0 is not None else None)
        for t in (range(lengths[n] - 1, -1, -1) if reverse else range(lengths[n])):
            gi = w_ih @ x[t, n] + (b_ih if b_ih is not None else 0)
            gh = w_hh @ h + (b_hh if b_hh is not None else 0)
            if mode == "LSTM":
                a = gi + gh
                i, f, g, o = _sig(a[:H]), _sig(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), _sig(a[3 * H:])
                c = f * c + i * g
                h = o * np.tanh(c)
                if w_hr is not None:
                    h = w_hr @ h
            elif mode == "GRU":
                r = _sig(gi[:H] + gh[:H])
                z = _sig(gi[H:2 * H] + gh[H:2 * H])
                nn_ = np.tanh(gi[2 * H:] + r * gh[2 * H:])
                h = (1 - z) * nn_ + z * h
            else:
                a = gi + gh
                h = np.tanh(a) if mode == "RNN_TANH" else np.maximum(a, 0)
            y[t, n] = h
        h_n[n] = h
        if c is not None:
            c_n[n] = c
    return y, h_n, c_n


def ref_rnn(mode, x, h0, c0, weights, layers, D, lengths):
    """The whole stack: output (T, N, D*P) (zero past each length), h_n, c_n (LSTM) flattened and joined."""
    T, N, _ = x.shape
    hs, cs = [], []
    inp = x
    for layer in range(layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            y, h, c = ref_direction(mode, inp, h0[k], None if c0 is None else c0[k], weights[k], lengths, d == 1)
            outs.append(y)
            hs.append(h)
            cs.append(c)
        inp = np.concatenate(outs, axis=2)
    parts = [inp.reshape(-1), np.stack(hs).reshape(-1)]
    if mode == "LSTM":
        parts.append(np.stack(cs).reshape(-1))
    return np.concatenate(parts)


def _weight_names(layers, D, bias, proj):
    names = []
    for layer in range(layers):
        for d in range(D):
            s = f"_l{layer}" + ("_reverse" if d else "")
            names.append([f"weight_ih{s}", f"weight_hh{s}", f"bias_ih{s}" if bias else None,
                          f"bias_hh{s}" if bias else None, f"weight_hr{s}" if proj else None])
    return names


def make_sample(mode, T, N, I, H, layers=1, bidir=False, bias=True, proj=0, lengths=None, seed=0):
    r = np.random.default_rng(seed)
    D = 2 if bidir else 1
    G, P = GATES[mode], proj or H
    arrays = {"input": r.standard_normal((T, N, I)), "h0": 0.5 * r.standard_normal((layers * D, N, P))}
    if mode == "LSTM":
        arrays["c0"] = 0.5 * r.standard_normal((layers * D, N, H))
    names = _weight_names(layers, D, bias, proj)
    for layer in range(layers):
        for d in range(D):
            n_ih, n_hh, n_bi, n_bh, n_hr = names[layer * D + d]
            arrays[n_ih] = 0.6 * r.standard_normal((G * H, I if layer == 0 else D * P))
            arrays[n_hh] = 0.6 * r.standard_normal((G * H, P))
            if bias:
                arrays[n_bi] = 0.3 * r.standard_normal(G * H)
                arrays[n_bh] = 0.3 * r.standard_normal(G * H)
            if proj:
                arrays[n_hr] = 0.6 * r.standard_normal((P, H))
    lens = [T] * N if lengths is None else list(lengths)

    def call(**ts):
        params = [ts[n] for row in names for n in row if n is not None]
        hx = (ts["h0"], ts["c0"]) if mode == "LSTM" else ts["h0"]
        fn = FUNCS[mode]
        if lengths is None:
            res = fn(ts["input"], hx, params, bias, layers, 0.0, False, bidir, False)
        else:  # lengths sorted decreasing: the packed batch order is the original one
            packed = pack_padded_sequence(ts["input"], lens)
            res = fn(packed.data, hx, params, bias, layers, 0.0, False, bidir, False, packed.batch_sizes)
            y = pad_packed_sequence(PackedSequence(res[0], packed.batch_sizes), total_length=T)[0]
            res = (y, *res[1:])
        return nnfast.cat([t.reshape(-1) for t in res], 0)

    def ref(**a):
        weights = [[None if n is None else a[n] for n in row] for row in names]
        return ref_rnn(mode, a["input"], a["h0"], a.get("c0"), weights, layers, D, lens)

    sid = (f"T{T}-N{N}-I{I}-H{H}" + (f"-L{layers}" if layers > 1 else "") + ("-bi" if bidir else "")
           + ("" if bias else "-nobias") + (f"-proj{proj}" if proj else "") + ("-packed" if lengths else ""))
    return Sample(sid, arrays, tuple(arrays), call=call, ref=ref)


def _samples(mode):
    lstm = mode == "LSTM"

    def samples(purpose):
        if purpose == "gradcheck":  # few parameters: gradcheck perturbs every element of every weight
            out = [make_sample(mode, 1, 1, 1, 1, seed=1),                  # T = 1, batch 1, size 1
                   make_sample(mode, 3, 2, 2, 3, seed=2),
                   make_sample(mode, 2, 1, 1, 2, layers=2, bidir=True, seed=3),
                   make_sample(mode, 3, 3, 1, 2, lengths=[3, 2, 1], bidir=True, seed=4),
                   make_sample(mode, 2, 2, 2, 2, bias=False, seed=5)]
            if lstm:
                out.append(make_sample(mode, 2, 2, 1, 2, layers=2, bidir=True, proj=1, seed=6))
            return out
        out = [make_sample(mode, 1, 1, 1, 1, seed=1),
               make_sample(mode, 3, 2, 3, 5, seed=2),
               make_sample(mode, 3, 1, 2, 3, layers=2, bidir=True, seed=3),
               make_sample(mode, 4, 3, 2, 3, lengths=[4, 2, 1], bidir=True, seed=4),
               make_sample(mode, 2, 2, 3, 3, bias=False, seed=5)]
        if lstm:
            out.append(make_sample(mode, 3, 2, 2, 3, layers=2, bidir=True, proj=2, seed=6))
            out.append(make_sample(mode, 3, 3, 2, 3, proj=1, lengths=[3, 3, 1], seed=7))
        if purpose == "forward":
            out.append(make_sample(mode, 5, 3, 7, 7, seed=8))                # size 7
        return out
    return samples


def _errors(mode):
    name = "RNN" if mode.startswith("RNN") else mode
    fn = FUNCS[mode]
    G = GATES[mode]

    def params(I=3, H=4):
        return [nnfast.randn(G * H, I), nnfast.randn(G * H, H), nnfast.randn(G * H), nnfast.randn(G * H)]

    def hx(shape):
        h = nnfast.zeros(*shape)
        return (h, nnfast.zeros(*shape)) if mode == "LSTM" else h

    return [
        ErrorInput("rank", lambda: fn(nnfast.randn(2, 3), None, params()), ValueError, rf"\[{name}\] expected"),
        ErrorInput("input_size", lambda: fn(nnfast.randn(2, 1, 5), None, params()), ValueError,
                   rf"\[{name}\] expected input with 3 features"),
        ErrorInput("h0_shape", lambda: fn(nnfast.randn(2, 1, 3), hx((1, 2, 4)), params()), ValueError,
                   rf"\[{name}\] expected h0 of shape"),
        ErrorInput("weights", lambda: fn(nnfast.randn(2, 1, 3), None, params()[:1]), ValueError,
                   rf"\[{name}\] expected 4 weight tensors"),
        ErrorInput("dtype", lambda: fn(nnfast.randn(2, 1, 3).to(nnfast.int64) if hasattr(nnfast, "int64")
                                       else nnfast.tensor(np.ones((2, 1, 3), np.int64)), None, params()),
                   TypeError, rf"\[{name}\] expected input to be float32 or float64"),
    ]


for _mode, _name in (("LSTM", "rnn_lstm"), ("GRU", "rnn_gru"), ("RNN_TANH", "rnn_tanh"), ("RNN_RELU", "rnn_relu")):
    register(OpInfo(
        _name, "rnn", None, None, _samples(_mode), fwd_tol=TOL, nc_tol=(1e-12, 1e-12),
        f32_fwd=(1e-5, 1e-5), f32_grad=(1e-4, 1e-5, True), error_inputs=_errors(_mode),
        gradcheck_kw={"atol": 1e-6, "rtol": 1e-4} if _mode == "RNN_RELU" else {}))
