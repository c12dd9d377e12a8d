"""Small layers: Flatten, Unflatten, Bilinear, CosineSimilarity, PairwiseDistance
(``Identity`` lives in ``linear.py``)."""
from __future__ import annotations

import math
from typing import Any, Sequence

from ..tensor import Tensor
from . import functional as F
from . import init
from ._params import add_parameters, finish_init
from .module import Module

__all__ = ["Flatten", "Unflatten", "Bilinear", "CosineSimilarity", "PairwiseDistance"]


class Flatten(Module):
    """Flatten(x) = x.flatten(start_dim, end_dim): dims start_dim..end_dim merged into one.

    Shape: input (*, S_start, ..., S_end, *); output (*, prod(S_start..S_end), *).
    Defaults: start_dim=1, end_dim=-1.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Unflatten(x) = x with dim ``dim`` reshaped to ``unflattened_size`` (one entry may be -1).

    Shape: input (*, S_dim, *); output (*, U_1, ..., U_n, *) with prod(U) = S_dim.
    Defaults: none (dim and unflattened_size are required).
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise TypeError(f"[Unflatten] expected an int dim, got {type(dim).__name__}")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"[Unflatten] expected unflattened_size to be a tuple or list, got "
                            f"{type(unflattened_size).__name__}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        nd = input.ndim
        if not -nd <= self.dim < nd:
            raise IndexError(f"[Unflatten] expected dim in [{-nd}, {nd - 1}], got {self.dim}")
        d = self.dim % nd
        return input.reshape(*input.shape[:d], *self.unflattened_size, *input.shape[d + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Bilinear(Module):
    """y_k = x1^T W_k x2 + b_k: one GEMM x1 @ W (W laid out (in1, out * in2)), then a product with x2
    summed over in2.

    ``weight`` has PyTorch's layout (out_features, in1_features, in2_features) and init
    U(-1/sqrt(in1), 1/sqrt(in1)) for weight and bias.

    Shape: input1 (*, in1_features), input2 (*, in2_features); output (*, out_features).
    Defaults: bias=True, device=None (cpu), dtype=None (the default dtype).
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = int(in1_features), int(in2_features), \
            int(out_features)
        if min(self.in1_features, self.in2_features, self.out_features) < 0:
            raise ValueError(f"[Bilinear] expected non-negative sizes, got ({in1_features}, {in2_features}, "
                             f"{out_features})")
        add_parameters(self, dtype, weight=(self.out_features, self.in1_features, self.in2_features),
                       bias=(self.out_features,) if bias else None)
        finish_init(self, device)

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in1_features) if self.in1_features > 0 else 0.0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        i1, i2, o = self.in1_features, self.in2_features, self.out_features
        if input1.shape[-1:] != (i1,) or input2.shape[-1:] != (i2,) or input1.shape[:-1] != input2.shape[:-1]:
            raise ValueError(f"[Bilinear] expected inputs (*, {i1}) and (*, {i2}) with one batch shape, got "
                             f"{input1.shape} and {input2.shape}")
        lead = input1.shape[:-1]
        x1, x2 = input1.reshape(-1, i1), input2.reshape(-1, i2)
        w = self.weight.permute(1, 0, 2).reshape(i1, o * i2)
        y: Tensor = ((x1 @ w).reshape(-1, o, i2) * x2.unsqueeze(1)).sum(2)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, o)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class CosineSimilarity(Module):
    """cos(x1, x2) = x1 . x2 / (max(||x1||, eps) max(||x2||, eps)) over ``dim``; see ``F.cosine_similarity``.

    Shape: x1 (*1), x2 (*2) broadcastable; output the broadcast shape without ``dim``.
    Defaults: dim=1, eps=1e-08.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """dist(x1, x2) = ||x1 - x2 + eps||_p over the last dim; see ``F.pairwise_distance``.

    Shape: x1 (*, D), x2 (*, D); output (*) (keepdim: (*, 1)).
    Defaults: p=2.0, eps=1e-06, keepdim=False.
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
