"""The training step's Python glue (issue 18): the shortcuts it takes must not change what a step
computes. Linear reads its parameters without Module.__getattr__ (a reparametrized weight is still
read), cross_entropy's fast path runs ahead of autocast's wrapper (what the wrapper must see still
reaches it), and the backward sweep still copies an array handed to two inputs."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd import Function
from nnfast.nn.functional import _loss


def test_cross_entropy_fast_path_runs_ahead_of_autocasts_wrapper(monkeypatch):
    calls = []
    real = _loss._cross_entropy_checked
    monkeypatch.setattr(_loss, "_cross_entropy_checked",
                        lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    t = rng.integers(0, 5, 7)
    xt = nnfast.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, nnfast.tensor(t))
    loss.backward()
    assert calls == []  # the plain float32 call never reached the wrapper
    z = x.astype(np.float64) - x.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    np.testing.assert_allclose(loss.item(), -logp[np.arange(7), t].mean(), rtol=1e-6)
    want = np.exp(logp)
    want[np.arange(7), t] -= 1
    np.testing.assert_allclose(xt.grad.numpy(), want / 7, rtol=1e-5, atol=1e-7)
    xb = nnfast.tensor(x).to(nnfast.bfloat16)
    lb = F.cross_entropy(xb, nnfast.tensor(t))  # bfloat16 logits: the kernel rejects them, the wrapper routes them
    assert calls == [1] and np.isfinite(lb.float().item())
    with nnfast.autocast("cpu", dtype=nnfast.bfloat16):
        F.cross_entropy(nnfast.tensor(x), nnfast.tensor(t))
    assert calls == [1, 1]
    with pytest.raises(ValueError, match=r"^\[cross_entropy\] expected"):
        F.cross_entropy(nnfast.tensor(x), nnfast.tensor(np.array([0, 1, 2, 3, 4, 5, 9])))
    assert len(calls) == 3


def test_linear_reads_a_reparametrized_weight():
    lin = nn.Linear(6, 4)
    x = nnfast.randn(3, 6)
    nn.utils.weight_norm(lin)
    with nnfast.no_grad():
        lin.weight_g.mul_(2.0)  # the computed weight changes; the stale Parameter is gone
    y = lin(x)
    assert "weight" not in lin._parameters
    want = F.linear(x, lin.weight, lin.bias)
    np.testing.assert_array_equal(y.detach().numpy(), want.detach().numpy())
    nobias = nn.Linear(6, 4, bias=False)
    np.testing.assert_array_equal(nobias(x).detach().numpy(), (x.numpy() @ nobias.weight.detach().numpy().T))


class _Twice(Function):
    """y = x1 + x2, backward hands the same array to both inputs."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        r = g * 1.0  # one fresh array, for both inputs
        return r, r


class _PassThrough(_Twice):
    @staticmethod
    def backward(ctx, g):
        return g, None  # the incoming array itself


@pytest.mark.parametrize("fn", [_Twice, _PassThrough])
def test_sweep_copies_an_array_handed_on_twice(fn):
    a = nnfast.ones(3, requires_grad=True)
    b = nnfast.ones(3, requires_grad=True)
    u = fn.apply(a, b)
    g = nnfast.full((3,), 2.0)
    u.backward(g)
    assert not np.shares_memory(a.grad.numpy(), g.numpy())
    if fn is _Twice:
        assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
        a.grad.numpy()[...] += 1.0  # accumulating into one must not change the other
        np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0, 2.0])


def test_sweep_sums_three_consumers_as_before():
    rng = np.random.default_rng(1)
    x = nnfast.tensor(rng.standard_normal(5), requires_grad=True)
    h = x * 3.0
    (h * 2.0 + h * h + h.exp()).sum().backward()
    hv = 3.0 * x.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * (2.0 + 2.0 * hv + np.exp(hv)), rtol=1e-6)
