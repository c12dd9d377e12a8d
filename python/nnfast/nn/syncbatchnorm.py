"""SyncBatchNorm: batch normalization whose statistics cover the global batch of every rank.

Forward: each rank's per-channel count, mean and biased variance come from the batch-norm kernel on
its shard; one all_gather shares them and every rank combines them in rank order (Chan's parallel
variance: M2 = sum n_r var_r + n_r (mean_r - mean)^2), so all ranks hold bit-identical global
statistics; the eval-mode batch-norm kernel then normalizes with them, and the instance-norm
running-statistics kernel updates the running mean / unbiased variance over the global count.

Backward, with n the global count and xhat = (x - mean) rstd:
  dx = w rstd (dy - sum(dy) / n - xhat sum(dy xhat) / n),  the sums over every rank,
  dweight = sum_local dy xhat, dbias = sum_local dy (DDP averages them over the ranks).
The eval-mode backward kernel gives w rstd dy and the local sums in one pass; one allreduce makes
the sums global; the correction -w rstd (sum(dy)/n + xhat sum(dy xhat)/n), affine in x per
channel, is the eval-mode forward kernel with per-channel weight / bias; the add kernel sums them.
The per-channel (C,) coefficient arithmetic is NumPy on vectors of C numbers.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .. import distributed as dist
from .._dispatch import BINARY_CODES, contiguous, kernels, xp_of
from ..autograd import grad_mode
from ..autograd.function import ACCUMULATED, Function
from ..tensor import Tensor
from . import functional as F
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


def _x3(x: Any) -> Any:
    return contiguous(x).reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


class SyncBatchNormFunction(Function):
    """Batch norm over the global batch (see the module docstring for the formulas)."""

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, momentum: float,
                eps: float, group: Any) -> Any:
        K = kernels("batch_norm", x, weight, bias, running_mean, running_var)
        xp = xp_of(x)
        x3 = _x3(x)
        N, C, L = x3.shape
        n_local = N * L
        mean_l = xp.zeros((C,), dtype=np.float64)
        rstd_l = xp.ones((C,), dtype=np.float64)
        y = xp.empty_like(x3)
        if n_local > 0:  # local statistics (the normalized output is recomputed below)
            K.batch_norm_forward(y, mean_l, rstd_l, None, None, x3, None, None, True, 0.0, eps)
        var_l = 1.0 / (rstd_l * rstd_l) - eps if n_local > 0 else xp.zeros((C,), dtype=np.float64)
        mine = xp.concatenate([xp.asarray([float(n_local)]), mean_l, var_l])
        size = dist.get_world_size(group)
        a = xp.empty((size, 2 * C + 1), dtype=np.float64)
        dist._allgather_raw(a, mine, group, "SyncBatchNorm")
        counts, means, vars_ = a[:, 0], a[:, 1:C + 1], a[:, C + 1:]
        n = float(counts.sum())
        if n <= 1:
            raise ValueError(f"[SyncBatchNorm] Expected more than 1 value per channel when training, "
                             f"got {int(n)} over every rank")
        mean = (counts[:, None] * means).sum(axis=0) / n
        m2 = (counts[:, None] * (vars_ + (means - mean) ** 2)).sum(axis=0)
        var = m2 / n
        rstd = 1.0 / np.sqrt(var + eps) if xp is np else 1.0 / xp.sqrt(var + eps)
        if running_mean is not None or running_var is not None:
            kernels("group_norm", x3).instance_norm_update_running(
                running_mean, running_var, mean.reshape(1, C), rstd.reshape(1, C), int(n), momentum, eps)
        if n_local > 0:
            K.batch_norm_forward(y, xp.empty((C,), dtype=np.float64), xp.empty((C,), dtype=np.float64),
                                 mean.astype(x.dtype), var.astype(x.dtype), x3, weight, bias, False, 0.0, eps)
        ctx.save_for_backward(x3, mean, rstd, weight)
        ctx.shape, ctx.has_bias, ctx.n, ctx.group, ctx.eps = x.shape, bias is not None, n, group, eps
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        x3, mean, rstd, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        xp = xp_of(dy)
        C = x3.shape[1]
        K = kernels("batch_norm", dy)
        dy3 = contiguous(dy).reshape(x3.shape)
        # sums[0] = sum dy xhat, sums[1] = sum dy (local), in the kernel's dtype
        sums = xp.zeros((2, C), dtype=dy.dtype)
        dx = xp.empty(x3.shape, dtype=dy.dtype) if need[0] else None
        if x3.size:
            K.batch_norm_backward(dx, sums[0], sums[1], dy3, x3, mean, rstd, w, False)
        dw = db = None
        if w is not None and need[1]:
            dw = _param_grad(ctx, 1, sums[0])
        if ctx.has_bias and need[2]:
            db = _param_grad(ctx, 2, sums[1])
        if dx is None:  # the same on every rank (the same graph), so no rank waits for a collective
            return None, dw, db
        glob = sums.copy()
        dist._allreduce_raw(glob, ctx.group, "SyncBatchNorm").wait()
        s_dxh, s_dy = glob[0].astype(np.float64), glob[1].astype(np.float64)
        wd = np.ones((C,)) if w is None else w.astype(np.float64)
        # corr = -w rstd (s_dy / n) - w rstd^2 (s_dxh / n) (x - mean): per-channel affine in x
        cw = (-wd * rstd * s_dxh / ctx.n).astype(dy.dtype)
        cb = (-wd * rstd * s_dy / ctx.n).astype(dy.dtype)
        var = (1.0 / (rstd * rstd) - ctx.eps).astype(dy.dtype)
        corr = xp.empty_like(dx)
        if x3.size:
            K.batch_norm_forward(corr, xp.empty((C,), dtype=np.float64), xp.empty((C,), dtype=np.float64),
                                 mean.astype(dy.dtype), var, x3, cw, cb, False, 0.0, ctx.eps)
            kernels("add", dx).binary_op(dx, dx, corr, BINARY_CODES["add"])
        return dx.reshape(ctx.shape), dw, db


def _param_grad(ctx: Any, i: int, local_sum: Any) -> Any:
    """Add the local sum into input i's existing ``.grad`` (ACCUMULATED) or return it fresh."""
    buf = ctx.grad_buffer(i)
    if buf is None:
        return local_sum.copy()
    kernels("add", buf).binary_op(buf, buf, local_sum, BINARY_CODES["add"])
    return ACCUMULATED


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over the global batch of every rank of ``process_group``:
    y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and (biased) var per channel over
    N (and every dim after C) of all the ranks' inputs together; the running statistics (unbiased
    var over the global count) and the gradients are those of one process that saw the whole
    batch. Outside training, or without an initialized process group of more than one rank, it is
    ``BatchNorm``. Build it directly or with ``SyncBatchNorm.convert_sync_batchnorm(model)``.

    Shape: input (N, C, *) (2-D to 5-D); output the same shape.
    Defaults: eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, process_group=None
    (the world), device=None, dtype=None.
    """

    _dims = (2, 3, 4, 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Optional[Any] = None, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked._data += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked._data)
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        rm = self.running_mean if use_running else None
        rv = self.running_var if use_running else None
        if not (bn_training and dist.is_initialized() and dist.get_world_size(self.process_group) > 1):
            return F.batch_norm(input, rm, rv, self.weight, self.bias, bn_training, factor, self.eps)
        if type(input._data) is not np.ndarray and dist.get_backend(self.process_group) == "mpi":
            raise RuntimeError("[SyncBatchNorm] expected cpu tensors with backend 'mpi'; use 'nccl' for cuda")
        return SyncBatchNormFunction.apply(input, self.weight, self.bias, None if rm is None else rm._data,
                                           None if rv is None else rv._data, float(factor), float(self.eps),
                                           self.process_group)

    @classmethod
    def convert_sync_batchnorm(cls, module: Any, process_group: Optional[Any] = None) -> Any:
        """``module`` with every BatchNorm1d/2d/3d replaced by a SyncBatchNorm holding the same
        parameters, buffers and training mode (returns the new module when ``module`` is one)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, process_group)
            with grad_mode.no_grad():
                if module.affine:
                    out.weight = module.weight
                    out.bias = module.bias
                out.running_mean = module.running_mean
                out.running_var = module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out
