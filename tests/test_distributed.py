"""nnfast.distributed, DistributedDataParallel, SyncBatchNorm and DistributedSampler.

In-process tests cover what needs no second process: the sampler's index semantics (against
PyTorch's where installed), the dropout kernels' shard slice (cpu and cuda), the gradient-ready hook
DDP uses, SyncBatchNorm outside a process group, and argument errors. The multi-rank behaviour runs
``mpiexec -n N python tests/mpi/<script>.py`` in a subprocess (skipped, with the reason, when mpi4py
or mpiexec is missing or MPI cannot start): every collective, the equivalence of N ranks x batch B
with one process x batch N*B (float64 1e-10, float32 1e-5; with no_sync, SyncBatchNorm, dropout,
and resumed from a checkpoint on another N), and that a failing or hanging rank ends the job.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnfast
import nnfast.distributed as dist
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast import _random
from nnfast.utils.data import DistributedSampler
from nnfast.utils.data.distributed import DistributedSampler as DistributedSampler2

HERE = Path(__file__).resolve().parent
MPI_DIR = HERE / "mpi"


# ---------------------------------------------------------------- DistributedSampler
class _Len:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def _torch_order(n: int, replicas: int, rank: int, drop_last: bool) -> list[int]:
    """PyTorch's DistributedSampler without shuffling, written out from its documented rules."""
    if drop_last and n % replicas:
        per = -(-(n - replicas) // replicas)
    else:
        per = -(-n // replicas)
    total = per * replicas
    idx = list(range(n))
    if not drop_last:
        pad = total - n
        idx += (idx * (-(-pad // n) if n else 0))[:pad] if pad > n else idx[:pad]
    else:
        idx = idx[:total]
    return idx[rank:total:replicas]


@pytest.mark.parametrize("n", [1, 2, 7, 10, 12, 1023])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 16])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_order_matches_pytorch(n, replicas, drop_last):
    try:
        import torch.utils.data as tud
    except ImportError:
        tud = None
    for rank in range(replicas):
        s = DistributedSampler(_Len(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        got = list(s)
        assert got == _torch_order(n, replicas, rank, drop_last)
        assert len(s) == len(got)
        if tud is not None:
            t = tud.distributed.DistributedSampler(_Len(n), num_replicas=replicas, rank=rank, shuffle=False,
                                                   drop_last=drop_last)
            assert got == list(t) and len(s) == len(t)


@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shuffle_partitions_the_permutation(drop_last):
    n, replicas = 23, 4
    parts = [list(DistributedSampler(_Len(n), replicas, r, shuffle=True, seed=5, drop_last=drop_last))
             for r in range(replicas)]
    perm = nnfast.Generator().manual_seed(5).permutation(n).tolist()  # seed + epoch 0
    total = len(parts[0]) * replicas
    padded = (perm + perm)[:total]
    for r in range(replicas):
        assert parts[r] == padded[r:total:replicas]
    if drop_last:
        assert len(set(sum(parts, []))) == total == 20
    else:
        assert set(sum(parts, [])) == set(range(n))


def test_sampler_set_epoch_reshuffles_deterministically():
    a = DistributedSampler2(_Len(50), 2, 1, seed=3)
    e0 = list(a)
    a.set_epoch(1)
    e1 = list(a)
    assert e0 != e1 and sorted(e0) != [] and list(a) == e1
    b = DistributedSampler(_Len(50), 2, 1, seed=3)
    b.set_epoch(1)
    assert list(b) == e1


def test_sampler_errors():
    with pytest.raises(ValueError, match=r"\[DistributedSampler\] Invalid rank 2, rank should be in the interval"):
        DistributedSampler(_Len(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match=r"\[DistributedSampler\] Invalid rank -1"):
        DistributedSampler(_Len(4), num_replicas=2, rank=-1)
    with pytest.raises(RuntimeError, match=r"\[DistributedSampler\] expected num_replicas and rank"):
        DistributedSampler(_Len(4))


# ---------------------------------------------------------------- dropout shards
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,cols,world", [(6, 7, 3), (4, 5, 2), (2, 1, 2), (3, 1023, 3)])
def test_dropout_shard_draws_the_slice_of_the_global_mask(device, dtype, rows, cols, world):
    """Rank r of ``world`` (equal contiguous row shards, odd and even first indices) draws exactly
    rows [r B, (r+1) B) of the whole batch's mask, forward and backward, cpu and cuda."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows * world, cols)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    nnfast.manual_seed(11)
    xf = nnfast.tensor(x, device=device, requires_grad=True)
    yf = F.dropout(xf, 0.4)
    yf.backward(nnfast.tensor(g, device=device))
    for r in range(world):
        nnfast.manual_seed(11)
        xs = nnfast.tensor(x[r * rows:(r + 1) * rows], device=device, requires_grad=True)
        with _random.shard(r, world):
            ys = F.dropout(xs, 0.4)
        ys.backward(nnfast.tensor(g[r * rows:(r + 1) * rows], device=device))
        np.testing.assert_array_equal(ys.detach().cpu().numpy(), yf.detach().cpu().numpy()[r * rows:(r + 1) * rows])
        np.testing.assert_array_equal(xs.grad.cpu().numpy(), xf.grad.cpu().numpy()[r * rows:(r + 1) * rows])
    assert _random.kernel_first(10) == 0  # the shard mode ends with its block


def test_dropout_kernel_first_index_is_a_slice():
    x = np.random.default_rng(1).standard_normal(1023)
    full = np.empty_like(x)
    nnfast._C.dropout_forward(full, x, 0.3, 5, 9)
    for first in (0, 1, 2, 7, 100, 1000):
        y = np.empty(1023 - first)
        nnfast._C.dropout_forward(y, x[first:].copy(), 0.3, 5, 9, first)
        np.testing.assert_array_equal(y, full[first:])
        nnfast._C.dropout_backward(y, x[first:].copy(), 0.3, 5, 9, first)
        np.testing.assert_array_equal(y, full[first:])


# ---------------------------------------------------------------- the gradient-ready hook
def test_post_accumulate_grad_hook_fires_after_each_accumulation():
    lin = nn.Linear(3, 2).double()
    seen = []
    h = lin.weight.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    x = nnfast.tensor(np.ones((4, 3)))
    lin(x).sum().backward()  # first: a fresh gradient
    lin(x).sum().backward()  # second: the kernel adds into the existing .grad (ACCUMULATED path)
    assert len(seen) == 2
    np.testing.assert_allclose(seen[1], 2 * seen[0])
    np.testing.assert_allclose(seen[1], lin.weight.grad.numpy())
    h.remove()
    lin(x).sum().backward()
    assert len(seen) == 2
    y = lin(x)
    with pytest.raises(RuntimeError, match=r"\[register_post_accumulate_grad_hook\] expected a leaf"):
        y.register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(RuntimeError, match=r"\[register_post_accumulate_grad_hook\] expected a tensor that"):
        nnfast.ones(2).register_post_accumulate_grad_hook(lambda p: None)


def test_queue_callback_runs_once_after_backward():
    from nnfast.autograd import engine

    w = nnfast.tensor(np.ones(3), requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda p: engine.queue_callback(lambda: calls.append(p.grad.numpy().sum())))
    (w * 2).sum().backward()
    assert calls == [6.0]
    (w * 2).sum().backward()
    assert calls == [6.0, 12.0]


# ---------------------------------------------------------------- SyncBatchNorm without a group
def test_syncbatchnorm_without_group_is_batchnorm():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 4, 3))
    ref = nn.BatchNorm1d(4).double()
    got = nn.SyncBatchNorm(4, dtype=nnfast.float64)
    xr = nnfast.tensor(x, requires_grad=True)
    xg = nnfast.tensor(x, requires_grad=True)
    (ref(xr) ** 2).sum().backward()
    (got(xg) ** 2).sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xr.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got.running_var.numpy(), ref.running_var.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\[SyncBatchNorm\] expected"):
        got(nnfast.ones(3))


def test_convert_sync_batchnorm_keeps_state():
    inner = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None), nn.ReLU())
    model = nn.Sequential(inner, nn.BatchNorm2d(2, affine=False))
    model[1].eval()
    w = inner[1].weight
    rm = inner[1].running_mean
    out = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert out is model
    bn = out[0][1]
    assert isinstance(bn, nn.SyncBatchNorm) and bn.weight is w and bn.running_mean is rm and bn.momentum is None
    assert isinstance(out[1], nn.SyncBatchNorm) and not out[1].affine and not out[1].training
    assert isinstance(out[0][0], nn.Linear)
    single = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(5))
    assert isinstance(single, nn.SyncBatchNorm)
    assert list(model.state_dict()) == ["0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias", "0.1.running_mean",
                                        "0.1.running_var", "0.1.num_batches_tracked", "1.running_mean",
                                        "1.running_var", "1.num_batches_tracked"]


# ---------------------------------------------------------------- API without a process group
def test_api_before_init():
    assert dist.is_available()
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match=r"\[distributed\] expected an initialized default process group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match=r"\[distributed\] expected an initialized"):
        dist.all_reduce(nnfast.ones(2))
    with pytest.raises(ValueError, match=r"\[init_process_group\] expected backend 'mpi', 'gloo' \(runs as 'mpi'\) "
                                         r"or 'nccl', got 'ucc'"):
        dist.init_process_group("ucc")
    with pytest.raises(TypeError, match=r"\[init_process_group\] expected timeout to be a datetime.timedelta"):
        dist.init_process_group("mpi", timeout=5)
    with pytest.raises(RuntimeError, match=r"\[DistributedDataParallel\] expected an initialized"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    assert repr(dist.ReduceOp.AVG) == "<ReduceOp.AVG>"
    dist.destroy_process_group()  # a no-op without a group


def test_nccl_backend_is_guarded():
    """The NCCL path needs CuPy and a GPU (unverified here): its availability probe never raises."""
    assert isinstance(dist.is_nccl_available(), bool)
    assert isinstance(dist.is_mpi_available(), bool)


def test_nccl_backend_plumbing_with_a_stand_in_cupy(monkeypatch):
    """NCCLBackend's calls into CuPy's NCCL bindings, against a stand-in module that records them:
    the unique id goes through the MPI communicator's bcast, each collective is enqueued with the
    buffer's device pointer, element count, NCCL dtype / op codes and the current stream, and its
    request is the CUDA event recorded after it. (A real GPU run is still needed: unverified.)"""
    import types

    from nnfast.distributed import _backend

    calls = []

    class Comm:
        def __init__(self, n, uid, rank):
            calls.append(("init", n, uid, rank))

        def allReduce(self, *a):
            calls.append(("allReduce",) + a)

        def broadcast(self, *a):
            calls.append(("broadcast",) + a)

        def allGather(self, *a):
            calls.append(("allGather",) + a)

        def reduceScatter(self, *a):
            calls.append(("reduceScatter",) + a)

    class Event:
        def __init__(self, **kw):
            self.done = False

        def record(self):
            self.done = True

    nccl = types.SimpleNamespace(get_unique_id=lambda: (1, 2, 3), NcclCommunicator=Comm, NCCL_FLOAT32=7,
                                 NCCL_FLOAT64=8, NCCL_FLOAT16=6, NCCL_INT32=2, NCCL_INT64=4, NCCL_UINT8=1,
                                 NCCL_INT8=0)
    cuda = types.ModuleType("cupy.cuda")
    cuda.nccl = nccl
    cuda.Event = Event
    cuda.get_current_stream = lambda: types.SimpleNamespace(ptr=99)
    cupy = types.ModuleType("cupy")
    cupy.cuda = cuda
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", nccl)
    sent = []
    mpi = types.SimpleNamespace(Get_rank=lambda: 1, Get_size=lambda: 4, bcast=lambda obj, root: sent.append(root)
                                or (9, 9, 9))
    be = _backend.NCCLBackend(mpi)
    assert sent == [0] and calls == [("init", 4, (9, 9, 9), 1)]  # rank 1 takes rank 0's id
    buf = types.SimpleNamespace(data=types.SimpleNamespace(ptr=1234), size=10, dtype=np.float32)
    req = be.allreduce(buf, "SUM")
    assert calls[-1] == ("allReduce", 1234, 1234, 10, 7, 0, 99) and be.test(req)
    be.allreduce(buf, "MAX")
    assert calls[-1][5] == 2
    be.broadcast(buf, 3)
    assert calls[-1] == ("broadcast", 1234, 1234, 10, 7, 3, 99)
    out = types.SimpleNamespace(data=types.SimpleNamespace(ptr=5678), size=40, dtype=np.float32)
    be.allgather(out, buf)
    assert calls[-1] == ("allGather", 1234, 5678, 10, 7, 99)
    with pytest.raises(TypeError, match=r"\[nccl\] expected a float16/32/64"):
        be.allreduce(types.SimpleNamespace(data=buf.data, size=1, dtype=np.complex64), "SUM")


# ---------------------------------------------------------------- multi-rank runs under mpiexec
@functools.lru_cache(maxsize=1)
def _mpi_skip_reason() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install \"nnfast[distributed]\")"
    if shutil.which("mpiexec") is None:
        return "mpiexec is not on PATH (pip install mpich, or load the site's MPI)"
    try:
        r = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-c",
                            "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2"],
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "MPI could not start: `mpiexec -n 2` timed out"
    if r.returncode != 0:
        return f"MPI could not start: {(r.stderr or r.stdout).strip()[-300:]}"
    return ""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    py = str(Path(nnfast.__file__).resolve().parent.parent)  # the ranks import the nnfast this test imported
    env["PYTHONPATH"] = py + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")  # ranks share the cores
    return env


def mpirun(n: int, script: str, *args: str, timeout: float = 120,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    reason = _mpi_skip_reason()
    if reason:
        pytest.skip(reason)
    cmd = ["mpiexec", "-n", str(n), sys.executable, str(MPI_DIR / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**_env(), **(env or {})})


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    return r.stdout


def test_collectives_three_ranks():
    assert "OK collectives" in _ok(mpirun(3, "collectives.py"))


@pytest.mark.parametrize("first,second", [(2, 3), (3, 2)])
def test_ddp_equivalence_float64_and_resume(tmp_path, first, second):
    """N ranks x batch B == one process x batch N*B (float64, rel 1e-10): SGD with momentum, an MLP
    with SyncBatchNorm and dropout, with and without no_sync; then the checkpoint written after K steps
    on ``first`` ranks resumes on ``second`` ranks and still matches the single process."""
    ck = str(tmp_path / "ck")
    out = _ok(mpirun(first, "ddp_equivalence.py", "--dropout", "0.3", "--save", ck))
    assert f"OK plain world={first}" in out and f"OK no_sync world={first}" in out
    out = _ok(mpirun(second, "ddp_equivalence.py", "--dropout", "0.3", "--load", ck))
    assert f"OK plain-resumed world={second}" in out and f"OK no_sync-resumed world={second}" in out


def test_ddp_equivalence_float32_adam_progress_thread():
    """float32 (rel 1e-5) with Adam, the progress thread forced on (it is off on a 2-core node)."""
    out = _ok(mpirun(3, "ddp_equivalence.py", "--dtype", "float32", "--opt", "adam", "--dropout", "0.2",
                     env={"NNFAST_DDP_PROGRESS_THREAD": "1"}))
    assert "OK plain world=3" in out and "OK no_sync world=3" in out


def test_failing_rank_aborts_the_job():
    r = mpirun(2, "failures.py", "raise", timeout=50)  # rank 0 would wait 30 minutes without the abort
    assert r.returncode != 0
    assert "[rank 1] uncaught exception, aborting every rank" in r.stderr
    assert "deliberate failure on rank 1" in r.stderr
    assert "UNREACHABLE" not in r.stdout


def test_collective_timeout_aborts_the_job():
    r = mpirun(2, "failures.py", "timeout", timeout=50)  # rank 1 sleeps 60 s
    assert r.returncode != 0
    assert "[all_reduce] timed out" in r.stderr
    assert "UNREACHABLE" not in r.stdout
