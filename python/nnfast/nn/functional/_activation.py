"""Activations: pointwise, PReLU, Swish, GLU / SwiGLU, softmax, step / sign.

Every forward and backward is one nnfast kernel call (``nnfast._C``); the
formulas live next to the kernels in ``csrc/cpu/activation*.cpp`` and
``csrc/core/vec_math.h``.

``inplace=True`` writes into the input and returns it, as in PyTorch, when no
gradient is being recorded for it. When autograd is recording (grad mode on
and the input requires grad) the result is computed out of place instead:
nnfast's tape has no version counters to detect a saved tensor overwritten in
place, so it never risks a silently wrong gradient.
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, Optional, Union

import numpy as np

from ... import _dispatch
from ..._dispatch import ascontiguousarray, contiguous, kernels, xp_of
from ...autograd import grad_mode
from ...autograd.function import Function
from ...tensor import Tensor
from . import _act_codes as codes
from ._checks import check_float, check_same_device, check_same_dtype, check_tensor
from ...amp.autocast_mode import amp_op

__all__ = [
    "activation", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "prelu", "elu", "elu_", "sigmoid",
    "tanh", "gelu", "silu", "swish", "softplus", "hardtanh", "hardtanh_", "mish", "hardswish", "selu", "selu_",
    "celu", "celu_", "softsign", "logsigmoid", "glu", "swiglu", "softmax", "log_softmax", "step", "sign",
]


# ---------------------------------------------------------------- pointwise
_ndarray, _empty, _wrap = np.ndarray, np.empty, Tensor._wrap
_CPU = _dispatch._CPU_KERNELS  # op -> its cpu kernel set (the dispatch table's, read directly)
_FROM_OUTPUT = codes.GRAD_FROM_OUTPUT
_RELU = codes.RELU
_FAST = _dispatch.FAST_PATHS  # False while autocast (or anything else) must see every call


def _contiguous_and_out(a: Any) -> tuple[Any, Any]:
    """``a`` made contiguous, and an uninitialized array like it for a kernel to write into
    (the kernels take contiguous arrays: the output of a forward, the dx of a backward)."""
    a = contiguous(a)
    return a, xp_of(a).empty_like(a)


class ActivationFunction(Function):
    """y = act(x); backward saves y when act' is a function of y, else x."""

    @staticmethod
    def forward(ctx: Any, x: Any, act: int, a: float, b: float, op: str = "activation") -> Any:
        K = kernels(op, x)
        x, y = _contiguous_and_out(x)
        K.act_forward(y, x, act, a, b)
        ctx.save_for_backward(y if act in codes.GRAD_FROM_OUTPUT else x)
        ctx.act, ctx.a, ctx.b, ctx.op = act, a, b, op
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        (saved,) = ctx.saved_tensors
        dy, dx = _contiguous_and_out(dy)
        kernels(ctx.op, dy).act_backward(dx, dy, saved, ctx.act, ctx.a, ctx.b)
        return dx


def _recording(t: Tensor) -> bool:
    return grad_mode.is_grad_enabled() and t.requires_grad


def _in_place(op: str, input: Tensor, run: Any) -> Tensor:
    """Run ``run(out, x)`` with out = x on input's storage; returns input."""
    K = kernels(op, input._data)
    x = input._data
    if not x.flags.writeable:
        raise ValueError(f"[{op}] expected a writeable input for the in-place op, got a read-only array")
    if x.flags.c_contiguous:
        run(K, x, x)
    else:
        tmp = ascontiguousarray(x)
        run(K, tmp, tmp)
        x[...] = tmp
    input._vc[0] += 1  # an in-place write: a backward that saved input sees it
    return input


_NEEDS_FIRST = (True, False, False, False)


def _pointwise(op: str, input: Tensor, code: int, a: float, b: float, inplace: bool = False) -> Tensor:
    if not inplace and _FAST[0]:
        # Fast path (a CPU array; what the binding rejects -- another dtype, strides, a
        # misaligned view -- falls through to the checked path below for its own message).
        x = getattr(input, "_data", None)
        if type(x) is _ndarray:
            y = _empty(x.shape, x.dtype)  # (np.empty: cheaper than empty_like; the kernel takes C order only)
            try:
                _CPU[op].act_forward(y, x, code, a, b)
            except (TypeError, ValueError):
                pass
            else:
                if input.requires_grad and grad_mode._enabled[0]:
                    return _record_pointwise(op, input, x, y, code, a, b)
                return _wrap(y)
    check_float(op, input)
    if inplace and not _recording(input):
        return _in_place(op, input, lambda K, out, x: K.act_forward(out, x, code, a, b))
    return ActivationFunction.apply(input, code, a, b, op=op)


def _record_pointwise(op: str, input: Tensor, x: Any, y: Any, code: int, a: float, b: float) -> Tensor:
    """The fast path's node for ``y = act(x)`` (the fields record_node would write: one tensor input,
    which requires grad)."""
    ctx: Any = ActivationFunction()
    out = _wrap(y, True)
    if code in _FROM_OUTPUT:
        ctx.saved_tensors = (y,)
        versions = [(out._vc, 0, y.shape)]
    else:
        ctx.saved_tensors = (x,)
        versions = [(input._vc, input._vc[0], x.shape)]
    ctx.act, ctx.a, ctx.b, ctx.op = code, a, b, op
    ctx.inputs = (input, None, None, None)
    ctx._next = (input.grad_fn, None, None, None)
    ctx.needs_input_grad = _NEEDS_FIRST
    ctx._versions = versions
    out.grad_fn = ctx
    return out


@amp_op("activation")
def activation(input: Tensor, name: Any) -> Tensor:
    """Apply the pointwise activation named by ``name``: y = f(x) elementwise.

    ``name`` is what ``nn.Linear(..., activation=...)`` accepts: 'identity', 'relu', 'relu6',
    'leaky_relu', 'elu', 'sigmoid', 'tanh', 'gelu', 'silu', 'softplus', ..., or a
    ``(name, kwargs)`` pair such as ``("gelu", {"approximate": "tanh"})`` (see ``_act_codes.resolve``).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: none (``name`` is required; each activation's own parameters default as in its function).
    """
    check_float("activation", input)
    code, a, b = codes.resolve(name)
    return ActivationFunction.apply(input, code, a, b)


def _inplace_variant(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """PyTorch's ``fn_``: ``fn(input, ..., inplace=True)``, with fn's signature less ``inplace`` and a
    docstring made from fn's formula (its first line)."""
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name != "inplace"]

    def variant(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return fn(input, *args, inplace=True, **kwargs)

    variant.__name__ = variant.__qualname__ = fn.__name__ + "_"
    setattr(variant, "__signature__", sig.replace(parameters=params))
    defaults = ", ".join(f"{p.name}={p.default!r}" for p in params if p.default is not p.empty) or "none"
    formula = (fn.__doc__ or "").strip().splitlines()[0].rstrip(".")
    variant.__doc__ = (f"In-place {fn.__name__}: {formula}, written into ``input`` (which must not require a "
                       f"gradient).\n\nShape: input (*), any shape; returns ``input`` itself, overwritten.\n"
                       f"Defaults: {defaults}.\n")
    return variant


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """relu(x) = max(0, x), elementwise (NaN stays NaN).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    # _pointwise's fast path inlined: F.relu on a small tensor is all dispatch, and each Python
    # frame is a tenth of it. FAST_PATHS is off inside autocast, and the binding rejects bfloat16,
    # so whatever autocast's wrapper would reroute reaches it through _relu_checked.
    if not inplace and _FAST[0]:
        x = getattr(input, "_data", None)
        if type(x) is _ndarray:
            y = _empty(x.shape, x.dtype)
            try:
                _CPU["relu"].act_forward(y, x, _RELU, 0.0, 0.0)
            except (TypeError, ValueError):
                pass
            else:
                if input.requires_grad and grad_mode._enabled[0]:
                    return _record_pointwise("relu", input, x, y, _RELU, 0.0, 0.0)
                return _wrap(y)
    return _relu_checked(input, inplace)


@amp_op("relu")
def _relu_checked(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu`` through autocast's wrapper and the checked path."""
    return _pointwise("relu", input, _RELU, 0.0, 0.0, inplace)


@amp_op("relu6")
def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x) = min(max(0, x), 6), elementwise.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    return _pointwise("relu6", input, codes.HARDTANH, 0.0, 6.0, inplace)


@amp_op("leaky_relu")
def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """leaky_relu(x) = x if x > 0 else negative_slope * x.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: negative_slope=0.01, inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    return _pointwise("leaky_relu", input, codes.LEAKY_RELU, float(negative_slope), 0.0, inplace)


@amp_op("elu")
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """elu(x) = x if x > 0 else alpha * (exp(x) - 1).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: alpha=1.0, inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    return _pointwise("elu", input, codes.ELU, float(alpha), 0.0, inplace)


@amp_op("sigmoid")
def sigmoid(input: Tensor) -> Tensor:
    """sigmoid(x) = 1 / (1 + exp(-x)), evaluated without overflow for any x.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: none.
    """
    return _pointwise("sigmoid", input, codes.SIGMOID, 0.0, 0.0)


@amp_op("tanh")
def tanh(input: Tensor) -> Tensor:
    """tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x)).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: none.
    """
    return _pointwise("tanh", input, codes.TANH, 0.0, 0.0)


@amp_op("gelu")
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """gelu(x) = x * Phi(x) with Phi(x) = (1 + erf(x / sqrt(2))) / 2 (``approximate='none'``), or
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (``approximate='tanh'``).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: approximate='none'.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"[gelu] expected approximate='none' or 'tanh', got {approximate!r}")
    return _pointwise("gelu", input, codes.GELU_TANH if approximate == "tanh" else codes.GELU, 0.0, 0.0)


@amp_op("silu")
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """silu(x) = x * sigmoid(x) (swish with beta = 1).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    return _pointwise("silu", input, codes.SILU, 0.0, 0.0, inplace)


@amp_op("softplus")
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """softplus(x) = log(1 + exp(beta * x)) / beta, or x where beta * x > threshold.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: beta=1.0, threshold=20.0.
    """
    return _pointwise("softplus", input, codes.SOFTPLUS, float(beta), float(threshold))


@codes.check("hardtanh")
def _check_hardtanh(min_val: float, max_val: float) -> None:
    if not float(min_val) < float(max_val):
        raise ValueError(f"[hardtanh] expected min_val < max_val, got {min_val} and {max_val}")


@amp_op("hardtanh")
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """hardtanh(x) = clamp(x, min_val, max_val) = min(max(x, min_val), max_val).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: min_val=-1.0, max_val=1.0, inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    _check_hardtanh(min_val, max_val)
    return _pointwise("hardtanh", input, codes.HARDTANH, float(min_val), float(max_val), inplace)


@amp_op("mish")
def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """mish(x) = x * tanh(softplus(x)) = x * tanh(log(1 + exp(x))).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    return _pointwise("mish", input, codes.CODES["mish"], 0.0, 0.0, inplace)


@amp_op("hardswish")
def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """hardswish(x) = x * relu6(x + 3) / 6 (0 for x <= -3, x for x >= 3).

    Gradient as PyTorch's: 0 for x < -3, x / 3 + 0.5 for -3 <= x <= 3, 1 above.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    return _pointwise("hardswish", input, codes.CODES["hardswish"], 0.0, 0.0, inplace)


@amp_op("selu")
def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """selu(x) = scale * (max(0, x) + min(0, alpha * (exp(x) - 1))), alpha = 1.6732632423543772848170429916717,
    scale = 1.0507009873554804934193349852946 (the gradient at x <= 0 is scale * alpha * exp(x)).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    return _pointwise("selu", input, codes.CODES["selu"], 0.0, 0.0, inplace)


@codes.check("celu")
def _check_celu(alpha: float) -> None:
    if float(alpha) == 0.0:  # PyTorch's check, its exception type
        raise RuntimeError("[celu] expected alpha != 0 (ZeroDivisionError: alpha cannot be 0 for CELU)")


@amp_op("celu")
def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """celu(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); alpha == 0 raises RuntimeError
    (the gradient at x <= 0 is exp(x / alpha)).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: alpha=1.0, inplace=False (True writes into ``input`` when no gradient is recorded for it).
    """
    _check_celu(alpha)
    return _pointwise("celu", input, codes.CODES["celu"], float(alpha), 0.0, inplace)


@amp_op("softsign")
def softsign(input: Tensor) -> Tensor:
    """softsign(x) = x / (1 + |x|) (gradient 1 / (1 + |x|)^2).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: none.
    """
    return _pointwise("softsign", input, codes.CODES["softsign"], 0.0, 0.0)


@amp_op("logsigmoid")
def logsigmoid(input: Tensor) -> Tensor:
    """logsigmoid(x) = log(1 / (1 + exp(-x))) = min(x, 0) - log(1 + exp(-|x|)) (gradient sigmoid(-x)).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: none.
    """
    return _pointwise("logsigmoid", input, codes.CODES["logsigmoid"], 0.0, 0.0)


# PyTorch's in-place variants.
relu_ = _inplace_variant(relu)
leaky_relu_ = _inplace_variant(leaky_relu)
elu_ = _inplace_variant(elu)
hardtanh_ = _inplace_variant(hardtanh)
selu_ = _inplace_variant(selu)
celu_ = _inplace_variant(celu)


# ---------------------------------------------------------------- PReLU
class PReLUFunction(Function):
    """y = x > 0 ? x : w[c] x, channels on dim 1 (or one shared weight).

    Backward: dx = dy * (x > 0 ? 1 : w[c]); dw[c] = sum over x <= 0 of dy x,
    reduced inside the kernel.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any) -> Any:
        K = kernels("prelu", x, weight)
        x, y = _contiguous_and_out(x)
        weight = contiguous(weight)
        K.prelu_forward(y, x, weight)
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        x, weight = ctx.saved_tensors
        xp = xp_of(dy)
        dy = contiguous(dy)
        dx = xp.empty_like(dy) if ctx.needs_input_grad[0] else None
        dw = dw_out = None  # dw accumulates in the kernel: into the existing .grad, or fresh zeros
        if ctx.needs_input_grad[1]:
            dw, dw_out = ctx.param_grad(1, xp, weight.shape, weight.dtype)
        kernels("prelu", dy).prelu_backward(dx, dw, dy, x, weight)
        return dx, dw_out


@amp_op("prelu")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """prelu(x) = x if x > 0 else a * x, with slopes a = ``weight``: (1,) shared, or (C,) per channel
    (dim 1 of the input).

    Shape: input (N, C, *) (any shape when weight has one element); weight (1,) or (C,); output
    the input's shape.
    Defaults: none (``weight`` is required).
    """
    op = "prelu"
    check_float(op, input)
    check_float(op, weight, "weight")
    check_same_dtype(op, input, weight, "weight")
    check_same_device(op, input, weight)
    if weight.ndim != 1 or weight.shape[0] < 1:
        raise ValueError(f"[{op}] expected weight of shape (num_parameters,), got {weight.shape}")
    C = weight.shape[0]
    if C > 1 and (input.ndim < 2 or input.shape[1] != C):
        raise ValueError(f"[{op}] expected input with {C} channels on dim 1 to match weight, got shape {input.shape}")
    return PReLUFunction.apply(input, weight)


# ---------------------------------------------------------------- Swish
class SwishFunction(Function):
    """y = x sigmoid(beta x); dy/dx = s + beta x s (1 - s), dy/dbeta = x^2 s (1 - s)."""

    @staticmethod
    def forward(ctx: Any, x: Any, beta: Any) -> Any:
        K = kernels("swish", x, beta if not isinstance(beta, float) else None)
        b = float(beta) if isinstance(beta, float) else float(np.asarray(beta).reshape(-1)[0])
        x, y = _contiguous_and_out(x)
        K.swish_forward(y, x, b)
        ctx.save_for_backward(x)
        ctx.beta, ctx.beta_shape = b, None if isinstance(beta, float) else beta.shape
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        (x,) = ctx.saved_tensors
        xp = xp_of(dy)
        dy = contiguous(dy)
        dx = xp.empty_like(dy) if ctx.needs_input_grad[0] else None
        db = db_out = None  # dbeta accumulates in the kernel: into the existing .grad, or fresh zeros
        if len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            db, db_out = ctx.param_grad(1, xp, ctx.beta_shape, dy.dtype)
        kernels("swish", dy).swish_backward(dx, db, dy, x, ctx.beta)
        return dx, db_out


@amp_op("swish")
def swish(input: Tensor, beta: Union[float, Tensor] = 1.0) -> Tensor:
    """swish(x) = x * sigmoid(beta * x) (nnfast); ``beta`` a float or a one-element tensor (learnable:
    its gradient sum(dy * x^2 sigmoid'(beta x)) is reduced by the backward kernel).

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: beta=1.0.
    """
    op = "swish"
    check_float(op, input)
    if isinstance(beta, Tensor):
        check_float(op, beta, "beta")
        check_same_dtype(op, input, beta, "beta")
        if beta.numel() != 1:
            raise ValueError(f"[{op}] expected beta with one element, got shape {beta.shape}")
        return SwishFunction.apply(input, beta)
    return SwishFunction.apply(input, float(beta))


# ---------------------------------------------------------------- gated units
class GLUFunction(Function):
    """y = value * act(gate), the halves of x along ``dim``.

    GLU: value = first half, gate = second, act = sigmoid. SwiGLU: gate =
    first half, value = second, act = SiLU. Backward from the saved input:
    dvalue = dy act(gate), dgate = dy value act'(gate).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, dim: int, act: int, gate_first: bool) -> Any:
        K = kernels("swiglu" if gate_first else "glu", x)
        x = contiguous(x)
        shape = list(x.shape)
        shape[dim] //= 2
        y = xp_of(x).empty(tuple(shape), dtype=x.dtype)
        K.glu_forward(y, x, dim, act, gate_first)
        ctx.save_for_backward(x)
        ctx.dim, ctx.act, ctx.gate_first = dim, act, gate_first
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        (x,) = ctx.saved_tensors
        dy = contiguous(dy)
        dx = xp_of(dy).empty_like(x)
        kernels("swiglu" if ctx.gate_first else "glu", dy).glu_backward(dx, dy, x, ctx.dim, ctx.act, ctx.gate_first)
        return dx


def _gated(op: str, input: Tensor, dim: int, act: int, gate_first: bool) -> Tensor:
    check_float(op, input)
    if input.ndim == 0:
        raise ValueError(f"[{op}] expected an input with at least one dimension, got a 0-d tensor")
    if not -input.ndim <= dim < input.ndim:
        raise ValueError(f"[{op}] expected dim in [{-input.ndim}, {input.ndim - 1}], got {dim}")
    dim = dim % input.ndim
    if input.shape[dim] % 2:
        raise ValueError(f"[{op}] expected an even size along dim {dim}, got shape {input.shape}")
    return GLUFunction.apply(input, dim, act, gate_first)


@amp_op("glu")
def glu(input: Tensor, dim: int = -1) -> Tensor:
    """glu(x) = a * sigmoid(b), where a, b are the first and second halves of x along ``dim``.

    Shape: input (*, 2H, *) with an even size along ``dim``; output (*, H, *).
    Defaults: dim=-1.
    """
    return _gated("glu", input, int(dim), codes.SIGMOID, False)


@amp_op("swiglu")
def swiglu(input: Tensor, dim: int = -1) -> Tensor:
    """swiglu(x) = silu(a) * b, where a, b are the first and second halves of x along ``dim`` (nnfast).

    With ``input = x @ W.T + c`` for W = [W1; W2] this is Swish(x W1^T + c1) * (x W2^T + c2),
    the SwiGLU feed-forward unit (see ``nn.SwiGLU``).

    Shape: input (*, 2H, *) with an even size along ``dim``; output (*, H, *).
    Defaults: dim=-1.
    """
    return _gated("swiglu", input, int(dim), codes.SILU, True)


# ---------------------------------------------------------------- softmax
class SoftmaxFunction(Function):
    """Softmax / log-softmax along ``dim``; backward from the saved output.

    softmax: dx = y (dy - sum(dy y)); log_softmax: dx = dy - exp(y) sum(dy).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, dim: int, log: bool) -> Any:
        K = kernels("log_softmax" if log else "softmax", x)
        x, y = _contiguous_and_out(x)
        K.softmax_forward(y, x, dim, log)
        ctx.save_for_backward(y)
        ctx.dim, ctx.log = dim, log
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        (y,) = ctx.saved_tensors
        dy, dx = _contiguous_and_out(dy)
        kernels("log_softmax" if ctx.log else "softmax", dy).softmax_backward(dx, dy, y, ctx.dim, ctx.log)
        return dx


def _softmax_dim(op: str, ndim: int, dim: Optional[int], stacklevel: int) -> int:
    if dim is None:
        # PyTorch's legacy implicit choice, with its warning.
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X "
                      "as an argument.", stacklevel=stacklevel)
        dim = 0 if ndim in (0, 1, 3) else 1
    lim = max(ndim, 1)
    if not -lim <= int(dim) < lim:
        raise ValueError(f"[{op}] expected dim in [{-lim}, {lim - 1}], got {dim}")
    return int(dim) % lim


def _softmax(op: str, input: Tensor, dim: Optional[int], dtype: Any, log: bool, stacklevel: int) -> Tensor:
    check_tensor(op, input)
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"[{op}] expected dtype float32 or float64, got {dt}")
        if input.dtype != dt:
            input = input.to(dt)
    check_float(op, input)
    d = _softmax_dim(op, input.ndim, dim, stacklevel + 1)
    return SoftmaxFunction.apply(input, d, log)


@amp_op("softmax")
def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """softmax(x)_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x)) along ``dim`` (numerically stable).

    Shape: input (*), any shape; output (*), the same shape, summing to 1 along ``dim``.
    Defaults: dim=None (PyTorch's legacy implicit choice, with its warning: dim 0 for 0-, 1- and
    3-D input, else dim 1), dtype=None (keep the input's; else cast first).
    """
    return _softmax("softmax", input, dim, dtype, False, _stacklevel)


@amp_op("log_softmax")
def log_softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """log_softmax(x)_i = x_i - max(x) - log(sum_j exp(x_j - max(x))) along ``dim``.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: dim=None (PyTorch's legacy implicit choice, with its warning: dim 0 for 0-, 1- and
    3-D input, else dim 1), dtype=None (keep the input's; else cast first).
    """
    return _softmax("log_softmax", input, dim, dtype, True, _stacklevel)


# ---------------------------------------------------------------- step / sign
class StepFunction(Function):
    """Perceptron step / sign: forward only; the gradient is zero (documented)."""

    @staticmethod
    def forward(ctx: Any, x: Any, sign: bool, threshold: float) -> Any:
        K = kernels("sign" if sign else "step", x)
        x, y = _contiguous_and_out(x)
        K.step_forward(y, x, sign, threshold)
        return y

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        # d step / dx = 0 wherever it exists (PyTorch's sign does the same).
        return xp_of(dy).zeros_like(dy)


def step(input: Tensor, threshold: float = 0.0) -> Tensor:
    """step(x) = 1 if x > threshold else 0: the unit step of the classic perceptron (nnfast).

    Its gradient is zero everywhere (a perceptron learns by its own update rule, not by
    backpropagating through the step). NaN stays NaN.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: threshold=0.0.
    """
    check_float("step", input)
    return StepFunction.apply(input, False, float(threshold))


def sign(input: Tensor) -> Tensor:
    """sign(x) = -1 if x < 0, 0 if x == 0, 1 if x > 0 (zero gradient, as ``torch.sign``). NaN stays NaN.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: none.
    """
    check_float("sign", input)
    return StepFunction.apply(input, True, 0.0)
