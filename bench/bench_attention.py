"""Fused attention benchmark: nnfast vs torch.nn.functional.scaled_dot_product_attention (CPU), same run.

Forward + backward of causal self-attention, B=8, H=8, T=512, D=64, float32, 2 threads (both
libraries), best of N after a correctness check against PyTorch. FLOPs: causal forward
= half of 4 B H T^2 D, backward 2.5x that; % of peak against the measured single-core FMA peak
times the threads. Then the peak-memory table: forward + backward at T = 1024, 2048, 4096
(B=1, H=8, D=64), each contender in its own subprocess, extra VmHWM over the inputs. A second
speed table runs 1 thread timed by process CPU time, which a loaded machine disturbs far less.

    python bench/bench_attention.py [--quick] [--threads 2] [--reps 5] [--amp] [--ab NNFAST_ATTN_TALL_R]

``--amp``: causal fwd+bwd under autocast, nnfast's bf16 route vs its float32 route vs torch.autocast
(1 thread, process CPU time). ``--bf16-level portable`` forces the portable bf16 level in process (as
NNFAST_BF16=portable; the table names the level); NNFAST_ATTN_BF16_COPY=0 restores the route that
rounds every operand as the bf16 GEMM packs each tile (read once: run it as a separate process).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

try:
    import nnfast
except ImportError:  # run from a checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import nnfast
import nnfast.nn.functional as F


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _best(fn, reps: int, clock=time.perf_counter) -> float:
    fn()  # warm up
    ts = []
    for _ in range(reps):
        t0 = clock()
        fn()
        ts.append(clock() - t0)
    return min(ts)


def speed(B: int, H: int, T: int, D: int, threads: int, reps: int, cpu_time: bool = False) -> None:
    """Wall-clock best of ``reps`` on ``threads`` threads; ``cpu_time``: process CPU time instead
    (meaningful on 1 thread, and far less sensitive to other processes on a loaded machine)."""
    import torch

    torch.set_num_threads(threads)
    nnfast.set_num_threads(threads)
    r = np.random.default_rng(0)
    q, k, v, g = (r.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(4))

    def nn_run():
        ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*ts, is_causal=True)
        out.backward(nnfast.tensor(g))
        return out, ts

    def torch_run():
        ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = torch.nn.functional.scaled_dot_product_attention(*ts, is_causal=True)
        out.backward(torch.tensor(g))
        return out, ts

    def nn_fwd():
        with nnfast.no_grad():
            F.scaled_dot_product_attention(nnfast.tensor(q), nnfast.tensor(k), nnfast.tensor(v), is_causal=True)

    def torch_fwd():
        with torch.no_grad():
            torch.nn.functional.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                                             is_causal=True)

    (o1, t1), (o2, t2) = nn_run(), torch_run()
    np.testing.assert_allclose(o1.detach().numpy(), o2.detach().numpy(), rtol=1e-3, atol=1e-4)
    for a, b in zip(t1, t2):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3, atol=1e-3)

    fwd_flops = 0.5 * 4 * B * H * T * T * D  # causal: half of QK^T and PV
    peak = float(nnfast._C.fma_peak_gflops()) * threads
    rows = []
    for name, fn_nn, fn_t, flops in (("forward", nn_fwd, torch_fwd, fwd_flops),
                                     ("forward+backward", lambda: nn_run(), lambda: torch_run(), 3.5 * fwd_flops)):
        tn, tt = [], []
        clock = time.process_time if cpu_time else time.perf_counter
        for _ in range(reps):  # interleaved: both contenders see the same machine load
            tn.append(_best(fn_nn, 1, clock))
            tt.append(_best(fn_t, 1, clock))
        a, b = min(tn), min(tt)
        rows.append((name, a, b, flops))
    print(f"\ncausal sdpa B={B} H={H} T={T} D={D} float32, {threads} threads, best of {reps} "
          f"({'process CPU time' if cpu_time else 'wall clock'}); CPU: {_cpu_name()}; "
          f"ISA {nnfast._C.cpu_isa()}; measured fp32 FMA peak {peak / threads:.1f} GFLOP/s per core")
    print("| pass | nnfast ms | torch ms | nnfast / torch | nnfast GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|")
    for name, a, b, flops in rows:
        print(f"| {name} | {a * 1e3:.1f} | {b * 1e3:.1f} | {a / b:.2f} | {flops / a / 1e9:.1f} | "
              f"{100 * flops / a / 1e9 / peak:.0f}% |")


def amp_speed(B: int, H: int, T: int, D: int, threads: int, reps: int) -> None:
    """Causal forward+backward under autocast (issue 17), process CPU time on ``threads`` (use 1):
    nnfast's bf16 route (tile products on the bf16 GEMM) vs its previous float32 route
    (NNFAST_AMP_ATTENTION=0's, toggled in process) vs torch.autocast + torch SDPA, interleaved."""
    from nnfast.amp import _attention_bf16

    nnfast.set_num_threads(threads)
    r = np.random.default_rng(0)
    q, k, v, g = (r.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(4))

    def nn_run(bf16: bool):
        def run():
            _attention_bf16.ENABLED[0] = bf16
            ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
            with nnfast.autocast("cpu"):
                out = F.scaled_dot_product_attention(*ts, is_causal=True)
            out.backward(nnfast.tensor(g).to(out.dtype))
        return run

    runs = {"nnfast bf16 route": nn_run(True), "nnfast fp32 route": nn_run(False)}
    try:
        import torch

        torch.set_num_threads(threads)

        def torch_run():
            ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = torch.nn.functional.scaled_dot_product_attention(*ts, is_causal=True)
            out.backward(torch.tensor(g).to(out.dtype))

        runs["torch autocast"] = torch_run
    except ImportError:
        pass
    saved = _attention_bf16.ENABLED[0]
    best = {name: float("inf") for name in runs}
    try:
        for _ in range(reps):  # interleaved: every contender sees the same machine load
            for name, fn in runs.items():
                best[name] = min(best[name], _best(fn, 1, time.process_time))
    finally:
        _attention_bf16.ENABLED[0] = saved
    flops = 3.5 * 0.5 * 4 * B * H * T * T * D
    print(f"\ncausal sdpa fwd+bwd under autocast(bf16), B={B} H={H} T={T} D={D}, {threads} thread(s), best of {reps} "
          f"(process CPU time); bf16 level {nnfast._C.bf16_level()}; CPU: {_cpu_name()}")
    print("| route | ms | / nnfast fp32 route | GFLOP/s |")
    print("|---|---|---|---|")
    base = best["nnfast fp32 route"]
    for name, t in best.items():
        print(f"| {name} | {t * 1e3:.1f} | {t / base:.2f} | {flops / t / 1e9:.1f} |")


def switch_ab(var: str, reps: int) -> None:
    """Same-process A/B of a per-call attention switch (NNFAST_ATTN_TALL_R, NNFAST_ATTN_SLICES, ...): causal
    fwd+bwd, 1 thread, process CPU time, on (unset / 1) and off (0) alternated, best of ``reps``; at the
    bench's shape and the GPT examples' attention (x layers), with a same-bits check."""
    nnfast.set_num_threads(1)
    print(f"\n{var}: causal sdpa fwd+bwd float32, 1 thread, best of {reps} (process CPU time, alternated); "
          f"ISA {nnfast._C.cpu_isa()}; CPU: {_cpu_name()}")
    print("| shape | on ms | off ms | on / off | same bits |")
    print("|---|---|---|---|---|")
    saved = os.environ.get(var)
    try:
        for B, H, T, D, L in ((8, 8, 512, 64, 1), (16, 4, 64, 32, 4), (16, 3, 64, 16, 3)):
            r = np.random.default_rng(0)
            q, k, v, g = (r.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(4))

            def run():
                for _ in range(L):
                    ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
                    out = F.scaled_dot_product_attention(*ts, is_causal=True)
                    out.backward(nnfast.tensor(g))
                return [out.detach().numpy()] + [t.grad.numpy() for t in ts]

            best, res = {"1": float("inf"), "0": float("inf")}, {}
            for _ in range(reps):
                for flag in ("1", "0"):
                    os.environ[var] = flag
                    t0 = time.process_time()
                    res[flag] = run()
                    best[flag] = min(best[flag], time.process_time() - t0)
            same = all(np.array_equal(a, b) for a, b in zip(res["1"], res["0"]))
            print(f"| B={B} H={H} T={T} D={D} x {L} | {best['1'] * 1e3:.2f} | {best['0'] * 1e3:.2f} | "
                  f"{best['1'] / best['0']:.3f} | {same} |")
    finally:
        if saved is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = saved


_PEAK = r"""
import json, sys, numpy as np
lib, T = sys.argv[1], int(sys.argv[2])
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
r = np.random.default_rng(0)
arrs = [r.standard_normal((1, 8, T, 64)).astype(np.float32) for _ in range(4)]
if lib == "torch":
    import torch
    torch.set_num_threads(2)
    ts = [torch.tensor(a, requires_grad=True) for a in arrs[:3]]
    g = torch.tensor(arrs[3])
    base = hwm()
    torch.nn.functional.scaled_dot_product_attention(*ts, is_causal=True).backward(g)
else:
    import nnfast, nnfast.nn.functional as F
    ts = [nnfast.tensor(a, requires_grad=True) for a in arrs[:3]]
    g = nnfast.tensor(arrs[3])
    base = hwm()
    F.scaled_dot_product_attention(*ts, is_causal=True).backward(g)
print(json.dumps({"delta": hwm() - base}))
"""


def memory(Ts: list[int]) -> None:
    env = dict(os.environ, NNFAST_NUM_THREADS="2", OMP_NUM_THREADS="2")
    print("\npeak memory of forward+backward (causal, B=1, H=8, D=64, float32): extra VmHWM over the inputs, MiB")
    print("| T | nnfast | torch | a materialised T x T score matrix (all heads) |")
    print("|---|---|---|---|")
    for T in Ts:
        res = {}
        for lib in ("nnfast", "torch"):
            out = subprocess.run([sys.executable, "-c", _PEAK, lib, str(T)], capture_output=True, text=True,
                                 env=env)
            res[lib] = json.loads(out.stdout.strip().splitlines()[-1])["delta"] / 2**20 if out.returncode == 0 \
                else float("nan")
        print(f"| {T} | {res['nnfast']:.1f} | {res['torch']:.1f} | {8 * T * T * 4 / 2**20:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--amp", action="store_true", help="only the autocast table (1 thread, CPU time)")
    ap.add_argument("--ab", metavar="SWITCH", help="only a same-process A/B of this per-call switch, e.g. "
                    "NNFAST_ATTN_TALL_R (1 thread, CPU time)")
    ap.add_argument("--bf16-level", choices=["portable", "avx512_bf16"], help="force this bf16 level")
    a = ap.parse_args()
    if a.bf16_level:
        nnfast._C.set_bf16_level(a.bf16_level)
    if a.ab:
        switch_ab(a.ab, a.reps)
    elif a.amp:
        amp_speed(2, 4, 256, 64, 1, a.reps) if a.quick else amp_speed(8, 8, 512, 64, 1, a.reps)
    elif a.quick:
        speed(2, 4, 256, 64, a.threads, 3)
        memory([1024, 2048])
    else:
        speed(8, 8, 512, 64, a.threads, a.reps)
        speed(8, 8, 512, 64, 1, a.reps, cpu_time=True)
        memory([1024, 2048, 4096])


if __name__ == "__main__":
    main()
