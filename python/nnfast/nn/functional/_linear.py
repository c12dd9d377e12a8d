"""``linear`` with a fused bias + activation epilogue, forward and backward."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ... import _dispatch
from ..._dispatch import contiguous, kernels, xp_of
from ...autograd import anomaly, grad_mode
from ...autograd.function import ACCUMULATED, Function
from ...tensor import Tensor
from . import _act_codes as codes
from ._checks import check_float, check_same_device, check_same_dtype
from ...amp.autocast_mode import amp_op

__all__ = ["linear"]
_IDENTITY = codes.IDENTITY


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
        # (A 2-D input is used as it is: the node then tracks its version, as the fast path's does.)
        x2 = x if x.ndim == 2 else x.reshape(math.prod(lead), x.shape[-1])  # -1 is ambiguous when empty
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

    _dact_done = False  # set by the consumer that fused this node's activation backward

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        x2, weight, saved = ctx.saved_tensors
        if type(dy) is _ndarray:  # the cpu kernels, without the device lookup
            K, xp = _CPU["linear"], np
        else:
            K, xp = kernels("linear", dy), xp_of(dy)
        dz = dy.reshape(x2.shape[0], weight.shape[0])
        if not dz.flags.c_contiguous:
            dz = xp.ascontiguousarray(dz)
        if ctx.act != _IDENTITY:
            if ctx._dact_done:  # the consumer's dx GEMM already multiplied by act'(saved)
                ctx._dact_done = False
            else:
                dz2 = xp.empty_like(dz)
                K.act_backward(dz2, dz, saved, ctx.act, ctx.a, ctx.b)
                dz = dz2
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = xp.empty(x2.shape, dtype=dy.dtype)
            prev = ctx._next[0]
            if _fusable(prev, dx):
                # The producer of our input is a linear with an activation, and our dx is all the
                # gradient it gets: fold its act' into this GEMM's epilogue (one pass fewer).
                K.gemm(dx, dz, weight, 1.0, 0.0, None, prev.act, prev.a, prev.b, None, prev.saved_tensors[2])
                prev._dact_done = True
            else:
                K.gemm(dx, dz, weight)
            if len(ctx.lead) != 1:  # (a 2-D input's dx already has its shape)
                dx = dx.reshape(ctx.lead + (weight.shape[1],))
        dw, db = linear_param_grads(ctx, K, xp, dz, x2, weight.shape, dy.dtype)
        return dx, dw, db


def linear_param_grads(ctx: Any, K: Any, xp: Any, dz: Any, x2: Any, w_shape: Any, dtype: Any,
                       precision: str = "fp32") -> tuple[Any, Any]:
    """A linear node's weight and bias gradients from dz (rows, out) and the saved 2-D input x2.
    They go straight into an existing .grad (beta = 1) when there is one: no temporary, no
    separate accumulation pass. ``precision`` is the GEMM's ("bf16" under autocast)."""
    dw = db = None
    # The bias gradient: into its .grad (accumulated) or a fresh array; None when not wanted.
    db_out, db_acc = None, False
    if ctx.has_bias and ctx.needs_input_grad[2]:
        db_out = ctx.grad_buffer(2)
        db_acc = db_out is not None
        db = ACCUMULATED if db_acc else xp.empty((w_shape[0],), dtype=dtype)
        if not db_acc:
            db_out = db
    # In fp32 the dW GEMM sums dz's columns as it packs dz^T (row_sums): no pass of its own.
    fuse = db_out is not None and precision == "fp32" and db_out.dtype == dz.dtype
    if ctx.needs_input_grad[1]:
        extra = {"row_sums": db_out, "row_sums_accumulate": db_acc} if fuse else {}
        buf = ctx.grad_buffer(1)
        if buf is not None:
            K.gemm(buf, dz.T, x2, 1.0, 1.0, precision=precision, **extra)
            dw = ACCUMULATED
        else:
            dw = xp.empty(w_shape, dtype=dtype)
            K.gemm(dw, dz.T, x2, precision=precision, **extra)
    else:
        fuse = False
    if db_out is not None and not fuse:
        K.bias_grad(db_out, dz, db_acc)
    return dw, db


def _fusable(prev: Any, dx: Any) -> bool:
    """Whether the node ``prev`` (the producer of a linear's input) is a linear with an activation
    whose backward can be folded into the GEMM that makes ``dx``: its gradient is ``dx`` alone (one
    consumer; no hook or retain_grad to see the gradient before act'), its saved array has dx's
    shape and device, and it has not run or been freed yet."""
    if type(prev) is not LinearFunction:
        return False
    node: Any = prev
    return (node.act != _IDENTITY and node._sole_consumer and node._grad_hooks is None
            and node._retained is None and not node._released and not anomaly._enabled[0]
            and node.saved_tensors[2].shape == dx.shape and type(node.saved_tensors[2]) is type(dx))


def linear(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, activation: Any = None) -> Tensor:
    """Affine map with an optional fused activation: y = activation(input @ weight.T + bias), one GEMM
    with bias and activation in its epilogue.

    ``activation`` (nnfast addition) is a name such as ``"relu"`` or
    ``("gelu", {"approximate": "tanh"})`` (see ``F.activation``).

    Shape: input (*, in_features); weight (out_features, in_features); bias (out_features,) or
    None; output (*, out_features).
    Defaults: bias=None (no bias), activation=None (identity).
    """
    # The fast path is tried here, before autocast's wrapper (one Python frame fewer per call):
    # FAST_PATHS is off inside an autocast region, and the float GEMM rejects bfloat16 operands,
    # so every call autocast's wrapper would reroute reaches it through _linear_checked.
    if _FAST[0]:
        y = _linear_fast(input, weight, bias, activation)
        if y is not None:
            return y
    return _linear_checked(input, weight, bias, activation)


@amp_op("linear")
def _linear_checked(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, activation: Any = None) -> Tensor:
    """``linear`` through autocast's wrapper and the checked path (errors worded here)."""
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


# ---------------------------------------------------------------- the fast path
_ndarray, _empty, _empty_like, _wrap = np.ndarray, np.empty, np.empty_like, Tensor._wrap
_FAST = _dispatch.FAST_PATHS
_CPU = _dispatch._CPU_KERNELS  # op -> cpu kernel set (read per call: tests may patch a kernel)
_ACTS: dict[Any, tuple[int, float, float]] = {None: (codes.IDENTITY, 0.0, 0.0)}  # activation name -> resolved


def _linear_fast(input: Any, weight: Any, bias: Any, activation: Any) -> Optional[Tensor]:
    """``linear`` for CPU operands of rank >= 2, the kernel called inline (no generic
    ``Function.apply``); None when anything is unusual, and the checked path then runs (and words
    any error). An input of rank > 2 (a transformer's (B, T, C)) runs as its (rows, in) view when
    that is a view (C-contiguous leading dims), as the checked path does."""
    x = getattr(input, "_data", None)
    w = getattr(weight, "_data", None)
    bd = None if bias is None else getattr(bias, "_data", None)
    if type(x) is not _ndarray or type(w) is not _ndarray or (bias is not None and type(bd) is not _ndarray):
        return None
    lead = None  # the leading dims of an input of rank > 2
    if x.ndim != 2:
        if x.ndim < 2 or not x.flags.c_contiguous or w.ndim != 2:
            return None
        xs = x.shape
        lead = xs[:-1]
        x = x.reshape(x.size // xs[-1] if xs[-1] else math.prod(lead), xs[-1])  # a view
    try:
        code, a, b = _ACTS[activation]
    except (KeyError, TypeError):  # a new name (resolved once, then cached) or an unhashable spec
        if not isinstance(activation, str):
            return None
        try:
            code, a, b = _ACTS[activation] = codes.resolve(activation)
        except (TypeError, ValueError):  # the checked path words the error
            return None
    try:
        out = _empty((x.shape[0], w.shape[0]), x.dtype)
        aux = None if code in codes.GRAD_FROM_OUTPUT else _empty_like(out)
        _CPU["linear"].gemm(out, x, w.T, 1.0, 0.0, bd, code, a, b, aux)  # checks dtypes, shapes, strides, alignment
    except (TypeError, ValueError, IndexError):
        return None
    y_arr = out if lead is None else out.reshape(lead + (w.shape[0],))
    if not (grad_mode._enabled[0] and (input.requires_grad or weight.requires_grad
                                       or (bias is not None and bias.requires_grad))):
        return _wrap(y_arr)
    ctx: Any = LinearFunction()
    y = _wrap(y_arr, True)
    ctx.saved_tensors = (x, w, out if aux is None else aux)
    ctx.act, ctx.a, ctx.b, ctx.has_bias, ctx.lead = code, a, b, bias is not None, x.shape[:1] if lead is None else lead
    ivc, wvc = input._vc, weight._vc
    versions = [(ivc, ivc[0], input._data.shape), (wvc, wvc[0], w.shape)]
    if aux is None:
        versions.append((y._vc, 0, y_arr.shape))
    # record_node's fields, written out for these six arguments (no list comprehensions per call)
    ctx.inputs = (input, weight, bias, None, None, None)
    if bias is None:
        ctx._next = (input.grad_fn, weight.grad_fn, None, None, None, None)
        ctx.needs_input_grad = (input.requires_grad, weight.requires_grad, False, False, False, False)
    else:
        ctx._next = (input.grad_fn, weight.grad_fn, bias.grad_fn, None, None, None)
        ctx.needs_input_grad = (input.requires_grad, weight.requires_grad, bias.requires_grad, False, False, False)
    y.grad_fn = ctx
    ctx._versions = versions
    return y
