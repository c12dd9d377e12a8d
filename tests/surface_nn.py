"""SurfaceOp rows for ``nnfast.nn.functional``: distances, normalize, pad, one_hot and the smaller
losses (tests/surface.py describes the format; test_surface.py runs them)."""
from __future__ import annotations

import numpy as np

import nnfast
import nnfast.nn.functional as F
from surface import ErrorCase, Raw, Sample, SurfaceOp, torch

TF = torch.nn.functional if torch is not None else None


def _torch(name):
    return (lambda *a, **k: getattr(TF, name)(*a, **k)) if TF is not None else None


def _reduce(loss, reduction):
    return loss.mean() if reduction == "mean" else (loss.sum() if reduction == "sum" else loss)


def _pnorm(x, p, axis, keepdims=False):
    return np.sum(np.abs(x) ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _t(a):
    return nnfast.from_numpy(np.asarray(a, dtype=np.float64))


# ------------------------------------------------------------------ references
def ref_normalize(x, p=2.0, dim=1, eps=1e-12):
    return x / np.maximum(_pnorm(x, p, dim, True), eps)


def ref_cosine_similarity(a, b, dim=1, eps=1e-8):
    a, b = np.broadcast_arrays(a, b)
    return np.sum(a / np.maximum(_pnorm(a, 2, dim, True), eps) * b / np.maximum(_pnorm(b, 2, dim, True), eps), dim)


def ref_pairwise_distance(a, b, p=2.0, eps=1e-6, keepdim=False):
    return _pnorm(a - b + eps, p, -1, keepdim)


_NP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def ref_pad(x, pad, mode="constant", value=None):
    width = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        width[x.ndim - 1 - i] = (max(pad[2 * i], 0), max(pad[2 * i + 1], 0))
    kw = {"constant_values": 0.0 if value is None else value} if mode == "constant" else {}
    out = np.pad(x, width, mode=_NP_MODE[mode], **kw)
    crop = [slice(None)] * x.ndim  # negative sizes crop (constant mode)
    for i in range(len(pad) // 2):
        lo, hi = pad[2 * i], pad[2 * i + 1]
        crop[x.ndim - 1 - i] = slice(-lo if lo < 0 else 0, (out.shape[x.ndim - 1 - i] + hi) if hi < 0 else None)
    return out[tuple(crop)]


def ref_one_hot(t, num_classes=-1):
    c = int(t.max()) + 1 if num_classes == -1 else num_classes
    return (t[..., None] == np.arange(c)).astype(np.int64)


def ref_margin_ranking(x1, x2, y, margin=0.0, reduction="mean"):
    return _reduce(np.maximum(0, -y * (x1 - x2) + margin), reduction)


def ref_hinge_embedding(x, y, margin=1.0, reduction="mean"):
    return _reduce(np.where(y == 1, x, 0) + np.where(y == -1, np.maximum(0, margin - x), 0), reduction)


def ref_soft_margin(x, y, reduction="mean"):
    return _reduce(np.log1p(np.exp(-y * x)), reduction)


def ref_multilabel_soft_margin(x, y, weight=None, reduction="mean"):
    ls = lambda z: -np.log1p(np.exp(-z))  # noqa: E731
    loss = -(y * ls(x) + (1 - y) * ls(-x)) * (1 if weight is None else weight)
    return _reduce(loss.mean(-1), reduction)


def ref_cosine_embedding(a, b, y, margin=0.0, reduction="mean"):
    cos = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    return _reduce(np.where(y == 1, 1 - cos, 0) + np.where(y == -1, np.maximum(0, cos - margin), 0), reduction)


def ref_gaussian_nll(x, t, var, full=False, eps=1e-6, reduction="mean"):
    if var.shape != x.shape and var.shape == x.shape[:-1]:
        var = var[..., None]
    v = np.maximum(var, eps)
    loss = 0.5 * (np.log(v) + (x - t) ** 2 / v) + (0.5 * np.log(2 * np.pi) if full else 0)
    return _reduce(loss, reduction)


def ref_poisson_nll(x, y, log_input=True, full=False, eps=1e-8, reduction="mean"):
    loss = np.exp(x) - y * x if log_input else x - y * np.log(x + eps)
    if full:
        ys = np.where(y > 1, y, 1.0)
        loss = loss + np.where(y > 1, ys * np.log(ys) - ys + 0.5 * np.log(2 * np.pi * ys), 0)
    return _reduce(loss, reduction)


def ref_triplet(anc, pos, neg, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    d = lambda u, v: _pnorm(u - v + eps, p, -1)  # noqa: E731
    dn = np.minimum(d(anc, neg), d(pos, neg)) if swap else d(anc, neg)
    return _reduce(np.maximum(d(anc, pos) - dn + margin, 0), reduction)


# ------------------------------------------------------------------ samples
def _signs(r, shape):
    return np.where(r.random(shape) < 0.5, -1.0, 1.0)


def s_normalize(r):
    return [Sample("n1", (r.standard_normal(1),), {"dim": 0}),
            Sample("7x3", (r.standard_normal((7, 3)),)),
            Sample("3x5-p1-d0", (r.standard_normal((3, 5)),), {"p": 1.0, "dim": 0}),
            Sample("2x3x5-p3", (r.standard_normal((2, 3, 5)),), {"p": 3, "dim": -1})]


def s_cosine(r):
    return [Sample("7x3", (r.standard_normal((7, 3)), r.standard_normal((7, 3)))),
            Sample("bcast", (r.standard_normal((1, 5)), r.standard_normal((3, 5))), {"dim": 1}),
            Sample("d0", (r.standard_normal((5, 2)), r.standard_normal((5, 2))), {"dim": 0}),
            Sample("n1", (r.standard_normal(1), r.standard_normal(1)), {"dim": 0})]


def s_pairwise(r):
    return [Sample("7x3", (r.standard_normal((7, 3)), r.standard_normal((7, 3)))),
            Sample("1d", (r.standard_normal(5), r.standard_normal(5))),
            Sample("p1", (r.standard_normal((3, 5)), r.standard_normal((3, 5))), {"p": 1.0}),
            Sample("p3-keep", (r.standard_normal((1, 7)), r.standard_normal((3, 7))), {"p": 3.0, "keepdim": True})]


def _pad_samples(mode):
    def samples(r):
        out = [Sample("1d", (r.standard_normal((2, 7)), Raw((2, 3)), Raw(mode))),
               Sample("2d", (r.standard_normal((1, 3, 5)), Raw((1, 2, 2, 0)), Raw(mode))),
               Sample("3d", (r.standard_normal((1, 2, 2, 3, 3)), Raw((1, 1, 0, 2, 1, 1)), Raw(mode))),
               Sample("n1", (r.standard_normal((1, 1)), Raw((0, 0)), Raw(mode)))]
        if mode == "constant":
            out += [Sample("value-4d", (r.standard_normal((2, 3)), Raw((1, 2, 0, 1))), {"value": 1.5}),
                    Sample("crop", (r.standard_normal((3, 7)), Raw((-2, 1, 1, -1)))),
                    Sample("all-dims", (r.standard_normal((2, 3)), Raw((1, 0, 0, 2))))]
        return out
    return samples


def s_one_hot(r):
    return [Sample("7", (r.integers(0, 4, 7).astype(np.int64),), grads=()),
            Sample("2x3-c5", (r.integers(0, 5, (2, 3)).astype(np.int64),), {"num_classes": 5}, grads=()),
            Sample("1", (np.array([0], dtype=np.int64),), grads=())]


def s_margin_ranking(r):
    return [Sample("7", (r.standard_normal(7), r.standard_normal(7), _signs(r, 7)), {"margin": 0.3}, grads=(0, 1)),
            Sample("1-sum", (r.standard_normal(1), r.standard_normal(1), _signs(r, 1)),
                   {"reduction": "sum"}, grads=(0, 1)),
            Sample("5-none", (r.standard_normal(5), r.standard_normal(5), _signs(r, 5)), {"reduction": "none"},
                   grads=(0, 1))]


def s_hinge(r):
    return [Sample("7", (r.standard_normal(7), _signs(r, 7)), grads=(0,)),
            Sample("3x5-none", (r.standard_normal((3, 5)), _signs(r, (3, 5))), {"margin": 0.5, "reduction": "none"},
                   grads=(0,)),
            Sample("1-sum", (r.standard_normal(1), _signs(r, 1)), {"reduction": "sum"}, grads=(0,))]


def s_soft_margin(r):
    return [Sample("7", (r.standard_normal(7), _signs(r, 7)), grads=(0,)),
            Sample("3x5-none", (r.standard_normal((3, 5)), _signs(r, (3, 5))), {"reduction": "none"}, grads=(0,)),
            Sample("1-sum", (r.standard_normal(1), _signs(r, 1)), {"reduction": "sum"}, grads=(0,))]


def s_multilabel(r):
    y = lambda s: (r.random(s) < 0.5).astype(np.float64)  # noqa: E731
    return [Sample("7x3", (r.standard_normal((7, 3)), y((7, 3))), grads=(0,)),
            Sample("5-none", (r.standard_normal(5), y(5)), {"reduction": "none"}, grads=(0,)),
            Sample("weight", (r.standard_normal((3, 5)), y((3, 5)), r.uniform(0.5, 2, 5)), {"reduction": "sum"},
                   grads=(0,)),
            Sample("1x1", (r.standard_normal((1, 1)), y((1, 1))), grads=(0,))]


def s_cosine_embedding(r):
    return [Sample("7x3", (r.standard_normal((7, 3)), r.standard_normal((7, 3)), _signs(r, 7)), {"margin": -0.2},
                   grads=(0, 1)),
            Sample("1x5-none", (r.standard_normal((1, 5)), r.standard_normal((1, 5)), np.array([1.0])),
                   {"reduction": "none"}, grads=(0, 1))]


def s_gaussian(r):
    return [Sample("7x3", (r.standard_normal((7, 3)), r.standard_normal((7, 3)), r.uniform(0.5, 2, (7, 3))),
                   grads=(0, 2)),
            Sample("var-dropped", (r.standard_normal((5, 3)), r.standard_normal((5, 3)), r.uniform(0.5, 2, 5)),
                   {"full": True, "reduction": "sum"}, grads=(0, 2)),
            Sample("var-last1", (r.standard_normal((3, 2)), r.standard_normal((3, 2)), r.uniform(0.5, 2, (3, 1))),
                   {"reduction": "none"}, grads=(0, 2)),
            Sample("1", (r.standard_normal(1), r.standard_normal(1), r.uniform(0.5, 2, 1)), grads=(0, 2))]


def s_poisson(r):
    return [Sample("7", (r.standard_normal(7), r.integers(0, 4, 7).astype(np.float64)), grads=(0,)),
            Sample("3x5-raw-full", (r.uniform(0.5, 2, (3, 5)), r.integers(0, 5, (3, 5)).astype(np.float64)),
                   {"log_input": False, "full": True, "reduction": "none"}, grads=(0,)),
            Sample("1-sum", (r.standard_normal(1), np.array([3.0])), {"reduction": "sum", "full": True}, grads=(0,))]


def s_triplet(r):
    n = lambda s: r.standard_normal(s)  # noqa: E731
    return [Sample("7x3", (n((7, 3)), n((7, 3)), n((7, 3))), {"margin": 5.0}),
            Sample("1d-p1-swap", (n(5), n(5), n(5)), {"margin": 5.0, "p": 1.0, "swap": True}),
            Sample("1x3-none", (n((1, 3)), n((1, 3)), n((1, 3))), {"margin": 5.0, "reduction": "none"})]


# ------------------------------------------------------------------ errors
def _raises(id, thunk, exc, op):
    return ErrorCase(id, thunk, exc, rf"\[{op}\] expected")


def e_pad():
    x = _t(np.zeros((2, 3)))
    return [_raises("reflect-too-wide", lambda: F.pad(x, (3, 0), mode="reflect"), ValueError, "pad"),
            _raises("odd", lambda: F.pad(x, (1,)), ValueError, "pad"),
            _raises("too-many", lambda: F.pad(x, (1, 1, 1, 1, 1, 1)), ValueError, "pad"),
            _raises("mode", lambda: F.pad(x, (1, 1), mode="wrap"), NotImplementedError, "pad"),
            _raises("reflect-1d", lambda: F.pad(_t(np.zeros(4)), (1, 1), mode="reflect"), NotImplementedError, "pad")]


def e_one_hot():
    return [_raises("negative", lambda: F.one_hot(nnfast.tensor([0, -1])), RuntimeError, "one_hot"),
            _raises("too-large", lambda: F.one_hot(nnfast.tensor([0, 3]), 3), RuntimeError, "one_hot"),
            _raises("float", lambda: F.one_hot(_t([0.0])), TypeError, "one_hot")]


def e_normalize():
    return [_raises("dim", lambda: F.normalize(_t(np.ones((2, 3))), dim=2), IndexError, "normalize"),
            _raises("not-tensor", lambda: F.normalize(np.ones(3)), TypeError, "normalize")]


def e_gaussian():
    x = _t(np.ones((3, 2)))
    return [_raises("neg-var", lambda: F.gaussian_nll_loss(x, x, _t(-np.ones((3, 2)))), ValueError,
                    "gaussian_nll_loss"),
            _raises("var-shape", lambda: F.gaussian_nll_loss(x, x, _t(np.ones((2, 3)))), ValueError,
                    "gaussian_nll_loss"),
            _raises("reduction", lambda: F.gaussian_nll_loss(x, x, x, reduction="avg"), ValueError,
                    "gaussian_nll_loss")]


def e_triplet():
    return [_raises("ndim", lambda: F.triplet_margin_loss(_t(np.ones((2, 3))), _t(np.ones(3)), _t(np.ones(3))),
                    ValueError, "triplet_margin_loss")]


def e_cosine_embedding():
    x = _t(np.ones((2, 3)))
    return [_raises("target", lambda: F.cosine_embedding_loss(x, x, _t(np.ones((2, 1)))), ValueError,
                    "cosine_embedding_loss")]


def _pad_op(mode):
    return SurfaceOp(f"F.pad[{mode}]", F.pad, ref_pad, _pad_samples(mode), torch_call=_torch("pad"),
                     errors=e_pad if mode == "constant" else list)


OPS = [
    SurfaceOp("F.normalize", F.normalize, ref_normalize, s_normalize, torch_call=_torch("normalize"),
              errors=e_normalize),
    SurfaceOp("F.cosine_similarity", F.cosine_similarity, ref_cosine_similarity, s_cosine,
              torch_call=_torch("cosine_similarity")),
    SurfaceOp("F.pairwise_distance", F.pairwise_distance, ref_pairwise_distance, s_pairwise,
              torch_call=_torch("pairwise_distance")),
    *[_pad_op(m) for m in ("constant", "reflect", "replicate", "circular")],
    SurfaceOp("F.one_hot", F.one_hot, ref_one_hot, s_one_hot, differentiable=False, torch_call=_torch("one_hot"),
              errors=e_one_hot, noncontig=False),
    SurfaceOp("F.margin_ranking_loss", F.margin_ranking_loss, ref_margin_ranking, s_margin_ranking,
              torch_call=_torch("margin_ranking_loss")),
    SurfaceOp("F.hinge_embedding_loss", F.hinge_embedding_loss, ref_hinge_embedding, s_hinge,
              torch_call=_torch("hinge_embedding_loss")),
    SurfaceOp("F.soft_margin_loss", F.soft_margin_loss, ref_soft_margin, s_soft_margin,
              torch_call=_torch("soft_margin_loss")),
    SurfaceOp("F.multilabel_soft_margin_loss", F.multilabel_soft_margin_loss, ref_multilabel_soft_margin,
              s_multilabel, torch_call=_torch("multilabel_soft_margin_loss")),
    SurfaceOp("F.cosine_embedding_loss", F.cosine_embedding_loss, ref_cosine_embedding, s_cosine_embedding,
              torch_call=_torch("cosine_embedding_loss"), errors=e_cosine_embedding),
    SurfaceOp("F.gaussian_nll_loss", F.gaussian_nll_loss, ref_gaussian_nll, s_gaussian,
              torch_call=_torch("gaussian_nll_loss"), errors=e_gaussian),
    SurfaceOp("F.poisson_nll_loss", F.poisson_nll_loss, ref_poisson_nll, s_poisson,
              torch_call=_torch("poisson_nll_loss")),
    SurfaceOp("F.triplet_margin_loss", F.triplet_margin_loss, ref_triplet, s_triplet, torch_call=_torch("triplet_margin_loss"), errors=e_triplet),
]
