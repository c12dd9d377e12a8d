"""Checkpoints as safetensors files: no pickle, readable by PyTorch and other frameworks.

Two levels:

- ``save_file(tensors, path, metadata)`` / ``load_file(path)`` (and ``save_bytes`` /
  ``load_bytes``) read and write flat ``{name: tensor}`` safetensors files, like the
  ``safetensors`` package (which nnfast does not need).
- ``nnfast.save(obj, path)`` / ``nnfast.load(path)`` take any nested dict/list/tuple of
  tensors, arrays, numbers, strings, bytes, bools and None -- a model or optimizer
  ``state_dict()``, scheduler state, ``nnfast.get_rng_state()``, step counters -- and
  give back an equal object: tuples stay tuples, int keys stay ints, ints of any size
  and floats (nan and inf included) are exact. Tensors become safetensors entries; the
  rest is JSON in ``__metadata__["nnfast.structure"]`` (see ``_structure``). A model
  ``state_dict()`` is written as plain entries named by its keys, so
  ``safetensors.torch.load_file`` reads it directly.

Writes to a path are atomic and durable (see ``_atomic``). Loads validate the whole
header before reading tensor data; a malformed file raises ``CheckpointError``, a
``ValueError`` whose message starts with ``[load]``. Loaded arrays are fresh, writable
copies. BF16 and 8-bit float entries load as ``ml_dtypes`` arrays when that package is
installed, else widened exactly to float32.
"""
from __future__ import annotations

import os
import struct
from collections import OrderedDict
from typing import Any, Optional, Union

import numpy as np

from .._dispatch import is_cuda, to_host
from ..tensor import Tensor, _to_device_array
from ..tensor import device as _device
from . import _atomic, _format, _structure
from ._format import MAX_HEADER_SIZE, CheckpointError

__all__ = ["save", "load", "save_file", "load_file", "save_bytes", "load_bytes", "dumps", "loads",
           "load_metadata", "CheckpointError", "MAX_HEADER_SIZE"]

PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------- writing
def _host_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x._data
    if is_cuda(x):  # saved from cuda: a host copy (CuPy, or an emulated cuda array)
        x = to_host(x)
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"[save] tensor {name!r} is a {type(x).__name__}, expected a Tensor or numpy.ndarray")
    return x


def _serialize(tensors: dict[str, Any], metadata: Optional[dict[str, str]]) -> list[Any]:
    """[header-length, header, data...] chunks; every check happens here, before any write."""
    if not isinstance(tensors, dict):
        raise TypeError(f"[save] expected a dict of name -> tensor, got {type(tensors).__name__}")
    metadata = _format.check_metadata(metadata)
    entries = []
    datas = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"[save] tensor names must be str, got {type(name).__name__}")
        if name == "__metadata__":
            raise ValueError("[save] '__metadata__' is reserved and cannot name a tensor")
        dt, shape, data = _format.encode_array(_host_array(value, name), name)
        entries.append((name, dt, shape, data.size))
        datas.append(data)
    header = _format.build_header(entries, metadata)
    return [struct.pack("<Q", len(header)), header] + [d for d in datas if d.size]


def save_file(tensors: dict[str, Any], filename: PathLike, metadata: Optional[dict[str, str]] = None) -> None:
    """Write ``{name: Tensor | ndarray}`` as a safetensors file, atomically."""
    _atomic.atomic_write(filename, _serialize(tensors, metadata))


def save_bytes(tensors: dict[str, Any], metadata: Optional[dict[str, str]] = None) -> bytes:
    """The safetensors bytes of ``{name: Tensor | ndarray}``."""
    return b"".join(bytes(c) if isinstance(c, np.ndarray) else c for c in _serialize(tensors, metadata))


def _encode_obj(obj: Any, metadata: Optional[dict[str, str]]) -> list[Any]:
    user = _format.check_metadata(metadata) or {}
    reserved = [k for k in user if k.startswith("nnfast.")]
    if reserved:
        raise ValueError(f"[save] metadata keys starting with 'nnfast.' are reserved: {reserved}")
    arrays, structure = _structure.encode(obj)
    if structure is None:
        meta = {"format": "pt", **user}
    else:
        meta = {**user, _structure.STRUCTURE_KEY: structure}
    return _serialize(arrays, meta)


def save(obj: Any, f: Any, pickle_module: Any = None, pickle_protocol: Any = None, *,
         metadata: Optional[dict[str, str]] = None, **_torch_options: Any) -> None:
    """Save a nested object of tensors (e.g. a state_dict) to a path or binary file object.

    Saving to a path is atomic: the file is either the old one or the complete new one.
    ``metadata`` adds str -> str entries to the safetensors ``__metadata__``. A Module or
    any other object raises TypeError: save ``model.state_dict()`` instead. PyTorch's
    pickle options (``pickle_module``, ``pickle_protocol``, ``_use_new_zipfile_serialization``
    ...) are accepted and ignored: nothing is pickled.
    """
    chunks = _encode_obj(obj, metadata)
    if hasattr(f, "write"):
        for c in chunks:
            f.write(c)
        return
    _atomic.atomic_write(f, chunks)


def dumps(obj: Any, *, metadata: Optional[dict[str, str]] = None) -> bytes:
    """The bytes ``nnfast.save`` would write for ``obj``."""
    return b"".join(bytes(c) if isinstance(c, np.ndarray) else c for c in _encode_obj(obj, metadata))


# ---------------------------------------------------------------- reading
class _Source:
    """Validated header of a file or byte string, and a way to read each tensor's bytes."""

    def __init__(self, total: int, read_at: Any) -> None:
        self.read_at = read_at  # (offset, nbytes) -> fresh uint8 array
        first8 = bytes(read_at(0, min(8, total)))
        try:
            n = _format.read_prefix(first8 if total >= 8 else b"", total)
        except CheckpointError as e:
            _format.explain_foreign(first8, e)
            raise
        self.start = 8 + n
        self.entries, self.metadata = _format.parse_header(bytes(read_at(8, n)), total - self.start)

    def arrays(self) -> dict[str, np.ndarray]:
        return _format.decode_all(self.entries, lambda e: self.read_at(self.start + e.begin, e.end - e.begin))


def _bytes_source(data: Any) -> _Source:
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    total = mv.nbytes

    def read_at(off: int, n: int) -> np.ndarray:
        if n == 0:
            return np.empty(0, np.uint8)
        return np.frombuffer(mv, np.uint8, n, off).copy()

    return _Source(total, read_at)


def _file_source(f: Any) -> _Source:
    total = os.fstat(f.fileno()).st_size

    def read_at(off: int, n: int) -> np.ndarray:
        out = np.empty(n, np.uint8)
        f.seek(off)
        view = out.data  # a memoryview of out's bytes
        got = 0
        while got < n:  # one read() may return less than asked
            k = f.readinto(view[got:])
            if not k:
                raise CheckpointError(f"[load] file ended at byte {off + got}, expected {off + n} bytes "
                                      "(was it truncated while loading?)")
            got += k
        return out

    return _Source(total, read_at)


def _placer(device: Any) -> Any:
    """array (host) -> array where ``device`` says: a device, or PyTorch's map_location forms.

    A callable is called as ``fn(tensor, "cpu")`` and must return a Tensor (so
    ``lambda storage, loc: storage`` keeps tensors on the cpu). A dict maps saved locations
    to devices; nnfast files do not record where a tensor was, so every tensor counts as
    saved on ``"cpu"`` (``{"cuda:0": "cpu"}`` loads to the cpu, ``{"cpu": "cuda"}`` to cuda).
    """
    if callable(device) and not isinstance(device, (str, _device)):
        fn = device

        def place(arr: np.ndarray) -> Any:
            out = fn(Tensor._wrap(arr), "cpu")
            if not isinstance(out, Tensor):
                raise TypeError(f"[load] expected map_location to return a Tensor, got {type(out).__name__}")
            return out._data

        return place
    if isinstance(device, dict):
        device = device.get("cpu", "cpu")
    dev = _device(device if device is not None else "cpu")
    return (lambda arr: arr) if dev.type == "cpu" else (lambda arr: _to_device_array(arr, dev))


def _wrapper(device: Any) -> Any:
    place = _placer(device)

    def wrap(arr: np.ndarray, requires_grad: bool = False, parameter: bool = False) -> Tensor:
        data = place(arr)
        if parameter:
            from ..nn.module import Parameter

            return Parameter(data, requires_grad=requires_grad)
        return Tensor._wrap(data, requires_grad)

    return wrap


def _tensors(src: _Source, device: Any) -> dict[str, Tensor]:
    wrap = _wrapper(device)
    return {k: wrap(a) for k, a in src.arrays().items()}


def _obj(src: _Source, device: Any) -> Any:
    wrap = _wrapper(device)
    text = (src.metadata or {}).get(_structure.STRUCTURE_KEY)
    if text is None:
        return OrderedDict((k, wrap(a)) for k, a in src.arrays().items())
    # Check the structure against the header first, so a bad one costs no data read.
    placeholders = {e.name: _placeholder(e) for e in src.entries}
    _structure.decode(text, placeholders, lambda a, rg, p: a)
    return _structure.decode(text, src.arrays(), wrap)


def _placeholder(e: _format.Entry) -> np.ndarray:
    """A tiny array with the entry's dtype and ndim (what the structure checks look at)."""
    if not e.shape:
        return _format.decode_array(np.zeros(_format.ITEMSIZE[e.dtype], np.uint8), e.dtype, (), e.name)
    return _format.decode_array(np.empty(0, np.uint8), e.dtype, (0,) * len(e.shape), e.name)


def load_file(filename: PathLike, device: Any = "cpu") -> dict[str, Tensor]:
    """``{name: Tensor}`` from a safetensors file, in header order."""
    with open(filename, "rb") as f:
        return _tensors(_file_source(f), device)


def load_bytes(data: Any, device: Any = "cpu") -> dict[str, Tensor]:
    """``{name: Tensor}`` from safetensors bytes (any bytes-like object), in header order."""
    return _tensors(_bytes_source(data), device)


def load_metadata(source: Any) -> Optional[dict[str, str]]:
    """The ``__metadata__`` of a safetensors file (path) or bytes, after validating the header."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _bytes_source(source).metadata
    with open(source, "rb") as f:
        return _file_source(f).metadata


def load(f: Any, device: Any = "cpu", pickle_module: Any = None, *, map_location: Any = None,
         weights_only: Optional[bool] = None, mmap: Optional[bool] = None, **_pickle_load_args: Any) -> Any:
    """Load what ``nnfast.save`` wrote (or any safetensors file) from a path or binary file object.

    Tensors go to ``device``; ``map_location`` (PyTorch's name) overrides it and may be a
    device, a dict or a callable (see ``_placer``). ``weights_only``, ``mmap`` and pickle
    options are accepted and ignored: nnfast never unpickles, so loading is always safe.
    A file without nnfast structure (a plain safetensors file) loads as an OrderedDict of
    Tensors. A file written by ``torch.save`` (pickle) raises CheckpointError saying so.
    """
    if map_location is not None:
        device = map_location
    if hasattr(f, "read"):
        return _obj(_bytes_source(f.read()), device)
    with open(f, "rb") as fh:
        return _obj(_file_source(fh), device)


def loads(data: Any, device: Any = "cpu") -> Any:
    """The object in ``nnfast.save`` bytes (see ``dumps``)."""
    return _obj(_bytes_source(data), device)
