"""Activation codes of the C++ ``nnfast::Act`` enum (common.h), read from ``_C.Act`` once at import
(plain ints, so a call pays no enum conversion), and the name -> code resolution."""
from __future__ import annotations

from typing import Any, Optional

from ..._native import _C

_A = _C.Act
IDENTITY, RELU, LEAKY_RELU, ELU = int(_A.Identity), int(_A.ReLU), int(_A.LeakyReLU), int(_A.ELU)
SIGMOID, TANH, GELU, GELU_TANH = int(_A.Sigmoid), int(_A.Tanh), int(_A.GELU), int(_A.GELUTanh)
SILU, SOFTPLUS, HARDTANH = int(_A.SiLU), int(_A.Softplus), int(_A.Hardtanh)
COUNT: int = _C.ACT_COUNT  # valid codes are [0, COUNT)

# Codes whose derivative is a function of the output (backward saves y, not x).
GRAD_FROM_OUTPUT = frozenset(_C.ACT_GRAD_FROM_OUTPUT)


def resolve(activation: Optional[Any]) -> tuple[int, float, float]:
    """``(code, a, b)`` for an activation given by name, by (name, kwargs) or None.

    Names: identity/none, relu, relu6, leaky_relu (negative_slope=0.01), elu (alpha=1),
    sigmoid, tanh, gelu (approximate='none'|'tanh'), silu/swish, softplus
    (beta=1, threshold=20), hardtanh (min_val=-1, max_val=1).
    """
    if activation is None:
        return IDENTITY, 0.0, 0.0
    kwargs: dict[str, Any] = {}
    name = activation
    if isinstance(activation, tuple):
        name, kwargs = activation
    if not isinstance(name, str):
        raise TypeError(f"[activation] expected a name such as 'relu', got {activation!r}")
    key = name.lower().replace("-", "_")
    if key in ("identity", "none", "linear"):
        return IDENTITY, 0.0, 0.0
    if key == "relu":
        return RELU, 0.0, 0.0
    if key == "relu6":
        return HARDTANH, 0.0, 6.0
    if key == "leaky_relu":
        return LEAKY_RELU, float(kwargs.get("negative_slope", 0.01)), 0.0
    if key == "elu":
        return ELU, float(kwargs.get("alpha", 1.0)), 0.0
    if key == "sigmoid":
        return SIGMOID, 0.0, 0.0
    if key == "tanh":
        return TANH, 0.0, 0.0
    if key == "gelu":
        approx = kwargs.get("approximate", "none")
        if approx not in ("none", "tanh"):
            raise ValueError(f"[gelu] expected approximate='none' or 'tanh', got {approx!r}")
        return (GELU_TANH if approx == "tanh" else GELU), 0.0, 0.0
    if key == "gelu_tanh":
        return GELU_TANH, 0.0, 0.0
    if key in ("silu", "swish"):
        return SILU, 0.0, 0.0
    if key == "softplus":
        return SOFTPLUS, float(kwargs.get("beta", 1.0)), float(kwargs.get("threshold", 20.0))
    if key == "hardtanh":
        lo, hi = float(kwargs.get("min_val", -1.0)), float(kwargs.get("max_val", 1.0))
        if not lo < hi:
            raise ValueError(f"[hardtanh] expected min_val < max_val, got {lo} and {hi}")
        return HARDTANH, lo, hi
    raise ValueError(
        f"[activation] expected one of identity, relu, relu6, leaky_relu, elu, sigmoid, tanh, gelu, "
        f"gelu_tanh, silu, swish, softplus, hardtanh; got {name!r}"
    )
