"""scaled_dot_product_attention under nnfast.autocast on the bf16 GEMM (amp/_attention_bf16.py,
the fused kernel's AttnParams::bf16 route in csrc/cpu/attention.cpp).

Reference: float64 attention on the bf16-rounded q / k / v / dO (and float mask). The kernel rounds
each tile product's operands to bf16 -- q, k, v, dO exactly representable already, and the
probability tile P and the score gradient dS -- and accumulates in float32; the softmax, lse,
D = rowsum(dO * O) and dS are float32. With u = 2^-8 (bf16 unit roundoff, RNE gives <= u / 2; the
bounds keep u for the slack of float32 terms and second-order products):

    |O - O_ref|   <= u (P |V|) + u |O_ref|                    (P rounded; O stored as bf16)
    |dV - dV_ref| <= u (P^T |dO|)                             (P rounded)
    |dQ - dQ_ref| <= scale u (|dS_ref| + P Dabs) |K|           (dS rounded; D from O's error)
    |dK - dK_ref| <= scale u (|dS_ref| + P Dabs)^T |Q|
    Dabs = rowsum(|dO| (P |V|)),  plus an absolute float32 term 1e-5 (scale) * those sums,

all elementwise, doubled. Covered: causal / bool mask / float mask / none, T in (1, 7, 33), D in
(8, 64, 80), batch 1, non-contiguous q / k / v, both bf16 levels (portable forced in process; each
ISA in a subprocess), dtypes (bf16 output, gradients in the inputs' dtypes), P really rounded to
bf16 (dV of one query row), dropout against the float32 route with the same mask, GQA, the
NNFAST_AMP_ATTENTION=0 route (bits of the old route, env read at import), torch.autocast where
installed, binding errors. The per-call operand conversion: edge values (ties, subnormals -- rounded at
the portable level, flushed at AVX512-BF16 --, overflow, inf, NaN) through dV = bf16(dO), and at the
AVX512-BF16 level the bits of the route that rounds operands as the GEMM packs each tile
(NNFAST_ATTN_BF16_COPY=0, subprocess). bf16 q / k / v outside autocast take the bf16 route.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
from nnfast import _C
from nnfast.amp import _attention_bf16

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
U = 2.0 ** -8
U_F32 = 1e-5

pytestmark = pytest.mark.skipif(not hasattr(_C, "sdpa_forward_bf16"), reason="no bf16 attention in this build")

from conftest import BF16_LEVELS as LEVELS  # noqa: E402  (the `level` fixture lives there too)



def _rne(a):
    return np.asarray(a, np.float32).astype(BF16).astype(np.float64)


def _np(t):
    return t.detach().float().numpy().astype(np.float64) if t.dtype != nnfast.float32 else \
        t.detach().numpy().astype(np.float64)


def _inputs(B, H, L, S, E, Ev, kind, seed=0, strided=False):
    r = np.random.default_rng(seed)
    if strided:  # (B, T, H, D) memory seen as (B, H, T, D): row stride H * D, non-contiguous heads
        q = r.standard_normal((B, L, H, E)).astype(np.float32).transpose(0, 2, 1, 3)
        k = r.standard_normal((B, S, H, E)).astype(np.float32).transpose(0, 2, 1, 3)
        v = r.standard_normal((B, S, H, Ev)).astype(np.float32).transpose(0, 2, 1, 3)
    else:
        q, k, v = (r.standard_normal((B, H, n, d)).astype(np.float32) for n, d in ((L, E), (S, E), (S, Ev)))
    g = r.standard_normal((B, H, L, Ev)).astype(np.float32)
    mask = None
    if kind == "bool":
        mask = r.random((B, 1, L, S)) < 0.7
        mask[..., 0] = True  # every row sees a key (an empty row is tested by the float32 kernel's tests)
    elif kind == "float":
        mask = (r.standard_normal((1, H, L, S)) * 2).astype(np.float32)
    return q, k, v, g, mask


def _reference(q, k, v, g, mask, causal, scale):
    """float64 attention and its gradients on the bf16-rounded operands, with the bounds' pieces."""
    q, k, v, g = _rne(q), _rne(k), _rne(v), _rne(g)
    s = scale * q @ np.swapaxes(k, -1, -2)
    L, S = s.shape[-2:]
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + _rne(mask)
    if causal:
        s = np.where(np.tril(np.ones((L, S), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = p @ v
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    d = (g * o).sum(-1, keepdims=True)
    ds = p * (dp - d)
    dq = scale * ds @ k
    dk = scale * np.swapaxes(ds, -1, -2) @ q
    pv = p @ np.abs(v)
    dabs = (np.abs(g) * pv).sum(-1, keepdims=True)
    dsb = np.abs(ds) + p * dabs
    bounds = {
        "out": 2 * (U * pv + U * np.abs(o) + U_F32 * pv),
        "dv": 2 * (U + U_F32) * (np.swapaxes(p, -1, -2) @ np.abs(g)),
        "dq": 2 * scale * (U + U_F32) * (dsb @ np.abs(k)) + 1e-6,
        "dk": 2 * scale * (U + U_F32) * (np.swapaxes(dsb, -1, -2) @ np.abs(q)) + 1e-6,
    }
    return {"out": o, "dq": dq, "dk": dk, "dv": dv}, bounds


def _run(q, k, v, g, mask, causal, scale=None, dtype=np.float32, **kw):
    ts = [nnfast.tensor(a.astype(dtype) if dtype != np.float32 else a, requires_grad=True) for a in (q, k, v)]
    m = None if mask is None else nnfast.tensor(mask)
    with nnfast.autocast("cpu"):
        y = F.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=causal, scale=scale, **kw)
    y.backward(nnfast.tensor(g.astype(BF16)))
    return y, ts


def _check(B, H, L, S, E, Ev, kind, strided=False):
    q, k, v, g, mask = _inputs(B, H, L, S, E, Ev, kind, strided=strided)
    causal = kind == "causal"
    y, (tq, tk, tv) = _run(q, k, v, g, mask, causal)
    assert y.dtype == nnfast.bfloat16 and tq.grad.dtype == nnfast.float32
    ref, bnd = _reference(q, k, v, g, mask, causal, 1.0 / math.sqrt(E))
    got = {"out": _np(y), "dq": _np(tq.grad), "dk": _np(tk.grad), "dv": _np(tv.grad)}
    for name in ("out", "dq", "dk", "dv"):
        err = np.abs(got[name] - ref[name])
        assert np.all(np.isfinite(got[name])), name
        assert np.all(err <= bnd[name]), (name, float((err - bnd[name]).max()), float(err.max()))
    return got


KINDS = ["none", "causal", "bool", "float"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [1, 7, 33])
@pytest.mark.parametrize("D", [8, 64, 80])
def test_against_float64(level, kind, T, D):
    _check(1, 2, T, T, D, D, kind)


@pytest.mark.parametrize("kind", ["causal", "float"])
def test_tiles_and_cross_attention(level, kind):
    """Several key / query tiles (128 rows each), L != S, Ev != E."""
    _check(1, 2, 150, 150 if kind == "causal" else 260, 24, 40, kind)


@pytest.mark.parametrize("kind", ["none", "causal"])
def test_non_contiguous(level, kind):
    _check(2, 3, 33, 33, 16, 16, kind, strided=True)


def test_bf16_inputs_keep_their_dtype():
    q, k, v, g, _ = _inputs(1, 2, 7, 9, 8, 8, "none")
    y, ts = _run(q, k, v, g, None, False, dtype=BF16)
    assert y.dtype == nnfast.bfloat16 and all(t.grad.dtype == nnfast.bfloat16 for t in ts)
    ref, bnd = _reference(q, k, v, g, None, False, 1 / math.sqrt(8))
    assert np.all(np.abs(_np(y) - ref["out"]) <= bnd["out"])
    # a bf16 gradient: the float32 one rounded once more
    assert np.all(np.abs(_np(ts[2].grad) - ref["dv"]) <= bnd["dv"] + U * np.abs(ref["dv"]))


def test_probabilities_are_rounded_to_bf16(level):
    """One query row, dO = 1: dV_j = bf16(P_j) exactly -- the bf16 operand, not the float32 P."""
    s = np.array([[[[0.0, 0.3, 1.1, -0.7, 0.05]]]], np.float32)
    q = np.ones((1, 1, 1, 1), np.float32)
    k = s.reshape(1, 1, 5, 1)
    v = np.zeros((1, 1, 5, 1), np.float32)
    g = np.ones((1, 1, 1, 1), np.float32)
    _, (tq, tk, tv) = _run(q, k, v, g, None, False, scale=1.0)
    kk = _rne(k).reshape(-1)
    p = np.exp(kk - kk.max())
    p /= p.sum()
    dv = tv.grad.numpy().reshape(-1).astype(np.float64)
    assert np.allclose(dv, _rne(p), rtol=1e-6, atol=0)
    assert not np.allclose(dv, p, rtol=1e-6, atol=0)  # the float32 route's P


def _route(enabled, fn):
    saved = _attention_bf16.ENABLED[0]
    _attention_bf16.ENABLED[0] = enabled
    try:
        return fn()
    finally:
        _attention_bf16.ENABLED[0] = saved


def test_switch_off_is_the_old_route():
    """ENABLED off: the float32 kernel on the bf16-rounded inputs (bits of F.sdpa outside autocast)."""
    q, k, v, g, mask = _inputs(1, 2, 33, 33, 16, 16, "float")
    y, ts = _route(False, lambda: _run(q, k, v, g, mask, False))
    wide = [nnfast.tensor(_rne(a).astype(np.float32), requires_grad=True) for a in (q, k, v)]
    y0 = F.scaled_dot_product_attention(*wide, attn_mask=nnfast.tensor(_rne(mask).astype(np.float32)))
    assert np.array_equal(y.detach().float().numpy(), y0.detach().numpy().astype(BF16).astype(np.float32))
    y1, _ = _route(True, lambda: _run(q, k, v, g, mask, False))
    assert not np.array_equal(y.detach().float().numpy(), y1.detach().float().numpy())


def test_env_switch_subprocess():
    code = ("import sys; sys.path[:0] = sys.argv[1:]; from nnfast.amp import _attention_bf16 as a; "
            "print(a.ENABLED[0])")
    for val, want in (("0", "False"), ("1", "True")):
        r = subprocess.run([sys.executable, "-c", code] + [p for p in sys.path if p],
                           env=dict(os.environ, NNFAST_AMP_ATTENTION=val), capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == want, r.stderr


def test_dropout_matches_the_float32_route():
    """Same seed, same counter-based mask: the two routes differ by the bf16 rounding of P only."""
    q, k, v, g, _ = _inputs(1, 2, 40, 40, 16, 16, "none")

    def run():
        nnfast.manual_seed(7)
        y, ts = _run(q, k, v, g, None, True, dropout_p=0.3)
        return _np(y), [_np(t.grad) for t in ts]

    (y1, g1), (y0, g0) = _route(True, run), _route(False, run)
    assert np.abs(y1 - y0).max() <= 4 * U * (1 + np.abs(y0).max()) / 0.7
    for a, b in zip(g1, g0):
        assert np.abs(a - b).max() <= 8 * U * (1 + np.abs(b).max()) / 0.7
    assert not np.array_equal(y1, y0)


def test_gqa_and_broadcast():
    r = np.random.default_rng(3)
    q = r.standard_normal((2, 4, 9, 8)).astype(np.float32)
    k = r.standard_normal((2, 2, 9, 8)).astype(np.float32)
    v = r.standard_normal((2, 2, 9, 8)).astype(np.float32)
    g = r.standard_normal((2, 4, 9, 8)).astype(np.float32)
    y, ts = _run(q, k, v, g, None, True, enable_gqa=True)
    ref, bnd = _reference(q, np.repeat(k, 2, 1), np.repeat(v, 2, 1), g, None, True, 1 / math.sqrt(8))
    assert np.all(np.abs(_np(y) - ref["out"]) <= bnd["out"])
    dk = ref["dk"].reshape(2, 2, 2, 9, 8).sum(2)
    assert np.all(np.abs(_np(ts[1].grad) - dk) <= bnd["dk"].reshape(2, 2, 2, 9, 8).sum(2))


def test_levels_agree():
    if len(LEVELS) < 2:
        pytest.skip("one bf16 level on this CPU")
    outs = []
    for lv in LEVELS:
        old = _C.bf16_level()
        _C.set_bf16_level(lv)
        try:
            outs.append(_check(1, 2, 33, 33, 64, 64, "causal"))
        finally:
            _C.set_bf16_level(old)
    for name in outs[0]:
        assert np.allclose(outs[0][name], outs[1][name], rtol=2 * U, atol=1e-3)


def test_thread_count_does_not_change_bits():
    q, k, v, g, _ = _inputs(1, 3, 150, 150, 16, 16, "causal")
    old = nnfast.get_num_threads()
    res = []
    try:
        for nt in (1, 2):
            nnfast.set_num_threads(nt)
            y, ts = _run(q, k, v, g, None, True)
            res.append([y.detach().float().numpy()] + [t.grad.numpy() for t in ts])
    finally:
        nnfast.set_num_threads(old)
    for a, b in zip(*res):
        assert np.array_equal(a, b)


def test_against_torch_autocast():
    torch = pytest.importorskip("torch")
    for kind in ("causal", "float"):
        q, k, v, g, mask = _inputs(2, 2, 33, 33, 64, 64, kind, seed=5)
        y, ts = _run(q, k, v, g, mask, kind == "causal")
        tt = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yt = torch.nn.functional.scaled_dot_product_attention(
                *tt, attn_mask=None if mask is None else torch.tensor(mask), is_causal=kind == "causal")
        yt.backward(torch.tensor(g).to(torch.bfloat16))
        assert yt.dtype == torch.bfloat16 and tt[0].grad.dtype == torch.float32
        np.testing.assert_allclose(_np(y), yt.detach().float().numpy(), rtol=3e-2, atol=3e-2)
        for a, b in zip(ts, tt):
            np.testing.assert_allclose(_np(a.grad), b.grad.numpy(), rtol=5e-2, atol=5e-2)


def test_binding_errors():
    q = np.zeros((1, 4, 8), np.float64)
    offs = np.zeros((4, 1), np.int64)
    out, lse = np.zeros((1, 4, 8)), np.zeros((1, 4))
    with pytest.raises(TypeError, match=r"^\[scaled_dot_product_attention\] expected float32 arrays"):
        _C.sdpa_forward_bf16(out, lse, q, q, q, None, offs, 1.0, False, 0.0, 0, 0)
    q32 = q.astype(np.float32)
    with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] expected no out_offsets"):
        _C.sdpa_forward_bf16(out.astype(np.float32), lse.astype(np.float32), q32, q32, q32, None, offs, 1.0, False,
                             0.0, 0, 0, np.zeros((1, 1), np.int64))


def test_errors_under_autocast():
    x = nnfast.tensor(np.zeros((1, 4, 8), np.float32))
    with nnfast.autocast("cpu"):
        with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] expected"):
            F.scaled_dot_product_attention(x, nnfast.tensor(np.zeros((1, 4, 7), np.float32)), x)
        with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] expected"):
            F.scaled_dot_product_attention(x, x, x, attn_mask=nnfast.tensor(np.ones((4, 4), bool)), is_causal=True)


_CHILD = """
import sys
sys.path[:0] = sys.argv[1:]
import test_amp_attention as t
for kind in ("causal", "float"):
    t._check(1, 2, 33, 33, 64, 64, kind)
    t._check(1, 2, 7, 7, 80, 80, kind)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_each_isa_subprocess(isa):
    """Below AVX-512 the bf16 GEMM takes its portable path (gemm<float> of that ISA)."""
    if not _C.cpu_isa_supported(isa):
        pytest.skip(f"CPU lacks {isa}")
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", _CHILD, here] + [p for p in sys.path if p],
                       env=dict(os.environ, NNFAST_ISA=isa), capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def _edge_values(n):
    """float32 values that stress the bf16 rounding: ties (to even, both ways), just above / below a
    tie, subnormals, values a subnormal rounds up from to the least normal bf16, the largest
    finite values (overflow to inf), inf, NaN, signed zeros; then ordinary values up to n."""
    u = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x00000001, 0x80400000, 0x007FFFFF,
                  0x807F8000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00001, 0x00000000,
                  0x80000000, 0x3F7FFFFF], np.uint32).view(np.float32)
    rest = np.random.default_rng(9).standard_normal(max(0, n - u.size)).astype(np.float32)
    return np.concatenate([u, rest])[:n]


def _rne_bits(x, flush):
    """Expected bf16 rounding of float32 x as float32 (RNE, NaN kept NaN; flush: subnormals -> +-0)."""
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF
    r = np.where((u & 0x7FFFFFFF) > 0x7F800000, (u >> 16) | 0x40, r)
    if flush:
        r = np.where((u & 0x7F800000) == 0, (u >> 16) & 0x8000, r)
    return (r.astype(np.uint32) << 16).view(np.float32)


@pytest.mark.parametrize("Ev", [37, 80])
def test_operand_rounding_edge_values(level, Ev):
    """One query, one key (P = 1): dV = bf16(dO) exactly, so the per-call / in-tile conversion of dO
    shows through (vector lanes and a scalar tail; Ev = 80 is the big-head copy path). The portable
    level rounds subnormals, the AVX512-BF16 and AMX levels flush them to zero as vcvtneps2bf16."""
    g = _edge_values(Ev).reshape(1, 1, Ev)
    q = np.ones((1, 1, 8), np.float32)
    v = np.ones((1, 1, Ev), np.float32)
    offs = np.zeros((4, 1), np.int64)
    out, lse = np.empty((1, 1, Ev), np.float32), np.empty((1, 1), np.float32)
    _C.sdpa_forward_bf16(out, lse, q, q, v, None, offs, 1.0, False, 0.0, 0, 0)
    dq, dk, dv = np.empty_like(q), np.empty_like(q), np.empty_like(v)
    _C.sdpa_backward_bf16(dq, dk, dv, None, g, out, lse, q, q, v, None, offs, 1.0, False, 0.0, 0, 0)
    want = _rne_bits(g, level != "portable")  # AMX packs with vcvtneps2bf16 too
    assert np.array_equal(dv.view(np.uint32), want.view(np.uint32)) or \
        np.array_equal(dv, want, equal_nan=True), (dv, want)


def _bf16_tensors(q, k, v):
    return [nnfast.tensor(a.astype(BF16), requires_grad=True) for a in (q, k, v)]


@pytest.mark.parametrize("kind", ["causal", "bool", "none"])
def test_bf16_inputs_outside_autocast_take_the_bf16_route(level, kind):
    """All of q / k / v bf16, no autocast region (a model cast with .to(bfloat16)): the bf16 kernels,
    the same bits as the autocast route on those inputs, bf16 output and gradients, within the
    float64 bounds; not the float32 kernel on widened inputs (ENABLED off keeps that route)."""
    q, k, v, g, mask = _inputs(1, 2, 33, 33, 64, 64, kind, seed=4)
    m = None if mask is None else nnfast.tensor(mask)
    gb = nnfast.tensor(g.astype(BF16))

    def plain():
        ts = _bf16_tensors(q, k, v)
        y = F.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=kind == "causal")
        y.backward(gb)
        return y, ts

    y, ts = plain()
    assert y.dtype == nnfast.bfloat16 and all(t.grad.dtype == nnfast.bfloat16 for t in ts)
    ya, tsa = _run(q.astype(BF16), k.astype(BF16), v.astype(BF16), g, mask, kind == "causal", dtype=BF16)
    for a, b in zip([y] + [t.grad for t in ts], [ya] + [t.grad for t in tsa]):
        assert np.array_equal(_np(a), _np(b))
    ref, bnd = _reference(q, k, v, g, mask, kind == "causal", 1 / 8)
    assert np.all(np.abs(_np(y) - ref["out"]) <= bnd["out"])
    assert np.all(np.abs(_np(ts[2].grad) - ref["dv"]) <= bnd["dv"] + U * np.abs(ref["dv"]))
    y0, _ = _route(False, plain)
    assert not np.array_equal(_np(y0), _np(y))


def test_bf16_inputs_with_a_float32_mask_keep_the_float32_route():
    """bf16 q / k / v with a float32 mask (torch would refuse it) keep the widened float32 route."""
    q, k, v, g, mask = _inputs(1, 2, 9, 9, 8, 8, "float")
    ts = _bf16_tensors(q, k, v)
    y = F.scaled_dot_product_attention(*ts, attn_mask=nnfast.tensor(mask))
    y0 = _route(False, lambda: F.scaled_dot_product_attention(*_bf16_tensors(q, k, v), attn_mask=nnfast.tensor(mask)))
    assert y.dtype == nnfast.bfloat16 and np.array_equal(_np(y), _np(y0))


_COPY_CHILD = r"""
import sys, hashlib
sys.path[:0] = sys.argv[1:]
import numpy as np
from nnfast import _C
import test_amp_attention as t
_C.set_bf16_level("avx512_bf16")
h = hashlib.sha256()
for B, H, L, S, E, Ev, causal, p, strided in ((1, 2, 1, 1, 8, 8, False, 0.0, False), (1, 2, 7, 7, 64, 64, True, 0.0, False),
                                          (1, 2, 150, 260, 24, 40, False, 0.2, False), (2, 3, 33, 33, 80, 80, True, 0.0, True),
                                          (1, 1, 129, 129, 64, 64, True, 0.0, False)):
    q, k, v, g, _ = t._inputs(B, H, L, S, E, Ev, "none", seed=L, strided=strided)
    q = np.ascontiguousarray(q).reshape(B * H, L, E); g = g.reshape(B * H, L, Ev)
    k = np.ascontiguousarray(k).reshape(B * H, S, E); v = np.ascontiguousarray(v).reshape(B * H, S, Ev)
    # head 0: subnormal q that RNE would round up to the least normal bf16 (flushed to 0 by both routes;
    # a large dO makes dK's products normal, so an unflushed q would show), and the edge values
    q[0] = np.where(np.arange(L * E).reshape(L, E) % 2, 1, -1) * np.uint32(0x007FFFFF).view(np.float32)
    q[-1].reshape(-1)[:16] = t._edge_values(16)[:min(16, L * E)] if L * E >= 16 else q[-1].reshape(-1)[:16]
    g[0] *= 1000
    offs = np.zeros((4, B * H), np.int64)
    offs[0] = np.arange(B * H) * L * E; offs[1] = np.arange(B * H) * S * E; offs[2] = np.arange(B * H) * S * Ev
    offs[1][1::2] = offs[1][::2][: offs[1][1::2].size]  # heads sharing a key matrix (GQA-like)
    out, lse = np.empty((B * H, L, Ev), np.float32), np.empty((B * H, L), np.float32)
    _C.sdpa_forward_bf16(out, lse, q, k, v, None, offs, 0.3, causal, p, 5, 0)
    dq, dk, dv = np.empty_like(q), np.empty((B * H, S, E), np.float32), np.empty((B * H, S, Ev), np.float32)
    _C.sdpa_backward_bf16(dq, dk, dv, None, g, out, lse, q, k, v, None, offs, 0.3, causal, p, 5, 0)
    for a in (out, lse, dq, dk, dv):
        h.update(np.ascontiguousarray(a).tobytes())
print(h.hexdigest())
"""


def test_converted_once_same_bits_as_packing_each_tile():
    """AVX512-BF16 level: Q / K / V / dO converted to bf16 once per call (NNFAST_ATTN_BF16_COPY=1, the
    default) give the bits of the route that rounds them as the GEMM packs each tile (=0): odd
    sizes, several tiles, dropout, big heads, subnormal operands (flushed by both), shared heads."""
    if "avx512_bf16" not in LEVELS:
        pytest.skip("no AVX512-BF16 on this CPU")
    here = os.path.dirname(os.path.abspath(__file__))
    outs = []
    for flag in ("1", "0"):
        r = subprocess.run([sys.executable, "-c", _COPY_CHILD, here] + [p for p in sys.path if p],
                           env=dict(os.environ, NNFAST_ATTN_BF16_COPY=flag), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(r.stdout.strip())
    assert len(outs[0]) == 64 and outs[0] == outs[1]
