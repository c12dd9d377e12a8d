"""DistributedDataParallel on one machine: ``OMP_NUM_THREADS=1 mpiexec -n 2 python bench/bench_ddp.py``.

Rank 0 prints (all times medians over the repeats, same run):
- the gradient allreduce of the 784-1024-1024-10 MLP (float32, 7.5 MB): a raw mpi4py ``Allreduce``
  of one buffer of those bytes against nnfast's bucketed path (DDP's buckets started non-blocking,
  waited, averaged by the scale kernel): throughput ratio nnfast / raw;
- a DDP training step (batch ``--batch`` per rank, SGD) and how much of its allreduce overlaps
  backward: exposed = time from backward's last kernel to the last allreduce done, overlap =
  1 - exposed / (the bucketed allreduce alone).
- the same step in one process on the whole batch (N x B rows, N threads: the other ranks sleep
  meanwhile) against the DDP step (N ranks x 1 thread each): the ratio is the data-parallel speedup.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np

import nnfast
import nnfast.distributed as dist
from nnfast import nn
from nnfast.nn.parallel import DistributedDataParallel as DDP


def median_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    ts = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    dist.init_process_group("mpi")
    from mpi4py import MPI

    r, n = dist.get_rank(), dist.get_world_size()
    nnfast.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    ddp = DDP(model)
    nbytes = sum(b.buf.nbytes for b in ddp._buckets)
    raw = np.ones(nbytes // 4, dtype=np.float32)
    comm = MPI.COMM_WORLD

    def raw_allreduce() -> None:
        comm.Allreduce(MPI.IN_PLACE, raw, op=MPI.SUM)

    def bucketed() -> None:
        for b in ddp._buckets:
            ddp._launch(b)
        ddp._next_launch = len(ddp._buckets)
        ddp._finish_backward()

    raw_allreduce(), bucketed()  # warm up
    t_raw = median_time(raw_allreduce, a.repeats)
    t_nn = median_time(bucketed, a.repeats)

    opt = nnfast.optim.SGD(ddp.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(r)
    x = nnfast.tensor(rng.standard_normal((a.batch, 784)).astype(np.float32))
    y = nnfast.tensor(rng.integers(0, 10, a.batch))
    exposed: list[float] = []
    early: list[float] = []

    def step() -> None:
        opt.zero_grad()
        loss_fn(ddp(x), y).backward()
        opt.step()
        exposed.append(ddp.comm_stats["comm_done"] - ddp.comm_stats["backward_done"])
        early.append(ddp.comm_stats["buckets_done_in_backward"])

    step()
    exposed.clear()
    t_step = median_time(step, a.repeats)
    t_exp = statistics.median(exposed)

    # one process, the whole batch, n threads; the other ranks sleep (a blocking barrier would spin)
    t_one = 0.0
    if r == 0:
        nnfast.set_num_threads(n)
        one = copy.deepcopy(model)
        opt1 = nnfast.optim.SGD(one.parameters(), lr=0.01)
        xa = nnfast.tensor(np.concatenate([x.numpy()] * n))
        ya = nnfast.tensor(np.concatenate([y.numpy()] * n))

        def step1() -> None:
            opt1.zero_grad()
            loss_fn(one(xa), ya).backward()
            opt1.step()

        step1()
        ts = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            step1()
            ts.append(time.perf_counter() - t0)
        t_one = statistics.median(ts)
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(0.01)
    if r == 0:
        print(f"ranks {n}, buckets {len(ddp._buckets)}, gradient bytes {nbytes / 1e6:.2f} MB")
        print(f"allreduce raw mpi4py   {t_raw * 1e3:8.3f} ms  {nbytes / t_raw / 1e9:6.2f} GB/s")
        print(f"allreduce nnfast DDP   {t_nn * 1e3:8.3f} ms  {nbytes / t_nn / 1e9:6.2f} GB/s  "
              f"ratio {t_raw / t_nn:.2f} of raw")
        print(f"DDP step (batch {a.batch}/rank) {t_step * 1e3:8.3f} ms; exposed allreduce {t_exp * 1e3:.3f} ms; "
              f"overlap {max(0.0, 1 - t_exp / t_nn) * 100:.0f}% of the bucketed allreduce; "
              f"buckets finished during backward {statistics.mean(early):.2f} of {len(ddp._buckets)}")
        print(f"1 process x {n} threads, batch {n * a.batch}: {t_one * 1e3:8.3f} ms; "
              f"DDP {n} ranks x 1 thread: {t_step * 1e3:8.3f} ms; speedup {t_one / t_step:.2f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
