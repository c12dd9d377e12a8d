"""Issue 13 leftovers: nnfast.unique as PyTorch (NaNs distinct, dims, inverse / counts), the
same-dtype rule of index_add / index_copy / scatter / scatter_add, ``import nnfast.linalg``, and
erf / erfc / erfinv as whole-array expressions (accuracy in ulp against ``math``, special values,
gradients, every device). The SurfaceOp rows (tests/surface_pointwise.py, surface_linalg.py) cover
forward / gradcheck / non-contiguous / PyTorch for erf, erfc, erfinv and the linalg norms."""
import importlib
import math

import numpy as np
import pytest

import nnfast
from nnfast.autograd import gradcheck
from conftest import DEVICES

try:  # PyTorch is an optional oracle: its comparisons skip without it, the rest still runs
    import torch
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


# ---------------------------------------------------------------- unique
UNIQUE_CASES = [
    (np.array([3, 1, 3, 2, 7, 1, 5]), {"sorted": False, "return_inverse": True, "return_counts": True}),
    (np.array(3.0), {"return_inverse": True, "return_counts": True}),
    (np.array([[1, 2], [0, 1], [1, 2]]), {"dim": 0, "return_inverse": True, "return_counts": True}),
    (np.array([[1, 2], [0, 1], [1, 2]]), {"dim": -1, "sorted": False, "return_inverse": True}),
    (np.array([[[1, 2], [0, 1]], [[1, 2], [0, 1]]]), {"dim": 1, "return_counts": True}),
    (np.array([np.nan, 1.0, np.nan, 1.0]), {"return_inverse": True, "return_counts": True}),
    (np.array([True, False, True]), {"return_counts": True}),
    (np.zeros((0, 3)), {"dim": 0, "return_inverse": True, "return_counts": True}),
    (np.zeros((0, 3)), {"return_inverse": True}),
]


@needs_torch
@pytest.mark.parametrize("a,kw", UNIQUE_CASES, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_unique_matches_torch(a, kw):
    ours = nnfast.unique(nnfast.tensor(a), **kw)
    theirs = torch.unique(torch.tensor(a), **kw)
    ours, theirs = (ours, theirs) if isinstance(ours, tuple) else ((ours,), (theirs,))
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_array_equal(o.numpy(), t.numpy())
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    assert nnfast.tensor([3, 1, 3]).unique(return_counts=True)[1].tolist() == [1, 2]


# ---------------------------------------------------------------- source dtype of the scatter / index family
@pytest.mark.parametrize("call,tag", [
    (lambda x, i, s: nnfast.index_add(x, 0, i, s), "index_add_"),
    (lambda x, i, s: x.index_add(0, i, s), "index_add_"),
    (lambda x, i, s: x.index_add_(0, i, s), "index_add_"),
    (lambda x, i, s: x.index_copy(0, i, s), "index_copy_"),
    (lambda x, i, s: nnfast.scatter(x, 0, i, s), "scatter"),
    (lambda x, i, s: x.scatter_(0, i, s), "scatter"),
    (lambda x, i, s: nnfast.scatter_add(x, 0, i, s), "scatter"),
    (lambda x, i, s: x.scatter_add_(0, i, s), "scatter"),
    (lambda x, i, s: x.scatter_reduce(0, i, s, "sum"), "scatter"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_source_of_another_dtype_raises(call, tag):
    x = nnfast.zeros(3)  # float32, as torch.zeros: torch raises here too (RuntimeError)
    src = nnfast.ones(2, dtype=nnfast.float64)
    with pytest.raises(RuntimeError, match=rf"^\[{tag}\] expected self and (source|src) to have the same dtype"):
        call(x, nnfast.tensor([0, 2]), src)
    assert x.tolist() == [0.0, 0.0, 0.0]  # nothing written
    same = call(nnfast.zeros(3), nnfast.tensor([0, 2]), nnfast.ones(2))  # same dtype still works
    assert same.tolist() == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------- nnfast.linalg
@needs_torch
def test_linalg_is_an_importable_module():
    L = importlib.import_module("nnfast.linalg")
    assert nnfast.linalg is L
    for name in ("matmul", "multi_dot", "norm", "vector_norm", "matrix_norm"):
        assert callable(getattr(L, name)), name
    a = np.random.default_rng(0).standard_normal((4, 3))
    x = nnfast.tensor(a, requires_grad=True)
    assert gradcheck(lambda t: L.matrix_norm(t, np.inf), (x,))
    assert gradcheck(lambda t: L.norm(t, dim=(0, 1)), (x,))
    np.testing.assert_allclose(L.norm(x, -1).item(), torch.linalg.norm(torch.tensor(a), -1).item(), rtol=1e-14)


# ---------------------------------------------------------------- erf / erfc / erfinv
def _ulp(got, want):
    return np.abs(got - want) / np.spacing(np.maximum(np.abs(want), np.finfo(np.float64).tiny))


def test_erf_erfc_accuracy_in_ulp():
    x = np.concatenate([np.linspace(-9, 9, 7201), [0.0, 1e-300, 1e-20, 1.4999999, 1.5, 1.9999, 2.0, 26.5]])
    erf = nnfast.erf(nnfast.tensor(x)).numpy()
    erfc = nnfast.erfc(nnfast.tensor(x)).numpy()
    want_erf = np.array([math.erf(v) for v in x])
    want_erfc = np.array([math.erfc(v) for v in x])
    assert _ulp(erf, want_erf).max() <= 8
    ok = want_erfc > 0
    far = ok & ((x <= 0.6) | (x >= 1.5))  # where erfc is not 1 - erf (see nnfast/_special.py)
    assert _ulp(erfc[far], want_erfc[far]).max() <= 16
    assert _ulp(erfc[ok], want_erfc[ok]).max() <= 160


@needs_torch
def test_erf_family_special_values_and_dtypes():
    s = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])
    np.testing.assert_array_equal(nnfast.erf(nnfast.tensor(s)).numpy(), [np.nan, 1.0, -1.0, 0.0, -0.0])
    assert np.signbit(nnfast.erf(nnfast.tensor(s)).numpy()[4])
    np.testing.assert_array_equal(nnfast.erfc(nnfast.tensor(s)).numpy(), [np.nan, 0.0, 2.0, 1.0, 1.0])
    y = np.array([np.nan, 1.0, -1.0, 1.5, -2.0, 0.0, -0.0])
    np.testing.assert_array_equal(nnfast.erfinv(nnfast.tensor(y)).numpy(),
                                  torch.erfinv(torch.tensor(y)).numpy())
    for f in (nnfast.erf, nnfast.erfc, nnfast.erfinv):
        assert f(nnfast.tensor([0.5], dtype=nnfast.float32)).dtype == nnfast.float32
        assert f(nnfast.tensor([0, 1])).dtype == nnfast.get_default_dtype()  # integers give the default float


@needs_torch
def test_erfinv_inverts_erf_up_to_the_tails():
    y = np.concatenate([np.linspace(-0.999, 0.999, 2001), 1 - np.logspace(-15, -1, 15), -(1 - np.logspace(-15, -1, 15))])
    x = nnfast.erfinv(nnfast.tensor(y)).numpy()
    np.testing.assert_allclose(x, torch.erfinv(torch.tensor(y)).numpy(), rtol=1e-13, atol=1e-300)
    tail = np.abs(y) > 0.5  # relative residual of 1 - |y| (exact there) against erfc(|x|)
    res = np.array([math.erfc(abs(v)) for v in x[tail]]) / (1 - np.abs(y[tail])) - 1
    assert np.abs(res).max() < 1e-13


@pytest.mark.parametrize("device", DEVICES)
def test_erf_family_gradients_and_devices(device):
    a = np.random.default_rng(1).uniform(-0.9, 0.9, 7)
    x = nnfast.tensor(a, requires_grad=True).to(device).detach().requires_grad_()
    assert gradcheck(lambda t: nnfast.erf(t) + nnfast.erfc(2 * t) + nnfast.erfinv(t), (x,))
    for f in (nnfast.erf, nnfast.erfc, nnfast.erfinv):
        np.testing.assert_array_equal(f(x).detach().cpu().numpy(), f(nnfast.tensor(a)).detach().numpy())
    t = nnfast.tensor([0.1, 0.2]).to(device)
    t.erfinv_()
    t.erfc_()
    np.testing.assert_allclose(t.cpu().numpy(), [0.9, 0.8], rtol=1e-6)
