"""The PyTorch-shaped tensor surface, one module per area.

Each area module defines ``METHODS`` (name -> function set on ``Tensor``; a ``property`` for
attributes such as ``mT``) and ``FUNCTIONS`` (name -> function exported as ``nnfast.<name>``).
``install()`` sets every area's methods on ``Tensor`` after the core operators of
``nnfast._tensor_ops``, so an area may replace one of those with a fuller version.

Areas: ``pointwise`` (math, comparisons, logical), ``reduction`` (sum ... topk / sort / unique),
``shape`` (views, split / cat / stack ...), ``indexing`` (gather / scatter / masked ops and
autograd-aware get/set item), ``creation`` (factories, random sampling, ``Generator``),
``linalg`` (matmul / bmm / einsum on nnfast's GEMM), ``inplace`` (the ``*_`` methods and the
version counter's checks).
"""
from __future__ import annotations

from typing import Any

from . import creation, indexing, inplace, linalg, pointwise, reduction, shape

AREAS = (pointwise, reduction, shape, indexing, creation, linalg, inplace)


def functions() -> dict[str, Any]:
    table: dict[str, Any] = {}
    for area in AREAS:
        table.update(area.FUNCTIONS)
    return table


def install() -> None:
    from ..tensor import Tensor

    for area in AREAS:
        table = area.methods() if hasattr(area, "methods") else area.METHODS
        for name, fn in table.items():
            setattr(Tensor, name, fn)
