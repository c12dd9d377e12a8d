"""nnfast._C.gemm / bmm with precision="bf16" against float64 references.

A and B are rounded to bf16 (round to nearest even) while packed, products
accumulate in float32, the epilogue runs in float32 and each bf16 store is
rounded once. So against the exact float64 product of the ORIGINAL operands

    |C - A.B| <= (2 u + u^2) sum_k |a_ik||b_kj| + gamma_K sum_k |a~_ik||b~_kj|,
    u = 2^-8 (bf16 unit roundoff), gamma_K ~ K 2^-24 (float32 accumulation),

plus 2^-8 |C| when C itself is stored as bf16. Every bf16 path this CPU has
(portable; AVX512-BF16; AMX-BF16) runs in process (_C.set_bf16_level) and the
environment switch NNFAST_BF16 in a subprocess. Every operand dtype mix,
transposed / strided / reversed operands, sizes 1, 7 and 1023, epilogues and
bad inputs are covered.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

nnfast = pytest.importorskip("nnfast")
ml_dtypes = pytest.importorskip("ml_dtypes")
_C = nnfast._C
BF16 = np.dtype(ml_dtypes.bfloat16)
U_BF16 = 2.0 ** -8
U_F32 = 2.0 ** -24

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_gemm import ACTS, FROM_OUTPUT, _mat  # noqa: E402  (shared activation table and layouts)

from conftest import BF16_LEVELS  # noqa: E402

# conftest's levels plus AMX where this CPU (and Linux's tile permission) has it; the
# module's own `level` fixture (overriding conftest's) runs every level test on each.
LEVELS = list(BF16_LEVELS) + [lv for lv in ("amx_bf16",) if lv not in BF16_LEVELS and _C.bf16_level_supported(lv)]
# The vdpbf16ps / tile kernels this CPU runs (not the portable path).
KERNEL_LEVELS = [lv for lv in LEVELS if lv != "portable"]


@pytest.fixture(params=LEVELS)
def level(request):
    old = _C.bf16_level()
    _C.set_bf16_level(request.param)
    try:
        yield request.param
    finally:
        _C.set_bf16_level(old)



def _f64(x):
    return np.asarray(x).astype(np.float64)


def _rne(x):
    """float32 -> bf16 -> float64 (ml_dtypes rounds to nearest even)."""
    return _f64(np.asarray(x, np.float32).astype(BF16))


def _operand(rng, rows, cols, dtype, layout):
    """A rows x cols operand of dtype in test_gemm's layouts (C, F, S, R)."""
    m = _mat(rng, rows, cols, np.float32, layout)
    return _relayout_bf16(m) if dtype == BF16 else m


def _relayout_bf16(m):
    """A bf16 copy of m with the same kind of layout (F: transposed view, S/R: strided view)."""
    rows, cols = m.shape
    if m.flags.c_contiguous:
        return m.astype(BF16)
    if m.strides[0] < 0:  # reversed
        return np.ascontiguousarray(m[::-1, ::-1]).astype(BF16)[::-1, ::-1]
    if m.flags.f_contiguous and not m.flags.c_contiguous:
        return np.ascontiguousarray(m.T).astype(BF16).T
    big = np.zeros((2 * rows + 1, 3 * cols + 2), BF16)
    v = big[1::2, 2::3][:rows, :cols]
    v[...] = m.astype(BF16)
    return v


def _check(M, N, K, ta=np.float32, tb=np.float32, tc=np.float32, la="C", lb="C", alpha=1.0, beta=0.0,
           bias=None, act="identity", aux=None, dact=None, seed=0):
    """One call; bias / aux / dact are None or the dtype of that array."""
    rng = np.random.default_rng(seed + 7919 * M + 31 * N + K)
    A = _operand(rng, M, K, ta, la)
    B = _operand(rng, K, N, tb, lb)
    C = rng.standard_normal((M, N)).astype(tc)
    if beta == 0.0:
        C[...] = np.nan  # never read
    C0 = _f64(C)
    code, (pa, pb), fwd, dfn = ACTS[act]
    bias_a = rng.standard_normal(N).astype(bias) if bias is not None and dact is None else None
    aux_a = np.full((M, N), -7.0, aux) if aux is not None and dact is None else None
    src = rng.standard_normal((M, N)).astype(dact) if dact is not None else None
    # The same call with a float32 out / aux: a bf16 store must be its RNE.
    C32 = C.astype(np.float32)
    aux32 = None if aux_a is None else np.full((M, N), -7.0, np.float32)
    _C.gemm(C, A, B, alpha, beta, bias_a, code, pa, pb, aux_a, src, precision="bf16")
    _C.gemm(C32, A, B, alpha, beta, bias_a, code, pa, pb, aux32, src, precision="bf16")
    if tc == BF16:
        assert np.array_equal(C.view(np.uint16), C32.astype(BF16).view(np.uint16)), "bf16 out != RNE(float32 out)"
    if aux_a is not None and aux == BF16:
        assert np.array_equal(aux_a.view(np.uint16), aux32.astype(BF16).view(np.uint16)), "bf16 aux != RNE"

    a64, b64 = _f64(A), _f64(B)  # bf16 operands are exact; float32 ones not yet rounded
    ar, br = (_rne(A) if ta != BF16 else a64), (_rne(B) if tb != BF16 else b64)
    z = alpha * (a64 @ b64) + (beta * C0 if beta != 0.0 else 0.0)
    mag_in = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    mag_r = abs(alpha) * (np.abs(ar) @ np.abs(br)) + (abs(beta) * np.abs(C0) if beta != 0.0 else 0.0)
    tol = (2 * U_BF16 + U_BF16 ** 2) * mag_in + (K + 4) * U_F32 * mag_r + 1e-30
    if dact is not None:
        s = _f64(src)
        want = z * (dfn(np.zeros_like(s), s) if act in FROM_OUTPUT else dfn(s, None))
        tol = 2 * tol
    else:
        if bias_a is not None:
            z = z + _f64(bias_a)
        want = fwd(z)
        if aux_a is not None:
            tol_aux = tol + (U_BF16 * np.abs(z) if aux == BF16 else 0.0)
            bad = ~(np.abs(_f64(aux_a) - z) <= tol_aux + 4 * U_F32 * np.abs(z))
            assert not bad.any(), "aux (pre-activation) mismatch"
        tol = 2 * tol + 8 * U_F32 * np.abs(want)
    if tc == BF16:
        tol = tol + U_BF16 * np.abs(want)
    got = _f64(C)
    bad = ~(np.abs(got - want) <= tol)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AssertionError(f"gemm bf16 M={M} N={N} K={K} A {np.dtype(ta)} {la} B {np.dtype(tb)} {lb} "
                             f"C {np.dtype(tc)} act={act}: {bad.sum()} bad, e.g. [{i},{j}] got {got[i, j]!r} "
                             f"want {want[i, j]!r} tol {tol[i, j]!r}")
    return C


DTYPES = [np.float32, BF16]


@pytest.mark.parametrize("ta,tb,tc", list(itertools.product(DTYPES, DTYPES, DTYPES)))
def test_dtype_mixes_and_layouts(level, ta, tb, tc):
    shapes = [(1, 1, 1), (7, 5, 3), (13, 33, 17), (37, 70, 1023), (1023, 7, 40), (25, 1023, 9)]
    layouts = list(itertools.product("CFSR", "CFSR"))
    for n, (M, N, K) in enumerate(shapes):
        for la, lb in layouts[n::len(shapes)]:
            _check(M, N, K, ta, tb, tc, la, lb, alpha=-1.5 if n % 2 else 1.0, beta=[0.0, 1.0, 0.5][n % 3])


@pytest.mark.parametrize("M,N,K", [(300, 130, 1100), (150, 260, 300), (64, 128, 784), (12, 32, 512), (13, 33, 513)])
def test_blocked_sizes(level, M, N, K):
    # Several K blocks (partial sums stay float32 between them), MC row blocks, tile edges.
    for la, lb in [("C", "C"), ("C", "F"), ("F", "C"), ("S", "R")]:
        _check(M, N, K, np.float32, BF16 if la == "F" else np.float32, BF16 if lb == "R" else np.float32, la, lb,
               beta=1.0 if la == "S" else 0.0)


@pytest.mark.parametrize("act", list(ACTS))
def test_forward_epilogues(level, act):
    for n, (M, N, K) in enumerate([(37, 53, 29), (6, 16, 5), (301, 70, 600)]):
        t = [np.float32, BF16][n % 2]
        _check(M, N, K, np.float32, BF16, [BF16, np.float32][n % 2], "C", "F" if n % 2 else "C",
               beta=float(n % 2), bias=t, aux=[BF16, np.float32][(n + 1) % 2], act=act)


@pytest.mark.parametrize("act", [a for a in ACTS if ACTS[a][3] is not None])
def test_backward_epilogue(level, act):
    _check(37, 53, 29, BF16, np.float32, np.float32, "C", "F", dact=BF16, act=act)
    _check(6, 17, 64, np.float32, np.float32, BF16, "F", "C", beta=1.0, dact=np.float32, act=act)


def test_k_zero_and_alpha_zero(level):
    for beta in (0.0, 1.0):
        _check(9, 21, 0, BF16, BF16, BF16, beta=beta, bias=BF16, act="relu")
        _check(9, 21, 5, np.float32, BF16, np.float32, alpha=0.0, beta=beta, bias=np.float32, aux=BF16, act="tanh")


def test_paths_agree_and_threads_deterministic():
    rng = np.random.default_rng(11)
    A = rng.standard_normal((130, 700)).astype(np.float32)
    B = rng.standard_normal((700, 90)).astype(BF16)
    outs = {}
    old_lv, old_nt = _C.bf16_level(), _C.get_num_threads()
    try:
        for lv in LEVELS:
            _C.set_bf16_level(lv)
            for nt in (1, 2, 3):
                _C.set_num_threads(nt)
                C = np.empty((130, 90), np.float32)
                _C.gemm(C, A, B, precision="bf16")
                outs[lv, nt] = C
    finally:
        _C.set_bf16_level(old_lv)
        _C.set_num_threads(old_nt)
    for lv in LEVELS:  # one owner per C element, fixed K order: the same bits for any thread count
        assert np.array_equal(outs[lv, 1], outs[lv, 2]) and np.array_equal(outs[lv, 1], outs[lv, 3])
    # Portable = float32 GEMM of the rounded operands, bit for bit.
    ref = np.empty((130, 90), np.float32)
    _C.gemm(ref, A.astype(BF16).astype(np.float32), B.astype(np.float32))
    assert np.array_equal(outs["portable", 1], ref)
    # Paths differ only in float32 summation order.
    mag = np.abs(_rne(A)) @ np.abs(_f64(B))
    for lv in LEVELS:
        assert np.all(np.abs(_f64(outs[lv, 1]) - _f64(ref)) <= 2 * 704 * U_F32 * mag)


def test_rounding_of_operands(level):
    # Operand values chosen on bf16 rounding boundaries: ties to even, NaN, inf.
    one = np.float32(1.0)
    ulp = np.float32(2.0 ** -7)
    a = np.array([[one + ulp / 2, one + 3 * ulp / 2, one + ulp / 2 + ulp / 64, 3.0e38, np.float32(np.inf),
                   np.float32(np.nan)]], np.float32)
    want = [1.0, 1.0 + 2 * 2.0 ** -7, 1.0 + 2.0 ** -7, float(np.float32(3.0e38).astype(BF16)), np.inf, np.nan]
    for k in range(a.shape[1]):
        A = a[:, k:k + 1]
        B = np.ones((1, 1), np.float32)
        C = np.empty((1, 1), np.float32)
        _C.gemm(C, A, B, precision="bf16")
        if np.isnan(want[k]):
            assert np.isnan(C[0, 0])
        else:
            assert C[0, 0] == want[k], (k, C[0, 0], want[k])
    # A NaN anywhere in a row of A poisons that row of C only.
    A = np.ones((3, 40), np.float32)
    A[1, 17] = np.nan
    C = np.empty((3, 5), BF16)
    _C.gemm(C, A, np.ones((40, 5), np.float32), precision="bf16")
    assert np.isnan(_f64(C[1])).all() and np.array_equal(_f64(C[[0, 2]]), np.full((2, 5), 40.0))


@pytest.mark.parametrize("tc", DTYPES)
def test_bmm(level, tc):
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 7, 1023)).astype(np.float32)
    B = rng.standard_normal((1023, 9)).astype(BF16)
    Bb = np.broadcast_to(B, (3, 1023, 9))  # batch stride 0
    C = np.empty((3, 7, 9), tc)
    _C.bmm(C, A, Bb, precision="bf16")
    for b in range(3):
        C2 = np.empty((7, 9), tc)
        _C.gemm(C2, A[b], B, precision="bf16")
        assert np.array_equal(_f64(C[b]), _f64(C2))
    ref = _f64(A) @ _f64(B)
    tol = (2 * U_BF16 + 1100 * U_F32) * (np.abs(_f64(A)) @ np.abs(_f64(B))) + (U_BF16 * np.abs(ref) if tc == BF16 else 0)
    assert np.all(np.abs(_f64(C) - ref) <= tol)


def test_bf16_peak_probe():
    old = _C.bf16_level()
    try:
        if "avx512_bf16" in LEVELS:
            _C.set_bf16_level("avx512_bf16")
        peak = _C.bf16_peak_gflops(0.05)
        if not _C.bf16_level_supported("avx512_bf16"):
            assert peak == 0.0
            return
        fp32 = _C.fma_peak_gflops(False, 0.05)
        # vdpbf16ps: twice the fp32 FMA rate on Zen 4 / 5, but half of it on this AMX Xeon
        # (measured: ~105 vs ~210 GFLOP/s per core); loose for a loaded machine.
        assert peak > 0 and 0.3 < peak / fp32 < 4.0
        if "amx_bf16" in LEVELS:
            _C.set_bf16_level("amx_bf16")
            assert _C.bf16_kernel() == "amx_bf16"
            amx = _C.bf16_peak_gflops(0.05)
            assert amx / peak > 2.0  # tdpbf16ps: ~8x vdpbf16ps per core; loose for a loaded machine
    finally:
        _C.set_bf16_level(old)


def test_errors():
    A = np.ones((3, 4), np.float32)
    B = np.ones((4, 5), BF16)
    C = np.empty((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"^\[gemm\] expected precision 'fp32' or 'bf16', got 'fp16'"):
        _C.gemm(C, A, B, precision="fp16")
    with pytest.raises(TypeError, match=r"^\[gemm\] expected A to be float32 or bfloat16"):
        _C.gemm(C, A.astype(np.float64), B, precision="bf16")
    with pytest.raises(TypeError, match=r"^\[gemm\] expected out to be float32 or bfloat16"):
        _C.gemm(np.empty((3, 5), np.float16), A, B, precision="bf16")
    with pytest.raises(TypeError, match=r"^\[gemm\] expected B to have dtype float32"):
        _C.gemm(C, A, B)  # precision="fp32": one dtype for all
    with pytest.raises(TypeError, match=r"^\[gemm\] expected bias to be float32 or bfloat16"):
        _C.gemm(C, A, B, bias=np.ones(5, np.float64), precision="bf16")
    with pytest.raises(ValueError, match=r"^\[gemm\] expected bias of shape \(5,\)"):
        _C.gemm(C, A, B, bias=np.ones(4, BF16), precision="bf16")
    with pytest.raises(ValueError, match=r"^\[gemm\] expected A @ B with matching inner dimensions"):
        _C.gemm(C, A, np.ones((3, 5), BF16), precision="bf16")
    with pytest.raises(ValueError, match=r"^\[gemm\] expected aux not to share memory with out"):
        _C.gemm(C, A, B, aux=C, precision="bf16")
    with pytest.raises(TypeError, match=r"^\[bmm\] expected A to be float32 or bfloat16"):
        _C.bmm(np.empty((2, 3, 5), BF16), np.ones((2, 3, 4), np.int32), np.ones((2, 4, 5), BF16), precision="bf16")
    with pytest.raises(ValueError, match=r"^\[bmm\] expected precision"):
        _C.bmm(np.empty((2, 3, 5), BF16), np.ones((2, 3, 4), BF16), np.ones((2, 4, 5), BF16), precision="BF16")
    with pytest.raises(ValueError, match=r"^\[set_bf16_level\] expected"):
        _C.set_bf16_level("amx")


_CHILD = r"""
import sys
sys.path[:0] = sys.argv[3:]
import numpy as np
import test_gemm_bf16 as t
from nnfast import _C
assert _C.bf16_level() == sys.argv[1], (_C.bf16_level(), sys.argv[1])
assert _C.bf16_kernel() == sys.argv[2], (_C.bf16_kernel(), sys.argv[2])
t._check(150, 260, 300, np.float32, t.BF16, t.BF16, "C", "F", bias=t.BF16, act="gelu", aux=np.float32)
t._check(37, 53, 1023, t.BF16, np.float32, np.float32, "S", "R", beta=0.5)
print("ok")
"""


@pytest.mark.parametrize("env,level,kernel", [({"NNFAST_BF16": "portable"}, "portable", "portable"),
                                              ({"NNFAST_ISA": "avx2"}, None, "portable"),
                                              ({"NNFAST_BF16": "avx512_bf16"}, "avx512_bf16", None),
                                              ({}, None, None)])
def test_environment_switch_subprocess(env, level, kernel):
    """NNFAST_BF16 lowers the bf16 level; an ISA below AVX-512 runs the portable path."""
    if level is not None and level not in LEVELS:
        pytest.skip(f"CPU lacks {level}")
    if level is None:
        level = LEVELS[-1]
    if kernel is None:
        kernel = level if level != "portable" and _C.cpu_isa() == "avx512" else "portable"
    if env.get("NNFAST_ISA") == "avx2" and not _C.cpu_isa_supported("avx2"):
        pytest.skip("CPU lacks avx2")
    full = dict(os.environ, **env)
    if not env:
        full.pop("NNFAST_BF16", None)
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here] + [p for p in sys.path if p]
    r = subprocess.run([sys.executable, "-c", _CHILD, level, kernel] + paths, env=full, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_cuda_portable_path():
    """nnfast._C_cuda.gemm / bmm with precision="bf16" (the GPU's portable path) on the emulated
    cuda device: within the float32-summation bound of the CPU result, bf16 stores RNE."""
    if not _C.cuda_emulated():
        pytest.skip("checked on the emulated cuda device (host arrays)")
    from nnfast import _C_cuda

    rng = np.random.default_rng(5)
    M, N, K = 37, 21, 300
    for ta, tb, tc in [(np.float32, np.float32, np.float32), (BF16, np.float32, BF16), (np.float32, BF16, BF16)]:
        A = _operand(rng, M, K, ta, "C")
        B = _operand(rng, K, N, tb, "F")
        bias = rng.standard_normal(N).astype(BF16)
        aux_c, aux_g = np.empty((M, N), BF16), np.empty((M, N), BF16)
        want = np.empty((M, N), tc)
        got = np.empty((M, N), tc)
        _C.gemm(want, A, B, 1.0, 0.0, bias, 1, 0.0, 0.0, aux_c, precision="bf16")
        _C_cuda.gemm(got, A, B, 1.0, 0.0, bias, 1, 0.0, 0.0, aux_g, precision="bf16")
        mag = np.abs(_f64(A)) @ np.abs(_f64(B)) + np.abs(_f64(bias))
        tol = 2 * (K + 4) * U_F32 * mag + (2 * U_BF16 * np.abs(_f64(want)) if tc == BF16 else 0.0)
        assert np.all(np.abs(_f64(got) - _f64(want)) <= tol)
        assert np.all(np.abs(_f64(aux_g) - _f64(aux_c)) <= 2 * (K + 4) * U_F32 * mag + 2 * U_BF16 * np.abs(_f64(aux_c)))
    # beta with a bf16 C, and dact_src in bf16.
    C0 = rng.standard_normal((M, N)).astype(BF16)
    src = rng.standard_normal((M, N)).astype(BF16)
    want, got = C0.copy(), C0.copy()
    _C.gemm(want, A, B, 0.5, 1.0, None, 4, 0.0, 0.0, None, src, precision="bf16")
    _C_cuda.gemm(got, A, B, 0.5, 1.0, None, 4, 0.0, 0.0, None, src, precision="bf16")
    assert np.all(np.abs(_f64(got) - _f64(want)) <= 2 * (K + 4) * U_F32 * (mag + np.abs(_f64(C0))) +
                  2 * U_BF16 * np.abs(_f64(want)))
    # bmm, and the same errors as the CPU binding.
    Ab = rng.standard_normal((3, 5, 64)).astype(BF16)
    Bb = rng.standard_normal((3, 64, 6)).astype(np.float32)
    want, got = np.empty((3, 5, 6), np.float32), np.empty((3, 5, 6), np.float32)
    _C.bmm(want, Ab, Bb, precision="bf16")
    _C_cuda.bmm(got, Ab, Bb, precision="bf16")
    assert np.all(np.abs(got - want) <= 140 * U_F32 * (np.abs(_f64(Ab)) @ np.abs(_f64(Bb))))
    with pytest.raises(ValueError, match=r"^\[gemm\] expected precision 'fp32' or 'bf16'"):
        _C_cuda.gemm(want[0], Ab[0], Bb[0], precision="tf32")
    with pytest.raises(TypeError, match=r"^\[gemm\] expected A to be float32 or bfloat16"):
        _C_cuda.gemm(want[0], Ab[0].astype(np.float64), Bb[0], precision="bf16")


def _plain_gemm(M, N, K, a_fortran=False, dtype=np.float32):
    """float32 (or bf16) A, B -> float32 C (both B packing routes; A row-major, or column-major
    as the dW GEMM's dz^T), and the bound check of one result."""
    rng = np.random.default_rng(12)
    A = rng.standard_normal((M, K)).astype(dtype)
    A = np.asfortranarray(A) if a_fortran else A
    B = rng.standard_normal((K, N)).astype(dtype)
    B = B if N > 1000 else np.asfortranarray(B)

    def run():
        C = np.full((M, N), np.nan, np.float32)
        _C.gemm(C, A, B, precision="bf16")
        return C

    def bound(C):
        want = _rne(A) @ _rne(B)
        mag = np.abs(_rne(A)) @ np.abs(_rne(B))
        assert np.all(np.abs(_f64(C) - want) <= (K + 4) * U_F32 * mag)

    return run, bound


SCHEDULE_CASES = {
    # Threads own rows of C and share each packed B panel: two N blocks (the panel
    # buffer is reused after a barrier), several K blocks, row ranges that end
    # mid-tile, a team too big for the rows (which takes the per-thread grid).
    "80x4100x520": lambda: _plain_gemm(80, 4100, 520),
    "301x97x1100": lambda: _plain_gemm(301, 97, 1100),
    "37x33x700": lambda: _plain_gemm(37, 33, 700),
    # Many row chunks for the dynamic schedule (3/4 shares, then the guided tail).
    "1000x70x300": lambda: _plain_gemm(1000, 70, 300),
    # A column-major (12-row panels with contiguous rows: packed ~10 panels per visit
    # of a K row, then a partial panel), B row-major (4 panels per visit, then a partial).
    "A^T 301x1100x600": lambda: _plain_gemm(301, 1100, 600, a_fortran=True),
    "bf16 A^T 301x1100x600": lambda: _plain_gemm(301, 1100, 600, a_fortran=True, dtype=BF16),
    # The kernel converts a bf16 out / aux and widens a bf16 dact_src block by block
    # inside its epilogue, on the thread that computed the block; _check proves the
    # bf16 out / aux are the RNE of the same call's float32 ones, within the bound.
    "fwd bf16 out+aux": lambda: (lambda: _check(301, 97, 1100, np.float32, np.float32, BF16, "C", "C",
                                                bias=np.float32, act="gelu", aux=BF16), None),
    "bwd bf16 dact": lambda: (lambda: _check(290, 70, 530, BF16, np.float32, BF16, "C", "F",
                                             dact=BF16, act="tanh"), None),
}


@pytest.mark.parametrize("kernel", KERNEL_LEVELS or ["portable"])
@pytest.mark.parametrize("case", list(SCHEDULE_CASES))
def test_thread_schedules_same_bits(monkeypatch, case, kernel):
    # Every thread count (1, 2, 3) and schedule (NNFAST_BF16_SHARED_B: 1 shared B,
    # 0 the per-thread grid, auto the size rule, which at 2 threads takes shared B for
    # 4100 columns and the grid otherwise) gives the same bits as one thread.
    run, bound = SCHEDULE_CASES[case]()
    old_lv, old_nt = _C.bf16_level(), _C.get_num_threads()
    outs = {}
    try:
        _C.set_bf16_level(kernel)
        for nt in (1, 2, 3):
            _C.set_num_threads(nt)
            for shared in ("1", "0", "auto"):
                monkeypatch.setenv("NNFAST_BF16_SHARED_B", shared)
                outs[nt, shared] = run()
    finally:
        _C.set_bf16_level(old_lv)
        _C.set_num_threads(old_nt)
    ref = outs[1, "1"]
    bits = np.uint16 if ref.dtype == BF16 else np.uint32
    for key, C in outs.items():
        assert np.array_equal(C.view(bits), ref.view(bits)), key
    if bound is not None:
        bound(ref)


@pytest.mark.parametrize("alpha", [2.0 ** -134, 1.0])
def test_bf16_store_rounding_per_block(alpha):
    # The kernel's vector bf16 store is exact RNE like float_to_bf16: float32 results
    # that are subnormal (alpha = 2^-134) are rounded, not flushed; inf and NaN rows
    # (alpha = 1) stay inf / NaN; N = 37 ends mid-vector.
    rng = np.random.default_rng(5)
    A = rng.standard_normal((40, 64)).astype(np.float32)
    B = rng.standard_normal((64, 37)).astype(np.float32)
    A[3, 5] = np.nan
    A[7] *= np.float32(3e37)  # row 7 overflows to +-inf
    old_lv = _C.bf16_level()
    try:
        _C.set_bf16_level("avx512_bf16" if "avx512_bf16" in LEVELS else "portable")
        C32, C16 = np.empty((40, 37), np.float32), np.full((40, 37), np.nan, BF16)
        _C.gemm(C32, A, B, alpha, precision="bf16")
        _C.gemm(C16, A, B, alpha, precision="bf16")
    finally:
        _C.set_bf16_level(old_lv)
    finite = np.isfinite(C32)
    if alpha < 1:
        assert np.count_nonzero(finite & (C32 != 0) & (np.abs(C32) < 2.0 ** -126)) > 500
    else:
        assert np.isinf(C32[7]).sum() >= 3
    assert np.array_equal(np.isnan(C32), np.isnan(_f64(C16))) and np.isnan(C32[3]).all()
    ok = ~np.isnan(C32)
    assert np.array_equal(C16.view(np.uint16)[ok], C32.astype(BF16).view(np.uint16)[ok])


@pytest.mark.parametrize("kernel", KERNEL_LEVELS or ["portable"])
def test_pack_rows_4k_apart(kernel):
    # Operands whose k-contiguous rows are a multiple of 4 KB apart (float32 K = 1024,
    # bf16 K = 2048) are packed 8 rows at a time (L1 set conflicts); full and partial
    # panels of A (row-major) and of B = W^T (column-major), within the bound.
    old_lv = _C.bf16_level()
    try:
        _C.set_bf16_level(kernel)
        _check(40, 70, 1024, np.float32, np.float32, np.float32, "C", "F")
        _check(29, 33, 2048, BF16, BF16, BF16, "C", "F", bias=np.float32, act="relu")
    finally:
        _C.set_bf16_level(old_lv)


_NEST_CHILD = r"""
import sys
sys.path[:0] = sys.argv[1:]
import numpy as np
import test_gemm_bf16 as t
from nnfast import _C
_C.set_bf16_level("avx512_bf16")
for nt in (1, 2):
    _C.set_num_threads(nt)
    # Within the bound: one K block in both nests (K <= 512), several in both (K = 2100),
    # one here and two in the old nest (K = 1000); beta = 1 and 0.5 read C; odd sizes
    # (tile edges), a strided C (the tile route), bf16 out.
    t._check(1, 7, 1023, np.float32, np.float32, np.float32, "C", "C")
    t._check(97, 70, 1000, np.float32, t.BF16, np.float32, "C", "F", beta=1.0)
    t._check(130, 66, 2100, t.BF16, np.float32, t.BF16, "S", "R", alpha=-1.5, beta=0.5)
    # Bits of single-K-block products (K <= 512: same K split in both nests): full tiles
    # stored from the registers and edge tiles by the 4 / 8-row, 1-vector kernels here,
    # all through the float tile and the 12 x 32 kernel in the old nest. Edge rows
    # M % 12 = 4, 1, 8, 7 and columns N % 32 = 1, 18, 16.
    r = np.random.default_rng(3)
    for M, N, K, beta in ((100, 97, 512, 0.0), (37, 64, 300, 1.0), (24, 96, 7, 0.5), (20, 50, 130, 0.0),
                          (31, 16, 64, 1.0)):
        A = r.standard_normal((M, K)).astype(np.float32)
        B = r.standard_normal((K, N)).astype(np.float32)
        C = r.standard_normal((M, N)).astype(np.float32)
        _C.gemm(C, A, B, -1.5, beta, precision="bf16")
        sys.stdout.write(C.tobytes().hex() + "\n")
"""


def test_nest_switch_subprocess():
    """NNFAST_BF16_NEST=0 (the KC = 512 nest, C through the float tile) and the default
    (KC = 1024, accumulators straight into C): both within the bound, 1 and 2 threads,
    and the same bits where both nests split K alike."""
    if "avx512_bf16" not in LEVELS:
        pytest.skip("CPU lacks AVX512-BF16")
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here] + [p for p in sys.path if p]
    outs = []
    for flag in ("1", "0"):
        env = dict(os.environ, NNFAST_BF16_NEST=flag)
        r = subprocess.run([sys.executable, "-c", _NEST_CHILD] + paths, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        outs.append(r.stdout)
    assert outs[0].count("\n") == 10 and outs[0] == outs[1]


_DYNAMIC_CHILD = r"""
import sys
sys.path[:0] = sys.argv[1:]
import hashlib
import numpy as np
import test_gemm_bf16 as t
from nnfast import _C
_C.set_bf16_level("avx512_bf16" if "avx512_bf16" in t.LEVELS else "portable")
for case in sorted(t.SCHEDULE_CASES):
    run, _ = t.SCHEDULE_CASES[case]()
    for nt in (1, 2, 3):
        _C.set_num_threads(nt)
        sys.stdout.write(case + " " + str(nt) + " " + hashlib.sha1(np.ascontiguousarray(run()).tobytes()).hexdigest() + "\n")
"""


@pytest.mark.parametrize("var", ["NNFAST_BF16_DYNAMIC", "NNFAST_BF16_PACK_GROUP"])
def test_schedule_switches_subprocess(var):
    """Each switch at 0 and at its default gives the same bits for every schedule case at 1, 2
    and 3 threads (test_thread_schedules_same_bits holds each to one thread and to the bound).
    NNFAST_BF16_DYNAMIC=0: each thread packs and computes a fixed share of the shared-B
    schedule (default: chunks claimed as threads come free). NNFAST_BF16_PACK_GROUP=0: operands
    with contiguous panel values packed one panel at a time (default: ~128 values per row visit)."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [here] + [p for p in sys.path if p]
    outs = []
    for flag in ("1", "0"):
        env = dict(os.environ, **{var: flag})
        r = subprocess.run([sys.executable, "-c", _DYNAMIC_CHILD] + paths, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        outs.append(r.stdout)
    assert outs[0].count("\n") == 3 * len(SCHEDULE_CASES) and outs[0] == outs[1]
