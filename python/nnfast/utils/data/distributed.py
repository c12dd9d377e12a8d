"""DistributedSampler: each rank reads its own, equally long share of a dataset.

PyTorch's index semantics: the epoch's order is ``range(len)`` or, with ``shuffle``, a permutation
drawn from a generator seeded with ``seed + epoch`` (nnfast's generator, so the same seed gives the
same order on every rank and resumes exactly); it is padded by repeating its own start (or cut,
with ``drop_last``) to ``num_replicas * num_samples`` indices, and rank r takes every
``num_replicas``-th index starting at r.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sized

from ..._random import Generator
from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """The indices of ``dataset`` this rank reads: ``num_samples`` = ceil(len / num_replicas) (or
    floor with ``drop_last``); call ``set_epoch(e)`` before each epoch to reshuffle.

    Defaults: num_replicas=None (the world size), rank=None (this rank), shuffle=True, seed=0,
    drop_last=False.
    """

    def __init__(self, dataset: Sized, num_replicas: Optional[int] = None, rank: Optional[int] = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        who = "DistributedSampler"
        if num_replicas is None or rank is None:
            from ... import distributed as dist

            if not dist.is_initialized():
                raise RuntimeError(f"[{who}] expected num_replicas and rank, or an initialized process group "
                                   "(nnfast.distributed.init_process_group)")
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        num_replicas, rank = int(num_replicas), int(rank)
        if num_replicas < 1:
            raise ValueError(f"[{who}] expected num_replicas >= 1, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"[{who}] Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last and n % num_replicas != 0:
            # the tail that cannot be split evenly is dropped
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = Generator().manual_seed(self.seed + self.epoch)
            indices: list[int] = g.permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad <= len(indices):
                indices += indices[:pad]
            elif indices:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[:self.total_size]
        assert len(indices) == self.total_size
        mine = indices[self.rank:self.total_size:self.num_replicas]
        assert len(mine) == self.num_samples
        return iter(mine)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` in the shuffle seed (``seed + epoch``): a new order each epoch, the same on every rank."""
        self.epoch = int(epoch)
