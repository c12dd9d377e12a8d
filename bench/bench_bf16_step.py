"""bf16 autocast training step (784-1024-1024-10, batch 256, Adam) against nnfast's fp32 step,
same process, alternating, best of N; optionally against another checkout's Python package
(``--base DIR``: DIR/python with the same build) in alternating subprocesses, or against this
checkout with an environment switch set (``--ab VAR=VALUE``, e.g. ``NNFAST_BF16_NEST=0``: the bf16
GEMM's previous loop nest), for switches a process reads once.

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_bf16_step.py [--cpu] [--reps 15]
    ... python bench/bench_bf16_step.py --base /path/to/base/checkout --rounds 4
    ... python bench/bench_bf16_step.py --ab NNFAST_BF16_NEST=0 --cpu --rounds 4
    ... python bench/bench_bf16_step.py --ab NNFAST_BF16_PACK_GROUP=0 --cpu --rounds 3 --reps 8

Other read-once switches of the bf16 GEMM worth an ``--ab``: NNFAST_BF16_DYNAMIC=0 (the shared-B
schedule's fixed equal shares instead of chunks claimed as threads come free; it shows in wall time
or in the calling thread's CPU time, not in the process total), NNFAST_BF16_PACK_GROUP=0 (one panel
per visit of a K row in the packing), NNFAST_BF16_ADAM_DYNAMIC=0 (Adam with bf16 copies in equal
static shares per thread instead of 64K-element blocks claimed as threads come free; like the
dynamic GEMM schedule it shows in wall time, not in the process total).

``--torch``: PyTorch's fp32 and bf16 autocast steps as extra rows (torch.set_num_threads(1); with
OMP_NUM_THREADS=1 this is the 1-thread comparison of issue 17's "ahead of PyTorch's bf16 step").

``--cpu``: process CPU time (sum over threads; use with OMP_WAIT_POLICY=passive), which survives a
loaded machine better than wall time. Prints fp32 and bf16 ms and the ratio (target <= 0.6), and
the bf16 step with LinearBF16Function's round-once switches off (x and W converted inside each
GEMM's packing instead: the before/after of that change, same process), and with the bf16 GEMM's
candidate thread-schedule size rule (NNFAST_BF16_SHARED_B=auto) instead of shared B, and without the
bf16 weight copies that Adam writes in its pass ("bf16 no Adam copy": each forward converts the
weights, as with NNFAST_BF16_ADAM_COPY=0), and on an AMX CPU with the vdpbf16ps kernel instead of
the tiles ("bf16 avx512_bf16", as NNFAST_BF16=avx512_bf16).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any


def measure(reps: int, cpu: bool, with_torch: bool = False) -> dict[str, float]:
    import numpy as np

    import nnfast
    from nnfast.bench.step import nnfast_step_fn

    clock = time.process_time if cpu else time.perf_counter
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    y = rng.integers(0, 10, 256).astype(np.int64)
    sizes = (784, 1024, 1024, 10)
    nnfast.manual_seed(0)
    fns = {"fp32": nnfast_step_fn(sizes, x, y, False), "bf16": nnfast_step_fn(sizes, x, y, True)}
    try:
        from nnfast.amp.autocast_mode import _ROUND_ONCE as flags
    except ImportError:  # a checkout without the switches
        flags = {}
    variants = [("fp32", "fp32", {}), ("bf16", "bf16", {k: True for k in flags})]
    if flags:  # the same bf16 step with x / W converted inside each GEMM's packing (before/after)
        variants += [("bf16 packing-converts", "bf16", {k: False for k in flags}),
                     ("bf16 x once only", "bf16", {"x": True, "weight": False})]
    # The bf16 step with the GEMM's candidate size rule for its thread schedule instead of shared B
    # (NNFAST_BF16_SHARED_B=auto, read per call: the grid where its B slab fits half an L2).
    variants += [("bf16 schedule rule", "bf16", {k: True for k in flags})]
    # The bf16 step without and with the bf16 weight copies that Adam writes in its pass
    # (NNFAST_BF16_ADAM_COPY=0 / 1; without, each forward converts the weights), each on a model of
    # its own: the copies are per weight, so sharing a model would mix the two.
    copies: Any = None
    try:
        from nnfast.amp import _weight_copies as copies
    except ImportError:  # a checkout without them
        pass
    if copies is not None:
        for name in ("bf16 no Adam copy", "bf16 Adam copy"):  # both on fresh models (placement alike)
            nnfast.manual_seed(0)
            fns[name] = nnfast_step_fn(sizes, x, y, True)
            variants += [(name, name, {k: True for k in flags})]
    # On an AMX CPU: the bf16 step with the vdpbf16ps kernel instead of the tiles (same process;
    # the A/B of the AMX kernel, as NNFAST_BF16=avx512_bf16).
    from nnfast import _C

    kernel0 = _C.bf16_level()
    if _C.bf16_kernel() == "amx_bf16":
        variants += [("bf16 avx512_bf16", "bf16", {k: True for k in flags})]
    if with_torch:  # PyTorch's fp32 and bf16 autocast steps, same model / data, 1 thread
        import torch

        from nnfast.bench.step import torch_step_fn

        torch.set_num_threads(1)
        torch.manual_seed(0)
        fns["torch fp32"] = torch_step_fn(torch, sizes, x, y, False)
        torch.manual_seed(0)
        fns["torch bf16"] = torch_step_fn(torch, sizes, x, y, True)
        variants += [("torch fp32", "torch fp32", {}), ("torch bf16", "torch bf16", {})]
    best = {name: 1e9 for name, _, _ in variants}

    enabled0 = copies.ENABLED[0] if copies is not None else False

    def run(name: str, fn: str, sw: dict[str, bool]) -> float:
        flags.update(sw)
        if name == "bf16 schedule rule":
            os.environ["NNFAST_BF16_SHARED_B"] = "auto"
        if copies is not None:
            copies.ENABLED[0] = name != "bf16 no Adam copy"
        if name == "bf16 avx512_bf16":
            _C.set_bf16_level("avx512_bf16")
        try:
            t = clock()
            fns[fn]()
            return clock() - t
        finally:
            os.environ.pop("NNFAST_BF16_SHARED_B", None)
            _C.set_bf16_level(kernel0)
            if copies is not None:
                copies.ENABLED[0] = enabled0

    for v in variants:
        run(*v), run(*v)
    for _ in range(reps):
        for v in variants:
            best[v[0]] = min(best[v[0]], run(*v))
    flags.update({k: True for k in flags})
    return {k: v * 1e3 for k, v in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", action="store_true", help="process CPU time instead of wall time")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--torch", action="store_true", help="add PyTorch's fp32 and bf16 autocast steps (1 thread)")
    ap.add_argument("--base", help="a checkout whose python/ to compare against (alternating subprocesses)")
    ap.add_argument("--ab", metavar="VAR=VALUE", help="compare against this checkout with VAR=VALUE set (subprocesses)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child or not (a.base or a.ab):
        r = measure(a.reps, a.cpu, a.torch)
        print(f"fp32 {r['fp32']:.3f} bf16 {r['bf16']:.3f} ratio {r['bf16'] / r['fp32']:.3f}", flush=True)
        for k, v in r.items():
            if k not in ("fp32", "bf16"):
                print(f"  {k:<22} {v:.3f} ms  ({v / r['fp32']:.3f} of fp32)", flush=True)
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
    # name -> (PYTHONPATH, extra environment)
    trees: dict[str, tuple[str, dict[str, str]]] = {"new": (here, {})}
    if a.base:
        trees["base"] = (os.path.join(a.base, "python"), {})
    else:
        var, _, value = a.ab.partition("=")
        trees["base"] = (here, {var: value})
    best: dict[str, list[float]] = {k: [1e9, 1e9] for k in trees}
    for _ in range(a.rounds):
        for name, (py, extra) in trees.items():
            env = dict(os.environ, PYTHONPATH=py, **extra)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--reps", str(a.reps)] + (["--cpu"] if a.cpu else [])
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.split()
            best[name] = [min(best[name][0], float(out[1])), min(best[name][1], float(out[3]))]
            print(f"{name:5s} {' '.join(out)}", flush=True)
    for name, (f, b) in best.items():
        print(f"best {name:5s} fp32 {f:.3f} ms  bf16 {b:.3f} ms  bf16/fp32 {b / f:.3f}")


if __name__ == "__main__":
    main()
