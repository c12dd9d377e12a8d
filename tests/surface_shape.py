"""SurfaceOp rows of the shape area (python/nnfast/ops/shape.py): see tests/surface.py."""
from __future__ import annotations

import numpy as np

import nnfast
from surface import ErrorCase, Raw, Sample, Seq, SurfaceOp, torch


def _x(*shape):
    return lambda rng: rng.standard_normal(shape)


def _err(op, thunk, exc=RuntimeError):
    return ErrorCase(op, thunk, exc, rf"\[{op}\] expected")


def _t(*shape):
    return nnfast.zeros(*shape)


def _sizes(rng, *extra):
    """Samples over sizes 1, 7 and an odd 3x5 matrix, each with ``extra`` args."""
    return [Sample("1", (rng.standard_normal((1,)),) + extra[0]),
            Sample("7", (rng.standard_normal((7,)),) + extra[0]),
            Sample("3x5", (rng.standard_normal((3, 5)),) + extra[1])]


def _method(name):
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


def _fn(name):
    return lambda *a, **k: getattr(nnfast, name)(*a, **k)


def _tfn(name):
    return (lambda *a, **k: getattr(torch, name)(*a, **k)) if torch is not None else None


def _tmethod(name):
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


def _squeeze_ref(x, d=None):
    dims = range(x.ndim) if d is None else [k % x.ndim for k in ((d,) if isinstance(d, int) else d)]
    return np.squeeze(x, tuple(k for k in dims if x.shape[k] == 1))


OPS = [
    SurfaceOp("Tensor.view", _method("view"), lambda x, *s: x.reshape(*s), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(1), Raw(1))),
        Sample("7", (rng.standard_normal((7,)), Raw(-1), Raw(1))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(5), Raw(3))),
    ], torch_call=_tmethod("view"), noncontig=False, errors=lambda: [
        _err("view", lambda: _t(3, 4).t().view(12)),
        _err("view", lambda: _t(3, 4).view(5, -1)),
        _err("view", lambda: _t(3, 4).view(-1, -1)),
    ]),
    SurfaceOp("reshape", _fn("reshape"), lambda x, s: x.reshape(s), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(()))),
        Sample("7", (rng.standard_normal((7,)), Raw((7, 1)))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw((5, -1)))),
    ], torch_call=_tfn("reshape"), errors=lambda: [_err("reshape", lambda: _t(3, 4).reshape(7))]),
    SurfaceOp("flatten", _fn("flatten"), lambda x, s=0, e=-1: x.reshape(x.shape[:s] + (-1,) + x.shape[e % x.ndim + 1:]),
              lambda rng: [Sample("1", (rng.standard_normal((1,)),)),
                           Sample("2x7x3", (rng.standard_normal((2, 7, 3)), Raw(1))),
                           Sample("3x5x1", (rng.standard_normal((3, 5, 1)), Raw(0), Raw(-2)))],
              torch_call=_tfn("flatten"), errors=lambda: [
                  _err("flatten", lambda: _t(2, 3).flatten(1, 0)), _err("flatten", lambda: _t(2, 3).flatten(3), IndexError)]),
    SurfaceOp("unflatten", _fn("unflatten"), lambda x, d, s: x.reshape(x.shape[:d] + s + x.shape[d + 1:]),
              lambda rng: [Sample("7", (rng.standard_normal((7,)), Raw(0), Raw((7, 1)))),
                           Sample("3x15", (rng.standard_normal((3, 15)), Raw(1), Raw((3, 5))))],
              torch_call=_tfn("unflatten"), noncontig=False,
              errors=lambda: [_err("unflatten", lambda: _t(2, 6).unflatten(1, (4, 2)))]),
    SurfaceOp("squeeze", _fn("squeeze"), _squeeze_ref,
              lambda rng: [Sample("1", (rng.standard_normal((1,)),)),
                           Sample("7x1", (rng.standard_normal((7, 1)), Raw(-1))),
                           Sample("3x5", (rng.standard_normal((3, 5)), Raw(0))),
                           Sample("1x3x1-tuple", (rng.standard_normal((1, 3, 1)), Raw((0, 2))))],
              torch_call=_tfn("squeeze"), errors=lambda: [_err("squeeze", lambda: _t(2, 3).squeeze(2), IndexError)]),
    SurfaceOp("unsqueeze", _fn("unsqueeze"), lambda x, d: np.expand_dims(x, d), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(0))),
        Sample("7", (rng.standard_normal((7,)), Raw(-1))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(1)))], torch_call=_tfn("unsqueeze"),
        errors=lambda: [_err("unsqueeze", lambda: _t(2, 3).unsqueeze(4), IndexError)]),
    SurfaceOp("transpose", _fn("transpose"), lambda x, a, b: np.swapaxes(x, a, b), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(0), Raw(-1))),
        Sample("3x7", (rng.standard_normal((3, 7)), Raw(0), Raw(1))),
        Sample("2x3x5", (rng.standard_normal((2, 3, 5)), Raw(-1), Raw(0)))], torch_call=_tfn("transpose"),
        errors=lambda: [_err("transpose", lambda: _t(2, 3).transpose(0, 2), IndexError)]),
    SurfaceOp("swapaxes", _fn("swapaxes"), lambda x, a, b: np.swapaxes(x, a, b), lambda rng: [
        Sample("3x7", (rng.standard_normal((3, 7)), Raw(0), Raw(1)))], torch_call=_tfn("swapaxes")),
    SurfaceOp("t", _fn("t"), lambda x: x.T, lambda rng: [
        Sample("7", (rng.standard_normal((7,)),)), Sample("3x5", (rng.standard_normal((3, 5)),))],
        torch_call=_tfn("t"), errors=lambda: [_err("t", lambda: _t(2, 3, 4).t())]),
    SurfaceOp("Tensor.mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), lambda rng: [
        Sample("2x3x5", (rng.standard_normal((2, 3, 5)),)), Sample("1x7", (rng.standard_normal((1, 7)),))],
        torch_call=lambda x: x.mT, errors=lambda: [_err("mT", lambda: _t(3).mT)]),
    SurfaceOp("Tensor.T", lambda x: x.T, lambda x: x.T, lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)),))], torch_call=lambda x: x.T),
    SurfaceOp("permute", _fn("permute"), lambda x, d: np.transpose(x, d), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw((0,)))),
        Sample("2x3x5", (rng.standard_normal((2, 3, 5)), Raw((2, 0, 1)))),
        Sample("7x3-neg", (rng.standard_normal((7, 3)), Raw((-1, 0))))], torch_call=_tfn("permute"),
        errors=lambda: [_err("permute", lambda: _t(2, 3).permute(0, 0)), _err("permute", lambda: _t(2, 3).permute(0))]),
    SurfaceOp("movedim", _fn("movedim"), lambda x, s, d: np.moveaxis(x, s, d), lambda rng: [
        Sample("2x3x5", (rng.standard_normal((2, 3, 5)), Raw(0), Raw(-1))),
        Sample("2x3x5-tuple", (rng.standard_normal((2, 3, 5)), Raw((0, 1)), Raw((2, 0)))),
        Sample("7", (rng.standard_normal((7,)), Raw(0), Raw(0)))], torch_call=_tfn("movedim"),
        errors=lambda: [_err("movedim", lambda: _t(2, 3).movedim((0, 1), 0))]),
    SurfaceOp("Tensor.expand", _method("expand"), lambda x, *s: np.broadcast_to(x, tuple(
        x.shape[i - (len(s) - x.ndim)] if v == -1 else v for i, v in enumerate(s))), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(7))),
        Sample("7x1", (rng.standard_normal((7, 1)), Raw(2), Raw(-1), Raw(3))),
        Sample("3x1x5", (rng.standard_normal((3, 1, 5)), Raw(3), Raw(4), Raw(5)))],
        torch_call=_tmethod("expand"), errors=lambda: [
            _err("expand", lambda: _t(2, 3).expand(4, 3)), _err("expand", lambda: _t(2, 3).expand(3))]),
    SurfaceOp("broadcast_to", _fn("broadcast_to"), lambda x, s: np.broadcast_to(x, s), lambda rng: [
        Sample("7", (rng.standard_normal((7,)), Raw((3, 7))))], torch_call=_tfn("broadcast_to")),
    SurfaceOp("Tensor.repeat", _method("repeat"), lambda x, *r: np.tile(x, r), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(7))),
        Sample("7", (rng.standard_normal((7,)), Raw(2), Raw(3))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(2), Raw(1)))], torch_call=_tmethod("repeat"),
        errors=lambda: [_err("repeat", lambda: _t(2, 3).repeat(2))]),
    SurfaceOp("tile", _fn("tile"), lambda x, r: np.tile(x, r), lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)), Raw((2,)))),
        Sample("7", (rng.standard_normal((7,)), Raw((3, 1))))], torch_call=_tfn("tile")),
    SurfaceOp("flip", _fn("flip"), lambda x, d: np.flip(x, d), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw((0,)))),
        Sample("7", (rng.standard_normal((7,)), Raw((-1,)))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw((0, 1))))], torch_call=_tfn("flip"),
        errors=lambda: [_err("flip", lambda: _t(2, 3).flip(2), IndexError)]),
    SurfaceOp("fliplr", _fn("fliplr"), np.fliplr, lambda rng: [Sample("3x5", (rng.standard_normal((3, 5)),))],
              torch_call=_tfn("fliplr"), errors=lambda: [_err("fliplr", lambda: nnfast.fliplr(_t(3)))]),
    SurfaceOp("flipud", _fn("flipud"), np.flipud, lambda rng: [Sample("7", (rng.standard_normal((7,)),))],
              torch_call=_tfn("flipud")),
    SurfaceOp("roll", _fn("roll"), lambda x, s, d=None: np.roll(x, s, d), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(3))),
        Sample("7", (rng.standard_normal((7,)), Raw(-2), Raw(0))),
        Sample("3x5-flat", (rng.standard_normal((3, 5)), Raw(4))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw((1, -3)), Raw((0, 1))))], torch_call=_tfn("roll"),
        errors=lambda: [_err("roll", lambda: _t(2, 3).roll((1, 2), 0))]),
    SurfaceOp("rot90", _fn("rot90"), lambda x, k=1, d=(0, 1): np.rot90(x, k, d), lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)),)),
        Sample("3x5-k2", (rng.standard_normal((3, 5)), Raw(2))),
        Sample("2x3x5-k3", (rng.standard_normal((2, 3, 5)), Raw(-1), Raw((2, 0))))], torch_call=_tfn("rot90"),
        errors=lambda: [_err("rot90", lambda: nnfast.rot90(_t(3, 3), 1, (0, 0)))]),
    SurfaceOp("narrow", _fn("narrow"), lambda x, d, s, n: np.take(x, range(s % x.shape[d], s % x.shape[d] + n), d),
              lambda rng: [Sample("1", (rng.standard_normal((1,)), Raw(0), Raw(0), Raw(1))),
                           Sample("7", (rng.standard_normal((7,)), Raw(0), Raw(-3), Raw(2))),
                           Sample("3x5", (rng.standard_normal((3, 5)), Raw(1), Raw(1), Raw(3)))],
              torch_call=_tfn("narrow"), errors=lambda: [_err("narrow", lambda: _t(2, 3).narrow(1, 2, 2)),
                                                         _err("narrow", lambda: _t(2, 3).narrow(1, 4, 0), IndexError)]),
    SurfaceOp("select", _fn("select"), lambda x, d, i: np.take(x, i, d), lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(1), Raw(-1)))], torch_call=_tfn("select"),
        errors=lambda: [_err("select", lambda: _t(2, 3).select(0, 2), IndexError)]),
    SurfaceOp("split", _fn("split"), lambda x, s, d=0: tuple(np.split(
        x, np.cumsum(s)[:-1] if isinstance(s, list) else range(s, x.shape[d], s), axis=d)), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(1))),
        Sample("7", (rng.standard_normal((7,)), Raw(3))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw([1, 4]), Raw(-1)))], torch_call=_tfn("split"),
        errors=lambda: [_err("split", lambda: _t(2, 3).split([1, 1], 1))]),
    SurfaceOp("chunk", _fn("chunk"), lambda x, c, d=0: tuple(np.split(
        x, range(-(-x.shape[d] // c), x.shape[d], -(-x.shape[d] // c)), axis=d)), lambda rng: [
        Sample("1", (rng.standard_normal((1,)), Raw(2))),
        Sample("7", (rng.standard_normal((7,)), Raw(3))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(2), Raw(1)))], torch_call=_tfn("chunk"),
        errors=lambda: [_err("chunk", lambda: _t(2, 3).chunk(0))]),
    SurfaceOp("tensor_split", _fn("tensor_split"), lambda x, s, d=0: tuple(np.array_split(x, s, axis=d)),
              lambda rng: [Sample("7", (rng.standard_normal((7,)), Raw(3))),
                           Sample("3x5", (rng.standard_normal((3, 5)), Raw([1, 4]), Raw(1)))],
              torch_call=_tfn("tensor_split")),
    SurfaceOp("unbind", _fn("unbind"), lambda x, d=0: tuple(np.moveaxis(x, d, 0)), lambda rng: [
        Sample("1", (rng.standard_normal((1,)),)),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(-1)))], torch_call=_tfn("unbind")),
    SurfaceOp("cat", _fn("cat"), lambda ts, d=0: np.concatenate([t for t in ts if t.shape != (0,)], d), lambda rng: [
        Sample("1", (Seq([rng.standard_normal((1,)), rng.standard_normal((7,))]),)),
        Sample("3x5", (Seq([rng.standard_normal((3, 5)), rng.standard_normal((3, 2))]), Raw(-1))),
        Sample("skip-empty", (Seq([rng.standard_normal((2, 3)), np.zeros((0,)), rng.standard_normal((1, 3))]),),
               grads=())], torch_call=_tfn("cat"), errors=lambda: [
        _err("cat", lambda: nnfast.cat([])), _err("cat", lambda: nnfast.cat([_t(2, 3), _t(3, 3)], 1)),
        _err("cat", lambda: nnfast.cat([_t(2, 3), _t(2, 3)], 2), IndexError)]),
    SurfaceOp("concatenate", _fn("concatenate"), lambda ts, d=0: np.concatenate(ts, d), lambda rng: [
        Sample("7", (Seq([rng.standard_normal((7, 1)), rng.standard_normal((7, 2))]), Raw(1)))],
        torch_call=_tfn("concatenate")),
    SurfaceOp("stack", _fn("stack"), lambda ts, d=0: np.stack(ts, d), lambda rng: [
        Sample("1", (Seq([rng.standard_normal((1,)), rng.standard_normal((1,))]),)),
        Sample("7", (Seq([rng.standard_normal((7,))] * 3), Raw(-1))),
        Sample("3x5", (Seq([rng.standard_normal((3, 5)), rng.standard_normal((3, 5))]), Raw(1)))],
        torch_call=_tfn("stack"), errors=lambda: [_err("stack", lambda: nnfast.stack([_t(2), _t(3)])),
                                                   _err("stack", lambda: nnfast.stack([_t(2), _t(2)], 2), IndexError)]),
    SurfaceOp("hstack", _fn("hstack"), np.hstack, lambda rng: [
        Sample("7", (Seq([rng.standard_normal((7,)), rng.standard_normal((3,))]),)),
        Sample("3x5", (Seq([rng.standard_normal((3, 5)), rng.standard_normal((3, 1))]),))], torch_call=_tfn("hstack")),
    SurfaceOp("vstack", _fn("vstack"), np.vstack, lambda rng: [
        Sample("7", (Seq([rng.standard_normal((7,)), rng.standard_normal((2, 7))]),))], torch_call=_tfn("vstack")),
    SurfaceOp("dstack", _fn("dstack"), np.dstack, lambda rng: [
        Sample("3x5", (Seq([rng.standard_normal((3, 5)), rng.standard_normal((3, 5))]),))], torch_call=_tfn("dstack")),
    SurfaceOp("column_stack", _fn("column_stack"), np.column_stack, lambda rng: [
        Sample("7", (Seq([rng.standard_normal((7,)), rng.standard_normal((7, 2))]),))],
        torch_call=_tfn("column_stack")),
    SurfaceOp("atleast_3d", _fn("atleast_3d"), np.atleast_3d, lambda rng: [
        Sample("7", (rng.standard_normal((7,)),)), Sample("3x5", (rng.standard_normal((3, 5)),))],
        torch_call=_tfn("atleast_3d")),
    SurfaceOp("atleast_2d", _fn("atleast_2d"), np.atleast_2d, lambda rng: [
        Sample("7", (rng.standard_normal((7,)),))], torch_call=_tfn("atleast_2d")),
    SurfaceOp("diag", _fn("diag"), lambda x, k=0: np.diag(x, k), lambda rng: [
        Sample("1", (rng.standard_normal((1,)),)),
        Sample("7-k1", (rng.standard_normal((7,)), Raw(1))),
        Sample("3x5", (rng.standard_normal((3, 5)),)),
        Sample("3x5-k-1", (rng.standard_normal((3, 5)), Raw(-1)))], torch_call=_tfn("diag"),
        errors=lambda: [_err("diag", lambda: nnfast.diag(_t(2, 2, 2)))]),
    SurfaceOp("diagonal", _fn("diagonal"), lambda x, o=0, a=0, b=1: np.diagonal(x, o, a, b), lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)),)),
        Sample("2x3x5", (rng.standard_normal((2, 3, 5)), Raw(1), Raw(-1), Raw(0))),
        Sample("7x7", (rng.standard_normal((7, 7)), Raw(-2)))], torch_call=_tfn("diagonal"),
        errors=lambda: [_err("diagonal", lambda: nnfast.diagonal(_t(3, 3), 0, 1, 1))]),
    SurfaceOp("diag_embed", _fn("diag_embed"), None, lambda rng: [
        Sample("1", (rng.standard_normal((1,)),)),
        Sample("2x3", (rng.standard_normal((2, 3)), Raw(1))),
        Sample("2x3-dims", (rng.standard_normal((2, 3)), Raw(-1), Raw(0), Raw(2)))], torch_call=_tfn("diag_embed")),
    SurfaceOp("tril", _fn("tril"), lambda x, k=0: np.tril(x, k), lambda rng: [
        Sample("1x1", (rng.standard_normal((1, 1)),)),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(1))),
        Sample("2x7x3", (rng.standard_normal((2, 7, 3)), Raw(-1)))], torch_call=_tfn("tril"),
        errors=lambda: [_err("tril", lambda: nnfast.tril(_t(3)))]),
    SurfaceOp("triu", _fn("triu"), lambda x, k=0: np.triu(x, k), lambda rng: [
        Sample("3x5", (rng.standard_normal((3, 5)),)),
        Sample("7x3", (rng.standard_normal((7, 3)), Raw(-2)))], torch_call=_tfn("triu")),
    SurfaceOp("trace", _fn("trace"), np.trace, lambda rng: [
        Sample("1x1", (rng.standard_normal((1, 1)),)), Sample("3x5", (rng.standard_normal((3, 5)),))],
        torch_call=_tfn("trace"), errors=lambda: [_err("trace", lambda: nnfast.trace(_t(3)))]),
    SurfaceOp("meshgrid", lambda *ts, **k: nnfast.meshgrid(*ts, **k),
              lambda *ts, indexing="ij": tuple(np.meshgrid(*ts, indexing=indexing)), lambda rng: [
        Sample("ij", (rng.standard_normal((3,)), rng.standard_normal((5,))), {"indexing": "ij"}),
        Sample("xy", (rng.standard_normal((1,)), rng.standard_normal((7,)), rng.standard_normal((2,))),
               {"indexing": "xy"})], torch_call=_tfn("meshgrid")),
    SurfaceOp("cartesian_prod", _fn("cartesian_prod"),
              lambda *ts: np.stack([g.reshape(-1) for g in np.meshgrid(*ts, indexing="ij")], 1), lambda rng: [
        Sample("3x5", (rng.standard_normal((3,)), rng.standard_normal((5,))))], torch_call=_tfn("cartesian_prod")),
    SurfaceOp("Tensor.unfold", _method("unfold"), None, lambda rng: [
        Sample("7", (rng.standard_normal((7,)), Raw(0), Raw(3), Raw(2))),
        Sample("3x5", (rng.standard_normal((3, 5)), Raw(-1), Raw(2), Raw(1)))], torch_call=_tmethod("unfold"),
        errors=lambda: [_err("unfold", lambda: _t(3).unfold(0, 4, 1))]),
]
