"""``nnfast.utils.data``: PyTorch's datasets, samplers, collation and ``DataLoader``.

- ``dataset``: Dataset, IterableDataset, TensorDataset, Subset, ConcatDataset, ChainDataset,
  StackDataset, random_split
- ``sampler``: Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler,
  WeightedRandomSampler, BatchSampler (random ones draw from ``generator`` or nnfast's
  global generator, see ``nnfast.manual_seed``)
- ``distributed``: DistributedSampler (each rank's share of the indices)
- ``_collate``: default_collate, default_convert, collate, default_collate_fn_map
- ``dataloader``: DataLoader (worker *threads*, batches in order), get_worker_info, WorkerInfo
"""
from ._collate import collate, default_collate, default_collate_fn_map, default_convert
from .distributed import DistributedSampler
from .dataloader import DataLoader, WorkerInfo, get_worker_info
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset, TensorDataset,
                      random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "StackDataset",
    "random_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
    "WeightedRandomSampler", "BatchSampler", "DistributedSampler", "DataLoader", "WorkerInfo", "get_worker_info",
    "default_collate", "default_convert", "collate", "default_collate_fn_map",
]
