"""Data-parallel training over MPI: ``nnfast bench --only distributed``.

The section launches ``mpiexec -n 2`` on this module (``--worker``): two ranks with one thread
each train the 784-1024-1024-10 ReLU MLP with Adam under ``DistributedDataParallel``. Rows:

1. the step on 2 ranks x 1 thread (global batch 256 = 2 x 128) against 1 process x 2 threads
   (batch 256, timed here after the ranks exit), plus the same 2 ranks without the allreduce
   (``no_sync``) to show what communication costs;
2. nnfast's bucketed gradient allreduce (DDP's own buckets, one non-blocking allreduce each,
   started in order and waited for) against one raw mpi4py ``Allreduce`` of the same bytes;
   GB/s counts the gradient bytes once per step (the "algorithm bandwidth");
3. how much of the allreduce time overlaps backward: for each bucket, the time from its start
   to its completion (the first MPI test that finds it done: DDP's progress thread, its polls
   between gradient hooks or its final wait), and the part of that interval before backward's end
   (DDP's end-of-backward callback); beside it, 1 - (communication left after backward's end) /
   (the bucketed allreduce alone). DDP runs its progress thread only where each rank has a spare
   core (``NNFAST_DDP_PROGRESS_THREAD=1`` forces it); the row says whether it ran.

The allreduce rows time communication only (DDP's averaging scale kernel is not included, as the
raw mpi4py call has none).

Every rank checks the step lowers the loss and that the ranks' parameters agree before timing.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

import numpy as np

SIZES = (784, 1024, 1024, 10)
GLOBAL_BATCH = 256
RANKS = 2


def mpi_launcher() -> Optional[str]:
    """The ``mpiexec`` beside this Python (the venv's mpich) or on PATH; None when absent."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _synced_median(comm: Any, fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median seconds per call, every call started together on all ranks (a barrier first) and
    counted until the slowest rank is done."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        comm.Barrier()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _worker(out_path: str, quick: bool) -> None:
    import nnfast
    import nnfast.distributed as dist
    import nnfast.nn as nn
    from nnfast.nn.parallel import DistributedDataParallel
    from mpi4py import MPI

    dist.init_process_group("mpi")
    comm = MPI.COMM_WORLD
    rank, world = dist.get_rank(), dist.get_world_size()
    local = GLOBAL_BATCH // world
    rng = np.random.default_rng(0)
    x = rng.standard_normal((GLOBAL_BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], GLOBAL_BATCH).astype(np.int64)
    xt = nnfast.from_numpy(np.ascontiguousarray(x[rank * local:(rank + 1) * local]))
    yt = nnfast.from_numpy(np.ascontiguousarray(y[rank * local:(rank + 1) * local]))
    nnfast.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
    layers = [nn.Linear(i, o, activation="relu" if k < len(SIZES) - 2 else None)
              for k, (i, o) in enumerate(zip(SIZES[:-1], SIZES[1:]))]
    ddp = DistributedDataParallel(nn.Sequential(*layers))
    opt = nnfast.optim.Adam(ddp.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> float:
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(ddp(xt), yt)
        loss.backward()
        opt.step()
        return float(loss.item())

    def local_step() -> float:
        with ddp.no_sync():
            return step()

    # Correctness before timing: the loss falls and the replicas stay identical.
    first = step()
    for _ in range(5):
        last = step()
    if not last < first:
        raise AssertionError(f"DDP step does not reduce the loss ({first} -> {last})")
    flat = np.concatenate([np.asarray(p.detach().numpy(), np.float64).ravel() for p in ddp.parameters()])
    lo, hi = flat.copy(), flat.copy()
    comm.Allreduce(MPI.IN_PLACE, lo, op=MPI.MIN)
    comm.Allreduce(MPI.IN_PLACE, hi, op=MPI.MAX)
    if not np.array_equal(lo, hi):
        raise AssertionError("DDP replicas differ after 6 steps")

    reps, rounds = (5, 1) if quick else (15, 3)
    # Alternate the contenders so a load spike on the shared machine hits both alike.
    t_ddp, t_loc = [], []
    for _ in range(rounds):
        t_ddp.append(_synced_median(comm, step, reps))
        t_loc.append(_synced_median(comm, local_step, reps))

    # Bucketed allreduce throughput: DDP's buckets, launched and waited as DDP does.
    buckets = list(ddp._buckets)
    nbytes = int(sum(b.buf.nbytes for b in buckets))

    def nnfast_allreduce() -> None:
        for b in buckets:
            ddp._launch(b)
        for b in buckets:
            assert b.work is not None
            b.work.wait()
            b.work = None

    raw = np.ones(nbytes // 4, np.float32)

    def mpi4py_allreduce() -> None:
        comm.Allreduce(MPI.IN_PLACE, raw, op=MPI.SUM)

    t_nn, t_raw = [], []
    for _ in range(rounds):
        t_nn.append(_synced_median(comm, nnfast_allreduce, reps * 2))
        t_raw.append(_synced_median(comm, mpi4py_allreduce, reps * 2))

    # Overlap: each bucket's start, its completion (the first MPI test that finds its request
    # done, whether DDP's progress thread, a poll between gradient hooks or the final wait made
    # it) and backward's end (DDP's end-of-backward callback).
    backend = dist._group(None).backend
    done_at: dict[int, float] = {}
    orig_test = backend.test

    def test(req: Any) -> bool:
        ok = bool(orig_test(req))
        if ok and id(req) not in done_at:
            done_at[id(req)] = time.perf_counter()
        return ok

    events: list[dict[str, Any]] = []
    cur: dict[str, Any] = {"buckets": []}
    orig_launch, orig_finish = ddp._launch, ddp._finish_backward

    def launch(b: Any) -> None:
        t0 = time.perf_counter()
        orig_launch(b)
        cur["buckets"].append((t0, b.work._req))  # the request object stays alive: its id is unique

    def finish() -> None:
        cur["backward_end"] = time.perf_counter()
        orig_finish()
        events.append(cur.copy())
        cur["buckets"] = []

    setattr(backend, "test", test)  # noqa: B010 - instrument the transport's request test
    setattr(ddp, "_launch", launch)  # noqa: B010 - and DDP's bucket launch and backward end
    setattr(ddp, "_finish_backward", finish)  # noqa: B010
    exposed = []
    try:
        for _ in range(reps):
            comm.Barrier()
            step()
            st = getattr(ddp, "comm_stats", {})
            if "comm_done" in st and "backward_done" in st:
                exposed.append(st["comm_done"] - st["backward_done"])
    finally:
        del ddp._launch, ddp._finish_backward, backend.test  # back to the class's methods
    total = overlapped = 0.0
    for ev in events:
        end = ev["backward_end"]
        for start, req in ev["buckets"]:
            done = done_at[id(req)]
            total += done - start
            overlapped += max(0.0, min(done, end) - start)
    frac = overlapped / total if total > 0 else 0.0
    fracs: list[float] = comm.gather(frac, root=0) or []
    # Communication left after backward (DDP's own clock), against the allreduce alone.
    hidden = 1.0 - statistics.median(exposed) / min(t_nn) if exposed else float("nan")
    hiddens: list[float] = comm.gather(hidden, root=0) or []
    progress_thread = bool(getattr(ddp, "_use_thread", False))

    if rank == 0:
        res = {"world": world, "local_batch": local, "threads": nnfast.get_num_threads(),
               "ddp_step_s": min(t_ddp), "local_step_s": min(t_loc),
               "nnfast_allreduce_s": min(t_nn), "mpi4py_allreduce_s": min(t_raw), "grad_bytes": nbytes,
               "buckets": [int(b.buf.nbytes) for b in buckets],
               "overlap_fraction": float(np.mean(fracs)), "overlap_per_rank": fracs,
               "hidden_fraction": float(np.mean(hiddens)), "progress_thread": progress_thread}
        with open(out_path, "w") as f:
            json.dump(res, f)
    dist.barrier()
    dist.destroy_process_group()


def _launch_ranks(quick: bool) -> dict[str, Any]:
    exe = mpi_launcher()
    if exe is None:
        raise RuntimeError("mpiexec not found (pip install 'nnfast[distributed]')")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "ranks.json")
        env = dict(os.environ, NNFAST_NUM_THREADS="1", OMP_NUM_THREADS="1")
        # The ranks import this same nnfast: keep the development tree on their path.
        pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in [env.get("PYTHONPATH")] if p])
        cmd = [exe, "-n", str(RANKS), sys.executable, "-m", "nnfast.bench.distributed", "--worker", out]
        r = subprocess.run(cmd + (["--quick"] if quick else []), env=env, capture_output=True, text=True,
                           timeout=600)
        if r.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
        with open(out) as f:
            res: dict[str, Any] = json.load(f)
    return res


def run(quick: bool = False) -> list[dict[str, Any]]:
    import nnfast

    from .common import median_time
    from .step import check_losses_decrease, nnfast_step_fn

    ranks = _launch_ranks(quick)
    # The baseline: one process, 2 threads, the whole batch of 256, timed after the ranks exit.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((GLOBAL_BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], GLOBAL_BATCH).astype(np.int64)
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(RANKS)
    try:
        nnfast.manual_seed(0)
        one = nnfast_step_fn(SIZES, x, y)
        check_losses_decrease(one)
        time.sleep(0.3)
        t_one = min(median_time(one, repeats=5 if quick else 15, warmup=2) for _ in range(1 if quick else 3))
    finally:
        nnfast.set_num_threads(old)
    model = "-".join(map(str, SIZES))
    n = ranks["world"]
    t_ddp, t_loc = ranks["ddp_step_s"], ranks["local_step_s"]
    t_nn, t_raw, nbytes = ranks["nnfast_allreduce_s"], ranks["mpi4py_allreduce_s"], ranks["grad_bytes"]
    mb = nbytes / 1e6
    thread = "DDP progress thread on" if ranks["progress_thread"] else "DDP progress thread off"
    return [
        {"case": f"{model} Adam step, global batch {GLOBAL_BATCH}",
         "setup": f"1 process x {RANKS} threads, batch {GLOBAL_BATCH}", "ms": t_one * 1e3, "speedup": 1.0},
        {"case": f"{model} Adam step, global batch {GLOBAL_BATCH}",
         "setup": f"{n} ranks x 1 thread, batch {n} x {ranks['local_batch']} (DDP)", "ms": t_ddp * 1e3,
         "speedup": t_one / t_ddp},
        {"case": f"{model} Adam step, global batch {GLOBAL_BATCH}",
         "setup": f"{n} ranks x 1 thread, no allreduce (no_sync)", "ms": t_loc * 1e3, "speedup": t_one / t_loc},
        {"case": f"gradient allreduce, {mb:.2f} MB fp32", "setup": f"nnfast DDP, {len(ranks['buckets'])} buckets",
         "ms": t_nn * 1e3, "gb_s": nbytes / t_nn / 1e9, "pct_of_mpi4py": 100 * t_raw / t_nn},
        {"case": f"gradient allreduce, {mb:.2f} MB fp32", "setup": "mpi4py Allreduce, one buffer",
         "ms": t_raw * 1e3, "gb_s": nbytes / t_raw / 1e9, "pct_of_mpi4py": 100.0},
        {"case": f"allreduce overlapped with backward ({thread})",
         "setup": "bucket start..completion before backward's end", "overlap_pct": 100 * ranks["overlap_fraction"]},
        {"case": f"allreduce overlapped with backward ({thread})",
         "setup": "1 - (comm after backward's end) / allreduce alone",
         "overlap_pct": 100 * max(0.0, ranks["hidden_fraction"])},
    ]


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--worker", default=None, metavar="JSON", help="run as one rank (under mpiexec); rank 0 writes JSON")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.worker:
        _worker(a.worker, a.quick)
        return 0
    from .common import table

    rows = run(quick=a.quick)
    print(table(rows, ["case", "setup", "ms", "speedup", "gb_s", "pct_of_mpi4py", "overlap_pct"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
