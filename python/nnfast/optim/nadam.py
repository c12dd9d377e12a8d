"""``NAdam`` (Dozat 2016) and ``RAdam`` (Liu et al. 2020) with PyTorch's formulas, one fused kernel per group."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams, _check_unsupported, _lazy_state, _store_steps


class _AdamVariant(Optimizer):
    """Shared constructor of NAdam and RAdam: Adam's hyper-parameters plus ``decoupled_weight_decay``
    (AdamW-style decay p = p (1 - lr weight_decay) instead of g = g + weight_decay p) and ``extra``."""

    def __init__(self, params: ParamsT, lr: float, betas: tuple[float, float], eps: float, weight_decay: float,
                 decoupled_weight_decay: bool, foreach: Optional[bool], maximize: bool, capturable: bool,
                 differentiable: bool, skip_nonfinite: bool, **extra: float) -> None:
        _check_unsupported(self._name, capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, **extra,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr", "eps", "betas", "weight_decay",
                       *(("momentum_decay",) if "momentum_decay" in group else ()))

    def _args(self, group: dict[str, Any]) -> tuple[float, ...]:
        beta1, beta2 = group["betas"]
        return (_as_float(group["lr"]), float(beta1), float(beta2), float(group["eps"]),
                float(group["weight_decay"]))


class NAdam(_AdamVariant):
    """NAdam: Adam with Nesterov momentum. mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay)),
    mu_product = prod mu_1..mu_t; m, v as Adam's; d = sqrt(v / (1 - beta2^t)) + eps;
    p = p - lr (1 - mu_t) / (1 - mu_product) g / d - lr mu_{t+1} / (1 - mu_product mu_{t+1}) m / d.

    State ``step``, ``mu_product`` (a float, rounded to float32 as PyTorch's scalar tensor),
    ``exp_avg``, ``exp_avg_sq`` (each param's shape).
    Defaults: lr=0.002, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, momentum_decay=0.004,
    decoupled_weight_decay=False, maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a
    whole step whose gradients hold inf/NaN). foreach / capturable / differentiable are accepted for PyTorch
    compatibility.
    """

    _name = "NAdam"
    _op = "nadam"
    _scalar_state = ("mu_product",)

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: Optional[bool] = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, skip_nonfinite: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay, foreach, maximize, capturable,
                         differentiable, skip_nonfinite, momentum_decay=momentum_decay)

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        (m, v), steps = _lazy_state(self.state, params, p_arrays, ("exp_avg", "exp_avg_sq"), {"mu_product": 1.0})
        mu = [float(self.state[p]["mu_product"]) for p in params]
        new_mu = K.nadam_step(p_arrays, g_arrays, m, v, mu, steps, *self._args(group),
                              float(group["momentum_decay"]), bool(group["decoupled_weight_decay"]),
                              bool(group["maximize"]))
        for p, x in zip(params, new_mu):
            self.state[p]["mu_product"] = x
        _store_steps(self.state, params, steps)


class RAdam(_AdamVariant):
    """RAdam: Adam with the variance of the adaptive step rectified. m, v as Adam's;
    rho_inf = 2 / (1 - beta2) - 1, rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t); when rho_t > 5,
    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)) and
    p = p - lr m / bc1 * sqrt(bc2) / (sqrt(v) + eps) * r_t, else p = p - lr m / bc1.

    State ``step``, ``exp_avg``, ``exp_avg_sq`` (each param's shape).
    Defaults: lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, decoupled_weight_decay=False,
    maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold
    inf/NaN). foreach / capturable / differentiable are accepted for PyTorch compatibility.
    """

    _name = "RAdam"
    _op = "radam"

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: Optional[bool] = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, skip_nonfinite: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay, foreach, maximize, capturable,
                         differentiable, skip_nonfinite)

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        (m, v), steps = _lazy_state(self.state, params, p_arrays, ("exp_avg", "exp_avg_sq"))
        K.radam_step(p_arrays, g_arrays, m, v, steps, *self._args(group), bool(group["decoupled_weight_decay"]),
                     bool(group["maximize"]))
        _store_steps(self.state, params, steps)
