"""Convolution modules and kernels beyond the registry (tests/opinfo_conv.py): PyTorch parity of
the modules (state_dict both ways, outputs, gradients, repr, errors), 'same' / 'valid', depthwise,
ConvTranspose2d output sizes, a multi-chunk float32 shape, the gradient contract and determinism."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast._native import _C

torch = pytest.importorskip("torch")

MODULE_CASES = [
    (nn.Conv2d, "Conv2d", dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=1,
                               dilation=(1, 2), groups=2), (2, 4, 9, 8)),
    (nn.Conv2d, "Conv2d", dict(in_channels=3, out_channels=5, kernel_size=4, padding="same"), (2, 3, 9, 8)),
    (nn.Conv2d, "Conv2d", dict(in_channels=3, out_channels=5, kernel_size=3, padding="valid", bias=False),
     (1, 3, 7, 7)),
    (nn.Conv2d, "Conv2d", dict(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6), (2, 6, 7, 5)),
    (nn.Conv2d, "Conv2d", dict(in_channels=3, out_channels=5, kernel_size=3, padding=2, padding_mode="reflect"),
     (2, 3, 7, 6)),
    (nn.Conv2d, "Conv2d", dict(in_channels=3, out_channels=5, kernel_size=3, padding=1, padding_mode="replicate"),
     (2, 3, 7, 6)),
    (nn.Conv2d, "Conv2d", dict(in_channels=3, out_channels=5, kernel_size=3, padding=1, padding_mode="circular"),
     (2, 3, 7, 6)),
    (nn.Conv2d, "Conv2d", dict(in_channels=3, out_channels=4, kernel_size=1), (3, 5, 5)),  # unbatched
    (nn.Conv1d, "Conv1d", dict(in_channels=3, out_channels=5, kernel_size=4, padding="same", dilation=3), (2, 3, 17)),
    (nn.Conv1d, "Conv1d", dict(in_channels=4, out_channels=2, kernel_size=3, stride=2, groups=2), (1, 4, 11)),
    (nn.Conv1d, "Conv1d", dict(in_channels=3, out_channels=5, kernel_size=4, padding=2, padding_mode="circular"),
     (3, 17)),
    (nn.ConvTranspose2d, "ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                                                 output_padding=1, groups=2), (2, 4, 5, 6)),
    (nn.ConvTranspose2d, "ConvTranspose2d", dict(in_channels=3, out_channels=2, kernel_size=(2, 3), stride=(1, 2),
                                                 dilation=2, bias=False), (1, 3, 4, 4)),
]


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _compare(m, t, shape, rtol=1e-10, atol=1e-10, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal(shape)
    xn = nnfast.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yn, yt = m(xn), t(xt)
    assert tuple(yn.shape) == tuple(yt.shape)
    np.testing.assert_allclose(_np(yn), _np(yt), rtol=rtol, atol=atol)
    g = r.standard_normal(tuple(yt.shape))
    yn.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=rtol, atol=atol)
    if m.bias is not None:
        np.testing.assert_allclose(m.bias.grad.numpy(), t.bias.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("cls,tname,kw,shape", MODULE_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(MODULE_CASES)])
def test_module_matches_torch_state_dict_both_ways(cls, tname, kw, shape):
    nnfast.manual_seed(1)
    m = cls(**kw, dtype=np.float64)
    t = getattr(torch.nn, tname)(**kw).double()
    assert repr(m) == repr(t)
    assert set(m.state_dict()) == set(t.state_dict())
    t.load_state_dict({k: torch.tensor(_np(v)) for k, v in m.state_dict().items()})  # nnfast -> torch
    _compare(m, t, shape)
    torch.manual_seed(2)
    t2 = getattr(torch.nn, tname)(**kw).double()
    m2 = cls(**kw, dtype=np.float64)
    m2.load_state_dict({k: v.detach().numpy().copy() for k, v in t2.state_dict().items()})  # torch -> nnfast
    _compare(m2, t2, shape, seed=3)


@pytest.mark.parametrize("cls,kw", [(nn.Conv2d, dict(in_channels=8, out_channels=300, kernel_size=3, groups=2)),
                                    (nn.Conv1d, dict(in_channels=6, out_channels=400, kernel_size=5)),
                                    (nn.ConvTranspose2d, dict(in_channels=300, out_channels=8, kernel_size=3))])
def test_default_init_bounds_as_torch(cls, kw):
    m = cls(**kw)
    fan_in = m.weight.shape[1] * math.prod(m.kernel_size)
    bound = 1 / math.sqrt(fan_in)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound  # U(-bound, bound)


def test_same_and_valid_match_torch():
    r = np.random.default_rng(4)
    for k, d in [(3, 1), (4, 1), (2, 3), (5, 2)]:
        x, w = r.standard_normal((2, 3, 9, 10)), r.standard_normal((4, 3, k, k))
        for pad in ("same", "valid"):
            got = F.conv2d(nnfast.tensor(x), nnfast.tensor(w), padding=pad, dilation=d).numpy()
            want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=pad, dilation=d).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
            if pad == "same":
                assert got.shape[2:] == x.shape[2:]


def test_depthwise_with_multiplier_matches_torch():
    r = np.random.default_rng(5)
    x, w, b = r.standard_normal((2, 4, 7, 9)), r.standard_normal((8, 1, 3, 3)), r.standard_normal(8)
    got = F.conv2d(nnfast.tensor(x), nnfast.tensor(w), nnfast.tensor(b), stride=2, padding=1, groups=4).numpy()
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1,
                                      groups=4).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride,padding,output_padding,dilation", [(2, 1, 1, 1), (3, 0, 2, 1), (2, 2, 0, 3),
                                                                   ((2, 3), (1, 0), (1, 2), (1, 1))])
def test_conv_transpose2d_output_sizes(stride, padding, output_padding, dilation):
    kw = dict(in_channels=3, out_channels=2, kernel_size=3, stride=stride, padding=padding,
              output_padding=output_padding, dilation=dilation)
    m, t = nn.ConvTranspose2d(**kw, dtype=np.float64), torch.nn.ConvTranspose2d(**kw).double()
    t.load_state_dict({k: torch.tensor(_np(v)) for k, v in m.state_dict().items()})
    x = np.random.default_rng(6).standard_normal((1, 3, 5, 4))
    yn, yt = m(nnfast.tensor(x)), t(torch.tensor(x))
    assert tuple(yn.shape) == tuple(yt.shape)
    np.testing.assert_allclose(yn.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_conv_transpose2d_output_size_argument():
    m = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=np.float64)
    t = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1).double()
    t.load_state_dict({k: torch.tensor(_np(v)) for k, v in m.state_dict().items()})
    x = np.random.default_rng(7).standard_normal((1, 3, 5, 5))
    for size in [(9, 9), (10, 9), (10, 10)]:
        yn, yt = m(nnfast.tensor(x), output_size=size), t(torch.tensor(x), output_size=size)
        assert tuple(yn.shape[2:]) == size
        np.testing.assert_allclose(yn.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match=r"^\[ConvTranspose2d\] expected output_size"):
        m(nnfast.tensor(x), output_size=(12, 9))


def test_larger_float32_multi_chunk_matches_torch():
    """Column space larger than one chunk (chunks split images): float32 forward and all gradients."""
    r = np.random.default_rng(8)
    x = r.standard_normal((3, 64, 48, 40)).astype(np.float32)
    w = (0.05 * r.standard_normal((32, 64, 3, 3))).astype(np.float32)
    b = r.standard_normal(32).astype(np.float32)
    xn, wn, bn = (nnfast.tensor(a, requires_grad=True) for a in (x, w, b))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yn = F.conv2d(xn, wn, bn, padding=1)
    yt = torch.nn.functional.conv2d(xt, wt, bt, padding=1)
    np.testing.assert_allclose(yn.detach().numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    g = r.standard_normal(tuple(yt.shape)).astype(np.float32)
    yn.backward(g)
    yt.backward(torch.tensor(g))
    for a, t_ in ((xn, xt), (wn, wt), (bn, bt)):
        ref = t_.grad.numpy()
        np.testing.assert_allclose(a.grad.numpy(), ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("transposed", [False, True])
def test_gradient_contract_and_thread_determinism(transposed):
    """dx overwrites (NaN-filled buffer), dweight / dbias accumulate exactly; same bits on 1 and 2 threads."""
    r = np.random.default_rng(9)
    x = r.standard_normal((2, 4, 30, 31)).astype(np.float32)
    w = r.standard_normal((4, 2, 3, 3)).astype(np.float32)
    args = ((2, 2), (1, 1), (1, 1), 2)
    if transposed:
        dy = r.standard_normal((2, 4, 59, 61)).astype(np.float32)
        bwd, nb = _C.conv_transpose2d_backward, 4
    else:
        dy = r.standard_normal((2, 4, 15, 16)).astype(np.float32)
        bwd, nb = _C.conv2d_backward, 4
    old = nnfast.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            nnfast.set_num_threads(threads)
            dx = np.full_like(x, np.nan)
            dw, db = np.zeros_like(w), np.zeros(nb, np.float32)
            bwd(dx, dw, db, dy, x, w, *args)
            once_w, once_b = dw.copy(), db.copy()
            bwd(dx, dw, db, dy, x, w, *args)
            assert np.isfinite(dx).all()
            assert np.array_equal(dw, 2 * once_w) and np.array_equal(db, 2 * once_b)
            results.append((dx, dw, db))
    finally:
        nnfast.set_num_threads(old)
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("make,match", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), r"^\[Conv2d\] expected in_channels"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), r"^\[Conv2d\] expected out_channels"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), r"^\[Conv2d\] expected groups"),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), r"^\[Conv2d\] expected stride 1"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), r"^\[Conv2d\] expected padding"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), r"^\[Conv2d\] expected padding_mode"),
    (lambda: nn.Conv1d(3, 4, (3, 3)), r"^\[Conv1d\] expected kernel_size"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), r"^\[ConvTranspose2d\] expected padding_mode"),
])
def test_module_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_binding_checks_before_the_kernel():
    x, w = np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"^\[conv2d\] expected out of shape"):
        _C.conv2d_forward(np.empty((1, 2, 4, 4)), x, w, None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"^\[conv2d\] expected a \(dilated\) kernel"):
        _C.conv2d_forward(np.empty((1, 2, 1, 1)), x, w, None, (1, 1), (0, 0), (3, 3), 1)
    with pytest.raises(ValueError, match=r"^\[conv2d\] expected stride"):
        _C.conv2d_forward(np.empty((1, 2, 3, 3)), x, w, None, (0, 1), (0, 0), (1, 1), 1)
    out = x.reshape(-1)[:18].reshape(1, 2, 3, 3)  # a view of the input
    with pytest.raises(ValueError, match=r"^\[conv2d\] expected out not to share memory"):
        _C.conv2d_forward(out, x, w, None, (1, 1), (0, 0), (1, 1), 1)


# Implicit-GEMM paths (csrc/cpu/conv.cpp, conv_isa.cpp): forward packs the patches straight from x
# (masked contiguous rows when stride 1 and OW == W, masked gathers otherwise, per element for
# kernels over 16 taps), stride-1 dx runs as the flipped-kernel convolution, and float32 dW packs
# the transposed patches (masked rows for stride 1 and OW == W, masked gathers otherwise). Shapes chosen to hit each path and its edges: a
# panel of output positions spanning several rows, widths 1 and 7, odd channel counts, groups,
# dilation, panel / K-block tails.
IMPLICIT_CASES = [
    # N, C, OC, H, W, (kh, kw), stride, padding, dilation, groups
    (2, 3, 5, 7, 7, (3, 3), 1, 1, 1, 1),        # "same": masked rows, dx as conv, transposed pack
    (3, 4, 6, 9, 1, (3, 1), 1, (1, 0), 1, 2),   # width 1, groups
    (1, 5, 7, 11, 13, (5, 3), 1, (4, 2), (2, 2), 1),  # dilated "same"
    (2, 6, 4, 10, 9, (3, 3), 2, 1, 1, 2),       # stride 2: gathers (dW too); dx takes the im2col path
    (2, 16, 8, 13, 13, (3, 3), 2, 1, 1, 1),     # stride 2 dW: full 8 x 8 gathered blocks, 49 positions
    (2, 9, 5, 11, 10, (3, 3), 2, 1, 1, 1),      # stride 2 dW: 81 columns (panel tails), 30 positions
    (1, 4, 3, 9, 12, (3, 2), (2, 3), (0, 1), (2, 1), 1),  # unequal strides, dilation, OW != W
    (2, 3, 4, 8, 9, (2, 3), 1, 0, 1, 1),        # "valid" (OW != W): gathers, dx as conv
    (1, 2, 3, 20, 6, (17, 1), 1, (8, 0), 1, 1),  # kh > 16: per-element packing
    (2, 33, 9, 6, 6, (3, 3), 1, 1, 1, 1),       # K = 297: two K blocks, r panels with tails
    (2, 3, 4, 28, 28, (3, 3), 2, 1, 1, 1),      # stride 2, OW = 14: segments over 2-3 output rows
    (1, 2, 3, 9, 31, (2, 3), (1, 3), (0, 1), 1, 1),  # column stride 3: more segments per vector
    (1, 3, 2, 17, 23, (3, 2), 2, (3, 4), (2, 3), 1),  # padding past the kernel's reach: empty columns
    (2, 5, 4, 11, 12, (5, 4), (2, 3), (2, 1), 1, 1),  # strided dx by phases: 3/2 x 1/1/2 taps, padding 1/0
    (1, 4, 6, 7, 8, (3, 3), 3, 0, 1, 1),        # stride = kernel: one tap per phase, phases of 3 / 2 rows
    (2, 4, 6, 9, 9, (3, 3), 2, 0, 1, 2),        # stride 2, no padding, groups: phase padding 1 / 0
    (1, 2, 3, 8, 8, (2, 2), 3, 1, 1, 1),        # stride > kernel (a phase without taps): im2col dx
]


@pytest.mark.parametrize("case", IMPLICIT_CASES)
def test_implicit_gemm_paths_match_float64_torch(case):
    N, C, OC, H, W, k, s, p, d, g = case
    r = np.random.default_rng(11)
    x = r.standard_normal((N, C, H, W))
    w = r.standard_normal((OC, C // g) + k)
    b = r.standard_normal(OC)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d, groups=g)
    gy = r.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(gy))
    for dt, tol in ((np.float64, 1e-10), (np.float32, 2e-4)):
        xn, wn, bn = (nnfast.tensor(a.astype(dt), requires_grad=True) for a in (x, w, b))
        yn = F.conv2d(xn, wn, bn, stride=s, padding=p, dilation=d, groups=g)
        yn.backward(gy.astype(dt))
        for got, ref in ((yn.detach().numpy(), yt.detach().numpy()), (xn.grad.numpy(), xt.grad.numpy()),
                         (wn.grad.numpy(), wt.grad.numpy()), (bn.grad.numpy(), bt.grad.numpy())):
            scale = max(1.0, float(np.abs(ref).max()))
            np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("n", [3, 8])
def test_implicit_gemm_thread_determinism(n):
    """Stride-1 'same' conv (all implicit paths): same bits on 1, 2 and 3 threads, forward and backward, whether
    threads take whole images (n = 8) or work inside each image's GEMM (n = 3 on 2 threads)."""
    r = np.random.default_rng(12)
    x = r.standard_normal((n, 16, 12, 12)).astype(np.float32)
    w = r.standard_normal((24, 16, 3, 3)).astype(np.float32)
    b = r.standard_normal(24).astype(np.float32)
    dy = r.standard_normal((n, 24, 12, 12)).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    old = nnfast.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            nnfast.set_num_threads(threads)
            y = np.full((n, 24, 12, 12), np.nan, np.float32)
            _C.conv2d_forward(y, x, w, b, *args)
            dx = np.full_like(x, np.nan)
            dw, db = np.zeros_like(w), np.zeros_like(b)
            _C.conv2d_backward(dx, dw, db, dy, x, w, *args)
            results.append((y, dx, dw, db))
    finally:
        nnfast.set_num_threads(old)
    assert np.isfinite(results[0][0]).all() and np.isfinite(results[0][1]).all()
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            assert np.array_equal(a, b_)


_PREPACK_CHILD = r"""
import sys, numpy as np
from nnfast._native import _C
r = np.random.default_rng(13)
for dt in (np.float32, np.float64):
    x = r.standard_normal((3, 66, 7, 9)).astype(dt)
    w = r.standard_normal((20, 33, 3, 3)).astype(dt)
    b = r.standard_normal(20).astype(dt)
    y = np.full((3, 20, 7, 9), np.nan, dt)
    _C.conv2d_forward(y, x, w, b, (1, 1), (1, 1), (1, 1), 2)
    sys.stdout.write(y.tobytes().hex() + "\n")
    if "dw" in sys.argv:  # the weight gradient's transposed patch pack too
        g = r.standard_normal(y.shape).astype(dt)
        dw = np.zeros_like(w)
        _C.conv2d_backward(None, dw, None, g, x, w, (1, 1), (1, 1), (1, 1), 2)
        sys.stdout.write(dw.tobytes().hex() + "\n")
"""


def test_forward_weight_prepacked_once_same_bits():
    """The forward packs the weight once per call (NNFAST_CONV_PREPACK=0: once per image's GEMM); both
    must give the same bits (groups, 20 output channels: a partial register tile, K = 297: two K blocks)."""
    import os
    import subprocess
    import sys

    outs = []
    for flag in ("1", "0"):
        env = dict(os.environ, NNFAST_CONV_PREPACK=flag)
        outs.append(subprocess.run([sys.executable, "-c", _PREPACK_CHILD], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0] and outs[0] == outs[1]


@pytest.mark.parametrize("switch", ["NNFAST_CONV_STORE_BIAS", "NNFAST_CONV_PACK_FAST", "NNFAST_CONV_PACK_T_COLS"])
def test_forward_fast_paths_same_bits(switch):
    """The bias added as the GEMM stores C (NNFAST_CONV_STORE_BIAS=0: a pass afterwards), the
    unrolled "same"-convolution patch packers (NNFAST_CONV_PACK_FAST=0: the generic ones) and the
    column-group order of the weight gradient's transposed pack (NNFAST_CONV_PACK_T_COLS=0: block
    order) must give the same bits as the paths they replace: full and partial register tiles
    (20 channels), two K blocks, groups, 63 positions (a partial block of 8); the weight gradient too."""
    import os
    import subprocess
    import sys

    outs = []
    for flag in ("1", "0"):
        env = dict(os.environ, **{switch: flag})
        outs.append(subprocess.run([sys.executable, "-c", _PREPACK_CHILD, "dw"], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0].count("\n") == 4 and outs[0] == outs[1]


_TILE_CHILD = r"""
import sys, numpy as np
from nnfast._native import _C
r = np.random.default_rng(15)
# 128 output channels (the prepacked weight's tile: 16 x 8 rows, or 11 x 12 with 4 padded), two K
# blocks (C k k = 360), stride 1 (several images per GEMM) and 2, 1 and 3 images; dx of a stride-1
# convolution with 128 input channels runs the same prepacked forward (M = 128).
for dt in (np.float32, np.float64):
    for shape, st in (((3, 40, 9, 9), 1), ((1, 40, 13, 11), 2), ((3, 128, 9, 9), 1)):
        x = r.standard_normal(shape).astype(dt)
        w = r.standard_normal((128, shape[1], 3, 3)).astype(dt)
        oh, ow = (shape[2] - 1) // st + 1, (shape[3] - 1) // st + 1
        y = np.full((shape[0], 128, oh, ow), np.nan, dt)
        _C.conv2d_forward(y, x, w, r.standard_normal(128).astype(dt), (st, st), (1, 1), (1, 1), 1)
        dx = np.full(shape, np.nan, dt)
        dy = r.standard_normal(y.shape).astype(dt)
        _C.conv2d_backward(dx, None, None, dy, x, w, (st, st), (1, 1), (1, 1), 1)
        dw = np.zeros_like(w)  # the weight gradient's GEMM: M = 128 with a packer-fed B
        _C.conv2d_backward(None, dw, None, dy, x, w, (st, st), (1, 1), (1, 1), 1)
        assert np.isfinite(y).all() and np.isfinite(dx).all()
        sys.stdout.write(y.tobytes().hex() + "\n" + dx.tobytes().hex() + "\n" + dw.tobytes().hex() + "\n")
"""


def test_prepacked_weight_tile_same_bits():
    """The prepacked weight (forward, dx) and the weight gradient's packer-fed B take the 8 x 48 tile
    wherever it pads less (M = 128); NNFAST_GEMM_PREPACK_ALT=0 keeps the general 5 % rule (12 x 32
    there). Same bits either way, forward, input and weight gradients, stride 1 and 2, both dtypes."""
    import os
    import subprocess
    import sys

    outs = [subprocess.run([sys.executable, "-c", _TILE_CHILD], env=dict(os.environ, NNFAST_GEMM_PREPACK_ALT=flag),
                           check=True, capture_output=True, text=True).stdout for flag in ("1", "0")]
    assert outs[0].count("\n") == 18 and outs[0] == outs[1]


_STRIDED_CHILD = r"""
import sys, numpy as np
from nnfast._native import _C
r = np.random.default_rng(14)
# stride 2 (OW = 14: vectors over 2-3 output rows), stride (1, 3) with OW != W, a "valid"
# stride-1 conv, stride 2 with dilation and padding wider than the kernel reach (edge columns
# with no valid tap), odd sizes (panel tails), groups and two K blocks. "dw": the weight gradient
# too, plus a 5 x 4 kernel (20 taps) and OW = 1 (8 segments per block): both take the gathers.
cases = [((3, 66, 28, 28), (3, 3), (2, 2), (1, 1), (1, 1), 2),
         ((2, 5, 9, 31), (2, 3), (1, 3), (0, 1), (1, 1), 1),
         ((2, 7, 13, 11), (3, 3), (1, 1), (0, 0), (1, 1), 1),
         ((1, 3, 17, 23), (3, 2), (2, 2), (3, 4), (2, 3), 1)]
if "dw" in sys.argv:
    cases += [((2, 9, 11, 10), (3, 3), (2, 2), (1, 1), (1, 1), 1),
              ((2, 4, 9, 12), (5, 4), (2, 3), (2, 1), (1, 1), 1),
              ((1, 2, 12, 16), (1, 16), (1, 1), (0, 0), (1, 1), 1)]
for shape, k, st, pd, dl, g in cases:
    x = r.standard_normal(shape).astype(np.float32)
    w = r.standard_normal((20, shape[1] // g) + k).astype(np.float32)
    b = r.standard_normal(20).astype(np.float32)
    oh = (shape[2] + 2 * pd[0] - dl[0] * (k[0] - 1) - 1) // st[0] + 1
    ow = (shape[3] + 2 * pd[1] - dl[1] * (k[1] - 1) - 1) // st[1] + 1
    y = np.full((shape[0], 20, oh, ow), np.nan, np.float32)
    _C.conv2d_forward(y, x, w, b, st, pd, dl, g)
    sys.stdout.write(y.tobytes().hex() + "\n")
    if "dw" in sys.argv:
        dw = np.zeros_like(w)
        _C.conv2d_backward(None, dw, None, r.standard_normal(y.shape).astype(np.float32), x, w, st, pd, dl, g)
        sys.stdout.write(dw.tobytes().hex() + "\n")
"""


@pytest.mark.parametrize("switch, lines", [("NNFAST_CONV_PACK_STRIDED", 4), ("NNFAST_CONV_PACK_STRIDED_T", 14)])
def test_strided_patch_pack_same_bits(switch, lines):
    """The strided / OW != W patch packers (segment loads + permutes; =0: masked gathers), the forward's
    (NNFAST_CONV_PACK_STRIDED) and the weight gradient's transposed one (NNFAST_CONV_PACK_STRIDED_T),
    must give the same bits as the gathers they replace."""
    import os
    import subprocess
    import sys

    outs = []
    for flag in ("1", "0"):
        env = dict(os.environ, **{switch: flag})
        args = [sys.executable, "-c", _STRIDED_CHILD] + (["dw"] if lines > 4 else [])
        outs.append(subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout)
    assert outs[0].count("\n") == lines and outs[0] == outs[1] and "nan" not in outs[0]


_MULTI_CHILD = r"""
import sys, numpy as np, nnfast
from nnfast._native import _C
nnfast.set_num_threads(int(sys.argv[1]))
r = np.random.default_rng(21)
# OH OW = 196 (4 images per GEMM; N = 5: a last group of 1), 70 (8 per GEMM, groups), 100 (stride 2:
# strided packs; dx by phases), 64 (one image per GEMM), 14 x 13 (8 per GEMM, N = 9: 8 + 1);
# forward and dx (stride 1: as a forward; stride 2: by phases), float32 and float64.
for dt in (np.float32, np.float64):
    for shape, oc, k, st, pd, g in (((5, 8, 14, 14), 20, (3, 3), (1, 1), (1, 1), 1),
                                    ((3, 6, 7, 10), 10, (3, 3), (1, 1), (1, 1), 2),
                                    ((6, 5, 20, 20), 7, (3, 3), (2, 2), (1, 1), 1),
                                    ((2, 4, 8, 8), 5, (3, 3), (1, 1), (1, 1), 1),
                                    ((9, 3, 15, 13), 4, (2, 3), (1, 1), (0, 1), 1)):
        x = r.standard_normal(shape).astype(dt)
        w = r.standard_normal((oc, shape[1] // g) + k).astype(dt)
        b = r.standard_normal(oc).astype(dt)
        oh = (shape[2] + 2 * pd[0] - k[0]) // st[0] + 1
        ow = (shape[3] + 2 * pd[1] - k[1]) // st[1] + 1
        y = np.full((shape[0], oc, oh, ow), np.nan, dt)
        _C.conv2d_forward(y, x, w, b, st, pd, (1, 1), g)
        dx = np.full_like(x, np.nan)
        _C.conv2d_backward(dx, None, None, r.standard_normal(y.shape).astype(dt), x, w, st, pd, (1, 1), g)
        assert np.isfinite(y).all() and np.isfinite(dx).all()
        sys.stdout.write(y.tobytes().hex() + " " + dx.tobytes().hex() + "\n")
"""


def test_multi_image_gemm_same_bits():
    """Several images per forward GEMM (columns (n, q); panels across an image's end spliced from
    the two images' packs; NNFAST_CONV_MULTI_IMAGE=0: one image per GEMM) must give the same bits,
    on 1 and 2 threads."""
    import os
    import subprocess
    import sys

    outs = []
    for flag in ("1", "0"):
        for threads in ("1", "2"):
            env = dict(os.environ, NNFAST_CONV_MULTI_IMAGE=flag)
            outs.append(subprocess.run([sys.executable, "-c", _MULTI_CHILD, threads], env=env, check=True,
                                       capture_output=True, text=True).stdout)
    assert outs[0].count("\n") == 10
    assert all(o == outs[0] for o in outs[1:])


_FOLD_DB_CHILD = r"""
import sys, numpy as np, nnfast
from nnfast._native import _C
r = np.random.default_rng(22)
# The bias gradient summed in the weight gradient's pass (per image, then the fixed parts in order)
# or by its own pass (NNFAST_CONV_FOLD_DB=0): batch 1, 7 (7 parts), 9 (8 parts, image 8 into part 0),
# 1023 positions per image, groups, stride 2, OC = 7 (a partial register tile); a db that already
# holds a value (+=), and db without dW (its own pass on either setting). Prints the hex of every
# db and dW and the largest error of db against a float64 sum.
def lanes(dy):  # (..., P) -> (..., 8): value j into partial sum j % 8, in order (no pairwise sums)
    acc = np.zeros(dy.shape[:-1] + (8,))
    for j in range(0, dy.shape[-1], 8):
        v = dy[..., j:j + 8].astype(np.float64)
        acc[..., :v.shape[-1]] += v
    return acc
def sum8(a):
    return ((a[..., 0] + a[..., 1]) + (a[..., 2] + a[..., 3])) + ((a[..., 4] + a[..., 5]) + (a[..., 6] + a[..., 7]))
def exact_orders(db0, dy):
    # The two sum orders of the kernels, exactly: (a) per channel over all images (the separate pass),
    # (b) per image, into part n % parts (in double), the parts added in order (the folded one).
    N, oc = dy.shape[:2]
    d = dy.reshape(N, oc, -1)
    acc = np.zeros((oc, 8))
    for n in range(N):
        for j in range(0, d.shape[-1], 8):
            v = d[n, :, j:j + 8].astype(np.float64)
            acc[:, :v.shape[-1]] += v
    a = sum8(acc)
    per_image = sum8(lanes(d))
    parts = min(8, N)
    part = np.zeros((parts, oc))
    for n in range(N):
        part[n % parts] += per_image[n]
    b = part[0].copy()
    for p in range(1, parts):
        b += part[p]
    return [db0 + t.astype(db0.dtype) for t in (a, b)]
cases = [((1, 3, 31, 33), 7, (3, 3), (1, 1), (1, 1), 1),
         ((7, 4, 9, 9), 6, (3, 3), (1, 1), (1, 1), 2),
         ((9, 5, 13, 12), 7, (3, 3), (2, 2), (1, 1), 1),
         ((3, 6, 8, 8), 8, (2, 3), (1, 1), (0, 1), 1)]
nnfast.set_num_threads(int(sys.argv[1]))
worst = 0.0
for dt in (np.float32, np.float64):
    for shape, oc, k, st, pd, g in cases:
        x = r.standard_normal(shape).astype(dt)
        w = r.standard_normal((oc, shape[1] // g) + k).astype(dt)
        oh = (shape[2] + 2 * pd[0] - k[0]) // st[0] + 1
        ow = (shape[3] + 2 * pd[1] - k[1]) // st[1] + 1
        dy = (r.standard_normal((shape[0], oc, oh, ow)) + 3.0).astype(dt)
        db0 = r.standard_normal(oc).astype(dt)
        ref = db0.astype(np.float64) + dy.astype(np.float64).sum(axis=(0, 2, 3))
        for with_dw in (True, False):
            dw = np.zeros_like(w) if with_dw else None
            db = db0.copy()
            _C.conv2d_backward(None, dw, db, dy, x, w, st, pd, (1, 1), g)
            eps = np.finfo(dt).eps
            worst = max(worst, float(np.max(np.abs(db - ref) / (np.abs(ref) * eps))))
            exact = any(np.array_equal(db, e) for e in exact_orders(db0, dy))
            sys.stdout.write(db.tobytes().hex() + " " + (dw.tobytes().hex() if with_dw else "-") + f" {exact}\n")
sys.stdout.write(f"{worst}\n")
"""


def test_bias_grad_folded_into_weight_grad():
    """db summed in the weight gradient's pass (NNFAST_CONV_FOLD_DB=1, default) and by its own pass
    (=0): the bits of one of the two documented sum orders (ConvOps::sum_rows), within one rounding
    of the float64 sum, the same bits on 1, 2 and 3 threads, dW unchanged by the switch."""
    import os
    import subprocess
    import sys

    outs = {}
    for flag in ("1", "0"):
        for threads in ("1", "2", "3"):
            env = dict(os.environ, NNFAST_CONV_FOLD_DB=flag)
            outs[flag, threads] = subprocess.run([sys.executable, "-c", _FOLD_DB_CHILD, threads], env=env,
                                                 check=True, capture_output=True, text=True).stdout.splitlines()
    for flag in ("1", "0"):
        lines = outs[flag, "1"]
        assert len(lines) == 17 and float(lines[-1]) <= 1.0, lines[-1]
        assert all(ln.split()[2] == "True" for ln in lines[:-1]), lines
        assert outs[flag, "2"] == lines and outs[flag, "3"] == lines
    fold, sep = outs["1", "1"], outs["0", "1"]
    assert [ln.split()[1] for ln in fold[:-1]] == [ln.split()[1] for ln in sep[:-1]]  # dW: same bits


# The direct stride-1 weight gradient (NNFAST_CONV_DW_DIRECT, images of >= 512 positions): 8 / 4 / 2 / 1
# channel tiles (OC per group 15 = 8 + 4 + 2 + 1), 3 / 2 / 1 patch-row tiles (C k k = 14, 10),
# blocks of 16 positions with a tail (1023 = 63 x 16 + 15), groups, dilation, a 5 x 3 kernel,
# a 1 x 3 kernel, 9 images (8 parts).
DW_DIRECT_CASES = [
    # N, C, OC, H, W, k, p, d, g
    (2, 3, 15, 31, 33, (3, 3), (1, 1), (1, 1), 1),
    (9, 4, 6, 24, 24, (3, 3), (1, 1), (1, 1), 2),
    (1, 2, 5, 32, 17, (5, 3), (2, 1), (1, 1), 1),
    (2, 2, 7, 30, 20, (3, 3), (2, 2), (2, 2), 1),
    (1, 1, 3, 40, 13, (1, 3), (0, 1), (1, 1), 1),
]


def _dw_direct_check(N, C, OC, H, W, k, p, d, g, threads):
    r = np.random.default_rng(31)
    x = r.standard_normal((N, C, H, W)).astype(np.float32)
    w = r.standard_normal((OC, C // g) + k).astype(np.float32)
    OH, OW = H + 2 * p[0] - d[0] * (k[0] - 1), W + 2 * p[1] - d[1] * (k[1] - 1)
    dy = r.standard_normal((N, OC, OH, OW)).astype(np.float32)
    old = nnfast.get_num_threads()
    outs = []
    try:
        for t in threads:
            nnfast.set_num_threads(t)
            dw = np.full_like(w, 0.5)  # += onto what is there
            _C.conv2d_backward(None, dw, None, dy, x, w, (1, 1), p, d, g)
            outs.append(dw)
    finally:
        nnfast.set_num_threads(old)

    def ref(a, b):
        return torch.ops.aten.convolution_backward(torch.tensor(a).double(), torch.tensor(b).double(),
                                                   torch.tensor(w).double(), [OC], [1, 1], list(p), list(d), False,
                                                   [0, 0], g, [False, True, False])[1].numpy()
    exact = 0.5 + ref(dy, x)
    # Per element: 16 lanes of OH OW / 16 sequential terms each, a 16-lane tree, then <= N image adds
    # into the parts and the parts in order: n terms give at most n eps of the sum of |terms|.
    bound = (OH * OW / 16 + 4 + N + 2) * np.finfo(np.float32).eps * (0.5 + ref(np.abs(dy), np.abs(x)))
    for dw in outs:
        assert np.all(np.abs(dw - exact) <= bound), float(np.max(np.abs(dw - exact) / bound))
    return outs


@pytest.mark.parametrize("case", DW_DIRECT_CASES)
def test_weight_grad_direct_float64_bound(case):
    """The direct weight gradient against a float64 reference, within its summation bound, and the same
    bits on 1, 2 and 3 threads."""
    outs = _dw_direct_check(*case, threads=(1, 2, 3))
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


_DW_DIRECT_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import test_conv
for case in test_conv.DW_DIRECT_CASES:
    test_conv._dw_direct_check(*case, threads=(1,))
print("ok")
"""


def test_weight_grad_direct_switch_off_same_bound():
    """NNFAST_CONV_DW_DIRECT=0 (the packed GEMM) meets the same float64 bound on the same shapes."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NNFAST_CONV_DW_DIRECT="0")
    out = subprocess.run([sys.executable, "-c", _DW_DIRECT_CHILD, os.path.dirname(__file__)], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "ok"


# The direct weight gradient's per-thread tap tables (NNFAST_CONV_DW_MASK_CACHE): kept across calls and
# rebuilt when the geometry changes. The cases run in an order where consecutive calls differ in one
# geometry field at a time (a 40 x 40 image with padding 1 / dilation 1, then padding 2 / dilation 2:
# same kernel, same P; then 3 x 3 vs 5 x 3 taps; back to the first), on 1, 2 and 3 threads; the child
# prints each result's bytes' hash, and the tables rebuilt on every call (=0) must give the same bits.
_DW_CACHE_CHILD = r"""
import hashlib, sys
import numpy as np
import nnfast
from nnfast._native import _C
seq = [((3, 3), (1, 1), (1, 1)), ((3, 3), (2, 2), (2, 2)), ((3, 3), (1, 1), (1, 1)), ((5, 3), (2, 1), (1, 1)),
       ((3, 3), (1, 1), (1, 1)), ((3, 5), (1, 2), (1, 1)), ((3, 3), (2, 2), (2, 2))]
r = np.random.default_rng(7)
x = r.standard_normal((5, 3, 40, 40)).astype(np.float32)
dy = r.standard_normal((5, 6, 40, 40)).astype(np.float32)
for t in (1, 2, 3):
    nnfast.set_num_threads(t)
    for k, p, d in seq:
        w = np.zeros((6, 3) + k, np.float32)
        dw = np.zeros_like(w)
        _C.conv2d_backward(None, dw, None, dy, x, w, (1, 1), p, d, 1)
        print(t, k, p, d, hashlib.sha1(dw.tobytes()).hexdigest())
"""


def test_weight_grad_direct_mask_cache_same_bits():
    """NNFAST_CONV_DW_MASK_CACHE=1 (tap tables kept per thread while the geometry stays) and =0 (rebuilt
    per call): the same bits for a sequence of geometries that differ in one field at a time, on 1, 2
    and 3 threads; and each geometry the same bits on every thread count."""
    import os
    import subprocess
    import sys

    outs = {}
    for flag in ("1", "0"):
        env = dict(os.environ, NNFAST_CONV_DW_MASK_CACHE=flag)
        outs[flag] = subprocess.run([sys.executable, "-c", _DW_CACHE_CHILD], env=env, check=True,
                                    capture_output=True, text=True).stdout.splitlines()
    assert len(outs["1"]) == 21 and outs["1"] == outs["0"]
    by_geo = {}
    for ln in outs["1"]:
        by_geo.setdefault(ln.split(" ", 1)[1].rsplit(" ", 1)[0], set()).add(ln.rsplit(" ", 1)[1])
    assert len(by_geo) == 4 and all(len(v) == 1 for v in by_geo.values())


def test_weight_grad_direct_noncontiguous_module():
    """Conv2d on a non-contiguous input (a transposed view) through autograd: dW of the direct path
    within 2e-4 of float64 torch."""
    r = np.random.default_rng(32)
    x = r.standard_normal((2, 4, 24, 25)).transpose(0, 1, 3, 2)  # (2, 4, 25, 24), strided
    w = r.standard_normal((6, 4, 3, 3))
    gy = r.standard_normal((2, 6, 25, 24))
    xt, wt = torch.tensor(np.ascontiguousarray(x), requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(xt, wt, padding=1).backward(torch.tensor(gy))
    xn = nnfast.tensor(x.astype(np.float32), requires_grad=True)
    wn = nnfast.tensor(w.astype(np.float32), requires_grad=True)
    F.conv2d(xn, wn, padding=1).backward(gy.astype(np.float32))
    ref = wt.grad.numpy()
    np.testing.assert_allclose(wn.grad.numpy(), ref, rtol=2e-4, atol=2e-4 * np.abs(ref).max())


def test_weight_grad_direct_on_intel_same_bound():
    """NNFAST_CONV_DW_INTEL_GEMM=0: the direct weight gradient on Intel cores too (where the default is
    the packed GEMM), so that the direct kernel is checked on every AVX-512 machine: the same float64
    bound on the same shapes."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NNFAST_CONV_DW_INTEL_GEMM="0")
    out = subprocess.run([sys.executable, "-c", _DW_DIRECT_CHILD, os.path.dirname(__file__)], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "ok"


_PHASE_CHILD = r"""
import sys, numpy as np, torch, nnfast
from nnfast._native import _C
nnfast.set_num_threads(int(sys.argv[1]))
r = np.random.default_rng(41)
# Strided dx by phases. Images of >= 2^16 elements, so that NNFAST_CONV_PHASE_CHUNK runs them in
# chunks of 4 x threads images with a remainder (N = 9, 7, 1); stride 2 / 3 / (2, 3), kernels 3 x 3,
# 3 x 4, 4 x 4, padding 0 / 1 / 2, groups, W odd, float32 and float64.
cases = [((9, 16, 64, 64), 8, (3, 3), (2, 2), (1, 1), 1),
         ((7, 6, 67, 171), 4, (3, 4), (2, 3), (1, 2), 2),
         ((1, 4, 130, 129), 3, (4, 4), (3, 3), (0, 0), 1),
         ((9, 32, 47, 45), 5, (3, 3), (2, 2), (0, 1), 1)]
for dt in (np.float32, np.float64):
    for shape, oc, k, st, pd, g in cases:
        x = r.standard_normal(shape).astype(dt)
        w = r.standard_normal((oc, shape[1] // g) + k).astype(dt)
        oh = (shape[2] + 2 * pd[0] - k[0]) // st[0] + 1
        ow = (shape[3] + 2 * pd[1] - k[1]) // st[1] + 1
        dy = r.standard_normal((shape[0], oc, oh, ow)).astype(dt)
        dx = np.full_like(x, np.nan)
        _C.conv2d_backward(dx, None, None, dy, x, w, st, pd, (1, 1), g)
        ref = torch.ops.aten.convolution_backward(torch.tensor(dy).double(), torch.tensor(x).double(),
                                                  torch.tensor(w).double(), [oc], list(st), list(pd), [1, 1], False,
                                                  [0, 0], g, [True, False, False])[0].numpy()
        mag = torch.ops.aten.convolution_backward(torch.tensor(np.abs(dy)).double(), torch.tensor(x).double(),
                                                  torch.tensor(np.abs(w)).double(), [oc], list(st), list(pd), [1, 1],
                                                  False, [0, 0], g, [True, False, False])[0].numpy()
        # At most K = oc / g k k terms per element: K eps of the sum of |terms|.
        bound = (oc // g * k[0] * k[1] + 2) * np.finfo(dt).eps * mag
        assert np.all(np.abs(dx - ref) <= bound), (shape, float(np.max(np.abs(dx - ref) / bound)))
        sys.stdout.write(dx.tobytes().hex() + "\n")
"""


def test_strided_dx_phase_chunks_same_bits():
    """The strided input gradient's phases on chunks of images with one fused scatter
    (NNFAST_CONV_PHASE_CHUNK; =0: each phase over the whole batch, then its own scatter) must give the
    same bits on 1, 2 and 3 threads, within the float64 bound."""
    import os
    import subprocess
    import sys

    outs = []
    for flag in ("1", "0"):
        for threads in ("1", "2", "3"):
            env = dict(os.environ, NNFAST_CONV_PHASE_CHUNK=flag)
            outs.append(subprocess.run([sys.executable, "-c", _PHASE_CHILD, threads], env=env, check=True,
                                       capture_output=True, text=True).stdout)
    assert outs[0].count("\n") == 8 and "nan" not in outs[0]
    assert all(o == outs[0] for o in outs[1:])


def test_strided_dx_phase_chunks_bad_input():
    """A stride-2 conv2d backward with a dy of the wrong shape is refused with a conv2d message."""
    x = nnfast.tensor(np.zeros((2, 3, 8, 8), np.float32), requires_grad=True)
    w = nnfast.tensor(np.zeros((4, 3, 3, 3), np.float32), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    with pytest.raises(Exception, match="expected gradient of shape"):
        y.backward(np.zeros((2, 4, 3, 3), np.float32))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("N, C, OC, H, W, g", [(9, 6, 10, 7, 13, 2), (1, 3, 5, 1, 1, 1), (8, 16, 4, 14, 14, 1),
                                               (3, 7, 7, 1, 1023, 7)])
def test_pointwise_weight_grad_float64_bound(N, C, OC, H, W, g, dt):
    """The 1 x 1 weight gradient straight from dy and x (NNFAST_CONV_PW_DW): within its summation bound
    of a float64 reference, += onto what dw holds, the same bits on 1, 2 and 3 threads, and a
    non-contiguous x through the module."""
    r = np.random.default_rng(51)
    x = r.standard_normal((N, C, H, W)).astype(dt)
    w = r.standard_normal((OC, C // g, 1, 1)).astype(dt)
    dy = r.standard_normal((N, OC, H, W)).astype(dt)
    old = nnfast.get_num_threads()
    outs = []
    try:
        for t in (1, 2, 3):
            nnfast.set_num_threads(t)
            dw = np.full_like(w, 0.5)
            _C.conv2d_backward(None, dw, None, dy, x, w, (1, 1), (0, 0), (1, 1), g)
            outs.append(dw)
    finally:
        nnfast.set_num_threads(old)

    def ref(a, b):
        return torch.ops.aten.convolution_backward(torch.tensor(a).double(), torch.tensor(b).double(),
                                                   torch.tensor(w).double(), [OC], [1, 1], [0, 0], [1, 1], False,
                                                   [0, 0], g, [False, True, False])[1].numpy()
    exact = 0.5 + ref(dy, x)
    # Per element N H W products, summed per image then over the parts: at most N H W + N + 2 roundings.
    bound = (N * H * W + N + 2) * np.finfo(dt).eps * (0.5 + ref(np.abs(dy), np.abs(x)))
    for dw in outs:
        assert np.all(np.abs(dw - exact) <= bound), float(np.max(np.abs(dw - exact) / bound))
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    # Non-contiguous input through autograd.
    xs = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, strided view
    xn = nnfast.tensor(xs, requires_grad=True)
    wn = nnfast.tensor(w, requires_grad=True)
    F.conv2d(xn, wn, groups=g).backward(dy)
    assert np.all(np.abs(wn.grad.numpy() - (exact - 0.5)) <= bound)
