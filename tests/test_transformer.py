"""nn.MultiheadAttention, the Transformer encoder / decoder layers and nn.Transformer.

float64 gradcheck on the real kernels (inputs and parameters), the float64 NumPy reference of
tests/opinfo_transformer.py, PyTorch's layout and results (state dicts load both ways, same
outputs and gradients in float64, eval mode / dropout 0), masks of every kind, unbatched and
batch_first inputs, the emulated cuda device, and the errors. (F.multi_head_attention_forward's
registry rows in tests/opinfo_transformer.py run through tests/test_ops.py.)"""
import copy

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck

from conftest import DEVICES
import opinfo  # noqa: F401  (first: it imports opinfo_transformer and then fills in the device columns)
from opinfo_transformer import mha_ref

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")
E, L, S = 6, 5, 7


@pytest.fixture
def one_thread():
    """Gradchecks call these tiny kernels ~1,000 times: on a shared, oversubscribed CI machine the
    OpenMP barriers would dominate. Results do not depend on the thread count."""
    before = nnfast.get_num_threads()
    nnfast.set_num_threads(1)
    yield
    nnfast.set_num_threads(before)


def _t(a, device="cpu", grad=False):
    if a is None:
        return None
    t = nnfast.tensor(a).to(device)
    return t.requires_grad_(True) if grad and a.dtype.kind == "f" else t


def _tt(a, grad=False):
    if a is None:
        return None
    t = torch.tensor(a)
    return t.requires_grad_(True) if grad and a.dtype.kind == "f" else t


def _np(t):
    return np.asarray(nnfast._dispatch.to_host(t.detach()._data), np.float64)


def _copy_into_torch(ours, theirs):
    theirs.load_state_dict({k: torch.tensor(_np(v)) for k, v in ours.state_dict().items()})


def _copy_from_torch(theirs, ours):
    ours.load_state_dict({k: nnfast.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})


def _masks(rng, kind, n, heads, tgt, src, unbatched=False):
    """(attn_mask, key_padding_mask) arrays of the named kind (None where absent)."""
    lead = () if unbatched else (n,)
    am = kpm = None
    if "bool2d" in kind:
        am = rng.random((tgt, src)) < 0.3
        am[:, 0] = False
    if "float2d" in kind:
        am = rng.standard_normal((tgt, src))
    if "float3d" in kind:
        am = rng.standard_normal((heads if unbatched else n * heads, tgt, src))
    if "bool3d" in kind:
        am = rng.random((heads if unbatched else n * heads, tgt, src)) < 0.3
        am[..., 0] = False
    if "causal" in kind:
        am = np.triu(np.full((tgt, src), -np.inf), 1)
    if "kpm_bool" in kind:
        kpm = rng.random(lead + (src,)) < 0.3
        kpm[..., 0] = False
    if "kpm_float" in kind:
        kpm = rng.standard_normal(lead + (src,))
    return am, kpm


# ============================================================================ MultiheadAttention
MHA_CASES = [  # id, constructor kwargs, forward kwargs, self-attention, batch, unbatched
    ("self", {}, {}, True, 2, False),
    ("self-noweights", {}, {"need_weights": False}, True, 2, False),
    ("self-causal", {}, {"need_weights": False, "is_causal": True, "masks": "causal"}, True, 2, False),
    ("self-causal-weights", {}, {"is_causal": True, "masks": "causal"}, True, 1, False),
    ("cross-bool2d-kpm", {}, {"masks": "bool2d kpm_bool"}, False, 2, False),
    ("cross-float2d-kpmfloat", {}, {"masks": "float2d kpm_float", "need_weights": False}, False, 2, False),
    ("cross-float3d", {"num_heads": 2}, {"masks": "float3d", "average_attn_weights": False}, False, 2, False),
    ("cross-bool3d-noweights", {}, {"masks": "bool3d kpm_bool", "need_weights": False}, False, 1, False),
    ("kdim-vdim", {"kdim": 4, "vdim": 5}, {"masks": "kpm_bool"}, False, 2, False),
    ("kdim-vdim-noweights", {"kdim": 4, "vdim": 5, "num_heads": 2}, {"need_weights": False}, False, 1, False),
    ("bias_kv", {"add_bias_kv": True}, {"masks": "bool2d kpm_bool"}, False, 2, False),
    ("zero_attn", {"add_zero_attn": True}, {"masks": "float3d kpm_bool", "need_weights": False}, False, 2, False),
    ("bias_kv-zero_attn", {"add_bias_kv": True, "add_zero_attn": True}, {"masks": "float2d"}, True, 1, False),
    ("no-bias", {"bias": False}, {}, False, 2, False),
    ("batch_first", {"batch_first": True}, {"masks": "kpm_bool"}, False, 2, False),
    ("batch_first-self", {"batch_first": True}, {"need_weights": False}, True, 2, False),
    ("unbatched", {}, {"masks": "float3d kpm_bool"}, False, 1, True),
    ("unbatched-self", {"num_heads": 2}, {"need_weights": False, "masks": "bool2d"}, True, 1, True),
]


def _mha_inputs(rng, ctor, fwd, self_attn, n, unbatched):
    heads = ctor.get("num_heads", 3)
    bf = ctor.get("batch_first", False)
    kdim, vdim = ctor.get("kdim", E), ctor.get("vdim", E)

    def seq(length, dim):
        shape = (length, dim) if unbatched else ((n, length, dim) if bf else (length, n, dim))
        return rng.standard_normal(shape)
    q = seq(L, E)
    k, v = (q, q) if self_attn else (seq(S, kdim), seq(S, vdim))
    src = L if self_attn else S
    am, kpm = _masks(rng, fwd.get("masks", ""), n, heads, L, src, unbatched)
    opts = {k2: v2 for k2, v2 in fwd.items() if k2 != "masks"}
    return heads, q, k, v, am, kpm, opts


def _ctor(ctor):
    kw = dict(ctor)
    heads = kw.pop("num_heads", 3)
    return heads, kw


def _run(module, lib, q, k, v, am, kpm, opts, self_attn, device="cpu"):
    """Forward and backward of one MHA call; returns outputs and every gradient as float64 arrays."""
    mk = (lambda a: _t(a, device, True)) if lib == "nnfast" else (lambda a: _tt(a, True))
    mask = (lambda a: _t(a, device)) if lib == "nnfast" else _tt
    qt = mk(q)
    kt, vt = (qt, qt) if self_attn else (mk(k), mk(v))
    out, w = module(qt, kt, vt, key_padding_mask=mask(kpm), attn_mask=mask(am), **opts)
    loss = (out * mk(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape))).detach()).sum()
    if w is not None:
        loss = loss + (w * mk(np.linspace(1, 2, w.numel()).reshape(tuple(w.shape))).detach()).sum()
    loss.backward()
    to = _np if lib == "nnfast" else (lambda t: t.detach().numpy())
    grads = {name: to(p.grad) for name, p in module.named_parameters()}
    grads.update(q=to(qt.grad))
    if not self_attn:
        grads.update(k=to(kt.grad), v=to(vt.grad))
    return to(out), (None if w is None else to(w)), grads


@needs_torch
@pytest.mark.parametrize("case", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_mha_matches_torch_and_reference(case):
    """Outputs, weights and every gradient equal PyTorch's in float64 (torch's state_dict loaded
    into nnfast), and the forward equals the NumPy reference."""
    _, ctor, fwd, self_attn, n, unbatched = case
    rng = np.random.default_rng(7)
    heads, q, k, v, am, kpm, opts = _mha_inputs(rng, ctor, fwd, self_attn, n, unbatched)
    h, kw = _ctor(ctor)
    theirs = torch.nn.MultiheadAttention(E, h, dtype=torch.float64, **kw)
    if kw.get("bias", True):  # non-zero biases, so their gradients and paths are exercised
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours = nn.MultiheadAttention(E, h, dtype=np.float64, **kw)
    _copy_from_torch(theirs, ours)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    o1, w1, g1 = _run(ours, "nnfast", q, k, v, am, kpm, opts, self_attn)
    o2, w2, g2 = _run(theirs, "torch", q, k, v, am, kpm, opts, self_attn)
    np.testing.assert_allclose(o1, o2, rtol=1e-10, atol=1e-12)
    assert (w1 is None) == (w2 is None)
    if w1 is not None:
        np.testing.assert_allclose(w1, w2, rtol=1e-10, atol=1e-12)
    for name in g2:
        np.testing.assert_allclose(g1[name], g2[name], rtol=1e-9, atol=1e-11, err_msg=name)
    # the float64 reference (seq-first layout)
    sd = {k2: _np(p) for k2, p in ours.state_dict().items()}
    if "in_proj_weight" in sd:
        wq, wk, wv = np.split(sd["in_proj_weight"], 3)
    else:
        wq, wk, wv = sd["q_proj_weight"], sd["k_proj_weight"], sd["v_proj_weight"]
    tr = (lambda a: a.transpose(1, 0, 2)) if kw.get("batch_first") and not unbatched else (lambda a: a)
    ref_out, ref_w = mha_ref(tr(q), tr(k), tr(v), heads, wq, wk, wv, sd.get("in_proj_bias"), sd["out_proj.weight"],
                             sd.get("out_proj.bias"), sd.get("bias_k"), sd.get("bias_v"),
                             kw.get("add_zero_attn", False),
                             kpm, am, opts.get("average_attn_weights", True))
    np.testing.assert_allclose(o1, tr(ref_out), rtol=1e-10, atol=1e-12)
    if w1 is not None:
        np.testing.assert_allclose(w1, ref_w, rtol=1e-10, atol=1e-12)


GRAD_CASES = ["self-causal", "cross-bool2d-kpm", "kdim-vdim-noweights", "bias_kv-zero_attn"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [c for c in MHA_CASES if c[0] in GRAD_CASES], ids=GRAD_CASES)
def test_mha_gradcheck(case, device, one_thread):
    """float64 gradcheck through the module, w.r.t. its inputs (the parameters' gradients are
    gradchecked through F.multi_head_attention_forward's registry rows and compared with PyTorch's
    in float64 for every case above)."""
    if device == "cuda" and case[0] not in ("self-causal", "bias_kv-zero_attn"):
        pytest.skip("two cases on the (slow) emulated device")
    _, ctor, fwd, self_attn, n, unbatched = case
    rng = np.random.default_rng(3)
    _, q, k, v, am, kpm, opts = _mha_inputs(rng, ctor, fwd, self_attn, n, unbatched)
    h, kw = _ctor(ctor)
    nnfast.manual_seed(0)
    m = nn.MultiheadAttention(E, h, dtype=np.float64, **kw).to(device)
    if m.in_proj_bias is not None:
        m.in_proj_bias.detach()._data[...] = nnfast.tensor(rng.standard_normal(3 * E)).to(device)._data
    amt, kpmt = _t(am, device), _t(kpm, device)

    def fn(*xs):
        qq = xs[0]
        kk, vv = (qq, qq) if self_attn else xs[1:3]
        out, w = m(qq, kk, vv, key_padding_mask=kpmt, attn_mask=amt, **opts)
        return out if w is None else (out, w)
    inputs = (_t(q, device, True),) if self_attn else tuple(_t(a, device, True) for a in (q, k, v))
    assert gradcheck(fn, inputs, atol=1e-6, rtol=1e-4)


@needs_torch
def test_mha_state_dict_into_torch_and_init():
    """nnfast's parameters load into torch's module (same outputs), with torch's names, shapes
    and initialisation (xavier_uniform_ projections, zero biases, xavier_normal_ bias_k/v)."""
    nnfast.manual_seed(1)
    ours = nn.MultiheadAttention(48, 4, add_bias_kv=True)
    theirs = torch.nn.MultiheadAttention(48, 4, add_bias_kv=True)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert type(ours.out_proj).__name__ == "NonDynamicallyQuantizableLinear" and isinstance(ours.out_proj, nn.Linear)
    w = _np(ours.in_proj_weight)
    bound = np.sqrt(6.0 / (48 + 144))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not _np(ours.in_proj_bias).any() and not _np(ours.out_proj.bias).any()
    assert 0.7 < _np(ours.bias_k).std() / np.sqrt(2.0 / (48 + 48)) < 1.3  # xavier_normal_ of (1, 1, 48)
    _copy_into_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((9, 2, 48)).astype(np.float32)
    o1 = ours(_t(x), _t(x), _t(x))[0]
    o2 = theirs(_tt(x), _tt(x), _tt(x))[0]
    np.testing.assert_allclose(_np(o1), o2.detach().numpy(), rtol=1e-5, atol=1e-5)
    sep = nn.MultiheadAttention(6, 2, kdim=3, vdim=4, bias=False)
    assert [k for k, _ in sep.named_parameters()] == ["q_proj_weight", "k_proj_weight", "v_proj_weight",
                                                     "out_proj.weight"]
    assert sep.in_proj_weight is None and sep.in_proj_bias is None and sep.bias_k is None


def test_mha_self_attention_is_one_gemm(monkeypatch):
    """Self-attention projects q, k and v with ONE GEMM of width 3E (the packed in-projection)."""
    import nnfast.nn.functional._transformer as mod
    calls = []
    real = mod.linear

    def spy(x, w, b=None, activation=None):
        calls.append(tuple(w.shape))
        return real(x, w, b, activation)
    monkeypatch.setattr(mod, "linear", spy)
    m = nn.MultiheadAttention(6, 2, batch_first=True)
    x = nnfast.randn(2, 5, 6)
    m(x, x, x, need_weights=False)
    assert calls == [(18, 6), (6, 6)]
    calls.clear()
    mem = nnfast.randn(2, 7, 6)
    m(x, mem, mem)
    assert calls == [(12, 6), (6, 6), (6, 6)]  # k and v share one GEMM, q has its own; out_proj


def test_mha_dropout_train_vs_eval():
    nnfast.manual_seed(0)
    m = nn.MultiheadAttention(6, 2, dropout=0.5)
    x = nnfast.randn(5, 2, 6)
    m.eval()
    a, b = m(x, x, x)[0], m(x, x, x)[0]
    assert np.array_equal(_np(a), _np(b))
    m.train()
    nnfast.manual_seed(5)
    c = m(x, x, x, need_weights=False)[0]
    nnfast.manual_seed(5)
    d = m(x, x, x, need_weights=False)[0]
    assert np.array_equal(_np(c), _np(d)) and not np.allclose(_np(c), _np(a))


def test_mha_errors():
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected embed_dim \(6\) divisible by num_heads"):
        nn.MultiheadAttention(6, 4)
    m = nn.MultiheadAttention(6, 2)
    x = nnfast.randn(5, 2, 6)
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected key and value of shape"):
        m(x, nnfast.randn(5, 2, 4), nnfast.randn(5, 2, 4))
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected a 2-D attn_mask of shape \(5, 5\)"):
        m(x, x, x, attn_mask=nnfast.zeros(4, 5))
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected a 2-D key_padding_mask"):
        m(x, x, x, key_padding_mask=nnfast.zeros(2, 5, 1, dtype=nnfast.bool))
    with pytest.raises(TypeError, match=r"^\[MultiheadAttention\] expected key_padding_mask of dtype bool"):
        m(x, x, x, key_padding_mask=nnfast.zeros(2, 5, dtype=nnfast.int64))
    with pytest.raises(RuntimeError, match=r"^\[MultiheadAttention\] expected attn_mask with the is_causal hint"):
        m(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected an unbatched 2-D or batched 3-D query"):
        m(nnfast.randn(6), nnfast.randn(6), nnfast.randn(6))
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected a 3-D attn_mask of shape \(2, 5, 5\)"):
        m(x[:, 0], x[:, 0], x[:, 0], attn_mask=nnfast.zeros(4, 5, 5))
    sep = nn.MultiheadAttention(6, 2, kdim=3, vdim=4)
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected key feature size 3"):
        sep(x, x, nnfast.randn(5, 2, 4))


# ============================================================================ Transformer layers
def _layer_pair(kind, act="relu", norm_first=False, batch_first=False, bias=True):
    args = dict(d_model=6, nhead=3, dim_feedforward=10, dropout=0.0, activation=act, batch_first=batch_first,
                norm_first=norm_first, bias=bias)
    ours = getattr(nn, kind)(dtype=np.float64, **args)
    targs = dict(args, activation={"relu": torch.nn.functional.relu, "gelu": torch.nn.functional.gelu}[act])
    theirs = getattr(torch.nn, kind)(dtype=torch.float64, **targs)
    return ours, theirs


def _compare(ours, theirs, n_inputs, call_kw_np, rng, shapes, tol=1e-10):
    """Load torch's weights into nnfast, run both in eval mode on the same inputs, compare outputs
    and all gradients; then load nnfast's (perturbed) weights into torch and compare again."""
    ours.eval()
    theirs.eval()
    for direction in ("from_torch", "into_torch"):
        if direction == "from_torch":
            _copy_from_torch(theirs, ours)
        else:
            for p in ours.parameters():
                p.detach()._data[...] += 0.1 * rng.standard_normal(p.shape)
            _copy_into_torch(ours, theirs)
        xs = [rng.standard_normal(s) for s in shapes[:n_inputs]]
        on = ours(*[_t(a, grad=True) for a in xs],
                  **{k: (_t(v) if isinstance(v, np.ndarray) else v) for k, v in call_kw_np.items()})
        tx = [_tt(a, True) for a in xs]
        ot = theirs(*tx, **{k: (_tt(v) if isinstance(v, np.ndarray) else v) for k, v in call_kw_np.items()})
        np.testing.assert_allclose(_np(on), ot.detach().numpy(), rtol=tol, atol=tol)
        g = np.cos(np.arange(on.numel())).reshape(tuple(on.shape))
        on.backward(nnfast.tensor(g))
        ot.backward(torch.tensor(g))
        tp = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(_np(p.grad), tp[name].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
            tp[name].grad = None
        ours.zero_grad()


LAYER_CASES = [  # norm_first, activation, batch_first, masks
    (False, "relu", False, "causal"),
    (True, "gelu", True, "kpm_bool"),
    (False, "gelu", True, "bool2d kpm_float"),
    (True, "relu", False, "float3d"),
]


@needs_torch
@pytest.mark.parametrize("norm_first,act,batch_first,masks", LAYER_CASES)
def test_encoder_layer_and_encoder_match_torch(norm_first, act, batch_first, masks):
    rng = np.random.default_rng(11)
    n = 2
    am, kpm = _masks(rng, masks, n, 3, L, L)
    shape = (n, L, 6) if batch_first else (L, n, 6)
    kw = {"src_mask": am, "src_key_padding_mask": kpm}
    if masks == "causal":
        kw["is_causal"] = True
    ours, theirs = _layer_pair("TransformerEncoderLayer", act, norm_first, batch_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _compare(ours, theirs, 1, kw, rng, [shape])
    enc_o = nn.TransformerEncoder(ours, 2, norm=nn.LayerNorm(6, dtype=np.float64))
    enc_t = torch.nn.TransformerEncoder(theirs, 2, norm=torch.nn.LayerNorm(6, dtype=torch.float64),
                                        enable_nested_tensor=False)
    assert list(enc_o.state_dict()) == list(enc_t.state_dict())
    assert "layers.1.self_attn.in_proj_weight" in enc_o.state_dict()
    ekw = {"mask": am, "src_key_padding_mask": kpm}
    _compare(enc_o, enc_t, 1, ekw, rng, [shape])


@needs_torch
@pytest.mark.parametrize("norm_first,act,batch_first,masks", LAYER_CASES[:3])
def test_decoder_layer_and_decoder_match_torch(norm_first, act, batch_first, masks):
    rng = np.random.default_rng(12)
    n = 2
    am, kpm = _masks(rng, masks, n, 3, L, L)
    mem_mask, mem_kpm = _masks(rng, "float2d kpm_bool", n, 3, L, S)
    shapes = [(n, L, 6), (n, S, 6)] if batch_first else [(L, n, 6), (S, n, 6)]
    kw = {"tgt_mask": am, "tgt_key_padding_mask": kpm, "memory_mask": mem_mask,
          "memory_key_padding_mask": mem_kpm}
    ours, theirs = _layer_pair("TransformerDecoderLayer", act, norm_first, batch_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _compare(ours, theirs, 2, dict(kw, tgt_is_causal=masks == "causal"), rng, shapes)
    dec_o = nn.TransformerDecoder(ours, 2, norm=nn.LayerNorm(6, dtype=np.float64))
    dec_t = torch.nn.TransformerDecoder(theirs, 2, norm=torch.nn.LayerNorm(6, dtype=torch.float64))
    assert list(dec_o.state_dict()) == list(dec_t.state_dict())
    _compare(dec_o, dec_t, 2, kw, rng, shapes)


@needs_torch
@pytest.mark.parametrize("batch_first,unbatched", [(False, False), (True, False), (False, True)])
def test_transformer_matches_torch(batch_first, unbatched):
    rng = np.random.default_rng(13)
    args = dict(d_model=6, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=8, dropout=0.0,
                batch_first=batch_first)
    ours = nn.Transformer(dtype=np.float64, **args)
    theirs = torch.nn.Transformer(dtype=torch.float64, **args)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    n = 2
    shapes = ([(S, 6), (L, 6)] if unbatched else
              [(n, S, 6), (n, L, 6)] if batch_first else [(S, n, 6), (L, n, 6)])
    kw = {"tgt_mask": nn.Transformer.generate_square_subsequent_mask(L, dtype=np.float64).numpy()}
    if not unbatched:
        kw["src_key_padding_mask"] = _masks(rng, "kpm_bool", n, 2, S, S)[1]
        kw["memory_key_padding_mask"] = kw["src_key_padding_mask"]
    _compare(ours, theirs, 2, kw, rng, shapes)


def test_generate_square_subsequent_mask():
    m = nn.Transformer.generate_square_subsequent_mask(4)
    assert m.dtype == nnfast.float32 and m.shape == (4, 4)
    want = np.triu(np.full((4, 4), -np.inf), 1)
    assert np.array_equal(_np(m), want)
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=nnfast.float64).dtype == nnfast.float64
    if torch is not None:
        assert np.array_equal(_np(m), torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())


@pytest.mark.parametrize("norm_first,act", [(False, "relu"), (True, "gelu")])
def test_encoder_layer_gradcheck(norm_first, act, one_thread):
    """float64 gradcheck of an encoder layer: the input and a parameter of each kind (all of them
    are compared with PyTorch's gradients above)."""
    rng = np.random.default_rng(5)
    nnfast.manual_seed(2)
    layer = nn.TransformerEncoderLayer(6, 3, dim_feedforward=7, dropout=0.0, activation=act, norm_first=norm_first,
                                       dtype=np.float64)
    for p in layer.parameters():  # away from relu's kink and LayerNorm's trivial affine
        p.detach()._data[...] += 0.2 * rng.standard_normal(p.shape)
    x = _t(rng.standard_normal((L, 1, 6)), grad=True)
    mask = _t(np.triu(np.full((L, L), -np.inf), 1))
    picked = (layer.linear1.weight, layer.norm1.bias, layer.norm2.weight, layer.self_attn.in_proj_bias,
              layer.linear2.bias)
    for p in layer.parameters():
        p.requires_grad_(any(p is q for q in picked))

    def fn(xx, *ps):
        return layer(xx, src_mask=mask, is_causal=True)
    assert gradcheck(fn, (x,) + picked, atol=1e-6, rtol=1e-4)


def test_feedforward_fuses_relu_and_gelu(monkeypatch):
    """relu / gelu run fused in linear1's GEMM epilogue; any other callable is applied after it."""
    from nnfast.nn import transformer as tmod
    seen = []
    real = tmod.F.linear

    def spy(x, w, b=None, activation=None):
        seen.append(activation)
        return real(x, w, b, activation)
    monkeypatch.setattr(tmod.F, "linear", spy)
    x = nnfast.randn(3, 2, 6)
    for act, code in (("relu", "relu"), ("gelu", "gelu"), (F.gelu, "gelu"), (nn.ReLU(), "relu")):
        seen.clear()
        nn.TransformerEncoderLayer(6, 2, 8, 0.0, act)(x)
        assert code in seen, (act, seen)
    layer = nn.TransformerEncoderLayer(6, 2, 8, 0.0, F.silu)
    out = layer(x)
    y = layer.norm1(x + layer.self_attn(x, x, x, need_weights=False)[0])
    ref = layer.norm2(y + layer.linear2(F.silu(layer.linear1(y))))
    np.testing.assert_allclose(_np(out), _np(ref), rtol=1e-6, atol=1e-6)


def test_encoder_clones_are_independent():
    layer = nn.TransformerEncoderLayer(6, 2, 8)
    enc = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    ps = [enc.layers[i].linear1.weight for i in range(3)]
    assert ps[0] is not ps[1] and ps[1] is not ps[2] and ps[0] is not layer.linear1.weight
    assert np.array_equal(_np(ps[0]), _np(ps[2]))  # deep copies start equal, as PyTorch's
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters()))


def test_transformer_layer_errors():
    with pytest.raises(ValueError, match=r"^\[TransformerEncoderLayer\] expected activation 'relu' or 'gelu'"):
        nn.TransformerEncoderLayer(6, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"^\[MultiheadAttention\] expected embed_dim \(6\) divisible"):
        nn.TransformerDecoderLayer(6, 4)
    t = nn.Transformer(6, 2, 1, 1, 8)
    with pytest.raises(ValueError, match=r"^\[Transformer\] expected src and tgt with the same batch size"):
        t(nnfast.randn(4, 2, 6), nnfast.randn(3, 3, 6))
    with pytest.raises(ValueError, match=r"^\[Transformer\] expected src and tgt with feature size d_model=6"):
        t(nnfast.randn(4, 2, 5), nnfast.randn(3, 2, 5))


@pytest.mark.skipif("cuda" not in DEVICES, reason="no cuda device in this build")
def test_transformer_on_cuda_matches_cpu():
    """A small encoder-decoder on the cuda device (GPU or emulated) equals the cpu run."""
    rng = np.random.default_rng(21)
    nnfast.manual_seed(0)
    cpu = nn.Transformer(6, 2, 1, 1, 8, dropout=0.0, dtype=np.float64, batch_first=True)
    dev = copy.deepcopy(cpu).to("cuda")
    src, tgt = rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 3, 6))
    mask = nn.Transformer.generate_square_subsequent_mask(3, dtype=np.float64)
    outs = []
    for m, d in ((cpu, "cpu"), (dev, "cuda")):
        o = m(_t(src, d, True), _t(tgt, d, True), tgt_mask=mask.to(d), tgt_is_causal=True)
        o.sum().backward()
        outs.append((_np(o), {k: _np(p.grad) for k, p in m.named_parameters()}))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-10, atol=1e-12)
    for k in outs[0][1]:
        np.testing.assert_allclose(outs[1][1][k], outs[0][1][k], rtol=1e-9, atol=1e-11, err_msg=k)


@needs_torch
def test_signatures_match_torch():
    """Same parameter names, order and defaults as PyTorch (activation defaults to the string
    "relu", which PyTorch also accepts, instead of the function F.relu)."""
    import inspect

    def sig(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]
    assert sig(F.multi_head_attention_forward) == sig(torch.nn.functional.multi_head_attention_forward)
    for name in ("MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer",
                 "TransformerDecoder", "Transformer"):
        ours, theirs = getattr(nn, name), getattr(torch.nn, name)
        assert sig(ours.forward) == sig(theirs.forward), name
        a = [(k, "relu" if k == "activation" else v) for k, v in sig(ours.__init__)]
        b = [(k, "relu" if k == "activation" else v) for k, v in sig(theirs.__init__)]
        assert a == b, name


@needs_torch
@pytest.mark.parametrize("need_weights", [True, False])
def test_fully_padded_sequence_matches_torch(need_weights):
    """A batch entry whose keys are all padded: torch gives NaN on the weights path and zeros
    (before out_proj's bias) on the sdpa path."""
    theirs = torch.nn.MultiheadAttention(4, 2, dtype=torch.float64)
    ours = nn.MultiheadAttention(4, 2, dtype=np.float64)
    _copy_from_torch(theirs, ours)
    x = np.random.default_rng(1).standard_normal((3, 2, 4))
    kpm = np.zeros((2, 3), bool)
    kpm[1] = True
    a = theirs(_tt(x), _tt(x), _tt(x), key_padding_mask=_tt(kpm), need_weights=need_weights)[0].detach().numpy()
    b = _np(ours(_t(x), _t(x), _t(x), key_padding_mask=_t(kpm), need_weights=need_weights)[0])
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)  # NaN where torch has NaN


@needs_torch
@pytest.mark.parametrize("kind", ["TransformerEncoderLayer", "TransformerDecoderLayer"])
def test_layers_without_bias_match_torch(kind):
    rng = np.random.default_rng(14)
    ours, theirs = _layer_pair(kind, "gelu", norm_first=True, batch_first=True, bias=False)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert not any(k.endswith("bias") for k in ours.state_dict())
    n_in = 1 if kind == "TransformerEncoderLayer" else 2
    _compare(ours, theirs, n_in, {}, rng, [(2, L, 6), (2, S, 6)])
