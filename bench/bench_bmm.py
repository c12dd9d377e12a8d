"""Batched matmul benchmark: nnfast.bmm (strided batched GEMM) vs NumPy's matmul and torch.bmm.

    python bench/bench_bmm.py [--repeats N]

Checks each result against a float64 NumPy product first, then times the three contenders in
this one run (median of repeats) and prints time, GFLOP/s and the ratios. The machine sets
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which pin NumPy's OpenBLAS to its Haswell kernels; this
script re-executes itself without both (OpenBLAS reads them when NumPy loads), so NumPy runs
its best kernels. That also applies to nnfast and torch, which do not use OpenBLAS.
"""
from __future__ import annotations

import argparse
import os
import sys

_PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _PINNED):
    env = {k: v for k, v in os.environ.items() if k not in _PINNED}
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import numpy as np  # noqa: E402

import nnfast  # noqa: E402
from nnfast.bench.common import cpu_name, median_time, torch_or_none  # noqa: E402

CASES = [  # (batch, M, K, N)
    ("64 x (64x64 @ 64x64)", 64, 64, 64, 64),
    ("attention 8*8 x (128x64 @ 64x128)", 64, 128, 64, 128),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch = torch_or_none()
    print(f"CPU: {cpu_name()}; nnfast threads: {nnfast._C.get_num_threads()}; "
          f"torch threads: {torch.get_num_threads() if torch else '-'}; "
          f"OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for NumPy")
    rng = np.random.default_rng(0)
    for name, b, m, k, n in CASES:
        a = rng.standard_normal((b, m, k)).astype(np.float32)
        w = rng.standard_normal((b, k, n)).astype(np.float32)
        want = np.matmul(a.astype(np.float64), w.astype(np.float64))
        ta, tw = nnfast.from_numpy(a), nnfast.from_numpy(w)
        contenders = {"nnfast": lambda: nnfast.bmm(ta, tw).numpy(), "numpy": lambda: np.matmul(a, w)}
        if torch is not None:
            pa, pw = torch.from_numpy(a), torch.from_numpy(w)
            contenders["torch"] = lambda: torch.bmm(pa, pw).numpy()
        flops = 2.0 * b * m * k * n
        times = {}
        for who, fn in contenders.items():
            err = float(np.max(np.abs(fn() - want)) / np.max(np.abs(want)))
            if err > 1e-5:
                print(f"{name}: {who} is WRONG (max relative error {err:.2e})")
                return 1
            with torch.inference_mode() if (torch is not None and who == "torch") else _null():
                times[who] = median_time(fn, repeats=args.repeats, warmup=3, min_time=0.02)
        print(f"\n{name}: {flops / 1e6:.0f} MFLOP, float32")
        for who, t in times.items():
            ratio = "" if who == "nnfast" else f"   nnfast is {t / times['nnfast']:.2f}x {who}'s speed"
            print(f"  {who:7s} {t * 1e6:9.1f} us  {flops / t / 1e9:7.1f} GFLOP/s{ratio}")
    return 0


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
