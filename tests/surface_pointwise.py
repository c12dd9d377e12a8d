"""SurfaceOp table of the pointwise area (nnfast/ops/pointwise.py): arithmetic, math functions,
comparisons, logic, with PyTorch's type promotion (see tests/surface.py for the row format)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

import nnfast
from surface import ErrorCase, Raw, Sample, SurfaceOp, torch

I64 = np.int64
_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _erfinv(y):
    """The float64 reference: bisection of math.erf (60 halvings of [-6, 6])."""
    y = np.asarray(y, dtype=np.float64)
    lo, hi = np.full(y.shape, -6.0), np.full(y.shape, 6.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = _erf(mid) < y
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def _sig(x):
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------ sample builders
def unary(lo=-2.0, hi=2.0, extra=()):
    """Sizes 1, 7, an odd 3x5, a 0-d tensor, values uniform in [lo, hi]."""
    def samples(rng):
        u = lambda s: np.asarray(rng.uniform(lo, hi, s))  # noqa: E731
        return [Sample("n1", (u((1,)),)), Sample("n7", (u((7,)),)), Sample("3x5", (u((3, 5)),)),
                *extra]  # (no 0-d sample: surface.to_torch turns 0-d arrays 1-d)
    return samples


def binary(lo=-2.0, hi=2.0, lo2=None, hi2=None, scalar=2.5, ties=False, kwargs=None, tie_grads=True):
    """Same-shape sizes 1 and 7, broadcasting (3,1,5) with (4,1), a Python number, a 0-d tensor."""
    lo2 = lo if lo2 is None else lo2
    hi2 = hi if hi2 is None else hi2
    kw = kwargs or {}

    def samples(rng):
        a = lambda s: np.asarray(rng.uniform(lo, hi, s))  # noqa: E731
        b = lambda s: np.asarray(rng.uniform(lo2, hi2, s))  # noqa: E731
        out = [Sample("n1", (a((1,)), b((1,))), dict(kw)), Sample("n7", (a((7,)), b((7,))), dict(kw)),
               Sample("bcast", (a((3, 1, 5)), b((4, 1))), dict(kw)),
               Sample("scalar", (a((5,)), Raw(scalar)), dict(kw)), Sample("0d", (a((3,)), b(())), dict(kw))]
        if ties:
            x = a((7,))
            y = b((7,))
            y[::2] = x[::2]
            out.append(Sample("ties", (x, y), dict(kw), grads=None if tie_grads else ()))
        return out
    return samples


def ints(op_samples):
    """Integer operands (int64 arrays stay int64 tensors)."""
    def samples(rng):
        a = rng.integers(-9, 10, (7,))
        b = rng.integers(1, 5, (7,)) * rng.choice([-1, 1], 7)
        return [Sample("int", (a, b)), Sample("int-bcast", (a.reshape(7, 1), b[:3])),
                Sample("int-scalar", (a, Raw(3))), *op_samples(rng)]
    return samples


def both(float_samples):
    return ints(float_samples)


def _t(name):
    return (lambda *a, **k: getattr(torch, name)(*a, **k)) if torch is not None else None


def _n(name):
    return lambda *a, **k: getattr(nnfast, name)(*a, **k)


def fn_op(name, ref, samples, differentiable=True, **kw):
    """A row for ``nnfast.<name>`` against ``torch.<name>``."""
    return SurfaceOp(name, _n(name), ref, samples, differentiable=differentiable, torch_call=_t(name), **kw)


def tensor_only(op):
    """For PyTorch ops that take no Python numbers (maximum, atan2 ...): a number becomes a 0-d
    tensor of its default dtype, which promotes as nnfast's wrapped number does."""
    if torch is not None:
        call = op.torch_call
        op.torch_call = lambda *a, **k: call(*[torch.tensor(x) if isinstance(x, (int, float)) else x for x in a], **k)
    return op


def err(id_, thunk, exc, op):
    return ErrorCase(id_, thunk, exc, rf"^\[{op}\] expected")


ONES23, ONES4 = (lambda: nnfast.ones(2, 3)), (lambda: nnfast.ones(4))


def _bool_t():
    return nnfast.tensor([True, False])


def _int_t():
    return nnfast.tensor([1, 2, 3])


# ------------------------------------------------------------------ arithmetic
OPS = [
    fn_op("add", lambda a, b, alpha=1: a + alpha * np.asarray(b), both(binary()), errors=lambda: [
        err("shapes", lambda: ONES23() + ONES4(), ValueError, "add"),
        err("fn-shapes", lambda: nnfast.add(ONES23(), ONES4()), ValueError, "add"),
        err("int-requires-grad", lambda: _int_t().requires_grad_(), TypeError, "requires_grad_"),
        err("float-alpha-int", lambda: nnfast.add(_int_t(), _int_t(), alpha=0.5), TypeError, "add"),
        err("not-a-tensor", lambda: nnfast.add(2, 3), TypeError, "add")]),
    SurfaceOp("add[alpha]", lambda a, b: nnfast.add(a, b, alpha=-1.5), lambda a, b: a - 1.5 * np.asarray(b),
              binary(), torch_call=(lambda a, b: torch.add(a, b, alpha=-1.5)) if torch else None),
    fn_op("sub", lambda a, b, alpha=1: a - alpha * np.asarray(b), both(binary()), errors=lambda: [
        err("bool", lambda: _bool_t() - _bool_t(), TypeError, "sub"),
        err("shapes", lambda: ONES23() - ONES4(), ValueError, "sub")]),
    fn_op("subtract", lambda a, b, alpha=1: a - alpha * np.asarray(b), binary(kwargs={"alpha": 2})),
    fn_op("rsub", lambda a, b: b - a, binary()),
    fn_op("mul", lambda a, b: a * b, both(binary()), errors=lambda: [
        err("shapes", lambda: ONES23() * ONES4(), ValueError, "mul")]),
    fn_op("multiply", lambda a, b: a * b, binary()),
    fn_op("div", lambda a, b: a / b, both(binary(lo2=0.5, hi2=2.0)),
          errors=lambda: [err("mode", lambda: nnfast.div(ONES4(), 2, rounding_mode="round"), ValueError, "div"),
                          err("int-zero", lambda: nnfast.div(_int_t(), 0, rounding_mode="floor"), RuntimeError,
                              "div")]),
    SurfaceOp("div[trunc]", lambda a, b: nnfast.div(a, b, rounding_mode="trunc"),
              lambda a, b: np.trunc(a / b), ints(binary(-5, 5, 0.5, 2.0)),
              torch_call=(lambda a, b: torch.div(a, b, rounding_mode="trunc")) if torch else None),
    SurfaceOp("div[floor]", lambda a, b: nnfast.div(a, b, rounding_mode="floor"),
              lambda a, b: np.floor_divide(a, b), ints(binary(-5, 5, -2.0, -0.5)),
              torch_call=(lambda a, b: torch.div(a, b, rounding_mode="floor")) if torch else None),
    fn_op("divide", lambda a, b: a / b, binary(lo2=0.5, hi2=2.0)),
    fn_op("true_divide", lambda a, b: a / b, both(binary(lo2=0.5, hi2=2.0))),
    fn_op("floor_divide", np.floor_divide, ints(binary(-5, 5, 0.5, 2.0)), differentiable=False, errors=lambda: [
        err("int-zero", lambda: nnfast.floor_divide(_int_t(), nnfast.tensor([1, 0, 1])), RuntimeError,
            "floor_divide")]),
    fn_op("remainder", np.remainder, ints(binary(-5, 5, 0.5, 2.0, scalar=1.5)), errors=lambda: [
        err("int-zero", lambda: _int_t() % 0, RuntimeError, "remainder")]),
    fn_op("fmod", np.fmod, ints(binary(-5, 5, 0.5, 2.0, scalar=-1.5))),
    fn_op("pow", np.power,
          binary(0.5, 2.0, -2.0, 2.0, scalar=2), errors=lambda: [
              err("int-negative", lambda: _int_t() ** -1, ValueError, "pow")]),
    SurfaceOp("pow[scalar-base]", lambda a: nnfast.pow(2.0, a), lambda a: np.power(2.0, a), unary(),
              torch_call=(lambda a: torch.pow(2.0, a)) if torch else None),
    SurfaceOp("pow[int]", lambda a, b: nnfast.pow(a, b), np.power,
              lambda rng: [Sample("int", (rng.integers(-4, 5, (7,)), rng.integers(0, 4, (7,)))),
                           Sample("int-float", (rng.integers(0, 5, (7,)), Raw(0.5)))],
              torch_call=_t("pow")),
    fn_op("neg", np.negative, unary(), errors=lambda: [err("bool", lambda: -_bool_t(), TypeError, "neg")]),
    fn_op("negative", np.negative, unary()),
    fn_op("abs", np.abs, unary(extra=(Sample("int", (np.array([-3, 0, 2]),)),))),
    fn_op("absolute", np.abs, unary()),
    fn_op("reciprocal", lambda a: 1 / a, unary(0.5, 2.0, extra=(Sample("int", (np.array([1, 2, -4]),)),))),
    fn_op("square", np.square, unary(extra=(Sample("int", (np.array([-3, 0, 2]),)),
                                            Sample("bool", (np.array([True, False]),))))),
    fn_op("sqrt", np.sqrt, unary(0.2, 3.0, extra=(Sample("int", (np.array([1, 4, 9]),)),))),
    fn_op("rsqrt", lambda a: 1 / np.sqrt(a), unary(0.2, 3.0)),
    fn_op("exp", np.exp, unary(extra=(Sample("int", (np.array([-1, 0, 2]),)),)),
          errors=lambda: [err("not-a-tensor", lambda: nnfast.exp(2.0), TypeError, "exp")]),
    fn_op("exp2", np.exp2, unary()),
    fn_op("expm1", np.expm1, unary()),
    fn_op("log", np.log, unary(0.2, 3.0, extra=(Sample("int", (np.array([1, 2, 3]),)),))),
    fn_op("log2", np.log2, unary(0.2, 3.0)),
    fn_op("log10", np.log10, unary(0.2, 3.0)),
    fn_op("log1p", np.log1p, unary(-0.5, 2.0)),
    fn_op("sin", np.sin, unary()),
    fn_op("cos", np.cos, unary()),
    fn_op("tan", np.tan, unary(-1.2, 1.2)),
    fn_op("asin", np.arcsin, unary(-0.9, 0.9)),
    fn_op("acos", np.arccos, unary(-0.9, 0.9)),
    fn_op("atan", np.arctan, unary(-3, 3)),
    fn_op("arctan", np.arctan, unary(-3, 3)),
    tensor_only(fn_op("atan2", np.arctan2, binary(0.5, 2.0, -2.0, 2.0, scalar=-1.5))),
    fn_op("sinh", np.sinh, unary()),
    fn_op("cosh", np.cosh, unary()),
    fn_op("sign", lambda a: np.where(np.isnan(a), 0.0, np.sign(a)),
          unary(extra=(Sample("special", (np.array([np.nan, 0.0, -0.0, np.inf, -3.0]),), grads=()),
                       Sample("int", (np.array([-3, 0, 2]),))))),
    SurfaceOp("sgn", nnfast.sgn, np.sign, unary(), torch_call=_t("sign")),  # torch.sgn's zero grad is a ZeroTensor
    fn_op("floor", np.floor, unary(-3, 3, extra=(Sample("int", (np.array([-3, 0, 2]),)),))),
    fn_op("ceil", np.ceil, unary(-3, 3, extra=(Sample("int", (np.array([-3, 0, 2]),)),))),
    fn_op("trunc", np.trunc, unary(-3, 3, extra=(Sample("int", (np.array([-3, 0, 2]),)),))),
    fn_op("round", np.round, unary(-3, 3, extra=(Sample("halves", (np.array([0.5, 1.5, 2.5, -0.5, -2.5]),), grads=()),
                                                 Sample("int", (np.array([-3, 0, 2]),))))),
    SurfaceOp("round[decimals]", lambda a: nnfast.round(a, decimals=2), lambda a: np.round(a, 2), unary(-3, 3),
              torch_call=(lambda a: torch.round(a, decimals=2)) if torch else None,
              tol={np.float64: (1e-10, 1e-12), np.float32: (2e-5, 1e-2)}),
    fn_op("frac", lambda a: a - np.trunc(a), unary(-3, 3),
          errors=lambda: [err("int", lambda: nnfast.frac(_int_t()), TypeError, "frac")]),
    fn_op("clamp", lambda a, min=None, max=None: np.clip(a, min, max),
          lambda rng: [Sample("n7", (rng.uniform(-2, 2, 7),), {"min": -0.5, "max": 0.7}),
                       Sample("min", (rng.uniform(-2, 2, (3, 5)),), {"min": 0.1}),
                       Sample("max", (rng.uniform(-2, 2, (1,)),), {"max": 0.1}),
                       Sample("tensors", (rng.uniform(-2, 2, (3, 5)), rng.uniform(-1, -0.5, (5,)),
                                          rng.uniform(0.5, 1, (3, 1)))),
                       Sample("tensor-lo", (rng.uniform(-2, 2, (7,)), rng.uniform(-1, 1, (7,)))),
                       Sample("crossed", (rng.uniform(-2, 2, (7,)), rng.uniform(0.5, 1, (7,)),
                                          rng.uniform(-1, -0.5, (7,)))),
                       Sample("int", (np.arange(-3, 4),), {"min": -1, "max": 2}),
                       Sample("int-float", (np.arange(-3, 4),), {"min": -0.5})],
          errors=lambda: [err("none", lambda: nnfast.clamp(ONES4()), ValueError, "clamp")]),
    fn_op("clip", lambda a, min=None, max=None: np.clip(a, min, max),
          lambda rng: [Sample("n7", (rng.uniform(-2, 2, 7),), {"min": -0.5, "max": 0.7})]),
    fn_op("clamp_min", np.maximum, binary(scalar=0.3)),
    fn_op("clamp_max", np.minimum, binary(scalar=0.3)),
    tensor_only(fn_op("maximum", np.maximum, both(binary(ties=True)),
          errors=lambda: [err("shapes", lambda: nnfast.maximum(ONES23(), ONES4()), ValueError, "maximum")])),
    tensor_only(fn_op("minimum", np.minimum, both(binary(ties=True)))),
    tensor_only(fn_op("fmax", np.fmax, binary(ties=True, tie_grads=False))),
    tensor_only(fn_op("fmin", np.fmin, binary(ties=True, tie_grads=False))),
    fn_op("lerp", lambda a, b, w: a + w * (b - a),
          lambda rng: [Sample("n7", (rng.uniform(-2, 2, 7), rng.uniform(-2, 2, 7), rng.uniform(0, 1, 7))),
                       Sample("scalar-w", (rng.uniform(-2, 2, (3, 5)), rng.uniform(-2, 2, (3, 5)), Raw(0.3))),
                       Sample("bcast", (rng.uniform(-2, 2, (3, 5)), rng.uniform(-2, 2, (5,)),
                                        rng.uniform(0, 1, (3, 1)))),
                       Sample("n1", (rng.uniform(-2, 2, 1), rng.uniform(-2, 2, 1), rng.uniform(0, 1, 1)))]),
    fn_op("addcmul", lambda a, b, c, value=1: a + value * b * c,
          lambda rng: [Sample("n7", (rng.uniform(-2, 2, 7), rng.uniform(-2, 2, 7), rng.uniform(-2, 2, 7)),
                              {"value": 0.5}),
                       Sample("bcast", (rng.uniform(-2, 2, (3, 5)), rng.uniform(-2, 2, (5,)),
                                        rng.uniform(-2, 2, (3, 1)))),
                       Sample("n1", (rng.uniform(-2, 2, 1), rng.uniform(-2, 2, 1), rng.uniform(-2, 2, 1)))]),
    fn_op("addcdiv", lambda a, b, c, value=1: a + value * b / c,
          lambda rng: [Sample("n7", (rng.uniform(-2, 2, 7), rng.uniform(-2, 2, 7), rng.uniform(0.5, 2, 7)),
                              {"value": -2.0}),
                       Sample("bcast", (rng.uniform(-2, 2, (3, 5)), rng.uniform(-2, 2, (5,)),
                                        rng.uniform(0.5, 2, (3, 1)))),
                       Sample("n1", (rng.uniform(-2, 2, 1), rng.uniform(-2, 2, 1), rng.uniform(0.5, 2, 1)))],
          errors=lambda: [err("int", lambda: nnfast.addcdiv(ONES4(), nnfast.tensor([1]), nnfast.tensor([2])),
                              TypeError, "addcdiv")]),
    tensor_only(fn_op("hypot", np.hypot, binary(0.5, 2, -2, -0.5))),
    fn_op("erf", _erf, unary(-3.0, 3.0)),
    fn_op("erfc", _erfc, unary(-3.0, 5.0)),
    fn_op("erfinv", _erfinv, unary(-0.95, 0.95)),
    fn_op("logit", lambda a, eps=None: np.log(np.clip(a, eps, 1 - eps) / (1 - np.clip(a, eps, 1 - eps)))
          if eps is not None else np.log(a / (1 - a)),
          lambda rng: [Sample("n7", (rng.uniform(0.1, 0.9, 7),)), Sample("3x5", (rng.uniform(0.1, 0.9, (3, 5)),)),
                       Sample("eps", (rng.uniform(0.01, 0.99, (9,)),), {"eps": 0.2}),
                       Sample("n1", (rng.uniform(0.1, 0.9, 1),))]),
    fn_op("nan_to_num", lambda a, **k: np.nan_to_num(a, **k),
          lambda rng: [Sample("n7", (rng.uniform(-2, 2, 7),)),
                       Sample("nan", (np.array([np.nan, 1.0, -2.0]),), grads=()),
                       Sample("values", (np.array([np.nan, np.inf, -np.inf, 1.0, -2.0]),),
                              {"nan": 1.5, "posinf": 9.0, "neginf": -9.0}, grads=())],
          noncontig=False),
    fn_op("xlogy", lambda a, b: np.where(a == 0, 0.0, a * np.log(b)),
          lambda rng: [*binary(-2, 2, 0.5, 3.0)(rng), Sample("zeros", (np.array([0.0, 1.0, 0.0]),
                                                                      np.array([0.5, 2.0, 3.0])))]),
    # ------------------------------------------------------------------ activations (nnfast's kernels)
    fn_op("sigmoid", _sig, unary(-4, 4, extra=(Sample("int", (np.array([-1, 0, 2]),)),))),
    fn_op("tanh", np.tanh, unary(-3, 3)),
    fn_op("relu", lambda a: np.maximum(a, 0), unary(extra=(Sample("int", (np.array([-1, 0, 2]),)),))),
    fn_op("softmax", lambda a, dim: np.exp(a) / np.exp(a).sum(dim, keepdims=True),
          lambda rng: [Sample("dim1", (rng.uniform(-2, 2, (3, 5)), Raw(1))),
                       Sample("n7", (rng.uniform(-2, 2, 7), Raw(0)))]),
    fn_op("log_softmax", lambda a, dim: a - np.log(np.exp(a).sum(dim, keepdims=True)),
          lambda rng: [Sample("dim0", (rng.uniform(-2, 2, (3, 5)), Raw(0))),
                       Sample("n7", (rng.uniform(-2, 2, 7), Raw(-1)))]),
    SurfaceOp("Tensor.softmax", lambda a, d: a.softmax(d), lambda a, d: np.exp(a) / np.exp(a).sum(d, keepdims=True),
              lambda rng: [Sample("3x5", (rng.uniform(-2, 2, (3, 5)), Raw(-1)))],
              torch_call=lambda a, d: a.softmax(d)),
    SurfaceOp("Tensor.sigmoid", lambda a: a.sigmoid(), _sig, unary(), torch_call=lambda a: a.sigmoid()),
    SurfaceOp("Tensor.__floordiv__", lambda a, b: a // b, np.floor_divide, ints(binary(-5, 5, 0.5, 2.0)),
              differentiable=False, torch_call=lambda a, b: a // b),
    SurfaceOp("Tensor.__rpow__", lambda a: 3.0 ** a, lambda a: 3.0 ** a, unary(), torch_call=lambda a: 3.0 ** a),
    SurfaceOp("Tensor.__rsub__", lambda a: 1 - a, lambda a: 1 - a, unary(), torch_call=lambda a: 1 - a),
    SurfaceOp("Tensor.__rtruediv__", lambda a: 2 / a, lambda a: 2 / a, unary(0.5, 2), torch_call=lambda a: 2 / a),
]

# ------------------------------------------------------------------ comparisons, tests and logic
_CMP = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
        "ge": np.greater_equal, "greater": np.greater, "less_equal": np.less_equal, "not_equal": np.not_equal}
OPS += [fn_op(name, ref, both(binary(ties=True, scalar=0.5)), differentiable=False) for name, ref in _CMP.items()]


def _special_values(rng):
    v = np.array([np.nan, np.inf, -np.inf, 1.0, -2.0, 0.0, 3.5])
    return [Sample("special", (v,)), Sample("3x5", (rng.uniform(-2, 2, (3, 5)),)),
            Sample("int", (np.array([1, -2, 0]),))]


OPS += [fn_op(name, getattr(np, name), _special_values, differentiable=False)
        for name in ("isnan", "isinf", "isfinite", "isposinf", "isneginf")]
OPS += [
    fn_op("isclose", lambda a, b, **k: np.isclose(a, b, **k),
          lambda rng: [Sample("near", (np.array([1.0, 2.0, np.nan, np.inf, 0.0]),
                                       np.array([1.0 + 1e-9, 2.1, np.nan, np.inf, 1e-9]))),
                       Sample("equal-nan", (np.array([np.nan, 1.0]), np.array([np.nan, 1.5])),
                              {"equal_nan": True, "rtol": 0.5})],
          differentiable=False, noncontig=False),
    fn_op("allclose", lambda a, b, **k: np.allclose(a, b, **k),
          lambda rng: [Sample("close", (np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))),
                       Sample("far", (np.array([1.0, 2.0]), np.array([1.0, 2.1])))],
          differentiable=False, noncontig=False),
    fn_op("equal", lambda a, b: a.shape == b.shape and bool((a == b).all()),
          lambda rng: [Sample("same", (np.arange(7.0), np.arange(7.0))),
                       Sample("differ", (np.arange(7.0), np.arange(7.0) + (np.arange(7) == 3))),
                       Sample("shape", (np.arange(6.0), np.arange(6.0).reshape(2, 3)))],
          differentiable=False, noncontig=False),
    fn_op("where", lambda c, a, b: np.where(c, a, b),
          lambda rng: [Sample("n7", (rng.random(7) > 0.5, rng.uniform(-2, 2, 7), rng.uniform(-2, 2, 7))),
                       Sample("bcast", (rng.random((3, 1)) > 0.5, rng.uniform(-2, 2, (5,)),
                                        rng.uniform(-2, 2, (3, 5)))),
                       Sample("scalar", (rng.random(7) > 0.5, rng.uniform(-2, 2, 7), Raw(0.5))),
                       Sample("scalar-a", (rng.random(5) > 0.5, Raw(-1.0), rng.uniform(-2, 2, 5))),
                       Sample("n1", (rng.random(1) > 0.5, rng.uniform(-2, 2, 1), rng.uniform(-2, 2, 1)))],
          errors=lambda: [err("float-cond", lambda: nnfast.where(ONES4(), ONES4(), 0.0), TypeError, "where")]),
]


def _logic_samples(rng):
    return [Sample("bool", (rng.random(7) > 0.5, rng.random(7) > 0.5)),
            Sample("int", (rng.integers(-3, 4, (3, 5)), rng.integers(-3, 4, (5,)))),
            Sample("float", (rng.uniform(-1, 1, 7).round(), rng.uniform(-1, 1, 7).round()))]


OPS += [fn_op(name, getattr(np, name), _logic_samples, differentiable=False, noncontig=False)
        for name in ("logical_and", "logical_or", "logical_xor")]
OPS += [fn_op("logical_not", np.logical_not, lambda rng: [Sample(s.id, s.args[:1]) for s in _logic_samples(rng)],
              differentiable=False, noncontig=False)]


def _bit_samples(rng):
    return [Sample("bool", (rng.random(7) > 0.5, rng.random(7) > 0.5)),
            Sample("int", (rng.integers(-9, 10, (3, 5)), rng.integers(-9, 10, (5,)))),
            Sample("scalar", (rng.integers(0, 9, 7), Raw(5)))]


OPS += [fn_op(name, getattr(np, name), _bit_samples, differentiable=False, errors=lambda n=name: [
    err("float", lambda: getattr(nnfast, n)(ONES4(), ONES4()), TypeError, n)])
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor")]
OPS += [
    fn_op("bitwise_not", np.invert, lambda rng: [Sample(s.id, s.args[:1]) for s in _bit_samples(rng)],
          differentiable=False),
    SurfaceOp("Tensor.__and__", lambda a, b: a & b, np.bitwise_and, _bit_samples, differentiable=False,
              torch_call=lambda a, b: a & b),
    SurfaceOp("Tensor.__invert__", lambda a: ~a, np.invert,
              lambda rng: [Sample(s.id, s.args[:1]) for s in _bit_samples(rng)], differentiable=False,
              torch_call=lambda a: ~a),
]


def _has_float(s):
    return any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in s.args)


def _split_integer_samples(ops):
    """Samples without float arrays do not depend on the dtype under test, and their float results
    (int / int, exp(int) ...) are the default float32: they run once, in a ``name[int]`` row with
    float32 tolerances."""
    out = []
    for op in ops:
        if all(_has_float(s) for s in op.samples(np.random.default_rng(0))):
            out.append(op)
            continue
        samples = op.samples
        out.append(dataclasses.replace(op, samples=lambda rng, f=samples: [s for s in f(rng) if _has_float(s)]))
        out.append(dataclasses.replace(op, name=op.name + "[int]", dtypes=(np.float32,), errors=list,
                                       samples=lambda rng, f=samples: [s for s in f(rng) if not _has_float(s)]))
    return out


OPS = _split_integer_samples(OPS)
