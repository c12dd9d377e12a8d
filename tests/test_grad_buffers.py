"""Gradient buffers are reused: Linear adds dW / db straight into an existing
``.grad`` (GEMM with beta = 1) and cross-entropy hands its saved gradient to
``loss.backward()`` without a copy. Results must equal the unfused path."""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd.function import ACCUMULATED


def _mlp(dtype=np.float32):
    nnfast.manual_seed(3)
    m = nn.Sequential(nn.Linear(7, 33, activation="relu"), nn.Linear(33, 5))
    if dtype == np.float64:
        m = m.double()
    return m


def _batch(dtype=np.float32):
    rng = np.random.default_rng(0)
    return nnfast.tensor(rng.standard_normal((9, 7)).astype(dtype)), nnfast.tensor(rng.integers(0, 5, 9))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_accumulates_into_existing_grad_in_place(dtype):
    m = _mlp(dtype)
    x, y = _batch(dtype)
    F.cross_entropy(m(x), y).backward()
    first = {n: p.grad.numpy().copy() for n, p in m.named_parameters()}
    buffers = {n: p.grad._data for n, p in m.named_parameters()}
    F.cross_entropy(m(x), y).backward()
    for n, p in m.named_parameters():
        assert p.grad._data is buffers[n], f"{n}: gradient buffer was replaced"
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(p.grad.numpy(), 2 * first[n], rtol=tol, atol=tol)


def test_zero_grad_keep_buffers_then_step_matches_fresh_buffers():
    runs = []
    for set_to_none in (True, False):
        m = _mlp()
        opt = nnfast.optim.Adam(m.parameters(), lr=1e-2)
        x, y = _batch()
        for _ in range(5):
            opt.zero_grad(set_to_none=set_to_none)
            F.cross_entropy(m(x), y).backward()
            opt.step()
        runs.append([p.detach().numpy().copy() for p in m.parameters()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_hooks_see_the_gradient_alone():
    m = _mlp()
    x, y = _batch()
    F.cross_entropy(m(x), y).backward()
    w = m[0].weight
    seen = []
    w.register_hook(lambda g: seen.append(g.numpy().copy()))
    before = w.grad.numpy().copy()
    F.cross_entropy(m(x), y).backward()
    assert len(seen) == 1
    np.testing.assert_allclose(w.grad.numpy(), before + seen[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(seen[0], before, rtol=1e-6, atol=1e-7)


def test_read_only_or_foreign_grad_is_not_written_in_place():
    m = _mlp()
    x, y = _batch()
    F.cross_entropy(m(x), y).backward()
    w = m[0].weight
    frozen = w.grad.numpy().copy()
    frozen.setflags(write=False)
    w.grad = nnfast.from_numpy(frozen)
    with pytest.raises(ValueError):
        # Accumulating into a read-only user array must not silently write it.
        F.cross_entropy(m(x), y).backward()
    np.testing.assert_array_equal(w.grad.numpy(), frozen)


def test_grad_buffer_rules():
    m = _mlp()
    x, y = _batch()
    out = m(x)
    node = out.grad_fn
    assert node.grad_buffer(0) is None  # non-leaf input
    assert node.grad_buffer(1) is None  # no .grad yet
    assert repr(ACCUMULATED) == "ACCUMULATED"


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_hands_over_saved_gradient_and_retain_graph_is_safe(reduction):
    rng = np.random.default_rng(1)
    z64 = rng.standard_normal((6, 4))
    t = rng.integers(0, 4, 6)
    z = nnfast.tensor(z64, requires_grad=True)
    loss = F.cross_entropy(z, nnfast.tensor(t), reduction=reduction)
    loss.backward(retain_graph=True)
    g1 = z.grad.numpy().copy()
    loss.backward(retain_graph=True)
    loss.backward()
    p = np.exp(z64 - z64.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(6), t] -= 1
    ref = p / 6 if reduction == "mean" else p
    np.testing.assert_allclose(g1, ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(z.grad.numpy(), 3 * ref, rtol=1e-12, atol=1e-14)


def test_cross_entropy_non_unit_upstream_gradient_is_scaled():
    rng = np.random.default_rng(2)
    z = nnfast.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    t = nnfast.tensor(rng.integers(0, 3, 5))
    (F.cross_entropy(z, t) * 2.5).backward()
    g = z.grad.numpy().copy()
    z.grad = None
    F.cross_entropy(z, t).backward()
    np.testing.assert_allclose(g, 2.5 * z.grad.numpy(), rtol=1e-13)
