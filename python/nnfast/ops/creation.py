"""Tensor surface: creation, random sampling, dtypes and conversions (see nnfast/ops/__init__.py).

The basic factories (``tensor``, ``zeros``, ``rand`` ..., ``arange``) and the dtype objects live in
``nnfast.tensor``; this module adds the rest of PyTorch's creation functions, the samplers
(``bernoulli``, ``multinomial``, ``normal`` ...), the in-place random fills (``normal_`` ...), the
dtype conversion methods (``half()`` ... ``type()``) and ``new_*``. Every sample is drawn on the host
from a ``Generator`` (its ``generator=`` argument, else the default one that ``nnfast.manual_seed``
seeds) and then moved to the tensor's device, so a seed gives the same values on every device.
"""
from __future__ import annotations

import importlib
import operator
from typing import Any, Optional

import numpy as np

from .. import _random
from .._dispatch import xp_of
from ..autograd.function import Function
from ..tensor import (
    DTYPES, Tensor, _BFLOAT16, _default_dtype, _factory, _is_float, _like, _new, _number, _on, _rng, arange, as_tensor, dtype, dtype_of, empty, empty_like, from_numpy, full, int64,
    is_tensor, ones, ones_like, rand, randint, randn, randn_like, randperm, set_default_dtype, tensor, to_dtype,
    zeros, zeros_like,
)
from ..tensor import get_default_dtype as _get_default_np_dtype
from .inplace import set_values


# ---------------------------------------------------------------- dtypes
def get_default_dtype() -> dtype:
    """The dtype new floating-point tensors get (``nnfast.float32`` unless ``set_default_dtype`` changed it)."""
    return dtype_of(_get_default_np_dtype())


def is_floating_point(input: Tensor) -> bool:
    return _is_float(_tensor_arg("is_floating_point", input)._data.dtype)


def is_complex(input: Tensor) -> bool:
    _tensor_arg("is_complex", input)
    return False


def finfo(type: Any = None) -> Any:  # noqa: A002 - PyTorch's name
    """Machine limits of a float dtype (``bits``, ``eps``, ``max``, ``min``, ``tiny``, ``resolution`` ...)."""
    d = _get_default_np_dtype() if type is None else to_dtype(type, "finfo")
    if not _is_float(d):
        raise TypeError(f"[finfo] expected a floating-point dtype, got {d}")
    if d == _BFLOAT16:
        return importlib.import_module("ml_dtypes").finfo(d)
    return np.finfo(d)


def iinfo(type: Any) -> Any:  # noqa: A002 - PyTorch's name
    """Machine limits of an integer dtype (``bits``, ``max``, ``min``)."""
    d = to_dtype(type, "iinfo")
    if d.kind not in "iu":
        raise TypeError(f"[iinfo] expected an integer dtype, got {d}")
    return np.iinfo(d)


class Size(tuple):  # type: ignore[type-arg]
    """A shape, as ``torch.Size``: a tuple of ints with ``numel()``."""

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= int(d)
        return n

    def __repr__(self) -> str:
        return f"nnfast.Size({list(self)})"


def _tensor_arg(op: str, t: Any) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"[{op}] expected a Tensor, got {type(t).__name__}")
    return t


# ---------------------------------------------------------------- conversion methods
def _converter(target: Any) -> Any:
    def method(self: Tensor, memory_format: Any = None) -> Tensor:
        return self.to(target)

    method.__doc__ = f"``self.to({target!r})``."
    return method


# PyTorch's legacy type names (``x.type()`` -> 'nnfast.FloatTensor')
_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
               "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _type_name(t: Tensor) -> str:
    dev = "cuda." if t.is_cuda else ""
    return f"nnfast.{dev}{_TYPE_NAMES[dtype_of(t._data.dtype).name]}Tensor"


def _parse_type_name(name: str) -> tuple[Any, Any]:
    """('nnfast.cuda.LongTensor' | 'torch.FloatTensor' ...) -> (dtype, device)."""
    parts = name.split(".")
    by_name = {v + "Tensor": k for k, v in _TYPE_NAMES.items()}
    if len(parts) not in (2, 3) or parts[-1] not in by_name or (len(parts) == 3 and parts[1] != "cuda"):
        raise ValueError(f"[type] expected a type name such as 'nnfast.FloatTensor', got {name!r}")
    return DTYPES[by_name[parts[-1]]], ("cuda" if len(parts) == 3 else "cpu")


def type_(self: Tensor, dtype: Any = None, non_blocking: bool = False, **_: Any) -> Any:
    """``x.type()``: the type name ('nnfast.FloatTensor'); ``x.type(dtype or name)``: the converted tensor."""
    if dtype is None:
        return _type_name(self)
    if isinstance(dtype, str):
        dt, dev = _parse_type_name(dtype)
        return self.to(dev, dt)
    return self.to(dtype)


def element_size(self: Tensor) -> int:
    return int(self._data.dtype.itemsize)


# ---------------------------------------------------------------- more creation functions
def asarray(obj: Any, dtype: Any = None, device: Any = None, copy: Optional[bool] = None,
            requires_grad: bool = False) -> Tensor:
    """``obj`` as a tensor: memory shared when possible (and ``copy`` is not True), else copied."""
    if copy:
        t = tensor(obj, dtype=dtype, device=device)
    else:
        t = as_tensor(obj, dtype=dtype, device=device)
        if copy is False and isinstance(obj, (Tensor, np.ndarray)) and not _shares(t, obj):
            raise ValueError("[asarray] expected no copy to be needed (copy=False), but dtype or device differ")
    return t.requires_grad_(True) if requires_grad else t


def _shares(t: Tensor, obj: Any) -> bool:
    other = obj._data if isinstance(obj, Tensor) else obj
    if t._data is other:
        return True
    return not t.is_cuda and bool(np.may_share_memory(t._data, other))


def scalar_tensor(s: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A 0-d tensor holding ``s`` (the default float dtype unless ``dtype`` is given)."""
    return full((), _number(s), dtype=_default_dtype[0] if dtype is None else dtype, device=device,
                requires_grad=requires_grad)


def full_like(input: Tensor, fill_value: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False,
              **_: Any) -> Tensor:
    dt, dev = _like("full_like", input, dtype, device)
    return full(input.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def rand_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False,
              generator: Any = None, **_: Any) -> Tensor:
    dt, dev = _like("rand_like", input, dtype, device)
    return rand(input.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)


def randint_like(input: Tensor, low: int = 0, high: Optional[int] = None, dtype: Any = None, device: Any = None,
                 requires_grad: bool = False, generator: Any = None, **_: Any) -> Tensor:
    """``randint_like(x, high)`` or ``randint_like(x, low, high)``: x's shape, dtype and device."""
    if high is None:
        low, high = 0, low
    dt, dev = _like("randint_like", input, dtype, device)
    return randint(low, high, input.shape, generator=generator, dtype=dt, device=dev, requires_grad=requires_grad)


def _steps(op: str, steps: Any) -> int:
    n = operator.index(steps)
    if n < 0:
        raise RuntimeError(f"[{op}] expected a non-negative number of steps, got {n}")
    return n


def _linspace64(start: float, end: float, n: int) -> np.ndarray:
    """``n`` points from start to end in double, each half stepped from its own end (as PyTorch, so
    both ends are exact and the points are symmetric)."""
    if n == 1:
        return np.array([start], dtype=np.float64)
    step = (end - start) / (n - 1)
    i = np.arange(n, dtype=np.float64)
    return np.where(i < n // 2, start + step * i, end - step * (n - 1 - i))


def linspace(start: Any, end: Any, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (default float dtype)."""
    n = _steps("linspace", steps)
    dt = _default_dtype[0] if dtype is None else to_dtype(dtype, "linspace")
    vals = _linspace64(float(_number(start)), float(_number(end)), n)
    return _new(vals.astype(dt), device, requires_grad)


def logspace(start: Any, end: Any, steps: int, base: float = 10.0, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``base ** linspace(start, end, steps)``."""
    n = _steps("logspace", steps)
    dt = _default_dtype[0] if dtype is None else to_dtype(dtype, "logspace")
    vals = np.power(float(base), _linspace64(float(_number(start)), float(_number(end)), n))
    return _new(vals.astype(dt), device, requires_grad)


def eye(n: int, m: Optional[int] = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """The n x m identity (m = n by default)."""
    rows = operator.index(n)
    cols = rows if m is None else operator.index(m)
    if rows < 0 or cols < 0:
        raise RuntimeError(f"[eye] expected non-negative n and m, got {rows}, {cols}")
    return _factory("eye", lambda s, d: np.eye(s[0], s[1], dtype=d), (rows, cols), dtype, device, requires_grad)


def _tri_indices(op: str, fn: Any, row: int, col: int, offset: int, dtype: Any, device: Any) -> Tensor:
    r, c = operator.index(row), operator.index(col)
    if r < 0 or c < 0:
        raise RuntimeError(f"[{op}] expected non-negative row and col, got {r}, {c}")
    dt = int64.dtype if dtype is None else to_dtype(dtype, op)
    if dt.kind not in "iu":
        raise RuntimeError(f"[{op}] expected an integer dtype, got {dt}")
    idx = np.stack(fn(r, operator.index(offset), c)) if r and c else np.zeros((2, 0), np.int64)
    return _new(idx.astype(dt), device, False)


def tril_indices(row: int, col: int, offset: int = 0, dtype: Any = None, device: Any = None, **_: Any) -> Tensor:
    """The (2, N) row/column indices of the lower triangle of a row x col matrix (diagonal ``offset``)."""
    return _tri_indices("tril_indices", np.tril_indices, row, col, offset, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, dtype: Any = None, device: Any = None, **_: Any) -> Tensor:
    """The (2, N) row/column indices of the upper triangle of a row x col matrix (diagonal ``offset``)."""
    return _tri_indices("triu_indices", np.triu_indices, row, col, offset, dtype, device)


# ---------------------------------------------------------------- new_* methods
def _new_like(self: Tensor, dtype: Any, device: Any) -> tuple[Any, Any]:
    return (self._data.dtype if dtype is None else dtype), (self.device if device is None else device)


def new_tensor(self: Tensor, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _new_like(self, dtype, device)
    return tensor(data, dtype=dt, device=dev, requires_grad=requires_grad)


def new_zeros(self: Tensor, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _new_like(self, dtype, device)
    return zeros(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_ones(self: Tensor, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _new_like(self, dtype, device)
    return ones(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_empty(self: Tensor, *size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    dt, dev = _new_like(self, dtype, device)
    return empty(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_full(self: Tensor, size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    dt, dev = _new_like(self, dtype, device)
    return full(size, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


# ---------------------------------------------------------------- sampling
def _probs(op: str, p: Any) -> np.ndarray:
    """Host float64 copy of a probability argument (tensor or number)."""
    a = np.asarray(p._host() if isinstance(p, Tensor) else p, dtype=np.float64)
    if np.any(~((a >= 0) & (a <= 1))):
        raise RuntimeError(f"[{op}] expected probabilities in [0, 1]")
    return a


def _sampled(like: Tensor, values: np.ndarray, dt: Any = None) -> Tensor:
    """A tensor over host ``values`` cast to ``dt`` (default: like's dtype), on like's device."""
    return Tensor._wrap(_on(values.astype(like._data.dtype if dt is None else dt), like.device))


def bernoulli(input: Tensor, p: Any = None, generator: Any = None, **_: Any) -> Tensor:
    """0/1 samples: each element 1 with probability ``input[i]`` (or ``p`` when given); input's dtype."""
    _tensor_arg("bernoulli", input)
    probs = _probs("bernoulli", input if p is None else p)
    u = _rng(generator).random(input.shape)
    return _sampled(input, u < probs)


def poisson(input: Tensor, generator: Any = None) -> Tensor:
    """Poisson samples with rates ``input`` (input's dtype)."""
    lam = _tensor_arg("poisson", input)._host().astype(np.float64)
    if np.any(~(lam >= 0)):
        raise RuntimeError("[poisson] expected non-negative rates")
    return _sampled(input, _rng(generator).poisson(lam).astype(np.float64))


def _multinomial_checks(w: np.ndarray, n: int, replacement: bool) -> None:
    if w.ndim not in (1, 2):
        raise RuntimeError(f"[multinomial] expected a 1-D or 2-D probability tensor, got {w.ndim}-D")
    if w.shape[-1] == 0:
        raise RuntimeError("[multinomial] expected at least one category")
    if n <= 0:
        raise RuntimeError(f"[multinomial] expected a positive number of samples, got {n}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise RuntimeError("[multinomial] expected finite, non-negative probabilities")
    if np.any(w.sum(-1) <= 0):
        raise RuntimeError("[multinomial] expected each distribution to have a positive sum")
    if not replacement:
        if n > w.shape[-1]:
            raise RuntimeError(f"[multinomial] expected num_samples <= {w.shape[-1]} categories without "
                               f"replacement, got {n}")
        if np.any((w > 0).sum(-1) < n):
            raise RuntimeError(f"[multinomial] expected at least {n} categories of nonzero probability "
                               "without replacement")


def _multinomial_row(rng: np.random.Generator, w: np.ndarray, n: int, replacement: bool) -> np.ndarray:
    if replacement:
        cdf = np.cumsum(w)
        idx: np.ndarray = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(w) - 1)
        return idx
    # Without replacement: each category's exponential race time Exp(1) / w; the n first to finish,
    # in order, are a draw of n distinct categories with PyTorch's (sequential) probabilities.
    with np.errstate(divide="ignore"):
        keys = rng.standard_exponential(len(w)) / w
    return np.argsort(keys, kind="stable")[:n]


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, generator: Any = None,
                **_: Any) -> Tensor:
    """Indices (int64) drawn from the categories of ``input``'s rows, weighted by their (unnormalised)
    values; without replacement no index repeats within a row."""
    w = _tensor_arg("multinomial", input)._host().astype(np.float64)
    n = operator.index(num_samples)
    _multinomial_checks(w, n, replacement)
    rng = _rng(generator)
    rows = [_multinomial_row(rng, r, n, replacement) for r in w.reshape(-1, w.shape[-1])]
    return _sampled(input, np.stack(rows).reshape(w.shape[:-1] + (n,)), np.int64)


class _Drawn(Function):
    """Samples drawn with tensor parameters: in the graph of mean / std, with a zero gradient, as
    PyTorch's ``normal`` (a reparameterised draw is ``mean + std * randn_like(mean)``)."""

    @staticmethod
    def forward(ctx: Any, mean: Any, std: Any, values: Any) -> Any:
        ctx.shapes = [getattr(a, "shape", None) for a in (mean, std)]
        return values

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        xp = xp_of(g)
        return tuple(None if s is None else xp.zeros(s, g.dtype) for s in ctx.shapes) + (None,)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, generator: Any = None, dtype: Any = None,
           device: Any = None, requires_grad: bool = False, **_: Any) -> Tensor:
    """Normal samples: ``normal(mean, std, size)`` for numbers, else mean and std (tensors or numbers)
    broadcast, with their dtype and device."""
    rng = _rng(generator)
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("[normal] expected a size when mean and std are numbers")
        m, s = float(mean), float(std)
        if s < 0:
            raise RuntimeError(f"[normal] expected std >= 0, got {s}")
        return _factory("normal", lambda sh, d: rng.normal(m, s, sh).astype(d), (size,), dtype, device,
                        requires_grad)
    ref = mean if isinstance(mean, Tensor) else std
    mu = np.asarray(mean._host() if isinstance(mean, Tensor) else mean, dtype=np.float64)
    sigma = np.asarray(std._host() if isinstance(std, Tensor) else std, dtype=np.float64)
    if np.any(~(sigma >= 0)):
        raise RuntimeError("[normal] expected std >= 0")
    values = _sampled(ref, rng.normal(mu, sigma, np.broadcast_shapes(mu.shape, sigma.shape)))
    return _Drawn.apply(mean, std, values)


# ---------------------------------------------------------------- in-place random fills
def _fill(self: Tensor, op: str, values: np.ndarray) -> Tensor:
    """``self`` overwritten by host ``values`` (cast to its dtype, moved to its device) under the
    in-place rules (version counter, leaf check)."""
    return set_values(self, op, _on(np.asarray(values).astype(self._data.dtype), self.device))


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    if std < 0:
        raise RuntimeError(f"[normal_] expected std >= 0, got {std}")
    return _fill(self, "normal_", _rng(generator).normal(mean, std, self.shape))


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None, **kw: Any) -> Tensor:
    a, b = kw.get("from", a), kw.get("to", b)
    if a > b:
        raise RuntimeError(f"[uniform_] expected from <= to, got from={a}, to={b}")
    return _fill(self, "uniform_", _rng(generator).uniform(a, b, self.shape))


def bernoulli_(self: Tensor, p: Any = 0.5, generator: Any = None) -> Tensor:
    probs = _probs("bernoulli_", p)
    return _fill(self, "bernoulli_", _rng(generator).random(self.shape) < probs)


def exponential_(self: Tensor, lambd: float = 1.0, generator: Any = None) -> Tensor:
    if lambd <= 0:
        raise RuntimeError(f"[exponential_] expected lambd > 0, got {lambd}")
    return _fill(self, "exponential_", _rng(generator).exponential(1.0 / lambd, self.shape))


def geometric_(self: Tensor, p: float, generator: Any = None) -> Tensor:
    if not 0 < p < 1:
        raise RuntimeError(f"[geometric_] expected 0 < p < 1, got {p}")
    return _fill(self, "geometric_", _rng(generator).geometric(p, self.shape))


def log_normal_(self: Tensor, mean: float = 1.0, std: float = 2.0, generator: Any = None) -> Tensor:
    if std <= 0:
        raise RuntimeError(f"[log_normal_] expected std > 0, got {std}")
    return _fill(self, "log_normal_", _rng(generator).lognormal(mean, std, self.shape))


def cauchy_(self: Tensor, median: float = 0.0, sigma: float = 1.0, generator: Any = None) -> Tensor:
    return _fill(self, "cauchy_", median + sigma * _rng(generator).standard_cauchy(self.shape))


def _random_bound(dt: np.dtype[Any]) -> int:
    """The exclusive upper bound of ``random_()`` with no bounds: 2**mantissa digits for floats."""
    if dt.kind == "b":
        return 2
    if _is_float(dt):
        return 1 << {2: 11, 4: 24, 8: 53}[dt.itemsize] if dt.kind == "f" else 1 << 8
    return int(np.iinfo(dt).max) + 1


def random_(self: Tensor, *args: Any, generator: Any = None, **kw: Any) -> Tensor:
    """``random_()``, ``random_(to)`` or ``random_(from, to)``: integers uniform on [from, to)."""
    lo, hi = 0, kw.get("to")
    if len(args) == 1:
        hi = args[0]
    elif len(args) == 2:
        lo, hi = args
    lo = kw.get("from", lo)
    hi = _random_bound(self._data.dtype) if hi is None else hi
    if lo >= hi:
        raise RuntimeError(f"[random_] expected from < to, got from={lo}, to={hi}")
    return _fill(self, "random_", _rng(generator).integers(lo, hi, self.shape))


def _method_bernoulli(self: Tensor, p: Any = None, generator: Any = None) -> Tensor:
    return bernoulli(self, p, generator=generator)


def _method_multinomial(self: Tensor, num_samples: int, replacement: bool = False,
                        generator: Any = None) -> Tensor:
    return multinomial(self, num_samples, replacement, generator=generator)


METHODS: dict[str, Any] = {
    "half": _converter(DTYPES["float16"]), "int": _converter(DTYPES["int32"]), "short": _converter(DTYPES["int16"]),
    "char": _converter(DTYPES["int8"]), "byte": _converter(DTYPES["uint8"]), "bool": _converter(DTYPES["bool"]),
    "type": type_, "is_floating_point": is_floating_point, "is_complex": is_complex, "element_size": element_size,
    "new_tensor": new_tensor, "new_zeros": new_zeros, "new_ones": new_ones, "new_empty": new_empty,
    "new_full": new_full,
    "normal_": normal_, "uniform_": uniform_, "bernoulli_": bernoulli_, "exponential_": exponential_,
    "geometric_": geometric_, "log_normal_": log_normal_, "cauchy_": cauchy_, "random_": random_,
    "bernoulli": _method_bernoulli, "multinomial": _method_multinomial,
}
if "bfloat16" in DTYPES:
    METHODS["bfloat16"] = _converter(DTYPES["bfloat16"])

FUNCTIONS: dict[str, Any] = {
    **DTYPES, "dtype": dtype, "finfo": finfo, "iinfo": iinfo, "Size": Size,
    "get_default_dtype": get_default_dtype, "set_default_dtype": set_default_dtype,
    "is_floating_point": is_floating_point, "is_complex": is_complex, "is_tensor": is_tensor,
    "Generator": _random.Generator, "default_generator": _random.default_generator(),
    "manual_seed": _random.manual_seed, "seed": _random.seed, "initial_seed": _random.initial_seed,
    "get_rng_state": _random.get_rng_state, "set_rng_state": _random.set_rng_state,
    "tensor": tensor, "as_tensor": as_tensor, "asarray": asarray, "from_numpy": from_numpy,
    "scalar_tensor": scalar_tensor, "zeros": zeros, "ones": ones, "empty": empty, "full": full,
    "zeros_like": zeros_like, "ones_like": ones_like, "empty_like": empty_like, "full_like": full_like,
    "arange": arange, "linspace": linspace, "logspace": logspace, "eye": eye,
    "tril_indices": tril_indices, "triu_indices": triu_indices,
    "rand": rand, "randn": randn, "randint": randint, "randperm": randperm,
    "rand_like": rand_like, "randn_like": randn_like, "randint_like": randint_like,
    "bernoulli": bernoulli, "multinomial": multinomial, "normal": normal, "poisson": poisson,
}
