"""The ops' fast paths (F.relu & co, F.linear, cross_entropy, the tensor operators) and the tape-level
fusion of a linear's activation backward into the next linear's dx GEMM.

A fast path calls its CPU kernel inline; everything unusual falls through to the checked path.
These tests hold the fast paths to the checked path's results, errors, hooks and version checks,
and show that the fast paths really run (kernel spies) so the comparisons cannot pass vacuously.
"""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast import _dispatch
from nnfast.autograd.gradcheck import gradcheck
from nnfast.nn.functional import _linear
from opinfo import to_device


@pytest.fixture
def slow(monkeypatch):
    """Run a block with every fast path off (the checked path, as before the fast paths)."""
    class Switch:
        def __enter__(self):
            _dispatch.block_fast_paths("test")

        def __exit__(self, *exc):
            _dispatch.block_fast_paths("test", False)

    yield Switch()
    _dispatch.block_fast_paths("test", False)


def _spy(monkeypatch, op, name):
    calls = []
    kset = _dispatch._CPU_KERNELS[op]
    real = getattr(kset, name)
    monkeypatch.setitem(vars(kset), name, lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    return calls


def _t(a, grad=False):
    return nnfast.from_numpy(np.array(a)).requires_grad_(grad) if grad else nnfast.from_numpy(np.array(a))


CASES = {
    "relu": lambda x, w, b, t: F.relu(x),
    "gelu": lambda x, w, b, t: F.gelu(x),
    "sigmoid": lambda x, w, b, t: F.sigmoid(x),
    "linear": lambda x, w, b, t: F.linear(x, w, b),
    "linear_relu": lambda x, w, b, t: F.linear(x, w, b, activation="relu"),
    "linear_nobias": lambda x, w, b, t: F.linear(x, w),
    "cross_entropy": lambda x, w, b, t: F.cross_entropy(F.linear(x, w, b), t),
    "add": lambda x, w, b, t: x + x * 0.5,
    "sub_mul_div": lambda x, w, b, t: (x - 2) * x / (x * x + 1.0),
    "rsub_rdiv": lambda x, w, b, t: 1.0 - 2 / (x * x + 1),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("n", [1, 7])
def test_fast_path_matches_the_checked_path(case, dtype, n, slow):
    rng = np.random.default_rng(n)
    xs, ws, bs = rng.standard_normal((n, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    t = nnfast.tensor(rng.integers(0, 3, n))
    results = []
    for use_slow in (False, True):
        x, w, b = (_t(a.astype(dtype), grad=True) for a in (xs, ws, bs))
        if use_slow:
            with slow:
                y = CASES[case](x, w, b, t)
        else:
            y = CASES[case](x, w, b, t)
        assert y.requires_grad and y.grad_fn is not None
        y.sum().backward() if y.ndim else y.backward()
        results.append([y.detach().numpy()] + [None if v.grad is None else v.grad.numpy() for v in (x, w, b)])
    for fast, ref in zip(*results):
        if ref is None:
            assert fast is None
        else:
            assert fast.dtype == ref.dtype and fast.shape == ref.shape
            np.testing.assert_array_equal(fast, ref)


def test_the_fast_paths_run(monkeypatch):
    x = nnfast.randn(4, 8)
    w, b = nnfast.randn(3, 8), nnfast.randn(3)
    acts, gemms, ces, bins = (_spy(monkeypatch, "relu", "act_forward"), _spy(monkeypatch, "linear", "gemm"),
                              _spy(monkeypatch, "cross_entropy", "cross_entropy"), _spy(monkeypatch, "add", "binary_new"))
    F.relu(x)
    F.cross_entropy(F.linear(x, w, b), nnfast.tensor([0, 1, 2, 0]))
    x + x
    assert (len(acts), len(gemms), len(ces), len(bins)) == (1, 1, 1, 1)


@pytest.mark.parametrize("n", [1, 1023])
def test_no_grad_results_and_no_graph(n):
    x = nnfast.randn(n, 7, requires_grad=True)
    w = nnfast.randn(3, 7, requires_grad=True)
    with nnfast.no_grad():
        for y in (F.relu(x), F.linear(x, w), x + x, x * 2.0):
            assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(F.relu(x).detach().numpy(), np.maximum(x.detach().numpy(), 0))


def test_unusual_operands_take_the_checked_path():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 4)).astype(np.float32)
    xt = nnfast.from_numpy(a).T  # non-contiguous
    np.testing.assert_array_equal(F.relu(xt).numpy(), np.maximum(a.T, 0))
    w = nnfast.from_numpy(rng.standard_normal((3, 6)).astype(np.float32))
    np.testing.assert_allclose(F.linear(xt, w).numpy(), a.T @ w.numpy().T, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal((xt + xt).numpy(), a.T + a.T)
    x3 = nnfast.from_numpy(rng.standard_normal((2, 3, 6)).astype(np.float32))  # 3-D input of linear
    np.testing.assert_allclose(F.linear(x3, w).numpy(), x3.numpy() @ w.numpy().T, rtol=1e-5, atol=1e-5)
    # broadcasting and mixed dtypes: the general operator path
    assert (nnfast.ones(2, 3) + nnfast.ones(3)).shape == (2, 3)
    assert (nnfast.ones(3) + nnfast.ones(3, dtype=nnfast.float64)).dtype == nnfast.float64


def test_errors_are_the_checked_paths():
    x = nnfast.randn(4, 8)
    with pytest.raises(TypeError, match=r"^\[relu\] expected input to be float32 or float64"):
        F.relu(nnfast.tensor([[1, 2]]))
    with pytest.raises(TypeError, match=r"^\[relu\] expected input to be an nnfast.Tensor"):
        F.relu(np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"^\[linear\] expected input with last dimension 5"):
        F.linear(x, nnfast.randn(3, 5))
    with pytest.raises(ValueError, match=r"^\[linear\] expected bias of shape \(3,\)"):
        F.linear(x, nnfast.randn(3, 8), nnfast.randn(4))
    with pytest.raises(TypeError, match=r"^\[linear\] expected weight to have dtype float32"):
        F.linear(x, nnfast.randn(3, 8, dtype=nnfast.float64))
    with pytest.raises(ValueError, match=r"^\[activation\] expected one of"):
        F.linear(x, nnfast.randn(3, 8), activation="no-such-activation")
    with pytest.raises(ValueError, match=r"^\[cross_entropy\] expected target of shape \(4,\)"):
        F.cross_entropy(nnfast.randn(4, 3), nnfast.tensor([0, 1, 2]))
    with pytest.raises((ValueError, IndexError), match=r"^\[cross_entropy\]"):
        F.cross_entropy(nnfast.randn(4, 3), nnfast.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"^\[add\] expected broadcastable shapes"):
        nnfast.ones(2, 3) + nnfast.ones(2, 4)


def test_hooks_fire_through_the_fast_paths():
    x = nnfast.randn(4, 8, requires_grad=True)
    w = nnfast.randn(3, 8, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append("x"))
    w.register_hook(lambda g: seen.append("w"))
    h = F.relu(x)
    h.register_hook(lambda g: seen.append("h") or g * 2)
    F.linear(h, w).sum().backward()
    assert sorted(seen) == ["h", "w", "x"]
    expected = 2 * (np.ones((4, 3), np.float32) @ w.detach().numpy()) * (x.detach().numpy() > 0)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_anomaly_mode_and_autocast_switch_the_fast_paths_off():
    assert _dispatch.FAST_PATHS[0]
    with nnfast.autograd.detect_anomaly():
        assert not _dispatch.FAST_PATHS[0]
        x = nnfast.tensor([[float("nan"), 1.0]], requires_grad=True)
        with pytest.raises(RuntimeError, match="detect_anomaly"):
            F.relu(x)
    assert _dispatch.FAST_PATHS[0]
    _dispatch.block_fast_paths("autocast")
    _dispatch.block_fast_paths("anomaly")
    _dispatch.block_fast_paths("anomaly", False)
    assert not _dispatch.FAST_PATHS[0]  # still blocked by the other reason
    _dispatch.block_fast_paths("autocast", False)
    assert _dispatch.FAST_PATHS[0]


def test_in_place_change_of_a_saved_input_is_detected():
    x = nnfast.randn(4, 8)
    w = nnfast.randn(3, 8, requires_grad=True)
    y = F.linear(x, w)
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ---------------------------------------------------------------- activation backward folded into dx GEMM
def _mlp(act, dtype=np.float64):
    nnfast.manual_seed(0)
    return nn.Sequential(nn.Linear(7, 5, activation=act, dtype=dtype), nn.Linear(5, 4, activation=act, dtype=dtype),
                         nn.Linear(4, 3, dtype=dtype))


@pytest.mark.parametrize("act", ["relu", "gelu", "tanh", "silu", ("leaky_relu", {"negative_slope": 0.2})])
def test_fused_activation_backward_matches_and_skips_act_backward(act, monkeypatch):
    m = _mlp(act)
    x = nnfast.randn(6, 7, dtype=nnfast.float64, requires_grad=True)
    monkeypatch.setattr(_linear, "_fusable", lambda p, d: False)
    m(x).sum().backward()
    ref = [p.grad.numpy().copy() for p in m.parameters()] + [x.grad.numpy().copy()]
    monkeypatch.undo()
    m.zero_grad()
    x.grad = None
    calls = _spy(monkeypatch, "linear", "act_backward")
    m(x).sum().backward()
    assert calls == []  # both activations folded into the next layer's dx GEMM
    for got, want in zip([p.grad.numpy() for p in m.parameters()] + [x.grad.numpy()], ref):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_fused_path_gradcheck():
    m = _mlp("gelu")
    x = nnfast.randn(3, 7, dtype=nnfast.float64, requires_grad=True)
    params = list(m.parameters())
    assert gradcheck(lambda x, *ps: m(x), (x, *params))


def test_no_fusion_when_a_hook_or_a_second_consumer_needs_the_gradient(monkeypatch):
    calls = _spy(monkeypatch, "linear", "act_backward")
    l1 = nn.Linear(7, 5, activation="relu", dtype=np.float64)
    l2, l3 = nn.Linear(5, 3, dtype=np.float64), nn.Linear(5, 3, dtype=np.float64)
    x = nnfast.randn(4, 7, dtype=nnfast.float64)
    # two consumers of h: the gradient is the sum, and act' is applied once to it
    h = l1(x)
    (l2(h) + l3(h)).sum().backward()
    assert len(calls) == 1
    hv = h.detach().numpy()
    dh = np.ones((4, 3)) @ l2.weight.detach().numpy() + np.ones((4, 3)) @ l3.weight.detach().numpy()
    np.testing.assert_allclose(l1.weight.grad.numpy(), (dh * (hv > 0)).T @ x.numpy(), rtol=1e-12)
    # a hook on h must see dL/dh itself, before relu'
    del calls[:]
    seen = []
    h = l1(x)
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    l2(h).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(seen[0], np.ones((4, 3)) @ l2.weight.detach().numpy(), rtol=1e-12)


def test_fused_path_with_retain_graph_twice():
    m = _mlp("relu")
    x = nnfast.randn(5, 7, dtype=nnfast.float64)
    y = m(x).sum()
    y.backward(retain_graph=True)
    first = [p.grad.numpy().copy() for p in m.parameters()]
    y.backward()
    for p, g in zip(m.parameters(), first):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-12)


def test_fast_paths_leave_cuda_tensors_to_the_cuda_kernels():
    if not nnfast.cuda.is_available():
        pytest.skip("no cuda device (the EMULATE build runs this; a CUDA build needs a GPU)")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 8)).astype(np.float32)
    w = rng.standard_normal((3, 8)).astype(np.float32)
    x, wt = to_device(nnfast.from_numpy(a), "cuda"), to_device(nnfast.from_numpy(w), "cuda")
    for y, want in ((F.relu(x), np.maximum(a, 0)), (F.linear(x, wt), a @ w.T), (x + x, a + a)):
        assert y.device.type == "cuda"
        np.testing.assert_allclose(_dispatch.to_host(y._data), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 1023])
def test_cross_entropy_binding_takes_2d_logits_as_n_c_1(dtype, n):
    # The fast path hands (N, C) logits, (N,) targets and a 0-d loss to the kernel as they are:
    # the same loss and gradient as the (N, C, 1) layout, strided logits included.
    rng = np.random.default_rng(n)
    C = 5
    big = rng.standard_normal((n, 2 * C)).astype(dtype)
    x = big[:, ::2]  # non-contiguous
    t = rng.integers(0, C, n).astype(np.int64)
    if n > 1:
        t[0] = -100  # an ignored row (all ignored would give nan)
    K = nnfast._C
    loss2, dx2 = np.empty((), dtype), np.empty((n, C), dtype)
    K.cross_entropy(loss2, dx2, x, t, None, -100, 0.0, 1)
    loss3, dx3 = np.empty((1,), dtype), np.empty((n, C, 1), dtype)
    K.cross_entropy(loss3, dx3, x.reshape(n, C, 1), t.reshape(n, 1), None, -100, 0.0, 1)
    assert loss2 == loss3[0]
    np.testing.assert_array_equal(dx2, dx3[:, :, 0])
    with pytest.raises(ValueError, match=r"^\[cross_entropy\] expected target"):
        K.cross_entropy(loss2, dx2, x, t[:-1] if n > 1 else np.zeros(2, np.int64), None, -100, 0.0, 1)
    with pytest.raises(ValueError, match=r"^\[cross_entropy\] expected grad_input"):
        K.cross_entropy(loss2, np.empty((n, C, 1), dtype), x, t, None, -100, 0.0, 1)
    with pytest.raises(ValueError, match=r"^\[cross_entropy\] expected target values"):
        K.cross_entropy(loss2, dx2, x, np.full(n, C, np.int64), None, -100, 0.0, 1)


def test_cross_entropy_fast_path_scaled_backward_and_gradcheck():
    # loss * 3 sends a non-unit gradient through the (N, C)-saved gradient of the fast path.
    x = nnfast.tensor(np.random.default_rng(0).standard_normal((7, 4)), requires_grad=True)
    t = nnfast.tensor(np.array([0, 1, 2, 3, 0, 1, 2], np.int64))
    (F.cross_entropy(x, t) * 3.0).backward()
    xr = x._data
    p = np.exp(xr - xr.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(7), t._data] -= 1.0
    np.testing.assert_allclose(x.grad._data, 3.0 * p / 7, rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda a: F.cross_entropy(a, t), (x,))


@pytest.mark.parametrize("n", [5, 20000])
def test_kernels_below_and_above_the_gil_threshold_agree_with_numpy(n):
    # Small calls run with the GIL held, large ones release it: both must compute the same thing.
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    ta, tb = nnfast.tensor(a), nnfast.tensor(b)
    np.testing.assert_array_equal((ta + tb)._data, a + b)
    np.testing.assert_array_equal(F.relu(ta)._data, np.maximum(a, 0.0))


# ---------------------------------------------------------------- F.linear on (B, T, C) inputs
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 1, 5), (3, 7, 1, 5), (0, 4, 5)])
@pytest.mark.parametrize("act", [None, "gelu", "tanh"])
def test_nd_linear_fast_path_matches_the_checked_path(shape, dtype, act, slow, monkeypatch):
    rng = np.random.default_rng(len(shape))
    xs, ws, bs = rng.standard_normal(shape), rng.standard_normal((4, 5)), rng.standard_normal(4)
    results = []
    for use_slow in (False, True):
        x, w, b = (_t(a.astype(dtype), grad=True) for a in (xs, ws, bs))
        if use_slow:
            with slow:
                y = F.linear(x, w, b, activation=act)
        else:
            gemms, applied = _spy(monkeypatch, "linear", "gemm"), []
            real_apply = _linear.LinearFunction.apply
            monkeypatch.setattr(_linear.LinearFunction, "apply",
                                classmethod(lambda cls, *a: (applied.append(1), real_apply(*a))[1]))
            y = F.linear(x, w, b, activation=act)
            monkeypatch.undo()
            # the fast path ran: the kernel once, no generic Function.apply
            assert len(gemms) == 1 and not applied and type(y.grad_fn) is _linear.LinearFunction
        assert y.shape == shape[:-1] + (4,)
        (y * y).sum().backward()
        results.append([y.detach().numpy()] + [v.grad.numpy() for v in (x, w, b)])
    for fast, ref in zip(*results):
        assert fast.dtype == ref.dtype and fast.shape == ref.shape
        np.testing.assert_array_equal(fast, ref)


def test_nd_linear_fast_path_reference_gradcheck_and_fallbacks():
    rng = np.random.default_rng(3)
    x = nnfast.from_numpy(rng.standard_normal((2, 7, 5))).requires_grad_(True)
    w = nnfast.from_numpy(rng.standard_normal((3, 5))).requires_grad_(True)
    b = nnfast.from_numpy(rng.standard_normal(3)).requires_grad_(True)
    # float64 reference formula (tanh GELU), and gradcheck through the fast path's node
    z = x.detach().numpy() @ w.detach().numpy().T + b.detach().numpy()
    ref = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
    gt = ("gelu", {"approximate": "tanh"})
    np.testing.assert_allclose(F.linear(x, w, b, activation=gt).detach().numpy(), ref,
                               rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b, activation="gelu"), (x, w, b))
    # a non-contiguous 3-D input (the checked path) gives the same values
    xt = nnfast.from_numpy(np.ascontiguousarray(x.detach().numpy().transpose(1, 0, 2))).permute(1, 0, 2)
    assert not xt.numpy().flags.c_contiguous
    np.testing.assert_array_equal(F.linear(xt, w, b).detach().numpy(), F.linear(x, w, b).detach().numpy())
    # an in-place change of the saved input after the forward is caught by the version check
    x2 = x.detach().clone().requires_grad_(False)
    y = F.linear(x2, w, b)
    x2.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_relu_and_linear_fast_paths_run_ahead_of_autocasts_wrapper(monkeypatch):
    """F.relu and F.linear try their fast path before autocast's wrapper (one frame fewer per call);
    what that wrapper must see -- an autocast region, bfloat16 operands, cuda or odd operands --
    still reaches it (the *_checked functions are autocast's ops)."""
    from nnfast.nn.functional import _activation

    calls = []
    for mod, name in ((_activation, "_relu_checked"), (_linear, "_linear_checked")):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _r=real, _n=name, **k: (calls.append(_n), _r(*a, **k))[1])
    x, w, b = nnfast.randn(4, 8), nnfast.randn(3, 8), nnfast.randn(3)
    xg = nnfast.randn(4, 8, requires_grad=True)
    y = F.relu(x)
    F.relu(xg).sum().backward()
    z = F.linear(x, w, b, activation="relu")
    assert calls == []  # the plain float32 calls never reached the wrapper
    np.testing.assert_array_equal(y.numpy(), np.maximum(x.numpy(), 0))
    np.testing.assert_array_equal(xg.grad.numpy(), (xg.detach().numpy() > 0).astype(np.float32))
    np.testing.assert_allclose(z.numpy(), np.maximum(x.numpy() @ w.numpy().T + b.numpy(), 0), rtol=1e-5, atol=1e-6)
    xb = x.to(nnfast.bfloat16)
    rb = F.relu(xb)  # bfloat16: the binding rejects it, autocast's wrapper routes it
    assert rb.dtype == nnfast.bfloat16 and calls == ["_relu_checked"]
    np.testing.assert_array_equal(rb.float().numpy(), np.maximum(xb.float().numpy(), 0))
    with nnfast.autocast("cpu", dtype=nnfast.bfloat16):
        za = F.linear(x, w, b)
        ra = F.relu(x)
    assert calls[1:] == ["_linear_checked", "_relu_checked"]
    assert za.dtype == nnfast.bfloat16  # the autocast policy ran
    np.testing.assert_array_equal(ra.numpy(), y.numpy())
    with pytest.raises(ValueError, match=r"^\[linear\] expected input with last dimension 8"):
        F.linear(nnfast.randn(4, 7), w, b)
    assert calls[-1] == "_linear_checked"
