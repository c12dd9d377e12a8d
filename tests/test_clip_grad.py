"""nn.utils.clip_grad_norm_ / clip_grad_value_ vs NumPy written here."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import nn
from nnfast.nn.utils import clip_grad_norm_, clip_grad_value_, get_total_norm
from nnfast.tensor import Tensor

SHAPES = [(37, 29), (13,), (0,), (3, 1), (70001,)]  # odd tails, an empty grad, one split across threads


def _params(dtype, rng, scale=1.0, shapes=SHAPES):
    ps = []
    for s in shapes:
        p = nn.Parameter(np.zeros(s, dtype))
        p.grad = Tensor((scale * rng.standard_normal(s)).astype(dtype))
        ps.append(p)
    ps.append(nn.Parameter(np.zeros(4, dtype)))  # grad None: ignored
    return ps


def _np_norm(grads, p):
    flat = np.concatenate([g.astype(np.float64).ravel() for g in grads])
    if p == np.inf:
        return np.abs(flat).max()
    if p == -np.inf:
        return np.abs(flat).min()
    if p == 0:
        # PyTorch: the 0-"norm" of the per-tensor 0-norms (tensors with any nonzero element)
        return float(sum(np.count_nonzero(g) > 0 for g in grads))
    return (np.abs(flat) ** p).sum() ** (1 / p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf, 3.0, 0.5, -np.inf, 0.0])
@pytest.mark.parametrize("max_norm", [1.0, 1e9])
def test_clip_grad_norm(dtype, norm_type, max_norm):
    rng = np.random.default_rng(0)
    params = _params(dtype, rng)
    before = [p.grad._data.copy() for p in params if p.grad is not None]
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    want = _np_norm(before, norm_type)
    assert isinstance(total, Tensor) and total.dtype == dtype and total.shape == ()
    np.testing.assert_allclose(total.item(), want, rtol=1e-6 if dtype == np.float32 else 1e-12)
    coef = min(1.0, max_norm / (want + 1e-6))
    for p, g in zip(params, before):
        np.testing.assert_allclose(p.grad._data, g * coef, rtol=1e-6 if dtype == np.float32 else 1e-12)
        if coef == 1.0:
            np.testing.assert_array_equal(p.grad._data, g)
    if norm_type not in (0.0, -np.inf) and max_norm == 1.0:
        np.testing.assert_allclose(_np_norm([p.grad._data for p in params if p.grad is not None], norm_type),
                                   1.0, rtol=1e-5)


def test_clip_grad_norm_mixed_dtypes_and_single_tensor():
    rng = np.random.default_rng(1)
    a = nn.Parameter(np.zeros(5, np.float32))
    b = nn.Parameter(np.zeros(7))
    a.grad, b.grad = Tensor(rng.standard_normal(5).astype(np.float32)), Tensor(rng.standard_normal(7))
    g = [a.grad._data.copy(), b.grad._data.copy()]
    total = clip_grad_norm_([a, b], 0.5)
    assert total.dtype == np.float64
    np.testing.assert_allclose(total.item(), _np_norm(g, 2), rtol=1e-7)
    np.testing.assert_allclose(b.grad._data, g[1] * 0.5 / (total.item() + 1e-6), rtol=1e-12)
    c = nn.Parameter(np.zeros(3))
    c.grad = Tensor(np.array([3.0, 4.0, 0.0]))
    assert clip_grad_norm_(c, 1.0).item() == 5.0  # a single Tensor is accepted
    np.testing.assert_allclose(c.grad._data, [0.6, 0.8, 0.0], rtol=1e-6)


def test_clip_grad_norm_generator_and_no_grads():
    assert clip_grad_norm_((p for p in [nn.Parameter(np.zeros(2))]), 1.0).item() == 0.0
    m = nn.Linear(3, 2)
    m(nnfast.randn(4, 3)).sum().backward()
    g = [p.grad._data.copy() for p in m.parameters()]
    total = clip_grad_norm_(m.parameters(), 1e-3)
    np.testing.assert_allclose(total.item(), _np_norm(g, 2), rtol=1e-6)


def test_clip_grad_norm_strided_grad_is_scaled_in_place():
    p = nn.Parameter(np.zeros((4, 3)))
    big = np.arange(24, dtype=np.float64).reshape(4, 6)
    p.grad = Tensor(big[:, ::2])
    clip_grad_norm_([p], 1.0)
    np.testing.assert_allclose(np.linalg.norm(big[:, ::2]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(big[:, 1::2], np.arange(24.0).reshape(4, 6)[:, 1::2])


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_error_if_nonfinite(bad):
    rng = np.random.default_rng(2)
    params = _params(np.float32, rng)
    params[0].grad._data[3, 4] = bad
    before = [p.grad._data.copy() for p in params if p.grad is not None]
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad._data, g)  # raised before touching anything
    total = clip_grad_norm_(params, 1.0)  # without the flag, PyTorch scales by the non-finite norm
    assert not np.isfinite(total.item())
    if bad == np.inf:  # coef = 1 / inf = 0
        np.testing.assert_array_equal(params[1].grad._data, 0.0)
    else:
        assert np.isnan(params[1].grad._data).all()


def test_inf_norm_propagates_nan():
    g = np.array([1.0, np.nan, -5.0])
    assert np.isnan(get_total_norm([Tensor(g)], np.inf).item())
    assert get_total_norm([Tensor(np.array([1.0, -7.5, 2.0]))], "inf").item() == 7.5


def test_threads_do_not_change_the_norm():
    rng = np.random.default_rng(4)
    grads = [Tensor(rng.standard_normal(s).astype(np.float32)) for s in [(300001,), (1000, 77)]]
    old = nnfast.get_num_threads()
    try:
        out = []
        for nt in (1, max(2, old)):
            nnfast.set_num_threads(nt)
            out.append([get_total_norm(grads, p).item() for p in (2.0, 1.0, np.inf)])
    finally:
        nnfast.set_num_threads(old)
    assert out[0] == out[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_clip_grad_value(dtype):
    rng = np.random.default_rng(3)
    params = _params(dtype, rng, scale=2.0)
    params[1].grad._data[2] = np.nan
    before = [p.grad._data.copy() for p in params if p.grad is not None]
    assert clip_grad_value_(params, 0.75) is None
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad._data, np.clip(g, -0.75, 0.75))  # NaN stays NaN
    with pytest.raises(ValueError, match="clip_value >= 0"):
        clip_grad_value_(params, -1.0)


def test_bad_norm_type():
    p = nn.Parameter(np.zeros(2))
    p.grad = Tensor(np.ones(2))
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_([p], 1.0, norm_type=-2.0)
