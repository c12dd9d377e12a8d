"""nnfast: fast dense neural-network training on CPU and NVIDIA GPUs, without PyTorch.

A PyTorch-shaped API (``nnfast.nn``, ``nnfast.optim``, ``nnfast.autograd``)
over hand-written C++/CUDA kernels for GEMM-based layers, normalizations,
activations, losses and optimizer steps.
"""
from __future__ import annotations

from ._native import _C
from . import _tensor_ops
from ._random import get_rng_state, initial_seed, manual_seed, set_rng_state
from .autograd import enable_grad, no_grad, set_grad_enabled, is_grad_enabled
from .tensor import (
    Tensor, arange, as_tensor, bool_, device, double, empty, empty_like, float, float16, float32,
    float64, from_dlpack, from_numpy, full, get_default_dtype, int32, int64, is_tensor, long, ones,
    ones_like, rand, randint, randn, randn_like, randperm, set_default_dtype, tensor, zeros, zeros_like,
)
from ._tensor_ops import cat, stack, where

_tensor_ops.install()

__version__: str = _C.__version__

from . import autograd, nn, optim  # noqa: E402
from ._info import cuda, get_cmake_dir, get_include, get_library_dir, get_num_threads, info, set_num_threads  # noqa: E402,E501


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Heavier submodules load on first use.
    import importlib

    if name in ("datasets", "utils", "io", "cli", "training", "bench"):
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("save", "load"):
        return getattr(importlib.import_module(f"{__name__}.io"), name)
    if name == "fit":
        return importlib.import_module(f"{__name__}.training").fit
    raise AttributeError(f"module 'nnfast' has no attribute {name!r}")


def exp(x: Tensor) -> Tensor:
    return x.exp()  # type: ignore[attr-defined, no-any-return]


def log(x: Tensor) -> Tensor:
    return x.log()  # type: ignore[attr-defined, no-any-return]


def sqrt(x: Tensor) -> Tensor:
    return x.sqrt()  # type: ignore[attr-defined, no-any-return]


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return a @ b  # type: ignore[no-any-return, operator]


mm = matmul


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # type: ignore[no-untyped-def]  # noqa: A001
    return x.sum(dim, keepdim)  # type: ignore[attr-defined, no-any-return]


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # type: ignore[no-untyped-def]
    return x.mean(dim, keepdim)  # type: ignore[attr-defined, no-any-return]


def argmax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # type: ignore[no-untyped-def]
    return x.argmax(dim, keepdim)  # type: ignore[attr-defined, no-any-return]


def allclose(a: Tensor, b: Tensor, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    import numpy as _np

    return bool(_np.allclose(_np.asarray(a), _np.asarray(b), rtol=rtol, atol=atol))
