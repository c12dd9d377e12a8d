"""nnfast: fast dense neural-network training on CPU and NVIDIA GPUs, without PyTorch.

A PyTorch-shaped API (``nnfast.nn``, ``nnfast.optim``, ``nnfast.autograd``)
over hand-written C++/CUDA kernels for GEMM-based layers, normalizations,
activations, losses and optimizer steps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._native import _C
from . import _tensor_ops

_tensor_ops.install()  # the core operators first: the ops areas build on them at import
# ---- creation area (nnfast/ops/creation.py: dtypes, factories, random): typed names; the rest
# (nnfast.bool, nnfast.int, linspace, Generator ...) arrive with _ops.functions() below.
from ._random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .autograd import enable_grad, inference_mode, no_grad, set_grad_enabled, is_grad_enabled
from .tensor import (
    Tensor, arange, as_tensor, bool_, device, double, dtype, empty, empty_like, float, float16, float32,
    float64, from_dlpack, from_numpy, full, half, int8, int16, int32, int64, is_tensor, long, ones,
    ones_like, rand, randint, randn, randn_like, randperm, set_default_dtype, short, tensor, uint8, zeros,
    zeros_like,
)
from .ops.creation import (
    Size, asarray, bernoulli, eye, finfo, full_like, get_default_dtype, iinfo, is_complex, is_floating_point,
    linspace, logspace, multinomial, normal, poisson, rand_like, randint_like, scalar_tensor, tril_indices,
    triu_indices,
)
# ---- end of the creation area
from ._tensor_ops import cat, stack, where  # noqa: E402
from . import ops as _ops  # noqa: E402

_ops.install()
globals().update(_ops.functions())

__version__: str = _C.__version__

from . import autograd, linalg, nn, optim  # noqa: E402
from . import amp  # noqa: E402
from .amp import autocast, get_autocast_dtype, is_autocast_enabled, set_autocast_enabled  # noqa: E402
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
    # creation area
    "dtype", "half", "short", "int8", "int16", "uint8", "Size", "finfo", "iinfo", "is_floating_point",
    "is_complex", "asarray", "scalar_tensor", "full_like", "rand_like", "randint_like", "linspace", "logspace",
    "eye", "tril_indices", "triu_indices", "bernoulli", "multinomial", "normal", "poisson", "Generator", "seed",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
    "autograd", "linalg", "nn", "optim", "amp", "autocast", "is_autocast_enabled", "get_autocast_dtype",
    "set_autocast_enabled", "utils", "datasets", "io", "training", "cli", "bench",
    "save", "load", "fit",
    "cuda", "info", "get_num_threads", "set_num_threads", "get_include", "get_cmake_dir", "get_library_dir",
    "exp", "log", "sqrt", "matmul", "mm", "sum", "mean", "argmax", "allclose",
    "__version__", "_C",
]
# every area's functions (the dtype names `bool` and `int` stay out: `from nnfast import *` would shadow the builtins)
__all__ += [n for n in _ops.functions() if n not in __all__ and n not in ("bool", "int")]


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


