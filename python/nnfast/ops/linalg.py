"""Tensor surface: matrix products (matmul / mm / bmm / einsum ...), all on nnfast's GEMM.

Every product reduces to ``MatMul`` (autograd/linalg_ops.py): a 2-D GEMM or one strided batched
GEMM. Shape ops (permute / reshape / unsqueeze) and the Tensor operators do the rest, so each
function here gets its gradient from the tape.
"""
from __future__ import annotations

from typing import Any, NoReturn, Sequence, Union

import numpy as np

from ..amp.autocast_mode import lower_operands
from ..autograd.linalg_ops import MatMul
from .._tensor_ops import _array_operand as _operand
from .inplace import _from_out_of_place
from ..tensor import Tensor

_Dims = Union[int, Sequence[int], Sequence[Sequence[int]]]


def _fail(op: str, what: str) -> NoReturn:
    raise ValueError(f"[{op}] expected {what}")


def matmul(input: Tensor, other: Tensor) -> Tensor:
    return MatMul.apply(*lower_operands(input, other))


def _rmatmul(self: Tensor, other: Any) -> Tensor:
    return MatMul.apply(*lower_operands(_operand(other, self), self))


def _matmul_method(self: Tensor, other: Any) -> Tensor:
    return MatMul.apply(*lower_operands(self, _operand(other, self)))


def _mm_method(self: Tensor, other: Tensor) -> Tensor:
    return mm(self, other)  # named as tensor.py declares Tensor.mm


def _need_ndim(op: str, x: Tensor, ndim: int, name: str) -> None:
    if x.ndim != ndim:
        _fail(op, f"{name} to be a {ndim}-D tensor, got {x.ndim}-D of shape {tuple(x.shape)}")


def _inner(op: str, a: Tensor, b: Tensor, ka: int, kb: int) -> None:
    if a.shape[ka] != b.shape[kb]:
        _fail(op, f"matching inner dimensions, got shapes {tuple(a.shape)} and {tuple(b.shape)}")


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    _need_ndim("mm", input, 2, "input")
    _need_ndim("mm", mat2, 2, "mat2")
    _inner("mm", input, mat2, 1, 0)
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3:
        _fail("bmm", f"3-D tensors for input and mat2, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    if input.shape[0] != mat2.shape[0]:
        _fail("bmm", f"equal batch sizes, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    _inner("bmm", input, mat2, 2, 1)
    return matmul(input, mat2)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    _need_ndim("mv", input, 2, "input")
    _need_ndim("mv", vec, 1, "vec")
    _inner("mv", input, vec, 1, 0)
    return matmul(input, vec)


def _dot_like(op: str) -> Any:
    def fn(input: Tensor, other: Tensor) -> Tensor:
        _need_ndim(op, input, 1, "input")
        _need_ndim(op, other, 1, "other")
        _inner(op, input, other, 0, 0)
        return matmul(input, other)

    fn.__name__ = op
    return fn


dot = _dot_like("dot")
vdot = _dot_like("vdot")  # real tensors: conjugation is the identity


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    _need_ndim("outer", input, 1, "input")
    _need_ndim("outer", vec2, 1, "vec2")
    return matmul(input.unsqueeze(1), vec2.unsqueeze(0))  # a K = 1 GEMM


def _scaled_sum(op: str, input: Tensor, prod: Tensor, beta: float, alpha: float) -> Tensor:
    """beta * input + alpha * prod; beta == 0 ignores input (NaN in it does not propagate)."""
    try:
        ok = np.broadcast_shapes(tuple(input.shape), tuple(prod.shape)) == tuple(prod.shape)
    except ValueError:
        ok = False
    if not ok:
        _fail(op, f"input broadcastable to {tuple(prod.shape)}, got {tuple(input.shape)}")
    p = prod if alpha == 1 else prod * alpha
    if beta == 0:
        return p
    return p + (input if beta == 1 else input * beta)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    _need_ndim("addmm", mat1, 2, "mat1")
    _need_ndim("addmm", mat2, 2, "mat2")
    _inner("addmm", mat1, mat2, 1, 0)
    return _scaled_sum("addmm", input, matmul(mat1, mat2), beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    _need_ndim("addmv", mat, 2, "mat")
    _need_ndim("addmv", vec, 1, "vec")
    _inner("addmv", mat, vec, 1, 0)
    return _scaled_sum("addmv", input, matmul(mat, vec), beta, alpha)


def _check_bmm(op: str, b1: Tensor, b2: Tensor) -> None:
    if b1.ndim != 3 or b2.ndim != 3:
        _fail(op, f"3-D tensors for batch1 and batch2, got shapes {tuple(b1.shape)} and {tuple(b2.shape)}")
    if b1.shape[0] != b2.shape[0]:
        _fail(op, f"equal batch sizes, got shapes {tuple(b1.shape)} and {tuple(b2.shape)}")
    _inner(op, b1, b2, 2, 1)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    _check_bmm("addbmm", batch1, batch2)
    nb, m, k = batch1.shape
    # sum_b A[b] @ B[b] is one GEMM over the concatenated inner dims: (M, B*K) @ (B*K, N).
    a = batch1.permute(1, 0, 2).reshape(m, nb * k)
    prod = matmul(a, batch2.reshape(nb * k, batch2.shape[2]))
    return _scaled_sum("addbmm", input, prod, beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    _check_bmm("baddbmm", batch1, batch2)
    return _scaled_sum("baddbmm", input, matmul(batch1, batch2), beta, alpha)


# ------------------------------------------------------------------ einsum
def _parse(equation: str, ndims: list[int]) -> tuple[list[list[str]], list[str]]:
    """Per-operand label lists and the output labels; '...' becomes private labels (aligned right)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        _fail("einsum", f"{len(terms)} operands for equation {equation!r}, got {len(ndims)}")
    n_ell = 0
    for t, nd in zip(terms, ndims):
        if "..." in t:
            n_ell = max(n_ell, nd - len(t.replace("...", "")))
    ell = [chr(0x100 + i) for i in range(n_ell)]
    labels: list[list[str]] = []
    for t, nd in zip(terms, ndims):
        head, dots, tail = t.partition("...")
        if not all(c.isalpha() for c in head + tail) or "." in tail:
            _fail("einsum", f"subscripts to be letters and at most one '...', got {t!r}")
        e = nd - len(head) - len(tail) if dots else 0
        if e < 0 or (not dots and len(head) != nd):
            _fail("einsum", f"subscripts {t!r} to match an operand of {nd} dims")
        labels.append(list(head) + ell[n_ell - e:] + list(tail))
    if arrow:
        head, dots, tail = rhs.partition("...")
        out = list(head) + (ell if dots else []) + list(tail)
        seen = [c for ls in labels for c in ls]
        bad = [c for c in out if c not in seen or out.count(c) > 1]
        if bad:
            _fail("einsum", f"output subscripts to appear once and in an input, got {rhs!r}")
    else:
        flat = [c for ls in labels for c in ls if c not in ell]
        out = ell + sorted(c for c in set(flat) if flat.count(c) == 1)
    return labels, out


def _diagonal(x: Tensor, labels: list[str]) -> tuple[Tensor, list[str]]:
    """Collapse repeated labels of one operand onto their diagonal (mask by identity, sum one axis)."""
    while len(set(labels)) < len(labels):
        c = next(c for c in labels if labels.count(c) > 1)
        i = labels.index(c)
        j = labels.index(c, i + 1)
        n = x.shape[i]
        eye_shape = [1] * x.ndim
        eye_shape[i] = eye_shape[j] = n
        eye = Tensor._wrap(_eye_like(x, n).reshape(eye_shape))
        x = (x * eye).sum(j)
        labels = labels[:j] + labels[j + 1:]
    return x, labels


def _eye_like(x: Tensor, n: int) -> Any:
    from .._dispatch import xp_of

    return xp_of(x._data).eye(n, dtype=x._data.dtype)


def _sum_labels(x: Tensor, labels: list[str], keep: set[str]) -> tuple[Tensor, list[str]]:
    drop = [i for i, c in enumerate(labels) if c not in keep]
    if drop:
        x = x.sum(tuple(drop))
    return x, [c for c in labels if c in keep]


def _arrange(x: Tensor, labels: list[str], order: list[str]) -> Tensor:
    perm = [labels.index(c) for c in order]
    return x if perm == list(range(len(perm))) else x.permute(*perm)


def _size(x: Tensor, labels: list[str], group: list[str]) -> int:
    return int(np.prod([x.shape[labels.index(c)] for c in group], dtype=np.int64))


def _contract(a: Tensor, la: list[str], b: Tensor, lb: list[str],
              needed: set[str]) -> tuple[Tensor, list[str]]:
    """a * b over their labels: shared labels still needed are batch dims, the other shared labels are
    contracted through one (batched) GEMM; with nothing to contract, a broadcast multiply."""
    a, la = _sum_labels(a, la, needed | set(lb))
    b, lb = _sum_labels(b, lb, needed | set(la))
    batch = [c for c in la if c in lb and c in needed]
    con = [c for c in la if c in lb and c not in needed]
    lo = [c for c in la if c not in lb]
    ro = [c for c in lb if c not in la]
    if not con:
        order = batch + lo + ro
        ax = _arrange(a, la, batch + lo).reshape(_shape(a, la, batch) + _shape(a, la, lo) + (1,) * len(ro))
        bx = _arrange(b, lb, batch + ro).reshape(_shape(b, lb, batch) + (1,) * len(lo) + _shape(b, lb, ro))
        return ax * bx, order
    bs_a, bs_b = _shape(a, la, batch), _shape(b, lb, batch)
    for c in con:
        if a.shape[la.index(c)] != b.shape[lb.index(c)]:
            _fail("einsum", f"subscript {c!r} to have one size, got {a.shape[la.index(c)]} and "
                            f"{b.shape[lb.index(c)]}")
    am = _arrange(a, la, batch + lo + con).reshape(bs_a + (_size(a, la, lo), _size(a, la, con)))
    bm = _arrange(b, lb, batch + con + ro).reshape(bs_b + (_size(b, lb, con), _size(b, lb, ro)))
    r = matmul(am, bm)
    return r.reshape(tuple(r.shape[:len(batch)]) + _shape(a, la, lo) + _shape(b, lb, ro)), batch + lo + ro


def _shape(x: Tensor, labels: list[str], group: list[str]) -> tuple[int, ...]:
    return tuple(int(x.shape[labels.index(c)]) for c in group)


def einsum(equation: str, *operands: Any) -> Tensor:
    ops = list(operands[0]) if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else list(operands)
    if not ops:
        _fail("einsum", "at least one operand")
    labels, out = _parse(equation, [t.ndim for t in ops])
    terms = [_diagonal(t, ls) for t, ls in zip(ops, labels)]
    x, lx = terms[0]
    for i in range(1, len(terms)):
        later = set(out).union(*(set(ls) for _, ls in terms[i + 1:]))
        y, ly = terms[i]
        x, lx = _contract(x, lx, y, ly, later)
    x, lx = _sum_labels(x, lx, set(out))
    return _arrange(x, lx, out)


# ------------------------------------------------------------------ tensordot / kron / multi_dot
def tensordot(a: Tensor, b: Tensor, dims: _Dims = 2) -> Tensor:
    if isinstance(dims, int):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            _fail("tensordot", f"0 <= dims <= {min(a.ndim, b.ndim)}, got {dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = [list(d) if not isinstance(d, int) else [d] for d in dims]
        if len(da) != len(db):
            _fail("tensordot", f"two dim lists of one length, got {da} and {db}")
    da, db = [d % a.ndim for d in da], [d % b.ndim for d in db]
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            _fail("tensordot", f"contracted dims of one size, got {a.shape[i]} and {b.shape[j]}")
    fa = [i for i in range(a.ndim) if i not in da]
    fb = [j for j in range(b.ndim) if j not in db]
    k = int(np.prod([a.shape[i] for i in da], dtype=np.int64))
    am = a.permute(*(fa + da)).reshape(-1, k) if a.ndim else a.reshape(1, 1)
    bm = b.permute(*(db + fb)).reshape(k, -1) if b.ndim else b.reshape(1, 1)
    return matmul(am, bm).reshape(tuple(a.shape[i] for i in fa) + tuple(b.shape[j] for j in fb))


def kron(input: Tensor, other: Tensor) -> Tensor:
    n = max(input.ndim, other.ndim)
    sa = (1,) * (n - input.ndim) + tuple(input.shape)
    sb = (1,) * (n - other.ndim) + tuple(other.shape)
    # Interleave the dims: a[i0, 1, i1, 1, ...] * b[1, j0, 1, j1, ...] -> (i0 * j0, i1 * j1, ...).
    a = input.reshape(tuple(v for s in sa for v in (s, 1)))
    b = other.reshape(tuple(v for s in sb for v in (1, s)))
    return (a * b).reshape(tuple(x * y for x, y in zip(sa, sb)))


def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    ts = list(tensors)
    if len(ts) < 2:
        _fail("multi_dot", f"at least 2 tensors, got {len(ts)}")
    for i, t in enumerate(ts):
        if t.ndim not in ((1, 2) if i in (0, len(ts) - 1) else (2,)):
            _fail("multi_dot", f"2-D tensors (the first and last may be 1-D), got {t.ndim}-D at position {i}")
    out = ts[0]
    for t in ts[1:]:
        _inner("multi_dot", out, t, -1, 0)
        out = matmul(out, t)
    return out


# nnfast.linalg (matmul, multi_dot, the norms) is a module of its own: python/nnfast/linalg.py.


METHODS: dict[str, Any] = {
    "matmul": _matmul_method, "__matmul__": _matmul_method, "__rmatmul__": _rmatmul, "mm": _mm_method, "bmm": bmm,
    "mv": mv, "dot": dot, "vdot": vdot, "outer": outer, "ger": outer, "addmm": addmm, "addmv": addmv,
    "addbmm": addbmm, "baddbmm": baddbmm, "kron": kron,
    # in-place twins (inplace._FROM_OUT_OF_PLACE does not list these names)
    **{name + "_": _from_out_of_place(name) for name in ("addmm", "addmv", "addbmm", "baddbmm")},
}
FUNCTIONS: dict[str, Any] = {
    "matmul": matmul, "mm": mm, "bmm": bmm, "mv": mv, "dot": dot, "vdot": vdot, "outer": outer, "ger": outer,
    "addmm": addmm, "addmv": addmv, "addbmm": addbmm, "baddbmm": baddbmm, "einsum": einsum,
    "tensordot": tensordot, "kron": kron,
}
