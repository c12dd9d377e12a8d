"""nn.Linear / F.linear on the GEMM kernel: forward vs float64 NumPy, gradcheck, fused activations."""
import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck
from helpers import assert_close, leaf, noncontig, randn

ACTS = [None, "relu", ("leaky_relu", {"negative_slope": 0.2}), "elu", "sigmoid", "tanh", "gelu",
        ("gelu", {"approximate": "tanh"}), "silu", "softplus", "hardtanh"]


def np_act(name, z):
    from math import erf

    key, kw = (name, {}) if not isinstance(name, tuple) else name
    if key is None:
        return z
    if key == "relu":
        return np.maximum(z, 0)
    if key == "leaky_relu":
        return np.where(z > 0, z, kw["negative_slope"] * z)
    if key == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if key == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if key == "tanh":
        return np.tanh(z)
    if key == "gelu" and kw.get("approximate") == "tanh":
        return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    if key == "gelu":
        return 0.5 * z * (1 + np.vectorize(erf)(z / np.sqrt(2)))
    if key == "silu":
        return z / (1 + np.exp(-z))
    if key == "softplus":
        return np.log1p(np.exp(z))
    if key == "hardtanh":
        return np.clip(z, -1, 1)
    raise KeyError(key)


@pytest.mark.parametrize("act", ACTS, ids=str)
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (33, 257, 9)])
def test_linear_forward_matches_float64(act, shape, rng):
    B, IN, OUT = shape
    x, w, b = randn(rng, B, IN), randn(rng, OUT, IN), randn(rng, OUT)
    ref = np_act(act, x @ w.T + b)
    for dt, tol in ((np.float64, 1e-10), (np.float32, 2e-4)):
        y = F.linear(nnfast.tensor(x, dtype=dt), nnfast.tensor(w, dtype=dt), nnfast.tensor(b, dtype=dt), activation=act)
        assert y.dtype == dt
        assert_close(y, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("act", ACTS, ids=str)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("contig", [True, False])
def test_linear_gradcheck(act, bias, contig, rng):
    B, IN, OUT = 7, 5, 3
    mk = (lambda a: a) if contig else noncontig
    x = leaf(mk(randn(rng, B, IN)))
    w = leaf(mk(randn(rng, OUT, IN)))
    b = leaf(randn(rng, OUT)) if bias else None
    inputs = (x, w, b) if bias else (x, w)
    assert gradcheck(lambda *t: F.linear(t[0], t[1], t[2] if bias else None, activation=act), inputs)


@pytest.mark.parametrize("shape", [(1, 1, 1), (33, 257, 5), (2, 1, 7)])
def test_linear_gradcheck_odd_shapes(shape, rng):
    B, IN, OUT = shape
    x, w, b = leaf(randn(rng, B, IN)), leaf(randn(rng, OUT, IN)), leaf(randn(rng, OUT))
    assert gradcheck(lambda x, w, b: F.linear(x, w, b, activation="relu"), (x, w, b))


def test_linear_transposed_weight_view(rng):
    wt = randn(rng, 6, 4)  # weight given as a transposed view: (4, 6) with strides (8, 48)
    w = leaf(wt.T)
    x = leaf(randn(rng, 5, 6))
    assert not w._data.flags.c_contiguous
    assert_close(F.linear(x, w), x._data @ wt, rtol=1e-12)
    assert gradcheck(lambda x, w: F.linear(x, w), (x, w))


def test_linear_3d_input(rng):
    x = leaf(randn(rng, 2, 3, 5))
    w, b = leaf(randn(rng, 4, 5)), leaf(randn(rng, 4))
    y = F.linear(x, w, b)
    assert y.shape == (2, 3, 4)
    assert_close(y, x._data @ w._data.T + b._data, rtol=1e-12)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b, activation="tanh"), (x, w, b))


def test_fused_activation_equals_separate(rng):
    nnfast.manual_seed(3)
    m = nnfast.nn.Linear(9, 4, activation="relu")
    x = nnfast.randn(6, 9)
    sep = F.relu(F.linear(x, m.weight, m.bias))
    assert_close(m(x), sep.detach(), rtol=1e-6)


def test_linear_module_layout_and_init():
    nnfast.manual_seed(0)
    m = nnfast.nn.Linear(300, 20)
    assert m.weight.shape == (20, 300) and m.bias.shape == (20,)
    bound = 1 / np.sqrt(300)
    w = m.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert list(m.state_dict()) == ["weight", "bias"]
    assert "in_features=300, out_features=20, bias=True" in repr(m)
    assert nnfast.nn.Linear(3, 2, bias=False).bias is None


@pytest.mark.parametrize("bad, exc, msg", [
    (lambda: F.linear(nnfast.tensor(np.ones((2, 3), np.float16)), nnfast.ones(4, 3)), TypeError, "float32 or float64"),
    (lambda: F.linear(nnfast.tensor(np.ones((2, 3), np.int64)), nnfast.ones(4, 3)), TypeError, "float32 or float64"),
    (lambda: F.linear(nnfast.ones(2, 3), nnfast.ones(4, 5)), ValueError, "in_features"),
    (lambda: F.linear(nnfast.ones(2, 3), nnfast.ones(4, 3), nnfast.ones(5)), ValueError, "bias"),
    (lambda: F.linear(nnfast.ones(2, 3), nnfast.ones(4, 3, dtype="float64")), TypeError, "dtype"),
    (lambda: F.linear(nnfast.ones(2, 3), nnfast.ones(3)), ValueError, "2-D"),
    (lambda: F.linear(np.ones((2, 3)), nnfast.ones(4, 3)), TypeError, "nnfast.Tensor"),
    (lambda: F.linear(nnfast.ones(2, 3), nnfast.ones(4, 3), activation="nope"), ValueError, "expected one of"),
])
def test_linear_bad_input(bad, exc, msg):
    with pytest.raises(exc, match=r"^\[(linear|activation)\].*" + msg):
        bad()


def test_gemm_binding_rejects_bad_memory():
    C = nnfast._C
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    out = np.empty((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"^\[gemm\].*read-only"):
        ro = out.copy()
        ro.setflags(write=False)
        C.gemm(ro, a, b)
    with pytest.raises(ValueError, match=r"^\[gemm\].*share memory"):
        sq = np.ones((4, 4), np.float32)
        C.gemm(sq, sq, np.ones((4, 4), np.float32))
    with pytest.raises(TypeError, match=r"^\[gemm\].*byte order"):
        C.gemm(out, a.astype(">f4"), b)
    with pytest.raises(ValueError, match=r"^\[gemm\].*inner dimensions"):
        C.gemm(out, a, np.ones((3, 5), np.float32))


@pytest.mark.parametrize("w_grad", [True, False])
def test_linear_bias_grad_from_dw_gemm_same_bits(w_grad):
    # With the weight's gradient wanted, the bias gradient comes out of the dW GEMM (gemm's
    # row_sums); without it, from bias_grad. Either way: bias_grad's bits on dz, into a fresh
    # .grad on the first backward and accumulated on the second. 1023 tokens: partial panels.
    rng = np.random.default_rng(4)
    dz1, dz2 = (rng.standard_normal((3, 341, 70)).astype(np.float32) for _ in range(2))
    x = nnfast.tensor(rng.standard_normal((3, 341, 40)).astype(np.float32))
    w = nnfast.tensor(rng.standard_normal((70, 40)).astype(np.float32), requires_grad=w_grad)
    b = nnfast.tensor(rng.standard_normal(70).astype(np.float32), requires_grad=True)
    ref = np.empty(70, np.float32)
    for i, dz in enumerate((dz1, dz2)):
        F.linear(x, w, b).backward(nnfast.tensor(dz))
        nnfast._C.bias_grad(ref, dz.reshape(-1, 70), i > 0)
        assert np.array_equal(b.grad.numpy(), ref)
    assert_close(b.grad, (dz1 + dz2).reshape(-1, 70).astype(np.float64).sum(0), rtol=1e-4, atol=1e-3)
    if w_grad:
        wref = np.zeros((70, 40), np.float32)
        for dz in (dz1, dz2):
            nnfast._C.gemm(wref, dz.reshape(-1, 70).T, x.numpy().reshape(-1, 40), 1.0, 1.0)
        assert np.array_equal(w.grad.numpy(), wref)
