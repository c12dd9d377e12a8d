"""The two-layer LSTM wavefront (F.lstm with num_layers=2, one direction, no projection, no dropout:
csrc/cpu/rnn.cpp lstm2_forward / lstm2_backward, one call for both layers, layer 1 one step behind layer 0
on a second thread). Against the float64 loop of opinfo_rnn.py and float64 gradcheck; against the
layer-by-layer path (NNFAST_RNN_WAVEFRONT=0) on every SIMD level: the forward keeps its bits, and so do
layer 1's gradients; layer 0's take its output gradient (layer 1's input gradient) summed over the gates
in one chain per step instead of the general GEMM's blocks, so they agree to rounding. 1, 2 and 3
threads give the same bits. Module-level PyTorch parity: test_rnn.py's CONFIGS (num_layers=2)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
from nnfast._native import _C
from nnfast.autograd.gradcheck import gradcheck
from opinfo_rnn import make_sample


@pytest.fixture(autouse=True)
def _wavefront_on(monkeypatch):
    """The wavefront is opt-in (NNFAST_RNN_WAVEFRONT=1); the in-process tests here run it."""
    from nnfast.nn.functional import _rnn
    monkeypatch.setattr(_rnn, "_WAVEFRONT", True)

CASES = [dict(T=1, N=1, I=1, H=1), dict(T=3, N=2, I=3, H=5), dict(T=4, N=3, I=2, H=3, lengths=[4, 2, 1]),
         dict(T=2, N=2, I=3, H=3, bias=False), dict(T=5, N=3, I=7, H=7), dict(T=3, N=4, I=5, H=17)]


def _sample(c, seed):
    c = dict(c)
    return make_sample("LSTM", c.pop("T"), c.pop("N"), c.pop("I"), c.pop("H"), layers=2, seed=seed, **c)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_float64_reference(case, dtype):
    s = _sample(CASES[case], seed=30 + case)
    ts = {k: nnfast.tensor(v.astype(dtype)) for k, v in s.arrays.items()}
    got = s.call(**ts).numpy()
    want = s.ref(**s.arrays)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", [0, 2, 3, 1])
def test_gradcheck(case):
    """Every path into the input, both initial states and all weights of both layers (float64)."""
    s = _sample(CASES[case], seed=40 + case)
    names = list(s.arrays)
    ts = [nnfast.tensor(s.arrays[n], requires_grad=True) for n in names]
    assert gradcheck(lambda *a: s.call(**dict(zip(names, a))), ts)


_CHILD = r"""
import sys, numpy as np
import nnfast, nnfast.nn as nn
from nnfast._native import _C
from nnfast.nn.utils import rnn as rnn_utils
nnfast.set_num_threads(int(sys.argv[1]))
r = np.random.default_rng(21)
nnfast.manual_seed(21)
for isa in nnfast.info()["simd_supported"]:
    _C.set_cpu_isa(isa)
    for dt in (np.float32, np.float64):
        for H, N, kw, lengths, state in ((1, 1, {}, None, False), (7, 3, {"bias": False}, [3, 1, 2], True),
                                         (130, 20, {}, None, False), (33, 6, {"batch_first": True}, None, True),
                                         (200, 20, {}, [3, 3, 3, 2, 2, 2, 2, 1, 1, 1] * 2, False)):
            m = nn.LSTM(4, H, num_layers=2, dtype=dt, **kw)
            shape = (N, 3, 4) if kw.get("batch_first") else (3, N, 4)
            x = nnfast.tensor(r.standard_normal(shape).astype(dt), requires_grad=True)
            hx = tuple(nnfast.tensor(r.standard_normal((2, N, H)).astype(dt), requires_grad=True)
                       for _ in range(2)) if state else None
            inp = rnn_utils.pack_padded_sequence(x, lengths, enforce_sorted=False) if lengths else x
            y, (h, c) = m(inp, hx)
            if lengths:
                y = rnn_utils.pad_packed_sequence(y)[0]
            ((y * y).sum() + (h * h).sum() + (c * c).sum()).backward()
            grads = [x.grad] + [p.grad for p in m.parameters()] + ([s.grad for s in hx] if hx else [])
            for a in [y, h, c] + grads:
                np.save(sys.stdout.buffer, (a.detach() if hasattr(a, "detach") else a).numpy())
"""


def _child(wavefront, threads):
    env = dict(os.environ, NNFAST_RNN_WAVEFRONT=wavefront)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(threads)], env=env, check=True,
                         capture_output=True).stdout
    import io
    f, arrays = io.BytesIO(out), []
    while f.tell() < len(out):
        arrays.append(np.load(f))
    return arrays


def test_same_values_as_the_layer_path_and_same_bits_whatever_the_thread_count():
    wave = {n: _child("1", n) for n in (1, 2, 3)}
    old = _child("0", 2)
    assert len(old) > 100 and all(len(w) == len(old) for w in wave.values())
    for n in (2, 3):
        for a, b in zip(wave[1], wave[n]):
            np.testing.assert_array_equal(a, b)
    # per model: y, h, c, dx, (dW_ih, dW_hh[, db_ih, db_hh]) x 2 layers, [dh0, dc0]
    same = 0
    for a, b in zip(wave[2], old):
        assert a.dtype == b.dtype and a.shape == b.shape
        if np.array_equal(a, b):
            same += 1
        tol = 1e-12 if a.dtype == np.float64 else 2e-6
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))
    assert same > len(old) // 2  # the forward and layer 1's gradients keep their bits


def test_the_wavefront_runs_and_the_switch_turns_it_off():
    code = ("import nnfast.nn.functional._rnn as R, nnfast.nn as nn, nnfast, numpy as np\n"
            "calls = []\n"
            "orig = R.LSTM2Function.forward\n"
            "R.LSTM2Function.forward = staticmethod(lambda *a, **k: calls.append(1) or orig(*a, **k))\n"
            "for kw in ({}, {'bidirectional': True}, {'proj_size': 2}, {'num_layers': 3}):\n"
            "    nn.LSTM(3, 4, num_layers=kw.pop('num_layers', 2), **kw)(nnfast.randn(2, 1, 3))\n"
            "m = nn.LSTM(3, 4, num_layers=2, dropout=0.5); m(nnfast.randn(2, 1, 3)); m.eval(); m(nnfast.randn(2, 1, 3))\n"
            "print(len(calls))\n")
    for flag, want in (("1", "2"), ("0", "0")):
        env = dict(os.environ, NNFAST_RNN_WAVEFRONT=flag)
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
        assert out.stdout.strip() == want


def _layers(R=6, N=2, H=3, I=4):
    def layer(i):
        z = lambda *s: np.zeros(s)  # noqa: E731
        return (z(R, H), z(N, H), z(N, H), z(R, 4 * H), z(R, H), z(R, H), z(R, H), z(4 * H, i), z(4 * H, H),
                None, None, None, None)
    return [layer(I), layer(H)]


def test_kernel_errors():
    x, bs = np.zeros((6, 4)), np.array([2, 2, 2], np.int64)
    ok = _layers()
    _C.lstm2_forward(ok, x, bs)
    with pytest.raises(ValueError, match=r"\[LSTM\] expected 2 layers"):
        _C.lstm2_forward(ok[:1], x, bs)
    with pytest.raises(ValueError, match=r"\[LSTM\] expected a layer as a tuple of 13"):
        _C.lstm2_forward([ok[0], ok[1][:12]], x, bs)
    bad = list(ok[1])
    bad[7] = np.zeros((12, 5))  # layer 1's weight_ih must take layer 0's 3 outputs
    with pytest.raises(ValueError, match=r"\[LSTM\] expected weight_ih"):
        _C.lstm2_forward([ok[0], tuple(bad)], x, bs)
    bad = list(ok[0])
    bad[9] = np.zeros(12)  # bias_ih without bias_hh
    with pytest.raises(ValueError, match=r"\[LSTM\] expected bias_ih and bias_hh"):
        _C.lstm2_forward([tuple(bad), ok[1]], x, bs)
    with pytest.raises(ValueError, match=r"\[LSTM\] expected batch_sizes"):
        _C.lstm2_forward(ok, x, np.array([2, 3, 1], np.int64))
    with pytest.raises(ValueError, match=r"\[LSTM\] expected output not to share memory"):
        buf = np.zeros(64)  # layer 0's output over its weight_ih
        _C.lstm2_forward([(buf[:18].reshape(6, 3),) + ok[0][1:7] + (buf[:48].reshape(12, 4),) + ok[0][8:], ok[1]], x,
                         bs)
    g = [(np.zeros((2, 3)), np.zeros((2, 3)), None, None, None, None, np.zeros((6, 12)), None, None)] * 2
    _C.lstm2_backward(None, np.zeros((6, 3)), None, g, ok, x, bs)
    with pytest.raises(ValueError, match=r"\[LSTM\] expected grad_gates"):
        _C.lstm2_backward(None, np.zeros((6, 3)), None, [g[0], g[1][:6] + (np.zeros((6, 11)),) + g[1][7:]], ok, x, bs)
