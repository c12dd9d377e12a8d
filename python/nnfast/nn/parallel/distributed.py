"""DistributedDataParallel: data-parallel training over ``nnfast.distributed``.

Each rank runs the whole module on its shard of the batch; gradients are averaged over the ranks
during backward so that every rank's optimizer takes the same step. How:

- Parameters (and buffers) are broadcast from rank 0 at construction, so every replica starts equal;
  the ranks' parameter layouts are compared once (one small allreduce) and must match.
- Gradients live in flat per-dtype *buckets* (reverse registration order: the order backward
  produces them; the first bucket is small, 1 MiB, so communication starts early, the others hold
  up to ``bucket_cap_mb``). Each parameter's ``.grad`` is a view into its bucket, so backward's
  kernels accumulate straight into the bucket and nothing is copied.
- Forward walks the new graph once to count, per parameter, how many gradient contributions
  backward will accumulate. A post-accumulate-grad hook counts them down; when a bucket's last
  gradient is in, its non-blocking allreduce (SUM) starts at once, overlapping the rest of backward.
  Buckets start in index order, so every rank issues the same collectives in the same order.
- A progress thread (when the node has a spare core per rank) tests the in-flight requests while
  backward's kernels run, since MPI advances non-blocking collectives only inside MPI calls.
- A final backward callback starts any bucket still waiting (a parameter this backward did not
  reach), waits for all of them and divides by the world size with nnfast's scale kernel.
- ``no_sync()``: backward accumulates locally without communication; the next synchronised
  backward averages the sum.
- Forward runs in the generator's shard mode (``nnfast._random.shard``): dropout on rank r draws
  the mask rows that one process would draw for rows [r B, (r + 1) B) of the global batch, so
  training with equal contiguous shards of dim 0 equals training on the whole batch.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
import zlib
from typing import Any, Iterator, Optional

import numpy as np

from ... import _random, distributed as dist
from ...autograd import engine, grad_mode
from ...tensor import Tensor
from ..module import Module

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1024 * 1024


class _Bucket:
    __slots__ = ("index", "params", "offsets", "buf", "pending", "work", "views")

    def __init__(self, index: int, params: list[Any], xp: Any, dtype: Any) -> None:
        self.index = index
        self.params = params
        self.offsets: list[int] = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += int(p._data.size)
        self.buf = xp.zeros((n,), dtype=dtype)
        self.views = [self.buf[o:o + p._data.size].reshape(p._data.shape) for o, p in zip(self.offsets, params)]
        self.pending = 0
        self.work: Optional[dist.Work] = None


class _Progress(threading.Thread):
    """Drives the buckets' allreduces while backward computes. MPI advances a non-blocking
    collective only inside MPI calls, and backward's kernels (which release the GIL) make none, so
    without this thread communication would not overlap them. It tests the in-flight requests every
    ~0.1 ms until stopped; the main thread reads their completion only after ``stop()`` (MPI forbids
    testing one request from two threads at once)."""

    def __init__(self, test: Any) -> None:
        super().__init__(name="nnfast-ddp-progress", daemon=True)
        self._test = test
        self._reqs: list[Any] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.done = 0  # requests seen complete (they complete in order)

    def add(self, req: Any) -> None:
        with self._lock:
            self._reqs.append(req)

    def run(self) -> None:
        while not self._halt.is_set():
            with self._lock:
                reqs = list(self._reqs)
            for q in reqs[self.done:]:
                if not self._test(q):
                    break  # buckets complete in order: no use testing the later ones yet
                self.done += 1
            self._halt.wait(1e-4)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _tensors_in(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors_in(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors_in(o)


def _thread_ok(group: Any) -> bool:
    """Whether to run the progress thread: the mpi backend with MPI_THREAD_MULTIPLE (mpi4py asks for
    it by default), and a spare core per rank on this node (cores >= 2 x ranks here), since a thread
    that competes with the kernels for a core costs more than the overlap gains.
    NNFAST_DDP_PROGRESS_THREAD=1 / 0 forces it on / off. Collective: every rank calls it."""
    if dist.get_backend(group) != "mpi":
        return False
    from mpi4py import MPI

    comm = dist._group(group).backend.comm
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks sharing this node
    local = node.Get_size()
    node.Free()
    env = os.environ.get("NNFAST_DDP_PROGRESS_THREAD", "")
    if MPI.Query_thread() < MPI.THREAD_MULTIPLE or env == "0":
        return False
    return env == "1" or (os.cpu_count() or 1) >= 2 * local


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of a process group: wrap the model, train as usual.

    ``module``: the model (on the same device on every rank). ``bucket_cap_mb``: the gradient
    bucket size in MiB (default 25). ``broadcast_buffers``: copy rank 0's buffers (e.g. BatchNorm
    running statistics) to every rank at each forward. ``find_unused_parameters``: accepted;
    parameters a backward does not reach are always handled (their gradient counts as zero).
    ``device_ids`` / ``output_device`` / ``dim`` are accepted for PyTorch compatibility.

    Defaults: device_ids=None, output_device=None, dim=0, broadcast_buffers=True, process_group=None,
    bucket_cap_mb=None (25), find_unused_parameters=False, check_reduction=False,
    gradient_as_bucket_view=False (gradients are always bucket views here), static_graph=False.
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group: Optional[Any] = None,
                 bucket_cap_mb: Optional[float] = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False) -> None:
        super().__init__()
        op = "DistributedDataParallel"
        if not isinstance(module, Module):
            raise TypeError(f"[{op}] expected module to be an nnfast.nn.Module, got {type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError(f"[{op}] expected an initialized default process group; call "
                               "nnfast.distributed.init_process_group() first")
        cap = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        if not cap > 0:
            raise ValueError(f"[{op}] expected a positive bucket_cap_mb, got {bucket_cap_mb}")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.dim = dim
        self.bucket_bytes_cap = int(cap * 1024 * 1024)
        self.require_backward_grad_sync = True
        self.world_size = dist.get_world_size(process_group)
        self._rank = dist.get_rank(process_group)
        params = [p for p in module.parameters() if p.requires_grad]
        self._check_layout(op, params + [b for b in module.buffers() if b is not None])
        with grad_mode.no_grad():
            for t in list(module.parameters()) + [b for b in module.buffers() if b is not None]:
                dist.broadcast(t, 0, group=process_group)
        self._buckets = self._make_buckets(params)
        self._where: dict[int, tuple[_Bucket, int]] = {}
        for b in self._buckets:
            for i, p in enumerate(b.params):
                self._where[id(p)] = (b, i)
                p.register_post_accumulate_grad_hook(self._grad_ready)
        self._expected: dict[int, int] = {}
        self._armed = False       # a synchronised forward ran; its backward reduces
        self._in_backward = False
        self._next_launch = 0
        self._early_launches = 0  # buckets of the last backward started from a hook (overlapping it)
        # perf_counter times of the last synchronised backward: first bucket started, backward's sweep
        # done (the final callback), every allreduce done; the exposed communication is the last gap.
        self.comm_stats: dict[str, float] = {}
        self._progress: Optional[_Progress] = None
        self._use_thread = self.world_size > 1 and _thread_ok(process_group)

    # ------------------------------------------------------------ construction
    def _check_layout(self, op: str, params: list[Any]) -> None:
        """Every rank has the same parameters and buffers (count, shapes, dtypes): one allreduce of
        3 int64 and their negations (MAX) gives each field's max and min."""
        desc = repr([(tuple(p.shape), str(p._data.dtype)) for p in params]).encode()
        sig = np.array([len(params), sum(int(p._data.size) for p in params), zlib.crc32(desc)], dtype=np.int64)
        v = np.concatenate([sig, -sig])
        dist._host_max(v, dist._group(self.process_group), op)  # over MPI for either backend
        if np.any(v[:3] != -v[3:]):
            raise RuntimeError(f"[{op}] expected the same parameters and buffers (count, shapes, dtypes) on "
                               f"every rank; rank {dist.get_rank(self.process_group)} has {len(params)} tensors "
                               f"with {int(sig[1])} elements, the ranks range over [{-v[3]}, {v[0]}] tensors")

    def _make_buckets(self, params: list[Any]) -> list[_Bucket]:
        from ..._dispatch import xp_of

        buckets: list[_Bucket] = []
        open_: dict[tuple[str, str], tuple[list[Any], int]] = {}

        def close(key: tuple[str, str]) -> None:
            ps, _ = open_.pop(key)
            buckets.append(_Bucket(len(buckets), ps, xp_of(ps[0]._data), ps[0]._data.dtype))

        for p in reversed(params):  # backward produces the last layers' gradients first
            key = (str(p._data.dtype), type(p._data).__name__)
            ps, nbytes = open_.get(key, ([], 0))
            ps.append(p)
            nbytes += int(p._data.nbytes)
            open_[key] = (ps, nbytes)
            cap = min(_FIRST_BUCKET_BYTES, self.bucket_bytes_cap) if not buckets else self.bucket_bytes_cap
            if nbytes >= cap:
                close(key)
        for key in list(open_):
            close(key)
        return buckets

    # ------------------------------------------------------------ forward
    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside it, forward/backward accumulate gradients locally without communication; the
        first synchronised backward after it averages the accumulated sum."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self._in_backward:  # the last backward raised before its end: drop its state
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            self._in_backward = False
        if self.broadcast_buffers and self.world_size > 1:
            # all started at once, unchecked (the layout was compared at construction)
            works = []
            for b in self.module.buffers():
                if b is None:
                    continue
                if b._data.flags.c_contiguous:
                    works.append(dist._broadcast_raw(b._data, 0, self.process_group, "DistributedDataParallel"))
                    b._vc[0] += 1
                else:
                    dist.broadcast(b, 0, group=self.process_group)
            for w in works:
                w.wait()
        if grad_mode.is_grad_enabled():
            self._bind_grads()
        # Counter-based kernels (dropout) draw this rank's slice of the global batch's mask: with the
        # batch split along dim 0 into equal contiguous shards, training equals one process on it.
        with _random.shard(self._rank, self.world_size):
            out = self.module(*inputs, **kwargs)
        if grad_mode.is_grad_enabled() and self.require_backward_grad_sync:
            self._expected = self._count_uses(out)
            self._armed = True
        else:
            self._armed = False
        return out

    def _bind_grads(self) -> None:
        """Point every parameter's ``.grad`` at its bucket slice: a None gradient (zero_grad) becomes
        the zeroed slice; a gradient held elsewhere is copied in once."""
        for b in self._buckets:
            for p, v in zip(b.params, b.views):
                g = p.grad
                if g is not None and g._data is v:
                    continue
                if g is None:
                    v[...] = 0
                else:
                    v[...] = g._data
                p.grad = Tensor._wrap(v)

    def _count_uses(self, out: Any) -> dict[int, int]:
        """Per parameter, the graph edges through which backward will accumulate into it."""
        counts: dict[int, int] = {}
        seen: set[int] = set()
        stack = [t.grad_fn for t in _tensors_in(out) if t.grad_fn is not None]
        where = self._where
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            for t, nxt in zip(node.inputs, node._next):
                if nxt is not None:
                    if id(nxt) not in seen:
                        stack.append(nxt)
                elif t is not None and id(t) in where:
                    counts[id(t)] = counts.get(id(t), 0) + 1
        return counts

    # ------------------------------------------------------------ backward
    def _start_backward(self) -> None:
        self._in_backward = True
        self._next_launch = 0
        self._early_launches = 0
        for b in self._buckets:
            b.pending = sum(self._expected.get(id(p), 0) for p in b.params)
            b.work = None
        engine.queue_callback(self._finish_backward)
        self._launch_ready()  # buckets whose parameters this backward does not reach

    def _grad_ready(self, p: Any) -> None:
        if not self._armed:
            return
        if not self._in_backward:
            self._start_backward()
        b, i = self._where[id(p)]
        if b.work is not None or b.pending <= 0:
            raise RuntimeError("[DistributedDataParallel] expected each parameter's gradient to be accumulated "
                               "only through the graph of the last forward; a parameter received a gradient "
                               "after its bucket was reduced (call forward before each backward)")
        if p.grad is None or p.grad._data is not b.views[i]:  # replaced by the user: fold it back in
            g = p.grad
            b.views[i][...] = 0 if g is None else g._data
            p.grad = Tensor._wrap(b.views[i])
        b.pending -= 1
        if b.pending == 0:
            self._launch_ready()
        elif self._progress is None:
            for w in self._buckets[:self._next_launch]:  # let MPI progress the buckets in flight
                if w.work is not None:
                    w.work.is_completed()

    def _launch_ready(self) -> None:
        while self._next_launch < len(self._buckets) and self._buckets[self._next_launch].pending <= 0:
            self._launch(self._buckets[self._next_launch])
            self._next_launch += 1
            self._early_launches += 1

    def _launch(self, b: _Bucket) -> None:
        if b.index == 0:
            self.comm_stats["first_launch"] = time.perf_counter()
        b.work = dist._allreduce_raw(b.buf, self.process_group, "DistributedDataParallel")
        if self._in_backward and self._use_thread:
            if self._progress is None:
                self._progress = _Progress(b.work._group.backend.test)
                self._progress.start()
            self._progress.add(b.work._req)

    def _finish_backward(self) -> None:
        """End of backward: start what is left (in order), wait for everything, average."""
        from ..._dispatch import kernels

        self.comm_stats["backward_done"] = time.perf_counter()
        self.comm_stats["buckets_done_in_backward"] = 0
        if self._progress is not None:  # from here on this thread waits (and tests) itself
            self._progress.stop()
            self.comm_stats["buckets_done_in_backward"] = self._progress.done
            self._progress = None
        for b in self._buckets[self._next_launch:]:
            self._launch(b)
        self._next_launch = len(self._buckets)
        inv = 1.0 / self.world_size
        for b in self._buckets:
            assert b.work is not None
            b.work.wait()
            b.work = None
            kernels("clip_grad_norm_", b.buf).multi_tensor_scale([b.buf], inv)
        self.comm_stats["comm_done"] = time.perf_counter()
        self._in_backward = False
        self._armed = False
