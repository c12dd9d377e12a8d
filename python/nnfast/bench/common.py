"""Timing and reporting helpers shared by the benchmarks.

Method: check correctness first, then time each contender in the same run
(warm-up, then the median of several repeats), and report ratios together
with GFLOP/s or GB/s against the machine's measured ceilings.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from typing import Any, Callable, Optional

import numpy as np


def median_time(fn: Callable[[], Any], repeats: int = 7, warmup: int = 2, min_time: float = 0.0) -> float:
    """Median seconds per call; calls are batched so one sample lasts at least ``min_time``."""
    for _ in range(warmup):
        fn()
    inner = 1
    if min_time > 0:
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-7)
        inner = max(1, int(min_time / one))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def torch_or_none() -> Any:
    try:
        import torch

        return torch
    except Exception:
        return None


def threadpool_limits(n: int) -> Any:
    """Context manager limiting NumPy's BLAS threads (threadpoolctl when present)."""
    try:
        from threadpoolctl import threadpool_limits as tl

        return tl(limits=n)
    except Exception:
        import contextlib

        return contextlib.nullcontext()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> Optional[str]:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.check_output(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                                       stderr=subprocess.DEVNULL, text=True).strip() or None
    except Exception:
        return None


def machine() -> dict[str, Any]:
    import nnfast

    info = nnfast.info()
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "simd": info["simd"], "threads": info["num_threads"],
            "numpy": np.__version__, "nnfast": info["version"], "commit": git_commit(),
            "date": time.strftime("%Y-%m-%d"), "fma_peak_gflops_per_core": measure_fma_peak()}


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |" for r in cells]
    return "\n".join(out)


def measure_copy_bandwidth(nbytes: int = 64 << 20, repeats: int = 7) -> float:
    """Copy bandwidth in GB/s counting read + write bytes (NumPy memcpy of a large buffer)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    t = median_time(lambda: np.copyto(dst, src), repeats=repeats)
    return 2 * nbytes / t / 1e9


def measure_fma_peak() -> Optional[float]:
    """Single-core fp32 FMA peak in GFLOP/s from nnfast's native probe, if built."""
    import nnfast

    return float(nnfast._C.fma_peak_gflops())
