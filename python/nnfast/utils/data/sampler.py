"""Samplers: which indices a DataLoader reads, in which order, grouped how.

Random samplers draw from ``generator`` (a NumPy ``Generator``, or an object carrying one,
see ``numpy_generator``); without one they draw from nnfast's global generator, which
``nnfast.manual_seed`` seeds and ``nnfast.get_rng_state``/``set_rng_state`` save and
restore -- so the same seed gives the same order, and a resumed run continues it.
"""
from __future__ import annotations

import itertools
from typing import Any, Generic, Iterable, Iterator, Optional, Sequence, Sized, TypeVar

import numpy as np

from ... import _random
from ...tensor import Tensor

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler", "numpy_generator"]


def numpy_generator(generator: Any, who: str) -> np.random.Generator:
    """The NumPy Generator to draw from: nnfast's global one for None, else the one ``generator`` holds."""
    if generator is None:
        return _random.default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    for attr in ("_rng", "rng", "_generator", "generator"):  # an nnfast.Generator wraps a NumPy one
        inner = getattr(generator, attr, None)
        if isinstance(inner, np.random.Generator):
            return inner
    raise TypeError(f"[{who}] expected generator to be an nnfast.Generator or numpy.random.Generator, "
                    f"got {type(generator).__name__}")


def _positive_int(value: Any, name: str, who: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value <= 0:
        raise ValueError(f"[{who}] expected {name} to be a positive integer, got {name}={value!r}")
    return int(value)


def _bool(value: Any, name: str, who: str, exc: type = ValueError) -> bool:
    if not isinstance(value, bool):
        raise exc(f"[{who}] expected {name} to be a bool, got {name}={value!r}")
    return value


T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    """Base class: ``__iter__`` yields indices (or lists of indices); ``__len__`` when known."""

    def __init__(self, data_source: Optional[Sized] = None) -> None:
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A random order of the indices; or, with ``replacement``, ``num_samples`` independent draws.

    Without replacement and ``num_samples`` > len, it yields whole permutations and then
    the start of one more.
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: Optional[int] = None,
                 generator: Any = None) -> None:
        self.data_source = data_source
        self.replacement = _bool(replacement, "replacement", "RandomSampler", TypeError)
        self._num_samples = num_samples
        self.generator = generator
        _positive_int(self.num_samples, "num_samples", "RandomSampler")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, k = len(self.data_source), self.num_samples
        rng = numpy_generator(self.generator, "RandomSampler")
        if self.replacement:
            for start in range(0, k, 32):  # drawn in chunks, so a partly read epoch draws little
                yield from rng.integers(0, n, min(32, k - start)).tolist()
            return
        for _ in range(k // n):
            yield from rng.permutation(n).tolist()
        if k % n:
            yield from rng.permutation(n)[: k % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order."""

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        rng = numpy_generator(self.generator, "SubsetRandomSampler")
        for i in rng.permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices of ``weights`` drawn with probability proportional to the weight."""

    def __init__(self, weights: Any, num_samples: int, replacement: bool = True, generator: Any = None) -> None:
        self.num_samples = _positive_int(num_samples, "num_samples", "WeightedRandomSampler")
        self.replacement = _bool(replacement, "replacement", "WeightedRandomSampler")
        w = np.asarray(weights.detach().cpu().numpy() if isinstance(weights, Tensor) else weights, np.float64)
        if w.ndim != 1:
            raise ValueError(f"[WeightedRandomSampler] expected a 1-D sequence of weights, got shape {w.shape}")
        if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("[WeightedRandomSampler] expected finite, non-negative weights with a positive sum")
        if not replacement and np.count_nonzero(w) < self.num_samples:
            raise ValueError(f"[WeightedRandomSampler] expected num_samples <= the {np.count_nonzero(w)} non-zero "
                             f"weights when drawing without replacement, got {self.num_samples}")
        self.weights = Tensor._wrap(w)
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        rng = numpy_generator(self.generator, "WeightedRandomSampler")
        w = self.weights._data
        yield from rng.choice(len(w), self.num_samples, replace=self.replacement, p=w / w.sum()).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter
    unless ``drop_last``)."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        self.sampler = sampler
        self.batch_size = _positive_int(batch_size, "batch_size", "BatchSampler")
        self.drop_last = _bool(drop_last, "drop_last", "BatchSampler")

    def __iter__(self) -> Iterator[list[int]]:
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
