"""RNNCell / LSTMCell / GRUCell and Embedding: float64 gradcheck, PyTorch's layout and results
(state dicts load into torch's module of the same name and give the same outputs and gradients),
unbatched inputs, padding_idx / max_norm, and clear errors."""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast.autograd import gradcheck

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

from conftest import DEVICES

CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}), ("GRUCell", {}),
         ("LSTMCell", {"bias": False})]


def _state(name, n, h, dtype, device, rng):
    mk = lambda: nnfast.tensor(rng.standard_normal((n, h)), dtype=dtype).to(device)  # noqa: E731
    return (mk(), mk()) if name == "LSTMCell" else mk()


def _outs(r):
    return r if isinstance(r, tuple) else (r,)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,kw", CELLS, ids=lambda v: str(v))
def test_cell_gradcheck(name, kw, device):
    rng = np.random.default_rng(0)
    cell = getattr(nn, name)(3, 4, **kw).double().to(device)
    x = nnfast.tensor(rng.standard_normal((2, 3)), requires_grad=True).to(device)
    x = x.detach().requires_grad_()
    hx = _state(name, 2, 4, nnfast.float64, device, rng)
    leaves = [x] + list(_outs(hx)) + list(cell.parameters())
    for t in leaves:
        t.requires_grad_(True)

    def fn(x, *rest):
        return cell(x, tuple(rest[:2]) if name == "LSTMCell" else rest[0])

    assert gradcheck(fn, tuple([x] + list(_outs(hx))))
    assert gradcheck(lambda *ps: cell(x, hx), tuple(cell.parameters()))


@pytest.mark.parametrize("name,kw", CELLS, ids=lambda v: str(v))
def test_cell_unbatched_and_zero_state(name, kw):
    cell = getattr(nn, name)(3, 5, **kw)
    x = nnfast.randn(3)
    out = _outs(cell(x))
    assert all(o.shape == (5,) for o in out)
    batched = _outs(cell(x.unsqueeze(0)))
    for a, b in zip(out, batched):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy()[0], rtol=1e-6)


def test_cell_errors():
    cell = nn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"^\[LSTMCell\] expected input with 3 features"):
        cell(nnfast.randn(2, 5))
    with pytest.raises(ValueError, match=r"^\[LSTMCell\] expected input to be 1-D or 2-D"):
        cell(nnfast.randn(2, 2, 3))
    with pytest.raises(ValueError, match=r"^\[LSTMCell\] expected hidden state of shape"):
        cell(nnfast.randn(2, 3), (nnfast.randn(3, 4), nnfast.randn(3, 4)))
    with pytest.raises(ValueError, match=r"^\[RNNCell\] expected nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="gelu")


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("name,kw", CELLS, ids=lambda v: str(v))
def test_cell_matches_torch(name, kw):
    rng = np.random.default_rng(1)
    ours = getattr(nn, name)(6, 7, **kw)
    theirs = getattr(torch.nn, name)(6, 7, **kw)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    x = rng.standard_normal((5, 6)).astype(np.float32)
    h = [rng.standard_normal((5, 7)).astype(np.float32) for _ in range(2)]
    hx_n = tuple(nnfast.tensor(a) for a in h) if name == "LSTMCell" else nnfast.tensor(h[0])
    hx_t = tuple(torch.tensor(a) for a in h) if name == "LSTMCell" else torch.tensor(h[0])
    on, ot = _outs(ours(nnfast.tensor(x), hx_n)), _outs(theirs(torch.tensor(x), hx_t))
    for a, b in zip(on, ot):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    sum(o.sum() for o in on).backward()
    sum(o.sum() for o in ot).backward()
    for (k, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("device", DEVICES)
def test_embedding_forward_backward(device):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((7, 3))
    idx = np.array([[1, 6, 0], [6, 6, 2]])
    weight = nnfast.tensor(w, requires_grad=True).to(device).detach().requires_grad_()
    out = F.embedding(nnfast.tensor(idx).to(device), weight)
    np.testing.assert_array_equal(out.detach().cpu().numpy(), w[idx])
    assert gradcheck(lambda w_: F.embedding(nnfast.tensor(idx).to(device), w_), (weight,))
    out.sum().backward()
    counts = np.bincount(idx.ravel(), minlength=7)[:, None] * np.ones((1, 3))
    np.testing.assert_array_equal(weight.grad.cpu().numpy(), counts)


def test_embedding_padding_and_max_norm():
    emb = nn.Embedding(5, 3, padding_idx=-1)
    assert emb.padding_idx == 4 and not emb.weight.detach().numpy()[4].any()
    emb(nnfast.tensor([4, 1, 4])).sum().backward()
    assert not emb.weight.grad.numpy()[4].any() and emb.weight.grad.numpy()[1].tolist() == [1.0] * 3
    emb = nn.Embedding(4, 3, max_norm=1.0)
    with nnfast.no_grad():
        emb.weight.mul_(10)
    v0 = emb.weight._version
    emb(nnfast.tensor([0, 2]))
    norms = np.linalg.norm(emb.weight.detach().numpy(), axis=1)
    assert norms[0] <= 1.0 + 1e-5 and norms[2] <= 1.0 + 1e-5 and norms[1] > 1.0 and emb.weight._version > v0


def test_embedding_errors_and_from_pretrained():
    emb = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"^\[embedding\] expected indices in \[0, 5\)"):
        emb(nnfast.tensor([0, 5]))
    with pytest.raises(IndexError, match=r"^\[embedding\] expected indices"):
        emb(nnfast.tensor([-1]))
    with pytest.raises(TypeError, match=r"^\[embedding\] expected an integer index tensor"):
        emb(nnfast.tensor([0.0]))
    pre = nn.Embedding.from_pretrained(nnfast.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert not pre.weight.requires_grad and pre(nnfast.tensor([1])).tolist() == [[3.0, 4.0]]


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
def test_embedding_state_dict_loads_into_torch():
    ours = nn.Embedding(9, 4, padding_idx=2)
    theirs = torch.nn.Embedding(9, 4, padding_idx=2)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    idx = np.array([[0, 2, 8], [3, 3, 1]])
    np.testing.assert_array_equal(ours(nnfast.tensor(idx)).detach().numpy(),
                                  theirs(torch.tensor(idx)).detach().numpy())
