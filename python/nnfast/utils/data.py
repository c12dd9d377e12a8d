"""Datasets and batch loading with PyTorch's names (``nnfast.utils.data``)."""
from __future__ import annotations

import math
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from .. import _random
from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "random_split"]


class Dataset:
    """Map-style dataset: ``__getitem__(i)`` and ``__len__``."""

    def __getitem__(self, index: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


def _raw(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else np.asarray(x)


class TensorDataset(Dataset):
    """Rows of equally long arrays/tensors, indexed together."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("[TensorDataset] expected at least one array")
        self.tensors = tuple(_raw(t) for t in tensors)
        n = len(self.tensors[0])
        for i, t in enumerate(self.tensors):
            if len(t) != n:
                raise ValueError(f"[TensorDataset] expected arrays of one length, got {n} and {len(t)} (argument {i})")

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class Subset(Dataset):
    def __init__(self, dataset: Dataset, indices: Union[Sequence[int], np.ndarray]) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[Union[int, float]],
                 generator: Optional[np.random.Generator] = None) -> list[Subset]:
    """Split into non-overlapping subsets of the given lengths (or fractions summing to 1)."""
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueError(f"[random_split] expected lengths summing to the dataset size {n}, got {list(lengths)}")
    rng = generator if generator is not None else _random.default_generator()
    perm = rng.permutation(n)
    out, start = [], 0
    for c in counts:
        out.append(Subset(dataset, perm[start : start + c]))
        start += c
    return out


def _collate(items: list[Any]) -> Any:
    first = items[0]
    if isinstance(first, tuple):
        return tuple(_collate([it[i] for it in items]) for i in range(len(first)))
    return Tensor(np.stack([_raw(i) for i in items]))


class DataLoader:
    """Iterates over a dataset in batches of Tensors.

    ``shuffle`` draws a new order every epoch from ``generator`` (a NumPy
    Generator; default: nnfast's global one, seeded by ``nnfast.manual_seed``).
    ``device`` (nnfast addition) moves each batch there, e.g. ``"cuda"``.
    TensorDatasets are gathered with one vectorised take per array.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 generator: Optional[np.random.Generator] = None, collate_fn: Any = None,
                 device: Any = None, **_ignored: Any) -> None:
        if isinstance(dataset, (np.ndarray, Tensor)):
            dataset = TensorDataset(dataset)
        if int(batch_size) < 1:
            raise ValueError(f"[DataLoader] expected batch_size >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.collate_fn = collate_fn
        self.device = device

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            rng = self.generator if self.generator is not None else _random.default_generator()
            return rng.permutation(n)
        return np.arange(n)

    def _gather(self, idx: np.ndarray) -> Any:
        ds = self.dataset
        base, sel = ds, idx
        while isinstance(base, Subset):
            sel = base.indices[sel]
            base = base.dataset
        if isinstance(base, TensorDataset) and self.collate_fn is None:
            batch: Any = tuple(Tensor(np.take(t, sel, axis=0)) for t in base.tensors)
        else:
            items = [ds[int(i)] for i in idx]
            batch = (self.collate_fn or _collate)(items)
        if self.device is not None:
            batch = tuple(b.to(self.device) for b in batch) if isinstance(batch, tuple) else batch.to(self.device)
        return batch

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            yield self._gather(order[start : start + self.batch_size])
