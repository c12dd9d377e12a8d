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


def _adam_run(steps, set_to_none):
    """The MLP's parameters after `steps` Adam steps, zero_grad(set_to_none) before each."""
    m = _mlp()
    opt = nnfast.optim.Adam(m.parameters(), lr=1e-2)
    x, y = _batch()
    for _ in range(steps):
        opt.zero_grad(set_to_none=set_to_none)
        F.cross_entropy(m(x), y).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in m.parameters()]


def test_zero_grad_keep_buffers_then_step_matches_fresh_buffers():
    for a, b in zip(_adam_run(5, True), _adam_run(5, False)):
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


# ---------------------------------------------------------------- zero_grad(set_to_none=False)
@pytest.fixture
def fused_zero():
    """Sets the NNFAST_FUSED_ZERO switch for a test (``fused_zero(False)``: the fill one by one)."""
    from nnfast.nn import module

    saved = module._FUSED_ZERO[0]
    yield lambda on: module._FUSED_ZERO.__setitem__(0, on)
    module._FUSED_ZERO[0] = saved


def _filled_params(fill=np.nan):
    """Params of odd sizes (the large ones split across threads: 1 MiB a thread), float32 and float64, whose grads
    hold ``fill`` (a missed element stays non-zero), plus one non-contiguous grad."""
    rng = np.random.default_rng(5)
    ps = []
    for n, dt in [(1, np.float32), (7, np.float64), (1023, np.float32), (600001, np.float32), (300001, np.float64)]:
        p = nn.Parameter(rng.standard_normal(n).astype(dt))
        p.grad = nnfast.from_numpy(np.full(n, fill, dt))
        ps.append(p)
    q = nn.Parameter(np.ones((3, 5), np.float32))
    q.grad = nnfast.from_numpy(np.full((5, 3), fill, np.float32).T)  # a transposed view
    return ps + [q]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("fill", [np.nan, -np.inf, -1.5])
@pytest.mark.parametrize("owner", ["optimizer", "module"])
def test_zero_grad_in_place_clears_every_grad_and_keeps_the_buffers(fused, fill, owner, fused_zero):
    fused_zero(fused)
    ps = _filled_params(fill)
    buffers = [p.grad._data for p in ps]
    if owner == "optimizer":
        nnfast.optim.SGD(ps, lr=0.1).zero_grad(set_to_none=False)
    else:
        m = nn.Module()
        for i, p in enumerate(ps):
            m.register_parameter(f"p{i}", p)
        m.zero_grad(set_to_none=False)
    for p, buf in zip(ps, buffers):
        assert p.grad._data is buf
        assert not buf.any() and not np.signbit(buf).any(), "zero_grad left a non-zero (or -0.0) element"


def test_zero_grad_in_place_with_aliased_grads_falls_back():
    # Two grads sharing memory: the multi-tensor kernel refuses the list; each is still cleared.
    base = np.full(10, 3.0, np.float32)
    a, b = nn.Parameter(np.ones(6, np.float32)), nn.Parameter(np.ones(6, np.float32))
    a.grad, b.grad = nnfast.from_numpy(base[:6]), nnfast.from_numpy(base[4:])
    nnfast.optim.SGD([a, b], lr=0.1).zero_grad(set_to_none=False)
    assert not base.any()


def test_multi_tensor_zero_rejects_bad_input():
    with pytest.raises(TypeError, match=r"\[multi_tensor_zero\] expected"):
        nnfast._C.multi_tensor_zero([np.ones(3, np.int32)])
    ro = np.ones(3, np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match=r"\[multi_tensor_zero\] expected"):
        nnfast._C.multi_tensor_zero([ro])


def test_fused_zero_training_run_matches_the_fill_one_by_one_bitwise(fused_zero):
    runs = []
    for fused in (True, False):
        fused_zero(fused)
        runs.append(_adam_run(4, False))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
