"""``linear`` with a fused bias + activation epilogue, forward and backward."""
from __future__ import annotations

import math
from typing import Any, Optional

from ..._dispatch import contiguous, kernels, xp_of
from ...autograd.function import ACCUMULATED, Function
from ...tensor import Tensor
from . import _act_codes as codes
from ._checks import check_float, check_same_device, check_same_dtype
from ...amp.autocast_mode import amp_op

__all__ = ["linear"]


class LinearFunction(Function):
    """y = act(x @ W^T + b) for x of shape (..., in), W (out, in), b (out,).

    Forward is one GEMM whose epilogue adds the bias and applies the
    activation (storing the pre-activation only when act' needs it).
    Backward: dz = dy * act'(.), dx = dz @ W, dW = dz^T @ x, db = sum(dz);
    transposes are stride swaps inside the GEMM, never copies.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, act: int, a: float, b: float) -> Any:
        K = kernels("linear", x, weight, bias)
        xp = xp_of(x)
        lead = x.shape[:-1]
        x2 = x.reshape(math.prod(lead), x.shape[-1])  # explicit: -1 is ambiguous for empty inputs
        if bias is not None:
            bias = contiguous(bias)  # the epilogue reads bias with unit stride
        out = xp.empty((x2.shape[0], weight.shape[0]), dtype=x.dtype)
        aux = None
        if act not in codes.GRAD_FROM_OUTPUT:
            aux = xp.empty_like(out)
        K.gemm(out, x2, weight.T, 1.0, 0.0, bias, act, a, b, aux)
        ctx.save_for_backward(x2, weight, out if aux is None else aux)
        ctx.act, ctx.a, ctx.b, ctx.has_bias, ctx.lead = act, a, b, bias is not None, lead
        return out.reshape(lead + (weight.shape[0],))

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        x2, weight, saved = ctx.saved_tensors
        K = kernels("linear", dy)
        xp = xp_of(dy)
        dz = dy.reshape(x2.shape[0], weight.shape[0])
        if not dz.flags.c_contiguous:
            dz = xp.ascontiguousarray(dz)
        if ctx.act != codes.IDENTITY:
            dz2 = xp.empty_like(dz)
            K.act_backward(dz2, dz, saved, ctx.act, ctx.a, ctx.b)
            dz = dz2
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = xp.empty(x2.shape, dtype=dy.dtype)
            K.gemm(dx, dz, weight)
            dx = dx.reshape(ctx.lead + (weight.shape[1],))
        # Parameter gradients go straight into an existing .grad (beta = 1)
        # when there is one: no temporary, no separate accumulation pass.
        if ctx.needs_input_grad[1]:
            buf = ctx.grad_buffer(1)
            if buf is not None:
                K.gemm(buf, dz.T, x2, 1.0, 1.0)
                dw = ACCUMULATED
            else:
                dw = xp.empty(weight.shape, dtype=dy.dtype)
                K.gemm(dw, dz.T, x2)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            buf = ctx.grad_buffer(2)
            if buf is not None:
                K.bias_grad(buf, dz, True)
                db = ACCUMULATED
            else:
                db = xp.empty((weight.shape[0],), dtype=dy.dtype)
                K.bias_grad(db, dz, False)
        return dx, dw, db


@amp_op("linear")
def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, activation: Any = None) -> Tensor:
    """Affine map with an optional fused activation: y = activation(input @ weight.T + bias), one GEMM
    with bias and activation in its epilogue.

    ``activation`` (nnfast addition) is a name such as ``"relu"`` or
    ``("gelu", {"approximate": "tanh"})`` (see ``F.activation``).

    Shape: input (*, in_features); weight (out_features, in_features); bias (out_features,) or
    None; output (*, out_features).
    Defaults: bias=None (no bias), activation=None (identity).
    """
    op = "linear"
    check_float(op, input)
    check_float(op, weight, "weight")
    if bias is not None:
        check_float(op, bias, "bias")
    x, w = input._data, weight._data
    if w.dtype != x.dtype or (bias is not None and bias._data.dtype != x.dtype):
        check_same_dtype(op, input, weight, "weight")
        check_same_dtype(op, input, bias, "bias")
    check_same_device(op, input, weight, bias)
    if w.ndim != 2:
        raise ValueError(f"[{op}] expected weight to be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"[{op}] expected input with last dimension {w.shape[1]} (in_features), got shape {x.shape}"
        )
    if bias is not None and bias._data.shape != (w.shape[0],):
        raise ValueError(f"[{op}] expected bias of shape ({w.shape[0]},), got {bias._data.shape}")
    code, a, b = codes.resolve(activation)
    return LinearFunction.apply(input, weight, bias, code, a, b)
