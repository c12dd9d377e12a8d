"""``nn.Module`` and ``nn.Parameter`` with PyTorch's semantics and naming."""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, NamedTuple, Optional, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from typing import ParamSpec

import numpy as np

from .._dispatch import kernels, xp_of
from ..autograd import grad_mode
from ..autograd.function import Function
from ..tensor import Tensor, _to_device_array, device


_Device = device  # Module.cuda's argument is named ``device``, as in PyTorch


# NNFAST_FUSED_ZERO=0: zero_grad(set_to_none=False) fills each gradient on its own, on the calling
# thread (the A/B switch of the one parallel kernel call below).
_FUSED_ZERO = [os.environ.get("NNFAST_FUSED_ZERO", "1") != "0"]
_ZEROABLE = (np.dtype(np.float32), np.dtype(np.float64))


def _zero_grads(params: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Sets each param's ``.grad`` to None or to zeros in place: ``zero_grad`` of both
    ``Module`` and ``Optimizer``, which must agree. In place, the CPU float gradients are
    cleared by one multi-tensor kernel call (split across the threads), the rest one by one."""
    if set_to_none:
        for p in params:
            if p.grad is not None:
                p.grad = None
        return
    fused: list[Any] = []
    on, nd = _FUSED_ZERO[0], np.ndarray
    for p in params:
        g = p.grad
        if g is None:
            continue
        a = g._data
        if on and type(a) is nd and a.dtype in _ZEROABLE and (f := a.flags).c_contiguous and f.writeable:
            fused.append(a)
        else:
            a[...] = 0
    if fused:
        try:
            kernels("zero_grad").multi_tensor_zero(fused)  # (numpy arrays only: the cpu kernel)
        except ValueError:  # two gradients sharing memory: the kernel's checks refuse the list
            for a in fused:
                a[...] = 0


class Parameter(Tensor):
    """A tensor that a ``Module`` registers as a learnable parameter."""

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        super().__init__(data._data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)

    def __reduce_ex__(self, proto: Any) -> Any:  # pragma: no cover - pickle is unused by nnfast
        return (Parameter, (self._data, self.requires_grad))


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"


if TYPE_CHECKING:
    _P = ParamSpec("_P")
    _R = TypeVar("_R", covariant=True)

    class _HasForward(Protocol[_P, _R]):
        def forward(self, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...

    class _CallsForward:
        """How type checkers see ``Module.__call__``: with the signature of the subclass's ``forward``,
        so ``linear(x)`` is a Tensor and ``linear("a")`` an error."""

        @overload
        def __get__(self, obj: None, owner: Any) -> _CallsForward: ...
        @overload
        def __get__(self, obj: _HasForward[_P, _R], owner: Any) -> Callable[_P, _R]: ...
        def __get__(self, obj: Any, owner: Any) -> Any: ...


class Module:
    """Base class of every layer: holds parameters, buffers and submodules."""

    training: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())

    # ------------------------------------------------------------ forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"[{type(self).__name__}] expected a forward() method")

    def _call_impl(self, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if "_forward_hooks" not in d:
            raise RuntimeError(
                f"[{type(self).__name__}] expected Module.__init__ to run; call super().__init__() first"
            )
        if not d["_forward_pre_hooks"] and not d["_backward_hooks"]:
            # No hook before forward (the common case): skip the gate; forward hooks are looked up
            # after forward, as below (one registered by forward itself still runs).
            out = self.forward(*args, **kwargs)
            if d["_forward_hooks"]:
                for hook in d["_forward_hooks"].values():
                    r = hook(self, args, out)
                    if r is not None:
                        out = r
            return out
        for hook in self._forward_pre_hooks.values():
            r = hook(self, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
        gate = _BackwardHookState(self, args) if self._backward_hooks else None
        if gate is not None:
            args = gate.inputs
        out = self.forward(*args, **kwargs)
        for hook in self._forward_hooks.values():
            r = hook(self, args, out)
            if r is not None:
                out = r
        return out if gate is None else gate.output(out)

    if TYPE_CHECKING:
        __call__: _CallsForward
    else:
        __call__ = _call_impl

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False) -> "RemovableHandle":
        """``hook(module, args, output) -> output | None`` runs after ``forward``."""
        return RemovableHandle.add(self._forward_hooks, hook, prepend)

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False) -> "RemovableHandle":
        """``hook(module, args) -> args | None`` runs before ``forward`` (a non-tuple result becomes ``(result,)``)."""
        return RemovableHandle.add(self._forward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook: Callable[..., Any], prepend: bool = False) -> "RemovableHandle":
        """``hook(module, grad_input, grad_output) -> grad_input | None`` runs when the gradient with
        respect to the module's input is computed (``grad_input`` is ``(None,)`` when the input needs
        none). Modules called with one tensor input and returning one tensor."""
        return RemovableHandle.add(self._backward_hooks, hook, prepend)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            if isinstance(value, (Parameter, Module)):
                raise RuntimeError(
                    f"[{type(self).__name__}] expected super().__init__() before assigning parameters or submodules"
                )
            object.__setattr__(self, name, value)
            return
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if isinstance(value, Parameter):
            self._drop(name, "_parameters")
            params[name] = value
        elif isinstance(value, Module):
            self._drop(name, "_modules")
            modules[name] = value
        elif name in params:
            if value is not None and not isinstance(value, Parameter):
                raise TypeError(f"[{type(self).__name__}] expected a Parameter or None for '{name}'")
            params[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(f"[{type(self).__name__}] expected a Module or None for '{name}'")
            modules[name] = value
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"[{type(self).__name__}] expected a Tensor or None for buffer '{name}'")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _drop(self, name: str, keep: str = "") -> None:
        """Forgets ``name`` everywhere but in store ``keep``, where a re-registration then keeps its place."""
        for store in ("_parameters", "_modules", "_buffers"):
            if store != keep:
                self.__dict__[store].pop(name, None)
        self.__dict__["_non_persistent"].discard(name)
        self.__dict__.pop(name, None)

    def _check_name(self, op: str, name: Any) -> None:
        """PyTorch's rules for a registered name: a non-empty string without '.', not an existing
        plain attribute (a parameter/buffer/submodule of that name is replaced)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"[{op}] expected Module.__init__() to run before registering '{name}'")
        if not isinstance(name, str):
            raise TypeError(f"[{op}] expected the name to be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"[{op}] expected a non-empty name without '.', got {name!r}")
        if hasattr(type(self), name) or (name in self.__dict__ and name not in self._parameters
                                         and name not in self._buffers and name not in self._modules):
            raise KeyError(f"[{op}] expected a new name, attribute '{name}' already exists")

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[store]:
                del self.__dict__[store][name]
                self.__dict__["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"[register_parameter] expected a Parameter or None for '{name}'")
        self._check_name("register_parameter", name)
        self._drop(name, "_parameters")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Optional[Tensor], persistent: bool = True) -> None:
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"[register_buffer] expected a Tensor or None for '{name}'")
        self._check_name("register_buffer", name)
        self._drop(name, "_buffers")
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        else:
            self._non_persistent.discard(name)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"[add_module] expected a Module for '{name}'")
        self._check_name("add_module", name)
        self._drop(name, "_modules")
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------ traversal
    def named_modules(self, memo: Optional[set[int]] = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """(qualified name, module) pairs, this module first (name ``prefix``), depth first; a module
        reached twice is yielded once unless ``remove_duplicate=False``."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, v in m.__dict__[store].items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield mp + ("." if mp else "") + name, v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The submodule at dotted path ``target`` (``""``: this module)."""
        mod = self
        for item in target.split(".") if target else []:
            child = mod._modules.get(item)
            if not isinstance(child, Module):
                raise AttributeError(f"[get_submodule] expected '{item}' to be a submodule of "
                                     f"{type(mod).__name__} (path '{target}')")
            mod = child
        return mod

    def _get_member(self, op: str, store: str, target: str) -> Any:
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod.__dict__[store]:
            raise AttributeError(f"[{op}] expected '{name}' to be a {store[1:-1]} of {type(mod).__name__} "
                                 f"(path '{target}')")
        return mod.__dict__[store][name]

    def get_parameter(self, target: str) -> Parameter:
        p: Parameter = self._get_member("get_parameter", "_parameters", target)
        return p

    def get_buffer(self, target: str) -> Tensor:
        b: Tensor = self._get_member("get_buffer", "_buffers", target)
        return b

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError("[train] expected mode to be a bool")
        # Through each child's own train(), as PyTorch does, so overrides run.
        object.__setattr__(self, "training", mode)
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        _zero_grads(self.parameters(), set_to_none)

    # ------------------------------------------------------------ state
    def state_dict(self, destination: Optional[dict[str, Any]] = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        out: OrderedDict[str, Tensor] = OrderedDict() if destination is None else destination  # type: ignore[assignment]
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> _IncompatibleKeys:
        """Copy values into this module's parameters and buffers (in place).

        With ``strict`` (default), missing keys, unexpected keys and shape
        mismatches raise ``RuntimeError`` before anything is modified.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for k, target in own.items():
            if k not in state_dict:
                continue
            src = state_dict[k]
            arr = src._data if isinstance(src, Tensor) else src
            if tuple(np.shape(arr)) != target.shape:
                errors.append(f"size mismatch for {k}: copying a param with shape {tuple(np.shape(arr))}, "
                              f"the shape in current model is {target.shape}")
        if strict and (missing or unexpected):
            errors.insert(0, f"missing keys: {missing}, unexpected keys: {unexpected}")
        if errors:
            raise RuntimeError(f"[load_state_dict] expected a matching state dict for {type(self).__name__}:\n  "
                               + "\n  ".join(errors))
        with grad_mode.no_grad():
            for k, target in own.items():
                if k in state_dict:
                    src = state_dict[k]
                    arr = src._data if isinstance(src, Tensor) else src
                    xp = xp_of(target._data)
                    target._data[...] = xp.asarray(_to_device_array(np.asarray(arr) if not hasattr(arr, "device")
                                                                   else arr, target.device)).astype(target.dtype)
                    target._vc[0] += 1  # an in-place write (autocast's cached casts check the version)
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ device / dtype
    def _apply_to_tensors(self, fn: Callable[[Any], Any]) -> "Module":
        for m in self.modules():
            for store in ("_parameters", "_buffers"):
                for name, t in m.__dict__[store].items():
                    if t is None:
                        continue
                    t._data = fn(t._data)
                    if t.grad is not None:
                        t.grad._data = fn(t.grad._data)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``: moves parameters and buffers
        in place (the Parameter objects stay the same, so optimizers keep them); a dtype applies to
        floating tensors only."""
        dev, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args + ((kwargs["tensor"],) if "tensor" in kwargs else ()):
            if isinstance(a, Tensor):
                dev, dtype = a.device, a.dtype
            elif isinstance(a, (str, device)):
                dev = a
            elif a is not None:
                dtype = a
        if dtype is not None:
            self._cast(np.dtype(dtype), "to")
        if dev is not None:
            d = device(dev)
            self._apply_to_tensors(lambda a: _to_device_array(a, d))
        return self

    def _cast(self, dt: np.dtype, op: str) -> "Module":
        if dt.kind not in "fc":
            raise TypeError(f"[Module.{op}] expected a floating dtype, got {dt}")
        return self._apply_to_tensors(lambda a: a.astype(dt) if a.dtype.kind == "f" and a.dtype != dt else a)

    def cuda(self, device: Optional[Any] = None) -> "Module":
        return self.to(device if isinstance(device, (str, _Device)) else _Device("cuda", device or 0))

    def cpu(self) -> "Module":
        return self.to("cpu")

    def float(self) -> "Module":  # noqa: A003
        return self._cast(np.dtype(np.float32), "float")

    def double(self) -> "Module":
        return self._cast(np.dtype(np.float64), "double")

    def half(self) -> "Module":
        return self._cast(np.dtype(np.float16), "half")

    def type(self, dst_type: Any) -> "Module":  # noqa: A003
        """Casts every parameter and buffer (integer ones included, as PyTorch does) to ``dst_type``."""
        dt = np.dtype(dst_type)
        return self._apply_to_tensors(lambda a: a.astype(dt) if a.dtype != dt else a)

    # ------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            mod = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {mod}")
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._modules) | set(self._buffers))


class _GradOutputGate(Function):
    """Identity on the module's output; its backward records grad_output for the input gate."""

    is_view = True
    replayable = False  # replaying it would run the module's hooks again

    @staticmethod
    def forward(ctx: Any, y: Any, state: "_BackwardHookState") -> Any:
        ctx.state = state
        return y.view()

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        st = ctx.state
        st.grad_output = g
        if not st.has_input:  # nothing upstream needs a gradient: the hook runs now, as in PyTorch
            st.fire(None)
        return g, None


class _GradInputGate(_GradOutputGate):
    """Identity on the module's input; its backward runs the hooks, which may replace the gradient."""

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return ctx.state.fire(g), None


class _BackwardHookState:
    """One call of a module with full backward hooks: gates its tensor input and output."""

    def __init__(self, module: Module, args: tuple[Any, ...]) -> None:
        self.module, self.grad_output = module, None
        tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        if len(tensors) != 1:
            raise NotImplementedError(f"[register_full_backward_hook] expected a module called with one tensor "
                                      f"input, {type(module).__name__} got {len(tensors)}")
        self.has_input = args[tensors[0]].requires_grad and grad_mode.is_grad_enabled()
        self.inputs = tuple(_GradInputGate.apply(a, self) if i in tensors and self.has_input else a
                            for i, a in enumerate(args))

    def output(self, out: Any) -> Any:
        if not isinstance(out, Tensor):
            raise NotImplementedError(f"[register_full_backward_hook] expected {type(self.module).__name__} "
                                      f"to return one tensor, got {type(out).__name__}")
        return _GradOutputGate.apply(out, self) if out.requires_grad else out

    def fire(self, g: Any) -> Any:
        grad_output = (Tensor._wrap(self.grad_output),)
        for hook in list(self.module._backward_hooks.values()):
            r = hook(self.module, (None if g is None else Tensor._wrap(g),), grad_output)
            if r is not None and g is not None:
                new = r[0] if isinstance(r, (tuple, list)) else r
                g = new._data if isinstance(new, Tensor) else new
        return g


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods: ``remove()`` (or leaving a ``with`` block) unregisters."""

    _next_id = 0

    def __init__(self, store: "OrderedDict[int, Any]", key: int) -> None:
        self.store, self.id = store, key

    @classmethod
    def add(cls, store: "OrderedDict[int, Any]", hook: Callable[..., Any], prepend: bool) -> "RemovableHandle":
        # A fresh key per registration: the same function may be registered twice.
        key = cls._next_id
        cls._next_id += 1
        store[key] = hook
        if prepend:
            store.move_to_end(key, last=False)
        return cls(store, key)

    def remove(self) -> None:
        self.store.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


_RemovableHandle = RemovableHandle
