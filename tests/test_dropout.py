"""Dropout (counter-based mask in the kernel) and its edge cases.

The mask is a pure function of (seed, offset, element index): splitmix64 over
element pairs. The tests pin that definition with a pure-Python copy, then
check statistics (kept fraction within 3 sigma over 10^6 elements), exact
inverted scaling, eval identity, seeding, the gradient's mask, p = 0 / p = 1,
and that thread count, SIMD level and dtype never change the mask.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F

from helpers import leaf, noncontig

_C = nnfast._C
M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _mask_py(n, p, seed, offset):
    """The kernel's mask, written out: element i keeps when its 32 bits < (1 - p) 2^32."""
    key = _mix64(_mix64((seed + GOLDEN) & M64) ^ ((offset * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & M64))
    keep = min(int(math.ldexp(1.0 - p, 32)), 2**32 - 1)
    out = np.empty(n, dtype=bool)
    for i in range(n):
        h = _mix64((key + (i >> 1) * GOLDEN) & M64)
        out[i] = ((h >> (32 * (i & 1))) & 0xFFFFFFFF) < keep
    return out


def _run(x, p, seed=7, offset=0):
    y = np.empty_like(x)
    _C.dropout_forward(y, x, p, seed, offset)
    return y


@pytest.mark.parametrize("n", (1, 3, 7, 33, 257, 1023))
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_mask_matches_definition(n, dtype, rng):
    x = (rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n)).astype(dtype)  # no zeros: y != 0 <=> kept
    for seed, offset in [(0, 0), (123, 5), (2**40 + 3, 2**33)]:
        y = _run(x, 0.3, seed, offset)
        np.testing.assert_array_equal(y != 0, _mask_py(n, 0.3, seed, offset))


@pytest.mark.parametrize("p", (0.1, 0.5, 0.9))
def test_kept_fraction_and_exact_scaling(p, rng):
    n = 10**6
    x = rng.uniform(0.5, 2.0, n).astype(np.float32)
    y = _run(x, p, seed=11, offset=3)
    kept = y != 0
    frac = kept.mean()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(frac - (1 - p)) < 3 * sigma, (frac, 1 - p, sigma)
    assert np.array_equal(y[kept], x[kept] * np.float32(1.0 / (1.0 - p)))  # exact inverted scaling
    # neighbours are independent: both-kept fraction ~ (1 - p)^2
    both = (kept[:-1] & kept[1:]).mean()
    assert abs(both - (1 - p) ** 2) < 4 * math.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / n)


def test_same_seed_same_mask_and_fresh_masks():
    x = nnfast.ones(4096)
    nnfast.manual_seed(5)
    a1, a2 = F.dropout(x, 0.5)._data, F.dropout(x, 0.5)._data
    nnfast.manual_seed(5)
    b1, b2 = F.dropout(x, 0.5)._data, F.dropout(x, 0.5)._data
    assert np.array_equal(a1, b1) and np.array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # a fresh offset per call
    nnfast.manual_seed(6)
    assert not np.array_equal(F.dropout(x, 0.5)._data, a1)


def test_mask_independent_of_threads_simd_and_dtype(rng):
    x = rng.uniform(0.5, 2.0, 200_003)
    ref = _run(x, 0.4, 9, 1) != 0
    assert np.array_equal(_run(x.astype(np.float32), 0.4, 9, 1) != 0, ref)
    threads, isa = nnfast.get_num_threads(), _C.cpu_isa()
    try:
        for nt in (1, 2, 3):
            nnfast.set_num_threads(nt)
            for level in nnfast.info()["simd_supported"]:
                _C.set_cpu_isa(level)
                assert np.array_equal(_run(x, 0.4, 9, 1) != 0, ref), (nt, level)
    finally:
        nnfast.set_num_threads(threads)
        _C.set_cpu_isa(isa)
    # a chunk starting at an odd index sees the same bits (prefix property)
    assert np.array_equal(_run(x[:1001], 0.4, 9, 1) != 0, ref[:1001])


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_gradient_matches_mask(dtype, rng):
    nnfast.manual_seed(1)
    x = leaf(rng.uniform(0.5, 2.0, (33, 31)).astype(dtype))
    y = F.dropout(x, 0.25)
    g = rng.standard_normal(x.shape).astype(dtype)
    y.backward(g)
    scale = dtype(1.0 / 0.75)
    assert np.array_equal(x.grad._data, np.where(y._data != 0, g * scale, 0))


def test_dropout_gradcheck(rng):
    from nnfast.autograd import gradcheck

    def fn(t):
        nnfast.manual_seed(4)  # the same mask on every evaluation
        return F.dropout(t, 0.3)

    assert gradcheck(fn, (leaf(rng.standard_normal((4, 9))),))


def test_eval_identity_and_edge_probabilities(rng):
    m = nn.Dropout(0.5)
    x = leaf(rng.standard_normal((3, 4)))
    m.eval()
    assert m(x) is x
    m.train()
    assert m(x) is not x
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.7, training=False) is x
    y = F.dropout(x, 1.0)
    assert np.array_equal(y._data, np.zeros((3, 4)))
    y.sum().backward()
    assert np.array_equal(x.grad._data, np.zeros((3, 4)))
    assert "p=0.5" in repr(m)


def test_noncontiguous_and_inplace(rng):
    x = rng.uniform(0.5, 2.0, (6, 10))
    nnfast.manual_seed(2)
    ref = F.dropout(nnfast.from_numpy(x.copy()), 0.5)._data
    nnfast.manual_seed(2)
    assert np.array_equal(F.dropout(nnfast.from_numpy(noncontig(x)), 0.5)._data, ref)
    nnfast.manual_seed(2)
    t = nnfast.from_numpy(x.copy())
    assert F.dropout(t, 0.5, inplace=True) is t and np.array_equal(t._data, ref)
    nnfast.manual_seed(2)
    xl = leaf(x.copy())  # recording autograd: out of place, input untouched
    y = nn.Dropout(0.5, inplace=True)(xl)
    assert np.array_equal(y._data, ref) and np.array_equal(xl._data, x)


def test_bad_arguments():
    x = nnfast.ones(2, 3)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"^\[dropout\] expected"):
            F.dropout(x, p)
        with pytest.raises(ValueError, match=r"^\[Dropout\] expected"):
            nn.Dropout(p)
    with pytest.raises(TypeError, match=r"^\[dropout\] expected"):
        F.dropout(nnfast.from_numpy(np.ones(3, np.float16)))
    with pytest.raises(TypeError, match=r"^\[dropout\] expected"):
        _C.dropout_forward(np.ones(3, np.float32), np.ones(3, np.float64), 0.5, 0, 0)
    with pytest.raises(ValueError, match=r"^\[dropout\] expected"):
        _C.dropout_forward(np.ones(3, np.float32), np.ones(3, np.float32), 2.0, 0, 0)


def _mask_np(n, p, seed, offset, first=0):
    """_mask_py vectorised (uint64 arithmetic wraps as the kernel's does), for big n."""
    key = _mix64(_mix64((seed + GOLDEN) & M64) ^ ((offset * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & M64))
    keep = min(int(math.ldexp(1.0 - p, 32)), 2**32 - 1)
    i = np.arange(first, first + n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (i >> np.uint64(1)) * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    bits = (z >> (np.uint64(32) * (i & np.uint64(1)))) & np.uint64(0xFFFFFFFF)
    return bits < np.uint64(keep)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("threads", (1, 2))
def test_big_streamed_mask_bits(dtype, threads):
    """Outputs above 16 MB take the streamed loop (NNFAST_DROPOUT_FAST): the same mask and
    values as the definition, from odd starts (`first`), a misaligned output, in place."""
    n = (17 << 20) // np.dtype(dtype).itemsize + 7
    x = np.random.default_rng(5).uniform(0.5, 2.0, n + 1).astype(dtype)
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(threads)
    try:
        for first, shift in [(0, 0), (3, 1), (1023, 0)]:
            src = x[shift:shift + n]
            buf = np.empty(n + 1, dtype)
            y = buf[1 - shift:1 - shift + n]  # shift 0: one element past buf's start
            _C.dropout_forward(y, src, 0.3, 99, 4, first)
            kept = _mask_np(n, 0.3, 99, 4, first)
            np.testing.assert_array_equal(y != 0, kept)
            assert np.array_equal(y[kept], src[kept] * dtype(1.0 / 0.7))
        z = x[:n].copy()
        _C.dropout_backward(z, z, 0.3, 99, 4)  # in place
        np.testing.assert_array_equal(z != 0, _mask_np(n, 0.3, 99, 4))
    finally:
        nnfast.set_num_threads(old)
