"""conv1d / conv2d / conv_transpose2d under nnfast.autocast on the bf16 GEMM (amp/_conv_bf16.py,
csrc/cpu/conv_bf16.cpp): forward and both backward products against float64 references computed
on the bf16-rounded inputs, with bounds from bf16 rounding (outputs stored once, RNE) plus float32
accumulation; odd sizes, stride / padding / dilation / groups, 'same', unbatched, chunked images;
each bf16 level (portable forced in process, each ISA in a subprocess); output and gradient dtypes;
bits independent of the thread count; the NNFAST_AMP_CONV=0 route; PyTorch's autocast conv where
torch is installed; errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
from nnfast import _C
from nnfast.amp import _conv_bf16

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
U_BF16 = 2.0 ** -8   # a bf16 store: relative error <= 2^-9, doubled for the margin
U_ACC = 2.0 ** -16   # float32 accumulation (sums of <= a few hundred terms), times |x| * |w| sums

pytestmark = pytest.mark.skipif(not hasattr(_C, "conv2d_forward_bf16"), reason="no bf16 conv in this build")

from conftest import BF16_LEVELS as LEVELS  # noqa: E402  (the `level` fixture lives there too)

# (op, input shape, weight shape, keyword arguments)
CASES = [
    ("conv2d", (2, 3, 9, 11), (4, 3, 3, 3), dict(padding=1)),
    ("conv2d", (3, 4, 7, 7), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ("conv2d", (1, 1, 1, 1), (1, 1, 1, 1), {}),
    ("conv2d", (2, 5, 6, 7), (3, 5, 1, 1), {}),                       # pointwise: no gather
    ("conv2d", (2, 6, 8, 8), (6, 1, 3, 3), dict(padding=1, groups=6)),  # depthwise
    ("conv2d", (2, 3, 7, 8), (5, 3, 4, 4), dict(padding="same")),      # the extra bottom / right row
    ("conv2d", (5, 3, 7, 7), (4, 3, 3, 3), dict(stride=2, bias=False)),
    ("conv2d", (3, 9, 9), (4, 3, 3, 3), dict(padding=2, dilation=2)),  # unbatched
    ("conv2d", (1, 2, 3, 1023), (3, 2, 3, 3), dict(padding=1)),
    ("conv2d", (1, 32, 90, 91), (2, 32, 3, 3), dict(padding=1)),       # patch matrix split in chunks
    ("conv1d", (2, 4, 17), (6, 2, 5), dict(stride=2, padding=2, groups=2)),
    ("conv1d", (3, 20), (2, 3, 4), dict(padding="same")),
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", (1, 4, 3, 3), (4, 2, 2, 2), dict(groups=2, dilation=2)),
    ("conv_transpose2d", (7, 2, 1, 1), (2, 3, 1, 1), {}),
]
FAST = [c for c in CASES if np.prod(c[1]) < 100000]


def _id(c):
    return f"{c[0]}-{'x'.join(map(str, c[1]))}-{'x'.join(map(str, c[2]))}"



def _np(t):
    return t.detach().numpy()


def _rne(a):
    return np.asarray(a, np.float32).astype(BF16).astype(np.float64)


def _data(case, seed=0):
    op, xs, ws, kw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    oc = ws[1] * kw.get("groups", 1) if op == "conv_transpose2d" else ws[0]
    b = rng.standard_normal(oc).astype(np.float32) if kw.get("bias", True) else None
    return x, w, b


def _kwargs(case):
    return {k: v for k, v in case[3].items() if k != "bias"}


def _run(case, x, w, b, g=None, dtype=np.float32):
    """y and the three gradients of sum(float(y) * g) under autocast (leaves of ``dtype``)."""
    op = case[0]
    xt = nnfast.tensor(x.astype(dtype), requires_grad=True)
    wt = nnfast.tensor(w.astype(dtype), requires_grad=True)
    bt = None if b is None else nnfast.tensor(b.astype(dtype), requires_grad=True)
    with nnfast.autocast("cpu"):
        y = getattr(F, op)(xt, wt, bt, **_kwargs(case))
    if g is None:
        g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    (y.float() * nnfast.tensor(g)).sum().backward()
    return y, xt.grad, wt.grad, None if bt is None else bt.grad, g


def _ref(case, x, w, b, g):
    """float64 y, dx, dW, db of sum(y * g) (nnfast's float64 kernels)."""
    xt = nnfast.tensor(np.asarray(x, np.float64), requires_grad=True)
    wt = nnfast.tensor(np.asarray(w, np.float64), requires_grad=True)
    bt = None if b is None else nnfast.tensor(np.asarray(b, np.float64), requires_grad=True)
    y = getattr(F, case[0])(xt, wt, bt, **_kwargs(case))
    (y * nnfast.tensor(np.asarray(g, np.float64))).sum().backward()
    return (_np(y), _np(xt.grad), _np(wt.grad), None if bt is None else _np(bt.grad))


def _check(case, dtype=np.float32, old_route=False):
    """The autocast conv against float64 on the bf16-rounded x, W and upstream gradient (the bias
    stays float32): each output within U_BF16 of the reference (one bf16 store) plus U_ACC times
    the same product on absolute values (float32 accumulation)."""
    x, w, b = _data(case)
    y, dx, dw, db, g = _run(case, x, w, b, dtype=dtype)
    assert y.dtype == nnfast.bfloat16
    for t, want in ((dx, dtype), (dw, dtype), (db, dtype)):
        assert t is None or _np(t).dtype == np.dtype(want)
    # bf16 leaves, or the old route (every input cast to bf16, every gradient cast back): the bias
    # is rounded and each gradient carries a bf16 store
    rounds = dtype == BF16 or old_route
    bias = None if b is None else (_rne(b) if rounds else b.astype(np.float64))
    ref = _ref(case, _rne(x), _rne(w), bias, _rne(g))
    mag = _ref(case, np.abs(_rne(x)), np.abs(_rne(w)), None if b is None else np.abs(bias), np.abs(_rne(g)))
    rel = [U_BF16] + [U_BF16 if rounds else 0.0] * 3
    for name, got, r, m, u in zip(("y", "dx", "dW", "db"), (y, dx, dw, db), ref, mag, rel):
        if got is None:
            continue
        got = _np(got).astype(np.float64)
        assert got.shape == r.shape, name
        bound = u * np.abs(r) + U_ACC * m + 1e-30
        err = np.abs(got - r)
        assert np.all(err <= bound), f"{name}: max err {err.max()} (bound there {bound.flat[np.argmax(err - bound)]})"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_against_float64(case, level):
    _check(case)


@pytest.mark.parametrize("case", FAST[:3] + FAST[-3:], ids=_id)
def test_bf16_leaves(case):
    """bf16 input and parameters: bf16 output and bf16 gradients (each one rounding)."""
    _check(case, dtype=BF16)


@pytest.mark.parametrize("case", FAST, ids=_id)
def test_runs_on_the_bf16_node(case):
    x, w, b = _data(case)
    xt, wt = nnfast.tensor(x, requires_grad=True), nnfast.tensor(w, requires_grad=True)
    with nnfast.autocast("cpu"):
        y = getattr(F, case[0])(xt, wt, None if b is None else nnfast.tensor(b), **_kwargs(case))
    assert type(y.grad_fn).__name__ == "ConvBF16Function"


@pytest.mark.parametrize("case", [CASES[1], CASES[6], CASES[10], CASES[12]], ids=_id)
def test_old_route_switch(case):
    """ENABLED[0] = False (NNFAST_AMP_CONV=0): the float32 kernels on bf16-rounded inputs, also
    within the bounds (its gradients pass back through the bf16 casts, so each is rounded once)."""
    _conv_bf16.ENABLED[0] = False
    try:
        x, w, b = _data(case)
        with nnfast.autocast("cpu"):
            y = getattr(F, case[0])(nnfast.tensor(x), nnfast.tensor(w), None if b is None else nnfast.tensor(b),
                                    **_kwargs(case))
        assert type(y.grad_fn).__name__ != "ConvBF16Function" and y.dtype == nnfast.bfloat16
        _check(case, old_route=True)
    finally:
        _conv_bf16.ENABLED[0] = True


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[6], CASES[9], CASES[12]], ids=_id)
def test_same_bits_any_thread_count(case):
    x, w, b = _data(case)
    old = nnfast.get_num_threads()
    outs = []
    try:
        for nt in (1, 2, 3):
            nnfast.set_num_threads(nt)
            outs.append([None if t is None else _np(t).view(np.uint8) for t in _run(case, x, w, b)[:4]])
    finally:
        nnfast.set_num_threads(old)
    for o in outs[1:]:
        for a, r in zip(o, outs[0]):
            assert (a is None and r is None) or np.array_equal(a, r)


def test_grad_accumulates_into_existing_grad():
    """dW and db land in the float32 .grad (+=): two backwards give twice one."""
    case = CASES[1]
    x, w, b = _data(case)
    xt, wt, bt = (nnfast.tensor(a, requires_grad=True) for a in (x, w, b))
    for _ in range(2):
        with nnfast.autocast("cpu"):
            y = F.conv2d(xt, wt, bt, **_kwargs(case))
        y.float().sum().backward()
        if _ == 0:
            once = (wt.grad.numpy().copy(), bt.grad.numpy().copy())
    assert np.array_equal(wt.grad.numpy(), 2 * once[0]) and np.array_equal(bt.grad.numpy(), 2 * once[1])


def test_no_input_grad_and_frozen_weight():
    x, w, b = _data(CASES[0])
    wt = nnfast.tensor(w, requires_grad=True)
    with nnfast.autocast("cpu"):
        y = F.conv2d(nnfast.tensor(x), wt, nnfast.tensor(b), padding=1)
    y.float().sum().backward()
    assert wt.grad.dtype == nnfast.float32
    xt = nnfast.tensor(x, requires_grad=True)
    with nnfast.autocast("cpu"):
        y = F.conv2d(xt, nnfast.tensor(w), None, padding=1)
    y.float().sum().backward()
    assert xt.grad.dtype == nnfast.float32


def test_errors_under_autocast():
    x = nnfast.tensor(np.zeros((1, 3, 5, 5), np.float32))
    with nnfast.autocast("cpu"):
        with pytest.raises(ValueError, match=r"^\[conv2d\] expected"):
            F.conv2d(x, nnfast.tensor(np.zeros((2, 4, 3, 3), np.float32)))
        with pytest.raises(ValueError, match=r"^\[conv2d\] expected"):
            F.conv2d(x, nnfast.tensor(np.zeros((2, 3, 7, 7), np.float32)))
        with pytest.raises(ValueError, match=r"^\[conv2d\] expected"):
            F.conv2d(x, nnfast.tensor(np.zeros((2, 3, 3, 3), np.float32)), nnfast.tensor(np.zeros(3, np.float32)))
        with pytest.raises(ValueError, match=r"^\[conv2d\] expected"):
            F.conv2d(x, nnfast.tensor(np.zeros((2, 3, 3, 3), np.float32)), stride=0)


def test_binding_errors():
    x = np.zeros((1, 3, 5, 5), BF16)
    w = np.zeros((2, 3, 3, 3), BF16)
    y = np.empty((1, 2, 3, 3), BF16)
    p = ((1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match=r"^\[conv2d\] expected input to be float32 or bfloat16"):
        _C.conv2d_forward_bf16(y, x.astype(np.float64), w, None, *p)
    with pytest.raises(TypeError, match=r"^\[conv2d\] expected bias to be float32"):
        _C.conv2d_forward_bf16(y, x, w, np.zeros(2, BF16), *p)
    with pytest.raises(ValueError, match=r"^\[conv2d\] expected out"):
        _C.conv2d_forward_bf16(np.empty((1, 2, 4, 4), BF16), x, w, None, *p)
    with pytest.raises(ValueError, match=r"^\[conv2d_backward\] expected grad_weight"):
        _C.conv2d_backward_bf16(None, np.zeros((2, 3, 3, 2), np.float32), None, y, x, w, *p)
    # the transposed entries share the float32 bindings' geometry checks (one message for both)
    wt = np.zeros((3, 2, 3, 3), BF16)
    for entry in (_C.conv_transpose2d_forward, _C.conv_transpose2d_forward_bf16):
        a = (lambda v: v.astype(np.float32)) if entry is _C.conv_transpose2d_forward else (lambda v: v)
        with pytest.raises(ValueError, match=r"^\[conv_transpose2d\] expected input of shape \(1, 3, 3, 3\)"):
            entry(a(np.empty((1, 2, 5, 5), BF16)), a(np.zeros((1, 3, 4, 4), BF16)), a(wt), None, *p)


_CHILD = """
import sys
sys.path[:0] = sys.argv[1:]
import test_amp_conv as t
from nnfast import _C
for c in (t.CASES[1], t.CASES[5], t.CASES[10], t.CASES[12]):
    t._check(c)
print("ok")
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_each_isa_subprocess(isa):
    """Below AVX-512 the bf16 GEMM takes its portable path (gemm<float> of that ISA)."""
    if not _C.cpu_isa_supported(isa):
        pytest.skip(f"CPU lacks {isa}")
    env = dict(os.environ, NNFAST_ISA=isa)
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, "-c", _CHILD, here] + [p for p in sys.path if p], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[4], CASES[10]], ids=_id)
def test_against_torch_autocast(case):
    """PyTorch's CPU autocast conv: same dtypes; values within two bf16 roundings (torch also
    rounds the bias and dW to bf16; nnfast keeps them float32)."""
    torch = pytest.importorskip("torch")
    x, w, b = _data(case)
    y, dx, dw, db, g = _run(case, x, w, b)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yt = getattr(torch.nn.functional, case[0])(xt, wt, bt, **_kwargs(case))
    assert yt.dtype == torch.bfloat16
    (yt.float() * torch.tensor(g)).sum().backward()
    mag = _ref(case, np.abs(_rne(x)), np.abs(_rne(w)), np.abs(b), np.abs(_rne(g)))
    for got, want, m in zip((y, dx, dw, db), (yt.detach(), xt.grad, wt.grad, bt.grad), mag):
        want = want.float().numpy().astype(np.float64)
        got = _np(got).astype(np.float64)
        assert got.shape == want.shape
        assert np.all(np.abs(got - want) <= 2 * U_BF16 * m + U_ACC * m)


@pytest.mark.parametrize("case", [CASES[1], CASES[10], CASES[12]], ids=_id)
def test_bf16_model_outside_a_region(case):
    """bf16 input, weight and bias outside a region run on the bf16 node too (bf16 out and grads),
    within the bounds of the bf16 leaves; a float32 weight with a bf16 input keeps the old route."""
    x, w, b = _data(case)
    xt, wt, bt = (nnfast.tensor(a.astype(BF16), requires_grad=True) for a in (x, w, b))
    y = getattr(F, case[0])(xt, wt, bt, **_kwargs(case))
    assert type(y.grad_fn).__name__ == "ConvBF16Function" and y.dtype == nnfast.bfloat16
    with nnfast.autocast("cpu"):
        ya = getattr(F, case[0])(xt, wt, bt, **_kwargs(case))
    assert np.array_equal(_np(y).view(np.uint16), _np(ya).view(np.uint16))
    y.float().sum().backward()
    assert xt.grad.dtype == wt.grad.dtype == bt.grad.dtype == nnfast.bfloat16
    y2 = getattr(F, case[0])(xt, nnfast.tensor(w), None, **_kwargs(case))
    assert type(y2.grad_fn).__name__ != "ConvBF16Function"


_CHILD_BITS = """
import sys, hashlib
sys.path[:0] = sys.argv[1:]
import test_amp_conv as t
for c in (t.CASES[6], t.CASES[3]):
    x, w, _ = t._data(c)
    y = t._run(c, x, w, None)[0]
    print(hashlib.sha256(t._np(y).tobytes()).hexdigest())
"""


def test_direct_store_switch_same_bits():
    """NNFAST_CONV_BF16_DIRECT=0 (a bias-less forward staged in float32 and stored by the pass that
    adds a bias) gives the bits of the default (the GEMM storing y itself)."""
    here = os.path.dirname(os.path.abspath(__file__))
    outs = []
    for v in ("0", "1"):
        env = dict(os.environ, NNFAST_CONV_BF16_DIRECT=v)
        r = subprocess.run([sys.executable, "-c", _CHILD_BITS, here] + [p for p in sys.path if p], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        outs.append(r.stdout.split())
    assert len(outs[0]) == 2 and outs[0] == outs[1]
