"""The attention kernel's AVX-512 register blocking of its small tile products (heads up to 64 wide):
taller row blocks (NNFAST_ATTN_TALL_R) and 4-vector column slices of the 128-key products
(NNFAST_ATTN_SLICES). Both are read per call and keep every element's sum order, so the bits must equal
the previous blocking's; and the float32 kernel against a float64 reference (forward and gradients)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F

SWITCHES = ("NNFAST_ATTN_TALL_R", "NNFAST_ATTN_SLICES")


def _run(q, k, v, causal, g_seed=99):
    ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ts, is_causal=causal)
    g = np.random.default_rng(g_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(nnfast.tensor(g))
    return [out.detach().numpy()] + [t.grad.numpy() for t in ts]


def _cases(dt):
    r = np.random.default_rng(0)
    # head dims 1 / 7 / 16 / 32 / 64 (1, 2 and 4 vectors: the tall blocks), keys 1 / 7 / 129 / 1023
    # (whole 128-key tiles take the slices), queries not a multiple of any row block
    for (L, S, D, Dv) in [(1, 1, 1, 1), (7, 7, 7, 5), (64, 64, 16, 16), (33, 64, 32, 32), (130, 129, 64, 64),
                          (9, 1023, 64, 32), (257, 257, 48, 64)]:
        for causal in (False, True):
            yield [r.standard_normal(s).astype(dt) for s in ((2, 3, L, D), (2, 3, S, D), (2, 3, S, Dv))], causal


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("switch", SWITCHES)
def test_same_bits_as_the_previous_blocking(monkeypatch, dt, switch):
    for args, causal in _cases(dt):
        res = []
        for flag in ("0", "1"):
            monkeypatch.setenv(switch, flag)
            res.append(_run(*args, causal))
        for a, b in zip(*res):
            assert np.array_equal(a, b), (switch, a.shape, causal, dt)


@pytest.mark.parametrize("switch", SWITCHES)
def test_same_bits_non_contiguous(monkeypatch, switch):
    """Strided per-head views (rows of 3E, as packed_self_attention's) and a transposed layout."""
    r = np.random.default_rng(5)
    for H, D in [(4, 32), (2, 64), (3, 16)]:
        x = r.standard_normal((2, 200, 3 * H * D)).astype(np.float32)
        res = []
        for flag in ("0", "1"):
            monkeypatch.setenv(switch, flag)
            t = nnfast.tensor(x, requires_grad=True)
            out = F.packed_self_attention(t, H, is_causal=True)
            out.backward(nnfast.tensor(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)))
            res.append([out.detach().numpy(), t.grad.numpy()])
        for a, b in zip(*res):
            assert np.array_equal(a, b), (switch, H, D)
    q, k, v = (r.standard_normal((2, 150, 3, 64)).astype(np.float32) for _ in range(3))
    res = []
    for flag in ("0", "1"):
        monkeypatch.setenv(switch, flag)
        ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*[t.transpose(1, 2) for t in ts], is_causal=True)
        out.sum().backward()
        res.append([out.detach().numpy()] + [t.grad.numpy() for t in ts])
    for a, b in zip(*res):
        assert np.array_equal(a, b), switch


def _ref64(q, k, v, g, causal):
    """float64 forward and gradients of softmax(q k^T / sqrt(E)) v."""
    q, k, v, g = (a.astype(np.float64) for a in (q, k, v, g))
    s = 1.0 / math.sqrt(q.shape[-1])
    sc = q @ np.swapaxes(k, -1, -2) * s
    if causal:
        sc = np.where(np.tril(np.ones(sc.shape[-2:], dtype=bool)), sc, -np.inf)
    p = np.exp(sc - sc.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = p @ v
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (g * o).sum(-1, keepdims=True))
    return o, ds @ k * s, np.swapaxes(ds, -1, -2) @ q * s, np.swapaxes(p, -1, -2) @ g


@pytest.mark.parametrize("L,D", [(257, 64), (130, 32), (64, 16), (7, 64)])
@pytest.mark.parametrize("causal", [False, True])
def test_float32_against_float64(L, D, causal):
    """Bound: |err| <= 1e-5 * (1 + |ref|) elementwise, the float32 products' rounding over <= 257 terms
    of unit-variance data (about 10x the largest error seen, 1e-6 at AVX-512; a dropped term breaks it)."""
    r = np.random.default_rng(L + D)
    q, k, v, g = (r.standard_normal((2, 3, L, D)).astype(np.float32) for _ in range(4))
    ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ts, is_causal=causal)
    out.backward(nnfast.tensor(g))
    got = [out.detach().numpy()] + [t.grad.numpy() for t in ts]
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, _ref64(q, k, v, g, causal)):
        err = np.abs(a - b) / (1 + np.abs(b))
        assert err.max() <= 1e-5, (name, float(err.max()))
