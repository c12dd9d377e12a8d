"""Property-based tests (Hypothesis) over the op table: random shapes (1s and odd
sizes included), layouts (transposed, negative strides, sliced, NaN-filled gaps,
byte-misaligned) and values.

* forward: the result matches a float64 NumPy formula (float32 and float64);
* backward: ``nnfast.autograd.gradcheck`` in float64 on small shapes, on strided
  inputs too;
* robustness: random shape / dtype / layout combinations, valid or not, either
  give the reference's answer or raise TypeError / ValueError / RuntimeError /
  NotImplementedError naming the op -- never a crash or a foreign exception.

The runs are derandomized (``derandomize=True``, no example database), so CI
sees the same examples every time; ``NNFAST_HYPOTHESIS_EXAMPLES`` scales the
example count for a longer local search. Every failure the search found is kept
below as an explicit ``@example`` or a plain regression test.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nnfast
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck
from opinfo import REGISTRY, gelu
from test_error_table import LAYOUT_FNS, OPS, _check_forward

_N = int(os.environ.get("NNFAST_HYPOTHESIS_EXAMPLES", "25"))
CI = settings(derandomize=True, database=None, deadline=None, max_examples=_N, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LAYOUT = st.sampled_from(["contiguous"] + sorted(LAYOUT_FNS))
# Functional ops refuse byte-misaligned arrays (test_error_table); the forward / backward properties use the rest.
VALID_LAYOUT = LAYOUT.filter(lambda s: s != "byte_misaligned")
DTYPE = st.sampled_from([np.float32, np.float64])

# The per-op builders (draw -> arrays, fn, ref, kinks) are the registry's Hypothesis hints
# (OpInfo.hypothesis in tests/opinfo.py): every registered op that has one is searched here.
PROPS = {op.name: op.hypothesis for op in REGISTRY if op.hypothesis is not None}
NAMES = sorted(PROPS)
NO_GRAD = {op.name for op in REGISTRY if not op.gradcheck}


def _layout(name, a):
    return a.copy() if name == "contiguous" else LAYOUT_FNS[name](a)


def _tensors(arrays, dtype, layout, requires_grad=False):
    ts = {}
    for k, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = _layout(layout, np.asarray(a.astype(dtype)))
        t = nnfast.from_numpy(a)
        if requires_grad and a.dtype.kind == "f" and k != "target":
            t.requires_grad_()
        ts[k] = t
    return ts


class _Op:  # the fields _check_forward reads
    def __init__(self, ref):
        self.ref, self.check = ref, None
        self.tol32, self.tol64 = 3e-4, 1e-9


# --------------------------------------------------------------------------------- forward
def _forward(name, data):
    arrays, fn, ref, _ = PROPS[name](data.draw)
    arrays = {k: np.asarray(a) for k, a in arrays.items()}
    dtype = data.draw(DTYPE, label="dtype")
    layout = data.draw(VALID_LAYOUT, label="layout")
    ts = _tensors(arrays, dtype, layout)
    out = fn(**ts)
    rounded = {k: (a.astype(dtype).astype(np.float64) if a.dtype.kind == "f" else a) for k, a in arrays.items()}
    if ref is None:  # dropout: each element 0 or x / (1 - p), and the same as on a contiguous copy
        base = fn(**_tensors(arrays, dtype, "contiguous"))._data
        np.testing.assert_array_equal(out._data, base)
        return
    want = np.asarray(ref(**rounded), np.float64)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size and np.all(np.isfinite(want)) else 1.0
    op = _Op(ref)
    if dtype == np.float32:
        op.tol32 = 3e-4 * scale
    else:
        op.tol64 = 1e-9 * scale
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _check_forward(op, out, rounded, dtype)


@pytest.mark.parametrize("name", NAMES)
@CI
@given(data=st.data())
def test_forward_matches_float64_reference(name, data):
    _forward(name, data)


# --------------------------------------------------------------------------------- backward
def _away_from_kinks(arrays, kinks, name):
    """Moves every operand value at least 1e-2 from the op's kinks (finite differences straddle none)."""
    if not kinks:
        return arrays
    out = dict(arrays)
    pointwise = "target" in arrays and arrays["target"].dtype.kind == "f"
    for k0 in kinks:
        if pointwise:  # the kink is in input - target (perceptron: in target * input)
            x, t = out["input"], out["target"]
            arg = x * t if name == "perceptron_loss" else x - t
            bad = np.abs(arg - k0) < 1e-2
            out["input"] = np.where(bad, x + 0.05 * (np.where(t >= 0, 1, -1) if name == "perceptron_loss" else 1), x)
        else:
            x = out["input"]
            bad = np.abs(x - k0) < 1e-2
            out["input"] = np.where(bad, x + 0.05, x)
    return out


def _small(arrays, limit=40):
    return all(a.size <= limit for a in arrays.values())


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NO_GRAD])
@CI
@given(data=st.data())
def test_backward_gradcheck_float64(name, data):
    arrays, fn, ref, kinks = PROPS[name](data.draw)
    if not _small(arrays):
        arrays, fn, ref, kinks = PROPS[name](data.draw)  # one more draw; sizes are small anyway
    if not _small(arrays, 80):
        return
    arrays = _away_from_kinks({k: np.asarray(a) for k, a in arrays.items()}, kinks, name)
    if name in ("binary_cross_entropy",):
        arrays["input"] = np.clip(arrays["input"], 0.05, 0.95)
    layout = data.draw(VALID_LAYOUT, label="layout")
    ts = _tensors(arrays, np.float64, layout, requires_grad=True)
    names = list(ts)
    assert gradcheck(lambda *xs: fn(**dict(zip(names, xs))), tuple(ts[k] for k in names), eps=1e-6, atol=1e-5,
                     rtol=1e-3)


def test_step_and_sign_have_zero_gradient():
    x = nnfast.tensor(np.linspace(-2, 2, 9), requires_grad=True)
    (F.step(x) + F.sign(x)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(9))


# --------------------------------------------------------------------------------- never a crash
_DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_]
_OK_ERRORS = (TypeError, ValueError, RuntimeError, NotImplementedError)


@pytest.mark.parametrize("i", range(len(OPS)), ids=[f"{op.name}-{i}" for i, op in enumerate(OPS)])
@CI
@given(data=st.data())
def test_random_inputs_never_crash(i, data):
    """Random shapes (of any rank, 0-size dims included), dtypes and layouts for each operand of an
    OPS line: the call succeeds or raises one of the documented exceptions naming the op."""
    op = OPS[i]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    ts = {}
    for name, arg in op.args.items():
        rank = data.draw(st.integers(0, 3), label=f"{name} rank")
        if data.draw(st.booleans(), label=f"{name} keeps shape"):
            shape = arg.shape
        else:
            shape = tuple(data.draw(st.sampled_from([0, 1, 2, 3, 5, 7]), label=f"{name} dim") for _ in range(rank))
        a = np.asarray(arg.gen(rng, shape))
        if a.dtype.kind == "f":
            a = a.astype(data.draw(st.sampled_from(_DTYPES), label=f"{name} dtype"))
        a = _layout(data.draw(LAYOUT, label=f"{name} layout"), a)
        ts[name] = nnfast.from_numpy(a)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = op.fn(**ts)
    except _OK_ERRORS as e:
        assert f"[{op.name}]" in str(e) or op.name == "matmul" and "matmul" in str(e), repr(e)
        return
    assert isinstance(out, nnfast.Tensor)
    assert out.dtype.kind in "fiub" or op.name == "matmul"


# --------------------------------------------------------------------------------- regressions found by the search
def test_regression_empty_linear_input_and_zero_in_features():
    # reshape(-1, 0) is ambiguous: F.linear crashed on in_features = 0; GEMM refused an empty out.
    w = nnfast.zeros(3, 0)
    b = nnfast.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(F.linear(nnfast.zeros(4, 0), w, b).numpy(), np.tile([1.0, 2.0, 3.0], (4, 1)))
    assert F.linear(nnfast.zeros(0, 5), nnfast.zeros(3, 5)).shape == (0, 3)


def test_regression_prelu_empty_input_does_not_divide_by_zero():
    # The PReLU kernel's parallel grain divided by S = 0 (SIGFPE).
    y = F.prelu(nnfast.zeros(5, 7, 0), nnfast.ones(7))
    assert y.shape == (5, 7, 0)


def test_regression_ops_on_zero_dim_arithmetic_results():
    # Arithmetic on 0-d arrays returns NumPy scalars: a kernel op on such a tensor (or a gradient
    # flowing back through a 0-d output) reached the binding as a scalar and pybind11 rejected it.
    a = nnfast.tensor(0.5, requires_grad=True)
    b = nnfast.tensor(-2.0)
    assert float(F.relu(a * b)) == 0.0
    (F.gelu(a) * b).sum().backward()
    np.testing.assert_allclose(float(a.grad), -2.0 * (gelu(0.5 + 1e-7) - gelu(0.5 - 1e-7)) / 2e-7, rtol=1e-5)


def test_regression_vector_dot_vector_backward():
    # (K,) @ (K,) is 0-d; the backward expanded the 0-d gradient along axis -2 and failed.
    x = nnfast.tensor([1.0, 2.0, 3.0], dtype=nnfast.float64, requires_grad=True)
    w = nnfast.tensor([4.0, 5.0, 6.0], dtype=nnfast.float64, requires_grad=True)
    (x @ w).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0, 3.0])
