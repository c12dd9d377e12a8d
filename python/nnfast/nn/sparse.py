"""``nn.Embedding`` and ``F.embedding``: a lookup table with PyTorch's layout (num_embeddings,
embedding_dim), initialisation N(0, 1), ``padding_idx`` (its row starts at zero and gets no
gradient) and ``max_norm`` (rows looked up are renormalised in place, as PyTorch does).

The forward is a row gather; the backward adds each output row's gradient into its weight row,
in index order, so the result is the same on every run.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import xp_of
from ..autograd.function import Function
from ..tensor import Tensor
from . import init
from ._params import add_parameters, finish_init
from .module import Module, Parameter

__all__ = ["Embedding"]


class _EmbeddingFn(Function):
    @staticmethod
    def forward(ctx: Any, weight: Any, indices: Any, padding_idx: Optional[int]) -> Any:
        ctx.indices, ctx.shape, ctx.padding_idx = indices, weight.shape, padding_idx
        return weight[indices]

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        xp = xp_of(g)
        dweight = xp.zeros(ctx.shape, dtype=g.dtype)
        flat = ctx.indices.reshape(-1)
        xp.add.at(dweight, flat, g.reshape(flat.shape[0], -1))  # sequential in index order: deterministic
        if ctx.padding_idx is not None:
            dweight[ctx.padding_idx] = 0
        return dweight, None, None


def embedding(input: Tensor, weight: Tensor, padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer tensor ``input``: out[i] = weight[input[i]].

    Shape: input (*) integers in [0, num_embeddings); weight (num_embeddings, dim); output (*, dim).
    Defaults: padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False.
    """
    idx = input._data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"[embedding] expected an integer index tensor, got {idx.dtype}")
    n = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(f"[embedding] expected indices in [0, {n}), got values in "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("[embedding] scale_grad_by_freq and sparse gradients are not supported")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
    return _EmbeddingFn.apply(weight, idx, padding_idx)


def _renorm_rows(weight: Tensor, idx: Any, max_norm: float, norm_type: float) -> None:
    """Scale the looked-up rows whose norm exceeds ``max_norm`` down to it (in place, not recorded)."""
    xp = xp_of(weight._data)
    rows = xp.unique(idx.reshape(-1))
    w = weight._data[rows]
    norms = (xp.abs(w) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
    weight._data[rows] = w * scale[:, None]
    weight._vc[0] += 1


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``: out[i] = weight[input[i]].

    Shape: input (*) integer indices; output (*, embedding_dim).
    Defaults: padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False,
    _weight=None (an initial weight), _freeze=False; weight ~ N(0, 1) with the padding row zeroed.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 max_norm: Optional[float] = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Optional[Tensor] = None, _freeze: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"[Embedding] expected padding_idx within num_embeddings, got {padding_idx}")
            padding_idx = padding_idx % self.num_embeddings
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            add_parameters(self, dtype, weight=(self.num_embeddings, self.embedding_dim))
            finish_init(self, device)
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ValueError("[Embedding] expected _weight of shape (num_embeddings, embedding_dim)")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: Optional[int] = None,
                        max_norm: Optional[float] = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, sparse: bool = False) -> "Embedding":
        if embeddings.ndim != 2:
            raise ValueError("[Embedding.from_pretrained] expected a 2-D embeddings tensor")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings.detach().clone(), _freeze=freeze)
