"""Reverse-mode automatic differentiation: the tape, grad modes and checks."""
from .anomaly import detect_anomaly
from .function import Function
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck


def grad(outputs, inputs, grad_outputs=None, retain_graph=False):  # type: ignore[no-untyped-def]
    """Gradients of ``outputs`` with respect to ``inputs`` (returned, not accumulated)."""
    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    saved = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    try:
        outputs.backward(grad_outputs, retain_graph=retain_graph)
        return tuple(t.grad for t in inputs)
    finally:
        for t, g in zip(inputs, saved):
            t.grad = g


__all__ = ["Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "gradcheck",
           "detect_anomaly", "grad", "inference_mode"]
