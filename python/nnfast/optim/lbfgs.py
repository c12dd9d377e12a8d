"""``LBFGS``: limited-memory BFGS with PyTorch's algorithm (two-loop recursion, optional strong-Wolfe
line search with cubic interpolation) on a flat view of the parameters.

The vector math runs on the params' own array module (NumPy, or the cuda device's), in the params'
dtype; scalars derived from dot products are kept in that dtype too, as PyTorch keeps them in 0-d
tensors, so float32 runs round as PyTorch's do.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .._dispatch import xp_of
from ..autograd import grad_mode
from ..tensor import Tensor
from .optimizer import Optimizer, ParamsT, _as_float, _check_hparams

Objective = Callable[[Any, Any], tuple[float, Any]]  # (step t, direction d) -> (loss, flat grad)


def _cubic_minimum(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                   bounds: Optional[tuple[float, float]] = None) -> float:
    """The minimiser of the cubic through (x1, f1, slope g1) and (x2, f2, slope g2), clipped to
    ``bounds`` (default: the interval between the two points); the bounds' midpoint when the
    cubic has no real minimiser."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 ** 2 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = disc ** 0.5
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return float(min(max(x, lo), hi))


class _Point:
    """One trial of the line search: step t, loss f, flat gradient g and slope gtd = g . d."""

    __slots__ = ("t", "f", "g", "gtd")

    def __init__(self, t: Any, f: float, g: Any, gtd: Any) -> None:
        self.t, self.f, self.g, self.gtd = t, f, g, gtd


def _strong_wolfe(obj: Objective, t: Any, d: Any, f: float, g: Any, gtd: Any, c1: float = 1e-4, c2: float = 0.9,
                  tolerance_change: float = 1e-9, max_ls: int = 25) -> tuple[float, Any, Any, int]:
    """Line search along d for a step satisfying the strong Wolfe conditions (sufficient decrease
    with c1, curvature |g.d| <= c2 |g0.d|): a bracketing phase that grows the step by cubic
    extrapolation, then a zoom phase that shrinks the bracket by safeguarded cubic interpolation.
    Returns (loss, flat grad, step, evaluations)."""
    d_norm = float(abs(d).max())
    start = _Point(0, f, g.copy(), gtd)
    f_new, g_new = obj(t, d)
    evals, it = 1, 0
    new = _Point(t, f_new, g_new, g_new.dot(d))
    prev = start
    bracket: Optional[list[_Point]] = None
    while it < max_ls:
        if new.f > f + c1 * new.t * gtd or (it > 1 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if abs(new.gtd) <= -c2 * gtd:  # strong Wolfe holds: done
            return new.f, new.g, new.t, evals
        if new.gtd >= 0:
            bracket = [prev, new]
            break
        # extrapolate: a cubic step in [t + 0.01 (t - t_prev), 10 t]
        t_next = _cubic_minimum(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd,
                                bounds=(new.t + 0.01 * (new.t - prev.t), new.t * 10))
        prev = new
        f_new, g_new = obj(t_next, d)
        evals += 1
        it += 1
        new = _Point(t_next, f_new, g_new, g_new.dot(d))
    if bracket is None:  # ran out of evaluations while extrapolating
        bracket = [start, new]
    low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
    insufficient = False
    while it < max_ls:
        a, b = bracket[0].t, bracket[1].t
        if abs(b - a) * d_norm < tolerance_change:
            break
        t = _cubic_minimum(a, bracket[0].f, bracket[0].gtd, b, bracket[1].f, bracket[1].gtd)
        # keep the trial away from the bracket's ends (a tenth of its width), unless the
        # previous trial already made good progress inside it
        lo_b, hi_b = min(a, b), max(a, b)
        margin = 0.1 * (hi_b - lo_b)
        if min(hi_b - t, t - lo_b) < margin:
            if insufficient or t >= hi_b or t <= lo_b:
                t = hi_b - margin if abs(t - hi_b) < abs(t - lo_b) else lo_b + margin
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        f_new, g_new = obj(t, d)
        evals += 1
        it += 1
        new = _Point(t, f_new, g_new, g_new.dot(d))
        if new.f > f + c1 * t * gtd or new.f >= bracket[low].f:
            bracket[high] = new
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
            continue
        if abs(new.gtd) <= -c2 * gtd:
            bracket[low] = new
            break
        if new.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]
        bracket[low] = new
    best = bracket[low]
    return best.f, best.g, best.t, evals


class LBFGS(Optimizer):
    """L-BFGS (Nocedal 1980; Liu & Nocedal 1989) with PyTorch's algorithm; ``step(closure)`` runs up to
    ``max_iter`` iterations and returns the closure's first loss.

    Each iteration: the direction from the two-loop recursion over the last ``history_size`` (s, y)
    pairs (those with y.s > 1e-10), scaled by H = y.s / y.y; a first step of min(1, 1 / |g|_1) * lr,
    then lr; with line_search_fn='strong_wolfe' the step comes from a strong-Wolfe line search. Stops on
    max |g| <= tolerance_grad, a step or loss change below tolerance_change, max_iter or max_eval.

    One param group only; the state (PyTorch's keys: func_evals, n_iter, d, t, old_dirs, old_stps, ro,
    H_diag, prev_flat_grad, prev_loss) is kept on the first param.
    Defaults: lr=1, max_iter=20, max_eval=None (max_iter * 5 // 4), tolerance_grad=1e-07, tolerance_change=1e-09,
    history_size=100, line_search_fn=None.
    """

    _name = "LBFGS"
    _op = ""

    def __init__(self, params: ParamsT, lr: float = 1, max_iter: int = 20, max_eval: Optional[int] = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Optional[str] = None) -> None:
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"[LBFGS] expected line_search_fn None or 'strong_wolfe', got {line_search_fn!r}")
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("[LBFGS] doesn't support per-parameter options (parameter groups)")
        self._params: list[Tensor] = self.param_groups[0]["params"]

    def _check_group(self, group: dict[str, Any]) -> None:
        _check_hparams(self._name, group, "lr")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if self.param_groups:
            raise ValueError("[LBFGS] doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # ------------------------------------------------------------ the flat view
    def _flat_grad(self) -> Any:
        parts = []
        for p in self._params:
            a = p._data
            g = p.grad
            if g is None:
                parts.append(xp_of(a).zeros(a.size, dtype=a.dtype))
            else:
                parts.append((g._data if isinstance(g, Tensor) else g).reshape(-1))
        return xp_of(self._params[0]._data).concatenate(parts)

    def _add_to_params(self, t: Any, d: Any) -> None:
        """p += t * d over the flat view (the params' own arrays are written)."""
        scale = self._scalar(t)
        off = 0
        for p in self._params:
            a = p._data
            a[...] += (scale * d[off:off + a.size]).reshape(a.shape)
            p._vc[0] += 1
            off += a.size

    def _get_params(self) -> list[Any]:
        return [p._data.copy() for p in self._params]

    def _set_params(self, saved: list[Any]) -> None:
        for p, a in zip(self._params, saved):
            p._data[...] = a
            p._vc[0] += 1  # an in-place write (autocast's cached casts check the version)

    def _scalar(self, x: Any) -> Any:
        """x as a scalar of the params' dtype (PyTorch's 0-d tensors round to it)."""
        return self._params[0]._data.dtype.type(float(x))

    def _evaluate(self, closure: Callable[[], Any]) -> float:
        with grad_mode.enable_grad():
            loss = closure()
        return _as_float(loss)

    # ------------------------------------------------------------ step
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Runs up to max_iter L-BFGS iterations; ``closure`` (required) clears the grads, computes
        the loss, calls backward and returns the loss. Returns the first loss."""
        if closure is None:
            raise RuntimeError("[LBFGS] expected a closure (it re-evaluates the model)")
        group = self.param_groups[0]
        lr = _as_float(group["lr"])
        max_iter, max_eval = int(group["max_iter"]), int(group["max_eval"])
        tol_grad, tol_change = float(group["tolerance_grad"]), float(group["tolerance_change"])
        history = int(group["history_size"])
        st = self.state[self._params[0]]
        st.setdefault("func_evals", 0)
        st.setdefault("n_iter", 0)

        with grad_mode.enable_grad():
            first = closure()
        loss = _as_float(first)
        evals = 1
        st["func_evals"] += 1
        g = self._flat_grad()
        if float(abs(g).max()) <= tol_grad:
            return first
        d, t = st.get("d"), st.get("t")
        dirs: list[Any] = st.get("old_dirs", [])
        stps: list[Any] = st.get("old_stps", [])
        ro: list[Any] = st.get("ro", [])
        h_diag, g_prev, loss_prev = st.get("H_diag"), st.get("prev_flat_grad"), st.get("prev_loss")

        it = 0
        while it < max_iter:
            it += 1
            st["n_iter"] += 1
            if st["n_iter"] == 1:
                d, dirs, stps, ro, h_diag = -g, [], [], [], self._scalar(1)
            else:
                h_diag = self._update_history(g, g_prev, d, t, dirs, stps, ro, history, h_diag)
                d = self._direction(g, dirs, stps, ro, h_diag)
            g_prev = g.copy()
            loss_prev = loss
            if st["n_iter"] == 1:
                t = self._scalar(min(1.0, float(1.0 / self._scalar(abs(g).sum())))) * lr
            else:
                t = self._scalar(lr)
            gtd = self._scalar(g.dot(d))
            if gtd > -tol_change:  # not a descent direction
                break
            if group["line_search_fn"] == "strong_wolfe":
                start = self._get_params()

                def objective(step: Any, direction: Any) -> tuple[float, Any]:
                    self._add_to_params(step, direction)
                    f = self._evaluate(closure)
                    grad = self._flat_grad()
                    self._set_params(start)
                    return f, grad

                # PyTorch's search budget: the evaluations left of max_eval (its tolerance stays 1e-9)
                loss, g, t, ls_evals = _strong_wolfe(objective, t, d, loss, g, gtd, max_ls=max_eval - evals)
                self._add_to_params(t, d)
            else:
                self._add_to_params(t, d)
                ls_evals = 0
                if it != max_iter:  # re-evaluate for the next iteration (the last one needs none)
                    loss = self._evaluate(closure)
                    g = self._flat_grad()
                    ls_evals = 1
            evals += ls_evals
            st["func_evals"] += ls_evals
            if it == max_iter or evals >= max_eval or float(abs(g).max()) <= tol_grad:
                break
            if float(abs(d * self._scalar(t)).max()) <= tol_change or abs(loss - loss_prev) < tol_change:
                break
        st.update(d=d, t=t, old_dirs=dirs, old_stps=stps, ro=ro, H_diag=h_diag, prev_flat_grad=g_prev,
                  prev_loss=loss_prev)
        return first

    def _update_history(self, g: Any, g_prev: Any, d: Any, t: Any, dirs: list[Any], stps: list[Any],
                        ro: list[Any], history: int, h_diag: Any) -> Any:
        """Adds the pair (y, s) = (g - g_prev, t d) when its curvature y.s > 1e-10 (dropping the
        oldest beyond ``history``); returns the new initial Hessian scale y.s / y.y."""
        y = g - g_prev
        s = d * self._scalar(t)
        ys = self._scalar(y.dot(s))
        if ys <= 1e-10:
            return h_diag
        if len(dirs) == history:
            del dirs[0], stps[0], ro[0]
        dirs.append(y)
        stps.append(s)
        ro.append(self._scalar(1.0) / ys)
        return ys / self._scalar(y.dot(y))

    def _direction(self, g: Any, dirs: list[Any], stps: list[Any], ro: list[Any], h_diag: Any) -> Any:
        """-H g by the two-loop recursion."""
        q = -g
        al = [self._scalar(0)] * len(dirs)
        for i in range(len(dirs) - 1, -1, -1):
            al[i] = self._scalar(stps[i].dot(q)) * ro[i]
            q = q + (-al[i]) * dirs[i]
        r = q * h_diag
        for i in range(len(dirs)):
            be = self._scalar(dirs[i].dot(r)) * ro[i]
            r = r + (al[i] - be) * stps[i]
        return r

    # ------------------------------------------------------------ state dict
    def _load_value(self, p: Tensor, key: str, value: Any) -> Any:
        """LBFGS's state is flat vectors, lists of them and numbers: placed on the params' device."""
        xp = xp_of(p._data)
        dtype = p._data.dtype

        def conv(v: Any) -> Any:
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            raw = v._data if isinstance(v, Tensor) else v
            if hasattr(raw, "__array__") or hasattr(raw, "__cuda_array_interface__"):
                arr = np.asarray(raw) if xp is np else raw
                if getattr(arr, "ndim", 0) == 0:
                    return dtype.type(float(arr))
                return xp.array(arr, dtype=dtype, copy=True)
            return v

        if key in ("func_evals", "n_iter"):
            return int(value)
        if key == "prev_loss" and value is not None:
            return float(value)
        return conv(value)
