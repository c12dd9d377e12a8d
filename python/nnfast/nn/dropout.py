"""Dropout module (inverted dropout; identity in eval mode)."""
from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from . import regularization  # noqa: F401  (makes nn.regularization importable as an attribute)
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d"]


class Dropout(Module):
    """Dropout while training: y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p); identity in eval mode.

    Each element is zeroed with probability ``p``, the rest scaled by 1 / (1 - p) so the
    expectation is unchanged. The mask comes from a counter-based RNG inside the kernel, seeded by
    ``nnfast.manual_seed``: the same seed gives the same sequence of masks.

    Shape: input (*), any shape; output (*), the same shape.
    Defaults: p=0.5, inplace=False (True overwrites the input when no gradient is recorded for it).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"[{type(self).__name__}] expected a dropout probability between 0 and 1, got {p}")
        self.p = float(p)
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout):
    """Channel-wise dropout while training (``F.dropout1d``): each channel input[n, c, :] is zeroed
    with probability ``p``, the kept ones scaled by 1 / (1 - p); identity in eval mode.

    Shape: input (N, C, L) or (C, L); output the same shape.
    Defaults: p=0.5, inplace=False.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(Dropout):
    """Channel-wise dropout while training (``F.dropout2d``): each feature map input[n, c] is zeroed
    with probability ``p``, the kept ones scaled by 1 / (1 - p); identity in eval mode.

    Shape: input (N, C, H, W) or (N, C, L); output the same shape.
    Defaults: p=0.5, inplace=False.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)
