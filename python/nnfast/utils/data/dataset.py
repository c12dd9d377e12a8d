"""Datasets: map-style (``__getitem__`` + ``__len__``) and iterable (``__iter__``)."""
from __future__ import annotations

import bisect
import itertools
import math
import warnings
from typing import Any, Generic, Iterable, Iterator, Sequence, TypeVar, Union

import numpy as np

from ...tensor import Tensor
from .sampler import numpy_generator

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset",
           "StackDataset", "random_split"]


T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """Map-style dataset: subclasses define ``__getitem__(index)`` and usually ``__len__``.

    ``a + b`` is ``ConcatDataset([a, b])``. Generic like PyTorch's (``Dataset[int]``).
    """

    def __getitem__(self, index: Any) -> T_co:
        raise NotImplementedError(f"[Dataset] expected {type(self).__name__} to define __getitem__")

    def __add__(self, other: "Dataset[Any]") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A stream of samples: subclasses define ``__iter__``. ``a + b`` chains two streams.

    A DataLoader reads it in the calling thread (even with ``num_workers > 0``), so
    ``get_worker_info()`` is None inside ``__iter__`` and each sample is read once.
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"[IterableDataset] expected {type(self).__name__} to define __iter__")

    def __add__(self, other: Any) -> "ChainDataset":  # type: ignore[override]
        return ChainDataset([self, other])


def _as_tensor(x: Any, i: int) -> Tensor:
    t = x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))  # arrays are kept, not copied
    if t.ndim == 0:
        raise ValueError(f"[TensorDataset] expected tensors with a first dimension, argument {i} is 0-d")
    return t


class TensorDataset(Dataset[Any]):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``; all tensors share their first dimension.

    NumPy arrays are accepted too (kept as Tensors sharing their memory).
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("[TensorDataset] expected at least one tensor")
        self.tensors = tuple(_as_tensor(t, i) for i, t in enumerate(tensors))
        n = self.tensors[0].shape[0]
        for i, t in enumerate(self.tensors):
            if t.shape[0] != n:
                raise ValueError(f"[TensorDataset] expected tensors of one length (size of dim 0), got {n} "
                                 f"and {t.shape[0]} (argument {i})")

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            # the common case, without the autograd indexing op (`...` keeps a 0-d row an array on its device)
            return tuple(t[index] if t.requires_grad else Tensor._wrap(t._data[index, ...]) for t in self.tensors)
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])


class Subset(Dataset[Any]):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices
        self._cache: tuple[Any, Any] = (None, None)

    def _index_array(self) -> np.ndarray:
        """``indices`` as an int64 array (cached while ``indices`` is the same object)."""
        src, arr = self._cache
        if src is not self.indices or len(arr) != len(self.indices):
            arr = np.asarray(self.indices, dtype=np.int64).reshape(-1)
            self._cache = (self.indices, arr)
        return arr  # type: ignore[no-any-return]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        if type(self).__getitem__ is not Subset.__getitem__:  # a subclass's own __getitem__ decides
            return [self[i] for i in indices]
        inner = [self.indices[i] for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return list(getitems(inner))
        return [self.dataset[i] for i in inner]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[Any]):
    """Several map-style datasets one after another."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("[ConcatDataset] expected at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("[ConcatDataset] expected map-style datasets, got an IterableDataset "
                                "(use ChainDataset)")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"[ConcatDataset] expected an index in [{-n}, {n}), got {idx}")
        if idx < 0:
            idx += n
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        return self.datasets[k][idx - (self.cumulative_sizes[k - 1] if k else 0)]


class ChainDataset(IterableDataset[Any]):
    """Several iterable datasets read one after another."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = datasets

    def _checked(self) -> Iterator[Any]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"[ChainDataset] expected IterableDatasets, got {type(d).__name__}")
            yield d

    def __iter__(self) -> Iterator[Any]:
        for d in self._checked():
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self._checked())


class StackDataset(Dataset[Any]):
    """Sample ``i`` of several equally long datasets together: a tuple (``StackDataset(a, b)``)
    or a dict (``StackDataset(x=a, y=b)``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("[StackDataset] expected datasets either as positional or as keyword arguments, "
                             "got both")
        if not args and not kwargs:
            raise ValueError("[StackDataset] expected at least one dataset")
        self.datasets: Union[tuple[Any, ...], dict[str, Any]] = args if args else kwargs
        parts = list(args) if args else list(kwargs.values())
        self._length = len(parts[0])
        if any(len(d) != self._length for d in parts):
            raise ValueError(f"[StackDataset] expected datasets of one length, got {[len(d) for d in parts]}")

    def __getitem__(self, index: Any) -> Any:
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


def _fraction_lengths(n: int, fractions: Sequence[float]) -> list[int]:
    """floor(n * f) each, then the remainder handed out one by one from the first split."""
    for i, f in enumerate(fractions):
        if not 0 <= f <= 1:
            raise ValueError(f"[random_split] expected fractions between 0 and 1, got {f} at index {i}")
    counts = [math.floor(n * f) for f in fractions]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    for i, c in enumerate(counts):
        if c == 0:
            warnings.warn(f"[random_split] split {i} is empty", stacklevel=3)
    return counts


def random_split(dataset: Any, lengths: Sequence[Union[int, float]], generator: Any = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths, or of the
    given fractions when they sum to 1 (PyTorch's rounding: floor, then +1 round-robin)."""
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _fraction_lengths(n, lengths)
    if sum(lengths) != n or any(int(x) != x or x < 0 for x in lengths):
        raise ValueError(f"[random_split] expected non-negative integer lengths summing to the dataset size {n} "
                         f"(or fractions summing to 1), got {list(lengths)}")
    perm = numpy_generator(generator, "random_split").permutation(n).tolist()
    out, start = [], 0
    for c in lengths:
        out.append(Subset(dataset, perm[start: start + int(c)]))
        start += int(c)
    return out
