"""The PyTorch-surface op registry: tensor functions and methods declared once, tested by table.

Each ``SurfaceOp`` names one op of the PyTorch-shaped tensor surface (``nnfast.exp``,
``Tensor.masked_fill``, ``nnfast.bmm`` ...), the nnfast call, a float64 NumPy reference,
sample inputs (sizes 1, 7 and odd ones among them), whether it is differentiable, and the
PyTorch call used as a second oracle when torch is installed. ``test_surface.py`` generates,
for every op x device present (the emulated ``cuda`` device included):
  * forward against the reference (float64 and float32),
  * float64 gradcheck on the real code path (``grads`` names the arguments differentiated),
  * non-contiguous float inputs give the same result as contiguous ones,
  * the PyTorch comparison (outputs, and gradients of a fixed projection) when torch is present,
  * error inputs: the call raises the exception type with a message matching ``[op] expected``.
ADDING AN OP = ADDING ONE ``SurfaceOp`` to the area's table (``tests/surface_<area>.py``,
listed in ``AREAS`` below).

Sample arguments: float ndarrays become float tensors (the dtype under test), integer and bool
ndarrays become tensors of their own dtype, ``Raw(value)`` passes any value through untouched
(Python scalars, shapes and dims pass through as they are), and ``Seq([...])`` becomes a list
of tensors (for ``cat`` / ``stack``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

try:  # optional oracle
    import torch
except ImportError:  # pragma: no cover - torch is not a dependency
    torch = None

import nnfast

AREAS = ("surface_pointwise", "surface_reduction", "surface_shape", "surface_indexing", "surface_creation",
         "surface_linalg", "surface_nn")


@dataclass
class Raw:
    """A sample argument passed to both nnfast and the reference as it is."""
    value: Any


@dataclass
class Seq:
    """A list of arrays: a list of tensors for nnfast / torch, a list of arrays for the reference."""
    items: list


@dataclass
class Sample:
    id: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    grads: Optional[tuple] = None   # indices of args differentiated (None: every float ndarray arg)


@dataclass
class ErrorCase:
    id: str
    thunk: Callable[[], Any]
    exc: type
    match: str


@dataclass
class SurfaceOp:
    name: str                                   # as users write it: "exp", "Tensor.masked_fill", "bmm"
    call: Callable                              # call(*args, **kwargs) -> Tensor | tuple of Tensors
    ref: Optional[Callable]                     # ref(*float64 arrays, **kwargs) -> array | tuple
    samples: Callable[[np.random.Generator], list]
    differentiable: bool = True
    torch_call: Optional[Callable] = None       # torch_call(*torch tensors, **kwargs); None: no torch oracle
    dtypes: tuple = (np.float64, np.float32)
    tol: dict = field(default_factory=lambda: {np.float64: (1e-10, 1e-12), np.float32: (2e-5, 2e-6)})
    grad_tol: tuple = (1e-5, 1e-3)              # gradcheck atol, rtol
    devices: tuple = ("cpu", "cuda")
    errors: Callable[[], list] = list           # () -> [ErrorCase]
    exact_dtype: bool = True                    # the output dtype must equal torch's (when torch present)
    noncontig: bool = True


def registry() -> list[SurfaceOp]:
    ops: list[SurfaceOp] = []
    for area in AREAS:
        try:
            mod = importlib.import_module(area)
        except ModuleNotFoundError as e:  # an area with no table yet
            if e.name != area:
                raise
            continue
        ops.extend(mod.OPS)
    names = [o.name for o in ops]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate SurfaceOp names: {sorted(dup)}"
    return ops


# ------------------------------------------------------------------ sample conversion
def _is_float_array(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def to_nnfast(a: Any, dtype: Any, device: str, requires_grad: bool = False, noncontig: bool = False) -> Any:
    if isinstance(a, Raw):
        return a.value
    if isinstance(a, Seq):
        return [to_nnfast(x, dtype, device, requires_grad, noncontig) for x in a.items]
    if isinstance(a, np.ndarray):
        arr = a.astype(dtype) if a.dtype.kind == "f" else a
        if noncontig and arr.ndim > 0 and arr.dtype.kind == "f":
            big = np.full(arr.shape[:-1] + (2 * arr.shape[-1],), np.nan, dtype=arr.dtype)
            big[..., ::2] = arr
            arr = big[..., ::2]
        t = nnfast.from_numpy(arr)
        if device != "cpu":
            t = t.to(device)
            if noncontig and arr.ndim > 0 and arr.dtype.kind == "f":  # keep the strided layout on the device
                xp = nnfast._dispatch.xp_of(t._data)
                big = xp.full(arr.shape[:-1] + (2 * arr.shape[-1],), np.nan, dtype=arr.dtype)
                big[..., ::2] = t._data
                t = nnfast.Tensor._wrap(big[..., ::2])
        if requires_grad and a.dtype.kind == "f":
            t.requires_grad_(True)
        return t
    return a


def to_ref(a: Any) -> Any:
    if isinstance(a, Raw):
        return a.value
    if isinstance(a, Seq):
        return [to_ref(x) for x in a.items]
    return a


def to_torch(a: Any, dtype: Any, requires_grad: bool = False) -> Any:
    if isinstance(a, Raw):
        return a.value
    if isinstance(a, Seq):
        return [to_torch(x, dtype, requires_grad) for x in a.items]
    if isinstance(a, np.ndarray):
        arr = a.astype(dtype) if a.dtype.kind == "f" else a
        t = torch.from_numpy(np.array(arr, copy=True, order="C"))
        if requires_grad and a.dtype.kind == "f":
            t.requires_grad_(True)
        return t
    return a


def grad_indices(sample: Sample) -> tuple:
    if sample.grads is not None:
        return sample.grads
    return tuple(i for i, a in enumerate(sample.args)
                 if _is_float_array(a) or (isinstance(a, Seq) and all(_is_float_array(x) for x in a.items)))


def outputs(r: Any) -> tuple:
    """An op's result as a tuple of outputs (a namedtuple such as (values, indices) included)."""
    return tuple(r) if isinstance(r, (tuple, list)) else (r,)


def host(x: Any) -> np.ndarray:
    if isinstance(x, nnfast.Tensor):
        return np.asarray(x.detach().cpu()._data)
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x)
