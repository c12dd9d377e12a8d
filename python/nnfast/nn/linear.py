"""``nn.Linear`` (with an optional fused activation) and ``nn.Identity``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor, get_default_dtype
from . import functional as F
from . import init
from .functional import _act_codes
from .module import Module, Parameter

__all__ = ["Linear", "Identity"]


class Linear(Module):
    """Fully connected layer: y = activation(x @ W^T + b), one GEMM with bias and activation fused
    in its epilogue.

    ``weight`` W has shape ``(out_features, in_features)`` and ``bias`` b ``(out_features,)``,
    initialized as PyTorch does: W ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with
    a=sqrt(5)) and b ~ U(-1/sqrt(in), 1/sqrt(in)). ``activation`` (nnfast addition) fuses a
    pointwise activation into the GEMM epilogue, e.g. ``Linear(784, 256, activation="relu")``
    equals ``Sequential(Linear(784, 256), ReLU())``; also ``("gelu", {"approximate": "tanh"})``.

    Shape: input (*, in_features); output (*, out_features).
    Defaults: bias=True, device=None (cpu), dtype=None (the default dtype, float32),
    activation=None (identity).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, activation: Any = None) -> None:
        super().__init__()
        if int(in_features) < 0 or int(out_features) < 0:
            raise ValueError(f"[Linear] expected non-negative sizes, got ({in_features}, {out_features})")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation
        _act_codes.resolve(activation)  # validate early
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((self.out_features,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias, activation=self.activation)

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        if self.activation is not None:
            s += f", activation={self.activation!r}"
        return s


class Identity(Module):
    """Identity(x) = x: returns its input unchanged (accepts and ignores any constructor arguments).

    Shape: input (*), any shape; output (*), the same tensor.
    Defaults: none (arguments are ignored).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input
