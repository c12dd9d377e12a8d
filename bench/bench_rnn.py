"""Recurrent layers benchmark: a full training step (forward, backward, SGD step) of nn.LSTM / nn.GRU,
nnfast vs PyTorch CPU in the same run, same weights, same thread count.

The classic word-LM configuration: 2 layers, hidden 200, input 200, sequence 35, batch 20. The loss is
sum(output * G) for a fixed random G (so backward starts from the same gradient in both). Before timing,
nnfast's float32 output and weight gradients are checked against PyTorch's. Reports the best and median
of N interleaved repeats, the nnfast / PyTorch time ratio, the GEMM FLOPs of the step
(6 R G H (I + P) per layer: forward input + recurrent products, backward dX, dW_ih, dh, dW_hh) and their
rate as a fraction of the FMA peak and of nnfast's GEMM rate on the step's largest product, both measured
in the same run.

    python bench/bench_rnn.py [--threads 2] [--repeats 20] [--quick] [--cpu-time] [--batch 20] [--hidden 200] [--ab]

--batch / --hidden change N and H (= I); e.g. --batch 256 --hidden 8 is a step where the gate kernels,
not the GEMMs, take most of the time. --ab also times the LSTM step with the other setting of NNFAST_RNN_WAVEFRONT (default: layer by layer;
=1: the 2-layer wavefront), interleaved with the other two in the same run (row "LSTM wavefront" or
"LSTM layer-by-layer").
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

try:
    import nnfast
except ImportError:  # run from a checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import nnfast

from nnfast.bench.common import cpu_name  # noqa: E402


def gemm_rate(threads_reps: int = 10, clock=time.perf_counter) -> float:
    """nnfast's float32 GEMM rate (GFLOP/s) on the LSTM's big product shape (R=700, 800 x 400), best of N:
    the practical peak the step's GEMMs can reach on this machine now (timed with the steps' clock)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((700, 400)).astype(np.float32)
    b = rng.standard_normal((400, 800)).astype(np.float32)
    c = np.empty((700, 800), np.float32)
    ts = []
    for _ in range(threads_reps):
        t0 = clock()
        nnfast._C.gemm(c, a, b)
        ts.append(clock() - t0)
    return 2 * 700 * 800 * 400 / min(ts) / 1e9


def step_flops(G: int, H: int, I: int, layers: int, R: int) -> float:
    return float(sum(6 * R * G * H * ((I if k == 0 else H) + H) for k in range(layers)))


def case(kind: str, T: int, N: int, I: int, H: int, layers: int, repeats: int, torch, clock=time.perf_counter,
         ab: bool = False) -> dict:
    rng = np.random.default_rng(0)
    tm = getattr(torch.nn, kind)(I, H, num_layers=layers)
    nm = getattr(nnfast.nn, kind)(I, H, num_layers=layers)
    nm.load_state_dict({k: nnfast.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    g = rng.standard_normal((T, N, H)).astype(np.float32)
    tx, tg, nx, ng = torch.tensor(x), torch.tensor(g), nnfast.tensor(x), nnfast.tensor(g)
    topt = torch.optim.SGD(tm.parameters(), lr=0.01)
    nopt = nnfast.optim.SGD(nm.parameters(), lr=0.01)

    def t_step():
        topt.zero_grad()
        y, _ = tm(tx)
        (y * tg).sum().backward()
        topt.step()

    def n_step():
        nopt.zero_grad()
        y, _ = nm(nx)
        (y * ng).sum().backward()
        nopt.step()

    # correctness before timing: one forward / backward without the SGD step
    y_t, _ = tm(tx)
    (y_t * tg).sum().backward()
    y_n, _ = nm(nx)
    (y_n * ng).sum().backward()
    np.testing.assert_allclose(y_n.detach().numpy(), y_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    for k, p in tm.named_parameters():
        np.testing.assert_allclose(getattr(nm, k).grad.numpy(), p.grad.numpy(), rtol=2e-3, atol=2e-3)
    from nnfast.nn.functional import _rnn

    wavefront = _rnn._WAVEFRONT
    runs = [("torch", t_step, wavefront), ("nnfast", n_step, wavefront)]
    if ab and kind == "LSTM":  # the other path (wavefront / layer by layer), same process, interleaved
        runs.append(("other", n_step, not wavefront))
    times: dict = {name: [] for name, _, _ in runs}
    try:
        for _ in range(3):
            for _, fn, wf in runs:
                _rnn._WAVEFRONT = wf
                fn()
        for _ in range(repeats):
            for name, fn, wf in runs:
                _rnn._WAVEFRONT = wf
                t0 = clock()
                fn()
                times[name].append(clock() - t0)
    finally:
        _rnn._WAVEFRONT = wavefront
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    fl = step_flops(G, H, I, layers, T * N)
    best = {k: min(v) for k, v in times.items()}
    med = {k: float(np.median(v)) for k, v in times.items()}
    return dict(kind=kind, best=best, med=med, flops=fl)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=20, help="N, sequences per batch")
    ap.add_argument("--hidden", type=int, default=200, help="H, also the input size I")
    ap.add_argument("--ab", action="store_true", help="also time the LSTM layer by layer (NNFAST_RNN_WAVEFRONT=0)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU time (steadier on a loaded machine; at N > 1 threads it "
                         "counts every thread, spin-waits included)")
    args = ap.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    import torch

    torch.set_num_threads(args.threads)
    nnfast.set_num_threads(args.threads)
    reps = 5 if args.quick else args.repeats
    peak = nnfast._C.fma_peak_gflops(False, 0.2) * args.threads  # the per-core figure times the threads used
    gpeak = gemm_rate(clock=clock)
    print(f"CPU: {cpu_name()}; threads {args.threads}; nnfast ISA {nnfast._C.cpu_isa()}; torch {torch.__version__}; "
          f"fp32 FMA peak measured {peak:.0f} GFLOP/s ({args.threads} cores), nnfast GEMM 700x800x400 {gpeak:.0f} GFLOP/s "
          f"({args.threads} threads, same run)")
    N, H = args.batch, args.hidden
    print(f"T=35 N={N} I={H} H={H} layers=2, float32, full training step (forward + backward + SGD); timing: "
          + ("process CPU time (all threads)" if args.cpu_time else "wall time"))
    print(f"| layer | PyTorch best / median ms | nnfast best / median ms | nnfast / PyTorch (best) | GFLOP | "
          f"nnfast GFLOP/s | % of FMA peak | % of GEMM rate |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("LSTM", "GRU"):
        r = case(kind, 35, N, H, H, 2, reps, torch, clock, args.ab)
        b, m = r["best"], r["med"]
        from nnfast.nn.functional import _rnn

        other = kind + (" layer-by-layer" if _rnn._WAVEFRONT else " wavefront")
        for name, label in (("nnfast", kind), ("other", other)):
            if name not in b:
                continue
            rate = r["flops"] / b[name] / 1e9
            print(f"| {label} | {b['torch'] * 1e3:.2f} / {m['torch'] * 1e3:.2f} | {b[name] * 1e3:.2f} / "
                  f"{m[name] * 1e3:.2f} | {b[name] / b['torch']:.2f} | {r['flops'] / 1e9:.2f} | {rate:.0f} | "
                  f"{100 * rate / peak:.0f} % | {100 * rate / gpeak:.0f} % |")


if __name__ == "__main__":
    main()
