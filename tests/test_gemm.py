"""nnfast._C.gemm / bias_grad against float64 NumPy references.

One table of cases: shapes around the micro-tile (1..65) and odd sizes, every
transpose case (strided views, never copies), non-contiguous inputs, float32 and
float64, alpha/beta (beta = 0 with a NaN-filled output), every fused epilogue
(bias, activations, aux, dact), and each SIMD level this CPU has, forced in a
subprocess with NNFAST_ISA.
"""
from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest

nnfast = pytest.importorskip("nnfast")
_C = nnfast._C

# Activation codes (nnfast::Act) with float64 reference forward / derivative.
SQRT2 = math.sqrt(2.0)
_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


ACTS = {
    # name: (code, params (a, b), forward(x), derivative(x, y))
    "identity": (0, (0.0, 0.0), lambda x: x, lambda x, y: np.ones_like(x)),
    "relu": (1, (0.0, 0.0), lambda x: np.maximum(x, 0), lambda x, y: (y > 0).astype(np.float64)),
    "leaky_relu": (2, (0.1, 0.0), lambda x: np.where(x > 0, x, 0.1 * x), lambda x, y: np.where(x > 0, 1.0, 0.1)),
    "elu": (3, (1.0, 0.0), lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda x, y: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    "sigmoid": (4, (0.0, 0.0), _sigmoid, lambda x, y: y * (1 - y)),
    "tanh": (5, (0.0, 0.0), np.tanh, lambda x, y: 1 - y * y),
    "gelu": (6, (0.0, 0.0), lambda x: 0.5 * x * (1 + _erf(x / SQRT2)),
             lambda x, y: 0.5 * (1 + _erf(x / SQRT2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
    "gelu_tanh": (7, (0.0, 0.0),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))), None),
    "silu": (8, (0.0, 0.0), lambda x: x * _sigmoid(x), lambda x, y: _sigmoid(x) * (1 + x * (1 - _sigmoid(x)))),
    "softplus": (9, (1.0, 20.0), lambda x: np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0)))),
                 lambda x, y: np.where(x > 20.0, 1.0, _sigmoid(x))),
    "hardtanh": (10, (-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
                 lambda x, y: ((x > -0.5) & (x < 0.5)).astype(np.float64)),
}
FROM_OUTPUT = {"identity", "relu", "sigmoid", "tanh"}  # derivative takes the saved output

EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


def _mat(rng, rows, cols, dtype, layout):
    """A rows x cols operand laid out as: C (row-major), F (transposed view), S (strided view),
    R (negative strides: both axes reversed), P / Q (C / F with a gap after each row / column)."""
    if layout == "R":
        return rng.standard_normal((rows, cols)).astype(dtype)[::-1, ::-1]
    if layout == "C":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if layout == "F":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    if layout == "P":  # row-major with padded rows (unit column stride, row stride > cols)
        return rng.standard_normal((rows, cols + 5)).astype(dtype)[:, :cols]
    if layout == "Q":  # transposed view of padded rows (unit row stride, column stride > rows)
        return rng.standard_normal((cols, rows + 3)).astype(dtype)[:, :rows].T
    big = rng.standard_normal((2 * rows + 1, 3 * cols + 2)).astype(dtype)
    return big[1::2, 2::3][:rows, :cols]


def _check(M, N, K, dtype, la="C", lb="C", alpha=1.0, beta=0.0, bias=False, act="identity", aux=False,
           dact=False, c_padded=False, seed=0):
    rng = np.random.default_rng(seed + M * 1000003 + N * 1009 + K)
    A = _mat(rng, M, K, dtype, la)
    B = _mat(rng, K, N, dtype, lb)
    if c_padded:  # output rows with a gap (row stride > N)
        C_full = rng.standard_normal((M, N + 3)).astype(dtype)
        C = C_full[:, :N]
        pad0 = C_full[:, N:].copy()
    else:
        C = rng.standard_normal((M, N)).astype(dtype)
    if beta == 0.0:
        C[...] = np.nan  # beta == 0: C must never be read
    C0 = C.astype(np.float64)
    code, (pa, pb), fwd, dfn = ACTS[act]
    bias_a = rng.standard_normal(N).astype(dtype) if bias and not dact else None
    aux_a = np.full((M, N), -7.0, dtype) if aux and not dact else None
    src = rng.standard_normal((M, N)).astype(dtype) if dact else None
    _C.gemm(C, A, B, alpha, beta, bias_a, code, pa, pb, aux_a, src)

    a64, b64 = A.astype(np.float64), B.astype(np.float64)
    z = alpha * (a64 @ b64) + (beta * C0 if beta != 0.0 else 0.0)
    mag = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + (abs(beta) * np.abs(C0) if beta != 0.0 else 0.0) + 1.0
    tol = 4.0 * (K + 4) * EPS[dtype] * mag
    if dact:
        s = src.astype(np.float64)
        want = z * (dfn(np.zeros_like(s), s) if act in FROM_OUTPUT else dfn(s, None))
        tol = 2 * tol
    else:
        if bias_a is not None:
            z = z + bias_a.astype(np.float64)
        want = fwd(z)
        if aux_a is not None:
            np.testing.assert_array_less(np.abs(aux_a - z), tol + 1e-300, err_msg="aux (pre-activation) mismatch")
        tol = 2 * tol + 8 * EPS[dtype] * np.abs(want)
    got = C.astype(np.float64)
    bad = ~(np.abs(got - want) <= tol)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AssertionError(f"gemm M={M} N={N} K={K} {dtype.__name__} {la}{lb} alpha={alpha} beta={beta} "
                             f"bias={bias} act={act} aux={aux} dact={dact}: {bad.sum()} bad, e.g. [{i},{j}] "
                             f"got {got[i, j]!r} want {want[i, j]!r}")
    if c_padded:
        assert np.array_equal(C_full[:, N:], pad0), "wrote into the row padding of C"


SIZES = [1, 2, 5, 6, 7, 8, 12, 13, 16, 17, 31, 32, 33, 48, 49, 64, 65]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("la,lb", list(itertools.product("CFS", "CFS")))
def test_transposes_and_tile_edges(dtype, la, lb):
    # A rotating subset of the size grid per layout pair keeps the run short.
    for n, (M, N) in enumerate(itertools.product(SIZES, SIZES)):
        if (n + ord(la) + 3 * ord(lb)) % 5:
            continue
        K = SIZES[(M * 7 + N * 3) % len(SIZES)]
        beta = [0.0, 1.0, 0.5][n % 3]
        _check(M, N, K, dtype, la, lb, alpha=-1.5 if n % 4 == 0 else 1.0, beta=beta, c_padded=n % 2 == 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 1, 33), (1, 257, 7), (33, 7, 1), (257, 129, 1023),
                                   (150, 260, 300), (64, 128, 784), (7, 4200, 9), (300, 33, 520)])
def test_odd_and_blocked_sizes(dtype, M, N, K):
    for la, lb in [("C", "C"), ("C", "F"), ("F", "C"), ("F", "F"), ("R", "S")]:
        _check(M, N, K, dtype, la, lb, beta=0.0 if la == lb else 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", list(ACTS))
def test_forward_epilogues(dtype, act):
    # The last shape spans several MC row blocks and KC blocks (the epilogue
    # runs once per finished block, after the last K block only).
    for n, (M, N, K, bias, aux) in enumerate([(37, 53, 29, True, False), (6, 16, 5, True, True),
                                              (65, 33, 70, False, True), (1, 7, 3, False, False),
                                              (301, 70, 600, True, True)]):
        _check(M, N, K, dtype, "C", "F" if n % 2 else "C", beta=float(n % 2), bias=bias, act=act, aux=aux)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", [a for a in ACTS if ACTS[a][3] is not None])
def test_backward_epilogue(dtype, act):
    _check(37, 53, 29, dtype, "C", "F", dact=True, act=act)
    _check(6, 17, 64, dtype, "F", "C", beta=1.0, dact=True, act=act)
    _check(301, 45, 530, dtype, "C", "C", dact=True, act=act)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_zero_and_alpha_zero(dtype):
    for beta in (0.0, 1.0, 0.5):
        _check(9, 21, 0, dtype, beta=beta, bias=True, act="relu")
        _check(9, 21, 5, dtype, alpha=0.0, beta=beta, bias=True, aux=True, act="tanh")


def test_threads_agree():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((130, 300)).astype(np.float32)
    B = rng.standard_normal((300, 270)).astype(np.float32)
    old = _C.get_num_threads()
    outs = []
    try:
        for nt in (1, 2, 3):
            _C.set_num_threads(nt)
            C = np.empty((130, 270), np.float32)
            _C.gemm(C, A, B)
            outs.append(C)
    finally:
        _C.set_num_threads(old)
    # Each C element is computed by one thread with the same K order: identical bits.
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


# Shapes where the thread split and the tile choice differ between thread counts and between
# NNFAST_GEMM_GRID=1 / 0 (columns split inside a panel, 8- or 12-row tile per share): the MLP
# step's forward (64 x 128 x 784, B transposed) and dW (128 x 784 x 64, A transposed), LSTM-like
# 32 / 40-row products whose row shares read B in place, odd sizes; a transposed B with K
# blocks of 208 and 198 (whole and partial 2-block k steps of the transposing pack); 72 rows of
# row-major A on the 12-row tile (1 and 2 threads), whose 4 runs past the 8 x 8 block are transposed;
# the step's 784 -> 1024 forward (a column split) and a strided A on a row split (B packed once, shared).
SPLIT_CASES = [(64, 128, 784, "C", "F"), (128, 784, 64, "F", "C"), (64, 10, 128, "C", "F"), (37, 100, 53, "C", "C"),
               (7, 1023, 33, "S", "C"), (250, 97, 40, "F", "S"), (1, 130, 70, "C", "C"), (32, 1024, 40, "C", "C"),
               (40, 260, 30, "C", "C"), (50, 96, 1030, "C", "F"), (72, 64, 70, "C", "C"), (256, 1024, 784, "C", "F"),
               (1000, 100, 300, "S", "C"), (90, 70, 50, "F", "C"), (13, 50, 300, "S", "F"), (96, 33, 7, "C", "S")]


def _split_outputs(dtype=np.float32, nts=(1, 2, 3, 4)):
    """{case index: [C for each thread count]} with a bias + relu epilogue on odd cases."""
    rng = np.random.default_rng(11)
    old = _C.get_num_threads()
    outs = {}
    try:
        for ci, (M, N, K, la, lb) in enumerate(SPLIT_CASES):
            A, B = _mat(rng, M, K, dtype, la), _mat(rng, K, N, dtype, lb)
            bias = rng.standard_normal(N).astype(dtype) if ci % 2 else None
            C0 = rng.standard_normal((M, N)).astype(dtype)
            for nt in nts:
                _C.set_num_threads(nt)
                C = C0.copy()
                if bias is None:
                    _C.gemm(C, A, B, 1.0, 0.5)
                else:
                    _C.gemm(C, A, B, 1.0, 0.0, bias, ACTS["relu"][0], 0.0, 0.0)
                outs.setdefault(ci, []).append(C)
            ref = A.astype(np.float64) @ B.astype(np.float64)
            ref = ref + 0.5 * C0 if bias is None else np.maximum(ref + bias, 0)
            tol = 30 * EPS[dtype] * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64) + 1)
            assert np.all(np.abs(outs[ci][0] - ref) <= tol), (M, N, K)
    finally:
        _C.set_num_threads(old)
    return outs


# The narrow-C dot path (NNFAST_GEMM_DOT: N <= 12, K >= 32, A rows and B columns contiguous along
# K): odd M / N / K, K tails past the vector width, padded operands, beta, bias + activation,
# act' epilogue, C with padded rows, 1 to 3 threads; float64 reference, the GEMM bound.
DOT_CASES = [(1, 1, 32, "C", "F"), (7, 10, 33, "P", "Q"), (64, 10, 128, "C", "F"), (1023, 3, 1023, "C", "Q"),
             (5, 12, 40, "P", "F"), (13, 7, 1024, "C", "F"), (256, 10, 1024, "P", "F"), (9, 11, 63, "C", "F")]


def _dot_checks(dtype, nts=(1, 2, 3)):
    old = _C.get_num_threads()
    try:
        for nt in nts:
            _C.set_num_threads(nt)
            for n, (M, N, K, la, lb) in enumerate(DOT_CASES):
                _check(M, N, K, dtype, la, lb, beta=0.5 * (n % 2), c_padded=n % 3 == 0)
                _check(M, N, K, dtype, la, lb, alpha=-0.5, bias=True, act="relu", aux=True, seed=1)
                _check(M, N, K, dtype, la, lb, beta=1.0, act="tanh", dact=True, seed=2)
    finally:
        _C.set_num_threads(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_narrow_dot_path(dtype):
    _dot_checks(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_splits_same_bits(dtype):
    # Any thread count picks its own grid and tile; each C element is still one thread's
    # sum over the same K blocks in the same order: the bits never change.
    for ci, cs in _split_outputs(dtype).items():
        for nt, C in zip((2, 3, 4), cs[1:]):
            assert np.array_equal(cs[0], C), (SPLIT_CASES[ci], nt)


_GRID_CHILD = r"""
import sys, numpy as np
sys.path[:0] = sys.argv[1:]
import test_gemm as t
outs = t._split_outputs(np.float32, (1, 2))
sums = [a for _, arrs in t._row_sum_outputs(np.float32, (1, 2)) for a in arrs]
np.save(sys.stdout.buffer, np.concatenate([c.ravel() for cs in outs.values() for c in cs] + [a.ravel() for a in sums]))
"""


@pytest.mark.parametrize("switch", ["NNFAST_GEMM_GRID", "NNFAST_GEMM_PACK_A_T", "NNFAST_GEMM_ALT_TILE",
                                    "NNFAST_GEMM_PACK_RUNS", "NNFAST_GEMM_ROW_SUMS", "NNFAST_GEMM_SHARED_PACK",
                                    "NNFAST_GEMM_DIRECT_A", "NNFAST_GEMM_ASM_TILE"])
def test_switches_same_bits(switch):
    # Each A/B switch at 0 (GRID: the whole-panel split, tile chosen on all of C; PACK_A_T: the
    # 12-row A panels gathered k by k; ALT_TILE: the 12 x 32 tile only; PACK_RUNS: the transposing
    # pack walks all the panel's runs at each k step; ROW_SUMS: gemm's row_sums by a bias_grad
    # pass after the GEMM; SHARED_PACK: each thread packs the operand shared by a row or column
    # split itself; DIRECT_A: A always packed, never read in place by a share of <= 96 rows;
    # ASM_TILE: the intrinsics 12 x 32 / in-place-A 8 x 48 tiles instead of the inline-asm ones) gives
    # the default's bits on 1 and 2 threads.
    import io

    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here] + [p for p in sys.path if p]
    got = []
    for val in ("1", "0"):
        r = subprocess.run([sys.executable, "-c", _GRID_CHILD] + paths, env=dict(os.environ, **{switch: val}),
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        got.append(np.load(io.BytesIO(r.stdout)))
    assert got[0].size > 0 and np.array_equal(got[0], got[1])


# gemm(..., row_sums=): a Linear's dW = dz^T x with db = column sums of dz from the GEMM's pack of
# dz^T. Shapes: GPT-micro's dW (128 / 384 / 70 rows, K = 1024 tokens: 4 K blocks; 1 x 2 and 2 x 1
# thread grids), the MLP's (1024 x 784 x 256: two column blocks of the 8 x 48 tile), odd sizes
# (1, 7, 1023 rows: partial panels), K = 1 and a K tail; A transposed (dz^T), row-major, strided.
ROW_SUM_CASES = [(128, 128, 1024, "F"), (384, 128, 1024, "F"), (70, 128, 1024, "F"), (1024, 784, 256, "F"),
                 (1, 1, 1, "C"), (7, 5, 3, "S"), (1023, 33, 65, "F"), (13, 1030, 300, "C"), (64, 10, 9, "R")]


def _row_sum_outputs(dtype, nts=(1, 2, 3, 4)):
    """[(case, [C, row_sums accumulated, row_sums fresh] per thread count)], each checked against
    plain gemm and bias_grad (same bits) and a float64 reference."""
    rng = np.random.default_rng(17)
    old = _C.get_num_threads()
    out = []
    try:
        for M, N, K, la in ROW_SUM_CASES:
            A, B = _mat(rng, M, K, dtype, la), _mat(rng, K, N, dtype, "C")
            C0 = rng.standard_normal((M, N)).astype(dtype)
            s0 = rng.standard_normal(M).astype(dtype)
            ref_c, ref_s = C0.copy(), s0.copy()
            _C.gemm(ref_c, A, B, 1.0, 1.0)
            _C.bias_grad(ref_s, A.T, True)
            ref_fresh = np.empty(M, dtype)
            _C.bias_grad(ref_fresh, A.T, False)
            s64 = A.astype(np.float64).sum(1)
            tol = 8 * (K + 1) * EPS[dtype] * (np.abs(A).astype(np.float64).sum(1) + 1)
            assert np.all(np.abs(ref_fresh - s64) <= tol), (M, N, K)
            arrs = []
            for nt in nts:
                _C.set_num_threads(nt)
                c, s = C0.copy(), s0.copy()
                _C.gemm(c, A, B, 1.0, 1.0, row_sums=s)  # accumulate (the default)
                fresh = np.full(M, np.nan, dtype)
                c2 = np.full((M, N), np.nan, dtype)
                _C.gemm(c2, A, B, row_sums=fresh, row_sums_accumulate=False)
                for got, want in ((c, ref_c), (s, ref_s), (fresh, ref_fresh)):
                    assert np.array_equal(got, want), (M, N, K, la, nt)
                arrs += [c, s, fresh, c2]
            out.append(((M, N, K, la), arrs))
    finally:
        _C.set_num_threads(old)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_same_bits(dtype):
    # C is plain gemm's, row_sums bias_grad's on A^T, on 1..4 threads (whichever thread grid).
    assert len(_row_sum_outputs(dtype)) == len(ROW_SUM_CASES)


def test_row_sums_bad_input():
    A, B = np.ones((4, 3), np.float32), np.ones((3, 5), np.float32)
    C = np.empty((4, 5), np.float32)
    bad = [dict(row_sums=np.zeros(5, np.float32)), dict(row_sums=np.zeros(4, np.float64)),
           dict(row_sums=np.zeros(8, np.float32)[::2]), dict(row_sums=np.zeros(4, np.float32), bias=np.zeros(5, np.float32)),
           dict(row_sums=np.zeros(4, np.float32), act=1)]
    for kw in bad:
        with pytest.raises((ValueError, TypeError), match=r"^\[gemm\] expected"):
            _C.gemm(C, A, B, **kw)
    out = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match=r"^\[gemm\] expected"):  # row sums written into out itself
        _C.gemm(out, A, np.ones((3, 4), np.float32), row_sums=out[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_same_bits_as_adding_after(dtype):
    # The kernel adds the bias as it stores C (last K block, full and edge tiles, C rows
    # with a gap); the result must be bit-identical to alpha * A.B + beta * C, rounded, plus bias.
    rng = np.random.default_rng(5)
    for M, N, K, beta in [(37, 53, 29, 0.0), (200, 190, 270, 1.0), (25, 48, 48, 0.5), (1, 7, 3, 0.0)]:
        A = rng.standard_normal((M, K)).astype(dtype)
        B = rng.standard_normal((N, K)).astype(dtype).T
        bias = rng.standard_normal(N).astype(dtype)
        C0 = rng.standard_normal((M, N)).astype(dtype)
        for c_layout in ("C", "padded"):
            c1 = C0.copy() if c_layout == "C" else np.pad(C0, ((0, 0), (0, 3)))[:, :N]
            c2 = c1.copy()
            _C.gemm(c1, A, B, 0.75, beta, bias)
            _C.gemm(c2, A, B, 0.75, beta)
            np.testing.assert_array_equal(c1, c2 + bias, err_msg=f"{M}x{N}x{K} beta={beta} C={c_layout}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_grad(dtype):
    rng = np.random.default_rng(5)
    for M, N in [(1, 1), (3, 5), (300, 700), (64, 1030)]:
        G = rng.standard_normal((M, N)).astype(dtype)
        for g in (G, np.asfortranarray(G), G[:, ::-1]):
            db = np.full(N, 0.5, dtype)
            _C.bias_grad(db, g, True)
            ref = g.astype(np.float64).sum(0) + 0.5
            tol = 8 * (M + 1) * EPS[dtype] * (np.abs(g).astype(np.float64).sum(0) + 1)
            assert np.all(np.abs(db - ref) <= tol)
            _C.bias_grad(db, g, False)
            assert np.all(np.abs(db - (ref - 0.5)) <= tol)


def _cpu_has(isa: str) -> bool:
    if hasattr(_C, "cpu_isa_supported"):
        return bool(_C.cpu_isa_supported(isa))
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    need = {"generic": [], "avx2": ["avx2", "fma"], "avx512": ["avx512f", "avx512vl", "avx512bw", "avx512dq"]}[isa]
    return all(f" {f}" in flags for f in need)


_CHILD = r"""
import sys, numpy as np
sys.path[:0] = sys.argv[2:]
import test_gemm as t
from nnfast import _C
assert _C.cpu_isa() == sys.argv[1], (_C.cpu_isa(), sys.argv[1])
for dt in (np.float32, np.float64):
    for M, N, K in [(1, 1, 1), (13, 17, 31), (65, 49, 64), (150, 260, 300), (64, 128, 784), (7, 300, 9)]:
        for la, lb in [("C", "C"), ("C", "F"), ("F", "C"), ("S", "S")]:
            t._check(M, N, K, dt, la, lb, beta=0.0 if la == lb else 0.5)
    t._check(37, 53, 29, dt, bias=True, act="gelu", aux=True)
    t._check(37, 53, 29, dt, act="tanh", dact=True, beta=1.0)
for nt in (1, 2):
    _C.set_num_threads(nt)
    t._check(200, 190, 270, np.float32, "F", "F", beta=1.0, bias=True, act="relu")
for dt in (np.float32, np.float64):
    t._row_sum_outputs(dt, (1, 2))
    t._dot_checks(dt, (1, 2))
for dt in (np.float32, np.float64):
    for ci, cs in t._split_outputs(dt, (1, 2, 3)).items():
        assert all(np.array_equal(cs[0], c) for c in cs[1:]), (dt, t.SPLIT_CASES[ci])
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_isa_subprocess(isa):
    if not _cpu_has(isa):
        pytest.skip(f"CPU lacks {isa}")
    env = dict(os.environ, NNFAST_ISA=isa)
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here] + [p for p in sys.path if p]
    r = subprocess.run([sys.executable, "-c", _CHILD, isa] + paths, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batched_narrow_same_bits_any_threads(dtype):
    # gemm_batched runs small products one per thread when threaded, and through gemm() on one
    # thread: both must choose the same kernel (the narrow-C dot path sums in another order).
    rng = np.random.default_rng(7)
    for batch, M, N, K in [(7, 1, 1, 1023), (5, 7, 10, 64), (3, 9, 12, 33), (4, 13, 5, 200)]:
        A = rng.standard_normal((batch, M, K)).astype(dtype)
        B = rng.standard_normal((batch, N, K)).astype(dtype).transpose(0, 2, 1)  # columns contiguous along K
        outs = []
        old = _C.get_num_threads()
        try:
            for nt in (1, 2, 3):
                _C.set_num_threads(nt)
                C = np.zeros((batch, M, N), dtype)
                _C.bmm(C, A, B)
                outs.append(C)
        finally:
            _C.set_num_threads(old)
        ref = np.einsum("bmk,bkn->bmn", A.astype(np.float64), B.astype(np.float64))
        assert np.allclose(outs[0], ref, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4 if dtype == np.float32 else 1e-12)
        for nt, C in zip((2, 3), outs[1:]):
            assert np.array_equal(outs[0], C), (batch, M, N, K, nt)
