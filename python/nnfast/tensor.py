"""``nnfast.Tensor``: an array (NumPy on CPU, CuPy on GPU) plus its place on the tape."""
from __future__ import annotations

import builtins
import operator
import weakref
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union, overload

import numpy as np

from . import _malloc, _random  # noqa: F401  (_malloc: the allocator thresholds, at import)
from ._dispatch import is_cuda, is_cupy, to_cuda, to_host, xp_of
from .autograd import grad_mode

def _ml_bfloat16() -> Optional[np.dtype[Any]]:
    """NumPy's bfloat16 dtype from the ``ml_dtypes`` package (None when it is not installed)."""
    try:
        import importlib

        bf16: np.dtype[Any] = np.dtype(importlib.import_module("ml_dtypes").bfloat16)
        return bf16
    except ImportError:  # pragma: no cover - ml_dtypes is a dependency
        return None


_BFLOAT16 = _ml_bfloat16()


def _is_float(dt: Any) -> builtins.bool:
    """True for the floating-point dtypes (NumPy's float kinds and bfloat16)."""
    return builtins.bool(dt.kind == "f" or (_BFLOAT16 is not None and dt == _BFLOAT16))


class _DtypeMeta(type):
    def __instancecheck__(cls, obj: Any) -> builtins.bool:
        # ``t.dtype`` is a NumPy dtype: ``isinstance(t.dtype, nnfast.dtype)`` holds, as with torch.
        return type.__instancecheck__(cls, obj) or isinstance(obj, np.dtype)


class dtype(metaclass=_DtypeMeta):
    """A tensor element type, as ``torch.dtype`` (``nnfast.float32``, ``nnfast.long`` ...).

    It is its NumPy dtype under a PyTorch name: it compares and hashes equal to it
    (``x.dtype == nnfast.float32``), NumPy takes it wherever a dtype goes, and NumPy's attributes
    (``kind``, ``itemsize`` ...) read through.
    """

    __slots__ = ("dtype", "name")
    dtype: np.dtype[Any]
    name: str

    def __init__(self, np_dtype: Any, name: str) -> None:
        self.dtype = np.dtype(np_dtype)
        self.name = name

    @property
    def is_floating_point(self) -> builtins.bool:
        return _is_float(self.dtype)

    @property
    def is_complex(self) -> builtins.bool:
        return False

    @property
    def is_signed(self) -> builtins.bool:
        return self.dtype.kind != "u" and self.dtype.kind != "b"

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    def __eq__(self, other: object) -> builtins.bool:
        if other is None or isinstance(other, str):
            return False
        try:
            return builtins.bool(self.dtype == np.dtype(other))  # type: ignore[call-overload]
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __repr__(self) -> str:
        return "nnfast." + self.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dtype, name)

    def __reduce__(self) -> Any:
        return (_dtype_named, (self.name,))


def _dtype_named(name: str) -> "dtype":
    return DTYPES[name]


float32 = dtype(np.float32, "float32")
float64 = dtype(np.float64, "float64")
float16 = dtype(np.float16, "float16")
int8 = dtype(np.int8, "int8")
int16 = dtype(np.int16, "int16")
int32 = dtype(np.int32, "int32")
int64 = dtype(np.int64, "int64")
uint8 = dtype(np.uint8, "uint8")
bool_ = dtype(np.bool_, "bool")
float = float32  # noqa: A001 - mirrors torch.float
double = float64
half = float16
long = int64
short = int16

# Every dtype under each of its PyTorch names (nnfast/__init__ exports them all; ``int`` and
# ``bool`` are kept out of this module's globals so the builtins stay usable here).
DTYPES: dict[str, dtype] = {
    "float32": float32, "float": float32, "float64": float64, "double": float64, "float16": float16,
    "half": float16, "int64": int64, "long": int64, "int32": int32, "int": int32, "int16": int16,
    "short": int16, "int8": int8, "uint8": uint8, "bool": bool_, "bool_": bool_,
}
if _BFLOAT16 is not None:
    DTYPES["bfloat16"] = dtype(_BFLOAT16, "bfloat16")

# NumPy dtype -> its nnfast dtype (the canonical name: what repr shows)
_NNFAST_DTYPE: dict[np.dtype[Any], dtype] = {}
for _d in DTYPES.values():
    _NNFAST_DTYPE.setdefault(_d.dtype, _d)


def to_dtype(dt: Any, op: str = "dtype") -> np.dtype[Any]:
    """The NumPy dtype of a dtype argument (an nnfast dtype, NumPy dtype or type), checked."""
    try:
        d: np.dtype[Any] = np.dtype(dt)
    except TypeError:
        raise TypeError(f"[{op}] expected a dtype such as nnfast.float32, got {dt!r}") from None
    if d not in _NNFAST_DTYPE:
        raise TypeError(f"[{op}] expected one of nnfast's dtypes ({', '.join(sorted(DTYPES))}), got {d}")
    return d


def dtype_of(dt: Any) -> dtype:
    """The nnfast dtype of a NumPy dtype."""
    return _NNFAST_DTYPE[np.dtype(dt)]


_default_dtype: list[np.dtype[Any]] = [float32.dtype]

if TYPE_CHECKING:
    from typing import TypeAlias

    # What arithmetic accepts beside a Tensor: Python and NumPy scalars, NumPy arrays.
    _Operand: TypeAlias = Union["Tensor", builtins.float, "np.ndarray[Any, Any]", "np.generic[Any]"]
    _Dims: TypeAlias = Union[int, Sequence[int]]


def get_default_dtype() -> np.dtype[Any]:
    """The dtype new floating-point tensors get (float32 unless changed with ``set_default_dtype``)."""
    return _default_dtype[0]


def set_default_dtype(dtype: Any) -> None:
    """Set the dtype of new floating-point tensors: float32 (default) or float64."""
    d = to_dtype(dtype, "set_default_dtype")
    if d not in (float32, float64):
        raise TypeError(f"[set_default_dtype] expected float32 or float64, got {d}")
    _default_dtype[0] = d


class device:
    """Where a tensor lives: ``device('cpu')``, ``device('cuda')``, ``device('cuda:1')``."""

    __slots__ = ("type", "index")
    type: str
    index: Optional[int]

    def __init__(self, spec: Union[str, "device"] = "cpu", index: Optional[int] = None) -> None:
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        s = str(spec)
        if ":" in s:
            s, idx = s.split(":", 1)
            index = int(idx)
        if s not in ("cpu", "cuda"):
            raise ValueError(f"[device] expected 'cpu' or 'cuda[:N]', got {spec!r}")
        self.type = s
        self.index = index if s == "cuda" else None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        if not isinstance(other, device):
            return NotImplemented
        if self.type != other.type:
            return False
        return self.index is None or other.index is None or self.index == other.index

    def __hash__(self) -> int:
        return hash(self.type)


def _device_of(a: Any) -> device:
    if is_cupy(a):
        return device("cuda", int(a.device.id))
    if is_cuda(a):  # an emulated cuda array (NNFAST_CUDA=EMULATE)
        return device("cuda", 0)
    return device("cpu")


def _to_device_array(a: Any, dev: device) -> Any:
    if dev.type == "cpu":
        return to_host(a)
    from ._info import cuda as _cuda

    if not _cuda.is_available():
        raise RuntimeError("[to] expected an available cuda device (nnfast.cuda.is_available() is False: "
                           "build with NNFAST_CUDA=ON on a GPU machine with CuPy, or NNFAST_CUDA=EMULATE)")
    if _cuda.is_emulated():
        return to_cuda(a)
    import cupy

    with cupy.cuda.Device(dev.index or 0):
        return cupy.asarray(a)


def _as_array(data: Any, dtype: Any = None) -> Any:
    """A new array (CuPy / cuda for cuda input, else NumPy) from Python data, with PyTorch's dtype
    defaults: floats -> the default dtype, ints -> int64, bools -> bool; arrays keep theirs."""
    if isinstance(data, Tensor):
        data = data._data
    if is_cuda(data):
        return data.astype(dtype) if dtype is not None else data.copy()
    keep_dtype = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.array(data, dtype=dtype, copy=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"[tensor] expected numbers, nested sequences of numbers or tensors: {e}") from None
    if not (arr.dtype.kind in "biu" or _is_float(arr.dtype)):
        raise TypeError(f"[tensor] expected numeric data, got dtype {arr.dtype}")
    if dtype is None and not keep_dtype:
        if arr.dtype.kind == "f":
            arr = arr.astype(_default_dtype[0])
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
    return arr


class _HookHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list[Any], hook: Any) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


_object_new, _ndarray = object.__new__, np.ndarray
_ENGINE: list[Any] = []  # the autograd.engine module, imported on the first backward (a cycle at import)


def _engine() -> Any:
    from .autograd import engine

    _ENGINE.append(engine)
    return engine


class Tensor:
    """An n-dimensional array that records differentiable operations.

    ``data`` is the underlying NumPy (CPU) or CuPy (GPU) array; nnfast's
    kernels compute on it in place of NumPy math for every standard layer.
    """

    __slots__ = ("_data", "grad", "requires_grad", "grad_fn", "_hooks", "_vc", "_view", "_post_hooks", "__weakref__")
    _data: Any  # numpy.ndarray on cpu, cupy.ndarray on cuda
    _view: Any  # (base, replay) of a recorded view, else None
    _vc: list[int]  # the storage's version counter, shared by views
    grad: Optional[Tensor]
    requires_grad: bool
    grad_fn: Any
    _hooks: Any
    _post_hooks: Any  # register_post_accumulate_grad_hook's hooks (a leaf's), else None
    __array_priority__ = 1000  # make ndarray + Tensor defer to Tensor

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        if isinstance(data, Tensor):
            data = data._data
        if not (isinstance(data, np.ndarray) or is_cuda(data)):
            data = _as_array(data)
        self._data = data
        self.grad = None
        self.grad_fn = None
        self._hooks = None
        self._post_hooks = None
        self._vc = [0]
        self._view = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------ construction
    @classmethod
    def _wrap(cls, data: Any, requires_grad: bool = False) -> "Tensor":
        # Made on every op: object.__new__ directly (no Tensor.__new__ exists), type test first.
        t = _object_new(cls)
        if type(data) is not _ndarray and isinstance(data, np.generic):  # NumPy scalars -> 0-d arrays
            data = np.asarray(data)
        t._data = data
        t.grad = None
        t.grad_fn = None
        t._hooks = None
        t._post_hooks = None
        t._vc = [0]
        t._view = None  # (base, replay) for a recorded view: replay(base) recomputes it (in-place on views)
        t.requires_grad = requires_grad
        return t

    def _alias(self, data: Any) -> "Tensor":
        """A tensor over ``data``, a view of this tensor's storage: same version counter, no graph."""
        t = Tensor._wrap(data)
        t._vc = self._vc
        return t

    # ------------------------------------------------------------ storage
    @property
    def data(self) -> "Tensor":
        """This tensor's storage as a tensor outside the graph (as ``torch.Tensor.data``): changes
        through it are seen here and are not recorded."""
        return self._alias(self._data)

    @data.setter
    def data(self, value: Any) -> None:
        new = value._data if isinstance(value, Tensor) else value
        if not (isinstance(new, np.ndarray) or is_cuda(new)):
            new = _as_array(new)
        self._data = new

    @property
    def _version(self) -> int:
        """How many times this storage has been modified in place (shared by its views)."""
        return self._vc[0]

    # ------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    def size(self, dim: Optional[int] = None) -> Any:
        return self.shape if dim is None else self._data.shape[dim]

    @property
    def dtype(self) -> np.dtype[Any]:
        dt: np.dtype[Any] = self._data.dtype
        return dt

    @property
    def device(self) -> device:
        return _device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return is_cuda(self._data)

    @property
    def ndim(self) -> int:
        n: int = self._data.ndim
        return n

    def dim(self) -> int:
        n: int = self._data.ndim
        return n

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return int(self._data.shape[0])

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not _is_float(self._data.dtype):
            raise TypeError(
                f"[requires_grad_] expected a floating-point tensor, got {self._data.dtype}; "
                "only float tensors can require gradients"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("[requires_grad_] expected a leaf tensor; use detach() on a non-leaf")
        self.requires_grad = bool(requires_grad)
        return self

    def register_hook(self, hook: Any) -> "_HookHandle":
        """Call ``hook(grad) -> Tensor | None`` with this tensor's gradient during backward (a
        returned tensor replaces the gradient). Returns a handle whose ``remove()`` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("[register_hook] expected a tensor that requires grad; "
                               "cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:  # a non-leaf: its node runs the hooks on the gradient it receives
            if self.grad_fn._grad_hooks is None:
                self.grad_fn._grad_hooks = []
            hooks = self.grad_fn._grad_hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Any) -> "_HookHandle":
        """Call ``hook(tensor)`` on this leaf each time backward has accumulated into its ``.grad``
        (the gradient is read from ``tensor.grad``; the return value is ignored). Returns a handle
        whose ``remove()`` unregisters it. Unlike ``register_hook`` it leaves in-place accumulation
        into an existing ``.grad`` on (DistributedDataParallel's gradient-ready signal)."""
        if not self.requires_grad:
            raise RuntimeError("[register_post_accumulate_grad_hook] expected a tensor that requires grad; "
                               "cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("[register_post_accumulate_grad_hook] expected a leaf tensor; post accumulate "
                               "grad hooks cannot be registered on non-leaf tensors")
        if self._post_hooks is None:
            self._post_hooks = []
        self._post_hooks.append(hook)
        return _HookHandle(self._post_hooks, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` during backward (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("[retain_grad] expected a tensor that requires grad")
        if self.grad_fn is not None:
            self.grad_fn._retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        ref = None if self.grad_fn is None else self.grad_fn._retained
        return ref is not None and ref() is self

    def _accumulate_grad(self, g: Any) -> None:
        if self._hooks:
            for h in self._hooks:
                r = h(Tensor._wrap(g))
                if r is not None:
                    g = r._data if isinstance(r, Tensor) else r
        if g.dtype != self._data.dtype:
            g = g.astype(self._data.dtype)
        if self.grad is None:
            self.grad = Tensor._wrap(g)
        else:
            self.grad._data += g
        if self._post_hooks:
            for ph in self._post_hooks:
                ph(self)

    # ------------------------------------------------------------ autograd
    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        run_backward = (_ENGINE[0] if _ENGINE else _engine()).run_backward  # read per call: patchable
        if not self.requires_grad:
            raise RuntimeError(
                "[backward] expected a tensor that requires grad; this one has no grad_fn "
                "(did you run under no_grad, or forget requires_grad=True?)"
            )
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"[backward] expected a scalar output or an explicit gradient, got shape {self.shape}"
                )
            d = self._data
            g = np.ones(d.shape, d.dtype) if type(d) is _ndarray else xp_of(d).ones_like(d)
        else:
            g = gradient._data if isinstance(gradient, Tensor) else xp_of(self._data).asarray(gradient)
            if g.shape != self._data.shape:
                raise RuntimeError(f"[backward] expected gradient of shape {self.shape}, got {tuple(g.shape)}")
            g = g.astype(self._data.dtype, copy=True)
        run_backward(self, g, retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        return self._alias(self._data)

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self.requires_grad = False
        return self

    # ------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("[numpy] expected a tensor that does not require grad; call .detach().numpy()")
        if is_cuda(self._data):
            raise TypeError("[numpy] expected a cpu tensor; call .cpu() first")
        arr: np.ndarray = self._data
        return arr

    def tolist(self) -> Any:
        return self._host().tolist()

    def item(self) -> Any:
        if self._data.size != 1:
            raise ValueError(f"[item] expected a tensor with one element, got shape {self.shape}")
        return self._host().reshape(()).item()

    def _host(self) -> np.ndarray:
        host: np.ndarray = to_host(self._data)
        return host

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self._host()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self._data.__dlpack_device__()

    @property
    def __cuda_array_interface__(self) -> Any:
        if not is_cupy(self._data):
            raise AttributeError("__cuda_array_interface__ is only defined for cuda tensors")
        return self._data.__cuda_array_interface__

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """``to(dtype)``, ``to(device, dtype=None)``, ``to(other)`` (its device and dtype); keywords
        ``device``, ``dtype``, ``copy``, ``non_blocking``. Differentiable (float -> float casts and moves)."""
        dev, dt = _to_args(args, kwargs)
        out: Tensor = self
        if dt is not None and dt != self._data.dtype:
            out = _cast(out, dt)
        if dev is not None and dev != out.device:
            from .autograd.basic_ops import ToDevice

            out = ToDevice.apply(out, dev)
        if kwargs.get("copy") and out is self:
            out = self.clone()
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: Optional[int] = None) -> "Tensor":
        return self.to(device("cuda", index or 0))

    def float(self) -> "Tensor":
        return self.to(float32)

    def double(self) -> "Tensor":
        return self.to(float64)

    def long(self) -> "Tensor":
        return self.to(int64)

    def type_as(self, other: "Tensor") -> "Tensor":
        """This tensor with ``other``'s dtype (``self`` itself when they already match)."""
        return self.to(other.dtype)

    def clone(self) -> "Tensor":
        from .autograd.basic_ops import Clone

        return Clone.apply(self)

    def contiguous(self) -> "Tensor":
        if self._data.flags.c_contiguous:
            return self
        return self.clone()

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    # ------------------------------------------------------------ repr
    def __repr__(self) -> str:
        """PyTorch's layout: ``tensor([1., 2.], device='cuda:0', dtype=nnfast.float64, requires_grad=True)``."""
        a = self._host()
        extras = []
        if self.is_cuda:
            extras.append(f"device='{self.device}'")
        if a.size == 0 and a.ndim != 1:
            extras.append(f"size={tuple(a.shape)}")
        if a.dtype != _default_dtype[0] and (a.size == 0 or a.dtype not in (int64, bool_)):
            extras.append(f"dtype={_NNFAST_DTYPE.get(a.dtype, a.dtype)!r}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + _format_values(a) + "".join(", " + e for e in extras) + ")"

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError("[bool] expected a one-element tensor; use .any() or .all()")
        return bool(self.item())

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu":
            raise TypeError("[index] expected an integer tensor")
        return int(self.item())

    __hash__ = object.__hash__

    if TYPE_CHECKING:
        # Installed at import by ``_tensor_ops.install()`` (kept out of this class body so each op is
        # one call); declared here for type checkers. tests/test_typing.py checks these names exist.
        # The areas of ``nnfast.ops`` install many more methods; to type checkers they are Any.
        def __getattr__(self, name: str) -> Any: ...
        def __add__(self, other: _Operand) -> Tensor: ...
        def __radd__(self, other: _Operand) -> Tensor: ...
        def __sub__(self, other: _Operand) -> Tensor: ...
        def __rsub__(self, other: _Operand) -> Tensor: ...
        def __mul__(self, other: _Operand) -> Tensor: ...
        def __rmul__(self, other: _Operand) -> Tensor: ...
        def __truediv__(self, other: _Operand) -> Tensor: ...
        def __rtruediv__(self, other: _Operand) -> Tensor: ...
        def __matmul__(self, other: _Operand) -> Tensor: ...
        def __rmatmul__(self, other: _Operand) -> Tensor: ...
        def __pow__(self, exponent: _Operand) -> Tensor: ...
        def __rpow__(self, base: _Operand) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __pos__(self) -> Tensor: ...
        def __abs__(self) -> Tensor: ...
        def __iadd__(self, other: _Operand) -> Tensor: ...
        def __isub__(self, other: _Operand) -> Tensor: ...
        def __imul__(self, other: _Operand) -> Tensor: ...
        def __itruediv__(self, other: _Operand) -> Tensor: ...
        def __lt__(self, other: _Operand) -> Tensor: ...
        def __le__(self, other: _Operand) -> Tensor: ...
        def __gt__(self, other: _Operand) -> Tensor: ...
        def __ge__(self, other: _Operand) -> Tensor: ...
        def __eq__(self, other: object) -> Tensor: ...  # type: ignore[override]
        def __ne__(self, other: object) -> Tensor: ...  # type: ignore[override]
        def __getitem__(self, index: Any) -> Tensor: ...
        def __setitem__(self, index: Any, value: Any) -> None: ...
        # The named methods are the operators' own functions (``_tensor_ops.methods``): aliases.
        add, sub, mul, div, pow = __add__, __sub__, __mul__, __truediv__, __pow__
        matmul = mm = __matmul__
        neg, abs = __neg__, __abs__
        def exp(self) -> Tensor: ...
        def log(self) -> Tensor: ...
        def sqrt(self) -> Tensor: ...
        def clamp(self, min: Optional[builtins.float] = None, max: Optional[builtins.float] = None) -> Tensor: ...
        clip = clamp
        def sum(self, dim: Optional[_Dims] = None, keepdim: bool = False, dtype: Any = None) -> Tensor: ...
        def mean(self, dim: Optional[_Dims] = None, keepdim: bool = False) -> Tensor: ...
        @overload
        def max(self, dim: None = None, keepdim: bool = False) -> Tensor: ...
        @overload
        def max(self, dim: int, keepdim: bool = False) -> tuple[Tensor, Tensor]: ...
        def max(self, dim: Optional[int] = None, keepdim: bool = False) -> Union[Tensor, tuple[Tensor, Tensor]]: ...
        @overload
        def min(self, dim: None = None, keepdim: bool = False) -> Tensor: ...
        @overload
        def min(self, dim: int, keepdim: bool = False) -> tuple[Tensor, Tensor]: ...
        def min(self, dim: Optional[int] = None, keepdim: bool = False) -> Union[Tensor, tuple[Tensor, Tensor]]: ...
        def var(self, dim: Optional[_Dims] = None, unbiased: bool = True, keepdim: bool = False) -> Tensor: ...
        def std(self, dim: Optional[_Dims] = None, unbiased: bool = True, keepdim: bool = False) -> Tensor: ...
        def argmax(self, dim: Optional[int] = None, keepdim: bool = False) -> Tensor: ...
        def argmin(self, dim: Optional[int] = None, keepdim: bool = False) -> Tensor: ...
        def reshape(self, *shape: _Dims) -> Tensor: ...
        view = reshape
        def permute(self, *dims: _Dims) -> Tensor: ...
        def transpose(self, dim0: int, dim1: int) -> Tensor: ...
        def t(self) -> Tensor: ...
        @property
        def T(self) -> Tensor: ...
        def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor: ...
        def unsqueeze(self, dim: int) -> Tensor: ...
        def squeeze(self, dim: Optional[int] = None) -> Tensor: ...
        def expand(self, *sizes: _Dims) -> Tensor: ...
        def zero_(self) -> Tensor: ...
        def fill_(self, value: builtins.float) -> Tensor: ...
        def copy_(self, src: _Operand) -> Tensor: ...
        def any(self) -> Tensor: ...
        def all(self) -> Tensor: ...
        def isfinite(self) -> Tensor: ...
        def isnan(self) -> Tensor: ...


# ---------------------------------------------------------------- conversions
def _to_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Optional[device], Optional[np.dtype[Any]]]:
    """(device, dtype) of a ``Tensor.to`` call."""
    dev, dt = kwargs.get("device"), kwargs.get("dtype")
    for a in args:
        if isinstance(a, (str, device)):
            dev = a
        elif isinstance(a, Tensor):
            dev, dt = a.device, a._data.dtype
        elif isinstance(a, builtins.int) and not isinstance(a, builtins.bool):
            dev = device("cuda", a)
        else:
            dt = a
    return (None if dev is None else device(dev)), (None if dt is None else to_dtype(dt, "to"))


def _cast(t: Tensor, dt: np.dtype[Any]) -> Tensor:
    """``t`` as dtype ``dt``: differentiable between float dtypes (the gradient is cast back), a plain
    copy outside the graph to an integer or bool dtype (as PyTorch)."""
    from .autograd.basic_ops import Cast, cast

    if t.requires_grad and _is_float(dt):
        return Cast.apply(t, dt)
    return Tensor._wrap(cast(t._data, dt))


# ---------------------------------------------------------------- printing (PyTorch's rules)
def _float_formatter(a: np.ndarray) -> Callable[[Any], str]:
    """Integral values as ``3.``; else 4 decimals, or scientific when the finite nonzero magnitudes
    span more than 1000x, exceed 1e8 or go below 1e-4; every value right-aligned to one width."""
    v = _summarized(a).astype(np.float64).ravel()
    nz = np.abs(v[np.isfinite(v) & (v != 0)])
    if nz.size == 0:
        nz = np.zeros(1)
    hi, lo = builtins.float(nz.max()), builtins.float(nz.min())
    integral = builtins.bool(np.all(np.ceil(nz) == nz))
    sci = hi > 1e8 or (lo > 0 and hi / lo > 1000.0) or (not integral and lo < 1e-4 and lo != 0)

    def one(x: Any) -> str:
        x = builtins.float(x)
        if not np.isfinite(x):
            return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
        if sci:
            return f"{x:.4e}"
        return f"{x:.0f}." if integral else f"{x:.4f}"

    shown = v[np.isfinite(v) & (v != 0)]  # zeros, nan and inf do not widen the columns (as PyTorch)
    width = builtins.max((len(one(x)) for x in shown), default=0)
    return lambda x: one(x).rjust(width)


def _summarized(a: np.ndarray) -> np.ndarray:
    """The values a summarised print shows (3 at each end of every long axis): they set the format."""
    if a.size <= 1000:
        return a
    for axis in range(a.ndim):
        if a.shape[axis] > 6:
            a = np.concatenate([a.take(range(3), axis), a.take(range(a.shape[axis] - 3, a.shape[axis]), axis)], axis)
    return a


def _format_values(a: np.ndarray) -> str:
    if a.dtype.kind in "biu":
        width = builtins.max((len(str(x)) for x in _summarized(a).ravel()), default=0)
        fmt: Callable[[Any], str] = lambda x: str(x).rjust(width)  # noqa: E731
    else:
        a = a.astype(np.float64)
        fmt = _float_formatter(a)
    if a.size == 0:
        return "[]"
    body = np.array2string(a, separator=", ", prefix="tensor(", formatter={"all": fmt}, threshold=1000,
                           edgeitems=3, max_line_width=80)
    return body.replace(", ...,", ",  ...,")  # PyTorch writes ' ...' within a row


# ---------------------------------------------------------------- factories
def _device_arg(dev: Any) -> Optional[device]:
    return None if dev is None else device(dev)


def _on(arr: Any, dev: Optional[device]) -> Any:
    """``arr`` (a host array) on ``dev``."""
    return arr if dev is None or dev.type == "cpu" else _to_device_array(arr, dev)


def _new(arr: Any, dev: Any, requires_grad: builtins.bool) -> Tensor:
    """A tensor over the host array ``arr``, moved to ``dev``."""
    return Tensor(_on(arr, _device_arg(dev)), requires_grad=requires_grad)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a scalar, nested lists of numbers or tensors, an array or
    a tensor). Floats get the default dtype, ints int64, bools bool, unless ``dtype`` says otherwise."""
    arr = _as_array(data, None if dtype is None else to_dtype(dtype, "tensor"))
    dev = _device_arg(device)
    if dev is not None and dev != _device_of(arr):
        arr = _to_device_array(arr, dev)
    return Tensor(arr, requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, sharing memory with it when it already is a tensor or NumPy array of
    that dtype on that device; else a copy."""
    dt = None if dtype is None else to_dtype(dtype, "as_tensor")
    dev = _device_arg(device)
    if isinstance(data, Tensor):
        return data.to(dev, dt) if dev is not None else data.to(dtype=dt)
    if isinstance(data, np.ndarray) and (dt is None or dt == data.dtype) and (dev is None or dev.type == "cpu"):
        return from_numpy(data)
    return tensor(data, dtype=dt, device=dev)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``a`` (no copy)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"[from_numpy] expected a numpy.ndarray, got {type(a).__name__}")
    return Tensor(a)  # any dtype: the ops check theirs (the error tables feed object / byteswapped arrays)


def from_dlpack(obj: Any) -> Tensor:
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch)."""
    dev_type = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if dev_type == 2:  # kDLCUDA
        import cupy

        return Tensor(cupy.from_dlpack(obj))
    return Tensor(np.from_dlpack(obj))


def _shape_arg(size: Sequence[Any], op: str = "zeros") -> tuple[int, ...]:
    """The shape of ``f(2, 3)``, ``f((2, 3))`` or ``f([2, 3])``."""
    if len(size) == 1 and not isinstance(size[0], (builtins.int, np.integer, Tensor)):
        size = size[0]
    try:
        shape = tuple(operator.index(s) for s in size)
    except TypeError:
        raise TypeError(f"[{op}] expected a size as ints or one tuple/list of ints, got {size!r}") from None
    if builtins.any(d < 0 for d in shape):
        raise RuntimeError(f"[{op}] expected non-negative sizes, got {list(shape)}")
    return shape


def _factory(op: str, fill: Callable[[tuple[int, ...], np.dtype[Any]], Any], size: Sequence[Any], dtype: Any,
             device_: Any, requires_grad: builtins.bool) -> Tensor:
    shape = _shape_arg(size, op)
    dt = to_dtype(dtype, op) if dtype is not None else _default_dtype[0]
    return _new(fill(shape, dt), device_, requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _factory("zeros", lambda s, d: np.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _factory("ones", lambda s, d: np.ones(s, d), size, dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _factory("empty", lambda s, d: np.empty(s, d), size, dtype, device, requires_grad)


def _fill_dtype(value: Any) -> np.dtype[Any]:
    """PyTorch's dtype for a fill value: bool -> bool, int -> int64, float -> the default dtype."""
    if isinstance(value, Tensor):
        return value._data.dtype  # type: ignore[no-any-return]
    if isinstance(value, (builtins.bool, np.bool_)):
        return bool_.dtype
    if isinstance(value, (builtins.int, np.integer)):
        return int64.dtype
    return _default_dtype[0]


def full(size: Sequence[int], fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype from the value when ``dtype`` is None)."""
    v = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    dt = _fill_dtype(fill_value) if dtype is None else dtype
    return _factory("full", lambda s, d: np.full(s, v, d), (size,), dt, device, requires_grad)


def _rng(generator: Any) -> np.random.Generator:
    return _random.generator_or_default(generator)


def rand(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:
    """Uniform samples on [0, 1) from ``generator`` (default: the one ``nnfast.manual_seed`` seeds)."""
    rng = _rng(generator)
    return _factory("rand", lambda s, d: rng.random(s).astype(d), size, dtype, device, requires_grad)


def randn(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: builtins.bool = False) -> Tensor:
    """Standard normal samples from ``generator`` (default: the one ``nnfast.manual_seed`` seeds)."""
    rng = _rng(generator)
    return _factory("randn", lambda s, d: rng.standard_normal(s).astype(d), size, dtype, device, requires_grad)


def randint(*args: Any, size: Any = None, generator: Any = None, dtype: Any = None, device: Any = None,
            requires_grad: builtins.bool = False) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: integers uniform on [low, high), int64."""
    if size is None:
        if len(args) not in (2, 3):
            raise TypeError("[randint] expected randint(high, size) or randint(low, high, size)")
        args, size = args[:-1], args[-1]
    if len(args) not in (1, 2):
        raise TypeError("[randint] expected randint(high, size) or randint(low, high, size)")
    low, high = (0, args[0]) if len(args) == 1 else args
    low, high = builtins.int(low), builtins.int(high)
    if low >= high:
        raise RuntimeError(f"[randint] expected low < high, got low={low}, high={high}")
    rng = _rng(generator)
    return _factory("randint", lambda s, d: rng.integers(low, high, size=s).astype(d), (size,),
                    int64 if dtype is None else dtype, device, requires_grad)


def randperm(n: int, generator: Any = None, dtype: Any = None, device: Any = None,
             requires_grad: builtins.bool = False) -> Tensor:
    """A random permutation of 0 .. n-1 (int64)."""
    n = operator.index(n)
    if n < 0:
        raise RuntimeError(f"[randperm] expected a non-negative n, got {n}")
    rng = _rng(generator)
    dt = to_dtype(dtype, "randperm") if dtype is not None else int64.dtype
    return _new(rng.permutation(n).astype(dt), device, requires_grad)


def _number(x: Any) -> Any:
    return x.item() if isinstance(x, Tensor) else x


def arange(start: Any = 0, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: builtins.bool = False) -> Tensor:
    """``[start, start + step, ...)`` up to ``end`` (exclusive): int64 when every bound is an int, else
    the default float dtype."""
    start, end, step = _number(start), _number(end), _number(step)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("[arange] expected a nonzero step")
    if (end - start) * step < 0:
        raise RuntimeError(f"[arange] expected bounds consistent with the step sign, got start={start}, "
                           f"end={end}, step={step}")
    all_int = builtins.all(isinstance(v, (builtins.int, np.integer)) for v in (start, end, step))
    dt = to_dtype(dtype, "arange") if dtype is not None else (int64.dtype if all_int else _default_dtype[0])
    if all_int:
        arr = np.arange(start, end, step, dtype=np.int64)
    else:  # values start + i * step in double, as PyTorch
        n = builtins.int(np.ceil((end - start) / step))
        arr = start + np.arange(n, dtype=np.float64) * step
    return _new(arr.astype(dt), device, requires_grad)


def _like(op: str, t: Tensor, dtype: Any, device_: Any) -> tuple[np.dtype[Any], Any]:
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] expected a Tensor, got {type(t).__name__}")
    return (t._data.dtype if dtype is None else to_dtype(dtype, op)), (t.device if device_ is None else device_)


def zeros_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
               **_: Any) -> Tensor:
    dt, dev = _like("zeros_like", input, dtype, device)
    return zeros(input.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
              **_: Any) -> Tensor:
    dt, dev = _like("ones_like", input, dtype, device)
    return ones(input.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def empty_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
               **_: Any) -> Tensor:
    dt, dev = _like("empty_like", input, dtype, device)
    return empty(input.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False,
               generator: Any = None, **_: Any) -> Tensor:
    dt, dev = _like("randn_like", input, dtype, device)
    return randn(input.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)


def is_tensor(obj: Any) -> builtins.bool:
    return isinstance(obj, Tensor)
