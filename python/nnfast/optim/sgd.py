"""``SGD`` with momentum, dampening, Nesterov and weight decay (PyTorch's formulas)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet, device_of, empty
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams, _check_unsupported


class SGD(Optimizer):
    """Stochastic gradient descent, one fused kernel per param group.

    d = grad + weight_decay * p; with momentum, buf = momentum * buf + (1 - dampening) * d
    (buf = d on the first step) and d = d + momentum * buf (Nesterov) or d = buf; then
    p = p - lr * d.

    Every param and its state keep their own shape and dtype (float32 or float64).
    Defaults: lr=0.001, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN). foreach / differentiable / fused are accepted for PyTorch compatibility.
    """

    _name = "SGD"
    _op = "sgd"

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, differentiable: bool = False, fused: Optional[bool] = None,
                 skip_nonfinite: bool = False) -> None:
        _check_unsupported(self._name, differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        n = self._name
        _check_hparams(n, group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"[{n}] Nesterov momentum requires a momentum and zero dampening")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        momentum = float(group["momentum"])
        bufs: Optional[list[np.ndarray]] = None
        fresh: list[bool] = []
        new: list[tuple[Tensor, Tensor]] = []
        if momentum != 0:
            bufs = []
            for p, a in zip(params, p_arrays):
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    # Uninitialised: the kernel sets it to the (decayed) gradient.
                    t = Tensor._wrap(empty(a.shape, a.dtype, device_of(a)))
                    new.append((p, t))
                    bufs.append(t._data)
                    fresh.append(True)
                else:
                    bufs.append(buf._data)
                    fresh.append(False)
        K.sgd_step(p_arrays, g_arrays, bufs, fresh, _as_float(group["lr"]), momentum,
                    float(group["dampening"]), float(group["weight_decay"]), bool(group["nesterov"]),
                    bool(group["maximize"]))
        for p, t in new:
            self.state[p]["momentum_buffer"] = t
