"""F.linear_cross_entropy's kept-logits path: on the CPU, when a gradient will be asked for and the
(N, C) logits are small, the forward keeps them and the backward reads them instead of recomputing
them. Same bits as recomputing (every ISA, odd sizes, several class chunks, non-contiguous input),
float64 gradcheck through it, repeatable backward (retain_graph), and the switch
NNFAST_LINEAR_CE_KEEP=0."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
import nnfast.nn.functional._loss as L
from nnfast import _C
from nnfast.autograd import gradcheck

from helpers import noncontig

# (N, H, C, chunk): one tile, odd sizes, several class chunks (the kept logits' row stride is C, not the chunk)
SHAPES = [(1, 1, 1, 4096), (7, 5, 3, 4096), (1023, 128, 70, 4096), (33, 17, 300, 128), (64, 16, 70, 16)]


def _run(N, H, C, chunk, dtype, keep, *, bias=True, smoothing=0.0, red="mean", strided=False, seed=0):
    """Loss and gradients (x, W, b) with the kept-logits path on or off."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, H)).astype(dtype)
    W = (0.5 * rng.standard_normal((C, H))).astype(dtype)
    b = rng.standard_normal(C).astype(dtype) if bias else None
    t = rng.integers(0, C, N)
    if N > 2:
        t[1] = -100  # an ignored row
    xt = nnfast.from_numpy(noncontig(x) if strided else x).requires_grad_()
    Wt = nnfast.from_numpy(W).requires_grad_()
    bt = nnfast.from_numpy(b).requires_grad_() if bias else None
    old = L._KEEP_LOGITS
    L._KEEP_LOGITS = keep
    try:
        out = F.linear_cross_entropy(xt, Wt, bt, nnfast.tensor(t), reduction=red, label_smoothing=smoothing,
                                     chunk_size=chunk)
        kept = out.grad_fn.saved_tensors[-1] is not None
        (out.sum() if red == "none" else out).backward()
    finally:
        L._KEEP_LOGITS = old
    assert kept == keep
    return [out.detach().numpy(), xt.grad.numpy(), Wt.grad.numpy()] + ([bt.grad.numpy()] if bias else [])


def _same_bits(N, H, C, chunk, dtype, **kw):
    new, old = _run(N, H, C, chunk, dtype, True, **kw), _run(N, H, C, chunk, dtype, False, **kw)
    for a, b in zip(new, old):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), (N, H, C, chunk, dtype, kw)
    return new


def _reference(N, H, C, seed=0):
    """float64 loss and dx of _run's problem (mean, no smoothing, bias), straight from the formula."""
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((N, H)), 0.5 * rng.standard_normal((C, H)), rng.standard_normal(C)
    t = rng.integers(0, C, N)
    if N > 2:
        t[1] = -100
    z = x @ W.T + b
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    live = t != -100
    loss = -np.log(p[live, t[live]]).mean()
    p[live, t[live]] -= 1.0
    p[~live] = 0.0
    return loss, p @ W / live.sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,H,C,chunk", SHAPES)
def test_kept_logits_same_bits_as_recomputed(N, H, C, chunk, dtype):
    out = _same_bits(N, H, C, chunk, dtype)
    loss, dx = _reference(N, H, C)  # and both right
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out[0], loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(out[1], dx, rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("kw", [dict(bias=False), dict(smoothing=0.1), dict(red="sum"), dict(red="none"),
                                dict(strided=True), dict(smoothing=0.2, red="none", strided=True, bias=False)])
def test_kept_logits_same_bits_options(kw):
    for N, H, C, chunk in SHAPES[1:]:
        _same_bits(N, H, C, chunk, np.float32, **kw)


def test_kept_logits_gradcheck_float64():
    rng = np.random.default_rng(3)
    x = nnfast.from_numpy(rng.standard_normal((6, 5))).requires_grad_()
    W = nnfast.from_numpy(rng.standard_normal((7, 5))).requires_grad_()
    b = nnfast.from_numpy(rng.standard_normal(7)).requires_grad_()
    t = nnfast.tensor(np.array([0, 6, -100, 3, 3, 1]))
    assert L._KEEP_LOGITS
    for chunk in (4096, 3):
        fn = lambda x, W, b: F.linear_cross_entropy(x, W, b, t, label_smoothing=0.1, chunk_size=chunk)  # noqa: E731
        assert fn(x, W, b).grad_fn.saved_tensors[-1] is not None  # the kept path is what is checked
        assert gradcheck(fn, (x, W, b))


def test_kept_logits_backward_twice_and_no_grad():
    rng = np.random.default_rng(4)
    x = nnfast.from_numpy(rng.standard_normal((9, 4)).astype(np.float32)).requires_grad_()
    W = nnfast.from_numpy(rng.standard_normal((5, 4)).astype(np.float32)).requires_grad_()
    t = nnfast.tensor(rng.integers(0, 5, 9))
    out = F.linear_cross_entropy(x, W, None, t)
    out.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    x.grad = None
    out.backward()  # the kept logits are read, never overwritten: the same gradient again
    assert np.array_equal(g1, x.grad.numpy())
    with nnfast.no_grad():
        assert F.linear_cross_entropy(x, W, None, t).grad_fn is None
    # nothing needs a gradient: nothing kept (no node either)
    assert F.linear_cross_entropy(x.detach(), W.detach(), None, t).grad_fn is None


def test_kept_logits_binding_checks():
    x = np.ones((3, 4), np.float32)
    W = np.ones((5, 4), np.float32)
    t = np.zeros(3, np.int64)
    loss, lse = np.empty(1, np.float32), np.empty(3, np.float32)
    with pytest.raises(ValueError, match=r"\[linear_cross_entropy\] expected logits"):
        _C.linear_cross_entropy(loss, lse, x, W, None, t, -100, 0.0, 1, 4096, logits=np.empty((3, 4), np.float32))
    with pytest.raises(TypeError, match=r"\[linear_cross_entropy\] expected logits"):
        _C.linear_cross_entropy(loss, lse, x, W, None, t, -100, 0.0, 1, 4096, logits=np.empty((3, 5), np.float64))
    with pytest.raises(ValueError, match=r"\[linear_cross_entropy\] expected logits"):
        _C.linear_cross_entropy(loss, lse, x, W, None, t, -100, 0.0, 1, 4096, logits=np.empty((5, 3), np.float32).T)
    z = np.empty((3, 5), np.float32)
    _C.linear_cross_entropy(loss, lse, x, W, None, t, -100, 0.0, 1, 4096, logits=z)
    assert np.array_equal(z, np.full((3, 5), 4.0, np.float32))
    dx = np.empty((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"\[linear_cross_entropy_backward\] expected logits"):
        _C.linear_cross_entropy_backward(dx, None, None, 1.0, lse, x, W, None, t, -100, 0.0, 1, 4096,
                                         logits=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[linear_cross_entropy_backward\] expected logits not to share"):
        _C.linear_cross_entropy_backward(z.reshape(-1)[:12].reshape(3, 4), None, None, 1.0, lse, x, W, None, t,
                                         -100, 0.0, 1, 4096, logits=z)


_CHILD = r"""
import sys, numpy as np
sys.path[:0] = sys.argv[3:]
import test_linear_cross_entropy as m
import nnfast.nn.functional._loss as L
from nnfast import _C
assert _C.cpu_isa() == sys.argv[1], (_C.cpu_isa(), sys.argv[1])
assert L._KEEP_LOGITS == (sys.argv[2] == "1")
for dt in (np.float32, np.float64):
    for N, H, C, chunk in m.SHAPES:
        m._same_bits(N, H, C, chunk, dt, smoothing=0.1, strided=True)
print("ok")
"""


def _cpu_has(isa: str) -> bool:
    return bool(_C.cpu_isa_supported(isa)) if hasattr(_C, "cpu_isa_supported") else isa == "generic"


@pytest.mark.parametrize("keep", ["1", "0"])
@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_isa_and_switch_subprocess(isa, keep):
    if not _cpu_has(isa):
        pytest.skip(f"CPU lacks {isa}")
    env = dict(os.environ, NNFAST_ISA=isa, NNFAST_LINEAR_CE_KEEP=keep)
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", _CHILD, isa, keep, here] + [p for p in sys.path if p], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
