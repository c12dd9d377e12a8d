"""Spectral normalization (Miyato et al., 2018) as PyTorch's
``torch.nn.utils.spectral_norm``: ``module.<name>`` becomes
``name_orig / sigma`` where sigma, the largest singular value of ``name_orig``
(viewed as a matrix with ``dim`` first), is estimated by power iteration with
persistent buffers ``name_u`` and ``name_v``. Training-mode forwards run
``n_power_iterations`` steps first; eval-mode forwards reuse u and v. The
power iteration, sigma, the division and its gradient run in nnfast's kernels."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ... import _random
from ..._dispatch import ascontiguousarray, contiguous, kernels, xp_of
from ...autograd import grad_mode
from ...autograd.function import Function
from ...tensor import Tensor
from ..module import Module
from ._reparam import remove_reparam, reparam_target, restore_parameter

__all__ = ["spectral_norm", "remove_spectral_norm", "SpectralNorm"]


def _to_matrix(w: Any, dim: int) -> Any:
    """The (shape[dim], rest) matrix view of w (a copy only when dim != 0)."""
    if dim != 0:
        w = np.moveaxis(w, dim, 0)
    return contiguous(w).reshape(w.shape[0], -1)


def _from_matrix(m: Any, shape: tuple[int, ...], dim: int) -> Any:
    if dim == 0:
        return m.reshape(shape)
    moved = (shape[dim],) + shape[:dim] + shape[dim + 1:]
    return ascontiguousarray(xp_of(m).moveaxis(m.reshape(moved), 0, dim))


class SpectralNormFunction(Function):
    """y = W / sigma, sigma = u . (W v), with u and v treated as constants:
    dW = dy / sigma - (sum(dy * W) / sigma^2) u v^T."""

    @staticmethod
    def forward(ctx: Any, weight: Any, u: Any, v: Any, dim: int) -> Any:
        K = kernels("spectral_norm", weight, u, v)
        W = _to_matrix(weight, dim)
        y = xp_of(W).empty_like(W)
        u, v = u.copy(), v.copy()  # later power iterations update the buffers in place
        sigma = K.spectral_norm_forward(y, W, u, v)
        ctx.save_for_backward(W, u, v)
        ctx.sigma, ctx.dim, ctx.shape = sigma, dim, weight.shape
        return _from_matrix(y, weight.shape, dim)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        W, u, v = ctx.saved_tensors
        dW = xp_of(dy).empty_like(W)
        kernels("spectral_norm", dy).spectral_norm_backward(dW, _to_matrix(dy, ctx.dim), W, u, v, ctx.sigma)
        return _from_matrix(dW, ctx.shape, ctx.dim), None, None


def _normalized(a: np.ndarray, eps: float) -> np.ndarray:
    n = float(np.sqrt(np.sum(a.astype(np.float64) ** 2)))
    return (a / max(n, eps)).astype(a.dtype)


class SpectralNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from name_orig."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ValueError("[spectral_norm] expected n_power_iterations to be positive, "
                             f"got n_power_iterations={n_power_iterations}")
        self.name = name
        self.dim = dim
        self.n_power_iterations = int(n_power_iterations)
        self.eps = float(eps)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        if do_power_iteration:
            K = kernels("spectral_norm", weight._data, u._data, v._data)
            K.spectral_norm_power_iteration(u._data, v._data, _to_matrix(weight._data, self.dim),
                                            self.n_power_iterations, self.eps)
        return SpectralNormFunction.apply(weight, u._data, v._data, self.dim)

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float) -> "SpectralNorm":
        op = "spectral_norm"
        weight = reparam_target(module, name, op, SpectralNorm)
        if weight.ndim < 1:
            raise ValueError(f"[{op}] expected a parameter with at least one dimension")
        d = int(dim) + weight.ndim if int(dim) < 0 else int(dim)
        if not 0 <= d < weight.ndim:
            raise ValueError(f"[{op}] expected dim in [-{weight.ndim}, {weight.ndim}), got {dim}")
        fn = SpectralNorm(name, n_power_iterations, d, eps)
        h, w = _to_matrix(weight._data, d).shape
        rng = _random.default_generator()
        dt = weight.dtype
        u = _normalized(rng.standard_normal(h).astype(dt), fn.eps)
        v = _normalized(rng.standard_normal(w).astype(dt), fn.eps)
        del module._parameters[name]
        module.register_parameter(name + "_orig", weight)
        object.__setattr__(module, name, Tensor(weight._data))
        module.register_buffer(name + "_u", Tensor(u))
        module.register_buffer(name + "_v", Tensor(v))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        with grad_mode.no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        restore_parameter(module, self.name, weight, self.name + "_u", self.name + "_v", self.name + "_orig")

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: Optional[int] = None) -> Module:
    """Reparametrize ``module.<name>`` as ``name_orig / sigma(name_orig)``.

    ``dim`` (default 0, or 1 for ConvTranspose modules as in PyTorch) is the
    output dimension moved first when the weight is viewed as a matrix.
    Returns the module.
    """
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo ``spectral_norm``: ``name`` becomes a parameter holding the current
    normalized weight."""
    return remove_reparam(module, name, "spectral_norm", SpectralNorm)
