"""F.packed_self_attention: the packed q/k/v projection straight into the fused attention kernel
(strided head views in, heads merged out, one autograd node). Oracle: the same attention spelt
with the head split / merge as reshapes and permutes around F.scaled_dot_product_attention (the
same kernel, so results are bit-identical), float64 formulas via gradcheck, nn.MultiheadAttention's
self-attention fast path against its general path, the emulated cuda device, and the errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd.gradcheck import gradcheck

from conftest import DEVICES


def _unpacked(x, H, causal, p, bf):
    """The reference spelling: split heads, sdpa, merge heads."""
    xx = x if bf else x.transpose(0, 1)
    N, L, E3 = xx.shape
    D = E3 // (3 * H)
    q, k, v = xx.reshape(N, L, 3, H, D).permute(2, 0, 3, 1, 4).unbind(0)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=p).transpose(1, 2).reshape(N, L, H * D)
    return y if bf else y.transpose(0, 1)


def _run(fn, a, g, device="cpu"):
    x = nnfast.tensor(a, requires_grad=True, device=device)
    nnfast.manual_seed(5)
    y = fn(x)
    y.backward(nnfast.tensor(g, device=device))
    return y.detach().cpu().numpy(), x.grad.cpu().numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bf", [True, False])
@pytest.mark.parametrize("N,L,H,D", [(1, 1, 1, 1), (3, 7, 2, 5), (2, 33, 3, 16)])
@pytest.mark.parametrize("causal,p", [(False, 0.0), (True, 0.0), (True, 0.3)])
def test_same_bits_as_split_heads(dtype, bf, N, L, H, D, causal, p):
    rng = np.random.default_rng(N * 100 + L)
    a = rng.standard_normal((N, L, 3 * H * D) if bf else (L, N, 3 * H * D)).astype(dtype)
    g = rng.standard_normal(a.shape[:2] + (H * D,)).astype(dtype)
    y1, g1 = _run(lambda x: F.packed_self_attention(x, H, is_causal=causal, dropout_p=p, batch_first=bf), a, g)
    y2, g2 = _run(lambda x: _unpacked(x, H, causal, p, bf), a, g)
    assert y1.shape == a.shape[:2] + (H * D,) and y1.dtype == dtype
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1, g2)


def test_noncontiguous_qkv():
    """A transposed view (rows strided) is read in place; a view with strided columns is copied first."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((7, 3, 2 * 12))
    g = rng.standard_normal((3, 7, 4))
    for view in (lambda t: t[:, :, :12].transpose(0, 1), lambda t: t[:, :, ::2].transpose(0, 1)):
        y1, g1 = _run(lambda x: F.packed_self_attention(view(x), 2, is_causal=True), base, g)
        y2, g2 = _run(lambda x: _unpacked(view(x), 2, True, 0.0, True), base, g)
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(g1, g2)
        assert np.any(g1 != 0)


@pytest.mark.parametrize("bf,causal", [(True, True), (False, False)])
def test_gradcheck_float64(bf, causal):
    rng = np.random.default_rng(7)
    x = nnfast.tensor(rng.standard_normal((2, 5, 18) if bf else (5, 2, 18)), requires_grad=True)
    assert gradcheck(lambda t: F.packed_self_attention(t, 2, is_causal=causal, batch_first=bf), (x,))


def test_float64_reference_formula():
    """Against softmax(q k^T / sqrt(D) + causal) v written out in NumPy."""
    rng = np.random.default_rng(8)
    N, L, H, D = 2, 6, 3, 4
    a = rng.standard_normal((N, L, 3 * H * D))
    y = F.packed_self_attention(nnfast.tensor(a), H, is_causal=True).numpy()
    q, k, v = a.reshape(N, L, 3, H, D).transpose(2, 0, 3, 1, 4)
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(D) + np.triu(np.full((L, L), -np.inf), 1)
    pr = np.exp(s - s.max(-1, keepdims=True))
    ref = (pr / pr.sum(-1, keepdims=True)) @ v
    np.testing.assert_allclose(y, ref.transpose(0, 2, 1, 3).reshape(N, L, H * D), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_fast_path(batch_first):
    """need_weights=False self-attention takes the packed path; it equals the general path
    (need_weights=True) in outputs and every gradient."""
    rng = np.random.default_rng(9)
    nnfast.manual_seed(0)
    m1 = nn.MultiheadAttention(12, 3, batch_first=batch_first, dtype=np.float64)
    m2 = copy.deepcopy(m1)
    a = rng.standard_normal((4, 5, 12))
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=np.float64) if batch_first else None
    outs = []
    for m, nw in ((m1, False), (m2, True)):
        x = nnfast.tensor(a, requires_grad=True)
        y, w = m(x, x, x, need_weights=nw, attn_mask=mask, is_causal=mask is not None)
        assert (w is None) == (not nw)
        (y * y).sum().backward()
        outs.append([y.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()])
    for u, v in zip(*outs):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif("cuda" not in DEVICES, reason="no cuda device in this build")
@pytest.mark.parametrize("bf", [True, False])
def test_cuda_matches_cpu(bf):
    rng = np.random.default_rng(12)
    a = rng.standard_normal((3, 9, 24))
    g = rng.standard_normal((3, 9, 8))
    fn = lambda x: F.packed_self_attention(x, 2, is_causal=True, batch_first=bf)  # noqa: E731
    y1, g1 = _run(fn, a, g)
    y2, g2 = _run(fn, a, g, device="cuda")
    np.testing.assert_allclose(y2, y1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g2, g1, rtol=1e-10, atol=1e-12)


def test_errors():
    x = nnfast.randn(2, 3, 12)
    m = r"^\[packed_self_attention\] expected "
    with pytest.raises(TypeError, match=m):
        F.packed_self_attention(np.zeros((2, 3, 12)), 2)
    with pytest.raises(TypeError, match=m):
        F.packed_self_attention(nnfast.zeros(2, 3, 12, dtype=nnfast.int64), 2)
    with pytest.raises(ValueError, match=m + "a 3-D qkv"):
        F.packed_self_attention(nnfast.randn(3, 12), 2)
    with pytest.raises(ValueError, match=m + "a last dim divisible"):
        F.packed_self_attention(x, 5)
    with pytest.raises(ValueError, match=m + "a positive int num_heads"):
        F.packed_self_attention(x, 0)
    with pytest.raises(ValueError, match=m + "dropout_p"):
        F.packed_self_attention(x, 2, dropout_p=1.0)


def _in_place(flag):
    import nnfast.nn.functional._transformer as tr
    old, tr._HEADS_IN_PLACE = tr._HEADS_IN_PLACE, flag
    return old


@pytest.mark.parametrize("bf", [True, False])
@pytest.mark.parametrize("grad", ["contiguous", "transposed", "broadcast"])
def test_heads_in_place_same_bits_as_copies(bf, grad):
    """The CPU kernel writing the merged heads / the packed dq, dk, dv in place (out_offsets) gives
    the bits of the split / merge copies, for any layout of the incoming gradient and any thread count."""
    import nnfast.nn.functional._transformer as tr
    rng = np.random.default_rng(21)
    N, L, H, D = 3, 7, 2, 5
    a = rng.standard_normal((N, L, 3 * H * D) if bf else (L, N, 3 * H * D)).astype(np.float32)
    gshape = a.shape[:2] + (H * D,)
    g0 = rng.standard_normal(gshape[::-1]).astype(np.float32)
    res = []
    for flag, threads in ((False, 2), (True, 1), (True, 2)):
        old, n0 = _in_place(flag), nnfast.get_num_threads()
        nnfast.set_num_threads(threads)
        try:
            x = nnfast.tensor(a, requires_grad=True)
            y = F.packed_self_attention(x, H, is_causal=True, batch_first=bf)
            assert y.grad_fn.in_place == flag  # the path under test ran
            if grad == "contiguous":
                y.backward(nnfast.tensor(np.ascontiguousarray(g0.T)))
            elif grad == "transposed":  # a strided gradient reaches the kernel as it is
                y.backward(nnfast.tensor(g0).permute(2, 1, 0))
            else:  # sum's gradient: a broadcast (zero-stride) array
                y.sum().backward()
            res.append((y.detach().numpy(), x.grad.numpy()))
        finally:
            tr._HEADS_IN_PLACE = old
            nnfast.set_num_threads(n0)
    for y, g in res[1:]:
        np.testing.assert_array_equal(y, res[0][0])
        np.testing.assert_array_equal(g, res[0][1])
    assert np.any(res[0][1] != 0)


def test_output_modified_in_place_is_an_error():
    """The output is the array backward reads (no copy kept): changing it in place is caught, as
    PyTorch does for the ops that save their output."""
    x = nnfast.randn(2, 5, 12, requires_grad=True)
    y = F.packed_self_attention(x, 2, is_causal=True)
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_out_offsets_errors():
    """The kernel's strided-output mode checks its offset table and refuses overlapping outputs."""
    from nnfast._dispatch import kernels
    from nnfast.nn.functional._transformer import _heads, _mat_table, _offset_table, _split
    rng = np.random.default_rng(4)
    N, L, H, D = 2, 3, 2, 4
    qkv = rng.standard_normal((N, L, 3 * H * D))
    q, k, v = _heads(qkv, H, True)
    offs = _offset_table((N, H), (1, 1), q, k, v, None)
    K = kernels("scaled_dot_product_attention", qkv)
    m = r"^\[scaled_dot_product_attention\] expected "
    out = np.empty((N, L, H * D))
    lse = np.empty((N * H, L))
    o4 = _split(out, H, True)
    with pytest.raises(ValueError, match=m + r"out_offsets as a C-contiguous int64 array of shape \(1, 4\)"):
        K.sdpa_forward(o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0, out_offsets=np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match=m + "strided gradient matrices that do not overlap"):
        K.sdpa_forward(o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0, out_offsets=np.zeros((1, 4), np.int64))
    with pytest.raises(ValueError, match=m + "offsets of out inside the array"):
        K.sdpa_forward(o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0,
                       out_offsets=np.full((1, 4), 10 ** 6, np.int64))
    K.sdpa_forward(o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0, out_offsets=_mat_table(o4))
    dqkv = np.empty_like(qkv)
    dq, dk, dv = _heads(dqkv, H, True)
    dy = _split(rng.standard_normal((N, L, H * D)), H, True)
    t = np.array(_mat_table(dq, dk, dv, dy, o4))
    K.sdpa_backward(dq, dk, dv, None, dy, o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0, out_offsets=t)
    bad = t.copy()
    bad[2] = bad[0]  # grad_value over grad_query's columns
    with pytest.raises(ValueError, match=m + "strided gradient matrices that do not overlap"):
        K.sdpa_backward(dq, dq, dq, None, dy, o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0, out_offsets=bad)
    with pytest.raises(ValueError, match=m + "grad_key not to share memory with query"):
        K.sdpa_backward(dq, k, dv, None, dy, o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0, out_offsets=t)
    with pytest.raises(ValueError, match=m + r"grad with matrices of shape \(3, 4\)"):
        K.sdpa_backward(dq, dk, dv, None, dy[..., :2], o4, lse, q, k, v, None, offs, 0.5, True, 0.0, 0, 0,
                        out_offsets=t)
