"""Packed sequences: ``PackedSequence``, ``pack_padded_sequence``, ``pad_packed_sequence``, ``pad_sequence``,
``pack_sequence``, ``unpad_sequence``, ``unpack_sequence`` (PyTorch's ``nn.utils.rnn``).

A PackedSequence stores a batch of variable-length sequences time step by time step, longest first:
step t holds ``batch_sizes[t]`` rows (the sequences still running), so a recurrent layer processes only
the live prefix of the batch at each step. Moving between padded and packed layouts is a row gather
(``index_select``: differentiable, no arithmetic).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from ...tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence"]


def _int_tensor(a: Any) -> Tensor:
    from ... import tensor

    return tensor(np.ascontiguousarray(a, dtype=np.int64))


def _host(a: Any) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.cpu().numpy()
    return np.asarray(a, dtype=np.int64)


class PackedSequence(NamedTuple):
    """A batch of variable-length sequences, packed time-major (PyTorch's ``PackedSequence``).

    ``data`` (R, *) holds the rows of step 0, then step 1, ...; ``batch_sizes`` (T,) int64 the rows per
    step (non-increasing); ``sorted_indices`` the batch order by decreasing length (None when the input
    was already sorted) and ``unsorted_indices`` its inverse.

    Shape: data (sum(batch_sizes), *); batch_sizes (T,); sorted_indices, unsorted_indices (N,).
    Defaults: sorted_indices=None, unsorted_indices=None.
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Optional[Tensor] = None
    unsorted_indices: Optional[Tensor] = None

    def to(self, *args: Any, **kwargs: Any) -> "PackedSequence":
        return self._replace(data=self.data.to(*args, **kwargs))

    @property
    def is_cuda(self) -> bool:
        return str(self.data.device).startswith("cuda")


def _lengths(op: str, lengths: Any, N: int) -> np.ndarray:
    ln = _host(lengths).reshape(-1)
    if ln.shape[0] != N:
        raise ValueError(f"[{op}] expected {N} lengths (one per sequence), got {ln.shape[0]}")
    if N and ln.min() <= 0:
        raise ValueError(f"[{op}] expected every length > 0, got {int(ln.min())}")
    return ln


def pack_padded_sequence(input: Tensor, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch of variable-length sequences.

    Shape: input (T, N, *) ((N, T, *) when batch_first); lengths (N,) (a list or a CPU int tensor).
    Defaults: batch_first=False, enforce_sorted=True (lengths must then decrease; else the batch is
    sorted and ``sorted_indices`` records the order).
    """
    op = "pack_padded_sequence"
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ValueError(f"[{op}] expected input to be a Tensor with at least 2 dimensions")
    x = input.transpose(0, 1) if batch_first else input
    T, N = x.shape[0], x.shape[1]
    ln = _lengths(op, lengths, N)
    if N and ln.max() > T:
        raise ValueError(f"[{op}] expected lengths <= the padded length {T}, got {int(ln.max())}")
    if enforce_sorted:
        if np.any(np.diff(ln) > 0):
            raise ValueError(f"[{op}] expected lengths sorted in decreasing order with enforce_sorted=True, "
                             f"got {ln.tolist()}")
        order = np.arange(N, dtype=np.int64)
        sorted_indices = unsorted_indices = None
    else:
        order = np.argsort(-ln, kind="stable").astype(np.int64)
        ln = ln[order]
        sorted_indices = _int_tensor(order)
        unsorted_indices = _int_tensor(np.argsort(order, kind="stable"))
    Tmax = int(ln[0]) if N else 0
    batch_sizes = np.array([(ln > t).sum() for t in range(Tmax)], dtype=np.int64)
    rows = np.concatenate([t * N + order[:b] for t, b in enumerate(batch_sizes)]) if Tmax else np.zeros(0, np.int64)
    flat = x.reshape(T * N, *x.shape[2:])
    data = flat.index_select(0, _int_tensor(rows).to(flat.device))
    return PackedSequence(data, _int_tensor(batch_sizes), sorted_indices, unsorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Unpack a PackedSequence into a padded batch (in the original batch order) and its lengths.

    Shape: returns (T, N, *) ((N, T, *) when batch_first) and lengths (N,) int64.
    Defaults: batch_first=False, padding_value=0.0, total_length=None (the longest sequence).
    """
    from ... import cat, full

    op = "pad_packed_sequence"
    data, bs = sequence.data, _host(sequence.batch_sizes)
    T = len(bs)
    N = int(bs[0]) if T else 0
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"[{op}] expected total_length >= the longest sequence ({T}), got {total_length}")
        T_out = int(total_length)
    else:
        T_out = T
    unsorted = (np.arange(N, dtype=np.int64) if sequence.unsorted_indices is None
                else _host(sequence.unsorted_indices))
    offsets = np.concatenate([[0], np.cumsum(bs)[:-1]]).astype(np.int64) if T else np.zeros(0, np.int64)
    R = data.shape[0]
    rows = np.full((T_out, N), R, dtype=np.int64)  # R: the padding row appended below
    for t in range(T):
        live = unsorted < bs[t]
        rows[t, live] = offsets[t] + unsorted[live]
    pad = full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    src = cat([data, pad], 0)
    out = src.index_select(0, _int_tensor(rows.reshape(-1)).to(src.device)).reshape(T_out, N, *data.shape[1:])
    lengths = (bs[None, :] > unsorted[:, None]).sum(axis=1).astype(np.int64)
    return (out.transpose(0, 1) if batch_first else out), _int_tensor(lengths)


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack variable-length sequences (L_i, *) into one padded batch.

    Shape: returns (max L, N, *) ((N, max L, *) when batch_first).
    Defaults: batch_first=False, padding_value=0.0, padding_side='right'.
    """
    from ... import cat, full

    op = "pad_sequence"
    if padding_side not in ("left", "right"):
        raise ValueError(f"[{op}] expected padding_side 'left' or 'right', got {padding_side!r}")
    if len(sequences) == 0:
        raise ValueError(f"[{op}] expected a non-empty list of sequences")
    tail = tuple(sequences[0].shape[1:])
    for s in sequences:
        if not isinstance(s, Tensor) or s.ndim < 1 or tuple(s.shape[1:]) != tail:
            raise ValueError(f"[{op}] expected tensors of shape (L, {', '.join(map(str, tail))}) "
                             f"(one trailing shape), got {getattr(s, 'shape', type(s).__name__)}")
    lens = [int(s.shape[0]) for s in sequences]
    L, N = max(lens), len(sequences)
    first = sequences[0]
    pad = full((1, *tail), padding_value, dtype=first.dtype, device=first.device)
    src = cat([*sequences, pad], 0)
    R = src.shape[0] - 1
    rows = np.full((L, N), R, dtype=np.int64)
    start = 0
    for j, n in enumerate(lens):
        t0 = 0 if padding_side == "right" else L - n
        rows[t0:t0 + n, j] = np.arange(start, start + n)
        start += n
    out: Tensor = src.index_select(0, _int_tensor(rows.reshape(-1)).to(src.device)).reshape(L, N, *tail)
    return out.transpose(0, 1) if batch_first else out


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of variable-length sequences (L_i, *) (pad_sequence, then pack_padded_sequence).

    Shape: sequences (L_i, *); returns a PackedSequence with data (sum L_i, *).
    Defaults: enforce_sorted=True.
    """
    lengths = [int(s.shape[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths: Any, batch_first: bool = False) -> list[Tensor]:
    """Split a padded batch back into its sequences.

    Shape: padded (T, N, *) ((N, T, *) when batch_first); returns N tensors (L_i, *).
    Defaults: batch_first=False.
    """
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    ln = _lengths("unpad_sequence", lengths, x.shape[0])
    return [x[j, :int(n)] for j, n in enumerate(ln)]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """Split a PackedSequence into its sequences, in the original order.

    Shape: returns N tensors (L_i, *).
    Defaults: none.
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
