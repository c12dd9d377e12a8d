"""nn.RNN / nn.LSTM / nn.GRU and nn.utils.rnn against PyTorch (skipped without it): every module
configuration (layers, bidirectional, bias, batch_first, proj_size, relu, initial states, unbatched,
packed variable-length input) with weights copied through state_dict both ways -- outputs, h_n, c_n and
every gradient -- plus dropout between layers, parameter names / init, and the [LSTM]-style errors.
The float64 reference formulas and gradchecks of the sequence kernels are in tests/opinfo_rnn.py."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
from nnfast.nn.utils import rnn as rnn_utils

torch = pytest.importorskip("torch")

CONFIGS = [
    ("LSTM", dict(hidden_size=5)),
    ("LSTM", dict(hidden_size=5, num_layers=2, bidirectional=True)),
    ("LSTM", dict(hidden_size=5, bias=False, batch_first=True)),
    ("LSTM", dict(hidden_size=5, num_layers=2)),  # the 2-layer wavefront (test_rnn_wavefront.py)
    ("LSTM", dict(hidden_size=5, num_layers=2, bias=False, batch_first=True)),
    ("LSTM", dict(hidden_size=5, proj_size=3, num_layers=2, bidirectional=True)),
    ("GRU", dict(hidden_size=5)),
    ("GRU", dict(hidden_size=5, num_layers=2, bidirectional=True, batch_first=True)),
    ("GRU", dict(hidden_size=1, bias=False)),
    ("RNN", dict(hidden_size=5)),
    ("RNN", dict(hidden_size=5, nonlinearity="relu", num_layers=2, bidirectional=True)),
]


def _pair(cls, kw, I=4, dtype=np.float64):
    tm = getattr(torch.nn, cls)(I, **kw).to(torch.float64 if dtype == np.float64 else torch.float32)
    nm = getattr(nn, cls)(I, **kw, dtype=dtype)
    nm.load_state_dict({k: nnfast.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    return tm, nm


def _states(cls, kw, N, rng, unbatched=False):
    D = 2 if kw.get("bidirectional") else 1
    L, H = kw.get("num_layers", 1), kw["hidden_size"]
    P = kw.get("proj_size", 0) or H
    shape_h = (L * D, P) if unbatched else (L * D, N, P)
    shape_c = (L * D, H) if unbatched else (L * D, N, H)
    hs = [rng.standard_normal(shape_h)] + ([rng.standard_normal(shape_c)] if cls == "LSTM" else [])
    return hs


def _run_both(cls, kw, x, hs, packed_lengths=None):
    tm, nm = _pair(cls, kw, I=x.shape[-1])
    tx, nx = torch.tensor(x, requires_grad=True), nnfast.tensor(x, requires_grad=True)
    ths = [torch.tensor(h, requires_grad=True) for h in hs]
    nhs = [nnfast.tensor(h, requires_grad=True) for h in hs]
    thx = None if not hs else (tuple(ths) if cls == "LSTM" else ths[0])
    nhx = None if not hs else (tuple(nhs) if cls == "LSTM" else nhs[0])
    bf = kw.get("batch_first", False)
    if packed_lengths is not None:
        tin = torch.nn.utils.rnn.pack_padded_sequence(tx, packed_lengths, batch_first=bf, enforce_sorted=False)
        nin = rnn_utils.pack_padded_sequence(nx, packed_lengths, batch_first=bf, enforce_sorted=False)
        np.testing.assert_array_equal(nin.batch_sizes.numpy(), tin.batch_sizes.numpy())
        np.testing.assert_array_equal(nin.sorted_indices.numpy(), tin.sorted_indices.numpy())
        np.testing.assert_allclose(nin.data.detach().numpy(), tin.data.detach().numpy())
    else:
        tin, nin = tx, nx
    ty, ts = tm(tin, thx)
    ny, ns = nm(nin, nhx)
    if packed_lengths is not None:
        assert isinstance(ny, rnn_utils.PackedSequence)
        np.testing.assert_allclose(ny.data.detach().numpy(), ty.data.detach().numpy(), rtol=1e-10, atol=1e-12)
        ty, tl = torch.nn.utils.rnn.pad_packed_sequence(ty, batch_first=bf)
        ny, nl = rnn_utils.pad_packed_sequence(ny, batch_first=bf)
        np.testing.assert_array_equal(nl.numpy(), tl.numpy())
    ts = list(ts) if cls == "LSTM" else [ts]
    ns = list(ns) if cls == "LSTM" else [ns]
    assert tuple(ny.shape) == tuple(ty.shape)
    np.testing.assert_allclose(ny.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(ns, ts):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    rng = np.random.default_rng(5)
    gs = [rng.standard_normal(tuple(t.shape)) for t in [ty, *ts]]
    (sum((t * torch.tensor(g)).sum() for t, g in zip([ty, *ts], gs))).backward()
    (sum((t * nnfast.tensor(g)).sum() for t, g in zip([ny, *ns], gs))).backward()
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    for a, b in zip(nhs, ths):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(getattr(nm, name).grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CONFIGS)])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "h0"])
def test_matches_torch(cls, kw, with_state):
    rng = np.random.default_rng(0)
    T, N = 4, 3
    x = rng.standard_normal((N, T, 4) if kw.get("batch_first") else (T, N, 4))
    _run_both(cls, kw, x, _states(cls, kw, N, rng) if with_state else [])


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CONFIGS)])
def test_packed_matches_torch(cls, kw):
    rng = np.random.default_rng(1)
    T, N = 5, 4
    x = rng.standard_normal((N, T, 4) if kw.get("batch_first") else (T, N, 4))
    _run_both(cls, kw, x, _states(cls, kw, N, rng), packed_lengths=[3, 5, 1, 3])


@pytest.mark.parametrize("cls,kw", [CONFIGS[1], CONFIGS[5], CONFIGS[8]], ids=["LSTM", "GRU", "RNN"])
def test_unbatched_matches_torch(cls, kw):
    rng = np.random.default_rng(2)
    kw = {k: v for k, v in kw.items() if k != "batch_first"}
    _run_both(cls, kw, rng.standard_normal((3, 4)), _states(cls, kw, 1, rng, unbatched=True))


@pytest.mark.parametrize("H,N,proj", [(1, 1, 0), (7, 13, 0), (17, 7, 0), (33, 25, 0), (33, 7, 17), (16, 12, 0),
                                     (20, 3, 0)])
def test_step_kernel_sizes_match_torch(H, N, proj):
    """The per-step recurrent product runs on W_hh packed in blocks of 16 units and row tiles that split
    the batch evenly: hidden sizes around the block width (a partial last block, 1, exactly 16) and
    batch sizes around the tile heights (6 and 12 rows), packed or padded, both directions, float64."""
    rng = np.random.default_rng(H * 100 + N)
    kw = dict(hidden_size=H, bidirectional=True, proj_size=proj)
    # packed (distinct lengths: the batch shrinks step by step) up to N = 7, padded above
    T = 8 if N <= 7 else 4
    x = rng.standard_normal((T, N, 3))
    lengths = [int(v) for v in rng.permutation(np.arange(T, T - N, -1))] if N <= 7 else None
    _run_both("LSTM", kw, x, _states("LSTM", kw, N, rng), packed_lengths=lengths)
    _run_both("GRU", dict(hidden_size=H), x, [])


@pytest.mark.parametrize("H", [6, 20, 33])
def test_float32_matches_torch(H):
    """float32 forward and gradients; H = 6, 20, 33: a row that is all tail, full vectors then a partial
    one (the gate kernels run a row's tail as one partial vector), on every vector width."""
    rng = np.random.default_rng(3 + H)
    for cls in ("LSTM", "GRU", "RNN"):
        tm, nm = _pair(cls, dict(hidden_size=H, num_layers=2), dtype=np.float32)
        x = rng.standard_normal((5, 3, 4)).astype(np.float32)
        g = rng.standard_normal((5, 3, H)).astype(np.float32)
        ty, _ = tm(torch.tensor(x))
        ny, _ = nm(nnfast.tensor(x))
        assert ny.dtype == np.float32
        np.testing.assert_allclose(ny.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
        (ty * torch.tensor(g)).sum().backward()
        (ny * nnfast.tensor(g)).sum().backward()
        for k, p in tm.named_parameters():
            np.testing.assert_allclose(getattr(nm, k).grad.numpy(), p.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CONFIGS)])
def test_state_dict_round_trip_both_ways(cls, kw):
    """nnfast -> torch and torch -> nnfast: same keys, shapes and outputs."""
    nm = getattr(nn, cls)(4, **kw, dtype=np.float64)
    tm = getattr(torch.nn, cls)(4, **kw).double()
    sd = nm.state_dict()
    assert list(sd) == list(tm.state_dict())
    tm.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in sd.items()})
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    np.testing.assert_allclose(nm(nnfast.tensor(x))[0].detach().numpy(), tm(torch.tensor(x))[0].detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    nm2 = getattr(nn, cls)(4, **kw, dtype=np.float64)
    nm2.load_state_dict({k: nnfast.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    np.testing.assert_allclose(nm2(nnfast.tensor(x))[0].detach().numpy(), tm(torch.tensor(x))[0].detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_parameter_names_shapes_and_init():
    m = nn.LSTM(3, 8, num_layers=2, bidirectional=True, proj_size=2)
    t = torch.nn.LSTM(3, 8, num_layers=2, bidirectional=True, proj_size=2)
    assert [(k, tuple(p.shape)) for k, p in m.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in t.named_parameters()]
    bound = 1 / np.sqrt(8)
    for p in m.parameters():
        a = p.detach().numpy()
        assert np.all(np.abs(a) <= bound) and a.std() > bound / 4
    assert "proj_size=2" in repr(m) and "bidirectional=True" in repr(m)


def test_dropout_between_layers_only_in_training():
    nnfast.manual_seed(0)
    m = nn.LSTM(4, 6, num_layers=2, dropout=0.5, dtype=np.float64)
    ref = nn.LSTM(4, 6, num_layers=2, dtype=np.float64)
    ref.load_state_dict(m.state_dict())
    x = nnfast.tensor(np.random.default_rng(6).standard_normal((5, 3, 4)))
    m.eval()
    np.testing.assert_array_equal(m(x)[0].detach().numpy(), ref(x)[0].detach().numpy())
    m.train()
    y1, y2 = m(x)[0].detach().numpy(), m(x)[0].detach().numpy()
    assert not np.allclose(y1, ref(x)[0].detach().numpy())  # the mask changed layer 1's input
    assert not np.array_equal(y1, y2)                        # a fresh mask per call
    m1 = nn.LSTM(4, 6, num_layers=1, dropout=0.5, dtype=np.float64)  # one layer: nothing to drop
    ref1 = nn.LSTM(4, 6, dtype=np.float64)
    ref1.load_state_dict(m1.state_dict())
    np.testing.assert_array_equal(m1(x)[0].detach().numpy(), ref1(x)[0].detach().numpy())


def test_truncated_bptt_detach_keeps_state_values():
    m = nn.GRU(3, 4, dtype=np.float64)
    x = nnfast.tensor(np.random.default_rng(7).standard_normal((6, 2, 3)))
    y_all, h_all = m(x)
    y1, h1 = m(x[:3])
    y2, h2 = m(x[3:], h1.detach())
    np.testing.assert_allclose(h2.detach().numpy(), h_all.detach().numpy(), rtol=1e-12, atol=1e-12)
    y2.sum().backward()
    assert m.weight_hh_l0.grad is not None


def test_pad_and_pack_sequence_match_torch():
    rng = np.random.default_rng(8)
    seqs = [rng.standard_normal((n, 2)) for n in (2, 4, 1)]
    for bf in (False, True):
        for side in ("right", "left"):
            a = rnn_utils.pad_sequence([nnfast.tensor(s) for s in seqs], batch_first=bf, padding_value=-1.0,
                                       padding_side=side)
            b = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=bf, padding_value=-1.0,
                                                padding_side=side)
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    p = rnn_utils.pack_sequence([nnfast.tensor(s) for s in seqs], enforce_sorted=False)
    q = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(p.data.numpy(), q.data.numpy())
    np.testing.assert_array_equal(p.batch_sizes.numpy(), q.batch_sizes.numpy())
    np.testing.assert_array_equal(p.unsorted_indices.numpy(), q.unsorted_indices.numpy())
    padded, lengths = rnn_utils.pad_packed_sequence(p, batch_first=True, total_length=6)
    tp, tl = torch.nn.utils.rnn.pad_packed_sequence(q, batch_first=True, total_length=6)
    np.testing.assert_array_equal(padded.numpy(), tp.numpy())
    np.testing.assert_array_equal(lengths.numpy(), tl.numpy())
    back = rnn_utils.unpack_sequence(p)
    for s, u in zip(seqs, back):
        np.testing.assert_array_equal(u.numpy(), s)


def test_pack_gradient_flows_to_padded_input():
    x = nnfast.tensor(np.random.default_rng(9).standard_normal((3, 2, 2)), requires_grad=True)
    p = rnn_utils.pack_padded_sequence(x, [3, 1])
    p.data.sum().backward()
    want = np.zeros((3, 2, 2))
    want[:, 0] = 1
    want[0, 1] = 1
    np.testing.assert_array_equal(x.grad.numpy(), want)


@pytest.mark.parametrize("make,call,match", [
    (lambda: nn.LSTM(3, 4), lambda m: m(nnfast.randn(1, 2, 3, 3)), r"\[LSTM\] expected input to be 2-D"),
    (lambda: nn.LSTM(3, 4), lambda m: m(nnfast.randn(2, 1, 5)), r"\[LSTM\] expected input with 3 features"),
    (lambda: nn.LSTM(3, 4), lambda m: m(nnfast.randn(2, 1, 3), (nnfast.zeros(1, 2, 4), nnfast.zeros(1, 1, 4))),
     r"\[LSTM\] expected h_0 of shape \(1, 1, 4\)"),
    (lambda: nn.LSTM(3, 4), lambda m: m(nnfast.randn(2, 1, 3), (nnfast.zeros(1, 1, 4), nnfast.zeros(1, 1, 3))),
     r"\[LSTM\] expected c_0 of shape"),
    (lambda: nn.GRU(3, 4), lambda m: m(nnfast.randn(2, 3), nnfast.zeros(1, 1, 4)), r"\[GRU\] expected h_0 to be 2-D"),
    (lambda: nn.LSTM(3, 4, proj_size=4), None, r"\[LSTM\] expected proj_size < hidden_size"),
    (lambda: nn.RNNBase("GRU", 3, 4, proj_size=2), None, r"\[GRU\] expected proj_size=0"),
    (lambda: nn.RNN(3, 4, nonlinearity="gelu"), None, r"\[RNN\] expected nonlinearity"),
    (lambda: nn.LSTM(3, 4, dropout=1.5), None, r"\[LSTM\] expected dropout"),
    (lambda: nn.RNN(3, 0), None, r"\[RNN\] expected hidden_size"),
])
def test_errors(make, call, match):
    with pytest.raises(ValueError, match=match):
        m = make()
        call(m)


def test_pack_errors():
    x = nnfast.randn(3, 2, 2)
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\] expected lengths sorted"):
        rnn_utils.pack_padded_sequence(x, [1, 3])
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\] expected lengths <= "):
        rnn_utils.pack_padded_sequence(x, [4, 3])
    with pytest.raises(ValueError, match=r"\[pack_padded_sequence\] expected every length > 0"):
        rnn_utils.pack_padded_sequence(x, [3, 0])


def test_kernel_rejects_bad_batch_sizes():
    from nnfast import _C
    x = np.zeros((5, 2))
    args = (np.zeros((5, 3)), np.zeros((2, 3)), None, np.zeros((5, 3)), None, None, np.zeros((5, 3)), None, None, None, x,
            np.zeros((3, 2)), np.zeros((3, 3)), None, None, None, None, None)
    with pytest.raises(ValueError, match=r"\[RNN\] expected batch_sizes non-increasing"):
        _C.rnn_forward(*args, np.array([2, 3], np.int64), "RNN_TANH", False)
    with pytest.raises(ValueError, match=r"\[RNN\] expected batch_sizes summing"):
        _C.rnn_forward(*args, np.array([2, 2], np.int64), "RNN_TANH", False)
    with pytest.raises(ValueError, match=r"\[rnn\] expected mode"):
        _C.rnn_forward(*args, np.array([3, 2], np.int64), "LSTMX", False)


@pytest.mark.parametrize("cls,kw,packed", [("LSTM", dict(hidden_size=3, proj_size=2, num_layers=2, bidirectional=True),
                                            True),
                                           ("GRU", dict(hidden_size=3, bidirectional=True), True),
                                           ("RNN", dict(hidden_size=3, nonlinearity="relu", num_layers=2), False)],
                         ids=["LSTM-proj-packed", "GRU-packed", "RNN-relu"])
def test_module_on_device_matches_cpu(cls, kw, packed, device):
    """The same module on every device (cuda: the CUDA sequence kernels): outputs, states, all gradients."""
    from nnfast import _dispatch
    if device != "cpu" and "rnn" not in _dispatch.ops(device):
        pytest.skip(f"rnn has no kernel on {device} in this build")
    rng = np.random.default_rng(10)
    m_cpu = getattr(nn, cls)(2, **kw, dtype=np.float64)
    m_dev = getattr(nn, cls)(2, **kw, dtype=np.float64)
    m_dev.load_state_dict(m_cpu.state_dict())
    m_dev.to(device)
    x = rng.standard_normal((4, 3, 2))
    runs = []
    for m, dev in ((m_cpu, "cpu"), (m_dev, device)):
        xt = nnfast.tensor(x, requires_grad=True)
        inp = xt.to(dev)
        if packed:
            inp = rnn_utils.pack_padded_sequence(inp, [2, 4, 1], enforce_sorted=False)
        y, st = m(inp)
        if packed:
            y = rnn_utils.pad_packed_sequence(y)[0]
        parts = [y] + (list(st) if cls == "LSTM" else [st])
        sum((p * p).sum() for p in parts).backward()
        runs.append(([p.detach().cpu().numpy() for p in parts], xt.grad.numpy(),
                     {k: p.grad.cpu().numpy() for k, p in m.named_parameters()}))
    (outs_a, gx_a, gw_a), (outs_b, gx_b, gw_b) = runs
    for a, b in zip(outs_a, outs_b):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gx_b, gx_a, rtol=1e-12, atol=1e-13)
    for k in gw_a:
        np.testing.assert_allclose(gw_b[k], gw_a[k], rtol=1e-12, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("cls,kw,packed,N", [("LSTM", {}, False, 64), ("GRU", {}, False, 64), ("GRU", {}, True, 64),
                                             ("RNN", {}, True, 64), ("LSTM", {"proj_size": 10}, False, 64),
                                             ("LSTM", {"proj_size": 70}, True, 64), ("LSTM", {}, True, 6),
                                             ("GRU", {}, False, 6), ("LSTM", {"proj_size": 10}, True, 6)])
def test_same_bits_whatever_the_thread_count(cls, kw, packed, N):
    """A layer's time loop runs in one team of threads that split the batch rows (N = 64: at least 8
    rows a thread; packed, the later steps leave some threads without rows) or, for a small batch
    (N = 6), the hidden units and projected outputs into slices: 1, 2 and 3 threads (uneven slices;
    with proj_size=10 some threads own no output column) give bit-identical outputs and gradients,
    padded or packed, both directions."""
    rng = np.random.default_rng(11)
    m = getattr(nn, cls)(5, 130, bidirectional=True, dtype=np.float32, **kw)
    x = rng.standard_normal((3, N, 5)).astype(np.float32)
    lengths = [3] * 20 + [2] * 30 + [1] * 14 if N == 64 else [3, 3, 2, 2, 1, 1]
    runs = []
    old = nnfast.get_num_threads()
    try:
        for n in (1, 2, 3):
            nnfast.set_num_threads(n)
            m.zero_grad()
            xt = nnfast.tensor(x, requires_grad=True)
            inp = rnn_utils.pack_padded_sequence(xt, lengths) if packed else xt
            y, st = m(inp)
            if packed:
                y = rnn_utils.pad_packed_sequence(y)[0]
            h = st[0] if cls == "LSTM" else st
            ((y * y).sum() + (h * h).sum()).backward()
            runs.append([y.detach().numpy(), h.detach().numpy(), xt.grad.numpy()]
                        + [p.grad.numpy() for p in m.parameters()])
    finally:
        nnfast.set_num_threads(old)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


_LSTM_PATHS_CHILD = r"""
import sys, numpy as np
import nnfast, nnfast.nn as nn
from nnfast._native import _C
from nnfast.nn.utils import rnn as rnn_utils
r = np.random.default_rng(21)
nnfast.manual_seed(21)
for isa in nnfast.info()["simd_supported"]:
    _C.set_cpu_isa(isa)
    for dt in (np.float32, np.float64):
        for H, N, kw, lengths in ((1, 1, {}, None), (7, 3, {"bidirectional": True}, [3, 1, 2]),
                                  (130, 20, {"num_layers": 2}, None), (33, 6, {"proj_size": 5}, [3, 3, 2, 2, 1, 1]),
                                  (20, 5, {}, None)):
            for kind in ("LSTM", "GRU"):  # GRU: its two bias gradients come from different gate gradients
                if kind == "GRU" and "proj_size" in kw:
                    continue
                m = getattr(nn, kind)(4, H, dtype=dt, **kw)
                x = nnfast.tensor(r.standard_normal((3, N, 4)).astype(dt), requires_grad=True)
                inp = rnn_utils.pack_padded_sequence(x, lengths, enforce_sorted=False) if lengths else x
                y, hc = m(inp)
                states = list(hc) if kind == "LSTM" else [hc]
                if lengths:
                    y = rnn_utils.pad_packed_sequence(y)[0]
                sum([(y * y).sum()] + [(st * st).sum() for st in states]).backward()
                for a in [y, *states, x.grad] + [p.grad for p in m.parameters()]:
                    a = (a.detach() if hasattr(a, "detach") else a).numpy()
                    if "zeros-equal" in sys.argv:  # +0 and -0 compare equal
                        a = a + 0.0
                    sys.stdout.write(a.tobytes().hex() + "\n")
"""


@pytest.mark.parametrize("switch", ["NNFAST_RNN_SAVE_TANH", "NNFAST_RNN_SKIP_ZERO_STATE", "NNFAST_RNN_STEP_PAIRS",
                                    "NNFAST_RNN_FUSED_DB", "NNFAST_RNN_SIMD_PACK", "NNFAST_RNN_FWD_RUNS2",
                                    "NNFAST_RNN_FWD_RUNS2+WAVEFRONT", "NNFAST_RNN_BACK_PACK",
                                    "NNFAST_RNN_BACK_PACK+WAVEFRONT"])
def test_lstm_fast_paths_same_values(switch):
    """LSTM forward saves tanh(c') for backward (NNFAST_RNN_SAVE_TANH=0: saves c' and backward takes
    the tanh again): outputs and every gradient keep their bits. Without an initial state the first
    step's recurrent product on the zero state is skipped (NNFAST_RNN_SKIP_ZERO_STATE=0: run anyway):
    the same values (a zero's sign aside). Backward's dh_prev product runs two 16-column blocks a tile
    (NNFAST_RNN_STEP_PAIRS=0: one): the same bits (H = 20: a pair with a partial block). The bias
    gradients are summed by the weight-gradient GEMMs (NNFAST_RNN_FUSED_DB=0: by bias_grad): the same
    bits (GRU too: its db_ih and db_hh differ). W_hh's forward panels are packed by 8 x 8 register
    transposes (NNFAST_RNN_SIMD_PACK=0: one element at a time): the same panels. The forward step product
    runs on panels of 2 gates (NNFAST_RNN_FWD_RUNS2=0: all 4 in one panel): the same bits, layer by layer
    and (+WAVEFRONT) in the 2-layer wavefront, whose layer-1 input projection uses the same panels. Backward's
    W_hh panels are copied by an inlined loop (NNFAST_RNN_BACK_PACK=0: a memcpy call per 16 values): the same
    panels (H = 7 / 33 / 130: partial last blocks). On every SIMD level, float32 and float64, H = 1 / 7 / 130 /
    33 (vector tails), bidirectional (the reverse direction starts at the last step), two layers,
    projected, packed."""
    import os
    import subprocess
    import sys

    args = [sys.executable, "-c", _LSTM_PATHS_CHILD] + (["zeros-equal"] if "ZERO" in switch else [])
    outs = []
    switch, _, extra = switch.partition("+")
    for flag in ("1", "0"):
        env = dict(os.environ, **{switch: flag})
        if extra:
            env["NNFAST_RNN_" + extra] = "1"
        outs.append(subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout)
    assert outs[0].count("\n") > 50 and outs[0] == outs[1]
