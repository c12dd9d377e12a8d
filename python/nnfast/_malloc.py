"""Keep the heap's freed activation buffers in the process between training steps (glibc).

A training step frees and re-allocates the same large NumPy buffers (activations, gradients,
GEMM outputs) every step. glibc serves blocks above its mmap threshold with a fresh ``mmap`` and
returns free memory at the top of the heap to the OS above its trim threshold; both thresholds
start at 128 KiB and only adapt upwards after such frees, so a transformer step of 100 KiB -
2 MiB buffers page-faults thousands of fresh pages per step (GPT-micro: ~2,200 minor faults,
the kernel zero-filling every page: ~10 % of a 1-thread step). Fixing the thresholds (32 MiB
for mmap, glibc's own adaptive ceiling; 64 MiB of free heap kept) makes steady-state steps reuse
the heap. The environment wins: ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` /
``MALLOC_MMAP_MAX_`` set, or ``NNFAST_MALLOC_TUNE=0``, leave the allocator as it is; so does any
libc other than glibc.

glibc caps the mmap threshold at 32 MiB, so a bigger block (a 64 MB activation) was still a fresh
``mmap`` per call: the kernel zero-fills every page of it on first touch (1 thread, 64 MB relu into
a fresh array: 544 faults, 6.0 ms of CPU against 2.3 ms into a reused one). With
``NNFAST_MALLOC_BIG`` (default on; ``=0``: the old thresholds only) glibc makes no mmaps at all
(``M_MMAP_MAX`` 0): every block comes from the heap, and up to ``BIG_TRIM_THRESHOLD`` of free heap
top stays in the process. The price is that memory freed below the heap top is kept for reuse,
never returned, as a caching allocator does.
"""
from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20
# Free heap top kept with NNFAST_MALLOC_BIG: a step's several 64 MB buffers, at most 1/8 of the RAM.
BIG_TRIM_THRESHOLD = 512 << 20


def tune_malloc() -> bool:
    """Set glibc's mmap / trim thresholds (see the module docstring); True when they were set."""
    env = os.environ
    if (env.get("NNFAST_MALLOC_TUNE", "1") == "0" or "MALLOC_MMAP_THRESHOLD_" in env
            or "MALLOC_TRIM_THRESHOLD_" in env or "MALLOC_MMAP_MAX_" in env or not sys.platform.startswith("linux")):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: its mallopt parameter numbers
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim = TRIM_THRESHOLD
    if env.get("NNFAST_MALLOC_BIG", "1") != "0":
        trim = max(TRIM_THRESHOLD, min(BIG_TRIM_THRESHOLD, _ram_bytes() // 8))
        if not mallopt(_M_MMAP_MAX, 0):
            return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, trim))


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return BIG_TRIM_THRESHOLD * 8


TUNED = tune_malloc()
