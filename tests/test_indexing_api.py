"""Indexing and view behaviour beyond the surface tables: ``x[idx] = v`` under autograd, views
sharing the version counter, the index forms (mask, list, range, tensor) and the in-place twins."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def _t(a, device="cpu", requires_grad=False):
    t = nnfast.tensor(np.asarray(a, dtype=np.float64)).to(device)
    return t.requires_grad_() if requires_grad else t


def _np(t):
    return np.asarray(t.detach().cpu()._data)


# ---------------------------------------------------------------- setitem with autograd
def test_setitem_gradient_flows_to_value_and_untouched_part(device):
    x = _t(np.arange(12.0).reshape(3, 4), device, requires_grad=True)
    v = _t([10.0, 20.0, 30.0, 40.0], device, requires_grad=True)
    y = x * 2
    y[1] = v * 3
    (y * y).sum().backward()
    gx = 2 * 2 * (2 * np.arange(12.0).reshape(3, 4))
    gx[1] = 0
    np.testing.assert_allclose(_np(x.grad), gx)
    np.testing.assert_allclose(_np(v.grad), 2 * 9 * np.array([10.0, 20.0, 30.0, 40.0]))


def test_setitem_mask_and_broadcast_value(device):
    x = _t(np.arange(6.0) - 2.5, device, requires_grad=True)
    v = _t(7.0, device, requires_grad=True)
    y = x.clone()
    y[y > 0] = v
    y.sum().backward()
    np.testing.assert_allclose(_np(y), np.where(np.arange(6.0) - 2.5 > 0, 7.0, np.arange(6.0) - 2.5))
    np.testing.assert_allclose(_np(x.grad), [1, 1, 1, 0, 0, 0])
    assert _np(v.grad) == 3.0


def test_setitem_on_leaf_requiring_grad_raises():
    x = _t([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x[0] = 5.0
    with nnfast.no_grad():
        x[0] = 5.0
    assert _np(x).tolist() == [5.0, 2.0]


def test_setitem_without_grad_bumps_version_and_casts():
    x = nnfast.zeros(4, dtype=np.int64)
    v0 = x._version
    x[1:3] = nnfast.tensor([2.7, 3.2])
    assert x.dtype == np.int64 and _np(x).tolist() == [0, 2, 3, 0]
    assert x._version == v0 + 1


def test_setitem_matches_torch_gradients():
    if torch is None:
        pytest.skip("torch not installed")
    a = np.random.default_rng(0).standard_normal((4, 5))
    b = np.random.default_rng(1).standard_normal((2, 5))
    xs = []
    for lib in (nnfast, torch):
        x = lib.tensor(a, requires_grad=True)
        v = lib.tensor(b, requires_grad=True)
        y = x * 3
        y[[0, 3]] = v * v
        (y * y).sum().backward()
        xs.append((np.asarray(x.grad.detach().numpy() if lib is torch else _np(x.grad))))
    np.testing.assert_allclose(xs[0], xs[1])


# ---------------------------------------------------------------- views share versions
def test_write_through_view_bumps_base_version(device):
    x = _t(np.arange(6.0), device)
    v = x[1:4]
    w = x.view(2, 3)
    before = x._version
    v[0] = 100.0
    assert x._version == before + 1 and w._version == x._version
    assert _np(x)[1] == 100.0 and _np(w)[0, 1] == 100.0


def test_backward_needing_overwritten_values_raises(device):
    a = _t([1.0, 2.0, 3.0], device, requires_grad=True)
    b = a * 1
    c = b.exp()  # saves its output
    c[0] = 0.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


def test_view_results_share_storage_copies_do_not(device):
    x = _t(np.arange(12.0).reshape(3, 4), device)
    for view in (x[1], x[:, 1:3], x[None, ..., 0], x.t(), x.view(4, 3), x.unsqueeze(0), x.narrow(1, 1, 2),
                 x.select(0, 2), x.expand(2, 3, 4), x.diagonal(), *x.split(1), *x.unbind(1)):
        assert view._vc is x._vc
    for copy in (x[[0, 1]], x[x > 3], x.flip(0), x.roll(1), x.index_select(0, nnfast.tensor([0]))):
        assert copy._vc is not x._vc


def test_view_of_non_contiguous_raises_reshape_copies():
    x = nnfast.zeros(3, 4).t()
    with pytest.raises(RuntimeError, match=r"\[view\] expected a view-compatible"):
        x.view(12)
    assert x.reshape(12).shape == (12,)


# ---------------------------------------------------------------- index forms
@pytest.mark.parametrize("form", ["mask", "list", "range", "tensor", "pair", "neg-list", "bool-list"])
def test_index_forms_match_numpy_with_gradient(form, device):
    a = np.arange(20.0).reshape(4, 5)
    y = np.array([4, 0, 0, 2])
    idx = {"mask": a > 7, "list": [0, 2, 2], "range": range(1, 4), "tensor": nnfast.tensor([3, 1]),
           "pair": (range(4), nnfast.tensor(y)), "neg-list": [-1, 0], "bool-list": [True, False, True, False]}[form]
    np_idx = {"range": np.arange(1, 4), "tensor": np.array([3, 1]), "pair": (np.arange(4), y),
              "bool-list": np.array([True, False, True, False])}.get(form, idx)
    x = _t(a, device, requires_grad=True)
    r = x[idx]
    np.testing.assert_allclose(_np(r), a[np_idx])
    r.sum().backward()
    expect = np.zeros_like(a)
    np.add.at(expect, np_idx, 1.0)
    np.testing.assert_allclose(_np(x.grad), expect)
    assert str(r.device).startswith(device)


def test_index_out_of_range_errors():
    x = nnfast.zeros(3)
    with pytest.raises(IndexError, match=r"\[index_select\] expected indices in \[0, 3\)"):
        nnfast.index_select(x, 0, nnfast.tensor([3]))
    with pytest.raises(RuntimeError, match=r"\[gather\] expected"):
        nnfast.gather(nnfast.zeros(2, 2), 0, nnfast.tensor([0]))
    with pytest.raises(RuntimeError, match=r"\[gather\] expected an integer"):
        nnfast.gather(x, 0, nnfast.tensor([0.0]))


def test_gather_backward_is_deterministic_with_repeats(device):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(5)
    idx = nnfast.tensor(rng.integers(0, 5, size=1000))
    grads = []
    for _ in range(2):
        x = _t(a, device, requires_grad=True)
        (x.gather(0, idx) * _t(rng.standard_normal(1000) * 0 + np.linspace(-1, 1, 1000), device)).sum().backward()
        grads.append(_np(x.grad))
    assert np.array_equal(grads[0], grads[1])


# ---------------------------------------------------------------- in-place twins
@pytest.mark.parametrize("name,args", [
    ("index_add_", (0, nnfast.tensor([0, 0]), nnfast.ones(2, 3))),
    ("index_fill_", (1, nnfast.tensor([2]), -1.0)),
    ("index_copy_", (0, nnfast.tensor([1]), nnfast.ones(1, 3))),
    ("masked_fill_", (nnfast.tensor([True, False, True]), 9.0)),
    ("scatter_", (0, nnfast.tensor([[1, 0, 1]]), nnfast.ones(1, 3))),
    ("scatter_add_", (0, nnfast.tensor([[1, 1, 1]]), nnfast.ones(1, 3))),
    ("tril_", ()), ("triu_", (1,)),
])
def test_inplace_twins_match_torch(name, args):
    if torch is None:
        pytest.skip("torch not installed")
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x = nnfast.tensor(a)
    getattr(x, name)(*args)
    targs = [torch.from_numpy(np.asarray(v._data)) if isinstance(v, nnfast.Tensor) else v for v in args]
    tx = torch.tensor(a)
    getattr(tx, name)(*targs)
    np.testing.assert_allclose(_np(x), tx.numpy())


def test_where_one_arg_and_nonzero():
    c = nnfast.tensor([[0, 1], [2, 0]])
    rows, cols = nnfast.where(c)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    assert nnfast.nonzero(c).tolist() == [[0, 1], [1, 0]] and nnfast.argwhere(c).dtype == np.int64
    x = nnfast.tensor([1.0, 2.0])
    assert nnfast.where(nnfast.tensor([True, False]), x, 0.0).tolist() == [1.0, 0.0]


def test_cat_promotes_and_checks_devices():
    r = nnfast.cat([nnfast.tensor([1, 2]), nnfast.tensor([0.5])])
    assert r.dtype == np.float32 and r.tolist() == [1.0, 2.0, 0.5]
    if nnfast.cuda.is_available():
        with pytest.raises(RuntimeError, match=r"\[cat\] expected all tensors on one device"):
            nnfast.cat([nnfast.zeros(1), nnfast.zeros(1).cuda()])


def test_split_chunk_unbind_shapes():
    x = nnfast.zeros(7, 2)
    assert [p.shape[0] for p in x.split(3)] == [3, 3, 1]
    assert [p.shape[0] for p in x.chunk(3)] == [3, 3, 1]
    assert [p.shape[0] for p in x.tensor_split(3)] == [3, 2, 2]
    assert len(x.unbind(1)) == 2 and x.unbind(1)[0].shape == (7,)
    assert nnfast.zeros(6).chunk(4)[-1].shape == (2,) and len(nnfast.zeros(6).chunk(4)) == 3
