"""SurfaceOp table of the reduction area: reductions, scans, sorting, selection (see tests/surface.py).

Ties: a tie's finite-difference gradient is not the gradient PyTorch defines there, so samples
with ties differentiate nothing (``grads=()``); their values and indices are still compared.
"""
from __future__ import annotations

import numpy as np

import nnfast
from surface import ErrorCase, Sample, SurfaceOp, torch


# ------------------------------------------------------------------ calls
def _fn(name):
    return lambda *a, **k: getattr(nnfast, name)(*a, **k)


def _torch_fn(name):
    return (lambda *a, **k: getattr(torch, name)(*a, **k)) if torch is not None else None


def _method(name):
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


def _ax(dim):
    return tuple(dim) if isinstance(dim, (list, tuple)) else dim


def _sorted_desc(x, axis):
    return np.flip(np.sort(x, axis=axis), axis=axis)


# ------------------------------------------------------------------ references (float64 NumPy)
def _red(f):
    return lambda x, dim=None, keepdim=False, **k: np.asarray(f(x, axis=_ax(dim), keepdims=keepdim))


def _var_ref(x, dim=None, unbiased=True, keepdim=False, correction=None):
    c = (1 if unbiased else 0) if correction is None else correction
    return np.var(x, axis=_ax(dim), ddof=c, keepdims=keepdim)


def _arg_take(f, x, dim, keepdim):
    idx = np.expand_dims(f(x, axis=dim), dim)
    vals = np.take_along_axis(x, idx, dim)
    return (vals, idx) if keepdim else (vals.squeeze(dim), idx.squeeze(dim))


def _extreme_ref(f):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return np.asarray((np.max if f is np.argmax else np.min)(x))
        return _arg_take(f, x, dim, keepdim)
    return ref


def _norm_ref(x, p="fro", dim=None, keepdim=False):
    p = 2 if p == "fro" else p
    a = np.abs(x)
    if np.isinf(p):
        return (np.max if p > 0 else np.min)(a, axis=_ax(dim), keepdims=keepdim)
    return np.sum(a**p, axis=_ax(dim), keepdims=keepdim) ** (1 / p)


def _lse_ref(x, dim, keepdim=False):
    m = np.max(x, axis=_ax(dim), keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=_ax(dim), keepdims=True)) + m
    return r if keepdim else r.squeeze(_ax(dim))


def _cum_extreme_ref(f):
    def ref(x, dim):
        v = f.accumulate(x, axis=dim)
        pos = np.arange(x.shape[dim]).reshape([-1 if i == dim % x.ndim else 1 for i in range(x.ndim)])
        return v, np.maximum.accumulate(np.where(x == v, pos, 0), axis=dim)
    return ref


def _sort_ref(x, dim=-1, descending=False, stable=False):
    if descending:
        idx = np.argsort(-x, axis=dim, kind="stable")
    else:
        idx = np.argsort(x, axis=dim, kind="stable")
    return np.take_along_axis(x, idx, dim), idx


def _topk_ref(x, k, dim=-1, largest=True, sorted=True):
    v, i = _sort_ref(x, dim, descending=largest)
    return np.take(v, np.arange(k), axis=dim), np.take(i, np.arange(k), axis=dim)


def _kth_ref(x, k, dim=-1, keepdim=False):
    v, i = _sort_ref(x, dim)
    v, i = np.take(v, [k - 1], axis=dim), np.take(i, [k - 1], axis=dim)
    return (v, i) if keepdim else (v.squeeze(dim), i.squeeze(dim))


def _median_ref(x, dim=None, keepdim=False):
    if dim is None:
        return np.sort(x.reshape(-1))[(x.size - 1) // 2]
    return _kth_ref(x, (x.shape[dim] - 1) // 2 + 1, dim, keepdim)


# ------------------------------------------------------------------ samples
def _reduce_samples(rng, grads=None, ties=True):
    s = [
        Sample("n1", (rng.standard_normal(1),)),
        Sample("n7-dim0", (rng.standard_normal(7), 0)),
        Sample("3x5-neg-keepdim", (rng.standard_normal((3, 5)), -1), {"keepdim": True}),
        Sample("2x3x5-tuple", (rng.standard_normal((2, 3, 5)), (0, -1))),
        Sample("2x3x5-list-keepdim", (rng.standard_normal((2, 3, 5)),), {"dim": [1, 2], "keepdim": True}),
        Sample("0d", (np.array(1.5),)),
    ]
    if ties:
        s.append(Sample("ties-3x7", (rng.integers(0, 3, (3, 7)).astype(np.float64), 1), grads=grads))
    return s


def _dim_samples(rng, ties=True):
    """Samples of ops over one dim giving (values, indices)."""
    s = [
        Sample("n1", (rng.standard_normal(1), 0)),
        Sample("n7", (rng.standard_normal(7), -1)),
        Sample("3x5-dim0-keepdim", (rng.standard_normal((3, 5)), 0), {"keepdim": True}),
        Sample("2x3x5-dim1", (rng.standard_normal((2, 3, 5)), 1)),
    ]
    if ties:
        s.append(Sample("ties", (np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, 2.0, 1.0, 2.0, 0.0]]), 1), grads=()))
    return s


def _scan_samples(rng):
    return [
        Sample("n1", (rng.standard_normal(1), 0)),
        Sample("n7", (rng.standard_normal(7), -1)),
        Sample("3x5-dim0", (rng.standard_normal((3, 5)), 0)),
        Sample("2x3x5-dim-1", (rng.standard_normal((2, 3, 5)), -1)),
    ]


def _dim_error(name, call):
    return lambda: [ErrorCase("dim-out-of-range", lambda: call(nnfast.ones(2, 3), 2), IndexError,
                              rf"^\[{name}\] expected dim in range \[-2, 1\], got 2")]


def _zeros_samples(rng):
    one = rng.standard_normal((3, 5))
    one[1, 2] = 0.0
    two = rng.standard_normal((2, 7))
    two[0, 1] = two[0, 4] = 0.0
    two[1, 6] = 0.0
    return [Sample("one-zero", (one, 1)), Sample("zeros", (two, -1)), Sample("all-zero", (np.zeros((2, 3)), 0))]


OPS = [
    SurfaceOp("sum", _fn("sum"), _red(np.sum), _reduce_samples, torch_call=_torch_fn("sum"),
              errors=_dim_error("sum", nnfast.sum)),
    SurfaceOp("Tensor.sum[dtype]", lambda x: x.sum(dtype=nnfast.float64), lambda x: np.sum(x),
              lambda rng: [Sample("n7", (rng.standard_normal(7),))],
              torch_call=lambda x: x.sum(dtype=torch.float64)),
    SurfaceOp("sum[int]", _fn("sum"), _red(np.sum),
              lambda rng: [Sample("int32", (rng.integers(-5, 5, (3, 7)).astype(np.int32), 1)),
                           Sample("bool", (rng.integers(0, 2, 7).astype(bool),))],
              differentiable=False, torch_call=_torch_fn("sum")),
    SurfaceOp("mean", _fn("mean"), _red(np.mean), _reduce_samples, torch_call=_torch_fn("mean"),
              errors=lambda: [ErrorCase("int", lambda: nnfast.mean(nnfast.tensor([1, 2])), RuntimeError,
                                        r"^\[mean\] expected a floating point")]
              + _dim_error("mean", nnfast.mean)()),
    SurfaceOp("nansum", _fn("nansum"), _red(np.nansum),
              lambda rng: _reduce_samples(rng, ties=False) + [
                  Sample("nan", (np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, 0.5]]), 1))],
              torch_call=_torch_fn("nansum")),
    SurfaceOp("nanmean", _fn("nanmean"), _red(np.nanmean),
              lambda rng: _reduce_samples(rng, ties=False) + [
                  Sample("nan", (np.array([[1.0, np.nan, 2.0], [np.nan, 3.0, 0.5]]), -1))],
              torch_call=_torch_fn("nanmean")),
    SurfaceOp("prod", _fn("prod"), _red(np.prod),
              lambda rng: [Sample("n1", (rng.standard_normal(1),)), Sample("n7", (rng.standard_normal(7), 0)),
                           Sample("3x5-keepdim", (rng.standard_normal((3, 5)), 1), {"keepdim": True}),
                           *_zeros_samples(rng)],
              torch_call=_torch_fn("prod"), errors=_dim_error("prod", nnfast.prod)),
    SurfaceOp("prod[int]", _fn("prod"), lambda x: np.prod(x),
              lambda rng: [Sample("int", (rng.integers(-3, 4, 7).astype(np.int32),))],
              differentiable=False, torch_call=_torch_fn("prod")),
    SurfaceOp("var", _fn("var"), _var_ref,
              lambda rng: [Sample("n7", (rng.standard_normal(7),)),
                           Sample("n1-biased", (rng.standard_normal(1),), {"unbiased": False}),
                           Sample("3x5-dim1-keepdim", (rng.standard_normal((3, 5)), 1), {"keepdim": True}),
                           Sample("2x3x5-tuple", (rng.standard_normal((2, 3, 5)), (0, 2))),
                           Sample("correction2", (rng.standard_normal((3, 7)), -1), {"correction": 2})],
              torch_call=_torch_fn("var"), errors=_dim_error("var", nnfast.var)),
    SurfaceOp("Tensor.std", _method("std"), lambda x, *a, **k: np.sqrt(_var_ref(x, *a, **k)),
              lambda rng: [Sample("n7", (rng.standard_normal(7),)),
                           Sample("3x5-dim0", (rng.standard_normal((3, 5)), 0)),
                           Sample("2x3x5-biased", (rng.standard_normal((2, 3, 5)), [1]), {"unbiased": False})],
              torch_call=_method("std")),
    SurfaceOp("var_mean", _fn("var_mean"),
              lambda x, dim=None, **k: (_var_ref(x, dim, **k), np.mean(x, axis=_ax(dim), keepdims=k.get("keepdim", False))),
              lambda rng: [Sample("n7", (rng.standard_normal(7),)),
                           Sample("3x5-keepdim", (rng.standard_normal((3, 5)), 1), {"keepdim": True})],
              torch_call=_torch_fn("var_mean")),
    SurfaceOp("std_mean", _fn("std_mean"),
              lambda x, dim=None, **k: (np.sqrt(_var_ref(x, dim, **k)), np.mean(x, axis=_ax(dim))),
              lambda rng: [Sample("3x5", (rng.standard_normal((3, 5)), 0))],
              torch_call=_torch_fn("std_mean")),
    SurfaceOp("max", _fn("max"), _extreme_ref(np.argmax),
              lambda rng: [Sample("all-n7", (rng.standard_normal(7),))] + _dim_samples(rng),
              torch_call=_torch_fn("max"), errors=_dim_error("max", nnfast.max)),
    SurfaceOp("Tensor.min", _method("min"), _extreme_ref(np.argmin),
              lambda rng: [Sample("all-3x5", (rng.standard_normal((3, 5)),))] + _dim_samples(rng),
              torch_call=_method("min"), errors=_dim_error("min", lambda x, d: x.min(d))),
    SurfaceOp("max[binary]", _fn("max"), np.maximum,
              lambda rng: [Sample("3x5", (rng.standard_normal((3, 5)), rng.standard_normal((3, 5)))),
                           Sample("broadcast", (rng.standard_normal((3, 1)), rng.standard_normal(7)))],
              torch_call=_torch_fn("max")),
    SurfaceOp("amax", _fn("amax"), lambda x, dim=(), keepdim=False: np.amax(x, axis=_ax(dim) or None, keepdims=keepdim),
              lambda rng: _reduce_samples(rng, grads=()) + [
                  Sample("tie2", (np.array([[1.0, 3.0, 3.0], [0.5, 2.0, -1.0]]), 1))],  # a 2-way tie: FD gives 1/2
              torch_call=_torch_fn("amax"), errors=_dim_error("amax", nnfast.amax)),
    SurfaceOp("Tensor.amin", _method("amin"),
              lambda x, dim=(), keepdim=False: np.amin(x, axis=_ax(dim) or None, keepdims=keepdim),
              lambda rng: _reduce_samples(rng, grads=()), torch_call=_method("amin")),
    SurfaceOp("argmax", _fn("argmax"),
              lambda x, dim=None, keepdim=False: np.argmax(x, axis=dim, keepdims=keepdim) if dim is not None
              else np.argmax(x).reshape((1,) * x.ndim if keepdim else ()),
              lambda rng: [Sample("n7", (rng.standard_normal(7),)),
                           Sample("3x5-keepdim", (rng.standard_normal((3, 5)), 1), {"keepdim": True}),
                           Sample("all-keepdim", (rng.standard_normal((3, 5)),), {"keepdim": True}),
                           Sample("ties", (np.array([[2.0, 5.0, 5.0], [1.0, 1.0, 0.0]]), -1))],
              differentiable=False, torch_call=_torch_fn("argmax"), errors=_dim_error("argmax", nnfast.argmax)),
    SurfaceOp("Tensor.argmin", _method("argmin"), lambda x, dim=None: np.argmin(x, axis=dim),
              lambda rng: [Sample("n1", (rng.standard_normal(1),)),
                           Sample("2x3x5", (rng.standard_normal((2, 3, 5)), 1)),
                           Sample("int", (np.array([3, 1, 1, 4]), 0))],
              differentiable=False, torch_call=_method("argmin")),
    SurfaceOp("aminmax", _fn("aminmax"),
              lambda x, dim=None, keepdim=False: (np.amin(x, axis=dim, keepdims=keepdim),
                                                  np.amax(x, axis=dim, keepdims=keepdim)),
              lambda rng: [Sample("n7", (rng.standard_normal(7),)),
                           Sample("3x5-dim", (rng.standard_normal((3, 5)),), {"dim": -1, "keepdim": True})],
              torch_call=_torch_fn("aminmax")),
    SurfaceOp("norm", _fn("norm"), _norm_ref,
              lambda rng: [Sample("fro", (rng.standard_normal((3, 5)),)),
                           Sample("p1-dim", (rng.standard_normal((3, 5)), 1, 1)),
                           Sample("p3-keepdim", (rng.standard_normal(7), 3.0, 0), {"keepdim": True}),
                           Sample("inf", (rng.standard_normal((2, 3, 5)), float("inf"), (1, 2))),
                           Sample("n1", (rng.standard_normal(1), 2)),
                           Sample("zero-row", (np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]]), 2, 1))],
              torch_call=_torch_fn("norm"), errors=_dim_error("norm", lambda x, d: nnfast.norm(x, 2, d))),
    SurfaceOp("logsumexp", _fn("logsumexp"), _lse_ref,
              lambda rng: [Sample("n1", (rng.standard_normal(1), 0)),
                           Sample("n7", (rng.standard_normal(7), -1)),
                           Sample("3x5-keepdim", (rng.standard_normal((3, 5)), 1), {"keepdim": True}),
                           Sample("2x3x5-tuple", (rng.standard_normal((2, 3, 5)), (0, 2))),
                           Sample("large", (np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -999.5]]), 1))],
              torch_call=_torch_fn("logsumexp"), errors=_dim_error("logsumexp", nnfast.logsumexp)),
    SurfaceOp("cumsum", _fn("cumsum"), lambda x, dim: np.cumsum(x, axis=dim), _scan_samples,
              torch_call=_torch_fn("cumsum"), errors=_dim_error("cumsum", nnfast.cumsum)),
    SurfaceOp("cumsum[int]", _fn("cumsum"), lambda x, dim: np.cumsum(x, axis=dim, dtype=np.int64),
              lambda rng: [Sample("int32", (rng.integers(-5, 5, 7).astype(np.int32), 0)),
                           Sample("bool", (rng.integers(0, 2, (3, 5)).astype(bool), 1))],
              differentiable=False, torch_call=_torch_fn("cumsum")),
    SurfaceOp("Tensor.cumprod", _method("cumprod"), lambda x, dim: np.cumprod(x, axis=dim),
              lambda rng: _scan_samples(rng) + _zeros_samples(rng), torch_call=_method("cumprod")),
    SurfaceOp("cummax", _fn("cummax"), _cum_extreme_ref(np.maximum),
              lambda rng: _scan_samples(rng) + [
                  Sample("ties", (np.array([[1.0, 3.0, 3.0, 2.0, 5.0], [4.0, 4.0, 1.0, 4.0, 0.0]]), 1), grads=())],
              torch_call=_torch_fn("cummax"), errors=_dim_error("cummax", nnfast.cummax)),
    SurfaceOp("Tensor.cummin", _method("cummin"), _cum_extreme_ref(np.minimum), _scan_samples,
              torch_call=_method("cummin")),
    SurfaceOp("all", _fn("all"), _red(np.all),
              lambda rng: [Sample("n7", (rng.integers(0, 2, 7).astype(bool),)),
                           Sample("3x5-dim", (rng.integers(0, 2, (3, 5)).astype(bool), 1), {"keepdim": True}),
                           Sample("float", (np.array([[1.0, 0.0], [2.0, 3.0]]), 1))],
              differentiable=False, torch_call=_torch_fn("all"), errors=_dim_error("all", nnfast.all)),
    SurfaceOp("Tensor.any", _method("any"), _red(np.any),
              lambda rng: [Sample("n1", (np.array([False]),)),
                           Sample("2x3x5-tuple", (rng.integers(0, 2, (2, 3, 5)).astype(bool), (0, 2)))],
              differentiable=False, torch_call=_method("any")),
    SurfaceOp("count_nonzero", _fn("count_nonzero"),
              lambda x, dim=None: np.asarray(np.count_nonzero(x, axis=_ax(dim)), dtype=np.int64),
              lambda rng: [Sample("n7", (np.array([0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 1.0]),)),
                           Sample("3x5-dim", (rng.integers(0, 2, (3, 5)).astype(np.float64), 1))],
              differentiable=False, torch_call=_torch_fn("count_nonzero")),
    SurfaceOp("sort", _fn("sort"), _sort_ref,
              lambda rng: [*_scan_samples(rng),
                           Sample("desc", (rng.standard_normal((3, 5)),), {"descending": True}),
                           Sample("ties-stable", (np.array([[2.0, 1.0, 2.0, 1.0, 0.0]]),),
                                  {"stable": True}, grads=()),
                           Sample("ties-desc", (np.array([[2.0, 1.0, 2.0, 1.0, 0.0]]),),
                                  {"descending": True, "stable": True}, grads=())],
              torch_call=_torch_fn("sort"), errors=_dim_error("sort", nnfast.sort)),
    SurfaceOp("Tensor.argsort", _method("argsort"), lambda x, dim=-1, descending=False: _sort_ref(x, dim, descending)[1],
              lambda rng: [Sample("n7", (rng.standard_normal(7),)),
                           Sample("3x5-desc", (rng.standard_normal((3, 5)), 0), {"descending": True})],
              differentiable=False, torch_call=_method("argsort")),
    SurfaceOp("msort", _fn("msort"), lambda x: np.sort(x, axis=0),
              lambda rng: [Sample("3x5", (rng.standard_normal((3, 5)),)), Sample("n7", (rng.standard_normal(7),))],
              torch_call=_torch_fn("msort")),
    SurfaceOp("topk", _fn("topk"), _topk_ref,
              lambda rng: [Sample("n7-k3", (rng.standard_normal(7), 3)),
                           Sample("n1-k1", (rng.standard_normal(1), 1)),
                           Sample("3x5-dim0-smallest", (rng.standard_normal((3, 5)), 2), {"dim": 0, "largest": False}),
                           Sample("2x3x5-k5", (rng.standard_normal((2, 3, 5)), 5))],
              torch_call=_torch_fn("topk"),
              errors=lambda: [ErrorCase("k", lambda: nnfast.topk(nnfast.ones(3), 4), RuntimeError,
                                        r"^\[topk\] expected k in \[0, 3\]")]),
    SurfaceOp("kthvalue", _fn("kthvalue"), _kth_ref,
              lambda rng: [Sample("n7-k2", (rng.standard_normal(7), 2)),
                           Sample("n1", (rng.standard_normal(1), 1)),
                           Sample("3x5-dim0-keepdim", (rng.standard_normal((3, 5)), 3, 0), {"keepdim": True})],
              torch_call=_torch_fn("kthvalue"),
              errors=lambda: [ErrorCase("k", lambda: nnfast.kthvalue(nnfast.ones(3), 0), RuntimeError,
                                        r"^\[kthvalue\] expected k in \[1, 3\]")]),
    SurfaceOp("median", _fn("median"), _median_ref,
              lambda rng: [Sample("all-n7", (rng.standard_normal(7),)),
                           Sample("all-even", (rng.standard_normal((2, 3)),)),
                           Sample("dim", (rng.standard_normal((3, 5)), 1)),
                           Sample("dim-even-keepdim", (rng.standard_normal((4, 3)), 0), {"keepdim": True}),
                           Sample("n1", (rng.standard_normal(1), 0))],
              torch_call=_torch_fn("median"), errors=_dim_error("median", nnfast.median)),
    SurfaceOp("mode", _fn("mode"), None,
              lambda rng: [Sample("ties", (np.array([[2.0, 1.0, 2.0, 1.0, 3.0], [0.0, 5.0, 5.0, 4.0, 4.0]]),),
                                  grads=()),
                           Sample("int-dim0", (rng.integers(0, 3, (7, 3)), 0))],
              torch_call=_torch_fn("mode")),
]
