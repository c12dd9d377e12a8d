"""SurfaceOp rows of the indexing area (python/nnfast/ops/indexing.py): see tests/surface.py."""
from __future__ import annotations

import numpy as np

import nnfast
from surface import ErrorCase, Raw, Sample, SurfaceOp, torch


def _err(op, thunk, exc=RuntimeError):
    return ErrorCase(op, thunk, exc, rf"\[{op}\] expected")


def _t(*shape):
    return nnfast.zeros(*shape)


def _i(*values):
    return nnfast.tensor(list(values))


def _fn(name):
    return lambda *a, **k: getattr(nnfast, name)(*a, **k)


def _tfn(name):
    return (lambda *a, **k: getattr(torch, name)(*a, **k)) if torch is not None else None


def _grid(idx, dim):
    """The NumPy advanced index that gather / scatter use for ``idx`` along ``dim``."""
    return tuple(idx if d == dim else np.arange(idx.shape[d]).reshape(
        [-1 if k == d else 1 for k in range(idx.ndim)]) for d in range(idx.ndim))


def _gather_ref(x, dim, idx):
    return x[_grid(idx, dim % x.ndim)]


def _scatter_ref(x, dim, idx, src, reduce=None, include_self=True):
    out = x.copy()
    g = _grid(idx, dim % x.ndim)
    block = src[tuple(slice(0, s) for s in idx.shape)] if np.ndim(src) else src
    if reduce is None:
        out[g] = block
        return out
    count = np.zeros(x.shape)
    np.add.at(count, g, 1.0)
    if not include_self:
        out[count > 0] = {"sum": 0, "mean": 0, "prod": 1, "amax": -np.inf, "amin": np.inf}[reduce]
    uf = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}[reduce]
    uf.at(out, g, block)
    if reduce == "mean":
        out = out / np.maximum(count + include_self, 1)
    return out


def _perm_index(rng, n, k, shape_rest):
    """An index of shape (k, *shape_rest) along dim 0 with distinct entries per column (k <= n)."""
    cols = int(np.prod(shape_rest, dtype=np.int64))
    return np.stack([rng.permutation(n)[:k] for _ in range(cols)], 1).reshape((k,) + shape_rest)


def _index_along(x, dim, idx, src, mode):
    out = x.copy()
    sl = (slice(None),) * (dim % x.ndim) + (idx,)
    if mode == "add":
        np.add.at(out, sl, src)
    else:
        out[sl] = src
    return out


def _scatter_samples(rng, extra=0):
    """Distinct positions per scatter; ``extra`` makes src larger than the index (PyTorch's backward
    can't take that case, so those samples go without the torch oracle)."""
    return [
        Sample("1", (rng.standard_normal((1,)), Raw(0), np.array([0]), rng.standard_normal((1 + extra,)))),
        Sample("7", (rng.standard_normal((7,)), Raw(0), rng.permutation(7)[:4], rng.standard_normal((4 + extra,)))),
        Sample("3x5-dim0", (rng.standard_normal((3, 5)), Raw(0), _perm_index(rng, 3, 2, (4,)),
                            rng.standard_normal((2 + extra, 4 + extra)))),
        Sample("3x5-dim-1", (rng.standard_normal((3, 5)), Raw(-1), _perm_index(rng, 5, 3, (3,)).T.copy(),
                             rng.standard_normal((3, 3 + extra)))),
    ]


def _reduce_samples(reduce):
    def samples(rng):
        idx = rng.integers(0, 3, size=(4, 5))  # repeated positions: every reduce mode sees several values
        return [
            Sample("3x5", (rng.standard_normal((3, 5)), Raw(0), idx, rng.standard_normal((4, 5)), Raw(reduce))),
            Sample("7-no-self", (rng.standard_normal((7,)), Raw(0), rng.integers(0, 7, size=(9,)),
                                 rng.standard_normal((9,)), Raw(reduce)), {"include_self": False}),
        ]
    return samples


def _torch_scatter_reduce(x, dim, idx, src, reduce, include_self=True):
    return torch.scatter_reduce(x, dim, idx, src, reduce, include_self=include_self)


def _torch_masked_fill(x, m, v):
    # the harness hands 0-d arrays to torch as shape (1,): give masked_fill its 0-d value back
    return torch.masked_fill(x, m, v.reshape(()) if isinstance(v, torch.Tensor) else v)


OPS = [
    SurfaceOp("gather", _fn("gather"), _gather_ref, lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(0), np.array([0, 0]))),
        Sample("7", (rng.standard_normal((7,)), Raw(-1), rng.integers(0, 7, size=(9,)))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(1), rng.integers(0, 5, size=(2, 7)))),
    ], torch_call=_tfn("gather"), errors=lambda: [
        _err("gather", lambda: nnfast.gather(_t(3, 4), 0, _i(0, 1))),
        _err("gather", lambda: nnfast.gather(_t(3, 4), 1, _i([0], [4])), IndexError),
        _err("gather", lambda: nnfast.gather(_t(3, 4), 1, nnfast.zeros(3, 1)))]),
    SurfaceOp("index_select", _fn("index_select"), lambda x, d, i: np.take(x, i, d), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(0), np.array([0, 0, 0]))),
        Sample("7", (rng.standard_normal((7,)), Raw(0), rng.integers(0, 7, size=(11,)))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(-1), np.array([4, 0, 4]))),
    ], torch_call=_tfn("index_select"), errors=lambda: [
        _err("index_select", lambda: nnfast.index_select(_t(3, 4), 0, _i(3)), IndexError),
        _err("index_select", lambda: nnfast.index_select(_t(3, 4), 0, _i(-1)), IndexError),
        _err("index_select", lambda: nnfast.index_select(_t(3, 4), 2, _i(0)), IndexError)]),
    SurfaceOp("take", _fn("take"), lambda x, i: x.reshape(-1)[i], lambda rng: [
        Sample("7", (rng.standard_normal((7,)), np.array([0, -1, 3, 3]))),
        Sample("3x5", (rng.standard_normal((3, 5)), rng.integers(0, 15, size=(2, 3)))),
    ], torch_call=_tfn("take"), errors=lambda: [_err("take", lambda: nnfast.take(_t(3), _i(3)), IndexError)]),
    SurfaceOp("take_along_dim", _fn("take_along_dim"),
              lambda x, i, d=None: np.take_along_axis(x.reshape(-1) if d is None else x, i.reshape(-1) if d is None
                                                      else i, 0 if d is None else d), lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)), rng.integers(0, 5, size=(3, 2)), Raw(1))),
        Sample("flat", (rng.standard_normal((3, 5)), rng.integers(0, 15, size=(7,)))),
    ], torch_call=_tfn("take_along_dim")),
    SurfaceOp("scatter", _fn("scatter"), _scatter_ref, _scatter_samples, torch_call=_tfn("scatter"), errors=lambda: [
        _err("scatter", lambda: nnfast.scatter(_t(3, 4), 0, _i([3]), _t(1, 1)), IndexError),
        _err("scatter", lambda: nnfast.scatter(_t(3, 4), 0, _i([0, 1]), _t(1, 1)))]),
    SurfaceOp("scatter[src-larger]", _fn("scatter"), _scatter_ref, lambda rng: _scatter_samples(rng, 1)),
    SurfaceOp("scatter[value]", lambda x, d, i: nnfast.scatter(x, d, i, value=2.5),
              lambda x, d, i: _scatter_ref(x, d, i, 2.5), lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(1), _perm_index(rng, 5, 2, (3,)).T.copy()))],
        torch_call=(lambda x, d, i: torch.scatter(x, d, i, value=2.5)) if torch is not None else None),
    SurfaceOp("scatter_add", _fn("scatter_add"), lambda x, d, i, s: _scatter_ref(x, d, i, s, "sum"), lambda rng: [
        Sample("7-repeats", (rng.standard_normal((7,)), Raw(0), rng.integers(0, 7, size=(12,)),
                             rng.standard_normal((12,)))),
        *_scatter_samples(rng)[2:]], torch_call=_tfn("scatter_add")),
    *[SurfaceOp(f"scatter_reduce[{r}]", _fn("scatter_reduce"), _scatter_ref, _reduce_samples(r),
                torch_call=_torch_scatter_reduce if torch is not None else None,
                errors=(lambda: [_err("scatter_reduce", lambda: nnfast.scatter_reduce(
                    _t(3), 0, _i(0), _t(1), "max"))]) if r == "sum" else list)
      for r in ("sum", "prod", "mean", "amax", "amin")],
    SurfaceOp("index_add", _fn("index_add"), lambda x, d, i, s, alpha=1: _index_along(x, d, i, alpha * s, "add"),
              lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(0), np.array([0, 0]), rng.standard_normal((2,)))),
        Sample("3x7", (rng.standard_normal((3, 7)), Raw(1), np.array([6, 0, 6]), rng.standard_normal((3, 3))),
               {"alpha": 2.0}),
    ], torch_call=_tfn("index_add"), errors=lambda: [
        _err("index_add", lambda: nnfast.index_add(_t(3, 4), 0, _i(0), _t(1, 3)))]),
    SurfaceOp("index_copy", _fn("index_copy"), lambda x, d, i, s: _index_along(x, d, i, s, "copy"), lambda rng: [
        Sample("5x3", (rng.standard_normal((5, 3)), Raw(0), np.array([4, 1]), rng.standard_normal((2, 3)))),
    ], torch_call=_tfn("index_copy")),
    SurfaceOp("index_fill", _fn("index_fill"), lambda x, d, i, v: _index_along(x, d, i, v, "copy"), lambda rng: [
        Sample("3x7", (rng.standard_normal((3, 7)), Raw(-1), np.array([6, 2]), Raw(-1.5))),
    ], torch_call=_tfn("index_fill"), errors=lambda: [
        _err("index_fill", lambda: nnfast.index_fill(_t(3), 0, _i(5), 1.0), IndexError)]),
    SurfaceOp("index_put", lambda x, i, v, acc=False: nnfast.index_put(x, (i,), v, acc),
              lambda x, i, v, acc=False: _index_along(x, 0, i, v, "add" if acc else "copy"), lambda rng: [
        Sample("7", (rng.standard_normal((7,)), np.array([1, 5]), rng.standard_normal((2,)))),
        Sample("3x5-acc", (rng.standard_normal((3, 5)), np.array([2, 2, 0]), rng.standard_normal((3, 5)), Raw(True))),
    ], torch_call=(lambda x, i, v, acc=False: torch.index_put(x, (i,), v, acc)) if torch is not None else None),
    SurfaceOp("Tensor.put", lambda x, i, s, acc=False: x.put(i, s, acc),
              lambda x, i, s, acc=False: _index_along(x.reshape(-1), 0, i, s, "add" if acc else "copy").reshape(x.shape),
              lambda rng: [Sample("3x5", (rng.standard_normal((3, 5)), np.array([14, 0, 7]), rng.standard_normal((3,))))],
              torch_call=(lambda x, i, s, acc=False: x.put(i, s, acc)) if torch is not None else None),
    SurfaceOp("masked_fill", _fn("masked_fill"), lambda x, m, v: np.where(m, v, x), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), np.array([True]), Raw(0.5))),
        Sample("7", (rng.standard_normal((7,)), rng.random(7) < 0.5, Raw(-2.0))),
        Sample("3x5-bcast", (rng.standard_normal((3, 5)), rng.random(5) < 0.5, Raw(3.0))),
        Sample("3x5-tensor-value", (rng.standard_normal((3, 5)), rng.random((3, 5)) < 0.5, np.array(1.25))),
    ], torch_call=_torch_masked_fill, errors=lambda: [
        _err("masked_fill", lambda: nnfast.masked_fill(_t(3), _i(1, 0, 1), 1.0)),
        _err("masked_fill", lambda: nnfast.masked_fill(_t(3), nnfast.tensor([True, False]), 1.0))]),
    SurfaceOp("masked_select", _fn("masked_select"), lambda x, m: np.broadcast_to(x, np.broadcast_shapes(
        x.shape, m.shape))[np.broadcast_to(m, np.broadcast_shapes(x.shape, m.shape))], lambda rng: [
        Sample("7", (rng.standard_normal((7,)), rng.random(7) < 0.5)),
        Sample("3x5-bcast", (rng.standard_normal((1, 5)), rng.random((3, 5)) < 0.5)),
    ], torch_call=_tfn("masked_select")),
    SurfaceOp("masked_scatter", _fn("masked_scatter"), None, lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)), rng.random((3, 5)) < 0.5, rng.standard_normal((4, 5)))),
    ], torch_call=_tfn("masked_scatter"), errors=lambda: [
        _err("masked_scatter", lambda: nnfast.masked_scatter(_t(3), nnfast.tensor([True] * 3), _t(2)))]),
    SurfaceOp("nonzero", _fn("nonzero"), lambda x: np.argwhere(x), lambda rng: [
        Sample("7", (np.array([0, 1, 0, 2, 0, 0, 3]),)),
        Sample("3x5", ((rng.random((3, 5)) < 0.5).astype(np.int64),)),
    ], differentiable=False, torch_call=_tfn("nonzero")),
    SurfaceOp("nonzero[as_tuple]", lambda x: nnfast.nonzero(x, as_tuple=True), lambda x: np.nonzero(x), lambda rng: [
        Sample("3x5", ((rng.random((3, 5)) < 0.5).astype(np.int64),))], differentiable=False,
        torch_call=(lambda x: torch.nonzero(x, as_tuple=True)) if torch is not None else None),
    SurfaceOp("argwhere", _fn("argwhere"), np.argwhere, lambda rng: [
        Sample("3x5", (rng.random((3, 5)) < 0.5,))], differentiable=False, torch_call=_tfn("argwhere")),
    SurfaceOp("where[cond]", lambda c: nnfast.where(c), np.nonzero, lambda rng: [
        Sample("7", (rng.random(7) < 0.5,))], differentiable=False,
        torch_call=(lambda c: torch.where(c)) if torch is not None else None),
    SurfaceOp("Tensor.__getitem__[mask]", lambda x, m: x[m], lambda x, m: x[m], lambda rng: [
        Sample("7", (rng.standard_normal((7,)), rng.random(7) < 0.5)),
        Sample("3x5-rows", (rng.standard_normal((3, 5)), np.array([True, False, True]))),
    ], torch_call=lambda x, m: x[m]),
    SurfaceOp("Tensor.__getitem__[advanced]", lambda x: x[[0, 2, 2], 1:], lambda x: x[[0, 2, 2], 1:], lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)),))], torch_call=lambda x: x[[0, 2, 2], 1:]),
    SurfaceOp("Tensor.__getitem__[range-pair]", lambda x, y: x[range(3), y], lambda x, y: x[np.arange(3), y],
              lambda rng: [Sample("3x5", (rng.standard_normal((3, 5)), np.array([4, 0, 4])))],
              torch_call=lambda x, y: x[range(3), y]),
    SurfaceOp("Tensor.__getitem__[basic]", lambda x: x[None, ..., 1, ::2], lambda x: x[None, ..., 1, ::2],
              lambda rng: [Sample("2x3x5", (rng.standard_normal((2, 3, 5)),)),
                           Sample("1x2x7", (rng.standard_normal((1, 2, 7)),))],
              torch_call=lambda x: x[None, ..., 1, ::2], errors=lambda: [
                  ErrorCase("getitem", lambda: _t(3)[_i(3)], IndexError, r"\[getitem\] expected")]),
]
