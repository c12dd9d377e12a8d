"""Tensor surface: shape ops (see nnfast/ops/__init__.py).

Everything here is composed from a few tape nodes: ``Reshape`` / ``Permute`` / ``Expand`` /
``GetItem`` (views: they share the input's version counter when they share its memory),
``Cat`` / ``Stack``, the indexing area's ``Take`` (copies with a scatter-add backward), and
the diagonal / triangle nodes defined below.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from .._dispatch import xp_of
from .._tensor_ops import _dims
from ..autograd import basic_ops as ops
from ..autograd.function import Function
from ..tensor import Tensor
from .indexing import Take, dim_of


# ---------------------------------------------------------------- reshape family
def _resolve(shape: Sequence[Any], numel: int, op: str) -> tuple[int, ...]:
    """``shape`` with its one ``-1`` filled in, checked against ``numel`` elements."""
    shape = tuple(int(s) for s in shape)
    free = [i for i, s in enumerate(shape) if s == -1]
    known = math.prod(s for s in shape if s != -1)
    bad = len(free) > 1 or any(s < -1 for s in shape)
    if not bad and free:
        bad = known == 0 or numel % known != 0
        if not bad:
            shape = shape[:free[0]] + (numel // known,) + shape[free[0] + 1:]
    if bad or math.prod(shape) != numel:
        raise RuntimeError(f"[{op}] expected a shape matching the input's {numel} elements, got {list(shape)}")
    return shape


def reshape(self: Tensor, *shape: Any) -> Tensor:
    return ops.Reshape.apply(self, _resolve(_dims(shape), self.numel(), "reshape"))


def view(self: Tensor, *shape: Any) -> Tensor:
    r = ops.Reshape.apply(self, _resolve(_dims(shape), self.numel(), "view"))
    if r._vc is not self._vc and self.numel() > 0:  # the reshape had to copy
        raise RuntimeError("[view] expected a view-compatible size and stride: the input's layout can't be "
                           f"viewed as {list(r.shape)} without a copy; use .reshape() instead")
    return r


def view_as(self: Tensor, other: Tensor) -> Tensor:
    return view(self, other.shape)


def reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return reshape(self, other.shape)


def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    n = self.ndim
    s, e = dim_of(start_dim, n, "flatten"), dim_of(end_dim, n, "flatten")
    if s > e:
        raise RuntimeError(f"[flatten] expected start_dim <= end_dim, got {start_dim} and {end_dim}")
    if n == 0:
        return reshape(self, 1)
    shape = self.shape[:s] + (math.prod(self.shape[s:e + 1]),) + self.shape[e + 1:]
    return reshape(self, shape)


def unflatten(self: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    d = dim_of(dim, self.ndim, "unflatten")
    part = _resolve(sizes, self.shape[d], "unflatten")
    return view(self, self.shape[:d] + part + self.shape[d + 1:])


def unsqueeze(self: Tensor, dim: int) -> Tensor:
    d = dim_of(dim, self.ndim + 1, "unsqueeze")
    return reshape(self, self.shape[:d] + (1,) + self.shape[d:])


def squeeze(self: Tensor, dim: Any = None) -> Tensor:
    if dim is None:
        dims = set(range(self.ndim))
    else:
        dims = {dim_of(d, self.ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
    return reshape(self, tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1)))


# ---------------------------------------------------------------- permutations
def permute(self: Tensor, *dims: Any) -> Tensor:
    axes = tuple(dim_of(d, self.ndim, "permute") for d in _dims(dims))
    if len(axes) != self.ndim or len(set(axes)) != len(axes):
        raise RuntimeError(f"[permute] expected a permutation of {self.ndim} dims, got {list(_dims(dims))}")
    return ops.Permute.apply(self, axes) if self.ndim else self.view(())


def transpose(self: Tensor, dim0: int, dim1: int) -> Tensor:
    axes = list(range(self.ndim))
    a, b = dim_of(dim0, self.ndim, "transpose"), dim_of(dim1, self.ndim, "transpose")
    if not self.ndim:
        return self.view(())
    axes[a], axes[b] = axes[b], axes[a]
    return ops.Permute.apply(self, tuple(axes))  # a valid permutation by construction


def t(self: Tensor) -> Tensor:
    if self.ndim > 2:
        raise RuntimeError(f"[t] expected a tensor with at most 2 dims, got {self.ndim}")
    return transpose(self, 0, -1) if self.ndim == 2 else self.view(self.shape)


def _T(self: Tensor) -> Tensor:
    return permute(self, tuple(reversed(range(self.ndim))))


def _mT(self: Tensor) -> Tensor:
    if self.ndim < 2:
        raise RuntimeError(f"[mT] expected a tensor with at least 2 dims, got {self.ndim}")
    return transpose(self, -2, -1)


def _H(self: Tensor) -> Tensor:
    if self.ndim != 2:
        raise RuntimeError(f"[H] expected a matrix (2 dims), got {self.ndim}")
    return transpose(self, 0, 1)  # real tensors: the conjugate is the tensor itself


def movedim(self: Tensor, source: Any, destination: Any) -> Tensor:
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"[movedim] expected source and destination of the same length, got {len(src)} "
                           f"and {len(dst)}")
    n = self.ndim
    src = [dim_of(d, n, "movedim") for d in src]
    dst = [dim_of(d, n, "movedim") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError("[movedim] expected distinct dims in source and in destination")
    order = [d for d in range(n) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(self, order)


# ---------------------------------------------------------------- broadcasting
def expand(self: Tensor, *sizes: Any) -> Tensor:
    shape = tuple(int(s) for s in _dims(sizes))
    lead = len(shape) - self.ndim
    if lead < 0:
        raise RuntimeError(f"[expand] expected at least {self.ndim} sizes, got {len(shape)}")
    out = []
    for i, s in enumerate(shape):
        old = self.shape[i - lead] if i >= lead else None
        if s == -1 and old is not None:
            s = old
        if s < 0 or (old is not None and old != 1 and old != s):
            raise RuntimeError(f"[expand] expected size {old} or -1 at dim {i} (only size-1 dims expand), "
                               f"got {s}: can't expand {tuple(self.shape)} to {shape}")
        out.append(s)
    return ops.Expand.apply(self, tuple(out))


def expand_as(self: Tensor, other: Tensor) -> Tensor:
    return expand(self, other.shape)


def broadcast_to(self: Tensor, size: Sequence[int]) -> Tensor:
    return expand(self, tuple(size))


def broadcast_shapes(*shapes: Any) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*[(s,) if isinstance(s, int) else tuple(s) for s in shapes]))
    except ValueError:
        raise RuntimeError(f"[broadcast_shapes] expected broadcastable shapes, got {list(shapes)}") from None


def broadcast_tensors(*tensors: Any) -> tuple[Tensor, ...]:
    ts = _tensors(tensors)
    shape = broadcast_shapes(*[x.shape for x in ts])
    return tuple(expand(x, shape) for x in ts)


def repeat(self: Tensor, *sizes: Any) -> Tensor:
    reps = tuple(int(r) for r in _dims(sizes))
    if len(reps) < self.ndim:
        raise RuntimeError(f"[repeat] expected at least {self.ndim} repeat counts (one per dim), got {len(reps)}")
    if any(r < 0 for r in reps):
        raise RuntimeError(f"[repeat] expected non-negative repeat counts, got {list(reps)}")
    shape = (1,) * (len(reps) - self.ndim) + tuple(self.shape)
    # (s0, s1 ...) -> (1, s0, 1, s1 ...) -> expand to (r0, s0, r1, s1 ...) -> (r0*s0, r1*s1 ...)
    inter = reshape(self, tuple(x for s in shape for x in (1, s)))
    big = expand(inter, tuple(x for r, s in zip(reps, shape) for x in (r, s)))
    return reshape(big, tuple(r * s for r, s in zip(reps, shape)))


def tile(self: Tensor, *dims: Any) -> Tensor:
    reps = tuple(_dims(dims))
    return repeat(self, (1,) * (self.ndim - len(reps)) + reps)


# ---------------------------------------------------------------- reorderings (copies)
def flip(self: Tensor, *dims: Any) -> Tensor:
    ds = {dim_of(d, self.ndim, "flip") for d in _dims(dims)}
    if not self.ndim:
        return self.clone()
    return Take.apply(self, tuple(slice(None, None, -1) if i in ds else slice(None) for i in range(self.ndim)))


def fliplr(self: Tensor) -> Tensor:
    if self.ndim < 2:
        raise RuntimeError(f"[fliplr] expected a tensor with at least 2 dims, got {self.ndim}")
    return flip(self, 1)


def flipud(self: Tensor) -> Tensor:
    if self.ndim < 1:
        raise RuntimeError("[flipud] expected a tensor with at least 1 dim, got 0")
    return flip(self, 0)


def roll(self: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    if dims is None:
        if not isinstance(shifts, int) and len(shifts) != 1:
            raise RuntimeError("[roll] expected one shift when dims is None")
        s = shifts if isinstance(shifts, int) else shifts[0]
        return reshape(roll(reshape(self, -1), s, 0), self.shape)
    sh = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    ds = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(sh) != len(ds):
        raise RuntimeError(f"[roll] expected as many shifts as dims, got {len(sh)} and {len(ds)}")
    out = self
    xp = xp_of(self._data)
    for s, d in zip(sh, ds):
        d = dim_of(d, self.ndim, "roll")
        n = self.shape[d]
        if n:
            out = Take.apply(out, (slice(None),) * d + ((xp.arange(n) - s) % n,))
    return out


def rot90(self: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    if len(dims) != 2 or self.ndim < 2:
        raise RuntimeError(f"[rot90] expected 2 dims on a tensor with at least 2 dims, got {list(dims)} on "
                           f"{self.ndim} dims")
    a, b = dim_of(dims[0], self.ndim, "rot90"), dim_of(dims[1], self.ndim, "rot90")
    if a == b:
        raise RuntimeError(f"[rot90] expected two different dims, got {list(dims)}")
    k %= 4
    if k == 1:
        return transpose(flip(self, b), a, b)
    if k == 2:
        return flip(self, a, b)
    if k == 3:
        return transpose(flip(self, a), a, b)
    return self.clone()


# ---------------------------------------------------------------- slicing into pieces (views)
def _slice(self: Tensor, d: int, start: int, stop: int) -> Tensor:
    return ops.GetItem.apply(self, (slice(None),) * d + (slice(start, stop),))


def narrow(self: Tensor, dim: int, start: Any, length: int) -> Tensor:
    d = dim_of(dim, self.ndim, "narrow")
    n = self.shape[d]
    s = int(start)
    if not -n <= s <= n:
        raise IndexError(f"[narrow] expected start in [{-n}, {n}], got {s}")
    s = s + n if s < 0 else s
    if length < 0 or s + length > n:
        raise RuntimeError(f"[narrow] expected start + length <= {n} (the dim's size), got {s} + {length}")
    return _slice(self, d, s, s + length)


def select(self: Tensor, dim: int, index: int) -> Tensor:
    d = dim_of(dim, self.ndim, "select")
    n = self.shape[d]
    if not -n <= index < n:
        raise IndexError(f"[select] expected index in [{-n}, {n}), got {index}")
    return ops.GetItem.apply(self, (slice(None),) * d + (index % n,))


def _pieces(self: Tensor, d: int, bounds: Sequence[int]) -> tuple[Tensor, ...]:
    return tuple(_slice(self, d, a, b) for a, b in zip(bounds[:-1], bounds[1:]))


def split(self: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    d = dim_of(dim, self.ndim, "split")
    n = self.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size < 0 or (size == 0 and n):
            raise RuntimeError(f"[split] expected a positive split size, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if size else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(f"[split] expected sections summing to {n} along dim {d}, got {sizes}")
    return _pieces(self, d, np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist())


def chunk(self: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    if chunks <= 0:
        raise RuntimeError(f"[chunk] expected a positive number of chunks, got {chunks}")
    n = self.shape[dim_of(dim, self.ndim, "chunk")]
    if not n:
        return (self,)
    return split(self, -(-n // chunks), dim)


def tensor_split(self: Tensor, indices_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    d = dim_of(dim, self.ndim, "tensor_split")
    n = self.shape[d]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k <= 0:
            raise RuntimeError(f"[tensor_split] expected a positive number of sections, got {k}")
        q, r = divmod(n, k)
        bounds = [i * q + min(i, r) for i in range(k + 1)]
    else:
        bounds = [0] + [min(max(int(i) % n if int(i) < 0 else int(i), 0), n) for i in indices_or_sections] + [n]
        bounds = [bounds[0]] + [max(b, 0) for b in bounds[1:]]
    return tuple(_slice(self, d, a, max(a, b)) for a, b in zip(bounds[:-1], bounds[1:]))


def unbind(self: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    d = dim_of(dim, self.ndim, "unbind")
    return tuple(select(self, d, i) for i in range(self.shape[d]))


# ---------------------------------------------------------------- joining
def _tensors(args: Sequence[Any]) -> list[Tensor]:
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        return list(args[0])
    return list(args)


def _common(tensors: Sequence[Tensor], op: str) -> list[Tensor]:
    """The tensors cast to their promoted dtype; all on one device."""
    if not tensors:
        raise RuntimeError(f"[{op}] expected a non-empty list of tensors")
    if any(not isinstance(x, Tensor) for x in tensors):
        raise TypeError(f"[{op}] expected a sequence of Tensors")
    dev = tensors[0].device
    if any(x.device != dev for x in tensors):
        raise RuntimeError(f"[{op}] expected all tensors on one device, got {sorted({str(x.device) for x in tensors})}")
    dts = [x.dtype for x in tensors]
    floats = [d for d in dts if d.kind == "f"]
    dt = np.result_type(*(floats or dts))  # PyTorch's rule: a float tensor's dtype wins over integer ones
    return [x if x.dtype == dt else x.to(dt) for x in tensors]


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    ts = _common(list(tensors), "cat")
    kept = [x for x in ts if not (x.ndim == 1 and x.shape[0] == 0)]  # legacy rule: 1-d empties are skipped
    if not kept:
        return ts[0].clone()
    ref = kept[0]
    if ref.ndim == 0:
        raise RuntimeError("[cat] expected tensors with at least 1 dim; a zero-dim tensor can't be concatenated")
    d = dim_of(dim, ref.ndim, "cat")
    for x in kept:
        if x.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, ref.shape)) if i != d):
            raise RuntimeError(f"[cat] expected tensors with matching sizes except in dim {d}, got "
                               f"{tuple(ref.shape)} and {tuple(x.shape)}")
    return kept[0].clone() if len(kept) == 1 else ops.Cat.apply(d, *kept)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    ts = _common(list(tensors), "stack")
    for x in ts:
        if x.shape != ts[0].shape:
            raise RuntimeError(f"[stack] expected each tensor to be equal size, got {tuple(ts[0].shape)} and "
                               f"{tuple(x.shape)}")
    d = dim_of(dim, ts[0].ndim + 1, "stack")
    return ops.Stack.apply(d, *ts)


def _atleast(n: int, x: Tensor) -> Tensor:
    if x.ndim >= n:
        return x
    if n == 3 and x.ndim == 2:
        return reshape(x, x.shape + (1,))
    if n == 3 and x.ndim == 1:
        return reshape(x, (1,) + x.shape + (1,))
    return reshape(x, (1,) * (n - x.ndim) + x.shape)


def _atleast_fn(n: int) -> Any:
    def fn(*tensors: Any) -> Any:
        if len(tensors) == 1 and isinstance(tensors[0], Tensor):
            return _atleast(n, tensors[0])
        return tuple(_atleast(n, x) for x in _tensors(tensors))

    fn.__name__ = f"atleast_{n}d"
    return fn


atleast_1d, atleast_2d, atleast_3d = _atleast_fn(1), _atleast_fn(2), _atleast_fn(3)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    ts = [_atleast(1, x) for x in tensors]
    return cat(ts, 0 if ts and ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    return cat([_atleast(2, x) for x in tensors], 0)


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    return cat([_atleast(3, x) for x in tensors], 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    return hstack([reshape(x, (x.numel(), 1)) if x.ndim <= 1 else x for x in tensors])


# ---------------------------------------------------------------- diagonals and triangles
def _diag_index(n1: int, n2: int, offset: int) -> tuple[Any, Any, int]:
    length = max(min(n1 + min(offset, 0), n2 - max(offset, 0)), 0)
    rows = np.arange(length) - min(offset, 0)
    return rows, rows + offset, length


def _diag_write(out: Any, d1: int, d2: int, offset: int, values: Any) -> Any:
    """``out``'s (offset) diagonal over dims d1, d2 set to ``values`` (laid out as numpy.diagonal's)."""
    xp = xp_of(out)
    i, j, _ = _diag_index(out.shape[d1], out.shape[d2], offset)
    xp.moveaxis(out, (d1, d2), (-2, -1))[..., xp.asarray(i), xp.asarray(j)] = values
    return out


class Diagonal(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Any, a: Any, offset: int, d1: int, d2: int) -> Any:
        ctx.shape, ctx.args = a.shape, (offset, d1, d2)
        d = xp_of(a).diagonal(a, offset, d1, d2)
        if isinstance(d, np.ndarray) and not d.flags.writeable and a.flags.writeable:
            d = np.lib.stride_tricks.as_strided(d, subok=True)  # numpy marks diagonals read-only; PyTorch's are views
        return d

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        offset, d1, d2 = ctx.args
        return _diag_write(xp_of(g).zeros(ctx.shape, dtype=g.dtype), d1, d2, offset, g), None, None, None


class DiagEmbed(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, offset: int, d1: int, d2: int) -> Any:
        ctx.args = (offset, d1, d2)
        n = a.shape[-1] + abs(offset)
        rest = list(a.shape[:-1])
        shape = [0] * (a.ndim + 1)
        for i, dd in enumerate(x for x in range(a.ndim + 1) if x not in (d1, d2)):
            shape[dd] = rest[i]
        shape[d1] = shape[d2] = n
        return _diag_write(xp_of(a).zeros(tuple(shape), dtype=a.dtype), d1, d2, offset, a)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        offset, d1, d2 = ctx.args
        return xp_of(g).diagonal(g, offset, d1, d2).copy(), None, None, None


def diagonal(self: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    a, b = dim_of(dim1, self.ndim, "diagonal"), dim_of(dim2, self.ndim, "diagonal")
    if self.ndim < 2 or a == b:
        raise RuntimeError(f"[diagonal] expected two different dims of a tensor with at least 2 dims, got "
                           f"{dim1}, {dim2} on {self.ndim} dims")
    return Diagonal.apply(self, offset, a, b)


def diag_embed(self: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    n = self.ndim + 1
    a, b = dim_of(dim1, n, "diag_embed"), dim_of(dim2, n, "diag_embed")
    if a == b:
        raise RuntimeError(f"[diag_embed] expected two different dims, got {dim1} and {dim2}")
    if self.ndim == 0:
        raise RuntimeError("[diag_embed] expected a tensor with at least 1 dim")
    return DiagEmbed.apply(self, offset, a, b)


def diag(self: Tensor, diagonal: int = 0) -> Tensor:
    if self.ndim == 1:
        return DiagEmbed.apply(self, diagonal, 0, 1)
    if self.ndim == 2:
        return Diagonal.apply(self, diagonal, 0, 1).clone()  # torch.diag returns a copy
    raise RuntimeError(f"[diag] expected a 1-d or 2-d tensor, got {self.ndim} dims")


def trace(self: Tensor) -> Tensor:
    if self.ndim != 2:
        raise RuntimeError(f"[trace] expected a matrix (2 dims), got {self.ndim}")
    r = Diagonal.apply(self, 0, 0, 1).sum()
    return r if self.dtype.kind in "fb" or r.dtype == np.int64 else r.to(np.int64)


class Triangle(Function):
    @staticmethod
    def forward(ctx: Any, a: Any, k: int, upper: bool) -> Any:
        ctx.k, ctx.upper = k, upper
        return _keep_triangle(a, k, upper)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return _keep_triangle(g, ctx.k, ctx.upper), None, None


def _keep_triangle(a: Any, k: int, upper: bool) -> Any:
    """``a`` with the elements outside its (upper / lower) triangle over the last two dims zeroed."""
    xp = xp_of(a)
    rows, cols = xp.arange(a.shape[-2])[:, None], xp.arange(a.shape[-1])[None, :]
    keep = cols - rows >= k if upper else cols - rows <= k
    return xp.where(keep, a, xp.zeros((), dtype=a.dtype))


def _triangle(upper: bool) -> Any:
    name = "triu" if upper else "tril"

    def fn(self: Tensor, diagonal: int = 0) -> Tensor:
        if self.ndim < 2:
            raise RuntimeError(f"[{name}] expected a tensor with at least 2 dims, got {self.ndim}")
        return Triangle.apply(self, int(diagonal), upper)

    fn.__name__ = name
    return fn


tril, triu = _triangle(False), _triangle(True)


# ---------------------------------------------------------------- grids and windows
def meshgrid(*tensors: Any, indexing: Optional[str] = None) -> tuple[Tensor, ...]:
    ts = _tensors(tensors)
    mode = indexing or "ij"
    if mode not in ("ij", "xy"):
        raise RuntimeError(f"[meshgrid] expected indexing 'ij' or 'xy', got {indexing!r}")
    if any(x.ndim > 1 for x in ts):
        raise RuntimeError("[meshgrid] expected 0-d or 1-d tensors")
    pos = list(range(len(ts)))
    if mode == "xy" and len(ts) >= 2:
        pos[0], pos[1] = 1, 0
    shape = [0] * len(ts)
    for i, x in enumerate(ts):
        shape[pos[i]] = x.numel()
    out = []
    for i, x in enumerate(ts):
        s = [1] * len(ts)
        s[pos[i]] = x.numel()
        out.append(expand(reshape(x, s), shape))
    return tuple(out)


def cartesian_prod(*tensors: Any) -> Tensor:
    ts = _tensors(tensors)
    if len(ts) == 1:
        return ts[0]
    return stack([reshape(g, -1) for g in meshgrid(ts, indexing="ij")], 1)


def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    d = dim_of(dimension, self.ndim, "unfold")
    n = self.shape[d] if self.ndim else 1
    if size > n or size < 0 or step <= 0:
        raise RuntimeError(f"[unfold] expected 0 <= size <= {n} and step > 0, got size {size}, step {step}")
    xp = xp_of(self._data)
    idx = xp.arange((n - size) // step + 1)[:, None] * step + xp.arange(size)[None, :]
    if not self.ndim:
        return Take.apply(reshape(self, 1), idx[:, 0] * 0)
    return movedim(Take.apply(self, (slice(None),) * d + (idx,)), d + 1, -1)


def _swap(self: Tensor, axis0: int, axis1: int) -> Tensor:
    return transpose(self, axis0, axis1)


_SHARED = {
    "reshape": reshape, "flatten": flatten, "unflatten": unflatten, "squeeze": squeeze, "unsqueeze": unsqueeze,
    "transpose": transpose, "swapaxes": _swap, "swapdims": _swap, "t": t, "permute": permute,
    "movedim": movedim, "moveaxis": movedim, "adjoint": _mT, "broadcast_to": broadcast_to,
    "tile": tile, "flip": flip, "fliplr": fliplr, "flipud": flipud, "roll": roll, "rot90": rot90,
    "narrow": narrow, "select": select, "chunk": chunk, "split": split, "tensor_split": tensor_split,
    "unbind": unbind, "diag": diag, "diagonal": diagonal, "diag_embed": diag_embed, "tril": tril, "triu": triu,
    "trace": trace,
}
METHODS: dict[str, Any] = dict(_SHARED)
METHODS.update({
    "view": view, "view_as": view_as, "reshape_as": reshape_as, "expand": expand, "expand_as": expand_as,
    "repeat": repeat, "unfold": unfold, "T": property(_T), "mT": property(_mT), "mH": property(_mT),
    "H": property(_H),
})
FUNCTIONS: dict[str, Any] = dict(_SHARED)
FUNCTIONS.update({
    "cat": cat, "concat": cat, "concatenate": cat, "stack": stack, "hstack": hstack, "vstack": vstack,
    "row_stack": vstack, "dstack": dstack, "column_stack": column_stack, "atleast_1d": atleast_1d,
    "atleast_2d": atleast_2d, "atleast_3d": atleast_3d, "meshgrid": meshgrid, "cartesian_prod": cartesian_prod,
    "broadcast_tensors": broadcast_tensors, "broadcast_shapes": broadcast_shapes,
})
