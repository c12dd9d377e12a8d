"""Adam writing autocast's bf16 weight copies in the same pass as its update
(``adam_step(..., bf16_copies=...)``, ``nnfast.amp._weight_copies``): the float32 update is
unchanged bit for bit, each copy is the RNE of the updated param, training under autocast gives the
same bits with and without the copies, and a copy is never used once stale or still saved by a graph."""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast import _C
from nnfast.amp import _weight_copies

ml_dtypes = pytest.importorskip("ml_dtypes")


@pytest.fixture(autouse=True)
def copies_on():
    """The copies on for these tests (the default, unless NNFAST_BF16_ADAM_COPY=0)."""
    old = _weight_copies.ENABLED[0]
    _weight_copies.ENABLED[0] = True
    yield
    _weight_copies.ENABLED[0] = old
BF16 = np.dtype(ml_dtypes.bfloat16)
SIZES = (1, 7, 1023, 4099)  # tails, and several of the kernel's 2048-value chunks


def _lists(seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    gs = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    ms = [rng.standard_normal(n).astype(dtype) * 0.1 for n in SIZES]
    vs = [rng.random(n).astype(dtype) * 0.1 for n in SIZES]
    mx = [v + np.asarray(0.01, dtype) for v in vs]
    return ps, gs, ms, vs, mx


def _step(lists, copies, amsgrad, decoupled, steps=(3, 1, 7, 2)):
    ps, gs, ms, vs, mx = lists
    kw = {} if copies is None else {"bf16_copies": copies}
    _C.adam_step(ps, gs, ms, vs, mx if amsgrad else None, list(steps), 1e-2, 0.9, 0.99, 1e-8, 0.1, amsgrad, False,
                 decoupled, **kw)


@pytest.mark.parametrize("amsgrad,decoupled", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_copies_are_the_rounded_update(amsgrad, decoupled, threads):
    old = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        ref, got = _lists(1), _lists(1)
        copies = [np.full(n, np.nan, BF16) if i != 1 else None for i, n in enumerate(SIZES)]
        _step(ref, None, amsgrad, decoupled)
        _step(got, copies, amsgrad, decoupled)
    finally:
        _C.set_num_threads(old)
    for r, g in zip(ref, got):  # params and every state: the same bits as the plain float32 step
        for a, b in zip(r, g):
            assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    for p, c in zip(got[0], copies):
        if c is not None:  # RNE of the updated param (ml_dtypes' rounding: an independent oracle)
            assert np.array_equal(c.view(np.uint16), p.astype(BF16).view(np.uint16))


def test_kernel_copy_special_values():
    # lr = 0 and zero gradients leave every param as it is, so each copy must be the RNE of the
    # param itself: subnormals rounded (not flushed as vcvtneps2bf16 would), ties to even,
    # overflow to inf, inf and NaN kept, over tails and 16-lane vectors mixing them.
    rng = np.random.default_rng(9)
    n = 4099
    p = (rng.standard_normal(n) * 2.0 ** -130).astype(np.float32)  # subnormal float32
    p[::7] = rng.standard_normal(len(p[::7])).astype(np.float32)
    p[3::11] = np.float32(1.0) + np.float32(2.0 ** -8)  # exact ties: to even
    p[5::13] = np.finfo(np.float32).max
    p[6::17], p[8::19], p[9::23] = np.inf, -np.inf, np.nan
    ps, gs = [p], [np.zeros(n, np.float32)]
    ms, vs = [np.zeros(n, np.float32)], [np.zeros(n, np.float32)]
    c = np.empty(n, BF16)
    _C.adam_step(ps, gs, ms, vs, None, [1], 0.0, 0.9, 0.999, 1e-8, 0.0, False, False, False, bf16_copies=[c])
    want = p.astype(BF16)
    assert np.count_nonzero((np.abs(p) < 2.0 ** -126) & (want.astype(np.float32) != 0)) > 1000
    assert np.array_equal(np.isnan(c.astype(np.float32)), np.isnan(p))
    ok = ~np.isnan(p)
    assert np.array_equal(c.view(np.uint16)[ok], want.view(np.uint16)[ok])


def test_kernel_copy_errors():
    ps, gs, ms, vs, _ = _lists(2)
    good = [np.empty(n, BF16) for n in SIZES]

    def call(copies, lists=(ps, gs, ms, vs)):
        _C.adam_step(*lists, None, [1] * len(SIZES), 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False,
                     bf16_copies=copies)

    with pytest.raises(TypeError, match=r"^\[adam\] expected bf16_copies\[0\] to be bfloat16"):
        call([np.empty(1, np.float32)] + good[1:])
    with pytest.raises(ValueError, match=r"^\[adam\] expected bf16_copies\[2\] to hold 1023 values"):
        call(good[:2] + [np.empty(1022, BF16)] + good[3:])
    with pytest.raises(ValueError, match=r"^\[adam\] expected bf16_copies to hold 4 entries"):
        call(good[:3])
    with pytest.raises(ValueError, match=r"^\[adam\] expected bf16_copies\[1\] to be C-contiguous"):
        call([good[0], np.empty(14, BF16)[::2]] + good[2:])
    with pytest.raises(TypeError, match=r"^\[adam\] expected bf16_copies to be None or a list"):
        call(good[0])
    p64 = _lists(2, np.float64)[:4]
    with pytest.raises(TypeError, match=r"^\[adam\] expected bf16_copies\[0\] only for a float32 param"):
        call(good, p64)


def _mlp_step(enabled, steps=3):
    """A small autocast MLP trained with Adam; returns its params after each step and the losses."""
    rng = np.random.default_rng(3)
    x = nnfast.tensor(rng.standard_normal((9, 13)).astype(np.float32))
    y = nnfast.tensor(rng.integers(0, 5, 9).astype(np.int64))
    nnfast.manual_seed(4)
    model = nn.Sequential(nn.Linear(13, 17, activation="relu"), nn.Linear(17, 5))
    opt = nnfast.optim.Adam(model.parameters(), lr=1e-2)
    losses, snaps = [], []
    _weight_copies.ENABLED[0] = enabled
    try:
        for _ in range(steps):
            opt.zero_grad()
            with nnfast.autocast("cpu"):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            snaps.append([p.detach().numpy().copy() for p in model.parameters()])
    finally:
        _weight_copies.ENABLED[0] = True  # the fixture restores the default
    return losses, snaps, model


def test_training_same_bits_with_and_without_copies():
    l0, s0, _ = _mlp_step(False)
    l1, s1, model = _mlp_step(True)
    assert l0 == l1
    for a, b in zip(s0, s1):
        for p, q in zip(a, b):
            assert np.array_equal(p.view(np.uint32), q.view(np.uint32))
    # After the last step each weight's registered copy is valid and is its RNE.
    for lin in (model[0], model[1]):
        w = lin.weight
        e = _weight_copies._COPIES[id(w._data)]
        assert e[2] == w._vc[0]
        assert np.array_equal(_weight_copies.weight_copy(w).view(np.uint16), w.detach().numpy().astype(BF16).view(np.uint16))


def test_stale_copy_is_not_used():
    # An in-place write after Adam's step (not through Adam) bumps the version: the next forward
    # converts the weight afresh instead of reading the copy.
    _, _, model = _mlp_step(True, steps=1)
    w = model[0].weight
    with nnfast.no_grad():
        w.mul_(-3.0)
    low = _weight_copies.weight_copy(w)
    assert np.array_equal(low.view(np.uint16), w.detach().numpy().astype(BF16).view(np.uint16))
    # Another optimizer's step also makes it stale.
    _, _, model = _mlp_step(True, steps=1)
    w = model[1].weight
    w.grad = nnfast.ones_like(w)
    nnfast.optim.SGD([w], lr=0.5).step()
    assert np.array_equal(_weight_copies.weight_copy(w).view(np.uint16), w.detach().numpy().astype(BF16).view(np.uint16))


def test_graph_that_kept_the_cast_is_not_overwritten():
    # retain_graph keeps the forward's bf16 weight saved for backward: Adam must write a new copy,
    # so a second backward still reads the cast the forward used (PyTorch's semantics).
    rng = np.random.default_rng(6)
    x = nnfast.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    w = nnn_param(rng.standard_normal((3, 6)))
    opt = nnfast.optim.Adam([w], lr=0.5)
    with nnfast.autocast("cpu"):
        y = F.linear(x, w)
    saved = _weight_copies.weight_copy(w)
    before = saved.copy()
    g = nnfast.tensor(rng.standard_normal((4, 3)).astype(np.float32)).bfloat16()
    y.backward(g, retain_graph=True)
    dx1 = x.grad.numpy().copy()
    opt.step()
    assert np.array_equal(saved.view(np.uint16), before.view(np.uint16))  # not written in place
    new = _weight_copies.weight_copy(w)
    assert new is not saved and np.array_equal(new.view(np.uint16), w.detach().numpy().astype(BF16).view(np.uint16))
    x.grad = None
    y.backward(g)
    assert np.array_equal(x.grad.numpy(), dx1)


def nnn_param(a):
    return nn.Parameter(nnfast.tensor(np.asarray(a, np.float32)))


# Big enough for 2 and 3 threads and for the dynamic schedule's big first chunks (> 4 x 65536 elements,
# then 64K blocks; chunks spanning tensors, tails in chunks and in 512-value runs).
BIG = (1, 7, 1023, 300001, 70001, 40000)


def _big_lists(seed):
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(n).astype(np.float32) for n in BIG]
    gs = [rng.standard_normal(n).astype(np.float32) for n in BIG]
    ms = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in BIG]
    vs = [rng.random(n).astype(np.float32) * 0.1 for n in BIG]
    return ps, gs, ms, vs


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_kernel_copies_big_lists_same_bits_across_threads(threads):
    """The dynamic block schedule (any thread count) gives the bits of the plain float32 step on 1
    thread, and every copy is the RNE of its updated param."""
    def run(nt, copies):
        old = _C.get_num_threads()
        _C.set_num_threads(nt)
        try:
            ls = _big_lists(5)
            kw = {} if copies is None else {"bf16_copies": copies}
            _C.adam_step(*ls, None, [4, 1, 9, 6, 2, 3], 1e-2, 0.9, 0.99, 1e-8, 0.1, False, False, True, **kw)
            return ls
        finally:
            _C.set_num_threads(old)

    ref = run(1, None)
    copies = [np.full(n, np.nan, BF16) if i != 2 else None for i, n in enumerate(BIG)]
    got = run(threads, copies)
    for r, g in zip(ref, got):
        for a, b in zip(r, g):
            assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    for p, c in zip(got[0], copies):
        if c is not None:
            assert np.array_equal(c.view(np.uint16), p.astype(BF16).view(np.uint16))


_SCHEDULE_CHILD = r"""
import hashlib, sys
import numpy as np
sys.path[:0] = sys.argv[1:]
import ml_dtypes
from nnfast import _C
h = hashlib.sha1()
for nt in (1, 2, 3):
    _C.set_num_threads(nt)
    rng = np.random.default_rng(5)
    ls = [[(rng.standard_normal(n) * s).astype(np.float32) for n in (1, 1023, 300001, 70001, 40000)] for s in (1, 1, .1, .1)]
    ls[3] = [np.abs(v) for v in ls[3]]
    copies = [np.empty(n, ml_dtypes.bfloat16) for n in (1, 1023, 300001, 70001, 40000)]
    _C.adam_step(*ls, None, [3, 1, 4, 2, 5], 1e-2, 0.9, 0.99, 1e-8, 0.0, False, False, False, bf16_copies=copies)
    for a in [x for l in ls for x in l] + copies:
        h.update(np.ascontiguousarray(a).view(np.uint8).tobytes())
print(h.hexdigest())
"""


def test_dynamic_schedule_switch_subprocess():
    """NNFAST_BF16_ADAM_DYNAMIC=0 (static equal shares) and =1 (claimed blocks) give the same bits."""
    import os
    import subprocess
    import sys

    paths = [p for p in sys.path if p]
    out = []
    for v in ("0", "1"):
        env = dict(os.environ, NNFAST_BF16_ADAM_DYNAMIC=v)
        r = subprocess.run([sys.executable, "-c", _SCHEDULE_CHILD] + paths, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        out.append(r.stdout.strip())
    assert out[0] == out[1] and len(out[0]) == 40
