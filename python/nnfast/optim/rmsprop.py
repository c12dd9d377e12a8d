"""``RMSprop`` (Hinton's lecture 6e; PyTorch's formulas), one fused kernel per group."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams, _check_unsupported, _state_tensor


class RMSprop(Optimizer):
    """RMSprop: g = grad + weight_decay * p; sq = alpha sq + (1 - alpha) g^2;
    avg = sqrt(sq - ga^2) + eps (centered, ga = alpha ga + (1 - alpha) g) or sqrt(sq) + eps;
    p = p - lr * g / avg, or with momentum buf = momentum buf + g / avg and p = p - lr * buf.

    State tensors have each param's shape.
    Defaults: lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0, momentum=0, centered=False,
    maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN). capturable / foreach / differentiable are accepted for PyTorch compatibility.
    """

    _name = "RMSprop"
    _op = "rmsprop"

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach: Optional[bool] = None, maximize: bool = False, differentiable: bool = False, *,
                 skip_nonfinite: bool = False) -> None:
        _check_unsupported(self._name, capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        momentum = float(group["momentum"])
        centered = bool(group["centered"])
        sq: list[np.ndarray] = []
        ga: Optional[list[np.ndarray]] = [] if centered else None
        buf: Optional[list[np.ndarray]] = [] if momentum > 0 else None
        for p, a in zip(params, p_arrays):
            st = self.state[p]
            if "square_avg" not in st:
                st["step"] = 0
                st["square_avg"] = _state_tensor(a)
            if momentum > 0 and "momentum_buffer" not in st:
                st["momentum_buffer"] = _state_tensor(a)
            if centered and "grad_avg" not in st:
                st["grad_avg"] = _state_tensor(a)
            sq.append(st["square_avg"]._data)
            if ga is not None:
                ga.append(st["grad_avg"]._data)
            if buf is not None:
                buf.append(st["momentum_buffer"]._data)
        K.rmsprop_step(p_arrays, g_arrays, sq, ga, buf, _as_float(group["lr"]), float(group["alpha"]),
                        float(group["eps"]), float(group["weight_decay"]), momentum, centered,
                        bool(group["maximize"]))
        for p in params:
            self.state[p]["step"] = int(self.state[p].get("step", 0)) + 1
