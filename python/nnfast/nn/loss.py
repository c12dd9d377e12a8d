"""Loss modules with PyTorch's names, signatures and defaults (plus nnfast's
RMSELoss, PerceptronLoss and LinearCrossEntropyLoss); each calls its functional
form in ``nnfast.nn.functional``. Class weights are registered as buffers, as
in PyTorch, so they follow ``.to()`` and appear in ``state_dict()``."""
from __future__ import annotations

from typing import Any, Optional

from ..tensor import Tensor
from . import functional as F
from .functional._loss import _reduction
from .module import Module

__all__ = [
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "L1Loss",
    "HuberLoss",
    "SmoothL1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "KLDivLoss",
    "RMSELoss",
    "PerceptronLoss",
    "LinearCrossEntropyLoss",
]


class _Loss(Module):
    _extra: tuple[str, ...] = ()

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _reduction(type(self).__name__, reduction, size_average, reduce, self._extra)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy on logits (fused loss + gradient kernel); see ``F.cross_entropy``."""

    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood on log-probabilities; see ``F.nll_loss``."""

    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = float(delta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = float(beta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class BCELoss(_WeightedLoss):
    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean", pos_weight: Optional[Tensor] = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    _extra = ("batchmean",)

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = bool(log_target)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class RMSELoss(Module):
    """nnfast addition: sqrt(mean((input - target)^2)); see ``F.rmse_loss`` (eps keeps the
    gradient finite at a perfect fit; the value itself is exact)."""

    def __init__(self, reduction: str = "mean", eps: float = 1e-8) -> None:
        super().__init__()
        if reduction != "mean":
            raise ValueError(f"[RMSELoss] expected reduction 'mean' (RMSE is a mean by definition), got {reduction!r}")
        self.reduction = reduction
        self.eps = float(eps)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.rmse_loss(input, target, eps=self.eps)


class PerceptronLoss(_Loss):
    """nnfast addition: max(0, -y f(x)) with y in {-1, +1}; see ``F.perceptron_loss``."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.perceptron_loss(input, target, reduction=self.reduction)


class LinearCrossEntropyLoss(_Loss):
    """nnfast addition: ``loss(input, weight, bias, target)`` = cross-entropy of
    ``input @ weight.T + bias`` without materializing the logits; see
    ``F.linear_cross_entropy``. Holds no parameters (pass the classifier's)."""

    def __init__(self, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0,
                 chunk_size: int = 4096) -> None:
        super().__init__(reduction=reduction)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.chunk_size = int(chunk_size)

    def forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor], target: Any) -> Tensor:
        return F.linear_cross_entropy(input, weight, bias, target, ignore_index=self.ignore_index,
                                      reduction=self.reduction, label_smoothing=self.label_smoothing,
                                      chunk_size=self.chunk_size)
