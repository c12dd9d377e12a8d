"""Nested Python objects <-> flat safetensors entries plus a JSON description.

``nnfast.save`` flattens every tensor of ``obj`` into a safetensors entry and stores the
rest of ``obj`` as JSON in ``__metadata__["nnfast.structure"]``::

    {"version": 1, "root": NODE}

    NODE := null | true | false | "string"
          | 123                       int with |x| <= 2**53 (exact in any JSON reader)
          | 1.5                       finite float (shortest repr; always has '.' or 'e')
          | [NODE, ...]               list
          | {"int": "-0x1f"}          any other int, in hex (no digit limits)
          | {"f64": "7ff8000000000000"}  nan/inf, the IEEE-754 bits (exact, payload kept)
          | {"complex": [NODE, NODE]} complex (two float nodes)
          | {"bytes": "00ff"}         bytes, in hex
          | {"tuple": [NODE, ...]}
          | {"dict": [[KEY, NODE], ...]}   dict, in insertion order; KEY is a NODE
          | {"odict": [[KEY, NODE], ...]}  collections.OrderedDict
          | {"counter": [[KEY, NODE], ...]}  collections.Counter (MultiStepLR's milestones)
          | {"tensor": NAME [, "requires_grad": true] [, "parameter": true]}
          | {"ndarray": NAME}         numpy.ndarray
          | {"numpy": NAME}           numpy scalar (a 0-d entry)

NAME is a safetensors entry. Entries are named by their path with dots
(``state.0.exp_avg``), a ``#k`` suffix when a name repeats; a tensor object that
appears twice is stored once and loads as one object again.

A dict of str -> plain ``Tensor`` (a model ``state_dict()``) is stored without any
structure: entries named exactly by its keys and ``{"format": "pt"}`` metadata, which
is what PyTorch's safetensors loader and transformers expect; it loads back as an
OrderedDict of Tensors.
"""
from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter, OrderedDict
from typing import Any, Callable, Optional

import numpy as np

from ..tensor import Tensor
from ._format import CheckpointError, parse_json

STRUCTURE_KEY = "nnfast.structure"
_MAPPINGS: dict[type, str] = {dict: "dict", OrderedDict: "odict", Counter: "counter"}  # type -> tag
VERSION = 1
_EXACT_INT = 2**53


def _fail(msg: str) -> CheckpointError:
    return CheckpointError("[load] " + msg)


def _utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_plain_state_dict(obj: Any) -> bool:
    return (type(obj) in (dict, OrderedDict)
            and all(type(k) is str and k != "__metadata__" and _utf8(k) for k in obj)
            and all(type(v) is Tensor and not v.requires_grad for v in obj.values()))


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, Any] = {}  # entry name -> Tensor | ndarray | numpy scalar
        self.seen: dict[int, tuple[Any, Any]] = {}  # id -> (object, node): one entry per object
        self.active: set[int] = set()  # containers on the current path (cycle check)

    def _name(self, path: list[str]) -> str:
        base = ".".join(path) if path else "_"
        if not _utf8(base):
            base = base.encode("utf-8", "backslashreplace").decode("utf-8")
        name, k = base, 1
        while name in self.arrays or name == "__metadata__":
            name = f"{base}#{k}"
            k += 1
        return name

    def _array(self, x: Any, tag: str, path: list[str], extra: Optional[dict[str, Any]] = None) -> Any:
        hit = self.seen.get(id(x))
        if hit is not None:
            return hit[1]
        name = self._name(path)
        self.arrays[name] = x
        node = {tag: name, **(extra or {})}
        if tag != "numpy":  # numpy scalars are values; equal ones need not share
            self.seen[id(x)] = (x, node)
        return node

    def node(self, x: Any, path: list[str]) -> Any:
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x if -_EXACT_INT <= x <= _EXACT_INT else {"int": hex(x)}
        if t is float:
            return x if math.isfinite(x) else {"f64": struct.pack(">d", x).hex()}
        if t is complex:
            return {"complex": [self.node(x.real, path), self.node(x.imag, path)]}
        if t is bytes:
            return {"bytes": x.hex()}
        if isinstance(x, Tensor):
            from ..nn.module import Parameter

            extra: dict[str, Any] = {}
            if x.requires_grad:
                extra["requires_grad"] = True
            if isinstance(x, Parameter):
                extra["parameter"] = True
            return self._array(x, "tensor", path, extra)
        if t is np.ndarray:
            return self._array(x, "ndarray", path)
        if isinstance(x, np.generic):
            return self._array(x, "numpy", path)
        if t in (list, tuple) or t in _MAPPINGS:
            if id(x) in self.active:
                raise ValueError(f"[save] the object refers to itself at {_where(path)}")
            self.active.add(id(x))
            try:
                if t is list:
                    return [self.node(v, path + [str(i)]) for i, v in enumerate(x)]
                if t is tuple:
                    return {"tuple": [self.node(v, path + [str(i)]) for i, v in enumerate(x)]}
                items = [[self.key(k, path), self.node(v, path + [str(k)])] for k, v in x.items()]
                return {_MAPPINGS[t]: items}
            finally:
                self.active.discard(id(x))
        raise _unsupported(x, path)

    def key(self, k: Any, path: list[str]) -> Any:
        if not _hashable_plain(k):
            raise TypeError(f"[save] cannot store a dict key of type {type(k).__name__} at {_where(path)}")
        return self.node(k, path)


_WHAT = ("a state_dict, a tensor, or nested dict/list/tuple of tensors, arrays, numbers, str, bytes, "
         "bool and None")


def _unsupported(x: Any, path: list[str]) -> TypeError:
    """The error for an object nnfast.save cannot store (it never pickles), with what to save instead."""
    t = type(x)
    name = f"{t.__module__}.{t.__qualname__}"
    from ..nn.module import Module

    if isinstance(x, Module):
        hint = "save model.state_dict() instead (and load it with model.load_state_dict)"
    elif callable(getattr(x, "state_dict", None)):
        hint = f"save its state_dict() instead (a {t.__name__} object is not stored)"
    else:
        hint = "save model.state_dict() and plain values instead (nnfast.save never pickles objects)"
    if not path:
        return TypeError(f"[save] expected {_WHAT}, got a {name}; {hint}")
    return TypeError(f"[save] cannot store a {name} at {_where(path)}: expected {_WHAT}; {hint}")


def _hashable_plain(k: Any) -> bool:
    t = type(k)
    if k is None or t in (bool, int, float, complex, str, bytes):
        return True
    return t is tuple and all(_hashable_plain(v) for v in k)


def _where(path: list[str]) -> str:
    return "the top level" if not path else repr(".".join(path))


def encode(obj: Any) -> tuple[dict[str, Any], Optional[str]]:
    """(entry name -> Tensor/ndarray/numpy scalar, structure JSON or None for a plain state dict)."""
    if is_plain_state_dict(obj):
        return dict(obj), None
    enc = _Encoder()
    try:
        root = enc.node(obj, [])
    except RecursionError:
        raise ValueError("[save] the object nests too deeply") from None
    text = json.dumps({"version": VERSION, "root": root}, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return enc.arrays, text


# ---------------------------------------------------------------- decoding
_HEX_INT = re.compile(r"-?0x[0-9a-f]+\Z")
_HEX_F64 = re.compile(r"[0-9a-f]{16}\Z")
_HEX_BYTES = re.compile(r"(?:[0-9a-f]{2})*\Z")
_TAGS = {"int", "f64", "complex", "bytes", "tuple", "dict", "odict", "counter", "tensor", "ndarray", "numpy"}
_MAPPING_OF_TAG = {tag: t for t, tag in _MAPPINGS.items()}


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray], wrap: Callable[[np.ndarray, bool, bool], Any]) -> None:
        self.arrays = arrays
        self.wrap = wrap  # (array, requires_grad, parameter) -> Tensor on the target device
        self.made: dict[str, tuple[tuple[Any, ...], Any]] = {}

    def node(self, n: Any) -> Any:
        t = type(n)
        if n is None or t in (bool, int, float, str):
            return n
        if t is list:
            return [self.node(v) for v in n]
        if t is not dict:  # pragma: no cover - JSON has no other types
            raise _fail(f"structure holds a {t.__name__}")
        tag = next((k for k in n if k in _TAGS), None)
        if tag is None:
            raise _fail(f"structure node has no known tag: {_short(n)}")
        v = n[tag]
        allowed = {"requires_grad", "parameter"} if tag == "tensor" else set()
        extra = set(n) - {tag} - allowed
        if extra:
            raise _fail(f"structure node {tag!r} has unknown fields {sorted(extra)}")
        if tag == "int":
            if not (isinstance(v, str) and _HEX_INT.match(v)):
                raise _fail(f"structure int must be a hex string, got {_short(v)}")
            return int(v, 16)
        if tag == "f64":
            if not (isinstance(v, str) and _HEX_F64.match(v)):
                raise _fail(f"structure f64 must be 16 hex digits, got {_short(v)}")
            return struct.unpack(">d", bytes.fromhex(v))[0]
        if tag == "complex":
            if not (type(v) is list and len(v) == 2):
                raise _fail(f"structure complex must be [real, imag], got {_short(v)}")
            parts = [self.node(p) for p in v]
            if not all(type(p) is float for p in parts):
                raise _fail(f"structure complex parts must be floats, got {_short(v)}")
            return complex(parts[0], parts[1])
        if tag == "bytes":
            if not (isinstance(v, str) and _HEX_BYTES.match(v)):
                raise _fail(f"structure bytes must be a hex string, got {_short(v)}")
            return bytes.fromhex(v)
        if tag == "tuple":
            if type(v) is not list:
                raise _fail(f"structure tuple must hold a list, got {_short(v)}")
            return tuple(self.node(x) for x in v)
        if tag in _MAPPING_OF_TAG:
            if type(v) is not list:
                raise _fail(f"structure {tag} must hold a list of [key, value] pairs, got {_short(v)}")
            out: Any = _MAPPING_OF_TAG[tag]()
            for pair in v:
                if not (type(pair) is list and len(pair) == 2):
                    raise _fail(f"structure {tag} item must be a [key, value] pair, got {_short(pair)}")
                k = self.node(pair[0])
                if not _hashable_plain(k):
                    raise _fail(f"structure {tag} key must be a plain hashable value, got {_short(pair[0])}")
                if k in out:
                    raise _fail(f"structure {tag} has the key {_short(k)} twice")
                out[k] = self.node(pair[1])
            return out
        # tensor / ndarray / numpy
        if not isinstance(v, str):
            raise _fail(f"structure {tag} must name a tensor entry, got {_short(v)}")
        flags = (n.get("requires_grad", False), n.get("parameter", False))
        if not all(type(f) is bool for f in flags):
            raise _fail(f"structure tensor flags must be booleans, got {_short(n)}")
        key = (tag,) + flags
        hit = self.made.get(v)
        if hit is not None:
            if hit[0] != key and tag != "numpy":
                raise _fail(f"tensor entry {v!r} is referenced as different kinds")
            if tag != "numpy":
                return hit[1]
        arr = self.arrays.get(v)
        if arr is None:
            raise _fail(f"structure refers to tensor {_short(v)}, which the file lacks")
        if tag == "tensor":
            if flags[0] and arr.dtype.kind != "f":
                raise _fail(f"tensor {v!r} requires grad but has dtype {arr.dtype}")
            out = self.wrap(arr, *flags)
        elif tag == "ndarray":
            out = arr
        else:
            if arr.ndim != 0:
                raise _fail(f"numpy scalar {v!r} has shape {arr.shape}, expected ()")
            out = arr[()]
        self.made[v] = (key, out)
        return out


def _short(x: Any) -> str:
    s = repr(x)
    return s if len(s) <= 60 else s[:57] + "..."


def decode(text: str, arrays: dict[str, np.ndarray], wrap: Callable[[np.ndarray, bool, bool], Any]) -> Any:
    doc = parse_json(text, STRUCTURE_KEY)
    if type(doc) is not dict or set(doc) != {"version", "root"}:
        raise _fail(f"{STRUCTURE_KEY} must be an object with 'version' and 'root'")
    if doc["version"] != VERSION or type(doc["version"]) is not int:
        raise _fail(f"{STRUCTURE_KEY} version {_short(doc['version'])} is not supported (expected {VERSION})")
    dec = _Decoder(arrays, wrap)
    try:
        obj = dec.node(doc["root"])
    except RecursionError:
        raise _fail(f"{STRUCTURE_KEY} nests too deeply") from None
    unused = [k for k in arrays if k not in dec.made]
    if unused:
        raise _fail(f"tensor {unused[0]!r} is not referenced by {STRUCTURE_KEY}")
    return obj
