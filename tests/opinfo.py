"""The op registry (OpInfo-style): every kernel-backed op of nnfast.nn.functional, declared once.

Each ``OpInfo`` holds the op's name and family, the nnfast call, a float64 NumPy reference, a
sample-input generator (sizes 1, 7 and 1023 among others; non-contiguous views are made from
the samples by the tests), dtypes, gradcheck flags (differentiable inputs, tolerances, kinks),
error inputs (call, exception type, message start such as "[layer_norm] expected"), the devices
it runs on, the error-table rows (``ERROR_ROWS``, read by test_error_table.py) and a Hypothesis
builder (read by test_properties.py). test_ops.py generates forward / gradcheck / non-contiguous /
float32-vs-float64 / error-input tests from ``REGISTRY`` for every op x device present.
ADDING AN OP = ADDING ONE ENTRY here. A pointwise activation is one line:
    pointwise("mish", F.mish, lambda x: x * np.tanh(np.log1p(np.exp(x))))
(add ``kinks=`` where it is not differentiable, ``devices=`` when a CUDA kernel exists).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

try:  # optional oracle (the loss rows' torch_call)
    import torch
except ImportError:  # pragma: no cover - torch is not a dependency
    torch = None

import nnfast
import nnfast.nn.functional as F
from nnfast import _dispatch
from nnfast.nn.utils.weight_norm import _weight_norm

from hypothesis import strategies as st

from helpers import leaf, noncontig  # noqa: F401  (re-exported for the generated tests)

F32, F64 = np.float32, np.float64
SIZES = (1, 7, 1023)  # every op's samples include these sizes (plus family-specific ones)


# ==================================================================================== the registry types
@dataclass
class Sample:
    """One sample input: float64 / int64 arrays (C-contiguous), the names gradcheck differentiates,
    and optionally a call / reference overriding the op's (loss rows carry their own options)."""
    id: str
    arrays: dict
    grads: tuple = ("input",)
    call: Optional[Callable] = None
    ref: Optional[Callable] = None
    contiguous: tuple = ()   # names the non-contiguous test leaves contiguous (buffers updated in place)


@dataclass
class ErrorInput:
    """thunk() must raise ``exc`` whose message starts with ``match`` (a regex)."""
    id: str
    thunk: Callable[[], Any]
    exc: type
    match: str


@dataclass
class OpInfo:
    name: str
    family: str                                   # activation | norm | loss | linear | softmax | dropout | tensor
    call: Callable                                # call(**tensors) -> Tensor
    ref: Optional[Callable]                       # ref(**float64 arrays) -> float64 array
    samples: Callable[[str], list]                # samples(purpose) -> [Sample]; purpose in PURPOSES
    dtypes: tuple = (F32, F64)                    # forward dtypes checked against ref
    fwd_tol: dict = field(default_factory=lambda: {F32: (2e-5, 2e-5), F64: (1e-10, 1e-10)})
    gradcheck: bool = True                        # differentiable: gradcheck in float64 on the real kernels
    gradcheck_kw: dict = field(default_factory=dict)
    nc_dtypes: tuple = (F64,)                     # dtypes of the non-contiguous == contiguous check
    nc_tol: Optional[tuple] = (1e-12, 1e-12)      # None: bit for bit
    f32_fwd: tuple = (1e-5, 1e-5)                 # float32 vs float64 (same float32-rounded inputs)
    f32_grad: tuple = (1e-4, 1e-5, True)          # rtol, atol, atol scaled by max |grad|
    special_values: bool = False                  # pointwise: 0, -0, inf, NaN, huge, subnormal
    partial_grad: bool = False                    # each input alone requires grad: same gradients
    fused: Any = None                             # Linear(activation=fused) spec (pointwise activations)
    f32_atol: Optional[float] = None              # pointwise float32 forward atol override
    error_inputs: list = field(default_factory=list)
    devices: tuple = ("cpu",)
    hypothesis: Optional[Callable] = None         # builder(draw) -> (arrays, fn, ref, kinks)
    ulp: Optional[float] = None                   # pointwise: max float32 ulp error vs the float64 kernel


PURPOSES = ("forward", "gradcheck", "noncontig", "f32")
REGISTRY: list[OpInfo] = []


def register(op: OpInfo) -> OpInfo:
    assert all(o.name != op.name for o in REGISTRY), f"duplicate OpInfo {op.name}"
    REGISTRY.append(op)
    return op


def get(name: str) -> OpInfo:
    return next(o for o in REGISTRY if o.name == name)


def to_device(t: nnfast.Tensor, device: str) -> nnfast.Tensor:
    """``t`` on ``device`` (a cuda copy: CuPy on a GPU, an emulated cuda array under EMULATE)."""
    return t if device == "cpu" else t.to(device)


# ==================================================================================== moved from test_error_table.py
# ------------------------------------------------------------------------------------------ value generators
def normal(rng, shape):
    return rng.standard_normal(shape)


def prob(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def classes(C):
    def gen(rng, shape):
        return rng.integers(0, max(C, 1), shape).astype(np.int64)
    return gen


def simplex(rng, shape):
    e = np.exp(rng.standard_normal(shape))
    return e / np.maximum(e.sum(axis=1, keepdims=True), 1e-300) if len(shape) > 1 else e / max(e.sum(), 1e-300)


@dataclass
class Arg:
    shape: tuple
    gen: Callable = normal
    grad: bool = True


# ------------------------------------------------------------------------------------------ float64 references
def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x) if np.size(x) else np.asarray(x, np.float64)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def log_softmax(x, axis):
    if x.ndim == 0:
        return np.zeros_like(x)
    if x.shape[axis] == 0:
        return x.copy()
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _mean(v):
    return np.mean(v) if np.size(v) else np.float64(np.nan)


def ce_ref(input, target):
    ls = log_softmax(input.reshape(-1, input.shape[-1]) if input.ndim == 1 else input, 1)
    return -_mean(ls[np.arange(len(target)), target]) if input.ndim > 1 else -ls[0, target]


def ce_prob_ref(input, target):
    return _mean(-(target * log_softmax(input, 1)).sum(axis=1))


def nll_ref(input, target):
    return -_mean(input[np.arange(len(target)), target])


def bn_ref(input, weight, bias, eps=1e-5):
    if input.size == 0:
        return input.copy()
    N, C = input.shape[:2]
    x = input.reshape(N, C, -1)
    m = x.mean(axis=(0, 2), keepdims=True)
    v = x.var(axis=(0, 2), keepdims=True)
    y = (x - m) / np.sqrt(v + eps) * weight[None, :, None] + bias[None, :, None]
    return y.reshape(input.shape)


def ln_ref(input, weight, bias, eps=1e-5):
    if input.size == 0:
        return input.copy()
    m = input.mean(axis=-1, keepdims=True)
    v = input.var(axis=-1, keepdims=True)
    return (input - m) / np.sqrt(v + eps) * weight + bias


def rms_ref(input, weight, eps=1e-6):
    if input.size == 0:
        return input.copy()
    return input / np.sqrt((input ** 2).mean(axis=-1, keepdims=True) + eps) * weight


def gn_ref(input, weight, bias, G, eps=1e-5):
    N, C = input.shape[:2]
    if input.size == 0:
        return input.copy()
    x = input.reshape(N, G, -1)
    y = (x - x.mean(axis=2, keepdims=True)) / np.sqrt(x.var(axis=2, keepdims=True) + eps)
    y = y.reshape(N, C, -1) * weight[None, :, None] + bias[None, :, None]
    return y.reshape(input.shape)


def huber(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def smooth_l1(d, beta):
    a = np.abs(d)
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def prelu_ref(input, weight):
    w = weight.reshape((1, -1) + (1,) * (input.ndim - 2)) if input.ndim >= 2 else weight
    return np.where(input > 0, input, w * input)


def glu_ref(input, gate_first):
    h = input.shape[-1] // 2
    a, b = input[..., :h], input[..., h:]
    return a * sigmoid(a) * b if gate_first else a * sigmoid(b)


# ------------------------------------------------------------------------------------------ the op table
@dataclass
class ErrorRow:
    name: str                     # tag every error of the op must carry: "[name]"
    args: dict                    # operand name -> Arg (insertion order = call order)
    fn: Callable                  # fn(**tensors) -> Tensor
    ref: Optional[Callable]       # ref(**float64 arrays) -> array; None: compare with the contiguous run
    primary: str = "input"        # the operand the dtype / list / scalar cases replace
    bad_rank: Optional[dict] = None      # shape overrides giving an invalid rank (ValueError)
    other_ranks: tuple = ()              # shape overrides giving other valid ranks
    mismatch: Optional[dict] = None      # shape overrides that do not fit together (ValueError)
    zero_ok: tuple = ()                  # shape overrides with a zero-size dim that are valid
    zero_bad: Optional[dict] = None      # shape overrides with a zero-size dim that are invalid (ValueError)
    inplace: Optional[Callable] = None   # inplace(tensor): the op's in-place form
    alias: Optional[tuple] = None        # (a, b, shape overrides): passing one tensor for both is valid
    tol32: float = 2e-4
    tol64: float = 1e-9
    check: Optional[Callable] = None     # extra check(out array, float64 arrays) where ref is None


def _unary(name, fn, ref, inplace=None, **kw):
    return ErrorRow(name, {"input": Arg((5, 7))}, fn, None if ref is None else (lambda input: ref(input)), other_ranks=({"input": ()}, {"input": (2, 3, 4)}),
              zero_ok=({"input": (0, 7)}, {"input": (0,)}), inplace=inplace, **kw)


def _dropout_check(out, arrays):
    x = arrays["input"]
    ok = (out == 0) | np.isclose(out, x / 0.5, rtol=1e-5, atol=1e-12)
    assert ok.all(), "dropout output is neither 0 nor x / (1 - p)"


def _loss(name, fn, ref, gen_x=normal, gen_t=normal, alias=True, **kw):
    return ErrorRow(name, {"input": Arg((5, 7), gen_x), "target": Arg((5, 7), gen_t, grad=False)}, fn, ref,
              other_ranks=({"input": (), "target": ()}, {"input": (2, 3, 4), "target": (2, 3, 4)}),
              mismatch={"target": (5, 6)}, zero_ok=({"input": (0, 7), "target": (0, 7)},),
              alias=("input", "target", {}) if alias else None, **kw)


ERROR_ROWS = [
    ErrorRow("linear", {"input": Arg((5, 7)), "weight": Arg((3, 7)), "bias": Arg((3,))},
       lambda input, weight, bias: F.linear(input, weight, bias),
       lambda input, weight, bias: input @ weight.T + bias,
       bad_rank={"input": ()}, other_ranks=({"input": (2, 3, 7)}, {"input": (7,)}),
       mismatch={"weight": (3, 6)},
       zero_ok=({"input": (0, 7)}, {"input": (5, 0), "weight": (3, 0)}, {"weight": (0, 7), "bias": (0,)}),
       alias=("input", "weight", {"input": (7, 7), "weight": (7, 7), "bias": (7,)})),
    ErrorRow("linear", {"input": Arg((5, 7)), "weight": Arg((3, 7)), "bias": Arg((3,))},
       lambda input, weight, bias: F.linear(input, weight, bias, activation="gelu"),
       lambda input, weight, bias: gelu(input @ weight.T + bias),
       bad_rank={"input": ()}, mismatch={"bias": (4,)},
       zero_ok=({"input": (0, 7)}, {"input": (5, 0), "weight": (3, 0)})),
    ErrorRow("matmul", {"input": Arg((5, 7)), "other": Arg((7, 3))},
       lambda input, other: input @ other, lambda input, other: input @ other,
       bad_rank={"input": ()}, other_ranks=({"input": (7,)}, {"input": (2, 5, 7)}), mismatch={"other": (6, 3)},
       zero_ok=({"input": (0, 7)}, {"input": (5, 0), "other": (0, 3)}),
       alias=("input", "other", {"input": (7, 7), "other": (7, 7)})),
    _unary("relu", lambda input: F.relu(input), lambda input: np.maximum(input, 0),
           inplace=lambda t: F.relu(t, inplace=True)),
    _unary("relu6", lambda input: F.relu6(input), lambda input: np.clip(input, 0, 6),
           inplace=lambda t: F.relu6(t, inplace=True)),
    _unary("leaky_relu", lambda input: F.leaky_relu(input, 0.2), lambda input: np.where(input > 0, input, 0.2 * input),
           inplace=lambda t: F.leaky_relu(t, 0.2, inplace=True)),
    _unary("elu", lambda input: F.elu(input), lambda input: np.where(input > 0, input, np.expm1(input)),
           inplace=lambda t: F.elu(t, inplace=True)),
    _unary("sigmoid", F.sigmoid, sigmoid),
    _unary("tanh", F.tanh, np.tanh),
    _unary("gelu", lambda input: F.gelu(input), gelu),
    _unary("gelu", lambda input: F.gelu(input, approximate="tanh"), gelu_tanh),
    _unary("silu", lambda input: F.silu(input), lambda input: input * sigmoid(input),
           inplace=lambda t: F.silu(t, inplace=True)),
    _unary("softplus", lambda input: F.softplus(input), softplus),
    _unary("hardtanh", lambda input: F.hardtanh(input), lambda input: np.clip(input, -1, 1),
           inplace=lambda t: F.hardtanh(t, inplace=True)),
    _unary("activation", lambda input: F.activation(input, "tanh"),
           np.tanh),
    _unary("softmax", lambda input: F.softmax(input, dim=-1), lambda input: np.exp(log_softmax(input, -1))),
    _unary("log_softmax", lambda input: F.log_softmax(input, dim=-1), lambda input: log_softmax(input, -1)),
    _unary("step", F.step, lambda input: (input > 0).astype(np.float64)),
    _unary("sign", F.sign, np.sign),
    _unary("dropout", lambda input: F.dropout(input, 0.5), None, check=_dropout_check,
           inplace=lambda t: F.dropout(t, 0.5, inplace=True)),
    ErrorRow("prelu", {"input": Arg((5, 7, 3)), "weight": Arg((7,), positive)}, F.prelu, prelu_ref,
       bad_rank={"input": (7,)}, mismatch={"weight": (6,)}, zero_ok=({"input": (0, 7, 3)}, {"input": (5, 7, 0)})),
    ErrorRow("swish", {"input": Arg((5, 7)), "beta": Arg((1,), positive)}, lambda input, beta: F.swish(input, beta),
       lambda input, beta: input * sigmoid(beta.reshape(-1)[0] * input), other_ranks=({"input": ()}, {"input": (2, 3, 4)}),
       mismatch={"beta": (2,)}, zero_ok=({"input": (0, 7)},)),
    ErrorRow("glu", {"input": Arg((5, 8))}, lambda input: F.glu(input), lambda input: glu_ref(input, False),
       bad_rank={"input": ()}, other_ranks=({"input": (2, 3, 4)}, {"input": (6,)}), mismatch={"input": (5, 7)},
       zero_ok=({"input": (0, 8)}, {"input": (5, 0)})),
    ErrorRow("swiglu", {"input": Arg((5, 8))}, lambda input: F.swiglu(input), lambda input: glu_ref(input, True),
       bad_rank={"input": ()}, other_ranks=({"input": (2, 3, 4)},), mismatch={"input": (5, 7)},
       zero_ok=({"input": (0, 8)}, {"input": (5, 0)})),
    ErrorRow("batch_norm", {"input": Arg((4, 6, 5)), "weight": Arg((6,)), "bias": Arg((6,))},
       lambda input, weight, bias: F.batch_norm(input, None, None, weight, bias, training=True), bn_ref,
       bad_rank={"input": (6,)}, other_ranks=({"input": (4, 6)}, {"input": (2, 6, 2, 3)}), mismatch={"weight": (5,)},
       zero_ok=({"input": (4, 0, 5), "weight": (0,), "bias": (0,)}, {"input": (4, 6, 0)}),
       alias=("weight", "bias", {})),
    ErrorRow("layer_norm", {"input": Arg((5, 7)), "weight": Arg((7,)), "bias": Arg((7,))},
       lambda input, weight, bias: F.layer_norm(input, weight.shape, weight, bias), ln_ref,
       bad_rank={"input": ()}, other_ranks=({"input": (7,)}, {"input": (2, 3, 7)}), mismatch={"input": (5, 6)},
       zero_ok=({"input": (0, 7)}, {"input": (5, 0), "weight": (0,), "bias": (0,)}),
       alias=("weight", "bias", {})),
    ErrorRow("rms_norm", {"input": Arg((5, 7)), "weight": Arg((7,))},
       lambda input, weight: F.rms_norm(input, weight.shape, weight, eps=1e-6), rms_ref,
       bad_rank={"input": ()}, other_ranks=({"input": (7,)}, {"input": (2, 3, 7)}), mismatch={"weight": (6,)},
       zero_ok=({"input": (0, 7)}, {"input": (5, 0), "weight": (0,)})),
    ErrorRow("group_norm", {"input": Arg((4, 6, 5)), "weight": Arg((6,)), "bias": Arg((6,))},
       lambda input, weight, bias: F.group_norm(input, 3, weight, bias),
       lambda input, weight, bias: gn_ref(input, weight, bias, 3),
       bad_rank={"input": (6,)}, other_ranks=({"input": (4, 6)}, {"input": (2, 6, 2, 3)}), mismatch={"input": (4, 5, 5)},
       zero_ok=({"input": (0, 6, 5)}, {"input": (4, 6, 0)}), alias=("weight", "bias", {})),
    ErrorRow("instance_norm", {"input": Arg((4, 6, 5)), "weight": Arg((6,)), "bias": Arg((6,))},
       lambda input, weight, bias: F.instance_norm(input, weight=weight, bias=bias),
       lambda input, weight, bias: gn_ref(input, weight, bias, input.shape[1]),
       bad_rank={"input": (6,)}, other_ranks=({"input": (2, 6, 2, 3)},), mismatch={"bias": (5,)},
       zero_ok=({"input": (0, 6, 5)},), alias=("weight", "bias", {})),
    ErrorRow("cross_entropy", {"input": Arg((5, 7)), "target": Arg((5,), classes(7), grad=False)},
       lambda input, target: F.cross_entropy(input, target), ce_ref,
       bad_rank={"input": ()}, other_ranks=({"input": (7,), "target": ()},), mismatch={"target": (4,)},
       zero_ok=({"input": (0, 7), "target": (0,)},), zero_bad={"input": (5, 0)}),
    ErrorRow("cross_entropy", {"input": Arg((5, 7)), "target": Arg((5, 7), simplex)},
       lambda input, target: F.cross_entropy(input, target), ce_prob_ref,
       bad_rank={"input": ()}, mismatch={"target": (5, 6)},
       zero_ok=({"input": (0, 7), "target": (0, 7)},), zero_bad={"input": (5, 0), "target": (5, 0)},
       alias=("input", "target", {})),
    ErrorRow("nll_loss", {"input": Arg((5, 7)), "target": Arg((5,), classes(7), grad=False)},
       lambda input, target: F.nll_loss(input, target), nll_ref,
       bad_rank={"input": ()}, mismatch={"target": (6,)},
       zero_ok=({"input": (0, 7), "target": (0,)},), zero_bad={"input": (5, 0)}),
    _loss("mse_loss", F.mse_loss, lambda input, target: _mean((input - target) ** 2)),
    _loss("l1_loss", F.l1_loss, lambda input, target: _mean(np.abs(input - target))),
    _loss("huber_loss", lambda input, target: F.huber_loss(input, target, delta=1.5),
          lambda input, target: _mean(huber(input - target, 1.5))),
    _loss("smooth_l1_loss", lambda input, target: F.smooth_l1_loss(input, target, beta=0.5),
          lambda input, target: _mean(smooth_l1(input - target, 0.5))),
    _loss("binary_cross_entropy", F.binary_cross_entropy,
          lambda input, target: _mean(-(target * np.log(input) + (1 - target) * np.log1p(-input))), prob, prob),
    _loss("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
          lambda input, target: _mean(np.maximum(input, 0) - input * target + np.log1p(np.exp(-np.abs(input)))),
          normal, prob),
    _loss("kl_div", lambda input, target: F.kl_div(input, target, reduction="batchmean"),
          lambda input, target: (np.sum(target * (np.log(target) - input)) /
                                 (input.shape[0] if input.ndim else 1) if input.size else np.nan),
          normal, positive, alias=False),
    _loss("rmse_loss", F.rmse_loss, lambda input, target: np.sqrt(_mean((input - target) ** 2))),
    _loss("perceptron_loss", F.perceptron_loss, lambda input, target: _mean(np.maximum(0, -target * input)),
          normal, pm1),
    ErrorRow("linear_cross_entropy", {"input": Arg((5, 7)), "weight": Arg((4, 7)), "bias": Arg((4,)),
                                "target": Arg((5,), classes(4), grad=False)},
       lambda input, weight, bias, target: F.linear_cross_entropy(input, weight, bias, target, chunk_size=3),
       lambda input, weight, bias, target: ce_ref(input @ weight.T + bias, target),
       bad_rank={"input": ()}, other_ranks=({"input": (2, 3, 7), "target": (2, 3)},), mismatch={"weight": (4, 6)},
       zero_ok=({"input": (0, 7), "target": (0,)}, {"input": (5, 0), "weight": (4, 0)}),
       zero_bad={"weight": (0, 7), "bias": (0,)}),
]


# ==================================================================================== moved from test_activation.py
SQRT2 = math.sqrt(2.0)
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
SIZES = (1, 3, 7, 33, 257, 1023)
DTYPES = (np.float32, np.float64)
TOL = {np.float32: (1e-6, 1e-12), np.float64: (1e-12, 1e-14)}


def _sig(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _gelu(x):
    return 0.5 * x * _erfc(-x / SQRT2)


def _gelu_tanh(x):
    # 0.5 x (1 + tanh u) written as x sigmoid(2u): the same function without float64's
    # cancellation for x << 0 (where 1 + tanh(u) rounds to 0).
    with np.errstate(over="ignore", invalid="ignore"):
        u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
        return np.where(np.isnan(x), np.nan, x * _sig(2 * u))


def _softplus(beta, thr):
    def f(x):
        with np.errstate(over="ignore"):
            return np.where(beta * x > thr, x, np.log1p(np.exp(-np.abs(beta * x))) / beta + np.maximum(x, 0))
    return f


def _step(x):
    return np.where(x > 0, 1.0, np.where(x <= 0, 0.0, x))


# name: (nnfast call, float64 reference, fused Linear spec or None, kinks to keep gradcheck away from,

SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 1e-40, -1e-40, 88.0, -88.0, 100.0, -100.0,
                    20.0, -20.0, 9.0, -9.0, 0.625, -0.625, 1e-7, -1e-7])


# ==================================================================================== moved from test_norm.py
NORM_SIZES = (1, 3, 7, 33, 257, 1023)
NORM_GRAD_SIZES = (1, 3, 7, 33)


# ---------------------------------------------------------------- float64 references
def ref_layer_norm(x, w, b, k, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def ref_rms_norm(x, w, k, eps):
    axes = tuple(range(x.ndim - k, x.ndim))
    return x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + eps) * (1 if w is None else w)


def _chan(a, ndim):
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def ref_affine(y, w, b):
    return y * (1 if w is None else _chan(w, y.ndim)) + (0 if b is None else _chan(b, y.ndim))


def ref_batch_norm(x, w, b, eps=1e-5, mean=None, var=None):
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.mean(axes, keepdims=True) if mean is None else _chan(mean, x.ndim)
    v = x.var(axes, keepdims=True) if var is None else _chan(var, x.ndim)
    return ref_affine((x - m) / np.sqrt(v + eps), w, b)


def ref_group_norm(x, G, w, b, eps=1e-5):
    xr = x.reshape(x.shape[0], G, -1)
    y = (xr - xr.mean(-1, keepdims=True)) / np.sqrt(xr.var(-1, keepdims=True) + eps)
    return ref_affine(y.reshape(x.shape), w, b)


def ref_weight_norm(v, g, dim):
    axes = tuple(i for i in range(v.ndim) if i != dim)
    return g * v / np.sqrt(np.sum(v * v, axis=axes, keepdims=True))



# ---------------------------------------------------------------- the table
@dataclass
class NormRow:
    name: str
    x_shape: Callable[[int], tuple]           # input shape for feature count F
    params: Callable[[int], dict]             # name -> shape
    call: Callable[..., Any]                  # (x, **params) -> Tensor
    ref: Callable[..., np.ndarray]            # (x, **params) float64
    min_f: int = 1
    extra: dict = field(default_factory=dict)  # fixed non-differentiable arrays (running stats)


def _rs(F_):
    r = np.random.default_rng(F_)
    return {"running_mean": r.standard_normal(F_), "running_var": r.uniform(0.5, 2.0, F_)}


NORM_OPS = [
    NormRow("layer_norm", lambda f: (3, f), lambda f: {"weight": (f,), "bias": (f,)},
       lambda x, weight, bias: F.layer_norm(x, (x.shape[-1],), weight, bias),
       lambda x, weight, bias: ref_layer_norm(x, weight, bias, 1)),
    NormRow("layer_norm_2d_shape", lambda f: (2, 2, f), lambda f: {"weight": (2, f), "bias": (2, f)},
       lambda x, weight, bias: F.layer_norm(x, x.shape[1:], weight, bias, eps=1e-3),
       lambda x, weight, bias: ref_layer_norm(x, weight, bias, 2, eps=1e-3)),
    NormRow("layer_norm_no_affine", lambda f: (4, f), lambda f: {},
       lambda x: F.layer_norm(x, x.shape[-1]), lambda x: ref_layer_norm(x, None, None, 1)),
    NormRow("rms_norm", lambda f: (3, f), lambda f: {"weight": (f,)},
       lambda x, weight: F.rms_norm(x, (x.shape[-1],), weight),
       lambda x, weight: ref_rms_norm(x, weight, 1, np.finfo(x.dtype).eps)),
    NormRow("rms_norm_eps", lambda f: (2, 3, f), lambda f: {"weight": (f,)},
       lambda x, weight: F.rms_norm(x, [x.shape[-1]], weight, eps=1e-2),
       lambda x, weight: ref_rms_norm(x, weight, 1, 1e-2)),
    NormRow("batch_norm_2d", lambda f: (5, f), lambda f: {"weight": (f,), "bias": (f,)},
       lambda x, weight, bias: F.batch_norm(x, None, None, weight, bias, training=True),
       lambda x, weight, bias: ref_batch_norm(x, weight, bias)),
    NormRow("batch_norm_3d", lambda f: (3, f, 4), lambda f: {"weight": (f,), "bias": (f,)},
       lambda x, weight, bias: F.batch_norm(x, None, None, weight, bias, training=True, eps=1e-3),
       lambda x, weight, bias: ref_batch_norm(x, weight, bias, eps=1e-3)),
    NormRow("batch_norm_eval", lambda f: (3, f, 2), lambda f: {"weight": (f,), "bias": (f,)},
       lambda x, weight, bias, running_mean, running_var: F.batch_norm(
           x, running_mean, running_var, weight, bias, training=False),
       lambda x, weight, bias, running_mean, running_var: ref_batch_norm(
           x, weight, bias, mean=running_mean, var=running_var), extra={"stats": _rs}),
    NormRow("group_norm", lambda f: (2, 2 * f, 3), lambda f: {"weight": (2 * f,), "bias": (2 * f,)},
       lambda x, weight, bias: F.group_norm(x, 2, weight, bias),
       lambda x, weight, bias: ref_group_norm(x, 2, weight, bias)),
    NormRow("group_norm_4d", lambda f: (2, f, 2, 2), lambda f: {"weight": (f,), "bias": (f,)},
       lambda x, weight, bias: F.group_norm(x, 1, weight, bias, eps=1e-4),
       lambda x, weight, bias: ref_group_norm(x, 1, weight, bias, eps=1e-4)),
    NormRow("instance_norm", lambda f: (3, f, 5), lambda f: {"weight": (f,), "bias": (f,)},
       lambda x, weight, bias: F.instance_norm(x, weight=weight, bias=bias),
       lambda x, weight, bias: ref_group_norm(x, x.shape[1], weight, bias)),
    NormRow("weight_norm_dim0", lambda f: (f, 3), lambda f: {"g": (f, 1)},
       lambda x, g: _weight_norm(x, g, 0), lambda x, g: ref_weight_norm(x, g, 0)),
    NormRow("weight_norm_dim1", lambda f: (2, f, 3), lambda f: {"g": (1, f, 1)},
       lambda x, g: _weight_norm(x, g, 1), lambda x, g: ref_weight_norm(x, g, 1)),
]


def make(op: NormRow, f: int, dtype=np.float64, seed: int = 0):
    rng = np.random.default_rng(seed + 7 * f)
    x = rng.standard_normal(op.x_shape(f)) * 2.0 + 0.5
    params = {k: rng.standard_normal(s) for k, s in op.params(f).items()}
    if "g" in params:
        params["g"] = np.abs(params["g"]) + 0.5
    fixed = op.extra["stats"](f) if "stats" in op.extra else {}
    cast = lambda d: {k: v.astype(dtype) for k, v in d.items()}  # noqa: E731
    return x.astype(dtype), cast(params), cast(fixed)


def run(op: NormRow, x, params, fixed, grad=False):
    xt = leaf(x, grad)
    pt = {k: leaf(v, grad) for k, v in params.items()}
    ft = {k: nnfast.from_numpy(v.copy()) for k, v in fixed.items()}
    return op.call(xt, **pt, **ft), xt, pt


def ref(op: NormRow, x, params, fixed):
    f64 = lambda a: a.astype(np.float64)  # noqa: E731
    return op.ref(f64(x), **{k: f64(v) for k, v in params.items()}, **{k: f64(v) for k, v in fixed.items()})


# ==================================================================================== moved from test_loss.py
REDS = ("mean", "sum", "none")


def _rows(x):
    """(N, C, d...) -> (R, C) rows, class last; (C,) -> (1, C)."""
    if x.ndim == 1:
        return x[None, :]
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _reduce(per, red, denom, shape):
    if red == "none":
        return per.reshape(shape)
    return per.sum() if red == "sum" else per.sum() / denom


def ref_cross_entropy(x, t, w=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    logp = log_softmax(_rows(x), 1)
    tl = np.asarray(t).reshape(-1)
    mask = tl != ignore_index
    tt = np.where(mask, tl, 0)
    wv = np.ones(C) if w is None else w
    nll = -logp[np.arange(len(tl)), tt] * wv[tt] * mask
    smooth = -(logp * wv).sum(1) * mask
    per = (1 - label_smoothing) * nll + label_smoothing / C * smooth
    return _reduce(per, reduction, (wv[tt] * mask).sum(), np.shape(t))


def ref_cross_entropy_prob(x, p, w=None, reduction="mean", label_smoothing=0.0):
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    logp = log_softmax(_rows(x), 1)
    q = _rows(p) * (1 - label_smoothing) + label_smoothing / C
    wv = np.ones(C) if w is None else w
    per = -(logp * q * wv).sum(1)
    shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    return _reduce(per, reduction, per.size, shape)


def ref_nll(x, t, w=None, ignore_index=-100, reduction="mean"):
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    xr = _rows(x)
    tl = np.asarray(t).reshape(-1)
    mask = tl != ignore_index
    tt = np.where(mask, tl, 0)
    wv = np.ones(C) if w is None else w
    per = -xr[np.arange(len(tl)), tt] * wv[tt] * mask
    return _reduce(per, reduction, (wv[tt] * mask).sum(), np.shape(t))


def _pw_reduce(per, reduction):
    if reduction == "none":
        return per
    if reduction == "batchmean":
        return per.sum() / per.shape[0]
    return per.sum() if reduction == "sum" else per.mean()


def _huber(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def _smooth_l1(d, beta):
    a = np.abs(d)
    if beta == 0:
        return a
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def _bce(x, y, w=None):
    l = -(y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log1p(-x), -100))
    return l if w is None else l * w


def _bce_logits(x, y, w=None, pw=None):
    lw = 1 + ((pw if pw is not None else 1.0) - 1) * y
    l = (1 - y) * x + lw * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
    return l if w is None else l * w


def _kl(x, y, log_target):
    if log_target:
        return np.exp(y) * (y - x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0) - y * x



# ---------------------------------------------------------------------------------------- the table
class Case:
    """arrays: name -> float64 / int64 array; grads: names gradchecked; call(**tensors) -> Tensor;
    ref(**arrays) -> float64 value."""

    def __init__(self, id, arrays, grads, call, ref, torch_call=None):
        self.id, self.arrays, self.grads, self.call, self.ref, self.torch_call = id, arrays, grads, call, ref, torch_call


def _r(seed):
    return np.random.default_rng(seed)


def _ce_cases():
    out = []
    seed = 0
    for N, C, extra in ((7, 5, ()), (1, 1, ()), (4, 3, (2, 3)), (None, 6, ())):
        for red in REDS:
            for opt in ("plain", "weight", "ignore", "smooth", "weight+ignore+smooth"):
                seed += 1
                rng = _r(seed)
                xshape = (C,) if N is None else (N, C) + extra
                tshape = () if N is None else (N,) + extra
                x = rng.standard_normal(xshape) * 2
                t = rng.integers(0, C, tshape).astype(np.int64)
                kw = {}
                if "weight" in opt:
                    kw["weight"] = rng.uniform(0.2, 2.0, C)
                if "ignore" in opt and t.size > 1:
                    t.reshape(-1)[1] = -100
                ls = 0.25 if "smooth" in opt else 0.0
                arrays = {"input": x, "target": t, **kw}

                def call(red=red, ls=ls, **a):
                    return F.cross_entropy(a["input"], a["target"], weight=a.get("weight"), reduction=red,
                                           label_smoothing=ls)

                def ref(red=red, ls=ls, **a):
                    return ref_cross_entropy(a["input"], a["target"], a.get("weight"), reduction=red, label_smoothing=ls)

                def tcall(red=red, ls=ls, **a):
                    return torch.nn.functional.cross_entropy(a["input"], a["target"], weight=a.get("weight"),
                                                             reduction=red, label_smoothing=ls)

                out.append(Case(f"cross_entropy-{xshape}-{red}-{opt}", arrays, ("input",), call, ref, tcall))
    # probability targets (the target is differentiable too)
    for xshape in ((6, 4), (3, 5, 2), (4,)):
        for red in REDS:
            for ls, use_w in ((0.0, False), (0.3, True)):
                seed += 1
                rng = _r(seed)
                x = rng.standard_normal(xshape)
                p = log_softmax(rng.standard_normal(xshape), 1 if len(xshape) > 1 else 0)
                p = np.exp(p)
                C = xshape[1] if len(xshape) > 1 else xshape[0]
                arrays = {"input": x, "target": p}
                if use_w:
                    arrays["weight"] = rng.uniform(0.5, 1.5, C)

                def call(red=red, ls=ls, **a):
                    return F.cross_entropy(a["input"], a["target"], weight=a.get("weight"), reduction=red,
                                           label_smoothing=ls)

                def ref(red=red, ls=ls, **a):
                    return ref_cross_entropy_prob(a["input"], a["target"], a.get("weight"), red, ls)

                def tcall(red=red, ls=ls, **a):
                    return torch.nn.functional.cross_entropy(a["input"], a["target"], weight=a.get("weight"),
                                                             reduction=red, label_smoothing=ls)

                out.append(Case(f"cross_entropy_prob-{xshape}-{red}-ls{ls}-w{use_w}", arrays, ("input", "target"),
                                call, ref, tcall))
    return out


def _nll_cases():
    out = []
    for i, (xshape, red, opt) in enumerate(
        (s, r, o) for s in ((7, 5), (3, 4, 2), (5,)) for r in REDS for o in ("plain", "weight+ignore")
    ):
        rng = _r(100 + i)
        x = log_softmax(rng.standard_normal(xshape), 1 if len(xshape) > 1 else 0)
        C = xshape[1] if len(xshape) > 1 else xshape[0]
        t = rng.integers(0, C, xshape[:1] + xshape[2:] if len(xshape) > 1 else ()).astype(np.int64)
        arrays = {"input": x, "target": t}
        if opt != "plain":
            arrays["weight"] = rng.uniform(0.2, 2.0, C)
            if t.size > 1:
                t.reshape(-1)[0] = -100

        def call(red=red, **a):
            return F.nll_loss(a["input"], a["target"], weight=a.get("weight"), reduction=red)

        def ref(red=red, **a):
            return ref_nll(a["input"], a["target"], a.get("weight"), reduction=red)

        def tcall(red=red, **a):
            return torch.nn.functional.nll_loss(a["input"], a["target"], weight=a.get("weight"), reduction=red)

        out.append(Case(f"nll_loss-{xshape}-{red}-{opt}", arrays, ("input",), call, ref, tcall))
    return out


def _pointwise_cases():
    out = []
    specs = [
        # name, F call, reference, input sampler, target sampler, options, torch name
        ("mse_loss", lambda x, y, red, **k: F.mse_loss(x, y, reduction=red),
         lambda x, y, **k: (x - y) ** 2, "normal", "normal", [{}], "mse_loss"),
        ("l1_loss", lambda x, y, red, **k: F.l1_loss(x, y, reduction=red),
         lambda x, y, **k: np.abs(x - y), "normal", "normal", [{}], "l1_loss"),
        ("huber_loss", lambda x, y, red, delta: F.huber_loss(x, y, reduction=red, delta=delta),
         lambda x, y, delta: _huber(x - y, delta), "normal", "normal", [{"delta": 1.0}, {"delta": 0.4}], "huber_loss"),
        ("smooth_l1_loss", lambda x, y, red, beta: F.smooth_l1_loss(x, y, reduction=red, beta=beta),
         lambda x, y, beta: _smooth_l1(x - y, beta), "normal", "normal", [{"beta": 1.0}, {"beta": 0.3}, {"beta": 0.0}],
         "smooth_l1_loss"),
        ("binary_cross_entropy", lambda x, y, red, **k: F.binary_cross_entropy(x, y, weight=k.get("weight"), reduction=red),
         lambda x, y, **k: _bce(x, y, k.get("weight")), "prob", "prob", [{}, {"weight": "row"}], "binary_cross_entropy"),
        ("binary_cross_entropy_with_logits",
         lambda x, y, red, **k: F.binary_cross_entropy_with_logits(x, y, k.get("weight"), reduction=red,
                                                                    pos_weight=k.get("pos_weight")),
         lambda x, y, **k: _bce_logits(x, y, k.get("weight"), k.get("pos_weight")), "normal3", "prob",
         [{}, {"weight": "col"}, {"pos_weight": "col"}, {"weight": "row", "pos_weight": "col"}],
         "binary_cross_entropy_with_logits"),
        ("kl_div", lambda x, y, red, log_target: F.kl_div(x, y, reduction=red, log_target=log_target),
         lambda x, y, log_target: _kl(x, y, log_target), "logprob", "prob",
         [{"log_target": False}, {"log_target": True}], "kl_div"),
        ("perceptron_loss", lambda x, y, red, **k: F.perceptron_loss(x, y, reduction=red),
         lambda x, y, **k: np.maximum(0, -y * x), "normal", "sign", [{}], None),
    ]
    i = 0
    for name, call_f, ref_f, xs, ys, opts, tname in specs:
        for shape in ((7, 5), (3,), (2, 3, 4)):
            for opt in opts:
                reds = REDS + (("batchmean",) if name == "kl_div" else ())
                for red in reds:
                    i += 1
                    rng = _r(1000 + i)

                    def sample(kind):
                        if kind == "normal":
                            return rng.standard_normal(shape)
                        if kind == "normal3":
                            return rng.standard_normal(shape) * 3
                        if kind == "prob":
                            return rng.uniform(0.05, 0.95, shape)
                        if kind == "logprob":
                            return np.log(rng.uniform(0.05, 1.0, shape))
                        return np.where(rng.random(shape) < 0.5, -1.0, 1.0)

                    x = sample(xs)
                    y = sample(ys)
                    if name == "kl_div" and opt.get("log_target"):
                        y = np.log(y)
                    arrays = {"input": x, "target": y}
                    kw = {}
                    for k, v in opt.items():
                        if v == "row":  # broadcast over the last dim: shape[:-1] + (1,)
                            arrays[k] = rng.uniform(0.3, 2.0, shape[:-1] + (1,))
                        elif v == "col":  # one per class of the last dim
                            arrays[k] = rng.uniform(0.3, 2.0, shape[-1:])
                        else:
                            kw[k] = v

                    def call(call_f=call_f, red=red, kw=kw, **a):
                        extra = {k: v for k, v in a.items() if k not in ("input", "target")}
                        return call_f(a["input"], a["target"], red, **kw, **extra)

                    def ref(ref_f=ref_f, red=red, kw=kw, **a):
                        extra = {k: v for k, v in a.items() if k not in ("input", "target")}
                        return _pw_reduce(ref_f(a["input"], a["target"], **kw, **extra), red)

                    tcall = None
                    if tname is not None:
                        def tcall(tname=tname, red=red, kw=kw, **a):
                            extra = {k: v for k, v in a.items() if k not in ("input", "target")}
                            return getattr(torch.nn.functional, tname)(a["input"], a["target"], reduction=red,
                                                                       **kw, **extra)

                    out.append(Case(f"{name}-{shape}-{opt}-{red}", arrays, ("input", "target"), call, ref, tcall))
    # rmse (nnfast addition): only 'mean'
    for shape in ((7, 5), (4,)):
        rng = _r(5000 + len(shape))
        arrays = {"input": rng.standard_normal(shape), "target": rng.standard_normal(shape)}
        out.append(Case(f"rmse_loss-{shape}", arrays, ("input", "target"),
                        lambda **a: F.rmse_loss(a["input"], a["target"]),
                        lambda **a: np.sqrt(np.mean((a["input"] - a["target"]) ** 2))))
    return out


def _linear_ce_cases():
    out = []
    for i, (N, H, C, chunk, red, ls, bias, ign) in enumerate([
        (7, 4, 5, 2, "mean", 0.0, True, False),
        (7, 4, 5, 3, "sum", 0.2, False, True),
        (6, 3, 9, 4, "none", 0.1, True, True),
        (1, 2, 1, 8, "mean", 0.0, True, False),
        (5, 3, 7, 100, "mean", 0.3, True, True),
    ]):
        rng = _r(7000 + i)
        arrays = {"input": rng.standard_normal((N, H)), "weight": rng.standard_normal((C, H)),
                  "target": rng.integers(0, C, N).astype(np.int64)}
        if bias:
            arrays["bias"] = rng.standard_normal(C)
        if ign and N > 1:
            arrays["target"][1] = -100

        def call(red=red, ls=ls, chunk=chunk, **a):
            return F.linear_cross_entropy(a["input"], a["weight"], a.get("bias"), a["target"], reduction=red,
                                          label_smoothing=ls, chunk_size=chunk)

        def ref(red=red, ls=ls, **a):
            z = a["input"] @ a["weight"].T + (a["bias"] if "bias" in a else 0)
            return ref_cross_entropy(z, a["target"], reduction=red, label_smoothing=ls)

        grads = ("input", "weight") + (("bias",) if bias else ())
        out.append(Case(f"linear_cross_entropy-N{N}-C{C}-chunk{chunk}-{red}-ls{ls}-bias{bias}", arrays, grads, call,
                        ref))
    return out


LOSS_CASES = _ce_cases() + _nll_cases() + _pointwise_cases() + _linear_ce_cases()


# ==================================================================================== Hypothesis builders (moved from test_properties.py)
DIM = st.sampled_from([1, 2, 3, 5, 7])  # 1 and odd sizes: vector tails, broadcast-like corners


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


def _prop_unary(fn, ref, kinks=()):
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


def _prop_swish(draw):
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


def _prop_pointwise(fn, per_elem, gen_x=None, gen_t=None, kinks=()):
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




PROPS_LOSS = {
    "mse_loss": _prop_pointwise(F.mse_loss, lambda x, t: (x - t) ** 2),
    "l1_loss": _prop_pointwise(F.l1_loss, lambda x, t: np.abs(x - t), kinks=(0.0,)),
    "huber_loss": _prop_pointwise(lambda i, t, reduction: F.huber_loss(i, t, reduction, delta=0.7),
                             lambda x, t: huber(x - t, 0.7), kinks=(0.7, -0.7)),
    "smooth_l1_loss": _prop_pointwise(lambda i, t, reduction: F.smooth_l1_loss(i, t, reduction=reduction, beta=0.5),
                                 lambda x, t: smooth_l1(x - t, 0.5), kinks=(0.5, -0.5)),
    "binary_cross_entropy": _prop_pointwise(F.binary_cross_entropy,
                                       lambda x, t: -(t * np.log(x) + (1 - t) * np.log1p(-x)), _prob, _prob),
    "binary_cross_entropy_with_logits": _prop_pointwise(
        F.binary_cross_entropy_with_logits,
        lambda x, t: np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))), None, _prob),
    "kl_div": _prop_pointwise(F.kl_div, lambda x, t: t * (np.log(t) - x), None, _positive),
    "perceptron_loss": _prop_pointwise(F.perceptron_loss, lambda x, t: np.maximum(0, -t * x), None, _pm1, kinks=(0.0,)),
}


# ==================================================================================== building the registry
def _away(x, kinks, gap=0.05):
    for k in kinks:
        x = np.where(np.abs(x - k) < gap, x + 2 * gap, x)
    return x


PW_SIZES = (1, 3, 7, 33, 257, 1023)
PW_TOL = {F32: (1e-6, 1e-12), F64: (1e-12, 1e-14)}


def pointwise(name, call, ref, kinks=(), fused=None, differentiable=True, tag=None, f32_atol=None, devices=("cpu",),
              hypothesis_kinks=None, **kw):
    """Registers a unary elementwise op: ``call(x)`` (nnfast) and ``ref(x)`` (float64 NumPy) are all it needs.
    Samples: 1-D and (5, n) inputs of sizes 1, 3, 7, 33, 257, 1023 (3 * N(0, 1)); gradcheck on (3, 7) away
    from ``kinks``; special values; bad dtypes must raise TypeError "[tag] expected"."""
    tag = tag or name

    def samples(purpose):
        if purpose == "forward":
            out = []
            for n in PW_SIZES:
                r = np.random.default_rng(n)
                out += [Sample(f"n{n}", {"input": 3 * r.standard_normal(n)}),
                        Sample(f"5x{n}", {"input": 3 * r.standard_normal((5, n))})]
            return out
        if purpose == "gradcheck":
            return [Sample("3x7", {"input": _away(3 * np.random.default_rng(37).standard_normal((3, 7)), kinks)})]
        if purpose == "noncontig":
            return [Sample("4x9", {"input": 3 * np.random.default_rng(49).standard_normal((4, 9))})]
        return [Sample("n1023", {"input": 3 * np.random.default_rng(1023).standard_normal(1023)})]

    def bad(dt):
        return lambda: call(nnfast.from_numpy(np.ones((2, 4), dtype=dt)))
    errors = [ErrorInput(f"dtype-{np.dtype(dt).name}", bad(dt), TypeError, rf"^\[{tag}\] expected")
              for dt in (np.float16, np.int32, np.int64)]
    hk = kinks if hypothesis_kinks is None else hypothesis_kinks
    return register(OpInfo(
        name, "activation", lambda input: call(input), lambda input: ref(input), samples, fwd_tol=PW_TOL,
        gradcheck=differentiable, nc_dtypes=(F32, F64), nc_tol=None,
        f32_fwd=(2e-6, 1e-12 if f32_atol is None else f32_atol), f32_grad=(1e-5, 1e-6, False),
        special_values=True, fused=fused, f32_atol=f32_atol, error_inputs=errors, devices=devices,
        hypothesis=kw.pop("hypothesis", _unary_prop(call, ref, hk)), **kw))


def _unary_prop(fn, ref, kinks):
    return _prop_unary(fn, ref, kinks)


# ---------------------------------------------------------------------------- activations (one line each)
pointwise("relu", F.relu, lambda x: np.maximum(x, 0), (0.0,), "relu")
pointwise("relu6", F.relu6, lambda x: np.clip(x, 0, 6), (0.0, 6.0), "relu6")
pointwise("leaky_relu", lambda x: F.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x), (0.0,),
          ("leaky_relu", {"negative_slope": 0.1}))
pointwise("elu", lambda x: F.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(np.minimum(x, 0))), (0.0,),
          ("elu", {"alpha": 0.7}), ulp=2)
pointwise("sigmoid", F.sigmoid, _sig, (), "sigmoid", ulp=3)
pointwise("tanh", F.tanh, np.tanh, (), "tanh", ulp=2)
pointwise("gelu", F.gelu, _gelu, (), "gelu", ulp=3)
# float32 atol override: u = k (x + 0.044715 x^3) is rounded to float32 before exp(-2u), so for x << 0
# (outputs ~1e-6..1e-4) the relative error grows to ~2e-6; absolute error stays below 1e-9.
pointwise("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), _gelu_tanh, (), ("gelu", {"approximate": "tanh"}),
          tag="gelu", f32_atol=1e-9)
pointwise("silu", F.silu, lambda x: x * _sig(x), (), "silu", ulp=3.5)
pointwise("softplus", lambda x: F.softplus(x, beta=2.0, threshold=5.0), _softplus(2.0, 5.0), (2.5,),
          ("softplus", {"beta": 2.0, "threshold": 5.0}),
          hypothesis=_prop_unary(F.softplus, softplus, (20.0,)), ulp=2)
pointwise("hardtanh", lambda x: F.hardtanh(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), (-0.5, 0.5),
          ("hardtanh", {"min_val": -0.5, "max_val": 0.5}),
          hypothesis=_prop_unary(F.hardtanh, lambda x: np.clip(x, -1, 1), (-1.0, 1.0)))
pointwise("swish", lambda x: F.swish(x, 1.5), lambda x: x * _sig(1.5 * x), (), hypothesis=_prop_swish)
pointwise("step", F.step, _step, (), differentiable=False, hypothesis_kinks=(0.0,))
pointwise("sign", F.sign, np.sign, (), differentiable=False, hypothesis_kinks=(0.0,))
pointwise("mish", F.mish, lambda x: x * np.tanh(np.log1p(np.exp(x))), (), "mish", ulp=4.5)
pointwise("hardswish", F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6, (-3.0, 3.0), "hardswish", ulp=2)
pointwise("selu", F.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0))), (0.0,), "selu", ulp=2)
pointwise("celu", lambda x: F.celu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(np.minimum(x, 0) / 0.7)), (0.0,), ("celu", {"alpha": 0.7}), ulp=2)
pointwise("softsign", F.softsign, lambda x: x / (1 + np.abs(x)), (), "softsign", ulp=1.5)
pointwise("logsigmoid", F.logsigmoid, lambda x: -np.logaddexp(0, -x), (), "logsigmoid", ulp=2)
# The Hypothesis builders of leaky_relu / elu draw with the same parameters as above.
get("elu").hypothesis = _prop_unary(lambda x: F.elu(x, 0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x)), (0.0,))


# ---------------------------------------------------------------------------- other activation-family ops
def _shaped(shapes, gen=None, **more):
    def samples(purpose):
        out = []
        for i, s in enumerate(shapes):
            r = np.random.default_rng(100 + i)
            arrays = {"input": (gen or (lambda r, s: 2 * r.standard_normal(s)))(r, s)}
            arrays.update({k: f(r, s) for k, f in more.items()})
            out.append(Sample("x".join(map(str, s)) or "scalar", arrays, tuple(arrays)))
        if purpose == "gradcheck":
            return [o for o in out if all(a.size <= 64 for a in o.arrays.values())]
        if purpose in ("noncontig", "f32"):
            return [o for o in out if o.arrays["input"].size > 1][:2]
        return out
    return samples


def _bad_dtypes(tag, thunk_of):
    return [ErrorInput(f"dtype-{np.dtype(dt).name}", thunk_of(dt), TypeError, rf"^\[{tag}\] expected")
            for dt in (np.float16, np.int32, np.int64)]


def _ones(dt, shape=(2, 4)):
    return nnfast.from_numpy(np.ones(shape, dtype=dt))


GEN_TOL = {F32: (2e-5, 1e-6), F64: (1e-10, 1e-12)}
for _log in (False, True):
    _n = "log_softmax" if _log else "softmax"
    _f = F.log_softmax if _log else F.softmax
    register(OpInfo(
        _n, "softmax", (lambda f: lambda input: f(input, -1))(_f),
        (lambda lg: lambda input: log_softmax(input, -1) if lg else np.exp(log_softmax(input, -1)))(_log),
        _shaped([(1,), (7,), (1023,), (3, 7), (2, 1023), (4, 1)], lambda r, s: 3 * r.standard_normal(s) + 10),
        fwd_tol={F32: (2e-6, 1e-6), F64: (1e-12, 1e-12)}, nc_dtypes=(F32, F64), nc_tol=None,
        error_inputs=_bad_dtypes(_n, (lambda f: lambda dt: lambda: f(_ones(dt), 0))(_f)),
        hypothesis=_softmax(_log)))

for _gf in (False, True):
    _n = "swiglu" if _gf else "glu"
    _f = F.swiglu if _gf else F.glu
    register(OpInfo(
        _n, "activation", (lambda f: lambda input: f(input))(_f), (lambda g: lambda input: glu_ref(input, g))(_gf),
        _shaped([(2,), (1, 14), (3, 1024), (2, 3, 8)]), fwd_tol=GEN_TOL,
        error_inputs=_bad_dtypes(_n, (lambda f: lambda dt: lambda: f(_ones(dt)))(_f)), hypothesis=_glu(_gf)))

register(OpInfo(
    "prelu", "activation", F.prelu, prelu_ref,
    _shaped([(1, 1), (7, 3), (3, 7, 5), (2, 1023)], lambda r, s: _away(r.standard_normal(s), (0.0,)),
            weight=lambda r, s: r.uniform(0.1, 0.5, s[1])), fwd_tol=GEN_TOL,
    error_inputs=_bad_dtypes("prelu", lambda dt: lambda: F.prelu(_ones(dt), nnfast.ones(1))), hypothesis=_prelu))
register(OpInfo(
    "swish_beta", "activation", lambda input, beta: F.swish(input, beta),
    lambda input, beta: input * sigmoid(beta[0] * input),
    _shaped([(1,), (7,), (1023,), (3, 7)], beta=lambda r, s: r.uniform(0.5, 1.5, 1)), fwd_tol=GEN_TOL,
    error_inputs=_bad_dtypes("swish", lambda dt: lambda: F.swish(_ones(dt)))))


# ---------------------------------------------------------------------------- linear / matmul
def _linear_samples(purpose):
    out = []
    for i, (M, K, N, bias) in enumerate([(1, 1, 1, True), (7, 5, 3, True), (3, 7, 1023, True), (1023, 7, 2, False),
                                         (4, 1023, 3, True)]):
        r = np.random.default_rng(200 + i)
        arrays = {"input": r.standard_normal((M, K)), "weight": r.standard_normal((N, K))}
        if bias:
            arrays["bias"] = r.standard_normal(N)
        out.append(Sample(f"{M}x{K}x{N}{'' if bias else '-nobias'}", arrays, tuple(arrays)))
    if purpose == "gradcheck":
        return out[:2]
    return out if purpose == "forward" else out[1:3]


register(OpInfo(
    "linear", "linear", lambda input, weight, bias=None: F.linear(input, weight, bias),
    lambda input, weight, bias=None: input @ weight.T + (0 if bias is None else bias), _linear_samples,
    fwd_tol={F32: (2e-5, 2e-4), F64: (1e-10, 1e-10)}, f32_fwd=(1e-4, 1e-4),
    hypothesis=_linear))
register(OpInfo(
    "matmul", "linear", lambda input, other: input @ other, lambda input, other: input @ other,
    lambda purpose: [Sample(s.id, {"input": s.arrays["input"], "other": s.arrays["weight"].T.copy()},
                            ("input", "other")) for s in _linear_samples(purpose)],
    fwd_tol={F32: (2e-5, 2e-4), F64: (1e-10, 1e-10)}, f32_fwd=(1e-4, 1e-4), hypothesis=_matmul))


# ---------------------------------------------------------------------------- dropout
def _dropout_call(input):
    nnfast.manual_seed(3)  # the same mask on every call (gradcheck evaluates it many times)
    return F.dropout(input, 0.25)


register(OpInfo(
    "dropout", "dropout", _dropout_call, None, _shaped([(1,), (7,), (1023,), (5, 7)]), nc_dtypes=(F32, F64),
    nc_tol=None, error_inputs=_bad_dtypes("dropout", lambda dt: lambda: F.dropout(_ones(dt))), hypothesis=_dropout))


# ---------------------------------------------------------------------------- tensor arithmetic of the tape
# Broadcasting binary operators (same shapes, one-sided and two-sided broadcast, 0-d operands,
# 8 dims) and reductions (all, one dim, a non-adjacent pair of dims), on the tensor kernels.
BINARY_SHAPES = [((1,), (1,)), ((7,), (7,)), ((1023,), (1023,)), ((3, 7), (7,)), ((3, 1, 5), (4, 5)),
                 ((2, 3), ()), ((), (7,)), ((1023,), (1,)), ((2, 1, 2, 1, 2, 1, 2, 1), (1, 2, 1, 2, 1, 2, 1, 2))]
TENSOR_TOL = {F32: (1e-6, 1e-30), F64: (1e-15, 1e-300)}


def _away_from_zero(r, s):
    return np.where(r.random(s) < 0.5, -1.0, 1.0) * r.uniform(0.5, 2.0, s)


def _binary_samples(other_gen=normal):
    def samples(purpose):
        out = []
        for i, (sa, sb) in enumerate(BINARY_SHAPES):
            r = np.random.default_rng(300 + i)
            arrays = {"input": np.asarray(r.standard_normal(sa)), "other": np.asarray(other_gen(r, sb))}
            out.append(Sample(f"{'x'.join(map(str, sa)) or 'scalar'}-{'x'.join(map(str, sb)) or 'scalar'}", arrays,
                              ("input", "other")))
        if purpose == "gradcheck":
            return [o for o in out if all(a.size <= 64 for a in o.arrays.values())]
        if purpose == "noncontig":
            return [out[3], out[4], out[5]]
        return out if purpose == "forward" else [out[2], out[4]]
    return samples


for _n, _fn, _ref, _gen in (("add", lambda a, b: a + b, np.add, normal), ("sub", lambda a, b: a - b, np.subtract, normal),
                            ("mul", lambda a, b: a * b, np.multiply, normal),
                            ("div", lambda a, b: a / b, np.divide, _away_from_zero)):
    register(OpInfo(
        _n, "tensor", (lambda f: lambda input, other: f(input, other))(_fn),
        (lambda f: lambda input, other: f(input, other))(_ref), _binary_samples(_gen), fwd_tol=TENSOR_TOL,
        nc_dtypes=(F32, F64), nc_tol=None, f32_fwd=(1e-6, 1e-7),
        error_inputs=[ErrorInput("shapes", (lambda f: lambda: f(nnfast.ones(3, 4), nnfast.ones(3)))(_fn), ValueError,
                                 rf"^\[{_n}\] expected broadcastable shapes, got \(3, 4\) and \(3,\)")]))

REDUCE_SHAPES = [(), (1,), (7,), (1023,), (3, 7), (2, 3, 4), (7, 1, 1023)]


def _reduce_samples(min_ndim):
    def samples(purpose):
        shapes = [s for s in REDUCE_SHAPES if len(s) >= min_ndim]
        out = [Sample("x".join(map(str, s)) or "scalar", {"input": np.asarray(np.random.default_rng(400 + i).standard_normal(s))})
               for i, s in enumerate(shapes)]
        if purpose == "gradcheck":
            return [o for o in out if o.arrays["input"].size <= 64]
        return out if purpose == "forward" else [o for o in out if o.arrays["input"].size > 1][-2:]
    return samples


_REDUCTIONS = [  # name, call, float64 reference, min ndim
    ("sum", lambda x: x.sum(), lambda x: np.sum(x), 0),
    ("sum_dim", lambda x: x.sum(1, keepdim=True), lambda x: np.sum(x, axis=1, keepdims=True), 2),
    ("sum_dims", lambda x: x.sum((0, 2)), lambda x: np.sum(x, axis=(0, 2)), 3),
    ("mean", lambda x: x.mean(), lambda x: np.mean(x), 0),
    ("mean_dim", lambda x: x.mean(-1), lambda x: np.mean(x, axis=-1), 1),
    ("mean_dims", lambda x: x.mean((0, 2), keepdim=True), lambda x: np.mean(x, axis=(0, 2), keepdims=True), 3),
    ("max", lambda x: x.max(), lambda x: np.max(x), 0),
    ("max_dim", lambda x: x.max(1, keepdim=True)[0], lambda x: np.max(x, axis=1, keepdims=True), 2),
    ("min", lambda x: x.min(), lambda x: np.min(x), 0),
    ("min_dim", lambda x: x.min(0)[0], lambda x: np.min(x, axis=0), 1),
]
for _n, _fn, _ref, _nd in _REDUCTIONS:
    register(OpInfo(
        _n, "tensor", (lambda f: lambda input: f(input))(_fn), (lambda f: lambda input: f(input))(_ref),
        _reduce_samples(_nd), fwd_tol={F32: (1e-6, 1e-12), F64: (1e-14, 1e-14)}, nc_dtypes=(F32, F64), nc_tol=None,
        f32_fwd=(1e-6, 1e-6)))


# ---------------------------------------------------------------------------- norms (rows of NORM_OPS)
def _norm_samples(nop):
    def samples(purpose):
        fs = {"forward": NORM_SIZES, "gradcheck": NORM_GRAD_SIZES, "noncontig": (33,), "f32": (257,)}[purpose]
        out = []
        for f in fs:
            x, params, fixed = make(nop, f)
            out.append(Sample(f"f{f}", {"input": x, **params, **fixed}, ("input",) + tuple(params),
                              contiguous=tuple(fixed)))
        return out
    return samples


_NORM_PROPS = {"layer_norm": _row_norm(False), "rms_norm": _row_norm(True), "batch_norm_2d": _channel_norm("batch"),
               "group_norm": _channel_norm("group"), "instance_norm": _channel_norm("instance")}
for _nop in NORM_OPS:
    register(OpInfo(
        _nop.name, "norm", (lambda c: lambda input, **kw: c(input, **kw))(_nop.call),
        (lambda r: lambda input, **kw: r(input, **kw))(_nop.ref), _norm_samples(_nop),
        fwd_tol={F64: (1e-10, 1e-10), F32: (2e-5, 2e-5)}, gradcheck_kw=dict(eps=1e-6, atol=1e-6, rtol=1e-4),
        nc_tol=((1e-13, 1e-13), (1e-12, 1e-12)), partial_grad=True, hypothesis=_NORM_PROPS.get(_nop.name)))


# ---------------------------------------------------------------------------- losses (rows of LOSS_CASES)
def _loss_key(case_id):
    return case_id.split("-")[0]


_LOSS_PROPS = {"cross_entropy": _cross_entropy, "nll_loss": _nll, "mse_loss": PROPS_LOSS["mse_loss"],
               "rmse_loss": _rmse, "linear_cross_entropy": _linear_ce}
for _key in dict.fromkeys(_loss_key(c.id) for c in LOSS_CASES):
    _cases = [c for c in LOSS_CASES if _loss_key(c.id) == _key]
    register(OpInfo(
        _key, "loss", None, None,
        (lambda cs: lambda purpose: [Sample(c.id, c.arrays, c.grads, c.call, c.ref) for c in cs])(_cases),
        fwd_tol={F64: (1e-10, 1e-12), F32: (2e-5, 2e-5)}, nc_tol=((1e-12, 1e-14), (1e-12, 1e-14)),
        f32_fwd=(2e-5, 2e-5), f32_grad=(2e-4, 2e-5, False),
        hypothesis=_LOSS_PROPS.get(_key, PROPS_LOSS.get(_key))))


# ---------------------------------------------------------------------------- the error table's rows
# ERROR_ROWS (above) are the error-table lines; each names the op tag its errors carry.
# ---------------------------------------------------------------------------- devices, from the dispatch table
# An OpInfo runs on every device where nnfast._dispatch has its op's kernels: the op is the
# longest "_"-prefix of the OpInfo's name that is a dispatch op (gelu_tanh -> gelu,
# batch_norm_2d -> batch_norm), or an alias below. So the cuda column follows the build:
# a family's ops are tested on cuda once its csrc/cuda/<family>.cu is compiled.
_DISPATCH_ALIAS = {"instance_norm": "group_norm"}


def dispatch_op(name: str) -> str:
    if name in _DISPATCH_ALIAS:
        return _DISPATCH_ALIAS[name]
    parts = name.split("_")
    for k in range(len(parts), 0, -1):
        cand = "_".join(parts[:k])
        if cand in _dispatch._TABLE:
            return cand
    raise KeyError(f"OpInfo {name!r} names no op of nnfast._dispatch")


# Families with many ops keep their entries in tests/opinfo_<family>.py (conv, pool, embedding,
# rnn, attention): each imports what it needs from here and calls register(); imported here so
# REGISTRY is complete before the device columns below are filled in.
import importlib as _importlib  # noqa: E402
import pathlib as _pathlib  # noqa: E402

for _path in sorted(_pathlib.Path(__file__).parent.glob("opinfo_*.py")):
    _importlib.import_module(_path.stem)

for _op in REGISTRY:
    _d = dispatch_op(_op.name)
    _op.devices = tuple(dict.fromkeys(tuple(_op.devices) + tuple(
        dev for dev in _dispatch.DEVICES if _d in _dispatch.ops(dev))))
    assert _op.devices, _op.name

# Samples larger than this (elements over all arrays) are skipped on the emulated cuda
# device, which runs kernels ~10-100x slower than the CPU kernels (csrc/cuda/emu/README.md).
EMULATED_MAX_ELEMENTS = 1 << 15


def too_big_for_device(sample, device: str) -> bool:
    return (device == "cuda" and _dispatch.EMULATED
            and sum(np.asarray(a).size for a in sample.arrays.values()) > EMULATED_MAX_ELEMENTS)
