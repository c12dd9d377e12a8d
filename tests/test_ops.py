"""Generated from the op registry (tests/opinfo.py): for every registered op x every device
present, forward against the float64 reference (float32 and float64, sizes 1 / 7 / 1023 among
the samples), float64 gradcheck on the real kernels, non-contiguous == contiguous (forward and
backward), float32 vs float64, pointwise special values, one-input-at-a-time gradients and the
op's error inputs. Nothing here is per-op: add an op by adding an OpInfo."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast.autograd import gradcheck

from nnfast._dispatch import to_host as _h
from opinfo import F32, F64, REGISTRY, SPECIAL, to_device, too_big_for_device
from helpers import noncontig


def _cases(purpose, pred=lambda op: True):
    out = []
    for op in REGISTRY:
        if not pred(op):
            continue
        for s in op.samples(purpose):
            out.append(pytest.param(op, s, id=f"{op.name}-{s.id}"))
    return out


def _skip_device(op, device, sample=None):
    """Skip (never fail) an op whose kernels are not on ``device`` in this build (asks nnfast._dispatch,
    through opinfo), and samples too large for the emulated cuda device."""
    if device not in op.devices:
        pytest.skip(f"{op.name}: no {device} kernel registered")
    if sample is not None and too_big_for_device(sample, device):
        pytest.skip(f"{op.name}: sample {sample.id} is too large for the emulated cuda device")


def _nc(a):
    if a.ndim == 0:
        return a
    if a.dtype.kind == "f":
        return noncontig(a)
    return np.repeat(a, 2, axis=-1)[..., ::2]  # integers: a strided view too


def _tensors(sample, dtype, device, grad=False, nc=False, names=None):
    ts = {}
    for k, a in sample.arrays.items():
        v = a.astype(dtype) if a.dtype.kind == "f" else a.copy()
        t = to_device(nnfast.from_numpy(v), device)
        if nc and k not in sample.contiguous:  # the strided view is made on the device
            t = nnfast.Tensor(_nc(t._data))
        if grad and a.dtype.kind == "f" and k in (sample.grads if names is None else names):
            t.requires_grad_(True)
        ts[k] = t
    return ts


def _call(op, sample, ts):
    return (sample.call or op.call)(**ts)


def _ref(op, sample, arrays):
    r = sample.ref or op.ref
    with np.errstate(all="ignore"):
        return None if r is None else np.asarray(r(**arrays), np.float64)


def _rounded(sample, dtype):
    return {k: (a.astype(dtype).astype(np.float64) if a.dtype.kind == "f" else a) for k, a in sample.arrays.items()}


def _backward(out, ts, nc=False, seed=2):
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(_nc(g) if nc and g.ndim else g)
    return {k: np.asarray(_h(t.grad._data), np.float64) for k, t in ts.items() if t.requires_grad and t.grad is not None}


# ------------------------------------------------------------------------------------ forward
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("op,sample", _cases("forward"))
def test_forward_matches_float64_reference(op, sample, dtype, device):
    _skip_device(op, device, sample)
    if dtype not in op.dtypes:
        pytest.skip(f"{op.name}: {np.dtype(dtype).name} not supported")
    out = _call(op, sample, _tensors(sample, dtype, device))
    assert out.dtype == dtype
    want = _ref(op, sample, _rounded(sample, dtype))
    if want is None:  # no closed form (dropout): finite, right shape; the other tests compare runs
        assert out.shape == sample.arrays["input"].shape
        return
    assert out.shape == want.shape, (out.shape, want.shape)
    rtol, atol = op.fwd_tol[dtype]
    if dtype == F32 and op.f32_atol is not None:
        atol = op.f32_atol
    np.testing.assert_allclose(np.asarray(_h(out._data), np.float64), want, rtol=rtol, atol=atol, err_msg=op.name)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", [o for o in REGISTRY if o.special_values], ids=lambda o: o.name)
def test_special_values(op, dtype, device):
    """0, -0, +-inf, NaN, huge, subnormal: NaN exactly where the reference has NaN, else close."""
    _skip_device(op, device)
    x = SPECIAL.astype(dtype)
    with np.errstate(all="ignore"):
        expected = op.ref(x.astype(np.float64))
    y = _h(op.call(to_device(nnfast.from_numpy(x), device))._data).astype(np.float64)
    assert np.array_equal(np.isnan(y), np.isnan(expected)), (op.name, x, y, expected)
    ok = ~np.isnan(expected)
    rtol, atol = op.fwd_tol[dtype]
    np.testing.assert_allclose(y[ok], expected[ok], rtol=max(rtol, 2e-6), atol=1e-30 if dtype == F32 else atol,
                               err_msg=op.name)


# ------------------------------------------------------------------------------------ backward
@pytest.mark.parametrize("op,sample", _cases("gradcheck", lambda o: o.gradcheck))
def test_gradcheck_float64(op, sample, device):
    _skip_device(op, device, sample)
    ts = _tensors(sample, F64, device, grad=True)
    names = list(ts)
    assert gradcheck(lambda *xs: _call(op, sample, dict(zip(names, xs))), tuple(ts[k] for k in names),
                     **op.gradcheck_kw)


@pytest.mark.parametrize("op,sample", _cases("noncontig", lambda o: o.partial_grad))
def test_only_some_inputs_need_grad(op, sample, device):
    _skip_device(op, device, sample)
    full_ts = _tensors(sample, F64, device, grad=True)
    full = _backward(_call(op, sample, full_ts), full_ts)
    for name in sample.grads:  # each input alone
        ts = _tensors(sample, F64, device, grad=True, names=(name,))
        got = _backward(_call(op, sample, ts), ts)
        np.testing.assert_allclose(got[name], full[name], rtol=1e-12, atol=1e-12, err_msg=name)


# ------------------------------------------------------------------------------------ layouts and dtypes
@pytest.mark.parametrize("op,sample", _cases("noncontig"))
def test_noncontiguous_equals_contiguous(op, sample, device):
    _skip_device(op, device, sample)
    for dtype in op.nc_dtypes:
        a_ts = _tensors(sample, dtype, device, grad=op.gradcheck)
        b_ts = _tensors(sample, dtype, device, grad=op.gradcheck, nc=True)
        ya, yb = _call(op, sample, a_ts), _call(op, sample, b_ts)
        ga = _backward(ya, a_ts) if op.gradcheck else {}
        gb = _backward(yb, b_ts, nc=True) if op.gradcheck else {}
        if op.nc_tol is None:  # bit for bit
            assert np.array_equal(_h(ya._data), _h(yb._data)), op.name
            for k in ga:
                assert np.array_equal(ga[k], gb[k]), k
        else:
            (fr, fa), (gr, gaa) = op.nc_tol if isinstance(op.nc_tol[0], tuple) else (op.nc_tol, op.nc_tol)
            np.testing.assert_allclose(_h(yb._data), _h(ya._data), rtol=fr, atol=fa)
            for k in ga:
                np.testing.assert_allclose(gb[k], ga[k], rtol=gr, atol=gaa, err_msg=k)


@pytest.mark.parametrize("op,sample", _cases("f32"))
def test_float32_agrees_with_float64(op, sample, device):
    _skip_device(op, device, sample)
    if F32 not in op.dtypes:
        pytest.skip("float64 only")
    rounded = {k: (a.astype(F32) if a.dtype.kind == "f" else a) for k, a in sample.arrays.items()}
    s = type(sample)(sample.id, rounded, sample.grads, sample.call, sample.ref, sample.contiguous)
    t32 = _tensors(s, F32, device, grad=op.gradcheck)
    t64 = _tensors(s, F64, device, grad=op.gradcheck)
    y32, y64 = _call(op, s, t32), _call(op, s, t64)
    assert y32.dtype == F32
    np.testing.assert_allclose(_h(y32._data), _h(y64._data), rtol=op.f32_fwd[0], atol=op.f32_fwd[1], err_msg=op.name)
    if not op.gradcheck:
        return
    g32, g64 = _backward(y32, t32), _backward(y64, t64)
    rtol, atol, scaled = op.f32_grad
    for k in g64:
        assert t32[k].grad.dtype == F32, k
        sc = max(1.0, float(np.abs(g64[k]).max())) if scaled and g64[k].size else 1.0
        np.testing.assert_allclose(g32[k], g64[k], rtol=rtol, atol=atol * sc, err_msg=k)


# ------------------------------------------------------------------------------------ error inputs
@pytest.mark.parametrize("op,err", [pytest.param(op, e, id=f"{op.name}-{e.id}") for op in REGISTRY
                                    for e in op.error_inputs])
def test_error_inputs(op, err, device):
    _skip_device(op, device)
    with pytest.raises(err.exc, match=err.match):
        err.thunk()


def test_registry_covers_the_functional_api():
    """Every activation / norm / loss / softmax / dropout / linear in nnfast.nn.functional is registered."""
    import nnfast.nn.functional as F

    names = {op.name for op in REGISTRY}
    tags = names | {"gelu", "batch_norm", "weight_norm"}
    for fn in ("relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "silu", "softplus", "hardtanh",
               "swish", "step", "sign", "softmax", "log_softmax", "glu", "swiglu", "prelu", "linear", "dropout",
               "layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm", "cross_entropy", "nll_loss",
               "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
               "binary_cross_entropy_with_logits", "kl_div", "perceptron_loss", "rmse_loss", "linear_cross_entropy",
               # the layer families
               "conv1d", "conv2d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
               "adaptive_avg_pool2d", "adaptive_max_pool2d", "interpolate", "pixel_shuffle", "embedding",
               "scaled_dot_product_attention", "multi_head_attention_forward"):
        assert hasattr(F, fn), fn
        assert fn in tags, f"{fn} has no OpInfo"
    for op in REGISTRY:
        for p in ("forward", "gradcheck", "noncontig", "f32"):
            assert op.samples(p) or (p == "gradcheck" and not op.gradcheck), (op.name, p)
