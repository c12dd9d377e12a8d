"""Run under ``mpiexec -n N`` (N >= 2): every collective of nnfast.distributed against NumPy formulas
of what each rank holds, blocking and async, contiguous and not; the mismatched-shape errors; new_group;
DDP's bucket launches during backward. Prints ``OK collectives`` on rank 0."""
from __future__ import annotations

import copy
import datetime

import numpy as np

import nnfast
import nnfast.distributed as dist
from nnfast import nn
from nnfast.nn.parallel import DistributedDataParallel as DDP


def local(r: int, shape: tuple[int, ...] = (3, 5), dtype: str = "float64") -> np.ndarray:
    return (np.arange(int(np.prod(shape))).reshape(shape) * (r + 1) + r).astype(dtype)


def eq(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0):
        raise AssertionError(f"{what}: rank {dist.get_rank()} got {a} expected {b}")


def expect_error(fn, text: str) -> None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except (RuntimeError, ValueError, TypeError) as e:
        if text not in str(e):
            raise AssertionError(f"expected {text!r} in {e!r}") from e
        return
    raise AssertionError(f"expected an error with {text!r}")


def main() -> None:
    dist.init_process_group(backend="gloo", timeout=datetime.timedelta(seconds=60))  # runs as "mpi"
    assert dist.is_initialized() and dist.get_backend() == "mpi"
    r, n = dist.get_rank(), dist.get_world_size()
    every = [local(i) for i in range(n)]

    # all_reduce: each op, blocking and async, float64 / float32 / int64, non-contiguous
    for op, ref in ((dist.ReduceOp.SUM, sum(every)), (dist.ReduceOp.AVG, sum(every) / n),
                    (dist.ReduceOp.MAX, np.maximum.reduce(every)), (dist.ReduceOp.MIN, np.minimum.reduce(every)),
                    (dist.ReduceOp.PRODUCT, np.multiply.reduce(every))):
        for async_op in (False, True):
            t = nnfast.tensor(local(r))
            w = dist.all_reduce(t, op=op, async_op=async_op)
            if async_op:
                assert w is not None
                w.wait()
                assert w.is_completed()
            else:
                assert w is None
            eq(t.numpy(), ref, f"all_reduce {op}")
    t32 = nnfast.tensor(local(r, dtype="float32"))
    dist.all_reduce(t32, op=dist.ReduceOp.AVG)
    eq(t32.numpy(), (sum(every) / n).astype("float32"), "all_reduce float32 AVG")
    ti = nnfast.tensor(local(r, dtype="int64"))
    dist.all_reduce(ti)
    eq(ti.numpy(), sum(every).astype("int64"), "all_reduce int64")
    big = nnfast.tensor(local(r, (4, 6)))
    view = big[:, ::2]  # non-contiguous: reduced through a contiguous copy, written back
    dist.all_reduce(view)
    want = local(r, (4, 6))
    want[:, ::2] = sum(local(i, (4, 6)) for i in range(n))[:, ::2]
    eq(big.numpy(), want, "all_reduce non-contiguous")
    expect_error(lambda: dist.all_reduce(ti, op=dist.ReduceOp.AVG), "[all_reduce] expected a floating-point")
    expect_error(lambda: dist.all_reduce(local(r)),  # type: ignore[arg-type]
                 "[all_reduce] expected tensor to be an nnfast.Tensor")

    # mismatched shapes across ranks: a clear error on every rank, no hang
    expect_error(lambda: dist.all_reduce(nnfast.zeros(3 + r)), "[all_reduce] expected the same tensor shape")
    expect_error(lambda: dist.broadcast(nnfast.zeros(2, 1 + r), 0), "[broadcast] expected the same tensor shape")

    # broadcast
    for src in range(n):
        t = nnfast.tensor(local(r))
        dist.broadcast(t, src)
        eq(t.numpy(), every[src], "broadcast")
    expect_error(lambda: dist.broadcast(nnfast.zeros(2), n), "[broadcast] expected src to be a rank")

    # all_gather / all_gather_into_tensor (concatenated and stacked)
    outs = [nnfast.zeros(3, 5, dtype=nnfast.float64) for _ in range(n)]
    dist.all_gather(outs, nnfast.tensor(local(r)))
    for i in range(n):
        eq(outs[i].numpy(), every[i], "all_gather")
    cat = nnfast.zeros(3 * n, 5, dtype=nnfast.float64)
    w = dist.all_gather_into_tensor(cat, nnfast.tensor(local(r)), async_op=True)
    assert w is not None
    w.wait()
    eq(cat.numpy(), np.concatenate(every), "all_gather_into_tensor")
    stk = nnfast.zeros(n, 3, 5, dtype=nnfast.float64)
    dist.all_gather_into_tensor(stk, nnfast.tensor(local(r)))
    eq(stk.numpy(), np.stack(every), "all_gather_into_tensor stacked")
    expect_error(lambda: dist.all_gather_into_tensor(nnfast.zeros(1), nnfast.tensor(local(r))),
                 "[all_gather_into_tensor] expected output_tensor")

    # reduce_scatter_tensor / reduce_scatter: rank i gets block i of the sum
    inp = nnfast.tensor(local(r, (n * 2, 3)))
    out = nnfast.zeros(2, 3, dtype=nnfast.float64)
    dist.reduce_scatter_tensor(out, inp)
    eq(out.numpy(), sum(local(i, (n * 2, 3)) for i in range(n))[2 * r:2 * r + 2], "reduce_scatter_tensor")
    blocks = [nnfast.tensor(local(r + 10 * j, (2, 2))) for j in range(n)]
    out = nnfast.zeros(2, 2, dtype=nnfast.float64)
    dist.reduce_scatter(out, blocks, op=dist.ReduceOp.AVG)
    eq(out.numpy(), sum(local(i + 10 * r, (2, 2)) for i in range(n)) / n, "reduce_scatter AVG")

    # reduce / gather / scatter to and from the last rank
    root = n - 1
    t = nnfast.tensor(local(r))
    dist.reduce(t, root, op=dist.ReduceOp.MAX)
    eq(t.numpy(), np.maximum.reduce(every) if r == root else every[r], "reduce")
    gl = [nnfast.zeros(3, 5, dtype=nnfast.float64) for _ in range(n)] if r == root else None
    dist.gather(nnfast.tensor(local(r)), gl, dst=root)
    if gl is not None:
        for i in range(n):
            eq(gl[i].numpy(), every[i], "gather")
    sl = [nnfast.tensor(local(i + 5)) for i in range(n)] if r == root else None
    t = nnfast.zeros(3, 5, dtype=nnfast.float64)
    dist.scatter(t, sl, src=root)
    eq(t.numpy(), local(r + 5), "scatter")

    # barrier, async barrier
    dist.barrier()
    w = dist.barrier(async_op=True)
    assert w is not None and w.wait()

    # a subgroup of ranks {0, n-1}
    g = dist.new_group([0, n - 1])
    if r in (0, n - 1):
        assert g is not dist.GroupMember.NON_GROUP_MEMBER
        t = nnfast.tensor(local(r))
        dist.all_reduce(t, group=g)
        eq(t.numpy(), every[0] + every[n - 1], "all_reduce on a subgroup")
        assert dist.get_world_size(g) == 2
    else:
        assert g is dist.GroupMember.NON_GROUP_MEMBER

    # SyncBatchNorm on row shards == BatchNorm on the whole batch: output, input gradient, and the
    # parameter gradients summed over the ranks (float64, (N, C) and (N, C, L), non-contiguous input)
    for shape, affine in (((4 * n, 5), True), ((2 * n, 3, 7), True), ((3 * n, 4), False)):
        rng = np.random.default_rng(99)
        xg = rng.standard_normal(shape) * 2 + 0.5
        cot = rng.standard_normal(shape)
        B = shape[0] // n
        ref = nn.BatchNorm1d(shape[1], affine=affine).double()
        sbn = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(shape[1], affine=affine).double())
        assert isinstance(sbn, nn.SyncBatchNorm)
        if affine:
            for m in (ref, sbn):
                m.weight.data = nnfast.tensor(np.linspace(0.5, 1.5, shape[1]))
                m.bias.data = nnfast.tensor(np.linspace(-1, 1, shape[1]))
        xr = nnfast.tensor(xg, requires_grad=True)
        (ref(xr) * nnfast.tensor(cot)).sum().backward()
        yr = ref(xr).detach().numpy()  # second call: running stats move again in both
        big = np.zeros(shape[:1] + (shape[1] + 2,) + shape[2:])
        big[:, 1:-1] = xg
        xs = nnfast.tensor(big[r * B:(r + 1) * B, 1:-1], requires_grad=True)  # non-contiguous view
        (sbn(xs) * nnfast.tensor(cot[r * B:(r + 1) * B])).sum().backward()
        ys = sbn(xs).detach().numpy()
        eq(ys, yr[r * B:(r + 1) * B], f"SyncBatchNorm forward {shape}")
        eq(xs.grad.numpy(), xr.grad.numpy()[r * B:(r + 1) * B], f"SyncBatchNorm input grad {shape}")
        eq(sbn.running_mean.numpy(), ref.running_mean.numpy(), "SyncBatchNorm running_mean")
        eq(sbn.running_var.numpy(), ref.running_var.numpy(), "SyncBatchNorm running_var")
        if affine:
            for name in ("weight", "bias"):
                gsum = nnfast.tensor(getattr(sbn, name).grad.numpy().copy())
                dist.all_reduce(gsum)
                eq(gsum.numpy(), getattr(ref, name).grad.numpy(), f"SyncBatchNorm {name} grad")

    # SyncBatchNorm gradcheck (float64 central differences on the real kernels): the loss is the
    # sum over every rank of <cot_r, y_r>; each probe perturbs one element of one rank's input (or
    # one weight / bias entry, which every rank holds) and all ranks recompute it together
    sb = nn.SyncBatchNorm(3, track_running_stats=False, dtype=nnfast.float64)
    sb.weight.data = nnfast.tensor(np.array([0.7, 1.3, -0.4]))
    sb.bias.data = nnfast.tensor(np.array([0.1, -0.2, 0.3]))
    rng = np.random.default_rng(5 + r)
    xl = rng.standard_normal((2 + r, 3, 2))  # unequal shards
    cot = rng.standard_normal(xl.shape)

    def global_loss() -> float:
        with nnfast.no_grad():
            part = nnfast.tensor(np.array([float((sb(nnfast.tensor(xl)).numpy() * cot).sum())]))
        dist.all_reduce(part)
        return float(part.numpy()[0])

    xt = nnfast.tensor(xl.copy(), requires_grad=True)
    (sb(xt) * nnfast.tensor(cot)).sum().backward()
    dw = nnfast.tensor(sb.weight.grad.numpy().copy())
    db = nnfast.tensor(sb.bias.grad.numpy().copy())
    dist.all_reduce(dw)
    dist.all_reduce(db)
    h = 1e-6
    for owner in range(n):
        for idx in ((0, 0, 0), (1, 2, 1), (0, 1, 1)):
            old = xl[idx]
            if r == owner:
                xl[idx] = old + h
            lp = global_loss()
            if r == owner:
                xl[idx] = old - h
            lm = global_loss()
            if r == owner:
                xl[idx] = old
                num, ana = (lp - lm) / (2 * h), xt.grad.numpy()[idx]
                if abs(num - ana) > 1e-6 * max(1.0, abs(num)):
                    raise AssertionError(f"SyncBatchNorm gradcheck dx{idx} rank {r}: numeric {num} analytic {ana}")
    for name, g_all in (("weight", dw), ("bias", db)):
        par = getattr(sb, name)
        for c in range(3):
            old = par._data[c]
            par._data[c] = old + h
            lp = global_loss()
            par._data[c] = old - h
            lm = global_loss()
            par._data[c] = old
            num, ana = (lp - lm) / (2 * h), g_all.numpy()[c]
            if abs(num - ana) > 1e-6 * max(1.0, abs(num)):
                raise AssertionError(f"SyncBatchNorm gradcheck d{name}[{c}]: numeric {num} analytic {ana}")

    # DDP: several buckets, all started from backward hooks (before the final wait)
    nnfast.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3)).double()
    ddp = DDP(model, bucket_cap_mb=0.0005)
    assert len(ddp._buckets) >= 3, len(ddp._buckets)
    x = nnfast.tensor(np.random.default_rng(r).standard_normal((5, 6)))
    ddp(x).sum().backward()
    assert ddp._early_launches == len(ddp._buckets), (ddp._early_launches, len(ddp._buckets))
    # the gradients are the views of the buckets, averaged over the ranks
    g0 = model[0].weight.grad.numpy().copy()
    mx = nnfast.tensor(g0.copy())
    dist.all_reduce(mx, op=dist.ReduceOp.MAX)
    eq(mx.numpy(), g0, "DDP gradients agree")
    # a parameter the graph does not reach (its bucket is reduced at the end, as zeros); a
    # parameter used twice (two accumulations before its bucket may start)
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.unused = nn.Linear(4, 4)
            self.b = nn.Linear(4, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.b(self.a(self.a(x)))

    nnfast.manual_seed(1)
    net = Net().double()
    uddp = DDP(net, bucket_cap_mb=0.0001, find_unused_parameters=True)
    xs = [np.random.default_rng(i).standard_normal((3, 4)) for i in range(n)]
    uddp(nnfast.tensor(xs[r])).sum().backward()
    ref = copy.deepcopy(net)
    for p in ref.parameters():
        p.grad = None
    for i in range(n):  # the average of every rank's gradient, computed locally
        (ref(nnfast.tensor(xs[i])).sum() / n).backward()
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        want = np.zeros(p.shape) if q.grad is None else q.grad.numpy()
        eq(p.grad.numpy(), want, f"DDP grad of {name}")

    # broadcast_buffers: plain BatchNorm's running stats diverge on rank-specific data; the next
    # forward starts by copying rank 0's to every rank
    bn_model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    bddp = DDP(bn_model)
    bddp(nnfast.tensor(np.random.default_rng(r).standard_normal((6, 3))))
    rm0 = bn_model[1].running_mean.numpy().copy()
    mine = nnfast.tensor(rm0.copy())
    dist.broadcast(mine, 0)
    bn_model.eval()
    with nnfast.no_grad():
        bddp(nnfast.tensor(np.zeros((2, 3))))
    eq(bn_model[1].running_mean.numpy(), mine.numpy(), "broadcast_buffers")
    # a model whose parameters differ between ranks: a clear error at construction
    bad = nn.Linear(4, 4 + r)
    expect_error(lambda: DDP(bad), "[DistributedDataParallel] expected the same parameters")

    if r == 0:
        print("OK collectives", flush=True)
    dist.destroy_process_group()
    assert not dist.is_initialized()


if __name__ == "__main__":
    main()
