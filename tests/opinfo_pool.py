"""Op-registry entries of the pooling / resampling family (imported by tests/opinfo.py).

float64 references written from PyTorch's definitions with plain loops (independent of the
kernels' code); samples with sizes 1, 7, odd planes (5x7), padding, dilation, ceil_mode.
Inputs are permutations (distinct values, far apart) so max pooling has no near-ties for
gradcheck's finite differences.
"""
from __future__ import annotations

import math

import numpy as np

import nnfast
import nnfast.nn.functional as F
from opinfo import F32, F64, _DISPATCH_ALIAS, ErrorInput, OpInfo, Sample, register

# 1-d ops run the 2-d kernels (H = 1).
_DISPATCH_ALIAS.update({"max_pool1d": "max_pool2d", "avg_pool1d": "avg_pool2d",
                        "adaptive_avg_pool1d": "adaptive_avg_pool2d", "adaptive_max_pool1d": "adaptive_max_pool2d"})

TOL = {F32: (2e-6, 2e-6), F64: (1e-12, 1e-12)}


# ------------------------------------------------------------------------------------ references
def pool_out(n, k, s, p, d, ceil):
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool_ref(x, k, s, p, d, ceil):
    """x (..., H, W); k, s, p, d (h, w) pairs. Padding is -inf; first maximum wins."""
    H, W = x.shape[-2:]
    OH, OW = pool_out(H, k[0], s[0], p[0], d[0], ceil), pool_out(W, k[1], s[1], p[1], d[1], ceil)
    y = np.empty(x.shape[:-2] + (OH, OW))
    idx = np.empty(x.shape[:-2] + (OH, OW), np.int64)
    for oh in range(OH):
        for ow in range(OW):
            best = np.full(x.shape[:-2], -np.inf)
            bi = np.full(x.shape[:-2], -1, np.int64)
            for i in range(k[0]):
                h = oh * s[0] - p[0] + i * d[0]
                if not 0 <= h < H:
                    continue
                for j in range(k[1]):
                    w = ow * s[1] - p[1] + j * d[1]
                    if not 0 <= w < W:
                        continue
                    v = x[..., h, w]
                    take = (bi < 0) | (v > best)
                    best = np.where(take, v, best)
                    bi = np.where(take, h * W + w, bi)
            y[..., oh, ow], idx[..., oh, ow] = best, bi
    return y, idx


def avg_pool_ref(x, k, s, p, ceil, count_include_pad=True, divisor=None):
    H, W = x.shape[-2:]
    OH, OW = pool_out(H, k[0], s[0], p[0], 1, ceil), pool_out(W, k[1], s[1], p[1], 1, ceil)
    y = np.empty(x.shape[:-2] + (OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            padded = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            n = divisor or (padded if count_include_pad else (h1 - h0) * (w1 - w0))
            y[..., oh, ow] = x[..., h0:h1, w0:w1].sum(axis=(-2, -1)) / n
    return y


def adaptive_ref(x, out, reduce):
    H, W = x.shape[-2:]
    OH, OW = out
    y = np.empty(x.shape[:-2] + (OH, OW))
    for i in range(OH):
        h0, h1 = (i * H) // OH, -(-((i + 1) * H) // OH)
        for j in range(OW):
            w0, w1 = (j * W) // OW, -(-((j + 1) * W) // OW)
            y[..., i, j] = reduce(x[..., h0:h1, w0:w1], axis=(-2, -1))
    return y


def nearest_index(n_out, n_in, scale, exact):
    """PyTorch's float32 source index (nearest / nearest-exact)."""
    r = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out)
    if exact:
        src = np.floor(((dst + 0.5) * np.float64(r)).astype(np.float32))
    elif n_out == n_in:
        src = dst
    elif n_out == 2 * n_in:
        src = dst // 2
    else:
        src = np.floor(dst.astype(np.float32) * r)
    return np.minimum(src.astype(np.int64), n_in - 1)


def linear_weights(n_out, n_in, scale, align):
    """(n_out, n_in) matrix of the linear interpolation taps (float64)."""
    if align:
        r = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = r * np.arange(n_out)
    else:
        r = 1.0 / scale if scale else n_in / n_out
        src = np.maximum(r * (np.arange(n_out) + 0.5) - 0.5, 0.0)
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    M = np.zeros((n_out, n_in))
    M[np.arange(n_out), i0] += 1 - lam
    M[np.arange(n_out), i1] += lam
    return M


def interpolate_ref(x, size, scales, mode, align):
    """x (N, C, *spatial); size the output spatial sizes; scales the user's factors (0: none)."""
    y = x
    for ax, (n_out, sc) in enumerate(zip(size, scales)):
        axis = 2 + ax
        n_in = x.shape[axis]
        if mode in ("nearest", "nearest-exact"):
            y = np.take(y, nearest_index(n_out, n_in, sc, mode == "nearest-exact"), axis=axis)
        else:
            y = np.moveaxis(np.tensordot(linear_weights(n_out, n_in, sc, align), np.moveaxis(y, axis, 0), axes=1),
                            0, axis)
    return y


def pixel_shuffle_ref(x, r):
    *lead, C, H, W = x.shape
    c = C // (r * r)
    y = x.reshape(*lead, c, r, r, H, W)
    y = np.moveaxis(y, (-4, -3), (-3, -1))  # (..., c, H, r, W, r)
    return y.reshape(*lead, c, H * r, W * r)


def pixel_unshuffle_ref(x, r):
    *lead, C, H, W = x.shape
    y = x.reshape(*lead, C, H // r, r, W // r, r)
    y = np.moveaxis(y, (-3, -1), (-4, -3))  # (..., C, r, r, H/r, W/r)
    return y.reshape(*lead, C * r * r, H // r, W // r)


# ------------------------------------------------------------------------------------ samples
def distinct(rng, shape):
    """Values -2..2 at distinct spacing 4 / n (a permutation), so windows have no near-ties."""
    n = math.prod(shape)
    return (rng.permutation(n) * (4.0 / max(n, 1)) - 2.0).reshape(shape)


def _samples(shapes, grad_limit=160):
    def samples(purpose):
        out = [Sample("x".join(map(str, s)), {"input": distinct(np.random.default_rng(700 + i), s)})
               for i, s in enumerate(shapes)]
        if purpose == "gradcheck":  # the small ones; at least the smallest (every variant is gradchecked)
            return [o for o in out if o.arrays["input"].size <= grad_limit] or \
                [min(out, key=lambda o: o.arrays["input"].size)]
        if purpose in ("noncontig", "f32"):
            return [o for o in out if o.arrays["input"].size > 1][-2:]
        return out
    return samples


def _bad(tag, thunk_of):
    """Bad dtypes plus the op-specific thunks: each must raise "[tag] expected ..."."""
    errs = [ErrorInput(f"dtype-{np.dtype(dt).name}", (lambda d: lambda: thunk_of(nnfast.from_numpy(
        np.ones((1, 2, 6, 6) if "1d" not in tag else (1, 2, 6), d))))(dt), TypeError, rf"^\[{tag}\] expected")
        for dt in (np.float16, np.int64)]
    return errs


def _err(tag, eid, thunk, exc=ValueError):
    return ErrorInput(eid, thunk, exc, rf"^\[{tag}\] expected")


def _t(*shape):
    return nnfast.from_numpy(np.ones(shape))


POOL2D_SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (1, 7, 7, 7), (2, 5, 9, 11), (3, 4, 16, 16)]
POOL1D_SHAPES = [(1, 1, 1), (2, 3, 7), (1, 5, 13), (4, 7, 64)]


def _pair(v):
    return (v, v) if isinstance(v, (int, float)) else tuple(v)


# ------------------------------------------------------------------------------------ max pooling
def _reg_max2d(name, shapes, k, s=None, p=0, d=1, ceil=False, errors=()):
    kk, ss, pp, dd = _pair(k), _pair(s if s is not None else k), _pair(p), _pair(d)

    def call(input):
        y, i = F.max_pool2d(input, k, s, p, d, ceil_mode=ceil, return_indices=True)
        want = max_pool_ref(np.asarray(input.detach().to("cpu").numpy(), np.float64), kk, ss, pp, dd, ceil)[1]
        assert np.array_equal(i.to("cpu").numpy(), want), "max_pool2d indices differ from the reference"
        return y

    register(OpInfo(name, "pool", call, lambda input: max_pool_ref(input, kk, ss, pp, dd, ceil)[0],
                    _samples(shapes), fwd_tol=TOL, nc_tol=None, error_inputs=list(errors)))


_reg_max2d("max_pool2d_2x2", POOL2D_SHAPES[1:], 2)
_reg_max2d("max_pool2d_3x3s2_pad_ceil", POOL2D_SHAPES[1:], 3, 2, 1, ceil=True)
_reg_max2d("max_pool2d_dilated", POOL2D_SHAPES[2:], (3, 2), (2, 1), (1, 0), (2, 3))
max_errors = _bad("max_pool2d", lambda x: F.max_pool2d(x, 2)) + [
    _err("max_pool2d", "rank-2", lambda: F.max_pool2d(_t(4, 4), 2)),
    _err("max_pool2d", "rank-5", lambda: F.max_pool2d(_t(1, 1, 1, 4, 4), 2)),
    _err("max_pool2d", "kernel-larger-than-input", lambda: F.max_pool2d(_t(1, 1, 2, 2), 3)),
    _err("max_pool2d", "padding-over-half-kernel", lambda: F.max_pool2d(_t(1, 1, 8, 8), 3, padding=2)),
    _err("max_pool2d", "zero-stride", lambda: F.max_pool2d(_t(1, 1, 8, 8), 2, 0)),
    _err("max_pool2d", "zero-kernel", lambda: F.max_pool2d(_t(1, 1, 8, 8), 0)),
    _err("max_pool2d", "empty-plane", lambda: F.max_pool2d(_t(1, 1, 0, 8), 1)),
    _err("max_pool2d", "three-kernel-sizes", lambda: F.max_pool2d(_t(1, 1, 8, 8), (2, 2, 2))),
    _err("max_pool2d", "kernel-type", lambda: F.max_pool2d(_t(1, 1, 8, 8), "2"), TypeError),
    _err("max_pool2d", "not-a-tensor", lambda: F.max_pool2d(np.ones((1, 1, 4, 4)), 2), TypeError),
]
_reg_max2d("max_pool2d", POOL2D_SHAPES, 1, errors=max_errors)


def _max1d_call(k, s, p, ceil):
    def call(input):
        y, i = F.max_pool1d(input, k, s, p, ceil_mode=ceil, return_indices=True)
        ref = max_pool_ref(np.asarray(input.detach().to("cpu").numpy(), np.float64)[..., None, :], (1, k),
                           (1, s or k), (0, p), (1, 1), ceil)[1][..., 0, :]
        assert np.array_equal(i.to("cpu").numpy(), ref)
        return y
    return call


register(OpInfo("max_pool1d", "pool", _max1d_call(3, 2, 1, True),
                lambda input: max_pool_ref(input[..., None, :], (1, 3), (1, 2), (0, 1), (1, 1), True)[0][..., 0, :],
                _samples(POOL1D_SHAPES[1:]), fwd_tol=TOL, nc_tol=None,
                error_inputs=_bad("max_pool1d", lambda x: F.max_pool1d(x, 2)) + [
                    _err("max_pool1d", "rank-4", lambda: F.max_pool1d(_t(1, 1, 4, 4), 2)),
                    _err("max_pool1d", "kernel-larger-than-input", lambda: F.max_pool1d(_t(1, 1, 2), 3))]))
register(OpInfo("max_pool1d_unbatched", "pool", lambda input: F.max_pool1d(input, 2),
                lambda input: max_pool_ref(input[..., None, :], (1, 2), (1, 2), (0, 0), (1, 1), False)[0][..., 0, :],
                _samples([(3, 8), (1, 5)]), fwd_tol=TOL, nc_tol=None))
_DISPATCH_ALIAS["max_pool1d_unbatched"] = "max_pool2d"


# ------------------------------------------------------------------------------------ average pooling
def _reg_avg2d(name, shapes, k, s=None, p=0, ceil=False, cip=True, div=None, errors=()):
    kk, ss, pp = _pair(k), _pair(s if s is not None else k), _pair(p)
    register(OpInfo(name, "pool", lambda input: F.avg_pool2d(input, k, s, p, ceil, cip, div),
                    lambda input: avg_pool_ref(input, kk, ss, pp, ceil, cip, div), _samples(shapes),
                    fwd_tol=TOL, nc_tol=None, error_inputs=list(errors)))


_reg_avg2d("avg_pool2d", POOL2D_SHAPES[1:], 2, errors=_bad("avg_pool2d", lambda x: F.avg_pool2d(x, 2)) + [
    _err("avg_pool2d", "rank-2", lambda: F.avg_pool2d(_t(4, 4), 2)),
    _err("avg_pool2d", "kernel-larger-than-input", lambda: F.avg_pool2d(_t(1, 1, 2, 2), 3)),
    _err("avg_pool2d", "padding-over-half-kernel", lambda: F.avg_pool2d(_t(1, 1, 8, 8), 3, padding=2)),
    _err("avg_pool2d", "zero-divisor", lambda: F.avg_pool2d(_t(1, 1, 8, 8), 2, divisor_override=0))])
_reg_avg2d("avg_pool2d_3x3s2_pad_ceil", POOL2D_SHAPES[1:], 3, 2, 1, ceil=True)
_reg_avg2d("avg_pool2d_exclude_pad", POOL2D_SHAPES[1:], 3, 2, 1, ceil=True, cip=False)
_reg_avg2d("avg_pool2d_divisor", POOL2D_SHAPES[2:], (3, 2), (1, 2), (1, 1), div=5)
_reg_avg2d("avg_pool2d_k1", POOL2D_SHAPES[:2], 1)
register(OpInfo("avg_pool1d", "pool", lambda input: F.avg_pool1d(input, 3, 2, 1, True, False),
                lambda input: avg_pool_ref(input[..., None, :], (1, 3), (1, 2), (0, 1), True, False)[..., 0, :],
                _samples(POOL1D_SHAPES[1:]), fwd_tol=TOL, nc_tol=None,
                error_inputs=_bad("avg_pool1d", lambda x: F.avg_pool1d(x, 2)) + [
                    _err("avg_pool1d", "rank-4", lambda: F.avg_pool1d(_t(1, 1, 4, 4), 2))]))


# ------------------------------------------------------------------------------------ adaptive pooling
def _reg_adaptive(name, fn, shapes, out, reduce, nsp=2, errors=()):
    def ref(input):
        x = input if nsp == 2 else input[..., None, :]
        o = out if nsp == 2 else (1, out)
        o = tuple(x.shape[-2 + i] if v is None else v for i, v in enumerate(_pair(o)))
        y = adaptive_ref(x, o, reduce)
        return y if nsp == 2 else y[..., 0, :]

    register(OpInfo(name, "pool", lambda input: fn(input, out), ref, _samples(shapes), fwd_tol=TOL, nc_tol=None,
                    error_inputs=list(errors)))


def _adaptive_max2d_checked(out):
    def fn(input, _out):
        y, i = F.adaptive_max_pool2d(input, out, return_indices=True)
        x = np.asarray(input.detach().to("cpu").numpy(), np.float64)
        o = tuple(x.shape[-2 + j] if v is None else v for j, v in enumerate(_pair(out)))
        flat = x.reshape(x.shape[:-2] + (-1,))
        got = np.take_along_axis(flat, i.to("cpu").numpy().reshape(flat.shape[:-1] + (-1,)), -1)
        assert np.array_equal(got.reshape(y.shape), adaptive_ref(x, o, np.max)), "indices do not pick the max"
        return y
    return fn


_reg_adaptive("adaptive_avg_pool2d", F.adaptive_avg_pool2d, POOL2D_SHAPES, (3, 4), np.mean,
              errors=_bad("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 2)) + [
                  _err("adaptive_avg_pool2d", "rank-2", lambda: F.adaptive_avg_pool2d(_t(4, 4), 2)),
                  _err("adaptive_avg_pool2d", "zero-output", lambda: F.adaptive_avg_pool2d(_t(1, 1, 4, 4), 0)),
                  _err("adaptive_avg_pool2d", "three-sizes", lambda: F.adaptive_avg_pool2d(_t(1, 1, 4, 4), (1, 2, 3)))])
_reg_adaptive("adaptive_avg_pool2d_to_1x1", F.adaptive_avg_pool2d, POOL2D_SHAPES, 1, np.mean)
_reg_adaptive("adaptive_avg_pool2d_none", F.adaptive_avg_pool2d, POOL2D_SHAPES[1:], (None, 5), np.mean)
_reg_adaptive("adaptive_max_pool2d", _adaptive_max2d_checked((3, 4)), POOL2D_SHAPES, (3, 4), np.max,
              errors=_bad("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, 2)) + [
                  _err("adaptive_max_pool2d", "rank-5", lambda: F.adaptive_max_pool2d(_t(1, 1, 1, 4, 4), 2))])
_reg_adaptive("adaptive_max_pool2d_upsampling", _adaptive_max2d_checked((6, 9)), POOL2D_SHAPES[1:3], (6, 9), np.max)
_reg_adaptive("adaptive_avg_pool1d", F.adaptive_avg_pool1d, POOL1D_SHAPES, 4, np.mean, nsp=1)
_reg_adaptive("adaptive_max_pool1d", F.adaptive_max_pool1d, POOL1D_SHAPES, 5, np.max, nsp=1)


# ------------------------------------------------------------------------------------ interpolation
def _reg_interp(name, shapes, mode, size=None, scale=None, align=None, recompute=None, errors=()):
    def ref(input):
        nsp = input.ndim - 2
        sf = None if scale is None else (_pair(scale) if nsp == 2 else (scale,))
        if size is not None:
            out = _pair(size) if nsp == 2 else (size,)
        else:
            out = tuple(int(math.floor(n * f)) for n, f in zip(input.shape[2:], sf))
        scales = (0,) * nsp if size is not None or recompute else sf
        return interpolate_ref(input, out, scales, mode, bool(align))

    register(OpInfo(name, "pool",
                    lambda input: F.interpolate(input, size, scale, mode, align, recompute_scale_factor=recompute),
                    ref, _samples(shapes), fwd_tol={F32: (2e-5, 2e-5), F64: (1e-12, 1e-12)}, nc_tol=None,
                    error_inputs=list(errors)))


IMG = [(1, 1, 1, 1), (2, 3, 5, 7), (1, 2, 7, 4), (2, 4, 16, 16)]
_reg_interp("interpolate", IMG, "nearest", scale=2,
            errors=_bad("interpolate", lambda x: F.interpolate(x, scale_factor=2)) + [
                _err("interpolate", "bad-mode", lambda: F.interpolate(_t(1, 1, 4, 4), scale_factor=2, mode="cubic")),
                _err("interpolate", "bilinear-on-3d", lambda: F.interpolate(_t(1, 1, 4), scale_factor=2,
                                                                            mode="bilinear")),
                _err("interpolate", "both-size-and-scale", lambda: F.interpolate(_t(1, 1, 4, 4), 3, 2.0)),
                _err("interpolate", "neither", lambda: F.interpolate(_t(1, 1, 4, 4))),
                _err("interpolate", "align-with-nearest", lambda: F.interpolate(_t(1, 1, 4, 4), scale_factor=2,
                                                                                align_corners=True)),
                _err("interpolate", "output-size-zero", lambda: F.interpolate(_t(1, 1, 4, 4), scale_factor=0.1)),
                _err("interpolate", "rank-5", lambda: F.interpolate(_t(1, 1, 2, 2, 2), scale_factor=2))])
_reg_interp("interpolate_nearest_size", IMG, "nearest", size=(5, 3))
_reg_interp("interpolate_nearest_scale_1_7", IMG, "nearest", scale=1.7)
_reg_interp("interpolate_nearest_exact", IMG[1:], "nearest-exact", scale=(0.6, 2.5))
_reg_interp("interpolate_nearest_1d", [(1, 1, 1), (2, 3, 7), (1, 2, 13)], "nearest", scale=2.5)
_reg_interp("interpolate_bilinear", IMG, "bilinear", scale=2)
_reg_interp("interpolate_bilinear_align", IMG, "bilinear", scale=2, align=True)
_reg_interp("interpolate_bilinear_size", IMG, "bilinear", size=(4, 9))
_reg_interp("interpolate_bilinear_down", IMG[1:], "bilinear", scale=0.6, recompute=True)
_reg_interp("interpolate_bilinear_align_size1", IMG, "bilinear", size=(1, 6), align=True)
_reg_interp("interpolate_linear", [(1, 1, 1), (2, 3, 7), (1, 2, 13)], "linear", scale=2.5)
_reg_interp("interpolate_linear_align", [(1, 1, 1), (2, 3, 7), (1, 2, 13)], "linear", size=5, align=True)


# ------------------------------------------------------------------------------------ pixel shuffle
register(OpInfo("pixel_shuffle", "pool", lambda input: F.pixel_shuffle(input, 2),
                lambda input: pixel_shuffle_ref(input, 2),
                _samples([(1, 4, 1, 1), (2, 12, 5, 7), (3, 4, 3, 3), (2, 8, 16, 9)]), fwd_tol=TOL, nc_tol=None,
                error_inputs=_bad("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2)) + [
                    _err("pixel_shuffle", "channels", lambda: F.pixel_shuffle(_t(1, 3, 2, 2), 2)),
                    _err("pixel_shuffle", "rank-2", lambda: F.pixel_shuffle(_t(4, 4), 2)),
                    _err("pixel_shuffle", "factor-0", lambda: F.pixel_shuffle(_t(1, 4, 2, 2), 0))]))
register(OpInfo("pixel_shuffle_r3_unbatched", "pool", lambda input: F.pixel_shuffle(input, 3),
                lambda input: pixel_shuffle_ref(input, 3), _samples([(9, 1, 1), (18, 5, 3)]), fwd_tol=TOL,
                nc_tol=None))
register(OpInfo("pixel_unshuffle", "pool", lambda input: F.pixel_unshuffle(input, 2),
                lambda input: pixel_unshuffle_ref(input, 2),
                _samples([(1, 1, 2, 2), (2, 3, 10, 14), (1, 5, 6, 4), (2, 2, 32, 18)]), fwd_tol=TOL, nc_tol=None,
                error_inputs=_bad("pixel_unshuffle", lambda x: F.pixel_unshuffle(x, 4)) + [
                    _err("pixel_unshuffle", "not-divisible", lambda: F.pixel_unshuffle(_t(1, 1, 5, 4), 2))]))
_DISPATCH_ALIAS["pixel_shuffle_r3_unbatched"] = "pixel_shuffle"


# ------------------------------------------------------------------------------------ max unpooling
def _unpool_samples(shapes):
    def samples(purpose):
        out = []
        for n, s in enumerate(shapes):
            r = np.random.default_rng(900 + n)
            plane_in, plane_out = s[-2] * s[-1], 4 * s[-2] * s[-1]
            lead = s[:-2]
            idx = np.stack([r.permutation(plane_out)[:plane_in] for _ in range(math.prod(lead))]).reshape(s)
            out.append(Sample("x".join(map(str, s)), {"input": r.standard_normal(s), "indices": idx.astype(np.int64)}))
        if purpose == "gradcheck":
            return out[:3]
        return out if purpose == "forward" else out[1:3]
    return samples


def unpool_ref(input, indices):
    H, W = input.shape[-2:]
    lead = input.shape[:-2]
    y = np.zeros((math.prod(lead), 4 * H * W))
    for p, (xv, iv) in enumerate(zip(input.reshape(-1, H * W), indices.reshape(-1, H * W))):
        y[p, iv] = xv
    return y.reshape(lead + (2 * H, 2 * W))


register(OpInfo("max_unpool2d", "pool", lambda input, indices: F.max_unpool2d(input, indices, 2), unpool_ref,
                _unpool_samples([(1, 1, 1, 1), (2, 3, 5, 7), (3, 4, 3), (2, 4, 16, 9)]), fwd_tol=TOL, nc_tol=None,
                error_inputs=[
                    _err("max_unpool2d", "index-out-of-range", lambda: F.max_unpool2d(
                        _t(1, 1, 2, 2), nnfast.from_numpy(np.full((1, 1, 2, 2), 16, np.int64)), 2)),
                    _err("max_unpool2d", "bad-output-size", lambda: F.max_unpool2d(
                        _t(1, 1, 2, 2), nnfast.from_numpy(np.zeros((1, 1, 2, 2), np.int64)), 2, output_size=(9, 9))),
                    _err("max_unpool2d", "indices-dtype", lambda: F.max_unpool2d(
                        _t(1, 1, 2, 2), nnfast.from_numpy(np.zeros((1, 1, 2, 2), np.int32)), 2), TypeError),
                    _err("max_unpool2d", "indices-shape", lambda: F.max_unpool2d(
                        _t(1, 1, 2, 2), nnfast.from_numpy(np.zeros((1, 1, 2, 3), np.int64)), 2))]))
