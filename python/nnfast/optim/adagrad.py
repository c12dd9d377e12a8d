"""``Adagrad`` (Duchi et al. 2011) with PyTorch's formulas, one fused kernel per group."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams, _check_unsupported, _state_tensor, _store_steps


class Adagrad(Optimizer):
    """Adagrad: g = grad + weight_decay * p; sum = sum + g^2; p = p - clr * g / (sqrt(sum) + eps),
    with clr = lr / (1 + (step - 1) * lr_decay).

    The accumulator ``sum`` starts at initial_accumulator_value and has each param's shape.
    Defaults: lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
    maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN). foreach / differentiable / fused are accepted for PyTorch compatibility.
    """

    _name = "Adagrad"
    _op = "adagrad"

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: Optional[bool] = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: Optional[bool] = None,
                 skip_nonfinite: bool = False) -> None:
        _check_unsupported(self._name, differentiable=differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)
        for group in self.param_groups:  # PyTorch creates Adagrad's state up front
            for p in group["params"]:
                self._init_state(p, group)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        st = self.state[p]
        if "sum" not in st:
            st["step"] = 0
            st["sum"] = _state_tensor(p._data, float(group["initial_accumulator_value"]))
        return st

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        sums, steps = [], []
        for p in params:
            st = self._init_state(p, group)
            sums.append(st["sum"]._data)
            steps.append(int(st.get("step", 0)) + 1)
        K.adagrad_step(p_arrays, g_arrays, sums, steps, _as_float(group["lr"]), float(group["lr_decay"]),
                        float(group["weight_decay"]), float(group["eps"]), bool(group["maximize"]))
        _store_steps(self.state, params, steps)
