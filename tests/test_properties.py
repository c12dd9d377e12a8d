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
from test_error_table import (BAD_DTYPES, LAYOUT_FNS, OPS, _check_forward, _expect, ce_ref, gelu, gelu_tanh,
                              glu_ref, gn_ref, huber, ln_ref, log_softmax, prelu_ref, rms_ref, sigmoid, smooth_l1,
                              softplus)

_N = int(os.environ.get("NNFAST_HYPOTHESIS_EXAMPLES", "25"))
CI = settings(derandomize=True, database=None, deadline=None, max_examples=_N, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DIM = st.sampled_from([1, 2, 3, 5, 7])  # 1 and odd sizes: vector tails, broadcast-like corners
LAYOUT = st.sampled_from(["contiguous"] + sorted(LAYOUT_FNS))
# Functional ops refuse byte-misaligned arrays (test_error_table); the forward / backward properties use the rest.
VALID_LAYOUT = LAYOUT.filter(lambda s: s != "byte_misaligned")
DTYPE = st.sampled_from([np.float32, np.float64])


# --------------------------------------------------------------------------------- the op table
# name -> builder(draw) returning (arrays, fn, ref, kinks):
#   arrays: operand name -> float64 / int64 array (C-contiguous), in call order
#   fn(**tensors) -> Tensor, ref(**arrays) -> float64 array
#   kinks: values of the op's argument where it is not differentiable (gradcheck
#          keeps its inputs away from them); the argument is the input, or
#          input - target for the pointwise losses.
def _values(draw, shape, lo=-3.0, hi=3.0):
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1.0, 1.0, 1e-3, 10.0]))
    rng = np.random.default_rng(seed)
    return np.clip(rng.standard_normal(shape) * scale, lo * max(scale, 1), hi * max(scale, 1))


def _shape(draw, min_rank=1, max_rank=3):
    return tuple(draw(DIM) for _ in range(draw(st.integers(min_rank, max_rank))))


def _unary(fn, ref, kinks=()):
    def build(draw):
        x = _values(draw, _shape(draw, 0, 3))
        return {"input": x}, (lambda input: fn(input)), (lambda input: ref(input)), kinks
    return build


def _softmax(log):
    def build(draw):
        shape = _shape(draw, 1, 3)
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        x = _values(draw, shape) * draw(st.sampled_from([1.0, 30.0]))  # large logits: max-subtraction matters
        f = F.log_softmax if log else F.softmax
        r = (lambda input: log_softmax(input, dim)) if log else (lambda input: np.exp(log_softmax(input, dim)))
        return {"input": x}, (lambda input: f(input, dim=dim)), r, ()
    return build


def _linear(draw):
    lead = _shape(draw, 1, 2)
    IN, OUT = draw(DIM), draw(DIM)
    act = draw(st.sampled_from([None, "relu", "gelu", "tanh", "silu"]))
    bias = draw(st.booleans())
    arrays = {"input": _values(draw, lead + (IN,)), "weight": _values(draw, (OUT, IN))}
    if bias:
        arrays["bias"] = _values(draw, (OUT,))
    acts = {None: lambda z: z, "relu": lambda z: np.maximum(z, 0), "gelu": gelu, "tanh": np.tanh,
            "silu": lambda z: z * sigmoid(z)}

    def fn(input, weight, bias=None):
        return F.linear(input, weight, bias, activation=act)

    def ref(input, weight, bias=None):
        return acts[act](input @ weight.T + (0 if bias is None else bias))
    return arrays, fn, ref, ((0.0,) if act == "relu" else ())


def _matmul(draw):
    M, K, N = draw(DIM), draw(DIM), draw(DIM)
    a_shape = draw(st.sampled_from([(M, K), (K,), (2, M, K)]))
    b_shape = draw(st.sampled_from([(K, N), (K,)]))
    return ({"input": _values(draw, a_shape), "other": _values(draw, b_shape)}, (lambda input, other: input @ other),
            (lambda input, other: input @ other), ())


def _prelu(draw):
    N, C, S = draw(DIM), draw(DIM), draw(DIM)
    shared = draw(st.booleans())
    shape = draw(st.sampled_from([(N, C), (N, C, S)])) if not shared else _shape(draw, 1, 3)
    w = np.abs(_values(draw, (1 if shared else shape[1],))) + 0.05
    return {"input": _values(draw, shape), "weight": w}, F.prelu, prelu_ref, (0.0,)


def _swish(draw):
    beta = np.abs(_values(draw, (1,))) + 0.1
    return ({"input": _values(draw, _shape(draw, 0, 3)), "beta": beta}, (lambda input, beta: F.swish(input, beta)),
            (lambda input, beta: input * sigmoid(beta[0] * input)), ())


def _glu(gate_first):
    def build(draw):
        shape = _shape(draw, 1, 3)
        shape = shape[:-1] + (2 * shape[-1],)
        f = F.swiglu if gate_first else F.glu
        return {"input": _values(draw, shape)}, (lambda input: f(input)), (lambda input: glu_ref(input, gate_first)), ()
    return build


def _row_norm(rms):
    def build(draw):
        lead = _shape(draw, 0, 2)
        D = draw(st.sampled_from([2, 3, 5, 7, 16]))
        arrays = {"input": _values(draw, lead + (D,)), "weight": _values(draw, (D,))}
        if rms:
            return arrays, (lambda input, weight: F.rms_norm(input, (D,), weight, eps=1e-6)), rms_ref, ()
        arrays["bias"] = _values(draw, (D,))
        return arrays, (lambda input, weight, bias: F.layer_norm(input, (D,), weight, bias)), ln_ref, ()
    return build


def _channel_norm(kind):
    def build(draw):
        N, L = draw(DIM), draw(st.sampled_from([2, 3, 5]))
        G = draw(st.sampled_from([1, 2, 3]))
        C = G * draw(st.sampled_from([1, 2]))
        if kind == "batch":
            N = max(N, 2)
        arrays = {"input": _values(draw, (N, C, L)), "weight": _values(draw, (C,)), "bias": _values(draw, (C,))}
        if kind == "batch":
            from test_error_table import bn_ref
            return arrays, (lambda input, weight, bias: F.batch_norm(input, None, None, weight, bias, True)), bn_ref, ()
        if kind == "group":
            return (arrays, (lambda input, weight, bias: F.group_norm(input, G, weight, bias)),
                    (lambda input, weight, bias: gn_ref(input, weight, bias, G)), ())
        return (arrays, (lambda input, weight, bias: F.instance_norm(input, weight=weight, bias=bias)),
                (lambda input, weight, bias: gn_ref(input, weight, bias, C)), ())
    return build


def _cross_entropy(draw):
    N, C = draw(DIM), draw(st.sampled_from([1, 2, 3, 5, 7]))
    spatial = draw(st.sampled_from([(), (3,)]))
    smoothing = draw(st.sampled_from([0.0, 0.1]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = rng.integers(0, C, (N,) + spatial).astype(np.int64)
    if t.size > 1 and draw(st.booleans()):
        t.flat[0] = -100  # ignore_index (not every row: an all-ignored mean is NaN by definition)
    x = _values(draw, (N, C) + spatial) * draw(st.sampled_from([1.0, 20.0]))

    def ref(input, target):
        ls = log_softmax(input, 1)
        ls = np.moveaxis(ls, 1, -1).reshape(-1, C)
        tt = target.reshape(-1)
        keep = tt != -100
        nll = -ls[np.arange(len(tt)), np.where(keep, tt, 0)]
        smooth = -ls.mean(axis=1)
        per = (1 - smoothing) * nll + smoothing * smooth
        return per[keep].sum() / keep.sum() if keep.any() else np.nan
    return ({"input": x, "target": t},
            (lambda input, target: F.cross_entropy(input, target, label_smoothing=smoothing)), ref, ())


def _nll(draw):
    N, C = draw(DIM), draw(DIM)
    t = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, C, N).astype(np.int64)
    return ({"input": _values(draw, (N, C)), "target": t}, (lambda input, target: F.nll_loss(input, target)),
            (lambda input, target: -np.mean(input[np.arange(N), target])), ())


def _pointwise(fn, per_elem, gen_x=None, gen_t=None, kinks=()):
    def build(draw):
        shape = _shape(draw, 0, 3)
        x = gen_x(draw, shape) if gen_x else _values(draw, shape)
        t = gen_t(draw, shape) if gen_t else _values(draw, shape)
        red = draw(st.sampled_from(["mean", "sum", "none"]))
        agg = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[red]
        return ({"input": x, "target": t}, (lambda input, target: fn(input, target, reduction=red)),
                (lambda input, target: agg(per_elem(input, target))), kinks)
    return build


def _prob(draw, shape):
    return 0.02 + 0.96 * sigmoid(_values(draw, shape, -4, 4))


def _positive(draw, shape):
    return 0.1 + np.abs(_values(draw, shape))


def _pm1(draw, shape):
    return np.where(_values(draw, shape) < 0, -1.0, 1.0)


def _rmse(draw):
    shape = _shape(draw, 0, 3)
    return ({"input": _values(draw, shape), "target": _values(draw, shape)}, F.rmse_loss,
            (lambda input, target: np.sqrt(np.mean((input - target) ** 2))), ())


def _linear_ce(draw):
    N, H, C = draw(DIM), draw(DIM), draw(DIM)
    chunk = draw(st.integers(1, C + 1))
    t = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, C, N).astype(np.int64)
    arrays = {"input": _values(draw, (N, H)), "weight": _values(draw, (C, H)), "bias": _values(draw, (C,)),
              "target": t}
    return (arrays, (lambda input, weight, bias, target: F.linear_cross_entropy(input, weight, bias, target,
                                                                               chunk_size=chunk)),
            (lambda input, weight, bias, target: ce_ref(input @ weight.T + bias, target)), ())


def _dropout(draw):
    p = draw(st.sampled_from([0.0, 0.25, 0.5, 0.9]))
    x = _values(draw, _shape(draw, 0, 3))

    def fn(input):
        nnfast.manual_seed(3)  # the same mask on every call (gradcheck evaluates fn many times)
        return F.dropout(input, p)
    return {"input": x}, fn, None, ()


PROPS = {
    "relu": _unary(F.relu, lambda input: np.maximum(input, 0), (0.0,)),
    "relu6": _unary(F.relu6, lambda input: np.clip(input, 0, 6), (0.0, 6.0)),
    "leaky_relu": _unary(lambda input: F.leaky_relu(input, 0.1), lambda input: np.where(input > 0, input, 0.1 * input),
                         (0.0,)),
    "elu": _unary(lambda input: F.elu(input, 0.7), lambda input: np.where(input > 0, input, 0.7 * np.expm1(input)),
                  (0.0,)),
    "sigmoid": _unary(F.sigmoid, sigmoid),
    "tanh": _unary(F.tanh, np.tanh),
    "gelu": _unary(F.gelu, gelu),
    "gelu_tanh": _unary(lambda input: F.gelu(input, approximate="tanh"), gelu_tanh),
    "silu": _unary(F.silu, lambda input: input * sigmoid(input)),
    "softplus": _unary(F.softplus, softplus, (20.0,)),
    "hardtanh": _unary(F.hardtanh, lambda input: np.clip(input, -1, 1), (-1.0, 1.0)),
    "step": _unary(F.step, lambda input: (input > 0).astype(np.float64), (0.0,)),
    "sign": _unary(F.sign, np.sign, (0.0,)),
    "softmax": _softmax(False),
    "log_softmax": _softmax(True),
    "dropout": _dropout,
    "prelu": _prelu,
    "swish": _swish,
    "glu": _glu(False),
    "swiglu": _glu(True),
    "linear": _linear,
    "matmul": _matmul,
    "layer_norm": _row_norm(False),
    "rms_norm": _row_norm(True),
    "batch_norm": _channel_norm("batch"),
    "group_norm": _channel_norm("group"),
    "instance_norm": _channel_norm("instance"),
    "cross_entropy": _cross_entropy,
    "nll_loss": _nll,
    "mse_loss": _pointwise(F.mse_loss, lambda x, t: (x - t) ** 2),
    "l1_loss": _pointwise(F.l1_loss, lambda x, t: np.abs(x - t), kinks=(0.0,)),
    "huber_loss": _pointwise(lambda i, t, reduction: F.huber_loss(i, t, reduction, delta=0.7),
                             lambda x, t: huber(x - t, 0.7), kinks=(0.7, -0.7)),
    "smooth_l1_loss": _pointwise(lambda i, t, reduction: F.smooth_l1_loss(i, t, reduction=reduction, beta=0.5),
                                 lambda x, t: smooth_l1(x - t, 0.5), kinks=(0.5, -0.5)),
    "binary_cross_entropy": _pointwise(F.binary_cross_entropy,
                                       lambda x, t: -(t * np.log(x) + (1 - t) * np.log1p(-x)), _prob, _prob),
    "binary_cross_entropy_with_logits": _pointwise(
        F.binary_cross_entropy_with_logits,
        lambda x, t: np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))), None, _prob),
    "kl_div": _pointwise(F.kl_div, lambda x, t: t * (np.log(t) - x), None, _positive),
    "perceptron_loss": _pointwise(F.perceptron_loss, lambda x, t: np.maximum(0, -t * x), None, _pm1, kinks=(0.0,)),
    "rmse_loss": _rmse,
    "linear_cross_entropy": _linear_ce,
}
NAMES = sorted(PROPS)


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
        base = fn(**_tensors(arrays, dtype, "contiguous")).data
        np.testing.assert_array_equal(out.data, base)
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


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("step", "sign")])
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
