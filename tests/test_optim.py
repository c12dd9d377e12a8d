"""Optimizers vs float64 NumPy reference updates written here (one table line per option set)."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import nnfast
from nnfast import nn, optim
from nnfast.tensor import Tensor

# ---------------------------------------------------------------------------- reference updates
# Each takes float64 (p, g, state dict, hyper-parameters) and returns the new p,
# updating the state in place: the textbook / PyTorch formulas, written plainly.


def ref_sgd(p, g, st, h):
    d = -g if h["maximize"] else g
    if h["weight_decay"]:
        d = d + h["weight_decay"] * p
    if h["momentum"]:
        if "buf" not in st:
            st["buf"] = d.copy()
        else:
            st["buf"] = h["momentum"] * st["buf"] + (1 - h["dampening"]) * d
        d = d + h["momentum"] * st["buf"] if h["nesterov"] else st["buf"]
    return p - h["lr"] * d


def _adam(p, g, st, h, decoupled):
    g = -g if h["maximize"] else g
    st["step"] = t = st.get("step", 0) + 1
    b1, b2 = h["betas"]
    if h["weight_decay"]:
        if decoupled:
            p = p * (1 - h["lr"] * h["weight_decay"])
        else:
            g = g + h["weight_decay"] * p
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    v = st["v"]
    if h["amsgrad"]:
        st["vmax"] = v = np.maximum(st.get("vmax", 0.0), st["v"])
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    return p - h["lr"] / bc1 * st["m"] / (np.sqrt(v) / math.sqrt(bc2) + h["eps"])


def ref_adam(p, g, st, h):
    return _adam(p, g, st, h, decoupled=False)


def ref_adamw(p, g, st, h):
    return _adam(p, g, st, h, decoupled=True)


def ref_adagrad(p, g, st, h):
    g = -g if h["maximize"] else g
    st["step"] = t = st.get("step", 0) + 1
    if h["weight_decay"]:
        g = g + h["weight_decay"] * p
    clr = h["lr"] / (1 + (t - 1) * h["lr_decay"])
    st["sum"] = st.get("sum", h["initial_accumulator_value"]) + g * g
    return p - clr * g / (np.sqrt(st["sum"]) + h["eps"])


def ref_rmsprop(p, g, st, h):
    g = -g if h["maximize"] else g
    if h["weight_decay"]:
        g = g + h["weight_decay"] * p
    a = h["alpha"]
    st["sq"] = a * st.get("sq", 0.0) + (1 - a) * g * g
    if h["centered"]:
        st["ga"] = a * st.get("ga", 0.0) + (1 - a) * g
        avg = np.sqrt(st["sq"] - st["ga"] ** 2) + h["eps"]
    else:
        avg = np.sqrt(st["sq"]) + h["eps"]
    if h["momentum"] > 0:
        st["buf"] = h["momentum"] * st.get("buf", 0.0) + g / avg
        return p - h["lr"] * st["buf"]
    return p - h["lr"] * g / avg


def ref_adabound(p, g, st, h):
    g = -g if h["maximize"] else g
    st["step"] = t = st.get("step", 0) + 1
    if h["weight_decay"]:
        g = g + h["weight_decay"] * p
    b1, b2 = h["betas"]
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    v = st["v"]
    if h["amsbound"]:
        st["vmax"] = v = np.maximum(st.get("vmax", 0.0), v)
    step_size = h["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
    final = h["final_lr"] * h["lr"] / h["base_lr"]
    lower = final * (1 - 1 / (h["gamma"] * t + 1))
    upper = final * (1 + 1 / (h["gamma"] * t))
    eta = np.clip(step_size / (np.sqrt(v) + h["eps"]), lower, upper)
    return p - eta * st["m"]


def ref_lion(p, g, st, h):
    g = -g if h["maximize"] else g
    b1, b2 = h["betas"]
    m = st.get("m", np.zeros_like(p))
    p = p * (1 - h["lr"] * h["weight_decay"])
    p = p - h["lr"] * np.sign(b1 * m + (1 - b1) * g)
    st["m"] = b2 * m + (1 - b2) * g
    return p


def ref_lamb(p, g, st, h):
    g = -g if h["maximize"] else g
    st["step"] = t = st.get("step", 0) + 1
    b1, b2 = h["betas"]
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    bc1, bc2 = (1 - b1**t, 1 - b2**t) if h["bias_correction"] else (1.0, 1.0)
    u = (st["m"] / bc1) / (np.sqrt(st["v"] / bc2) + h["eps"]) + h["weight_decay"] * p
    wn, un = np.linalg.norm(p), np.linalg.norm(u)
    r = wn / un if wn > 0 and un > 0 else 1.0
    return p - h["lr"] * r * u


def _decayed(p, g, h, decoupled=False):
    """(p, g) after maximize and weight decay: L2 into g, or decoupled p *= 1 - lr wd."""
    g = -g if h["maximize"] else g
    if h["weight_decay"]:
        if decoupled:
            p = p * (1 - h["lr"] * h["weight_decay"])
        else:
            g = g + h["weight_decay"] * p
    return p, g


def _f32(x):
    """PyTorch keeps NAdam's mu_product and ASGD's eta / mu in float32 scalar tensors."""
    return float(np.float32(x))


def ref_adadelta(p, g, st, h):
    p, g = _decayed(p, g, h)
    rho, eps = h["rho"], h["eps"]
    st["sq"] = rho * st.get("sq", 0.0) + (1 - rho) * g * g
    d = np.sqrt(st.get("acc", 0.0) + eps) / np.sqrt(st["sq"] + eps) * g
    st["acc"] = rho * st.get("acc", 0.0) + (1 - rho) * d * d
    return p - h["lr"] * d


def ref_adamax(p, g, st, h):
    st["step"] = t = st.get("step", 0) + 1
    p, g = _decayed(p, g, h)
    b1, b2 = h["betas"]
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["u"] = np.maximum(b2 * st.get("u", 0.0), np.abs(g) + h["eps"])
    return p - h["lr"] / (1 - b1**t) * st["m"] / st["u"]


def _moments(st, g, h):
    b1, b2 = h["betas"]
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    return st["m"], st["v"]


def ref_nadam(p, g, st, h):
    st["step"] = t = st.get("step", 0) + 1
    p, g = _decayed(p, g, h, h["decoupled_weight_decay"])
    b1, b2 = h["betas"]
    mu = b1 * (1 - 0.5 * 0.96 ** (t * h["momentum_decay"]))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * h["momentum_decay"]))
    st["mu_product"] = mp = _f32(st.get("mu_product", 1.0) * _f32(mu))
    m, v = _moments(st, g, h)
    denom = np.sqrt(v / (1 - b2**t)) + h["eps"]
    return p - h["lr"] * (1 - mu) / (1 - mp) * g / denom - h["lr"] * mu_next / (1 - mp * mu_next) * m / denom


def ref_radam(p, g, st, h):
    st["step"] = t = st.get("step", 0) + 1
    p, g = _decayed(p, g, h, h["decoupled_weight_decay"])
    b1, b2 = h["betas"]
    m, v = _moments(st, g, h)
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2**t / bc2
    if rho_t <= 5:
        return p - h["lr"] * m / bc1
    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    return p - h["lr"] * m / bc1 * math.sqrt(bc2) / (np.sqrt(v) + h["eps"]) * rect


def ref_asgd(p, g, st, h):
    st["step"] = t = st.get("step", 0) + 1
    p, g = _decayed(p, g, h)
    eta, mu = st.get("eta", _f32(h["lr"])), st.get("mu", 1.0)
    p = p * (1 - h["lambd"] * eta) - eta * g
    st["ax"] = p.copy() if mu == 1 else st["ax"] + mu * (p - st["ax"])
    st["eta"] = _f32(h["lr"] / (1 + h["lambd"] * h["lr"] * t) ** h["alpha"])
    st["mu"] = _f32(1 / max(1, t - h["t0"]))
    return p


# ---------------------------------------------------------------------------- the table
# name: (class, reference, defaults the reference needs, [option sets], group-1 overrides)
SGD_D = dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False)
ADAM_D = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False)
ADAMW_D = dict(ADAM_D, weight_decay=1e-2)
ADAGRAD_D = dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, maximize=False)
RMSPROP_D = dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False)
ADABOUND_D = dict(lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0, amsbound=False,
                  maximize=False)
LION_D = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0, maximize=False)
LAMB_D = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0, bias_correction=True, maximize=False)
ADADELTA_D = dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)
ADAMAX_D = dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False)
NADAM_D = dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
               decoupled_weight_decay=False, maximize=False)
RADAM_D = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False, maximize=False)
ASGD_D = dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, maximize=False)

TABLE = {
    "SGD": (optim.SGD, ref_sgd, SGD_D, [
        dict(lr=0.1),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.3),
        dict(lr=0.05, momentum=0.9, nesterov=True),
        dict(lr=0.1, weight_decay=0.05),
        dict(lr=0.1, maximize=True),
        dict(lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.02, maximize=True),
        dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.03, maximize=True),
    ], dict(lr=0.02, weight_decay=0.1)),
    "Adam": (optim.Adam, ref_adam, ADAM_D, [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, maximize=True, amsgrad=True, weight_decay=0.05),
    ], dict(lr=0.003, weight_decay=0.2)),
    "AdamW": (optim.AdamW, ref_adamw, ADAMW_D, [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.3, amsgrad=True),
        dict(lr=0.01, weight_decay=0.1, maximize=True),
    ], dict(lr=0.003, weight_decay=0.5)),
    "Adagrad": (optim.Adagrad, ref_adagrad, ADAGRAD_D, [
        dict(lr=0.1),
        dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.5),
        dict(lr=0.1, weight_decay=0.1, eps=1e-6),
        dict(lr=0.1, maximize=True, lr_decay=0.01),
    ], dict(lr=0.05, weight_decay=0.2)),
    "RMSprop": (optim.RMSprop, ref_rmsprop, RMSPROP_D, [
        dict(lr=0.01),
        dict(lr=0.01, alpha=0.9, centered=True),
        dict(lr=0.01, momentum=0.9),
        dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.05, maximize=True),
        dict(lr=0.005, momentum=0.9, centered=True, maximize=True, eps=1e-4),
    ], dict(lr=0.002, weight_decay=0.3)),
    "AdaBound": (optim.AdaBound, ref_adabound, ADABOUND_D, [
        dict(lr=0.01),
        dict(lr=0.01, final_lr=0.05, gamma=0.01),
        dict(lr=0.01, amsbound=True, weight_decay=0.1),
        dict(lr=0.01, maximize=True, betas=(0.8, 0.99)),
    ], dict(lr=0.004, weight_decay=0.2)),
    "Lion": (optim.Lion, ref_lion, LION_D, [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.5, betas=(0.95, 0.98)),
        dict(lr=0.01, maximize=True, weight_decay=0.1),
    ], dict(lr=0.002, weight_decay=1.0)),
    "LAMB": (optim.LAMB, ref_lamb, LAMB_D, [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, bias_correction=False, eps=1e-4),
        dict(lr=0.01, maximize=True, weight_decay=0.01),
    ], dict(lr=0.003, weight_decay=0.2)),
    "Adadelta": (optim.Adadelta, ref_adadelta, ADADELTA_D, [
        dict(),
        dict(lr=0.5, rho=0.8, eps=1e-4),
        dict(weight_decay=0.1),
        dict(lr=0.3, maximize=True, weight_decay=0.05),
    ], dict(lr=0.2, weight_decay=0.2)),
    "Adamax": (optim.Adamax, ref_adamax, ADAMAX_D, [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, maximize=True, weight_decay=0.05),
    ], dict(lr=0.003, weight_decay=0.2)),
    "NAdam": (optim.NAdam, ref_nadam, NADAM_D, [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.99), momentum_decay=0.02),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, maximize=True, weight_decay=0.05),
    ], dict(lr=0.003, weight_decay=0.2)),
    "RAdam": (optim.RAdam, ref_radam, RADAM_D, [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.9)),  # rectified from step 3
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, maximize=True, weight_decay=0.05, betas=(0.9, 0.95)),
    ], dict(lr=0.003, weight_decay=0.2)),
    "ASGD": (optim.ASGD, ref_asgd, ASGD_D, [
        dict(),
        dict(lr=0.05, lambd=0.01, alpha=0.5, t0=4),  # averaging from step 5
        dict(lr=0.05, weight_decay=0.1, t0=0),
        dict(lr=0.05, maximize=True, weight_decay=0.05, t0=10),
    ], dict(lr=0.02, weight_decay=0.2)),
}

CASES = [(name, i) for name, (_, _, _, cfgs, _) in TABLE.items() for i in range(len(cfgs))]
SHAPES = [(37, 29), (13,), (3, 1)]  # odd sizes: vector tails (threaded sizes: test_threads_*)


def _setup(name, cfg_i, dtype, seed=0, device="cpu"):
    """Four params in two groups: group 0 = (A, B) with the option set, group 1 = (C, D) with
    other hyper-parameters; D never has a grad."""
    cls, ref, defaults, cfgs, g1 = TABLE[name]
    cfg = cfgs[cfg_i]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES + [(4, 4)]]
    params = [nn.Parameter(a.copy()) for a in arrays]
    if device != "cpu":
        params = [nn.Parameter(Tensor(a.copy()).to(device)) for a in arrays]
    groups = [{"params": params[:2]}, {"params": params[2:], **g1}]
    opt = cls(groups, **cfg)
    hps = [dict(defaults, **cfg), {**defaults, **cfg, **g1}]
    for h in hps:
        h.setdefault("base_lr", h["lr"])
    return opt, params, arrays, hps, rng


def _grads(rng, params, step, dtype):
    """Random grads; B (index 1) has none on every fourth step, D (index 3) never."""
    out = []
    for i, p in enumerate(params):
        if i == 3 or (i == 1 and step % 4 == 3):
            out.append(None)
        else:
            out.append(rng.standard_normal(p.shape).astype(dtype))
    return out


def _cpu_only(device):
    """Tests of CPU-only machinery (the per-ISA kernels) run on cpu only."""
    if device != "cpu":
        pytest.skip(f"{device}: a CPU-only test")


def _needs_kernels(name, device):
    """Optimizer tables run per device (conftest's ``device``), where the dispatch table has the step."""
    from nnfast import _dispatch

    if TABLE[name][0]._op not in _dispatch.ops(device):
        pytest.skip(f"{name}: no {device} kernel in this build")


def _dispatch_device(a):
    from nnfast import _dispatch

    return _dispatch.device_of(a._data if isinstance(a, Tensor) else a)


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,cfg_i", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_against_reference(name, cfg_i, dtype, device):
    from nnfast._dispatch import to_host

    _needs_kernels(name, device)
    opt, params, arrays, hps, rng = _setup(name, cfg_i, dtype, device=device)
    _, ref, _, _, _ = TABLE[name]
    own = [p._data for p in params]
    ref_p = [a.astype(np.float64) for a in arrays]
    ref_st = [{} for _ in params]
    for step in range(30):
        grads = _grads(rng, params, step, dtype)
        for i, (p, g) in enumerate(zip(params, grads)):
            p.grad = None if g is None else Tensor(g).to(device)
            if g is not None:
                ref_p[i] = ref(ref_p[i], g.astype(np.float64), ref_st[i], hps[0 if i < 2 else 1])
        opt.step()
    for i, p in enumerate(params):
        assert p._data is own[i] and p.dtype == dtype, "the step must update the Parameter's own array"
        assert p.device.type == device
        np.testing.assert_allclose(to_host(p._data), ref_p[i], err_msg=f"{name} {TABLE[name][3][cfg_i]} param {i}",
                                   **_tol(dtype))
    for st in opt.state.values():  # optimizer state lives on the parameter's device
        for v in (st.values() if isinstance(st, dict) else ()):
            if hasattr(v, "device") and hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
                assert _dispatch_device(v) == device
    np.testing.assert_array_equal(to_host(params[3]._data), arrays[3])  # grad None: untouched
    if name != "Adagrad":  # PyTorch's Adagrad creates its state up front
        assert params[3] not in opt.state


def test_mixed_dtypes_in_one_group():
    rng = np.random.default_rng(3)
    a32 = rng.standard_normal((50, 3)).astype(np.float32)
    a64 = rng.standard_normal(40)
    p32, p64 = nn.Parameter(a32.copy()), nn.Parameter(a64.copy())
    opt = optim.Adam([p32, p64], lr=0.01, amsgrad=True)
    r32, r64, s32, s64 = a32.astype(np.float64), a64.copy(), {}, {}
    h = dict(ADAM_D, lr=0.01, amsgrad=True)
    for _ in range(10):
        g32, g64 = rng.standard_normal(a32.shape).astype(np.float32), rng.standard_normal(a64.shape)
        p32.grad, p64.grad = Tensor(g32), Tensor(g64)
        opt.step()
        r32, r64 = ref_adam(r32, g32.astype(np.float64), s32, h), ref_adam(r64, g64, s64, h)
    assert p32.dtype == np.float32 and p64.dtype == np.float64
    np.testing.assert_allclose(p32._data, r32, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p64._data, r64, rtol=1e-10, atol=1e-12)


def test_noncontiguous_param_is_updated_in_place():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    view = base[:, ::2]
    p = nn.Parameter(view)
    assert not p._data.flags.c_contiguous
    p.grad = Tensor(np.ones(view.shape))
    optim.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(base[:, ::2], np.arange(24.0).reshape(4, 6)[:, ::2] - 0.5)
    np.testing.assert_array_equal(base[:, 1::2], np.arange(24.0).reshape(4, 6)[:, 1::2])


def test_training_a_model_decreases_loss():
    nnfast.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
    x = nnfast.randn(64, 5)
    y = nnfast.randn(64, 1)
    opt = optim.AdamW(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_step_with_closure_returns_loss():
    p = nn.Parameter(np.array([3.0]))

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    opt = optim.SGD([p], lr=0.25)
    loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(p._data, [1.5])


# ---------------------------------------------------------------------------- state dict
STATE_CASES = [("SGD", 6), ("Adam", 4), ("AdamW", 1), ("Adagrad", 1), ("RMSprop", 5), ("AdaBound", 2),
               ("Lion", 1), ("LAMB", 3), ("Adadelta", 3), ("Adamax", 3), ("NAdam", 4), ("RAdam", 4),
               ("ASGD", 3)]


@pytest.mark.parametrize("name,cfg_i", STATE_CASES, ids=[n for n, _ in STATE_CASES])
def test_state_dict_round_trip_continues_bit_identically(name, cfg_i):
    dtype = np.float32
    opt, params, _, _, rng = _setup(name, cfg_i, dtype)
    grads = [_grads(rng, params, s, dtype) for s in range(20)]

    def run(opt, params, steps):
        for s in steps:
            for p, g in zip(params, grads[s]):
                p.grad = None if g is None else Tensor(g.copy())
            opt.step()

    run(opt, params, range(8))
    sd = opt.state_dict()
    # PyTorch's layout: int keys, params as indices in group order.
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]
    assert set(sd["state"]) <= {0, 1, 2, 3}
    snapshot = copy.deepcopy(sd)
    resumed_params = [nn.Parameter(p._data.copy()) for p in params]
    cls = TABLE[name][0]
    resumed = cls([{"params": resumed_params[:2]}, {"params": resumed_params[2:], "lr": 1.0}], lr=123.0)
    resumed.load_state_dict(sd)
    assert resumed.param_groups[1]["lr"] == opt.param_groups[1]["lr"]
    run(opt, params, range(8, 20))
    run(resumed, resumed_params, range(8, 20))
    for a, b in zip(params, resumed_params):
        np.testing.assert_array_equal(a._data, b._data)
    # state_dict() is a snapshot: later steps left it alone; the loaded copy is not shared.
    for k, st in snapshot["state"].items():
        for key, v in st.items():
            if isinstance(v, Tensor):
                np.testing.assert_array_equal(v._data, sd["state"][k][key]._data)


def test_load_state_dict_rejects_mismatched_groups():
    p, q = nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(2))
    a = optim.Adam([p, q])
    b = optim.Adam([{"params": [p]}, {"params": [q]}])
    with pytest.raises(ValueError, match="number of parameter groups"):
        b.load_state_dict(a.state_dict())
    c = optim.Adam([p])
    with pytest.raises(ValueError, match="doesn't match the size"):
        c.load_state_dict(a.state_dict())


def test_param_groups_have_pytorch_keys_and_defaults():
    p = nn.Parameter(np.zeros(3, np.float32))
    g = optim.SGD([p]).param_groups[0]
    assert {k: g[k] for k in SGD_D} == SGD_D
    assert {"foreach", "differentiable", "fused"} <= set(g)
    g = optim.Adam([p]).param_groups[0]
    assert {k: g[k] for k in ADAM_D} == ADAM_D
    assert optim.AdamW([p]).param_groups[0]["weight_decay"] == 1e-2
    opt = optim.SGD([p], lr=0.1)
    q = nn.Parameter(np.zeros(2, np.float32))
    opt.add_param_group({"params": q, "momentum": 0.9})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["momentum"] == 0.9


def test_zero_grad():
    p = nn.Parameter(np.ones(3))
    opt = optim.SGD([p])
    p.grad = Tensor(np.ones(3))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad._data, 0)
    opt.zero_grad()
    assert p.grad is None


# ---------------------------------------------------------------------------- skip_nonfinite
@pytest.mark.parametrize("name", list(TABLE))
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_skip_nonfinite_leaves_everything_bit_identical(name, bad):
    cls, _, _, cfgs, _ = TABLE[name]
    rng = np.random.default_rng(5)
    params = [nn.Parameter(rng.standard_normal(s).astype(np.float32)) for s in SHAPES]
    opt = cls(params, skip_nonfinite=True, **cfgs[-1])
    for _ in range(3):
        for p in params:
            p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    before_p = [p._data.copy() for p in params]
    before_s = copy.deepcopy(opt.state_dict())
    for p in params:
        p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32))
    params[2].grad._data[0, 0] = bad
    opt.step()
    assert opt.skipped_steps == 1
    for p, b in zip(params, before_p):
        np.testing.assert_array_equal(p._data, b)
    after_s = opt.state_dict()
    for k, st in before_s["state"].items():
        for key, v in st.items():
            w = after_s["state"][k][key]
            if isinstance(v, Tensor):
                np.testing.assert_array_equal(v._data, w._data)
            else:
                assert v == w
    params[2].grad._data[0, 0] = 0.5
    opt.step()
    assert opt.skipped_steps == 1
    assert not np.array_equal(params[0]._data, before_p[0])


def test_nonfinite_grad_without_skip_is_applied():
    p = nn.Parameter(np.ones(4, np.float32))
    opt = optim.SGD([p], lr=0.1)
    p.grad = Tensor(np.array([1, np.nan, 1, 1], np.float32))
    opt.step()
    assert np.isnan(p._data[1]) and opt.skipped_steps == 0


# ---------------------------------------------------------------------------- errors
def test_grad_dtype_and_shape_mismatch_raise_before_any_update():
    p = nn.Parameter(np.ones(3, np.float32))
    q = nn.Parameter(np.ones(3, np.float32))
    opt = optim.Adam([{"params": [p]}, {"params": [q]}])
    p.grad = Tensor(np.ones(3, np.float32))
    q.grad = Tensor(np.ones(3, np.float64))
    with pytest.raises(TypeError, match=r"\[Adam\] expected grad of dtype float32"):
        opt.step()
    q.grad = Tensor(np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"\[Adam\] expected grad of shape \(3,\)"):
        opt.step()
    np.testing.assert_array_equal(p._data, 1)  # nothing was updated
    assert not opt.state


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD([p], lr=-1), r"\[SGD\] Invalid learning rate: -1"),
    (lambda p: optim.SGD([p], momentum=-0.5), r"\[SGD\] Invalid momentum value"),
    (lambda p: optim.SGD([p], weight_decay=-1), r"\[SGD\] Invalid weight_decay value"),
    (lambda p: optim.SGD([p], nesterov=True), r"\[SGD\] Nesterov momentum requires"),
    (lambda p: optim.SGD([p], momentum=0.9, dampening=0.1, nesterov=True), r"Nesterov"),
    (lambda p: optim.Adam([p], lr=float("nan")), r"\[Adam\] Invalid learning rate"),
    (lambda p: optim.Adam([p], eps=-1e-8), r"\[Adam\] Invalid epsilon value"),
    (lambda p: optim.Adam([p], betas=(1.0, 0.999)), r"\[Adam\] Invalid beta parameter at index 0"),
    (lambda p: optim.AdamW([p], betas=(0.9, -0.1)), r"\[AdamW\] Invalid beta parameter at index 1"),
    (lambda p: optim.Adagrad([p], lr_decay=-1), r"\[Adagrad\] Invalid lr_decay value"),
    (lambda p: optim.Adagrad([p], initial_accumulator_value=-1), r"initial_accumulator_value"),
    (lambda p: optim.RMSprop([p], alpha=-0.1), r"\[RMSprop\] Invalid alpha value"),
    (lambda p: optim.AdaBound([p], gamma=1.5), r"\[AdaBound\] Invalid gamma parameter"),
    (lambda p: optim.AdaBound([p], final_lr=-0.1), r"\[AdaBound\] Invalid final learning rate"),
    (lambda p: optim.Lion([p], betas=(0.9, 1.5)), r"\[Lion\] Invalid beta parameter at index 1"),
    (lambda p: optim.LAMB([p], eps=-1), r"\[LAMB\] Invalid epsilon value"),
    (lambda p: optim.SGD([{"params": [p], "lr": -0.1}]), r"\[SGD\] Invalid learning rate"),
])
def test_invalid_hyper_parameters(make, match):
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=match):
        make(p)


def test_bad_params():
    p = nn.Parameter(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(p)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([np.zeros(2)])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([p, p])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {p}}])
    x = nnfast.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([x * 2])
    with pytest.raises(ValueError, match="required optimization parameter lr"):
        from nnfast.optim.optimizer import Optimizer, required

        Optimizer([p], {"lr": required})


def test_binding_checks():
    from nnfast import _C

    p = [np.zeros(4, np.float32)]
    with pytest.raises(TypeError, match=r"\[adam\] expected grads\[0\] to have dtype float32"):
        _C.adam_step(p, [np.zeros(4)], [np.zeros(4, np.float32)], [np.zeros(4, np.float32)], None, [1],
                     1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    with pytest.raises(ValueError, match=r"exp_avgs\[0\] of shape \(4,\)"):
        _C.adam_step(p, [np.zeros(4, np.float32)], [np.zeros(5, np.float32)], [np.zeros(4, np.float32)], None, [1],
                     1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    with pytest.raises(ValueError, match="share memory"):
        _C.sgd_step(p, p, None, [], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.sgd_step([np.zeros(8, np.float32)[::2]], [np.zeros(4, np.float32)], None, [], 0.1, 0.0, 0.0, 0.0,
                    False, False)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _C.sgd_step([ro], [np.zeros(4, np.float32)], None, [], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.sgd_step([np.zeros(4, np.int32)], [np.zeros(4, np.int32)], None, [], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="step counts >= 1"):
        _C.adam_step(p, [np.zeros(4, np.float32)], [np.zeros(4, np.float32)], [np.zeros(4, np.float32)], None, [0],
                     1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)


def test_lamb_trust_ratio_guards():
    # A zero param has ||p|| = 0: the ratio falls back to 1 and the step is Adam's (wd = 0).
    p = nn.Parameter(np.zeros(5))
    opt = optim.LAMB([p], lr=0.1)
    p.grad = Tensor(np.array([1.0, -2.0, 3.0, 0.5, -1.0]))
    opt.step()
    assert opt.last_trust_ratios == [[1.0]]
    g = p.grad._data
    np.testing.assert_allclose(p._data, -0.1 * g / (np.abs(g) + 1e-6), rtol=1e-9)
    # A zero grad and no decay gives u = 0: ratio 1 and no movement.
    q = nn.Parameter(np.ones(3))
    opt = optim.LAMB([q], lr=0.1)
    q.grad = Tensor(np.zeros(3))
    opt.step()
    assert opt.last_trust_ratios == [[1.0]]
    np.testing.assert_array_equal(q._data, 1.0)


# ---------------------------------------------------------------------------- threads
@pytest.mark.parametrize("name,cfg_i", [("Adam", 4), ("SGD", 6), ("RMSprop", 5), ("LAMB", 1), ("AdaBound", 2)])
def test_threads_give_bit_identical_results(name, cfg_i):
    """Large tensors split across threads (one kernel call, many tensors) give the same bits
    as one thread: elementwise updates do not depend on the split, and LAMB's norms are
    summed over fixed blocks."""
    cls, _, _, cfgs, _ = TABLE[name]
    rng = np.random.default_rng(7)
    shapes = [(300, 257), (5,), (70001,), (0,), (3, 3)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    results = []
    old = nnfast.get_num_threads()
    try:
        for nt in (1, max(2, old)):
            nnfast.set_num_threads(nt)
            params = [nn.Parameter(a.copy()) for a in init]
            opt = cls(params, **cfgs[cfg_i])
            for gs in grads:
                for p, g in zip(params, gs):
                    p.grad = Tensor(g)
                opt.step()
            results.append([p._data.copy() for p in params])
    finally:
        nnfast.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- every ISA
def _isas():
    from nnfast import _C

    return [n for n in ("generic", "avx2", "avx512") if _C.cpu_isa_supported(n)]


@pytest.mark.parametrize("isa", _isas())
@pytest.mark.parametrize("name", list(TABLE))
def test_every_isa_matches_reference(isa, name, device):
    _cpu_only(device)
    """The range kernels are compiled per instruction set; each one the CPU runs is checked."""
    from nnfast import _C

    old = _C.cpu_isa()
    _C.set_cpu_isa(isa)
    try:
        for dtype in (np.float32, np.float64):
            cfg_i = len(TABLE[name][3]) - 1
            opt, params, arrays, hps, rng = _setup(name, cfg_i, dtype, seed=11)
            ref = TABLE[name][1]
            ref_p = [a.astype(np.float64) for a in arrays]
            ref_st = [{} for _ in params]
            for step in range(8):
                for i, (p, g) in enumerate(zip(params, _grads(rng, params, step, dtype))):
                    p.grad = None if g is None else Tensor(g)
                    if g is not None:
                        ref_p[i] = ref(ref_p[i], g.astype(np.float64), ref_st[i], hps[0 if i < 2 else 1])
                opt.step()
            for p, r in zip(params, ref_p):
                np.testing.assert_allclose(p._data, r, **_tol(dtype))
    finally:
        _C.set_cpu_isa(old)


# ------------------------------------------------------------------ state placement (4K aliasing)
# Large CPU state arrays start at an in-page offset away from their param's, grad's and sibling
# states' (optimizer._state_tensor): the values must not depend on it.
_PLACED = ["Adam", "AdamW", "NAdam", "Adamax", "Adadelta", "RMSprop", "Adagrad", "Lion"]
_BIG = (37, 223)  # 32,996 bytes in float32: above the placement threshold, odd sizes


def _page_gap(a, b):
    d = (a.ctypes.data - b.ctypes.data) % 4096
    return min(d, 4096 - d)


def _run_placed(name, staggered, monkeypatch, dtype=np.float32, steps=5, kw=None):
    from nnfast.optim import optimizer as O

    monkeypatch.setattr(O, "_STAGGER", [staggered])
    rng = np.random.default_rng(3)
    shapes = [_BIG, (1,), (7,), (1023,), (9000,)]
    params = [nn.Parameter(Tensor(rng.standard_normal(s).astype(dtype))) for s in shapes]
    opt = getattr(optim, name)(params, **(kw or {}))
    for _ in range(steps):
        for p in params:
            p.grad = Tensor(rng.standard_normal(p.shape).astype(dtype))
        opt.step()
    return opt, params


@pytest.mark.parametrize("name", _PLACED)
def test_state_placement_is_bit_identical(name, monkeypatch):
    kw = {"amsgrad": True} if name in ("Adam", "AdamW") else {}
    for dtype in (np.float32, np.float64):
        a, pa = _run_placed(name, False, monkeypatch, dtype, kw=kw)
        b, pb = _run_placed(name, True, monkeypatch, dtype, kw=kw)
        for p, q in zip(pa, pb):
            assert p._data.tobytes() == q._data.tobytes()
            for k, v in a.state[p].items():
                w = b.state[q][k]
                if isinstance(v, Tensor):
                    assert w._data.flags.c_contiguous and w._data.dtype == v._data.dtype
                    assert w._data.tobytes() == v._data.tobytes(), k
                else:
                    assert v == w, k


@pytest.mark.parametrize("name", ["Adam", "NAdam", "Adadelta"])
def test_large_state_arrays_are_staggered_in_the_page(name, monkeypatch):
    opt, params = _run_placed(name, True, monkeypatch, steps=1)
    p = params[0]
    arrays = [p._data, p.grad._data] + [v._data for v in opt.state[p].values() if isinstance(v, Tensor)]
    assert len(arrays) == 4
    for i in range(2, len(arrays)):
        for j in range(i):
            assert _page_gap(arrays[i], arrays[j]) >= 512, (i, j)
    off, params = _run_placed(name, False, monkeypatch, steps=1)  # the switch: plain allocations
    assert all(v._data.flags.owndata for v in off.state[params[0]].values() if isinstance(v, Tensor))


def test_staggered_state_dict_round_trip(monkeypatch):
    opt, params = _run_placed("Adam", True, monkeypatch, steps=3)
    saved = opt.state_dict()
    clone = [nn.Parameter(Tensor(p._data.copy())) for p in params]
    other = optim.Adam(clone)
    other.load_state_dict(saved)
    rng = np.random.default_rng(9)
    for _ in range(3):
        for p, q in zip(params, clone):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, q.grad = Tensor(g.copy()), Tensor(g.copy())
        opt.step()
        other.step()
    for p, q in zip(params, clone):
        assert p._data.tobytes() == q._data.tobytes()
        for k in ("exp_avg", "exp_avg_sq"):
            assert opt.state[p][k]._data.tobytes() == other.state[q][k]._data.tobytes()


def test_stagger_switch_is_read_from_the_environment():
    import os
    import subprocess
    import sys

    code = "from nnfast.optim import optimizer as O; print(O._STAGGER[0])"
    for val, want in (("0", "False"), ("1", "True")):
        env = dict(os.environ, NNFAST_OPTIM_STAGGER=val)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == want
