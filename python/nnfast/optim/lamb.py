"""``LAMB`` (You et al. 2020, "Large Batch Optimization for Deep Learning"); an nnfast addition."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._dispatch import KernelSet
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _adam_moments, _as_float, _check_hparams, _store_steps


class LAMB(Optimizer):
    """LAMB (You et al. 2020): Adam's direction with a layer-wise trust ratio.

    u = m_hat / (sqrt(v_hat) + eps) + weight_decay * p (bias-corrected moments unless
    ``bias_correction=False``); p = p - lr * r * u with r = ||p|| / ||u|| per param tensor, and
    r = 1 when either norm is zero. The trust ratios of the last step are kept in
    ``last_trust_ratios`` (one list per group).

    Defaults: lr=0.001, betas=(0.9, 0.999), eps=1e-06, weight_decay=0, bias_correction=True,
    maximize=False (ascend instead), skip_nonfinite=False (nnfast: skip a whole step whose gradients hold inf/NaN).
    """

    _name = "LAMB"
    _op = "lamb"

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0, *, bias_correction: bool = True,
                 maximize: bool = False, skip_nonfinite: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction, maximize=maximize)
        self.last_trust_ratios: list[list[float]] = []
        super().__init__(params, defaults, skip_nonfinite=skip_nonfinite)

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr", "eps", "betas", "weight_decay")

    def step(self, closure: Any = None) -> Any:
        self.last_trust_ratios = []
        return super().step(closure)

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        m, v, _, steps = _adam_moments(self.state, params, p_arrays, False)
        beta1, beta2 = group["betas"]
        ratios = K.lamb_step(p_arrays, g_arrays, m, v, steps, _as_float(group["lr"]), float(beta1), float(beta2),
                              float(group["eps"]), float(group["weight_decay"]), bool(group["bias_correction"]),
                              bool(group["maximize"]))
        self.last_trust_ratios.append([float(r) for r in ratios])
        _store_steps(self.state, params, steps)
