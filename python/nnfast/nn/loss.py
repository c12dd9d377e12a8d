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
    "MarginRankingLoss",
    "HingeEmbeddingLoss",
    "SoftMarginLoss",
    "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss",
    "GaussianNLLLoss",
    "PoissonNLLLoss",
    "TripletMarginLoss",
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
    """Softmax cross-entropy on logits, fused: loss_n = -w[y_n] * log(softmax(x_n)[y_n]) = w[y_n] *
    (logsumexp(x_n) - x_n[y_n]); loss and logits-gradient come from one kernel pass.

    Targets are class indices, or class probabilities p (then loss_n = -sum_c w_c p_c log softmax(x_n)_c).
    Rows whose target is ``ignore_index`` add nothing; 'mean' divides by the summed weight of the
    counted rows. ``label_smoothing`` e mixes the target with the uniform distribution:
    (1 - e) * target + e / C. See ``F.cross_entropy``.

    Shape: input (N, C), (N, C, d1, ...) or (C,); target (N,), (N, d1, ...) or () int64 class
    indices in [0, C), or float probabilities of the input's shape; output () or, with
    reduction='none', the target's shape (N, d1, ...).
    Defaults: weight=None (all classes 1), ignore_index=-100, reduction='mean', label_smoothing=0.0.
    """

    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood: loss_n = -w[y_n] * x_n[y_n] on log-probabilities x (e.g. from
    ``LogSoftmax``); see ``F.nll_loss``.

    Rows whose target is ``ignore_index`` add nothing; 'mean' divides by the summed weight of the
    counted rows.

    Shape: input (N, C), (N, C, d1, ...) or (C,); target (N,), (N, d1, ...) or () int64 in [0, C);
    output () or, with reduction='none', the target's shape.
    Defaults: weight=None (all classes 1), ignore_index=-100, reduction='mean'.
    """

    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error: loss = reduce((input - target)^2).

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum).
    """
    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error: loss = reduce(|input - target|); gradient sign(input - target), 0 at 0.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum).
    """
    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """Huber loss with d = input - target: 0.5 d^2 where |d| < delta, else delta * (|d| - delta / 2).

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum), delta=1.0.
    """
    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = float(delta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """Smooth L1 with d = input - target: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2
    (beta = 0: plain L1). Equals HuberLoss(delta=beta) / beta.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none': per element, 'sum': the sum), beta=1.0.
    """
    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = float(beta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities x in [0, 1]: loss = -w * (y log(x) + (1 - y) log(1 - x)),
    the logs clamped at -100 as in PyTorch.

    ``weight`` broadcasts to the input's shape.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: weight=None (1 everywhere), reduction='mean' ('none': per element, 'sum': the sum).
    """
    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one stable formula, on logits x:
    loss = -w * (p y log(sigmoid(x)) + (1 - y) log(1 - sigmoid(x)))
         = w * ((1 - y) x + (1 + (p - 1) y) log(1 + exp(-x))).

    ``weight`` w and ``pos_weight`` p (usually (C,) over the last dim) broadcast to the input's shape.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: weight=None (1), reduction='mean' ('none': per element, 'sum': the sum), pos_weight=None (1).
    """
    def __init__(self, weight: Optional[Tensor] = None, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean", pos_weight: Optional[Tensor] = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence, pointwise: loss = target * (log(target) - input), with ``input``
    log-probabilities (``log_target=True``: target holds log-probabilities too, loss =
    exp(target) * (target - input)).

    reduction='batchmean' divides the sum by input.shape[0] (the true KL of a batch); 'mean'
    divides by the number of elements.

    Shape: input (*), any shape; target (*), the same shape; output () or, with reduction='none', (*).
    Defaults: reduction='mean' ('none', 'sum', 'batchmean'), log_target=False.
    """
    _extra = ("batchmean",)

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = bool(log_target)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class RMSELoss(Module):
    """Root-mean-square error (nnfast addition): loss = sqrt(mean((input - target)^2)) over all elements.

    The value is the exact square root; the gradient (x - y) / (n * max(rmse, eps)) stays finite
    (zero) at a perfect fit. See ``F.rmse_loss``.

    Shape: input (*), any shape; target (*), the same shape; output ().
    Defaults: reduction='mean' (the only one: an RMSE is a mean by definition), eps=1e-08.
    """

    def __init__(self, reduction: str = "mean", eps: float = 1e-8) -> None:
        super().__init__()
        if reduction != "mean":
            raise ValueError(f"[RMSELoss] expected reduction 'mean' (RMSE is a mean by definition), got {reduction!r}")
        self.reduction = reduction
        self.eps = float(eps)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.rmse_loss(input, target, eps=self.eps)


class PerceptronLoss(_Loss):
    """Perceptron criterion (nnfast addition): loss = reduce(max(0, -y * f(x))) with labels y in
    {-1, +1} and scores f(x) = input; gradient -y where a sample is misclassified, else 0.
    See ``F.perceptron_loss``.

    Shape: input (*) scores, any shape; target (*), the same shape, values -1 or +1; output () or,
    with reduction='none', (*).
    Defaults: reduction='mean' ('none', 'sum').
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.perceptron_loss(input, target, reduction=self.reduction)


class LinearCrossEntropyLoss(_Loss):
    """Fused classifier + cross-entropy (nnfast addition): ``loss(input, weight, bias, target)`` =
    cross_entropy(input @ weight.T + bias, target), without materializing the (N, C) logits.

    Logits are formed ``chunk_size`` classes at a time and folded into an online log-sum-exp; see
    ``F.linear_cross_entropy``. Holds no parameters (pass the classifier's).

    Shape: input (*, H); weight (C, H); bias (C,) or None; target int64 of shape input.shape[:-1];
    output () or, with reduction='none', input.shape[:-1].
    Defaults: ignore_index=-100, reduction='mean', label_smoothing=0.0, chunk_size=4096.
    """

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


class _MarginLoss(_Loss):
    """A loss with a ``margin`` argument ahead of the reduction ones."""

    def __init__(self, margin: float = 0.0, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = float(margin)


class MarginRankingLoss(_MarginLoss):
    """loss = max(0, -y * (x1 - x2) + margin); see ``F.margin_ranking_loss``.

    Shape: input1 (N,) or (), input2 the same, target the same; output () or (N,) with reduction='none'.
    Defaults: margin=0.0, reduction='mean'.
    """

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_MarginLoss):
    """loss = x where y = 1, max(0, margin - x) where y = -1; see ``F.hinge_embedding_loss``.

    Shape: input (*), target (*) the same shape; output () or (*) with reduction='none'.
    Defaults: margin=1.0, reduction='mean'.
    """

    def __init__(self, margin: float = 1.0, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__(margin, size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_MarginLoss):
    """loss = 1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1;
    see ``F.cosine_embedding_loss``.

    Shape: input1 (N, D) or (D,), input2 the same, target (N,) or (); output () or (N,) with reduction='none'.
    Defaults: margin=0.0, reduction='mean'.
    """

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """loss = log(1 + exp(-y * x)); see ``F.soft_margin_loss``.

    Shape: input (*), target (*) the same shape; output () or (*) with reduction='none'.
    Defaults: reduction='mean'.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """loss_n = -mean_c w_c (y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c));
    see ``F.multilabel_soft_margin_loss``.

    Shape: input (N, C) or (C,), target the same shape; output () or (N,) with reduction='none'.
    Defaults: weight=None, reduction='mean'.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """loss = (log(max(var, eps)) + (input - target)^2 / max(var, eps)) / 2; see ``F.gaussian_nll_loss``.

    Shape: input (N, *), target the same, var the same or with the last dim 1 or dropped; output () or
    (N, *) with reduction='none'.
    Defaults: full=False, eps=1e-06, reduction='mean'.
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full, self.eps = bool(full), float(eps)

    def forward(self, input: Tensor, target: Tensor, var: Any) -> Tensor:
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    """loss = exp(x) - y x (log_input) or x - y log(x + eps); see ``F.poisson_nll_loss``.

    Shape: input (*), target (*) the same shape; output () or (*) with reduction='none'.
    Defaults: log_input=True, full=False, eps=1e-08, reduction='mean'.
    """

    def __init__(self, log_input: bool = True, full: bool = False, size_average: Any = None, eps: float = 1e-8,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = bool(log_input), bool(full), float(eps)

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                  reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """loss = max(d(a, p) - d(a, n) + margin, 0) with the pairwise p-distance; see ``F.triplet_margin_loss``.

    Shape: anchor, positive, negative (N, D) or (D,); output () or (N,) with reduction='none'.
    Defaults: margin=1.0, p=2.0, eps=1e-06, swap=False, reduction='mean'.
    """

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"[TripletMarginLoss] expected margin > 0, got {margin}")
        self.margin, self.p, self.eps, self.swap = float(margin), p, float(eps), bool(swap)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p, eps=self.eps,
                                     swap=self.swap, reduction=self.reduction)
