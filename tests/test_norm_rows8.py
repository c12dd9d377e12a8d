"""Batch norm column sums 8 rows per pass (NNFAST_NORM_ROWS8, issue 18): each column still adds
its rows in order 0..N-1, so switch on and off give the same bits, for (N, C) and grouped
(N, C, L) inputs, float32 and float64, every ISA, threads 1 / 2 / 3; row counts below, at and
past multiples of 8 and 4 (1, 7, 9, 12, 1023), a non-contiguous input."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast

_C = nnfast._C


def _bn(x, dy, w, b, threads):
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(threads)
    try:
        C = x.shape[1]
        y, mean, rstd = np.empty(x.shape, x.dtype), np.empty(C), np.empty(C)
        _C.batch_norm_forward(y, mean, rstd, None, None, x, w, b, True, 0.1, 1e-5)
        dx, dw, db = np.empty(x.shape, x.dtype), np.zeros(C, x.dtype), np.zeros(C, x.dtype)
        _C.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, True)
        return y, mean, rstd, dx, dw, db
    finally:
        nnfast.set_num_threads(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 7, 1), (7, 33, 1), (9, 1031, 1), (12, 16, 1), (1023, 70, 1), (2001, 7, 1),
                                   (40, 64, 49), (9, 5, 7), (1, 3, 5)])
def test_batch_norm_rows8_same_bits(monkeypatch, isa_level, dtype, shape):
    rng = np.random.default_rng(shape[0] + shape[1])
    x = (3.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = (1.0 + rng.random(shape[1])).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    monkeypatch.setenv("NNFAST_NORM_ROWS8", "0")
    ref = _bn(x, dy, w, b, 1)
    # the statistics against float64 (the 4-row pass is the tested reference path)
    x64 = x.astype(np.float64)
    ax = (0, 2)
    assert np.abs(ref[1] - x64.mean(axis=ax)).max() <= 1e-6 * 2.0
    monkeypatch.setenv("NNFAST_NORM_ROWS8", "1")
    for nt in (1, 2, 3):
        got = _bn(x, dy, w, b, nt)
        for a, c in zip(got, ref):
            np.testing.assert_array_equal(a, c)


def test_batch_norm_rows8_noncontig(monkeypatch):
    rng = np.random.default_rng(5)
    base = (1.0 + rng.standard_normal((300, 2 * 37))).astype(np.float32)
    x = base[:, ::2]  # strided columns
    xc = np.ascontiguousarray(x)
    gamma = np.ones(37, np.float32)
    outs = []
    for on in ("0", "1"):
        monkeypatch.setenv("NNFAST_NORM_ROWS8", on)
        t = nnfast.tensor(x) if hasattr(nnfast, "tensor") else None
        if t is None:
            pytest.skip("no nnfast.tensor")
        import nnfast.nn.functional as F
        y = F.batch_norm(t, None, None, nnfast.tensor(gamma), None, training=True)
        outs.append(np.asarray(y.numpy() if hasattr(y, "numpy") else y))
    np.testing.assert_array_equal(outs[0], outs[1])
    monkeypatch.setenv("NNFAST_NORM_ROWS8", "1")
    y = F.batch_norm(nnfast.tensor(xc), None, None, nnfast.tensor(gamma), None, training=True)
    np.testing.assert_array_equal(outs[1], np.asarray(y.numpy() if hasattr(y, "numpy") else y))
