"""Benchmark the loss kernels against NumPy (and PyTorch when installed).

Each row checks nnfast against the NumPy result first, then times both in the
same run and prints the ratio and nnfast's effective bandwidth (minimum bytes
moved / time). For the fused cross-entropy forward the minimum traffic is one
read of the logits and one write of the gradient (2 N C itemsize bytes); its
backward reads the saved gradient and writes d(logits) (2 N C itemsize).

    PYTHONPATH=python python bench/bench_loss.py [--threads 1] [--quick]

``--ab NNFAST_X --op ce|gelu|softmax|log_softmax --mb 64``: 1-thread CPU-time A/B of a switch (subprocesses
alternate NNFAST_X=1 / 0; min and median process_time of preallocated-output calls), the
figure to quote on a loaded machine. ce: ``_C.cross_entropy`` rows of 1000; gelu: the erf
GELU forward; softmax / log_softmax: rows of 1000.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

import nnfast
import nnfast.nn.functional as F

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def timeit(fn, min_time=0.3, warmup=2):
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    best = float("inf")
    while time.perf_counter() - t0 < min_time or n < 3:
        s = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - s)
        n += 1
    return best


def np_cross_entropy_fwd_bwd(x, t):
    m = x.max(1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - x[np.arange(len(t)), t])
    g = e / s
    g[np.arange(len(t)), t] -= 1
    g /= len(t)
    return loss, g


def bench_cross_entropy(N, C, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    t = rng.integers(0, C, N)
    xt = nnfast.from_numpy(x).requires_grad_()
    tt = nnfast.tensor(t)
    # correctness first
    out = F.cross_entropy(xt, tt)
    out.backward()
    ref_loss, ref_g = np_cross_entropy_fwd_bwd(x.astype(np.float64), t)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert abs(out.item() - ref_loss) <= tol * max(1, abs(ref_loss)), (out.item(), ref_loss)
    np.testing.assert_allclose(xt.grad.numpy(), ref_g, rtol=tol * 10, atol=tol / N)

    def fwd():
        return F.cross_entropy(xt, tt)

    def fwd_bwd():
        xt.grad = None
        F.cross_entropy(xt, tt).backward()

    t_fwd = timeit(fwd)
    t_all = timeit(fwd_bwd)
    t_np = timeit(lambda: np_cross_entropy_fwd_bwd(x, t))
    nbytes = 2 * N * C * x.itemsize
    row = (f"cross_entropy fwd+grad  N={N:5d} C={C:6d} {np.dtype(dtype).name:7s} "
           f"fwd {t_fwd * 1e3:7.3f} ms ({nbytes / t_fwd / 1e9:5.1f} GB/s)  fwd+bwd {t_all * 1e3:7.3f} ms  "
           f"numpy fwd+bwd {t_np * 1e3:7.3f} ms  ratio {t_np / t_all:5.2f}x")
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_()
        tl = torch.from_numpy(t)

        def tfb():
            tx.grad = None
            torch.nn.functional.cross_entropy(tx, tl).backward()

        t_t = timeit(tfb)
        row += f"  torch {t_t * 1e3:7.3f} ms ({t_t / t_all:4.2f}x)"
    print(row, flush=True)


def bench_linear_cross_entropy(N, H, C, dtype, chunk):
    rng = np.random.default_rng(1)
    x = nnfast.from_numpy((rng.standard_normal((N, H)) * 0.3).astype(dtype)).requires_grad_()
    W = nnfast.from_numpy((rng.standard_normal((C, H)) * 0.05).astype(dtype)).requires_grad_()
    t = nnfast.tensor(rng.integers(0, C, N))
    fused = F.linear_cross_entropy(x, W, None, t, chunk_size=chunk)
    ref = F.cross_entropy(F.linear(x, W), t)
    assert abs(fused.item() - ref.item()) < 1e-4 * abs(ref.item())

    def run_fused():
        x.grad = W.grad = None
        F.linear_cross_entropy(x, W, None, t, chunk_size=chunk).backward()

    def run_ref():
        x.grad = W.grad = None
        F.cross_entropy(F.linear(x, W), t).backward()

    tf, tr = timeit(run_fused), timeit(run_ref)
    flops_fused = 8.0 * N * C * H  # forward GEMM + recomputed GEMM + dx + dW
    print(f"linear_cross_entropy    N={N:5d} H={H:4d} C={C:6d} {np.dtype(dtype).name:7s} chunk={chunk:5d} "
          f"fused {tf * 1e3:8.2f} ms ({flops_fused / tf / 1e9:6.1f} GFLOP/s)  linear+cross_entropy "
          f"{tr * 1e3:8.2f} ms  ratio {tr / tf:4.2f}x  (logits not held: {N * C * np.dtype(dtype).itemsize / 2**20:.0f} "
          f"MiB x2)", flush=True)


def bench_pointwise(n, dtype):
    rng = np.random.default_rng(2)
    xa = rng.standard_normal(n).astype(dtype)
    ya = rng.standard_normal(n).astype(dtype)
    x = nnfast.from_numpy(xa).requires_grad_()
    y = nnfast.from_numpy(ya)
    for name, fn, ref in (
        ("mse_loss", F.mse_loss, lambda: (np.mean((xa - ya) ** 2), 2 * (xa - ya) / n)),
        ("huber_loss", F.huber_loss, None),
        ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, None),
    ):
        if name == "binary_cross_entropy_with_logits":
            y = nnfast.from_numpy((ya > 0).astype(dtype))
        out = fn(x, y)
        if ref is not None:
            rl, _ = ref()
            assert abs(out.item() - rl) <= 1e-4 * abs(rl)

        def run():
            x.grad = None
            fn(x, y).backward()

        t_n = timeit(run)
        t_np = timeit(ref) if ref is not None else float("nan")
        nbytes = 4 * n * xa.itemsize  # fwd reads x, y; bwd reads x, y, writes dx (~5), counted as 4 minimum + 1
        print(f"{name:32s} n={n:9d} {np.dtype(dtype).name:7s} fwd+bwd {t_n * 1e3:7.3f} ms "
              f"({nbytes / t_n / 1e9:5.1f} GB/s)" + ("" if ref is None else f"  numpy {t_np * 1e3:7.3f} ms  ratio "
                                                     f"{t_np / t_n:4.2f}x"), flush=True)


_AB_CHILD = r"""
import sys, time
import numpy as np
import nnfast.nn.functional as F
from nnfast._native import _C
op, n, reps = sys.argv[1], int(sys.argv[2]) * (1 << 20) // 4, int(sys.argv[3])
r = np.random.default_rng(0)
if op == "gelu":
    x = r.standard_normal(n).astype(np.float32)
    out = np.empty_like(x)
    fn = lambda: _C.act_forward(out, x, F._act_codes.GELU)
elif op in ("softmax", "log_softmax"):
    z = (3 * r.standard_normal((n // 1000, 1000))).astype(np.float32)
    zo = np.empty_like(z)
    fn = lambda: _C.softmax_forward(zo, z, 1, op == "log_softmax")
else:
    K = 1000
    B = n // K
    z = (3 * r.standard_normal((B, K))).astype(np.float32)
    zo, loss, t = np.empty_like(z), np.empty(1, np.float32), r.integers(0, K, B)
    fn = lambda: _C.cross_entropy(loss, zo.reshape(B, K, 1), z.reshape(B, K, 1), t.reshape(B, 1), None, -100, 0.0, 1)
fn(); fn()
ts = []
for _ in range(reps):
    a = time.process_time(); fn(); ts.append(time.process_time() - a)
ts.sort()
print(ts[0], ts[len(ts) // 2])
"""


def cpu_ab(var, op, mb, rounds=4, reps=15):
    res = {"1": [], "0": []}
    for k in range(rounds):
        for flag in ("1", "0") if k % 2 == 0 else ("0", "1"):
            env = dict(os.environ, NNFAST_NUM_THREADS="1", **{var: flag})
            out = subprocess.run([sys.executable, "-c", _AB_CHILD, op, str(mb), str(reps)], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            res[flag].append((float(out[0]), float(out[1])))
    for flag in ("1", "0"):
        mins, meds = sorted(a for a, _ in res[flag]), sorted(b for _, b in res[flag])
        print(f"{var}={flag} {op} {mb} MB, 1 thread CPU time: min {mins[0] * 1e3:.3f} ms, "
              f"median of medians {meds[len(meds) // 2] * 1e3:.3f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ab", help="switch to A/B on 1-thread CPU time (e.g. NNFAST_CE_STREAM)")
    ap.add_argument("--op", choices=("ce", "gelu", "softmax", "log_softmax"), default="ce")
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    if args.ab:
        cpu_ab(args.ab, args.op, args.mb, args.rounds)
        return
    if args.threads:
        nnfast.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    info = nnfast.info()
    print(f"# nnfast {info['version']} simd={info['simd']} threads={info['num_threads']}")
    shapes = [(4096, 1000), (512, 32000)] if not args.quick else [(1024, 1000)]
    for N, C in shapes:
        for dt in (np.float32, np.float64):
            bench_cross_entropy(N, C, dt)
    bench_cross_entropy(65536, 10, np.float32)
    for N, H, C, chunk in ([(2048, 256, 32000, 4096)] if not args.quick else [(256, 64, 8000, 2048)]):
        bench_linear_cross_entropy(N, H, C, np.float32, chunk)
    bench_pointwise(1 << 22 if not args.quick else 1 << 18, np.float32)


if __name__ == "__main__":
    main()
