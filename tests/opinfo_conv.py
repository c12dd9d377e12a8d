"""Registry entries of the convolution family: conv1d, conv2d, conv_transpose2d.

Each sample carries its own options (stride / padding / dilation / groups / output_padding) in
its ``call`` and ``ref``; the references are float64 NumPy loops over the kernel taps, written
independently of the kernels (no im2col, no GEMM).
"""
from __future__ import annotations

import numpy as np

import nnfast
import nnfast.nn.functional as F
from opinfo import F32, F64, ErrorInput, OpInfo, Sample, register


def _pair(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


# ------------------------------------------------------------------------------------ float64 references
def ref_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d (1 or 2) cross-correlation as PyTorch defines it, tap by tap."""
    nd = x.ndim - 2
    stride, dilation = _pair(stride, nd), _pair(dilation, nd)
    ksize = w.shape[2:]
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(ksize, dilation)]
    else:
        pads = [(p, p) for p in _pair(padding, nd)]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    out_sz = [(xp.shape[2 + i] - dilation[i] * (ksize[i] - 1) - 1) // stride[i] + 1 for i in range(nd)]
    N, OC = x.shape[0], w.shape[0]
    Cg, OCg = w.shape[1], OC // groups
    out = np.zeros((N, OC) + tuple(out_sz))
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * OCg:(g + 1) * OCg]
        for tap in np.ndindex(*ksize):
            sl = tuple(slice(tap[i] * dilation[i], tap[i] * dilation[i] + stride[i] * (out_sz[i] - 1) + 1, stride[i])
                       for i in range(nd))
            patch = xg[(slice(None), slice(None)) + sl]
            out[:, g * OCg:(g + 1) * OCg] += np.einsum("nc...,oc->no...", patch, wg[(slice(None), slice(None)) + tap])
    if b is not None:
        out += b.reshape((1, OC) + (1,) * nd)
    return out


def ref_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Each input pixel scatters its weighted kernel into the output (the transpose of ref_conv)."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (_pair(v, 2) for v in (stride, padding, output_padding, dilation))
    N, C, H, W = x.shape
    Cg, OCg, kh, kw = w.shape[0] // groups, w.shape[1], w.shape[2], w.shape[3]
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((N, OCg * groups, Ho + 2 * ph, Wo + 2 * pw))
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        for ky in range(kh):
            for kx in range(kw):
                full[:, g * OCg:(g + 1) * OCg, ky * dh:ky * dh + sh * (H - 1) + 1:sh,
                     kx * dw:kx * dw + sw * (W - 1) + 1:sw] += np.einsum(
                         "nchw,co->nohw", xg, w[g * Cg:(g + 1) * Cg, :, ky, kx])
    out = full[:, :, ph:ph + Ho, pw:pw + Wo]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


# ------------------------------------------------------------------------------------ samples
# (id, input shape, weight shape, bias, options); every list has batch 1, sizes 1 and 7, odd channels.
CONV2D = [
    ("1x1x1x1-k1", (1, 1, 1, 1), (1, 1, 1, 1), True, {}),
    ("b2-c3-7x5-k3-p1", (2, 3, 7, 5), (5, 3, 3, 3), True, {"padding": 1}),
    ("b1-c3-7x7-k3-s2", (1, 3, 7, 7), (3, 3, 3, 3), False, {"stride": 2}),
    ("b2-c4-6x7-k3x2-s21-p01-d12-g2", (2, 4, 6, 7), (6, 2, 3, 2), True,
     {"stride": (2, 1), "padding": (0, 1), "dilation": (1, 2), "groups": 2}),
    ("b2-c3-5x5-depthwise", (2, 3, 5, 5), (3, 1, 3, 3), True, {"padding": 1, "groups": 3}),
    ("b1-c3-7x6-same-k4", (1, 3, 7, 6), (5, 3, 4, 4), True, {"padding": "same"}),
    ("b2-c3-5x7-valid-d2", (2, 3, 5, 7), (2, 3, 2, 3), True, {"padding": "valid", "dilation": 2}),
    ("b2-c5-7x7-1x1", (2, 5, 7, 7), (3, 5, 1, 1), True, {}),
    ("b1-c4-7x7-1x1-s2-g2", (1, 4, 7, 7), (6, 2, 1, 1), True, {"stride": 2, "groups": 2}),
    ("b1-c2-9x11-k5-s3-p2", (1, 2, 9, 11), (3, 2, 5, 5), True, {"stride": 3, "padding": 2}),
    ("b3-c7-13x11-k3-p1", (3, 7, 13, 11), (9, 7, 3, 3), True, {"padding": 1}),
    ("unbatched-c3-5x6", (3, 5, 6), (4, 3, 3, 3), True, {"padding": 1}),
]
CONV1D = [
    ("1x1x1-k1", (1, 1, 1), (1, 1, 1), True, {}),
    ("b2-c3-7-k3-p1", (2, 3, 7), (5, 3, 3), True, {"padding": 1}),
    ("b1-c4-11-k3-s2-d2-g2", (1, 4, 11), (6, 2, 3), True, {"stride": 2, "dilation": 2, "groups": 2}),
    ("b2-c3-9-same-k4", (2, 3, 9), (3, 3, 4), False, {"padding": "same"}),
    ("b2-c3-7-depthwise", (2, 3, 7), (3, 1, 3), True, {"padding": 1, "groups": 3}),
    ("b1-c5-1023-k5-s3", (1, 5, 1023), (7, 5, 5), True, {"stride": 3}),
    ("unbatched-c3-7", (3, 7), (2, 3, 2), True, {}),
]
CONVT = [
    ("1x1x1x1-k1", (1, 1, 1, 1), (1, 1, 1, 1), True, {}),
    ("b2-c3-4x5-k3-s2-p1-op1", (2, 3, 4, 5), (3, 5, 3, 3), True, {"stride": 2, "padding": 1, "output_padding": 1}),
    ("b1-c4-3x3-k3x2-s21-g2-d12", (1, 4, 3, 3), (4, 3, 3, 2), True,
     {"stride": (2, 1), "groups": 2, "dilation": (1, 2)}),
    ("b2-c3-5x5-k1", (2, 3, 5, 5), (3, 7, 1, 1), False, {}),
    ("b1-c2-7x7-k4-s3-p1-op2", (1, 2, 7, 7), (2, 3, 4, 4), True, {"stride": 3, "padding": 1, "output_padding": 2}),
    ("b2-c3-3x4-depthwise-s2", (2, 3, 3, 4), (3, 1, 3, 3), True, {"stride": 2, "groups": 3}),
    # stride 1: the implicit-GEMM paths (forward as a flipped-kernel convolution, dW's transposed patches)
    ("b2-c3-5x6-k3-p1", (2, 3, 5, 6), (3, 4, 3, 3), True, {"padding": 1}),
    ("b1-c4-4x3-k2x3-d21-g2", (1, 4, 4, 3), (4, 1, 2, 3), False, {"dilation": (2, 1), "groups": 2}),
]
GRADCHECK_IDS = {"1x1x1x1-k1", "1x1x1-k1", "b2-c4-6x7-k3x2-s21-p01-d12-g2", "b2-c3-5x5-depthwise", "b1-c3-7x6-same-k4",
                 "b2-c5-7x7-1x1", "b1-c4-11-k3-s2-d2-g2", "b2-c3-9-same-k4", "b2-c3-4x5-k3-s2-p1-op1",
                 "b1-c4-3x3-k3x2-s21-g2-d12", "unbatched-c3-5x6", "b2-c3-5x6-k3-p1",
                 "b1-c4-4x3-k2x3-d21-g2"}


def _conv_ref(transposed, kw):
    if transposed:
        return lambda input, weight, bias=None: ref_conv_transpose2d(input, weight, bias, **kw)

    def ref(input, weight, bias=None):
        unbatched = input.ndim == weight.ndim - 1
        out = ref_conv(input[None] if unbatched else input, weight, bias, **kw)
        return out[0] if unbatched else out
    return ref


def _samples(fn, table, transposed=False, seed=0):
    def samples(purpose):
        out = []
        for i, (sid, xs, ws, bias, kw) in enumerate(table):
            if purpose == "gradcheck" and sid not in GRADCHECK_IDS:
                continue
            if purpose in ("noncontig", "f32") and i % 2:
                continue
            r = np.random.default_rng(seed + i)
            arrays = {"input": r.standard_normal(xs), "weight": r.standard_normal(ws)}
            if bias:
                arrays["bias"] = r.standard_normal(ws[1] * kw.get("groups", 1) if transposed else ws[0])
            call = (lambda kw: lambda input, weight, bias=None: fn(input, weight, bias, **kw))(kw)
            out.append(Sample(sid, arrays, tuple(arrays), call=call, ref=_conv_ref(transposed, kw)))
        return out
    return samples


def _t(*shape, dtype=F64):
    return nnfast.from_numpy(np.ones(shape, dtype=dtype))


def _errors(op, fn, nd):
    sp = (5,) * nd
    k3 = (3,) * nd
    E = rf"^\[{op}\] expected"
    errs = [
        ErrorInput("input-rank", lambda: fn(_t(5), _t(2, 3, *k3)), ValueError, E),
        ErrorInput("weight-rank", lambda: fn(_t(1, 3, *sp), _t(2, 3)), ValueError, E),
        ErrorInput("bias-shape", lambda: fn(_t(1, 3, *sp), _t(2, 3, *k3), _t(5)), ValueError, E),
        ErrorInput("groups-not-dividing", lambda: fn(_t(1, 3, *sp), _t(2, 1, *k3), groups=2), ValueError, E),
        ErrorInput("stride-zero", lambda: fn(_t(1, 3, *sp), _t(3, 3, *k3), stride=0), ValueError, E),
        ErrorInput("negative-padding", lambda: fn(_t(1, 3, *sp), _t(3, 3, *k3), padding=-1), ValueError, E),
        ErrorInput("dilation-zero", lambda: fn(_t(1, 3, *sp), _t(3, 3, *k3), dilation=0), ValueError, E),
        ErrorInput("dtype-int64", lambda: fn(nnfast.from_numpy(np.ones((1, 3) + sp, np.int64)), _t(3, 3, *k3)),
                   TypeError, E),
        ErrorInput("dtype-mismatch", lambda: fn(_t(1, 3, *sp, dtype=F32), _t(3, 3, *k3)), TypeError, E),
    ]
    if op == "conv_transpose2d":
        errs += [
            ErrorInput("weight-channels", lambda: fn(_t(1, 3, *sp), _t(4, 2, *k3)), ValueError, E),
            ErrorInput("output-padding-too-large", lambda: fn(_t(1, 3, *sp), _t(3, 2, *k3), stride=2,
                                                             output_padding=2), ValueError, E),
            ErrorInput("string-padding", lambda: fn(_t(1, 3, *sp), _t(3, 2, *k3), padding="same"), ValueError, E),
        ]
    else:
        errs += [
            ErrorInput("channel-mismatch", lambda: fn(_t(1, 4, *sp), _t(2, 3, *k3)), ValueError, E),
            ErrorInput("kernel-larger-than-input", lambda: fn(_t(1, 3, *(2,) * nd), _t(2, 3, *k3)), ValueError, E),
            ErrorInput("dilated-kernel-larger", lambda: fn(_t(1, 3, *sp), _t(2, 3, *k3), dilation=3), ValueError,
                       E),
            ErrorInput("same-with-stride", lambda: fn(_t(1, 3, *sp), _t(2, 3, *k3), stride=2, padding="same"),
                       ValueError, E),
            ErrorInput("bad-padding-string", lambda: fn(_t(1, 3, *sp), _t(2, 3, *k3), padding="full"), ValueError,
                       E),
            ErrorInput("out-channels-not-dividing", lambda: fn(_t(1, 4, *sp), _t(3, 2, *k3), groups=2), ValueError,
                       E),
        ]
    return errs


_TOL = dict(fwd_tol={F32: (1e-4, 1e-4), F64: (1e-10, 1e-10)}, f32_fwd=(1e-4, 1e-4), f32_grad=(1e-4, 1e-4, True),
            nc_dtypes=(F32, F64), nc_tol=None)
register(OpInfo("conv2d", "conv", F.conv2d, ref_conv, _samples(F.conv2d, CONV2D),
                error_inputs=_errors("conv2d", F.conv2d, 2), **_TOL))
register(OpInfo("conv1d", "conv", F.conv1d, ref_conv, _samples(F.conv1d, CONV1D, seed=100),
                error_inputs=_errors("conv1d", F.conv1d, 1), **_TOL))
register(OpInfo("conv_transpose2d", "conv", F.conv_transpose2d, ref_conv_transpose2d,
                _samples(F.conv_transpose2d, CONVT, transposed=True, seed=200),
                error_inputs=_errors("conv_transpose2d", F.conv_transpose2d, 2), **_TOL))
