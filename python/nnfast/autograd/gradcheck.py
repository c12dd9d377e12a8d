"""Finite-difference gradient checks (float64, on the real kernels)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from . import grad_mode


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Compare analytic gradients with central differences.

    ``fn`` takes the tensors in ``inputs`` and returns a tensor (or a tuple of
    tensors). The check projects the outputs on a fixed random direction ``r``
    and compares d<r, fn(x)>/dx from ``backward`` with
    (<r, fn(x + eps e_i)> - <r, fn(x - eps e_i)>) / (2 eps) for every element
    of every input that requires grad. Inputs must be float64.
    """
    from .._dispatch import to_host
    from ..tensor import Tensor

    inputs = _as_tuple(inputs)
    targets = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not targets:
        raise ValueError("[gradcheck] expected at least one input with requires_grad=True")
    for t in targets:
        if t.dtype != np.float64:
            raise TypeError(f"[gradcheck] expected float64 inputs, got {t.dtype}")

    rng = np.random.default_rng(seed)
    with grad_mode.enable_grad():
        outs = _as_tuple(fn(*inputs))
    dirs = [rng.standard_normal(o.shape) for o in outs]

    def projected() -> float:
        with grad_mode.no_grad():
            res = _as_tuple(fn(*inputs))
        return float(sum(np.sum(np.asarray(to_host(o._data), dtype=np.float64) * d) for o, d in zip(res, dirs)))

    for t in targets:
        t.grad = None
    with grad_mode.enable_grad():
        outs = _as_tuple(fn(*inputs))
        total = None
        for o, d in zip(outs, dirs):
            if not o.requires_grad:
                continue
            term = (o * Tensor(d.astype(o.dtype)).to(o.device)).sum()  # on the output's device
            total = term if total is None else total + term
    if total is not None:
        total.backward()

    ok = True
    for idx, t in enumerate(targets):
        analytic = np.zeros(t.shape) if t.grad is None else np.asarray(to_host(t.grad._data), dtype=np.float64)
        numeric = np.zeros(t.shape)
        view = t._data
        for i in np.ndindex(*t.shape) if t.shape else [()]:
            orig = view[i]
            view[i] = orig + eps
            fp = projected()
            view[i] = orig - eps
            fm = projected()
            view[i] = orig
            numeric[i] = (fp - fm) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            ok = False
            if raise_exception:
                err = np.abs(analytic - numeric)
                worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
                raise RuntimeError(
                    f"[gradcheck] gradient mismatch for input {idx} of shape {t.shape}: "
                    f"max abs error {err.max():.3e} at {worst}: analytic {analytic[worst]:.8e} "
                    f"vs numeric {numeric[worst]:.8e}"
                )
    for t in targets:
        t.grad = None
    return ok
