"""``nnfast.autocast``: PyTorch's automatic mixed precision (bfloat16) for nnfast's ops.

Each functional op that autocast knows carries ``@amp_op("name")`` (one line). Outside a region
and with no bfloat16 input the wrapper costs one attribute test and calls the op. Inside a region
(or with a bfloat16 input) it applies the op's policy from ``_table.POLICY``:

- LOWER (linear, matmul, conv, attention, prelu): float32 inputs are cast to bfloat16 (a leaf
  parameter's cast is cached for the region, as PyTorch's ``cache_enabled``). ``linear`` runs
  nnfast's bf16 GEMM straight on the float32 master weight (the GEMM kernel with ``precision="bf16"``:
  its packing rounds it to bf16, accumulation is float32, the output is stored bf16) so no bf16 copy
  of the weight is made and its gradient lands in float32. matmul / mm / bmm take bf16 operands
  in the same GEMM. conv1d / conv2d / conv_transpose2d on CPU tensors run their forward and both
  backward products on the bf16 GEMM too (``_conv_bf16``: patches gathered straight into bf16,
  float32 accumulation, float32 bias, bf16 output; NNFAST_AMP_CONV=0 restores the route below).
  scaled_dot_product_attention on CPU tensors runs its fused kernel's tile products on the bf16
  GEMM (``_attention_bf16``; NNFAST_AMP_ATTENTION=0 restores the route below).
  Conv on cuda tensors calls the GEMM inside float32 / float64 C++ kernels:
  autocast feeds them the bf16-rounded inputs widened to float32 and rounds the output to bf16,
  so dtypes and input rounding match PyTorch's, the accumulation is float32.
- FP32 (losses): bfloat16 inputs are cast to float32.
- everything else: the input's dtype; a bfloat16 input runs the float32 kernel between two
  conversions (nnfast's ``_C.convert``) and gives a bfloat16 output, with bfloat16 gradients.

float64 tensors are never cast. Master weights and optimizer state stay float32.
"""
from __future__ import annotations

import functools
import math
import threading
from typing import Any, Callable, Optional, TypeVar, cast

import numpy as np

from .. import _dispatch
from .._dispatch import block_fast_paths, contiguous, kernels, xp_of
from ..autograd.function import Function
from ..tensor import _BFLOAT16, Tensor, float32
from . import _attention_bf16, _conv_bf16, _convert, _table, _weight_copies

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled",
           "set_autocast_dtype", "is_autocast_cache_enabled", "set_autocast_cache_enabled",
           "clear_autocast_cache", "amp_op", "lower_operands", "bf16_matmul_raw"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_DEVICES = ("cpu", "cuda")


class _State(threading.local):
    """Per-thread autocast state, as PyTorch's (a region in one thread leaves others alone)."""

    def __init__(self) -> None:
        self.enabled = {"cpu": False, "cuda": False}
        self.dtype = {"cpu": _BFLOAT16, "cuda": _BFLOAT16}
        self.active = False  # any device enabled and not suspended inside an op: the wrappers' fast test
        self.cache_enabled = True
        self.depth = 0
        # id(param) -> (param, its array, its version, the bf16 cast)
        self.cache: dict[int, tuple[Tensor, Any, int, Tensor]] = {}


_state = _State()


def _refresh() -> None:
    _state.active = _state.enabled["cpu"] or _state.enabled["cuda"]
    # The ops' float32 fast paths (_dispatch.FAST_PATHS) step aside inside a region, so every
    # listed op goes through its autocast policy.
    block_fast_paths("autocast", bool(_state.active))


def _device_type(device_type: Any, op: str) -> str:
    d = str(getattr(device_type, "type", device_type))
    if d not in _DEVICES:
        raise ValueError(f"[{op}] expected device_type 'cpu' or 'cuda', got {device_type!r}")
    return d


def is_autocast_enabled(device_type: Any = "cpu") -> bool:
    """Whether autocast is on for ``device_type`` ("cpu" or "cuda") in this thread.

    Defaults: device_type="cpu" (PyTorch's argument-less form asks about the GPU; nnfast's about the CPU).
    """
    return bool(_state.enabled[_device_type(device_type, "is_autocast_enabled")])


def set_autocast_enabled(device_type: Any, enabled: bool) -> None:
    """Turn autocast on or off for ``device_type`` (what ``autocast`` does on entry and exit)."""
    _state.enabled[_device_type(device_type, "set_autocast_enabled")] = bool(enabled)
    _refresh()


def get_autocast_dtype(device_type: Any = "cpu") -> Any:
    """The lower-precision dtype autocast uses on ``device_type`` (nnfast.bfloat16).

    Defaults: device_type="cpu".
    """
    from ..tensor import dtype_of

    return dtype_of(_state.dtype[_device_type(device_type, "get_autocast_dtype")])


def set_autocast_dtype(device_type: Any, dtype: Any) -> None:
    """Set the lower-precision dtype of ``device_type``; only bfloat16 is supported."""
    _state.dtype[_device_type(device_type, "set_autocast_dtype")] = _check_dtype(dtype, "set_autocast_dtype")


def is_autocast_cache_enabled() -> bool:
    """Whether casts of leaf parameters are cached within an autocast region."""
    return bool(_state.cache_enabled)


def set_autocast_cache_enabled(enabled: bool) -> None:
    """Turn the region's cache of parameter casts on or off."""
    _state.cache_enabled = bool(enabled)


def clear_autocast_cache() -> None:
    """Drop the cached parameter casts (done when the outermost region exits)."""
    _state.cache.clear()


def _check_dtype(dtype: Any, op: str) -> Any:
    if _BFLOAT16 is None:  # pragma: no cover - ml_dtypes is a dependency
        raise RuntimeError(f"[{op}] expected the ml_dtypes package (bfloat16 storage)")
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d != _BFLOAT16:
        raise ValueError(f"[{op}] expected dtype nnfast.bfloat16 (the only autocast dtype nnfast supports), "
                         f"got {dtype!r}")
    return d


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


class autocast:
    """Context manager and decorator: run the ops inside in mixed precision (PyTorch's autocast).

    Inside, matmul-based ops (linear, matmul, conv, attention) compute in bfloat16 with float32
    accumulation and return bfloat16; losses run in float32; other ops keep their input's dtype
    (the table: ``nnfast.amp._table``). Parameters stay float32; backward runs outside or inside.

    Defaults: dtype=nnfast.bfloat16, enabled=True, cache_enabled=True.
    """

    def __init__(self, device_type: str = "cpu", dtype: Any = None, enabled: bool = True,
                 cache_enabled: Optional[bool] = None) -> None:
        self.device_type = _device_type(device_type, "autocast")
        self.fast_dtype = _check_dtype(_BFLOAT16 if dtype is None else dtype, "autocast")
        self._enabled = bool(enabled)
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._prev: list[tuple[bool, Any, bool]] = []

    def __enter__(self) -> "autocast":
        st = _state
        self._prev.append((st.enabled[self.device_type], st.dtype[self.device_type], st.cache_enabled))
        st.enabled[self.device_type] = self._enabled
        st.dtype[self.device_type] = self.fast_dtype
        st.cache_enabled = self._cache_enabled
        st.depth += 1
        _refresh()
        return self

    def __exit__(self, *exc: Any) -> None:
        st = _state
        enabled, dt, cache_enabled = self._prev.pop()
        st.enabled[self.device_type], st.dtype[self.device_type], st.cache_enabled = enabled, dt, cache_enabled
        st.depth -= 1
        if st.depth == 0:
            st.cache.clear()  # as PyTorch: the parameter casts live for the outermost region
        _refresh()

    def __call__(self, fn: _Fn) -> _Fn:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.device_type, self.fast_dtype, self._enabled, self._cache_enabled):
                return fn(*args, **kwargs)

        return cast(_Fn, wrapper)


# ---------------------------------------------------------------- casts
def _to_lower(t: Tensor) -> Tensor:
    """A float32 tensor cast to bf16; a leaf parameter's cast is reused within the region while the
    parameter keeps its array and version (an in-place write -- an optimizer step, load_state_dict,
    ``mul_`` under no_grad -- bumps the version, so a region spanning a step casts afresh)."""
    st = _state
    if not (st.cache_enabled and t.requires_grad and t.grad_fn is None):
        return t.to(_BFLOAT16)
    hit = st.cache.get(id(t))
    if hit is not None and hit[0] is t and hit[1] is t._data and hit[2] == t._vc[0]:
        return hit[3]
    low = t.to(_BFLOAT16)
    st.cache[id(t)] = (t, t._data, t._vc[0], low)
    return low


def _map(args: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """``fn`` applied to every Tensor in ``args`` (tuples / lists walked one level deep)."""
    out = []
    for a in args:
        if isinstance(a, Tensor):
            a = fn(a)
        elif isinstance(a, (tuple, list)) and any(isinstance(x, Tensor) for x in a):
            a = type(a)(fn(x) if isinstance(x, Tensor) else x for x in a)
        out.append(a)
    return out


def _tensors(args: Any, kwargs: dict[str, Any]) -> list[Tensor]:
    found: list[Tensor] = []
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, Tensor):
            found.append(a)
        elif isinstance(a, (tuple, list)):
            found.extend(x for x in a if isinstance(x, Tensor))
    return found


def _widen(t: Tensor) -> Tensor:
    return t.to(float32) if t._data.dtype == _BFLOAT16 else t


def _narrow(t: Tensor) -> Tensor:
    return t.to(_BFLOAT16) if t._data.dtype == _F32 else t


def _narrow_outputs(r: Any) -> Any:
    if isinstance(r, Tensor):
        return _narrow(r)
    if isinstance(r, tuple):
        return type(r)(_narrow_outputs(x) for x in r) if not hasattr(r, "_fields") else \
            type(r)(*(_narrow_outputs(x) for x in r))
    if isinstance(r, list):
        return [_narrow_outputs(x) for x in r]
    return r


def _suspended(fn: Callable[..., Any], args: Any, kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)`` with autocast off (the op's own inner calls are not re-cast)."""
    st = _state
    saved = st.active
    st.active = False
    try:
        return fn(*args, **kwargs)
    finally:
        st.active = saved


def _via_float32(fn: Callable[..., Any], args: Any, kwargs: dict[str, Any]) -> Any:
    """Run a float32 kernel on bfloat16 inputs: widen them (exact), run, round float outputs to bf16."""
    args = _map(args, _widen)
    kwargs = dict(zip(kwargs, _map(kwargs.values(), _widen)))
    return _narrow_outputs(_suspended(fn, args, kwargs))


def _run(name: str, fn: Callable[..., Any], args: Any, kwargs: dict[str, Any]) -> Any:
    if name == "linear" and _state.active:
        y = _linear_autocast_cpu(args, kwargs)  # the common case (an MLP layer), without the generic walk
        if y is not None:
            return y
    ts = _tensors(args, kwargs)
    if not ts:
        return fn(*args, **kwargs)
    dev = "cuda" if ts[0].is_cuda else "cpu"
    policy = _table.POLICY.get(name, _table.INPUT)
    has_bf16 = any(t._data.dtype == _BFLOAT16 for t in ts)
    if _state.active and _state.enabled[dev] and not any(t._data.dtype == _F64 for t in ts):
        if policy == _table.LOWER:
            if name == "linear":
                return _suspended(_linear_lower, args, kwargs)
            if name in _conv_bf16.OPS and _conv_bf16.ENABLED[0] and dev == "cpu":
                y = _suspended(_conv_bf16.conv_autocast, (name, args, kwargs), {})
                if y is not None:
                    return y
            if name == _attention_bf16.OP and _attention_bf16.ENABLED[0] and dev == "cpu":
                y = _suspended(_attention_bf16.attention_autocast, (args, kwargs), {})
                if y is not None:
                    return y
            args = _map(args, lambda t: _to_lower(t) if t._data.dtype == _F32 else t)
            kwargs = dict(zip(kwargs, _map(kwargs.values(), lambda t: _to_lower(t) if t._data.dtype == _F32 else t)))
            if name in _NATIVE_BF16:
                return _suspended(fn, args, kwargs)
            return _via_float32(fn, args, kwargs)
        if policy == _table.FP32:
            return _suspended(fn, _map(args, _widen), dict(zip(kwargs, _map(kwargs.values(), _widen))))
    if has_bf16:
        if name in _NATIVE_BF16:
            return _suspended(fn, args, kwargs)
        if name in _conv_bf16.OPS and _conv_bf16.ENABLED[0] and all(t._data.dtype == _BFLOAT16 for t in ts):
            # bf16 input and parameters (a model cast with .to(bfloat16)): the bf16 GEMM, as PyTorch's
            # bf16 conv; mixed float32 / bf16 operands keep the float32 route below
            y = _suspended(_conv_bf16.conv_autocast, (name, args, kwargs), {})
            if y is not None:
                return y
        if name == _attention_bf16.OP and _attention_bf16.ENABLED[0] and dev == "cpu":
            y = _suspended(_attention_bf16.attention_bf16_inputs, (args, kwargs), {})  # all of q / k / v bf16
            if y is not None:
                return y
        if name in _ACT_BF16:
            y = _act_bf16(name, args, kwargs)
            if y is not None:
                return y
        return _via_float32(fn, args, kwargs)
    return _suspended(fn, args, kwargs) if _state.active else fn(*args, **kwargs)


def amp_op(name: str) -> Callable[[_Fn], _Fn]:
    """Decorator for a functional op: autocast's policy for ``name`` and bfloat16 inputs support."""

    st, bf16 = _state, _BFLOAT16

    def deco(fn: _Fn) -> _Fn:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not st.active:  # the common case, kept to a few attribute reads
                try:
                    plain = args[0]._data.dtype is not bf16  # ml_dtypes' dtype is one object
                except (IndexError, AttributeError):
                    plain = True
                if plain:
                    return fn(*args, **kwargs)
            return _run(name, fn, args, kwargs)

        return cast(_Fn, wrapper)

    return deco


def lower_operands(a: Any, b: Any) -> tuple[Any, Any]:
    """matmul's operands under autocast: two float32 tensors become bfloat16 (LOWER policy)."""
    st = _state
    if not st.active or not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        return a, b
    if a._data.dtype == _F64 or b._data.dtype == _F64 or not st.enabled["cuda" if a.is_cuda else "cpu"]:
        return a, b
    return (_to_lower(a) if a._data.dtype == _F32 else a), (_to_lower(b) if b._data.dtype == _F32 else b)


def bf16_matmul_raw(a: Any, b: Any, matmul_raw: Callable[..., Any]) -> Any:
    """The matmul of two bf16 arrays, bf16 out: one bf16 GEMM for 2-D CPU operands; else the float32
    GEMM on the widened operands (exact: they are bf16 values; float32 accumulation either way)."""
    from ..autograd.basic_ops import cast as cast_array

    if a.ndim == 2 and b.ndim == 2 and type(a) is np.ndarray and _gemm_has_bf16():
        out = np.empty((a.shape[0], b.shape[1]), dtype=_BFLOAT16)
        kernels("matmul", out, a, b).gemm(out, a, b, 1.0, 0.0, precision="bf16")
        return out
    return cast_array(matmul_raw(cast_array(a, _F32), cast_array(b, _F32)), _BFLOAT16)


# Ops whose kernels take bfloat16 operands themselves (the bf16 GEMM); the rest go via float32.
_NATIVE_BF16 = frozenset({"matmul", "mm", "bmm"})


# ---------------------------------------------------------------- linear on the bf16 GEMM
@functools.lru_cache(maxsize=None)
def _gemm_has_bf16() -> bool:
    """Whether this build's GEMM takes ``precision="bf16"`` (nnfast's bf16 GEMM)."""
    doc = getattr(kernels("linear").gemm, "__doc__", "") or ""
    return "precision" in doc


# Names from modules that import this one (nn.functional, autograd.basic_ops), bound once on the
# first bf16 linear / activation instead of by a function-level import in every forward and backward
# (each such import costs a module-lock round trip: ~7 per layer per step, ~25 us per MLP step).
_cast_array: Any = None
codes: Any = None
_param_grads: Any = None
_anomaly: Any = None
_grad_mode: Any = None
_record_node: Any = None
_CPU = _dispatch._CPU_KERNELS  # op -> cpu kernel set (read per call: tests may patch a kernel)
_ndarray, _wrap = np.ndarray, Tensor._wrap


def _bind_late() -> None:
    global _cast_array, codes, _param_grads, _anomaly, _grad_mode, _record_node
    from ..autograd import anomaly, grad_mode
    from ..autograd.basic_ops import cast
    from ..autograd.function import record_node
    from ..nn.functional import _act_codes
    from ..nn.functional._linear import linear_param_grads

    _cast_array, _param_grads, _anomaly, _grad_mode, _record_node = cast, linear_param_grads, anomaly, grad_mode, record_node
    codes = _act_codes


# Whether LinearBF16Function rounds a float32 x / weight to bf16 once before its GEMMs (else each
# GEMM's packing converts it): switches for same-process before/after timing (bench/bench_bf16_step.py).
# Both stay on: saving the cast is PyTorch's autocast behaviour (an in-place update of the master
# between forward and backward neither raises nor changes dx; with "weight" off backward would
# save the master and raise). The cost is a wash: the one extra pass (_C.convert, parallel,
# memory-bound: ~0.1 ms per 1M weights at 2 threads) is repaid by the bf16 packs of the forward
# and dx GEMMs (A/B in process CPU time, MLP step, 1 and 2 threads: within +-1.5 %).
_ROUND_ONCE = {"x": True, "weight": True}


class LinearBF16Function(Function):
    """y = act(x @ W^T + b) in bf16: x float32 or bf16, W and b the float32 master parameters.

    Forward rounds a float32 x and the weight to bf16 once (PyTorch's autocast casts both; the
    weight's cast is what backward's dx GEMM reads too, so it is converted once per step, not in
    each GEMM's packing), then runs one bf16 GEMM (float32 accumulation and epilogue) storing y in
    bf16. Backward works on a float32 dz: dx = dz @ W (bf16 GEMM, stored bf16 like x's own dtype)
    and dW += dz^T @ x (bf16 GEMM accumulating straight into W's float32 .grad). When x is the
    output of another bf16 linear with an activation (an MLP), the dx GEMM applies that layer's act'
    in its epilogue and stores its float32 dz instead, so the bf16 dy is never written, widened or
    passed through a separate act' kernel.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, act: int, a: float, b: float, w_low: Any = None) -> Any:
        if codes is None:
            _bind_late()
        if type(x) is _ndarray and type(weight) is _ndarray and (bias is None or type(bias) is _ndarray):
            K, xp = _CPU["linear"], np  # the cpu kernels, without the device lookup
        else:
            K, xp = kernels("linear", x, weight, bias), xp_of(x)
        lead = x.shape[:-1]
        x2 = x.reshape(math.prod(lead), x.shape[-1])
        # A float32 operand packed by the GEMM is converted in each packing (x: the forward's A and
        # the dW GEMM's B; W: the forward's transposed B, the slow one, and the dx GEMM's B): one
        # conversion each (nnfast's vectorised kernel) is cheaper, and backward keeps half the bytes.
        if _ROUND_ONCE["x"] and x2.dtype == _F32 and type(x2) is np.ndarray:
            x2 = _convert.convert_bf16(x2, _BFLOAT16)  # (the kernel's route of basic_ops.cast, directly)
        ctx.w_dtype = weight.dtype
        if w_low is not None:  # the weight's bf16 copy (_weight_copies: kept by Adam, or converted now)
            weight = w_low
        elif _ROUND_ONCE["weight"] and weight.dtype == _F32 and type(weight) is np.ndarray:
            weight = _convert.convert_bf16(weight, _BFLOAT16)
        if bias is not None:
            bias = contiguous(bias)
        out = xp.empty((x2.shape[0], weight.shape[0]), dtype=_BFLOAT16)
        aux = None
        if act not in codes.GRAD_FROM_OUTPUT:
            aux = xp.empty(out.shape, dtype=_F32)  # the pre-activation, kept float32 for act'
        K.gemm(out, x2, weight.T, 1.0, 0.0, bias, act, a, b, aux, precision="bf16")
        ctx.save_for_backward(x2, weight, out if aux is None else aux)
        ctx.act, ctx.a, ctx.b, ctx.has_bias, ctx.lead = act, a, b, bias is not None, lead
        ctx.x_dtype = x.dtype
        return out.reshape(lead + (weight.shape[0],))

    _dact_done = False  # set by the consumer whose dx GEMM already applied this node's act'

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        x2, weight, saved = ctx.saved_tensors
        if type(dy) is _ndarray:
            K, xp = _CPU["linear"], np
        else:
            K, xp = kernels("linear", dy), xp_of(dy)
        dz = dy.reshape(x2.shape[0], weight.shape[0])
        if ctx._dact_done:
            # The consumer's dx GEMM wrote dz = dy * act'(saved) in float32 straight from its
            # accumulators: no widening of dy, no act' pass.
            ctx._dact_done = False
        else:
            if dz.dtype != _F32:
                dz = _cast_array(dz, _F32)
            if ctx.act != codes.IDENTITY:
                if saved.dtype != _F32:
                    saved = _cast_array(saved, _F32)
                dz2 = xp.empty(dz.shape, dtype=_F32)
                K.act_backward(dz2, xp.ascontiguousarray(dz), saved, ctx.act, ctx.a, ctx.b)
                dz = dz2
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            prev = ctx._next[0]
            if _fusable_bf16(prev, x2.shape):
                # Our input is the bf16 output of a linear with an activation and dx is its whole
                # gradient: this GEMM's epilogue multiplies by its act' and stores its float32 dz.
                node: Any = prev
                dx = xp.empty(x2.shape, dtype=_F32)
                src = node.saved_tensors[0 if type(node) is ActivationBF16Function else 2]
                K.gemm(dx, dz, weight, 1.0, 0.0, None, node.act, node.a, node.b, None, src, precision="bf16")
                node._dact_done = True
            else:
                dx = xp.empty(x2.shape, dtype=ctx.x_dtype)
                K.gemm(dx, dz, weight, precision="bf16")
            dx = dx.reshape(ctx.lead + (weight.shape[1],))
        dw, db = _param_grads(ctx, K, xp, dz, x2, weight.shape, ctx.w_dtype, precision="bf16")
        return dx, dw, db


# ---------------------------------------------------------------- pointwise activations on bf16
# Activations (all parameters at their defaults) that run as one node on a bf16 input.
_ACT_BF16 = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "silu": "silu"}


class ActivationBF16Function(Function):
    """y = act(x) for a bf16 x, as one node: x widened, the float32 kernel, y rounded to bf16 (one
    rounding, as the three-node cast / op / cast it replaces). It saves the float32 y (or x) that
    act' reads, so backward widens nothing but dy. When x is the output of a bf16 linear and this
    node's gradient is all that linear gets, the float32 dx goes to it as it is (its backward takes
    float32 dz); and when the consumer is a bf16 linear, its dx GEMM applies act' (see
    ``_fusable_bf16``) and this node passes that float32 gradient on."""

    _dact_done = False

    @staticmethod
    def forward(ctx: Any, x: Any, act: int, a: float, b: float) -> Any:
        if codes is None:
            _bind_late()
        K = kernels("activation", x)
        xf = _cast_array(x, _F32)  # contiguous
        yf = np.empty_like(xf)
        K.act_forward(yf, xf, act, a, b)
        ctx.save_for_backward(yf if act in codes.GRAD_FROM_OUTPUT else xf)
        ctx.act, ctx.a, ctx.b = act, a, b
        return _cast_array(yf, _BFLOAT16)

    @staticmethod
    def backward(ctx: Any, dy: Any) -> Any:
        (saved,) = ctx.saved_tensors
        if ctx._dact_done:  # the consumer's dx GEMM applied act' already
            ctx._dact_done = False
            dx = dy
        else:
            dyf = _cast_array(dy, _F32) if dy.dtype != _F32 else np.ascontiguousarray(dy)
            dx = np.empty(saved.shape, dtype=_F32)
            kernels("activation", dyf).act_backward(dx, dyf, saved, ctx.act, ctx.a, ctx.b)
        # float32 only to a bf16 linear that gets no other gradient; otherwise x's own dtype
        prev: Any = ctx._next[0]
        if not (type(prev) is LinearBF16Function and prev._sole_consumer and prev._grad_hooks is None
                and prev._retained is None):
            dx = _cast_array(dx, _BFLOAT16)
        return dx


def _act_bf16(name: str, args: Any, kwargs: dict[str, Any]) -> Optional[Tensor]:
    """``relu(x)`` (and the others of _ACT_BF16) for a bf16 CPU tensor at default arguments, else None."""
    if codes is None:
        _bind_late()
    if len(args) > 2 or (len(args) == 2 and args[1] is not False) or any(
            k != "inplace" or v is not False for k, v in kwargs.items()):
        return None
    x = args[0]
    if not isinstance(x, Tensor) or type(x._data) is not np.ndarray or x._data.dtype != _BFLOAT16:
        return None
    code, a, b = codes.resolve(_ACT_BF16[name])
    return ActivationBF16Function.apply(x, code, a, b)


def _fusable_bf16(prev: Any, shape: tuple[int, ...]) -> bool:
    """Whether ``prev`` (the producer of a bf16 linear's input) is a bf16 linear with an activation
    whose act' can be folded into the GEMM making the input's gradient: that gradient is all it gets
    (one consumer, no hook or retain_grad that must see the bf16 gradient before act'), and its saved
    array has the input's 2-D shape and has not been freed. Its backward then takes the float32 dz."""
    anomaly = _anomaly
    node: Any = prev
    if type(prev) is ActivationBF16Function:  # act' from its float32 saved array
        return (node._sole_consumer and node._grad_hooks is None and node._retained is None
                and not node._released and not anomaly._enabled[0] and node.saved_tensors[0].shape == shape)
    if type(prev) is not LinearBF16Function:
        return False
    return (node.act != codes.IDENTITY and node._sole_consumer and node._grad_hooks is None
            and node._retained is None and not node._released and not anomaly._enabled[0]
            and node.saved_tensors[2].shape == shape and type(node.saved_tensors[2]) is np.ndarray)


_ACT_CODES: dict[Any, tuple[int, float, float]] = {}  # activation name -> codes.resolve(name)


def _linear_autocast_cpu(args: Any, kwargs: dict[str, Any]) -> Optional[Tensor]:
    """``linear`` inside a cpu region on float32 parameters and a float32 / bf16 NumPy input, by
    position or keyword: LinearBF16Function straight away (what ``_run`` -> ``_linear_lower`` end
    in); None for anything else, which then takes the general route (and its checks / errors)."""
    n = len(args)
    if n > 4 or not _state.enabled["cpu"]:
        return None
    try:
        input = args[0] if n > 0 else kwargs["input"]
        weight = args[1] if n > 1 else kwargs["weight"]
    except KeyError:
        return None
    bias = args[2] if n > 2 else kwargs.get("bias")
    activation = args[3] if n > 3 else kwargs.get("activation")
    if len(kwargs) + n > 4 or not (isinstance(input, Tensor) and isinstance(weight, Tensor)):
        return None
    x, w = input._data, weight._data
    if type(x) is not np.ndarray or type(w) is not np.ndarray or w.dtype != _F32 or w.ndim != 2 \
            or x.ndim < 1 or x.shape[-1] != w.shape[1] or x.dtype not in (_F32, _BFLOAT16) \
            or not (bias is None or (isinstance(bias, Tensor) and type(bias._data) is np.ndarray
                                     and bias._data.dtype == _F32)) or not _gemm_has_bf16():
        return None
    if codes is None:
        _bind_late()
    try:
        code, a, b = _ACT_CODES[activation]
    except (KeyError, TypeError):  # a new name (resolved once, then kept) or an unhashable spec
        if not (activation is None or isinstance(activation, str)):
            return None
        try:
            code, a, b = _ACT_CODES[activation] = codes.resolve(activation)
        except (TypeError, ValueError):  # the general route words the error
            return None
    # LinearBF16Function.apply's work for these known argument types, inline (no generic walk over
    # the arguments): forward on the arrays, then the node on the tape exactly as apply records it.
    bd = None if bias is None else bias._data
    ctx: Any = LinearBF16Function()
    saved = _state.active
    _state.active = False  # the node's own calls are not re-cast
    try:
        out = LinearBF16Function.forward(ctx, x, w, bd, code, a, b, _weight_low(weight))
    finally:
        _state.active = saved
    record = _grad_mode._enabled[0] and (input.requires_grad or weight.requires_grad
                                         or (bias is not None and bias.requires_grad))
    y = _wrap(out, record)
    if record:
        _record_node(ctx, (input, weight, bias, None, None, None), (x, w, bd, code, a, b), y)
    else:
        ctx.saved_tensors = ()
    if _anomaly._enabled[0]:
        _anomaly.check_forward("LinearBF16Function", out)
    return y


def _weight_low(weight: Tensor) -> Any:
    """The float32 NumPy weight's bf16 cast for LinearBF16Function (the copy Adam keeps when there is
    one, see _weight_copies), or None: the forward then converts it itself (or lets its GEMM's
    packing do it, with the round-once switch off)."""
    if not _ROUND_ONCE["weight"] or type(weight._data) is not np.ndarray or weight._data.dtype != _F32:
        return None
    return _weight_copies.weight_copy(weight)


def _linear_lower(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, activation: Any = None) -> Tensor:
    """F.linear under autocast: the bf16 GEMM on the float32 parameters (no bf16 weight copy)."""
    from ..nn.functional import _act_codes as codes
    from ..nn.functional._linear import linear

    if not all(isinstance(t, Tensor) for t in (input, weight) + (() if bias is None else (bias,))):
        return linear(input, weight, bias, activation)  # its own "[linear] expected ..." error
    ok = (weight._data.dtype == _F32 and (bias is None or bias._data.dtype == _F32)
          and input._data.dtype in (_F32, _BFLOAT16) and not input.is_cuda and _gemm_has_bf16())
    if not ok:  # no bf16 GEMM here: PyTorch's casts, then float32 kernels on the bf16-rounded values
        args = _map((input, weight, bias), lambda t: _to_lower(t) if t._data.dtype == _F32 else t)
        return cast(Tensor, _via_float32(linear, args + [activation], {}))
    w = weight._data
    x = input._data
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        return linear(input, weight, bias, activation)  # its own error message
    code, a, b = codes.resolve(activation)
    return LinearBF16Function.apply(input, weight, bias, code, a, b, w_low=_weight_low(weight))
