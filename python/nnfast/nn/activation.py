"""Activation modules (PyTorch names, signatures and defaults).

nnfast additions: ``Swish`` (learnable beta), ``SwiGLU`` (both projections in
one GEMM), ``Step`` and ``Sign`` (the classic perceptron's threshold units).
``nn.Identity`` lives in ``nn.linear``.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Union

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from ._params import add_parameters, dtype_or_default, finish_init, reset_linear
from .module import Module, Parameter

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "Sigmoid", "Tanh", "GELU", "SiLU", "Swish", "Softplus",
    "Hardtanh", "Mish", "Hardswish", "SELU", "CELU", "Softsign", "LogSigmoid", "GLU", "SwiGLU", "Softmax", "LogSoftmax", "Step", "Sign",
]


_SAME_SHAPE = "Shape: input (*), any shape; output (*), the same shape."
_INPLACE_NOTE = " (True overwrites the input when no gradient is recorded for it)"


def _complete_doc(cls: type) -> None:
    """A docstring that gives only the formula gets the common Shape line and a Defaults line read
    off ``__init__``'s signature (so the two cannot disagree)."""
    if not cls.__doc__ or "Shape:" in cls.__doc__:
        return
    params = [p for p in inspect.signature(cls).parameters.values()
              if p.default is not p.empty]  # Module.__init__'s *args, **kwargs: none
    defaults = ", ".join(f"{p.name}={p.default!r}" for p in params) or "none (takes no arguments)"
    if params and params[-1].name == "inplace":
        defaults += _INPLACE_NOTE
    cls.__doc__ = f"{cls.__doc__.rstrip()}\n\n    {_SAME_SHAPE}\n    Defaults: {defaults}.\n    "


class _Pointwise(Module):
    """Base of the activation modules that only hold constructor arguments: ``forward`` is
    ``_f(input, *attributes named in _args)`` and ``extra_repr`` lists those attributes
    (``inplace`` only when True, as PyTorch prints them)."""

    _f: Callable[..., Tensor]
    _args: tuple[str, ...] = ()

    def forward(self, input: Tensor) -> Tensor:
        return self._f(input, *[getattr(self, a) for a in self._args])

    def extra_repr(self) -> str:
        return ", ".join("inplace=True" if a == "inplace" else f"{a}={getattr(self, a)!r}"
                         for a in self._args if a != "inplace" or self.inplace)


class _InplacePointwise(_Pointwise):
    """A pointwise activation whose only argument is ``inplace``."""

    _args = ("inplace",)

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace


class ReLU(_InplacePointwise):
    """ReLU(x) = max(0, x), elementwise (NaN stays NaN)."""

    _f = staticmethod(F.relu)


class ReLU6(_InplacePointwise):
    """ReLU6(x) = min(max(0, x), 6), elementwise."""

    _f = staticmethod(F.relu6)


class LeakyReLU(_Pointwise):
    """LeakyReLU(x) = x if x > 0 else negative_slope * x."""

    _f = staticmethod(F.leaky_relu)
    _args = ("negative_slope", "inplace")

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace


class PReLU(Module):
    """PReLU(x) = x if x > 0 else a * x, with a learnable slope a (``weight``).

    ``num_parameters=1`` shares one slope; otherwise one slope per channel (dim 1 of the
    input), so num_parameters must equal C.

    Shape: input (N, C, *) or (*) when num_parameters == 1; output the same shape;
    ``weight`` (num_parameters,).
    Defaults: num_parameters=1, init=0.25 (the slopes' initial value).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if int(num_parameters) < 1:
            raise ValueError(f"[PReLU] expected num_parameters >= 1, got {num_parameters}")
        self.num_parameters = int(num_parameters)
        self.init = float(init)
        add_parameters(self, dtype, weight=(self.num_parameters,))
        finish_init(self, device)

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class _AlphaPointwise(_Pointwise):
    """A pointwise activation with arguments ``alpha`` and ``inplace`` (ELU, CELU)."""

    _args = ("alpha", "inplace")

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace


class ELU(_AlphaPointwise):
    """ELU(x) = x if x > 0 else alpha * (exp(x) - 1)."""

    _f = staticmethod(F.elu)


class Sigmoid(_Pointwise):
    """Sigmoid(x) = 1 / (1 + exp(-x)), evaluated without overflow for any x."""

    _f = staticmethod(F.sigmoid)


class Tanh(_Pointwise):
    """Tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))."""

    _f = staticmethod(F.tanh)


class GELU(_Pointwise):
    """GELU(x) = x * Phi(x), Phi(x) = (1 + erf(x / sqrt(2))) / 2 the standard normal CDF.

    With ``approximate='tanh'``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: approximate='none' (the exact erf form).
    """

    _f = staticmethod(F.gelu)
    _args = ("approximate",)

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"[GELU] expected approximate='none' or 'tanh', got {approximate!r}")
        self.approximate = approximate


class SiLU(_InplacePointwise):
    """SiLU(x) = x * sigmoid(x) = x / (1 + exp(-x)) (Swish with beta = 1)."""

    _f = staticmethod(F.silu)


class Swish(Module):
    """Swish(x) = x * sigmoid(beta * x) (nnfast addition).

    ``learnable=True`` makes ``beta`` a one-element Parameter whose gradient the backward
    kernel reduces; otherwise beta is a fixed float. ``Swish(beta=1.0, learnable=False)``
    equals ``SiLU``.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: beta=1.0, learnable=True; device=None (cpu), dtype=None (the default dtype).
    """

    def __init__(self, beta: float = 1.0, learnable: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.learnable = bool(learnable)
        self.init = float(beta)
        if self.learnable:
            self.beta: Union[Parameter, float] = Parameter(np.full((1,), self.init, dtype=dtype_or_default(dtype)))
            if device is not None:
                self.to(device)
        else:
            self.beta = self.init

    def forward(self, input: Tensor) -> Tensor:
        beta: Union[Tensor, float] = self.beta
        if isinstance(beta, Tensor) and beta.dtype != input.dtype:
            beta = beta.to(input.dtype)
        return F.swish(input, beta)

    def extra_repr(self) -> str:
        return f"beta={self.init}, learnable={self.learnable}"


class Softplus(_Pointwise):
    """Softplus(x) = log(1 + exp(beta * x)) / beta; = x where beta * x > threshold (for stability)."""

    _f = staticmethod(F.softplus)
    _args = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold


class Hardtanh(_Pointwise):
    """Hardtanh(x) = clamp(x, min_val, max_val) = min(max(x, min_val), max_val)."""

    _f = staticmethod(F.hardtanh)
    _args = ("min_val", "max_val", "inplace")

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if not float(min_val) < float(max_val):
            raise ValueError(f"[Hardtanh] expected min_val < max_val, got {min_val} and {max_val}")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace


class Mish(_InplacePointwise):
    """Mish(x) = x * tanh(softplus(x)) = x * tanh(log(1 + exp(x)))."""

    _f = staticmethod(F.mish)


class Hardswish(_InplacePointwise):
    """Hardswish(x) = x * relu6(x + 3) / 6 (0 for x <= -3, x for x >= 3)."""

    _f = staticmethod(F.hardswish)


class SELU(_InplacePointwise):
    """SELU(x) = scale * (max(0, x) + min(0, alpha * (exp(x) - 1))), alpha = 1.6732632423543772848170429916717,
    scale = 1.0507009873554804934193349852946.
    """

    _f = staticmethod(F.selu)


class CELU(_AlphaPointwise):
    """CELU(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); alpha == 0 raises RuntimeError."""

    _f = staticmethod(F.celu)


class Softsign(_Pointwise):
    """Softsign(x) = x / (1 + |x|)."""

    _f = staticmethod(F.softsign)


class LogSigmoid(_Pointwise):
    """LogSigmoid(x) = log(1 / (1 + exp(-x))), computed without overflow."""

    _f = staticmethod(F.logsigmoid)


class GLU(_Pointwise):
    """GLU(x) = a * sigmoid(b), where a, b are the first and second halves of x along ``dim``.

    Shape: input (*, 2H, *) with an even size along ``dim``; output (*, H, *).
    Defaults: dim=-1.
    """

    _f = staticmethod(F.glu)
    _args = ("dim",)

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim


class SwiGLU(Module):
    """SwiGLU(x) = Swish(x W1^T + b1) * (x W2^T + b2) (nnfast addition; Swish(z) = z sigmoid(z)).

    Both projections are ONE GEMM: ``weight`` has shape ``(2 * hidden_features, in_features)``
    (rows ``[:hidden]`` are W1, the gate; rows ``[hidden:]`` are W2, the value) and ``bias``
    ``(2 * hidden_features,)``; a fused swiglu kernel then forms the product (forward and
    backward). Initialized like ``nn.Linear(in_features, 2 * hidden_features)``.

    Shape: input (*, in_features); output (*, hidden_features).
    Defaults: bias=True; device=None (cpu), dtype=None (the default dtype, float32).
    """

    def __init__(self, in_features: int, hidden_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if int(in_features) < 0 or int(hidden_features) < 0:
            raise ValueError(f"[SwiGLU] expected non-negative sizes, got ({in_features}, {hidden_features})")
        self.in_features = int(in_features)
        self.hidden_features = int(hidden_features)
        add_parameters(self, dtype, weight=(2 * self.hidden_features, self.in_features),
                       bias=(2 * self.hidden_features,) if bias else None)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        reset_linear(self.weight, self.bias, self.in_features)

    def forward(self, input: Tensor) -> Tensor:
        return F.swiglu(F.linear(input, self.weight, self.bias), dim=-1)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, hidden_features={self.hidden_features}, "
                f"bias={self.bias is not None}")


class _Softmax(_Pointwise):
    """Softmax and LogSoftmax: ``_f(input, dim)``, whose implicit-dim warning names the caller."""

    _args = ("dim",)

    def __init__(self, dim: Optional[int] = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return self._f(input, self.dim, _stacklevel=5)


class Softmax(_Softmax):
    """Softmax(x)_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x)) along ``dim`` (numerically stable).

    Shape: input (*), any shape; output (*), the same shape, summing to 1 along ``dim``.
    Defaults: dim=None (PyTorch's legacy implicit choice, with its warning: dim 0 for 0-, 1- and
    3-D input, else dim 1); pass ``dim`` explicitly.
    """

    _f = staticmethod(F.softmax)


class LogSoftmax(_Softmax):
    """LogSoftmax(x)_i = x_i - log(sum_j exp(x_j)) along ``dim``, computed stably (shifted by the max).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: dim=None (PyTorch's legacy implicit choice, with its warning: dim 0 for 0-, 1- and
    3-D input, else dim 1); pass ``dim`` explicitly.
    """

    _f = staticmethod(F.log_softmax)


class Step(_Pointwise):
    """Step(x) = 1 if x > threshold else 0: the unit step of the classic perceptron (nnfast).

    Forward only: its gradient is zero everywhere (see ``F.step``).
    """

    _f = staticmethod(F.step)
    _args = ("threshold",)

    def __init__(self, threshold: float = 0.0) -> None:
        super().__init__()
        self.threshold = threshold


class Sign(_Pointwise):
    """Sign(x) = -1 if x < 0, 0 if x == 0, 1 if x > 0 (nnfast; NaN stays NaN).

    Forward only: the gradient is zero everywhere, as for ``torch.sign``.
    """

    _f = staticmethod(F.sign)
    _args = ()


for _name in __all__:  # see _complete_doc
    _complete_doc(globals()[_name])
del _name
