"""Run under ``mpiexec -n 2``: a failing rank must take the whole job down promptly.

``raise``: rank 1 raises while rank 0 waits in an all_reduce (default 30-minute timeout): the
exception hook prints rank 1's error and MPI_Abort ends every rank. ``timeout``: rank 1 sleeps
instead of joining; rank 0's all_reduce gives up after the group's 1-second timeout with
``[all_reduce] ... timed out`` and aborts the job. Either way mpiexec exits non-zero long before
rank 1 would have finished (60 s)."""
from __future__ import annotations

import datetime
import sys
import time

import nnfast
import nnfast.distributed as dist


def main(mode: str) -> None:
    timeout = datetime.timedelta(seconds=1) if mode == "timeout" else None
    dist.init_process_group("mpi", timeout=timeout)
    t = nnfast.ones(4)
    dist.all_reduce(t)  # everyone is up
    if dist.get_rank() == 1:
        if mode == "raise":
            raise ValueError("deliberate failure on rank 1")
        time.sleep(60)
    else:
        dist.all_reduce(t)  # rank 1 never joins
    print("UNREACHABLE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
