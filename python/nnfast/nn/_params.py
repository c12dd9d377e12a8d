"""Parameter creation shared by the layers: PyTorch's shapes, dtypes and initialisation,
written once (Linear, SwiGLU, the norms, PReLU)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..tensor import get_default_dtype
from . import init
from .module import Module, Parameter


def dtype_or_default(dtype: Any) -> np.dtype:
    return np.dtype(dtype) if dtype is not None else get_default_dtype()


def add_parameters(module: Module, dtype: Any, **shapes: Any) -> None:
    """``module.<name> = Parameter(empty(shape))`` for each ``name=shape``; a shape of None
    registers the name as an absent parameter (``bias=False`` in PyTorch)."""
    dt = dtype_or_default(dtype)
    for name, shape in shapes.items():
        if shape is None:
            module.register_parameter(name, None)
        else:
            setattr(module, name, Parameter(np.empty(tuple(shape), dtype=dt)))


def finish_init(module: Any, device: Any) -> None:
    """The last two lines of every layer's ``__init__``: initialise, then move to ``device``."""
    module.reset_parameters()
    if device is not None:
        module.to(device)


def reset_linear(weight: Any, bias: Any, fan_in: int) -> None:
    """nn.Linear's initialisation: W ~ kaiming_uniform(a=sqrt(5)), b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


def reset_affine(weight: Any, bias: Any) -> None:
    """A norm layer's affine parameters: weight ones, bias zeros (each may be absent)."""
    if weight is not None:
        init.ones_(weight)
    if bias is not None:
        init.zeros_(bias)


def shape_tuple(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
