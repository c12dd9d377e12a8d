"""Tensor, the autograd tape and general arithmetic (NumPy-served, GEMM for @)."""
import numpy as np
import pytest

import nnfast
from nnfast.autograd import gradcheck
from helpers import assert_close, leaf, noncontig, randn


def T(rng, *shape):
    return leaf(randn(rng, *shape))


BINARY = [
    ("add", lambda a, b: a + b, (3, 4), (4,)),
    ("sub", lambda a, b: a - b, (3, 1), (1, 4)),
    ("mul", lambda a, b: a * b, (2, 3, 4), (3, 1)),
    ("div", lambda a, b: a / (b * b + 1.0), (5,), (5,)),
    ("pow", lambda a, b: (a * a + 0.5) ** b, (3, 2), (3, 2)),
    ("matmul", lambda a, b: a @ b, (3, 4), (4, 2)),
    ("matmul_vec", lambda a, b: a @ b, (3, 4), (4,)),
    ("vec_matmul", lambda a, b: a @ b, (4,), (4, 2)),
    ("batched_matmul", lambda a, b: a @ b, (2, 3, 4), (4, 5)),
]


@pytest.mark.parametrize("name, fn, sa, sb", BINARY, ids=[b[0] for b in BINARY])
def test_binary_gradcheck(name, fn, sa, sb, rng):
    a, b = T(rng, *sa), T(rng, *sb)
    ref = fn(a._data, b._data)
    assert_close(fn(a, b), ref, rtol=1e-12)
    assert gradcheck(fn, (a, b))


UNARY = [
    ("neg", lambda a: -a),
    ("scalar_ops", lambda a: 2.0 * a - 1.0 + a / 3.0 - (1 - a)),
    ("rdiv", lambda a: 1.0 / (a * a + 1.0)),
    ("pow_scalar", lambda a: a ** 3),
    ("exp", lambda a: a.exp()),
    ("log", lambda a: (a * a + 1).log()),
    ("sqrt", lambda a: (a * a + 1).sqrt()),
    ("sum_all", lambda a: a.sum()),
    ("sum_dim", lambda a: a.sum(1)),
    ("sum_keepdim", lambda a: a.sum(dim=(0, 2), keepdim=True)),
    ("mean_dim", lambda a: a.mean(-1)),
    ("mean_all", lambda a: a.mean()),
    ("max_dim", lambda a: a.max(1)[0]),
    ("reshape", lambda a: a.reshape(4, 6) * 2),
    ("view", lambda a: a.view(-1)),
    ("T", lambda a: a.T),
    ("permute", lambda a: a.permute(2, 0, 1)),
    ("index_int", lambda a: a[1]),
    ("index_slice", lambda a: a[:, 1:3, ::2]),
    ("index_fancy", lambda a: a[np.array([0, 1, 0])]),
    ("unsqueeze", lambda a: a.unsqueeze(0).squeeze(0)),
    ("flatten", lambda a: a.flatten(1)),
    ("clamp", lambda a: a.clamp(-0.5, 0.5)),
    ("var", lambda a: a.var(1)),
    ("cat", lambda a: nnfast.cat([a, a * 2], dim=1)),
    ("stack", lambda a: nnfast.stack([a, a], dim=0)),
]


@pytest.mark.parametrize("name, fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_gradcheck(name, fn, rng):
    a = T(rng, 2, 3, 4)
    assert gradcheck(fn, (a,))


def test_noncontiguous_inputs(rng):
    a = leaf(noncontig(randn(rng, 5, 6)))
    b = leaf(noncontig(randn(rng, 6, 3)))
    assert_close(a @ b, a._data @ b._data, rtol=1e-12)
    assert gradcheck(lambda a, b: (a @ b) * a.sum(), (a, b))


def test_matmul_matches_numpy_float32(rng):
    a = randn(rng, 33, 257, dtype=np.float32)
    b = randn(rng, 257, 7, dtype=np.float32)
    assert_close(nnfast.tensor(a) @ nnfast.tensor(b), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_gradient_accumulates_and_zero_grad(rng):
    w = T(rng, 3)
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    assert_close(w.grad, np.full(3, 5.0))
    w.grad = None
    (w * w).sum().backward()
    assert_close(w.grad, 2 * w._data)


def test_shared_subexpression(rng):
    x = T(rng, 4)
    y = x * 2
    z = (y * y + y).sum()
    z.backward()
    assert_close(x.grad, 8 * x._data + 2)


def test_no_grad_enable_grad_detach(rng):
    x = T(rng, 3)
    with nnfast.no_grad():
        y = x * 2
        assert not y.requires_grad
        with nnfast.enable_grad():
            z = x * 2
            assert z.requires_grad
    assert not x.detach().requires_grad
    assert (x * 2).detach().grad_fn is None

    @nnfast.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad


def test_backward_errors(rng):
    x = T(rng, 3)
    with pytest.raises(RuntimeError, match=r"^\[backward\].*scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match=r"^\[backward\]"):
        nnfast.ones(3).sum().backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"^\[backward\].*retain_graph"):
        y.backward()
    y2 = (x * x).sum()
    y2.backward(retain_graph=True)
    y2.backward()


def test_inplace_on_leaf_requiring_grad(rng):
    x = T(rng, 3)
    with pytest.raises(RuntimeError, match=r"^\[add_\] a leaf Variable that requires grad"):
        x += 1
    with nnfast.no_grad():
        x -= 1  # optimizer-style update is allowed


def test_requires_grad_on_int_tensor():
    with pytest.raises(TypeError, match=r"^\[requires_grad_\]"):
        nnfast.tensor([1, 2, 3], requires_grad=True)


def test_creation_defaults_and_interop():
    assert nnfast.tensor([1.0, 2.0]).dtype == np.float32
    assert nnfast.tensor([1, 2]).dtype == np.int64
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = nnfast.from_numpy(a)
    a[0, 0] = 42
    assert t._data[0, 0] == 42  # zero-copy
    assert np.asarray(t) is a or np.shares_memory(np.asarray(t), a)
    assert np.shares_memory(np.from_dlpack(t), a)
    assert nnfast.from_dlpack(a)._data.base is not None or np.shares_memory(nnfast.from_dlpack(a)._data, a)
    assert nnfast.tensor(3.5).item() == 3.5
    assert nnfast.zeros(2, 3).shape == (2, 3) and nnfast.ones((4,)).shape == (4,)
    nnfast.manual_seed(7)
    r1 = nnfast.randn(5).numpy().copy()
    nnfast.manual_seed(7)
    assert np.array_equal(r1, nnfast.randn(5).numpy())
    assert str(nnfast.zeros(1).device) == "cpu"
    assert "grad_fn" in repr(nnfast.ones(2, requires_grad=True) * 2)


def test_cast_is_differentiable(rng):
    x = T(rng, 4)
    y = x.float()
    assert y.dtype == np.float32
    (y.double() * 2).sum().backward()
    assert_close(x.grad, np.full(4, 2.0))


def test_cuda_tensor_without_gpu_is_clear():
    if nnfast.cuda.is_available():
        pytest.skip("GPU present")
    with pytest.raises((RuntimeError, ImportError)):
        nnfast.ones(2).to("cuda")


def test_autograd_grad_function(rng):
    x = T(rng, 3)
    (g,) = nnfast.autograd.grad((x * x).sum(), [x])
    assert_close(g, 2 * x._data)
    assert x.grad is None


def test_detect_anomaly(rng):
    x = leaf(np.array([1.0, 0.0]))
    with nnfast.autograd.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(RuntimeError, match="Log forward"):
            x.log()
        y = (x * x).sqrt().sum()
        with pytest.raises(RuntimeError, match="Sqrt backward"):
            y.backward()
