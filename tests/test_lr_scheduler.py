"""LR schedulers: 100-step lr sequences vs closed forms written here (PyTorch's semantics)."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from nnfast import nn, optim
from nnfast.optim import lr_scheduler as S

BASES = (0.1, 0.03)  # two param groups with different initial lrs


def _opt(cls=optim.SGD, **kw):
    p, q = nn.Parameter(np.zeros(2, np.float32)), nn.Parameter(np.zeros(3, np.float32))
    return cls([{"params": [p], "lr": BASES[0]}, {"params": [q], "lr": BASES[1]}], **kw)


def _run(opt, sched, steps=100):
    """lr of every group at epochs 0..steps-1 (the constructor sets epoch 0)."""
    out = []
    for _ in range(steps):
        lrs = [g["lr"] for g in opt.param_groups]
        assert sched.get_last_lr() == lrs
        out.append(lrs)
        opt.step()
        sched.step()
    return np.array(out)


def _closed(f, steps=100):
    return np.array([[f(b, t) for b in BASES] for t in range(steps)])


def _cos(b, t, T, eta):
    return eta + (b - eta) * (1 + math.cos(math.pi * t / T)) / 2


def _onecycle(b_max, t, total, pct=0.3, div=25.0, final_div=1e4, three=False, linear=False):
    if linear:
        def ann(s, e, x):
            return (e - s) * x + s
    else:
        def ann(s, e, x):
            return e + (s - e) / 2 * (math.cos(math.pi * x) + 1)
    init = b_max / div
    low = init / final_div
    e1 = pct * total - 1
    if three:
        e2 = 2 * pct * total - 2
        if t <= e1:
            return ann(init, b_max, t / e1)
        if t <= e2:
            return ann(b_max, init, (t - e1) / (e2 - e1))
        return ann(init, low, (t - e2) / (total - 1 - e2))
    if t <= e1:
        return ann(init, b_max, t / e1)
    return ann(b_max, low, (t - e1) / (total - 1 - e1))


def _cyclic(b, t, scale):
    """CyclicLR from b / 10 up to b over 4 steps, down over 6, the amplitude times ``scale``."""
    lo, x = b / 10, t % 10
    frac = x / 4 if x <= 4 else (10 - x) / 6
    return lo + (b - lo) * frac * scale


def _restart(t, T0, mult):
    """(epochs into the current cycle, its length) for warm restarts with T_i = T0 * mult^i."""
    T = T0
    while t >= T:
        t, T = t - T, T * mult
    return t, T

SCHEDULES = {
    "StepLR": (lambda o, S=S: S.StepLR(o, step_size=7, gamma=0.5), lambda b, t: b * 0.5 ** (t // 7)),
    "MultiStepLR": (lambda o, S=S: S.MultiStepLR(o, milestones=[10, 30, 30, 60], gamma=0.1),
                    lambda b, t: b * 0.1 ** sum(t >= m for m in (10, 30, 30, 60))),
    "ExponentialLR": (lambda o, S=S: S.ExponentialLR(o, gamma=0.97), lambda b, t: b * 0.97**t),
    "CosineAnnealingLR": (lambda o, S=S: S.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
                          lambda b, t: _cos(b, t, 30, 0.001)),
    "LinearLR-default": (lambda o, S=S: S.LinearLR(o), lambda b, t: b * (1 / 3 + (2 / 3) * min(5, t) / 5)),
    "LinearLR-decay": (lambda o, S=S: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=40),
                       lambda b, t: b * (1.0 - 0.9 * min(40, t) / 40)),
    "LambdaLR": (lambda o, S=S: S.LambdaLR(o, lambda t: 1 / (1 + 0.1 * t)), lambda b, t: b / (1 + 0.1 * t)),
    "LambdaLR-per-group": (lambda o, S=S: S.LambdaLR(o, [lambda t: 0.9**t, lambda t: 0.9**t]), lambda b, t: b * 0.9**t),
    "OneCycleLR": (lambda o, S=S: S.OneCycleLR(o, max_lr=list(BASES), total_steps=100),
                   lambda b, t: _onecycle(b, t, 100)),
    "OneCycleLR-epochs-linear": (
        lambda o, S=S: S.OneCycleLR(o, max_lr=list(BASES), epochs=10, steps_per_epoch=10, anneal_strategy="linear",
                               pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
        lambda b, t: _onecycle(b, t, 100, pct=0.25, div=10.0, final_div=100.0, linear=True)),
    "OneCycleLR-three-phase": (lambda o, S=S: S.OneCycleLR(o, max_lr=list(BASES), total_steps=100, three_phase=True),
                               lambda b, t: _onecycle(b, t, 100, three=True)),
    "SequentialLR": (lambda o, S=S: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                  S.ExponentialLR(o, gamma=0.9)], milestones=[5]),
                     lambda b, t: b * (0.1 + 0.9 * t / 5) if t < 5 else b * 0.9 ** (t - 5)),
    "SequentialLR-cosine": (lambda o, S=S: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.5, total_iters=10),
                                                         S.CosineAnnealingLR(o, T_max=90)], milestones=[10]),
                            lambda b, t: b * (0.5 + 0.5 * t / 10) if t < 10 else _cos(b, t - 10, 90, 0.0)),
    "MultiplicativeLR": (lambda o, S=S: S.MultiplicativeLR(o, lambda t: 0.95), lambda b, t: b * 0.95**t),
    "ConstantLR": (lambda o, S=S: S.ConstantLR(o, factor=0.5, total_iters=4), lambda b, t: b * (0.5 if t < 4 else 1)),
    "PolynomialLR": (lambda o, S=S: S.PolynomialLR(o, total_iters=40, power=2.0),
                     lambda b, t: b * (1 - min(40, t) / 40) ** 2),
    "ChainedScheduler": (lambda o, S=S: S.ChainedScheduler([S.ConstantLR(o, factor=0.1, total_iters=3),
                                                            S.ExponentialLR(o, gamma=0.9)]),
                         lambda b, t: b * 0.9**t * (0.1 if t < 3 else 1)),
    "CyclicLR": (lambda o, S=S: S.CyclicLR(o, [b / 10 for b in BASES], list(BASES), step_size_up=4, step_size_down=6),
                 lambda b, t: _cyclic(b, t, 1.0)),
    "CyclicLR-triangular2": (lambda o, S=S: S.CyclicLR(o, [b / 10 for b in BASES], list(BASES), step_size_up=4,
                                                       step_size_down=6, mode="triangular2"),
                             lambda b, t: _cyclic(b, t, 1 / 2 ** (t // 10))),
    "CyclicLR-exp_range": (lambda o, S=S: S.CyclicLR(o, [b / 10 for b in BASES], list(BASES), step_size_up=4,
                                                     step_size_down=6, mode="exp_range", gamma=0.99),
                           lambda b, t: _cyclic(b, t, 0.99**t)),
    "CosineAnnealingWarmRestarts": (lambda o, S=S: S.CosineAnnealingWarmRestarts(o, T_0=7),
                                    lambda b, t: _cos(b, t % 7, 7, 0.0)),
    "CosineAnnealingWarmRestarts-mult": (
        lambda o, S=S: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=0.001),
        lambda b, t: _cos(b, *_restart(t, 10, 2), 0.001)),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_lr_sequence_matches_closed_form(name):
    make, closed = SCHEDULES[name]
    opt = _opt(momentum=0.9)
    got = _run(opt, make(opt))
    np.testing.assert_allclose(got, _closed(closed), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("cls,key", [(optim.SGD, "momentum"), (optim.Adam, "betas")])
def test_onecycle_cycles_momentum(cls, key):
    opt = _opt(cls, **({"momentum": 0.9} if cls is optim.SGD else {}))
    sched = S.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    for t in range(100):
        m = opt.param_groups[0][key]
        m = m[0] if key == "betas" else m
        # momentum moves opposite to the lr: 0.95 -> 0.85 (warm-up) -> 0.95
        e1 = 0.3 * 100 - 1
        if t <= e1:
            want = 0.85 + (0.95 - 0.85) / 2 * (math.cos(math.pi * t / e1) + 1)
        else:
            want = 0.95 + (0.85 - 0.95) / 2 * (math.cos(math.pi * (t - e1) / (99 - e1)) + 1)
        assert m == pytest.approx(want, rel=1e-12)
        if key == "betas":
            assert opt.param_groups[0]["betas"][1] == 0.999
        opt.step()
        sched.step()


def test_onecycle_errors():
    opt = _opt()
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="momentum or beta1"):
        S.OneCycleLR(_opt(optim.Adagrad), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    sched = S.OneCycleLR(_opt(momentum=0.9), max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()


def test_reduce_lr_on_plateau():
    opt = _opt()
    sched = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, threshold=0.1, cooldown=1,
                                min_lr=[0.02, 0.0])
    metrics = [10, 9, 8.5, 8.4, 8.3, 8.2, 5, 5, 5, 5, 5, 5, 5, 5]
    lrs = []
    best, bad, cool, lr = math.inf, 0, 0, list(BASES)
    for m in metrics:
        sched.step(m)
        # the rule, written out: rel threshold 0.1 means better only below 0.9 * best
        if m < best * 0.9:
            best, bad = m, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > 2:
            lr = [max(x * 0.5, lo) if x - max(x * 0.5, lo) > 1e-8 else x for x, lo in zip(lr, (0.02, 0.0))]
            cool, bad = 1, 0
        lrs.append([g["lr"] for g in opt.param_groups])
        assert lrs[-1] == pytest.approx(lr)
        assert sched.get_last_lr() == lrs[-1]
    assert lrs[-1][0] == 0.02  # floored at min_lr
    assert lrs[-1][1] < BASES[1] / 4


@pytest.mark.parametrize("mode,threshold_mode,metrics,reductions", [
    ("max", "rel", [1, 2, 3, 3, 3, 3], 1),
    ("max", "abs", [1, 1.05, 1.08, 1.09, 1.5, 1.55, 1.58, 1.6], 2),
    ("min", "abs", [1, 0.5, 0.45, 0.44, 0.43, 0.42], 1),
])
def test_reduce_lr_on_plateau_modes(mode, threshold_mode, metrics, reductions):
    opt = _opt()
    sched = S.ReduceLROnPlateau(opt, mode=mode, threshold_mode=threshold_mode, threshold=0.1, patience=2,
                                factor=0.1)
    best, bad, n = (-math.inf if mode == "max" else math.inf), 0, 0
    for m in metrics:
        sched.step(m)
        if mode == "max":
            better = m > (best * 1.1 if threshold_mode == "rel" else best + 0.1)
        else:
            better = m < (best * 0.9 if threshold_mode == "rel" else best - 0.1)
        best, bad = (m, 0) if better else (best, bad + 1)
        if bad > 2:
            n, bad = n + 1, 0
    assert n == reductions
    assert opt.param_groups[0]["lr"] == pytest.approx(BASES[0] * 0.1**n)


def test_reduce_lr_on_plateau_errors_and_state():
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(_opt(), factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        S.ReduceLROnPlateau(_opt(), mode="up")
    with pytest.raises(ValueError, match="threshold mode"):
        S.ReduceLROnPlateau(_opt(), threshold_mode="pct")
    opt = _opt()
    a = S.ReduceLROnPlateau(opt, patience=1)
    for m in (3, 2, 2):
        a.step(m)
    sd = copy.deepcopy(a.state_dict())
    assert "optimizer" not in sd and sd["num_bad_epochs"] == 1 and sd["best"] == 2
    b = S.ReduceLROnPlateau(_opt(), patience=5)
    b.load_state_dict(sd)
    assert b.patience == 1 and b.best == 2 and b.last_epoch == 3


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR", "SequentialLR", "LambdaLR",
                                  "MultiStepLR", "LinearLR-default", "MultiplicativeLR", "ConstantLR", "PolynomialLR",
                                  "ChainedScheduler", "CyclicLR-triangular2", "CosineAnnealingWarmRestarts-mult"])
def test_state_dict_round_trip(name):
    make, _ = SCHEDULES[name]
    opt = _opt(momentum=0.9)
    sched = make(opt)
    for _ in range(37):
        opt.step()
        sched.step()
    sd = copy.deepcopy(sched.state_dict())
    osd = opt.state_dict()
    # ChainedScheduler keeps no epoch of its own (as PyTorch's): its children do
    epoch = sd["last_epoch"] if "last_epoch" in sd else sd["_schedulers"][-1]["last_epoch"]
    assert "optimizer" not in sd and epoch == 37
    rest = _run(opt, sched, 40)
    opt2 = _opt(momentum=0.9)
    sched2 = make(opt2)
    opt2.load_state_dict(osd)
    sched2.load_state_dict(sd)
    np.testing.assert_array_equal(_run(opt2, sched2, 40), rest)


def test_scheduler_errors():
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        S.LinearLR(_opt(), start_factor=0)
    with pytest.raises(ValueError, match="Ending multiplicative factor"):
        S.LinearLR(_opt(), end_factor=1.5)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), step_size=3, last_epoch=5)
    opt = _opt()
    with pytest.raises(ValueError, match="number of milestone"):
        S.SequentialLR(opt, [S.StepLR(opt, 3), S.StepLR(opt, 4)], milestones=[])
    with pytest.raises(ValueError, match="same optimizer"):
        S.SequentialLR(opt, [S.StepLR(opt, 3), S.StepLR(_opt(), 4)], milestones=[3])
    with pytest.raises(ValueError, match="lr_lambdas"):
        S.LambdaLR(opt, [lambda t: 1.0])
    with pytest.raises(TypeError, match="Optimizer"):
        S.StepLR(object(), 3)


def test_step_with_epoch_uses_closed_form():
    opt = _opt()
    sched = S.StepLR(opt, step_size=3, gamma=0.5)
    with pytest.warns(UserWarning):
        sched.step(7)
    assert opt.param_groups[0]["lr"] == pytest.approx(BASES[0] * 0.25)


def test_adabound_final_lr_follows_the_schedule():
    # AdaBound's bound converges to final_lr * lr / base_lr: a scheduler scales it with lr.
    p = nn.Parameter(np.zeros(1))
    opt = optim.AdaBound([p], lr=0.01, final_lr=0.1)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert opt.param_groups[0]["base_lr"] == 0.01 and opt.param_groups[0]["lr"] == 0.005


# ---------------------------------------------------------------------------- against torch
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_lr_sequence_matches_torch(name):
    torch = pytest.importorskip("torch")
    make, _ = SCHEDULES[name]
    ps = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    topt = torch.optim.SGD([{"params": [ps[0]], "lr": BASES[0]}, {"params": [ps[1]], "lr": BASES[1]}], momentum=0.9)
    tsched = make(topt, torch.optim.lr_scheduler)
    want = []
    for _ in range(100):
        want.append(tsched.get_last_lr())
        topt.step()
        tsched.step()
    opt = _opt(momentum=0.9)
    np.testing.assert_allclose(_run(opt, make(opt)), np.array(want), rtol=1e-14, atol=0)
    assert [g["momentum"] for g in opt.param_groups] == pytest.approx([g["momentum"] for g in topt.param_groups])


def test_reduce_lr_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]
    ps = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    topt = torch.optim.SGD([{"params": [ps[0]], "lr": BASES[0]}, {"params": [ps[1]], "lr": BASES[1]}])
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, factor=0.5, patience=1, cooldown=1, min_lr=0.01)
    opt = _opt()
    sched = S.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=0.01)
    for m in metrics:
        tsched.step(m)
        sched.step(m)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)


def test_cosine_warm_restarts_fractional_epochs():
    opt = _opt()
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=0.001)
    for epoch, (t, T) in [(0.5, (0.5, 10)), (12.5, (2.5, 20)), (31.0, (1.0, 40)), (3.25, (3.25, 10))]:
        sched.step(epoch)
        assert (sched.T_cur, sched.T_i) == pytest.approx((t, T))
        assert sched.get_last_lr() == pytest.approx([_cos(b, t, T, 0.001) for b in BASES])
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1)
    with pytest.raises(ValueError, match="positive integer T_0"):
        S.CosineAnnealingWarmRestarts(opt, T_0=0)


def test_new_scheduler_errors():
    opt = _opt(momentum=0.9)
    with pytest.raises(ValueError, match=r"\[ConstantLR\] Constant multiplicative factor"):
        S.ConstantLR(opt, factor=1.5)
    with pytest.raises(TypeError, match=r"\[MultiplicativeLR\] lr_lambda should be a function"):
        S.MultiplicativeLR(opt, 0.9)
    with pytest.raises(ValueError, match=r"\[CyclicLR\] mode is invalid"):
        S.CyclicLR(opt, 0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match=r"\[CyclicLR\] optimizer must support momentum"):
        S.CyclicLR(_opt(optim.Adagrad), 0.01, 0.1)
    with pytest.raises(ValueError, match=r"\[ChainedScheduler\] expects at least one"):
        S.ChainedScheduler([])
    with pytest.raises(ValueError, match=r"\[ChainedScheduler\] expects all schedulers to belong"):
        S.ChainedScheduler([S.StepLR(opt, 3), S.StepLR(_opt(), 3)])


def test_cyclic_lr_cycles_adam_beta1():
    opt = _opt(optim.Adam)
    sched = S.CyclicLR(opt, 0.001, 0.01, step_size_up=2, base_momentum=0.85, max_momentum=0.95)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.step()
    np.testing.assert_allclose(seen, [0.95, 0.9, 0.85, 0.9, 0.95])
