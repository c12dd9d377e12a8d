"""float32 norm sums in float lanes (NNFAST_NORM_F32SUM, issue 18): layer / RMS norm backward's
first pass (sum g, sum g * xhat, the weight / bias partial sums) and the (N, C) batch norm
backward's column sums (and, opt-in NNFAST_NORM_F32STATS=1, its forward statistics) run in float lanes over short stretches that are then added into
double. Both settings against the float64 kernels on the same float32 inputs (the bound of
test_norm's float32 backward tests), every ISA; thread counts 1 / 2 / 3 give the same bits."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F

from helpers import leaf, noncontig

_C = nnfast._C


def _threads(n, f):
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(n)
    try:
        return f()
    finally:
        nnfast.set_num_threads(old)


def _row_bwd(x, dy, w, b, rms, partials):
    M, D = x.shape
    mean, rstd = (None if rms else np.empty(M)), np.empty(M)
    _C.layer_norm_forward(np.empty_like(x), mean, rstd, x, w, None if rms else b, 1e-5, rms)
    dx = np.empty_like(x)
    dw = np.zeros(D, x.dtype) if partials else None
    db = np.zeros(D, x.dtype) if partials and not rms else None
    _C.layer_norm_backward(dx, dw, db, dy, x, mean, rstd, w, rms)
    return [v for v in (dx, dw, db) if v is not None]


def _close64(a, c):
    assert np.abs(a.astype(np.float64) - c).max() <= 2e-5 * max(1.0, float(np.abs(c).max()))


@pytest.mark.parametrize("f32sum", ["1", "0"])
@pytest.mark.parametrize("shape", [(1, 37), (7, 1023), (13, 300), (5, 16), (263, 1023), (3, 5000), (1, 7)])
@pytest.mark.parametrize("mean", [2.0, 1e4])
def test_row_norm_backward_f32sum(monkeypatch, isa_level, f32sum, shape, mean):
    """layer / RMS norm float32 backward, with and without the weight / bias gradients and the
    weight: rows in groups of four plus single rows (7, 13, 263), D with and without a column
    tail past whole 16-lane blocks, D past several float stretches (5000), mean 1e4 (x - mh
    exact only near the mean; the low part of the mean must not be lost)."""
    monkeypatch.setenv("NNFAST_NORM_F32SUM", f32sum)
    rng = np.random.default_rng(shape[1])
    x32 = (mean + rng.standard_normal(shape)).astype(np.float32)
    w32, b32 = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    dy32 = rng.standard_normal(shape).astype(np.float32)
    for rms in (False, True):
        for partials in (True, False):
            for w in (w32, None):
                got = _row_bwd(x32, dy32, w, b32, rms, partials)
                want = _row_bwd(x32.astype(np.float64), dy32.astype(np.float64),
                                None if w is None else w.astype(np.float64), b32.astype(np.float64), rms, partials)
                for a, c in zip(got, want):
                    _close64(a, c)
                if f32sum == "1":
                    for nt in (2, 3):
                        other = _threads(nt, lambda: _row_bwd(x32, dy32, w, b32, rms, partials))
                        for a, c in zip(got, other):
                            np.testing.assert_array_equal(a, c)


def _bn_bwd(x, dy, w):
    C = x.shape[1]
    y, mean, rstd = np.empty_like(x), np.empty(C), np.empty(C)
    _C.batch_norm_forward(y, mean, rstd, None, None, x, w, None, True, 0.1, 1e-5)
    dx, dw, db = np.empty_like(x), np.zeros(C, x.dtype), np.zeros(C, x.dtype)
    _C.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, True)
    return y, mean, rstd, dx, dw, db


@pytest.mark.parametrize("f32sum,f32stats", [("1", "0"), ("0", "0"), ("1", "1")])
@pytest.mark.parametrize("shape", [(5, 3, 1), (70, 19, 1), (37, 1031, 1), (2001, 7, 1), (300, 64, 1), (9, 33, 1),
                                   (1023, 2064, 1), (2, 16, 1)])
@pytest.mark.parametrize("mean", [3.0, 1e4])
def test_batch_norm_rows_f32sum(monkeypatch, isa_level, f32sum, f32stats, shape, mean):
    """(N, C) float32 batch norm forward (shifted sums for the statistics) and backward: the column sums over row parts (2001 rows of 7,
    1023 of 2064: several parts, C past one chunk of 1024 columns plus a 16-column block),
    rows in stretches of eight plus a remainder, odd column tails (7, 19, 33, 1031); std 1e-2
    at mean 1e4. The forward's statistics in float lanes only with the opt-in NNFAST_NORM_F32STATS=1
    (default: double, ~1e-12 as test_norm asks). Against the float64 kernels; threads 1 / 2 / 3
    give the same bits."""
    monkeypatch.setenv("NNFAST_NORM_F32SUM", f32sum)
    monkeypatch.setenv("NNFAST_NORM_F32STATS", f32stats)
    rng = np.random.default_rng(shape[1])
    std = 1e-2 if mean > 100 else 2.0
    x32 = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    dy32 = rng.standard_normal(shape).astype(np.float32)
    w32 = (1.0 + rng.random(shape[1])).astype(np.float32)
    got = _bn_bwd(x32, dy32, w32)
    want = _bn_bwd(x32.astype(np.float64), dy32.astype(np.float64), w32.astype(np.float64))
    # the statistics: from float-lane sums (F32STATS=1) the mean to 1e-5 of a std, rstd to 1e-5
    # relative; from double sums as test_norm asks
    stol = 1e-5 if f32stats == "1" else 1e-11
    assert np.abs(got[1] - want[1]).max() <= stol * std + 1e-12 * mean
    assert np.abs(got[2] / want[2] - 1).max() <= stol
    for a, c in zip(got[:1] + got[3:], want[:1] + want[3:]):
        # dx relative to its own scale (at mean 1e4 xhat carries x's float rounding: 1e-3 as in test_norm)
        tol = 1e-3 if mean > 100 else 2e-5
        assert np.abs(a.astype(np.float64) - c).max() <= tol * max(1.0 if mean < 100 else 0.0, float(np.abs(c).max()))
    if f32sum == "1":
        for nt in (2, 3):
            for a, c in zip(got, _threads(nt, lambda: _bn_bwd(x32, dy32, w32))):
                np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("f32sum", ["1", "0"])
def test_f32sum_through_autograd_noncontig(monkeypatch, f32sum):
    """The functional ops on non-contiguous float32 inputs with either setting, against float64."""
    monkeypatch.setenv("NNFAST_NORM_F32SUM", f32sum)
    rng = np.random.default_rng(7)
    x32 = rng.standard_normal((37, 70)).astype(np.float32)
    g = rng.standard_normal((70, 37)).astype(np.float32)
    w = rng.standard_normal(37).astype(np.float32)
    for fn in (lambda t, ww: F.layer_norm(t, 37, ww), lambda t, ww: F.rms_norm(t, 37, ww),
               lambda t, ww: F.batch_norm(t, None, None, ww, None, True)):
        outs = []
        for dt in (np.float32, np.float64):
            xt, wt = leaf(noncontig(x32.T.copy().astype(dt))), leaf(w.astype(dt))
            fn(xt, wt).backward(g.astype(dt))
            outs.append((xt.grad._data, wt.grad._data))
        for a, c in zip(*outs):
            _close64(a, c)


def _row_fwd(x, w, b, rms):
    M = x.shape[0]
    y, mean, rstd = np.empty_like(x), (None if rms else np.empty(M)), np.empty(M)
    _C.layer_norm_forward(y, mean, rstd, x, w, None if rms else b, 1e-5, rms)
    return [v for v in (y, mean, rstd) if v is not None]


@pytest.mark.parametrize("rowstats", ["1", "0"])
@pytest.mark.parametrize("shape", [(1, 37), (7, 1023), (13, 300), (5, 16), (3, 5000), (1, 7), (2, 64)])
@pytest.mark.parametrize("mean,std", [(2.0, 1.0), (1e4, 1.0), (1e4, 1e-2)])
def test_row_norm_forward_rowstats(monkeypatch, isa_level, rowstats, shape, mean, std):
    """layer / RMS norm float32 forward with the row statistics in float lanes (opt-in
    NNFAST_NORM_ROWSTATS=1: plain sums for a first mean, then the shifted sums around it) and in double lanes:
    y to 2e-5 of its scale (1e-4 at std 1e-2 around 1e4, as test_norm's large-mean test), the mean
    to 1e-5 of a std and rstd to 1e-5 relative of the float64 kernels; columns with and without a tail,
    D past one float chunk (5000). Threads 1 / 2 / 3 give the same bits."""
    monkeypatch.setenv("NNFAST_NORM_ROWSTATS", rowstats)
    rng = np.random.default_rng(shape[1] + 1)
    x32 = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    w32, b32 = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    ytol = 1e-4 if std < 0.1 else 2e-5
    for rms in (False, True):
        for w, b in ((w32, b32), (None, None)):
            got = _row_fwd(x32, w, b, rms)
            want = _row_fwd(x32.astype(np.float64), None if w is None else w.astype(np.float64),
                            None if b is None else b.astype(np.float64), rms)
            assert np.abs(got[0] - want[0]).max() <= ytol * max(1.0, float(np.abs(want[0]).max()))
            assert np.abs(got[-1] / want[-1] - 1).max() <= 1e-5
            if not rms:
                assert np.abs(got[1] - want[1]).max() <= 1e-5 * std + 1e-12 * mean
            if rowstats == "1":
                for nt in (2, 3):
                    for a, c in zip(got, _threads(nt, lambda: _row_fwd(x32, w, b, rms))):
                        np.testing.assert_array_equal(a, c)
