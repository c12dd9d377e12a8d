"""``nnfast.Tensor``: an array (NumPy on CPU, CuPy on GPU) plus its place on the tape."""
from __future__ import annotations

import builtins
import weakref
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union, overload

import numpy as np

from . import _random
from ._dispatch import is_cuda, is_cupy, to_cuda, to_host, xp_of
from .autograd import grad_mode

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
float = float32  # noqa: A001 - mirrors torch.float
double = float64
long = int64

_default_dtype: list[np.dtype[Any]] = [float32]

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
    d = np.dtype(dtype)
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
    """NumPy array (CuPy for CuPy input) from Python data with PyTorch's dtype defaults."""
    if isinstance(data, Tensor):
        data = data._data
    if is_cuda(data):
        arr = data.astype(dtype) if dtype is not None else data.copy()
        return arr
    keep_dtype = isinstance(data, (np.ndarray, np.generic))
    arr = np.array(data, dtype=dtype, copy=True)
    if arr.dtype.kind not in "biuf":
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


class Tensor:
    """An n-dimensional array that records differentiable operations.

    ``data`` is the underlying NumPy (CPU) or CuPy (GPU) array; nnfast's
    kernels compute on it in place of NumPy math for every standard layer.
    """

    __slots__ = ("_data", "grad", "requires_grad", "grad_fn", "_hooks", "_vc", "__weakref__")
    _data: Any  # numpy.ndarray on cpu, cupy.ndarray on cuda
    grad: Optional[Tensor]
    requires_grad: bool
    grad_fn: Any
    _hooks: Any
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
        self._vc = [0]
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------ construction
    @classmethod
    def _wrap(cls, data: Any, requires_grad: bool = False) -> "Tensor":
        t = cls.__new__(cls)
        if isinstance(data, np.generic):  # NumPy scalars (x[i], 0-d arithmetic) are kept as 0-d arrays
            data = np.asarray(data)
        t._data = data
        t.grad = None
        t.grad_fn = None
        t._hooks = None
        t._vc = [0]
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
        if requires_grad and self._data.dtype.kind != "f":
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

    # ------------------------------------------------------------ autograd
    def backward(self, gradient: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        from .autograd.engine import run_backward

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
            g = xp_of(self._data).ones_like(self._data)
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
        """``to(device)``, ``to(dtype)`` or ``to(device, dtype)``; differentiable."""
        dev = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        for a in args:
            if isinstance(a, (str, device)):
                dev = a
            elif isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            else:
                dtype = a
        out: Tensor = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            from .autograd.basic_ops import Cast

            out = Cast.apply(out, np.dtype(dtype))
        if dev is not None and device(dev) != out.device:
            from .autograd.basic_ops import ToDevice

            out = ToDevice.apply(out, device(dev))
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
        body = np.array2string(self._host(), separator=", ", prefix="tensor(")
        extras = []
        if self.dtype != _default_dtype[0] and self.dtype.kind == "f" or self.dtype.kind not in "fi":
            extras.append(f"dtype={self.dtype}")
        if self.is_cuda:
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

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


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (list, scalar, array or tensor)."""
    arr = _as_array(data, None if dtype is None else np.dtype(dtype))
    if device is not None:
        arr = _to_device_array(arr, globals()["device"](device))
    return Tensor(arr, requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype) and device in (None, "cpu"):
        return Tensor(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``a`` (no copy)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"[from_numpy] expected a numpy.ndarray, got {type(a).__name__}")
    return Tensor(a)


def from_dlpack(obj: Any) -> Tensor:
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch)."""
    dev_type = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if dev_type == 2:  # kDLCUDA
        import cupy

        return Tensor(cupy.from_dlpack(obj))
    return Tensor(np.from_dlpack(obj))


def _shape_arg(size: Sequence[Any]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(s) for s in size)


def _factory(fill: Callable[[tuple[int, ...], np.dtype[Any]], Any], size: Sequence[Any], dtype: Any, device_: Any,
             requires_grad: bool) -> Tensor:
    shape = _shape_arg(size)
    dt = np.dtype(dtype) if dtype is not None else _default_dtype[0]
    arr = fill(shape, dt)
    if device_ is not None and globals()["device"](device_).type == "cuda":
        arr = _to_device_array(arr, globals()["device"](device_))
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(lambda s, d: np.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(lambda s, d: np.ones(s, d), size, dtype, device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _factory(lambda s, d: np.empty(s, d), size, dtype, device, requires_grad)


def full(size: Sequence[int], fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    return _factory(lambda s, d: np.full(s, fill_value, d), (tuple(size),), dtype, device, requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    rng = _random.default_generator()
    return _factory(lambda s, d: rng.standard_normal(s).astype(d), size, dtype, device, requires_grad)


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    rng = _random.default_generator()
    return _factory(lambda s, d: rng.random(s).astype(d), size, dtype, device, requires_grad)


def randint(low: int, high: Optional[int] = None, size: Sequence[int] = (), dtype: Any = None,
            device: Any = None) -> Tensor:
    if high is None:
        low, high = 0, low
    rng = _random.default_generator()
    arr = rng.integers(low, high, size=tuple(size)).astype(np.dtype(dtype) if dtype else np.int64)
    return tensor(arr, device=device)


def randperm(n: int, dtype: Any = None, device: Any = None) -> Tensor:
    arr = _random.default_generator().permutation(int(n)).astype(np.dtype(dtype) if dtype else np.int64)
    return tensor(arr, device=device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None) -> Tensor:
    if end is None:
        start, end = 0, start
    arr = np.arange(start, end, step)
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype))
    elif arr.dtype.kind == "f":
        arr = arr.astype(_default_dtype[0])
    else:
        arr = arr.astype(np.int64)
    return tensor(arr, device=device)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(xp_of(t._data).zeros_like(t._data, dtype=dtype), requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(xp_of(t._data).ones_like(t._data, dtype=dtype), requires_grad=requires_grad)


def empty_like(t: Tensor, dtype: Any = None) -> Tensor:
    return Tensor(xp_of(t._data).empty_like(t._data, dtype=dtype))


def randn_like(t: Tensor) -> Tensor:
    return randn(*t.shape, dtype=t.dtype, device=t.device)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)
