"""Registry entries of the attention family: ``scaled_dot_product_attention``.

The float64 reference is the composite formula (matmul, mask, softmax, matmul) in NumPy; a query
row with no key taking part gives 0, as PyTorch's CPU kernel. Samples cover L, S in {1, 7, 13},
E in {1, 5, 8}, batch dims 0 / 1 / 2, causal with L != S, bool and float masks (the float mask
differentiated), grouped-query heads, an explicit scale, a (B, T, H, D) view transposed to
(B, H, T, D), and shapes over the kernels' row tiles.
"""
from __future__ import annotations

import math

import numpy as np

import nnfast
import nnfast.nn.functional as F
from opinfo import F32, F64, ErrorInput, OpInfo, Sample, register

_OP = "scaled_dot_product_attention"


def sdpa_ref(query, key, value, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """float64 softmax(q k^T scale + mask) v; fully masked rows give 0."""
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        key = np.repeat(key, query.shape[-3] // key.shape[-3], axis=-3)
        value = np.repeat(value, query.shape[-3] // value.shape[-3], axis=-3)
    s = (1.0 / math.sqrt(E) if E else 1.0) if scale is None else scale  # E = 0: every score is 0
    sc = np.matmul(query, np.swapaxes(key, -1, -2)) * s
    if is_causal:
        sc = np.where(np.tril(np.ones((L, S), dtype=bool)), sc, -np.inf)
    if attn_mask is not None:
        sc = np.where(attn_mask, sc, -np.inf) if attn_mask.dtype == bool else sc + attn_mask
    m = sc.max(axis=-1, keepdims=True) if S else np.zeros(sc.shape[:-1] + (1,))
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(sc - m)
    den = p.sum(axis=-1, keepdims=True)
    p = np.where(den > 0, p / np.where(den > 0, den, 1.0), 0.0)
    return np.matmul(p, value)


def _qkv(r, batch, L, S, E, Ev=None, kv_batch=None):
    kvb = batch if kv_batch is None else kv_batch
    return {"query": r.standard_normal(batch + (L, E)), "key": r.standard_normal(kvb + (S, E)),
            "value": r.standard_normal(kvb + (S, E if Ev is None else Ev))}


def _sample(sid, seed, batch, L, S, E, Ev=None, kv_batch=None, mask=None, grad_mask=False, **kw):
    """A sample; ``kw`` (is_causal, scale, enable_gqa) goes to both the call and the reference."""
    r = np.random.default_rng(seed)
    arrays = _qkv(r, batch, L, S, E, Ev, kv_batch)
    grads = ("query", "key", "value")
    if mask == "bool":
        m = r.random((L, S)) < 0.7
        m[:, 0] = True
        arrays["attn_mask"] = m
    elif mask == "bool_rowless":  # row 1 has no key taking part: output 0 there
        m = r.random(batch[-1:] + (L, S)) < 0.6
        m[..., 1, :] = False
        arrays["attn_mask"] = m
    elif mask == "float":
        arrays["attn_mask"] = r.standard_normal(batch[:1] + (1, L, S) if len(batch) == 2 else (L, S))
        if grad_mask:
            grads = grads + ("attn_mask",)
    call = lambda query, key, value, attn_mask=None: F.scaled_dot_product_attention(  # noqa: E731
        query, key, value, attn_mask=attn_mask, **kw)
    ref = lambda query, key, value, attn_mask=None: sdpa_ref(query, key, value, attn_mask, **kw)  # noqa: E731
    return Sample(sid, arrays, grads, call, ref)


def _bthd_call(query, key, value):
    """q / k / v given as (B, T, H, D) and transposed to (B, H, T, D): strided, non-contiguous views."""
    return F.scaled_dot_product_attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                          is_causal=True)


def _bthd_ref(query, key, value):
    t = lambda a: np.swapaxes(a, 1, 2)  # noqa: E731
    return sdpa_ref(t(query), t(key), t(value), is_causal=True)


def _cases(gc):
    """The sample list; ``gc``: the gradcheck sizes (smaller batches, the numeric Jacobian is costly)."""
    b1, b2 = ((1,), (1, 2)) if gc else ((2,), (2, 3))
    small = []
    for i, (L, S, E) in enumerate([(1, 1, 1), (1, 7, 5), (1, 13, 8), (7, 1, 8), (7, 7, 1), (7, 13, 5),
                                   (13, 1, 5), (13, 7, 8), (13, 13, 1)]):
        small.append(_sample(f"L{L}S{S}E{E}", 10 + i, b1, L, S, E, Ev=3 if i % 2 else None))
    r = np.random.default_rng(40)
    T = 5 if gc else 7
    cases = [
        _sample("2d", 30, (), 7, 13, 5),
        _sample("4d", 31, b2, 7, 5, 8, Ev=5),
        _sample("bcast-kv", 32, b2, 7, 5, 8, kv_batch=(1,) + b2[1:]),
        _sample("causal-L7S13", 33, b1, 7, 13, 5, is_causal=True),
        _sample("causal-L13S7", 34, b1, 13, 7, 5, is_causal=True),
        _sample("bool-mask", 35, b2, 13, 7, 5, mask="bool"),
        _sample("bool-mask-empty-row", 36, b2, 7, 13, 5, mask="bool_rowless"),
        _sample("float-mask", 37, b2, 7, 13, 5, mask="float", grad_mask=True),
        _sample("gqa", 38, b2[:1] + (4,), 7, 13, 5, kv_batch=b2[:1] + (2,), enable_gqa=True),
        _sample("scale", 39, b1, 7, 13, 5, scale=0.3),
        Sample("bthd-view", {"query": r.standard_normal((1, T, 3, 5)), "key": r.standard_normal((1, T + 2, 3, 5)),
                             "value": r.standard_normal((1, T + 2, 3, 4))},
               ("query", "key", "value"), _bthd_call, _bthd_ref),
    ]
    # over the CPU kernel's 128-row tiles (and the CUDA kernels' 64-row blocks)
    tiles = [_sample("tiles-causal-L133S131", 50, (1,), 133, 131, 1, is_causal=True),
             _sample("tiles-mask-L3S260", 51, (1, 1), 3, 260, 1, mask="float")]
    return small, cases, tiles


def _samples(purpose):
    small, cases, tiles = _cases(purpose == "gradcheck")
    if purpose == "forward":
        return small + cases + tiles + [_sample("tiles-T130", 52, (2, 3), 130, 130, 64, is_causal=True)]
    if purpose == "gradcheck":
        return small[::2] + small[5:6] + cases + tiles
    if purpose == "noncontig":
        return cases[1:2] + cases[3:4] + cases[5:6] + cases[7:9] + tiles[:1]
    return cases[3:4] + cases[7:8] + tiles


def _t(shape, dt=np.float64):
    return nnfast.from_numpy(np.ones(shape, dtype=dt))


def _errors():
    sdpa = F.scaled_dot_product_attention
    m = rf"^\[{_OP}\] expected"
    q, k, v = _t((2, 3, 4)), _t((2, 5, 4)), _t((2, 5, 6))
    e = [
        ErrorInput("rank1", lambda: sdpa(_t((4,)), k, v), ValueError, m),
        ErrorInput("E-mismatch", lambda: sdpa(q, _t((2, 5, 3)), v), ValueError, m),
        ErrorInput("S-mismatch", lambda: sdpa(q, k, _t((2, 4, 6))), ValueError, m),
        ErrorInput("batch-mismatch", lambda: sdpa(q, _t((3, 5, 4)), _t((3, 5, 6))), ValueError, m),
        ErrorInput("mask-shape", lambda: sdpa(q, k, v, attn_mask=_t((3, 4))), ValueError, m),
        ErrorInput("mask-batch", lambda: sdpa(q, k, v, attn_mask=_t((3, 3, 5))), ValueError, m),
        ErrorInput("mask-dtype", lambda: sdpa(q, k, v, attn_mask=_t((3, 5), np.int32)), TypeError, m),
        ErrorInput("mask-and-causal", lambda: sdpa(q, k, v, attn_mask=_t((3, 5)), is_causal=True), ValueError, m),
        ErrorInput("dropout-1", lambda: sdpa(q, k, v, dropout_p=1.0), ValueError, m),
        ErrorInput("dropout-neg", lambda: sdpa(q, k, v, dropout_p=-0.1), ValueError, m),
        ErrorInput("mixed-dtypes", lambda: sdpa(q, _t((2, 5, 4), np.float32), v), TypeError, m),
        ErrorInput("gqa-heads", lambda: sdpa(_t((1, 3, 2, 4)), _t((1, 2, 5, 4)), _t((1, 2, 5, 4)), enable_gqa=True),
                   ValueError, m),
    ]
    for dt in (np.float16, np.int32, np.int64):
        e.append(ErrorInput(f"dtype-{np.dtype(dt).name}", (lambda d: lambda: sdpa(_t((2, 3, 4), d), _t((2, 5, 4), d),
                                                                                  _t((2, 5, 6), d)))(dt),
                            TypeError, m))
    return e


register(OpInfo(
    _OP, "attention", lambda query, key, value, attn_mask=None: F.scaled_dot_product_attention(
        query, key, value, attn_mask=attn_mask),
    lambda query, key, value, attn_mask=None: sdpa_ref(query, key, value, attn_mask), _samples,
    fwd_tol={F32: (2e-5, 2e-5), F64: (1e-12, 1e-12)}, nc_dtypes=(F32, F64), nc_tol=None,
    f32_fwd=(1e-5, 1e-5), f32_grad=(1e-4, 1e-5, True), error_inputs=_errors()))
