"""bfloat16 conversions (nnfast._C.convert, csrc/cpu/convert.cpp) against a float64 reference of
round-to-nearest-even: every bf16 value, a dense float32 sample, every boundary (ties, NaN payloads,
inf, overflow, subnormals, -0), float64 sources rounded once (no double rounding), threads,
non-contiguous tensors, the Tensor casts and their gradients, and the errors."""
import numpy as np
import pytest

import nnfast
from nnfast import _C

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
# signalling NaN payloads warn when NumPy widens them; the warnings are expected
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")

BF16_MAX = float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)


def ref_rne(x):
    """float64 reference: x (float32 or float64 values, held exactly in float64) rounded to the
    nearest bf16 (ties to even), as float64; NaN stays NaN. bf16 has 8 significant bits and
    float32's exponent range (normal from 2**-126, subnormal steps of 2**-133)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.array(x, copy=True)
    fin = np.isfinite(x) & (x != 0)
    v = x[fin]
    _, e = np.frexp(np.abs(v))           # |v| = m * 2**e, m in [0.5, 1): leading bit at 2**(e-1)
    e = np.maximum(e - 1, -126)          # below the normal range the step stays 2**-133
    ulp = np.ldexp(1.0, e - 7)
    r = np.rint(v / ulp) * ulp           # exact scaling; np.rint rounds half to even
    r[np.abs(r) > BF16_MAX] = np.inf * np.sign(r[np.abs(r) > BF16_MAX])
    out[fin] = np.where(r == 0, np.copysign(0.0, v), r)
    return out


def to_bf16(x):
    out = np.empty(x.shape, BF16)
    _C.convert(out, x)
    return out


def from_bf16(b, dtype=np.float32):
    out = np.empty(b.shape, dtype)
    _C.convert(out, b)
    return out


def check_rounding(x):
    got = to_bf16(x)
    want = ref_rne(x)
    g = got.astype(np.float64)  # widening is exact (also checked below)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(g), nan)
    np.testing.assert_array_equal(g[~nan], want[~nan])
    # -0 / +0 and the sign of every result (inf and NaN included)
    assert np.array_equal(np.signbit(g), np.signbit(x.astype(np.float64)))
    return got


def test_every_bf16_value_widens_exactly():
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    b = bits.view(BF16)
    f = from_bf16(b)
    np.testing.assert_array_equal(f.view(np.uint32), bits.astype(np.uint32) << 16)  # NaN payloads too
    d = from_bf16(b, np.float64)
    ref = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    assert np.array_equal(np.isnan(d), np.isnan(ref))
    np.testing.assert_array_equal(d[~np.isnan(d)], ref[~np.isnan(ref)])
    # and back: every bf16 value round-trips bit for bit (NaNs were already quiet or get quieted)
    back = to_bf16(f).view(np.uint16)
    quiet = np.where(np.isnan(f), bits | 0x0040, bits)
    np.testing.assert_array_equal(back, quiet)


def test_dense_float32_sample_rounds_to_nearest_even():
    rng = np.random.default_rng(0)
    bits = np.concatenate([np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32),
                           rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)])
    check_rounding(bits.view(np.float32))


def test_float32_boundaries():
    hi = np.arange(0, 65536, 97, dtype=np.uint32) << 16
    lows = np.array([0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=np.uint32)  # around the tie
    bits = (hi[:, None] | lows[None, :]).ravel()
    special = np.array([
        0x00000000, 0x80000000,              # +-0
        0x00000001, 0x80000001,              # smallest subnormals -> +-0
        0x00008000, 0x00018000, 0x00008001,  # subnormal ties (even down, odd up) and just above
        0x007FFFFF, 0x00800000, 0x007F8000,  # largest subnormal, smallest normal, a tie into the normals
        0x7F7F7FFF, 0x7F7F8000, 0x7F7FFFFF,  # bf16 max, the tie above it (-> inf), float32 max (-> inf)
        0x7F800000, 0xFF800000,              # +-inf
        0x3F808000, 0x3F818000,              # 1 + half ulp (even: down), 1 + 1.5 ulp (odd: up)
    ], dtype=np.uint32)
    check_rounding(np.concatenate([bits, special]).view(np.float32))


def test_nan_payloads_stay_nan_quiet_and_signed():
    bits = np.array([0x7F800001, 0x7F80FFFF, 0x7FC00000, 0x7FFFFFFF, 0xFF800001, 0xFFC12345, 0x7FA00000],
                    dtype=np.uint32)
    out = to_bf16(bits.view(np.float32)).view(np.uint16)
    assert np.all((out & 0x7F80) == 0x7F80) and np.all(out & 0x007F)  # NaN, not inf
    assert np.all(out & 0x0040)                                        # quiet
    np.testing.assert_array_equal(out >> 15, bits >> 31)               # sign kept
    np.testing.assert_array_equal(out & 0xFFBF, (bits >> 16) & 0xFFBF)  # top payload bits kept
    d = to_bf16(bits.view(np.float32).astype(np.float64)).view(np.uint16)
    assert np.all((d & 0x7FC0) == 0x7FC0)


def test_float64_rounds_once():
    rng = np.random.default_rng(1)
    grid = rng.integers(0, 65536, 20_000).astype(np.uint32) << 16
    base = grid.view(np.float32).astype(np.float64)
    base = base[np.isfinite(base)]
    ulp = np.abs(base) * 2.0 ** -8 + 1e-300
    # just above / below a tie: float32 would round these onto the tie (double rounding)
    eps = np.ldexp(1.0, -40) * np.abs(base)
    x = np.concatenate([base + ulp / 2 + eps, base + ulp / 2 - eps, base - ulp / 2 + eps, base + ulp / 2,
                        rng.standard_normal(20_000) * 10.0 ** rng.integers(-45, 39, 20_000),
                        [1e300, -1e300, 1e-300, -1e-300, 3.3961e38, np.inf, -np.inf, np.nan, -0.0, 0.0]])
    check_rounding(x)


def test_many_elements_across_threads_and_odd_sizes():
    rng = np.random.default_rng(2)
    for n in (1, 7, 1023, 300_001):
        x = (rng.standard_normal(n) * 100).astype(np.float32)
        b = check_rounding(x)
        np.testing.assert_array_equal(b.view(np.uint16), x.astype(BF16).view(np.uint16))  # ml_dtypes agrees


def test_tensor_casts_use_the_kernel_and_carry_gradients():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((7, 13)).astype(np.float32)
    x = nnfast.tensor(a, requires_grad=True)
    xt = x.T  # non-contiguous
    b = xt.bfloat16()
    assert b.dtype == nnfast.bfloat16 and b.shape == (13, 7)
    np.testing.assert_array_equal(b.detach().numpy().astype(np.float64), ref_rne(a.T))
    assert x.to(nnfast.bfloat16).dtype == nnfast.bfloat16
    f = b.float()
    assert f.dtype == nnfast.float32
    (f * nnfast.tensor(np.arange(91, dtype=np.float32).reshape(13, 7))).sum().backward()
    assert x.grad.dtype == nnfast.float32
    np.testing.assert_array_equal(x.grad.numpy(), ref_rne(np.arange(91.0).reshape(13, 7)).T)
    d = nnfast.tensor(a.astype(np.float64)).bfloat16().double()
    assert d.dtype == nnfast.float64
    np.testing.assert_array_equal(d.numpy(), ref_rne(a))


def test_bad_inputs_raise_clear_errors():
    f = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=r"^\[convert\] expected exactly one of out and src to be bfloat16"):
        _C.convert(f, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match=r"^\[convert\] expected exactly one"):
        _C.convert(np.zeros(4, BF16), np.zeros(4, BF16))
    with pytest.raises(TypeError, match=r"^\[convert\] expected src to be float32, float64"):
        _C.convert(np.zeros(4, BF16), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"^\[convert\] expected out with as many elements"):
        _C.convert(np.zeros(3, BF16), f)
    with pytest.raises(ValueError, match=r"^\[convert\] expected src to be C-contiguous"):
        _C.convert(np.zeros(2, BF16), f[::2])
    with pytest.raises(ValueError, match=r"^\[convert\] expected out to be writeable"):
        out = np.zeros(4, BF16)
        out.flags.writeable = False
        _C.convert(out, f)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_every_isa_copy_of_the_kernels_rounds_the_same(isa):
    """convert_isa.cpp is compiled once per ISA (vectorised at its width) and chosen at run time:
    each copy passes the boundary, NaN, float64 and widening checks above, tails included."""
    if not _C.cpu_isa_supported(isa):
        pytest.skip(f"CPU lacks {isa}")
    prev = _C.cpu_isa()
    _C.set_cpu_isa(isa)
    try:
        assert _C.cpu_isa() == isa
        test_every_bf16_value_widens_exactly()
        test_float32_boundaries()
        test_nan_payloads_stay_nan_quiet_and_signed()
        test_float64_rounds_once()
        for n in (1, 7, 17, 33, 1023):  # vector bodies and every tail length around them
            x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 1e-38  # subnormals too
            check_rounding(x)
            check_rounding(x.astype(np.float64))
    finally:
        _C.set_cpu_isa(prev)


def test_conversions_over_32_mb_are_streamed_with_the_same_bits():
    """float32 <-> bfloat16 conversions touching >= 32 MB take the streaming-store kernels (a peel to the
    output's vector alignment, then non-temporal stores): every ISA, 1 and 2 threads, two output
    alignments, must give the bits of small calls (ordinary stores) -- specials, subnormals and
    NaN payloads included."""
    n = (8 << 20) + 5  # 48 MB of input + output
    rng = np.random.default_rng(11)
    u = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)  # every bit pattern class
    u[::97] = 0x7F800001  # signalling NaN payloads
    u[1::89] = 0x00000001  # the smallest subnormal
    x = u.view(np.float32)
    want = np.empty(n, BF16)
    for lo in range(0, n, 1 << 20):  # 2 MB outputs: the ordinary kernel
        _C.convert(want[lo:lo + (1 << 20)], x[lo:lo + (1 << 20)])
    back_want = np.empty(n, np.float32)
    for lo in range(0, n, 1 << 20):
        _C.convert(back_want[lo:lo + (1 << 20)], want[lo:lo + (1 << 20)])
    prev, threads = _C.cpu_isa(), nnfast.get_num_threads()
    try:
        for isa in ("generic", "avx2", "avx512"):
            if not _C.cpu_isa_supported(isa):
                continue
            _C.set_cpu_isa(isa)
            for t in (1, 2):
                nnfast.set_num_threads(t)
                for off in (0, 1):
                    out = np.empty(n + 1, BF16)[off:off + n]
                    _C.convert(out, x)
                    assert np.array_equal(out.view(np.uint16), want.view(np.uint16)), (isa, t, off)
                    back = np.empty(n + 1, np.float32)[off:off + n]
                    _C.convert(back, want)
                    assert np.array_equal(back.view(np.uint32), back_want.view(np.uint32)), (isa, t, off)
    finally:
        _C.set_cpu_isa(prev)
        nnfast.set_num_threads(threads)
