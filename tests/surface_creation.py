"""Creation area of the PyTorch-surface registry (see tests/surface.py): factories, conversions and the
samplers at parameters that make them deterministic (one-hot probabilities, zero std ...).

Factories that take no tensor make their output on the default device: they run on cpu here (their
``device=`` argument is tested in test_creation_api.py) and, as they return the default float dtype
whatever the sample dtype, are tabled under float32 only.
"""
from __future__ import annotations

import numpy as np

import nnfast
from surface import ErrorCase, Raw, Sample, SurfaceOp, torch

F32 = (np.float32,)
CPU = ("cpu",)


def _raw(*vals):
    return tuple(Raw(v) for v in vals)


def _factory(name, call, ref, samples, torch_call, errors=list, dtypes=F32):
    return SurfaceOp(name, call, ref, samples, differentiable=False, torch_call=torch_call, dtypes=dtypes,
                     devices=CPU, errors=errors)


def _err(op, thunk, exc=RuntimeError):
    return ErrorCase(op, thunk, exc, rf"\[{op}\] expected")


def _linspace_ref(a, b, n):
    return np.linspace(a, b, n)


def _arr(rng, *shape):
    return rng.standard_normal(shape)


OPS = [
    _factory("arange", lambda *a, **k: nnfast.arange(*a, **k), lambda *a, **k: np.arange(*a, **k),
             lambda rng: [Sample("n1", _raw(1)), Sample("n7", _raw(7)), Sample("neg", _raw(-3, 4)),
                          Sample("step", _raw(1, 14, 3)), Sample("down", _raw(5, -6, -2)),
                          Sample("float", _raw(0.0, 1.0, 0.25)), Sample("odd_float", _raw(-1, 2.3, 0.7))],
             lambda *a, **k: torch.arange(*a, **k),
             lambda: [_err("arange", lambda: nnfast.arange(0, 5, 0)), _err("arange", lambda: nnfast.arange(5, 0, 1))]),
    _factory("linspace", lambda *a, **k: nnfast.linspace(*a, **k), _linspace_ref,
             lambda rng: [Sample("n1", _raw(-2.0, 3.0, 1)), Sample("n7", _raw(0.0, 1.0, 7)),
                          Sample("down", _raw(2.0, -1.0, 9)), Sample("n0", _raw(0.0, 1.0, 0))],
             lambda *a, **k: torch.linspace(*a, **k),
             lambda: [_err("linspace", lambda: nnfast.linspace(0, 1, -1))]),
    _factory("logspace", lambda *a, **k: nnfast.logspace(*a, **k), lambda a, b, n, base=10.0: base ** np.linspace(a, b, n),
             lambda rng: [Sample("n1", _raw(1.0, 2.0, 1)), Sample("n7", _raw(-1.0, 2.0, 7)),
                          Sample("base2", _raw(0.0, 4.0, 5), {"base": 2.0})],
             lambda *a, **k: torch.logspace(*a, **k)),
    _factory("eye", lambda *a, **k: nnfast.eye(*a, **k), lambda n, m=None: np.eye(n, m),
             lambda rng: [Sample("n1", _raw(1)), Sample("n7", _raw(7)), Sample("rect", _raw(3, 5)),
                          Sample("tall", _raw(5, 2))],
             lambda *a, **k: torch.eye(*a, **k),
             lambda: [_err("eye", lambda: nnfast.eye(-1))]),
    _factory("tril_indices", lambda *a: nnfast.tril_indices(*a),
             lambda r, c, o=0: np.stack(np.tril_indices(r, o, c)),
             lambda rng: [Sample("1x1", _raw(1, 1)), Sample("3x3", _raw(3, 3)), Sample("4x7_up", _raw(4, 7, 1)),
                          Sample("5x3_down", _raw(5, 3, -1))],
             lambda *a: torch.tril_indices(*a),
             lambda: [_err("tril_indices", lambda: nnfast.tril_indices(-1, 2))]),
    _factory("triu_indices", lambda *a: nnfast.triu_indices(*a),
             lambda r, c, o=0: np.stack(np.triu_indices(r, o, c)),
             lambda rng: [Sample("1x1", _raw(1, 1)), Sample("3x3", _raw(3, 3)), Sample("4x7_up", _raw(4, 7, 2)),
                          Sample("5x3_down", _raw(5, 3, -1))],
             lambda *a: torch.triu_indices(*a)),
    _factory("zeros", lambda *a: nnfast.zeros(*a), lambda *a: np.zeros(a[0] if len(a) == 1 else a),
             lambda rng: [Sample("1", _raw(1)), Sample("7", _raw(7)), Sample("2x3", _raw(2, 3)),
                          Sample("tuple", _raw((3, 5)))],
             lambda *a: torch.zeros(*a),
             lambda: [_err("zeros", lambda: nnfast.zeros(2, -1)), _err("zeros", lambda: nnfast.zeros("a"), TypeError)]),
    _factory("ones", lambda *a: nnfast.ones(*a), lambda *a: np.ones(a[0] if len(a) == 1 else a),
             lambda rng: [Sample("1", _raw(1)), Sample("7", _raw(7)), Sample("list", _raw([3, 5]))],
             lambda *a: torch.ones(*a)),
    _factory("full", lambda *a: nnfast.full(*a), lambda s, v: np.full(s, v),
             lambda rng: [Sample("1", _raw((1,), 2.5)), Sample("7", _raw((7,), -1.25)), Sample("int", _raw((3, 5), 4)),
                          Sample("bool", _raw((2,), True))],
             lambda *a: torch.full(*a)),
    _factory("scalar_tensor", lambda *a: nnfast.scalar_tensor(*a), lambda v: np.asarray(float(v)),
             lambda rng: [Sample("int", _raw(3)), Sample("float", _raw(-0.5))],
             lambda *a: torch.scalar_tensor(*a)),
    _factory("tensor", lambda *a: nnfast.tensor(*a), lambda d: np.asarray(d),
             lambda rng: [Sample("ints", _raw([[1, 2], [3, 4]])), Sample("floats", _raw([1.5, -2.0, 7.0])),
                          Sample("bools", _raw([True, False])), Sample("scalar", _raw(3.0)),
                          Sample("mixed", _raw([1, 2.5]))],
             lambda *a: torch.tensor(*a),
             lambda: [_err("tensor", lambda: nnfast.tensor("abc"), TypeError)]),
    # the *_like functions: shape, dtype and device of a tensor
    SurfaceOp("zeros_like", lambda x: nnfast.zeros_like(x), np.zeros_like,
              lambda rng: [Sample("1", (_arr(rng, 1),)), Sample("7", (_arr(rng, 7),)), Sample("3x5", (_arr(rng, 3, 5),))],
              differentiable=False, torch_call=lambda x: torch.zeros_like(x)),
    SurfaceOp("ones_like", lambda x: nnfast.ones_like(x), np.ones_like,
              lambda rng: [Sample("1", (_arr(rng, 1),)), Sample("7", (_arr(rng, 7),)), Sample("3x5", (_arr(rng, 3, 5),))],
              differentiable=False, torch_call=lambda x: torch.ones_like(x)),
    SurfaceOp("full_like", lambda x, v: nnfast.full_like(x, v), lambda x, v: np.full_like(x, v),
              lambda rng: [Sample("1", (_arr(rng, 1), Raw(2.0))), Sample("3x7", (_arr(rng, 3, 7), Raw(-1.5)))],
              differentiable=False, torch_call=lambda x, v: torch.full_like(x, v)),
    SurfaceOp("Tensor.new_zeros", lambda x, s: x.new_zeros(s), lambda x, s: np.zeros(s, x.dtype),
              lambda rng: [Sample("1", (_arr(rng, 1), Raw((7,)))), Sample("2x3", (_arr(rng, 3), Raw((2, 3))))],
              differentiable=False, torch_call=lambda x, s: x.new_zeros(s), noncontig=False),
    SurfaceOp("Tensor.new_full", lambda x, s, v: x.new_full(s, v), lambda x, s, v: np.full(s, v, x.dtype),
              lambda rng: [Sample("2x3", (_arr(rng, 3), Raw((2, 3)), Raw(1.5)))],
              differentiable=False, torch_call=lambda x, s, v: x.new_full(s, v), noncontig=False),
    SurfaceOp("Tensor.new_tensor", lambda x, d: x.new_tensor(d), lambda x, d: np.asarray(d, x.dtype),
              lambda rng: [Sample("list", (_arr(rng, 3), Raw([1, 2, 3.5])))],
              differentiable=False, torch_call=lambda x, d: x.new_tensor(d), noncontig=False),
    # conversions (differentiable between float dtypes)
    SurfaceOp("Tensor.double", lambda x: x.double(), lambda x: x,
              lambda rng: [Sample("1", (_arr(rng, 1),)), Sample("7", (_arr(rng, 7),)), Sample("3x5", (_arr(rng, 3, 5),))],
              torch_call=lambda x: x.double()),
    SurfaceOp("Tensor.type_as", lambda x, y: x.type_as(y), lambda x, y: x,
              lambda rng: [Sample("3x5", (_arr(rng, 3, 5), _arr(rng, 2)), grads=(0,))],
              torch_call=lambda x, y: x.type_as(y)),
    SurfaceOp("Tensor.long", lambda x: x.long(), lambda x: x.astype(np.int64),
              lambda rng: [Sample("1", (_arr(rng, 1) * 5,)), Sample("3x7", (_arr(rng, 3, 7) * 5,))],
              differentiable=False, torch_call=lambda x: x.long()),
    SurfaceOp("Tensor.bool", lambda x: x.bool(), lambda x: x.astype(bool),
              lambda rng: [Sample("7", (np.array([0.0, 1.0, -2.0, 0.0, 0.5, -0.0, 3.0]),))],
              differentiable=False, torch_call=lambda x: x.bool()),
    SurfaceOp("Tensor.half", lambda x: x.half(), lambda x: x.astype(np.float16),
              lambda rng: [Sample("3x7", (_arr(rng, 3, 7),))],
              differentiable=False, torch_call=lambda x: x.half(),
              tol={np.float64: (1e-3, 1e-4), np.float32: (1e-3, 1e-4)}),
    # samplers at deterministic parameters
    SurfaceOp("multinomial", lambda p, n, **k: nnfast.multinomial(p, n, **k),
              lambda p, n, **k: np.argmax(p, -1)[..., None].repeat(n, -1),
              lambda rng: [Sample("1d", (np.array([0.0, 0.0, 2.0, 0.0]), Raw(1))),
                           Sample("2d", (np.eye(7)[[3, 0, 6]] * 3.0, Raw(1))),
                           Sample("repl", (np.eye(5)[[1, 4]], Raw(3)), {"replacement": True})],
              differentiable=False, torch_call=lambda p, n, **k: torch.multinomial(p, n, **k),
              errors=lambda: [_err("multinomial", lambda: nnfast.multinomial(nnfast.ones(3), 4)),
                              _err("multinomial", lambda: nnfast.multinomial(nnfast.tensor([1.0, 0.0, 0.0]), 2)),
                              _err("multinomial", lambda: nnfast.multinomial(nnfast.tensor([1.0, -1.0]), 1)),
                              _err("multinomial", lambda: nnfast.multinomial(nnfast.zeros(2, 2, 2), 1))]),
    SurfaceOp("bernoulli", lambda p: nnfast.bernoulli(p), lambda p: p,
              lambda rng: [Sample("1", (np.ones(1),)), Sample("3x7", ((_arr(rng, 3, 7) > 0).astype(np.float64),))],
              differentiable=False, torch_call=lambda p: torch.bernoulli(p),
              errors=lambda: [_err("bernoulli", lambda: nnfast.bernoulli(nnfast.tensor([1.5])))]),
    SurfaceOp("normal", lambda m, s: nnfast.normal(m, s), lambda m, s: m,
              lambda rng: [Sample("1", (_arr(rng, 1), Raw(0.0))), Sample("3x7", (_arr(rng, 3, 7), Raw(0.0)))],
              differentiable=False, torch_call=lambda m, s: torch.normal(m, s),
              errors=lambda: [_err("normal", lambda: nnfast.normal(nnfast.zeros(2), -1.0)),
                              _err("normal", lambda: nnfast.normal(0.0, 1.0), TypeError)]),
    SurfaceOp("poisson", lambda r: nnfast.poisson(r), lambda r: r,
              lambda rng: [Sample("7", (np.zeros(7),))],
              differentiable=False, torch_call=lambda r: torch.poisson(r),
              errors=lambda: [_err("poisson", lambda: nnfast.poisson(nnfast.tensor([-1.0])))]),
    _factory("randint", lambda *a: nnfast.randint(*a), lambda lo, hi, s: np.full(s, lo),
             lambda rng: [Sample("1", _raw(3, 4, (1,))), Sample("3x7", _raw(-2, -1, (3, 7)))],
             lambda *a: torch.randint(*a),
             lambda: [_err("randint", lambda: nnfast.randint(3, 3, (2,)))]),
    _factory("randperm", lambda n: nnfast.randperm(n), lambda n: np.arange(n),
             lambda rng: [Sample("1", _raw(1)), Sample("0", _raw(0))],
             lambda n: torch.randperm(n),
             lambda: [_err("randperm", lambda: nnfast.randperm(-1))]),
]
