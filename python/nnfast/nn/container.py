"""Containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict."""
from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Any, Iterable, Iterator, Optional, Union

from ..tensor import Tensor
from .module import Module, Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _index(op: str, idx: Any, n: int) -> int:
    """A list index (negative counts from the end) checked against ``n`` entries."""
    i = operator.index(idx)
    if not -n <= i < n:
        raise IndexError(f"[{op}] expected an index in [{-n}, {n}), got {i}")
    return i % n


def _repr_compressed(mod: Module) -> str:
    """PyTorch's ModuleList repr: runs of equal consecutive children print once as ``(a-b): k x ...``."""
    lines, items = [], [(k, repr(m)) for k, m in mod._modules.items()]
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1][1] == items[i][1]:
            j += 1
        body = items[i][1].replace("\n", "\n  ")
        lines.append(f"({items[i][0]}): {body}" if i == j else f"({items[i][0]}-{items[j][0]}): {j - i + 1} x {body}")
        i = j + 1
    if not lines:
        return type(mod).__name__ + "()"
    return type(mod).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


class _ModuleSequence(Module):
    """Indexing, length, iteration, append / insert / extend / pop / del shared by Sequential and
    ModuleList (keys ``0``, ``1``, ... renumbered after a deletion or insertion, as PyTorch does)."""

    def _from_items(self, items: list[tuple[str, Module]]) -> Any:
        raise NotImplementedError

    def __getitem__(self, idx: Union[int, slice]) -> Any:
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return self._from_items(items[idx])
        return items[_index(type(self).__name__, idx, len(items))][1]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[_index(type(self).__name__, idx, len(self._modules))]
        self.add_module(key, module)

    def __delitem__(self, idx: Union[int, slice]) -> None:
        keys = list(self._modules)
        for k in (keys[idx] if isinstance(idx, slice) else [keys[_index(type(self).__name__, idx, len(keys))]]):
            del self._modules[k]
        self._renumber(list(self._modules.values()))

    def _renumber(self, mods: list[Module]) -> None:
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Any:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Any:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Any:
        if not isinstance(module, Module):
            raise TypeError(f"[{type(self).__name__}.insert] expected a Module, got {type(module).__name__}")
        mods = list(self._modules.values())
        n = len(mods)
        if not -n <= index <= n:
            raise IndexError(f"[{type(self).__name__}.insert] expected an index in [{-n}, {n}], got {index}")
        mods.insert(index, module)
        self._renumber(mods)
        return self

    def pop(self, idx: int = -1) -> Module:
        m: Module = self[idx]
        del self[idx]
        return m

    def __add__(self, other: "_ModuleSequence") -> Any:
        return self._from_items(list(enumerate(list(self) + list(other))))  # type: ignore[arg-type]

    def __iadd__(self, other: Iterable[Module]) -> Any:
        return self.extend(other)

    def __dir__(self) -> list[str]:
        return [k for k in super().__dir__() if not k.isdigit()]


class Sequential(_ModuleSequence):
    """Modules applied in order; ``Sequential(a, b)`` or ``Sequential(OrderedDict(...))``.

    Defaults: no modules (the identity)."""

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def forward(self, input: Any) -> Any:
        for m in self._modules.values():
            input = m(input)
        return input

    def _from_items(self, items: list[tuple[str, Module]]) -> "Sequential":
        # A slice keeps the original keys, as in PyTorch.
        return Sequential(OrderedDict((str(k), m) for k, m in items))


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered (keys ``0``, ``1``, ...).

    Defaults: modules=None (empty)."""

    def __init__(self, modules: Optional[Iterable[Module]] = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _from_items(self, items: list[tuple[str, Module]]) -> "ModuleList":
        return ModuleList(m for _, m in items)

    def __repr__(self) -> str:
        return _repr_compressed(self)


class _Dict(Module):
    """The mapping protocol of ModuleDict / ParameterDict over one of the module's stores."""

    _store = "_modules"

    def _set(self, key: str, value: Any) -> None:
        raise NotImplementedError

    def _items(self) -> "OrderedDict[str, Any]":
        d: OrderedDict[str, Any] = self.__dict__[self._store]
        return d

    def __getitem__(self, key: str) -> Any:
        return self._items()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._set(key, value)

    def __delitem__(self, key: str) -> None:
        del self._items()[key]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __contains__(self, key: object) -> bool:
        return key in self._items()

    def keys(self) -> Any:
        return self._items().keys()

    def items(self) -> Any:
        return self._items().items()

    def values(self) -> Any:
        return self._items().values()

    def clear(self) -> None:
        self._items().clear()

    def pop(self, key: str) -> Any:
        v = self[key]
        del self[key]
        return v

    def update(self, values: Any) -> None:
        pairs = values.items() if hasattr(values, "items") else values
        for k, v in pairs:
            self._set(k, v)


class ModuleDict(_Dict):
    """An ordered dict of modules whose parameters are registered under their keys
    (``state_dict`` names ``key.weight``...): ``d["enc"]``, ``d["enc"] = m``, ``in``, ``len``,
    ``keys()``, ``items()``, ``values()``, ``update``, ``pop``, ``clear``.

    Defaults: modules=None (empty); a dict or iterable of (name, module) pairs otherwise.
    """

    def __init__(self, modules: Optional[Any] = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _set(self, key: str, value: Any) -> None:
        self.add_module(key, value)


def _as_parameter(value: Any) -> Any:
    # PyTorch wraps a plain tensor stored in a parameter container into a Parameter.
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value, requires_grad=value.requires_grad or value.is_leaf)
    return value


def _parameters_repr(self: Module) -> str:
    """PyTorch's listing of a parameter container: one ``(key): Parameter containing: [...]`` line each."""
    return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                     for k, p in self._parameters.items())


class ParameterList(Module):
    """A list of parameters registered under keys ``0``, ``1``, ... (plain tensors become Parameters):
    ``plist[i] = p``, ``append``, ``extend``, ``len``, iteration.

    Shape: no forward; each parameter keeps its own shape.
    Defaults: values=None (empty)."""

    def __init__(self, values: Optional[Iterable[Any]] = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx: Union[int, slice]) -> Any:
        vals = list(self._parameters.values())
        if isinstance(idx, slice):
            return ParameterList(vals[idx])
        return vals[_index("ParameterList", idx, len(vals))]

    def __setitem__(self, idx: int, value: Any) -> None:
        key = list(self._parameters)[_index("ParameterList", idx, len(self._parameters))]
        self.register_parameter(key, _as_parameter(value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._parameters.values())

    def append(self, value: Any) -> "ParameterList":
        self.register_parameter(str(len(self._parameters)), _as_parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> "ParameterList":
        for v in values:
            self.append(v)
        return self

    def __iadd__(self, values: Iterable[Any]) -> "ParameterList":
        return self.extend(values)

    extra_repr = _parameters_repr


class ParameterDict(_Dict):
    """An ordered dict of parameters registered under their keys (plain tensors become Parameters):
    ``pdict["w"] = p``, ``in``, ``len``, ``keys()``, ``items()``, ``values()``, ``update``, ``pop``.

    Shape: no forward; each parameter keeps its own shape.
    Defaults: parameters=None (empty); a dict or iterable of (name, tensor) pairs otherwise."""

    _store = "_parameters"

    def __init__(self, parameters: Optional[Any] = None) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def _set(self, key: str, value: Any) -> None:
        self.register_parameter(key, _as_parameter(value))

    def get(self, key: str, default: Any = None) -> Any:
        return self._parameters.get(key, default)

    extra_repr = _parameters_repr
