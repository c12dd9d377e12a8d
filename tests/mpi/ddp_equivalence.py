"""Run under ``mpiexec -n N``: K DDP steps on N ranks with batch B each == one process with batch N*B.

Every rank also runs the single-process reference itself (the plain model, BatchNorm1d, the whole
global batch), so no result files are exchanged. Cases: plain steps, ``no_sync`` accumulation
(two micro-batches per step), and, with ``--save`` / ``--load``, a checkpoint written after K
steps on one world size and resumed on another. The model is an MLP with BatchNorm (made
SyncBatchNorm by ``convert_sync_batchnorm``) and dropout (``--dropout``). Prints ``OK <case>``
per case on rank 0; any mismatch raises (and the exception hook aborts the job).
"""
from __future__ import annotations

import argparse
import copy
import sys

import numpy as np

import nnfast
import nnfast.distributed as dist
from nnfast import nn
from nnfast.nn.parallel import DistributedDataParallel as DDP

GLOBAL_BATCH = 12  # divisible by 1, 2, 3 ranks
D_IN, HID, D_OUT = 7, 16, 5


def make_model(dtype: str, p_drop: float) -> nn.Module:
    nnfast.manual_seed(1234)
    layers = [nn.Linear(D_IN, HID, bias=False), nn.BatchNorm1d(HID), nn.ReLU()]
    if p_drop > 0:
        layers.append(nn.Dropout(p_drop))
    layers += [nn.Linear(HID, HID), nn.Tanh(), nn.Linear(HID, D_OUT)]
    m = nn.Sequential(*layers)
    return m.double() if dtype == "float64" else m


def data(step: int, micro: int, dtype: str) -> tuple[nnfast.Tensor, nnfast.Tensor]:
    rng = np.random.default_rng(1000 * step + micro)
    x = rng.standard_normal((GLOBAL_BATCH, D_IN)).astype(dtype)
    y = rng.integers(0, D_OUT, GLOBAL_BATCH)
    return nnfast.tensor(x), nnfast.tensor(y)


def make_opt(params, name: str):  # type: ignore[no-untyped-def]
    if name == "adam":
        return nnfast.optim.Adam(params, lr=1e-2)
    return nnfast.optim.SGD(params, lr=0.1, momentum=0.9)


def train(model, opt, steps: range, micro: int, dtype: str, shard, ddp=None):  # type: ignore[no-untyped-def]
    """``micro`` micro-batches per step (gradient accumulation; DDP syncs only the last)."""
    loss_fn = nn.CrossEntropyLoss()
    for k in steps:
        opt.zero_grad()
        for m in range(micro):
            x, y = data(k, m, dtype)
            x, y = shard(x), shard(y)
            run = model if ddp is None else ddp
            if ddp is not None and m < micro - 1:
                with ddp.no_sync():
                    loss = loss_fn(run(x), y) / micro
                    loss.backward()
            else:
                loss = loss_fn(run(x), y) / micro
                loss.backward()
        opt.step()


def compare(case: str, ref: nn.Module, got: nn.Module, tol: float) -> None:
    rs, gs = ref.state_dict(), got.state_dict()
    assert list(rs) == list(gs), (list(rs), list(gs))
    worst = 0.0
    for k in rs:
        a, b = rs[k].detach().numpy().astype(np.float64), gs[k].detach().numpy().astype(np.float64)
        err = float(np.max(np.abs(a - b)) / max(1e-30, float(np.max(np.abs(a))))) if a.size else 0.0
        worst = max(worst, err)
        if err > tol:
            raise AssertionError(f"[{case}] rank {dist.get_rank()}: {k} differs, relative error {err:.3g} > {tol}")
    # every rank must agree bit for bit
    for k in gs:
        v = gs[k].detach().numpy()
        if np.issubdtype(v.dtype, np.floating):
            mx = nnfast.tensor(v.copy())
            dist.all_reduce(mx, op=dist.ReduceOp.MAX)
            if not np.array_equal(mx.numpy(), v):
                raise AssertionError(f"[{case}] ranks disagree on {k}")
    if dist.get_rank() == 0:
        print(f"OK {case} world={dist.get_world_size()} max_rel={worst:.2e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--opt", default="sgd")
    ap.add_argument("--save", default="")
    ap.add_argument("--load", default="")
    ap.add_argument("--cases", default="plain,no_sync")
    a = ap.parse_args()
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    B = GLOBAL_BATCH // n
    tol = 1e-10 if a.dtype == "float64" else 1e-5

    def shard(t: nnfast.Tensor) -> nnfast.Tensor:
        return t[r * B:(r + 1) * B]

    K = a.steps
    for case in a.cases.split(","):
        micro = 2 if case == "no_sync" else 1
        ref = make_model(a.dtype, a.dropout)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(ref))
        ropt = make_opt(ref.parameters(), a.opt)
        nnfast.manual_seed(7)
        if a.load:  # reference: 2K steps straight; DDP: K steps from the checkpoint
            train(ref, ropt, range(2 * K), micro, a.dtype, lambda t: t)
            ckpt = nnfast.load(f"{a.load}.{case}")
            model.load_state_dict(ckpt["model"])
            ddp = DDP(model, bucket_cap_mb=0.0005)  # tiny buckets: several per backward
            opt = make_opt(ddp.parameters(), a.opt)
            opt.load_state_dict(ckpt["optim"])
            nnfast.set_rng_state(ckpt["rng"])  # the dropout stream continues where it stopped
            train(model, opt, range(K, 2 * K), micro, a.dtype, shard, ddp)
            compare(f"{case}-resumed", ref, model, tol)
            continue
        train(ref, ropt, range(K), micro, a.dtype, lambda t: t)
        ddp = DDP(model, bucket_cap_mb=0.0005)
        opt = make_opt(ddp.parameters(), a.opt)
        nnfast.manual_seed(7)
        train(model, opt, range(K), micro, a.dtype, shard, ddp)
        compare(case, ref, model, tol)
        if a.save and r == 0:
            nnfast.save({"model": model.state_dict(), "optim": opt.state_dict(), "rng": nnfast.get_rng_state()},
                        f"{a.save}.{case}")
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    sys.exit(0)
