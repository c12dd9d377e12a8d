"""Build and runtime facts: ``nnfast.info()``, threads, CUDA availability."""
from __future__ import annotations

import os
from typing import Any

from ._native import _C


def get_num_threads() -> int:
    """Threads the CPU kernels use (NNFAST_NUM_THREADS, else OMP_NUM_THREADS, else all cores)."""
    return int(_C.get_num_threads())


def set_num_threads(n: int) -> None:
    _C.set_num_threads(int(n))


def _emulated() -> bool:
    return bool(getattr(_C, "cuda_emulated", lambda: False)())


class _Cuda:
    """``nnfast.cuda``: is_available(), is_emulated(), device_count(), get_device_name().

    In an ``NNFAST_CUDA=EMULATE`` build the cuda device is nnfast's SIMT emulator: cuda
    tensors hold host arrays of type ``nnfast.cuda.EmulatedArray`` and their ops run the
    CUDA kernels on the CPU. On a GPU build cuda tensors hold CuPy arrays.
    """

    @property
    def EmulatedArray(self) -> type:
        from ._emulated import EmulatedArray

        return EmulatedArray

    @staticmethod
    def is_compiled() -> bool:
        return bool(_C.cuda_compiled())

    @staticmethod
    def is_emulated() -> bool:
        """True when the cuda device is the CPU emulator (an EMULATE build)."""
        return _emulated()

    @staticmethod
    def device_count() -> int:
        return int(_C.cuda_device_count()) if _C.cuda_compiled() else 0

    @staticmethod
    def is_available() -> bool:
        if _Cuda.device_count() == 0:
            return False
        if _emulated():
            return True
        try:
            import cupy  # noqa: F401
        except ImportError:
            return False
        return True

    @staticmethod
    def get_device_name(device: int = 0) -> str:
        if _Cuda.device_count() <= device:
            return ""
        return "emulated (CPU)" if _emulated() else str(_C.cuda_device_name(device))


cuda = _Cuda()


def info() -> dict[str, Any]:
    """How this build came out and what it found on this machine."""
    try:
        import cupy

        cupy_version = cupy.__version__
    except Exception:
        cupy_version = None
    return {
        "version": _C.__version__,
        "simd": _C.cpu_isa(),
        "simd_supported": [n for n in ("generic", "avx2", "avx512") if _C.cpu_isa_supported(n)],
        "bf16": _C.bf16_level(),
        "bf16_gemm": _C.bf16_kernel(),
        "bf16_supported": [n for n in ("portable", "avx512_bf16", "amx_bf16") if _C.bf16_level_supported(n)],
        "openmp": bool(_C.openmp_enabled()),
        "num_threads": get_num_threads(),
        "cpu_count": os.cpu_count(),
        "compiler": getattr(_C, "compiler", "unknown"),
        "cuda_compiled": bool(_C.cuda_compiled()),
        "cuda_emulated": _emulated(),
        "cuda_available": cuda.is_available(),
        "cuda_device_count": cuda.device_count(),
        "cuda_device": cuda.get_device_name(0) if cuda.device_count() else None,
        "cupy": cupy_version,
    }


def get_include() -> str:
    """Folder holding the C++ headers (``#include <nnfast/gemm.h>``) of the installed kernel library."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


def get_cmake_dir() -> str:
    """Folder for ``-Dnnfast_DIR=...`` so CMake's ``find_package(nnfast CONFIG)`` finds ``nnfast::kernels``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "share", "cmake", "nnfast")


def get_library_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
