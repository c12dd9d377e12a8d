"""``Adam`` / ``AdamW`` (with AMSGrad), PyTorch's formulas, one fused kernel per group."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._dispatch import KernelSet
from ..amp import _weight_copies as _amp_copies
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _adam_moments, _as_float, _check_hparams, _check_unsupported, _store_steps


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with PyTorch's update, one fused kernel per param group.

    g = grad + weight_decay * p (L2); m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2
    (AMSGrad: v_max = max(v_max, v), used in place of v);
    p = p - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), with bc_i = 1 - beta_i^step.

    Every param and its state keep their own shape and dtype (float32 or float64).
    Defaults: lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=False,
    maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN). foreach / capturable / differentiable / fused are accepted for PyTorch compatibility.
    """

    _name = "Adam"
    _op = "adam"
    _decoupled = False

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, foreach: Optional[bool] = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None, skip_nonfinite: bool = False) -> None:
        _check_unsupported(self._name, capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas) if not isinstance(betas, tuple) else betas, eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr", "eps", "betas", "weight_decay")

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        amsgrad = bool(group["amsgrad"])
        m, v, vmax, steps = _adam_moments(self.state, params, p_arrays, amsgrad)
        beta1, beta2 = group["betas"]
        copies = _amp_copies.adam_copies(params, p_arrays)  # autocast's bf16 weights, rounded in this pass
        K.adam_step(p_arrays, g_arrays, m, v, vmax, steps, _as_float(group["lr"]), float(beta1), float(beta2),
                     float(group["eps"]), float(group["weight_decay"]), amsgrad, bool(group["maximize"]),
                     self._decoupled, **({"bf16_copies": copies} if copies else {}))
        if copies:
            _amp_copies.copies_written(params, copies)
        _store_steps(self.state, params, steps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): p = p * (1 - lr * weight_decay),
    then Adam's update with the raw gradient (m, v, bias corrections, state shapes and dtypes as in ``Adam``).

    Defaults: weight_decay=0.01; the rest as ``Adam``'s (lr=0.001, betas=(0.9, 0.999), eps=1e-08,
    amsgrad=False, maximize=False, skip_nonfinite=False), and the same PyTorch-compatibility flags.
    """

    _name = "AdamW"
    _op = "adamw"
    _decoupled = True

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: Optional[bool] = None, capturable: bool = False,
                 differentiable: bool = False, fused: Optional[bool] = None, skip_nonfinite: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, skip_nonfinite=skip_nonfinite)
