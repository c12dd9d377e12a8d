"""``nnfast.distributed``: PyTorch's ``torch.distributed`` API over MPI (mpi4py) and NCCL (CuPy).

Launch with ``mpiexec -n 4 python train.py`` (or ``srun``); ``init_process_group()`` takes rank and
world size from MPI. Every collective starts non-blocking; ``async_op=True`` returns the ``Work``
handle, otherwise it is waited for. Waits poll with the process group's ``timeout`` and raise
``RuntimeError("[op] timed out ...")`` past it. Once initialized, an uncaught exception on any rank
prints that rank's traceback and aborts the whole job (``MPI_Abort``), so a failing rank never
leaves the others hanging in a collective.

Plain collectives first check, with one tiny allreduce of (numel, dtype, shape hash), that every
rank passes a tensor of the same shape and dtype, and raise ``[op] expected ...`` otherwise (a few
microseconds per call on one machine; ``DistributedDataParallel`` checks its bucket layout once at
construction and skips it). Set ``NNFAST_DISTRIBUTED_CHECK=0`` to skip the check.
"""
from __future__ import annotations

import datetime
import os
import sys
import time
import traceback
import zlib
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..tensor import Tensor
from . import _backend

__all__ = ["ReduceOp", "Work", "ProcessGroup", "GroupMember", "init_process_group", "destroy_process_group",
           "is_available", "is_initialized", "is_mpi_available", "is_nccl_available", "get_rank",
           "get_world_size", "get_backend", "new_group", "barrier", "all_reduce", "broadcast", "all_gather",
           "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "reduce", "gather", "scatter",
           "default_pg_timeout"]

default_pg_timeout = datetime.timedelta(minutes=30)


class ReduceOp:
    """Reduction of ``all_reduce`` / ``reduce`` / ``reduce_scatter``: ``ReduceOp.SUM``, ``AVG``,
    ``PRODUCT``, ``MIN``, ``MAX`` (PyTorch's names)."""

    SUM: "ReduceOp"
    AVG: "ReduceOp"
    PRODUCT: "ReduceOp"
    MIN: "ReduceOp"
    MAX: "ReduceOp"

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<ReduceOp.{self.name}>"


ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT = ReduceOp("SUM"), ReduceOp("AVG"), ReduceOp("PRODUCT")
ReduceOp.MIN, ReduceOp.MAX = ReduceOp("MIN"), ReduceOp("MAX")


class ProcessGroup:
    """A set of ranks with its own communicator (``new_group``); the default group is every rank."""

    def __init__(self, backend: Any, ranks: Sequence[int], timeout: datetime.timedelta) -> None:
        self.backend = backend
        self.ranks = list(ranks)
        self.timeout = timeout

    def rank(self) -> int:
        return int(self.backend.rank)

    def size(self) -> int:
        return int(self.backend.size)

    def __repr__(self) -> str:
        return f"<nnfast.distributed.ProcessGroup backend={self.backend.name} size={self.size()}>"


class GroupMember:
    """``GroupMember.WORLD``: the default group (None until ``init_process_group``);
    ``GroupMember.NON_GROUP_MEMBER``: what ``new_group`` returns on ranks outside it."""

    WORLD: Optional[ProcessGroup] = None
    NON_GROUP_MEMBER = object()


class Work:
    """The handle of a started collective: ``wait()`` blocks until it is done (with the group's
    timeout) and then runs its finishing step (AVG's scale, copy-back into non-contiguous tensors);
    ``is_completed()`` polls without blocking."""

    def __init__(self, op: str, group: ProcessGroup, req: Any, finish: Optional[Callable[[], None]] = None) -> None:
        self._op, self._group, self._req, self._finish = op, group, req, finish
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and self._group.backend.test(self._req):
            self._complete()
        return self._done

    def is_success(self) -> bool:
        return self.is_completed()

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            f, self._finish = self._finish, None
            f()

    def wait(self, timeout: Optional[datetime.timedelta] = None) -> bool:
        if self._done:
            return True
        t = self._group.timeout if timeout is None else timeout
        deadline = time.monotonic() + t.total_seconds()
        be = self._group.backend
        _backend.poll(lambda: be.test(self._req), deadline, f"[{self._op}]")
        self._complete()
        return True

    def result(self) -> list[Any]:
        self.wait()
        return []


# ---------------------------------------------------------------- process group
_STATE: dict[str, Any] = {"excepthook": None}


def is_available() -> bool:
    """True: the package is importable; ``is_mpi_available`` says whether mpi4py is."""
    return True


def is_mpi_available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available() -> bool:
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:
        return False
    return True


def is_initialized() -> bool:
    return GroupMember.WORLD is not None


def _world() -> ProcessGroup:
    if GroupMember.WORLD is None:
        raise RuntimeError("[distributed] expected an initialized default process group; call "
                           "nnfast.distributed.init_process_group() first")
    return GroupMember.WORLD


def _group(group: Optional[ProcessGroup]) -> ProcessGroup:
    if group is None:
        return _world()
    if group is GroupMember.NON_GROUP_MEMBER:
        raise RuntimeError("[distributed] expected a group this rank belongs to")
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"[distributed] expected a ProcessGroup or None, got {type(group).__name__}")
    return group


def _abort_on_exception(exc_type: Any, exc: Any, tb: Any) -> None:
    """sys.excepthook while a group exists: print this rank's error, then take the whole job down."""
    world = GroupMember.WORLD
    if world is None or world.size() == 1:
        prev = _STATE["excepthook"] or sys.__excepthook__
        if prev is not _abort_on_exception:
            prev(exc_type, exc, tb)
        return
    rank = world.rank()
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"[rank {rank}] uncaught exception, aborting every rank:\n{text}")
    world.backend.abort(1)  # MPI_Abort once the message is out: every rank exits, mpiexec returns non-zero


def init_process_group(backend: Optional[str] = None, init_method: Optional[str] = None,
                       timeout: Optional[datetime.timedelta] = None, world_size: int = -1, rank: int = -1,
                       store: Any = None, group_name: str = "", pg_options: Any = None,
                       device_id: Any = None) -> None:
    """Join the default process group: rank and world size come from MPI (``mpiexec`` / ``srun``).

    ``backend``: ``"mpi"`` (the default; cpu tensors; ``"gloo"``, PyTorch's cpu backend, runs as
    ``"mpi"`` so ported scripts work unchanged) or ``"nccl"`` (cuda tensors through CuPy's NCCL;
    MPI broadcasts its unique id). ``world_size`` / ``rank``, when given, must match MPI's.
    ``timeout`` bounds every wait (default 30 minutes). ``init_method`` / ``store`` are accepted for
    PyTorch compatibility; MPI does the rendezvous.

    Defaults: backend=None ("mpi"), init_method=None, timeout=None (30 min), world_size=-1, rank=-1.
    """
    op = "init_process_group"
    if GroupMember.WORLD is not None:
        raise RuntimeError(f"[{op}] expected no default process group yet; trying to initialize the default "
                           "process group twice (call destroy_process_group first)")
    name = "mpi" if backend is None else str(backend).lower()
    if name == "gloo":  # PyTorch's cpu backend: a ported script's cpu collectives run over MPI
        name = "mpi"
    if name not in ("mpi", "nccl"):
        raise ValueError(f"[{op}] expected backend 'mpi', 'gloo' (runs as 'mpi') or 'nccl', got {backend!r}")
    if timeout is None:
        timeout = default_pg_timeout
    if not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"[{op}] expected timeout to be a datetime.timedelta, got {type(timeout).__name__}")
    MPI = _backend.mpi()
    comm = MPI.COMM_WORLD.Dup()
    n, r = comm.Get_size(), comm.Get_rank()
    if world_size not in (-1, n):
        raise ValueError(f"[{op}] expected world_size {n} (MPI's), got {world_size}")
    if rank not in (-1, r):
        raise ValueError(f"[{op}] expected rank {r} (MPI's), got {rank}")
    be: Any = _backend.MPIBackend(comm) if name == "mpi" else _backend.NCCLBackend(comm)
    GroupMember.WORLD = ProcessGroup(be, range(n), timeout)
    if sys.excepthook is not _abort_on_exception:
        _STATE["excepthook"] = sys.excepthook
        sys.excepthook = _abort_on_exception


def destroy_process_group(group: Optional[ProcessGroup] = None) -> None:
    """Leave the default group (or free ``group``); restores the exception hook."""
    if group is not None and group is not GroupMember.WORLD:
        if isinstance(group, ProcessGroup) and getattr(group.backend, "comm", None) is not None:
            _free(group)
        return
    if GroupMember.WORLD is None:
        return
    _free(GroupMember.WORLD)
    GroupMember.WORLD = None
    if sys.excepthook is _abort_on_exception:
        sys.excepthook = _STATE["excepthook"] or sys.__excepthook__


def _free(g: ProcessGroup) -> None:
    comm = getattr(g.backend, "mpi_comm", None) or getattr(g.backend, "comm", None)
    if comm is None:
        return
    try:
        comm.Free()
    except Exception:  # pragma: no cover - already freed / MPI finalized
        pass


def get_rank(group: Optional[ProcessGroup] = None) -> int:
    """This process's rank in ``group`` (default: the world)."""
    return _group(group).rank()


def get_world_size(group: Optional[ProcessGroup] = None) -> int:
    """The number of ranks in ``group`` (default: the world)."""
    return _group(group).size()


def get_backend(group: Optional[ProcessGroup] = None) -> str:
    return str(_group(group).backend.name)


def new_group(ranks: Optional[Sequence[int]] = None, timeout: Optional[datetime.timedelta] = None,
              backend: Optional[str] = None, pg_options: Any = None) -> Any:
    """A group of ``ranks`` (default every rank); every rank of the world must call it. Ranks outside
    the group get ``GroupMember.NON_GROUP_MEMBER``."""
    w = _world()
    members = list(range(w.size())) if ranks is None else sorted({int(r) for r in ranks})
    if any(not 0 <= r < w.size() for r in members):
        raise ValueError(f"[new_group] expected ranks in [0, {w.size()}), got {members}")
    MPI = _backend.mpi()
    base = getattr(w.backend, "mpi_comm", None) or w.backend.comm
    me = w.rank()
    comm = base.Split(0 if me in members else MPI.UNDEFINED, members.index(me) if me in members else 0)
    if me not in members:
        return GroupMember.NON_GROUP_MEMBER
    name = backend or w.backend.name
    be: Any = _backend.MPIBackend(comm) if name == "mpi" else _backend.NCCLBackend(comm)
    return ProcessGroup(be, members, timeout or w.timeout)


# ---------------------------------------------------------------- collectives
def _check_tensor(op: str, t: Any, name: str = "tensor") -> Any:
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] expected {name} to be an nnfast.Tensor, got {type(t).__name__}")
    return t._data


def _check_device(op: str, g: ProcessGroup, a: Any) -> None:
    cuda = type(a) is not np.ndarray
    if g.backend.name == "mpi" and cuda:
        raise RuntimeError(f"[{op}] expected cpu tensors with backend 'mpi'; use backend='nccl' for cuda tensors")
    if g.backend.name == "nccl" and not cuda:
        raise RuntimeError(f"[{op}] expected cuda tensors with backend 'nccl'; use backend='mpi' for cpu tensors")


def _reduce_op(op: str, rop: Any, dtype: Any) -> str:
    if not isinstance(rop, ReduceOp):
        raise TypeError(f"[{op}] expected op to be a nnfast.distributed.ReduceOp, got {rop!r}")
    if rop.name == "AVG" and not np.issubdtype(dtype, np.floating):
        raise TypeError(f"[{op}] expected a floating-point tensor for ReduceOp.AVG, got {dtype}")
    return rop.name


_CHECK = os.environ.get("NNFAST_DISTRIBUTED_CHECK", "1") != "0"


def _check_same(op: str, g: ProcessGroup, a: Any, what: str = "tensor") -> None:
    """Every rank passes the same shape and dtype: one allreduce of 4 int64 (value and its negation,
    MAX) gives each field's max and min; a difference on any rank raises on every rank."""
    if not _CHECK or g.size() == 1:
        return
    sig = np.array([a.size, len(a.shape), zlib.crc32(repr((tuple(a.shape), str(a.dtype))).encode()), 0],
                   dtype=np.int64)
    buf = np.concatenate([sig, -sig])
    _host_max(buf, g, op)
    if np.any(buf[:4] != -buf[4:]):
        raise RuntimeError(f"[{op}] expected the same {what} shape and dtype on every rank; rank {g.rank()} "
                           f"has shape {tuple(a.shape)} {a.dtype} ({a.size} elements) but the ranks' element "
                           f"counts range over [{-buf[4]}, {buf[0]}]")


def _host_max(buf: np.ndarray, g: ProcessGroup, op: str) -> None:
    """In-place MAX allreduce of a small host (NumPy) array over ``g``'s MPI communicator, whatever
    the group's backend (NCCL groups keep the MPI communicator they were built from)."""
    be = g.backend if g.backend.name == "mpi" else _backend.MPIBackend(g.backend.mpi_comm)
    Work(op, ProcessGroup(be, g.ranks, g.timeout), be.allreduce(buf, "MAX")).wait()


def _scale(a: Any, s: float) -> None:
    """a *= s with nnfast's multi-tensor scale kernel (AVG's division)."""
    from .._dispatch import kernels

    kernels("clip_grad_norm_", a).multi_tensor_scale([a], s)


def _copy(dst: Any, src: Any) -> None:
    dst[...] = src  # layout only (a copy back into a non-contiguous tensor)


def _contig(a: Any) -> tuple[Any, bool]:
    if a.flags.c_contiguous:
        return a, False
    from .._dispatch import ascontiguousarray

    return ascontiguousarray(a), True


def _finish(handle: Work, async_op: bool) -> Optional[Work]:
    if async_op:
        return handle
    handle.wait()
    return None


def _bump(t: Tensor) -> None:
    t._vc[0] += 1  # an in-place write: a saved tensor's backward sees it


def _write_back(g: "ProcessGroup", buf: Any, dest: Any, tensor: Tensor, copied: bool,
                average: bool = False) -> Callable[[], None]:
    """A collective's completion: divide by the world size (ReduceOp.AVG, nnfast's scale kernel),
    copy the contiguous staging buffer back into ``dest`` when one was needed, and bump the
    tensor's version (its data changed in place)."""

    def done() -> None:
        if average:
            _scale(buf, 1.0 / g.size())
        if copied:
            _copy(dest, buf)
        _bump(tensor)

    return done


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Optional[ProcessGroup] = None,
               async_op: bool = False) -> Optional[Work]:
    """Reduce ``tensor`` over the ranks in place (``op``: SUM, AVG, PRODUCT, MIN, MAX).

    Defaults: op=ReduceOp.SUM, group=None (the world), async_op=False (with True it returns a
    ``Work``; the tensor holds the result after ``wait()``).
    """
    name = "all_reduce"
    g = _group(group)
    a = _check_tensor(name, tensor)
    _check_device(name, g, a)
    rop = _reduce_op(name, op, a.dtype)
    _check_same(name, g, a)
    buf, copied = _contig(a)
    req = g.backend.allreduce(buf.reshape(-1), rop)

    return _finish(Work(name, g, req, _write_back(g, buf, a, tensor, copied, rop == "AVG")), async_op)


def _allreduce_raw(buf: Any, group: Optional[ProcessGroup], op: str) -> Work:
    """Start a SUM allreduce of the contiguous array ``buf`` in place, unchecked (DDP's buckets,
    whose layout was checked once)."""
    g = _group(group)
    return Work(op, g, g.backend.allreduce(buf.reshape(-1), "SUM"))


def _broadcast_raw(buf: Any, src: int, group: Optional[ProcessGroup], op: str) -> Work:
    """Start broadcasting the contiguous array ``buf`` from group rank ``src``, unchecked (DDP's
    buffers, whose layout was checked once)."""
    g = _group(group)
    return Work(op, g, g.backend.broadcast(buf.reshape(-1), src))


def _allgather_raw(out: Any, inp: Any, group: Optional[ProcessGroup], op: str) -> None:
    """Gather the contiguous arrays ``inp`` of every rank into ``out`` (blocking), unchecked
    (SyncBatchNorm's statistics, whose size is the same on every rank by construction)."""
    g = _group(group)
    Work(op, g, g.backend.allgather(out.reshape(-1), inp.reshape(-1))).wait()


def broadcast(tensor: Tensor, src: int, group: Optional[ProcessGroup] = None, async_op: bool = False) -> Optional[Work]:
    """Copy ``tensor`` of rank ``src`` into ``tensor`` on every rank.

    Defaults: group=None, async_op=False.
    """
    name = "broadcast"
    g = _group(group)
    a = _check_tensor(name, tensor)
    _check_device(name, g, a)
    src = _src(name, g, src, "src")
    _check_same(name, g, a)
    buf, copied = _contig(a)
    req = g.backend.broadcast(buf.reshape(-1), src)

    return _finish(Work(name, g, req, _write_back(g, buf, a, tensor, copied)), async_op)


def _src(op: str, g: ProcessGroup, r: int, what: str) -> int:
    r = int(r)
    if r not in g.ranks:
        raise ValueError(f"[{op}] expected {what} to be a rank of the group {g.ranks}, got {r}")
    return g.ranks.index(r)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group: Optional[ProcessGroup] = None,
               async_op: bool = False) -> Optional[Work]:
    """``tensor_list[i]`` receives rank i's ``tensor`` (a list of world-size tensors shaped like it).

    Defaults: group=None, async_op=False.
    """
    name = "all_gather"
    g = _group(group)
    a = _check_tensor(name, tensor)
    _check_device(name, g, a)
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != g.size():
        got = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list).__name__
        raise ValueError(f"[{name}] expected tensor_list to be a list of {g.size()} tensors, got {got}")
    outs = [_check_tensor(name, t, "tensor_list entries") for t in tensor_list]
    for o in outs:
        if o.shape != a.shape or o.dtype != a.dtype:
            raise ValueError(f"[{name}] expected tensor_list entries of shape {tuple(a.shape)} {a.dtype}, "
                             f"got {tuple(o.shape)} {o.dtype}")
    _check_same(name, g, a)
    xp = _xp(a)
    flat = xp.empty((g.size(),) + tuple(a.shape), dtype=a.dtype)
    inp, _ = _contig(a)
    req = g.backend.allgather(flat.reshape(-1), inp.reshape(-1))

    def done() -> None:
        for o, t, blk in zip(outs, tensor_list, flat):
            _copy(o, blk)
            _bump(t)

    return _finish(Work(name, g, req, done), async_op)


def _xp(a: Any) -> Any:
    from .._dispatch import xp_of

    return xp_of(a)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group: Optional[ProcessGroup] = None,
                           async_op: bool = False) -> Optional[Work]:
    """Gather every rank's ``input_tensor`` into ``output_tensor``, concatenated along dim 0 (shape
    (world_size * d0, ...)) or stacked (shape (world_size, *input.shape)).

    Defaults: group=None, async_op=False.
    """
    name = "all_gather_into_tensor"
    g = _group(group)
    a = _check_tensor(name, input_tensor, "input_tensor")
    o = _check_tensor(name, output_tensor, "output_tensor")
    _check_device(name, g, a)
    if o.size != a.size * g.size() or o.dtype != a.dtype:
        raise ValueError(f"[{name}] expected output_tensor with {g.size()} x {a.size} elements of {a.dtype}, "
                         f"got shape {tuple(o.shape)} {o.dtype}")
    _check_same(name, g, a)
    inp, _ = _contig(a)
    buf, copied = _contig(o)
    req = g.backend.allgather(buf.reshape(-1), inp.reshape(-1))

    return _finish(Work(name, g, req, _write_back(g, buf, o, output_tensor, copied)), async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group: Optional[ProcessGroup] = None, async_op: bool = False) -> Optional[Work]:
    """Reduce ``input`` (world_size blocks along dim 0) over the ranks; rank i receives block i.

    Defaults: op=ReduceOp.SUM, group=None, async_op=False.
    """
    name = "reduce_scatter_tensor"
    g = _group(group)
    a = _check_tensor(name, input, "input")
    o = _check_tensor(name, output, "output")
    _check_device(name, g, a)
    rop = _reduce_op(name, op, a.dtype)
    if a.size != o.size * g.size() or o.dtype != a.dtype:
        raise ValueError(f"[{name}] expected input with {g.size()} x {o.size} elements of {o.dtype}, "
                         f"got shape {tuple(a.shape)} {a.dtype}")
    _check_same(name, g, a, "input")
    return _reduce_scatter(name, g, output, o, _contig(a)[0].reshape(-1), rop, async_op)


def _reduce_scatter(name: str, g: ProcessGroup, out_t: Tensor, o: Any, flat_in: Any, rop: str,
                    async_op: bool) -> Optional[Work]:
    buf, copied = _contig(o)
    req = g.backend.reduce_scatter(buf.reshape(-1), flat_in, rop)

    return _finish(Work(name, g, req, _write_back(g, buf, o, out_t, copied, rop == "AVG")), async_op)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group: Optional[ProcessGroup] = None, async_op: bool = False) -> Optional[Work]:
    """Reduce ``input_list[i]`` over the ranks into rank i's ``output``.

    Defaults: op=ReduceOp.SUM, group=None, async_op=False.
    """
    name = "reduce_scatter"
    g = _group(group)
    o = _check_tensor(name, output, "output")
    _check_device(name, g, o)
    rop = _reduce_op(name, op, o.dtype)
    if not isinstance(input_list, (list, tuple)) or len(input_list) != g.size():
        raise ValueError(f"[{name}] expected input_list to be a list of {g.size()} tensors")
    ins = [_check_tensor(name, t, "input_list entries") for t in input_list]
    for i in ins:
        if i.shape != o.shape or i.dtype != o.dtype:
            raise ValueError(f"[{name}] expected input_list entries of shape {tuple(o.shape)} {o.dtype}, "
                             f"got {tuple(i.shape)} {i.dtype}")
    _check_same(name, g, o, "output")
    flat = _xp(o).stack(ins).reshape(-1)  # layout: the blocks side by side
    return _reduce_scatter(name, g, output, o, flat, rop, async_op)


def reduce(tensor: Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group: Optional[ProcessGroup] = None,
           async_op: bool = False) -> Optional[Work]:
    """Reduce ``tensor`` over the ranks into rank ``dst``'s ``tensor`` (the others keep theirs).

    Defaults: op=ReduceOp.SUM, group=None, async_op=False.
    """
    name = "reduce"
    g = _group(group)
    a = _check_tensor(name, tensor)
    _check_device(name, g, a)
    rop = _reduce_op(name, op, a.dtype)
    root = _src(name, g, dst, "dst")
    _check_same(name, g, a)
    buf, copied = _contig(a)
    req = g.backend.reduce(buf.reshape(-1), root, rop)

    on_root = _write_back(g, buf, a, tensor, copied, rop == "AVG")
    return _finish(Work(name, g, req, on_root if g.rank() == root else None), async_op)


def gather(tensor: Tensor, gather_list: Optional[list[Tensor]] = None, dst: int = 0,
           group: Optional[ProcessGroup] = None, async_op: bool = False) -> Optional[Work]:
    """Rank ``dst`` receives every rank's ``tensor`` into ``gather_list`` (world-size tensors; None
    on the other ranks).

    Defaults: gather_list=None, dst=0, group=None, async_op=False.
    """
    name = "gather"
    g = _group(group)
    a = _check_tensor(name, tensor)
    _check_device(name, g, a)
    root = _src(name, g, dst, "dst")
    me = g.rank() == root
    outs: list[Any] = []
    if me:
        if not isinstance(gather_list, (list, tuple)) or len(gather_list) != g.size():
            raise ValueError(f"[{name}] expected gather_list to be a list of {g.size()} tensors on rank {dst}")
        outs = [_check_tensor(name, t, "gather_list entries") for t in gather_list]
        for o in outs:
            if o.shape != a.shape or o.dtype != a.dtype:
                raise ValueError(f"[{name}] expected gather_list entries of shape {tuple(a.shape)} {a.dtype}, "
                                 f"got {tuple(o.shape)} {o.dtype}")
    _check_same(name, g, a)
    flat = _xp(a).empty((g.size(),) + tuple(a.shape), dtype=a.dtype) if me else None
    req = g.backend.gather(None if flat is None else flat.reshape(-1), _contig(a)[0].reshape(-1), root)

    def done() -> None:
        if me and flat is not None and gather_list is not None:
            for o, t, blk in zip(outs, gather_list, flat):
                _copy(o, blk)
                _bump(t)

    return _finish(Work(name, g, req, done), async_op)


def scatter(tensor: Tensor, scatter_list: Optional[list[Tensor]] = None, src: int = 0,
            group: Optional[ProcessGroup] = None, async_op: bool = False) -> Optional[Work]:
    """Rank i receives ``scatter_list[i]`` of rank ``src`` into ``tensor``.

    Defaults: scatter_list=None, src=0, group=None, async_op=False.
    """
    name = "scatter"
    g = _group(group)
    o = _check_tensor(name, tensor)
    _check_device(name, g, o)
    root = _src(name, g, src, "src")
    flat = None
    if g.rank() == root:
        if not isinstance(scatter_list, (list, tuple)) or len(scatter_list) != g.size():
            raise ValueError(f"[{name}] expected scatter_list to be a list of {g.size()} tensors on rank {src}")
        ins = [_check_tensor(name, t, "scatter_list entries") for t in scatter_list]
        for i in ins:
            if i.shape != o.shape or i.dtype != o.dtype:
                raise ValueError(f"[{name}] expected scatter_list entries of shape {tuple(o.shape)} {o.dtype}, "
                                 f"got {tuple(i.shape)} {i.dtype}")
        flat = _xp(o).stack(ins).reshape(-1)
    _check_same(name, g, o)
    buf, copied = _contig(o)
    req = g.backend.scatter(buf.reshape(-1), flat, root)

    return _finish(Work(name, g, req, _write_back(g, buf, o, tensor, copied)), async_op)


def barrier(group: Optional[ProcessGroup] = None, async_op: bool = False, device_ids: Any = None) -> Optional[Work]:
    """Wait until every rank of ``group`` reaches this call.

    Defaults: group=None, async_op=False.
    """
    g = _group(group)
    return _finish(Work("barrier", g, g.backend.barrier()), async_op)
