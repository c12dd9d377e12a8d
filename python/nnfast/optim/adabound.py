"""``AdaBound`` / AMSBound (Luo et al. 2019, "Adaptive Gradient Methods with Dynamic Bound
of Learning Rate"), as in the authors' reference implementation; an nnfast addition."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _adam_moments, _as_float, _check_hparams, _store_steps


class AdaBound(Optimizer):
    """AdaBound (Luo et al. 2019): Adam whose per-element step size is clipped to bounds that
    converge to SGD's.

    m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2 (AMSBound: v_max = max(v_max, v));
    eta = clip(lr sqrt(bc2) / bc1 / (sqrt(v) + eps), lower, upper); p = p - eta * m; with
    final = final_lr * lr / base_lr, lower = final (1 - 1 / (gamma t + 1)),
    upper = final (1 + 1 / (gamma t)). ``base_lr`` is each group's lr when it was added (kept in
    the group, so LR schedulers scale ``final`` along with ``lr``); weight_decay adds
    weight_decay * p to the gradient.

    Defaults: lr=0.001, betas=(0.9, 0.999), final_lr=0.1, gamma=0.001, eps=1e-08,
    weight_decay=0, amsbound=False, maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN).
    """

    _name = "AdaBound"
    _op = "adabound"

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 final_lr: float = 0.1, gamma: float = 1e-3, eps: float = 1e-8, weight_decay: float = 0,
                 amsbound: bool = False, *, maximize: bool = False, skip_nonfinite: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), final_lr=final_lr, gamma=gamma, eps=eps,
                        weight_decay=weight_decay, amsbound=amsbound, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        n = self._name
        _check_hparams(n, group, "lr", "eps", "betas", "final_lr")
        if not 0.0 <= float(group["gamma"]) < 1.0:
            raise ValueError(f"[{n}] Invalid gamma parameter: {group['gamma']}")
        _check_hparams(n, group, "weight_decay")
        group.setdefault("base_lr", _as_float(group["lr"]))
        if not float(group["base_lr"]) > 0.0:
            raise ValueError(f"[{n}] Invalid base learning rate: {group['base_lr']} (AdaBound needs lr > 0)")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        amsbound = bool(group["amsbound"])
        m, v, vmax, steps = _adam_moments(self.state, params, p_arrays, amsbound)
        beta1, beta2 = group["betas"]
        K.adabound_step(p_arrays, g_arrays, m, v, vmax, steps, _as_float(group["lr"]), float(group["base_lr"]),
                         float(beta1), float(beta2), float(group["final_lr"]), float(group["gamma"]),
                         float(group["eps"]), float(group["weight_decay"]), amsbound, bool(group["maximize"]))
        _store_steps(self.state, params, steps)
