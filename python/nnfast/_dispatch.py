"""The one dispatch point: a table op -> {device: kernels}, and array helpers per device.

Every op of a layer, loss or optimizer fetches its kernels here::

    K = kernels("layer_norm", x, weight, bias)   # all arrays on one device
    K.layer_norm_forward(y, mean, rstd, x2, w, b, eps, rms)

``K`` is a kernel set precomputed at import: its attributes are exactly the
kernels registered for that op on that device (another attribute raises
AttributeError naming the op, so the table cannot silently be incomplete).
The device comes from the arrays (``device_of``: NumPy -> cpu, CuPy -> cuda);
mixed devices raise RuntimeError, and an op with no kernels on a device raises
``NotImplementedError("[op] has no kernel on cuda")`` -- from here, nowhere
else. Nothing silently falls back to NumPy math or to another device.

How to register an op
---------------------
Add one line to ``_TABLE`` below: ``"my_op": _op(FAMILY, cpu=(kernel names...))``
(a pointwise activation of the C++ list needs none: its entry is generated),
naming every ``nnfast._C`` function the op's forward and backward call, and call
``kernels("my_op", *arrays)`` at the call site (use the same name in its error
messages). tests/test_dispatch.py checks that every name exists in the kernel
module; then regenerate the README table (``nnfast ops --write README.md``).

How an op gets its cuda kernels
-------------------------------
CUDA kernels keep the CPU kernels' names (``nnfast::cuda`` mirrors ``nnfast::cpu``) and
the build compiles the binding files a second time into ``nnfast._C_cuda`` for every
family that has a ``csrc/cuda/<family>.cu``. The cuda column is therefore computed at
import: an op runs on cuda when ``_C_cuda`` exports every one of its ``cpu=`` kernels
(an explicit ``cuda=`` tuple overrides that). Nothing to edit here when a family lands.

Array helpers
-------------
State and scratch arrays (optimizer moments, momentum buffers, step copies,
clip-grad copies) are allocated by the array module of their device:
``array_module(device)``, ``xp_of(a)``, ``empty``, ``zeros``, ``full``,
``ascontiguousarray``, ``kernel_ready``, ``contiguous``.
"""
from __future__ import annotations

import importlib
from typing import Any, Iterable, NamedTuple, Optional

import numpy as np

from ._native import _C

__all__ = [
    "DEVICES", "EMULATED", "kernels", "device_of", "register_array_type", "array_module", "xp_of", "is_cupy",
    "is_cuda", "to_host", "to_cuda", "mixed_devices",
    "empty", "zeros", "full", "ascontiguousarray", "contiguous", "kernel_ready", "ops",
    "markdown_table", "BINARY_CODES", "REDUCE_CODES", "FAST_PATHS", "block_fast_paths",
]

DEVICES = ("cpu", "cuda")


class _Op(NamedTuple):
    family: str
    cpu: tuple[str, ...]
    cuda: tuple[str, ...] = ()


def _op(family: str, cpu: tuple[str, ...], cuda: tuple[str, ...] = ()) -> _Op:
    return _Op(family, cpu, cuda)


def _ops(family: str, cpu: tuple[str, ...], *names: str) -> dict[str, _Op]:
    """Table entries for several ops that run the same kernels (e.g. the pointwise losses)."""
    return {name: _op(family, cpu=cpu) for name in names}


def _optimizers(*names: str) -> dict[str, _Op]:
    """Table entries for optimizers whose step is one ``<name>_step`` kernel (plus the finite check)."""
    return {name: _op(OPTIM, cpu=(name + "_step",) + _FINITE) for name in names}


# ---------------------------------------------------------------- the table
# Families, in the README's order.
DENSE, NORM, ACT, LOSS, REG, OPTIM, TENSOR = ("dense", "normalization", "activation", "loss", "regularization",
                                              "optimizer", "tensor arithmetic")
CONV, POOL, EMBED, RNN, ATTN = ("convolution", "pooling and resampling", "embedding", "recurrent", "attention")

_ACT = ("act_forward", "act_backward")
_LN = ("layer_norm_forward", "layer_norm_backward")
_PW = ("pointwise_loss", "pointwise_loss_backward")
_GLU = ("glu_forward", "glu_backward")
_SOFTMAX = ("softmax_forward", "softmax_backward")
_PENALTY = ("penalty_sum", "penalty_backward")
_FINITE = ("multi_tensor_all_finite",)  # every optimizer's skip_nonfinite check
_ADAM = ("adam_step",) + _FINITE

# Codes with no functional of their own: identity (a no-op) and gelu_tanh (F.gelu(approximate='tanh')).
_POINTWISE_ACTS = [info[0] for info in _C.ACT_INFO if info[0] not in ("identity", "gelu_tanh")]

_TABLE: dict[str, _Op] = {
    # dense layers (GEMM with fused bias / activation epilogues)
    "linear": _op(DENSE, cpu=("gemm", "act_backward", "bias_grad")),
    "matmul": _op(DENSE, cpu=("gemm",)),
    "bmm": _op(DENSE, cpu=("bmm",)),
    "dropout": _op(DENSE, cpu=("dropout_forward", "dropout_backward")),
    # normalizations
    "layer_norm": _op(NORM, cpu=_LN),
    "rms_norm": _op(NORM, cpu=_LN),
    "batch_norm": _op(NORM, cpu=("batch_norm_forward", "batch_norm_backward")),
    "group_norm": _op(NORM, cpu=("group_norm_forward", "group_norm_backward", "instance_norm_update_running")),
    "weight_norm": _op(NORM, cpu=("weight_norm_forward", "weight_norm_backward")),
    "spectral_norm": _op(NORM, cpu=("spectral_norm_forward", "spectral_norm_backward",
                                    "spectral_norm_power_iteration")),
    # activations
    "activation": _op(ACT, cpu=_ACT),
    # the pointwise activations of the C++ list (NNFAST_ACTIVATIONS, nnfast/common.h): one op each,
    # named as the F function (generated: a new activation needs no line here)
    **{name: _op(ACT, cpu=_ACT) for name in _POINTWISE_ACTS},
    "relu6": _op(ACT, cpu=_ACT),
    "prelu": _op(ACT, cpu=("prelu_forward", "prelu_backward")),
    "swish": _op(ACT, cpu=("swish_forward", "swish_backward")),
    **_ops(ACT, _GLU, "glu", "swiglu"),
    **_ops(ACT, _SOFTMAX, "softmax", "log_softmax"),
    **_ops(ACT, ("step_forward",), "step", "sign"),
    # losses
    "cross_entropy": _op(LOSS, cpu=("cross_entropy", "cross_entropy_prob", "loss_scale_grad")),
    "nll_loss": _op(LOSS, cpu=("nll_loss", "nll_loss_backward")),
    "linear_cross_entropy": _op(LOSS, cpu=("linear_cross_entropy", "linear_cross_entropy_backward")),
    **_ops(LOSS, _PW, "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "perceptron_loss"),
    "rmse_loss": _op(LOSS, cpu=("rmse_loss", "pointwise_loss_backward")),
    # regularization and gradient utilities
    **_ops(REG, _PENALTY, "l1_penalty", "l2_penalty"),
    "clip_grad_norm_": _op(REG, cpu=("multi_tensor_norm", "multi_tensor_scale")),
    "clip_grad_value_": _op(REG, cpu=("multi_tensor_clamp",)),
    "zero_grad": _op(REG, cpu=("multi_tensor_zero",)),
    # optimizer steps (one fused multi-tensor kernel per param group)
    **_optimizers("sgd"),
    **_ops(OPTIM, _ADAM, "adam", "adamw"),
    **_optimizers("adagrad", "rmsprop", "lion", "lamb", "adabound"),
    **_optimizers("adadelta", "adamax", "nadam", "radam", "asgd"),
    # the tape's tensor arithmetic (autograd/basic_ops.py): broadcasting binary ops, reductions
    # over dims (max / min also give argmax / argmin and scatter their gradient back), casts
    # (binary_new: binary_op into a fresh array, the operators' CPU fast path; NumPy-only, so not on cuda)
    **{name: _op(TENSOR, cpu=("binary_op", "binary_new"), cuda=("binary_op",)) for name in ("add", "sub", "mul", "div")},
    **_ops(TENSOR, ("reduce_dim",), "sum", "mean"),
    **_ops(TENSOR, ("reduce_dim", "scatter_dim"), "max", "min"),
    "cast": _op(TENSOR, cpu=("cast",)),
    "convert": _op(TENSOR, cpu=("convert",)),  # bfloat16 <-> float32 / float64 (amp/_convert.py)
    # convolution (implicit GEMM on the packed GEMM)
    # (the *_bf16 kernels: autocast's conv on the bf16 GEMM, amp/_conv_bf16.py; NumPy-only, so not on cuda)
    **{name: _op(CONV, cpu=("conv2d_forward", "conv2d_backward", "conv2d_forward_bf16", "conv2d_backward_bf16"),
                 cuda=("conv2d_forward", "conv2d_backward")) for name in ("conv1d", "conv2d")},
    "conv_transpose2d": _op(CONV, cpu=("conv_transpose2d_forward", "conv_transpose2d_backward",
                                       "conv_transpose2d_forward_bf16", "conv_transpose2d_backward_bf16"),
                            cuda=("conv_transpose2d_forward", "conv_transpose2d_backward")),

    # pooling, upsampling and pixel shuffle
    "max_pool2d": _op(POOL, cpu=("max_pool2d_forward", "max_pool2d_backward")),
    "max_unpool2d": _op(POOL, cpu=("max_unpool2d_forward", "max_unpool2d_backward")),
    "avg_pool2d": _op(POOL, cpu=("avg_pool2d_forward", "avg_pool2d_backward")),
    "adaptive_avg_pool2d": _op(POOL, cpu=("adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward")),
    "adaptive_max_pool2d": _op(POOL, cpu=("adaptive_max_pool2d_forward", "max_pool2d_backward")),
    "interpolate": _op(POOL, cpu=("interpolate_forward", "interpolate_backward")),
    **_ops(POOL, ("pixel_shuffle",), "pixel_shuffle", "pixel_unshuffle"),

    # embedding (gather, deterministic scatter-add)
    "embedding": _op(EMBED, cpu=("embedding_forward", "embedding_backward", "embedding_renorm")),
    "embedding_bag": _op(EMBED, cpu=("embedding_bag_forward", "embedding_bag_backward", "embedding_renorm")),

    # recurrent layers (one GEMM per step + fused gate kernels)
    # (the lstm2 pair: the opt-in two-layer LSTM wavefront, NNFAST_RNN_WAVEFRONT=1; cpu only)
    "rnn": _op(RNN, cpu=("rnn_forward", "rnn_backward", "lstm2_forward", "lstm2_backward"),
               cuda=("rnn_forward", "rnn_backward")),

    # attention (fused scaled dot-product attention)
    # (the *_bf16 pair: autocast's attention on the bf16 GEMM, amp/_attention_bf16.py; cpu only)
    "scaled_dot_product_attention": _op(ATTN, cpu=("sdpa_forward", "sdpa_backward", "sdpa_forward_bf16",
                                                   "sdpa_backward_bf16"), cuda=("sdpa_forward", "sdpa_backward")),

}


# The tensor kernels' op codes: op name -> its position in the C++ list (NNFAST_BINARY_OPS /
# NNFAST_REDUCE_OPS in nnfast/tensor.h), which the bindings export in order.
BINARY_CODES: dict[str, int] = {name: code for code, name in enumerate(_C.TENSOR_BINARY_OPS)}
REDUCE_CODES: dict[str, int] = {name: code for code, name in enumerate(_C.TENSOR_REDUCE_OPS)}


def _cuda_backend() -> Any:
    """The CUDA extension module ``nnfast._C_cuda``, when this build has one (EMULATE, or nvcc)."""
    if not getattr(_C, "cuda_compiled", lambda: False)():
        return None
    try:
        return importlib.import_module(__package__ + "._C_cuda")
    except ImportError:
        return None


# device -> the module its kernels live in
_BACKENDS: dict[str, Any] = {"cpu": _C, "cuda": _cuda_backend()}
EMULATED = bool(_BACKENDS["cuda"] is not None and getattr(_BACKENDS["cuda"], "emulated", False))


def _cuda_names(entry: _Op) -> tuple[str, ...]:
    """The cuda kernels of an op: its explicit ``cuda=`` tuple, else its cpu kernels when
    ``_C_cuda`` exports all of them (a family is on cuda once its .cu file is compiled)."""
    module = _BACKENDS["cuda"]
    if module is None:
        return ()
    names = entry.cuda or entry.cpu
    return names if all(hasattr(module, n) for n in names) else ()


_TABLE = {op: e._replace(cuda=_cuda_names(e)) for op, e in _TABLE.items()}


# ---------------------------------------------------------------- kernel sets
class KernelSet:
    """The kernels of one op on one device, as attributes (built once, at import)."""

    def __init__(self, op: str, device: str, module: Any, names: Iterable[str]) -> None:
        self.__dict__["_op"] = op
        self.__dict__["_device"] = device
        for n in names:
            self.__dict__[n] = getattr(module, n)

    def names(self) -> list[str]:
        return sorted(k for k in self.__dict__ if not k.startswith("_"))

    def __getattr__(self, name: str) -> Any:  # only reached when the attribute is missing
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"[{self._op}] kernel {name!r} is not registered for this op on {self._device} in "
            f"nnfast._dispatch (registered: {', '.join(self.names())})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("kernel sets are read-only")

    def __repr__(self) -> str:
        return f"<kernels of {self._op!r} on {self._device}: {', '.join(self.names())}>"


def _build(device: str) -> dict[str, KernelSet]:
    module = _BACKENDS.get(device)
    out = {}
    for op, entry in _TABLE.items():
        names = getattr(entry, device)
        if names and module is not None:
            out[op] = KernelSet(op, device, module, names)
    return out


_KERNELS: dict[str, dict[str, KernelSet]] = {d: _build(d) for d in DEVICES}
_CPU_KERNELS = _KERNELS["cpu"]


# ---------------------------------------------------------------- fast paths
# The hot ops (F.relu & co, F.linear, cross_entropy, tensor + - * /) run their CPU kernels inline
# for plain float32/float64 NumPy operands, skipping the generic Function.apply. This flag is the
# one switch that turns every such fast path off: anomaly mode and autocast call
# block_fast_paths for the length of their region, so each op takes its full path (where the
# anomaly checks and the autocast cast sit).
FAST_PATHS: list[bool] = [True]
_FAST_BLOCKERS: set[str] = set()


def block_fast_paths(reason: str, blocked: bool = True) -> None:
    """Turn the ops' fast paths off while any ``reason`` holds ("anomaly", "autocast", ...):
    ``block_fast_paths("autocast")`` on entering a region, ``block_fast_paths("autocast", False)``
    on leaving it."""
    if blocked:
        _FAST_BLOCKERS.add(reason)
    else:
        _FAST_BLOCKERS.discard(reason)
    FAST_PATHS[0] = not _FAST_BLOCKERS


# ---------------------------------------------------------------- devices
def is_cupy(a: Any) -> bool:
    return type(a).__module__.startswith("cupy")


# array type -> device; filled on first sight of a type (and by register_array_type)
_TYPE_DEVICE: dict[type, str] = {np.ndarray: "cpu"}
if EMULATED:
    from ._emulated import EmulatedArray as _EmulatedArray

    _TYPE_DEVICE[_EmulatedArray] = "cuda"


def register_array_type(cls: type, device: str) -> None:
    """Route arrays of type ``cls`` to ``device`` (used by emulation builds and tests)."""
    if device not in DEVICES:
        raise ValueError(f"expected a device in {DEVICES}, got {device!r}")
    _TYPE_DEVICE[cls] = device


def device_of(a: Any) -> str:
    """The device an array lives on ('cpu' or 'cuda'): the one place that decides it."""
    t = type(a)
    d = _TYPE_DEVICE.get(t)
    if d is None:
        d = "cuda" if t.__module__.startswith("cupy") else "cpu"
        _TYPE_DEVICE[t] = d
    return d


def mixed_devices(op: str, a: str, b: str) -> RuntimeError:
    """The error of an op whose arrays live on two devices: "[op] expected all tensors on cuda, got cpu"
    (an op that has a cuda operand runs on cuda; the other device is the stray one)."""
    expected, got = (b, a) if DEVICES.index(b) > DEVICES.index(a) else (a, b)
    return RuntimeError(f"[{op}] expected all tensors on {expected}, got {got}")


def _unknown(op: str, device: str) -> Exception:
    if op in _TABLE:
        return NotImplementedError(f"[{op}] has no kernel on {device}")
    return KeyError(f"[{op}] is not an op of nnfast's dispatch table (nnfast._dispatch._TABLE)")


def kernels(op: str, *arrays: Any, _cpu: dict[str, KernelSet] = _CPU_KERNELS,
            _ndarray: type = np.ndarray) -> KernelSet:
    """The kernels of ``op`` for the device of ``arrays`` (None entries are skipped).

    All arrays must live on one device; an op without kernels on that device
    raises NotImplementedError("[op] has no kernel on <device>"). (``_cpu`` and
    ``_ndarray`` are bound at definition, so the fast path reads no globals.)
    """
    for a in arrays:  # fast path: every array is a NumPy array (no list, no generator)
        if a is not None and type(a) is not _ndarray:
            break
    else:
        try:
            return _cpu[op]
        except KeyError:
            raise _unknown(op, "cpu") from None
    device = None
    for a in arrays:
        if a is None:
            continue
        d = device_of(a)
        if device is None:
            device = d
        elif d != device:
            raise mixed_devices(op, device, d)
    try:
        return _KERNELS[device or "cpu"][op]
    except KeyError:
        raise _unknown(op, device or "cpu") from None


# ---------------------------------------------------------------- array modules
def _cupy() -> Any:
    if EMULATED:  # the emulated device: NumPy whose results are cuda (host) arrays
        from ._emulated import xp

        return xp
    import cupy

    return cupy


_ARRAY_MODULES: dict[str, Any] = {"cpu": np, "cuda": None}  # cuda: CuPy, imported on first use


def array_module(device: str) -> Any:
    """The array module that allocates on ``device`` (numpy for cpu, cupy for cuda)."""
    xp = _ARRAY_MODULES.get(device)
    if xp is None:
        if device != "cuda":
            raise ValueError(f"expected a device in {DEVICES}, got {device!r}")
        xp = _ARRAY_MODULES["cuda"] = _cupy()
    return xp


def xp_of(a: Any) -> Any:
    """The array module (numpy or cupy) that owns ``a``."""
    if type(a) is np.ndarray:
        return np
    return array_module(device_of(a))


def is_cuda(a: Any) -> bool:
    """True for an array on the cuda device (CuPy, or an emulated cuda array)."""
    return type(a) is not np.ndarray and device_of(a) == "cuda"


def to_host(a: Any) -> Any:
    """A host (NumPy) copy of a cuda array; cpu arrays are returned as they are."""
    if type(a) is np.ndarray or not is_cuda(a):
        return a
    return a.get()


def to_cuda(a: Any) -> Any:
    """A cuda copy of a host array (CuPy on a GPU, an emulated cuda array under emulation)."""
    if is_cuda(a):
        return a
    if EMULATED:
        from ._emulated import to_device

        return to_device(a)
    return _cupy().asarray(a)


def empty(shape: Any, dtype: Any, device: str = "cpu") -> Any:
    """An uninitialised C-contiguous array on ``device``."""
    return array_module(device).empty(shape, dtype=dtype)


def zeros(shape: Any, dtype: Any, device: str = "cpu") -> Any:
    """A C-contiguous array of zeros on ``device``."""
    return array_module(device).zeros(shape, dtype=dtype)


def full(shape: Any, fill_value: float, dtype: Any, device: str = "cpu") -> Any:
    """A C-contiguous array filled with ``fill_value`` on ``device``."""
    return array_module(device).full(shape, fill_value, dtype=dtype)


def ascontiguousarray(a: Any) -> Any:
    """``a`` as a C-contiguous array on its own device (a copy only when needed)."""
    return array_module(device_of(a)).ascontiguousarray(a)


def kernel_ready(a: Any) -> Any:
    """``a`` when C-contiguous and aligned to its itemsize (as the fused kernels need), else a copy
    that is, made on ``a``'s device."""
    f = a.flags
    if f.c_contiguous and getattr(f, "aligned", True):
        return a
    return array_module(device_of(a)).array(a, order="C", copy=True)


def contiguous(a: Any) -> Any:
    """A C-contiguous view, copying only when needed (layout, not math)."""
    if isinstance(a, np.generic):  # arithmetic on 0-d arrays gives NumPy scalars; kernels take arrays
        return np.asarray(a)
    return a if a.flags.c_contiguous else ascontiguousarray(a)


# ---------------------------------------------------------------- the README table
def ops(device: Optional[str] = None) -> list[str]:
    """Op names of the table; with ``device``, those that have kernels there."""
    if device is None:
        return list(_TABLE)
    return [op for op, e in _TABLE.items() if getattr(e, device)]


_FAMILY_ORDER = (DENSE, CONV, POOL, EMBED, RNN, ATTN, NORM, ACT, LOSS, REG, OPTIM, TENSOR)

# What a "has kernels" cell says: where those kernels were verified. The cuda kernels
# have run under the SIMT emulator (CI) and not yet on a GPU (bench/gpu_check.sh does that).
_VERIFIED = {"cpu": "yes", "cuda": "emulated; not yet run on a GPU"}


def markdown_table() -> str:
    """The README's per-device table of ops, generated from the dispatch table: one row per
    family and run of ops (in table order) available on the same devices."""
    lines = ["| family | ops | " + " | ".join(DEVICES) + " |", "|---|---|" + "---|" * len(DEVICES)]
    for family in _FAMILY_ORDER:
        rows: list[tuple[list[str], tuple[bool, ...]]] = []
        for op, e in _TABLE.items():
            if e.family != family:
                continue
            where = tuple(bool(getattr(e, d)) for d in DEVICES)
            if rows and rows[-1][1] == where:
                rows[-1][0].append(op)
            else:
                rows.append(([op], where))
        for names, where in rows:
            cells = [(_VERIFIED[d] if w else "no kernel") for d, w in zip(DEVICES, where)]
            lines.append(f"| {family} | " + ", ".join(f"`{n}`" for n in names) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- ops-table:begin (generated by `nnfast ops --write README.md`; do not edit) -->"
README_END = "<!-- ops-table:end -->"


def readme_with_table(text: str) -> str:
    """``text`` (README.md) with the part between the ops-table markers replaced by ``markdown_table()``."""
    i, j = text.find(README_BEGIN), text.find(README_END)
    if i < 0 or j < i:
        raise ValueError("README.md lacks the ops-table markers")
    return text[:i + len(README_BEGIN)] + "\n" + markdown_table() + text[j:]
