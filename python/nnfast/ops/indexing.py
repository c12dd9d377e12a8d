"""Tensor surface: indexing ops (see nnfast/ops/__init__.py).

Every op here is one of two tape nodes over an advanced-index tuple of raw arrays:
``Take`` (``a[index]`` as a copy; backward a deterministic scatter-add) and ``Put``
(``a`` with ``a[index]`` replaced or accumulated by ``v``; backward the reverse). gather,
index_select, take, masked_select ... only build the index tuple. ``x[i] = v`` runs ``Put``
under the in-place rules of ``ops/inplace.py``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import is_cupy, xp_of
from ..autograd import grad_mode
from ..autograd.basic_ops import GetItem, Where, unbroadcast
from ..autograd.function import Function
from ..tensor import Tensor
from .inplace import apply_inplace, bump_version


# ---------------------------------------------------------------- helpers
def dim_of(d: int, n: int, op: str) -> int:
    """``d`` normalised for a tensor of ``n`` dims (a 0-d tensor takes dims -1 and 0, as in PyTorch)."""
    m = max(n, 1)
    if not -m <= d < m:
        raise IndexError(f"[{op}] expected dim in [{-m}, {m - 1}], got {d}")
    return d % m


def scatter_add_raw(out: Any, index: Any, vals: Any) -> None:
    """``out[index] += vals`` with repeated indices summed, deterministically (in index order)."""
    if not is_cupy(out):
        np.add.at(out, index, vals)
        return
    # CuPy's scatter_add uses atomics (order-dependent sums): add the k-th repeat of every
    # position in pass k instead, so each pass writes distinct positions.
    xp = xp_of(out)
    lin = xp.arange(out.size).reshape(out.shape)[index]
    v = xp.broadcast_to(vals, lin.shape).reshape(-1)
    lin = lin.reshape(-1)
    order = xp.argsort(lin, kind="stable")
    lin, v = lin[order], v[order]
    first = xp.searchsorted(lin, lin, side="left")
    rank = xp.arange(lin.size) - first
    flat = out.reshape(-1)
    for k in range(int(rank.max()) + 1 if lin.size else 0):
        m = rank == k
        flat[lin[m]] += v[m]


def raw_index(index: Any, like: Any) -> Any:
    """A Python index with Tensors / ranges / lists of ints as arrays on ``like``'s device."""
    if isinstance(index, tuple):
        return tuple(raw_index(i, like) for i in index)
    if isinstance(index, Tensor):
        return xp_of(like).asarray(index._data) if index.ndim else index.item()
    if isinstance(index, range):
        return xp_of(like).arange(index.start, index.stop, index.step)
    if isinstance(index, list) and any(isinstance(i, Tensor) for i in index):
        return xp_of(like).asarray([i.item() if isinstance(i, Tensor) else i for i in index])
    if isinstance(index, (list, np.ndarray)):
        return xp_of(like).asarray(index)
    return index


def _basic(index: Any) -> bool:
    """Whether ``index`` is basic indexing (ints, slices, None, Ellipsis): a view."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) and not isinstance(i, bool) for i in items)


class Take(Function):
    """``a[index]`` as a new array; the gradient is scattered back (repeats summed)."""

    @staticmethod
    def forward(ctx: Any, a: Any, index: Any) -> Any:
        ctx.shape, ctx.index = a.shape, index
        r = a[index]
        return r.copy() if _basic(index) else xp_of(a).asarray(r)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        out = xp_of(g).zeros(ctx.shape, dtype=g.dtype)
        if _basic(ctx.index):
            out[ctx.index] = g
        else:
            scatter_add_raw(out, ctx.index, g)
        return out, None


class Put(Function):
    """``a`` with ``a[index]`` set to ``v`` (or, with ``accumulate``, ``v`` added; repeats summed)."""

    @staticmethod
    def forward(ctx: Any, a: Any, v: Any, index: Any, accumulate: bool = False) -> Any:
        ctx.index, ctx.accumulate, ctx.vshape = index, accumulate, tuple(getattr(v, "shape", ()))
        out = a.copy()
        vals = xp_of(a).asarray(v).astype(a.dtype, copy=False)
        if accumulate:
            scatter_add_raw(out, index, vals)
        else:
            out[index] = vals
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        ga = gv = None
        if ctx.needs_input_grad[0]:
            ga = g.copy()
            if not ctx.accumulate:
                ga[ctx.index] = 0
        if ctx.needs_input_grad[1]:
            gv = unbroadcast(xp_of(g).asarray(g[ctx.index]), ctx.vshape)
        return ga, gv, None, None


def _as_operand(v: Any, like: Tensor) -> Any:
    """A value to write into ``like``: Tensors as they are (moved to its device), the rest as arrays."""
    if isinstance(v, Tensor):
        return v if v.device == like.device else v.to(like.device)
    return xp_of(like._data).asarray(v, dtype=like.dtype)


def _int_index(index: Any, op: str) -> Tensor:
    t: Tensor = index if isinstance(index, Tensor) else Tensor._wrap(np.asarray(index))
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"[{op}] expected an integer (int64) index tensor, got {t.dtype}")
    return t


def _check_range(idx: Any, size: int, op: str) -> None:
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= size):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexError(f"[{op}] expected indices in [0, {size}), got {bad}")


def _along(ndim: int, dim: int, idx: Any) -> tuple[Any, ...]:
    return (slice(None),) * dim + (idx,)


def _gather_index(shape: tuple[int, ...], dim: int, idx: Any) -> tuple[Any, ...]:
    """The advanced index selecting ``x[..., idx[i, j, ...], ...]`` at every position of ``idx``."""
    xp = xp_of(idx)
    out = []
    for d in range(idx.ndim):
        if d == dim:
            out.append(idx)
        else:
            shp = [1] * idx.ndim
            shp[d] = idx.shape[d]
            out.append(xp.arange(idx.shape[d]).reshape(shp))
    return tuple(out)


def _dim_index(input: Tensor, dim: int, index: Any, op: str) -> tuple[int, Any]:
    """(dim, 1-d index array) for the ``index_*`` ops, checked."""
    d = dim_of(dim, input.ndim, op)
    idx = _int_index(index, op)
    if idx.ndim > 1:
        raise IndexError(f"[{op}] expected a 0-d or 1-d index tensor, got {idx.ndim} dims")
    raw = xp_of(input._data).asarray(idx._data).reshape(-1)
    _check_range(raw, input.shape[d] if input.ndim else 1, op)
    return d, raw


def _checked_gather(input: Tensor, dim: int, index: Any, op: str, src: Optional[Tensor] = None) -> tuple[int, Any]:
    d = dim_of(dim, input.ndim, op)
    idx = _int_index(index, op)
    if idx.ndim != max(input.ndim, 1) and not (idx.ndim == 0 and input.ndim == 0):
        raise RuntimeError(f"[{op}] expected index with the same number of dims as input ({input.ndim}), "
                           f"got {idx.ndim}")
    for k in range(idx.ndim):
        if k != d and input.ndim and idx.shape[k] > input.shape[k]:
            raise RuntimeError(f"[{op}] expected index size {idx.shape[k]} <= input size {input.shape[k]} "
                               f"at dim {k}")
        if src is not None and src.ndim and idx.shape[k] > src.shape[k]:
            raise RuntimeError(f"[{op}] expected index size {idx.shape[k]} <= src size {src.shape[k]} at dim {k}")
    raw = xp_of(input._data).asarray(idx._data)
    _check_range(raw, input.shape[d] if input.ndim else 1, op)
    return d, raw


# ---------------------------------------------------------------- get / set item
def getitem(self: Tensor, index: Any) -> Tensor:
    idx = raw_index(index, self._data)
    if _basic(idx):
        return GetItem.apply(self, idx)
    try:
        return Take.apply(self, idx)
    except IndexError as e:
        raise IndexError(f"[getitem] expected indices within the tensor's shape {self.shape}: {e}") from None


def setitem(self: Tensor, index: Any, value: Any) -> None:
    idx = raw_index(index, self._data)
    v = _as_operand(value, self)
    record = grad_mode.is_grad_enabled() and (self.requires_grad or (isinstance(v, Tensor) and v.requires_grad))
    if not record:
        raw = v._data if isinstance(v, Tensor) else v
        self._data[idx] = raw
        bump_version(self)
        return
    apply_inplace(self, "setitem", lambda s: Put.apply(s, v, idx, False))


# ---------------------------------------------------------------- gather / scatter family
def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    d, raw = _checked_gather(input, dim, index, "gather")
    if input.ndim == 0:
        return Take.apply(input, ())
    return Take.apply(input, _gather_index(input.shape, d, raw))


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    d, raw = _dim_index(input, dim, index, "index_select")
    if input.ndim == 0:
        return Take.apply(input, ()) if raw.size else input.reshape(0)
    return Take.apply(input, _along(input.ndim, d, raw))


def take(input: Tensor, index: Tensor) -> Tensor:
    idx = _int_index(index, "take")
    raw = xp_of(input._data).asarray(idx._data)
    n = input.numel()
    if raw.size and (int(raw.min()) < -n or int(raw.max()) >= n):
        bad = int(raw.max()) if int(raw.max()) >= n else int(raw.min())
        raise IndexError(f"[take] expected indices in [{-n}, {n}), got {bad}")
    return Take.apply(input.reshape(-1), raw % max(n, 1))


def take_along_dim(input: Tensor, indices: Tensor, dim: Optional[int] = None) -> Tensor:
    if dim is None:
        return take(input, indices.reshape(-1))
    d = dim_of(dim, input.ndim, "take_along_dim")
    if indices.ndim != input.ndim:
        raise RuntimeError(f"[take_along_dim] expected indices with {input.ndim} dims, got {indices.ndim}")
    shp = list(np.broadcast_shapes(input.shape[:d] + (1,) + input.shape[d + 1:],
                                   indices.shape[:d] + (1,) + indices.shape[d + 1:]))
    xs, is_ = list(shp), list(shp)
    xs[d], is_[d] = input.shape[d], indices.shape[d]
    return gather(input.expand(*xs), d, indices.expand(*is_))


def _src_block(src: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The leading ``shape`` block of ``src`` (scatter reads only where the index has entries)."""
    if tuple(src.shape) == tuple(shape):
        return src
    return src[tuple(slice(0, s) for s in shape)]


def _same_dtype(input: Tensor, source: Tensor, op: str, name: str) -> None:
    """PyTorch's rule for the scatter / index families: a tensor source of another dtype is an error,
    never a silent cast. ``op`` is the name PyTorch's message uses (index_add_ for index_add too)."""
    if source.dtype != input.dtype:
        raise RuntimeError(f"[{op}] expected self and {name} to have the same dtype, got {input.dtype} and "
                           f"{source.dtype}")


def _scatter_args(input: Tensor, dim: int, index: Tensor, src: Any, op: str) -> tuple[Any, Any]:
    s = src if isinstance(src, Tensor) else None
    if s is not None:
        _same_dtype(input, s, "scatter", "src")
    d, raw = _checked_gather(input, dim, index, op, s)
    idx = _gather_index(input.shape, d, raw) if input.ndim else ()
    v = _src_block(src, raw.shape) if s is not None else _as_operand(src, input)
    return idx, v


def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, *, value: Any = None,
            reduce: Optional[str] = None) -> Tensor:
    src = value if src is None else src
    if src is None:
        raise TypeError("[scatter] expected src or value")
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError(f"[scatter] expected reduce 'add' or 'multiply', got {reduce!r}")
        if not isinstance(src, Tensor):
            src = Tensor._wrap(xp_of(input._data).full(index.shape, src, dtype=input.dtype))
        return scatter_reduce(input, dim, index, src, "sum" if reduce == "add" else "prod")
    idx, v = _scatter_args(input, dim, index, src, "scatter")
    return Put.apply(input, v, idx, False)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    idx, v = _scatter_args(input, dim, index, src, "scatter_add")
    return Put.apply(input, v, idx, True)


_REDUCE_INIT = {"sum": 0.0, "prod": 1.0, "mean": 0.0, "amax": -np.inf, "amin": np.inf}
_REDUCE_UFUNC = {"sum": np.add, "prod": np.multiply, "mean": np.add, "amax": np.maximum, "amin": np.minimum}


class ScatterReduce(Function):
    """``a`` with ``src`` reduced into the positions ``index`` names (sum, prod, mean, amax, amin)."""

    @staticmethod
    def forward(ctx: Any, a: Any, src: Any, index: Any, reduce: str, include_self: bool) -> Any:
        xp = xp_of(a)
        out = a.copy()
        hit = xp.zeros(a.shape, dtype=np.int64)
        scatter_add_raw(hit, index, xp.ones(src.shape, dtype=np.int64))
        touched = hit > 0
        if not include_self:
            init = _REDUCE_INIT[reduce]
            out[touched] = init if a.dtype.kind == "f" or np.isfinite(init) else \
                (np.iinfo(a.dtype).min if init < 0 else np.iinfo(a.dtype).max)
        _REDUCE_UFUNC[reduce].at(out, index, src)
        count = hit + (1 if include_self else 0)
        if reduce == "mean":
            c = xp.maximum(count, 1)
            out = out / c if a.dtype.kind == "f" else out // c
            out = out.astype(a.dtype, copy=False)
        ctx.save_for_backward(a, src, out)
        ctx.index, ctx.reduce, ctx.include_self, ctx.count, ctx.touched = index, reduce, include_self, count, touched
        return out

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, src, out = ctx.saved_tensors
        xp, idx, red = xp_of(g), ctx.index, ctx.reduce
        self_in = ~ctx.touched if not ctx.include_self else xp.ones(g.shape, dtype=bool)
        if red == "sum":
            ga, gs = g, g[idx]
        elif red == "mean":
            gm = g / xp.maximum(ctx.count, 1)
            ga, gs = gm, gm[idx]
        elif red == "prod":  # d out / d x = out / x (inputs assumed nonzero)
            go = g * out
            ga, gs = go / a, go[idx] / src
        else:  # amax / amin: the gradient is shared evenly by every element equal to the result
            hits = xp.zeros(g.shape, dtype=g.dtype)
            eq_src = (src == out[idx]).astype(g.dtype)
            scatter_add_raw(hits, idx, eq_src)
            eq_self = (a == out).astype(g.dtype) * self_in
            n = hits + eq_self
            gn = g / xp.where(n > 0, n, 1)
            ga, gs = gn * eq_self, gn[idx] * eq_src
        ga = xp.where(self_in, ga, 0).astype(g.dtype) if red != "sum" or not ctx.include_self else ga.copy()
        return ga, xp.asarray(gs), None, None, None


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    if reduce not in _REDUCE_INIT:
        raise RuntimeError(f"[scatter_reduce] expected reduce in {sorted(_REDUCE_INIT)}, got {reduce!r}")
    idx, v = _scatter_args(input, dim, index, src, "scatter_reduce")
    return ScatterReduce.apply(input, v, idx, reduce, include_self)


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: Any = 1) -> Tensor:
    d, raw = _dim_index(input, dim, index, "index_add")
    _check_source(input, d, raw, source, "index_add")
    _same_dtype(input, source, "index_add_", "source")
    v = source if alpha == 1 else source * alpha
    return Put.apply(input, v, _along(input.ndim, d, raw) if input.ndim else (), True)


def _check_source(input: Tensor, d: int, raw: Any, source: Tensor, op: str) -> None:
    want = input.shape[:d] + (raw.size,) + input.shape[d + 1:] if input.ndim else ()
    if tuple(source.shape) != want and not (input.ndim == 0 and source.numel() == 1):
        raise RuntimeError(f"[{op}] expected source of shape {want}, got {tuple(source.shape)}")


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    d, raw = _dim_index(input, dim, index, "index_copy")
    _check_source(input, d, raw, source, "index_copy")
    _same_dtype(input, source, "index_copy_", "source")
    return Put.apply(input, source, _along(input.ndim, d, raw) if input.ndim else (), False)


def index_fill(input: Tensor, dim: int, index: Tensor, value: Any) -> Tensor:
    d, raw = _dim_index(input, dim, index, "index_fill")
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"[index_fill] expected a 0-d value tensor, got {value.ndim} dims")
    return Put.apply(input, _as_operand(value, input), _along(input.ndim, d, raw) if input.ndim else (), False)


def index_put(input: Tensor, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
    idx = raw_index(tuple(indices), input._data)
    return Put.apply(input, _as_operand(values, input), idx, accumulate)


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    idx = _int_index(index, "put")
    raw = xp_of(input._data).asarray(idx._data).reshape(-1)
    n = input.numel()
    if raw.size and (int(raw.min()) < -n or int(raw.max()) >= n):
        raise IndexError(f"[put] expected indices in [{-n}, {n})")
    flat = Put.apply(input.reshape(-1), source.reshape(-1), raw % max(n, 1), accumulate)
    return flat.reshape(input.shape)


# ---------------------------------------------------------------- masks
def _mask(mask: Any, input: Tensor, op: str) -> Any:
    m = mask._data if isinstance(mask, Tensor) else xp_of(input._data).asarray(mask)
    if m.dtype != np.bool_:
        raise RuntimeError(f"[{op}] expected a bool mask, got {m.dtype}")
    return m


def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor:
    m = _mask(mask, input, "masked_fill")
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"[masked_fill] expected a 0-d value tensor, got {value.ndim} dims")
    v = _as_operand(value, input)
    if isinstance(v, Tensor) and v.dtype != input.dtype:
        v = v.to(input.dtype)
    try:
        shape = np.broadcast_shapes(m.shape, input.shape)
    except ValueError:
        raise RuntimeError(f"[masked_fill] expected a mask broadcastable to {tuple(input.shape)}, "
                           f"got {tuple(m.shape)}") from None
    return Where.apply(xp_of(input._data).broadcast_to(m, shape), v, input)


def masked_select(input: Tensor, mask: Any) -> Tensor:
    m = _mask(mask, input, "masked_select")
    try:
        shape = np.broadcast_shapes(m.shape, input.shape)
    except ValueError:
        raise RuntimeError(f"[masked_select] expected a mask broadcastable to {tuple(input.shape)}, "
                           f"got {tuple(m.shape)}") from None
    x = input if tuple(input.shape) == shape else input.expand(*shape)
    return Take.apply(x, xp_of(m).broadcast_to(m, shape))


def masked_scatter(input: Tensor, mask: Any, source: Tensor) -> Tensor:
    m = xp_of(input._data).broadcast_to(_mask(mask, input, "masked_scatter"), input.shape)
    n = int(m.sum())
    if source.numel() < n:
        raise RuntimeError(f"[masked_scatter] expected source with at least {n} elements, got {source.numel()}")
    return Put.apply(input, source.reshape(-1)[:n], m, False)


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    xp = xp_of(input._data)
    nz = xp.nonzero(input._data) if input.ndim else xp.nonzero(input._data.reshape(1))
    if as_tuple:
        return tuple(Tensor._wrap(xp.asarray(i, dtype=np.int64)) for i in nz)
    if not input.ndim:
        return Tensor._wrap(xp.zeros((len(nz[0]), 0), dtype=np.int64))
    return Tensor._wrap(xp.stack([xp.asarray(i, dtype=np.int64) for i in nz], axis=1))


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)  # type: ignore[no-any-return]


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``where(cond)`` is ``nonzero(cond, as_tuple=True)``; the three-argument form is the pointwise one."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    from . import pointwise
    from .._tensor_ops import where as core_where

    return pointwise.FUNCTIONS.get("where", core_where)(condition, input, other)


FUNCTIONS: dict[str, Any] = {
    "gather": gather, "index_select": index_select, "take": take, "take_along_dim": take_along_dim,
    "scatter": scatter, "scatter_add": scatter_add, "scatter_reduce": scatter_reduce, "index_add": index_add,
    "index_copy": index_copy, "index_fill": index_fill, "index_put": index_put, "put": put,
    "masked_fill": masked_fill, "masked_select": masked_select, "masked_scatter": masked_scatter,
    "nonzero": nonzero, "argwhere": argwhere, "where": where,
}
METHODS: dict[str, Any] = {name: fn for name, fn in FUNCTIONS.items() if name != "where"}
METHODS.update({"__getitem__": getitem, "__setitem__": setitem})
