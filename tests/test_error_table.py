"""One cross-op error-input table (issue 5): every public op that has a kernel
crossed with every bad-input case.

``OPS`` lists the ops: each line names the tag its errors must carry
(``[op]``), its operands (shape, value generator, whether it is
differentiated), the nnfast call and a float64 NumPy reference, plus the
op-specific variants a case needs (an invalid rank, a mismatched shape, valid
and invalid zero-size shapes, an in-place form, two operands that may alias).
``CASES`` lists the bad inputs; ``_plan(op, case)`` says what each (op, case)
pair must do -- raise a given exception whose message holds ``[op]``, or give
the float64 reference's answer -- or why the pair does not apply. The
optimizer steps and ``clip_grad_norm_`` have tables of their own at the end
(``OPT_CASES``, ``CLIP_CASES``), as do the kernel bindings for aliased
outputs (``ALIAS_ROWS``). ``test_table_size`` records the counts.

Devices: this build has no GPU. A "cuda" operand is simulated by an ndarray
subclass that reports itself as a CuPy array living on cuda:0; it exercises
nnfast's device checks (mixing devices is a RuntimeError, a kernel missing on
a backend a NotImplementedError), never a GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
from nnfast import optim
from nnfast._native import _C
from nnfast.nn.utils import clip_grad_norm_
from nnfast.tensor import Tensor

from opinfo import (ERROR_ROWS, Arg, ErrorRow, bn_ref, ce_prob_ref, ce_ref, classes, gelu, gelu_tanh,  # noqa: F401
                    glu_ref, gn_ref, huber, ln_ref, log_softmax, nll_ref, normal, pm1, positive, prelu_ref, prob,
                    rms_ref, sigmoid, simplex, smooth_l1, softplus)

# The op lines (ERROR_ROWS: operands, call, float64 reference, rank / shape / zero-size / in-place /
# alias variants) live in the registry (tests/opinfo.py), next to each op's other declarations.
OPS = ERROR_ROWS
Op = ErrorRow

CASES = [
    "float16", "int32", "int64", "bool", "object", "byteswapped", "mixed_dtype", "python_list", "python_scalar",
    "wrong_rank", "shape_mismatch", "device_mismatch", "zero_size_valid", "zero_size_invalid",
    "transposed", "negative_stride", "sliced_unaligned", "nan_gaps", "byte_misaligned", "readonly_input",
    "readonly_inplace",
    "alias_inputs",
]
LAYOUTS = ("transposed", "negative_stride", "sliced_unaligned", "nan_gaps", "byte_misaligned")
BAD_DTYPES = {"float16": np.float16, "int32": np.int32, "int64": np.int64, "bool": np.bool_, "object": object}

# matmul is a Tensor operator: on operands that are not two float32/float64 arrays of one dtype it is
# general NumPy arithmetic (documented in autograd/basic_ops.py), like ``a + b``.
NUMPY_SEMANTICS = {"matmul"}


# ------------------------------------------------------------------------------------------ layouts
def transposed(a):
    return np.ascontiguousarray(a.T).T if a.ndim >= 2 else a.copy()


def negative_stride(a):
    if a.ndim == 0:
        return a.copy()
    flip = (slice(None, None, -1),) * a.ndim
    return np.ascontiguousarray(a[flip])[flip]


def sliced_unaligned(a):
    """A view one element in from each leading edge of a NaN-filled buffer (odd byte offset from the
    allocation, rows not contiguous)."""
    if a.ndim == 0:
        buf = np.full(2, np.nan if a.dtype.kind == "f" else -7, dtype=a.dtype)
        v = buf[1:].reshape(())
    else:
        buf = np.full(tuple(s + 2 for s in a.shape), np.nan if a.dtype.kind == "f" else -7, dtype=a.dtype)
        v = buf[(slice(1, -1),) * a.ndim]
    v[...] = a
    return v


def nan_gaps(a):
    """Every other element along the last axis; the gaps hold NaN (or -7 for integers)."""
    if a.ndim == 0:
        return a.copy()
    big = np.full(a.shape[:-1] + (2 * a.shape[-1],), np.nan if a.dtype.kind == "f" else -7, dtype=a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def byte_misaligned(a):
    """C-contiguous, but one byte off its itemsize alignment (NumPy's flags.aligned is False)."""
    v = np.frombuffer(bytearray(a.nbytes + 1), dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    v[...] = a
    return v


LAYOUT_FNS = {"transposed": transposed, "negative_stride": negative_stride, "sliced_unaligned": sliced_unaligned,
              "nan_gaps": nan_gaps, "byte_misaligned": byte_misaligned}


class _CudaDevice:
    id = 0


class FakeCuda(np.ndarray):
    """An ndarray that nnfast's dispatch takes for a CuPy array on cuda:0 (see the module docstring)."""

    @property
    def device(self):
        return _CudaDevice()


FakeCuda.__module__ = "cupy._simulated"


# ------------------------------------------------------------------------------------------ running an op
def _arrays(op, rng, overrides=None):
    out = {}
    for name, a in op.args.items():
        shape = (overrides or {}).get(name, a.shape)
        out[name] = np.asarray(a.gen(rng, shape))
    return out


def _tensors(op, arrays, dtype, layout=None, grad=True, readonly=False):
    ts = {}
    for name, a in arrays.items():
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        if layout is not None:
            a = layout(a)
        if readonly:
            a.flags.writeable = False
        t = nnfast.from_numpy(a)
        if grad and op.args[name].grad and a.dtype.kind == "f":
            t.requires_grad_()
        ts[name] = t
    return ts


def _run(op, ts):
    nnfast.manual_seed(0)  # dropout: the same mask in every run
    return op.fn(**ts)


def _tol(op, dtype):
    t = op.tol64 if dtype == np.float64 else op.tol32
    return dict(rtol=t, atol=t)


def _check_forward(op, out, arrays, dtype, contiguous_out=None):
    got = np.asarray(out._data, dtype=np.float64)
    if op.ref is not None:
        with np.errstate(all="ignore"):
            want = np.asarray(op.ref(**arrays), dtype=np.float64)
        assert got.shape == want.shape, (got.shape, want.shape)
        np.testing.assert_allclose(got, want, **_tol(op, dtype))
    if contiguous_out is not None:
        np.testing.assert_allclose(got, contiguous_out, **_tol(op, dtype))
    if op.check is not None:
        op.check(got, arrays)
    assert out.dtype == dtype, f"result dtype {out.dtype}, expected {dtype}"


def _backward(out, ts, seed=5):
    """Gradients of <r, out> for a fixed random r, per operand that requires grad."""
    if not out.requires_grad:
        return {}
    r = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    (out * Tensor(r)).sum().backward()
    return {k: None if t.grad is None else np.array(t.grad._data, dtype=np.float64)
            for k, t in ts.items() if t.requires_grad}


def _expect(exc, op_name, thunk):
    with pytest.raises(exc) as info:
        thunk()
    msg = str(info.value)
    assert f"[{op_name}]" in msg, f"message without [{op_name}]: {msg!r}"
    return msg


def _float_operands(op):
    rng = np.random.default_rng(0)
    arrays = _arrays(op, rng)
    return [n for n, a in arrays.items() if a.dtype.kind == "f"]


def _plan(op, case):
    """(kind, detail): kind is 'error' (detail = exception type), 'valid', or 'n/a' (detail = why)."""
    numpy_ok = op.name in NUMPY_SEMANTICS
    if case in BAD_DTYPES or case == "byteswapped":
        return ("valid", None) if numpy_ok else ("error", TypeError)
    if case == "mixed_dtype":
        if len(_float_operands(op)) < 2:
            return "n/a", "one float operand"
        return ("valid", None) if numpy_ok else ("error", TypeError)
    if case in ("python_list", "python_scalar"):
        if numpy_ok and case == "python_list":
            return "valid", None
        return ("error", ValueError) if numpy_ok else ("error", TypeError)
    if case == "wrong_rank":
        if op.bad_rank is not None:
            return "error", ValueError
        return "valid", None  # every rank is valid: other ranks checked against the reference
    if case == "shape_mismatch":
        return ("error", ValueError) if op.mismatch is not None else ("n/a", "one operand: nothing to mismatch")
    if case == "device_mismatch":
        return "error", (RuntimeError if len(op.args) > 1 else NotImplementedError)
    if case == "zero_size_valid":
        return "valid", None
    if case == "zero_size_invalid":
        return ("error", ValueError) if op.zero_bad is not None else ("n/a", "every zero-size shape is valid")
    if case == "byte_misaligned":  # kernels load whole elements: refused with [op] (matmul copies)
        return ("valid", None) if numpy_ok else ("error", ValueError)
    if case in LAYOUTS or case == "readonly_input":
        return "valid", None
    if case == "readonly_inplace":
        return ("error", ValueError) if op.inplace is not None else ("n/a", "no in-place form")
    if case == "alias_inputs":
        return ("valid", None) if op.alias is not None else ("n/a", "no two operands that may share memory")
    raise AssertionError(case)


PAIRS = [(i, case) for i in range(len(OPS)) for case in CASES]
APPLICABLE = [(i, c) for i, c in PAIRS if _plan(OPS[i], c)[0] != "n/a"]
NOT_APPLICABLE = [(OPS[i].name, c, _plan(OPS[i], c)[1]) for i, c in PAIRS if _plan(OPS[i], c)[0] == "n/a"]


def _ids(pairs):
    seen = {}
    out = []
    for i, c in pairs:
        key = f"{OPS[i].name}-{c}"
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(key if n == 0 else f"{key}#{n}")
    return out


def _op_ids():
    seen = {}
    ids = []
    for op in OPS:
        n = seen.get(op.name, 0)
        seen[op.name] = n + 1
        ids.append(op.name if n == 0 else f"{op.name}#{n}")
    return ids


OP_IDS = _op_ids()


def _replace_primary(op, rng, value_fn):
    arrays = _arrays(op, rng)
    ts = _tensors(op, arrays, np.float32, grad=False)
    ts[op.primary] = value_fn(arrays[op.primary])
    return ts


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("i,case", APPLICABLE, ids=[f"{OP_IDS[i]}-{c}" for i, c in APPLICABLE])
def test_op_case(i, case):
    op = OPS[i]
    rng = np.random.default_rng(i)
    kind, exc = _plan(op, case)

    if case in BAD_DTYPES:
        dt = BAD_DTYPES[case]

        def bad(a):
            return nnfast.from_numpy(np.asarray(a if dt is object else (a > 0 if dt is np.bool_ else a * 3),
                                                dtype=dt))
        ts = _replace_primary(op, rng, bad)
        if kind == "error":
            _expect(exc, op.name, lambda: op.fn(**ts))
        else:
            want = op.ref(**{k: t._data for k, t in ts.items()})
            np.testing.assert_allclose(np.asarray(op.fn(**ts)._data, np.float64), np.asarray(want, np.float64),
                                       rtol=1e-3)
        return

    if case == "byteswapped":
        ts = _replace_primary(op, rng, lambda a: nnfast.from_numpy(
            a.astype(np.float32).astype(np.dtype(np.float32).newbyteorder())))
        if kind == "error":
            _expect(exc, op.name, lambda: op.fn(**ts))
        else:
            want = op.ref(**{k: t._data.astype(np.float64) for k, t in ts.items()})
            np.testing.assert_allclose(op.fn(**ts)._data, want, rtol=1e-5)
        return

    if case == "mixed_dtype":
        arrays = _arrays(op, rng)
        ts = _tensors(op, arrays, np.float64, grad=False)
        ts[op.primary] = nnfast.from_numpy(arrays[op.primary].astype(np.float32))
        if kind == "error":
            _expect(exc, op.name, lambda: op.fn(**ts))
        else:
            np.testing.assert_allclose(op.fn(**ts)._data, op.ref(**arrays), rtol=1e-5)
        return

    if case in ("python_list", "python_scalar"):
        ts = _replace_primary(op, rng, lambda a: a.astype(np.float32).tolist() if case == "python_list" else 1.5)
        if kind == "error":
            _expect(exc, op.name, lambda: op.fn(**ts))
        else:
            want = op.ref(**{k: np.asarray(t._data if isinstance(t, Tensor) else t, np.float64)
                             for k, t in ts.items()})
            np.testing.assert_allclose(np.asarray(op.fn(**ts)._data, np.float64), want, rtol=1e-5)
        return

    if case == "device_mismatch":
        arrays = _arrays(op, rng)
        ts = _tensors(op, arrays, np.float32, grad=False)
        names = list(op.args)
        victim = names[1] if len(names) > 1 else names[0]
        ts[victim] = Tensor(np.ascontiguousarray(ts[victim].numpy()).view(FakeCuda))
        assert ts[victim].device.type == "cuda"
        from nnfast import _dispatch

        with pytest.MonkeyPatch.context() as mp:  # the cuda column as in a build without nnfast._C_cuda
            mp.setitem(_dispatch._KERNELS, "cuda", {})
            _expect(exc, op.name, lambda: op.fn(**ts))
        return

    if case == "readonly_inplace":
        for layout in (None, nan_gaps):
            a = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
            if layout is not None:
                a = layout(a)
            a.flags.writeable = False
            before = np.array(a)
            _expect(exc, op.name, lambda: op.inplace(nnfast.from_numpy(a)))
            np.testing.assert_array_equal(a, before)
        return

    if case == "byte_misaligned" and kind == "error":
        for dtype in (np.float32, np.float64):
            ts = _tensors(op, _arrays(op, rng), dtype, layout=byte_misaligned)
            msg = _expect(exc, op.name, lambda: op.fn(**ts))
            assert "aligned" in msg, msg
        return

    if kind == "error":  # wrong_rank, shape_mismatch, zero_size_invalid
        overrides = {"wrong_rank": op.bad_rank, "shape_mismatch": op.mismatch, "zero_size_invalid": op.zero_bad}[case]
        for dtype in (np.float32, np.float64):
            ts = _tensors(op, _arrays(op, rng, overrides), dtype)
            _expect(exc, op.name, lambda: op.fn(**ts))
        return

    # ---- valid cases: the float64 reference's answer, in float32 and float64
    for dtype in (np.float32, np.float64):
        if case == "wrong_rank":
            for ov in op.other_ranks:
                arrays = _arrays(op, rng, ov)
                out = _run(op, _tensors(op, arrays, dtype))
                _check_forward(op, out, arrays, dtype)
        elif case == "zero_size_valid":
            for ov in op.zero_ok:
                arrays = _arrays(op, rng, ov)
                ts = _tensors(op, arrays, dtype)
                out = _run(op, ts)
                _check_forward(op, out, arrays, dtype)
                grads = _backward(out, ts)
                for k, g in grads.items():
                    assert g is None or (g.shape == ts[k].shape and np.all(np.isfinite(g)) or g.size == 0), k
        elif case in LAYOUTS or case == "readonly_input":
            arrays = _arrays(op, rng)
            ref_ts = _tensors(op, arrays, dtype)
            ref_out = _run(op, ref_ts)
            ref_grads = _backward(ref_out, ref_ts)
            layout = LAYOUT_FNS.get(case)
            ts = _tensors(op, arrays, dtype, layout=layout, readonly=case == "readonly_input")
            if layout is not None and case not in ("sliced_unaligned", "byte_misaligned"):
                assert any(not t._data.flags.c_contiguous for t in ts.values() if t.ndim >= 2), "layout not applied"
            out = _run(op, ts)
            _check_forward(op, out, arrays, dtype, np.asarray(ref_out._data, np.float64))
            grads = _backward(out, ts)
            for k, g in grads.items():
                np.testing.assert_allclose(g, ref_grads[k], err_msg=f"grad of {k}", **_tol(op, dtype))
        elif case == "alias_inputs":
            a_name, b_name, ov = op.alias
            arrays = _arrays(op, rng, ov)
            arrays[b_name] = arrays[a_name].copy()
            sep_ts = _tensors(op, arrays, dtype)
            if sep_ts[a_name].requires_grad and not sep_ts[b_name].requires_grad:
                sep_ts[b_name].requires_grad_()  # the shared tensor is differentiated through both uses
            sep_grads = _backward(_run(op, sep_ts), sep_ts)
            ts = _tensors(op, arrays, dtype)
            ts[b_name] = ts[a_name]
            out = _run(op, ts)
            _check_forward(op, out, arrays, dtype)
            grads = _backward(out, ts)
            if a_name in grads:  # one tensor used twice: its gradient is the sum of both uses
                want = sep_grads[a_name] + (sep_grads.get(b_name) if sep_grads.get(b_name) is not None else 0)
                np.testing.assert_allclose(grads[a_name], want, **_tol(op, dtype))
        else:
            raise AssertionError(case)


# ------------------------------------------------------------------------------------------ optimizer steps
OPTIMIZERS = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.01),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    "AdaBound": lambda ps: optim.AdaBound(ps, lr=0.01, amsbound=True),
    "Lion": lambda ps: optim.Lion(ps, lr=0.01, weight_decay=0.1),
    "LAMB": lambda ps: optim.LAMB(ps, lr=0.01, weight_decay=0.01),
}

OPT_CASES = [
    "float16", "int32", "int64", "bool", "object", "byteswapped", "mixed_dtype", "float64_in_float64",
    "python_list", "python_scalar", "wrong_rank", "shape_mismatch", "device_mismatch", "zero_size_valid",
    "transposed", "negative_stride", "sliced_unaligned", "nan_gaps", "byte_misaligned", "readonly_param",
    "readonly_param_other_group",
    "readonly_grad", "alias_grad_is_param", "alias_overlapping_params",
]


def _param(a, grad=None):
    p = nnfast.nn.Parameter(a) if a.dtype.kind == "f" and a.dtype.isnative else Tensor(a)
    if grad is not None:
        p.grad = Tensor(grad)
    return p


def _snapshot(params):
    return [np.array(p._data, copy=True) for p in params]


def _unchanged(params, snap):
    for p, s in zip(params, snap):
        np.testing.assert_array_equal(p._data, s)


def _step_refused(exc, name, opt, params):
    """opt.step() raises exc naming the optimizer, and no param changes; returns the optimizer."""
    snap = _snapshot(params)
    _expect(exc, name, opt.step)
    _unchanged(params, snap)
    return opt


def _stepped(name, arrays, grads, steps=3):
    """Params after `steps` steps of optimizer `name` with fixed grads (fresh C-contiguous copies)."""
    ps = [nnfast.nn.Parameter(np.array(a, copy=True)) for a in arrays]
    opt = OPTIMIZERS[name](ps)
    for _ in range(steps):
        for p, g in zip(ps, grads):
            p.grad = Tensor(np.array(g, copy=True))
        opt.step()
    return [p._data for p in ps]


@pytest.mark.parametrize("case", OPT_CASES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_case(name, case):
    rng = np.random.default_rng(7)
    make = OPTIMIZERS[name]
    a = rng.standard_normal((5, 7)).astype(np.float32)
    g = rng.standard_normal((5, 7)).astype(np.float32)

    if case in BAD_DTYPES:
        bad = np.asarray(a if BAD_DTYPES[case] is object else a * 3, dtype=BAD_DTYPES[case])
        _expect(TypeError, name, lambda: make([Tensor(bad)]))
        return
    if case == "byteswapped":
        p = Tensor(a.astype(np.dtype(np.float32).newbyteorder()))
        p.grad = Tensor(g.astype(p.dtype))
        snap = _snapshot([p])

        def go():
            make([p]).step()
        _expect(TypeError, name, go)
        _unchanged([p], snap)
        return
    if case == "mixed_dtype":  # float32 param with a float64 grad: refused, never a step on a converted copy
        good = _param(a.copy(), g)
        p = _param(a.copy(), g.astype(np.float64))
        opt = _step_refused(TypeError, name, make([good, p]), [good, p])
        assert not opt.state or all("step" not in s or s["step"] == 0 for s in opt.state.values())
        return
    if case == "float64_in_float64":  # a float64 param is stepped in float64, in its own array
        p = _param(a.astype(np.float64), g.astype(np.float64))
        own = p._data
        make([p]).step()
        assert p._data is own and p.dtype == np.float64
        got32 = _stepped(name, [a], [g], steps=1)[0]
        want = _reference_step(name, a.astype(np.float64), g.astype(np.float64))
        np.testing.assert_allclose(p._data, want, rtol=1e-12, atol=1e-14)
        assert not np.array_equal(p._data, got32.astype(np.float64)), "float64 step looks computed in float32"
        return
    if case == "python_list":
        _expect(TypeError, name, lambda: make([a.tolist()]))
        return
    if case == "python_scalar":
        _expect(TypeError, name, lambda: make(1.5))
        return
    if case in ("wrong_rank", "shape_mismatch"):
        bad_g = g.reshape(-1) if case == "wrong_rank" else g[:, :6]
        p = _param(a.copy(), np.ascontiguousarray(bad_g))
        other = _param(a.copy() + 1, g)
        _step_refused(ValueError, name, make([other, p]), [other, p])
        return
    if case == "device_mismatch":
        p = _param(a.copy())
        p.grad = Tensor(g.copy().view(FakeCuda))
        _step_refused(RuntimeError, name, make([p]), [p])
        return
    if case == "zero_size_valid":
        ps = [_param(np.zeros((0,), np.float32), np.zeros((0,), np.float32)),
              _param(np.zeros((3, 0), np.float32), np.zeros((3, 0), np.float32)), _param(a.copy(), g)]
        opt = make(ps)
        for _ in range(3):
            for p, gg in zip(ps, [np.zeros((0,), np.float32), np.zeros((3, 0), np.float32), g]):
                p.grad = Tensor(gg)
            opt.step()
        np.testing.assert_array_equal(ps[2]._data, _stepped(name, [a], [g])[0])
        assert ps[0].shape == (0,) and ps[1].shape == (3, 0)
        return
    if case in LAYOUTS:  # strided params are updated in their own memory; gaps stay NaN
        layout = LAYOUT_FNS[case]
        pa, ga = layout(a.copy()), layout(g.copy())
        base = pa.base
        p = _param(pa)
        opt = make([p])
        for _ in range(3):
            p.grad = Tensor(ga)
            opt.step()
        assert p._data is pa
        np.testing.assert_array_equal(pa, _stepped(name, [a], [g])[0])
        if case in ("sliced_unaligned", "nan_gaps"):
            mask = np.ones(base.shape, bool)
            if case == "nan_gaps":
                mask[..., ::2] = False
            else:
                mask[1:-1, 1:-1] = False
            assert np.isnan(base[mask]).all(), "the step wrote outside the param's view"
        return
    if case in ("readonly_param", "readonly_param_other_group"):
        ro = a.copy()
        ro.flags.writeable = False
        p = _param(ro, g)
        good = _param(a.copy() + 1, g)
        groups = [{"params": [good]}, {"params": [p]}] if case.endswith("other_group") else [good, p]
        # nothing updated, not even a param in another group
        opt = _step_refused(ValueError, name, make(groups), [good, p])
        assert all(s.get("step", 0) == 0 for s in opt.state.values() if isinstance(s.get("step", 0), int))
        return
    if case == "readonly_grad":
        gr = g.copy()
        gr.flags.writeable = False
        p = _param(a.copy(), gr)
        make([p]).step()
        np.testing.assert_array_equal(p._data, _stepped(name, [a], [g], steps=1)[0])
        return
    if case == "alias_grad_is_param":
        p = _param(a.copy())
        p.grad = Tensor(p._data)
        _step_refused(ValueError, name, make([p]), [p])
        return
    if case == "alias_overlapping_params":
        buf = rng.standard_normal(40).astype(np.float32)
        p1, p2 = _param(buf[:30]), _param(buf[10:])
        p1.grad, p2.grad = Tensor(np.ones(30, np.float32)), Tensor(np.ones(30, np.float32))
        opt = make([p1, p2])
        snap = np.array(buf)
        _expect(ValueError, name, opt.step)
        np.testing.assert_array_equal(buf, snap)
        return
    raise AssertionError(case)


def _reference_step(name, p, g):
    """One float64 step from fresh state, with the hyper-parameters of OPTIMIZERS (PyTorch's formulas)."""
    if name == "SGD":
        d = g + 0.01 * p
        buf = d
        return p - 0.1 * (d + 0.9 * buf)
    if name in ("Adam", "AdamW"):
        lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
        if name == "Adam":
            g = g + 0.01 * p
        else:
            p = p * (1 - lr * 0.01)
        m = (1 - b1) * g
        v = (1 - b2) * g * g
        return p - lr / (1 - b1) * m / (np.sqrt(v) / math.sqrt(1 - b2) + eps)
    if name == "Adagrad":
        s = g * g
        return p - 0.1 * g / (np.sqrt(s) + 1e-10)
    if name == "RMSprop":
        alpha, eps = 0.99, 1e-8
        sq = (1 - alpha) * g * g
        ga = (1 - alpha) * g
        avg = np.sqrt(sq - ga * ga) + eps
        buf = g / avg
        return p - 0.01 * buf
    if name == "AdaBound":
        lr, b1, b2, eps, final_lr, gamma = 0.01, 0.9, 0.999, 1e-8, 0.1, 1e-3
        m = (1 - b1) * g
        v = (1 - b2) * g * g
        denom = np.sqrt(v) + eps
        step_size = lr * math.sqrt(1 - b2) / (1 - b1)
        lower, upper = final_lr * (1 - 1 / (gamma + 1)), final_lr * (1 + 1 / gamma)
        return p - np.clip(step_size / denom, lower, upper) * m
    if name == "Lion":
        lr, b1 = 0.01, 0.9
        p = p * (1 - lr * 0.1)
        return p - lr * np.sign(b1 * 0 + (1 - b1) * g)
    if name == "LAMB":
        lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-6, 0.01
        m = (1 - b1) * g / (1 - b1)
        v = (1 - b2) * g * g / (1 - b2)
        u = m / (np.sqrt(v) + eps) + wd * p
        wn, un = np.linalg.norm(p), np.linalg.norm(u)
        ratio = wn / un if wn > 0 and un > 0 else 1.0
        return p - lr * ratio * u
    raise AssertionError(name)


# ------------------------------------------------------------------------------------------ clip_grad_norm_
CLIP_CASES = [
    "float16", "int32", "int64", "bool", "object", "byteswapped", "mixed_dtype", "python_list", "python_scalar",
    "device_mismatch", "zero_size_valid", "transposed", "negative_stride", "sliced_unaligned", "nan_gaps",
    "byte_misaligned", "readonly_grad", "alias_same_grad_twice",
]


def _clip_params(grads):
    ps = []
    for gr in grads:
        p = nnfast.nn.Parameter(np.zeros(gr.shape, np.float64 if gr.dtype == np.float64 else np.float32))
        p.grad = Tensor(gr)
        ps.append(p)
    return ps


@pytest.mark.parametrize("case", CLIP_CASES)
def test_clip_grad_norm_case(case):
    op = "clip_grad_norm_"
    rng = np.random.default_rng(3)
    g1 = rng.standard_normal((5, 7)).astype(np.float32) * 3
    g2 = rng.standard_normal(11).astype(np.float32) * 3
    total = math.sqrt(float(np.sum(g1.astype(np.float64) ** 2) + np.sum(g2.astype(np.float64) ** 2)))
    coef = 1.0 / (total + 1e-6)

    if case in BAD_DTYPES or case == "byteswapped":
        if case == "byteswapped":
            bad = g1.astype(np.dtype(np.float32).newbyteorder())
        else:
            bad = np.asarray(g1 if BAD_DTYPES[case] is object else g1 * 3, dtype=BAD_DTYPES[case])
        ps = _clip_params([g2])
        extra = Tensor(np.zeros(bad.shape, np.float32))
        extra.grad = Tensor(bad)
        snap = np.array(g2)
        _expect(TypeError, op, lambda: clip_grad_norm_(ps + [extra], 1.0))
        np.testing.assert_array_equal(ps[0].grad.numpy(), snap)
        return
    if case == "mixed_dtype":  # grads of different params may differ in dtype; each is scaled in its own
        ps = _clip_params([g1.astype(np.float64), g2.copy()])
        n = clip_grad_norm_(ps, 1.0)
        np.testing.assert_allclose(float(n), total, rtol=1e-6)
        assert ps[0].grad.dtype == np.float64 and ps[1].grad.dtype == np.float32
        np.testing.assert_allclose(ps[0].grad.numpy(), g1.astype(np.float64) * coef, rtol=1e-6)
        np.testing.assert_allclose(ps[1].grad.numpy(), g2 * coef, rtol=1e-5)
        return
    if case == "python_list":
        _expect(TypeError, op, lambda: clip_grad_norm_([g1.tolist()], 1.0))
        return
    if case == "python_scalar":
        _expect(TypeError, op, lambda: clip_grad_norm_(1.5, 1.0))
        return
    if case == "device_mismatch":
        ps = _clip_params([g2])
        extra = Tensor(np.zeros(g1.shape, np.float32))
        extra.grad = Tensor(np.array(g1).view(FakeCuda))
        _expect(RuntimeError, op, lambda: clip_grad_norm_(ps + [extra], 1.0))
        return
    if case == "zero_size_valid":
        ps = _clip_params([np.zeros((0, 3), np.float32), g1.copy(), g2.copy()])
        n = clip_grad_norm_(ps, 1.0)
        np.testing.assert_allclose(float(n), total, rtol=1e-6)
        np.testing.assert_allclose(ps[1].grad.numpy(), g1 * coef, rtol=1e-5)
        return
    if case in LAYOUTS:
        v1, v2 = LAYOUT_FNS[case](g1.copy()), LAYOUT_FNS[case](g2.copy())
        ps = _clip_params([v1, v2])
        n = clip_grad_norm_(ps, 1.0)
        np.testing.assert_allclose(float(n), total, rtol=1e-6)
        assert ps[0].grad.numpy() is v1
        np.testing.assert_allclose(v1, g1 * coef, rtol=1e-5)
        np.testing.assert_allclose(v2, g2 * coef, rtol=1e-5)
        if case == "nan_gaps":
            assert np.isnan(v1.base[..., 1::2]).all()
        return
    if case == "readonly_grad":
        ro = g1.copy()
        ro.flags.writeable = False
        ps = _clip_params([g2.copy(), ro])
        snap = _snapshot([p.grad for p in ps])
        _expect(ValueError, op, lambda: clip_grad_norm_(ps, 1.0))
        _unchanged([p.grad for p in ps], snap)
        return
    if case == "alias_same_grad_twice":  # two params holding one grad array: scaled once, not twice
        shared = g1.copy()
        p1, p2 = _clip_params([shared, g2.copy()])
        p3 = nnfast.nn.Parameter(np.zeros(g1.shape, np.float32))
        p3.grad = p1.grad
        try:
            clip_grad_norm_([p1, p2, p3], 1.0)
        except ValueError as e:
            assert f"[{op}]" in str(e)
            return
        both = math.sqrt(total ** 2 + float(np.sum(g1.astype(np.float64) ** 2)))
        np.testing.assert_allclose(shared, g1 / (both + 1e-6), rtol=1e-5)
        return
    raise AssertionError(case)


# ------------------------------------------------------------------------------------------ kernel bindings: aliased outputs
def _f32(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _buf_pair(n, shift):
    """(out, input) views of one buffer overlapping by n - shift elements."""
    buf = _f32(n + shift)
    return buf[shift:], buf[:n]


def _alias_ln():
    x = _f32(4, 5)
    return _C.layer_norm_forward(x, np.empty(4), np.empty(4), x, None, None, 1e-5)


def _alias_bn():
    x = _f32(2, 3, 4)
    return _C.batch_norm_forward(x, np.empty(3), np.empty(3), None, None, x, None, None, True, 0.1, 1e-5)


def _alias_gn():
    x = _f32(2, 4, 3)
    return _C.group_norm_forward(x[:, :, :], np.empty((2, 2)), np.empty((2, 2)), x, None, None, 2, 1e-5)


def _alias_ce():
    x = _f32(3, 4, 1)
    return _C.cross_entropy(np.empty(1, np.float32), x, x, np.zeros((3, 1), np.int64), None, -100, 0.0, 1)


def _alias_point():
    x = _f32(3, 4)
    return _C.pointwise_loss(x, x, _f32(3, 4), None, None, 0, 0.0, 0, 1.0, "mse_loss")


def _alias_lce():
    x = _f32(3, 4)
    return _C.linear_cross_entropy(np.empty(1, np.float32), x[0, :3], x, _f32(5, 4), None,
                                   np.zeros(3, np.int64), -100, 0.0, 1, 2)


def _alias_gemm():
    a = _f32(4, 4)
    return _C.gemm(a, a, _f32(4, 4))


def _alias_adam():
    p = [_f32(6)]
    return _C.adam_step(p, p, [np.zeros(6, np.float32)], [np.zeros(6, np.float32)], None, [1], 1e-3, 0.9, 0.999,
                        1e-8, 0.0, False, False, False)


def _alias_scale():
    buf = _f32(10)
    return _C.multi_tensor_scale([buf[:6], buf[4:]], 0.5)


ALIAS_ROWS = [
    ("activation", lambda: _C.act_forward(*_buf_pair(8, 1), 1)),
    ("softmax", lambda: (lambda x: _C.softmax_forward(x, x, -1))(_f32(3, 4))),
    ("softmax_backward", lambda: (lambda d, y: _C.softmax_backward(d, d, y, -1))(_f32(3, 4), _f32(3, 4))),
    ("prelu", lambda: (lambda w: _C.prelu_forward(w, _f32(1, 4), w))(_f32(4))),
    ("glu", lambda: (lambda x: _C.glu_forward(x.reshape(-1)[:6].reshape(3, 2), x, -1, 3, False))(_f32(3, 4))),
    ("dropout", lambda: _C.dropout_forward(*_buf_pair(8, 2), 0.5, 1, 0)),
    ("layer_norm", _alias_ln),
    ("batch_norm", _alias_bn),
    ("group_norm", _alias_gn),
    ("cross_entropy", _alias_ce),
    ("mse_loss", _alias_point),
    ("linear_cross_entropy", _alias_lce),
    ("gemm", _alias_gemm),
    ("bias_grad", lambda: (lambda G: _C.bias_grad(G[0], G))(_f32(3, 4))),
    ("adam", _alias_adam),
    ("multi_tensor_scale", _alias_scale),
    ("l2_penalty_backward", lambda: (lambda x: _C.penalty_backward([x], [x], 2, 1.0))(_f32(5))),
]


@pytest.mark.parametrize("op,thunk", ALIAS_ROWS, ids=[r[0] for r in ALIAS_ROWS])
def test_kernel_rejects_aliased_output(op, thunk):
    msg = _expect(ValueError, op, thunk)
    assert "share memory" in msg or "overlap" in msg, msg


# ------------------------------------------------------------------------------------------ bookkeeping
def test_table_size():
    """Records the table's size: (op line x case) pairs, how many apply, and the other tables."""
    n_ops, n_cases = len(OPS), len(CASES)
    opt = len(OPTIMIZERS) * len(OPT_CASES)
    total = len(APPLICABLE) + opt + len(CLIP_CASES) + len(ALIAS_ROWS)
    print(f"\nerror table: {n_ops} op lines x {n_cases} cases = {n_ops * n_cases} pairs, "
          f"{len(APPLICABLE)} applicable, {len(NOT_APPLICABLE)} not applicable; "
          f"optimizers {len(OPTIMIZERS)} x {len(OPT_CASES)} = {opt}; clip_grad_norm_ {len(CLIP_CASES)}; "
          f"aliased kernel outputs {len(ALIAS_ROWS)}; {total} cases in all")
    assert len(PAIRS) == n_ops * n_cases
    assert all(why for _, _, why in NOT_APPLICABLE)
    names = {op.name for op in OPS}
    for required in ("linear", "matmul", "relu", "softmax", "log_softmax", "dropout", "batch_norm", "layer_norm",
                     "rms_norm", "group_norm", "instance_norm", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
                     "huber_loss", "smooth_l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                     "kl_div", "perceptron_loss", "linear_cross_entropy", "rmse_loss"):
        assert required in names, required
