"""``nnfast.nn.parallel``: DistributedDataParallel (data parallelism over ``nnfast.distributed``)."""
from .distributed import DistributedDataParallel as DistributedDataParallel

__all__ = ["DistributedDataParallel"]
