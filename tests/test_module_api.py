"""nn.Module API against PyTorch's: hooks, traversal names, buffers, casting, repr, state dicts,
containers, and the small layers (Flatten, Unflatten, Bilinear, CosineSimilarity, PairwiseDistance)
and the loss modules of nn/misc.py and nn/loss.py."""
from collections import OrderedDict

import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck

from conftest import DEVICES

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


def _t(a, requires_grad=False):
    return nnfast.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _tree(lib):
    """The same nested model in nnfast or torch (shared submodule, tied parameters, buffers)."""
    shared = lib.nn.Linear(3, 3)
    m = lib.nn.Sequential(OrderedDict([
        ("enc", lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.ReLU(), shared)),
        ("blocks", lib.nn.ModuleList([lib.nn.Linear(3, 3) for _ in range(2)] + [shared])),
        ("heads", lib.nn.ModuleDict({"a": lib.nn.Linear(3, 1), "b": lib.nn.Identity()})),
        ("flat", lib.nn.Flatten()),
    ]))
    m.enc.register_buffer("stat", lib.zeros(3))
    m.enc.register_buffer("scratch", lib.zeros(2), persistent=False)
    m.heads.b.tied = m.heads.a.weight
    return m


# ------------------------------------------------------------------ traversal
@needs_torch
@pytest.mark.parametrize("remove_duplicate", [True, False])
def test_named_members_match_torch(remove_duplicate):
    n, t = _tree(nnfast), _tree(torch)
    for meth in ("named_modules", "named_parameters", "named_buffers"):
        got = [k for k, _ in getattr(n, meth)(prefix="root", remove_duplicate=remove_duplicate)]
        want = [k for k, _ in getattr(t, meth)(prefix="root", remove_duplicate=remove_duplicate)]
        assert got == want, meth
    assert [k for k, _ in n.named_children()] == [k for k, _ in t.named_children()]
    assert [k for k, _ in n.named_parameters(recurse=False)] == []
    assert list(n.state_dict()) == list(t.state_dict())
    assert "enc.scratch" not in n.state_dict() and "enc.scratch" in dict(n.named_buffers())


def test_get_submodule_parameter_buffer():
    m = _tree(nnfast)
    assert m.get_submodule("enc.2") is m.enc[2] is m.blocks[2]
    assert m.get_submodule("") is m
    assert m.get_parameter("heads.a.bias") is m.heads.a.bias
    assert m.get_buffer("enc.stat") is m.enc.stat
    with pytest.raises(AttributeError, match=r"\[get_submodule\] expected"):
        m.get_submodule("enc.9")
    with pytest.raises(AttributeError, match=r"\[get_parameter\] expected"):
        m.get_parameter("enc.stat")
    with pytest.raises(AttributeError, match=r"\[get_buffer\] expected"):
        m.get_buffer("enc.0.weight")


def test_apply_order_children_first():
    m = _tree(nnfast)
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen[-1] == "Sequential" and seen[:3] == ["Linear", "ReLU", "Linear"]
    if torch is not None:
        tseen = []
        _tree(torch).apply(lambda mod: tseen.append(type(mod).__name__))
        assert seen == tseen


# ------------------------------------------------------------------ hooks
def test_forward_hooks_run_and_remove():
    lin = nn.Linear(2, 2)
    calls = []

    def pre(mod, args):
        calls.append("pre")
        return (args[0] * 0,)

    def post(mod, args, out):
        calls.append("post")
        return out + 1

    h1, h2 = lin.register_forward_pre_hook(pre), lin.register_forward_hook(post)
    out = lin(nnfast.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None] + 1, rtol=1e-6)
    assert calls == ["pre", "post"]
    h1.remove(), h2.remove()
    h2.remove()  # a second remove is harmless
    calls.clear()
    lin(nnfast.ones(1, 2))
    assert calls == []


def test_same_hook_twice_prepend_and_with_block():
    lin = nn.Linear(2, 2)
    order = []
    hook = lambda m, a, o: order.append("a")  # noqa: E731
    h1 = lin.register_forward_hook(hook)
    lin.register_forward_hook(hook)
    lin.register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)
    lin(nnfast.ones(1, 2))
    assert order == ["first", "a", "a"]
    h1.remove()
    order.clear()
    with lin.register_forward_pre_hook(lambda m, a: order.append("pre")):
        lin(nnfast.ones(1, 2))
    lin(nnfast.ones(1, 2))
    assert order == ["pre", "first", "a", "first", "a"]
    assert isinstance(h1.id, int)


def test_pre_hook_non_tuple_result_becomes_args():
    m = nn.Identity()
    m.register_forward_pre_hook(lambda mod, args: args[0] * 2)
    np.testing.assert_allclose(m(_t([1.0, 2.0])).numpy(), [2.0, 4.0])


# ------------------------------------------------------------------ attributes and registration
def test_setattr_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        m.weight = nnfast.zeros(2, 2)  # a plain tensor where a Parameter lives
    m.bias = None
    assert m.bias is None and "bias" not in m.state_dict()
    m.bias = nn.Parameter(nnfast.zeros(2))
    assert "bias" in dict(m.named_parameters())
    m.weight = nn.Identity()  # a module replaces the parameter
    assert "weight" not in dict(m.named_parameters()) and "weight" in m._modules
    del m.weight
    assert not hasattr(m, "weight")
    m.register_buffer("buf", nnfast.zeros(1), persistent=False)
    m.buf = nnfast.ones(1)  # stays a (non-persistent) buffer
    assert "buf" in dict(m.named_buffers()) and "buf" not in m.state_dict()
    del m.buf
    m.register_buffer("buf", nnfast.zeros(1))
    assert "buf" in m.state_dict()


def test_register_name_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(KeyError, match=r"\[register_buffer\] expected"):
        m.register_buffer("a.b", nnfast.zeros(1))
    with pytest.raises(KeyError, match=r"\[register_parameter\] expected"):
        m.register_parameter("in_features", nn.Parameter(nnfast.zeros(1)))
    with pytest.raises(KeyError, match=r"\[add_module\] expected"):
        m.add_module("forward", nn.ReLU())
    with pytest.raises(TypeError, match=r"\[register_buffer\] expected"):
        m.register_buffer("x", np.zeros(1))

    class Early(nn.Module):
        def __init__(self):
            self.register_buffer("x", nnfast.zeros(1))

    with pytest.raises(AttributeError, match=r"\[register_buffer\] expected Module.__init__"):
        Early()


def test_train_eval_calls_children_train():
    class Counting(nn.Module):
        calls = 0

        def train(self, mode=True):
            Counting.calls += 1
            return super().train(mode)

    m = nn.Sequential(nn.Linear(1, 1), nn.Sequential(Counting()))
    m.eval()
    assert not any(x.training for x in m.modules()) and Counting.calls == 1
    m.train()
    assert all(x.training for x in m.modules()) and Counting.calls == 2


def test_requires_grad_and_zero_grad():
    m = nn.Linear(2, 1)
    m(nnfast.ones(3, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert float(m.weight.grad.abs().sum().item()) == 0.0
    m.zero_grad()
    assert m.weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


# ------------------------------------------------------------------ casting
def test_casting_keeps_parameter_identity():
    m = _tree(nnfast)
    params = list(m.parameters())
    opt = nnfast.optim.SGD(m.parameters(), lr=0.1)
    m.heads.a(m.blocks[1](m.enc(nnfast.ones(2, 2)))).sum().backward()
    for p in params:
        if p.grad is None:
            p.grad = p.detach() * 0
    assert m.double() is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert m.enc.stat.dtype == np.float64
    before = m.heads.a.bias.detach().numpy().copy()
    opt.step()  # the optimizer still holds the very same tensors
    assert not np.array_equal(before, m.heads.a.bias.detach().numpy())
    m.float()
    assert all(p.dtype == np.float32 for p in params)
    m.to(_t([1.0]))
    assert all(p.dtype == np.float64 for p in params)
    m.to(dtype=nnfast.float32)
    assert m.half().enc[0].weight.dtype == np.float16
    m.register_buffer("count", nnfast.tensor([3]))
    m.float()
    assert m.count.dtype == np.int64  # float casts leave integer buffers alone
    m.type(nnfast.float64)
    assert m.count.dtype == np.float64 and m.enc[0].weight.dtype == np.float64
    with pytest.raises(TypeError, match=r"\[Module.to\] expected a floating dtype"):
        m.to(nnfast.int64)


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])
def test_to_device_keeps_identity(device):
    m = nn.Bilinear(2, 3, 4)
    w = m.weight
    m.to(device)
    assert m.weight is w and str(w.device).startswith(device)
    out = m(nnfast.ones(5, 2).to(device), nnfast.ones(5, 3).to(device))
    assert str(out.device).startswith(device)
    m.cpu()
    assert str(w.device) == "cpu"


# ------------------------------------------------------------------ repr
@needs_torch
def test_repr_matches_torch():
    def build(lib):
        return lib.nn.Sequential(OrderedDict([
            ("lin", lib.nn.Linear(2, 3)),
            ("act", lib.nn.ReLU()),
            ("stack", lib.nn.ModuleList([lib.nn.Linear(3, 3, bias=False) for _ in range(3)] + [lib.nn.Identity()])),
            ("d", lib.nn.ModuleDict({"x": lib.nn.Flatten(0, 1), "y": lib.nn.Unflatten(1, (3, 1))})),
            ("bi", lib.nn.Bilinear(2, 3, 4, bias=False)),
            ("cos", lib.nn.CosineSimilarity()),
            ("pd", lib.nn.PairwiseDistance()),
            ("empty", lib.nn.Sequential()),
        ]))

    assert repr(build(nnfast)) == repr(build(torch))
    lst = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1)])
    assert repr(lst) == repr(torch.nn.ModuleList([torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), torch.nn.ReLU(),
                                                   torch.nn.Linear(1, 1)]))


# ------------------------------------------------------------------ state dicts
def test_load_state_dict_strict_errors():
    m = _tree(nnfast)
    sd = m.state_dict()
    assert list(m.load_state_dict(sd)) == [[], []]
    partial = {k: v for k, v in sd.items() if k != "enc.stat"}
    partial["extra"] = nnfast.zeros(1)
    with pytest.raises(RuntimeError, match=r"(?s)\[load_state_dict\] expected.*enc\.stat.*extra"):
        m.load_state_dict(partial)
    res = m.load_state_dict(partial, strict=False)
    assert res.missing_keys == ["enc.stat"] and res.unexpected_keys == ["extra"]
    bad = dict(sd)
    bad["heads.a.bias"] = nnfast.zeros(2)
    with pytest.raises(RuntimeError, match="size mismatch for heads.a.bias"):
        m.load_state_dict(bad, strict=False)


def test_state_dict_prefix_and_keep_vars():
    m = nn.Linear(2, 2)
    sd = m.state_dict(prefix="p.", keep_vars=True)
    assert list(sd) == ["p.weight", "p.bias"] and sd["p.weight"] is m.weight
    assert m.state_dict()["weight"] is not m.weight


# ------------------------------------------------------------------ containers
def test_sequential_editing_like_torch():
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity()
    s = nn.Sequential(a, b)
    s.append(c).extend([d])
    assert list(s) == [a, b, c, d] and len(s) == 4
    s.insert(1, nn.GELU())
    assert list(s._modules) == ["0", "1", "2", "3", "4"] and s[2] is b and s[-1] is d
    del s[1]
    assert list(s) == [a, b, c, d] and list(s._modules) == ["0", "1", "2", "3"]
    sub = s[1:3]
    assert isinstance(sub, nn.Sequential) and list(sub._modules) == ["1", "2"] and list(sub) == [b, c]
    assert s.pop(0) is a and len(s) == 3
    s[0] = nn.ReLU()
    assert isinstance(s[0], nn.ReLU)
    del s[0:2]
    assert list(s) == [d]
    assert list(s + nn.Sequential(a)) == [d, a]
    with pytest.raises(IndexError, match=r"\[Sequential\] expected"):
        s[5]
    named = nn.Sequential(OrderedDict([("first", nn.Linear(2, 2)), ("second", nn.ReLU())]))
    assert list(named.state_dict()) == ["first.weight", "first.bias"]
    assert list(named[:1]._modules) == ["first"]


def test_modulelist_and_moduledict_editing():
    lst = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    lst.insert(0, nn.Identity())
    del lst[1]
    assert [type(m).__name__ for m in lst] == ["Identity", "Tanh"] and list(lst._modules) == ["0", "1"]
    lst += [nn.ReLU()]
    assert len(lst) == 3 and isinstance(lst[1:], nn.ModuleList)
    d = nn.ModuleDict({"a": nn.ReLU()})
    d.update({"b": nn.Linear(1, 1)})
    assert list(d.keys()) == ["a", "b"] and "b.weight" in d.state_dict()
    assert isinstance(d.pop("a"), nn.ReLU) and list(d) == ["b"]
    d.clear()
    assert len(d) == 0


@needs_torch
def test_parameter_containers_match_torch_keys():
    def build(lib):
        m = lib.nn.Module()
        m.plist = lib.nn.ParameterList([lib.nn.Parameter(lib.zeros(2)), lib.nn.Parameter(lib.ones(3))])
        m.pdict = lib.nn.ParameterDict({"w": lib.nn.Parameter(lib.zeros(1))})
        m.plist.append(lib.nn.Parameter(lib.zeros(1)))
        m.pdict["v"] = lib.nn.Parameter(lib.ones(2))
        return m

    n, t = build(nnfast), build(torch)
    assert list(n.state_dict()) == list(t.state_dict())
    assert [k for k, _ in n.named_parameters()] == [k for k, _ in t.named_parameters()]


def test_parameter_containers_wrap_tensors():
    pl = nn.ParameterList([nnfast.zeros(2)])
    assert isinstance(pl[0], nn.Parameter) and pl[0].requires_grad
    pl[0] = nnfast.ones(3)
    assert pl[0].shape == (3,) and len(pl) == 1
    pd = nn.ParameterDict({"a": nnfast.zeros(1)})
    assert isinstance(pd["a"], nn.Parameter) and "a" in pd and pd.get("b") is None
    del pd["a"]
    assert len(pd) == 0


# ------------------------------------------------------------------ layers
@needs_torch
def test_bilinear_state_dict_loads_into_torch():
    m = nn.Bilinear(3, 4, 5, dtype=nnfast.float64)
    tm = torch.nn.Bilinear(3, 4, 5, dtype=torch.float64)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in m.state_dict().items()})
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 7, 3)), rng.standard_normal((2, 7, 4))
    a1, a2 = _t(x1, True), _t(x2, True)
    t1, t2 = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    out, tout = m(a1, a2), tm(t1, t2)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(a1.grad.numpy(), t1.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.bias.grad.numpy(), tm.bias.grad.numpy(), rtol=1e-10)


def test_bilinear_init_and_gradcheck():
    m = nn.Bilinear(4, 2, 3)
    assert m.weight.shape == (3, 4, 2) and m.weight.dtype == np.float32
    assert np.abs(m.weight.detach().numpy()).max() <= 0.5 and np.abs(m.bias.detach().numpy()).max() <= 0.5
    m.double()
    rng = np.random.default_rng(1)
    x1, x2 = _t(rng.standard_normal((3, 4)), True), _t(rng.standard_normal((3, 2)), True)
    assert gradcheck(lambda a, b, w, bias: F_bilinear(a, b, w, bias), (x1, x2, m.weight, m.bias))
    with pytest.raises(ValueError, match=r"\[Bilinear\] expected"):
        m(x1, x1)


def F_bilinear(a, b, w, bias):
    m = nn.Bilinear(w.shape[1], w.shape[2], w.shape[0])
    m.weight, m.bias = w, bias
    return m(a, b)


@needs_torch
def test_flatten_unflatten_match_torch():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    for args in [(), (0, 2), (2, -1)]:
        assert nn.Flatten(*args)(_t(x)).shape == tuple(torch.nn.Flatten(*args)(torch.tensor(x)).shape)
    for dim, size in [(1, (3, 1)), (-1, (5, 1)), (2, (2, -1))]:
        got = nn.Unflatten(dim, size)(_t(x))
        want = torch.nn.Unflatten(dim, size)(torch.tensor(x))
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(TypeError, match=r"\[Unflatten\] expected"):
        nn.Unflatten(1, 3)


@needs_torch
def test_distance_modules_match_torch():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    pairs = [(nn.CosineSimilarity(dim=0), torch.nn.CosineSimilarity(dim=0)),
             (nn.PairwiseDistance(p=1.5, keepdim=True), torch.nn.PairwiseDistance(p=1.5, keepdim=True))]
    for n, t in pairs:
        np.testing.assert_allclose(n(_t(a), _t(b)).numpy(), t(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-12)


def test_norm_gradient_is_finite_at_zero():
    x = _t(np.zeros((2, 3)), True)
    F.normalize(x).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    y = _t([[0.0, 0.0], [1.0, 2.0]], True)
    F.pairwise_distance(y, y, eps=0.0).sum().backward()
    assert np.isfinite(y.grad.numpy()).all()


@needs_torch
def test_loss_modules_match_torch():
    rng = np.random.default_rng(3)
    x, z = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    sign = np.where(rng.random(5) < 0.5, -1.0, 1.0)
    var = rng.uniform(0.5, 2.0, (5, 4))
    cases = [
        ("MarginRankingLoss", {"margin": 0.2}, (x[:, 0], z[:, 0], sign)),
        ("HingeEmbeddingLoss", {"margin": 0.5, "reduction": "sum"}, (x, np.sign(z))),
        ("SoftMarginLoss", {}, (x, np.sign(z))),
        ("MultiLabelSoftMarginLoss", {"reduction": "none"}, (x, (z > 0).astype(np.float64))),
        ("CosineEmbeddingLoss", {"margin": 0.1}, (x, z, sign)),
        ("GaussianNLLLoss", {"full": True}, (x, z, var)),
        ("PoissonNLLLoss", {"log_input": False, "full": True}, (np.abs(x) + 0.1, np.round(np.abs(z) * 3))),
        ("TripletMarginLoss", {"margin": 2.0, "swap": True}, (x, z, var)),
    ]
    for name, kw, args in cases:
        got = getattr(nn, name)(**kw)(*[_t(a) for a in args])
        want = getattr(torch.nn, name)(**kw)(*[torch.tensor(a) for a in args])
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
        assert repr(getattr(nn, name)(**kw)) == repr(getattr(torch.nn, name)(**kw)) or name in (
            "GaussianNLLLoss", "PoissonNLLLoss", "TripletMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
            "CosineEmbeddingLoss", "MultiLabelSoftMarginLoss"), name


@needs_torch
def test_one_dim_embedding_losses_match_torch():
    rng = np.random.default_rng(4)
    a, b, c = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    for red in ("mean", "none"):
        x1, x2 = _t(a, True), _t(b, True)
        t1, t2 = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        got = F.cosine_embedding_loss(x1, x2, _t(-1.0), margin=-0.5, reduction=red)
        want = torch.nn.functional.cosine_embedding_loss(t1, t2, torch.tensor(-1.0), margin=-0.5, reduction=red)
        assert got.shape == tuple(want.shape)
        got.backward()
        want.backward()
        np.testing.assert_allclose(x1.grad.numpy(), t1.grad.numpy(), rtol=1e-10)
        got = F.triplet_margin_loss(_t(a), _t(b), _t(c), margin=3.0, reduction=red)
        want = torch.nn.functional.triplet_margin_loss(torch.tensor(a), torch.tensor(b), torch.tensor(c), margin=3.0,
                                                       reduction=red)
        assert got.shape == tuple(want.shape)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


@needs_torch
def test_pad_int_and_high_rank_constant():
    x = np.arange(2 * 3 * 2 * 2 * 3, dtype=np.int64).reshape(2, 3, 2, 2, 3)
    pad = (1, 0, 0, 2, 1, 1, 0, 1, 2, 0)
    got = F.pad(nnfast.tensor(x), pad, value=-1)
    want = torch.nn.functional.pad(torch.tensor(x), pad, value=-1)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_one_hot_infers_classes_and_is_int64():
    out = F.one_hot(nnfast.tensor([[0, 2], [1, 2]]))
    assert out.dtype == np.int64 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy()[0], [[1, 0, 0], [0, 0, 1]])


@needs_torch
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_full_backward_hook_matches_torch():
    def run(lib, m, x_requires_grad):
        seen = []

        def hook(mod, gin, gout):
            seen.append((None if gin[0] is None else gin[0].detach().numpy().copy(), gout[0].detach().numpy().copy()))
            return None if gin[0] is None else (gin[0] * 2,)

        h = m.register_full_backward_hook(hook)
        x = lib.tensor(np.arange(6.0).reshape(2, 3), requires_grad=x_requires_grad)
        (m(x) * lib.tensor([[1.0, -2.0]])).sum().backward()
        h.remove()
        (m(x) * 1.0).sum().backward()
        return seen, (x.grad.numpy() if x_requires_grad else None)

    w = np.random.default_rng(5).standard_normal((2, 3))
    mods = []
    for lib in (nnfast, torch):
        m = lib.nn.Linear(3, 2).double()
        m.load_state_dict({"weight": lib.tensor(w), "bias": lib.zeros(2, dtype=lib.float64)})
        mods.append((lib, m))
    for rg in (True, False):
        (ns, ng), (ts, tg) = [run(lib, m, rg) for lib, m in mods]
        assert len(ns) == len(ts) == 1
        for a, b in zip(ns[0], ts[0]):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-12)
        if rg:
            np.testing.assert_allclose(ng, tg, rtol=1e-12)


def test_full_backward_hook_needs_one_tensor_input():
    m = nn.Bilinear(2, 2, 1)
    m.register_full_backward_hook(lambda *a: None)
    with pytest.raises(NotImplementedError, match=r"\[register_full_backward_hook\] expected"):
        m(nnfast.ones(1, 2), nnfast.ones(1, 2))
