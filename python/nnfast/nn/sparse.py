"""``nn.Embedding`` / ``nn.EmbeddingBag`` and ``F.embedding`` / ``F.embedding_bag`` on nnfast's
embedding kernels (csrc/cpu/embedding.cpp, csrc/cuda/embedding.cu): PyTorch's layout
(num_embeddings, embedding_dim), initialisation N(0, 1), ``padding_idx`` (its row starts at zero
and gets no gradient), ``max_norm`` (rows looked up are renormalised in place, as PyTorch does)
and ``scale_grad_by_freq``.

The forward is a row gather; the backward adds each output row's gradient into its weight row
with the rows split among threads and every row summed in position order, so the gradient is the
same bits for any thread count. Index ranges are checked by the kernels' bindings.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import contiguous, kernels, xp_of
from ..autograd import grad_mode
from ..autograd.function import Function
from ..tensor import Tensor
from . import init
from ._params import add_parameters, finish_init
from .functional._checks import check_float
from .module import Module, Parameter

__all__ = ["Embedding", "EmbeddingBag"]

_MODES = {"sum": 0, "mean": 1, "max": 2}


# ---------------------------------------------------------------- argument handling
def _indices(op: str, input: Any, weight: Tensor) -> Any:
    """The index array of ``input`` (a Tensor, or anything array-like on the CPU): int32 / int64,
    C-contiguous, on ``weight``'s device."""
    idx = input._data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"[{op}] expected an integer index tensor, got {idx.dtype}")
    if idx.dtype not in (np.int32, np.int64):
        raise TypeError(f"[{op}] expected an integer index tensor of dtype int32 or int64, got {idx.dtype}")
    if isinstance(input, Tensor) and input.device != weight.device:
        raise RuntimeError(f"[{op}] expected indices and weight on one device, got {input.device} and "
                           f"{weight.device}")
    return contiguous(idx)


def _check_weight(op: str, weight: Any, sparse: bool) -> Tensor:
    w: Tensor = check_float(op, weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"[{op}] expected weight to be 2-D (num_embeddings, embedding_dim), got {w.ndim}-D")
    if sparse:
        raise ValueError(f"[{op}] expected sparse=False (sparse gradients are not supported)")
    return w


def _padding(op: str, padding_idx: Optional[int], n: int) -> int:
    """PyTorch's padding_idx rule: in [-n, n), negative counted from the end; -1 in the kernels = none."""
    if padding_idx is None:
        return -1
    p = int(padding_idx)
    if not -n <= p < n:
        raise ValueError(f"[{op}] expected padding_idx within num_embeddings ({n}), got {padding_idx}")
    return p % n


def _renorm(op: str, weight: Tensor, idx: Any, max_norm: float, norm_type: float) -> None:
    """Scale the looked-up rows whose norm exceeds ``max_norm`` down to it, in place and unrecorded
    (PyTorch's embedding_renorm_); the weight's version counter moves, as any in-place write."""
    w = weight._data
    with grad_mode.no_grad():
        if w.flags.c_contiguous:
            kernels("embedding", w, idx).embedding_renorm(w, idx, max_norm, norm_type)
        else:  # a strided weight: renorm a packed copy and write it back
            tmp = contiguous(w)
            kernels("embedding", tmp, idx).embedding_renorm(tmp, idx, max_norm, norm_type)
            w[...] = tmp
    weight._vc[0] += 1


# ---------------------------------------------------------------- embedding
class EmbeddingFunction(Function):
    """out[i] = weight[idx[i]]; dweight[r] += sum over i with idx[i] = r (r != padding_idx) of
    dout[i] (divided by the count of r when scale_grad_by_freq)."""

    @staticmethod
    def forward(ctx: Any, weight: Any, idx: Any, padding_idx: int, scale_grad_by_freq: bool) -> Any:
        K = kernels("embedding", weight, idx)
        w = contiguous(weight)
        out = xp_of(w).empty(idx.shape + (w.shape[1],), dtype=w.dtype)
        K.embedding_forward(out, w, idx)
        ctx.idx, ctx.padding_idx, ctx.freq = idx, padding_idx, scale_grad_by_freq
        ctx.wshape, ctx.dtype = w.shape, w.dtype
        return out

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        dw, dw_out = ctx.param_grad(0, xp_of(dy), ctx.wshape, ctx.dtype)
        kernels("embedding", dy, ctx.idx).embedding_backward(dw, contiguous(dy), ctx.idx, ctx.padding_idx,
                                                              ctx.freq)
        return dw_out, None, None, None


def embedding(input: Tensor, weight: Tensor, padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer tensor ``input``: out[i] = weight[input[i]].

    ``padding_idx`` rows get no gradient; ``max_norm`` renormalises the looked-up rows of
    ``weight`` in place to norm at most ``max_norm`` (``norm_type``-norm) before the lookup;
    ``scale_grad_by_freq`` divides each row's gradient by how often it occurs in ``input``.

    Shape: input (*) int32 / int64 in [0, num_embeddings); weight (num_embeddings, dim); output (*, dim).
    Defaults: padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False
    (True raises: sparse gradients are not supported).
    """
    _check_weight("embedding", weight, sparse)
    idx = _indices("embedding", input, weight)
    pad = _padding("embedding", padding_idx, weight.shape[0])
    if max_norm is not None:
        _renorm("embedding", weight, idx, float(max_norm), float(norm_type))
    return EmbeddingFunction.apply(weight, idx, pad, bool(scale_grad_by_freq))


# ---------------------------------------------------------------- embedding_bag
class EmbeddingBagFunction(Function):
    """out[b] = reduce over the members n of bag b (idx[n] != padding_idx) of w_n weight[idx[n]]
    (sum, mean, or max per column). Backward: sum / mean scatter dout[b] (times w_n, or / count)
    into each member's row; max adds dout[b, d] into the row that won column d;
    d per_sample_weights[n] = dot(weight[idx[n]], dout[bag(n)])."""

    @staticmethod
    def forward(ctx: Any, weight: Any, psw: Any, idx: Any, offsets: Any, padding_idx: int, mode: int,
                scale_grad_by_freq: bool) -> Any:
        K = kernels("embedding_bag", weight, idx, offsets, psw)
        xp = xp_of(weight)
        w = contiguous(weight)
        psw = None if psw is None else contiguous(psw)
        B, D = offsets.shape[0] - 1, w.shape[1]
        out = xp.empty((B, D), dtype=w.dtype)
        max_idx = xp.empty((B, D), dtype=np.int64) if mode == 2 else None
        K.embedding_bag_forward(out, max_idx, w, idx, offsets, psw, padding_idx, mode)
        ctx.args = (w, idx, offsets, psw, max_idx, padding_idx, mode, scale_grad_by_freq)
        return out

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        w, idx, offsets, psw, max_idx, padding_idx, mode, freq = ctx.args
        xp = xp_of(dy)
        dw = dw_out = dpsw = None
        if ctx.needs_input_grad[0]:
            dw, dw_out = ctx.param_grad(0, xp, w.shape, w.dtype)
        if psw is not None and ctx.needs_input_grad[1]:
            dpsw = xp.empty(psw.shape, dtype=psw.dtype)
        kernels("embedding_bag", dy, idx).embedding_bag_backward(dw, dpsw, contiguous(dy), w, idx, offsets, psw,
                                                                  max_idx, padding_idx, mode, freq)
        return dw_out, dpsw, None, None, None, None, None


def _bag_offsets(input: Any, idx: Any, offsets: Any, include_last_offset: bool) -> tuple[Any, Any]:
    """(flat indices, int64 offsets with the end of the last bag appended): from 2-D input (fixed bags),
    or 1-D input and ``offsets``. Offsets are checked here (ascending from 0, within the input)."""
    xp = xp_of(idx)
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("[embedding_bag] expected offsets=None when input is 2-D (fixed-size bags)")
        B, L = idx.shape
        return idx.reshape(-1), xp.arange(B + 1, dtype=np.int64) * L
    if idx.ndim != 1:
        raise ValueError(f"[embedding_bag] expected input to be 1-D or 2-D, got {idx.ndim}-D")
    if offsets is None:
        raise ValueError("[embedding_bag] expected offsets when input is 1-D")
    off = offsets._data if isinstance(offsets, Tensor) else np.asarray(offsets)
    if off.dtype.kind not in "iu":
        raise TypeError(f"[embedding_bag] expected integer offsets, got {off.dtype}")
    if off.ndim != 1:
        raise ValueError(f"[embedding_bag] expected offsets to be 1-D, got {off.ndim}-D")
    n = idx.shape[0]
    given = off.shape[0]
    off = xp.asarray(off).astype(np.int64)
    if include_last_offset and given == 0:
        raise ValueError("[embedding_bag] expected at least one offset with include_last_offset=True")
    if given:
        if int(off[0]) != 0:
            raise ValueError(f"[embedding_bag] expected offsets[0] == 0, got {int(off[0])}")
        if bool((off[1:] < off[:-1]).any()):
            raise ValueError("[embedding_bag] expected offsets to be non-decreasing")
        if int(off[-1]) > n:
            raise ValueError(f"[embedding_bag] expected offsets within the input's {n} indices, got {int(off[-1])}")
    if not include_last_offset:
        off = xp.concatenate([off, xp.asarray([n], dtype=np.int64)])
    return idx, contiguous(off)


def embedding_bag(input: Tensor, weight: Tensor, offsets: Optional[Tensor] = None, max_norm: Optional[float] = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Optional[Tensor] = None, include_last_offset: bool = False,
                  padding_idx: Optional[int] = None) -> Tensor:
    """Sums, means or maxima of bags of embeddings, without materialising the looked-up rows.

    A 2-D ``input`` (B, L) holds B bags of L indices; a 1-D ``input`` holds the bags back to back
    and ``offsets`` (B,) gives where each starts (with ``include_last_offset``, B + 1 entries, the
    last one where the last bag ends). Entries equal to ``padding_idx`` are left out of their bag
    (and of the mean's count); an empty bag gives zeros. ``per_sample_weights`` (mode 'sum' only)
    scales each looked-up row. ``max_norm`` renormalises the looked-up rows of ``weight`` in place.

    Shape: input (B, L) or (N,) int32 / int64; offsets (B,) or (B + 1,); per_sample_weights like
    input; weight (num_embeddings, dim); output (B, dim).
    Defaults: offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode='mean',
    sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None.
    """
    _check_weight("embedding_bag", weight, sparse)
    if mode not in _MODES:
        raise ValueError(f"[embedding_bag] expected mode 'sum', 'mean' or 'max', got {mode!r}")
    idx = _indices("embedding_bag", input, weight)
    flat, off = _bag_offsets(input, idx, offsets, include_last_offset)
    psw = None
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError(f"[embedding_bag] expected per_sample_weights only with mode='sum', got mode={mode!r}")
        check_float("embedding_bag", per_sample_weights, "per_sample_weights")
        if tuple(per_sample_weights.shape) != tuple(idx.shape):
            raise ValueError(f"[embedding_bag] expected per_sample_weights of the input's shape {tuple(idx.shape)}, "
                             f"got {tuple(per_sample_weights.shape)}")
        if per_sample_weights.dtype != weight.dtype:
            raise TypeError(f"[embedding_bag] expected per_sample_weights to have dtype {weight.dtype}, got "
                            f"{per_sample_weights.dtype}")
        psw = per_sample_weights.reshape(-1)
    pad = _padding("embedding_bag", padding_idx, weight.shape[0])
    if max_norm is not None:
        _renorm("embedding_bag", weight, flat, float(max_norm), float(norm_type))
    return EmbeddingBagFunction.apply(weight, psw, flat, off, pad, _MODES[mode], bool(scale_grad_by_freq))


# ---------------------------------------------------------------- modules
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
        _init_weight(self, "Embedding", _weight, _freeze, device, dtype)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        return _repr(self)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: Optional[int] = None,
                        max_norm: Optional[float] = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, sparse: bool = False) -> "Embedding":
        """An Embedding whose weight is (a copy of) ``embeddings``, frozen unless ``freeze=False``.

        Shape: embeddings (num_embeddings, embedding_dim).
        Defaults: freeze=True, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
        sparse=False.
        """
        rows, cols = _pretrained_shape("Embedding", embeddings)
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings.detach().clone(), _freeze=freeze)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings (see ``F.embedding_bag``), without materialising
    the looked-up rows.

    Shape: input (B, L), or (N,) with offsets (B,); per_sample_weights like input; output (B, embedding_dim).
    Defaults: max_norm=None, norm_type=2.0, scale_grad_by_freq=False, mode='mean', sparse=False,
    _weight=None, include_last_offset=False, padding_idx=None; weight ~ N(0, 1) with the padding row zeroed.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: Optional[float] = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                 _weight: Optional[Tensor] = None, include_last_offset: bool = False,
                 padding_idx: Optional[int] = None, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"[EmbeddingBag] expected padding_idx within num_embeddings, got {padding_idx}")
            padding_idx = padding_idx % self.num_embeddings
        if mode not in _MODES:
            raise ValueError(f"[EmbeddingBag] expected mode 'sum', 'mean' or 'max', got {mode!r}")
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self.padding_idx = padding_idx
        _init_weight(self, "EmbeddingBag", _weight, False, device, dtype)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    def forward(self, input: Tensor, offsets: Optional[Tensor] = None,
                per_sample_weights: Optional[Tensor] = None) -> Tensor:
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                             self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self) -> str:
        return _repr(self) + f", mode={self.mode!r}"

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, max_norm: Optional[float] = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                        sparse: bool = False, include_last_offset: bool = False,
                        padding_idx: Optional[int] = None) -> "EmbeddingBag":
        """An EmbeddingBag whose weight is (a copy of) ``embeddings``, frozen unless ``freeze=False``.

        Shape: embeddings (num_embeddings, embedding_dim).
        Defaults: freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, mode='mean',
        sparse=False, include_last_offset=False, padding_idx=None.
        """
        rows, cols = _pretrained_shape("EmbeddingBag", embeddings)
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  _weight=embeddings.detach().clone(), include_last_offset=include_last_offset,
                  padding_idx=padding_idx)
        bag.weight.requires_grad_(not freeze)
        return bag


def _init_weight(m: Any, name: str, weight: Optional[Tensor], freeze: bool, device: Any, dtype: Any) -> None:
    if weight is None:
        add_parameters(m, dtype, weight=(m.num_embeddings, m.embedding_dim))
        finish_init(m, device)
        return
    if tuple(weight.shape) != (m.num_embeddings, m.embedding_dim):
        raise ValueError(f"[{name}] expected _weight of shape (num_embeddings, embedding_dim)")
    m.weight = Parameter(weight, requires_grad=not freeze)


def _pretrained_shape(name: str, embeddings: Tensor) -> tuple[int, int]:
    if embeddings.ndim != 2:
        raise ValueError(f"[{name}.from_pretrained] expected a 2-D embeddings tensor, got {embeddings.ndim}-D")
    return int(embeddings.shape[0]), int(embeddings.shape[1])


def _repr(m: Any) -> str:
    s = f"{m.num_embeddings}, {m.embedding_dim}"
    if m.padding_idx is not None:
        s += f", padding_idx={m.padding_idx}"
    if m.max_norm is not None:
        s += f", max_norm={m.max_norm}"
    return s
