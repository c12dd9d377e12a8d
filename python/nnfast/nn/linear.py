"""``nn.Linear`` (with an optional fused activation) and ``nn.Identity``."""
from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional as F
from .functional import _act_codes
from ._params import add_parameters, finish_init, reset_linear
from .module import Module

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
        add_parameters(self, dtype, weight=(self.out_features, self.in_features),
                       bias=(self.out_features,) if bias else None)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        reset_linear(self.weight, self.bias, self.in_features)

    def forward(self, input: Tensor) -> Tensor:
        # weight / bias read from _parameters directly (Module.__getattr__ is a Python call per
        # name); a reparametrized weight (weight_norm, ...) is no longer there and is read as before.
        ps = self._parameters
        w = ps["weight"] if "weight" in ps else self.weight
        b = ps["bias"] if "bias" in ps else self.bias
        return F.linear(input, w, b, activation=self.activation)

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
