"""nnfast: fast dense neural-network training on CPU and NVIDIA GPUs, without PyTorch.

A PyTorch-shaped API (``nnfast.nn``, ``nnfast.optim``, ``nnfast.autograd``)
over hand-written C++/CUDA kernels for GEMM-based layers, normalizations,
activations, losses and optimizer steps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Union

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
from . import ops as _ops  # noqa: E402

_ops.install()
globals().update(_ops.functions())

__version__: str = _C.__version__

from . import autograd, nn, optim  # noqa: E402
from ._info import cuda, get_cmake_dir, get_include, get_library_dir, get_num_threads, info, set_num_threads  # noqa: E402,E501


if TYPE_CHECKING:  # lazily loaded below; visible to type checkers
    from . import bench, cli, datasets, io, training, utils
    from .io import load, save
    from .training import fit

__all__ = [
    "Tensor", "tensor", "as_tensor", "from_numpy", "from_dlpack", "is_tensor", "device",
    "zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like", "full", "rand", "randn", "randn_like",
    "randint", "randperm", "arange", "cat", "stack", "where",
    "float", "float16", "float32", "float64", "double", "int32", "int64", "long", "bool_",
    "get_default_dtype", "set_default_dtype",
    "manual_seed", "initial_seed", "get_rng_state", "set_rng_state",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "autograd", "nn", "optim", "utils", "datasets", "io", "training", "cli", "bench",
    "save", "load", "fit",
    "cuda", "info", "get_num_threads", "set_num_threads", "get_include", "get_cmake_dir", "get_library_dir",
    "exp", "log", "sqrt", "matmul", "mm", "sum", "mean", "argmax", "allclose",
    "__version__", "_C",
]
__all__ += [n for n in _ops.pointwise.FUNCTIONS if n not in __all__]  # the pointwise area's functions


def __getattr__(name: str) -> Any:
    # Heavier submodules load on first use.
    import importlib

    if name in ("datasets", "utils", "io", "cli", "training", "bench"):
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("save", "load"):
        return getattr(importlib.import_module(f"{__name__}.io"), name)
    if name == "fit":
        return importlib.import_module(f"{__name__}.training").fit
    raise AttributeError(f"module 'nnfast' has no attribute {name!r}")


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product ``a @ b`` (nnfast's GEMM for 2-D operands); differentiable."""
    return a @ b


mm = matmul


def sum(x: Tensor, dim: Optional[Union[int, tuple[int, ...]]] = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Sum of the elements of ``x`` over ``dim`` (all dims when None); differentiable."""
    return x.sum(dim, keepdim)


def mean(x: Tensor, dim: Optional[Union[int, tuple[int, ...]]] = None, keepdim: bool = False) -> Tensor:
    """Mean of the elements of ``x`` over ``dim`` (all dims when None); differentiable."""
    return x.mean(dim, keepdim)


def argmax(x: Tensor, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    """Indices (int64) of the maxima of ``x`` along ``dim`` (of the flattened tensor when None)."""
    return x.argmax(dim, keepdim)
