"""Every public layer, loss, functional op and optimizer documents its math, its shapes and
its defaults; every other public name in nn / nn.functional / nn.init / nn.utils / optim /
optim.lr_scheduler has a non-trivial docstring.

A docstring passes when it holds a formula (an '='), a ``Shape:`` line (layers, losses and
functional ops), and ``name=<default>`` for every parameter that has a default, written as
Python writes the default (``eps=1e-05``, ``reduction='mean'``). Parameters kept only for
PyTorch compatibility (``size_average``, ``foreach``, ...) are exempt."""
import inspect

import pytest

import nnfast.nn as nn
import nnfast.nn.functional as F
import nnfast.optim as optim
from nnfast.nn import init
from nnfast.nn import utils as nn_utils
from nnfast.optim import lr_scheduler

# Accepted for PyTorch compatibility (deprecated or no-op in nnfast), or the usual placement arguments.
EXEMPT = {"size_average", "reduce", "_stacklevel", "foreach", "differentiable", "fused", "capturable",
          "device", "dtype"}
CONTAINERS = {nn.Module, nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.ParameterList, nn.ParameterDict}


def _public(module, kind):
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    out = []
    for name in names:
        obj = getattr(module, name)
        if kind(obj) and getattr(obj, "__module__", "").startswith("nnfast"):
            out.append((f"{module.__name__}.{name}", obj))
    return out


LAYERS = [(n, c) for n, c in _public(nn, inspect.isclass) if issubclass(c, nn.Module) and c not in CONTAINERS]
FUNCTIONAL = _public(F, inspect.isfunction)
OPTIMIZERS = [(n, c) for n, c in _public(optim, inspect.isclass) if c is not optim.Optimizer]
OTHERS = ([(n, c) for n, c in _public(nn, inspect.isclass) if c not in dict(LAYERS).values()]
          + [("nnfast.optim.Optimizer", optim.Optimizer)]
          + _public(lr_scheduler, inspect.isclass) + _public(init, inspect.isfunction)
          + _public(nn_utils, inspect.isfunction))


def _defaults(obj):
    sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    return {p.name: p.default for p in sig.parameters.values()
            if p.default is not inspect.Parameter.empty and p.name not in EXEMPT}


def _problems(name, obj, need_shape):
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj) and doc == inspect.getdoc(obj.__mro__[1]):
        doc = ""  # inherited, not its own
    found = []
    if len(doc) < 80:
        return [f"{name}: missing or trivial docstring ({len(doc)} chars)"]
    if "=" not in doc:
        found.append(f"{name}: no formula ('=') in the docstring")
    if need_shape and "Shape:" not in doc:
        found.append(f"{name}: no 'Shape:' line")
    if "Defaults:" not in doc:
        found.append(f"{name}: no 'Defaults:' line")
    flat = " ".join(doc.split())
    for param, default in _defaults(obj).items():
        if f"{param}={default!r}" not in flat:
            found.append(f"{name}: default {param}={default!r} not documented")
    return found


def test_namespaces_are_not_empty():
    assert len(LAYERS) > 40 and len(FUNCTIONAL) > 40 and len(OPTIMIZERS) >= 8 and len(OTHERS) > 20


@pytest.mark.parametrize("name, obj", LAYERS, ids=[n for n, _ in LAYERS])
def test_layer_and_loss_docstrings(name, obj):
    assert not _problems(name, obj, need_shape=True), "\n".join(_problems(name, obj, need_shape=True))


@pytest.mark.parametrize("name, obj", FUNCTIONAL, ids=[n for n, _ in FUNCTIONAL])
def test_functional_docstrings(name, obj):
    assert not _problems(name, obj, need_shape=True), "\n".join(_problems(name, obj, need_shape=True))


@pytest.mark.parametrize("name, obj", OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
def test_optimizer_docstrings(name, obj):
    assert not _problems(name, obj, need_shape=False), "\n".join(_problems(name, obj, need_shape=False))


@pytest.mark.parametrize("name, obj", OTHERS, ids=[n for n, _ in OTHERS])
def test_other_public_names_have_docstrings(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert len(doc) >= 40, f"{name}: missing or trivial docstring ({doc!r})"
