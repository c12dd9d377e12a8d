"""Surface table: matrix products (matmul / mm / bmm / mv / dot / outer / add* / einsum / tensordot /
kron / linalg.multi_dot), all on nnfast's GEMM. Gradcheck samples stay small (<= ~60 elements)."""
from __future__ import annotations

import numpy as np

import nnfast
from surface import ErrorCase, Sample, Seq, SurfaceOp, torch

_F64_TOL = {np.float64: (1e-10, 1e-12), np.float32: (1e-4, 1e-5)}


def _t(*shape):
    return nnfast.randn(*shape)


def _r(rng, *shape):
    return rng.standard_normal(shape)


def _tt(name):
    """The torch function ``name`` (None without torch), taken lazily so the table imports without it."""
    return (lambda *a, **k: getattr(torch, name)(*a, **k)) if torch is not None else None


def _mT(rng, *shape):
    """A transposed view: the array is made (..., n, m) and swapped, so its last two strides are swapped."""
    return np.swapaxes(rng.standard_normal(shape[:-2] + (shape[-1], shape[-2])), -1, -2)


def _matmul_samples(rng):
    return [
        Sample("dot7", (_r(rng, 7), _r(rng, 7))),
        Sample("vec_mat", (_r(rng, 3), _r(rng, 3, 5))),
        Sample("mat_vec", (_r(rng, 5, 3), _r(rng, 3))),
        Sample("mm1", (_r(rng, 1, 1), _r(rng, 1, 1))),
        Sample("mm_odd", (_r(rng, 5, 7), _r(rng, 7, 3))),
        Sample("mm_T", (_mT(rng, 3, 5), _mT(rng, 5, 4))),
        Sample("batched", (_r(rng, 2, 3, 4), _r(rng, 2, 4, 5))),
        Sample("bcast_batch", (_r(rng, 2, 1, 3, 2), _r(rng, 3, 2, 3))),
        Sample("nd_2d", (_r(rng, 2, 3, 4), _r(rng, 4, 3))),
        Sample("2d_nd", (_r(rng, 3, 4), _r(rng, 2, 4, 3))),
        Sample("vec_batched", (_r(rng, 4), _r(rng, 2, 4, 3))),
        Sample("batched_vec", (_r(rng, 2, 3, 4), _r(rng, 4))),
        Sample("batched_T", (_mT(rng, 2, 3, 5), _r(rng, 1, 5, 2))),
    ]


def _matmul_errors():
    return [
        ErrorCase("inner", lambda: nnfast.matmul(_t(2, 3), _t(4, 2)), ValueError, r"\[matmul\] expected"),
        ErrorCase("op_inner", lambda: _t(2, 3) @ _t(2, 3), ValueError, r"\[matmul\] expected"),
        ErrorCase("scalar", lambda: nnfast.matmul(nnfast.tensor(1.0), _t(2)), ValueError, r"\[matmul\] expected"),
        ErrorCase("batch", lambda: nnfast.matmul(_t(2, 2, 3), _t(3, 3, 2)), ValueError, r"\[matmul\] expected"),
    ]


def _bmm_errors():
    return [
        ErrorCase("2d", lambda: nnfast.bmm(_t(2, 3), _t(3, 2)), ValueError, r"\[bmm\] expected 3-D tensors"),
        ErrorCase("batch", lambda: nnfast.bmm(_t(2, 2, 3), _t(3, 3, 2)), ValueError, r"\[bmm\] expected"),
        ErrorCase("inner", lambda: nnfast.bmm(_t(2, 2, 3), _t(2, 2, 2)), ValueError, r"\[bmm\] expected"),
    ]


def _op(name, call, ref, samples, torch_name=None, errors=list, **kw):
    return SurfaceOp(name, call, ref, samples, torch_call=_tt(torch_name or name), errors=errors, tol=_F64_TOL,
                     **kw)


def _scaled(ref_prod):
    def ref(inp, a, b, beta=1, alpha=1):
        return beta * inp + alpha * ref_prod(a, b)
    return ref


def _einsum_op(eq, shapes, ref_eq=None):
    """One einsum row: equation and operand shapes (gradcheck over every operand)."""
    def samples(rng):
        return [Sample("s", tuple(_r(rng, *s) for s in shapes))]
    return SurfaceOp(f"einsum[{eq}]", lambda *ops: nnfast.einsum(eq, *ops),
                     lambda *ops: np.einsum(ref_eq or eq, *ops), samples,
                     torch_call=(lambda *ops: torch.einsum(eq, *ops)) if torch is not None else None, tol=_F64_TOL)


_EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 1)]),
    ("ii->i", [(5, 5)]),
    ("ii", [(7, 7)]),
    ("i,j->ij", [(3,), (7,)]),
    ("...ij,...jk", [(2, 3, 4), (4, 2)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("ij->ji", [(3, 5)]),
    ("i,i->", [(7,), (7,)]),
    ("i,i->i", [(5,), (5,)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("ijk->", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 2), (2, 2)]),
    ("iij->j", [(3, 3, 2)]),
    ("b i j, b j -> b i", [(2, 3, 4), (2, 4)]),
]


def _einsum_list_errors():
    return [
        ErrorCase("count", lambda: nnfast.einsum("ij,jk->ik", _t(2, 3)), ValueError, r"\[einsum\] expected"),
        ErrorCase("ndim", lambda: nnfast.einsum("ijk->i", _t(2, 3)), ValueError, r"\[einsum\] expected"),
        ErrorCase("out", lambda: nnfast.einsum("ij->q", _t(2, 3)), ValueError, r"\[einsum\] expected"),
        ErrorCase("size", lambda: nnfast.einsum("ij,jk->ik", _t(2, 3), _t(4, 2)), ValueError,
                  r"\[einsum\] expected"),
    ]


OPS = [
    _op("matmul", nnfast.matmul, np.matmul, _matmul_samples, errors=_matmul_errors),
    _op("Tensor.__matmul__", lambda a, b: a @ b, np.matmul, _matmul_samples,
        torch_name="matmul"),
    _op("Tensor.__rmatmul__", lambda a, b: b.__rmatmul__(a), np.matmul,
        lambda rng: [Sample("mm", (_r(rng, 3, 4), _r(rng, 4, 7)))], torch_name="matmul"),
    # Tensor.mm: nnfast/__init__.py still binds nnfast.mm to its old matmul (no 2-D checks) until merge.
    _op("mm", lambda a, b: a.mm(b), np.matmul,
        lambda rng: [Sample("one", (_r(rng, 1, 1), _r(rng, 1, 7))), Sample("odd", (_r(rng, 5, 3), _r(rng, 3, 7))),
                     Sample("T", (_mT(rng, 4, 3), _mT(rng, 3, 5)))],
        errors=lambda: [ErrorCase("3d", lambda: _t(2, 2, 2).mm(_t(2, 2)), ValueError, r"\[mm\] expected"),
                        ErrorCase("inner", lambda: _t(2, 3).mm(_t(2, 3)), ValueError,
                                  r"\[mm\] expected")]),
    _op("bmm", nnfast.bmm, np.matmul,
        lambda rng: [Sample("one", (_r(rng, 1, 1, 1), _r(rng, 1, 1, 1))),
                     Sample("odd", (_r(rng, 3, 5, 2), _r(rng, 3, 2, 7))),
                     Sample("T", (_mT(rng, 2, 3, 4), _mT(rng, 2, 4, 3)))],
        errors=_bmm_errors),
    _op("mv", nnfast.mv, np.matmul,
        lambda rng: [Sample("odd", (_r(rng, 7, 5), _r(rng, 5))), Sample("T", (_mT(rng, 3, 4), _r(rng, 4)))],
        errors=lambda: [ErrorCase("vec", lambda: nnfast.mv(_t(2, 3), _t(3, 1)), ValueError, r"\[mv\] expected")]),
    _op("dot", nnfast.dot, np.dot, lambda rng: [Sample("one", (_r(rng, 1), _r(rng, 1))),
                                                 Sample("seven", (_r(rng, 7), _r(rng, 7)))],
        errors=lambda: [ErrorCase("size", lambda: nnfast.dot(_t(3), _t(4)), ValueError, r"\[dot\] expected"),
                        ErrorCase("2d", lambda: nnfast.dot(_t(3, 1), _t(3)), ValueError, r"\[dot\] expected")]),
    _op("vdot", nnfast.vdot, np.vdot, lambda rng: [Sample("odd", (_r(rng, 5), _r(rng, 5)))]),
    _op("outer", nnfast.outer, np.outer, lambda rng: [Sample("odd", (_r(rng, 7), _r(rng, 3))),
                                                       Sample("one", (_r(rng, 1), _r(rng, 5)))]),
    _op("ger", nnfast.ger, np.outer, lambda rng: [Sample("odd", (_r(rng, 3), _r(rng, 5)))], torch_name="outer"),
    _op("addmm", nnfast.addmm, _scaled(np.matmul),
        lambda rng: [Sample("plain", (_r(rng, 3, 5), _r(rng, 3, 4), _r(rng, 4, 5))),
                     Sample("bcast_scaled", (_r(rng, 5), _r(rng, 3, 7), _r(rng, 7, 5)), {"beta": 0.5, "alpha": 2.0}),
                     Sample("beta0", (_r(rng, 1, 1), _r(rng, 2, 3), _r(rng, 3, 2)), {"beta": 0})],
        errors=lambda: [ErrorCase("inner", lambda: nnfast.addmm(_t(2, 2), _t(2, 3), _t(2, 2)), ValueError,
                                  r"\[addmm\] expected")]),
    _op("addmv", nnfast.addmv, _scaled(np.matmul),
        lambda rng: [Sample("plain", (_r(rng, 3), _r(rng, 3, 7), _r(rng, 7)), {"alpha": -1.5})]),
    _op("addbmm", nnfast.addbmm, lambda inp, a, b, beta=1, alpha=1: beta * inp + alpha * np.matmul(a, b).sum(0),
        lambda rng: [Sample("odd", (_r(rng, 3, 5), _r(rng, 2, 3, 4), _r(rng, 2, 4, 5)), {"beta": 2.0}),
                     Sample("one", (_r(rng, 1), _r(rng, 1, 1, 1), _r(rng, 1, 1, 1)))],
        errors=lambda: [ErrorCase("2d", lambda: nnfast.addbmm(_t(2, 2), _t(2, 2), _t(2, 2)), ValueError,
                                  r"\[addbmm\] expected 3-D")]),
    _op("baddbmm", nnfast.baddbmm, _scaled(np.matmul),
        lambda rng: [Sample("odd", (_r(rng, 2, 3, 5), _r(rng, 2, 3, 4), _r(rng, 2, 4, 5)), {"alpha": 0.5}),
                     Sample("bcast", (_r(rng, 1, 5), _r(rng, 3, 1, 7), _r(rng, 3, 7, 5)))]),
    _op("tensordot", nnfast.tensordot, lambda a, b, dims=2: np.tensordot(a, b, axes=dims),
        lambda rng: [Sample("int", (_r(rng, 2, 3, 4), _r(rng, 3, 4, 5))),
                     Sample("lists", (_r(rng, 3, 2, 5), _r(rng, 5, 3, 2)), {"dims": ([0, 2], [1, 0])}),
                     Sample("zero", (_r(rng, 3), _r(rng, 7)), {"dims": 0})],
        errors=lambda: [ErrorCase("size", lambda: nnfast.tensordot(_t(2, 3), _t(4, 2), 1), ValueError,
                                  r"\[tensordot\] expected")]),
    _op("kron", nnfast.kron, np.kron,
        lambda rng: [Sample("2d", (_r(rng, 2, 3), _r(rng, 3, 1))), Sample("mixed", (_r(rng, 3), _r(rng, 2, 2)))]),
    SurfaceOp("linalg[multi_dot]", lambda ts: nnfast.linalg.multi_dot(ts), lambda ts: np.linalg.multi_dot(ts),
              lambda rng: [Sample("chain", (Seq([_r(rng, 3), _r(rng, 3, 4), _r(rng, 4, 2)]),)),
                           Sample("mats", (Seq([_r(rng, 2, 5), _r(rng, 5, 7), _r(rng, 7, 1)]),))],
              torch_call=(lambda ts: torch.linalg.multi_dot(ts)) if torch is not None else None, tol=_F64_TOL,
              errors=lambda: [ErrorCase("one", lambda: nnfast.linalg.multi_dot([_t(2, 2)]), ValueError,
                                        r"\[multi_dot\] expected")]),
    SurfaceOp("linalg[matmul]", lambda a, b: nnfast.linalg.matmul(a, b), np.matmul,
              lambda rng: [Sample("b", (_r(rng, 2, 3, 4), _r(rng, 4, 1)))],
              torch_call=(lambda a, b: torch.linalg.matmul(a, b)) if torch is not None else None, tol=_F64_TOL),
    SurfaceOp("linalg[vector_norm]", lambda a, **k: nnfast.linalg.vector_norm(a, **k),
              lambda a, ord=2, dim=None, keepdim=False: np.linalg.norm(
                  a.reshape(-1) if dim is None else a, ord, axis=dim, keepdims=keepdim),
              lambda rng: [Sample("all", (_r(rng, 3, 5),)), Sample("n1", (_r(rng, 1),)),
                           Sample("p3-dim1", (_r(rng, 3, 7),), {"ord": 3, "dim": 1}),
                           Sample("inf-keep", (_r(rng, 7, 3),), {"ord": np.inf, "dim": 0, "keepdim": True})],
              torch_call=(lambda a, **k: torch.linalg.vector_norm(a, **k)) if torch is not None else None,
              tol=_F64_TOL),
    SurfaceOp("linalg[matrix_norm]", lambda a, **k: nnfast.linalg.matrix_norm(a, **k),
              lambda a, ord="fro", dim=(-2, -1), keepdim=False: np.linalg.norm(a, ord, axis=dim, keepdims=keepdim),
              lambda rng: [Sample("fro", (_r(rng, 3, 5),)), Sample("one", (_r(rng, 3, 5),), {"ord": 1}),
                           Sample("m-one", (_r(rng, 5, 3),), {"ord": -1}),
                           Sample("inf-batch", (_r(rng, 2, 3, 5),), {"ord": np.inf}),
                           Sample("m-inf-dims", (_r(rng, 3, 2, 5),), {"ord": -np.inf, "dim": (0, 2), "keepdim": True})],
              torch_call=(lambda a, **k: torch.linalg.matrix_norm(a, **k)) if torch is not None else None,
              tol=_F64_TOL,
              errors=lambda: [ErrorCase("1d", lambda: nnfast.linalg.matrix_norm(_t(3)), ValueError,
                                        r"\[matrix_norm\] expected a tensor with at least 2 dims"),
                              ErrorCase("nuc", lambda: nnfast.linalg.matrix_norm(_t(3, 3), "nuc"),
                                        NotImplementedError, r"\[matrix_norm\] ord='nuc'")]),
    SurfaceOp("linalg[norm]", lambda a, *p, **k: nnfast.linalg.norm(a, *p, **k),
              lambda a, ord=None, dim=None, keepdim=False: np.linalg.norm(
                  a.reshape(-1) if dim is None and ord is None else a, ord, axis=dim, keepdims=keepdim),
              lambda rng: [Sample("flat", (_r(rng, 2, 3, 4),)), Sample("mat-1", (_r(rng, 3, 5), 1)),
                           Sample("vec-3", (_r(rng, 7), 3)), Sample("dim", (_r(rng, 3, 5),), {"dim": 1}),
                           Sample("dims", (_r(rng, 3, 4, 5),), {"dim": (0, 2)})],
              torch_call=(lambda a, *p, **k: torch.linalg.norm(a, *p, **k)) if torch is not None else None,
              tol=_F64_TOL,
              errors=lambda: [ErrorCase("3d-ord", lambda: nnfast.linalg.norm(_t(2, 2, 2), 1), ValueError,
                                        r"\[linalg.norm\] expected a 1-D or 2-D input")]),
    SurfaceOp("einsum[list]", lambda a, b: nnfast.einsum("ij,jk->ik", [a, b]), lambda a, b: a @ b,
              lambda rng: [Sample("s", (_r(rng, 2, 3), _r(rng, 3, 2)))],
              torch_call=(lambda a, b: torch.einsum("ij,jk->ik", [a, b])) if torch is not None else None,
              tol=_F64_TOL, errors=_einsum_list_errors),
] + [_einsum_op(eq, shapes, eq.replace(" ", "")) for eq, shapes in _EINSUM]
