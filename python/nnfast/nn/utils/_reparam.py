"""What ``weight_norm`` and ``spectral_norm`` share: both replace a parameter by one computed
in a forward pre-hook, so they check, and later find and remove, that hook the same way."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..module import Module, Parameter


def reparam_target(module: Module, name: str, op: str, hook_type: type[Any]) -> Parameter:
    """The float parameter ``module.<name>`` that a new ``op`` hook will reparametrize (one such
    hook per parameter)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, hook_type) and hook.name == name:
            raise RuntimeError(f"[{op}] Cannot register two {op} hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if not isinstance(weight, Parameter):
        raise ValueError(f"[{op}] expected module to have a parameter named '{name}'")
    if weight.dtype not in (np.float32, np.float64):
        raise TypeError(f"[{op}] expected a float32 or float64 parameter, got {weight.dtype}")
    return weight


def remove_reparam(module: Module, name: str, op: str, hook_type: type[Any]) -> Module:
    """``remove_<op>``: the ``op`` hook of ``name`` folds its current weight back into a plain
    parameter and is unregistered."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, hook_type) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"[remove_{op}] expected {op} of '{name}' in {module}")


def restore_parameter(module: Module, name: str, weight: Any, *derived: str) -> None:
    """Drops the computed attribute ``name`` and the parameters / buffers ``derived`` from it,
    and registers ``weight`` as the parameter ``name`` again."""
    module.__dict__.pop(name, None)  # the computed weight (a plain attribute)
    for d in derived:
        store = module._parameters if d in module._parameters else module._buffers
        del store[d]
    module.register_parameter(name, Parameter(weight._data))
