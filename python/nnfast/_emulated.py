"""The cuda device of an ``NNFAST_CUDA=EMULATE`` build: host arrays that carry the cuda device.

Under emulation the CUDA kernels (csrc/cuda/*.cu) run on the CPU through nnfast's SIMT
emulator, so cuda memory is host memory. A cuda array is an :class:`EmulatedArray`, a
NumPy subclass that ``nnfast._dispatch.device_of`` maps to ``"cuda"``; its array module
(:data:`xp`) is NumPy whose results come back as cuda arrays, as CuPy's would on a GPU.
Mixing a cuda array with a cpu (plain NumPy) array in one operation raises
``RuntimeError("[op] expected all tensors on cuda, got cpu")`` instead of computing, as
on a GPU. (On a real GPU none of this is used: cuda arrays are CuPy arrays.)
"""
from __future__ import annotations

import types
from typing import Any, Callable

import numpy as np

__all__ = ["EmulatedArray", "xp", "to_host", "to_device"]


def _mixed(op: str) -> RuntimeError:
    return RuntimeError(f"[{op}] expected all tensors on cuda, got cpu")


def _wrap(r: Any) -> Any:
    """ndarray results (and tuples / lists of them) as cuda arrays."""
    if type(r) is np.ndarray:
        return r.view(EmulatedArray)
    if isinstance(r, np.generic):  # reductions give 0-d cuda arrays, as on CuPy
        return np.asarray(r).view(EmulatedArray)
    if isinstance(r, tuple):
        return tuple(_wrap(x) for x in r)
    if isinstance(r, list):
        return [_wrap(x) for x in r]
    return r


def _host_views(op: str, arrays: Any) -> list[Any]:
    """The operands of a ufunc call (inputs, or ``out=``) as NumPy arrays: cuda arrays as host
    views, other values as they are; a cpu array among them raises, as on a GPU."""
    views = []
    for x in arrays:
        if isinstance(x, EmulatedArray):
            views.append(x.view(np.ndarray))
        elif isinstance(x, np.ndarray):
            raise _mixed(op)
        else:
            views.append(x)
    return views


class EmulatedArray(np.ndarray):
    """A cuda array of an emulation build: host memory, device ``cuda``."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = _host_views(ufunc.__name__, inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_host_views(ufunc.__name__, out))
        r = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(r)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        if func in _LIKE:  # NumPy's own *_like copy a host scalar array in: build them directly
            return _like(func, *args, **kwargs)
        for t in types_:
            if issubclass(t, np.ndarray) and not issubclass(t, EmulatedArray):
                raise _mixed(getattr(func, "__name__", "op"))
        return _wrap(super().__array_function__(func, types_, args, kwargs))

    def get(self) -> np.ndarray:
        """A host (cpu) copy, as ``cupy.ndarray.get()``."""
        return np.array(self.view(np.ndarray), copy=True)

    @property
    def device(self) -> str:  # type: ignore[override]  # ndarray.device is "cpu"
        return "cuda"

    def __reduce__(self) -> Any:  # pickling a cuda array saves host data, as CuPy does
        return (to_device, (self.get(),))


_LIKE = {np.zeros_like: 0, np.ones_like: 1, np.full_like: None}


def _like(func: Any, a: Any, *args: Any, dtype: Any = None, order: Any = "K", subok: bool = True,
          shape: Any = None, **kw: Any) -> EmulatedArray:
    fill = _LIKE[func] if func is not np.full_like else (args[0] if args else kw["fill_value"])
    if func is np.full_like and len(args) > 1:
        dtype = args[1]
    out = np.full(a.shape if shape is None else shape, fill, dtype=a.dtype if dtype is None else dtype)
    return out.view(EmulatedArray)


def to_device(a: Any) -> EmulatedArray:
    """A cuda copy of host data."""
    return np.array(np.asarray(a), copy=True).view(EmulatedArray)


def to_host(a: Any) -> np.ndarray:
    """A host copy of a cuda array."""
    return np.array(a.view(np.ndarray) if isinstance(a, np.ndarray) else a, copy=True)


class _ArrayModule(types.ModuleType):
    """NumPy, with array results as cuda arrays (the array module of the emulated device)."""

    def __init__(self) -> None:
        super().__init__("nnfast._emulated.xp")
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        cache = self.__dict__["_cache"]
        try:
            return cache[name]
        except KeyError:
            pass
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc):
            attr = _Ufunc(attr)
        elif isinstance(attr, (types.FunctionType, types.BuiltinFunctionType, np.ufunc)) or (
                callable(attr) and not isinstance(attr, type) and hasattr(attr, "__name__")
                and not isinstance(attr, types.ModuleType)):
            attr = _wrap_fn(attr)
        cache[name] = attr
        return attr


class _Ufunc:
    """A NumPy ufunc whose results are cuda arrays; its methods (``at``, ``reduce``,
    ``accumulate``, ``outer``) too, as CuPy's ufuncs have them."""

    def __init__(self, uf: np.ufunc) -> None:
        self._uf = uf
        self.__name__ = uf.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _wrap(self._uf(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._uf, name)
        return _wrap_fn(attr) if callable(attr) else attr


def _wrap_fn(f: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _wrap(f(*args, **kwargs))

    call.__name__ = getattr(f, "__name__", "fn")
    call.__doc__ = getattr(f, "__doc__", None)
    return call


xp = _ArrayModule()
