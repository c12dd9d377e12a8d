"""nnfast.autocast: the op-by-op dtype table (static, and against live PyTorch when installed),
gradients' dtypes, float64 left alone, the parameter-cast cache, bf16 numerics against float64
references, bf16 inputs outside a region, and the API's errors."""
import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
from nnfast.amp import _table

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)


def bf(a):
    """float64 values of ``a`` rounded to bf16 (ml_dtypes' RNE, an independent oracle)."""
    return np.asarray(a, np.float64).astype(np.float32).astype(BF16).astype(np.float64)


def _inputs(xp_tensor, dtype):
    """Deterministic inputs for the table, built with ``xp_tensor(array)``, in ``dtype``."""
    rng = np.random.default_rng(7)
    a = {
        "x": rng.standard_normal((4, 8)), "w": rng.standard_normal((6, 8)), "b": rng.standard_normal(6),
        "img": rng.standard_normal((2, 3, 8, 8)), "cw": rng.standard_normal((4, 3, 3, 3)),
        "q": rng.standard_normal((1, 2, 5, 8)), "p": rng.random((4, 8)) * 0.8 + 0.1,
    }
    return {k: xp_tensor(v, dtype) for k, v in a.items()}


# op -> f(lib, F, inputs, target) with lib = nnfast or torch (the same call in both)
CALLS = {
    "linear": lambda L, F, i, t: F.linear(i["x"], i["w"], i["b"]),
    "matmul": lambda L, F, i, t: L.matmul(i["x"], i["w"].T),
    "mm": lambda L, F, i, t: L.mm(i["x"], i["w"].T),
    "bmm": lambda L, F, i, t: L.bmm(i["x"][None], i["w"].T[None]),
    "conv1d": lambda L, F, i, t: F.conv1d(i["img"][:, :, 0], i["cw"][:, :, 0]),
    "conv2d": lambda L, F, i, t: F.conv2d(i["img"], i["cw"], padding=1),
    "conv_transpose2d": lambda L, F, i, t: F.conv_transpose2d(i["img"], i["cw"].transpose(0, 1)),
    "prelu": lambda L, F, i, t: F.prelu(i["x"], i["b"][:1]),
    "scaled_dot_product_attention": lambda L, F, i, t: F.scaled_dot_product_attention(i["q"], i["q"], i["q"]),
    "cross_entropy": lambda L, F, i, t: F.cross_entropy(i["x"], t),
    "nll_loss": lambda L, F, i, t: F.nll_loss(i["x"], t),
    "mse_loss": lambda L, F, i, t: F.mse_loss(i["x"], i["x"] * 0.5),
    "l1_loss": lambda L, F, i, t: F.l1_loss(i["x"], i["x"] * 0.5),
    "smooth_l1_loss": lambda L, F, i, t: F.smooth_l1_loss(i["x"], i["x"] * 0.5),
    "huber_loss": lambda L, F, i, t: F.huber_loss(i["x"], i["x"] * 0.5),
    "binary_cross_entropy_with_logits": lambda L, F, i, t: F.binary_cross_entropy_with_logits(i["x"], i["p"]),
    "kl_div": lambda L, F, i, t: F.kl_div(i["x"], i["p"], reduction="batchmean"),
    "softmax": lambda L, F, i, t: F.softmax(i["x"], dim=-1),
    "log_softmax": lambda L, F, i, t: F.log_softmax(i["x"], dim=-1),
    "relu": lambda L, F, i, t: F.relu(i["x"]),
    "gelu": lambda L, F, i, t: F.gelu(i["x"]),
    "sigmoid": lambda L, F, i, t: F.sigmoid(i["x"]),
    "tanh": lambda L, F, i, t: F.tanh(i["x"]),
    "silu": lambda L, F, i, t: F.silu(i["x"]),
    "dropout": lambda L, F, i, t: F.dropout(i["x"], 0.5, training=True),
    "layer_norm": lambda L, F, i, t: F.layer_norm(i["x"], (8,)),
    "batch_norm": lambda L, F, i, t: F.batch_norm(i["x"], None, None, training=True),
    "group_norm": lambda L, F, i, t: F.group_norm(i["img"], 3),
    "rms_norm": lambda L, F, i, t: F.rms_norm(i["x"], (8,)),
    "max_pool2d": lambda L, F, i, t: F.max_pool2d(i["img"], 2),
    "avg_pool2d": lambda L, F, i, t: F.avg_pool2d(i["img"], 2),
}


def _nn_tensor(a, dtype):
    return nnfast.tensor(np.asarray(a, np.float32)).to(dtype)


def _run_nnfast(op, dtype):
    i = _inputs(_nn_tensor, dtype)
    with nnfast.autocast("cpu", dtype=nnfast.bfloat16):
        out = CALLS[op](nnfast, F, i, nnfast.tensor([0, 1, 2, 3]))
    return out.dtype


def test_table_covers_every_policy_op_and_expected_row():
    assert set(_table.EXPECTED) == set(CALLS)
    for op, policy in _table.POLICY.items():
        assert policy in (_table.LOWER, _table.FP32)
        if op in _table.EXPECTED:
            f32, b16 = _table.EXPECTED[op]
            assert (f32, b16) == (("bfloat16", "bfloat16") if policy == _table.LOWER else ("float32", "float32"))


@pytest.mark.parametrize("op", sorted(CALLS))
def test_output_dtypes_match_the_static_table(op):
    f32, b16 = _table.EXPECTED[op]
    assert _run_nnfast(op, nnfast.float32) == getattr(nnfast, f32)
    assert _run_nnfast(op, nnfast.bfloat16) == getattr(nnfast, b16)


@pytest.mark.parametrize("op", sorted(CALLS))
def test_output_dtypes_match_live_pytorch(op):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    def tt(a, dtype):
        return torch.tensor(np.asarray(a, np.float32)).to(dtype)

    got = []
    for dtype in (torch.float32, torch.bfloat16):
        i = _inputs(tt, dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got.append(str(CALLS[op](torch, TF, i, torch.tensor([0, 1, 2, 3])).dtype).replace("torch.", ""))
    assert tuple(got) == _table.EXPECTED[op]
    for want, dtype in zip(got, (nnfast.float32, nnfast.bfloat16)):
        assert _run_nnfast(op, dtype) == getattr(nnfast, want)


def test_float64_is_never_autocast():
    x = nnfast.randn(4, 8, dtype=nnfast.float64)
    lin = nnfast.nn.Linear(8, 3).double()
    with nnfast.autocast("cpu"):
        assert lin(x).dtype == nnfast.float64
        assert (x @ x.T).dtype == nnfast.float64
        assert F.relu(x).dtype == nnfast.float64


def test_mlp_gradients_flow_in_the_right_dtypes(device):
    """On every device (the cuda device widens and rounds through CuPy casts: no bf16 kernels there)."""
    nnfast.manual_seed(0)
    model = nnfast.nn.Sequential(nnfast.nn.Linear(12, 16), nnfast.nn.ReLU(), nnfast.nn.Linear(16, 5)).to(device)
    x = nnfast.randn(9, 12, device=device)
    y = nnfast.tensor(np.arange(9) % 5, device=device)
    with nnfast.autocast("cpu" if device == "cpu" else "cuda"):
        h = model[0](x)
        h.retain_grad()
        a = model[1](h)
        logits = model[2](a)
        loss = F.cross_entropy(logits, y)
    assert (h.dtype, a.dtype, logits.dtype, loss.dtype) == (nnfast.bfloat16,) * 3 + (nnfast.float32,)
    loss.backward()
    assert h.grad.dtype == nnfast.bfloat16  # an activation's gradient in its own dtype
    for p in model.parameters():
        assert p.dtype == nnfast.float32 and p.grad.dtype == nnfast.float32
    # optimizer state stays float32
    opt = nnfast.optim.Adam(model.parameters(), lr=1e-3)
    opt.step()
    for p in model.parameters():
        assert p.dtype == nnfast.float32
        assert all(getattr(v, "dtype", nnfast.float32) in (nnfast.float32, nnfast.float64, nnfast.int64)
                   for v in opt.state[p].values() if hasattr(v, "dtype"))


def test_linear_numerics_against_float64_of_bf16_rounded_operands():
    rng = np.random.default_rng(3)
    for m, k, n in ((1, 7, 3), (7, 1023, 5), (33, 64, 17)):
        x, w, b = rng.standard_normal((m, k)), rng.standard_normal((n, k)), rng.standard_normal(n)
        tx, tw, tb = (nnfast.tensor(v.astype(np.float32), requires_grad=True) for v in (x, w, b))
        with nnfast.autocast("cpu"):
            y = F.linear(tx, tw, tb)
        ref = bf(x) @ bf(w).T + b.astype(np.float32)
        # float32 accumulation of exact products (k * 2^-24 relative), one bf16 rounding of the output,
        # and of the bias where it is cast to bf16 too (PyTorch's casts; the bf16 GEMM keeps it float32)
        bound = (2.0 ** -8) * (np.abs(ref) + np.abs(b)) + k * 2.0 ** -23 * (np.abs(bf(x)) @ np.abs(bf(w)).T + np.abs(b))
        err = np.abs(y.detach().float().numpy() - ref)
        assert np.all(err <= bound), (m, k, n, float(np.max(err - bound)))
        g = rng.standard_normal((m, n))
        y.backward(nnfast.tensor(g.astype(np.float32)).bfloat16())
        gb = bf(g)
        dw_ref = gb.T @ bf(x)
        dw_bound = (m * 2.0 ** -23 + 2.0 ** -8) * (np.abs(gb).T @ np.abs(bf(x))) + 1e-30
        assert tw.grad.dtype == nnfast.float32
        assert np.all(np.abs(tw.grad.numpy() - dw_ref) <= dw_bound)
        # bf16 rounding of the sum where the bias was cast (PyTorch's path), float32 summation otherwise
        assert np.all(np.abs(tb.grad.numpy() - gb.sum(0)) <= (2.0 ** -8 + m * 2.0 ** -23) * np.abs(gb).sum(0))
        dx_ref = gb @ bf(w)
        dx_bound = 2.0 ** -8 * np.abs(dx_ref) + n * 2.0 ** -22 * (np.abs(gb) @ np.abs(bf(w)))
        assert np.all(np.abs(tx.grad.numpy() - dx_ref) <= dx_bound + 1e-30)


@pytest.mark.parametrize("lead", [(1,), (7,), (3, 5)])
def test_float32_input_and_weight_are_rounded_once_and_saved_bf16(lead, monkeypatch):
    """A float32 x and the weight of a linear under autocast are rounded to bf16 once (PyTorch's
    casts): the node saves the bf16 x (for dW) and the bf16 weight (for dx), x's and W's gradients
    stay float32, and output and gradients are bit-identical to those of the same layer fed
    x.bfloat16() (whose dx is rounded to bf16) and to the GEMM-packing conversion (the switches
    off); non-contiguous x included."""
    from nnfast.amp import autocast_mode as am

    rng = np.random.default_rng(5)
    k, n = 13, 6
    x = rng.standard_normal(lead + (2 * k,)).astype(np.float32)[..., ::2]  # strided last axis
    w, b, g = rng.standard_normal((n, k)), rng.standard_normal(n), rng.standard_normal(lead + (n,))
    runs = []
    for pre_round, once in ((False, True), (True, True), (False, False)):
        monkeypatch.setitem(am._ROUND_ONCE, "x", once)
        monkeypatch.setitem(am._ROUND_ONCE, "weight", once)
        tx = nnfast.tensor(x, requires_grad=True)
        tw, tb = (nnfast.tensor(v.astype(np.float32), requires_grad=True) for v in (w, b))
        with nnfast.autocast("cpu"):
            y = F.linear(tx.bfloat16() if pre_round else tx, tw, tb, activation="relu")
        assert y.dtype == nnfast.bfloat16
        saved_x, saved_w, _ = y.grad_fn.saved_tensors
        assert saved_w.dtype == (BF16 if once else np.float32)
        np.testing.assert_array_equal(saved_w.astype(np.float64), bf(w) if once else w.astype(np.float32))
        if not pre_round:
            assert saved_x.dtype == (BF16 if once else np.float32) and saved_x.shape == (int(np.prod(lead)), k)
            if once:
                assert np.array_equal(saved_x.astype(np.float64), bf(x).reshape(-1, k))
        y.backward(nnfast.tensor(g.astype(np.float32)).bfloat16())
        assert tx.grad.dtype == nnfast.float32 and tw.grad.dtype == nnfast.float32  # fresh grads: float32
        runs.append([y.detach().float().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()])
    (y0, dx0, dw0, db0), (y1, dx1, dw1, db1), packing = runs
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(dw0, dw1)
    np.testing.assert_array_equal(db0, db1)
    # x.bfloat16()'s gradient is the bf16 dx widened by the cast; a float32 x gets it unrounded
    np.testing.assert_array_equal(bf(dx0), dx1)
    for a, r in zip(runs[0], packing):
        np.testing.assert_array_equal(a, r)
    # and against float64 of the bf16-rounded operands (relu of the pre-activation)
    z = bf(x).reshape(-1, k) @ bf(w).T + b.astype(np.float32)
    ref = np.maximum(z, 0)
    bound = 2.0 ** -8 * np.abs(ref) + k * 2.0 ** -23 * (np.abs(bf(x)).reshape(-1, k) @ np.abs(bf(w)).T + np.abs(b))
    assert np.all(np.abs(runs[0][0].reshape(-1, n) - ref) <= bound)


def test_linear_backward_reads_the_forwards_weight_cast():
    """The bf16 weight a region's linear computed with is what its dx GEMM uses (PyTorch's autocast
    saves the cast, not the master): an in-place update of the master between forward and
    backward changes neither dx nor raises; dW lands in the master's float32 .grad."""
    rng = np.random.default_rng(8)
    x0, w0, g0 = rng.standard_normal((4, 6)), rng.standard_normal((3, 6)), rng.standard_normal((4, 3))
    x = nnfast.tensor(x0.astype(np.float32), requires_grad=True)
    w = nnfast.tensor(w0.astype(np.float32), requires_grad=True)
    with nnfast.autocast("cpu"):
        y = F.linear(x, w)
    with nnfast.no_grad():
        w.mul_(4.0)
    y.backward(nnfast.tensor(g0.astype(np.float32)).bfloat16())
    gb = bf(g0)
    dx_ref = gb @ bf(w0)
    assert np.all(np.abs(x.grad.numpy() - dx_ref) <= 3 * 2.0 ** -22 * (np.abs(gb) @ np.abs(bf(w0))) + 1e-30)
    assert w.grad.dtype == nnfast.float32
    np.testing.assert_allclose(w.grad.numpy(), gb.T @ bf(x0), rtol=2.0 ** -7, atol=1e-6)


LINEAR_CALLS = {
    "positional": lambda x, w, b: F.linear(x, w, b),
    "keywords": lambda x, w, b: F.linear(input=x, weight=w, bias=b, activation="relu"),
    "no_bias_act_positional": lambda x, w, b: F.linear(x, w, None, "silu"),
    "act_spec_tuple": lambda x, w, b: F.linear(x, w, b, activation=("gelu", {"approximate": "tanh"})),
    "bf16_input_3d": lambda x, w, b: F.linear(x.bfloat16().reshape(3, 1, 7), w, b, activation="tanh"),
    "module": lambda x, w, b: nnfast.nn.Linear(7, 5, activation="relu")(x),
}


@pytest.mark.parametrize("form", sorted(LINEAR_CALLS))
def test_linear_autocast_lane_matches_the_general_route(form, monkeypatch):
    """The direct lane of ``linear`` in a region gives bit-identical outputs and gradients to the
    general route (``_run`` -> ``_linear_lower``), is taken for the plain forms and steps aside for
    what it does not handle (an unhashable activation spec)."""
    from nnfast.amp import autocast_mode as am

    rng = np.random.default_rng(9)
    x0, w0, b0, g0 = (rng.standard_normal(s).astype(np.float32) for s in ((3, 7), (5, 7), (5,), (3, 5)))
    taken, real = [], am._linear_autocast_cpu

    def spy(args, kwargs):
        y = real(args, kwargs)
        taken.append(y is not None)
        return y

    results = []
    for lane in (True, False):
        monkeypatch.setattr(am, "_linear_autocast_cpu", spy if lane else (lambda args, kwargs: None))
        nnfast.manual_seed(4)  # the module form's parameters
        x, w, b = (nnfast.tensor(v, requires_grad=True) for v in (x0, w0, b0))
        with nnfast.autocast("cpu"):
            y = LINEAR_CALLS[form](x, w, b)
        assert y.dtype == nnfast.bfloat16
        y.float().reshape(3, 5).backward(nnfast.tensor(g0))
        params = [t for t in y.grad_fn.inputs if t is not None] if form == "module" else [x, w, b]
        grads = [t.grad.numpy() for t in params if t.grad is not None]
        assert len(grads) >= 2
        results.append([y.detach().float().numpy()] + grads)
    assert taken == [form != "act_spec_tuple"]
    assert len(results[0]) == len(results[1])
    for a, r in zip(*results):
        np.testing.assert_array_equal(a, r)


def test_linear_autocast_errors_are_the_general_routes():
    x, w = nnfast.randn(3, 7), nnfast.randn(5, 6)
    with nnfast.autocast("cpu"):
        with pytest.raises(ValueError, match=r"^\[linear\] expected"):
            F.linear(x, w)
        with pytest.raises(TypeError, match=r"^\[linear\] expected"):
            F.linear(x, "w")
        y = F.linear(x.double(), nnfast.randn(5, 7).double())  # float64 is never autocast
    assert y.dtype == nnfast.float64


@pytest.mark.parametrize("act, lead", [("relu", (7,)), ("gelu", (3, 5)), ("sigmoid", (1,))])
def test_mlp_act_backward_folded_into_the_bf16_dx_gemm(act, lead, monkeypatch):
    """linear(act) -> linear under autocast: the second layer's dx GEMM applies act' and hands the
    first layer a float32 dz. The weight/bias gradients match a float64 reference (of the bf16-rounded
    operands) and the unfused path; the fold is really taken, and not when the activation's gradient
    is retained."""
    from nnfast.amp import autocast_mode as am

    rng = np.random.default_rng(11)
    k, h, n = 13, 33, 6
    x, w1, b1 = rng.standard_normal(lead + (k,)), rng.standard_normal((h, k)) / 3, rng.standard_normal(h)
    w2, b2, g = rng.standard_normal((n, h)) / 5, rng.standard_normal(n), rng.standard_normal(lead + (n,))
    taken = []
    real = am._fusable_bf16
    monkeypatch.setattr(am, "_fusable_bf16", lambda prev, shape: taken.append(real(prev, shape)) or taken[-1])

    def grads(fold, retain=False):
        if not fold:
            monkeypatch.setattr(am, "_fusable_bf16", lambda prev, shape: False)
        ps = [nnfast.tensor(v.astype(np.float32), requires_grad=True) for v in (w1, b1, w2, b2)]
        with nnfast.autocast("cpu"):
            hid = F.linear(nnfast.tensor(x.astype(np.float32)), ps[0], ps[1], activation=act)
            if retain:
                hid.retain_grad()
            y = F.linear(hid, ps[2], ps[3])
        y.backward(nnfast.tensor(g.astype(np.float32)).bfloat16())
        assert all(p.grad.dtype == nnfast.float32 for p in ps)
        if retain:
            assert hid.grad.dtype == nnfast.bfloat16
        return [p.grad.numpy().astype(np.float64) for p in ps], hid.detach().float().numpy().astype(np.float64)

    (dw1, db1, dw2, db2), hid = grads(True)
    assert taken == [True]
    taken.clear()
    grads(True, retain=True)
    assert taken == [False]  # a retained gradient must be the bf16 dy, before act'
    (uw1, ub1, uw2, ub2), _ = grads(False)

    # float64 reference on the bf16-rounded operands (the GEMM packing rounds x, W and dz to bf16)
    x2, g2 = x.reshape(-1, k), bf(g).reshape(-1, n)
    pre = bf(x2) @ bf(w1).T + b1
    if act == "relu":
        dact = (hid.reshape(-1, h) > 0).astype(np.float64)
    elif act == "sigmoid":
        s = hid.reshape(-1, h)  # sigmoid' from its bf16 output, as the unfused path and PyTorch
        dact = s * (1 - s)
    else:
        from math import erf, pi, sqrt
        cdf = 0.5 * (1 + np.vectorize(erf)(pre / sqrt(2)))
        dact = cdf + pre * np.exp(-pre ** 2 / 2) / sqrt(2 * pi)
    dz1 = (g2 @ bf(w2)) * dact
    mag = (np.abs(g2) @ np.abs(bf(w2))) * np.abs(dact)
    tol = 2.0 ** -6  # dz1 rounded to bf16 once (packing), activation inputs bf16 / float32
    assert np.all(np.abs(dw1 - dz1.T @ bf(x2)) <= tol * (mag.T @ np.abs(bf(x2))) + 1e-6)
    assert np.all(np.abs(db1 - dz1.sum(0)) <= tol * mag.sum(0) + 1e-6)
    # the fold changes only where dz1 is rounded: the unfused path's bf16 dy differs by <= 2^-8 relative
    assert np.all(np.abs(dw1 - uw1) <= tol * (mag.T @ np.abs(bf(x2))) + 1e-6)
    assert np.all(np.abs(db1 - ub1) <= tol * mag.sum(0) + 1e-6)
    assert np.array_equal(dw2, uw2) and np.array_equal(db2, ub2)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "silu"])
def test_separate_activation_module_on_bf16_is_one_node_and_folds(act, monkeypatch):
    """Linear -> nn.ReLU (etc.) -> Linear under autocast: the activation runs as one bf16 node, the
    second linear's dx GEMM applies its act' and the float32 dz reaches the first linear. Values and
    gradients equal the three-node cast / float32 op / cast path up to one bf16 rounding of dz."""
    from nnfast.amp import autocast_mode as am

    rng = np.random.default_rng(12)
    x = rng.standard_normal((7, 13)).astype(np.float32)
    g = rng.standard_normal((7, 5)).astype(np.float32)
    mods = {"relu": nnfast.nn.ReLU, "sigmoid": nnfast.nn.Sigmoid, "tanh": nnfast.nn.Tanh, "silu": nnfast.nn.SiLU}

    def run(fast, retain=False):
        if not fast:
            monkeypatch.setattr(am, "_ACT_BF16", {})
        nnfast.manual_seed(0)
        model = nnfast.nn.Sequential(nnfast.nn.Linear(13, 33), mods[act](), nnfast.nn.Linear(33, 5))
        xt = nnfast.tensor(x, requires_grad=True)
        with nnfast.autocast("cpu"):
            h = model[0](xt)
            a = model[1](h)
            if retain:
                h.retain_grad()
            y = model[2](a)
        assert a.dtype == nnfast.bfloat16 and y.dtype == nnfast.bfloat16
        if fast:
            assert type(a.grad_fn) is am.ActivationBF16Function
        y.backward(nnfast.tensor(g).bfloat16())
        if retain:
            assert h.grad.dtype == nnfast.bfloat16
        assert xt.grad.dtype == nnfast.float32
        return a.detach().float().numpy(), [p.grad.numpy() for p in model.parameters()] + [xt.grad.numpy()]

    a_fast, g_fast = run(True)
    a_ret, g_ret = run(True, retain=True)
    a_slow, g_slow = run(False)
    assert np.array_equal(a_fast, a_slow)  # one rounding of the float32 activation either way
    for gf, gr, gs in zip(g_fast, g_ret, g_slow):
        scale = np.abs(gs).max() + 1e-30
        assert np.abs(gf - gs).max() <= 2.0 ** -6 * scale
        assert np.abs(gr - gs).max() <= 2.0 ** -6 * scale
    assert np.array_equal(g_fast[2], g_slow[2]) and np.array_equal(g_fast[3], g_slow[3])  # 2nd layer's


def test_bf16_activation_leaf_gradient_keeps_bf16():
    x = nnfast.tensor(np.array([-1.5, 0.0, 2.25, 3.0], np.float32)).bfloat16().requires_grad_()
    y = F.relu(x)
    assert y.dtype == nnfast.bfloat16 and np.array_equal(y.detach().float().numpy(), [0, 0, 2.25, 3])
    (y.float() * nnfast.tensor(np.array([1, 2, 3, 4], np.float32))).sum().backward()
    assert x.grad.dtype == nnfast.bfloat16 and np.array_equal(x.grad.float().numpy(), [0, 0, 3, 4])


def test_bf16_inputs_outside_a_region_run_the_float32_kernels_and_round():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 2, 7, 7)).astype(np.float32)
    xb = nnfast.tensor(a).bfloat16()
    x32 = nnfast.tensor(bf(a).astype(np.float32))
    for f in (F.relu, F.gelu, lambda t: F.max_pool2d(t, 2), lambda t: F.layer_norm(t, (7,)),
              lambda t: F.batch_norm(t, None, None, training=True), lambda t: F.softmax(t, dim=1),
              lambda t: F.log_softmax(t, dim=-1), lambda t: t.reshape(6, 49).T, lambda t: t * 2 + t):
        out = f(xb)
        assert out.dtype == nnfast.bfloat16
        want = f(x32).detach().numpy()
        np.testing.assert_array_equal(out.detach().float().numpy(), bf(want))


def test_bf16_dropout_and_gradient_dtype():
    x = nnfast.randn(64, 33).bfloat16().requires_grad_()
    y = F.dropout(x, 0.5, training=True)
    assert y.dtype == nnfast.bfloat16
    y.float().sum().backward()
    assert x.grad.dtype == nnfast.bfloat16
    kept = y.detach().float().numpy() != 0
    np.testing.assert_array_equal(x.grad.float().numpy()[kept], 2.0)


def test_ops_without_bf16_support_raise_clearly():
    xb = nnfast.randn(1, 2, 4, 4).bfloat16()
    with pytest.raises(TypeError, match=r"^\[interpolate\] expected input to be float32 or float64, got bfloat16"):
        F.interpolate(xb, scale_factor=2)


def test_parameter_casts_are_cached_within_a_region():
    from nnfast.amp import autocast_mode as am

    w = nnfast.nn.Parameter(nnfast.randn(5, 5))
    x = nnfast.randn(3, 5)
    with nnfast.autocast("cpu"):
        a = am._to_lower(w)
        assert am._to_lower(w) is a
        x @ w
        with nnfast.autocast("cpu"):
            assert am._to_lower(w) is a  # nested regions share it
        assert am._to_lower(w) is a
        assert am._to_lower(x) is not am._to_lower(x)  # not a leaf parameter: never cached
    assert not am._state.cache  # the outermost exit drops it
    with nnfast.autocast("cpu", cache_enabled=False):
        assert am._to_lower(w) is not am._to_lower(w)


@pytest.mark.parametrize("write", ["sgd_step", "adam_step", "lbfgs_step", "load_state_dict", "mul_", "replace_data"])
def test_parameter_cast_cache_is_invalidated_by_in_place_writes(write):
    """A region spanning an optimizer step (or load_state_dict, an in-place op under no_grad, a new
    array) must not reuse the old cast: the next matmul sees the new weight values."""
    from nnfast.amp import autocast_mode as am

    rng = np.random.default_rng(2)
    lin = nnfast.nn.Linear(5, 3, bias=False)
    w = lin.weight
    x = nnfast.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    with nnfast.autocast("cpu"):
        first = am._to_lower(w)
        assert am._to_lower(w) is first  # cached while nothing writes
        y = nnfast.matmul(x, w.T)
        if write == "load_state_dict":
            lin.load_state_dict({"weight": rng.standard_normal((3, 5)).astype(np.float32)})
        elif write == "mul_":
            with nnfast.no_grad():
                w.mul_(3.0)
        elif write == "replace_data":
            w.data = nnfast.tensor(rng.standard_normal((3, 5)).astype(np.float32))
        else:
            opt = {"sgd_step": lambda: nnfast.optim.SGD([w], lr=0.5),
                   "adam_step": lambda: nnfast.optim.Adam([w], lr=0.5),
                   "lbfgs_step": lambda: nnfast.optim.LBFGS([w], lr=0.5, max_iter=2)}[write]()
            y.float().sum().backward()
            if write == "lbfgs_step":
                def closure():
                    opt.zero_grad()
                    loss = nnfast.matmul(x, w.T).float().pow(2).sum()
                    loss.backward()
                    return loss
                opt.step(closure)
            else:
                opt.step()
        low = am._to_lower(w)
        assert low is not first
        wv = w.detach().numpy().astype(np.float64)
        assert not np.array_equal(bf(wv), first.detach().float().numpy())  # the write changed the values
        np.testing.assert_array_equal(low.detach().float().numpy(), bf(wv))
        y2 = nnfast.matmul(x, w.T).detach().float().numpy()
    ref = bf(x.numpy()) @ bf(wv).T
    assert np.all(np.abs(y2 - ref) <= 2.0 ** -7 * np.abs(ref) + 5 * 2.0 ** -22 * (np.abs(bf(x.numpy())) @ np.abs(bf(wv)).T))


def test_api_context_decorator_nesting_and_errors():
    assert not nnfast.is_autocast_enabled() and not nnfast.is_autocast_enabled("cuda")
    assert nnfast.get_autocast_dtype("cpu") == nnfast.bfloat16
    assert nnfast.amp.autocast is nnfast.autocast

    @nnfast.autocast("cpu")
    def f(x):
        return nnfast.is_autocast_enabled("cpu"), (x @ x).dtype

    assert f(nnfast.randn(3, 3)) == (True, nnfast.bfloat16)
    assert not nnfast.is_autocast_enabled("cpu")
    with nnfast.autocast("cpu"):
        with nnfast.autocast("cpu", enabled=False):
            assert not nnfast.is_autocast_enabled("cpu")
            assert (nnfast.randn(2, 2) @ nnfast.randn(2, 2)).dtype == nnfast.float32
        assert nnfast.is_autocast_enabled("cpu")
    with nnfast.autocast("cuda"):  # another device's region leaves the CPU's ops alone
        assert (nnfast.randn(2, 2) @ nnfast.randn(2, 2)).dtype == nnfast.float32
    with pytest.raises(ValueError, match=r"^\[autocast\] expected dtype nnfast.bfloat16"):
        nnfast.autocast("cpu", dtype=nnfast.float16)
    with pytest.raises(ValueError, match=r"^\[autocast\] expected device_type 'cpu' or 'cuda'"):
        nnfast.autocast("tpu")


def _fit_accuracy(precision, epochs=3):
    nnfast.manual_seed(0)
    X, y, Xte, yte = nnfast.datasets.mnist_5k()
    model = nnfast.nn.Sequential(nnfast.nn.Linear(784, 128, activation="relu"), nnfast.nn.Linear(128, 10))
    opt = nnfast.optim.Adam(model.parameters(), lr=2e-3)
    h = nnfast.fit(model, nnfast.nn.CrossEntropyLoss(), opt, (X, y), (Xte, yte), epochs=epochs, batch_size=64,
                   metrics=["accuracy"], verbose=False, precision=precision)
    assert all(p.dtype == nnfast.float32 for p in model.parameters())
    return h["val_accuracy"][-1]


def test_bf16_training_matches_fp32_accuracy_small():
    """The fast twin of the CLI acceptance run below: a 784-128-10 MLP, 3 epochs."""
    fp32, bf16 = _fit_accuracy("fp32"), _fit_accuracy("bf16")
    assert fp32 >= 0.9 and abs(bf16 - fp32) <= 0.005, (fp32, bf16)


def test_fit_rejects_an_unknown_precision():
    with pytest.raises(ValueError, match=r"^\[fit\] expected precision 'fp32' or 'bf16', got 'fp16'"):
        nnfast.fit(nnfast.nn.Linear(2, 2), nnfast.nn.MSELoss(), None, (np.zeros((2, 2), np.float32),) * 2,
                   precision="fp16")


@pytest.mark.slow
def test_cli_train_bf16_within_half_a_point_of_fp32(tmp_path):
    import json
    import subprocess
    import sys

    acc = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.json"
        r = subprocess.run([sys.executable, "-m", "nnfast", "train", "--precision", precision, "--quiet",
                            "--json", str(out)], capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr
        acc[precision] = json.loads(out.read_text())["summary"]["test_accuracy"]
    assert abs(acc["bf16"] - acc["fp32"]) <= 0.005, acc
