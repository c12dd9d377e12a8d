"""The reduction area's API beyond the SurfaceOp table (tests/surface_reduction.py): named-tuple
results, result dtypes, unique / unique_consecutive options, counting and bucketing ops, tie and
zero gradients, argument overloads and errors."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


def _t(x, device, grad=False):
    t = nnfast.from_numpy(np.asarray(x)).to(device)
    return t.requires_grad_(True) if grad else t


def _h(t):
    return np.asarray(t.detach().cpu()._data)


# ------------------------------------------------------------------ named tuples
@pytest.mark.parametrize("name,args", [("max", (1,)), ("min", (1,)), ("sort", ()), ("topk", (2,)),
                                       ("kthvalue", (2,)), ("median", (1,)), ("mode", ()), ("cummax", (1,)),
                                       ("cummin", (1,))])
def test_values_indices_named_tuples(device, name, args):
    x = _t(np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]]), device)
    r = getattr(x, name)(*args)
    assert type(r).__name__ == name and isinstance(r, tuple)
    values, indices = r
    assert r.values is values and r.indices is indices
    assert indices.dtype == np.int64 and values.dtype == x.dtype
    assert str(values.device) == str(x.device) == str(indices.device)
    np.testing.assert_array_equal(_h(values), np.take_along_axis(_h(x), _h(indices), -1)
                                  if values.ndim == 2 else np.take_along_axis(_h(x), _h(indices)[:, None], 1)[:, 0])


def test_aminmax_fields(device):
    r = nnfast.aminmax(_t(np.array([[3.0, -1.0], [7.0, 2.0]]), device), dim=0)
    assert r.min.tolist() == [3.0, -1.0] and r.max.tolist() == [7.0, 2.0]
    assert type(r).__name__ == "aminmax"


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("dt", [np.int32, np.int64, np.bool_, np.uint8])
def test_integer_sums_and_products_give_int64(device, dt):
    x = _t(np.array([[1, 0, 1], [1, 1, 1]]).astype(dt), device)
    for r in (x.sum(), x.sum(1), x.prod(), x.prod(0), x.cumsum(1), x.cumprod(0), nnfast.nansum(x)):
        assert r.dtype == np.int64
    assert x.sum().item() == 5 and x.prod().item() == 0


def test_dtype_arguments(device):
    x = _t(np.arange(6, dtype=np.float32).reshape(2, 3), device, grad=True)
    assert x.sum(dtype=nnfast.float64).dtype == np.float64
    assert x.mean(1, dtype=nnfast.float64).dtype == np.float64
    assert x.prod(dtype=nnfast.float64).dtype == np.float64
    assert x.cumsum(0, dtype=nnfast.float64).dtype == np.float64
    assert x.norm(dtype=nnfast.float64).dtype == np.float64
    i = _t(np.array([1, 2]), device)
    assert i.sum(dtype=nnfast.float32).dtype == np.float32
    assert i.mean(dtype=nnfast.float64).item() == 1.5
    x.sum(dtype=nnfast.float64).backward()  # the gradient goes back through the cast
    assert x.grad.dtype == np.float32 and _h(x.grad).tolist() == [[1.0] * 3] * 2


def test_mean_of_integers_raises_as_pytorch():
    with pytest.raises(RuntimeError, match=r"^\[mean\] expected a floating point"):
        nnfast.tensor([1, 2, 3]).mean()
    with pytest.raises(RuntimeError, match=r"^\[var\] expected a floating point"):
        nnfast.tensor([1, 2, 3]).var()


def test_logical_reductions_give_bool(device):
    x = _t(np.array([[0.0, 1.0], [2.0, 3.0]]), device)
    assert x.all().dtype == np.bool_ and x.any(1).dtype == np.bool_
    assert x.all(1).tolist() == [False, True] and x.any(0, keepdim=True).tolist() == [[True, True]]
    assert nnfast.all(x, (0, 1)).item() is False
    u = _t(np.array([1, 2], dtype=np.uint8), device)
    assert u.all().dtype == np.uint8  # as PyTorch


def test_count_nonzero_and_argmax_are_int64(device):
    x = _t(np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]), device)
    assert x.count_nonzero().dtype == np.int64 and x.count_nonzero().item() == 3
    assert x.count_nonzero((0, 1)).item() == 3 and x.count_nonzero(0).tolist() == [0, 1, 2]
    assert x.argmax().dtype == np.int64 and x.argmax().item() == 5


# ------------------------------------------------------------------ unique
def test_unique_options(device):
    x = _t(np.array([[3, 1, 3], [2, 1, 1]]), device)
    assert nnfast.unique(x).tolist() == [1, 2, 3]
    v, inv = nnfast.unique(x, return_inverse=True)
    assert inv.shape == (2, 3) and inv.dtype == np.int64
    np.testing.assert_array_equal(_h(v)[_h(inv)], _h(x))
    v, c = x.unique(return_counts=True)
    assert c.tolist() == [3, 1, 2]
    v, inv, c = x.unique(sorted=True, return_inverse=True, return_counts=True, dim=1)
    assert v.tolist() == [[1, 3, 3], [1, 1, 2]] and inv.tolist() == [2, 0, 1] and c.tolist() == [1, 1, 1]
    v, inv, c = nnfast.unique(_t(np.array([[1, 2], [1, 2], [0, 1]]), device), return_inverse=True,
                              return_counts=True, dim=0)
    assert v.tolist() == [[0, 1], [1, 2]] and inv.tolist() == [1, 1, 0] and c.tolist() == [1, 2]


def test_unique_consecutive(device):
    x = _t(np.array([3, 3, 1, 1, 3, 2]), device)
    v, inv, c = nnfast.unique_consecutive(x, return_inverse=True, return_counts=True)
    assert v.tolist() == [3, 1, 3, 2] and inv.tolist() == [0, 0, 1, 1, 2, 3] and c.tolist() == [2, 2, 1, 1]
    m = _t(np.array([[1, 1, 2], [1, 1, 3]]), device)
    v, c = m.unique_consecutive(return_counts=True, dim=1)
    assert v.tolist() == [[1, 2], [1, 3]] and c.tolist() == [2, 1]
    assert nnfast.unique_consecutive(_t(np.zeros(0), device)).shape == (0,)


@needs_torch
def test_unique_matches_torch():
    x = np.random.default_rng(3).integers(0, 4, (5, 3))
    for kw in ({}, {"return_inverse": True, "return_counts": True}, {"dim": 0, "return_inverse": True},
               {"dim": 1, "return_counts": True}):
        got = nnfast.unique(nnfast.from_numpy(x), **kw)
        want = torch.unique(torch.from_numpy(x), **kw)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_array_equal(_h(g), w.numpy())


# ------------------------------------------------------------------ counting and buckets
@needs_torch
def test_bincount_histc_searchsorted_bucketize_match_torch():
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 6, 11)
    w = rng.standard_normal(11).astype(np.float32)
    for args, kw in (((idx,), {}), ((idx,), {"minlength": 9}), ((idx, w), {})):
        g = nnfast.bincount(*[nnfast.from_numpy(a) for a in args], **kw)
        t = torch.bincount(*[torch.from_numpy(a) for a in args], **kw)
        assert str(t.dtype).replace("torch.", "") == g.dtype.name
        np.testing.assert_allclose(_h(g), t.numpy(), rtol=1e-6)
    x = rng.standard_normal(50)
    for kw in ({}, {"bins": 7}, {"bins": 5, "min": -1, "max": 1}):
        np.testing.assert_array_equal(_h(nnfast.histc(nnfast.from_numpy(x), **kw)),
                                      torch.histc(torch.from_numpy(x), **kw).numpy())
    seq = np.sort(rng.standard_normal((3, 6)), axis=1)
    vals = rng.standard_normal((3, 4))
    vals[0, 0] = seq[0, 2]
    for right in (False, True):
        g = nnfast.searchsorted(nnfast.from_numpy(seq), nnfast.from_numpy(vals), right=right)
        np.testing.assert_array_equal(_h(g), torch.searchsorted(torch.from_numpy(seq), torch.from_numpy(vals),
                                                                right=right).numpy())
        b = nnfast.bucketize(nnfast.from_numpy(vals), nnfast.from_numpy(seq[0]), right=right)
        np.testing.assert_array_equal(_h(b), torch.bucketize(torch.from_numpy(vals), torch.from_numpy(seq[0]),
                                                             right=right).numpy())
    assert nnfast.searchsorted(nnfast.from_numpy(seq[0]), nnfast.from_numpy(vals), out_int32=True).dtype == np.int32
    assert nnfast.searchsorted(nnfast.from_numpy(seq[0]), 0.0, side="right").ndim == 0


def test_counting_ops_stay_on_device(device):
    x = _t(np.array([0, 2, 2]), device)
    assert str(nnfast.bincount(x).device) == str(x.device)
    f = _t(np.array([0.5, 1.5]), device)
    assert str(nnfast.histc(f, 2).device) == str(x.device)
    assert str(nnfast.bucketize(f, _t(np.array([1.0]), device)).device) == str(x.device)


def test_counting_errors():
    with pytest.raises(RuntimeError, match=r"^\[bincount\] expected a 1-D tensor of non-negative integers"):
        nnfast.bincount(nnfast.tensor([1, -1]))
    with pytest.raises(RuntimeError, match=r"^\[bincount\] expected"):
        nnfast.bincount(nnfast.tensor([1.0]))
    with pytest.raises(RuntimeError, match=r"^\[bucketize\] expected 1-D boundaries"):
        nnfast.bucketize(nnfast.tensor([1.0]), nnfast.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"^\[searchsorted\] expected"):
        nnfast.searchsorted(nnfast.ones(2, 3), nnfast.ones(3, 2))


# ------------------------------------------------------------------ gradients
def test_prod_gradient_with_zeros(device):
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    t = _t(x, device, grad=True)
    t.prod(1).sum().backward()
    np.testing.assert_array_equal(_h(t.grad), [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])
    t.grad = None
    t.prod().backward()  # two zeros in the whole tensor: every gradient is 0
    np.testing.assert_array_equal(_h(t.grad), np.zeros((3, 3)))


def test_cumprod_gradient_with_zeros_matches_the_polynomial(device):
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    t = _t(x, device, grad=True)
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    (t.cumprod(0) * _t(w, device)).sum().backward()
    # d/dx1 of sum_j w_j prod_{k<=j} x_k = w1 x0 + w2 x0 x2 (terms with x3 = 0 vanish)
    np.testing.assert_allclose(_h(t.grad), [1.0, 2 * 2 + 3 * 2 * 3, 0.0, 0.0, 0.0])


def test_amax_and_full_max_share_ties_evenly_max_dim_routes_to_the_index(device):
    x = np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 3.0]])
    t = _t(x, device, grad=True)
    t.amax(1).sum().backward()
    np.testing.assert_array_equal(_h(t.grad), [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    t.grad = None
    t.max().backward()  # four tied maxima
    np.testing.assert_array_equal(_h(t.grad), [[0, 0.25, 0.25], [0.25, 0, 0.25]])
    t.grad = None
    values, indices = t.max(1)
    values.sum().backward()
    assert indices.tolist() == [1, 0]
    np.testing.assert_array_equal(_h(t.grad), [[0, 1, 0], [1, 0, 0]])


def test_norm_at_zero_has_zero_gradient(device):
    t = _t(np.zeros(4), device, grad=True)
    t.norm().backward()
    np.testing.assert_array_equal(_h(t.grad), np.zeros(4))
    t.grad = None
    nnfast.norm(t, 3).backward()
    np.testing.assert_array_equal(_h(t.grad), np.zeros(4))


def test_nansum_nanmean_give_no_gradient_to_nans(device):
    x = np.array([1.0, np.nan, 3.0])
    t = _t(x, device, grad=True)
    (nnfast.nansum(t) + nnfast.nanmean(t)).backward()
    np.testing.assert_allclose(_h(t.grad), [1.5, 0.0, 1.5])


def test_sort_topk_gradients_scatter_to_indices(device):
    t = _t(np.array([[0.3, -1.0, 2.0, 0.5]]), device, grad=True)
    v, i = t.topk(2)
    (v * _t(np.array([[10.0, 20.0]]), device)).sum().backward()
    np.testing.assert_array_equal(_h(t.grad), [[0.0, 0.0, 10.0, 20.0]])
    t.grad = None
    (t.sort(descending=True).values * _t(np.array([[1.0, 0.0, 0.0, 0.0]]), device)).sum().backward()
    np.testing.assert_array_equal(_h(t.grad), [[0.0, 0.0, 1.0, 0.0]])


@needs_torch
def test_binary_max_min_match_torch_with_ties():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 5.0, 0.0])
    for name in ("max", "min"):
        na, nb = nnfast.tensor(a, requires_grad=True), nnfast.tensor(b, requires_grad=True)
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        getattr(nnfast, name)(na, nb).sum().backward()
        getattr(torch, name)(ta, tb).sum().backward()
        np.testing.assert_array_equal(_h(na.grad), ta.grad.numpy())
        np.testing.assert_array_equal(_h(nb.grad), tb.grad.numpy())


# ------------------------------------------------------------------ overloads and errors
@needs_torch
def test_var_std_overloads_match_torch():
    x = np.random.default_rng(2).standard_normal((3, 4))
    n, t = nnfast.from_numpy(x), torch.from_numpy(x)
    for args, kw in (((), {}), ((False,), {}), ((1,), {}), ((1, False), {}), ((1, True, True), {}),
                     ((), {"dim": 0, "correction": 0}), ((), {"dim": (0, 1), "correction": 2}),
                     ((), {"unbiased": False})):
        for name in ("var", "std"):
            np.testing.assert_allclose(_h(getattr(n, name)(*args, **kw)), getattr(t, name)(*args, **kw).numpy(),
                                       rtol=1e-12, err_msg=f"{name}{args}{kw}")
    assert np.isnan(nnfast.tensor([1.0]).var().item())  # n - correction = 0, as PyTorch


def test_zero_dim_inputs(device):
    s = _t(np.array(2.5), device)
    assert s.sum(0).shape == () and s.max(0).values.shape == () and s.max(-1).indices.item() == 0
    assert s.cumsum(0).shape == () and s.sort().values.item() == 2.5 and s.argmax(0).item() == 0
    assert s.logsumexp(0).item() == 2.5 and s.median().item() == 2.5


def test_empty_dim_list_reduces_everything(device):
    x = _t(np.ones((2, 3)), device)
    assert x.sum(()).item() == 6.0 and x.sum([]).item() == 6.0 and x.amax().item() == 1.0


def test_dim_errors_name_the_op():
    x = nnfast.ones(2, 3)
    with pytest.raises(IndexError, match=r"^\[sum\] expected dim in range \[-2, 1\], got -3"):
        x.sum(-3)
    with pytest.raises(RuntimeError, match=r"^\[sum\] expected each dim at most once"):
        x.sum((0, -2))
    with pytest.raises(IndexError, match=r"^\[topk\] expected dim in range"):
        x.topk(1, dim=2)
    with pytest.raises(ValueError, match=r"^\[norm\] expected p"):
        x.norm("nuc")
    with pytest.raises(ValueError, match=r"^\[max\] expected a non-empty"):
        nnfast.zeros(0, dtype=nnfast.int64).max()


def test_top_level_functions_replace_the_old_ones():
    assert nnfast.sum is nnfast.ops.reduction.sum_ if hasattr(nnfast, "ops") else True
    x = nnfast.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert nnfast.sum(x, 1, keepdim=True).tolist() == [[3.0], [7.0]]
    assert nnfast.mean(x, dim=0).tolist() == [2.0, 3.0]
    assert nnfast.argmax(x, 1).tolist() == [1, 1]


def test_full_max_with_nans_shares_the_gradient_among_them(device):
    t = _t(np.array([1.0, np.nan, np.nan, 2.0]), device, grad=True)
    m = t.max()
    assert np.isnan(m.item())
    m.backward()
    np.testing.assert_array_equal(_h(t.grad), [0.0, 0.5, 0.5, 0.0])  # as PyTorch
