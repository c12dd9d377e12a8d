"""Activations against float64 NumPy formulas written here.

One table row per pointwise op; each row runs: forward at odd sizes and both
dtypes, special values (0, -0, +-inf, NaN, huge, subnormal), float64 gradcheck
on the real kernels, non-contiguous inputs, float32 vs float64 agreement, and
(for activations the GEMM epilogue can fuse) Linear(activation=X) == Linear
then X bit for bit, plus the same bits under every SIMD level of this CPU.
Then tables for PReLU, Swish, GLU / SwiGLU, softmax / log-softmax, step / sign,
the L1 / L2 penalties, and bad inputs.

Stated tolerances: float32 forward within 1e-6 relative (max measured error of
the SIMD polynomials is ~3 ulp = 3.6e-7) plus 1e-12 absolute; float64 (libm)
within 1e-12 relative plus 1e-14 absolute; float32 vs float64 within 2e-6.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast._dispatch import kernels
from nnfast.autograd import gradcheck

from helpers import leaf, noncontig
from opinfo import REGISTRY, SPECIAL, _away, _sig

DTYPES = (np.float32, np.float64)
TOL = {np.float32: (1e-6, 1e-12), np.float64: (1e-12, 1e-14)}
# The pointwise table (forward at sizes 1..1023 in both dtypes, special values, gradcheck,
# non-contiguous, float32 vs float64, bad dtypes) lives in the registry (tests/opinfo.py) and
# runs from tests/test_ops.py; here: what is not per-op table material.
POINTWISE = {op.name: op for op in REGISTRY if op.family == "activation" and op.special_values}
FUSED = [k for k, op in POINTWISE.items() if op.fused is not None]


def _check(actual, expected, dtype, msg=""):
    a = np.asarray(actual.detach()._data if isinstance(actual, nnfast.Tensor) else actual, dtype=np.float64)
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(a, expected, rtol=rtol, atol=atol, err_msg=msg)


def _copy_linear(src, activation):
    dst = nn.Linear(src.in_features, src.out_features, dtype=src.weight.dtype, activation=activation)
    dst.weight._data[...] = src.weight._data
    dst.bias._data[...] = src.bias._data
    return dst


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FUSED)
def test_fused_linear_equals_linear_then_activation(name, dtype, rng):
    fn, spec = POINTWISE[name].call, POINTWISE[name].fused
    nnfast.manual_seed(0)
    lin = nn.Linear(13, 37, dtype=dtype)
    fused = _copy_linear(lin, spec)
    x = (2 * rng.standard_normal((9, 13))).astype(dtype)
    g = rng.standard_normal((9, 37)).astype(dtype)
    x1, x2 = leaf(x.copy()), leaf(x.copy())
    y1, y2 = fused(x1), fn(lin(x2))
    assert np.array_equal(y1._data, y2._data), name  # bit for bit: same scalar code as the SIMD kernel
    y1.backward(g)
    y2.backward(g)
    assert np.array_equal(x1.grad._data, x2.grad._data)
    assert np.array_equal(fused.weight.grad._data, lin.weight.grad._data)
    assert np.array_equal(fused.bias.grad._data, lin.bias.grad._data)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FUSED)
def test_epilogue_and_every_simd_level_agree_bitwise(name, dtype):
    """A dense sweep (with specials) through the GEMM epilogue (x @ I, scalar code) and the
    standalone kernel at each SIMD level: identical bits, NaNs included."""
    fn, spec = POINTWISE[name].call, POINTWISE[name].fused
    k = 64
    x = np.concatenate([np.linspace(-30, 30, 64 * 150), np.geomspace(1e-30, 1e3, 64 * 20),
                        -np.geomspace(1e-30, 1e3, 64 * 20), np.resize(SPECIAL[np.isfinite(SPECIAL)], 64)])
    x = x.astype(dtype).reshape(-1, k)
    eye = nnfast.from_numpy(np.eye(k, dtype=dtype))  # x @ I is exact for finite x
    fused = F.linear(nnfast.from_numpy(x), eye, None, activation=spec)._data
    # Specials (inf, NaN) cannot ride through a GEMM; one element per call runs the
    # one-lane code the epilogue uses, so compare those against the vector body.
    sp = np.resize(SPECIAL, 64).astype(dtype)
    one_lane = np.array([fn(nnfast.from_numpy(sp[i:i + 1]))._data[0] for i in range(sp.size)])
    levels = nnfast.info()["simd_supported"]
    current = nnfast._C.cpu_isa()
    try:
        for level in levels:
            nnfast._C.set_cpu_isa(level)
            assert np.array_equal(fn(nnfast.from_numpy(x))._data, fused), (name, level)
            assert np.array_equal(fn(nnfast.from_numpy(sp))._data, one_lane, equal_nan=True), (name, level)
    finally:
        nnfast._C.set_cpu_isa(current)


@pytest.mark.parametrize("name", [k for k, op in POINTWISE.items() if op.ulp is not None])
def test_float32_ulp_error(name):
    """float32 error in ulps (of the float32 result) against the float64 kernel on the same inputs,
    over a dense sweep of [-30, 30] and geometric ranges to +-1e4; at most the op's stated ``ulp``.
    Results below 1e-30 in magnitude (near the subnormals) are left to the absolute checks."""
    op = POINTWISE[name]
    x = np.concatenate([np.linspace(-30, 30, 600001), np.geomspace(1e-30, 1e4, 20000),
                        -np.geomspace(1e-30, 1e4, 20000)]).astype(np.float32)
    y32 = op.call(nnfast.from_numpy(x))._data.astype(np.float64)
    y64 = op.call(nnfast.from_numpy(x.astype(np.float64)))._data
    ok = np.isfinite(y64) & (np.abs(y64) > 1e-30)
    ulps = np.abs(y32[ok] - y64[ok]) / np.spacing(np.abs(y64[ok]).astype(np.float32)).astype(np.float64)
    assert ulps.max() <= op.ulp, (name, float(ulps.max()), float(x[ok][np.argmax(ulps)]))


def test_gelu_table_interval_edges():
    """The float32 normal tail (GELU forward and backward) picks a polynomial per interval of |x|,
    from the bits of |x| + 1 (quarter binades: edges 0.25, 0.5, ..., 7, 9, 11, 13; the forward's
    direct table for |x| < 3, eighth binades: 0.125, 0.25, ..., 1, 1.25, ..., 2.75 and its end at
    3); rounding of |x| + 1 can file a value just below an edge under the next interval. 32 floats either side of
    every edge, both signs, every SIMD level: forward within the op's ulp bound of float64, the
    derivative within 4e-7 of the size of its two terms Phi(x) and x phi(x) (it crosses zero
    near x = -0.75); and
    x <= -14.5 (clamped tail) gives -0, never NaN."""
    edges = [2.0 ** (k // 4) * (1 + (k % 4) / 4) - 1 for k in range(1, 16)]
    edges += [2.0 ** (k // 8) * (1 + (k % 8) / 8) - 1 for k in range(1, 17) if k % 2]
    base = np.array(edges, np.float32)
    bits = base.view(np.int32)[:, None] + np.arange(-32, 33, dtype=np.int32)[None, :]
    x = bits.ravel().view(np.float32)
    x = np.concatenate([x, -x, np.float32([-14.4, -14.5, -14.6, -20.0, -1e4])])
    op = POINTWISE["gelu"]
    x64 = x.astype(np.float64)
    y64 = op.call(nnfast.from_numpy(x64))._data
    g64 = np.empty_like(x64)
    nnfast._C.act_backward(g64, np.ones_like(x64), x64, F._act_codes.GELU, 0.0, 0.0)
    # the derivative Phi(x) + x phi(x) cancels near x = -0.75: bound the error by its terms' size
    phi = np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    scale = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x64]) + np.abs(x64) * phi
    current = nnfast._C.cpu_isa()
    try:
        for level in nnfast.info()["simd_supported"]:
            nnfast._C.set_cpu_isa(level)
            y32 = op.call(nnfast.from_numpy(x))._data.astype(np.float64)
            ok = np.abs(y64) > 1e-30
            ulps = np.abs(y32[ok] - y64[ok]) / np.spacing(np.abs(y64[ok]).astype(np.float32)).astype(np.float64)
            assert ulps.max() <= op.ulp, (level, float(ulps.max()), float(x[ok][np.argmax(ulps)]))
            assert not np.isnan(y32).any() and np.all(y32[x <= -14.5] == 0), level
            g32 = np.empty_like(x)
            nnfast._C.act_backward(g32, np.ones_like(x), x, F._act_codes.GELU, 0.0, 0.0)
            assert np.all(np.abs(g32 - g64) <= 4e-7 * scale + 1e-30), level
    finally:
        nnfast._C.set_cpu_isa(current)


def test_streaming_stores_and_alignment_peel():
    """Outputs above 16 MB per thread are written with non-temporal stores after a one-lane peel
    to vector alignment; below, ordinary stores. Both paths and every offset must give the same
    bits: one thread, 4.3 M floats at byte offsets 4 and 8 (peel lengths that differ), ReLU exact,
    GELU forward and backward equal bit for bit to the same kernel run on small slices."""
    n = (17 << 20) // 4
    rng = np.random.default_rng(3)
    buf = (3 * rng.standard_normal(n + 2)).astype(np.float32)
    gbuf = rng.standard_normal(n + 2).astype(np.float32)
    codes = F._act_codes
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(1)
    try:
        for off in (1, 2):
            x, g = buf[off:off + n - 1], gbuf[off:off + n - 1]
            out = np.empty(n + 2, np.float32)[off:off + n - 1]
            nnfast._C.act_forward(out, x, codes.RELU)
            assert np.array_equal(out, np.maximum(x, 0)), off
            nnfast._C.act_backward(out, g, x, codes.RELU, 0.0, 0.0)
            assert np.array_equal(out, np.where(x > 0, g, 0)), off
            for fwd in (True, False):
                if fwd:
                    nnfast._C.act_forward(out, x, codes.GELU)
                else:
                    nnfast._C.act_backward(out, g, x, codes.GELU, 0.0, 0.0)
                ref = np.empty(x.size, np.float32)
                for lo in range(0, x.size, 65539):  # slices start at every alignment
                    sl = slice(lo, min(x.size, lo + 65539))
                    if fwd:
                        nnfast._C.act_forward(ref[sl], x[sl], codes.GELU)
                    else:
                        nnfast._C.act_backward(ref[sl], g[sl], x[sl], codes.GELU, 0.0, 0.0)
                assert np.array_equal(out, ref), (off, fwd)
        current = nnfast._C.cpu_isa()
        try:
            for level in nnfast.info()["simd_supported"]:  # each level's streaming store and alignment
                nnfast._C.set_cpu_isa(level)
                x = buf[1:n]
                out = np.full(n + 2, np.nan, np.float32)[1:n]
                nnfast._C.act_forward(out, x, codes.RELU)
                assert np.array_equal(out, np.maximum(x, 0)), level
        finally:
            nnfast._C.set_cpu_isa(current)
    finally:
        nnfast.set_num_threads(old)


_BWD_STREAM_CHILD = r"""
import hashlib, sys
import numpy as np
import nnfast
from nnfast._native import _C
codes = nnfast.nn.functional._act_codes
r = np.random.default_rng(4)
n = (12 << 20) // 4 + 5  # 12 MB: dy + x + dx above 32 MB, each thread's piece below 16 MB
x = (3 * r.standard_normal(n + 1)).astype(np.float32)[1:]  # 4 bytes past the allocation
g = r.standard_normal(n).astype(np.float32)
h = hashlib.sha256()
for level in nnfast.info()["simd_supported"]:
    _C.set_cpu_isa(level)
    for threads in (1, 2):
        nnfast.set_num_threads(threads)
        dx = np.full(n + 1, np.nan, np.float32)[1:]
        _C.act_backward(dx, g, x, codes.RELU, 0.0, 0.0)
        assert np.array_equal(dx, np.where(x > 0, g, 0)), (level, threads)
        _C.act_backward(dx, g, x, codes.GELU, 0.0, 0.0)
        ref = np.empty_like(dx)
        for lo in range(0, n, 65539):  # small calls: ordinary stores, every alignment
            _C.act_backward(ref[lo:lo + 65539], g[lo:lo + 65539], x[lo:lo + 65539], codes.GELU, 0.0, 0.0)
        assert np.array_equal(dx, ref), (level, threads)
        h.update(dx.tobytes())
sys.stdout.write(h.hexdigest() + "\n")
"""


def test_backward_streams_above_cache_same_bits():
    """Pointwise backward of a 12 MB tensor writes dx with non-temporal stores (dy, saved and dx
    together outgrow a 32 MB cache) at 1 and 2 threads, though each piece is below the forward's
    16 MB per-call size: the bits must equal small calls and the NNFAST_ACT_BWD_STREAM=0 run, on
    every SIMD level."""
    import os
    import subprocess
    import sys

    outs = [subprocess.run([sys.executable, "-c", _BWD_STREAM_CHILD], env=dict(os.environ, NNFAST_ACT_BWD_STREAM=f),
                           check=True, capture_output=True, text=True).stdout for f in ("1", "0")]
    assert outs[0].count("\n") == 1 and outs[0] == outs[1]


# ------------------------------------------------------------------ PReLU
# shape, num_parameters
PRELU_CASES = [((7,), 1), ((4, 5), 1), ((4, 5), 5), ((3, 4, 6), 4), ((2, 3, 4, 5), 3), ((1, 1), 1)]


def _prelu_ref(x, w):
    shape = [1] * x.ndim
    if w.size > 1:
        shape[1] = w.size
    return np.where(x > 0, x, w.reshape(shape) * x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,C", PRELU_CASES)
def test_prelu(shape, C, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.1, 0.5, C).astype(dtype)
    _check(F.prelu(nnfast.from_numpy(x), nnfast.from_numpy(w)), _prelu_ref(x.astype(np.float64), w), dtype)
    xt, wt = leaf(noncontig(x)), leaf(w.copy())
    y = F.prelu(xt, wt)
    g = rng.standard_normal(shape)
    y.backward(g.astype(dtype))
    wb = w.reshape([1, C] + [1] * (len(shape) - 2)) if C > 1 else w
    _check(xt.grad, g * np.where(x > 0, 1.0, wb), dtype)
    red = tuple(i for i in range(len(shape)) if not (C > 1 and i == 1))
    dw = np.sum(g * np.where(x > 0, 0.0, x), axis=red).reshape(C)
    np.testing.assert_allclose(wt.grad._data, dw, rtol=1e-5 if dtype == np.float32 else 1e-11, atol=1e-5)


@pytest.mark.parametrize("shape,C", PRELU_CASES)
def test_prelu_gradcheck(shape, C, rng):
    x = _away(rng.standard_normal(shape), (0.0,))
    w = rng.uniform(0.1, 0.5, C)
    assert gradcheck(F.prelu, (leaf(x), leaf(w)))


@pytest.mark.parametrize("shape,C", [((3, 20000), 1), ((40000, 3), 3), ((2, 3, 17000), 3)])
def test_prelu_large_reduction(shape, C, rng):
    """The blocked weight-gradient reduction (all three layouts) against NumPy."""
    x = rng.standard_normal(shape)
    w = np.full(C, 0.25)
    xt, wt = leaf(x), leaf(w)
    F.prelu(xt, wt).sum().backward()
    red = tuple(i for i in range(len(shape)) if not (C > 1 and i == 1))
    np.testing.assert_allclose(wt.grad._data, np.sum(np.where(x > 0, 0.0, x), axis=red).reshape(C), rtol=1e-11)


def test_prelu_module():
    m = nn.PReLU(3, init=0.1, dtype=np.float64)
    assert m.weight.shape == (3,) and np.all(m.weight._data == 0.1)
    assert [k for k, _ in m.named_parameters()] == ["weight"]
    x = leaf(np.array([[-1.0, 2.0, -3.0]]))
    np.testing.assert_allclose(m(x)._data, [[-0.1, 2.0, -0.3]])


# ------------------------------------------------------------------ Swish
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", (1, 7, 257, 40000))
def test_swish_learnable_beta(n, dtype, rng):
    x = (3 * rng.standard_normal(n)).astype(dtype)
    beta = leaf(np.array([0.8], dtype=dtype))
    xt = leaf(x.copy())
    y = F.swish(xt, beta)
    x64 = x.astype(np.float64)
    s = _sig(0.8 * x64)
    _check(y, x64 * s, dtype)
    g = rng.standard_normal(n)
    y.backward(g.astype(dtype))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad._data, g * (s + 0.8 * x64 * s * (1 - s)), **tol)
    np.testing.assert_allclose(beta.grad._data, [np.sum(g * x64**2 * s * (1 - s))], **tol)


def test_swish_gradcheck_and_module(rng):
    x = leaf(rng.standard_normal((3, 5)))
    beta = leaf(np.array([1.3]))
    assert gradcheck(F.swish, (x, beta))
    m = nn.Swish(beta=1.0, dtype=np.float64)
    assert [k for k, _ in m.named_parameters()] == ["beta"]
    xv = rng.standard_normal(50)
    np.testing.assert_array_equal(m(nnfast.from_numpy(xv))._data, F.silu(nnfast.from_numpy(xv))._data)
    fixed = nn.Swish(beta=2.0, learnable=False)
    assert list(fixed.parameters()) == []
    _check(fixed(nnfast.from_numpy(xv)), xv * _sig(2 * xv), np.float64)


# ------------------------------------------------------------------ GLU / SwiGLU
def _halves(x, dim):
    a, b = np.split(x, 2, axis=dim)
    return a, b


GLU_CASES = [((4, 6), -1), ((4, 6), 0), ((2, 6, 3), 1), ((3, 2, 5), 1), ((2, 3, 8), -1), ((1, 2), -1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", GLU_CASES)
def test_glu_and_swiglu_forward(shape, dim, dtype, rng):
    x = (2 * rng.standard_normal(shape)).astype(dtype)
    a, b = _halves(x.astype(np.float64), dim)
    _check(F.glu(nnfast.from_numpy(x), dim), a * _sig(b), dtype)
    _check(F.swiglu(nnfast.from_numpy(x), dim), a * _sig(a) * b, dtype)
    _check(F.glu(nnfast.from_numpy(noncontig(x)), dim), a * _sig(b), dtype)


@pytest.mark.parametrize("shape,dim", GLU_CASES)
def test_glu_gradcheck(shape, dim, rng):
    x = rng.standard_normal(shape)
    assert gradcheck(lambda t: F.glu(t, dim), (leaf(x.copy()),))
    assert gradcheck(lambda t: F.swiglu(t, dim), (leaf(x.copy()),))


def test_swiglu_module_one_gemm(monkeypatch, rng):
    nnfast.manual_seed(3)
    m = nn.SwiGLU(6, 4, dtype=np.float64)
    assert m.weight.shape == (8, 6) and m.bias.shape == (8,)
    assert [k for k, _ in m.named_parameters()] == ["weight", "bias"]
    x = rng.standard_normal((5, 6))
    W, c = m.weight._data, m.bias._data
    z1, z2 = x @ W[:4].T + c[:4], x @ W[4:].T + c[4:]
    calls = []
    K = kernels("linear", W)  # the linear op's cpu kernel set (nnfast._dispatch)
    real = K.gemm
    monkeypatch.setitem(vars(K), "gemm", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    y = m(nnfast.from_numpy(x))
    assert len(calls) == 1  # both projections in one GEMM
    _check(y, z1 * _sig(z1) * z2, np.float64)
    monkeypatch.undo()
    xt = leaf(x)
    assert gradcheck(lambda t, w, b: F.swiglu(F.linear(t, w, b)), (xt, m.weight, m.bias))


def test_glu_module_and_errors():
    assert nn.GLU(dim=1)(nnfast.ones(2, 4)).shape == (2, 2)
    with pytest.raises(ValueError, match=r"^\[glu\]"):
        F.glu(nnfast.ones(3, 5))
    with pytest.raises(ValueError, match=r"^\[swiglu\]"):
        F.swiglu(nnfast.ones(3, 4), dim=2)


# ------------------------------------------------------------------ softmax / log-softmax
def _softmax_ref(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _log_softmax_ref(x, dim):
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


SOFTMAX_CASES = [((1,), 0), ((7,), -1), ((4, 33), 1), ((4, 33), 0), ((3, 5, 257), 1), ((3, 5, 7), 0),
                 ((2, 3, 150), -1), ((2, 300, 3), 1), ((1023, 3), 0), ((2, 1023), 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES)
@pytest.mark.parametrize("log", (False, True))
def test_softmax_forward_backward(shape, dim, log, dtype, rng):
    x = (3 * rng.standard_normal(shape) + 1000.0).astype(dtype)  # large offset: needs the max shift
    fn = F.log_softmax if log else F.softmax
    ref = _log_softmax_ref if log else _softmax_ref
    x64 = x.astype(np.float64)
    y = fn(nnfast.from_numpy(x), dim)
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y._data, ref(x64, dim), rtol=rtol, atol=1e-6 if log and dtype == np.float32 else 1e-12)
    xt = leaf(noncontig(x))
    yt = fn(xt, dim)
    assert np.array_equal(yt._data, y._data)
    g = rng.standard_normal(shape)
    yt.backward(g.astype(dtype))
    s = _softmax_ref(x64, dim)
    if log:
        dx = g - s * g.sum(axis=dim, keepdims=True)
    else:
        dx = s * (g - (g * s).sum(axis=dim, keepdims=True))
    np.testing.assert_allclose(xt.grad._data, dx, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("shape,dim", [((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1)])
@pytest.mark.parametrize("log", (False, True))
def test_softmax_gradcheck(shape, dim, log, rng):
    fn = F.log_softmax if log else F.softmax
    assert gradcheck(lambda t: fn(t, dim), (leaf(rng.standard_normal(shape)),))


def test_softmax_masked_and_modules():
    x = np.array([[1.0, -np.inf, 2.0], [-np.inf, 0.5, -np.inf]])
    y = nn.Softmax(dim=1)(nnfast.from_numpy(x))._data
    np.testing.assert_allclose(y, [[1 / (1 + math.e), 0.0, math.e / (1 + math.e)], [0.0, 1.0, 0.0]])
    ly = nn.LogSoftmax(dim=-1)(nnfast.from_numpy(x))._data
    assert ly[0, 1] == -np.inf and ly[1, 1] == 0.0
    with pytest.warns(UserWarning):
        F.softmax(nnfast.ones(2, 3))  # implicit dim, as PyTorch
    z = F.softmax(nnfast.ones(2, 3, dtype=np.float32), dim=1, dtype=np.float64)
    assert z.dtype == np.float64
    s0 = F.softmax(nnfast.tensor(3.0), dim=0)
    assert s0.shape == () and float(s0._data) == 1.0


@pytest.mark.parametrize("D", (7, 16, 1000, 1023))
@pytest.mark.parametrize("log", (False, True))
def test_softmax_wide_rows_tails_and_nan(D, log, rng):
    """Rows whose exps span far below the smallest normal (exp(x - max) of those is 0 in
    float32, within the absolute tolerance), whose last partial vector (the padded tail)
    holds the max, and a NaN in the tail that must spread to its whole row only."""
    x = rng.uniform(-300.0, 0.0, (3, D)).astype(np.float32)
    x[:, -1] = 5.0  # the max sits in the tail
    fn, ref = (F.log_softmax, _log_softmax_ref) if log else (F.softmax, _softmax_ref)
    y = fn(nnfast.from_numpy(x), 1)._data
    # rtol: x - max rounds to float32 (relative 2^-24 of up to 305), which exp turns into 305 * 6e-8.
    np.testing.assert_allclose(y, ref(x.astype(np.float64), 1), rtol=2e-5, atol=1e-6 if log else 1e-30)
    x[1, -2] = np.nan
    y = fn(nnfast.from_numpy(x), 1)._data
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


_SOFTMAX_STREAM_CHILD = r"""
import hashlib, sys
import numpy as np
import nnfast
from nnfast._native import _C
r = np.random.default_rng(5)
h = hashlib.sha256()
# (rows, D): odd D (every row starts at another alignment), a row wider than the
# 16 KB exp buffer (its exps go through y), float64; all above the 16 MB streaming size.
for dt, rows, D in ((np.float32, 4300, 1001), (np.float32, 850, 5003), (np.float64, 2100, 1001)):
    buf = (4 * r.standard_normal(rows * D + 1)).astype(dt)
    x = buf[1:].reshape(rows, D)  # 4 / 8 bytes past the allocation: a peel before each aligned body
    for log in (False, True):
        for threads in (1, 2):
            nnfast.set_num_threads(threads)
            y = np.full(rows * D + 1, np.nan, dt)[1:].reshape(rows, D)
            _C.softmax_forward(y, x, 1, log)
            ref = np.empty_like(y)
            for lo in range(0, rows, 37):  # small calls: ordinary stores
                _C.softmax_forward(ref[lo:lo + 37], x[lo:lo + 37], 1, log)
            assert np.array_equal(y, ref), (dt, D, log, threads)
            # backward: dx streams too (dy odd-aligned, dx at y's alignment)
            dy = np.ascontiguousarray(x[::-1])
            dx = np.full(rows * D + 1, np.nan, dt)[1:].reshape(rows, D)
            _C.softmax_backward(dx, dy, y, 1, log)
            dref = np.empty_like(dx)
            for lo in range(0, rows, 37):
                _C.softmax_backward(dref[lo:lo + 37], dy[lo:lo + 37], y[lo:lo + 37], 1, log)
            assert np.array_equal(dx, dref), ("bwd", dt, D, log, threads)
            h.update(dx.tobytes())
        h.update(y.tobytes())
sys.stdout.write(h.hexdigest() + "\n")
"""


_EXP_SCALEF_CHILD = r"""
import hashlib, sys
import numpy as np
import nnfast
from nnfast._native import _C
r = np.random.default_rng(6)
h = hashlib.sha256()
# rows whose x - max spans 0 .. -110: exps normal, subnormal (-87.3 .. -103.3) and flushed to 0;
# -inf (masked) entries, a NaN row; widths with and without tails; 1 and 2 threads; each SIMD level.
for D in (1, 7, 16, 1023):
    x = r.uniform(-110.0, 0.0, (64, D)).astype(np.float32)
    x[:, 0] = 0.0
    x[3, -1] = -np.inf
    x[5, D // 2] = np.nan
    for level in nnfast.info()["simd_supported"]:
        _C.set_cpu_isa(level)
        for log in (False, True):
            y = np.empty_like(x)
            _C.softmax_forward(y, x, 1, log)
            h.update(y.tobytes())
sys.stdout.write(h.hexdigest() + "\n")
"""


def test_softmax_exp_scalef_same_bits():
    """The softmax rows' exp on AVX-512 scales by 2^n with vscalefps (masked to +0 below
    ln(FLT_MIN)) instead of an integer-built 2^n: the same bits, subnormal results, flushed lanes,
    -inf and NaN included, as NNFAST_EXP_SCALEF=0 and as the other SIMD levels (one hash over all).
    Both with the degree-7 exp (NNFAST_SOFTMAX_EXP_SHORT=0; EXP_SCALEF=0 always uses it)."""
    import os
    import subprocess
    import sys

    outs = [subprocess.run([sys.executable, "-c", _EXP_SCALEF_CHILD], env=dict(os.environ, NNFAST_EXP_SCALEF=f, NNFAST_SOFTMAX_EXP_SHORT="0"),
                           check=True, capture_output=True, text=True).stdout for f in ("1", "0")]
    assert outs[0].count("\n") == 1 and outs[0] == outs[1]


def test_softmax_streaming_rows_same_bits():
    """Softmax / log-softmax rows of a tensor above 16 MB are written with non-temporal stores
    (softmax's exps staged in a stack buffer at y's alignment; rows wider than it keep them in y),
    and so is the backward's dx; the bits must equal small calls (ordinary stores) at every row
    alignment, 1 and 2 threads, and the run with NNFAST_SOFTMAX_STREAM=0."""
    import os
    import subprocess
    import sys

    outs = []
    for flag in ("1", "0"):
        env = dict(os.environ, NNFAST_SOFTMAX_STREAM=flag)
        outs.append(subprocess.run([sys.executable, "-c", _SOFTMAX_STREAM_CHILD], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0].count("\n") == 1 and outs[0] == outs[1]


# ------------------------------------------------------------------ step / sign
def test_step_and_sign_zero_gradient():
    x = leaf(np.array([-2.0, -0.0, 0.0, 0.5, 3.0]))
    y = F.step(x)
    np.testing.assert_array_equal(y._data, [0, 0, 0, 1, 1])
    (y * 3).sum().backward()
    np.testing.assert_array_equal(x.grad._data, np.zeros(5))
    np.testing.assert_array_equal(F.step(nnfast.from_numpy(x._data), threshold=1.0)._data, [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(nn.Sign()(nnfast.from_numpy(x._data))._data, [-1, 0, 0, 1, 1])
    np.testing.assert_array_equal(nn.Step()(nnfast.from_numpy(x._data))._data, [0, 0, 0, 1, 1])


# ------------------------------------------------------------------ modules, inplace
MODULES = [
    (nn.ReLU(), "relu"), (nn.ReLU6(), "relu6"), (nn.LeakyReLU(0.1), "leaky_relu"), (nn.ELU(0.7), "elu"),
    (nn.Sigmoid(), "sigmoid"), (nn.Tanh(), "tanh"), (nn.GELU(), "gelu"), (nn.GELU("tanh"), "gelu_tanh"),
    (nn.SiLU(), "silu"), (nn.Softplus(2.0, 5.0), "softplus"), (nn.Hardtanh(-0.5, 0.5), "hardtanh"),
]


@pytest.mark.parametrize("module,name", MODULES, ids=[n for _, n in MODULES])
def test_modules_match_functional(module, name, rng):
    x = nnfast.from_numpy(rng.standard_normal(40))
    np.testing.assert_array_equal(module(x)._data, POINTWISE[name].call(x)._data)
    repr(module)


@pytest.mark.parametrize("fn", [lambda t: F.relu(t, inplace=True), F.relu_, lambda t: F.elu(t, inplace=True),
                                lambda t: F.leaky_relu_(t, 0.2), lambda t: F.hardtanh_(t), lambda t: F.silu(t, True),
                                lambda t: nn.ReLU(inplace=True)(t)])
def test_inplace(fn, rng):
    x = rng.standard_normal((6, 8))
    ref = fn(nnfast.from_numpy(x.copy()))._data
    t = nnfast.from_numpy(x.copy())
    assert fn(t) is t and np.array_equal(t._data, ref)  # written into the input
    v = x.copy()[:, ::2]  # non-contiguous view: written back through the view
    tv = nnfast.from_numpy(v)
    fn(tv)
    assert np.array_equal(tv._data, ref[:, ::2])
    a = leaf(x.copy())  # recording autograd: computed out of place, gradient still right
    y = fn(a)
    assert y is not a and np.array_equal(a._data, x)
    y.sum().backward()
    assert a.grad is not None


# ------------------------------------------------------------------ penalties
@pytest.mark.parametrize("dtype", DTYPES)
def test_l1_l2_penalties(dtype, rng):
    from nnfast.nn.regularization import l1_penalty, l2_penalty

    ps = [leaf(rng.standard_normal(s).astype(dtype)) for s in [(3, 4), (5,), (40000,)]]
    ps[1]._data[0] = 0.0
    tot1 = sum(np.abs(p._data.astype(np.float64)).sum() for p in ps)
    tot2 = sum((p._data.astype(np.float64) ** 2).sum() for p in ps)
    r1, r2 = l1_penalty(ps), l2_penalty(ps)
    assert r1.shape == () and r1.dtype == dtype
    np.testing.assert_allclose(float(r1._data), tot1, rtol=1e-6)
    np.testing.assert_allclose(float(r2._data), tot2, rtol=1e-6)
    (3 * r1 + r2).backward()
    for p in ps:
        np.testing.assert_allclose(p.grad._data, 3 * np.sign(p._data) + 2 * p._data, rtol=1e-6)
    m = nn.Linear(3, 2, dtype=np.float64)
    assert float(l2_penalty(m)._data) == pytest.approx((m.weight._data**2).sum() + (m.bias._data**2).sum())


def test_penalty_gradcheck(rng):
    from nnfast.nn.regularization import l1_penalty, l2_penalty

    a, b = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal(4))
    assert gradcheck(lambda x, y: l2_penalty([x, y]), (a, b))
    assert gradcheck(lambda x, y: l1_penalty([x, y]), (a, b))


# ------------------------------------------------------------------ bad inputs
# Bad dtypes per op: the registry's error inputs (tests/test_ops.py::test_error_inputs).
def test_bad_shapes_and_args():
    x = nnfast.ones(2, 3)
    for op, call in [("softmax", lambda: F.softmax(x, 2)), ("log_softmax", lambda: F.log_softmax(x, -3)),
                     ("glu", lambda: F.glu(x, 5)), ("prelu", lambda: F.prelu(x, nnfast.ones(4))),
                     ("prelu", lambda: F.prelu(x, nnfast.ones(2, 2))), ("gelu", lambda: F.gelu(x, "fast")),
                     ("hardtanh", lambda: F.hardtanh(x, 1.0, -1.0)), ("swish", lambda: F.swish(x, nnfast.ones(2))),
                     ("dropout", lambda: F.dropout(x, 1.5))]:
        with pytest.raises(ValueError, match=rf"^\[{op}\] expected"):
            call()
    with pytest.raises(TypeError, match=r"^\[prelu\] expected weight to have dtype"):
        F.prelu(x, nnfast.ones(1, dtype=np.float64))
    # The bindings check again (dtype, shape, aliasing) with "[op]" messages.
    _C = nnfast._C
    a = np.ones(4, np.float32)
    with pytest.raises(TypeError, match=r"^\[activation\] expected"):
        _C.act_forward(np.ones(4, np.float64), a, 1)
    with pytest.raises(ValueError, match=r"^\[activation\] expected"):
        _C.act_forward(np.ones(5, np.float32), a, 1)
    with pytest.raises(ValueError, match=r"^\[activation\] expected a valid activation code"):
        _C.act_forward(a.copy(), a, 42)
    with pytest.raises(ValueError, match=r"^\[softmax\] expected"):
        _C.softmax_forward(a, a, 0, False)
    with pytest.raises(ValueError, match=r"^\[glu\] expected"):
        _C.glu_forward(np.ones(2, np.float32), np.ones(5, np.float32), 0, 4, False)


_ACT_SWITCH_CHILD = r"""
import hashlib
import sys
import numpy as np
import nnfast
import nnfast.nn.functional as F
from nnfast._native import _C
# sys.argv: op (tanh | gelu), lo, hi, wide: every float32 in [lo, hi] (where the switched
# code errs most), both signs, and a sweep of [-wide, wide]; odd total size. Each SIMD level
# must give the same bits, and the GEMM epilogue (one lane) too. Prints the max ulp error
# against float64 (|y| > 1e-30) and a hash of the bits.
op, lo, hi, wide = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
fn = {"tanh": F.tanh, "gelu": F.gelu}[op]
x = np.arange(np.float32(lo).view(np.int32), np.float32(hi).view(np.int32), dtype=np.int32).view(np.float32)
x = np.concatenate([x, -x, np.linspace(-wide, wide, 100003, dtype=np.float32)])
x = x[: x.size - (x.size % 2 == 0)]
outs = []
for level in nnfast.info()["simd_supported"]:
    _C.set_cpu_isa(level)
    outs.append(fn(nnfast.from_numpy(x))._data.copy())
assert all(np.array_equal(o, outs[0]) for o in outs)
k = 64
xm = x[: x.size // k * k].reshape(-1, k)
fused = F.linear(nnfast.from_numpy(xm), nnfast.from_numpy(np.eye(k, dtype=np.float32)), None, activation=op)._data
assert np.array_equal(fused.ravel(), outs[0][: xm.size])
ref = fn(nnfast.from_numpy(x.astype(np.float64)))._data
ok = np.abs(ref) > 1e-30
y = outs[0].astype(np.float64)
ulp = np.abs(y[ok] - ref[ok]) / np.spacing(np.abs(ref[ok]).astype(np.float32)).astype(np.float64)
sys.stdout.write(f"{ulp.max():.4f} {hashlib.sha256(outs[0].tobytes()).hexdigest()}\n")
"""


def _act_switch(var, args):
    import os
    import subprocess
    import sys

    res = {}
    for flag in ("1", "0"):
        out = subprocess.run([sys.executable, "-c", _ACT_SWITCH_CHILD, *args], env=dict(os.environ, **{var: flag}),
                             check=True, capture_output=True, text=True).stdout.split()
        res[flag] = (float(out[0]), out[1])
    return res


def test_tanh_fast_switch():
    """float32 tanh's big branch (|x| >= 0.625) is 1 - 2 / (2^y + 1) with a degree-6 2^f polynomial
    (NNFAST_TANH_FAST=1, default) or the older Cephes-exp form (=0). Both: within 2 ulp of float64
    around the branch edge (every float in [0.6, 0.7]) and to the clamp at 10, the same bits on every
    SIMD level and through the GEMM epilogue; and the switch really changes the kernel (other bits)."""
    res = _act_switch("NNFAST_TANH_FAST", ["tanh", "0.6", "0.7", "12"])
    assert res["1"][0] <= 2.0 and res["0"][0] <= 2.0, res
    assert res["1"][1] != res["0"][1]


def test_gelu_exp_short_switch():
    """GELU (erf) float32: the normal tail's exp with the degree-6 polynomial (NNFAST_GELU_EXP_SHORT=1,
    default) or Cephes's degree 7 (=0). Both within GELU's 3 ulp of float64 (every float in
    [0.5, 0.75], both signs, and a sweep of [-15, 15]), the same bits on every SIMD level and through
    the GEMM epilogue, and different bits from each other."""
    res = _act_switch("NNFAST_GELU_EXP_SHORT", ["gelu", "0.5", "0.75", "15"])
    assert res["1"][0] <= 3.0 and res["0"][0] <= 3.0, res
    assert res["1"][1] != res["0"][1]


def test_gelu_erf_poly_switch():
    """GELU (erf) float32 forward: Phi(-|x|) from the direct polynomial table for |x| < 3, the exp
    form beyond (NNFAST_GELU_ERF_POLY=1, default), or the exp form everywhere (=0). Both within
    GELU's 3 ulp of float64 on every float in [2.5, 3.25] (both signs: the direct table's widest
    intervals, its end at 3 and the lanes past it) and a sweep of [-15, 15]; the same bits on every
    SIMD level and through the GEMM epilogue (one lane), so a lane never depends on its
    neighbours; and different bits from each other."""
    res = _act_switch("NNFAST_GELU_ERF_POLY", ["gelu", "2.5", "3.25", "15"])
    assert res["1"][0] <= 3.0 and res["0"][0] <= 3.0, res
    assert res["1"][1] != res["0"][1]


_SOFTMAX_SHORT_CHILD = r"""
import hashlib
import sys
import numpy as np
import nnfast
from nnfast._native import _C
# softmax / log-softmax rows (D 1, 7, 1000, 1023; x - max spanning 0 .. -90) at each SIMD level;
# prints the max error in float32 ulps of the float64 result and a hash of all the outputs.
r = np.random.default_rng(3)
h = hashlib.sha256()
worst = 0.0
for D in (1, 7, 1000, 1023):
    x = r.uniform(-90.0, 0.0, (33, D)).astype(np.float32)
    x[:, 0] = 0.0
    x[1] = r.standard_normal(D).astype(np.float32) * 3
    # x - m as the kernel rounds it (float32): the reference then measures exp, the sum and 1/s only
    z = (x - x.max(1, keepdims=True)).astype(np.float64)
    for log in (False, True):
        ref = z - np.log(np.exp(z).sum(1, keepdims=True)) if log else np.exp(z) / np.exp(z).sum(1, keepdims=True)
        outs = []
        for level in nnfast.info()["simd_supported"]:
            _C.set_cpu_isa(level)
            y = np.empty_like(x)
            _C.softmax_forward(y, x, 1, log)
            outs.append(y)
        # log-softmax near 0 (the max of a peaked row): log s is rounded in float32, ulps of max(|ref|, 1)
        scale = np.maximum(np.abs(ref), 1.0) if log else np.abs(ref)
        ok = scale > 1e-30
        for o in outs:  # (levels sum a row in different orders: bits may differ between them)
            ulp = np.abs(o[ok] - ref[ok]) / np.spacing(scale[ok].astype(np.float32)).astype(np.float64)
            worst = max(worst, float(ulp.max(initial=0.0)))
            h.update(o.tobytes())
sys.stdout.write(f"{worst:.4f} {h.hexdigest()}\n")
"""


def test_softmax_exp_short_switch():
    """The softmax rows' exp with the degree-6 polynomial (NNFAST_SOFTMAX_EXP_SHORT=1, default) or
    the degree-7 one (=0, exp_full's bits): both within 4 ulp of float64 at every SIMD level
    (softmax: exp, the sum and 1/s; log-softmax: (x - m) - log s), and different bits."""
    import os
    import subprocess
    import sys

    res = {}
    for flag in ("1", "0"):
        out = subprocess.run([sys.executable, "-c", _SOFTMAX_SHORT_CHILD],
                             env=dict(os.environ, NNFAST_SOFTMAX_EXP_SHORT=flag),
                             check=True, capture_output=True, text=True).stdout.split()
        res[flag] = (float(out[0]), out[1])
    assert res["1"][0] <= 4.0 and res["0"][0] <= 4.0, res
    assert res["1"][1] != res["0"][1]


@pytest.mark.parametrize("fast", ["1", "0"])
def test_softmax_exp_scan(fast):
    """The softmax rows' exp, NNFAST_SOFTMAX_EXP_SHORT=1 (default: degree 6) or 0 (degree 7), scanned through rows [0, v] (every 127th float in [ln(FLT_MIN), 0] and the
    reduction's edges) at every SIMD level: y1 = exp(v) exactly where the row sum rounds to 1, so
    the exp alone is within 2 ulp of float64 there and e / (1 + e) within 4 ulp elsewhere; log-softmax
    of the same rows within 4 ulp of max(|ref|, 1)."""
    import os
    import subprocess
    import sys

    code = r"""
import sys
sys.path.insert(0, "tests")
import numpy as np, nnfast
from nnfast._native import _C
from test_loss import _exp_scan_inputs, exp_scan_ulps
v = _exp_scan_inputs()
x = np.zeros((v.size, 2), np.float32)
x[:, 1] = v
ref_log = v.astype(np.float64) - np.log1p(np.exp(v.astype(np.float64)))
w, wl = [], 0.0
for level in nnfast.info()["simd_supported"]:
    _C.set_cpu_isa(level)
    y = np.empty_like(x)
    _C.softmax_forward(y, x, 1)
    w.append(exp_scan_ulps(y[:, 1], v))
    _C.softmax_forward(y, x, 1, True)
    sc = np.maximum(np.abs(ref_log), 1.0)
    wl = max(wl, float((np.abs(y[:, 1] - ref_log) / np.spacing(sc.astype(np.float32))).max()))
print(max(a for a, _ in w), max(b for _, b in w), wl)
"""
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NNFAST_SOFTMAX_EXP_SHORT=fast), check=True,
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__))).stdout
    e_ulp, c_ulp, l_ulp = map(float, out.split())
    assert e_ulp <= 2.0 and c_ulp <= 4.0 and l_ulp <= 4.0, (e_ulp, c_ulp, l_ulp)
