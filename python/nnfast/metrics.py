"""Evaluation metrics on predictions and targets (NumPy in, Python floats out)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .tensor import Tensor

__all__ = ["accuracy", "top_k_accuracy", "mse", "mae", "rmse", "confusion_matrix", "get"]


def _np(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach()
        return np.asarray(x._host())
    return np.asarray(x.get() if hasattr(x, "get") else x)


def accuracy(output: Any, target: Any) -> float:
    """Fraction of rows whose arg-max (or, for 1-D scores, sign/threshold 0.5) equals the target."""
    out, tgt = _np(output), _np(target)
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
        pred = (out.reshape(-1) > (0.5 if out.min() >= 0 else 0.0)).astype(np.int64)
    else:
        pred = out.argmax(axis=-1)
    return float(np.mean(pred == tgt.reshape(pred.shape))) if pred.size else 0.0


def top_k_accuracy(output: Any, target: Any, k: int = 5) -> float:
    out, tgt = _np(output), _np(target)
    k = min(k, out.shape[-1])
    top = np.argpartition(-out, k - 1, axis=-1)[..., :k]
    return float(np.mean((top == tgt[..., None]).any(axis=-1))) if tgt.size else 0.0


def mse(output: Any, target: Any) -> float:
    d = _np(output).astype(np.float64) - _np(target).reshape(_np(output).shape)
    return float(np.mean(d * d))


def mae(output: Any, target: Any) -> float:
    d = _np(output).astype(np.float64) - _np(target).reshape(_np(output).shape)
    return float(np.mean(np.abs(d)))


def rmse(output: Any, target: Any) -> float:
    return float(np.sqrt(mse(output, target)))


def confusion_matrix(output: Any, target: Any, num_classes: Optional[int] = None) -> np.ndarray:
    """``cm[true, predicted]`` counts."""
    out, tgt = _np(output), _np(target).astype(np.int64)
    pred = out.argmax(axis=-1) if out.ndim > 1 else out.astype(np.int64)
    n = num_classes or int(max(pred.max(initial=0), tgt.max(initial=0)) + 1)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (tgt.reshape(-1), pred.reshape(-1)), 1)
    return cm


_NAMED: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy, "acc": accuracy, "top5": lambda o, t: top_k_accuracy(o, t, 5),
    "mse": mse, "mae": mae, "rmse": rmse,
}


def get(metric: Any) -> tuple[str, Callable[[Any, Any], float]]:
    """(name, fn) for a metric given by name or as a callable."""
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if metric not in _NAMED:
        raise ValueError(f"[metrics] expected one of {sorted(_NAMED)}, got {metric!r}")
    return str(metric), _NAMED[metric]
