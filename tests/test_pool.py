"""Pooling / resampling beyond the op registry (tests/opinfo_pool.py): PyTorch as the oracle for
outputs, gradients and indices over a grid of arguments, ties and NaN, determinism over thread
counts, cuda == cpu bit for bit, the modules (reprs, empty state_dict both ways), channel-wise
dropout and the NCHW BatchNorm2d path."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast import _dispatch

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _both(fn_n, fn_t, x, device="cpu", seed=1):
    """Outputs (and indices) and input gradients of nnfast and PyTorch for one call."""
    xt = torch.tensor(x, requires_grad=True)
    xn = nnfast.from_numpy(x.copy()).to(device) if device != "cpu" else nnfast.from_numpy(x.copy())
    xn.requires_grad_(True)
    yt, yn = fn_t(xt), fn_n(xn)
    it = jn = None
    if isinstance(yt, tuple):
        (yt, it), (yn, jn) = yt, yn
    g = np.random.default_rng(seed).standard_normal(tuple(yt.shape)).astype(x.dtype)
    yt.backward(torch.tensor(g))
    gn = nnfast.from_numpy(g)
    yn.backward(gn.to(device) if device != "cpu" else gn)
    out = (yn.detach().to("cpu").numpy(), yt.detach().numpy(), xn.grad.to("cpu").numpy(), xt.grad.numpy())
    if it is not None:
        out += (jn.to("cpu").numpy(), it.numpy())
    return out


def _check(fn_n, fn_t, x, device="cpu", tol=None):
    r = _both(fn_n, fn_t, x, device)
    rtol, atol = tol or ((1e-5, 1e-6) if x.dtype == np.float32 else (1e-12, 1e-12))
    np.testing.assert_allclose(r[0], r[1], rtol=rtol, atol=atol)
    np.testing.assert_allclose(r[2], r[3], rtol=rtol, atol=atol)
    if len(r) > 4:
        assert r[4].dtype == np.int64
        np.testing.assert_array_equal(r[4], r[5])


DT = [np.float32, np.float64]
MAX2D = [dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
         dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1)), dict(kernel_size=3, stride=1),
         dict(kernel_size=(4, 1), stride=3, ceil_mode=True)]


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("kw", MAX2D, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
@pytest.mark.parametrize("shape", [(2, 3, 9, 11), (5, 7, 7)], ids=["batched", "unbatched"])
def test_max_pool2d_matches_torch(shape, kw, dtype, device):
    x = _x(shape, dtype=dtype)
    _check(lambda t: F.max_pool2d(t, return_indices=True, **kw), lambda t: TF.max_pool2d(t, return_indices=True, **kw),
           x, device)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=3, dilation=2, padding=1)])
def test_max_pool1d_matches_torch(kw, device):
    _check(lambda t: F.max_pool1d(t, return_indices=True, **kw), lambda t: TF.max_pool1d(t, return_indices=True, **kw),
           _x((3, 4, 17)), device)


AVG2D = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
         dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
         dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), divisor_override=4),
         dict(kernel_size=5, stride=3, padding=2, ceil_mode=True, count_include_pad=False)]


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("kw", AVG2D, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
def test_avg_pool2d_matches_torch(kw, dtype, device):
    _check(lambda t: F.avg_pool2d(t, **kw), lambda t: TF.avg_pool2d(t, **kw), _x((2, 3, 9, 10), dtype=dtype), device)


def test_avg_pool1d_matches_torch(device):
    for kw in (dict(kernel_size=3), dict(kernel_size=4, stride=2, padding=2, ceil_mode=True, count_include_pad=False)):
        _check(lambda t: F.avg_pool1d(t, **kw), lambda t: TF.avg_pool1d(t, **kw), _x((2, 3, 15)), device)


@pytest.mark.parametrize("out", [1, 3, (2, 5), (None, 4), (9, 13), (11, 6), (4, 1), (9, 1)])
def test_adaptive_pool2d_matches_torch(out, device):
    x = _x((2, 3, 9, 10))
    _check(lambda t: F.adaptive_avg_pool2d(t, out), lambda t: TF.adaptive_avg_pool2d(t, out), x, device)
    _check(lambda t: F.adaptive_max_pool2d(t, out, True), lambda t: TF.adaptive_max_pool2d(t, out, True), x, device)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("hw,out", [((1, 1), 1), ((7, 37), 1), ((33, 31), (5, 1)), ((3, 1023), (2, 1))])
def test_adaptive_avg_pool2d_whole_rows_float64_reference(hw, out, dtype):
    """Windows spanning whole rows (global pooling included) take the contiguous-run sum:
    against a float64 mean, on odd sizes and a non-contiguous input."""
    H, W = hw
    x = _x((3, 4, W, H), dtype=dtype).transpose(0, 1, 3, 2)  # non-contiguous (H, W) planes
    y = F.adaptive_avg_pool2d(nnfast.from_numpy(x), out).numpy()
    OH = out if isinstance(out, int) else out[0]
    ref = np.stack([x[:, :, (i * H) // OH:-(-(i + 1) * H // OH)].astype(np.float64).mean((2, 3))
                    for i in range(OH)], 2)[..., None]
    np.testing.assert_allclose(y, ref, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-7)


def test_adaptive_pool1d_matches_torch(device):
    x = _x((2, 3, 13))
    for out in (1, 4, 13, 20):
        _check(lambda t: F.adaptive_avg_pool1d(t, out), lambda t: TF.adaptive_avg_pool1d(t, out), x, device)
        _check(lambda t: F.adaptive_max_pool1d(t, out, True), lambda t: TF.adaptive_max_pool1d(t, out, True), x,
               device)


INTERP = [dict(scale_factor=2), dict(scale_factor=3), dict(size=(5, 13)), dict(scale_factor=1.7),
          dict(scale_factor=0.45), dict(scale_factor=(0.6, 2.5), mode="nearest-exact"), dict(size=(10, 3)),
          dict(scale_factor=1.7, recompute_scale_factor=True),
          dict(scale_factor=2, mode="bilinear"), dict(scale_factor=2, mode="bilinear", align_corners=True),
          dict(size=(4, 20), mode="bilinear"), dict(size=(1, 1), mode="bilinear", align_corners=True),
          dict(scale_factor=1.3, mode="bilinear", recompute_scale_factor=True),
          dict(scale_factor=0.7, mode="bilinear"), dict(size=(6, 17), mode="nearest-exact")]


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("kw", INTERP, ids=lambda kw: "-".join(f"{k}{v}" for k, v in kw.items()))
def test_interpolate_matches_torch(kw, dtype, device):
    tol = (2e-5, 2e-5) if dtype == np.float32 else None
    _check(lambda t: F.interpolate(t, **kw), lambda t: TF.interpolate(t, **kw), _x((2, 3, 7, 9), dtype=dtype), device,
           tol)


@pytest.mark.parametrize("kw", [dict(scale_factor=2.5, mode="linear"), dict(size=4, mode="linear", align_corners=True),
                                dict(scale_factor=1.5), dict(size=11, mode="nearest-exact")])
def test_interpolate_1d_matches_torch(kw, device):
    _check(lambda t: F.interpolate(t, **kw), lambda t: TF.interpolate(t, **kw), _x((2, 3, 11)), device)


def test_nearest_index_uses_float_arithmetic_like_torch():
    """in=10 -> out=6: float32 5/3 * 3 floors to 4, double to 5; PyTorch computes in float."""
    x = np.arange(10, dtype=np.float64).reshape(1, 1, 10)
    got = F.interpolate(nnfast.from_numpy(x), size=6).numpy()
    np.testing.assert_array_equal(got, TF.interpolate(torch.tensor(x), size=6).numpy())


@pytest.mark.parametrize("r", [1, 2, 3])
def test_pixel_shuffle_matches_torch(r, device):
    _check(lambda t: F.pixel_shuffle(t, r), lambda t: TF.pixel_shuffle(t, r), _x((2, 2 * r * r, 5, 3)), device)
    _check(lambda t: F.pixel_unshuffle(t, r), lambda t: TF.pixel_unshuffle(t, r), _x((2, 3, 4 * r, 2 * r)), device)
    _check(lambda t: F.pixel_shuffle(t, r), lambda t: TF.pixel_shuffle(t, r), _x((2, 2, r * r, 3, 2)), device)


# ------------------------------------------------------------------------------------ ties, NaN, determinism
def test_max_pool_ties_first_max_wins_like_torch(device):
    x = np.zeros((1, 2, 6, 6))
    x[0, 1, ::2, ::2] = 1.0
    _check(lambda t: F.max_pool2d(t, 3, 1, 1, return_indices=True),
           lambda t: TF.max_pool2d(t, 3, 1, 1, return_indices=True), x, device)
    _check(lambda t: F.adaptive_max_pool2d(t, (4, 5), True), lambda t: TF.adaptive_max_pool2d(t, (4, 5), True), x,
           device)


def test_max_pool_overlapping_windows_sum_gradients(device):
    """Stride 1 windows pick the same element several times: its gradient is the sum."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    t = nnfast.from_numpy(x).to(device) if device != "cpu" else nnfast.from_numpy(x)
    t.requires_grad_(True)
    F.max_pool2d(t, 2, 1).sum().backward()
    g = t.grad.to("cpu").numpy()
    assert g[0, 0, 1, 1] == 4.0 and g.sum() == 4.0


@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool_nan_propagates_like_torch(padding, device):
    """NaN wins its window; with two NaNs PyTorch's rule (v > best || isnan(v)) keeps the last one."""
    x = _x((1, 2, 6, 6))
    x[0, 0, 1, 2] = np.nan
    x[0, 1, 2, 2] = x[0, 1, 2, 3] = x[0, 1, 0, 0] = np.nan
    for call_n, call_t in ((lambda t: F.max_pool2d(t, 2, padding=padding, return_indices=True),
                            lambda t: TF.max_pool2d(t, 2, padding=padding, return_indices=True)),
                           (lambda t: F.max_pool2d(t, 3, 1, padding, return_indices=True),
                            lambda t: TF.max_pool2d(t, 3, 1, padding, return_indices=True)),
                           (lambda t: F.adaptive_max_pool2d(t, 4, True), lambda t: TF.adaptive_max_pool2d(t, 4, True))):
        t = nnfast.from_numpy(x)
        yn, jn = call_n(t.to(device) if device != "cpu" else t)
        yt, jt = call_t(torch.tensor(x))
        np.testing.assert_array_equal(yn.to("cpu").numpy(), yt.numpy())
        np.testing.assert_array_equal(jn.to("cpu").numpy(), jt.numpy())


@pytest.mark.parametrize("case", ["max", "avg", "adaptive", "global", "bilinear", "nearest"])
def test_results_do_not_depend_on_thread_count(case):
    fn = {"max": lambda t: F.max_pool2d(t, 3, 2, 1), "avg": lambda t: F.avg_pool2d(t, 3, 1, 1),
          "adaptive": lambda t: F.adaptive_avg_pool2d(t, (5, 3)), "global": lambda t: F.adaptive_avg_pool2d(t, 1),
          "bilinear": lambda t: F.interpolate(t, scale_factor=1.5, mode="bilinear"),
          "nearest": lambda t: F.interpolate(t, scale_factor=0.7)}[case]
    x = _x((4, 16, 24, 24), dtype=np.float32)
    n0 = nnfast.get_num_threads()
    runs = []
    try:
        for nt in (1, 2, 3):
            nnfast.set_num_threads(nt)
            t = nnfast.from_numpy(x.copy()).requires_grad_(True)
            y = fn(t)
            y.backward(nnfast.from_numpy(np.ones(y.shape, np.float32)))
            runs.append((y.detach().numpy(), t.grad.numpy()))
    finally:
        nnfast.set_num_threads(n0)
    for y, g in runs[1:]:
        assert np.array_equal(y, runs[0][0]) and np.array_equal(g, runs[0][1])


@pytest.mark.skipif("cuda" not in _dispatch.DEVICES or not nnfast.cuda.is_available(), reason="no cuda device")
def test_cuda_equals_cpu_bit_for_bit():
    x = _x((2, 3, 9, 11), dtype=np.float32)
    for fn in (lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True), lambda t: F.avg_pool2d(t, 3, 2, 1),
               lambda t: F.adaptive_avg_pool2d(t, (4, 5)), lambda t: F.interpolate(t, scale_factor=2, mode="bilinear"),
               lambda t: F.interpolate(t, scale_factor=1.7), lambda t: F.pixel_shuffle(t[:, :1].reshape(2, 1, 9, 11)
                                                                                         .expand(2, 4, 9, 11), 2)):
        res = []
        for dev in ("cpu", "cuda"):
            t = nnfast.from_numpy(x.copy())
            t = t.to(dev) if dev != "cpu" else t
            t.requires_grad_(True)
            y = fn(t)
            y.sum().backward()
            res.append((y.detach().to("cpu").numpy(), t.grad.to("cpu").numpy()))
        assert np.array_equal(res[0][0], res[1][0]) and np.array_equal(res[0][1], res[1][1])
    # whole-row windows (global pooling): the CPU's vector blocks and the CUDA threads' loops
    # (pool_math::span_sum_blocked) add in the same order; planes of 667 and 23 x 17 (2 blocks + tail)
    for shape, out in (((2, 3, 23, 29), 1), ((2, 3, 40, 17), (3, 1))):
        x = _x(shape, dtype=np.float32)
        ys = [F.adaptive_avg_pool2d(nnfast.from_numpy(x).to(dev) if dev != "cpu" else nnfast.from_numpy(x), out)
              .to("cpu").numpy() for dev in ("cpu", "cuda")]
        assert np.array_equal(ys[0], ys[1])


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("thunk, match", [
    (lambda: F.max_pool2d(nnfast.ones(1, 1, 4, 4), 2, padding=2), r"^\[max_pool2d\] expected padding at most half"),
    (lambda: F.max_pool2d(nnfast.ones(1, 1, 2, 2), 3), r"^\[max_pool2d\] expected an output size >= 1"),
    (lambda: F.max_pool2d(nnfast.ones(4, 4), 2), r"^\[max_pool2d\] expected a 3-D"),
    (lambda: F.avg_pool1d(nnfast.ones(1, 1, 2), 3), r"^\[avg_pool1d\] expected an output size >= 1"),
    (lambda: F.interpolate(nnfast.ones(1, 1, 4, 4), scale_factor=2, mode="bicubic"), r"^\[interpolate\] expected mode"),
    (lambda: F.interpolate(nnfast.ones(1, 1, 4), scale_factor=2, mode="bilinear"), r"^\[interpolate\] expected a 4-D"),
    (lambda: F.adaptive_avg_pool2d(nnfast.ones(1, 1, 4, 4), (0, 2)), r"^\[adaptive_avg_pool2d\] expected output_size"),
    (lambda: F.dropout2d(nnfast.ones(4, 4)), r"^\[dropout2d\] expected a 3-D"),
    (lambda: F.dropout1d(nnfast.ones(1, 4, 4, 4)), r"^\[dropout1d\] expected a 2-D"),
])
def test_bad_arguments_raise_clear_errors(thunk, match):
    with pytest.raises(ValueError, match=match):
        thunk()


def test_bindings_reject_bad_arrays():
    x = np.ones((2, 4, 4))
    with pytest.raises(ValueError, match=r"^\[max_pool2d\] expected"):
        nnfast._C.max_pool2d_forward(np.empty((2, 2, 2)), np.empty((2, 2, 2), np.int64), x, (0, 2), (2, 2), (0, 0),
                                     (1, 1))
    with pytest.raises(TypeError, match=r"^\[max_pool2d\] expected indices to be int64"):
        nnfast._C.max_pool2d_forward(np.empty((2, 2, 2)), np.empty((2, 2, 2), np.int32), x, (2, 2), (2, 2), (0, 0),
                                     (1, 1))
    with pytest.raises(ValueError, match=r"^\[interpolate\] expected mode"):
        nnfast._C.interpolate_forward(np.empty((2, 8, 8)), x, "cubic", False, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"^\[adaptive_avg_pool2d\] expected out not to share memory"):
        nnfast._C.adaptive_avg_pool2d_forward(x, x)


# ------------------------------------------------------------------------------------ modules
MODULES = [
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1}, (2, 3, 11)),
    ("MaxPool2d", (3, 2), {"padding": 1, "ceil_mode": True}, (2, 3, 9, 8)),
    ("AvgPool1d", (3,), {"count_include_pad": False, "padding": 1}, (2, 3, 11)),
    ("AvgPool2d", (3,), {"stride": 2, "divisor_override": 2}, (2, 3, 9, 8)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 11)),
    ("AdaptiveAvgPool2d", ((None, 3),), {}, (2, 3, 9, 8)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 11)),
    ("AdaptiveMaxPool2d", (2,), {}, (2, 3, 9, 8)),
    ("Upsample", (), {"scale_factor": 2, "mode": "bilinear"}, (2, 3, 5, 4)),
    ("Upsample", (), {"size": (3, 7)}, (2, 3, 5, 4)),
    ("Upsample", (), {"scale_factor": (2.0, 1.5), "mode": "nearest-exact"}, (2, 3, 5, 4)),
    ("Upsample", (), {"size": 9, "mode": "linear", "align_corners": True}, (2, 3, 5)),
    ("UpsamplingNearest2d", (), {"scale_factor": 3}, (2, 3, 5, 4)),
    ("UpsamplingBilinear2d", (), {"size": (7, 3)}, (2, 3, 5, 4)),
    ("PixelShuffle", (2,), {}, (2, 8, 3, 5)),
    ("PixelUnshuffle", (2,), {}, (2, 3, 4, 6)),
]


@pytest.mark.parametrize("name, args, kw, shape", MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_module_matches_torch_repr_state_and_output(name, args, kw, shape):
    mn, mt = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(mn) == repr(mt)
    assert dict(mn.state_dict()) == {} and dict(mt.state_dict()) == {}
    mn.load_state_dict(dict(mt.state_dict()))
    mt.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in mn.state_dict().items()})
    x = _x(shape)
    np.testing.assert_allclose(mn(nnfast.from_numpy(x)).numpy(), mt(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12)


def test_maxpool_module_return_indices():
    x = _x((2, 3, 8, 8))
    yn, jn = nn.MaxPool2d(2, return_indices=True)(nnfast.from_numpy(x))
    yt, jt = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(jn.numpy(), jt.numpy())
    assert not jn.requires_grad


def test_max_unpool2d_round_trip_matches_torch(device):
    x = _x((2, 3, 9, 7))
    ti = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)[1]
    mn, mt = nn.MaxUnpool2d(3, 2, 1), torch.nn.MaxUnpool2d(3, 2, 1)
    assert repr(mn) == repr(mt)
    for size in (None, (9, 7), (2, 3, 10, 8)):
        def fn_n(t, size=size):
            yn, jn = F.max_pool2d(t, 3, 2, 1, return_indices=True)
            return mn(yn, jn, size)

        def fn_t(t, size=size):
            yt, jt = TF.max_pool2d(t, 3, 2, 1, return_indices=True)
            return mt(yt, jt, size)
        _check(fn_n, fn_t, x, device)
    assert ti.dtype == torch.int64


# ------------------------------------------------------------------------------------ channel-wise dropout
@pytest.mark.filterwarnings("ignore:dropout2d. received a 3-D input")
@pytest.mark.parametrize("fn, shape, mask_dims", [(F.dropout2d, (8, 16, 3, 5), 2), (F.dropout2d, (8, 16, 7), 2),
                                                  (F.dropout1d, (8, 16, 7), 2), (F.dropout1d, (16, 7), 1)])
def test_channel_dropout_zeroes_whole_channels(fn, shape, mask_dims, device):
    nnfast.manual_seed(3)
    x = nnfast.from_numpy(np.ones(shape))
    x = x.to(device) if device != "cpu" else x
    x.requires_grad_(True)
    y = fn(x, 0.25)
    y.sum().backward()
    yv = y.detach().to("cpu").numpy()
    per = yv.reshape(shape[:mask_dims] + (-1,))
    assert np.all((per == per[..., :1]))  # one draw per channel
    assert set(np.unique(per)) <= {0.0, 1.0 / 0.75}
    np.testing.assert_array_equal(x.grad.to("cpu").numpy(), yv)  # d(x * m)/dx = m
    kept = (per[..., 0] != 0).mean()
    assert 0.4 < kept < 0.98


def test_channel_dropout_eval_identity_and_modules():
    x = nnfast.from_numpy(_x((2, 3, 4, 4)))
    m = nn.Dropout2d(0.5).eval()
    assert m(x) is x
    assert repr(nn.Dropout1d(0.3)) == repr(torch.nn.Dropout1d(0.3))
    assert repr(nn.Dropout2d()) == repr(torch.nn.Dropout2d())
    assert F.dropout2d(x, 0.0) is x
    with pytest.warns(UserWarning, match="dropout2d: received a 3-D input"):
        F.dropout2d(nnfast.from_numpy(np.ones((2, 3, 4))), 0.5)
    np.testing.assert_array_equal(F.dropout2d(x, 1.0).numpy(), np.zeros((2, 3, 4, 4)))
    nnfast.manual_seed(5)
    a = F.dropout1d(nnfast.from_numpy(np.ones((4, 8, 3))), 0.5).numpy()
    nnfast.manual_seed(5)
    b = F.dropout1d(nnfast.from_numpy(np.ones((4, 8, 3))), 0.5).numpy()
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------ BatchNorm2d on NCHW
def test_batchnorm2d_nchw_matches_torch_and_copies_nothing(monkeypatch):
    """The channel kernels read NCHW as (N, C, H*W) in place: no transpose / copy around them."""
    import nnfast.nn.functional._norm as norm

    seen = []
    real = norm.contiguous
    monkeypatch.setattr(norm, "contiguous", lambda a: seen.append(real(a) is a) or real(a))
    x = _x((4, 6, 5, 7))
    bn, bt = nn.BatchNorm2d(6).double(), torch.nn.BatchNorm2d(6).double()
    bn.load_state_dict({k: np.asarray(v.numpy()) for k, v in bt.state_dict().items()})
    _check(lambda t: bn(t), lambda t: bt(t), x, tol=(1e-10, 1e-10))
    assert seen and all(seen), "a contiguous NCHW input was copied"
    np.testing.assert_allclose(bn.running_var.numpy(), bt.running_var.numpy(), rtol=1e-12)
