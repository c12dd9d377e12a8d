"""Transport backends of ``nnfast.distributed``: MPI (mpi4py over NumPy buffers) and NCCL (CuPy).

A backend moves bytes only: every collective takes contiguous arrays and starts non-blocking,
returning a request the ``Work`` handle polls. Arithmetic beyond what the transport does in its
reduction (AVG's division, copies back into non-contiguous tensors) happens in ``__init__`` with
nnfast's kernels.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

# The ReduceOp names the transports reduce natively (AVG is SUM then a scale kernel).
_MPI_OPS = {"SUM": "SUM", "AVG": "SUM", "PRODUCT": "PROD", "MIN": "MIN", "MAX": "MAX"}


def mpi() -> Any:
    """mpi4py's MPI module (importing it initializes MPI); ImportError with the install hint."""
    try:
        from mpi4py import MPI
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("[init_process_group] expected mpi4py for backend 'mpi'; install it with "
                          "`pip install \"nnfast[distributed]\"` (mpich + mpi4py) or your site's MPI + mpi4py") \
            from e
    return MPI


class MPIBackend:
    """Collectives over an mpi4py communicator; requests are MPI requests."""

    name = "mpi"

    def __init__(self, comm: Any) -> None:
        self.MPI = mpi()
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()

    def _op(self, op: str) -> Any:
        return getattr(self.MPI, _MPI_OPS[op])

    # Each method starts the collective and returns (request, test) where test() -> bool polls it.
    def allreduce(self, buf: np.ndarray, op: str) -> Any:
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._op(op))

    def broadcast(self, buf: np.ndarray, src: int) -> Any:
        return self.comm.Ibcast(buf, root=src)

    def allgather(self, out: np.ndarray, inp: np.ndarray) -> Any:
        return self.comm.Iallgather(inp, out)

    def reduce_scatter(self, out: np.ndarray, inp: np.ndarray, op: str) -> Any:
        return self.comm.Ireduce_scatter_block(inp, out, op=self._op(op))

    def reduce(self, buf: np.ndarray, dst: int, op: str) -> Any:
        if self.rank == dst:
            return self.comm.Ireduce(self.MPI.IN_PLACE, buf, op=self._op(op), root=dst)
        return self.comm.Ireduce(buf, None, op=self._op(op), root=dst)

    def gather(self, out: Optional[np.ndarray], inp: np.ndarray, dst: int) -> Any:
        return self.comm.Igather(inp, out if self.rank == dst else None, root=dst)

    def scatter(self, out: np.ndarray, inp: Optional[np.ndarray], src: int) -> Any:
        return self.comm.Iscatter(inp if self.rank == src else None, out, root=src)

    def barrier(self) -> Any:
        return self.comm.Ibarrier()

    @staticmethod
    def test(req: Any) -> bool:
        return bool(req.Test())

    def abort(self, code: int = 1) -> None:
        abort_job(code)


class NCCLBackend:
    """Collectives on cuda tensors through CuPy's NCCL bindings; MPI carries the unique id only.

    UNVERIFIED: no GPU was available where this was written. Each collective is enqueued on the
    current CuPy stream and its request is a CUDA event recorded after it.
    """

    name = "nccl"
    _OPS = {"SUM": 0, "AVG": 0, "PRODUCT": 1, "MAX": 2, "MIN": 3}  # ncclRedOp_t

    def __init__(self, comm: Any) -> None:  # pragma: no cover - needs a GPU
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl, self.mpi_comm = cupy, nccl, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = comm.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    def _dtype(self, a: Any) -> int:  # pragma: no cover - needs a GPU
        n = self.nccl
        table = {np.dtype(np.float32): n.NCCL_FLOAT32, np.dtype(np.float64): n.NCCL_FLOAT64,
                 np.dtype(np.float16): n.NCCL_FLOAT16, np.dtype(np.int32): n.NCCL_INT32,
                 np.dtype(np.int64): n.NCCL_INT64, np.dtype(np.uint8): n.NCCL_UINT8,
                 np.dtype(np.int8): n.NCCL_INT8}
        try:
            return int(table[np.dtype(a.dtype)])
        except KeyError:
            raise TypeError(f"[nccl] expected a float16/32/64 or int8/32/64 tensor, got {a.dtype}") from None

    def _done(self) -> Any:  # pragma: no cover - needs a GPU
        ev = self.cupy.cuda.Event(block=False, disable_timing=True)
        ev.record()
        return ev

    def _stream(self) -> int:  # pragma: no cover - needs a GPU
        return int(self.cupy.cuda.get_current_stream().ptr)

    def allreduce(self, buf: Any, op: str) -> Any:  # pragma: no cover - needs a GPU
        self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, self._dtype(buf), self._OPS[op], self._stream())
        return self._done()

    def broadcast(self, buf: Any, src: int) -> Any:  # pragma: no cover - needs a GPU
        self.comm.broadcast(buf.data.ptr, buf.data.ptr, buf.size, self._dtype(buf), src, self._stream())
        return self._done()

    def allgather(self, out: Any, inp: Any) -> Any:  # pragma: no cover - needs a GPU
        self.comm.allGather(inp.data.ptr, out.data.ptr, inp.size, self._dtype(inp), self._stream())
        return self._done()

    def reduce_scatter(self, out: Any, inp: Any, op: str) -> Any:  # pragma: no cover - needs a GPU
        self.comm.reduceScatter(inp.data.ptr, out.data.ptr, out.size, self._dtype(inp), self._OPS[op],
                                self._stream())
        return self._done()

    def reduce(self, buf: Any, dst: int, op: str) -> Any:  # pragma: no cover - needs a GPU
        self.comm.reduce(buf.data.ptr, buf.data.ptr, buf.size, self._dtype(buf), self._OPS[op], dst,
                         self._stream())
        return self._done()

    def gather(self, out: Any, inp: Any, dst: int) -> Any:  # pragma: no cover - needs a GPU
        raise NotImplementedError("[gather] has no kernel on cuda with backend 'nccl'; use all_gather")

    def scatter(self, out: Any, inp: Any, src: int) -> Any:  # pragma: no cover - needs a GPU
        raise NotImplementedError("[scatter] has no kernel on cuda with backend 'nccl'; use broadcast")

    def barrier(self) -> Any:  # pragma: no cover - needs a GPU
        return self.mpi_comm.Ibarrier()

    @staticmethod
    def test(req: Any) -> bool:  # pragma: no cover - needs a GPU
        if hasattr(req, "Test"):
            return bool(req.Test())
        return bool(req.done)

    def abort(self, code: int = 1) -> None:  # pragma: no cover - needs a GPU
        abort_job(code)


def abort_job(code: int) -> None:
    """MPI_Abort the whole job once this rank's last words have left it. The launcher's proxy reads
    each rank's pipes; an immediate MPI_Abort kills it before it forwards what was just written,
    and the job ends with a non-zero status and no message (seen under mpiexec on a loaded CI
    machine). Flush both streams, give the proxy a second, then abort."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or broken stream must not stop the abort
            pass
    time.sleep(1.0)
    from mpi4py import MPI

    MPI.COMM_WORLD.Abort(code)
    os._exit(code)  # pragma: no cover - should MPI_Abort return


def poll(test: Callable[[], bool], deadline: float, what: str) -> None:
    """Wait for ``test()`` to turn true. MPI progresses a non-blocking collective only inside its
    calls, so this polls without sleeping (a sleep between polls stalls every step of the
    collective's schedule); past the first polls it yields the core between them, so oversubscribed
    ranks still share it. Past ``deadline`` it raises the timeout error."""
    spins = 0
    while not test():
        spins += 1
        if spins < 1000:
            continue
        os.sched_yield()
        if spins % 1024 == 0 and time.monotonic() > deadline:
            raise RuntimeError(f"{what} timed out: not every rank reached this collective within the "
                               "process group's timeout (a rank died, hangs, or runs a different collective)")
