"""Matrix products beyond the surface table: the bmm binding's checks, broadcast batch gradients,
in-place twins, dtype rules, einsum parsing details."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast._native import _C
from nnfast.autograd import gradcheck

from conftest import DEVICES


def _rand(*shape, dtype=np.float64, device="cpu", grad=False):
    t = nnfast.from_numpy(np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape).astype(dtype))
    t = t.to(device)
    return t.requires_grad_(True) if grad else t


# ------------------------------------------------------------------ the binding
def test_bmm_binding_broadcast_and_beta():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 3, 4))
    b = rng.standard_normal((5, 4, 2))
    out = rng.standard_normal((5, 3, 2))
    want = 2.0 * np.matmul(a, b) + 0.5 * out
    _C.bmm(out, np.broadcast_to(a, (5, 3, 4)), b, 2.0, 0.5)  # stride-0 batch: one shared matrix
    np.testing.assert_allclose(out, want, rtol=1e-12)


@pytest.mark.parametrize("args,match", [
    (lambda: (np.empty((2, 3, 2)), np.ones((2, 3)), np.ones((2, 3, 2))), r"\[bmm\] expected A to be 3-D"),
    (lambda: (np.empty((2, 3, 2)), np.ones((2, 3, 4)), np.ones((3, 4, 2))), r"\[bmm\] expected A @ B"),
    (lambda: (np.empty((2, 3, 3)), np.ones((2, 3, 4)), np.ones((2, 4, 2))), r"\[bmm\] expected out of shape"),
    (lambda: (np.empty((2, 3, 2), np.float32), np.ones((2, 3, 4)), np.ones((2, 4, 2))), r"\[bmm\] expected A"),
    (lambda: (np.broadcast_to(np.empty((1, 3, 2)), (2, 3, 2)), np.ones((2, 3, 4)), np.ones((2, 4, 2))),
     r"\[bmm\] expected out"),
])
def test_bmm_binding_errors(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _C.bmm(*args())


def test_bmm_binding_rejects_overlapping_out():
    buf = np.zeros((3, 2))
    out = np.lib.stride_tricks.as_strided(buf, (2, 3, 2), (0, 16, 8), writeable=True)
    with pytest.raises(ValueError, match=r"\[bmm\] expected out"):
        _C.bmm(out, np.ones((2, 3, 4)), np.ones((2, 4, 2)))


# ------------------------------------------------------------------ autograd
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sa,sb", [((2, 1, 3, 2), (3, 2, 4)), ((3, 2), (2, 2, 4)), ((2, 3, 2), (2, 4)),
                                   ((4,), (2, 4, 3)), ((1, 3, 4), (5, 4, 1))])
def test_matmul_broadcast_gradcheck(device, sa, sb):
    a, b = _rand(*sa, device=device, grad=True), _rand(*sb, device=device, grad=True)
    assert gradcheck(lambda x, y: nnfast.matmul(x, y), (a, b))


@pytest.mark.parametrize("device", DEVICES)
def test_matmul_stays_on_device(device):
    a, b = _rand(2, 3, 4, device=device), _rand(4, 5, device=device)
    assert str((a @ b).device).startswith(device)
    assert str(nnfast.einsum("bij,jk->bik", a, b).device).startswith(device)


def test_float32_and_float64_results():
    for dt in (np.float32, np.float64):
        r = nnfast.bmm(_rand(2, 3, 4, dtype=dt), _rand(2, 4, 5, dtype=dt))
        assert r.dtype == dt and r.shape == (2, 3, 5)


def test_integer_matmul_is_exact():
    a = nnfast.tensor([[1, 2], [3, 4]])
    np.testing.assert_array_equal((a @ a).numpy(), np.array([[7, 10], [15, 22]]))


def test_rmatmul_with_array():
    b = _rand(3, 2)
    a = np.ones((4, 3))
    np.testing.assert_allclose((b.__rmatmul__(nnfast.from_numpy(a))).numpy(), a @ b.numpy())


def test_inplace_twins():
    x = _rand(2, 3)
    want = 0.5 * x.numpy() + 2.0 * (_rand(2, 4).numpy() @ _rand(4, 3).numpy())
    r = x.addmm_(_rand(2, 4), _rand(4, 3), beta=0.5, alpha=2.0)
    assert r is x
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-12)


def test_addmm_beta_zero_ignores_nan():
    inp = nnfast.from_numpy(np.full((2, 2), np.nan))
    r = nnfast.addmm(inp, _rand(2, 3), _rand(3, 2), beta=0)
    assert np.isfinite(r.numpy()).all()


# ------------------------------------------------------------------ einsum details
@pytest.mark.parametrize("eq,shapes", [
    ("ba,ca", [(2, 3), (4, 3)]),          # implicit output is alphabetical: "bc"
    ("...j,j", [(2, 3, 4), (4,)]),
    ("i...->...", [(3, 2, 2)]),
    ("ij,ij", [(2, 3), (2, 3)]),          # implicit: "ij" (elementwise, no contraction)
    ("bij,bkj->bik", [(1, 3, 2), (4, 5, 2)]),  # size-1 batch broadcasts
])
def test_einsum_cases(eq, shapes):
    ops = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate(shapes)]
    got = nnfast.einsum(eq, *[nnfast.from_numpy(o) for o in ops]).numpy()
    np.testing.assert_allclose(got, np.einsum(eq, *ops), rtol=1e-12, atol=1e-12)


def test_einsum_bad_subscript():
    with pytest.raises(ValueError, match=r"\[einsum\] expected"):
        nnfast.einsum("i1->i", _rand(3, 3))


def test_linalg_namespace():
    assert nnfast.linalg.matmul is not None and nnfast.linalg.multi_dot is not None
