"""Activation codes of the C++ ``nnfast::Act`` list (``NNFAST_ACTIVATIONS`` in common.h), read from
``_C.ACT_INFO`` once at import (plain ints, so a call pays no enum conversion), and the table-driven
name -> (code, a, b) resolution used by ``F.activation`` and ``nn.Linear(..., activation=...)``."""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..._native import _C

# name -> code, and name -> ((param, default), ...) naming ActParams a, b in order.
CODES: dict[str, int] = {}
PARAMS: dict[str, tuple[tuple[str, float], ...]] = {}
for _name, _code, _from_out, _params in _C.ACT_INFO:
    CODES[_name] = int(_code)
    PARAMS[_name] = tuple((k, float(v)) for k, v in (p.split("=") for p in _params.split(",") if p))
COUNT: int = _C.ACT_COUNT  # valid codes are [0, COUNT)

# Codes whose derivative is a function of the output (backward saves y, not x).
GRAD_FROM_OUTPUT = frozenset(_C.ACT_GRAD_FROM_OUTPUT)

IDENTITY, RELU, LEAKY_RELU, ELU = CODES["identity"], CODES["relu"], CODES["leaky_relu"], CODES["elu"]
SIGMOID, TANH, GELU, GELU_TANH = CODES["sigmoid"], CODES["tanh"], CODES["gelu"], CODES["gelu_tanh"]
SILU, SOFTPLUS, HARDTANH = CODES["silu"], CODES["softplus"], CODES["hardtanh"]

# Names beyond the list: alias -> (name, fixed kwargs).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "none": ("identity", {}), "linear": ("identity", {}), "swish": ("silu", {}),
    "relu6": ("hardtanh", {"min_val": 0.0, "max_val": 6.0}),
}
# Argument checks, name -> check(*params) raising as the functional does (registered by _activation.py).
CHECKS: dict[str, Callable[..., None]] = {}


def check(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator: register ``fn(*params)`` as the argument check of activation ``name``."""
    def deco(fn: Callable[..., None]) -> Callable[..., None]:
        CHECKS[name] = fn
        return fn
    return deco


def params(name: str, kwargs: dict[str, Any]) -> tuple[float, float]:
    """``(a, b)`` of activation ``name`` from keyword arguments (defaults from the C++ list), checked."""
    spec = PARAMS[name]
    unknown = set(kwargs) - {k for k, _ in spec} - {"inplace"}
    if unknown:
        raise TypeError(f"[{name}] got unexpected keyword arguments {sorted(unknown)}; "
                        f"expected {[k for k, _ in spec]}")
    vals = [float(kwargs.get(k, d)) for k, d in spec]
    if name in CHECKS:
        CHECKS[name](*vals)
    vals += [0.0] * (2 - len(vals))
    return vals[0], vals[1]


def resolve(activation: Optional[Any]) -> tuple[int, float, float]:
    """``(code, a, b)`` for an activation given by name, by (name, kwargs) or None.

    Names: those of ``_C.ACT_INFO`` (identity, relu, leaky_relu, elu, sigmoid, tanh, gelu, gelu_tanh,
    silu, softplus, hardtanh, mish, hardswish, selu, celu, softsign, logsigmoid, ...) with their
    PyTorch keyword arguments and defaults, plus the aliases none/linear, swish, relu6 and
    gelu(approximate='none'|'tanh').
    """
    if activation is None:
        return IDENTITY, 0.0, 0.0
    kwargs: dict[str, Any] = {}
    name = activation
    if isinstance(activation, tuple):
        name, kwargs = activation
        kwargs = dict(kwargs)
    if not isinstance(name, str):
        raise TypeError(f"[activation] expected a name such as 'relu', got {activation!r}")
    key = name.lower().replace("-", "_")
    if key in ALIASES:
        key, fixed = ALIASES[key]
        kwargs = {**kwargs, **fixed}
    if key == "gelu":
        approx = kwargs.pop("approximate", "none")
        if approx not in ("none", "tanh"):
            raise ValueError(f"[gelu] expected approximate='none' or 'tanh', got {approx!r}")
        key = "gelu_tanh" if approx == "tanh" else "gelu"
    if key not in CODES:
        raise ValueError(f"[activation] expected one of {', '.join(sorted(set(CODES) | set(ALIASES)))}; "
                         f"got {name!r}")
    a, b = params(key, kwargs)
    return CODES[key], a, b
