"""The AMX-BF16 GEMM kernel's edges, against float64 with test_gemm_bf16's bound.

The kernel computes whole 32 x 32 C blocks of 16 x 16 tiles over K padded to 32
(A and B packed with zero padding), stores full unit-stride blocks straight from
the tiles (alpha = 1; beta = 0 from zero, beta = 1 by loading C into the
accumulators) and everything else through a float tile. NNFAST_BF16_AMX_SMALL=0
(read per call) sends the small shapes that the driver would give to the
vdpbf16ps kernel through the tiles too, so every edge below runs on AMX.

Each test runs twice (the `amx` fixture): "hw" on the tiles (skipped, labelled, on
CPUs without AMX-BF16) and "emu" with the hidden NNFAST_BF16_AMX_EMULATE=1, the same
packing and loop nest with the tile product emulated in plain C++, which any
AVX512-BF16 CPU runs (so a CI machine without AMX still tests the packing, padding
and edge logic; skipped where the CPU lacks AVX512-BF16).
"""
from __future__ import annotations

import itertools
import os
import sys

import numpy as np
import pytest

nnfast = pytest.importorskip("nnfast")
_C = nnfast._C

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_gemm_bf16 as t  # noqa: E402

BF16 = t.BF16

HAS_AMX = _C.bf16_level_supported("amx_bf16")
SIZES = [1, 7, 15, 16, 17, 31, 33, 1023]


@pytest.fixture(params=["hw", "emu"])
def amx(request, monkeypatch):
    monkeypatch.setenv("NNFAST_BF16_AMX_SMALL", "0")
    if request.param == "hw" and not HAS_AMX:
        pytest.skip("CPU lacks AMX-BF16")
    if request.param == "emu":
        if not _C.bf16_level_supported("avx512_bf16"):
            pytest.skip("CPU lacks AVX512-BF16 (the emulated tiles' packing needs it)")
        monkeypatch.setenv("NNFAST_BF16_AMX_EMULATE", "1")
    old = _C.bf16_level()
    _C.set_bf16_level("amx_bf16" if request.param == "hw" else "avx512_bf16")
    try:
        if request.param == "hw" and _C.bf16_kernel() != "amx_bf16":
            pytest.skip("AMX tile state not granted by the OS")
        yield request.param
    finally:
        _C.set_bf16_level(old)


@pytest.mark.parametrize("s", SIZES)
def test_edge_sizes(amx, s):
    # Each of M, N, K at the size, the others partial blocks; then all three.
    t._check(s, 33, 47, np.float32, np.float32, np.float32)
    t._check(33, s, 47, BF16, np.float32, np.float32, "C", "F")
    t._check(47, 33, s, np.float32, BF16, BF16, "F", "C", beta=1.0)
    if s < 1023:
        t._check(s, s, s, BF16, BF16, np.float32, beta=0.5, alpha=-2.0)


def test_edge_grid(amx):
    small = [1, 15, 16, 17, 31, 33]
    for n, (M, N, K) in enumerate(itertools.product(small, small, [1, 7, 16, 33])):
        t._check(M, N, K, [np.float32, BF16][n % 2], [BF16, np.float32][n % 3 == 0], np.float32, "CFSR"[n % 4],
                 "CFSR"[(n // 4) % 4], beta=[0.0, 1.0, 0.5][n % 3], seed=n)


@pytest.mark.parametrize("K", [2 * 512 + 77, 3 * 512, 1023, 1025])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (1.0, 0.5), (-0.5, 1.0), (2.0, 0.0)])
def test_k_blocks_alpha_beta(amx, K, alpha, beta):
    # Several K blocks (KC = 512): later blocks add into C (the tiles load C when
    # alpha = 1, else the float tile); full and partial 32 x 32 blocks.
    t._check(64, 96, K, np.float32, np.float32, np.float32, alpha=alpha, beta=beta)
    t._check(70, 45, K, BF16, np.float32, BF16, "F", "S", alpha=alpha, beta=beta)


@pytest.mark.parametrize("ta,tb,tc", list(itertools.product(t.DTYPES, t.DTYPES, t.DTYPES)))
def test_dtypes_and_layouts(amx, ta, tb, tc):
    for n, (la, lb) in enumerate(itertools.product("CFSR", "CFSR")):
        t._check(45 + n, 70, 100 + 3 * n, ta, tb, tc, la, lb, beta=[0.0, 1.0, 0.5][n % 3])


@pytest.mark.parametrize("act", list(t.ACTS))
def test_epilogues(amx, act):
    t._check(96, 64, 200, np.float32, BF16, np.float32, "C", "F", bias=np.float32, act=act, aux=np.float32)
    t._check(77, 131, 600, BF16, BF16, BF16, "C", "C", bias=BF16, act=act, aux=BF16)
    if t.ACTS[act][3] is not None:
        t._check(96, 70, 45, BF16, np.float32, np.float32, "C", "F", dact=BF16, act=act)
        t._check(33, 64, 550, np.float32, np.float32, BF16, "F", "C", beta=1.0, dact=np.float32, act=act)


def test_strided_out(amx):
    # out with a row stride > N: the tiles store (and load, beta = 1) with C's stride.
    rng = np.random.default_rng(3)
    A = rng.standard_normal((70, 300)).astype(np.float32)
    B = rng.standard_normal((300, 64)).astype(BF16)
    want = t._rne(A) @ t._f64(B)
    mag = np.abs(t._rne(A)) @ np.abs(t._f64(B))
    for beta in (0.0, 1.0):
        big = rng.standard_normal((70, 100)).astype(np.float32)
        C0 = big.copy()
        _C.gemm(big[:, 10:74], A, B, 1.0, beta, precision="bf16")
        ref = want + (beta * t._f64(C0[:, 10:74]) if beta else 0.0)
        assert np.all(np.abs(t._f64(big[:, 10:74]) - ref) <= 310 * t.U_F32 * (mag + np.abs(t._f64(C0[:, 10:74]))))
        assert np.array_equal(big[:, :10], C0[:, :10]) and np.array_equal(big[:, 74:], C0[:, 74:])


@pytest.mark.parametrize("shape", [(1023, 33, 700), (100, 1023, 1100), (31, 17, 33), (300, 300, 1536)])
def test_threads_same_bits(amx, monkeypatch, shape):
    # One owner per C element and a fixed K order: 1, 2, 3 threads and every
    # schedule give the same bits (float32 and bf16 out, with an epilogue).
    M, N, K = shape
    rng = np.random.default_rng(8)
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = np.asfortranarray(rng.standard_normal((K, N)).astype(BF16))
    bias = rng.standard_normal(N).astype(np.float32)
    old_nt = _C.get_num_threads()
    outs = {}
    try:
        for nt in (1, 2, 3):
            _C.set_num_threads(nt)
            for shared in ("1", "0"):
                monkeypatch.setenv("NNFAST_BF16_SHARED_B", shared)
                for tc in (np.float32, BF16):
                    C = np.empty((M, N), tc)
                    _C.gemm(C, A, B, 1.0, 0.0, bias, 1, precision="bf16")  # relu
                    outs[nt, shared, np.dtype(tc).name] = C
    finally:
        _C.set_num_threads(old_nt)
    for key, C in outs.items():
        ref = outs[1, "1", key[2]]
        bits = np.uint16 if C.dtype == BF16 else np.uint32
        assert np.array_equal(C.view(bits), ref.view(bits)), key
    f = outs[1, "1", "float32"]
    want = np.maximum(t._rne(A) @ t._f64(B) + bias, 0)
    assert np.all(np.abs(t._f64(f) - want) <= (K + 8) * t.U_F32 * (np.abs(t._rne(A)) @ np.abs(t._f64(B)) + np.abs(bias)))


@pytest.mark.skipif(not HAS_AMX, reason="CPU lacks AMX-BF16")
def test_small_shape_rule(monkeypatch):
    # Default rule: K < 16 or M N K <= 16384 run the vdpbf16ps kernel (same bits as
    # forcing avx512_bf16 there).
    monkeypatch.delenv("NNFAST_BF16_AMX_SMALL", raising=False)
    rng = np.random.default_rng(4)
    old = _C.bf16_level()
    try:
        for M, N, K in [(200, 90, 15), (20, 20, 40), (1, 1, 1)]:
            A = rng.standard_normal((M, K)).astype(np.float32)
            B = rng.standard_normal((K, N)).astype(np.float32)
            outs = []
            for lv in ("amx_bf16", "avx512_bf16"):
                _C.set_bf16_level(lv)
                C = np.empty((M, N), np.float32)
                _C.gemm(C, A, B, precision="bf16")
                outs.append(C)
            assert np.array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32)), (M, N, K)
    finally:
        _C.set_bf16_level(old)


def test_bmm_and_batched(amx):
    rng = np.random.default_rng(6)
    A = rng.standard_normal((3, 40, 130)).astype(BF16)
    B = rng.standard_normal((3, 130, 50)).astype(np.float32)
    C = np.empty((3, 40, 50), np.float32)
    _C.bmm(C, A, B, precision="bf16")
    for b in range(3):
        C2 = np.empty((40, 50), np.float32)
        _C.gemm(C2, A[b], B[b], precision="bf16")
        assert np.array_equal(C[b], C2)
    ref = t._f64(A) @ t._rne(B)
    assert np.all(np.abs(t._f64(C) - ref) <= 140 * t.U_F32 * (np.abs(t._f64(A)) @ np.abs(t._rne(B))))


def test_emulation_is_used(monkeypatch):
    # The emulated tiles differ from the vdpbf16ps kernel in summation order: if the hidden
    # switch silently fell back to it, results would match it bit for bit on a long K.
    if not _C.bf16_level_supported("avx512_bf16"):
        pytest.skip("CPU lacks AVX512-BF16")
    rng = np.random.default_rng(9)
    A = rng.standard_normal((64, 2000)).astype(np.float32)
    B = rng.standard_normal((2000, 64)).astype(np.float32)
    old = _C.bf16_level()
    outs = []
    try:
        _C.set_bf16_level("avx512_bf16")
        for emu in ("0", "1"):
            monkeypatch.setenv("NNFAST_BF16_AMX_EMULATE", emu)
            C = np.empty((64, 64), np.float32)
            _C.gemm(C, A, B, precision="bf16")
            outs.append(C)
    finally:
        _C.set_bf16_level(old)
    assert not np.array_equal(outs[0], outs[1])
    assert np.allclose(outs[0], outs[1], rtol=0, atol=1e-3)


def _same_bits_over_switch(monkeypatch, var, calls):
    """Each call (fills and returns C) under var=1 and var=0: the same bits."""
    for make in calls:
        outs = []
        for v in ("1", "0"):
            monkeypatch.setenv(var, v)
            outs.append(make())
        monkeypatch.delenv(var)
        bits = np.uint16 if outs[0].dtype == BF16 else np.uint32
        assert np.array_equal(outs[0].view(bits), outs[1].view(bits)), var


def _row_major_a(rng, M, K, dtype, row_pad):
    """Row-major A (unit column stride), row stride K + row_pad (NaN there), with subnormals and
    a mix of magnitudes so rounding and the flush to zero both matter."""
    big = rng.standard_normal((M, K + row_pad)).astype(np.float32)
    big[:, ::7] *= np.float32(1e-39)  # float32 subnormals: vcvtneps2bf16 flushes them
    big[:, 3::11] *= np.float32(3e5)
    big[:, K:] = np.nan  # past K in each row: a pack that reads there (times B's zero padding) gives NaN
    return (big.astype(BF16) if dtype == BF16 else big)[:, :K]


@pytest.mark.parametrize("dtype", [np.float32, BF16])
@pytest.mark.parametrize("M,K", [(1, 1), (7, 33), (17, 31), (33, 64), (1023, 17), (40, 1025), (65, 1100)])
def test_direct_a_pack_same_bits(amx, monkeypatch, dtype, M, K):
    # NNFAST_BF16_AMX_DIRECT_A (read per call): row-major A converted straight into tile
    # rows vs pack_pairs + the tile transpose: only the route of each value changes.
    rng = np.random.default_rng(M * 31 + K)
    calls = []
    for row_pad in (0, 5):
        A = _row_major_a(rng, M, K, dtype, row_pad)
        assert A.strides[1] == A.itemsize
        for N, beta in ((33, 0.0), (64, 1.0)):
            B = rng.standard_normal((K, N)).astype(np.float32)
            C0 = rng.standard_normal((M, N)).astype(np.float32)

            def make(A=A, B=B, C0=C0, beta=beta):
                C = C0.copy()
                _C.gemm(C, A, B, 1.0, beta, precision="bf16")
                return C
            calls.append(make)
    _same_bits_over_switch(monkeypatch, "NNFAST_BF16_AMX_DIRECT_A", calls)
    # and against float64 with the bound (the direct route itself)
    t._check(M, 33, K, dtype, np.float32, np.float32, "C", "F", beta=1.0)


@pytest.mark.parametrize("M,N,K", [(32, 2080, 1100), (64, 4096, 600), (96, 2048, 2100)])
def test_wide_b_blocking_same_bits(amx, monkeypatch, M, N, K):
    # A B whose K block passes 1 MiB (N * min(K, 512) * 2 bytes) gets MC = 256 / KC = 1024
    # (NNFAST_BF16_AMX_WIDE, read per call). On whole 32 x 32 blocks with alpha = 1 and
    # beta 0 / 1, later K blocks reload C into the accumulators and go on summing: only
    # where the sum is split changes, so the same bits (1 and 2 threads). Edge blocks add
    # each K block's float tile into C, so they round differently: the bound test below.
    rng = np.random.default_rng(M + N + K)
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(BF16)
    C0 = rng.standard_normal((M, N)).astype(np.float32)
    old_nt = _C.get_num_threads()
    try:
        for nt in (1, 2):
            _C.set_num_threads(nt)
            calls = []
            for beta in (0.0, 1.0):
                def make(beta=beta):
                    C = C0.copy()
                    _C.gemm(C, A, B, 1.0, beta, precision="bf16")
                    return C
                calls.append(make)
            _same_bits_over_switch(monkeypatch, "NNFAST_BF16_AMX_WIDE", calls)
    finally:
        _C.set_num_threads(old_nt)


@pytest.mark.parametrize("M,N,K,alpha,beta", [(33, 2085, 1100, -0.5, 0.5), (1, 2049, 513, 1.0, 1.0),
                                              (7, 2100, 2100, 1.0, 0.0)])
def test_wide_b_blocking_bound(amx, M, N, K, alpha, beta):
    t._check(M, N, K, np.float32, BF16, np.float32, "C", "F", alpha=alpha, beta=beta)
    t._check(M, N, K, BF16, np.float32, BF16, "S", "C", alpha=alpha, beta=beta)
