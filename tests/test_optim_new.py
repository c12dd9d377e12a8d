"""Adadelta, Adamax, NAdam, RAdam, ASGD and LBFGS against torch.optim (when installed): several steps,
params and state compared closely; state dicts moved both ways; LBFGS's iterates on Rosenbrock and a
least-squares fit, and its own behaviour without torch. The float64 reference table of the fused
optimizers is tests/test_optim.py's TABLE."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import nnfast
from nnfast import nn, optim
from nnfast.tensor import Tensor

# name: option sets compared with torch (PyTorch's keyword names)
TORCH_CASES = {
    "Adadelta": [dict(), dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)],
    "Adamax": [dict(), dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)],
    "NAdam": [dict(), dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
              dict(weight_decay=0.1, momentum_decay=0.01, maximize=True)],
    "RAdam": [dict(), dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
              dict(betas=(0.8, 0.9), weight_decay=0.1, maximize=True)],
    "ASGD": [dict(), dict(lr=0.05, t0=3, lambd=0.01, alpha=0.5, weight_decay=0.1, maximize=True)],
}
CASES = [(n, i) for n, cfgs in TORCH_CASES.items() for i in range(len(cfgs))]
SHAPES = [(37, 5), (11,)]


def _torch():
    return pytest.importorskip("torch")


def _host(a):
    from nnfast._dispatch import to_host

    return np.asarray(to_host(a._data if isinstance(a, Tensor) else a))


def _tol(dtype):
    # measured: float32 within ~1e-7 relative after 12 steps (PyTorch's CPU kernels fuse some
    # multiply-adds), float64 within ~1e-16
    return dict(rtol=2e-6, atol=2e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)


def _pair(torch, name, cfg, dtype, device="cpu", seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [nn.Parameter(Tensor(a.copy()).to(device)) for a in arrays]
    theirs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in arrays]
    groups = lambda ps: [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.02}]  # noqa: E731
    return (getattr(optim, name)(groups(ours), **cfg), ours,
            getattr(torch.optim, name)(groups(theirs), **cfg), theirs, rng)


def _steps(torch, o, ours, to, theirs, rng, n, dtype, device="cpu"):
    for _ in range(n):
        for p, q in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = Tensor(g.copy()).to(device)
            q.grad = torch.tensor(g)
        o.step()
        to.step()


def _assert_state_close(o, ours, to, theirs, dtype):
    for p, q in zip(ours, theirs):
        a, b = o.state[p], to.state[q]
        assert set(a) == set(b)
        for key, want in b.items():
            want = want.detach().numpy() if hasattr(want, "detach") else want
            got = _host(a[key]) if isinstance(a[key], Tensor) else a[key]
            np.testing.assert_allclose(got, want, err_msg=key, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,cfg_i", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_matches_torch(name, cfg_i, dtype, device):
    torch = _torch()
    o, ours, to, theirs, rng = _pair(torch, name, TORCH_CASES[name][cfg_i], dtype, device)
    _steps(torch, o, ours, to, theirs, rng, 12, dtype, device)
    for p, q in zip(ours, theirs):
        assert p.device.type == device and p.dtype == dtype
        np.testing.assert_allclose(_host(p), q.detach().numpy(), **_tol(dtype))
    _assert_state_close(o, ours, to, theirs, dtype)


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_state_dict_moves_between_torch_and_nnfast(name):
    """A torch state dict loads into nnfast (and nnfast's into torch): both continue alike."""
    torch = _torch()
    cfg = TORCH_CASES[name][-1]
    o, ours, to, theirs, rng = _pair(torch, name, cfg, np.float64)
    _steps(torch, o, ours, to, theirs, rng, 5, np.float64)
    # torch -> nnfast: a fresh nnfast optimizer on copies of the params
    resumed = [nn.Parameter(_host(p).copy()) for p in ours]
    o2 = getattr(optim, name)([{"params": [resumed[0]]}, {"params": [resumed[1]]}], **cfg)
    sd = to.state_dict()
    o2.load_state_dict({"state": {k: {kk: (vv.numpy() if hasattr(vv, "numpy") else vv) for kk, vv in v.items()}
                                  for k, v in sd["state"].items()},
                        "param_groups": sd["param_groups"]})
    # nnfast -> torch
    theirs2 = [torch.nn.Parameter(q.detach().clone()) for q in theirs]
    to2 = getattr(torch.optim, name)([{"params": [theirs2[0]]}, {"params": [theirs2[1]]}], **cfg)
    osd = o.state_dict()
    to2.load_state_dict({"state": {k: {kk: torch.tensor(_host(vv) if isinstance(vv, Tensor) else float(vv))
                                       for kk, vv in v.items()} for k, v in osd["state"].items()},
                         "param_groups": osd["param_groups"]})
    for _ in range(4):
        gs = [rng.standard_normal(s) for s in SHAPES]
        for p, q, r, t, g in zip(ours, theirs, resumed, theirs2, gs):
            p.grad, r.grad = Tensor(g.copy()), Tensor(g.copy())
            q.grad, t.grad = torch.tensor(g), torch.tensor(g)
        for opt in (o, to, o2, to2):
            opt.step()
    for p, q, r, t in zip(ours, theirs, resumed, theirs2):
        want = q.detach().numpy()
        np.testing.assert_allclose(_host(p), want, **_tol(np.float64))
        np.testing.assert_allclose(_host(r), want, **_tol(np.float64))
        # torch casts loaded 0-d states (NAdam's mu_product, ASGD's eta / mu) to the param's float64,
        # so it no longer rounds them to float32 as it does from a fresh start
        np.testing.assert_allclose(t.detach().numpy(), want, rtol=1e-9, atol=1e-12)


def test_param_groups_have_pytorch_defaults():
    p = nn.Parameter(np.zeros(3))
    want = {
        "Adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False),
        "Adamax": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False),
        "NAdam": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                      decoupled_weight_decay=False, maximize=False),
        "RAdam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                      maximize=False),
        "ASGD": dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, maximize=False),
        "LBFGS": dict(lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-7, tolerance_change=1e-9, history_size=100,
                      line_search_fn=None),
    }
    for name, d in want.items():
        g = getattr(optim, name)([p]).param_groups[0]
        assert {k: g[k] for k in d} == d, name


def test_param_group_keys_match_torch():
    torch = _torch()
    for name in list(TORCH_CASES) + ["LBFGS"]:
        ours = set(getattr(optim, name)([nn.Parameter(np.zeros(2))]).param_groups[0])
        theirs = set(getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))]).param_groups[0])
        assert ours == theirs, name


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.Adadelta([p], rho=1.5), r"\[Adadelta\] Invalid rho value: 1.5"),
    (lambda p: optim.Adadelta([p], lr=-1), r"\[Adadelta\] Invalid learning rate"),
    (lambda p: optim.Adamax([p], betas=(0.9, 1.0)), r"\[Adamax\] Invalid beta parameter at index 1"),
    (lambda p: optim.NAdam([p], momentum_decay=-1), r"\[NAdam\] Invalid momentum_decay value"),
    (lambda p: optim.RAdam([p], eps=-1), r"\[RAdam\] Invalid epsilon value"),
    (lambda p: optim.ASGD([p], weight_decay=-1), r"\[ASGD\] Invalid weight_decay value"),
    (lambda p: optim.LBFGS([p], lr=-1), r"\[LBFGS\] Invalid learning rate"),
    (lambda p: optim.LBFGS([p], line_search_fn="armijo"), r"\[LBFGS\] expected line_search_fn"),
    (lambda p: optim.LBFGS([{"params": [p]}, {"params": [nn.Parameter(np.zeros(1))]}]), r"\[LBFGS\] doesn't"),
])
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make(nn.Parameter(np.zeros(2)))


def test_binding_checks():
    from nnfast import _C

    p = [np.zeros(4)]
    with pytest.raises(ValueError, match=r"\[nadam\] expected one mu_product per param"):
        _C.nadam_step(p, [np.zeros(4)], [np.zeros(4)], [np.zeros(4)], [], [1], 1e-3, 0.9, 0.999, 1e-8, 0.0,
                      4e-3, False, False)
    with pytest.raises(ValueError, match=r"\[asgd\] expected axs\[0\] of shape \(4,\)"):
        _C.asgd_step(p, [np.zeros(4)], [np.zeros(3)], [0.01], [1.0], [1], 0.01, 1e-4, 0.75, 1e6, 0.0, False)
    with pytest.raises(ValueError, match="share memory"):
        _C.adadelta_step(p, [np.zeros(4)], p, [np.zeros(4)], 1.0, 0.9, 1e-6, 0.0, False)
    with pytest.raises(ValueError, match="step counts >= 1"):
        _C.radam_step(p, [np.zeros(4)], [np.zeros(4)], [np.zeros(4)], [0], 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)


# ---------------------------------------------------------------------------- LBFGS
def _rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


X0 = [-1.2, 1.0, -0.5, 0.8, 1.3]
A = np.random.default_rng(3).standard_normal((9, 4))
B = np.random.default_rng(4).standard_normal(9)


def _lstsq_loss(lib, w, b):
    a = lib.tensor(A) if lib is not nnfast else nnfast.tensor(A)
    y = lib.tensor(B) if lib is not nnfast else nnfast.tensor(B)
    return (((a @ w + b) - y) ** 2).mean()


def _lbfgs_pair(torch, problem, ls, **kw):
    """nnfast's and torch's LBFGS on one problem: (optimizer, closure, params) for each."""
    def build(lib, param_cls, opt_mod):
        if problem == "rosenbrock":
            ps = [param_cls(lib.tensor(np.array(X0)))]
            f = lambda: _rosenbrock(ps[0])  # noqa: E731
        else:
            ps = [param_cls(lib.tensor(np.zeros(4))), param_cls(lib.tensor(np.zeros(())))]
            f = lambda: _lstsq_loss(lib, ps[0], ps[1])  # noqa: E731
        opt = opt_mod.LBFGS(ps, line_search_fn=ls, **kw)

        def closure():
            opt.zero_grad()
            loss = f()
            loss.backward()
            return loss
        return opt, closure, ps

    return build(nnfast, nn.Parameter, optim), build(torch, torch.nn.Parameter, torch.optim)


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
@pytest.mark.parametrize("problem,kw", [("rosenbrock", dict(lr=1, history_size=5, max_iter=10)),
                                        ("rosenbrock", dict(lr=0.1, max_iter=7)),
                                        ("lstsq", dict(lr=0.5, history_size=3))])
def test_lbfgs_iterates_match_torch(problem, kw, ls):
    torch = _torch()
    if ls is None and problem == "rosenbrock" and kw["lr"] == 1:
        kw = dict(kw, lr=0.1)  # a unit step without line search diverges on Rosenbrock
    (o, cl, ps), (to, tcl, tps) = _lbfgs_pair(torch, problem, ls, **kw)
    for _ in range(4):
        a, b = o.step(cl), to.step(tcl)
        assert abs(float(a.item()) - float(b.item())) <= 1e-9 * max(1.0, abs(float(b.item())))
        for p, q in zip(ps, tps):
            np.testing.assert_allclose(p._data, q.detach().numpy(), rtol=1e-9, atol=1e-11)
        st, tst = o.state[ps[0]], to.state[tps[0]]
        assert (st["func_evals"], st["n_iter"]) == (tst["func_evals"], tst["n_iter"])


def test_lbfgs_solves_least_squares_and_returns_first_loss(device):
    w = nn.Parameter(Tensor(np.zeros(4)).to(device))
    b = nn.Parameter(Tensor(np.zeros(())).to(device))
    a, y = Tensor(A).to(device), Tensor(B).to(device)
    opt = optim.LBFGS([w, b], line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = (((a @ w + b) - y) ** 2).mean()
        loss.backward()
        return loss

    first = opt.step(closure)
    assert float(first.item()) == pytest.approx(float(np.mean(B ** 2)), rel=1e-12)
    opt.step(closure)
    sol = np.linalg.lstsq(np.c_[A, np.ones(9)], B, rcond=None)[0]
    np.testing.assert_allclose(_host(w), sol[:4], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(_host(b), sol[4], rtol=1e-6, atol=1e-8)
    assert w.device.type == device


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_lbfgs_state_dict_round_trip_continues_identically(ls):
    def make():
        p = nn.Parameter(np.array(X0))
        opt = optim.LBFGS([p], lr=0.5 if ls is None else 1, max_iter=4, history_size=3, line_search_fn=ls)

        def closure():
            opt.zero_grad()
            loss = _rosenbrock(p)
            loss.backward()
            return loss
        return p, opt, closure

    p, opt, cl = make()
    opt.step(cl)
    opt.step(cl)
    sd = copy.deepcopy(opt.state_dict())
    assert {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
            "prev_loss"} <= set(sd["state"][0])
    q, opt2, cl2 = make()
    q._data[...] = p._data
    opt2.load_state_dict(sd)
    for _ in range(2):
        opt.step(cl)
        opt2.step(cl2)
    np.testing.assert_array_equal(p._data, q._data)


def test_lbfgs_stops_at_a_stationary_point():
    p = nn.Parameter(np.ones(3))
    opt = optim.LBFGS([p])

    def closure():
        opt.zero_grad()
        loss = ((p - 1.0) ** 2).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure).item()) == 0.0
    assert opt.state[p]["func_evals"] == 1 and opt.state[p]["n_iter"] == 0
    np.testing.assert_array_equal(p._data, 1.0)
    with pytest.raises(RuntimeError, match=r"\[LBFGS\] expected a closure"):
        opt.step()
