"""The tape's tensor arithmetic on nnfast's tensor kernels (csrc/cpu/tensor.cpp, csrc/cuda/tensor.cu).

Forward / gradcheck / non-contiguous / float32 coverage of add, sub, mul, div, sum, mean, max and
min lives in the op registry (tests/opinfo.py, run by tests/test_ops.py). Here: what the registry
does not state -- NaN and tie rules of max / min and their indices, casts, which operands take the
kernels and which stay NumPy arithmetic, accuracy of long sums, and the kernels' own errors.
"""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import _dispatch
from nnfast import _C
from nnfast._dispatch import to_host as _h
from nnfast.autograd import basic_ops
from opinfo import to_device


def _t(a, device, grad=False):
    t = to_device(nnfast.from_numpy(np.asarray(a)), device)
    return t.requires_grad_(True) if grad else t


@pytest.fixture
def kernel_calls(monkeypatch):
    """The op names basic_ops asks the dispatch table for, in order."""
    calls = []
    real = basic_ops.kernels

    def spy(op, *arrays):
        ks = real(op, *arrays)
        # A cpu binary op is recorded by its kernel's spy below (once, whichever path called it).
        if op not in ("add", "sub", "mul", "div") or ks is not _dispatch._CPU_KERNELS[op]:
            calls.append(op)
        return ks

    monkeypatch.setattr(basic_ops, "kernels", spy)
    # The binary ops are recorded when their kernel runs: the operators' fast path (same-shape
    # CPU operands) calls the cpu kernel sets directly, not through kernels().
    for op in ("add", "sub", "mul", "div"):
        kset = _dispatch._CPU_KERNELS[op]

        for name in kset.names():  # binary_op, and binary_new (the operators' fast path)
            def binary_spy(*args, _op=op, _real=getattr(kset, name)):
                calls.append(_op)
                return _real(*args)

            monkeypatch.setitem(vars(kset), name, binary_spy)
    return calls


# ------------------------------------------------------------------------ which operands run on the kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_arithmetic_and_its_backward_run_on_the_kernels(kernel_calls, device, dtype):
    a = _t(np.arange(12.0, dtype=dtype).reshape(3, 4) + 1, device, grad=True)
    b = _t(np.linspace(1, 2, 4).astype(dtype), device, grad=True)
    y = ((a + b) * a / b - b).sum(0).mean()
    assert set(kernel_calls) == {"add", "mul", "div", "sub", "sum", "mean"}
    del kernel_calls[:]
    y.backward()
    assert set(kernel_calls) <= {"add", "sub", "mul", "div", "sum"} and "sum" in kernel_calls  # unbroadcast
    assert a.grad.dtype == dtype and b.grad.dtype == dtype


def test_other_dtypes_stay_numpy_arithmetic(kernel_calls, device):
    i = _t(np.arange(6, dtype=np.int64).reshape(2, 3), device)
    assert _h((i + i)._data).tolist() == [[0, 2, 4], [6, 8, 10]]
    assert (i * 2).dtype == np.int64
    h = _t(np.ones(3, np.float16), device)
    assert (h + h).dtype == np.float16
    mixed = _t(np.ones(3, np.float32), device) + _t(np.ones(3, np.float64), device)
    assert mixed.dtype == np.float64  # promoted, as PyTorch does: the float32 side cast, then the kernel add
    assert kernel_calls == ["cast", "add"]


def test_more_dims_than_the_kernel_takes_fall_back(device):
    x = np.random.default_rng(0).standard_normal((1, 2, 1, 2, 1, 2, 1, 2, 3))
    t = _t(x, device, grad=True)
    y = (t * t).sum()
    y.backward()
    np.testing.assert_allclose(float(_h(y._data)), (x * x).sum(), rtol=1e-12)
    np.testing.assert_allclose(_h(t.grad._data), 2 * x, rtol=1e-12)


def test_scalar_operands_and_in_place_results(device):
    x = _t(np.array([1.0, -2.0, 3.0], np.float32), device)
    assert _h((2 - x)._data).tolist() == [1.0, 4.0, -1.0]
    assert _h((x / 2)._data).tolist() == [0.5, -1.0, 1.5]
    assert (x * 2).dtype == np.float32  # a Python scalar takes the tensor's dtype
    assert _h((-x)._data).tolist() == [-1.0, 2.0, -3.0]
    z = _t(np.zeros(1, np.float64), device)
    assert np.signbit(_h((-z)._data)[0])  # -0.0, as negation gives


# ------------------------------------------------------------------------ max / min: NaN, ties, indices
@pytest.mark.parametrize("op", ["max", "min"])
def test_extremes_pick_the_first_of_ties_and_propagate_nan(device, op):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [np.nan, 5.0, np.nan, -1.0], [2.0, 2.0, 2.0, 2.0]])
    t = _t(x, device, grad=True)
    values, idx = getattr(t, op)(1)
    arg = np.argmax if op == "max" else np.argmin
    ref = np.max if op == "max" else np.min
    np.testing.assert_array_equal(_h(idx._data), arg(x, axis=1))
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(_h(values._data), ref(x, axis=1))  # NaN row gives NaN
    values.sum().backward()
    want = np.zeros_like(x)
    want[np.arange(3), arg(x, axis=1)] = 1.0
    np.testing.assert_array_equal(_h(t.grad._data), want)
    # over all elements: the first extreme (the first NaN), its flat index
    assert _h(getattr(t, "arg" + op)()._data) == arg(x)
    assert np.isnan(float(_h(getattr(t, op)()._data)))


def test_extremes_over_a_middle_dim_with_keepdim(device):
    x = np.random.default_rng(1).standard_normal((3, 5, 4))
    t = _t(x, device, grad=True)
    v, i = t.max(1, keepdim=True)
    assert v.shape == (3, 1, 4) and i.shape == (3, 1, 4)
    np.testing.assert_array_equal(_h(v._data), x.max(1, keepdims=True))
    np.testing.assert_array_equal(_h(i._data), np.argmax(x, 1)[:, None, :])
    v.sum().backward()
    want = np.zeros_like(x)
    np.put_along_axis(want, np.argmax(x, 1)[:, None, :], 1.0, axis=1)
    np.testing.assert_array_equal(_h(t.grad._data), want)
    np.testing.assert_array_equal(_h(t.argmin(-1, keepdim=True)._data), np.argmin(x, -1)[..., None])


def test_empty_reductions(device):
    e = _t(np.zeros((0, 3), np.float32), device)
    assert _h(e.sum()._data) == 0.0
    np.testing.assert_array_equal(_h(e.sum(0)._data), np.zeros(3, np.float32))
    assert np.isnan(_h(e.mean()._data))
    assert e.sum(1).shape == (0,)
    with pytest.raises(ValueError, match=r"^\[max\] expected a non-empty dim 0 to reduce, got size 0"):
        e.max(0)
    with pytest.raises(ValueError, match=r"^\[min\] expected a non-empty dim"):
        e.min()


# ------------------------------------------------------------------------ sums: accuracy and determinism
def test_long_float32_sums_accumulate_in_double(device):
    n = 1 << 14 if device == "cuda" and _dispatch.EMULATED else 1 << 20
    x = (np.random.default_rng(2).standard_normal(n) + 1000).astype(np.float32)
    got = float(_h(_t(x, device).sum()._data))
    exact = float(np.sum(x.astype(np.float64)))
    assert abs(got - exact) <= np.spacing(np.float32(exact))  # within one float32 ulp of the exact sum
    a = _t(x.reshape(64, -1), device)
    np.testing.assert_array_equal(_h(a.sum(0)._data), _h(a.sum(0)._data))  # same bits every run
    col = x.reshape(64, -1).astype(np.float64).sum(0)
    np.testing.assert_allclose(_h(a.sum(0)._data), col, rtol=1e-7)


@pytest.mark.parametrize("n", [1, 7, 31, 100, 127, 128, 129, 1000, 1023, 4096, 4097, 9000, (1 << 17) + 37])
def test_row_sums_error_bound_and_every_simd_level_agree(n):
    """Sums over the last dim (the cpu row kernel): float32 runs of four are added in float32
    (error <= 2^-23 of their absolute sum), everything else in double -- so |error| is within the
    result's rounding plus 2^-22 sum |x| even where the row cancels (a float32 running sum of 9000
    values near 1e4 is off by hundreds); the order depends on n only, so every SIMD level and
    thread count gives the same bits."""
    rng = np.random.default_rng(n)
    rows = np.stack([rng.standard_normal(n) + 1e4, rng.standard_normal(n) * np.where(np.arange(n) % 2, 1e4, -1e4),
                     rng.standard_normal(n)]).astype(np.float32)
    exact = rows.astype(np.float64).sum(1)
    bound = np.spacing(np.abs(exact).astype(np.float32)) / 2 + 2.0 ** -22 * np.abs(rows.astype(np.float64)).sum(1)
    for dt in (np.float32, np.float64):
        x = rows.astype(dt)
        want = nnfast.from_numpy(x).sum(1)._data
        assert np.all(np.abs(want.astype(np.float64) - exact) <= bound), (dt, want - exact, bound)
        levels, current, threads = nnfast.info()["simd_supported"], nnfast._C.cpu_isa(), nnfast.get_num_threads()
        try:
            for level in levels:
                nnfast._C.set_cpu_isa(level)
                for t in (1, 2):
                    nnfast.set_num_threads(t)
                    np.testing.assert_array_equal(nnfast.from_numpy(x).sum(1)._data, want, err_msg=f"{level} {t}")
        finally:
            nnfast._C.set_cpu_isa(current)
            nnfast.set_num_threads(threads)


_ROW_SUM_CHILD = r"""
import sys
import numpy as np
import nnfast
from nnfast import _C, _dispatch

def model(row):
    # The row kernel's order (csrc/cpu/tensor_isa.cpp, block_sum_row), written out in NumPy: blocks of
    # 4096; per block 32 double lanes; each run of 128 adds the quad (x[i] + x[i+32]) + (x[i+64] + x[i+96])
    # formed in the input dtype to lane i; the tail element j + k goes to lane k % 32 in order; the lanes
    # pairwise (lane k += lane k + w, w = 16 ... 1); the block sums added in order.
    total = np.float64(0)
    for j0 in range(0, len(row), 4096):
        blk = row[j0:j0 + 4096]
        q = len(blk) // 128
        lanes = np.zeros(32)
        quads = blk[:q * 128].reshape(q, 4, 32)
        for r in range(q):
            lanes += ((quads[r, 0] + quads[r, 1]) + (quads[r, 2] + quads[r, 3])).astype(np.float64)
        for k, v in enumerate(blk[q * 128:]):
            lanes[k % 32] += np.float64(v)
        w = 16
        while w >= 1:
            lanes[:w] = lanes[:w] + lanes[w:2 * w]
            w //= 2
        total += lanes[0]
    return total

levels = [n for n in ("generic", "avx2", "avx512") if _C.cpu_isa_supported(n)]
rng, checks = np.random.default_rng(3), 0
for dt in (np.float32, np.float64):
    # tails of every kind (none, < 32, whole runs of 32 plus a part, < 128 over a block), several blocks,
    # and rows long enough that a few of them are split across the threads
    for n, rows in ((1, 3), (7, 2), (31, 1), (33, 2), (100, 3), (127, 1), (128, 2), (129, 1), (1000, 3),
                    (1023, 2), (4097, 1), (9000, 2), ((1 << 17) + 37, 1), ((1 << 16) + 99, 2), ((1 << 15) + 5, 5)):
        x = (rng.standard_normal((rows, n)) * np.where(rng.random((rows, n)) < 0.5, 1.0, 1e4)).astype(dt)
        sums = np.array([model(r) for r in x])
        want, want_mean = sums.astype(dt), (sums * (1.0 / n)).astype(dt)
        for level in levels:
            _C.set_cpu_isa(level)
            for t in (1, 2, 3):  # 3: two rows split across the threads too
                nnfast.set_num_threads(t)
                for op, ref in (("sum", want), ("mean", want_mean)):
                    out = np.empty(rows, dt)
                    _C.reduce_dim(out, None, x, 1, _dispatch.REDUCE_CODES[op])
                    assert np.array_equal(out, ref), (level, t, n, rows, op, out - ref)
                    checks += 1
sys.stdout.write(f"{checks}\n")
"""


@pytest.mark.parametrize("fast", ["1", "0"])
def test_row_sums_follow_their_documented_order_bit_for_bit(fast):
    """The row kernel (sums and means over a contiguous last dim) against a NumPy model of its
    summation order, bit for bit: odd widths (each kind of block tail: the vector tail and, with
    NNFAST_TENSOR_FAST=0, the old element-wise one), several blocks, and rows fewer than the threads
    (split across them by blocks), on every ISA with 1, 2 and 3 threads."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NNFAST_TENSOR_FAST=fast)
    out = subprocess.run([sys.executable, "-c", _ROW_SUM_CHILD], env=env, check=True, capture_output=True, text=True)
    assert int(out.stdout) > 0


_COL_SUM_CHILD = r"""
import os, sys
import numpy as np
import nnfast
from nnfast import _C, _dispatch

QUADS = os.environ.get("NNFAST_TENSOR_COLSUM", "1")[:1] != "0"

def model(x):
    # csrc/cpu/tensor.cpp column_sums, written out in NumPy for x of shape (n, cols): row blocks (64 rows
    # on the old path; with NNFAST_TENSOR_COLSUM, clamp(n // 16 // 8 * 8, 64, 512)), each a double sum
    # in row order -- of quads (x[j] + x[j+1]) + (x[j+2] + x[j+3]) formed in the input dtype, then the
    # last rows one by one, on the fast path; of every element on the old one -- the blocks added in order.
    n = x.shape[0]
    rows = min(max(n // 16 // 8 * 8, 64), 512) if QUADS else 64
    total = np.zeros(x.shape[1])
    for j0 in range(0, n, rows):
        j1, acc, j = min(n, j0 + rows), np.zeros(x.shape[1]), j0
        while QUADS and j + 4 <= j1:
            acc += ((x[j] + x[j + 1]) + (x[j + 2] + x[j + 3])).astype(np.float64)
            j += 4
        for r in range(j, j1):
            acc += x[r].astype(np.float64)
        total += acc
    return total

levels = [n for n in ("generic", "avx2", "avx512") if _C.cpu_isa_supported(n)]
rng, checks = np.random.default_rng(5), 0
for dt in (np.float32, np.float64):
    # rows: under a quad, quads and a tail, one block, several (with and without a short last one);
    # columns (2+: one column is a row sum): under a vector, odd, one and two tiles of 1024; outer > 1
    for outer, n, cols in ((1, 1, 7), (1, 3, 2), (1, 7, 17), (2, 9, 33), (1, 64, 1023), (1, 65, 8), (3, 130, 5),
                           (1, 1023, 1025), (1, 2051, 64), (1, 4096, 24), (2, 9000, 3)):
        x = (rng.standard_normal((outer, n, cols)) * np.where(rng.random((outer, n, cols)) < 0.5, 1.0, 1e4)).astype(dt)
        sums = np.stack([model(x[o]) for o in range(outer)])
        want, want_mean = sums.astype(dt), (sums * (1.0 / n)).astype(dt)
        for level in levels:
            _C.set_cpu_isa(level)
            for t in (1, 2, 3):
                nnfast.set_num_threads(t)
                for op, ref in (("sum", want), ("mean", want_mean)):
                    out = np.empty((outer, cols), dt)
                    _C.reduce_dim(out, None, x, 1, _dispatch.REDUCE_CODES[op])
                    assert np.array_equal(out, ref), (level, t, outer, n, cols, op, out - ref)
                    checks += 1
        if outer == 1:  # a strided (non-contiguous) input: the binding copies or walks it, the bits stay
            xs = np.repeat(x[0], 2, axis=1)[:, ::2]
            out = np.empty(cols, dt)
            _C.reduce_dim(out, None, np.ascontiguousarray(xs), 0, _dispatch.REDUCE_CODES["sum"])
            assert np.array_equal(out, want[0])
            assert np.array_equal(nnfast.from_numpy(xs).sum(0)._data, want[0])
sys.stdout.write(f"{checks}\n")
"""


@pytest.mark.parametrize("colsum", ["1", "0"])
def test_column_sums_follow_their_documented_order_bit_for_bit(colsum):
    """Sums over a middle dim (the column kernel) against a NumPy model of their order, bit for bit,
    with NNFAST_TENSOR_COLSUM=1 (quads of rows in the input dtype, blocks by the row count) and =0 (the
    old element-wise double sum in 64-row blocks): odd row counts and widths, several tiles and
    blocks, on every ISA with 1, 2 and 3 threads (the same bits for every thread count)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NNFAST_TENSOR_COLSUM=colsum)
    out = subprocess.run([sys.executable, "-c", _COL_SUM_CHILD], env=env, check=True, capture_output=True, text=True)
    assert int(out.stdout) > 0


@pytest.mark.parametrize("n", [1, 7, 8, 63, 1023, 4100, 30000])
def test_column_sums_error_bound(n):
    """Column sums within the result's rounding plus 2^-22 sum |x| of the exact (float64) sum even
    where the column cancels: a float32 quad costs two roundings of at most 2^-24 its absolute sum."""
    rng = np.random.default_rng(n)
    cols = np.stack([rng.standard_normal(n) + 1e4, rng.standard_normal(n) * np.where(np.arange(n) % 2, 1e4, -1e4),
                     rng.standard_normal(n)], axis=1).astype(np.float32)
    exact = cols.astype(np.float64).sum(0)
    bound = np.spacing(np.abs(exact).astype(np.float32)) / 2 + 2.0 ** -22 * np.abs(cols.astype(np.float64)).sum(0)
    got = nnfast.from_numpy(cols).sum(0)._data.astype(np.float64)
    assert np.all(np.abs(got - exact) <= bound), (got - exact, bound)


_ROW_EXTREME_CHILD = r"""
import sys
import numpy as np
import nnfast
from nnfast import _C, _dispatch

levels = [n for n in ("generic", "avx2", "avx512") if _C.cpu_isa_supported(n)]
rng, res = np.random.default_rng(11), []
for dt in (np.float32, np.float64):
    for n in (1, 7, 63, 64, 65, 79, 127, 128, 130, 1000, 1023, 1024, 4099):
        for kind in range(6):
            x = rng.integers(-4, 4, (5, n)).astype(dt)  # many ties: the first index must win
            if kind == 1:
                x[:] = 0.0
                x[:, ::3] = -0.0  # -0 and +0 tie: the first one's bits
            elif kind == 2:
                x[1, rng.integers(0, n)] = np.nan
                x[3, n - 1] = np.nan  # in the tail
            elif kind == 3:
                x[0, rng.integers(0, n)] = np.inf
                x[2, :] = -np.inf
            elif kind == 4:
                x = rng.standard_normal((5, n)).astype(dt)
            elif kind == 5 and n > 1:
                x = np.repeat(x, 2, axis=1)[:, ::2]  # a strided view
            for op, f in (("max", np.argmax), ("min", np.argmin)):
                want = f(x, 1)
                for level in levels:
                    _C.set_cpu_isa(level)
                    for t in (1, 2, 3):
                        nnfast.set_num_threads(t)
                        xc = np.ascontiguousarray(x)
                        v, i = np.empty(5, dt), np.empty(5, np.int64)
                        _C.reduce_dim(v, i, xc, 1, _dispatch.REDUCE_CODES[op])
                        assert np.array_equal(i, want), (level, t, n, kind, op, i, want)
                        assert np.array_equal(v.view(np.uint8), xc[np.arange(5), want].view(np.uint8)), (level, n, kind, op)
                        res.append(int(i.sum()))
sys.stdout.write(f"{len(res)} {sum(res)}\n")
"""


def test_row_max_min_fast_path_gives_numpys_first_index():
    """Max / min and their index over a contiguous last dim, NNFAST_TENSOR_ARGMAX=1 (the AVX-512 float
    kernel, 4 zmm a step, masked tail) and =0 (the generic-vector loop): NumPy's argmax / argmin (the
    first of equals, the first NaN), the value's exact bits (-0 / +0 ties), odd widths around the 64-wide
    step, infinities, on every ISA with 1, 2 and 3 threads; both switches give the same answers."""
    import os
    import subprocess
    import sys

    outs = [subprocess.run([sys.executable, "-c", _ROW_EXTREME_CHILD], env=dict(os.environ, NNFAST_TENSOR_ARGMAX=s),
                           check=True, capture_output=True, text=True).stdout for s in ("1", "0")]
    assert outs[0] == outs[1] and int(outs[0].split()[0]) > 0


# ------------------------------------------------------------------------ casts
def test_casts_round_to_nearest_even_and_keep_specials(device):
    f64 = np.array([1.0, 1 + 2.0 ** -24, 1 + 3 * 2.0 ** -24, 1e-40, -1e-46, 3.5e38, -np.inf, np.nan, -0.0, 1e300])
    with np.errstate(over="ignore"):
        want = f64.astype(np.float32)  # 3.5e38 and 1e300 overflow to inf, as the kernel must
    t = _t(f64, device, grad=True)
    y = t.float()
    assert y.dtype == np.float32
    np.testing.assert_array_equal(_h(y._data), want)
    assert np.signbit(_h(y._data)[8])
    back = y.double()
    assert back.dtype == np.float64
    np.testing.assert_array_equal(_h(back._data), want.astype(np.float64))
    finite = np.isfinite(_h(y._data))
    (y * _t(np.where(finite, 1.0, 0.0).astype(np.float32), device)).sum().backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(_h(t.grad._data), np.where(finite, 1.0, 0.0))


def test_cast_of_a_strided_view(device):
    x = np.arange(24, dtype=np.float64).reshape(4, 6)
    t = nnfast.Tensor(_t(x, device)._data[:, ::2])
    np.testing.assert_array_equal(_h(t.to(nnfast.float32)._data), x[:, ::2].astype(np.float32))


# ------------------------------------------------------------------------ the kernels' own errors
def _mod(device):
    return _dispatch._BACKENDS[device]


def _arr(a, device):
    return to_device(nnfast.from_numpy(np.asarray(a)), device)._data


def test_binary_kernel_errors(device):
    K = _mod(device)
    a = _arr(np.ones((2, 3)), device)
    out = _arr(np.empty((2, 3)), device)
    with pytest.raises(ValueError, match=r"^\[binary_op\] expected op 0 \(add\), 1 \(sub\), 2 \(mul\) or 3 \(div\)"):
        K.binary_op(out, a, a, 7)
    with pytest.raises(ValueError, match=r"^\[mul\] expected b broadcastable to out's shape"):
        K.binary_op(out, a, _arr(np.ones(4), device), 2)
    with pytest.raises(TypeError, match=r"^\[add\] expected b"):
        K.binary_op(out, a, _arr(np.ones((2, 3), np.float32), device), 0)
    with pytest.raises(ValueError, match=r"^\[sub\] expected out"):
        K.binary_op(_arr(np.empty((3, 4)), device)[:, :3], a, a, 1)
    big = _arr(np.ones(12), device)
    with pytest.raises(ValueError, match=r"^\[div\] expected"):  # out overlapping an input it is not
        K.binary_op(big[:6].reshape(2, 3), big[3:9].reshape(2, 3), a, 3)
    K.binary_op(a, a, a, 0)  # in place: out is a itself
    assert _h(a).tolist() == [[2.0] * 3] * 2


def test_reduce_and_scatter_kernel_errors(device):
    K = _mod(device)
    x = _arr(np.ones((2, 3)), device)
    out = _arr(np.empty(2), device)
    with pytest.raises(ValueError, match=r"^\[sum\] expected dim in \[0, 1\], got 2"):
        K.reduce_dim(out, None, x, 2, 0)
    with pytest.raises(ValueError, match=r"^\[mean\] expected out with 2 elements, got 3"):
        K.reduce_dim(_arr(np.empty(3), device), None, x, 1, 1)
    with pytest.raises(ValueError, match=r"^\[sum\] expected index None"):
        K.reduce_dim(out, _arr(np.empty(2, np.int64), device), x, 1, 0)
    with pytest.raises(TypeError, match=r"^\[max\] expected index to be int64"):
        K.reduce_dim(out, _arr(np.empty(2, np.int32), device), x, 1, 2)
    with pytest.raises(ValueError, match=r"^\[reduce_dim\] expected op 0 \(sum\)"):
        K.reduce_dim(out, None, x, 1, 9)
    g = _arr(np.ones(2), device)
    with pytest.raises(TypeError, match=r"^\[max_backward\] expected index to be int64"):
        K.scatter_dim(_arr(np.empty((2, 3)), device), g, _arr(np.zeros(2, np.float64), device), 1)
    with pytest.raises(ValueError, match=r"^\[max_backward\] expected grad with 2 elements, got 3"):
        K.scatter_dim(_arr(np.empty((2, 3)), device), _arr(np.ones(3), device), _arr(np.zeros(2, np.int64), device), 1)
    with pytest.raises(ValueError, match=r"^\[cast\] expected out with as many elements as input \(6\), got 5"):
        K.cast(_arr(np.empty(5, np.float32), device), x)
    with pytest.raises(TypeError, match=r"^\[cast\] expected"):
        K.cast(_arr(np.empty(6, np.int32), device), x)


def test_broadcast_error_through_the_tensor_api(device):
    with pytest.raises(ValueError, match=r"^\[add\] expected broadcastable shapes, got \(2, 3\) and \(4,\)"):
        _t(np.ones((2, 3)), device) + _t(np.ones(4), device)


# ------------------------------------------------------------------------ per-ISA loops (csrc/cpu/tensor_isa.cpp)
def _isa_levels():
    return [n for n in ("generic", "avx2", "avx512") if nnfast._C.cpu_isa_supported(n)]


def _extreme_rows(dtype):
    """Rows that exercise the vector body, the tail, ties, signed zeros, infinities and NaN."""
    rng = np.random.default_rng(5)
    rows = []
    for n in (1, 7, 15, 16, 17, 33, 100, 1023):
        rows.append(rng.integers(-3, 4, n).astype(dtype))  # many ties: the first one must win
        rows.append(rng.standard_normal(n).astype(dtype))
        z = np.zeros(n, dtype)
        z[n // 2:] = -0.0  # +0 then -0: equal, the first one's bits
        rows.append(z)
        z = -np.zeros(n, dtype)
        z[n // 3:] = 0.0
        rows.append(z)
        for pos in {0, n // 2, n - 1}:
            for special in (np.inf, -np.inf, np.nan):
                r = rng.integers(-3, 4, n).astype(dtype)
                r[pos] = special
                if special is np.nan and n > 2:
                    r[(pos + 1) % n] = np.nan  # two NaNs: the first one's index
                rows.append(r)
    return rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["max", "min"])
def test_row_extremes_match_numpy_on_every_isa(dtype, op):
    C = nnfast._C
    code = _dispatch.REDUCE_CODES[op]
    arg, ref = (np.argmax, np.max) if op == "max" else (np.argmin, np.min)
    current = C.cpu_isa()
    try:
        for level in _isa_levels():
            C.set_cpu_isa(level)
            for r in _extreme_rows(dtype):
                x = np.stack([r, r[::-1]])  # two rows: the per-row loop and its offsets
                v, i = np.empty(2, dtype), np.empty(2, np.int64)
                C.reduce_dim(v, i, x, 1, code)
                np.testing.assert_array_equal(i, arg(x, axis=1), err_msg=f"{level} {x}")
                want = x[np.arange(2), arg(x, axis=1)]
                np.testing.assert_array_equal(v, want)  # NaN where numpy gives NaN
                assert np.array_equal(np.signbit(v), np.signbit(want)), (level, x)  # the first zero's sign
                np.testing.assert_array_equal(v, ref(x, axis=1))
    finally:
        C.set_cpu_isa(current)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_isa_loops_give_the_same_bits(dtype):
    """Sums, binary ops, column extremes and casts: every ISA gives the bits of the generic loop."""
    C = nnfast._C
    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, 1023)).astype(dtype)
    y = rng.standard_normal((7, 1023)).astype(dtype)
    other = np.float64 if dtype == np.float32 else np.float32

    def run():
        res = []
        for dim in (0, 1):
            for op in ("sum", "mean", "max"):
                out = np.empty(x.shape[1 - dim], dtype)
                idx = np.empty(out.shape, np.int64) if op == "max" else None
                C.reduce_dim(out, idx, x, dim, _dispatch.REDUCE_CODES[op])
                res += [out] + ([idx] if idx is not None else [])
        for code in _dispatch.BINARY_CODES.values():
            out = np.empty_like(x)
            C.binary_op(out, x, y, code)
            res.append(out)
            out = np.empty_like(x)
            C.binary_op(out, x, y[0], code)  # a broadcast row
            res.append(out)
        out = np.empty(x.shape, other)
        C.cast(out, x)
        res.append(out)
        return res

    current = C.cpu_isa()
    try:
        C.set_cpu_isa("generic")
        want = run()
        exact = x.astype(np.float64).sum(0)  # column sums: float32 quads of rows, within 2^-22 sum |x| (see above)
        bound = np.spacing(np.abs(exact).astype(dtype)) / 2 + 2.0 ** -22 * np.abs(x.astype(np.float64)).sum(0)
        assert np.all(np.abs(want[0] - exact) <= bound)
        np.testing.assert_array_equal(want[-1], x.astype(other))
        for level in _isa_levels():
            C.set_cpu_isa(level)
            for a, b in zip(run(), want):
                np.testing.assert_array_equal(a, b, err_msg=level)
    finally:
        C.set_cpu_isa(current)


@pytest.mark.parametrize("n", [1, 7, 1023])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_new_allocates_what_binary_op_writes(n, dtype):
    # binary_new (the CPU operators' fast path) = binary_op into a fresh C-contiguous array of a's shape
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, 6)).astype(dtype)[:, ::2]  # non-contiguous
    for b in (rng.standard_normal((n, 3)).astype(dtype), np.asarray(1.5, dtype)):
        for code in range(4):
            out = _C.binary_new(a, b, code)
            ref = np.empty_like(a, order="C")
            _C.binary_op(ref, a, b, code)
            assert out.flags.c_contiguous and out.dtype == dtype and out.shape == a.shape
            np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(_C.binary_new(a, a, 0), a + a)


def test_binary_new_errors():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"^\[binary_op\] expected op 0 \(add\)"):
        _C.binary_new(a, a, 9)
    with pytest.raises(ValueError, match=r"^\[mul\] expected b broadcastable to out's shape"):
        _C.binary_new(a, np.ones((2, 4)), 2)
    with pytest.raises(TypeError, match=r"^\[add\] expected b"):
        _C.binary_new(a, a.astype(np.float32), 0)
    with pytest.raises(TypeError, match=r"^\[sub\] expected"):
        _C.binary_new(np.ones((2, 3), np.int64), np.ones((2, 3), np.int64), 1)


# ------------------------------------------------------------------ elementwise bits
_INT_VIEW = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _same_bits(got, want, msg=""):
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, msg
    assert np.array_equal(got.view(_INT_VIEW[got.dtype]), want.view(_INT_VIEW[want.dtype])), msg


_UFUNCS = (np.add, np.subtract, np.multiply, np.divide)  # in BINARY_CODES order


def _each_level_and_thread_count():
    """Yield a message naming each (ISA level, 1 or 2 threads) while it is set; restores both after."""
    current, threads = _C.cpu_isa(), nnfast.get_num_threads()
    try:
        for level in _isa_levels():
            _C.set_cpu_isa(level)
            for t in (1, 2):
                nnfast.set_num_threads(t)
                yield f"{level} {t} threads"
    finally:
        _C.set_cpu_isa(current)
        nnfast.set_num_threads(threads)


@pytest.mark.parametrize("n", [1, 7, 1023, (1 << 20) + 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_ops_and_casts_give_numpys_bits(n, dtype):
    """add / sub / mul / div are one IEEE operation per element and the casts one rounding: every
    ISA and thread count must give NumPy's bits, for contiguous, strided and broadcast operands
    (odd sizes: the vector tails and the peel to the output's alignment)."""
    assert list(_dispatch.BINARY_CODES) == ["add", "sub", "mul", "div"]
    rng = np.random.default_rng(n)
    x = rng.standard_normal(2 * n + 1).astype(dtype)
    a, b, a_strided = x[1:n + 1], x[n + 1:], x[::2][:n]  # a: one element past the allocation
    col = rng.standard_normal((n, 1)).astype(dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    for msg in _each_level_and_thread_count():
        for code, f in enumerate(_UFUNCS):
            for lhs, rhs in ((a, b), (a_strided, b), (a, dtype(0.75)), (dtype(-1.25), a)):
                out = np.empty(n, dtype)
                _C.binary_op(out, np.asarray(lhs), np.asarray(rhs), code)
                _same_bits(out, f(lhs, rhs), msg)
            out = np.empty((n, min(n, 5)), dtype)  # (n, 1) against a row: both broadcast
            _C.binary_op(out, col, a[:out.shape[1]], code)
            _same_bits(out, f(col, a[:out.shape[1]]), msg)
        for src in (a, a_strided):
            out = np.empty(n, other)
            _C.cast(out, np.ascontiguousarray(src))
            _same_bits(out, src.astype(other), msg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_matrix_against_a_row_gives_numpys_bits(dtype):
    """(R, C) (op) (C,) and (C,) (op) (R, C) run as one flat stream against a repeated copy of the
    row (tensor_isa.cpp: binary_flat_row): NumPy's bits for widths around the vector width and the
    4096 limit, rows that are not whole in a thread's slice, an output one element past its vector
    alignment, in place, every ISA, 1 and 2 threads."""
    rng = np.random.default_rng(11)
    for C in (1, 2, 3, 15, 16, 17, 33, 1000, 1024, 4096, 4097):
        for R in (1, 5, 77):
            buf = rng.standard_normal(R * C + 1).astype(dtype)
            m, row = buf[1:].reshape(R, C), rng.standard_normal(C).astype(dtype)
            for where in _each_level_and_thread_count():
                msg = f"{where} C={C} R={R}"
                for code, f in enumerate(_UFUNCS):
                    for lhs, rhs in ((m, row), (row, m)):
                        out = np.empty(R * C + 1, dtype)[1:].reshape(R, C)
                        _C.binary_op(out, lhs, rhs, code)
                        _same_bits(out, f(lhs, rhs), msg)
                    c = m.copy()
                    _C.binary_op(c, c, row, code)  # in place
                    _same_bits(c, f(m, row), msg)


_STREAM_CHILD = r"""
import hashlib, sys
import numpy as np
import nnfast
from nnfast import _C

ints = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}
def same(got, want, msg):
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, msg
    assert np.array_equal(got.view(ints[got.dtype]), want.view(ints[want.dtype])), msg

h, checks = hashlib.sha256(), 0
levels = [n for n in ("generic", "avx2", "avx512") if _C.cpu_isa_supported(n)]
ufuncs = (np.add, np.subtract, np.multiply, np.divide)
# over the 32 MB L3 in output + inputs (the streaming rule), float64 -> float32 included
for dt, n in ((np.float32, (4 << 20) + 3), (np.float64, (3 << 20) + 3)):
    r = np.random.default_rng(n)
    buf = r.standard_normal(2 * n + 1).astype(dt)
    a, b = buf[1:n + 1], buf[n + 1:]  # one element past the allocation: a peel before the aligned body
    D = 1021
    a2, row = a[:n - n % D].reshape(-1, D), b[:D]  # rows of an odd width against a broadcast row
    s = np.asarray(1.5, dt)
    other = np.float64 if dt == np.float32 else np.float32
    refs = [(f(a, b), f(a2, row), f(a, s), f(s, a)) for f in ufuncs]
    for level in levels:
        _C.set_cpu_isa(level)
        for threads in ((1, 2) if level == levels[-1] else (2,)):  # the thread split once
            nnfast.set_num_threads(threads)
            msg = (level, threads, np.dtype(dt).name)
            for code, (ab, rows, a_s, s_a) in enumerate(refs):
                for off in (0, 1):  # the output aligned, then one element past a line
                    out = np.full(n + 1, np.nan, dt)[off:off + n]
                    _C.binary_op(out, a, b, code)
                    same(out, ab, msg)
                out = np.empty_like(a2)
                _C.binary_op(out, a2, row, code)
                same(out, rows, msg)
                same(_C.binary_new(a, s, code), a_s, msg)
                out = np.empty_like(a)
                _C.binary_op(out, s, a, code)
                same(out, s_a, msg)
                c = a.copy()
                _C.binary_op(c, c, b, code)  # in place
                same(c, ab, msg)
                checks += 6
            for off in (0, 1):
                out = np.empty(n + 1, other)[off:off + n]
                _C.cast(out, a)
                same(out, a.astype(other), msg)
                h.update(out.tobytes())
                checks += 1
    h.update(out.tobytes())
# float32 -> float64 over two L3s touched (the rule streams a float64 output of an L3 or more only there)
a = np.random.default_rng(5).standard_normal((6 << 20) + 3).astype(np.float32)[1:]
for level in levels:
    _C.set_cpu_isa(level)
    nnfast.set_num_threads(2)
    for off in (0, 1):
        out = np.empty(a.size + 1, np.float64)[off:off + a.size]
        _C.cast(out, a)
        same(out, a.astype(np.float64), (level, off))
        checks += 1
    h.update(out.tobytes())
sys.stdout.write(f"{checks} {h.hexdigest()}\n")
"""


def test_streamed_outputs_give_the_same_bits_with_and_without_streaming():
    """Ops touching over an L3 (the rule: tensor_internal.h, stream_output) write their outputs with
    non-temporal stores after a peel to vector alignment (binary ops, broadcast rows, scalars, in place;
    f32 <-> f64 casts): the bits must be NumPy's on every ISA, 1 and 2 threads, at two output alignments,
    with NNFAST_TENSOR_STREAM=1 and =0 (the old stores), and with NNFAST_TENSOR_FAST=0 (the old rule)."""
    import os
    import subprocess
    import sys

    outs = []
    # FAST=0: the old streaming rule; NNFAST_TENSOR_L3_MB in place of the CPU's L3 size: 4 streams every
    # output here, 1024 none ("": the CPU's figure)
    for stream, fast, l3 in (("1", "1", ""), ("0", "1", ""), ("1", "0", ""), ("1", "1", "4"), ("1", "1", "1024")):
        env = dict(os.environ, NNFAST_TENSOR_STREAM=stream, NNFAST_TENSOR_FAST=fast, NNFAST_TENSOR_L3_MB=l3)
        outs.append(subprocess.run([sys.executable, "-c", _STREAM_CHILD], env=env, check=True,
                                   capture_output=True, text=True).stdout)
    assert outs[0].count("\n") == 1 and int(outs[0].split()[0]) > 0 and all(o == outs[0] for o in outs)
