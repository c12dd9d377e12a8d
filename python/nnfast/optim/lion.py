"""``Lion`` (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"); an nnfast addition."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams, _state_tensor


class Lion(Optimizer):
    """Lion (Chen et al. 2023): p = p * (1 - lr * weight_decay); p = p - lr * sign(beta1 m +
    (1 - beta1) g); then m = beta2 m + (1 - beta2) g.

    One momentum buffer per param, of its shape.
    Defaults: lr=0.0001, betas=(0.9, 0.99), weight_decay=0, maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN).
    """

    _name = "Lion"
    _op = "lion"

    def __init__(self, params: ParamsT, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0, *, maximize: bool = False, skip_nonfinite: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        n = self._name
        _check_hparams(n, group, "lr")
        betas = tuple(group["betas"])
        if len(betas) != 2:
            raise ValueError(f"[{n}] Invalid betas: expected a pair of floats, got {betas!r}")
        for i, b in enumerate(betas):
            if not 0.0 <= float(b) <= 1.0:
                raise ValueError(f"[{n}] Invalid beta parameter at index {i}: {b}")
        _check_hparams(n, group, "weight_decay")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        m = []
        for p, a in zip(params, p_arrays):
            st = self.state[p]
            if "exp_avg" not in st:
                st["exp_avg"] = _state_tensor(a)
            m.append(st["exp_avg"]._data)
        beta1, beta2 = group["betas"]
        K.lion_step(p_arrays, g_arrays, m, _as_float(group["lr"]), float(beta1), float(beta2),
                     float(group["weight_decay"]), bool(group["maximize"]))
