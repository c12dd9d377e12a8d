"""Creation area beyond the surface table: dtypes, conversions, Generator determinism, sampling
statistics (fixed seeds, wide bounds), in-place random fills and PyTorch's repr."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F

from surface import torch

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")

DTYPE_NAMES = ["float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32",
               "int", "int16", "short", "int8", "uint8", "bool"]


def _h(t):
    return np.asarray(t.detach().cpu()._data)


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_names_compare_equal_to_numpy(name):
    d = getattr(nnfast, name)
    x = nnfast.zeros(2, dtype=d)
    assert x.dtype == d and d == x.dtype and hash(d) == hash(x.dtype)
    assert isinstance(x.dtype, nnfast.dtype) and isinstance(d, nnfast.dtype)
    assert np.dtype(d) == x.dtype
    assert pickle.loads(pickle.dumps(d)) is nnfast.__dict__[name]
    assert d != None and d != "float32"  # noqa: E711


@needs_torch
@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_properties_match_torch(name):
    d, t = getattr(nnfast, name), getattr(torch, name)
    assert d.is_floating_point == t.is_floating_point
    assert d.is_complex is False and d.is_signed == t.is_signed and d.itemsize == t.itemsize
    assert repr(d) == repr(t).replace("torch.", "nnfast.")


@needs_torch
@pytest.mark.parametrize("name", ["float32", "float64", "float16", "bfloat16"])
def test_finfo_matches_torch(name):
    a, b = nnfast.finfo(getattr(nnfast, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "resolution"):
        assert float(getattr(a, attr)) == pytest.approx(float(getattr(b, attr)), rel=1e-3), attr


@needs_torch
@pytest.mark.parametrize("name", ["int64", "int32", "int16", "int8", "uint8"])
def test_iinfo_matches_torch(name):
    a, b = nnfast.iinfo(getattr(nnfast, name)), torch.iinfo(getattr(torch, name))
    assert (a.bits, a.max, a.min) == (b.bits, b.max, b.min)


def test_finfo_iinfo_errors():
    with pytest.raises(TypeError, match=r"\[finfo\] expected"):
        nnfast.finfo(nnfast.int64)
    with pytest.raises(TypeError, match=r"\[iinfo\] expected"):
        nnfast.iinfo(nnfast.float32)
    assert nnfast.finfo().eps == np.finfo(np.float32).eps


def test_is_floating_point_and_complex():
    assert nnfast.is_floating_point(nnfast.ones(2)) and nnfast.ones(2).is_floating_point()
    assert nnfast.ones(2).bfloat16().is_floating_point()
    assert not nnfast.arange(3).is_floating_point() and not nnfast.is_complex(nnfast.ones(1))
    assert nnfast.ones(2).element_size() == 4


def test_default_dtype_drives_float_creation():
    assert nnfast.get_default_dtype() == nnfast.float32
    nnfast.set_default_dtype(nnfast.float64)
    try:
        assert nnfast.get_default_dtype() is nnfast.float64
        for t in (nnfast.tensor([1.5]), nnfast.arange(0, 1, 0.5), nnfast.linspace(0, 1, 3), nnfast.zeros(2),
                  nnfast.rand(2), nnfast.full((2,), 1.5), nnfast.eye(2)):
            assert t.dtype == nnfast.float64
        assert nnfast.tensor([1]).dtype == nnfast.int64
    finally:
        nnfast.set_default_dtype(nnfast.float32)
    with pytest.raises(TypeError, match=r"\[set_default_dtype\] expected"):
        nnfast.set_default_dtype(nnfast.int64)


# ------------------------------------------------------------------ conversions
CONVERSIONS = ["float", "double", "half", "bfloat16", "long", "int", "short", "char", "byte", "bool"]


@needs_torch
@pytest.mark.parametrize("method", CONVERSIONS)
def test_conversion_methods_match_torch(method, device):
    x = np.array([[-2.5, 0.0, 1.75], [3.0, -0.5, 7.25]], dtype=np.float32)
    got = getattr(nnfast.from_numpy(x).to(device), method)()
    want = getattr(torch.from_numpy(x), method)()
    assert got.dtype == getattr(nnfast, str(want.dtype).replace("torch.", "")) and got.device == device
    np.testing.assert_array_equal(_h(got).astype(np.float64), want.float().numpy().astype(np.float64))


def test_type_strings_and_type_conversion(device):
    x = nnfast.ones(2, device=device)
    prefix = "nnfast.cuda." if device == "cuda" else "nnfast."
    assert x.type() == prefix + "FloatTensor" and x.long().type() == prefix + "LongTensor"
    assert x.type(nnfast.float64).dtype == nnfast.float64
    y = x.type("nnfast.DoubleTensor")
    assert y.dtype == nnfast.float64 and y.device == "cpu"
    assert x.type("torch.IntTensor").dtype == nnfast.int32
    with pytest.raises(ValueError, match=r"\[type\] expected"):
        x.type("nnfast.NopeTensor")


def test_to_forms(device):
    x = nnfast.ones(3)
    other = nnfast.zeros(1, dtype=nnfast.float64, device=device)
    assert x.to(other).dtype == nnfast.float64 and x.to(other).device == device
    y = x.to(device, nnfast.float16)
    assert y.dtype == nnfast.float16 and y.device == device
    assert x.to(dtype=nnfast.int64).dtype == nnfast.int64
    assert x.to(nnfast.float32) is x and x.to(nnfast.float32, copy=True) is not x
    assert x.type_as(other).dtype == nnfast.float64
    with pytest.raises(TypeError, match=r"\[to\] expected"):
        x.to(object())


def test_cast_gradient_flows_back_in_the_source_dtype(device):
    x = nnfast.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    y = x.double() * nnfast.tensor([2.0, 3.0, 4.0], dtype=nnfast.float64, device=device)
    y.sum().backward()
    assert x.grad.dtype == nnfast.float32 and x.grad.device == device
    np.testing.assert_array_equal(_h(x.grad), [2.0, 3.0, 4.0])
    h = x.half()
    assert h.requires_grad and h.grad_fn is not None
    assert not x.long().requires_grad  # no gradient into integers, as PyTorch
    z = nnfast.tensor([0.5, -1.5], dtype=nnfast.float64, requires_grad=True)
    (z.float() * 3).sum().backward()
    assert z.grad.dtype == nnfast.float64 and _h(z.grad).tolist() == [3.0, 3.0]


def test_half_and_bfloat16_storage_ops(device):
    for name in ("float16", "bfloat16"):
        d = getattr(nnfast, name)
        x = nnfast.arange(6, dtype=nnfast.float32, device=device).reshape(2, 3).to(d)
        assert x.dtype == d and x.device == device
        assert x[1].tolist() == [3.0, 4.0, 5.0] and x.T.shape == (3, 2)
        assert x.clone().float().tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        assert f"dtype=nnfast.{name}" in repr(x)
        if name == "bfloat16":  # the layers take bf16 (tests/test_autocast.py)
            assert F.relu(x).dtype == d and F.linear(x, nnfast.ones(4, 3, device=device).to(d)).dtype == d
            continue
        with pytest.raises(TypeError, match=r"\[relu\] expected input to be float32 or float64"):
            F.relu(x)
        with pytest.raises(TypeError, match=r"\[linear\] expected input to be float32 or float64"):
            F.linear(x, nnfast.ones(4, 3, device=device).to(d))


# ------------------------------------------------------------------ creation
@needs_torch
@pytest.mark.parametrize("args", [(5,), (1, 4), (0, 1, 0.25), (2.0, 5), (0, 5, 2), (-1.5, 1.0, 0.5), (10, 0, -3)])
def test_arange_dtype_inference_matches_torch(args):
    got, want = nnfast.arange(*args), torch.arange(*args)
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    np.testing.assert_allclose(_h(got), want.numpy())


@needs_torch
@pytest.mark.parametrize("value", [3, 2.5, True, -1])
def test_full_dtype_inference_matches_torch(value):
    got, want = nnfast.full((2, 3), value), torch.full((2, 3), value)
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")


def test_tensor_from_nested_data(device):
    a = nnfast.tensor([[nnfast.tensor(1.0), 2], [3, nnfast.tensor(4.5)]], device=device)
    assert a.dtype == nnfast.float32 and a.device == device and a.tolist() == [[1.0, 2.0], [3.0, 4.5]]
    assert nnfast.tensor([True, False]).dtype == nnfast.bool
    assert nnfast.tensor([1, 2]).dtype == nnfast.int64 and nnfast.tensor(3.0).shape == ()
    b = nnfast.tensor([1, 2], dtype=nnfast.float64, requires_grad=True)
    assert b.requires_grad and b.dtype == nnfast.float64
    with pytest.raises(TypeError, match=r"\[requires_grad_\] expected"):
        nnfast.tensor([1, 2], requires_grad=True)


def test_memory_sharing_functions():
    a = np.arange(4.0)
    assert np.shares_memory(nnfast.from_numpy(a)._data, a)
    assert np.shares_memory(nnfast.as_tensor(a)._data, a)
    assert not np.shares_memory(nnfast.tensor(a)._data, a)
    assert nnfast.as_tensor(a, dtype=nnfast.float32).dtype == nnfast.float32
    t = nnfast.ones(2)
    assert nnfast.as_tensor(t) is t and nnfast.asarray(t) is t
    assert not np.shares_memory(nnfast.asarray(a, copy=True)._data, a)
    with pytest.raises(ValueError, match=r"\[asarray\] expected"):
        nnfast.asarray(a, dtype=nnfast.float32, copy=False)
    assert nnfast.asarray([1.0, 2.0], requires_grad=True).requires_grad


def test_factories_take_device_and_sizes(device):
    for t in (nnfast.zeros(2, 3, device=device), nnfast.ones((2, 3), device=device), nnfast.empty([2, 3], device=device),
              nnfast.full((2, 3), 1.0, device=device), nnfast.rand(nnfast.Size([2, 3]), device=device),
              nnfast.randn(2, 3, device=device), nnfast.randint(0, 5, (2, 3), device=device),
              nnfast.eye(2, 3, device=device), nnfast.linspace(0, 1, 6, device=device).reshape(2, 3),
              nnfast.arange(6, device=device).reshape(2, 3)):
        assert t.shape == (2, 3) and t.device == device
    x = nnfast.ones(2, 3, dtype=nnfast.float64, device=device)
    for t in (nnfast.zeros_like(x), nnfast.ones_like(x), nnfast.empty_like(x), nnfast.full_like(x, 2.0),
              nnfast.rand_like(x), nnfast.randn_like(x), nnfast.randint_like(x, 4), x.new_zeros(2, 3),
              x.new_ones((2, 3)), x.new_empty(2, 3), x.new_full((2, 3), 1.0), x.new_tensor([[1, 2, 3]] * 2)):
        assert t.shape == (2, 3) and t.device == device and t.dtype == nnfast.float64
    assert nnfast.zeros_like(x, dtype=nnfast.int64).dtype == nnfast.int64
    assert nnfast.zeros(2, requires_grad=True).requires_grad
    assert nnfast.Size([2, 3]).numel() == 6 and repr(nnfast.Size([2, 3])) == "nnfast.Size([2, 3])"


def test_randint_forms():
    g = nnfast.Generator().manual_seed(0)
    a = nnfast.randint(5, (100,), generator=g)
    b = nnfast.randint(-3, 2, size=(100,), generator=g)
    assert a.dtype == nnfast.int64 and 0 <= int(a.min()) and int(a.max()) < 5
    assert -3 <= int(b.min()) and int(b.max()) < 2
    with pytest.raises(TypeError, match=r"\[randint\] expected"):
        nnfast.randint(5)


# ------------------------------------------------------------------ generators
SAMPLERS = {
    "rand": lambda g: nnfast.rand(3, 4, generator=g),
    "randn": lambda g: nnfast.randn(5, generator=g),
    "randint": lambda g: nnfast.randint(0, 100, (6,), generator=g),
    "randperm": lambda g: nnfast.randperm(9, generator=g),
    "normal": lambda g: nnfast.normal(nnfast.zeros(4), nnfast.ones(4), generator=g),
    "normal_size": lambda g: nnfast.normal(1.0, 2.0, (3,), generator=g),
    "bernoulli": lambda g: nnfast.bernoulli(nnfast.full((8,), 0.5), generator=g),
    "multinomial": lambda g: nnfast.multinomial(nnfast.ones(2, 10), 4, generator=g),
    "poisson": lambda g: nnfast.poisson(nnfast.full((5,), 3.0), generator=g),
    "rand_like": lambda g: nnfast.rand_like(nnfast.ones(3), generator=g),
    "normal_": lambda g: nnfast.zeros(4).normal_(generator=g),
    "uniform_": lambda g: nnfast.zeros(4).uniform_(-1, 1, generator=g),
    "exponential_": lambda g: nnfast.zeros(4).exponential_(generator=g),
    "random_": lambda g: nnfast.zeros(4).random_(0, 10, generator=g),
    "geometric_": lambda g: nnfast.zeros(4).geometric_(0.3, generator=g),
    "log_normal_": lambda g: nnfast.zeros(4).log_normal_(generator=g),
    "cauchy_": lambda g: nnfast.zeros(4).cauchy_(generator=g),
    "bernoulli_": lambda g: nnfast.zeros(8).bernoulli_(0.5, generator=g),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_values(name):
    draw = SAMPLERS[name]
    g = nnfast.Generator()
    a = _h(draw(g.manual_seed(1234)))
    b = _h(draw(g.manual_seed(1234)))
    c = _h(draw(nnfast.Generator().manual_seed(1234)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    # the default generator follows nnfast.manual_seed
    nnfast.manual_seed(7)
    d = _h(draw(None))
    nnfast.manual_seed(7)
    np.testing.assert_array_equal(d, _h(draw(None)))


def test_generator_api():
    g = nnfast.Generator(device="cpu")
    assert g.manual_seed(5) is g and g.initial_seed() == 5 and g.device == "cpu"
    assert nnfast.Generator().initial_seed() == 67280421310721  # PyTorch's default seed
    state = g.get_state()
    a = nnfast.rand(4, generator=g)
    g.set_state(state)
    np.testing.assert_array_equal(_h(a), _h(nnfast.rand(4, generator=g)))
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s
    assert g.manual_seed(-1).initial_seed() == 2**64 - 2  # PyTorch wraps negative seeds
    with pytest.raises(RuntimeError, match=r"\[manual_seed\] expected"):
        g.manual_seed(2**64)
    with pytest.raises(RuntimeError, match=r"\[set_state\] expected"):
        g.set_state({"nope": 1})


def test_default_generator_is_reseeded_in_place():
    d = nnfast.default_generator
    assert nnfast.manual_seed(3) is d and nnfast.initial_seed() == 3
    a = nnfast.randn(3)
    d.manual_seed(3)
    np.testing.assert_array_equal(_h(a), _h(nnfast.randn(3)))
    assert isinstance(nnfast.seed(), int)
    state = nnfast.get_rng_state()
    b = nnfast.rand(2)
    nnfast.set_rng_state(state)
    np.testing.assert_array_equal(_h(b), _h(nnfast.rand(2)))


def test_generator_drives_init_and_loader_shuffling():
    w = nnfast.zeros(3, 4)
    nnfast.nn.init.normal_(w, generator=nnfast.Generator().manual_seed(9))
    v = nnfast.zeros(3, 4)
    nnfast.nn.init.normal_(v, generator=nnfast.Generator().manual_seed(9))
    np.testing.assert_array_equal(_h(w), _h(v))


def test_cuda_samples_equal_cpu_samples(device):
    g = nnfast.Generator()
    a = nnfast.randn(5, generator=g.manual_seed(2), device=device)
    b = nnfast.randn(5, generator=g.manual_seed(2))
    assert a.device == device
    np.testing.assert_array_equal(_h(a), _h(b))
    x = nnfast.zeros(5, device=device).uniform_(generator=g.manual_seed(2))
    assert x.device == device and x.dtype == nnfast.float32


# ------------------------------------------------------------------ sampling statistics (seed-fixed)
def test_multinomial_with_replacement_frequencies():
    g = nnfast.Generator().manual_seed(0)
    p = nnfast.tensor([0.1, 0.2, 0.0, 0.7])
    s = _h(nnfast.multinomial(p, 20000, replacement=True, generator=g))
    freq = np.bincount(s, minlength=4) / s.size
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.0, 0.7], atol=0.02)
    assert freq[2] == 0.0


def test_multinomial_without_replacement():
    g = nnfast.Generator().manual_seed(1)
    w = nnfast.tensor([[1.0, 2.0, 3.0, 4.0, 0.0]] * 3000)
    s = _h(nnfast.multinomial(w, 4, generator=g))
    assert s.shape == (3000, 4) and s.dtype == np.int64
    assert all(len(set(row)) == 4 for row in s) and not (s == 4).any()  # no repeats, zero weight never drawn
    first = np.bincount(s[:, 0], minlength=5) / len(s)  # the first draw follows the weights
    np.testing.assert_allclose(first, [0.1, 0.2, 0.3, 0.4, 0.0], atol=0.03)
    perm = _h(nnfast.multinomial(nnfast.ones(7), 7, generator=g))
    assert sorted(perm.tolist()) == list(range(7))


def test_sampler_ranges_and_moments():
    g = nnfast.Generator().manual_seed(3)
    n = 20000
    u = _h(nnfast.zeros(n, dtype=nnfast.float64).uniform_(2, 5, generator=g))
    assert u.min() >= 2 and u.max() < 5 and abs(u.mean() - 3.5) < 0.05
    e = _h(nnfast.zeros(n, dtype=nnfast.float64).exponential_(2.0, generator=g))
    assert e.min() >= 0 and abs(e.mean() - 0.5) < 0.03
    r = _h(nnfast.zeros(n, dtype=nnfast.int64).random_(3, 9, generator=g))
    assert set(np.unique(r)) == set(range(3, 9))
    b = _h(nnfast.bernoulli(nnfast.full((n,), 0.25), generator=g))
    assert set(np.unique(b)) == {0.0, 1.0} and abs(b.mean() - 0.25) < 0.02
    z = _h(nnfast.normal(3.0, 2.0, (n,), generator=g))
    assert abs(z.mean() - 3.0) < 0.06 and abs(z.std() - 2.0) < 0.06
    p = _h(nnfast.poisson(nnfast.full((n,), 4.0), generator=g))
    assert abs(p.mean() - 4.0) < 0.1
    assert _h(nnfast.zeros(10).random_(generator=g)).max() < 2**24


def test_normal_with_tensor_parameters_has_zero_gradient():
    m = nnfast.zeros(3, requires_grad=True)
    s = nnfast.ones(3, requires_grad=True)
    y = nnfast.normal(m, s, generator=nnfast.Generator().manual_seed(0))
    assert y.requires_grad
    y.sum().backward()
    assert _h(m.grad).tolist() == [0.0, 0.0, 0.0] and _h(s.grad).tolist() == [0.0, 0.0, 0.0]
    assert nnfast.normal(nnfast.zeros(2, 1), nnfast.ones(3)).shape == (2, 3)


# ------------------------------------------------------------------ in-place fills under the in-place rules
def test_random_fills_bump_version_and_respect_leaves():
    x = nnfast.zeros(4)
    v = x._version
    x.normal_()
    assert x._version == v + 1
    w = nnfast.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.uniform_()
    with nnfast.no_grad():
        w.uniform_()
    assert w.requires_grad
    with pytest.raises(RuntimeError, match=r"\[uniform_\] expected"):
        nnfast.zeros(2).uniform_(1, 0)
    with pytest.raises(RuntimeError, match=r"\[bernoulli_\] expected"):
        nnfast.zeros(2).bernoulli_(2.0)


# ------------------------------------------------------------------ repr
REPR_CASES = [
    ([1.0, 2.0], None), (3.0, None), ([1.5, 2.0, -0.25], None), ([1e-5, 1.0], None), ([1e9, 2.0], None),
    ([[1, 2], [30, 4]], None), ([True, False], None), ([1.0, float("nan"), float("inf")], None),
    ([], None), ([1.0, 2.0], "float64"), ([1, 2], "int32"), ([0.5], "float16"), ([], "int64"),
    (list(range(2000)), "float32"), ([0.0, 100.5], None), ([-0.0, 1.0], None), ([[1, 2]] * 600, None),
    (np.random.default_rng(0).standard_normal((40, 40)).tolist(), None),
    ((np.random.default_rng(1).standard_normal((2, 3, 4)) * 100).tolist(), "float64"),
]


@needs_torch
@pytest.mark.parametrize("data,dt", REPR_CASES, ids=[str(i) for i in range(len(REPR_CASES))])
def test_repr_matches_torch(data, dt):
    got = nnfast.tensor(data, dtype=None if dt is None else getattr(nnfast, dt))
    want = torch.tensor(data, dtype=None if dt is None else getattr(torch, dt))
    assert repr(got) == repr(want).replace("torch.", "nnfast.")


@needs_torch
def test_repr_suffixes_match_torch(device):
    x = nnfast.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == repr(torch.tensor([1.0, 2.0], requires_grad=True))
    assert repr(nnfast.zeros(0, 3)) == repr(torch.zeros(0, 3))
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward>)"
    if device == "cuda":
        y = nnfast.tensor([1.0, 2.0], dtype=nnfast.float64, device=device, requires_grad=True)
        assert repr(y) == "tensor([1., 2.], device='cuda:0', dtype=nnfast.float64, requires_grad=True)"
