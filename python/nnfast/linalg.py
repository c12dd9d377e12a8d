"""``nnfast.linalg``: PyTorch's ``torch.linalg`` names that nnfast has, as an importable module
(``import nnfast.linalg as L``): the products (``matmul``, ``multi_dot``, on nnfast's GEMM) and the
norms (``norm``, ``vector_norm``, ``matrix_norm``), differentiable. Factorizations (``inv``,
``solve``, ``det``, ``svd``...) and the singular-value norms (ord 'nuc', 2, -2) are not provided.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

from .ops import linalg as _products
from .ops import reduction as _reduction
from .ops.pointwise import abs as _abs
from .tensor import Tensor

__all__ = ["matmul", "multi_dot", "norm", "vector_norm", "matrix_norm"]

_Dim = Union[int, Sequence[int], None]


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """``torch.linalg.matmul``: the same as ``nnfast.matmul``.

    Shape: as ``nnfast.matmul`` (1-D, 2-D and broadcast batched operands).
    Defaults: none.
    """
    return _products.matmul(input, other)


def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    """The product of two or more matrices (the first and last may be vectors), left to right.

    Shape: (n,) or (m, n), then (n, k) ..., then (k, p) or (k,).
    Defaults: none.
    """
    return _products.multi_dot(tensors)


def vector_norm(x: Tensor, ord: Any = 2, dim: _Dim = None, keepdim: bool = False, *,  # noqa: A002
                dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (every element when None): sum(|x|^ord)^(1/ord), inf / -inf
    the largest / smallest |x|, 0 the number of non-zeros.

    Shape: x (*); output x's shape without ``dim`` (kept as size 1 with ``keepdim``).
    Defaults: ord=2, dim=None, keepdim=False, dtype=None.
    """
    return _reduction.vector_norm(x, ord, dim, keepdim, dtype=dtype)


def matrix_norm(A: Tensor, ord: Any = "fro", dim: tuple[int, int] = (-2, -1), keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """The matrix norm of the matrices over the two dims ``dim``: 'fro' (Frobenius), 1 / -1 (largest /
    smallest column sum of |A|), inf / -inf (largest / smallest row sum of |A|).

    Shape: A (*, m, n); output (*) (with ``keepdim``, (*, 1, 1)).
    Defaults: ord='fro', dim=(-2, -1), keepdim=False, dtype=None.
    """
    x = A.to(dtype) if dtype is not None else A
    if x.ndim < 2:
        raise ValueError(f"[matrix_norm] expected a tensor with at least 2 dims, got {x.ndim}")
    if len(tuple(dim)) != 2:
        raise ValueError(f"[matrix_norm] expected dim to be a pair of dims, got {dim}")
    r, c = (d % x.ndim if -x.ndim <= d < x.ndim else _bad_dim(d, x.ndim) for d in dim)
    if r == c:
        raise ValueError(f"[matrix_norm] expected two different dims, got {tuple(dim)}")
    if ord == "fro":
        return _reduction.norm(x, 2.0, (r, c), keepdim)
    if ord in ("nuc", 2, -2):
        raise NotImplementedError(f"[matrix_norm] ord={ord!r} needs singular values, which nnfast does not compute")
    if isinstance(ord, str) or ord not in (1, -1) and not (isinstance(ord, float) and math.isinf(ord)):
        raise ValueError(f"[matrix_norm] expected ord 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, got {ord!r}")
    # ord 1: max over columns of the column sums (sum over rows); inf: max over rows of the row sums.
    summed, other = (r, c) if ord in (1, -1) else (c, r)
    sums = _reduction.sum_(_abs(x), summed, keepdim=True)
    pick = _reduction.amax if ord > 0 else _reduction.amin
    out = pick(sums, other, keepdim=True)
    return out if keepdim else out.reshape(tuple(n for i, n in enumerate(x.shape) if i not in (r, c)))


def _bad_dim(d: int, ndim: int) -> int:
    raise IndexError(f"[matrix_norm] expected dim in range [{-ndim}, {ndim - 1}], got {d}")


def norm(A: Tensor, ord: Any = None, dim: _Dim = None, keepdim: bool = False, *,  # noqa: A002
         dtype: Any = None) -> Tensor:
    """``torch.linalg.norm``: a vector norm (``dim`` one dim, or ``dim`` None and ``ord`` None: all
    elements, 2-norm; or a 1-D input) or a matrix norm (``dim`` two dims, or a 2-D input with ``ord``).

    Shape: A (*); output A's shape without ``dim``.
    Defaults: ord=None (2 for vectors, 'fro' for matrices), dim=None, keepdim=False, dtype=None.
    """
    dims: Optional[tuple[int, ...]] = None if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    if dims is None:
        if ord is None:
            return vector_norm(A, 2, None, keepdim, dtype=dtype)
        if A.ndim == 1:
            return vector_norm(A, ord, None, keepdim, dtype=dtype)
        if A.ndim == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        raise ValueError(f"[linalg.norm] expected a 1-D or 2-D input when ord is given and dim is not, got "
                         f"{A.ndim}-D")
    if len(dims) == 1:
        return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
    if len(dims) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, (dims[0], dims[1]), keepdim, dtype=dtype)
    raise ValueError(f"[linalg.norm] expected dim to name 1 or 2 dims, got {dims}")
