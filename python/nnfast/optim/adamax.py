"""``Adamax`` (Kingma & Ba 2015, the infinity-norm Adam) with PyTorch's formulas, one fused kernel per group."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams, _check_unsupported, _lazy_state, _store_steps


class Adamax(Optimizer):
    """Adamax: g = grad + weight_decay * p; m = beta1 m + (1 - beta1) g; u = max(beta2 u, |g| + eps);
    p = p - lr / (1 - beta1^step) * m / u.

    State ``exp_avg`` and ``exp_inf`` have each param's shape (PyTorch's names).
    Defaults: lr=0.002, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, maximize=False (ascend instead),
    skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN). foreach / capturable /
    differentiable are accepted for PyTorch compatibility.
    """

    _name = "Adamax"
    _op = "adamax"

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False,
                 skip_nonfinite: bool = False) -> None:
        _check_unsupported(self._name, capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr", "eps", "betas", "weight_decay")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        (m, u), steps = _lazy_state(self.state, params, p_arrays, ("exp_avg", "exp_inf"))
        beta1, beta2 = group["betas"]
        K.adamax_step(p_arrays, g_arrays, m, u, steps, _as_float(group["lr"]), float(beta1), float(beta2),
                      float(group["eps"]), float(group["weight_decay"]), bool(group["maximize"]))
        _store_steps(self.state, params, steps)
