"""Turning a list of samples into a batch: ``default_collate``, ``default_convert``, ``collate``.

The rules follow PyTorch's, type by type (the first matching entry of
``default_collate_fn_map`` wins, then mappings, namedtuples and sequences):

- Tensors are stacked along a new dim 0; NumPy arrays are stacked into a Tensor
  (string/object arrays are refused);
- NumPy scalars become a 1-D Tensor of their dtype; Python floats a float64 Tensor;
  Python ints an int64 Tensor (bools a bool Tensor, as ``torch.tensor`` infers);
- str and bytes stay a list;
- dicts/mappings collate per key, namedtuples per field, tuples become a *list* of
  collated fields (PyTorch's backward-compatible behaviour), lists stay lists.
"""
from __future__ import annotations

import collections.abc
import copy
from typing import Any, Callable, Optional, Union

import numpy as np

from ...tensor import Tensor

__all__ = ["collate", "default_collate", "default_convert", "default_collate_fn_map"]

CollateMap = dict[Union[type, tuple[type, ...]], Callable[..., Any]]


def _err(found: Any) -> TypeError:
    return TypeError("[default_collate] expected a batch of tensors, numpy arrays, numbers, dicts or lists; "
                     f"found {found}")


def _str_or_object(a: np.ndarray) -> bool:
    return a.dtype.kind in "OSUV"  # object, bytes, unicode, void: no tensor dtype


def collate_tensor_fn(batch: list[Any], *, collate_fn_map: Optional[CollateMap] = None) -> Any:
    if any(t.requires_grad for t in batch):  # keep the graph, like torch.stack
        from ... import stack

        return stack(list(batch), 0)
    first = batch[0]
    for i, t in enumerate(batch):
        if t.shape != first.shape:
            raise RuntimeError(f"[default_collate] expected tensors of equal size to stack, got {list(first.shape)} "
                               f"at entry 0 and {list(t.shape)} at entry {i}")
    from ..._dispatch import xp_of

    arrays = [t._data for t in batch]
    return Tensor._wrap(xp_of(arrays[0]).stack(arrays, 0))


def collate_numpy_array_fn(batch: list[Any], *, collate_fn_map: Optional[CollateMap] = None) -> Any:
    if _str_or_object(batch[0]):
        raise _err(batch[0].dtype)
    return collate([Tensor._wrap(np.asarray(b)) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch: list[Any], *, collate_fn_map: Optional[CollateMap] = None) -> Any:
    return Tensor._wrap(np.asarray(batch))


def collate_float_fn(batch: list[Any], *, collate_fn_map: Optional[CollateMap] = None) -> Any:
    return Tensor._wrap(np.asarray(batch, dtype=np.float64))


def collate_int_fn(batch: list[Any], *, collate_fn_map: Optional[CollateMap] = None) -> Any:
    from ... import tensor

    return tensor(list(batch))  # infers like torch.tensor: int64, bool, or float if floats mix in


def collate_str_fn(batch: list[Any], *, collate_fn_map: Optional[CollateMap] = None) -> Any:
    return batch


default_collate_fn_map: CollateMap = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def _lookup(elem: Any, collate_fn_map: CollateMap) -> Optional[Callable[..., Any]]:
    fn = collate_fn_map.get(type(elem))
    if fn is not None:
        return fn
    for kind, fn in collate_fn_map.items():
        if isinstance(elem, kind):
            return fn
    return None


def _rebuild(like: Any, values: Any) -> Any:
    """A container of ``like``'s type holding ``values`` (a dict or list); plain when that fails."""
    mutable = isinstance(like, (collections.abc.MutableMapping, collections.abc.MutableSequence))
    try:
        if not mutable:
            return type(like)(values)
        clone = copy.copy(like)
        if isinstance(values, dict):
            clone.update(values)
        else:
            for i, v in enumerate(values):
                clone[i] = v
        return clone
    except TypeError:
        return values


def collate(batch: Any, *, collate_fn_map: Optional[CollateMap] = None) -> Any:
    """Collate ``batch`` (a list of samples) with per-type functions from ``collate_fn_map``."""
    if not len(batch):
        raise ValueError("[default_collate] expected a non-empty batch")
    elem = batch[0]
    fn = _lookup(elem, collate_fn_map) if collate_fn_map is not None else None
    if fn is not None:
        return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        return _rebuild(elem, {k: collate([d[k] for d in batch], collate_fn_map=collate_fn_map) for k in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        for i, e in enumerate(batch):
            if len(e) != size:
                raise RuntimeError(f"[default_collate] expected samples of equal length, got {size} at entry 0 "
                                   f"and {len(e)} at entry {i}")
        fields = [collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)]
        return fields if isinstance(elem, tuple) else _rebuild(elem, fields)
    raise _err(type(elem))


def default_collate(batch: Any) -> Any:
    """PyTorch's default batching of a list of samples (see the module docstring)."""
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data: Any) -> Any:
    """Arrays (and NumPy scalars) inside ``data`` become Tensors; used when batching is off."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _str_or_object(data) else Tensor._wrap(data)
    if isinstance(data, (np.bool_, np.number, np.object_)):
        return Tensor._wrap(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return _rebuild(data, {k: default_convert(data[k]) for k in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild(data, [default_convert(d) for d in data])
    return data
