"""Loss family: one table row per (loss, options); each row runs the forward
against a float64 NumPy formula, float64 gradcheck on the real kernels for
every differentiable input, non-contiguous inputs, and float32 vs float64."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck

from helpers import assert_close, noncontig

try:  # optional oracle
    import torch
except ImportError:  # pragma: no cover - torch is not a dependency
    torch = None

REDS = ("mean", "sum", "none")

# Under LD_PRELOAD=libasan.so alone, a C++ exception thrown by a binding aborts in ASan's
# __cxa_throw interceptor (it never found libstdc++'s); preloading libstdc++.so too fixes it.
_CXX_THROW_BROKEN = os.environ.get("NNFAST_SANITIZER_BUILD") == "1" and "libstdc++" not in os.environ.get(
    "LD_PRELOAD", "")
cxx_throw = pytest.mark.skipif(_CXX_THROW_BROKEN, reason="C++ exceptions abort under LD_PRELOAD=libasan.so "
                               "without libstdc++.so (add it to LD_PRELOAD)")


# ---------------------------------------------------------------------------------------- references
def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _rows(x):
    """(N, C, d...) -> (R, C) rows, class last; (C,) -> (1, C)."""
    if x.ndim == 1:
        return x[None, :]
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _reduce(per, red, denom, shape):
    if red == "none":
        return per.reshape(shape)
    return per.sum() if red == "sum" else per.sum() / denom


def ref_cross_entropy(x, t, w=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    logp = log_softmax(_rows(x), 1)
    tl = np.asarray(t).reshape(-1)
    mask = tl != ignore_index
    tt = np.where(mask, tl, 0)
    wv = np.ones(C) if w is None else w
    nll = -logp[np.arange(len(tl)), tt] * wv[tt] * mask
    smooth = -(logp * wv).sum(1) * mask
    per = (1 - label_smoothing) * nll + label_smoothing / C * smooth
    return _reduce(per, reduction, (wv[tt] * mask).sum(), np.shape(t))


def ref_cross_entropy_prob(x, p, w=None, reduction="mean", label_smoothing=0.0):
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    logp = log_softmax(_rows(x), 1)
    q = _rows(p) * (1 - label_smoothing) + label_smoothing / C
    wv = np.ones(C) if w is None else w
    per = -(logp * q * wv).sum(1)
    shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    return _reduce(per, reduction, per.size, shape)


def ref_nll(x, t, w=None, ignore_index=-100, reduction="mean"):
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    xr = _rows(x)
    tl = np.asarray(t).reshape(-1)
    mask = tl != ignore_index
    tt = np.where(mask, tl, 0)
    wv = np.ones(C) if w is None else w
    per = -xr[np.arange(len(tl)), tt] * wv[tt] * mask
    return _reduce(per, reduction, (wv[tt] * mask).sum(), np.shape(t))


def _pw_reduce(per, reduction):
    if reduction == "none":
        return per
    if reduction == "batchmean":
        return per.sum() / per.shape[0]
    return per.sum() if reduction == "sum" else per.mean()


def _huber(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def _smooth_l1(d, beta):
    a = np.abs(d)
    if beta == 0:
        return a
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def _bce(x, y, w=None):
    l = -(y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log1p(-x), -100))
    return l if w is None else l * w


def _bce_logits(x, y, w=None, pw=None):
    lw = 1 + ((pw if pw is not None else 1.0) - 1) * y
    l = (1 - y) * x + lw * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
    return l if w is None else l * w


def _kl(x, y, log_target):
    if log_target:
        return np.exp(y) * (y - x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0) - y * x


# ---------------------------------------------------------------------------------------- the table
class Case:
    """arrays: name -> float64 / int64 array; grads: names gradchecked; call(**tensors) -> Tensor;
    ref(**arrays) -> float64 value."""

    def __init__(self, id, arrays, grads, call, ref, torch_call=None):
        self.id, self.arrays, self.grads, self.call, self.ref, self.torch_call = id, arrays, grads, call, ref, torch_call


def _r(seed):
    return np.random.default_rng(seed)


def _ce_cases():
    out = []
    seed = 0
    for N, C, extra in ((7, 5, ()), (1, 1, ()), (4, 3, (2, 3)), (None, 6, ())):
        for red in REDS:
            for opt in ("plain", "weight", "ignore", "smooth", "weight+ignore+smooth"):
                seed += 1
                rng = _r(seed)
                xshape = (C,) if N is None else (N, C) + extra
                tshape = () if N is None else (N,) + extra
                x = rng.standard_normal(xshape) * 2
                t = rng.integers(0, C, tshape).astype(np.int64)
                kw = {}
                if "weight" in opt:
                    kw["weight"] = rng.uniform(0.2, 2.0, C)
                if "ignore" in opt and t.size > 1:
                    t.reshape(-1)[1] = -100
                ls = 0.25 if "smooth" in opt else 0.0
                arrays = {"input": x, "target": t, **kw}

                def call(red=red, ls=ls, **a):
                    return F.cross_entropy(a["input"], a["target"], weight=a.get("weight"), reduction=red,
                                           label_smoothing=ls)

                def ref(red=red, ls=ls, **a):
                    return ref_cross_entropy(a["input"], a["target"], a.get("weight"), reduction=red, label_smoothing=ls)

                def tcall(red=red, ls=ls, **a):
                    return torch.nn.functional.cross_entropy(a["input"], a["target"], weight=a.get("weight"),
                                                             reduction=red, label_smoothing=ls)

                out.append(Case(f"cross_entropy-{xshape}-{red}-{opt}", arrays, ("input",), call, ref, tcall))
    # probability targets (the target is differentiable too)
    for xshape in ((6, 4), (3, 5, 2), (4,)):
        for red in REDS:
            for ls, use_w in ((0.0, False), (0.3, True)):
                seed += 1
                rng = _r(seed)
                x = rng.standard_normal(xshape)
                p = log_softmax(rng.standard_normal(xshape), 1 if len(xshape) > 1 else 0)
                p = np.exp(p)
                C = xshape[1] if len(xshape) > 1 else xshape[0]
                arrays = {"input": x, "target": p}
                if use_w:
                    arrays["weight"] = rng.uniform(0.5, 1.5, C)

                def call(red=red, ls=ls, **a):
                    return F.cross_entropy(a["input"], a["target"], weight=a.get("weight"), reduction=red,
                                           label_smoothing=ls)

                def ref(red=red, ls=ls, **a):
                    return ref_cross_entropy_prob(a["input"], a["target"], a.get("weight"), red, ls)

                def tcall(red=red, ls=ls, **a):
                    return torch.nn.functional.cross_entropy(a["input"], a["target"], weight=a.get("weight"),
                                                             reduction=red, label_smoothing=ls)

                out.append(Case(f"cross_entropy_prob-{xshape}-{red}-ls{ls}-w{use_w}", arrays, ("input", "target"),
                                call, ref, tcall))
    return out


def _nll_cases():
    out = []
    for i, (xshape, red, opt) in enumerate(
        (s, r, o) for s in ((7, 5), (3, 4, 2), (5,)) for r in REDS for o in ("plain", "weight+ignore")
    ):
        rng = _r(100 + i)
        x = log_softmax(rng.standard_normal(xshape), 1 if len(xshape) > 1 else 0)
        C = xshape[1] if len(xshape) > 1 else xshape[0]
        t = rng.integers(0, C, xshape[:1] + xshape[2:] if len(xshape) > 1 else ()).astype(np.int64)
        arrays = {"input": x, "target": t}
        if opt != "plain":
            arrays["weight"] = rng.uniform(0.2, 2.0, C)
            if t.size > 1:
                t.reshape(-1)[0] = -100

        def call(red=red, **a):
            return F.nll_loss(a["input"], a["target"], weight=a.get("weight"), reduction=red)

        def ref(red=red, **a):
            return ref_nll(a["input"], a["target"], a.get("weight"), reduction=red)

        def tcall(red=red, **a):
            return torch.nn.functional.nll_loss(a["input"], a["target"], weight=a.get("weight"), reduction=red)

        out.append(Case(f"nll_loss-{xshape}-{red}-{opt}", arrays, ("input",), call, ref, tcall))
    return out


def _pointwise_cases():
    out = []
    specs = [
        # name, F call, reference, input sampler, target sampler, options, torch name
        ("mse_loss", lambda x, y, red, **k: F.mse_loss(x, y, reduction=red),
         lambda x, y, **k: (x - y) ** 2, "normal", "normal", [{}], "mse_loss"),
        ("l1_loss", lambda x, y, red, **k: F.l1_loss(x, y, reduction=red),
         lambda x, y, **k: np.abs(x - y), "normal", "normal", [{}], "l1_loss"),
        ("huber_loss", lambda x, y, red, delta: F.huber_loss(x, y, reduction=red, delta=delta),
         lambda x, y, delta: _huber(x - y, delta), "normal", "normal", [{"delta": 1.0}, {"delta": 0.4}], "huber_loss"),
        ("smooth_l1_loss", lambda x, y, red, beta: F.smooth_l1_loss(x, y, reduction=red, beta=beta),
         lambda x, y, beta: _smooth_l1(x - y, beta), "normal", "normal", [{"beta": 1.0}, {"beta": 0.3}, {"beta": 0.0}],
         "smooth_l1_loss"),
        ("binary_cross_entropy", lambda x, y, red, **k: F.binary_cross_entropy(x, y, weight=k.get("weight"), reduction=red),
         lambda x, y, **k: _bce(x, y, k.get("weight")), "prob", "prob", [{}, {"weight": "row"}], "binary_cross_entropy"),
        ("binary_cross_entropy_with_logits",
         lambda x, y, red, **k: F.binary_cross_entropy_with_logits(x, y, k.get("weight"), reduction=red,
                                                                    pos_weight=k.get("pos_weight")),
         lambda x, y, **k: _bce_logits(x, y, k.get("weight"), k.get("pos_weight")), "normal3", "prob",
         [{}, {"weight": "col"}, {"pos_weight": "col"}, {"weight": "row", "pos_weight": "col"}],
         "binary_cross_entropy_with_logits"),
        ("kl_div", lambda x, y, red, log_target: F.kl_div(x, y, reduction=red, log_target=log_target),
         lambda x, y, log_target: _kl(x, y, log_target), "logprob", "prob",
         [{"log_target": False}, {"log_target": True}], "kl_div"),
        ("perceptron_loss", lambda x, y, red, **k: F.perceptron_loss(x, y, reduction=red),
         lambda x, y, **k: np.maximum(0, -y * x), "normal", "sign", [{}], None),
    ]
    i = 0
    for name, call_f, ref_f, xs, ys, opts, tname in specs:
        for shape in ((7, 5), (3,), (2, 3, 4)):
            for opt in opts:
                reds = REDS + (("batchmean",) if name == "kl_div" else ())
                for red in reds:
                    i += 1
                    rng = _r(1000 + i)

                    def sample(kind):
                        if kind == "normal":
                            return rng.standard_normal(shape)
                        if kind == "normal3":
                            return rng.standard_normal(shape) * 3
                        if kind == "prob":
                            return rng.uniform(0.05, 0.95, shape)
                        if kind == "logprob":
                            return np.log(rng.uniform(0.05, 1.0, shape))
                        return np.where(rng.random(shape) < 0.5, -1.0, 1.0)

                    x = sample(xs)
                    y = sample(ys)
                    if name == "kl_div" and opt.get("log_target"):
                        y = np.log(y)
                    arrays = {"input": x, "target": y}
                    kw = {}
                    for k, v in opt.items():
                        if v == "row":  # broadcast over the last dim: shape[:-1] + (1,)
                            arrays[k] = rng.uniform(0.3, 2.0, shape[:-1] + (1,))
                        elif v == "col":  # one per class of the last dim
                            arrays[k] = rng.uniform(0.3, 2.0, shape[-1:])
                        else:
                            kw[k] = v

                    def call(call_f=call_f, red=red, kw=kw, **a):
                        extra = {k: v for k, v in a.items() if k not in ("input", "target")}
                        return call_f(a["input"], a["target"], red, **kw, **extra)

                    def ref(ref_f=ref_f, red=red, kw=kw, **a):
                        extra = {k: v for k, v in a.items() if k not in ("input", "target")}
                        return _pw_reduce(ref_f(a["input"], a["target"], **kw, **extra), red)

                    tcall = None
                    if tname is not None:
                        def tcall(tname=tname, red=red, kw=kw, **a):
                            extra = {k: v for k, v in a.items() if k not in ("input", "target")}
                            return getattr(torch.nn.functional, tname)(a["input"], a["target"], reduction=red,
                                                                       **kw, **extra)

                    out.append(Case(f"{name}-{shape}-{opt}-{red}", arrays, ("input", "target"), call, ref, tcall))
    # rmse (nnfast addition): only 'mean'
    for shape in ((7, 5), (4,)):
        rng = _r(5000 + len(shape))
        arrays = {"input": rng.standard_normal(shape), "target": rng.standard_normal(shape)}
        out.append(Case(f"rmse_loss-{shape}", arrays, ("input", "target"),
                        lambda **a: F.rmse_loss(a["input"], a["target"]),
                        lambda **a: np.sqrt(np.mean((a["input"] - a["target"]) ** 2))))
    return out


def _linear_ce_cases():
    out = []
    for i, (N, H, C, chunk, red, ls, bias, ign) in enumerate([
        (7, 4, 5, 2, "mean", 0.0, True, False),
        (7, 4, 5, 3, "sum", 0.2, False, True),
        (6, 3, 9, 4, "none", 0.1, True, True),
        (1, 2, 1, 8, "mean", 0.0, True, False),
        (5, 3, 7, 100, "mean", 0.3, True, True),
    ]):
        rng = _r(7000 + i)
        arrays = {"input": rng.standard_normal((N, H)), "weight": rng.standard_normal((C, H)),
                  "target": rng.integers(0, C, N).astype(np.int64)}
        if bias:
            arrays["bias"] = rng.standard_normal(C)
        if ign and N > 1:
            arrays["target"][1] = -100

        def call(red=red, ls=ls, chunk=chunk, **a):
            return F.linear_cross_entropy(a["input"], a["weight"], a.get("bias"), a["target"], reduction=red,
                                          label_smoothing=ls, chunk_size=chunk)

        def ref(red=red, ls=ls, **a):
            z = a["input"] @ a["weight"].T + (a["bias"] if "bias" in a else 0)
            return ref_cross_entropy(z, a["target"], reduction=red, label_smoothing=ls)

        grads = ("input", "weight") + (("bias",) if bias else ())
        out.append(Case(f"linear_cross_entropy-N{N}-C{C}-chunk{chunk}-{red}-ls{ls}-bias{bias}", arrays, grads, call,
                        ref))
    return out


CASES = _ce_cases() + _nll_cases() + _pointwise_cases() + _linear_ce_cases()
IDS = [c.id for c in CASES]


def _tensors(case, dtype=np.float64, nc=False, grad=True):
    ts = {}
    for k, a in case.arrays.items():
        v = a.astype(dtype) if a.dtype.kind == "f" else a.copy()
        if nc and v.ndim >= 1:
            v = noncontig(v) if v.dtype.kind == "f" else np.repeat(v, 2, axis=-1)[..., ::2]
        ts[k] = nnfast.from_numpy(v)
        if grad and k in case.grads:
            ts[k].requires_grad_(True)
    return ts


def _grads(case, ts):
    out = case.call(**ts)
    (out * nnfast.from_numpy(np.linspace(0.5, 1.5, max(1, out.numel())).reshape(out.shape).astype(out.dtype))).sum().backward()
    return out, {k: ts[k].grad.numpy().copy() for k in case.grads}


# ---------------------------------------------------------------------------------------- table tests
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_numpy(case):
    out = case.call(**_tensors(case, grad=False))
    expect = case.ref(**case.arrays)
    assert out.shape == np.shape(expect)
    assert out.dtype == np.float64
    assert_close(out, expect, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case):
    ts = _tensors(case)
    names = list(ts)
    gradcheck(lambda *args: case.call(**dict(zip(names, args))), tuple(ts[k] for k in names))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_noncontiguous_inputs(case):
    o1, g1 = _grads(case, _tensors(case))
    o2, g2 = _grads(case, _tensors(case, nc=True))
    assert_close(o2, o1.detach().numpy(), rtol=1e-12, atol=1e-14)
    for k in g1:
        assert_close(g2[k], g1[k], rtol=1e-12, atol=1e-14, msg=k)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_agrees_with_float64(case):
    o64, g64 = _grads(case, _tensors(case))
    o32, g32 = _grads(case, _tensors(case, dtype=np.float32))
    assert o32.dtype == np.float32
    assert_close(o32, o64.detach().numpy(), rtol=2e-5, atol=2e-5)
    for k in g64:
        assert g32[k].dtype == np.float32
        assert_close(g32[k], g64[k], rtol=2e-4, atol=2e-5, msg=k)


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("case", [c for c in CASES if c.torch_call is not None],
                         ids=[c.id for c in CASES if c.torch_call is not None])
def test_matches_torch(case):  # pragma: no cover - needs torch
    tt = {k: torch.from_numpy(a.copy()).requires_grad_(k in case.grads) for k, a in case.arrays.items()}
    tout = case.torch_call(**tt)
    ts = _tensors(case)
    out = case.call(**ts)
    assert_close(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.linspace(0.5, 1.5, max(1, out.numel())).reshape(out.shape)
    (tout * torch.from_numpy(w)).sum().backward()
    (out * nnfast.from_numpy(w)).sum().backward()
    for k in case.grads:
        assert_close(ts[k].grad, tt[k].grad.numpy(), rtol=1e-9, atol=1e-12, msg=k)


# ---------------------------------------------------------------------------------------- cross-entropy specifics
@pytest.mark.parametrize("N,C", [(1, 1023), (33, 257), (33, 1023), (7, 1), (300, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_sizes(N, C, dtype):
    rng = np.random.default_rng(N * 7 + C)
    x = rng.standard_normal((N, C)) * 4
    t = rng.integers(0, C, N)
    w = rng.uniform(0.5, 1.5, C)
    for red, ls in (("mean", 0.0), ("sum", 0.1), ("none", 0.0)):
        xt = nnfast.from_numpy(x.astype(dtype)).requires_grad_()
        out = F.cross_entropy(xt, nnfast.tensor(t), weight=nnfast.from_numpy(w.astype(dtype)), reduction=red,
                              label_smoothing=ls)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert_close(out, ref_cross_entropy(x, t, w, reduction=red, label_smoothing=ls), rtol=tol, atol=tol)
        out.sum().backward()
        # analytic reference gradient
        logp = log_softmax(x, 1)
        p = np.exp(logp)
        onehot = np.eye(C)[t]
        g = (1 - ls) * w[t][:, None] * (p - onehot) + ls / C * (w.sum() * p - w[None, :])
        if red == "mean":
            g = g / w[t].sum()
        assert_close(xt.grad, g, rtol=tol * 10, atol=tol)


def test_cross_entropy_extreme_logits_are_stable():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4 + 1], [3e38, -3e38, 0.0]], dtype=np.float32)
    t = np.array([0, 2, 0])
    for dtype in (np.float32, np.float64):
        xt = nnfast.from_numpy(x.astype(dtype)).requires_grad_()
        out = F.cross_entropy(xt, nnfast.tensor(t), reduction="none")
        assert_close(out, [0.0, np.log(1 + 2 * np.exp(-1.0)), 0.0], rtol=1e-5, atol=1e-6)
        out.sum().backward()
        assert np.all(np.isfinite(xt.grad.numpy()))


def test_cross_entropy_all_ignored_is_nan_with_zero_grad():
    x = nnfast.randn(4, 3, dtype=nnfast.float64, requires_grad=True)
    t = nnfast.tensor([-100, -100, -100, -100])
    out = F.cross_entropy(x, t)
    assert np.isnan(out.item())  # PyTorch: 0 / 0
    out.backward()
    assert np.all(x.grad.numpy() == 0)
    assert F.cross_entropy(x.detach(), t, reduction="sum").item() == 0.0
    assert np.all(F.cross_entropy(x.detach(), t, reduction="none").numpy() == 0)


def test_cross_entropy_custom_ignore_index_and_module():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4))
    t = np.array([0, 3, 1, 2, 3, 1])
    w = rng.uniform(0.5, 2, 4)
    m = nn.CrossEntropyLoss(weight=nnfast.from_numpy(w), ignore_index=3, label_smoothing=0.1)
    assert "weight" in dict(m.named_buffers())
    assert_close(m(nnfast.from_numpy(x), nnfast.tensor(t)),
                 ref_cross_entropy(x, t, w, ignore_index=3, label_smoothing=0.1), rtol=1e-12)


def test_cross_entropy_backward_is_scaled_saved_gradient():
    x = nnfast.randn(5, 4, dtype=nnfast.float64, requires_grad=True)
    t = nnfast.tensor([0, 1, 2, 3, 0])
    (F.cross_entropy(x, t) * 3.0).backward()
    g3 = x.grad.numpy().copy()
    x.grad = None
    F.cross_entropy(x, t).backward()
    assert_close(g3, 3 * x.grad.numpy(), rtol=1e-14)


def test_cross_entropy_no_grad_skips_gradient():
    x = nnfast.randn(5, 4, requires_grad=True)
    with nnfast.no_grad():
        out = F.cross_entropy(x, nnfast.tensor([0, 1, 2, 3, 0]))
    assert not out.requires_grad


def test_cross_entropy_deterministic_across_threads():
    rng = np.random.default_rng(5)
    x = nnfast.from_numpy(rng.standard_normal((4000, 37)).astype(np.float32))
    t = nnfast.tensor(rng.integers(0, 37, 4000))
    old = nnfast.get_num_threads()
    try:
        vals = []
        for n in (1, 2, 3):
            nnfast.set_num_threads(n)
            vals.append(F.cross_entropy(x, t).item())
    finally:
        nnfast.set_num_threads(old)
    assert vals[0] == vals[1] == vals[2]


def test_linear_cross_entropy_row_blocks_match_materialized():
    # C = 4096 and chunk 4096 gives row blocks of 256 rows, so N = 300 spans two blocks.
    rng = np.random.default_rng(11)
    N, H, C = 300, 3, 4096
    x = nnfast.from_numpy(rng.standard_normal((N, H))).requires_grad_()
    W = nnfast.from_numpy(rng.standard_normal((C, H)) * 0.5).requires_grad_()
    b = nnfast.from_numpy(rng.standard_normal(C)).requires_grad_()
    t = rng.integers(0, C, N)
    t[5] = -100
    t = nnfast.tensor(t)
    for chunk in (4096, 1000):
        out = F.linear_cross_entropy(x, W, b, t, label_smoothing=0.1, chunk_size=chunk)
        out.backward()
        gx, gW, gb = x.grad.numpy().copy(), W.grad.numpy().copy(), b.grad.numpy().copy()
        x.grad = W.grad = b.grad = None
        ref = F.cross_entropy(F.linear(x, W, b), t, label_smoothing=0.1)
        ref.backward()
        assert_close(out, ref.item(), rtol=1e-12)
        assert_close(gx, x.grad.numpy(), rtol=1e-9, atol=1e-13)
        assert_close(gW, W.grad.numpy(), rtol=1e-9, atol=1e-13)
        assert_close(gb, b.grad.numpy(), rtol=1e-9, atol=1e-13)
        x.grad = W.grad = b.grad = None


def test_linear_cross_entropy_module_and_leading_dims():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 4))
    W = rng.standard_normal((6, 4))
    t = rng.integers(0, 6, (2, 3))
    m = nn.LinearCrossEntropyLoss(reduction="none", chunk_size=4)
    out = m(nnfast.from_numpy(x), nnfast.from_numpy(W), None, nnfast.tensor(t))
    assert out.shape == (2, 3)
    assert_close(out, ref_cross_entropy((x @ W.T).reshape(6, 6), t.reshape(-1), reduction="none").reshape(2, 3),
                 rtol=1e-12)


# ---------------------------------------------------------------------------------------- other specifics
def test_rmse_gradient_is_finite_at_zero():
    x = nnfast.ones(3, 2, dtype=nnfast.float64, requires_grad=True)
    out = F.rmse_loss(x, nnfast.ones(3, 2, dtype=nnfast.float64))
    assert out.item() == 0.0
    out.backward()
    assert np.all(x.grad.numpy() == 0)


def test_bce_log_clamp_at_minus_100():
    x = nnfast.tensor([0.0, 1.0, 0.5], dtype=nnfast.float64)
    y = nnfast.tensor([1.0, 0.0, 1.0], dtype=nnfast.float64)
    out = F.binary_cross_entropy(x, y, reduction="none").numpy()
    assert_close(out, [100.0, 100.0, np.log(2)], rtol=1e-12)


def test_bce_with_logits_is_stable_for_large_logits():
    x = nnfast.tensor([1000.0, -1000.0, 50.0], dtype=nnfast.float32, requires_grad=True)
    y = nnfast.tensor([0.0, 1.0, 1.0], dtype=nnfast.float32)
    out = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert_close(out, [1000.0, 1000.0, 0.0], rtol=1e-6, atol=1e-6)
    out.sum().backward()
    assert_close(x.grad, [1.0, -1.0, 0.0], atol=1e-6)


def test_kl_div_zero_target_contributes_zero():
    x = nnfast.tensor([[-1.0, -2.0]], dtype=nnfast.float64)
    y = nnfast.tensor([[0.0, 1.0]], dtype=nnfast.float64)
    assert_close(F.kl_div(x, y, reduction="sum"), 2.0, rtol=1e-12)


def test_perceptron_loss_values():
    x = nnfast.tensor([2.0, -1.0, 0.5, -3.0], dtype=nnfast.float64, requires_grad=True)
    y = nnfast.tensor([1.0, 1.0, -1.0, -1.0], dtype=nnfast.float64)
    out = nn.PerceptronLoss(reduction="sum")(x, y)
    assert_close(out, 1.0 + 0.5, rtol=1e-12)
    out.backward()
    assert_close(x.grad, [0.0, -1.0, 1.0, 0.0])


def test_legacy_size_average_reduce():
    x = nnfast.tensor([1.0, 2.0], dtype=nnfast.float64)
    y = nnfast.tensor([0.0, 0.0], dtype=nnfast.float64)
    assert F.mse_loss(x, y, size_average=False).item() == 5.0
    assert F.mse_loss(x, y, reduce=False).shape == (2,)


@pytest.mark.parametrize("cls,args", [
    (nn.CrossEntropyLoss, ()), (nn.NLLLoss, ()), (nn.MSELoss, ()), (nn.L1Loss, ()), (nn.HuberLoss, ()),
    (nn.SmoothL1Loss, ()), (nn.BCELoss, ()), (nn.BCEWithLogitsLoss, ()), (nn.KLDivLoss, ()), (nn.RMSELoss, ()),
    (nn.PerceptronLoss, ()),
])
def test_modules_match_functional(cls, args):
    rng = np.random.default_rng(21)
    if cls in (nn.CrossEntropyLoss, nn.NLLLoss):
        x = rng.standard_normal((5, 4))
        t = nnfast.tensor(rng.integers(0, 4, 5))
    else:
        x = rng.uniform(0.1, 0.9, (5, 4))
        t = nnfast.from_numpy(rng.uniform(0.1, 0.9, (5, 4)))
    fn = {nn.CrossEntropyLoss: F.cross_entropy, nn.NLLLoss: F.nll_loss, nn.MSELoss: F.mse_loss,
          nn.L1Loss: F.l1_loss, nn.HuberLoss: F.huber_loss, nn.SmoothL1Loss: F.smooth_l1_loss,
          nn.BCELoss: F.binary_cross_entropy, nn.BCEWithLogitsLoss: F.binary_cross_entropy_with_logits,
          nn.KLDivLoss: F.kl_div, nn.RMSELoss: F.rmse_loss, nn.PerceptronLoss: F.perceptron_loss}[cls]
    xt = nnfast.from_numpy(x)
    assert_close(cls(*args)(xt, t), fn(xt, t).numpy(), rtol=1e-14)
    if cls is not nn.RMSELoss:
        assert cls(reduction="none")(xt, t).shape == fn(xt, t, reduction="none").shape


# ---------------------------------------------------------------------------------------- bad input
def _f(shape, dtype=np.float32):
    return nnfast.from_numpy(np.random.default_rng(0).uniform(0.1, 0.9, shape).astype(dtype))


BAD = [
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4), np.float16), nnfast.tensor([0, 1, 2])), TypeError),
    ("cross_entropy", lambda: F.cross_entropy(nnfast.tensor([[1, 2], [3, 4]]), nnfast.tensor([0, 1])), TypeError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1])), ValueError),
    pytest.param("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 4, 1])), ValueError,
                 marks=cxx_throw),
    pytest.param("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, -1, 1])), ValueError,
                 marks=cxx_throw),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), weight=_f((3,))), ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), weight=_f((4,), np.float64)),
     TypeError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), _f((3, 4), np.float64)), TypeError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), _f((3,))), ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), reduction="avg"), ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 4)), nnfast.tensor([0, 1, 2]), label_smoothing=1.5),
     ValueError),
    ("cross_entropy", lambda: F.cross_entropy(_f((3, 0)), nnfast.tensor([0, 1, 2])), ValueError),
    pytest.param("nll_loss", lambda: F.nll_loss(_f((3, 4)), nnfast.tensor([0, 9, 1])), ValueError,
                 marks=cxx_throw),
    ("nll_loss", lambda: F.nll_loss(_f((3, 4), np.float16), nnfast.tensor([0, 1, 1])), TypeError),
    ("nll_loss", lambda: F.nll_loss(_f((3, 4)), nnfast.tensor([[0, 1, 1]])), ValueError),
    ("mse_loss", lambda: F.mse_loss(_f((3, 4)), _f((3, 4), np.float64)), TypeError),
    ("mse_loss", lambda: F.mse_loss(_f((3, 4)), _f((4, 3))), ValueError),
    ("mse_loss", lambda: F.mse_loss(_f((3, 4), np.float16), _f((3, 4), np.float16)), TypeError),
    ("l1_loss", lambda: F.l1_loss(nnfast.tensor([1, 2]), nnfast.tensor([1, 2])), TypeError),
    ("huber_loss", lambda: F.huber_loss(_f((3,)), _f((3,)), delta=0.0), ValueError),
    ("smooth_l1_loss", lambda: F.smooth_l1_loss(_f((3,)), _f((3,)), beta=-1.0), ValueError),
    ("binary_cross_entropy", lambda: F.binary_cross_entropy(_f((3, 4)), _f((3, 4)), weight=_f((5,))), ValueError),
    ("binary_cross_entropy_with_logits",
     lambda: F.binary_cross_entropy_with_logits(_f((3, 4)), _f((3, 4)), pos_weight=_f((4,), np.float64)), TypeError),
    ("kl_div", lambda: F.kl_div(_f((3, 4)), _f((3, 4)), reduction="batchsum"), ValueError),
    ("rmse_loss", lambda: F.rmse_loss(_f((3, 4)), _f((3, 4)), reduction="sum"), ValueError),
    ("perceptron_loss", lambda: F.perceptron_loss(_f((3,)), _f((4,))), ValueError),
    ("linear_cross_entropy", lambda: F.linear_cross_entropy(_f((3, 4)), _f((5, 3)), None, nnfast.tensor([0, 1, 2])),
     ValueError),
    pytest.param("linear_cross_entropy",
                 lambda: F.linear_cross_entropy(_f((3, 4)), _f((5, 4)), None, nnfast.tensor([0, 5, 2])), ValueError,
                 marks=cxx_throw),
    ("linear_cross_entropy",
     lambda: F.linear_cross_entropy(_f((3, 4)), _f((5, 4), np.float64), None, nnfast.tensor([0, 1, 2])), TypeError),
]


def _bad_id(i, b):
    return f"{(b.values if hasattr(b, 'values') else b)[0]}-{i}"


@pytest.mark.parametrize("op,thunk,exc", BAD, ids=[_bad_id(i, b) for i, b in enumerate(BAD)])
def test_bad_input(op, thunk, exc):
    with pytest.raises(exc) as info:
        thunk()
    assert str(info.value).startswith(f"[{op}]"), str(info.value)


@cxx_throw
@pytest.mark.parametrize("args", [
    lambda C: (np.empty(3, np.float32), None, np.zeros((2, 3, 1), np.float16), np.zeros((2, 1), np.int64), None,
               -100, 0.0, 1),
    lambda C: (np.empty(1, np.float32), None, np.zeros((2, 3, 1), np.float32), np.zeros((2, 1), np.int32), None,
               -100, 0.0, 1),
    lambda C: (np.empty(1, np.float32), None, np.zeros((2, 3, 1), np.float32), np.full((2, 1), 3, np.int64), None,
               -100, 0.0, 1),
    lambda C: (np.empty(1, np.float64), None, np.zeros((2, 3, 1), np.float32), np.zeros((2, 1), np.int64), None,
               -100, 0.0, 1),
])
def test_kernel_boundary_checks(args):
    from nnfast._native import _C

    with pytest.raises((TypeError, ValueError)) as info:
        _C.cross_entropy(*args(3))
    assert str(info.value).startswith("[cross_entropy] expected")


# ---------------------------------------------------------------------------------------- large / multi-block
_POINTWISE_REFS = {
    "mse_loss": (F.mse_loss, lambda x, y: (x - y) ** 2),
    "l1_loss": (F.l1_loss, lambda x, y: np.abs(x - y)),
    "huber_loss": (F.huber_loss, lambda x, y: _huber(x - y, 1.0)),
    "smooth_l1_loss": (F.smooth_l1_loss, lambda x, y: _smooth_l1(x - y, 1.0)),
    "binary_cross_entropy": (F.binary_cross_entropy, _bce),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, _bce_logits),
    "kl_div": (F.kl_div, lambda x, y: _kl(x, y, False)),
    "perceptron_loss": (F.perceptron_loss, lambda x, y: np.maximum(0, -y * x)),
}


@pytest.mark.parametrize("name", list(_POINTWISE_REFS))
def test_pointwise_many_blocks_and_wide_ranges(name):
    """Crosses the kernel's 512-element chunks and 8192-element blocks, with inputs over wide
    ranges (checks the vectorized exp/log/log1p against NumPy's libm)."""
    rng = np.random.default_rng(31)
    shape = (3, 8192 + 517)
    if name == "binary_cross_entropy":
        x = np.concatenate([rng.uniform(0, 1, shape[0] * shape[1] - 6), [0.0, 1.0, 1e-300, 1 - 1e-16, 1e-40, 0.5]])
        y = rng.uniform(0, 1, x.size)
    elif name == "kl_div":
        x = rng.standard_normal(shape[0] * shape[1]) * 10
        y = np.exp(rng.uniform(-700, 5, x.size))
        y[:5] = [0.0, 1e-310, 1.0, 1e-20, 3.0]
    else:
        x = rng.standard_normal(shape[0] * shape[1]) * np.exp(rng.uniform(-30, 6, shape[0] * shape[1]))
        y = rng.standard_normal(x.size) if name != "binary_cross_entropy_with_logits" else rng.uniform(0, 1, x.size)
        if name == "perceptron_loss":
            y = np.sign(y)
    x, y = x.reshape(shape), y.reshape(shape)
    fn, ref = _POINTWISE_REFS[name]
    with np.errstate(all="ignore"):
        expect = ref(x, y)
    out = fn(nnfast.from_numpy(x), nnfast.from_numpy(y), reduction="none").numpy()
    np.testing.assert_allclose(out, expect, rtol=1e-13, atol=1e-300)
    out32 = fn(nnfast.from_numpy(x.astype(np.float32)), nnfast.from_numpy(y.astype(np.float32)), reduction="none")
    with np.errstate(all="ignore"):
        expect32 = ref(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64))
    ok = np.isfinite(expect32)
    # float32 rounding of the inputs' own size bounds the error where terms cancel
    scale = (np.abs(x) + np.abs(y) + 1.0)[ok]
    err = np.abs(out32.numpy()[ok] - expect32[ok])
    assert np.all(err <= 2e-5 * np.abs(expect32[ok]) + 2e-7 * scale), err.max()
    # reduced sums are identical for any thread count
    old = nnfast.get_num_threads()
    try:
        sums = []
        for n in (1, 2):
            nnfast.set_num_threads(n)
            sums.append(fn(nnfast.from_numpy(x), nnfast.from_numpy(y), reduction="sum").item())
    finally:
        nnfast.set_num_threads(old)
    assert sums[0] == sums[1]
    assert_close(sums[0], expect.sum(), rtol=1e-11)


def test_bce_with_logits_gradient_wide_range():
    x = np.concatenate([np.linspace(-120, 120, 4001), [-1e-30, 0.0, 1e-30]])
    y = np.random.default_rng(2).uniform(0, 1, x.size)
    pw = 1.7
    xt = nnfast.from_numpy(x.copy()).requires_grad_()
    F.binary_cross_entropy_with_logits(xt, nnfast.from_numpy(y), reduction="sum",
                                       pos_weight=nnfast.tensor([pw], dtype=nnfast.float64)).backward()
    sig_neg = 1 / (1 + np.exp(x))
    expect = (1 - y) - (1 + (pw - 1) * y) * sig_neg
    np.testing.assert_allclose(xt.grad.numpy(), expect, rtol=1e-13, atol=1e-300)
