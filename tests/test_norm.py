"""Normalizations (issue #3): batch, layer, RMS, group, instance, weight and
spectral norm against float64 NumPy formulas written here.

One table (OPS), one line per op: how to build inputs for a feature count F,
the nnfast call, and the float64 reference. Every line runs forward (odd
feature counts, float32 and float64), float64 gradcheck on the real kernels
for input, weight and bias, non-contiguous inputs, float32/float64 agreement
and every SIMD level this CPU has. Separate tests cover running statistics,
large-mean stability, the modules, weight_norm / spectral_norm and bad inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck
from nnfast.nn.utils.spectral_norm import SpectralNormFunction, remove_spectral_norm, spectral_norm
from nnfast.nn.utils.weight_norm import _weight_norm, remove_weight_norm, weight_norm

from helpers import assert_close, leaf, noncontig
from opinfo import (NORM_OPS, make, ref, ref_batch_norm, ref_group_norm, ref_layer_norm, ref_rms_norm,
                    ref_weight_norm, run)

_C = nnfast._C
TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=2e-5, atol=2e-5)}
# The table (NORM_OPS: forward at F = 1..1023 in both dtypes, gradcheck, one input at a time,
# non-contiguous, float32 vs float64) lives in the registry (tests/opinfo.py) and runs from
# tests/test_ops.py; here: every SIMD level per table line, and what is not table material.
OPS = NORM_OPS
IDS = [op.name for op in OPS]


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_each_simd_level(op):
    levels = [n for n in ("generic", "avx2", "avx512") if _C.cpu_isa_supported(n)]
    before = _C.cpu_isa()
    x, params, fixed = make(op, 257, np.float32)
    want = ref(op, x, params, fixed)
    grads = {}
    try:
        for isa in levels:
            assert _C.set_cpu_isa(isa) is not False
            y, xt, pt = run(op, x, params, fixed, grad=True)
            assert_close(y, want, **TOL[np.float32], msg=isa)
            y.backward(np.ones(y.shape, np.float32))
            grads[isa] = [xt.grad._data] + [pt[k].grad._data for k in params]
    finally:
        _C.set_cpu_isa(before)
    for isa in levels:
        for a, b in zip(grads[isa], grads[levels[0]]):
            assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_threads_agree():
    """Large enough for the threaded paths (row chunks with partial sums,
    channel blocks, group rows); one thread and all threads agree."""
    rng = np.random.default_rng(5)
    cases = [
        (lambda x, w, b: F.layer_norm(x, 1023, w, b), (96, 1023), (1023,)),
        (lambda x, w, b: F.rms_norm(x, 1023, w) + 0 * b.sum(), (96, 1023), (1023,)),
        (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (512, 257), (257,)),
        (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (64, 33, 40), (33,)),
        (lambda x, w, b: F.group_norm(x, 3, w, b), (16, 33, 300), (33,)),
    ]
    n0 = nnfast.get_num_threads()
    for fn, xs, ps in cases:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ps), rng.standard_normal(ps)
        g = rng.standard_normal(xs)
        outs = []
        for nt in (1, max(2, n0)):
            nnfast.set_num_threads(nt)
            try:
                xt, wt, bt = leaf(x), leaf(w), leaf(b)
                y = fn(xt, wt, bt)
                y.backward(g)
                outs.append([y._data, xt.grad._data, wt.grad._data, bt.grad._data])
            finally:
                nnfast.set_num_threads(n0)
        for a, c in zip(*outs):
            assert_close(a, c, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- numerical stability
@pytest.mark.parametrize("name", ["layer_norm", "rms_norm", "batch_norm", "batch_norm_tall", "batch_norm_nchw",
                                  "group_norm", "instance_norm"])
@pytest.mark.parametrize("fold", ["1", "0"])
def test_large_mean_float32(monkeypatch, fold, name):
    """mean 1e4, std 1e-2: float32 results within 1e-4 relative of float64
    formulas on the same (float32-rounded) inputs. batch_norm_tall has enough
    rows for the row-chunked (N, C) statistics with partial sums. NNFAST_NORM_FOLD
    on and off (the float32 output passes with the split mean's low part folded)."""
    monkeypatch.setenv("NNFAST_NORM_FOLD", fold)
    rng = np.random.default_rng(11)
    shape = (8, 1023) if name in ("layer_norm", "rms_norm", "batch_norm") else (4, 6, 257)
    if name == "batch_norm_tall":
        name, shape = "batch_norm", (20001, 7)
    if name == "batch_norm_nchw":  # (N, C, L): per-channel runs, the float32 dx pass with a split mean
        name, shape = "batch_norm", (5, 3, 49)
    x32 = (1e4 + 1e-2 * rng.standard_normal(shape)).astype(np.float32)
    x = x32.astype(np.float64)
    call = {
        "layer_norm": (lambda t: F.layer_norm(t, shape[-1]), lambda a: ref_layer_norm(a, None, None, 1)),
        "rms_norm": (lambda t: F.rms_norm(t, shape[-1]), lambda a: ref_rms_norm(a, None, 1, np.finfo(np.float32).eps)),
        "batch_norm": (lambda t: F.batch_norm(t, None, None, training=True, eps=1e-12),
                       lambda a: ref_batch_norm(a, None, None, eps=1e-12)),
        "group_norm": (lambda t: F.group_norm(t, 2, eps=1e-12), lambda a: ref_group_norm(a, 2, None, None, 1e-12)),
        "instance_norm": (lambda t: F.instance_norm(t, eps=1e-12),
                          lambda a: ref_group_norm(a, a.shape[1], None, None, 1e-12)),
    }[name]
    xt = leaf(x32)
    y = call[0](xt)
    want = call[1](x)
    err = np.abs(y._data.astype(np.float64) - want).max() / np.abs(want).max()
    assert err <= 1e-4, err
    # backward in float32 against the float64 kernels (gradchecked above)
    g = rng.standard_normal(shape)
    y.backward(g.astype(np.float32))
    x64 = leaf(x)
    call[0](x64).backward(g)
    gerr = np.abs(xt.grad._data - x64.grad._data).max() / np.abs(x64.grad._data).max()
    assert gerr <= 1e-3, gerr


@pytest.mark.parametrize("shape", [(37, 1031), (70, 19), (5, 3), (4, 5, 49), (3, 2, 33), (2, 3, 1)])
def test_batchnorm_rows_float32_blocked(shape):
    """(N, C) float32 batch norm, forward and backward, against the float64
    kernels on the same inputs: C past one chunk of float coefficients (1031),
    odd channel tails and several row blocks taken last to first; (N, C, L):
    channel runs with float vector bodies and odd tails (49 = 3 x 16 + 1)."""
    rng = np.random.default_rng(5)
    x32 = (3.0 + rng.standard_normal(shape)).astype(np.float32)
    w = rng.standard_normal(shape[1]).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    g = rng.standard_normal(shape)
    outs = []
    for dt in (np.float32, np.float64):
        xt, wt, bt = leaf(x32.astype(dt)), leaf(w.astype(dt)), leaf(b.astype(dt))
        y = F.batch_norm(xt, None, None, wt, bt, True)
        y.backward(g.astype(dt))
        outs.append([y._data, xt.grad._data, wt.grad._data, bt.grad._data])
    assert_close(outs[1][0], ref_batch_norm(x32.astype(np.float64), w.astype(np.float64), b.astype(np.float64)))
    for a, c in zip(outs[0], outs[1]):
        scale = max(1.0, float(np.abs(c).max()))
        assert np.abs(a.astype(np.float64) - c).max() <= 2e-5 * scale


@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("M", [1, 7, 13])
def test_row_norm_backward_row_groups(rms, M):
    """layer / RMS norm backward with weight and bias gradients (rows taken in
    groups of four plus single rows) against float64 formulas."""
    rng = np.random.default_rng(M)
    D = 37
    x, dy = rng.standard_normal((M, D)), rng.standard_normal((M, D))
    w, b = rng.standard_normal(D), rng.standard_normal(D)
    xt, wt, bt = leaf(x), leaf(w), leaf(b)
    y = F.rms_norm(xt, D, wt, eps=1e-5) if rms else F.layer_norm(xt, D, wt, bt, eps=1e-5)
    y.backward(dy)
    xc = x if rms else x - x.mean(1, keepdims=True)
    s = 1 / np.sqrt((xc * xc).mean(1, keepdims=True) + 1e-5)
    xh, g = xc * s, dy * w
    cg = 0 if rms else g.mean(1, keepdims=True)
    assert_close(xt.grad._data, s * (g - cg - xh * (g * xh).mean(1, keepdims=True)))
    assert_close(wt.grad._data, (dy * xh).sum(0))
    if not rms:
        assert_close(bt.grad._data, dy.sum(0))


@pytest.mark.parametrize("fold", ["1", "0"])
@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("shape", [(1, 37), (7, 1023), (13, 300), (5, 16), (7, 33)])
@pytest.mark.parametrize("mean", [2.0, 1e4])
def test_row_norm_backward_float32(monkeypatch, isa_level, fold, rms, shape, mean):
    """float32 layer / RMS norm backward with weight and bias gradients (vector columns,
    odd column tails, groups of four rows plus single rows) against the float64 kernels on
    the same inputs; a mean of 1e4 catches x - mean formed in float (a float-lane reduction
    tried once lost three digits there). Every ISA, dx folded into two multiply-adds on
    x - mh and not (NNFAST_NORM_FOLD=0)."""
    monkeypatch.setenv("NNFAST_NORM_FOLD", fold)
    rng = np.random.default_rng(shape[1])
    x32 = (mean + rng.standard_normal(shape)).astype(np.float32)
    w32, b32 = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    dy = rng.standard_normal(shape)
    outs = []
    for dt in (np.float32, np.float64):
        xt, wt, bt = leaf(x32.astype(dt)), leaf(w32.astype(dt)), leaf(b32.astype(dt))
        D = shape[1]
        y = F.rms_norm(xt, D, wt, eps=1e-5) if rms else F.layer_norm(xt, D, wt, bt, eps=1e-5)
        y.backward(dy.astype(dt))
        outs.append([xt.grad._data, wt.grad._data] + ([] if rms else [bt.grad._data]))
    for a, c in zip(*outs):
        assert np.abs(a.astype(np.float64) - c).max() <= 2e-5 * max(1.0, float(np.abs(c).max()))


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("shape", [(263, 1023), (9, 40000), (1, 300000)])
def test_row_norm_backward_prefetch_switch(monkeypatch, isa_level, threads, shape):
    """NNFAST_NORM_ROWPF=0 (no prefetch of the next rows during the float32 dx pass) gives
    the same bits: layer / RMS norm backward past 1 MB, with and without the weight / bias
    partials (groups of four rows, the single-row tail: 263 = 65 x 4 + 3; one row: nothing
    ahead), 1 and 3 threads; and the values stay within 2e-5 of the float64 kernels."""
    rng = np.random.default_rng(shape[1])
    x32 = (2.0 + rng.standard_normal(shape)).astype(np.float32)
    w32, b32 = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    dy32 = rng.standard_normal(shape).astype(np.float32)
    assert x32.nbytes > 1 << 20
    M, D = shape
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(threads)
    try:
        for rms in (False, True):
            mean, rstd = (None if rms else np.empty(M)), np.empty(M)
            _C.layer_norm_forward(np.empty_like(x32), mean, rstd, x32, w32, None if rms else b32, 1e-5, rms)
            outs = {}
            for mode in ("0", "1"):
                monkeypatch.setenv("NNFAST_NORM_ROWPF", mode)
                dx, dw, db = np.empty_like(x32), np.zeros(D, np.float32), np.zeros(D, np.float32)
                _C.layer_norm_backward(dx, dw, None if rms else db, dy32, x32, mean, rstd, w32, rms)
                dx2 = np.empty_like(x32)  # no partials: the row-at-a-time path
                _C.layer_norm_backward(dx2, None, None, dy32, x32, mean, rstd, w32, rms)
                outs[mode] = (dx, dw, db, dx2)
            for a, c in zip(outs["0"], outs["1"]):
                np.testing.assert_array_equal(a, c, err_msg=f"rms={rms}")
            x64, w64, dy64 = x32.astype(np.float64), w32.astype(np.float64), dy32.astype(np.float64)
            mean64, rstd64 = (None if rms else np.empty(M)), np.empty(M)
            _C.layer_norm_forward(np.empty_like(x64), mean64, rstd64, x64, w64, None if rms else b32.astype(np.float64),
                                  1e-5, rms)
            dx64 = np.empty_like(x64)
            _C.layer_norm_backward(dx64, None, None, dy64, x64, mean64, rstd64, w64, rms)
            assert np.abs(outs["1"][0] - dx64).max() <= 2e-5 * max(1.0, float(np.abs(dx64).max()))
            assert np.abs(outs["1"][3] - dx64).max() <= 2e-5 * max(1.0, float(np.abs(dx64).max()))
    finally:
        nnfast.set_num_threads(old)


@pytest.mark.parametrize("fold", ["1", "0"])
def test_large_float32_outputs_streamed(monkeypatch, fold):
    """float32 outputs past 32 MB are written with non-temporal stores after a
    scalar head up to the first vector-aligned element: rows of 1023 put that
    head at every offset. Layer / RMS / batch norm (N, C), forward and backward,
    against the float64 kernels on the same inputs (a skipped or misplaced
    streamed vector, or a lost head or tail element, is far outside 2e-5);
    NNFAST_NORM_FOLD on and off."""
    monkeypatch.setenv("NNFAST_NORM_FOLD", fold)
    rng = np.random.default_rng(8)
    shape = (8256, 1023)  # 33.8 MB of float32, above the 32 MiB threshold
    assert np.prod(shape) * 4 > 32 << 20
    x32 = (2.0 + rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    w32, b32 = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    dy32 = rng.standard_normal(shape, dtype=np.float32)
    for op in ("layer_norm", "rms_norm", "batch_norm"):
        outs = []
        for dt in (np.float32, np.float64):
            xt, wt, bt = leaf(x32.astype(dt)), leaf(w32.astype(dt)), leaf(b32.astype(dt))
            if op == "layer_norm":
                y = F.layer_norm(xt, shape[1], wt, bt, eps=1e-5)
            elif op == "rms_norm":
                y = F.rms_norm(xt, shape[1], wt, eps=1e-5)
            else:
                y = F.batch_norm(xt, None, None, wt, bt, True)
            y.backward(dy32.astype(dt))
            outs.append([y._data, xt.grad._data])
        for a, c in zip(*outs):
            assert np.abs(a.astype(np.float64) - c).max() <= 2e-5 * max(1.0, float(np.abs(c).max())), op


# ---------------------------------------------------------------- batch norm state
def _np_running(batches, momentum, C):
    rm, rv = np.zeros(C), np.ones(C)
    for t, x in enumerate(batches, 1):
        axes = (0,) + tuple(range(2, x.ndim))
        m, v = x.mean(axes), x.var(axes, ddof=1)
        f = 1.0 / t if momentum is None else momentum
        rm, rv = (1 - f) * rm + f * m, (1 - f) * rv + f * v
    return rm, rv


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("shape", [(6, 5), (4, 5, 3)])
def test_batchnorm_running_stats(momentum, shape):
    rng = np.random.default_rng(21)
    bn = nn.BatchNorm1d(5, momentum=momentum).double()
    batches = [rng.standard_normal(shape) * 3 + 1 for _ in range(4)]
    for x in batches:
        y = bn(nnfast.from_numpy(x))
        assert_close(y, ref_batch_norm(x, None, None))
    rm, rv = _np_running(batches, momentum, 5)
    assert_close(bn.running_mean, rm, rtol=1e-12)
    assert_close(bn.running_var, rv, rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 4
    bn.eval()
    x = rng.standard_normal(shape)
    assert_close(bn(nnfast.from_numpy(x)), ref_batch_norm(x, None, None, mean=rm, var=rv))
    assert int(bn.num_batches_tracked.item()) == 4  # eval leaves the buffers alone
    assert_close(bn.running_mean, rm, rtol=1e-12)


def test_batchnorm_float32_buffers_and_grad_in_eval():
    bn = nn.BatchNorm1d(3)
    assert bn.weight.dtype == np.float32 and bn.running_var.dtype == np.float32
    assert bn.num_batches_tracked.dtype == np.int64
    rng = np.random.default_rng(2)
    bn(nnfast.from_numpy(rng.standard_normal((8, 3)).astype(np.float32)))
    bn.eval()
    x = leaf(rng.standard_normal((4, 3)))
    bn.double()
    assert gradcheck(lambda t, w, b: F.batch_norm(t, bn.running_mean, bn.running_var, w, b, False, 0.1, 1e-5),
                     (x, leaf(rng.standard_normal(3)), leaf(rng.standard_normal(3))))


def test_batchnorm_without_running_stats():
    bn = nn.BatchNorm1d(4, affine=False, track_running_stats=False).double()
    assert bn.running_mean is None and bn.weight is None
    assert list(bn.state_dict()) == []
    x = np.random.default_rng(0).standard_normal((5, 4))
    bn.eval()  # still batch statistics
    assert_close(bn(nnfast.from_numpy(x)), ref_batch_norm(x, None, None))


def test_batchnorm_batch_of_one():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"^\[batch_norm\] Expected more than 1 value per channel"):
        bn(nnfast.randn(1, 3))
    bn(nnfast.randn(1, 3, 2))  # N L = 2 values per channel: fine
    bn.eval()
    assert bn(nnfast.randn(1, 3)).shape == (1, 3)  # eval uses running stats


def test_batchnorm_module_api():
    bn = nn.BatchNorm1d(4)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert repr(bn) == "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    np.testing.assert_array_equal(bn.weight._data, 1)
    np.testing.assert_array_equal(bn.bias._data, 0)
    bn2 = nn.BatchNorm2d(3).double()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    assert_close(bn2(nnfast.from_numpy(x)), ref_batch_norm(x, None, None))
    with pytest.raises(ValueError, match=r"^\[BatchNorm2d\] expected 4D input \(got 3D input\)"):
        bn2(nnfast.randn(2, 3, 4))


# ---------------------------------------------------------------- instance norm state
def test_instancenorm_running_stats_and_unbatched():
    rng = np.random.default_rng(4)
    m = nn.InstanceNorm1d(3, affine=True, track_running_stats=True).double()
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    batches = [rng.standard_normal((2, 3, 6)) * 2 + 1 for _ in range(3)]
    rm, rv = np.zeros(3), np.ones(3)
    for x in batches:
        assert_close(m(nnfast.from_numpy(x)), ref_group_norm(x, 3, None, None))
        rm = 0.9 * rm + 0.1 * x.mean(2).mean(0)
        rv = 0.9 * rv + 0.1 * x.var(2, ddof=1).mean(0)
    assert_close(m.running_mean, rm, rtol=1e-12)
    assert_close(m.running_var, rv, rtol=1e-12)
    m.eval()
    x = rng.standard_normal((2, 3, 6))
    assert_close(m(nnfast.from_numpy(x)), ref_batch_norm(x, None, None, mean=rm, var=rv))
    # unbatched (C, L) input, default InstanceNorm1d (no affine, no running stats)
    m1 = nn.InstanceNorm1d(3).double()
    assert m1.weight is None and m1.running_mean is None
    x = rng.standard_normal((3, 6))
    assert_close(m1(nnfast.from_numpy(x)), ref_group_norm(x[None], 3, None, None)[0])
    with pytest.raises(ValueError, match=r"^\[instance_norm\] Expected more than 1 spatial element"):
        m1(nnfast.randn(2, 3, 1))


# ---------------------------------------------------------------- layer / RMS / group modules
def test_layernorm_rmsnorm_groupnorm_modules():
    rng = np.random.default_rng(8)
    ln = nn.LayerNorm((2, 5)).double()
    assert ln.weight.shape == (2, 5) and repr(ln) == "LayerNorm((2, 5), eps=1e-05, elementwise_affine=True)"
    x = rng.standard_normal((3, 2, 5))
    assert_close(ln(nnfast.from_numpy(x)), ref_layer_norm(x, None, None, 2))
    assert nn.LayerNorm(4, bias=False).bias is None
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    rms = nn.RMSNorm(5)
    assert rms.eps is None and [n for n, _ in rms.named_parameters()] == ["weight"]
    x32 = rng.standard_normal((3, 5)).astype(np.float32)
    assert_close(rms(nnfast.from_numpy(x32)), ref_rms_norm(x32.astype(np.float64), None, 1,
                                                           np.finfo(np.float32).eps), rtol=1e-6, atol=1e-6)
    gn = nn.GroupNorm(2, 4).double()
    assert repr(gn) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    x = rng.standard_normal((3, 4, 7))
    assert_close(gn(nnfast.from_numpy(x)), ref_group_norm(x, 2, None, None))
    with pytest.raises(ValueError, match=r"divisible"):
        nn.GroupNorm(3, 4)


def test_norms_train_in_a_model():
    """A small MLP with LayerNorm and BatchNorm learns (loss decreases)."""
    nnfast.manual_seed(0)
    rng = np.random.default_rng(0)
    x = nnfast.from_numpy(rng.standard_normal((64, 8)).astype(np.float32))
    t = nnfast.from_numpy((rng.standard_normal((64, 1)) > 0).astype(np.float32))
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 16), nn.LayerNorm(16),
                          nn.Linear(16, 1))
    losses = []
    for _ in range(30):
        model.zero_grad()
        loss = ((model(x) - t) ** 2).mean()
        loss.backward()
        for p in model.parameters():
            p._data -= 0.05 * p.grad._data
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ---------------------------------------------------------------- weight norm
def test_weight_norm_module():
    nnfast.manual_seed(1)
    rng = np.random.default_rng(1)
    lin = nn.Linear(5, 4).double()
    w0 = lin.weight._data.copy()
    m = weight_norm(lin)
    assert m is lin
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight_g", "weight_v"]
    assert lin.weight_g.shape == (4, 1)
    assert_close(lin.weight_g, np.linalg.norm(w0, axis=1, keepdims=True), rtol=1e-14)
    assert list(lin.state_dict()) == ["bias", "weight_g", "weight_v"]
    # the weight is recomputed from g and v before every forward, differentiably
    lin.weight_g._data *= 2.0
    x = rng.standard_normal((3, 5))
    y = lin(nnfast.from_numpy(x))
    assert_close(y, x @ (2 * w0).T + lin.bias._data, rtol=1e-12, atol=1e-12)
    y.sum().backward()
    gy = np.ones((3, 4))
    dW = gy.T @ x
    v = lin.weight_v._data
    nv = np.linalg.norm(v, axis=1, keepdims=True)
    g = lin.weight_g._data
    s = np.sum(dW * v, axis=1, keepdims=True)
    assert_close(lin.weight_g.grad, s / nv, rtol=1e-12, atol=1e-12)
    assert_close(lin.weight_v.grad, g / nv * (dW - v * s / nv**2), rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match=r"^\[weight_norm\] Cannot register two"):
        weight_norm(lin)
    remove_weight_norm(lin)
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight"]
    assert_close(lin.weight, 2 * w0, rtol=1e-14)


def test_weight_norm_whole_tensor():
    lin = nn.Linear(3, 2).double()
    w0 = lin.weight._data.copy()
    weight_norm(lin, dim=None)
    assert lin.weight_g.shape == ()
    assert_close(lin.weight_g, np.linalg.norm(w0), rtol=1e-14)
    lin.weight_g._data[...] = 1.0
    lin(nnfast.randn(1, 3, dtype=np.float64))
    assert_close(lin.weight, w0 / np.linalg.norm(w0), rtol=1e-13)


# ---------------------------------------------------------------- spectral norm
def test_spectral_norm_module():
    nnfast.manual_seed(3)
    lin = nn.Linear(12, 7).double()
    spectral_norm(lin)
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight_orig"]
    assert [n for n, _ in lin.named_buffers()] == ["weight_u", "weight_v"]
    assert list(lin.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    x = nnfast.randn(2, 12, dtype=np.float64)
    for _ in range(100):
        lin(x)
    W = lin.weight_orig._data.copy()
    sigma = np.linalg.svd(W, compute_uv=False)[0]
    assert_close(lin.weight, W / sigma, rtol=1e-8, atol=1e-10)
    u, v = lin.weight_u._data.copy(), lin.weight_v._data.copy()
    assert_close(abs(u @ W @ v), sigma, rtol=1e-10)
    assert_close(np.linalg.norm(u), 1.0, rtol=1e-12)
    # eval: no power iteration, u and v stay put
    lin.eval()
    lin.weight_orig._data[...] = W * 3
    lin(x)
    np.testing.assert_array_equal(lin.weight_u._data, u)
    np.testing.assert_array_equal(lin.weight_v._data, v)
    assert_close(lin.weight, W / sigma, rtol=1e-8, atol=1e-10)  # 3W / (u . 3W v)
    remove_spectral_norm(lin)
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight"]
    assert [n for n, _ in lin.named_buffers()] == []


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_spectral_norm_gradcheck_and_dims(dim):
    rng = np.random.default_rng(dim)
    W = leaf(rng.standard_normal((4, 3, 5)))
    h = W.shape[dim]
    u = rng.standard_normal(h)
    v = rng.standard_normal(W.numel() // h)
    assert gradcheck(lambda w: SpectralNormFunction.apply(w, u, v, dim), (W,))
    y = SpectralNormFunction.apply(W, u, v, dim)
    Wm = np.moveaxis(W._data, dim, 0).reshape(h, -1)
    assert_close(y, W._data / (u @ Wm @ v), rtol=1e-13)


def test_spectral_norm_float32_power_iteration():
    nnfast.manual_seed(0)
    lin = nn.Linear(33, 17)
    spectral_norm(lin, n_power_iterations=50)
    lin(nnfast.randn(1, 33))
    s = np.linalg.svd(lin.weight_orig._data.astype(np.float64), compute_uv=False)[0]
    assert_close(np.linalg.svd(lin.weight._data.astype(np.float64), compute_uv=False)[0], 1.0, rtol=1e-3)
    assert lin.weight.dtype == np.float32 and s > 0


# ---------------------------------------------------------------- bad inputs
def _t(*shape, dtype=np.float32):
    return nnfast.from_numpy(np.ones(shape, dtype=dtype))


BAD = [
    ("layer_norm", TypeError, lambda: F.layer_norm(_t(2, 3, dtype=np.float16), 3)),
    ("layer_norm", ValueError, lambda: F.layer_norm(_t(2, 3), 4)),
    ("layer_norm", ValueError, lambda: F.layer_norm(_t(3), (2, 3))),
    ("layer_norm", ValueError, lambda: F.layer_norm(_t(2, 3), 3, _t(4))),
    ("layer_norm", TypeError, lambda: F.layer_norm(_t(2, 3), 3, _t(3, dtype=np.float64))),
    ("rms_norm", TypeError, lambda: F.rms_norm(_t(2, 3, dtype=np.float16), 3)),
    ("rms_norm", ValueError, lambda: F.rms_norm(_t(2, 3), 2)),
    ("batch_norm", TypeError, lambda: F.batch_norm(_t(2, 3, dtype=np.float16), None, None, training=True)),
    ("batch_norm", ValueError, lambda: F.batch_norm(_t(3), None, None, training=True)),
    ("batch_norm", ValueError, lambda: F.batch_norm(_t(2, 3), None, None, _t(4), training=True)),
    ("batch_norm", ValueError, lambda: F.batch_norm(_t(2, 3), _t(4), _t(4), training=False)),
    ("batch_norm", ValueError, lambda: F.batch_norm(_t(2, 3), None, None, training=False)),
    ("BatchNorm1d", ValueError, lambda: nn.BatchNorm1d(3)(_t(2, 4))),
    ("BatchNorm1d", ValueError, lambda: nn.BatchNorm1d(3)(_t(2, 3, 4, 5))),
    ("BatchNorm1d", TypeError, lambda: nn.BatchNorm1d(3)(np.ones((2, 3)))),
    ("group_norm", ValueError, lambda: F.group_norm(_t(2, 3, 4), 2)),
    ("group_norm", ValueError, lambda: F.group_norm(_t(2), 1)),
    ("group_norm", TypeError, lambda: F.group_norm(_t(2, 4, 3, dtype=np.float16), 2)),
    ("group_norm", ValueError, lambda: nn.GroupNorm(2, 4)(_t(2, 6, 3))),
    ("instance_norm", TypeError, lambda: F.instance_norm(_t(2, 3, 4, dtype=np.float16))),
    ("instance_norm", ValueError, lambda: F.instance_norm(_t(2, 3, 4), weight=_t(2))),
    ("InstanceNorm1d", ValueError, lambda: nn.InstanceNorm1d(3)(_t(2, 3, 4, 5))),
    ("InstanceNorm1d", ValueError, lambda: nn.InstanceNorm1d(3, affine=True)(_t(2, 4, 5))),
    ("weight_norm", TypeError, lambda: _weight_norm(_t(2, 3, dtype=np.float16), _t(2, 1, dtype=np.float16))),
    ("weight_norm", ValueError, lambda: _weight_norm(_t(2, 3), _t(3, 1), 0)),
    ("weight_norm", ValueError, lambda: weight_norm(nn.Linear(2, 3), name="nope")),
    ("spectral_norm", ValueError, lambda: spectral_norm(nn.Linear(2, 3), n_power_iterations=0)),
    ("spectral_norm", ValueError, lambda: spectral_norm(nn.Linear(2, 3), dim=2)),
]


@pytest.mark.parametrize("op,exc,fn", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_inputs(op, exc, fn):
    with pytest.raises(exc, match=r"^\[" + op + r"\]"):
        fn()


KERNEL_BAD = [
    # the bindings re-check what the Python layer already did
    ("layer_norm", TypeError, lambda: _C.layer_norm_forward(np.empty((2, 3), np.float16), np.empty(2), np.empty(2),
                                                            np.ones((2, 3), np.float16), None, None, 1e-5)),
    ("layer_norm", ValueError, lambda: _C.layer_norm_forward(np.empty((2, 3)), np.empty(2), np.empty(2),
                                                             np.ones((2, 3))[:, ::2].copy().T, None, None, 1e-5)),
    ("layer_norm", TypeError, lambda: _C.layer_norm_forward(np.empty((2, 3)), np.empty(2, np.float32), np.empty(2),
                                                            np.ones((2, 3)), None, None, 1e-5)),
    ("layer_norm", ValueError, lambda: _C.layer_norm_forward(np.empty((2, 3)), np.empty(2), np.empty(2),
                                                             np.ones((2, 6))[:, ::2], None, None, 1e-5)),
    ("batch_norm", ValueError, lambda: _C.batch_norm_forward(np.empty((2, 3, 1)), np.empty(3), np.empty(3), None,
                                                             None, np.ones((2, 3, 1)), None, None, False, 0.1, 1e-5)),
    ("group_norm", ValueError, lambda: _C.group_norm_forward(np.empty((2, 3, 1)), np.empty((2, 2)),
                                                             np.empty((2, 2)), np.ones((2, 3, 1)), None, None, 2,
                                                             1e-5)),
    ("weight_norm", ValueError, lambda: (lambda a: _C.weight_norm_forward(a, np.empty(3), a, np.ones(3)))(
        np.ones((1, 3, 2)))),
]


@pytest.mark.parametrize("op,exc,fn", KERNEL_BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(KERNEL_BAD)])
def test_bad_kernel_arguments(op, exc, fn):
    with pytest.raises(exc, match=r"^\[" + op + r"\] expected"):
        fn()


def test_zero_grad_paths_and_eps_default():
    # RMSNorm eps=None resolves to the dtype's epsilon
    x = np.full((1, 4), 1e-5)
    y = F.rms_norm(nnfast.from_numpy(x), 4)
    assert_close(y, x / np.sqrt(1e-10 + np.finfo(np.float64).eps), rtol=1e-12)
    # layer norm over one feature: output is the bias, input gradient zero
    xt = leaf(np.array([[3.0], [4.0]]))
    b = leaf(np.array([0.5]))
    out = F.layer_norm(xt, 1, None, b)
    assert_close(out, [[0.5], [0.5]])
    out.sum().backward()
    assert_close(xt.grad, [[0.0], [0.0]], atol=1e-12)
    assert_close(b.grad, [2.0])


# ---------------------------------------------------------------- batch norm (N, C, L) groups
def _bn_nchw_kernels(x, w, b, dy):
    """Raw forward + backward kernels on contiguous (N, C, L): y, mean, rstd, running stats, dx, dw, db."""
    import nnfast._C as _C

    C = x.shape[1]
    y, mean, rstd = np.empty_like(x), np.empty(C), np.empty(C)
    rm, rv = np.zeros(C, x.dtype), np.ones(C, x.dtype)
    _C.batch_norm_forward(y, mean, rstd, rm, rv, x, w, b, True, 0.1, 1e-5)
    dx, dw, db = np.empty_like(x), np.zeros(C, x.dtype), np.zeros(C, x.dtype)
    _C.batch_norm_backward(dx, dw, db, dy, x, mean, rstd, w, True)
    return y, mean, rstd, rm, rv, dx, dw, db


def _bn_nchw_paths(monkeypatch, x, w, b, dy, runs):
    """_bn_nchw_kernels under each (NNFAST_NORM_NCHW, NNFAST_NORM_COLS, threads[, NNFAST_NORM_NSPLIT])
    of runs (NNFAST_NORM_NSPLIT "1" unless given: the row-split groups); keyed by the run's tuple."""
    outs = {}
    for run_ in runs:
        nchw, cols, threads, nsplit = run_ if len(run_) == 4 else run_ + ("1",)
        monkeypatch.setenv("NNFAST_NORM_NCHW", nchw)
        monkeypatch.setenv("NNFAST_NORM_COLS", cols)
        monkeypatch.setenv("NNFAST_NORM_NSPLIT", nsplit)
        old = nnfast.get_num_threads()
        nnfast.set_num_threads(threads)
        try:
            outs[run_] = _bn_nchw_kernels(x, w, b, dy)
        finally:
            nnfast.set_num_threads(old)
    return outs


_BN_NAMES = ("y", "mean", "rstd", "running_mean", "running_var", "dx", "dweight", "dbias")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9, 7, 49), (8, 2, 512), (11, 19, 3), (16, 5, 7), (8, 1, 49), (7, 3, 49),
                                   (1, 5, 49), (8, 3, 1), (9, 3, 1023), (13, 23, 1), (37, 5, 7), (53, 3, 49)])
def test_batch_norm_nchw_groups(monkeypatch, isa_level, dtype, shape):
    """(N, C, L) batch norm runs channels in groups read as contiguous stretches of
    rows (NNFAST_NORM_NCHW=0: one channel at a time). Inside a group the sums go to
    one accumulator per element of the stretch (NNFAST_NORM_COLS=0: per-channel
    accumulators, whose statistics and parameter gradients equal the per-channel
    path's bit for bit). Every path matches the float64 formulas, the paths agree to
    rounding, and none depends on the thread count. Shapes: several groups (11, 19, 3),
    two channels of 512 per group, and the per-channel / rows paths (N < 8, C == 1,
    L == 1, L == 1023). With NNFAST_NORM_NSPLIT=1 (opt-in) the threads share a group, the
    rows in 16 fixed parts (N = 37, 53: parts of uneven size); NNFAST_NORM_NSPLIT=0 (the
    default): one group per thread, the sums in one part."""
    rng = np.random.default_rng(31)
    x = (3.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w, b = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    outs = _bn_nchw_paths(monkeypatch, x, w, b, dy,
                          [("0", "1", 2), ("1", "0", 2), ("1", "0", 1), ("1", "1", 1), ("1", "1", 2),
                           ("1", "1", 1, "0"), ("1", "1", 2, "0"), ("1", "1", 3)])
    for key in (("1", "0"), ("1", "1"), ("1", "1", "0")):
        one, two = key[:2] + (1,) + key[2:], key[:2] + (2,) + key[2:]
        for a, c in zip(outs[one], outs[two]):
            np.testing.assert_array_equal(a, c)  # no thread-count dependence
    for a, c in zip(outs["1", "1", 2], outs["1", "1", 3]):
        np.testing.assert_array_equal(a, c)  # 3 threads over 16 parts: the same parts
    for name, a, c in zip(_BN_NAMES, outs["1", "0", 2], outs["0", "1", 2]):
        if name not in ("y", "dx"):
            np.testing.assert_array_equal(a, c, err_msg=name)  # the old grouped sums: same bits
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for key in (("1", "1", 2), ("1", "1", 2, "0")):
        for name, a, c in zip(_BN_NAMES, outs[key], outs["0", "1", 2]):
            assert np.abs(a - c).max() <= tol * max(1.0, float(np.abs(c).max())), (key, name)
    x64, w64, b64, dy64 = (v.astype(np.float64) for v in (x, w, b, dy))
    f32 = dtype == np.float32
    ax = (0, 2)
    mu, var = x64.mean(ax), x64.var(ax)
    xh = (x64 - mu[None, :, None]) / np.sqrt(var[None, :, None] + 1e-5)
    # dx from the float64 formula: w rstd (dy - mean(dy) - xhat mean(dy xhat))
    ref_dx = w64[None, :, None] / np.sqrt(var[None, :, None] + 1e-5) * (
        dy64 - dy64.mean(ax, keepdims=True) - xh * (dy64 * xh).mean(ax, keepdims=True))
    for key, (y, mean, rstd, _, _, dx, dw, db) in outs.items():
        np.testing.assert_allclose(mean, mu, rtol=1e-12, atol=1e-12, err_msg=str(key))
        np.testing.assert_allclose(rstd, 1 / np.sqrt(var + 1e-5), rtol=1e-11, err_msg=str(key))
        assert_close(y, ref_batch_norm(x64, w64, b64), rtol=1e-5 if f32 else 1e-10, atol=2e-6 if f32 else 1e-12)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-4 if f32 else 1e-9, atol=1e-5 if f32 else 1e-11)
        np.testing.assert_allclose(db, dy64.sum(ax), rtol=1e-5 if f32 else 1e-12, atol=1e-4 if f32 else 1e-11)
        np.testing.assert_allclose(dw, (dy64 * xh).sum(ax), rtol=1e-5 if f32 else 1e-12,
                                   atol=1e-4 if f32 else 1e-11)


def test_batch_norm_nchw_groups_streamed(monkeypatch, isa_level):
    """(N, 64, 49) float32 past 32 MB: the grouped output pass streams y / dx after a
    head per stretch of rows (stretches of 4 * 49 and 1 * 49 floats start at every
    4-byte offset of a line); every path against the per-channel one within rounding,
    the old grouped sums bit for bit."""
    rng = np.random.default_rng(32)
    shape = (2700, 64, 49)
    assert np.prod(shape) * 4 > 32 << 20
    x = (1.0 + rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    w, b = rng.standard_normal(64).astype(np.float32), rng.standard_normal(64).astype(np.float32)
    outs = _bn_nchw_paths(monkeypatch, x, w, b, dy,
                          [("0", "1", 2), ("1", "0", 2), ("1", "1", 2), ("1", "1", 2, "0")])
    ref = outs["0", "1", 2]
    for i in (1, 2, 6, 7):  # mean, rstd, dweight, dbias: the same sums
        np.testing.assert_array_equal(outs["1", "0", 2][i], ref[i])
    for key in (("1", "0", 2), ("1", "1", 2), ("1", "1", 2, "0")):
        for i in range(8):
            a, c = outs[key][i], ref[i]
            assert np.abs(a - c).max() <= 1e-6 * max(1.0, float(np.abs(c).max())), (key, _BN_NAMES[i])


def _bn_under_switch(monkeypatch, var, rng, shape, mean):
    """The batch_norm kernels' outputs on one random float32 input (mean `mean`), with `var` set to
    "0" and to "1": {"0": outputs, "1": outputs}."""
    x = (mean + rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    w, b = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)
    outs = {}
    for mode in ("0", "1"):
        monkeypatch.setenv(var, mode)
        outs[mode] = _bn_nchw_kernels(x, w, b, dy)
    return outs


@pytest.mark.parametrize("shape", [(9, 7, 49), (16, 5, 7), (13, 23, 1), (2700, 64, 49)])
def test_batch_norm_prefetch_switch(monkeypatch, isa_level, shape):
    """NNFAST_NORM_PREFETCH=0 (no software prefetch of strided stretches) gives the same bits;
    the prefetch runs only past 32 MB ((2700, 64, 49) float32)."""
    outs = _bn_under_switch(monkeypatch, "NNFAST_NORM_PREFETCH", np.random.default_rng(34), shape, 2.0)
    for name, a, c in zip(_BN_NAMES, outs["0"], outs["1"]):
        np.testing.assert_array_equal(a, c, err_msg=name)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(37, 1031, 1), (9000, 7, 1), (5, 3, 1), (9, 7, 49), (40, 3, 300)])
def test_batch_norm_reverse_switch(monkeypatch, isa_level, threads, shape):
    """NNFAST_NORM_REVERSE=0 (the float32 output passes' row blocks front to back instead of
    last to first) gives the same bits: (N, C) with several row blocks (37 rows of 1031: blocks
    of 31; 9000 of 7: blocks of 4681) and the grouped (N, C, L) path, 1 and 2 threads."""
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(threads)
    try:
        outs = _bn_under_switch(monkeypatch, "NNFAST_NORM_REVERSE", np.random.default_rng(35), shape, 2.0)
    finally:
        nnfast.set_num_threads(old)
    for name, a, c in zip(_BN_NAMES, outs["0"], outs["1"]):
        np.testing.assert_array_equal(a, c, err_msg=name)


@pytest.mark.parametrize("cols,nsplit", [("0", "1"), ("1", "0"), ("1", "1")])
@pytest.mark.parametrize("n", [8, 19])
def test_batch_norm_nchw_groups_noncontig_gradcheck(monkeypatch, cols, nsplit, n):
    """The grouped paths through the autograd function: float64 gradcheck on
    (n, 3, 5) (n = 19: 16 row parts of one or two rows) and a non-contiguous float32
    input against the float64 formula."""
    monkeypatch.setenv("NNFAST_NORM_NCHW", "1")
    monkeypatch.setenv("NNFAST_NORM_COLS", cols)
    monkeypatch.setenv("NNFAST_NORM_NSPLIT", nsplit)
    rng = np.random.default_rng(33)
    x = leaf(rng.standard_normal((n, 3, 5)))
    w, b = leaf(rng.standard_normal(3)), leaf(rng.standard_normal(3))
    assert gradcheck(lambda t, ww, bb: F.batch_norm(t, None, None, ww, bb, True), (x, w, b))
    x32 = rng.standard_normal((9, 4, 7)).astype(np.float32)
    y = F.batch_norm(nnfast.from_numpy(noncontig(x32)), None, None, training=True)
    assert_close(y, ref_batch_norm(x32.astype(np.float64), None, None), rtol=1e-5, atol=2e-6)


# ---------------------------------------------------------------- float32 output pass: folded shift
@pytest.mark.parametrize("fold", ["1", "0"])
@pytest.mark.parametrize("mean", [3.0, 1e4])
@pytest.mark.parametrize("shape", [(1, 7), (1, 7, 3), (37, 1031), (2001, 7), (9, 3, 1), (9, 5, 7), (9, 3, 49), (8, 2, 512),
                                   (9, 3, 1023)])
def test_batch_norm_fold(monkeypatch, isa_level, fold, mean, shape):
    """float32 batch norm's row / group output pass (chan_affine_rows) with the split mean's
    low part folded into the constant, fma(x - mh, be, ga - ml * be) (NNFAST_NORM_FOLD=0:
    ((x - mh) - ml) * be + ga). Both settings, training (y, dx) and eval (y), contiguous and
    non-contiguous, against float64 formulas on the same float32 inputs; mean 1e4 with std
    1e-2 is the large-mean case (x - mh exact, ml * be ~ 0.05 must not be lost). Shapes: N = 1,
    C past a coefficient chunk (1031), several row blocks, (N, C, 1) rows, the grouped
    L = 7 / 49 / 512 and the per-channel L = 1023 (which the switch does not touch)."""
    monkeypatch.setenv("NNFAST_NORM_FOLD", fold)
    rng = np.random.default_rng(35)
    std = 1e-2 if mean > 100 else 2.0
    x32 = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    C = shape[1]
    w = (1.0 + rng.random(C)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    x64, w64, b64, dy64 = (v.astype(np.float64) for v in (x32, w, b, dy))
    ax = (0,) + tuple(range(2, len(shape)))
    ex = (slice(None),) + (None,) * (len(shape) - 2)  # (C,) -> broadcast over (C, L...)
    mu, var = x64.mean(ax), x64.var(ax)
    s = 1 / np.sqrt(var + 1e-5)
    xh = (x64 - mu[ex]) * s[ex]
    ref_dx = (w64 * s)[ex] * (dy64 - dy64.mean(ax, keepdims=True) - xh * (dy64 * xh).mean(ax, keepdims=True))
    # forward relative to the output's scale; dx to its own (large mean: 1e-4 / 1e-3 as in test_large_mean_float32)
    ytol, dtol = (1e-4, 1e-3) if mean > 100 else (4e-6, 2e-5)
    rm, rv = mu.astype(np.float32), (var * 1.5).astype(np.float32)
    want_eval = ref_batch_norm(x64, w64, b64, mean=rm.astype(np.float64), var=rv.astype(np.float64))
    for xin in (x32, noncontig(x32)):
        if x32.size > C:  # training needs more than one value per channel; N = 1, L = 1: eval only
            xt, wt, bt = leaf(xin), leaf(w), leaf(b)
            y = F.batch_norm(xt, None, None, wt, bt, True)
            y.backward(dy)
            want = ref_batch_norm(x64, w64, b64)
            assert np.abs(y._data - want).max() <= ytol * np.abs(want).max()
            assert np.abs(xt.grad._data - ref_dx).max() <= dtol * np.abs(ref_dx).max()
        ye = F.batch_norm(nnfast.from_numpy(xin), nnfast.from_numpy(rm), nnfast.from_numpy(rv), nnfast.from_numpy(w),
                          nnfast.from_numpy(b), False)
        assert np.abs(ye._data - want_eval).max() <= ytol * np.abs(want_eval).max()


def test_batch_norm_fold_agrees(monkeypatch):
    """The folded and unfolded output passes agree to float rounding (one float ulp of the
    output's scale), on the rows path and a grouped path, forward and backward."""
    rng = np.random.default_rng(36)
    for shape in ((301, 1031, 1), (19, 6, 49)):
        outs = _bn_under_switch(monkeypatch, "NNFAST_NORM_FOLD", rng, shape, 3.0)
        for name, a, c in zip(_BN_NAMES, outs["0"], outs["1"]):
            if name in ("y", "dx"):
                assert np.abs(a - c).max() <= 4e-7 * max(1.0, float(np.abs(c).max())), name
            else:
                np.testing.assert_array_equal(a, c, err_msg=name)  # the statistics do not change
