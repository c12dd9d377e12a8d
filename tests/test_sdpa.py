"""scaled_dot_product_attention beyond the registry: PyTorch as an oracle (float32, B=2, H=3, T=130,
D=64: two 128-row tiles), dropout (the mask regenerated in backward), results independent of
the thread count, and memory linear in T (peak RSS in a subprocess)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
from nnfast import _C

import opinfo  # noqa: F401  (first: it imports opinfo_attention itself, then fills the device columns)
from opinfo_attention import sdpa_ref

B, H, T, D = 2, 3, 130, 64


def _data(seed, qshape, kshape, vshape, dtype=np.float32):
    r = np.random.default_rng(seed)
    return [r.standard_normal(s).astype(dtype) for s in (qshape, kshape, vshape)]


def _nn(q, k, v, mask=None, mask_grad=False, **kw):
    ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
    m = None if mask is None else nnfast.tensor(mask, requires_grad=mask_grad)
    out = F.scaled_dot_product_attention(*ts, attn_mask=m, **kw)
    g = np.random.default_rng(99).standard_normal(out.shape).astype(out.dtype)
    out.backward(nnfast.tensor(g))
    grads = [t.grad.numpy() for t in ts] + ([m.grad.numpy()] if mask_grad else [])
    return out.detach().numpy(), grads


def _torch(q, k, v, mask=None, mask_grad=False, **kw):
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    m = None if mask is None else torch.tensor(mask, requires_grad=mask_grad)
    out = torch.nn.functional.scaled_dot_product_attention(*ts, attn_mask=m, **kw)
    g = np.random.default_rng(99).standard_normal(tuple(out.shape)).astype(q.dtype)
    out.backward(torch.tensor(g))
    grads = [t.grad.numpy() for t in ts] + ([m.grad.numpy()] if mask_grad else [])
    return out.detach().numpy(), grads


def _r(seed):
    return np.random.default_rng(seed)


CASES = {
    "plain": (dict(), None, False),
    "causal": (dict(is_causal=True), None, False),
    "scale": (dict(scale=0.05), None, False),
    "bool-mask": (dict(), (_r(1).random((T, T)) < 0.7), False),
    "bool-mask-empty-rows": (dict(), np.where(np.arange(T)[:, None] % 17 == 3, False, _r(2).random((T, T)) < 0.5),
                             False),
    "float-mask": (dict(), _r(3).standard_normal((B, 1, T, T)).astype(np.float32), True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case):
    kw, mask, mask_grad = CASES[case]
    q, k, v = _data(0, (B, H, T, D), (B, H, T, D), (B, H, T, D))
    o1, g1 = _nn(q, k, v, mask, mask_grad, **kw)
    o2, g2 = _torch(q, k, v, mask, mask_grad, **kw)
    np.testing.assert_allclose(o1, o2, rtol=1e-4, atol=2e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-4 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("L,S", [(130, 70), (70, 130)])
def test_causal_rectangular_matches_torch(L, S):
    q, k, v = _data(1, (B, H, L, D), (B, H, S, D), (B, H, S, 48))
    o1, g1 = _nn(q, k, v, is_causal=True)
    o2, g2 = _torch(q, k, v, is_causal=True)
    np.testing.assert_allclose(o1, o2, rtol=1e-4, atol=2e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-4 * max(1.0, np.abs(b).max()))


def test_gqa_broadcast_and_transposed_views_match_torch():
    r = _r(4)
    # (B, T, H, D) storage seen as (B, H, T, D); key / value with 1 head of 3 (GQA) and a broadcast batch dim.
    q = r.standard_normal((B, T, H, D)).astype(np.float32)
    k = r.standard_normal((1, 1, T, D)).astype(np.float32)
    v = r.standard_normal((1, 1, T, D)).astype(np.float32)
    torch = pytest.importorskip("torch")
    tq = torch.tensor(q, requires_grad=True)
    tk, tv = torch.tensor(k, requires_grad=True), torch.tensor(v, requires_grad=True)
    to = torch.nn.functional.scaled_dot_product_attention(tq.transpose(1, 2), tk, tv, is_causal=True,
                                                          enable_gqa=True)
    nq = nnfast.tensor(q, requires_grad=True)
    nk, nv = nnfast.tensor(k, requires_grad=True), nnfast.tensor(v, requires_grad=True)
    no = F.scaled_dot_product_attention(nq.transpose(1, 2), nk, nv, is_causal=True, enable_gqa=True)
    g = _r(5).standard_normal(tuple(to.shape)).astype(np.float32)
    to.backward(torch.tensor(g))
    no.backward(nnfast.tensor(g))
    np.testing.assert_allclose(no.detach().numpy(), to.detach().numpy(), rtol=1e-4, atol=2e-5)
    for a, b in ((nq, tq), (nk, tk), (nv, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-3, atol=2e-4 * max(1.0, b.grad.abs().max().item()))


def _dropout_keep(shape, p, seed, offset, dtype=np.float64):
    """The kernel's dropout multiplier (keep / (1 - p)) for elements (bh, i, j): F.dropout's mask on
    the flattened (BH, L, S) probabilities with the same seed / offset."""
    ones = np.ones(shape, dtype=dtype)
    out = np.empty_like(ones)
    _C.dropout_forward(out, ones, p, seed, offset)
    return out


def test_dropout_matches_reference_with_the_same_mask():
    r = _r(6)
    q, k, v = (r.standard_normal(s) for s in ((2, 3, 140, 8), (2, 3, 135, 8), (2, 3, 135, 5)))
    p = 0.3
    nnfast.manual_seed(123)
    seed, offset = nnfast._random.next_kernel_seed()
    nnfast.manual_seed(123)
    out = F.scaled_dot_product_attention(nnfast.tensor(q), nnfast.tensor(k), nnfast.tensor(v), dropout_p=p,
                                         is_causal=True)
    keep = _dropout_keep((6, 140, 135), p, seed, offset).reshape(2, 3, 140, 135)
    probs = sdpa_ref(q, k, np.broadcast_to(np.eye(135), (2, 3, 135, 135)), is_causal=True)  # softmax rows
    np.testing.assert_allclose(out.numpy(), np.matmul(probs * keep, v), rtol=1e-12, atol=1e-12)
    assert 0.6 < (keep > 0).mean() < 0.8


def test_dropout_gradcheck_with_fixed_seed():
    r = _r(7)
    ts = [nnfast.tensor(r.standard_normal(s), requires_grad=True) for s in ((1, 2, 7, 3), (1, 2, 9, 3), (1, 2, 9, 2))]

    def f(q, k, v):
        nnfast.manual_seed(5)  # the same mask on every evaluation
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    assert nnfast.autograd.gradcheck(f, tuple(ts))
    nnfast.manual_seed(5)
    a = F.scaled_dot_product_attention(*ts, dropout_p=0.4).detach().numpy()
    b = F.scaled_dot_product_attention(*ts, dropout_p=0.4).detach().numpy()
    assert not np.array_equal(a, b)  # a fresh mask per call


@pytest.mark.parametrize("bh", [(1, 2), (4, 8)])
def test_bits_do_not_depend_on_thread_count(bh):
    """Few batch-heads: (1 thread: one task per bh) vs (2 threads: key-block then query-block passes)."""
    q, k, v = _data(8, bh + (300, 16), bh + (270, 16), bh + (270, 8))
    old = nnfast.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 3):
            nnfast.set_num_threads(n)
            runs.append(_nn(q, k, v, is_causal=True))
    finally:
        nnfast.set_num_threads(old)
    for o, gs in runs[1:]:
        assert np.array_equal(o, runs[0][0])
        for a, b in zip(gs, runs[0][1]):
            assert np.array_equal(a, b)


def test_gradients_of_inputs_not_needed_are_none():
    q, k, v = _data(9, (2, 5, 4), (2, 6, 4), (2, 6, 3), np.float64)
    nq, nk = nnfast.tensor(q, requires_grad=True), nnfast.tensor(k)
    nv = nnfast.tensor(v, requires_grad=True)
    F.scaled_dot_product_attention(nq, nk, nv).sum().backward()
    assert nk.grad is None and nq.grad is not None and nv.grad is not None


_PEAK = r"""
import json, sys, numpy as np, nnfast, nnfast.nn.functional as F
T = int(sys.argv[1])
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
r = np.random.default_rng(0)
q, k, v = (nnfast.tensor(r.standard_normal((1, 4, T, 64)).astype(np.float32), requires_grad=True) for _ in range(3))
g = nnfast.tensor(np.ones((1, 4, T, 64), np.float32))
base = hwm()
F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)
print(json.dumps({"delta": hwm() - base}))
"""


def _peak_delta(T):
    env = dict(os.environ, NNFAST_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", _PEAK, str(T)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["delta"]


def test_memory_is_linear_in_T():
    """Forward + backward at T=4096 (H=4, D=64): a materialised float32 score matrix alone would be
    4 * 4096^2 * 4 B = 256 MiB; the fused kernel's extra peak stays a few MiB (q/k/v, grads, tiles)."""
    d2, d4 = _peak_delta(2048), _peak_delta(4096)
    scores_4096 = 4 * 4096 * 4096 * 4
    assert d4 < scores_4096 / 8, (d2, d4)
    assert d4 < 3 * max(d2, 4 << 20), (d2, d4)  # quadratic growth would be 4x


@pytest.mark.parametrize("kw", [dict(is_causal=True, dropout_p=0.3), dict(enable_gqa=True), dict(mask="float"),
                                dict(mask="bool")], ids=["causal-dropout", "gqa", "float-mask", "bool-mask"])
def test_device_matches_cpu(device, kw):
    """The cuda kernels (emulated in CI) against the CPU kernels: same outputs and gradients, dropout
    with the same counter-based mask; float64, two 64-row tiles."""
    if device == "cpu":
        pytest.skip("compares a device against cpu")
    kw = dict(kw)
    r = _r(11)
    q = r.standard_normal((1, 2, 70, 4))
    k = r.standard_normal((1, 1 if kw.get("enable_gqa") else 2, 66, 4))
    v = r.standard_normal(k.shape[:-1] + (3,))
    mask = kw.pop("mask", None)
    m = None if mask is None else (r.standard_normal((70, 66)) if mask == "float" else r.random((2, 70, 66)) < 0.5)
    g = r.standard_normal((1, 2, 70, 3))
    res = []
    for dev in ("cpu", device):
        ts = [nnfast.tensor(a, requires_grad=True).to(dev).detach().requires_grad_(True) for a in (q, k, v)]
        mt = None
        if m is not None:
            mt = nnfast.tensor(m).to(dev).detach()
            if mask == "float":
                mt.requires_grad_(True)
        nnfast.manual_seed(3)
        out = F.scaled_dot_product_attention(*ts, attn_mask=mt, **kw)
        out.backward(nnfast.tensor(g).to(dev))
        grads = [t.grad for t in ts] + ([mt.grad] if mask == "float" else [])
        res.append([out.detach().cpu().numpy()] + [x.cpu().numpy() for x in grads])
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_binding_rejects_offsets_outside_the_arrays():
    q, k, v = (np.zeros((2, 5, 4)) for _ in range(3))
    out, lse = np.empty((2, 5, 4)), np.empty((2, 5))
    offs = np.zeros((4, 2), np.int64)
    offs[:3, 1] = 20
    _C.sdpa_forward(out, lse, q, k, v, None, offs, 0.5, False, 0.0, 0, 0)  # in bounds
    offs[1, 1] = 21
    with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] expected offsets of key"):
        _C.sdpa_forward(out, lse, q, k, v, None, offs, 0.5, False, 0.0, 0, 0)
    with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] expected offsets as"):
        _C.sdpa_forward(out, lse, q, k, v, None, offs[:3], 0.5, False, 0.0, 0, 0)


@pytest.mark.parametrize("shapes", [((2, 0, 4), (2, 5, 4), (2, 5, 3)), ((2, 3, 4), (2, 0, 4), (2, 0, 3)),
                                    ((0, 3, 4), (0, 5, 4), (0, 5, 3)), ((2, 3, 0), (2, 5, 0), (2, 5, 3)),
                                    ((2, 3, 4), (2, 5, 4), (2, 5, 0))], ids=["L0", "S0", "B0", "E0", "Ev0"])
def test_empty_dims(shapes, device):
    """Zero-sized L, S, batch, E or Ev: PyTorch's results (S = 0: zeros), gradients of the right shapes."""
    r = _r(12)
    arrs = [r.standard_normal(s) for s in shapes]
    ts = [nnfast.tensor(a).to(device).detach().requires_grad_(True) for a in arrs]
    out = F.scaled_dot_product_attention(*ts)
    np.testing.assert_allclose(out.detach().cpu().numpy(), sdpa_ref(*arrs), rtol=1e-12, atol=1e-12)
    out.sum().backward()
    for t, a in zip(ts, arrs):
        assert t.grad is None or t.grad.shape == a.shape


def test_cuda_rejects_rows_wider_than_shared_memory(device):
    if device == "cpu":
        pytest.skip("the CPU kernel has no such limit")
    q = nnfast.tensor(np.ones((1, 2, 6200), np.float32)).to(device)
    v = nnfast.tensor(np.ones((1, 3, 6200), np.float32)).to(device)
    with pytest.raises(ValueError, match=r"^\[scaled_dot_product_attention\] expected E \+ Ev <= "):
        F.scaled_dot_product_attention(q, v, v)


_TRANSPOSE_CHILD = r"""
import os, sys, numpy as np
sys.path[:0] = sys.argv[2:]
import nnfast, nnfast.nn.functional as F
from nnfast import _C
assert _C.cpu_isa() == sys.argv[1], (_C.cpu_isa(), sys.argv[1])

def run(q, k, v, causal, packed):
    if packed:  # strided per-head views of one (N, L, 3E) array (row stride 3E), as the GPT example's
        t = nnfast.tensor(q, requires_grad=True)
        out = F.packed_self_attention(t, k, is_causal=causal)
        ts = [t]
    else:
        ts = [nnfast.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*ts, is_causal=causal)
    g = np.random.default_rng(99).standard_normal(out.shape).astype(out.dtype)
    out.backward(nnfast.tensor(g))
    return [out.detach().numpy()] + [t.grad.numpy() for t in ts]

r = np.random.default_rng(0)
cases = []
for dt in (np.float32, np.float64):
    for (L, S, D, Dv) in [(1, 1, 1, 1), (7, 7, 7, 5), (64, 64, 16, 16), (64, 64, 32, 32), (130, 129, 33, 9),
                          (9, 1023, 8, 8), (64, 64, 64, 64)]:
        for causal in (False, True):
            cases.append(([r.standard_normal(s).astype(dt) for s in ((2, 3, L, D), (2, 3, S, D), (2, 3, S, Dv))],
                          causal, False))
    for H, D in [(3, 16), (4, 32), (2, 7)]:
        cases.append(((r.standard_normal((3, 64, 3 * H * D)).astype(dt), H, None), True, True))
for args, causal, packed in cases:
    res = []
    for flag in ("0", "1"):
        os.environ["NNFAST_ATTN_BLOCKED_T"] = flag
        res.append(run(*args, causal, packed))
    for a, b in zip(*res):
        assert np.array_equal(a, b), (a.shape, causal, packed, a.dtype)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_blocked_kv_transpose_same_bits_as_copy(isa):
    """Small heads' K / V tiles are transposed for the direct tile products in 8 x 8 register blocks;
    NNFAST_ATTN_BLOCKED_T=0 (read per call) copies them element by element: the same bits, every ISA."""
    if not _C.cpu_isa_supported(isa):
        pytest.skip(f"CPU lacks {isa}")
    env = dict(os.environ, NNFAST_ISA=isa)
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", _TRANSPOSE_CHILD, isa, here] + [p for p in sys.path if p], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
