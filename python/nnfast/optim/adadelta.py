"""``Adadelta`` (Zeiler 2012) with PyTorch's formulas, one fused kernel per group."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import (Optimizer, ParamsT, _as_float, _check_hparams, _check_unit, _check_unsupported, _lazy_state,
                        _store_steps)


class Adadelta(Optimizer):
    """Adadelta: g = grad + weight_decay * p; sq = rho sq + (1 - rho) g^2;
    d = sqrt(acc + eps) / sqrt(sq + eps) * g; acc = rho acc + (1 - rho) d^2; p = p - lr * d.

    State ``square_avg`` and ``acc_delta`` have each param's shape (PyTorch's names).
    Defaults: lr=1.0, rho=0.9, eps=1e-06, weight_decay=0, maximize=False (ascend instead),
    skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN). foreach / capturable /
    differentiable are accepted for PyTorch compatibility.
    """

    _name = "Adadelta"
    _op = "adadelta"

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach: Optional[bool] = None, *, capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False, skip_nonfinite: bool = False) -> None:
        _check_unsupported(self._name, capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr")
        _check_unit(self._name, "rho", group["rho"])
        _check_hparams(self._name, group, "eps", "weight_decay")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        (sq, acc), steps = _lazy_state(self.state, params, p_arrays, ("square_avg", "acc_delta"))
        K.adadelta_step(p_arrays, g_arrays, sq, acc, _as_float(group["lr"]), float(group["rho"]), float(group["eps"]),
                        float(group["weight_decay"]), bool(group["maximize"]))
        _store_steps(self.state, params, steps)
