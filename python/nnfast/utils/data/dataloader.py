"""``DataLoader``: batches of a dataset, with PyTorch's options and checks.

Workers are threads, not processes: with ``num_workers > 0`` a pool of that many threads
fetches and collates map-style batches ahead of the consumer (up to
``num_workers * prefetch_factor`` batches), and the batches come back in sampler order,
so they equal the ``num_workers=0`` batches exactly (when the dataset itself is
deterministic). The sampler -- hence every shuffle draw -- runs in the calling thread.
Inside a worker thread ``get_worker_info()`` describes it and ``worker_init_fn(id)`` has
run once for it; in the calling thread it is None. Iterable datasets are read in the
calling thread whatever ``num_workers`` is (each sample once). ``pin_memory``,
``multiprocessing_context``, ``pin_memory_device`` and ``in_order`` are accepted and have
no effect; ``persistent_workers`` keeps nothing (threads are cheap to start per epoch).

``device`` is an nnfast addition: every tensor of each batch is moved there.
"""
from __future__ import annotations

import collections
import concurrent.futures
import itertools
import threading
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ... import _random
from ..._dispatch import is_cupy, xp_of
from ...tensor import Tensor
from ._collate import default_collate, default_convert
from .dataset import IterableDataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "WorkerInfo", "get_worker_info"]


class WorkerInfo:
    """What a worker thread knows about itself: ``id``, ``num_workers``, ``seed``, ``dataset``."""

    def __init__(self, id: int, num_workers: int, seed: int, dataset: Any) -> None:  # noqa: A002
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self) -> str:
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_local = threading.local()


def get_worker_info() -> Optional[WorkerInfo]:
    """This worker thread's WorkerInfo; None in the main process (any non-worker thread)."""
    return getattr(_local, "info", None)


class _InfiniteSampler(Sampler[None]):
    """Stands in for the sampler of an iterable dataset (which has no indices)."""

    def __iter__(self) -> Iterator[None]:
        return itertools.repeat(None)


def _expect(ok: Any, msg: str) -> None:
    if not ok:
        raise ValueError("[DataLoader] expected " + msg)


def _to_device(batch: Any, device: Any) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_to_device(b, device) for b in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return type(batch)((k, _to_device(v, device)) for k, v in batch.items())
    return batch


def _take(t: Tensor, idx: np.ndarray) -> Tensor:
    a = t._data
    return Tensor._wrap(a[xp_of(a).asarray(idx) if is_cupy(a) else idx])


def _check_workers(num_workers: Any, timeout: Any, prefetch_factor: Any, persistent: bool) -> Optional[int]:
    """Checks the worker options; returns prefetch_factor with its default (2 with workers)."""
    _expect(isinstance(num_workers, int) and num_workers >= 0,
            f"num_workers >= 0 (0 reads in the calling thread), got {num_workers!r}")
    _expect(timeout >= 0, f"timeout >= 0, got {timeout!r}")
    if num_workers == 0:
        _expect(prefetch_factor is None, "prefetch_factor=None with num_workers=0 (it only applies to workers)")
        _expect(not persistent, "num_workers > 0 with persistent_workers=True")
        return None
    prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
    _expect(isinstance(prefetch_factor, int) and prefetch_factor > 0,
            f"prefetch_factor to be a positive int, got {prefetch_factor!r}")
    return int(prefetch_factor)


def _samplers(dataset: Any, batch_size: Any, shuffle: Any, sampler: Any, batch_sampler: Any, drop_last: Any,
              generator: Any) -> tuple[Any, Any, Optional[int]]:
    """(sampler, batch_sampler, batch_size) after PyTorch's checks and defaults."""
    _expect(batch_size is None or (isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
                                   and batch_size > 0),
            f"batch_size to be a positive int or None, got {batch_size!r}")
    _expect(isinstance(drop_last, bool), f"drop_last to be a bool, got {drop_last!r}")
    iterable = isinstance(dataset, IterableDataset)
    if iterable:
        _expect(not shuffle, f"shuffle unset with an IterableDataset, got shuffle={shuffle}")
        _expect(sampler is None, "no sampler with an IterableDataset")
        _expect(batch_sampler is None, "no batch_sampler with an IterableDataset")
    _expect(not (sampler is not None and shuffle), "either a sampler or shuffle=True, not both")
    if batch_sampler is not None:
        _expect(batch_size == 1 and not shuffle and sampler is None and not drop_last,
                "batch_sampler alone, without batch_size, shuffle, sampler or drop_last")
        batch_size = None
    elif batch_size is None:
        _expect(not drop_last, "drop_last=False with batch_size=None (batching is off)")
    if sampler is None:
        sampler = (_InfiniteSampler() if iterable else
                   RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset))
    if batch_size is not None and batch_sampler is None and not iterable:
        batch_sampler = BatchSampler(sampler, int(batch_size), drop_last)
    return sampler, batch_sampler, None if batch_size is None else int(batch_size)


_FROZEN = ("dataset", "batch_size", "batch_sampler", "sampler", "drop_last", "persistent_workers")


class DataLoader:
    """Iterates over ``dataset`` in batches (see the module docstring for workers and ``device``).

    Map-style datasets are read through ``sampler`` (sequential, or ``RandomSampler`` when
    ``shuffle``; a fresh order each epoch drawn from ``generator`` or nnfast's global
    generator) grouped by ``batch_sampler``; ``batch_size=None`` turns batching off (each
    sample goes through ``default_convert``). Iterable datasets are batched in stream order.
    """

    def __init__(self, dataset: Any, batch_size: Optional[int] = 1, shuffle: Optional[bool] = None,
                 sampler: Any = None, batch_sampler: Any = None, num_workers: int = 0,
                 collate_fn: Optional[Callable[[Any], Any]] = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Optional[Callable[[int], None]] = None,
                 multiprocessing_context: Any = None, generator: Any = None, *,
                 prefetch_factor: Optional[int] = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True, device: Any = None) -> None:
        prefetch_factor = _check_workers(num_workers, timeout, prefetch_factor, persistent_workers)
        sampler, batch_sampler, batch_size = _samplers(dataset, batch_size, shuffle, sampler, batch_sampler,
                                                       drop_last, generator)
        iterable = isinstance(dataset, IterableDataset)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self.device = device
        auto = batch_sampler is not None or (iterable and batch_size is not None)
        self.collate_fn = collate_fn if collate_fn is not None else (default_collate if auto else default_convert)
        self._epochs = 0
        self._initialized = True

    def __class_getitem__(cls, item: Any) -> type["DataLoader"]:
        return cls  # ``DataLoader[T]`` in annotations, as with PyTorch's generic class

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FROZEN and self.__dict__.get("_initialized"):
            raise ValueError(f"[DataLoader] expected {name} to stay as given; it cannot be set after the "
                             "DataLoader is created")
        object.__setattr__(self, name, value)

    @property
    def _iterable(self) -> bool:
        return isinstance(self.dataset, IterableDataset)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self) -> "_DataLoaderIter":
        self._epochs += 1
        if self._iterable:
            batches = self._iterable_batches()
        elif self.num_workers == 0:
            batches = map(self._fetch, self._indices())
        else:
            batches = self._threaded(self._indices())
        return _DataLoaderIter(self, batches)

    # ------------------------------------------------------------ map-style
    def _indices(self) -> Iterator[Any]:
        return iter(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def _fetch(self, index: Any) -> Any:
        if self.batch_sampler is None:
            batch = self.collate_fn(self.dataset[index])
        else:
            batch = self._fast_batch(index)
            if batch is None:
                getitems = getattr(self.dataset, "__getitems__", None)
                items = getitems(list(index)) if callable(getitems) else [self.dataset[i] for i in index]
                batch = self.collate_fn(items)
        return batch if self.device is None else _to_device(batch, self.device)

    def _fast_batch(self, index: Any) -> Any:
        """One gather per tensor for (Subsets of) a TensorDataset under default_collate; else None.

        Gives exactly what stacking the samples would: the same rows, dtypes and device.
        """
        if self.collate_fn is not default_collate:
            return None
        chain, ds = [], self.dataset
        while type(ds) is Subset:
            chain.append(ds)
            ds = ds.dataset
        if type(ds) is not TensorDataset or any(t.requires_grad for t in ds.tensors) or not len(index):
            return None
        idx = np.asarray(index, dtype=np.int64)
        if idx.ndim != 1:
            return None
        for sub in chain:
            idx = sub._index_array()[idx]
        return [_take(t, idx) for t in ds.tensors]

    def _threaded(self, indices: Iterator[Any]) -> Iterator[Any]:
        ids = itertools.count()
        seed = (_random.initial_seed() * 1_000_003 + self._epochs) % 2**63  # no draw: order stays as with 0 workers
        pool = concurrent.futures.ThreadPoolExecutor(self.num_workers, thread_name_prefix="nnfast-DataLoader",
                                                     initializer=self._start_worker, initargs=(ids, seed))
        pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        depth = self.num_workers * int(self.prefetch_factor or 2)
        try:
            for index in indices:
                pending.append(pool.submit(self._worker_fetch, index))
                if len(pending) >= depth:
                    yield self._result(pending.popleft())
            while pending:
                yield self._result(pending.popleft())
        finally:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True)

    def _start_worker(self, ids: Iterator[int], seed: int) -> None:
        wid = next(ids)
        _local.info = WorkerInfo(wid, self.num_workers, seed + wid, self.dataset)
        try:
            if self.worker_init_fn is not None:
                self.worker_init_fn(wid)
        except BaseException as e:  # reported by this thread's first fetch (the pool would hide it)
            _local.error = e

    def _worker_fetch(self, index: Any) -> Any:
        err = getattr(_local, "error", None)
        if err is not None:
            raise err
        return self._fetch(index)

    def _result(self, fut: "concurrent.futures.Future[Any]") -> Any:
        try:
            return fut.result(timeout=self.timeout or None)
        except concurrent.futures.TimeoutError:
            raise RuntimeError(f"[DataLoader] expected a batch within timeout={self.timeout} seconds, "
                               "none came") from None

    # ------------------------------------------------------------ iterable
    def _iterable_batches(self) -> Iterator[Any]:
        it = iter(self.dataset)
        if self.batch_size is None:
            for sample in it:
                yield self._finish(sample)
            return
        while True:
            items = list(itertools.islice(it, self.batch_size))
            if not items or (self.drop_last and len(items) < self.batch_size):
                return
            yield self._finish(items)

    def _finish(self, data: Any) -> Any:
        batch = self.collate_fn(data)
        return batch if self.device is None else _to_device(batch, self.device)


class _DataLoaderIter:
    """The iterator of one epoch; ``len()`` is the loader's."""

    def __init__(self, loader: DataLoader, batches: Iterator[Any]) -> None:
        self._loader = loader
        self._batches = iter(batches)

    def __iter__(self) -> "_DataLoaderIter":
        return self

    def __next__(self) -> Any:
        return next(self._batches)

    def __len__(self) -> int:
        return len(self._loader)
