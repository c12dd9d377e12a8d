"""``ASGD``, averaged SGD (Polyak & Juditsky 1992), with PyTorch's formulas, one fused kernel per group."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams, _check_unsupported, _lazy_state, _store_steps


class ASGD(Optimizer):
    """ASGD: g = grad + weight_decay * p; p = p (1 - lambd eta) - eta g; ax = p while mu = 1, else
    ax = ax + mu (p - ax); then eta = lr / (1 + lambd lr t)^alpha and mu = 1 / max(1, t - t0).

    State ``step``, ``eta`` (starts at lr), ``mu`` (starts at 1) -- floats rounded to float32 as
    PyTorch's scalar tensors -- and the average ``ax`` (each param's shape).
    Defaults: lr=0.01, lambd=0.0001, alpha=0.75, t0=1000000.0, weight_decay=0, maximize=False (ascend
    instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN). foreach /
    capturable / differentiable are accepted for PyTorch compatibility.
    """

    _name = "ASGD"
    _op = "asgd"
    _scalar_state = ("eta", "mu")

    def __init__(self, params: ParamsT, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, foreach: Optional[bool] = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False, *, skip_nonfinite: bool = False) -> None:
        _check_unsupported(self._name, capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr", "weight_decay")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        lr = _as_float(group["lr"])
        (ax,), steps = _lazy_state(self.state, params, p_arrays, ("ax",),
                                   {"eta": float(np.float32(lr)), "mu": 1.0})
        eta = [float(self.state[p]["eta"]) for p in params]
        mu = [float(self.state[p]["mu"]) for p in params]
        new_eta, new_mu = K.asgd_step(p_arrays, g_arrays, ax, eta, mu, steps, lr, float(group["lambd"]),
                                      float(group["alpha"]), float(group["t0"]), float(group["weight_decay"]),
                                      bool(group["maximize"]))
        for p, e, m in zip(params, new_eta, new_mu):
            self.state[p]["eta"], self.state[p]["mu"] = e, m
        _store_steps(self.state, params, steps)
