"""PyTorch's type promotion in nnfast's pointwise ops: a hard-coded table of
(operand a, operand b, op) -> result dtype, checked always, and against PyTorch when installed;
plus result_type / promote_types / can_cast, in-place casting rules, and gradients that only an
ordinary test can state (tie rules, dtypes of gradients across a promotion)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from conftest import DEVICES

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

DT = {"b": "bool", "u8": "uint8", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64", "f16": "float16",
      "f32": "float32", "f64": "float64"}


def T(dt, dim=True):
    """Operand spec: a tensor of dtype ``dt`` with dims (shape (3,)) or 0-dim."""
    return ("T", dt, dim)


def Z(dt):
    return T(dt, dim=False)


def _values(dt, dim):
    vals = np.array([1, 2, 3]) if dim else np.array(2)
    return vals.astype(DT[dt]) if dt != "b" else (vals % 2 == 1)


def make(spec, lib, device="cpu"):
    if not (isinstance(spec, tuple) and spec and spec[0] == "T"):
        return spec  # a Python number
    _, dt, dim = spec
    v = _values(dt, dim)
    if lib == "torch":
        return torch.from_numpy(np.array(v))
    return nnfast.tensor(v, dtype=DT[dt], device=device)


def _cond(lib, device="cpu"):
    c = np.array([True, False, True])
    return torch.from_numpy(c) if lib == "torch" else nnfast.tensor(c, device=device)


OPS = {
    "add": lambda m, a, b: m.add(a, b), "sub": lambda m, a, b: m.sub(a, b), "mul": lambda m, a, b: m.mul(a, b),
    "div": lambda m, a, b: m.div(a, b), "op+": lambda m, a, b: a + b, "op/": lambda m, a, b: a / b,
    "rop*": lambda m, a, b: b * a, "floor_divide": lambda m, a, b: m.floor_divide(a, b),
    "remainder": lambda m, a, b: m.remainder(a, b), "pow": lambda m, a, b: m.pow(a, b),
    "maximum": lambda m, a, b: m.maximum(a, b), "eq": lambda m, a, b: m.eq(a, b), "op<": lambda m, a, b: a < b,
    "clamp": lambda m, a, b: m.clamp(a, b), "where": lambda m, a, b, dev="cpu": m.where(_cond(m.__name__, dev), a, b),
    "bitwise_and": lambda m, a, b: m.bitwise_and(a, b), "atan2": lambda m, a, b: m.atan2(a, b),
    "exp": lambda m, a, b: m.exp(a), "lerp": lambda m, a, b: m.lerp(a, a, b),
}

# (a, b, op, expected result dtype) — default float dtype float32
TABLE = [
    (T("f32"), T("f64"), "add", "f64"), (T("f32"), 2.5, "add", "f32"), (T("f32"), 2, "add", "f32"),
    (T("i64"), 2.5, "add", "f32"), (T("i32"), 2, "add", "i32"), (T("i32"), T("i64"), "add", "i64"),
    (T("i32"), Z("i64"), "add", "i32"), (T("i64"), Z("f64"), "add", "f64"), (T("f32"), Z("f64"), "add", "f32"),
    (T("f16"), Z("f32"), "add", "f16"), (T("f16"), T("f32"), "add", "f32"), (Z("i32"), Z("i64"), "add", "i64"),
    (Z("f32"), T("i64"), "add", "f32"), (Z("i64"), 2.5, "add", "f32"), (Z("f64"), 2.5, "add", "f64"),
    (T("b"), T("b"), "add", "b"), (T("b"), True, "add", "b"), (T("b"), 2, "add", "i64"),
    (T("b"), 2.5, "add", "f32"), (T("b"), T("i32"), "add", "i32"), (T("b"), Z("i8"), "add", "i8"),
    (T("u8"), T("i8"), "add", "i16"), (T("u8"), 1, "add", "u8"), (T("i8"), True, "mul", "i8"),
    (T("i16"), T("i32"), "sub", "i32"), (T("i64"), 2.5, "op+", "f32"), (T("i32"), 2.5, "rop*", "f32"),
    (T("i32"), T("i32"), "div", "f32"), (T("i64"), 2, "div", "f32"), (T("b"), T("b"), "div", "f32"),
    (T("f64"), 2, "op/", "f64"), (T("i32"), 2, "op/", "f32"), (T("i32"), 2, "floor_divide", "i32"),
    (T("i32"), 2.5, "remainder", "f32"), (T("i64"), 2, "pow", "i64"), (T("i32"), 2.5, "pow", "f32"),
    (T("f32"), 2, "pow", "f32"), (2, T("i32"), "pow", "i32"), (2.5, T("i32"), "pow", "f32"),
    (T("i32"), Z("f64"), "maximum", "f64"), (T("i32"), T("i64"), "maximum", "i64"),
    (T("i32"), 2.5, "eq", "b"), (T("f32"), T("f64"), "op<", "b"), (T("i64"), 0.5, "clamp", "f32"),
    (T("i32"), 1, "clamp", "i32"), (T("i32"), 2.5, "where", "f32"), (1, 2.5, "where", "f32"),
    (T("i64"), Z("f64"), "where", "f64"), (T("f32"), T("f64"), "where", "f64"), (T("b"), 0, "where", "i64"),
    (T("i32"), T("i64"), "bitwise_and", "i64"), (T("b"), 1, "bitwise_and", "i64"),
    (T("b"), T("b"), "bitwise_and", "b"), (T("i32"), T("i32"), "atan2", "f32"), (T("i64"), None, "exp", "f32"),
    (T("f32"), 0.5, "lerp", "f32"), (T("f64"), Z("f32"), "lerp", "f64"),
]


def _id(row):
    def s(x):
        return f"{'T' if x[2] else 'Z'}{x[1]}" if isinstance(x, tuple) else repr(x)
    return f"{row[2]}-{s(row[0])}-{s(row[1])}"


def _name(dtype):
    return str(dtype).replace("torch.", "")


@pytest.mark.parametrize("a,b,op,expected", TABLE, ids=[_id(r) for r in TABLE])
def test_result_dtype(a, b, op, expected, device):
    kw = {"dev": device} if op == "where" else {}
    r = OPS[op](nnfast, make(a, "nnfast", device), make(b, "nnfast", device), **kw)
    assert np.dtype(r.dtype) == np.dtype(DT[expected]), f"{op}: got {r.dtype}, expected {DT[expected]}"
    assert str(r.device).startswith(device)


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("a,b,op,expected", TABLE, ids=[_id(r) for r in TABLE])
def test_table_matches_torch(a, b, op, expected):
    r = OPS[op](torch, make(a, "torch"), make(b, "torch"))
    assert _name(r.dtype) == DT[expected]
    n = OPS[op](nnfast, make(a, "nnfast"), make(b, "nnfast"))
    np.testing.assert_allclose(np.asarray(n, dtype=np.float64), r.double().numpy(), rtol=1e-6)


def test_default_dtype_follows_set_default_dtype():
    i = nnfast.tensor([1, 2])
    nnfast.set_default_dtype(nnfast.float64)
    try:
        assert (i + 2.5).dtype == np.float64 and (i / i).dtype == np.float64 and nnfast.exp(i).dtype == np.float64
        assert nnfast.result_type(i, 2.5) == np.float64
    finally:
        nnfast.set_default_dtype(nnfast.float32)
    assert (i + 2.5).dtype == np.float32


PROMOTE = [("b", "i32", "i32"), ("u8", "i8", "i16"), ("i32", "i64", "i64"), ("i64", "f16", "f16"),
           ("f16", "f32", "f32"), ("f32", "f64", "f64"), ("u8", "b", "u8"), ("i8", "f64", "f64")]


@pytest.mark.parametrize("a,b,expected", PROMOTE)
def test_promote_types(a, b, expected):
    assert nnfast.promote_types(DT[a], DT[b]) == np.dtype(DT[expected])
    assert nnfast.promote_types(DT[b], DT[a]) == np.dtype(DT[expected])
    if torch is not None:
        assert _name(torch.promote_types(getattr(torch, DT[a]), getattr(torch, DT[b]))) == DT[expected]


CAST = [("f64", "i32", False), ("i64", "f32", True), ("i32", "b", False), ("b", "i32", True),
        ("f32", "f16", True), ("f32", "b", False), ("i64", "u8", True), ("u8", "i8", True)]


@pytest.mark.parametrize("src,dst,expected", CAST)
def test_can_cast(src, dst, expected):
    assert nnfast.can_cast(DT[src], DT[dst]) is expected
    if torch is not None:
        assert torch.can_cast(getattr(torch, DT[src]), getattr(torch, DT[dst])) is expected


def test_result_type_numbers_and_zero_dim():
    assert nnfast.result_type(nnfast.tensor([1, 2], dtype="int32"), 2.5) == np.float32
    assert nnfast.result_type(nnfast.tensor([1, 2], dtype="int32"), 7) == np.int32
    assert nnfast.result_type(nnfast.tensor([1.0], dtype="float16"), nnfast.tensor(1.0, dtype="float64")) \
        == np.float16
    assert nnfast.result_type(2, 2.5) == np.float32
    with pytest.raises(TypeError, match=r"^\[promote_types\] expected"):
        nnfast.promote_types(np.complex64, np.float32)


def test_inplace_casting_rules():
    i = nnfast.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match=r"^\[add_\] expected a result castable to int64"):
        i.add_(2.5)
    with pytest.raises(RuntimeError, match=r"^\[add_\] expected"):
        i += 0.5
    f = nnfast.ones(3)
    f += nnfast.ones(3, dtype=nnfast.float64)  # the result is cast back to self's dtype
    assert f.dtype == np.float32 and f.tolist() == [2.0, 2.0, 2.0]
    i //= 2
    assert i.tolist() == [0, 1, 1] and i.dtype == np.int64


def test_gradient_dtype_across_promotion(device):
    a = nnfast.tensor([1.0, 2.0], dtype="float32", device=device, requires_grad=True)
    b = nnfast.tensor([3.0, 4.0], dtype="float64", device=device, requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert a.grad.tolist() == [3.0, 4.0] and b.grad.tolist() == [1.0, 2.0]
    c = nnfast.tensor([1.0, 2.0], device=device, requires_grad=True)
    (c * nnfast.tensor([2, 3], device=device)).sum().backward()  # an int operand: no gradient, float result
    assert c.grad.tolist() == [2.0, 3.0]


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("op", ["maximum", "minimum", "fmax", "fmin"])
def test_tie_gradients_match_torch(op):
    a = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    b = np.array([1.0, 0.0, 4.0, 1.0, np.nan])
    na, nb = (nnfast.tensor(x, dtype="float64", requires_grad=True) for x in (a, b))
    ta, tb = (torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in (a, b))
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    getattr(nnfast, op)(na, nb).backward(nnfast.tensor(g, dtype="float64"))
    getattr(torch, op)(ta, tb).backward(torch.tensor(g))
    np.testing.assert_array_equal(np.asarray(getattr(nnfast, op)(na, nb).detach()),
                                  getattr(torch, op)(ta, tb).detach().numpy())
    np.testing.assert_array_equal(np.asarray(na.grad), ta.grad.numpy())
    np.testing.assert_array_equal(np.asarray(nb.grad), tb.grad.numpy())


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("lo,hi", [([0.0, 1.0, 2.0, 2.5], [1.0, 1.5, 0.5, 2.5]), ([0.5] * 4, None),
                                   (None, [1.5] * 4)])
def test_clamp_tensor_bound_gradients_match_torch(lo, hi):
    x = [1.0, 1.0, 1.0, 2.5]  # ties with a bound, crossed bounds, lo == hi
    n = [nnfast.tensor(v, dtype="float64", requires_grad=True) if v is not None else None for v in (x, lo, hi)]
    t = [torch.tensor(v, dtype=torch.float64, requires_grad=True) if v is not None else None for v in (x, lo, hi)]
    g = [1.0, 2.0, 3.0, 4.0]
    nnfast.clamp(*n).backward(nnfast.tensor(g, dtype="float64"))
    torch.clamp(*t).backward(torch.tensor(g, dtype=torch.float64))
    for a, b in zip(n, t):
        if a is not None:
            np.testing.assert_array_equal(np.asarray(a.grad), b.grad.numpy())


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_to_num_defaults_match_torch(dtype):
    v = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=dtype)
    np.testing.assert_array_equal(np.asarray(nnfast.nan_to_num(nnfast.tensor(v))),
                                  torch.nan_to_num(torch.from_numpy(v)).numpy())


def test_pow_gradients_at_zero_and_negative_base():
    """d/da a**0 = 0 (not 0 * a**-1), d/db at a == 0 (b >= 0) = 0; NaN for a < 0, as PyTorch."""
    a = nnfast.tensor([0.0, 0.0, -2.0, 3.0], dtype="float64", requires_grad=True)
    b = nnfast.tensor([0.0, 2.0, 2.0, 0.0], dtype="float64", requires_grad=True)
    (a ** b).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, -4.0, 0.0]
    g = b.grad.tolist()
    assert g[0] == 0.0 and g[1] == 0.0 and np.isnan(g[2]) and g[3] == pytest.approx(np.log(3.0))


def test_bool_and_integer_operators(device):
    m = nnfast.tensor([True, False, True], device=device)
    k = nnfast.tensor([False, False, True], device=device)
    assert (m & k).tolist() == [False, False, True] and (m | k).tolist() == [True, False, True]
    assert (m ^ k).tolist() == [True, False, False] and (~m).tolist() == [False, True, False]
    i = nnfast.tensor([6, 5, -3], device=device)
    assert (i & 3).tolist() == [2, 1, 1] and (1 | i).tolist() == [7, 5, -3] and (~i).tolist() == [-7, -6, 2]
    assert (i // 2).tolist() == [3, 2, -2] and (i % 4).tolist() == [2, 1, 1] and (-7 // i).tolist() == [-2, -2, 2]
    assert nnfast.div(i, 4, rounding_mode="trunc").tolist() == [1, 1, 0]
    assert nnfast.fmod(i, 4).tolist() == [2, 1, -3]
    with pytest.raises(TypeError, match=r"^\[bitwise_and\] expected integer or bool"):
        nnfast.ones(2) & nnfast.ones(2)
    with pytest.raises(TypeError, match=r"^\[sub\] expected non-bool"):
        m - True


def test_sign_of_nan_and_rounding_ties():
    x = nnfast.tensor([float("nan"), -0.0, -2.0, 3.0])
    assert nnfast.sign(x).tolist() == [0.0, 0.0, -1.0, 1.0]
    assert nnfast.round(nnfast.tensor([0.5, 1.5, 2.5, -0.5])).tolist() == [0.0, 2.0, 2.0, -0.0]
    assert nnfast.round(nnfast.tensor([1234.5678], dtype="float64"), decimals=-2).tolist() == [1200.0]


def test_where_single_argument_and_method(device):
    c = nnfast.tensor([[True, False], [False, True]], device=device)
    rows, cols = nnfast.where(c)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
    x = nnfast.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert x.where(c, 0.0).tolist() == [[1.0, 0.0], [0.0, 4.0]]


def test_methods_and_functions_exist():
    for name in ("add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow", "neg",
                 "abs", "reciprocal", "square", "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log2", "log10",
                 "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "sign", "sgn",
                 "floor", "ceil", "round", "trunc", "frac", "clamp", "clip", "clamp_min", "clamp_max", "maximum",
                 "minimum", "fmax", "fmin", "lerp", "addcmul", "addcdiv", "hypot", "erf", "logit", "nan_to_num",
                 "xlogy", "sigmoid", "tanh", "relu", "softmax", "log_softmax", "eq", "ne", "lt", "le", "gt", "ge",
                 "isnan", "isinf", "isfinite", "isposinf", "isneginf", "isclose", "allclose", "equal",
                 "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or",
                 "bitwise_xor", "bitwise_not"):
        assert callable(getattr(nnfast, name)), name
        assert callable(getattr(nnfast.Tensor, name)), name
        assert name in nnfast.__all__, name
    for name in ("where", "result_type", "promote_types", "can_cast"):
        assert name in nnfast.__all__
    for name in ("add_", "sub_", "mul_", "div_", "clamp_", "exp_", "lerp_", "addcmul_", "maximum_"):
        assert callable(getattr(nnfast.Tensor, name, None)), name


def test_activations_run_the_functional_kernels(monkeypatch):
    """sigmoid / tanh / relu / softmax go through nnfast.nn.functional, not NumPy."""
    import nnfast.nn.functional as F

    calls = []
    for name in ("sigmoid", "tanh", "relu", "softmax", "log_softmax"):
        orig = getattr(F, name)
        monkeypatch.setattr(F, name, lambda *a, _o=orig, _n=name, **k: calls.append(_n) or _o(*a, **k))
    x = nnfast.randn(2, 3)
    x.sigmoid(), nnfast.tanh(x), x.relu(), x.softmax(1), nnfast.log_softmax(x, 0)
    assert calls == ["sigmoid", "tanh", "relu", "softmax", "log_softmax"]


def test_fast_path_keeps_kernel_dtypes():
    """float32 / float64 operands of one dtype (and a float tensor with a number) reach basic_ops.binary's kernels
    with no cast in between: the result's node is the arithmetic op itself."""
    a, b = nnfast.randn(3, requires_grad=True), nnfast.randn(3)
    assert type((a + b).grad_fn).__name__ == "Add"
    assert type((a * 2.0).grad_fn).__name__ == "Mul"
    assert type((2 - a).grad_fn).__name__ == "Sub"
