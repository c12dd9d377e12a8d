"""Gradient clipping: ``clip_grad_norm_``, ``clip_grad_value_`` (PyTorch's API).

Norms and scaling run in nnfast's multi-tensor kernels: every gradient of the
call is read once for the norm (summed in float64 over fixed blocks, so the
result does not depend on the thread count) and, when clipping is needed,
scaled in place in one more pass.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Union

import numpy as np

from ..._dispatch import kernel_ready, kernels
from ...tensor import Tensor, get_default_dtype

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]

_TensorOrTensors = Union[Tensor, Iterable[Tensor]]


def _params(op: str, parameters: Any) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        params = list(parameters)
    except TypeError:
        raise TypeError(f"[{op}] expected parameters to be a Tensor or an iterable of Tensors, "
                        f"got {type(parameters).__name__}") from None
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"[{op}] expected parameters to be Tensors, got {type(p).__name__}")
    return params


def _grads(parameters: _TensorOrTensors, op: str = "clip_grad_norm_") -> list[np.ndarray]:
    out = []
    for p in _params(op, parameters):
        if p.grad is not None:
            out.append(p.grad._data if isinstance(p.grad, Tensor) else p.grad)
    return out


def _check_float(op: str, arrays: list[Any]) -> None:
    for a in arrays:
        dt = a.dtype
        if dt.kind != "f" or dt.itemsize not in (4, 8) or not dt.isnative:
            raise TypeError(f"[{op}] expected float32 or float64 gradients (native byte order), got "
                            f"{dt.str if dt.kind == 'f' else dt}")


def _contiguous(arrays: list[np.ndarray]) -> list[np.ndarray]:
    # C-contiguous and aligned to the itemsize, as the kernels need (a copy on the array's device otherwise).
    return [kernel_ready(a) for a in arrays]


def _in_place(op: str, arrays: list[np.ndarray], call: Any) -> None:
    """Runs ``call(contiguous arrays)`` so that it changes ``arrays`` themselves."""
    _check_float(op, arrays)
    for a in arrays:
        if not a.flags.writeable:
            raise ValueError(f"[{op}] expected writeable gradients, got a read-only array")
    # One grad array held by several params is scaled once.
    arrays = list({id(a): a for a in arrays}.values())
    work = _contiguous(arrays)
    try:
        call(work)
    except ValueError as e:  # the kernel's boundary check names the kernel; the user called `op`
        msg = str(e)
        raise ValueError(f"[{op}]" + msg[msg.index("]") + 1:] if msg.startswith("[") else msg) from e
    for a, w in zip(arrays, work):
        if w is not a:
            a[...] = w


def get_total_norm(tensors: Union[_TensorOrTensors, Iterable[np.ndarray]], norm_type: float = 2.0,
                   error_if_nonfinite: bool = False,
                   foreach: Optional[bool] = None) -> Tensor:
    """Norm of the concatenation of ``tensors`` (PyTorch: the norm of their per-tensor norms)."""
    seq: Iterable[Any] = [tensors] if isinstance(tensors, Tensor) else tensors
    arrays = [t._data if isinstance(t, Tensor) else t for t in seq]
    norm_type = float(norm_type)
    if not arrays:
        return Tensor(np.array(0.0, dtype=get_default_dtype()))
    k = kernels("clip_grad_norm_", *arrays)
    _check_float("clip_grad_norm_", arrays)
    total = float(k.multi_tensor_norm(_contiguous(arrays), norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"[clip_grad_norm_] The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`")
    dtype = np.result_type(*[a.dtype for a in arrays])
    return Tensor(np.array(total, dtype=dtype))


def clip_grads_with_norm_(parameters: _TensorOrTensors, max_norm: float, total_norm: Any,
                          foreach: Optional[bool] = None) -> None:
    """Scales the grads by ``min(1, max_norm / (total_norm + 1e-6))`` in place."""
    grads = _grads(parameters)
    if not grads:
        return
    total = float(total_norm.item() if isinstance(total_norm, Tensor) else total_norm)
    coef = float(max_norm) / (total + 1e-6)
    if coef >= 1.0:  # PyTorch multiplies by the clamped 1.0: a no-op, skipped here
        return
    k = kernels("clip_grad_norm_", *grads)
    _in_place("clip_grad_norm_", grads, lambda arrays: k.multi_tensor_scale(arrays, coef))


def clip_grad_norm_(parameters: _TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """Clips the gradient norm of ``parameters`` (the norm of all grads together) to ``max_norm``.

    Returns the total norm before clipping as a 0-d Tensor. ``norm_type`` may be
    ``inf`` (largest absolute value). With ``error_if_nonfinite``, a NaN or inf
    total norm raises RuntimeError instead of scaling the grads by it.
    """
    parameters = _params("clip_grad_norm_", parameters)
    total = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_norm(parameters: _TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: Optional[bool] = None) -> Tensor:
    """Deprecated alias of ``clip_grad_norm_`` (as in PyTorch)."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: _TensorOrTensors, clip_value: float, foreach: Optional[bool] = None) -> None:
    """Clamps every gradient element of ``parameters`` to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"[clip_grad_value_] expected clip_value >= 0, got {clip_value}")
    grads = _grads(parameters, "clip_grad_value_")
    if not grads:
        return
    k = kernels("clip_grad_value_", *grads)
    _in_place("clip_grad_value_", grads, lambda arrays: k.multi_tensor_clamp(arrays, -clip_value, clip_value))
