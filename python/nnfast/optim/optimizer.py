"""``Optimizer``: param groups, state and PyTorch's state-dict layout.

Each step runs one fused multi-tensor kernel per param group: the group's
params, grads and state arrays go to the kernel as lists in one binding call,
and the kernel updates them all in place in a single pass over memory.
"""
from __future__ import annotations

import copy
import os
from collections import defaultdict
from itertools import chain
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from .._dispatch import KernelSet, device_of, full, kernel_ready, kernels, xp_of
from ..autograd import grad_mode
from ..nn.module import _zero_grads
from ..tensor import Tensor


class _RequiredParameter:
    """Marks a hyper-parameter that every param group must give (``lr`` of some optimizers)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

ParamsT = Union[Iterable[Tensor], Iterable[dict[str, Any]], Iterable[tuple[str, Tensor]]]


# A fused step streams param, grad and state arrays in lockstep. When their addresses share the same
# offset within a 4 KiB page, the CPU takes loads of one for possible reloads of the other's stores
# (4K aliasing) and stalls: a large CPU state array is placed at the in-page offset farthest from its
# param's, grad's and sibling states' (784-128-10 Adam step, 1 thread: 31.5 vs 35-44 us per
# adam_step of the 401 KB weight). NNFAST_OPTIM_STAGGER=0: plain allocations (A/B; same values).
_STAGGER = [os.environ.get("NNFAST_OPTIM_STAGGER", "1") != "0"]
_PAGE = 4096
_STAGGER_MIN_BYTES = 1 << 15  # smaller arrays stay in L1/L2 for the whole pass: not worth the padding


def _free_offset(taken: list[int]) -> int:
    """The cache-line offset within a page farthest (circularly) from every offset in ``taken``."""
    def gap(c: int) -> int:
        return min(min((c - t) % _PAGE, (t - c) % _PAGE) for t in taken)
    return max(range(0, _PAGE, 64), key=gap)


def _state_tensor(like: np.ndarray, fill: float = 0.0, avoid: tuple[Any, ...] = ()) -> Tensor:
    """A fresh C-contiguous state array shaped and typed like a param, on the param's device
    (allocated by that device's array module); on the CPU, a large one starts at an in-page offset
    away from ``like``'s and ``avoid``'s (arrays stepped with it; None entries are skipped)."""
    if not (_STAGGER[0] and type(like) is np.ndarray and like.nbytes >= _STAGGER_MIN_BYTES):
        return Tensor._wrap(full(like.shape, fill, like.dtype, device_of(like)))
    taken = [a.ctypes.data % _PAGE for a in (like,) + tuple(avoid) if type(a) is np.ndarray]
    buf = np.empty(like.nbytes + _PAGE, np.uint8)
    start = (_free_offset(taken) - buf.ctypes.data) % _PAGE
    arr = buf[start:start + like.nbytes].view(like.dtype).reshape(like.shape)
    arr.fill(fill)
    return Tensor._wrap(arr)


def _grad_array(p: Tensor) -> Any:
    g = p.grad
    return None if g is None else g._data


def _adam_moments(state: Any, params: list[Tensor], p_arrays: list[np.ndarray], with_max: bool
                  ) -> tuple[list[np.ndarray], list[np.ndarray], Optional[list[np.ndarray]], list[int]]:
    """First / second moment buffers (and the running max of the second when
    ``with_max``) of Adam-style optimizers, created on first use, plus each
    param's next step number: the arrays the fused multi-tensor kernel updates."""
    m: list[np.ndarray] = []
    v: list[np.ndarray] = []
    vmax: Optional[list[np.ndarray]] = [] if with_max else None
    steps: list[int] = []
    for p, a in zip(params, p_arrays):
        st = state[p]
        if "exp_avg" not in st:
            st["step"] = 0
            g = _grad_array(p)
            st["exp_avg"] = _state_tensor(a, avoid=(g,))
            st["exp_avg_sq"] = _state_tensor(a, avoid=(g, st["exp_avg"]._data))
        if with_max and "max_exp_avg_sq" not in st:
            st["max_exp_avg_sq"] = _state_tensor(a, avoid=(_grad_array(p), st["exp_avg"]._data,
                                                            st["exp_avg_sq"]._data))
        m.append(st["exp_avg"]._data)
        v.append(st["exp_avg_sq"]._data)
        if vmax is not None:
            vmax.append(st["max_exp_avg_sq"]._data)
        s = st.get("step", 0)
        steps.append((s if type(s) is int else int(s)) + 1)
    return m, v, vmax, steps


def _lazy_state(state: Any, params: list[Tensor], p_arrays: list[np.ndarray], names: tuple[str, ...],
                scalars: Optional[dict[str, float]] = None) -> tuple[list[list[np.ndarray]], list[int]]:
    """The state arrays ``names`` of each param (zeros of its shape, created on first use, with
    ``step`` = 0 and the float ``scalars`` as their start values), one list per name, and each
    param's next step number."""
    out: list[list[np.ndarray]] = [[] for _ in names]
    steps: list[int] = []
    for p, a in zip(params, p_arrays):
        st = state[p]
        if names[0] not in st:
            st["step"] = 0
            st.update(scalars or {})
            made: tuple[Any, ...] = (_grad_array(p),)
            for n in names:
                st[n] = _state_tensor(a, fill=0.0, avoid=made)
                made += (st[n]._data,)
        for lst, n in zip(out, names):
            lst.append(st[n]._data)
        steps.append(int(st.get("step", 0)) + 1)
    return out, steps


def _store_steps(state: Any, params: list[Tensor], steps: list[int]) -> None:
    """Records each param's new step count once its group's fused kernel has run (it is not
    advanced earlier, so a kernel that raises leaves the state as it was)."""
    for p, s in zip(params, steps):
        state[p]["step"] = s


def _ready(a: Any) -> bool:
    """Whether a NumPy array is already as the fused kernels take it (``kernel_ready`` would return it
    as is): the common case, checked without the call."""
    if type(a) is not np.ndarray:
        return False
    f = a.flags
    return bool(f.c_contiguous and f.aligned)


def _copy_value(v: Any) -> Any:
    if isinstance(v, Tensor):
        return Tensor._wrap(xp_of(v._data).array(v._data, copy=True))
    if isinstance(v, np.ndarray):
        return np.array(v, copy=True)
    return copy.deepcopy(v)


class Optimizer:
    """Base class of nnfast's optimizers; PyTorch's ``torch.optim.Optimizer`` API.

    ``param_groups`` is a list of dicts (``'params'`` plus every hyper-parameter,
    defaults filled in), ``state`` maps each param to its state dict. Subclasses
    implement ``_group_step(group, params, p_arrays, g_arrays)``.

    ``skip_nonfinite`` (an nnfast addition): when True, a step in which any
    gradient holds an inf or NaN is skipped as a whole -- params and state stay
    bit-identical -- and counted in ``skipped_steps``.
    """

    _name = "Optimizer"
    _op = ""  # the dispatch table's op of the subclass's fused step kernel ("adam", ...)

    def __init__(self, params: ParamsT, defaults: dict[str, Any], *, skip_nonfinite: bool = False) -> None:
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self.skip_nonfinite = bool(skip_nonfinite)
        self.skipped_steps = 0
        if isinstance(params, Tensor):
            raise TypeError(
                f"[{self._name}] expected params to be an iterable of Tensors or dicts, but got a Tensor"
            )
        try:
            param_groups: list[Any] = list(params)
        except TypeError:
            raise TypeError(f"[{self._name}] expected params to be an iterable of Tensors or dicts, "
                            f"got {type(params).__name__}") from None
        if len(param_groups) == 0:
            raise ValueError(f"[{self._name}] optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------ groups
    def _check_group(self, group: dict[str, Any]) -> None:
        """Validates one group's hyper-parameters (subclasses)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group of params, filling hyper-parameters it lacks from ``defaults``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"[{self._name}] expected a param group to be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"[{self._name}] optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        names = []
        plist = []
        for p in params:
            if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
                names.append(p[0])
                p = p[1]
            if not isinstance(p, Tensor):
                raise TypeError(f"[{self._name}] optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"[{self._name}] can't optimize a non-leaf Tensor")
            if p.dtype.kind != "f" or p.dtype.itemsize not in (4, 8) or not p.dtype.isnative:
                raise TypeError(f"[{self._name}] expected float32 or float64 params (native byte order), "
                                f"got {p.dtype.str if p.dtype.kind == 'f' else p.dtype}")
            plist.append(p)
        if names and len(names) != len(plist):
            raise ValueError(f"[{self._name}] all params of a group must be named, or none")
        group = dict(param_group)
        group["params"] = plist
        if names:
            group["param_names"] = names
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"[{self._name}] parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        ids = [id(p) for p in plist]
        if len(set(ids)) != len(ids):
            raise ValueError(f"[{self._name}] a parameter group holds the same parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen & set(ids):
            raise ValueError(f"[{self._name}] some parameters appear in more than one parameter group")
        self._check_group(group)
        self.param_groups.append(group)

    # ------------------------------------------------------------ grads
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Sets every param's ``.grad`` to None (default) or to zeros in place."""
        groups = self.param_groups
        _zero_grads(groups[0]["params"] if len(groups) == 1 else chain.from_iterable(g["params"] for g in groups),
                    set_to_none)

    # ------------------------------------------------------------ step
    def _collect(self) -> tuple[list[tuple[dict[str, Any], list[Tensor], list[Any]]], Optional[KernelSet]]:
        """(group, params with a grad, their grad arrays) per group, and the step's kernels for the
        params' device (None when no param has a grad); checks every grad first."""
        work = []
        cpu = True  # every param and grad a NumPy array: the cpu kernels, no per-array device scan
        nd, T = np.ndarray, Tensor
        for group in self.param_groups:
            params, grads = [], []
            for p in group["params"]:
                gt = p.grad
                if gt is None:
                    continue
                g = gt._data if isinstance(gt, T) else gt
                d = p._data
                if g.shape != d.shape and tuple(g.shape) != tuple(d.shape):
                    raise ValueError(f"[{self._name}] expected grad of shape {tuple(d.shape)} (as its param), "
                                     f"got {tuple(g.shape)}")
                if g.dtype is not d.dtype and g.dtype != d.dtype:  # (builtin dtypes are singletons)
                    raise TypeError(f"[{self._name}] expected grad of dtype {d.dtype} (as its param), "
                                    f"got {g.dtype}")
                if not d.flags.writeable:  # checked for every group before any is stepped
                    raise ValueError(f"[{self._name}] expected writeable params, got a read-only array")
                if cpu and (type(d) is not nd or type(g) is not nd):
                    cpu = False
                params.append(p)
                grads.append(g)
            if params:
                work.append((group, params, grads))
        if not work:
            return work, None
        everything: list[Any] = []
        if not cpu:
            for _, params, grads in work:
                everything += [p._data for p in params]
                everything += grads
        try:  # one device for the whole step; a device without this step's kernels raises here
            return work, kernels(self._op, *everything)
        except (RuntimeError, NotImplementedError) as e:  # named as the user called it: "[Adam] ..."
            msg = str(e)
            raise type(e)(f"[{self._name}]" + msg[msg.index("]") + 1:]) from None

    def _group_step(self, group: dict[str, Any], params: list[Tensor], p_arrays: list[np.ndarray],
                    g_arrays: list[np.ndarray], K: KernelSet) -> None:
        raise NotImplementedError

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Performs one optimization step over every param that has a grad (others are skipped)."""
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        work, K = self._collect()
        if not work or K is None:
            return loss
        if self.skip_nonfinite:
            grads = [kernel_ready(g) for _, _, gs in work for g in gs]
            if not K.multi_tensor_all_finite(grads):
                self.skipped_steps += 1
                return loss
        nd = np.ndarray
        for group, params, grads in work:
            # Kernels need C-contiguous, aligned arrays: a strided (or misaligned)
            # param is stepped in a copy that is written back, so the Parameter's
            # own array is what changes.
            p_arrays, writeback = [], []
            for p in params:
                a = p._data
                if type(a) is nd and (f := a.flags).c_contiguous and f.aligned:  # (_ready, inline)
                    p_arrays.append(a)
                    continue
                c = kernel_ready(a)
                p_arrays.append(c)
                if c is not a:
                    writeback.append((a, c))
            g_arrays = grads  # (a new list only when a grad is not as the kernel takes it)
            for g in grads:
                if not (type(g) is nd and (f := g.flags).c_contiguous and f.aligned):
                    g_arrays = [g if _ready(g) else kernel_ready(g) for g in grads]
                    break
            try:
                self._group_step(group, params, p_arrays, g_arrays, K)
            except (TypeError, ValueError) as e:
                # The fused kernels' boundary checks (overlapping arrays, ...) name the kernel
                # ("[adam] ..."); the user called this optimizer.
                msg = str(e)
                if msg.startswith("[") and "]" in msg:
                    raise type(e)(f"[{self._name}]" + msg[msg.index("]") + 1:]) from e
                raise
            for a, c in writeback:
                a[...] = c
            for p in params:  # written in place: saved copies and autocast's cached casts are stale
                p._vc[0] += 1
        return loss

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}`` (PyTorch's layout).

        Params are numbered in group order; state arrays are copies, so the
        dict is a snapshot that later steps do not change.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, st in self.state.items():
            key = index[id(p)] if isinstance(p, Tensor) and id(p) in index else p
            state[key] = {k: _copy_value(v) for k, v in st.items()}
        return {"state": state, "param_groups": groups}

    # State entries that are one number per param (PyTorch keeps them in 0-d tensors).
    _scalar_state: tuple[str, ...] = ()

    def _load_value(self, p: Tensor, key: str, value: Any) -> Any:
        if key == "step":
            return int(float(np.asarray(value._data if isinstance(value, Tensor) else value)))
        if key in self._scalar_state:
            return float(np.asarray(value._data if isinstance(value, Tensor) else value))
        if value is None:
            return None
        if isinstance(value, (Tensor, np.ndarray)) or hasattr(value, "__array__"):
            raw = value._data if isinstance(value, Tensor) else value
            arr = raw if device_of(raw) != "cpu" else np.asarray(raw)
            if arr.shape != p._data.shape:
                raise ValueError(f"[{self._name}] expected state '{key}' of shape {tuple(p._data.shape)}, "
                                 f"got {arr.shape}")
            # on the param's device, allocated by its array module
            return Tensor._wrap(xp_of(p._data).array(arr, dtype=p._data.dtype, order="C", copy=True))
        return copy.deepcopy(value)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a dict from ``state_dict()`` (or PyTorch's, with arrays for tensors); copies it."""
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(f"[{self._name}] loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(f"[{self._name}] loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(s["params"] for s in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                p = id_map[k]
                state[p] = {key: self._load_value(p, key, val) for key, val in v.items()}
            else:
                state[k] = copy.deepcopy(v)
        new_groups = []
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups

    # ------------------------------------------------------------ misc
    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"\n    {key}: {group[key]}"
        return s + "\n)"


# ------------------------------------------------------------------ validation helpers
# How each hyper-parameter is named in its "Invalid ..." error (PyTorch's wording).
_HPARAM_WHAT = {
    "lr": "learning rate", "eps": "epsilon value", "momentum": "momentum value", "alpha": "alpha value",
    "weight_decay": "weight_decay value", "lr_decay": "lr_decay value", "final_lr": "final learning rate",
    "initial_accumulator_value": "initial_accumulator_value value", "momentum_decay": "momentum_decay value",
}


def _check_hparams(name: str, group: dict[str, Any], *keys: str) -> None:
    """Checks a group's hyper-parameters in the order given (each >= 0, ``betas`` a pair in [0, 1)), so
    every optimizer raises the same "[Name] Invalid ..." messages."""
    for key in keys:
        if key == "betas":
            _check_betas(name, group["betas"])
        else:
            _check_nonneg(name, key, _as_float(group[key]) if key == "lr" else group[key], _HPARAM_WHAT[key])


def _check_nonneg(name: str, key: str, value: Any, what: str) -> None:
    try:
        ok = 0.0 <= float(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"[{name}] Invalid {what}: {value}")


def _check_betas(name: str, betas: Any, upper_inclusive: bool = False) -> None:
    try:
        b = tuple(float(x) for x in betas)
    except TypeError:
        raise ValueError(f"[{name}] Invalid betas: expected a pair of floats, got {betas!r}") from None
    if len(b) != 2:
        raise ValueError(f"[{name}] Invalid betas: expected a pair of floats, got {betas!r}")
    for i, v in enumerate(b):
        ok = 0.0 <= v <= 1.0 if upper_inclusive else 0.0 <= v < 1.0
        if not ok:
            raise ValueError(f"[{name}] Invalid beta parameter at index {i}: {v}")


def _check_unsupported(name: str, **flags: Any) -> None:
    for k, v in flags.items():
        if v:
            raise NotImplementedError(f"[{name}] {k}=True is not supported by nnfast")


def _check_unit(name: str, key: str, value: Any) -> None:
    """A hyper-parameter in [0, 1] (Adadelta's rho)."""
    try:
        ok = 0.0 <= float(value) <= 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"[{name}] Invalid {key} value: {value}")


def _as_float(x: Any) -> float:
    return float(x.item() if isinstance(x, Tensor) else x)
