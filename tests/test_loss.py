"""Loss family: one table row per (loss, options); each row runs the forward
against a float64 NumPy formula, float64 gradcheck on the real kernels for
every differentiable input, non-contiguous inputs, and float32 vs float64."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck

from helpers import assert_close, noncontig
from opinfo import (LOSS_CASES, _bce, _bce_logits, _huber, _kl, _smooth_l1, log_softmax, ref_cross_entropy,
                    ref_cross_entropy_prob, ref_nll)

try:  # optional oracle
    import torch
except ImportError:  # pragma: no cover - torch is not a dependency
    torch = None

REDS = ("mean", "sum", "none")

# Under LD_PRELOAD=libasan.so alone, a C++ exception thrown by a binding aborts in ASan's
# __cxa_throw interceptor (it never found libstdc++'s); preloading libstdc++.so too fixes it.
_CXX_THROW_BROKEN = os.environ.get("NNFAST_SANITIZER_BUILD") == "1" and "libstdc++" not in os.environ.get(
    "LD_PRELOAD", "")
cxx_throw = pytest.mark.skipif(_CXX_THROW_BROKEN, reason="C++ exceptions abort under LD_PRELOAD=libasan.so "
                               "without libstdc++.so (add it to LD_PRELOAD)")


# The table (LOSS_CASES: one row per (loss, options), forward vs float64, gradcheck, non-contiguous,
# float32 vs float64) lives in the registry (tests/opinfo.py) and runs from tests/test_ops.py;
# here: the PyTorch oracle over the same rows and what is not table material.
CASES = LOSS_CASES
IDS = [c.id for c in CASES]


def _tensors(case, dtype=np.float64, nc=False, grad=True):
    ts = {}
    for k, a in case.arrays.items():
        v = a.astype(dtype) if a.dtype.kind == "f" else a.copy()
        if nc and v.ndim >= 1:
            v = noncontig(v) if v.dtype.kind == "f" else np.repeat(v, 2, axis=-1)[..., ::2]
        ts[k] = nnfast.from_numpy(v)
        if grad and k in case.grads:
            ts[k].requires_grad_(True)
    return ts


def _grads(case, ts):
    out = case.call(**ts)
    (out * nnfast.from_numpy(np.linspace(0.5, 1.5, max(1, out.numel())).reshape(out.shape).astype(out.dtype))).sum().backward()
    return out, {k: ts[k].grad.numpy().copy() for k in case.grads}


# ---------------------------------------------------------------------------------------- table tests
@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("case", [c for c in CASES if c.torch_call is not None],
                         ids=[c.id for c in CASES if c.torch_call is not None])
def test_matches_torch(case):  # pragma: no cover - needs torch
    tt = {k: torch.from_numpy(a.copy()).requires_grad_(k in case.grads) for k, a in case.arrays.items()}
    tout = case.torch_call(**tt)
    ts = _tensors(case)
    out = case.call(**ts)
    assert_close(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.linspace(0.5, 1.5, max(1, out.numel())).reshape(out.shape)
    (tout * torch.from_numpy(w)).sum().backward()
    (out * nnfast.from_numpy(w)).sum().backward()
    for k in case.grads:
        assert_close(ts[k].grad, tt[k].grad.numpy(), rtol=1e-9, atol=1e-12, msg=k)


# ---------------------------------------------------------------------------------------- cross-entropy specifics
@pytest.mark.parametrize("N,C", [(1, 1023), (33, 257), (33, 1023), (7, 1), (300, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_sizes(N, C, dtype):
    rng = np.random.default_rng(N * 7 + C)
    x = rng.standard_normal((N, C)) * 4
    t = rng.integers(0, C, N)
    w = rng.uniform(0.5, 1.5, C)
    for red, ls in (("mean", 0.0), ("sum", 0.1), ("none", 0.0)):
        xt = nnfast.from_numpy(x.astype(dtype)).requires_grad_()
        out = F.cross_entropy(xt, nnfast.tensor(t), weight=nnfast.from_numpy(w.astype(dtype)), reduction=red,
                              label_smoothing=ls)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert_close(out, ref_cross_entropy(x, t, w, reduction=red, label_smoothing=ls), rtol=tol, atol=tol)
        out.sum().backward()
        # analytic reference gradient
        logp = log_softmax(x, 1)
        p = np.exp(logp)
        onehot = np.eye(C)[t]
        g = (1 - ls) * w[t][:, None] * (p - onehot) + ls / C * (w.sum() * p - w[None, :])
        if red == "mean":
            g = g / w[t].sum()
        assert_close(xt.grad, g, rtol=tol * 10, atol=tol)


def test_cross_entropy_extreme_logits_are_stable():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4 + 1], [3e38, -3e38, 0.0]], dtype=np.float32)
    t = np.array([0, 2, 0])
    for dtype in (np.float32, np.float64):
        xt = nnfast.from_numpy(x.astype(dtype)).requires_grad_()
        out = F.cross_entropy(xt, nnfast.tensor(t), reduction="none")
        assert_close(out, [0.0, np.log(1 + 2 * np.exp(-1.0)), 0.0], rtol=1e-5, atol=1e-6)
        out.sum().backward()
        assert np.all(np.isfinite(xt.grad.numpy()))


def test_cross_entropy_masked_and_underflowing_logits():
    # -inf (masked) classes and x - max past exp's underflow (float32 -87.3, float64 -708.4):
    # exactly 0 gradient there, the rest as the float64 softmax.
    for dtype, big in ((np.float32, 87.3365), (np.float64, 708.3964)):
        x = np.array([[0.0, -np.inf, -1.0, -big + 0.01, -big - 0.01, -big - 20.0, -1e30]] * 2 + [[-np.inf] * 6 + [0.0]],
                     dtype=dtype)
        t = np.array([0, 2, 6])
        xt = nnfast.from_numpy(x).requires_grad_()
        out = F.cross_entropy(xt, nnfast.tensor(t), reduction="sum")
        out.backward()
        x64 = x.astype(np.float64)
        p = np.exp(x64 - x64.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        ref = -np.log(p[np.arange(3), t]).sum()
        g = p.copy()
        g[np.arange(3), t] -= 1
        assert_close(out, ref, rtol=1e-6, atol=1e-7)
        grad = xt.grad.numpy()
        assert_close(grad, g, rtol=1e-6, atol=np.finfo(dtype).tiny)
        assert np.all(grad[:, 1] == 0) and np.all(grad[:, 4:6][:2] == 0) and np.all(grad[2, :6] == 0)


def test_cross_entropy_all_ignored_is_nan_with_zero_grad():
    x = nnfast.randn(4, 3, dtype=nnfast.float64, requires_grad=True)
    t = nnfast.tensor([-100, -100, -100, -100])
    out = F.cross_entropy(x, t)
    assert np.isnan(out.item())  # PyTorch: 0 / 0
    out.backward()
    assert np.all(x.grad.numpy() == 0)
    assert F.cross_entropy(x.detach(), t, reduction="sum").item() == 0.0
    assert np.all(F.cross_entropy(x.detach(), t, reduction="none").numpy() == 0)


def test_cross_entropy_custom_ignore_index_and_module():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4))
    t = np.array([0, 3, 1, 2, 3, 1])
    w = rng.uniform(0.5, 2, 4)
    m = nn.CrossEntropyLoss(weight=nnfast.from_numpy(w), ignore_index=3, label_smoothing=0.1)
    assert "weight" in dict(m.named_buffers())
    assert_close(m(nnfast.from_numpy(x), nnfast.tensor(t)),
                 ref_cross_entropy(x, t, w, ignore_index=3, label_smoothing=0.1), rtol=1e-12)


def test_cross_entropy_backward_is_scaled_saved_gradient():
    x = nnfast.randn(5, 4, dtype=nnfast.float64, requires_grad=True)
    t = nnfast.tensor([0, 1, 2, 3, 0])
    (F.cross_entropy(x, t) * 3.0).backward()
    g3 = x.grad.numpy().copy()
    x.grad = None
    F.cross_entropy(x, t).backward()
    assert_close(g3, 3 * x.grad.numpy(), rtol=1e-14)


def test_cross_entropy_no_grad_skips_gradient():
    x = nnfast.randn(5, 4, requires_grad=True)
    with nnfast.no_grad():
        out = F.cross_entropy(x, nnfast.tensor([0, 1, 2, 3, 0]))
    assert not out.requires_grad


def test_cross_entropy_deterministic_across_threads():
    rng = np.random.default_rng(5)
    x = nnfast.from_numpy(rng.standard_normal((4000, 37)).astype(np.float32))
    t = nnfast.tensor(rng.integers(0, 37, 4000))
    old = nnfast.get_num_threads()
    try:
        vals = []
        for n in (1, 2, 3):
            nnfast.set_num_threads(n)
            vals.append(F.cross_entropy(x, t).item())
    finally:
        nnfast.set_num_threads(old)
    assert vals[0] == vals[1] == vals[2]


def test_linear_cross_entropy_row_blocks_match_materialized():
    # C = 4096 and chunk 4096 gives row blocks of 256 rows, so N = 300 spans two blocks.
    rng = np.random.default_rng(11)
    N, H, C = 300, 3, 4096
    x = nnfast.from_numpy(rng.standard_normal((N, H))).requires_grad_()
    W = nnfast.from_numpy(rng.standard_normal((C, H)) * 0.5).requires_grad_()
    b = nnfast.from_numpy(rng.standard_normal(C)).requires_grad_()
    t = rng.integers(0, C, N)
    t[5] = -100
    t = nnfast.tensor(t)
    for chunk in (4096, 1000):
        out = F.linear_cross_entropy(x, W, b, t, label_smoothing=0.1, chunk_size=chunk)
        out.backward()
        gx, gW, gb = x.grad.numpy().copy(), W.grad.numpy().copy(), b.grad.numpy().copy()
        x.grad = W.grad = b.grad = None
        ref = F.cross_entropy(F.linear(x, W, b), t, label_smoothing=0.1)
        ref.backward()
        assert_close(out, ref.item(), rtol=1e-12)
        assert_close(gx, x.grad.numpy(), rtol=1e-9, atol=1e-13)
        assert_close(gW, W.grad.numpy(), rtol=1e-9, atol=1e-13)
        assert_close(gb, b.grad.numpy(), rtol=1e-9, atol=1e-13)
        x.grad = W.grad = b.grad = None


def test_linear_cross_entropy_module_and_leading_dims():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 4))
    W = rng.standard_normal((6, 4))
    t = rng.integers(0, 6, (2, 3))
    m = nn.LinearCrossEntropyLoss(reduction="none", chunk_size=4)
    out = m(nnfast.from_numpy(x), nnfast.from_numpy(W), None, nnfast.tensor(t))
    assert out.shape == (2, 3)
    assert_close(out, ref_cross_entropy((x @ W.T).reshape(6, 6), t.reshape(-1), reduction="none").reshape(2, 3),
                 rtol=1e-12)


# ---------------------------------------------------------------------------------------- other specifics
def test_rmse_gradient_is_finite_at_zero():
    x = nnfast.ones(3, 2, dtype=nnfast.float64, requires_grad=True)
    out = F.rmse_loss(x, nnfast.ones(3, 2, dtype=nnfast.float64))
    assert out.item() == 0.0
    out.backward()
    assert np.all(x.grad.numpy() == 0)


def test_bce_log_clamp_at_minus_100():
    x = nnfast.tensor([0.0, 1.0, 0.5], dtype=nnfast.float64)
    y = nnfast.tensor([1.0, 0.0, 1.0], dtype=nnfast.float64)
    out = F.binary_cross_entropy(x, y, reduction="none").numpy()
    assert_close(out, [100.0, 100.0, np.log(2)], rtol=1e-12)


def test_bce_with_logits_is_stable_for_large_logits():
    x = nnfast.tensor([1000.0, -1000.0, 50.0], dtype=nnfast.float32, requires_grad=True)
    y = nnfast.tensor([0.0, 1.0, 1.0], dtype=nnfast.float32)
    out = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert_close(out, [1000.0, 1000.0, 0.0], rtol=1e-6, atol=1e-6)
    out.sum().backward()
    assert_close(x.grad, [1.0, -1.0, 0.0], atol=1e-6)


def test_kl_div_zero_target_contributes_zero():
    x = nnfast.tensor([[-1.0, -2.0]], dtype=nnfast.float64)
    y = nnfast.tensor([[0.0, 1.0]], dtype=nnfast.float64)
    assert_close(F.kl_div(x, y, reduction="sum"), 2.0, rtol=1e-12)


def test_perceptron_loss_values():
    x = nnfast.tensor([2.0, -1.0, 0.5, -3.0], dtype=nnfast.float64, requires_grad=True)
    y = nnfast.tensor([1.0, 1.0, -1.0, -1.0], dtype=nnfast.float64)
    out = nn.PerceptronLoss(reduction="sum")(x, y)
    assert_close(out, 1.0 + 0.5, rtol=1e-12)
    out.backward()
    assert_close(x.grad, [0.0, -1.0, 1.0, 0.0])


def test_legacy_size_average_reduce():
    x = nnfast.tensor([1.0, 2.0], dtype=nnfast.float64)
    y = nnfast.tensor([0.0, 0.0], dtype=nnfast.float64)
    assert F.mse_loss(x, y, size_average=False).item() == 5.0
    assert F.mse_loss(x, y, reduce=False).shape == (2,)


@pytest.mark.parametrize("cls,args", [
    (nn.CrossEntropyLoss, ()), (nn.NLLLoss, ()), (nn.MSELoss, ()), (nn.L1Loss, ()), (nn.HuberLoss, ()),
    (nn.SmoothL1Loss, ()), (nn.BCELoss, ()), (nn.BCEWithLogitsLoss, ()), (nn.KLDivLoss, ()), (nn.RMSELoss, ()),
    (nn.PerceptronLoss, ()),
])
def test_modules_match_functional(cls, args):
    rng = np.random.default_rng(21)
    if cls in (nn.CrossEntropyLoss, nn.NLLLoss):
        x = rng.standard_normal((5, 4))
        t = nnfast.tensor(rng.integers(0, 4, 5))
    else:
        x = rng.uniform(0.1, 0.9, (5, 4))
        t = nnfast.from_numpy(rng.uniform(0.1, 0.9, (5, 4)))
    fn = {nn.CrossEntropyLoss: F.cross_entropy, nn.NLLLoss: F.nll_loss, nn.MSELoss: F.mse_loss,
          nn.L1Loss: F.l1_loss, nn.HuberLoss: F.huber_loss, nn.SmoothL1Loss: F.smooth_l1_loss,
          nn.BCELoss: F.binary_cross_entropy, nn.BCEWithLogitsLoss: F.binary_cross_entropy_with_logits,
          nn.KLDivLoss: F.kl_div, nn.RMSELoss: F.rmse_loss, nn.PerceptronLoss: F.perceptron_loss}[cls]
    xt = nnfast.from_numpy(x)
    assert_close(cls(*args)(xt, t), fn(xt, t).numpy(), rtol=1e-14)
    if cls is not nn.RMSELoss:
        assert cls(reduction="none")(xt, t).shape == fn(xt, t, reduction="none").shape


# ---------------------------------------------------------------------------------------- bad input
def _f(shape, dtype=np.float32):
    return nnfast.from_numpy(np.random.default_rng(0).uniform(0.1, 0.9, shape).astype(dtype))


BAD = [
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4), np.float16), nnfast.tensor([0, 1, 2])), TypeError),
    ("cross_entropy", lambda: F.cross_entropy(nnfast.tensor([[1, 2], [3, 4]]), nnfast.tensor([0, 1])), TypeError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1])), ValueError),
    pytest.param("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 4, 1])), ValueError,
                 marks=cxx_throw),
    pytest.param("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, -1, 1])), ValueError,
                 marks=cxx_throw),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), weight=_f((3,))), ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), weight=_f((4,), np.float64)),
     TypeError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), _f((3, 4), np.float64)), TypeError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), _f((3,))), ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), reduction="avg"), ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), label_smoothing=1.5),
     ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 0)), nnfast.tensor([0, 1, 2])), ValueError),
    pytest.param("nll_loss", lambda: F.nll_loss(_f((3, 4)), nnfast.tensor([0, 9, 1])), ValueError,
                 marks=cxx_throw),
    ("nll_loss", lambda: F.nll_loss(_f((3, 4), np.float16), nnfast.tensor([0, 1, 1])), TypeError),
    ("nll_loss", lambda: F.nll_loss(_f((3, 4)), nnfast.tensor([[0, 1, 1]])), ValueError),
    ("mse_loss", lambda: F.mse_loss(_f((3, 4)), _f((3, 4), np.float64)), TypeError),
    ("mse_loss", lambda: F.mse_loss(_f((3, 4)), _f((4, 3))), ValueError),
    ("mse_loss", lambda: F.mse_loss(_f((3, 4), np.float16), _f((3, 4), np.float16)), TypeError),
    ("l1_loss", lambda: F.l1_loss(nnfast.tensor([1, 2]), nnfast.tensor([1, 2])), TypeError),
    ("huber_loss", lambda: F.huber_loss(_f((3,)), _f((3,)), delta=0.0), ValueError),
    ("smooth_l1_loss", lambda: F.smooth_l1_loss(_f((3,)), _f((3,)), beta=-1.0), ValueError),
    ("binary_cross_entropy", lambda: F.binary_cross_entropy(_f((3, 4)), _f((3, 4)), weight=_f((5,))), ValueError),
    ("binary_cross_entropy_with_logits",
     lambda: F.binary_cross_entropy_with_logits(_f((3, 4)), _f((3, 4)), pos_weight=_f((4,), np.float64)), TypeError),
    ("kl_div", lambda: F.kl_div(_f((3, 4)), _f((3, 4)), reduction="batchsum"), ValueError),
    ("rmse_loss", lambda: F.rmse_loss(_f((3, 4)), _f((3, 4)), reduction="sum"), ValueError),
    ("perceptron_loss", lambda: F.perceptron_loss(_f((3,)), _f((4,))), ValueError),
    ("linear_cross_entropy", lambda: F.linear_cross_entropy(_f((3, 4)), _f((5, 3)), None, nnfast.tensor([0, 1, 2])),
     ValueError),
    pytest.param("linear_cross_entropy",
                 lambda: F.linear_cross_entropy(_f((3, 4)), _f((5, 4)), None, nnfast.tensor([0, 5, 2])), ValueError,
                 marks=cxx_throw),
    ("linear_cross_entropy",
     lambda: F.linear_cross_entropy(_f((3, 4)), _f((5, 4), np.float64), None, nnfast.tensor([0, 1, 2])), TypeError),
]


def _bad_id(i, b):
    return f"{(b.values if hasattr(b, 'values') else b)[0]}-{i}"


@pytest.mark.parametrize("op,thunk,exc", BAD, ids=[_bad_id(i, b) for i, b in enumerate(BAD)])
def test_bad_input(op, thunk, exc):
    with pytest.raises(exc) as info:
        thunk()
    assert str(info.value).startswith(f"[{op}]"), str(info.value)


@cxx_throw
@pytest.mark.parametrize("args", [
    lambda C: (np.empty(3, np.float32), None, np.zeros((2, 3, 1), np.float16), np.zeros((2, 1), np.int64), None,
               -100, 0.0, 1),
    lambda C: (np.empty(1, np.float32), None, np.zeros((2, 3, 1), np.float32), np.zeros((2, 1), np.int32), None,
               -100, 0.0, 1),
    lambda C: (np.empty(1, np.float32), None, np.zeros((2, 3, 1), np.float32), np.full((2, 1), 3, np.int64), None,
               -100, 0.0, 1),
    lambda C: (np.empty(1, np.float64), None, np.zeros((2, 3, 1), np.float32), np.zeros((2, 1), np.int64), None,
               -100, 0.0, 1),
])
def test_kernel_boundary_checks(args):
    from nnfast._native import _C

    with pytest.raises((TypeError, ValueError)) as info:
        _C.cross_entropy(*args(3))
    assert str(info.value).startswith("[cross_entropy] expected")


# ---------------------------------------------------------------------------------------- large / multi-block
_POINTWISE_REFS = {
    "mse_loss": (F.mse_loss, lambda x, y: (x - y) ** 2),
    "l1_loss": (F.l1_loss, lambda x, y: np.abs(x - y)),
    "huber_loss": (F.huber_loss, lambda x, y: _huber(x - y, 1.0)),
    "smooth_l1_loss": (F.smooth_l1_loss, lambda x, y: _smooth_l1(x - y, 1.0)),
    "binary_cross_entropy": (F.binary_cross_entropy, _bce),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, _bce_logits),
    "kl_div": (F.kl_div, lambda x, y: _kl(x, y, False)),
    "perceptron_loss": (F.perceptron_loss, lambda x, y: np.maximum(0, -y * x)),
}


@pytest.mark.parametrize("name", list(_POINTWISE_REFS))
def test_pointwise_many_blocks_and_wide_ranges(name):
    """Crosses the kernel's 512-element chunks and 8192-element blocks, with inputs over wide
    ranges (checks the vectorized exp/log/log1p against NumPy's libm)."""
    rng = np.random.default_rng(31)
    shape = (3, 8192 + 517)
    if name == "binary_cross_entropy":
        x = np.concatenate([rng.uniform(0, 1, shape[0] * shape[1] - 6), [0.0, 1.0, 1e-300, 1 - 1e-16, 1e-40, 0.5]])
        y = rng.uniform(0, 1, x.size)
    elif name == "kl_div":
        x = rng.standard_normal(shape[0] * shape[1]) * 10
        y = np.exp(rng.uniform(-700, 5, x.size))
        y[:5] = [0.0, 1e-310, 1.0, 1e-20, 3.0]
    else:
        x = rng.standard_normal(shape[0] * shape[1]) * np.exp(rng.uniform(-30, 6, shape[0] * shape[1]))
        y = rng.standard_normal(x.size) if name != "binary_cross_entropy_with_logits" else rng.uniform(0, 1, x.size)
        if name == "perceptron_loss":
            y = np.sign(y)
    x, y = x.reshape(shape), y.reshape(shape)
    fn, ref = _POINTWISE_REFS[name]
    with np.errstate(all="ignore"):
        expect = ref(x, y)
    out = fn(nnfast.from_numpy(x), nnfast.from_numpy(y), reduction="none").numpy()
    np.testing.assert_allclose(out, expect, rtol=1e-13, atol=1e-300)
    out32 = fn(nnfast.from_numpy(x.astype(np.float32)), nnfast.from_numpy(y.astype(np.float32)), reduction="none")
    with np.errstate(all="ignore"):
        expect32 = ref(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64))
    ok = np.isfinite(expect32)
    # float32 rounding of the inputs' own size bounds the error where terms cancel
    scale = (np.abs(x) + np.abs(y) + 1.0)[ok]
    err = np.abs(out32.numpy()[ok] - expect32[ok])
    assert np.all(err <= 2e-5 * np.abs(expect32[ok]) + 2e-7 * scale), err.max()
    # reduced sums are identical for any thread count
    old = nnfast.get_num_threads()
    try:
        sums = []
        for n in (1, 2):
            nnfast.set_num_threads(n)
            sums.append(fn(nnfast.from_numpy(x), nnfast.from_numpy(y), reduction="sum").item())
    finally:
        nnfast.set_num_threads(old)
    assert sums[0] == sums[1]
    assert_close(sums[0], expect.sum(), rtol=1e-11)


def test_bce_with_logits_gradient_wide_range():
    x = np.concatenate([np.linspace(-120, 120, 4001), [-1e-30, 0.0, 1e-30]])
    y = np.random.default_rng(2).uniform(0, 1, x.size)
    pw = 1.7
    xt = nnfast.from_numpy(x.copy()).requires_grad_()
    F.binary_cross_entropy_with_logits(xt, nnfast.from_numpy(y), reduction="sum",
                                       pos_weight=nnfast.tensor([pw], dtype=nnfast.float64)).backward()
    sig_neg = 1 / (1 + np.exp(x))
    expect = (1 - y) - (1 + (pw - 1) * y) * sig_neg
    np.testing.assert_allclose(xt.grad.numpy(), expect, rtol=1e-13, atol=1e-300)


_CE_STREAM_CHILD = r"""
import hashlib, sys
import numpy as np
import nnfast
import nnfast.nn.functional as F
from nnfast._native import _C
r = np.random.default_rng(8)
C = 1001  # odd: each row starts at another alignment (peel, streamed body, tail)
cases = []
for dtype, N in ((np.float32, 4203), (np.float64, 2101)):  # dx just past 16 MB
    x = (3 * r.standard_normal(N * C + 1)).astype(dtype)[1:].reshape(N, C)
    t = r.integers(0, C, N)
    t[::97] = -100  # ignored rows
    w = r.uniform(0.5, 2.0, C).astype(dtype)
    cases += [(x, t, {}), (x, t, {"weight": nnfast.from_numpy(w), "label_smoothing": 0.1, "reduction": "none"}),
              (np.asfortranarray(x), t, {"reduction": "sum"})]  # class stride N: the gathered row
h = hashlib.sha256()  # every level's bits (the levels' row sums differ)
for level in nnfast.info()["simd_supported"]:
    _C.set_cpu_isa(level)
    first = None
    for threads in (1, 2):
        nnfast.set_num_threads(threads)
        hl = hashlib.sha256()
        for x, t, kw in cases:
            xt = nnfast.from_numpy(x).requires_grad_()
            loss = F.cross_entropy(xt, nnfast.tensor(t), **kw)
            loss.sum().backward() if loss.ndim else loss.backward()
            hl.update(loss.detach().numpy().tobytes())
            hl.update(xt.grad.numpy().tobytes())
        first = first or hl.hexdigest()
        assert hl.hexdigest() == first, (level, threads)
    h.update(first.encode())
sys.stdout.write(h.hexdigest() + "\n")
"""


def test_cross_entropy_streamed_grad_same_bits():
    """cross_entropy writes a dx past 16 MB from a cached scratch row with non-temporal stores
    (NNFAST_CE_STREAM=1, default) or in place with ordinary stores (=0): float32 and float64,
    C = 1001 (every row alignment), class weights + label smoothing, ignored rows, a non-contiguous
    input. The loss and gradient bits must equal across the switch (each SIMD level) and 1 / 2 threads."""
    import subprocess
    import sys

    out = {}
    for flag in ("1", "0"):
        out[flag] = subprocess.run([sys.executable, "-c", _CE_STREAM_CHILD], env=dict(os.environ, NNFAST_CE_STREAM=flag),
                                   check=True, capture_output=True, text=True).stdout.strip()
    assert out["1"] == out["0"] and len(out["1"]) == 64, out


_CE_FAST_CHILD = r"""
import hashlib
import sys
import numpy as np
import nnfast
from nnfast._native import _C
# cross_entropy (class index, mean) rows at each SIMD level: D 1, 7, 1000, 1023 (x - max spanning
# 0 .. -90), and a 4200 x 1023 batch (over 16 MB: dx streamed, rows at every alignment, some rows
# ignored). Prints the max error of dx in float32 ulps of the float64 result (the target element
# in ulps of 1 / rows: p - 1 cancels) and of the loss, then a hash of every output.
r = np.random.default_rng(5)
h = hashlib.sha256()
worst = 0.0
for B, D in ((33, 1), (33, 7), (33, 1000), (33, 1023), (4200, 1023)):
    x = r.uniform(-90.0, 0.0, (B, D)).astype(np.float32)
    x[:, 0] = 0.0
    x[1] = r.standard_normal(D).astype(np.float32) * 3
    t = r.integers(0, D, B)
    t[2::7] = -100
    keep = t != -100
    z = (x - x.max(1, keepdims=True)).astype(np.float64)  # x - m as the kernel rounds it
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    k = 1.0 / keep.sum()
    ref = p * k
    ref[~keep] = 0.0
    ref[np.flatnonzero(keep), t[keep]] -= k
    lref = np.sum(np.log(np.exp(z[keep]).sum(1)) - z[keep, t[keep]]) * k
    for level in nnfast.info()["simd_supported"]:
        _C.set_cpu_isa(level)
        d = np.empty((B, D, 1), np.float32)
        loss = np.empty(1, np.float32)
        _C.cross_entropy(loss, d, x.reshape(B, D, 1), t.reshape(B, 1), None, -100, 0.0, 1)
        d = d[:, :, 0].astype(np.float64)
        scale = np.abs(ref)
        scale[np.flatnonzero(keep), t[keep]] = k
        ok = scale > 1e-30
        ulp = np.abs(d[ok] - ref[ok]) / np.spacing(scale[ok].astype(np.float32)).astype(np.float64)
        assert np.all(np.abs(d[~ok] - ref[~ok]) <= 1e-30)
        worst = max(worst, float(ulp.max(initial=0.0)))
        worst = max(worst, abs(float(loss[0]) - lref) / float(np.spacing(np.float32(lref))))
        h.update(d.tobytes())
        h.update(loss.tobytes())
sys.stdout.write(f"{worst:.4f} {h.hexdigest()}\n")
"""


def _ce_child(env):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _CE_FAST_CHILD], env=dict(os.environ, **env), check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), out[1]


def test_cross_entropy_fast_rows_switches():
    """cross_entropy's fast rows (NNFAST_CE_FAST=1, default: vmaxps-only max, the 12-op exp) and the
    pipelined gradient stream (NNFAST_CE_PIPE=1, default: a row's dx written in the next row's max
    loop). dx and the loss within 6 ulp of float64 at every SIMD level, fast or not (dx: the exp,
    the row's float32 sum and a / se; measured 5.03 either way on the 4200 x 1023 batch, the
    long float32 row sums), the fast rows no worse than the old by 0.5 ulp; the pipe gives
    the same bits as without it, for 1, 2 and 3 threads (odd rows, ignored rows, streamed dx); the
    fast rows really change the exp (other bits)."""
    fast = _ce_child({"NNFAST_CE_FAST": "1", "NNFAST_CE_PIPE": "1"})
    slow = _ce_child({"NNFAST_CE_FAST": "0"})
    assert fast[0] <= 6.0 and slow[0] <= 6.0 and fast[0] <= slow[0] + 0.5, (fast, slow)
    assert fast[1] != slow[1]
    for threads in ("1", "2", "3"):
        assert _ce_child({"NNFAST_CE_PIPE": "0", "NNFAST_NUM_THREADS": threads})[1] == fast[1]
        assert _ce_child({"NNFAST_CE_PIPE": "1", "NNFAST_NUM_THREADS": threads})[1] == fast[1]


def test_cross_entropy_nan_row_fast():
    """A NaN logit the fast row max skips still makes that row's loss and every dx of the row NaN."""
    x = np.zeros((3, 40), np.float32)
    x[1, 17] = np.nan
    x[2, 5] = np.inf
    d = np.empty((3, 40, 1), np.float32)
    loss = np.empty(3, np.float32)
    from nnfast._native import _C
    _C.cross_entropy(loss, d, x.reshape(3, 40, 1), np.array([[1], [2], [3]]), None, -100, 0.0, 0)
    assert np.isfinite(loss[0]) and np.all(np.isfinite(d[0]))
    assert np.isnan(loss[1]) and np.all(np.isnan(d[1]))
    assert np.isnan(loss[2]) and np.all(np.isnan(d[2]))


def _exp_scan_inputs():
    """Every 127th float32 in [ln(FLT_MIN), 0], every float around the reduction's |r| = ln2/2
    edges (-0.35, -1.04) and down to the flush edge at -87.34."""
    lo = np.float32(-87.3365402)
    bits = np.arange(0x80000000, int(lo.view(np.uint32)) + 1, 127, dtype=np.uint64).astype(np.uint32)
    v = [bits.view(np.float32)]
    for a, b in ((-0.35, -0.34), (-1.04, -1.03), (-87.3365402, -87.0)):
        ia, ib = np.float32(b).view(np.uint32), np.float32(a).view(np.uint32)  # negative: bits grow with |v|
        v.append(np.arange(int(ia), int(ib) + 1, dtype=np.uint64).astype(np.uint32).view(np.float32))
    return np.unique(np.concatenate(v))


def exp_scan_ulps(y1, v):
    """y1 = softmax([0, v])[1] (or the cross-entropy dx of class 1): exp(v) itself where 1 + exp(v)
    rounds to 1 (v < -16.7: the exp's own error, <= 2 ulp promised), else e / (1 + e) (composite,
    <= 4 ulp). Returns (max exp ulp, max composite ulp)."""
    v64 = v.astype(np.float64)
    e = np.exp(v64)
    alone = e < 2.0 ** -25
    ref = np.where(alone, e, e / (1.0 + e))
    ulp = np.abs(y1.astype(np.float64) - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)
    return float(ulp[alone].max()), float(ulp[~alone].max())


@pytest.mark.parametrize("fast", ["1", "0"])
def test_cross_entropy_exp_scan(fast):
    """cross_entropy's row exp, fast (NNFAST_CE_FAST=1) or not, scanned through rows [0, v] of every
    SIMD level: dx of class 1 (target 0, sum reduction) is exp(v) exactly where the row sum rounds
    to 1, so the exp alone is within 2 ulp of float64 there, e / (1 + e) within 4 ulp elsewhere."""
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
w = []
for level in nnfast.info()["simd_supported"]:
    _C.set_cpu_isa(level)
    d = np.empty((v.size, 2, 1), np.float32)
    _C.cross_entropy(np.empty(1, np.float32), d, x.reshape(-1, 2, 1), np.zeros((v.size, 1), np.int64), None,
                     -100, 0.0, 2)
    w.append(exp_scan_ulps(d[:, 1, 0], v))
print(max(a for a, _ in w), max(b for _, b in w))
"""
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NNFAST_CE_FAST=fast), check=True,
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__))).stdout
    e_ulp, c_ulp = map(float, out.split())
    assert e_ulp <= 2.0 and c_ulp <= 4.0, (e_ulp, c_ulp)
