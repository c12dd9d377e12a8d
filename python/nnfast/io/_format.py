"""The safetensors format, read and written in pure Python + NumPy.

A file is::

    8 bytes   N, the header length, unsigned little-endian
    N bytes   UTF-8 JSON object {name: {"dtype", "shape", "data_offsets": [begin, end]},
              optional "__metadata__": {str: str}}, padded with spaces so N % 8 == 0
    rest      the byte buffer: each tensor C-contiguous, little-endian, at
              buffer[begin:end]; the tensors cover the buffer exactly (no holes,
              no overlaps, no trailing bytes)

The writer emits what the reference (Rust) writer emits for the same tensor order:
compact JSON, fields in the order dtype/shape/data_offsets, ``__metadata__`` first.
Tensors are laid out in the order given (the reference sorts by dtype size, then name).

The reader validates the whole header against the file size before it allocates or
reads any tensor, so a corrupt or hostile file raises ``CheckpointError`` (a
``ValueError`` whose message starts with ``[load]``) and never allocates more than
the file holds. It is stricter than the reference in two places, on purpose: entry
objects may hold only ``dtype``/``shape``/``data_offsets``, and BOOL bytes must be 0 or 1.
"""
from __future__ import annotations

import json
import re
import struct
import sys
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

MAX_HEADER_SIZE = 100_000_000  # the reference reader's limit
MAX_NDIM = 64  # NumPy's limit
_INTP_MAX = 2**63 - 1
_LITTLE = sys.byteorder == "little"


class CheckpointError(ValueError):
    """A checkpoint file (or byte string) that is not valid; the message starts with ``[load]``."""


def _fail(msg: str) -> "CheckpointError":
    return CheckpointError("[load] " + msg)


# ---------------------------------------------------------------- dtypes
# safetensors name -> itemsize. Sub-byte formats (F4, F6_*) are rejected as unsupported.
ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
    "F32": 4, "C64": 8, "F64": 8, "I64": 8, "U64": 8,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F8_E4M3FNUZ": 1, "F8_E5M2FNUZ": 1,
}
_SUBBYTE = ("F4", "F6_E2M3", "F6_E3M2")

_NUMPY = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16), "U16": np.dtype(np.uint16), "F16": np.dtype(np.float16),
    "I32": np.dtype(np.int32), "U32": np.dtype(np.uint32), "F32": np.dtype(np.float32),
    "C64": np.dtype(np.complex64), "F64": np.dtype(np.float64), "I64": np.dtype(np.int64),
    "U64": np.dtype(np.uint64),
}
# Formats NumPy lacks; ml_dtypes provides them (the same names PyTorch and JAX use).
_ML_NAMES = {
    "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "F8_E8M0": "float8_e8m0fnu", "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
}
_FROM_KIND = {("b", 1): "BOOL", ("u", 1): "U8", ("i", 1): "I8", ("i", 2): "I16", ("u", 2): "U16",
              ("f", 2): "F16", ("i", 4): "I32", ("u", 4): "U32", ("f", 4): "F32", ("c", 8): "C64",
              ("f", 8): "F64", ("i", 8): "I64", ("u", 8): "U64"}
_FROM_ML = {v: k for k, v in _ML_NAMES.items()}


def _ml_dtypes() -> Any:
    """The ml_dtypes module, or None. Optional: without it BF16/F8 load widened to float32."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes


def dtype_name(dt: np.dtype) -> str:
    """The safetensors name of a NumPy dtype; TypeError("[save] ...") when it has none."""
    module = getattr(dt.type, "__module__", "")
    if module == "ml_dtypes":
        name = _FROM_ML.get(dt.name)
    elif module == "numpy" and dt.fields is None and dt.subdtype is None:
        name = _FROM_KIND.get((dt.kind, dt.itemsize))
    else:
        name = None
    if name is None:
        raise TypeError(f"[save] dtype {dt} has no safetensors equivalent")
    return name


def _f8_table(exp_bits: int, bias: int, kind: str) -> np.ndarray:
    """float32 value of every byte of an 8-bit float format (exact)."""
    mant_bits = 7 - exp_bits
    out = np.empty(256, np.float32)
    for b in range(256):
        if kind == "e8m0":
            out[b] = np.nan if b == 0xFF else np.float32(2.0 ** (b - 127))
            continue
        sign = -1.0 if b & 0x80 else 1.0
        e = (b >> mant_bits) & ((1 << exp_bits) - 1)
        m = b & ((1 << mant_bits) - 1)
        emax = (1 << exp_bits) - 1
        if kind == "fnuz" and b == 0x80:
            out[b] = np.nan
        elif kind == "ieee" and e == emax:
            out[b] = sign * np.inf if m == 0 else np.nan
        elif kind == "fn" and e == emax and m == (1 << mant_bits) - 1:
            out[b] = np.nan
        elif e == 0:
            out[b] = sign * (m / (1 << mant_bits)) * 2.0 ** (1 - bias)
        else:
            out[b] = sign * (1 + m / (1 << mant_bits)) * 2.0 ** (e - bias)
    return out


_F8_SPECS = {"F8_E4M3": (4, 7, "fn"), "F8_E5M2": (5, 15, "ieee"), "F8_E8M0": (8, 127, "e8m0"),
             "F8_E4M3FNUZ": (4, 8, "fnuz"), "F8_E5M2FNUZ": (5, 16, "fnuz")}
_f8_cache: dict[str, np.ndarray] = {}


def decode_array(raw: np.ndarray, dt: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    """The array for ``raw`` (a fresh, owned, 1-D uint8 array holding one tensor's bytes).

    Native dtypes are views of ``raw`` (no second copy). Without ml_dtypes, BF16 and the
    8-bit floats are widened exactly to float32.
    """
    if dt == "BOOL":
        if raw.size and raw.max() > 1:
            raise _fail(f"tensor {name!r}: BOOL data holds a byte other than 0 or 1")
        return raw.view(np.bool_).reshape(shape)
    npdt = _NUMPY.get(dt)
    if npdt is None:
        ml = _ml_dtypes()
        if ml is not None:
            npdt = np.dtype(getattr(ml, _ML_NAMES[dt]))
        elif dt == "BF16":
            u16 = raw.view("<u2").astype(np.uint32)
            return (u16 << 16).view(np.float32).reshape(shape)
        else:
            table = _f8_cache.get(dt)
            if table is None:
                table = _f8_cache[dt] = _f8_table(*_F8_SPECS[dt])
            widened: np.ndarray = table[raw]
            return widened.reshape(shape)
    if _LITTLE or npdt.itemsize == 1:
        return raw.view(npdt).reshape(shape)
    return raw.view(npdt.newbyteorder("<")).astype(npdt).reshape(shape)  # pragma: no cover - big-endian host


# ---------------------------------------------------------------- header
class Entry(NamedTuple):
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _fail(f"header JSON has the key {k!r} twice")
        out[k] = v
    return out


def _no_constants(s: str) -> Any:
    raise _fail(f"header JSON holds {s}, which is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def parse_json(text: str, what: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN/Infinity, only whitespace after the value."""
    try:
        obj, end = _DECODER.raw_decode(text)
    except CheckpointError:
        raise
    except RecursionError:
        raise _fail(f"{what} nests too deeply") from None
    except ValueError as e:  # JSONDecodeError, or an integer with too many digits
        raise _fail(f"{what} is not valid JSON: {e}") from None
    if text[end:].strip(" \t\r\n"):
        raise _fail(f"{what} has data after the JSON value at character {end}")
    return obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _check_unicode(obj: Any) -> None:
    """JSON may escape lone UTF-16 surrogates (\\ud800); they are not Unicode text, and the
    reference reader rejects them."""
    stack = [obj]
    while stack:
        x = stack.pop()
        items = list(x.items()) if isinstance(x, dict) else x if isinstance(x, list) else [x]
        for v in items:
            if isinstance(v, tuple):  # (key, value)
                stack.extend(v)
            elif isinstance(v, (dict, list)):
                stack.append(v)
            elif isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    raise _fail(f"header holds a string with a lone surrogate escape: {_short(v)}") from None


def _is_int(x: Any) -> bool:
    return type(x) is int


def read_prefix(first8: bytes, total: int) -> int:
    """Header length N from the first 8 bytes, checked against the total size."""
    if total < 8:
        raise _fail(f"file is {total} bytes, shorter than the 8-byte header length")
    n: int = struct.unpack("<Q", first8)[0]
    if n > MAX_HEADER_SIZE:
        raise _fail(f"header length {n} is larger than the limit of {MAX_HEADER_SIZE} bytes")
    if 8 + n > total:
        raise _fail(f"header length {n} runs past the end of the file ({total} bytes)")
    return n


_FOREIGN = ((b"PK\x03\x04", "a zip archive, as torch.save writes"),
            (b"\x80", "a pickle, as torch.save (legacy format) or pickle.dump writes"))


def explain_foreign(first: bytes, err: CheckpointError) -> None:
    """Raise a clearer error than ``err`` when ``first`` (the file's first bytes) shows a known
    non-safetensors format; return otherwise."""
    for magic, what in _FOREIGN:
        if first.startswith(magic) and (magic != b"\x80" or first[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
            raise _fail(f"the file is {what}, not a safetensors checkpoint; nnfast never unpickles. Convert it "
                        "once with PyTorch: safetensors.torch.save_file(torch.load(path), new_path) for a "
                        "state_dict") from err


def parse_header(raw: bytes, buffer_len: int) -> tuple[list[Entry], Optional[dict[str, str]]]:
    """Entries (in header order) and metadata; every check that needs no tensor data."""
    if not raw.startswith(b"{"):
        raise _fail("header does not start with '{'")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(f"header is not valid UTF-8 (byte {e.start} of the header)") from None
    obj = parse_json(text, "header")
    if _SURROGATE_ESCAPE.search(text):
        _check_unicode(obj)
    if not isinstance(obj, dict):  # pragma: no cover - a value starting with '{' is an object
        raise _fail("header is not a JSON object")
    metadata: Optional[dict[str, str]] = None
    entries: list[Entry] = []
    for name, info in obj.items():
        if name == "__metadata__":
            if info is None:
                continue
            if not isinstance(info, dict):
                raise _fail(f"__metadata__ is a {type(info).__name__}, expected an object of strings")
            for k, v in info.items():
                if not isinstance(v, str):
                    raise _fail(f"__metadata__[{k!r}] is a {type(v).__name__}, expected a string")
            metadata = info
            continue
        entries.append(_check_entry(name, info, buffer_len))
    pos = 0
    for ent in sorted(entries, key=lambda ent: (ent.begin, ent.end)):
        if ent.begin < pos:
            raise _fail(f"tensor {ent.name!r}: data_offsets [{ent.begin}, {ent.end}] overlap the previous tensor")
        if ent.begin > pos:
            raise _fail(f"tensor {ent.name!r}: data_offsets [{ent.begin}, {ent.end}] leave a hole at byte {pos}")
        pos = ent.end
    if pos != buffer_len:
        raise _fail(f"tensors end at byte {pos} of the data buffer but it holds {buffer_len} bytes "
                    "(trailing bytes)")
    return entries, metadata


_FIELDS = ("dtype", "shape", "data_offsets")


def _check_entry(name: str, info: Any, buffer_len: int) -> Entry:
    if not isinstance(info, dict):
        raise _fail(f"tensor {name!r}: entry is a {type(info).__name__}, expected an object")
    missing = [f for f in _FIELDS if f not in info]
    if missing:
        raise _fail(f"tensor {name!r}: entry lacks {', '.join(missing)}")
    extra = [f for f in info if f not in _FIELDS]
    if extra:
        raise _fail(f"tensor {name!r}: entry has unknown fields {extra}")
    dt = info["dtype"]
    if not isinstance(dt, str):
        raise _fail(f"tensor {name!r}: dtype is a {type(dt).__name__}, expected a string")
    if dt not in ITEMSIZE:
        if dt in _SUBBYTE:
            raise _fail(f"tensor {name!r}: dtype {dt} (sub-byte) is not supported")
        raise _fail(f"tensor {name!r}: unknown dtype {dt[:40]!r}")
    shape = info["shape"]
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _fail(f"tensor {name!r}: shape must be a list of non-negative integers, got {_short(shape)}")
    if len(shape) > MAX_NDIM:
        raise _fail(f"tensor {name!r}: shape has {len(shape)} dimensions, more than {MAX_NDIM}")
    offs = info["data_offsets"]
    if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) and o >= 0 for o in offs)):
        raise _fail(f"tensor {name!r}: data_offsets must be [begin, end] non-negative integers, "
                    f"got {_short(offs)}")
    begin, end = offs
    if begin > end:
        raise _fail(f"tensor {name!r}: data_offsets [{begin}, {end}] end before they begin")
    if end > buffer_len:
        raise _fail(f"tensor {name!r}: data_offsets [{begin}, {end}] run past the data buffer "
                    f"of {buffer_len} bytes")
    itemsize = ITEMSIZE[dt]
    count = 1
    nonzero = itemsize
    for d in shape:  # Python ints: no overflow
        count *= d
        nonzero *= d or 1
    if count * itemsize != end - begin:
        raise _fail(f"tensor {name!r}: shape {_short(shape)} of {dt} needs {count * itemsize} bytes, "
                    f"data_offsets give {end - begin}")
    if nonzero > _INTP_MAX:  # only reachable with a 0 dimension; NumPy refuses such shapes
        raise _fail(f"tensor {name!r}: shape {_short(shape)} is too large for an array")
    return Entry(name, dt, tuple(shape), begin, end)


def _short(x: Any) -> str:
    s = repr(x)
    return s if len(s) <= 80 else s[:77] + "..."


def build_header(entries: list[tuple[str, str, list[int], int]], metadata: Optional[dict[str, str]]) -> bytes:
    """Header bytes (padded) for (name, dtype, shape, nbytes) laid out in order."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    for name, dt, shape, nbytes in entries:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"[save] a tensor name or metadata string is not valid Unicode: {e}") from None
    if len(raw) > MAX_HEADER_SIZE:
        raise ValueError(f"[save] header of {len(raw)} bytes exceeds the {MAX_HEADER_SIZE}-byte limit")
    return raw + b" " * (-len(raw) % 8)


def encode_array(a: np.ndarray, name: str) -> tuple[str, list[int], np.ndarray]:
    """(dtype name, shape, C-contiguous little-endian bytes as a 1-D uint8 array)."""
    dt = dtype_name(a.dtype)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not _LITTLE and a.dtype.itemsize > 1):
        a = a.astype(a.dtype.newbyteorder("<"))
    if dt == "BOOL":  # canonical 0/1 bytes even for a bool view of other bytes
        a = np.not_equal(a.view(np.uint8), 0)
    if not a.flags.c_contiguous:
        a = a.copy(order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
    return dt, [int(d) for d in a.shape], a.reshape(-1).view(np.uint8)


def check_metadata(metadata: Any) -> Optional[dict[str, str]]:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise TypeError("[save] metadata must be a dict of str to str")
    return dict(metadata)


def decode_all(entries: list[Entry], read: Callable[[Entry], np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays in header order; ``read(entry)`` returns the entry's bytes as a fresh uint8 array."""
    arrays = {}
    for e in sorted(entries, key=lambda e: (e.begin, e.end)):
        arrays[e.name] = decode_array(read(e), e.dtype, e.shape, e.name)
    return {e.name: arrays[e.name] for e in entries}
