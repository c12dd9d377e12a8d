"""nn.Embedding / nn.EmbeddingBag beyond the op registry (tests/opinfo_embedding.py): PyTorch's
outputs and gradients (padding_idx, scale_grad_by_freq, max_norm renorm of the weight, bag modes,
offsets, include_last_offset, per_sample_weights), state dicts both ways, from_pretrained, the
backward bit-identical with 1 and 2 threads, and the cuda kernels bit-identical to the CPU's."""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from conftest import DEVICES
import opinfo  # noqa: F401,E402  (first: opinfo imports opinfo_embedding and fills in its devices)
from opinfo_embedding import ref_embedding_bag  # noqa: E402

try:  # PyTorch is an optional oracle: its comparisons skip without it, the rest still runs
    import torch
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


def _pair(a, requires_grad=True):
    return nnfast.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


def _close(ours, theirs, tol=1e-12):
    np.testing.assert_allclose(ours.detach().cpu().numpy() if isinstance(ours, nnfast.Tensor) else ours,
                               theirs.detach().numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------- embedding
@needs_torch
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("freq", [False, True])
@pytest.mark.parametrize("itype", [np.int32, np.int64])
def test_embedding_matches_torch(padding_idx, freq, itype):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((9, 5))
    idx = np.array([[2, 8, 2, 0], [8, 8, 3, 2], [1, 2, 8, 7]], dtype=itype)
    g = rng.standard_normal((3, 4, 5))
    W, Wt = _pair(w)
    out = F.embedding(nnfast.tensor(idx), W, padding_idx=padding_idx, scale_grad_by_freq=freq)
    out_t = torch.nn.functional.embedding(torch.tensor(idx), Wt, padding_idx=padding_idx, scale_grad_by_freq=freq)
    _close(out, out_t)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    _close(W.grad, Wt.grad)


@needs_torch
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_max_norm_renorms_weight_like_torch(norm_type, dtype):
    rng = np.random.default_rng(1)
    w = (3 * rng.standard_normal((6, 4))).astype(dtype)
    ours, theirs = nn.Embedding(6, 4, max_norm=1.5, norm_type=norm_type, dtype=dtype), \
        torch.nn.Embedding(6, 4, max_norm=1.5, norm_type=norm_type, dtype=getattr(torch, np.dtype(dtype).name))
    ours.load_state_dict({"weight": nnfast.tensor(w)})
    theirs.load_state_dict({"weight": torch.tensor(w)})
    idx = np.array([[0, 3, 3], [5, 0, 1]])
    out, out_t = ours(nnfast.tensor(idx)), theirs(torch.tensor(idx))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    _close(out, out_t, tol)
    _close(ours.weight, theirs.weight, tol)  # looked-up rows renormalised in place, the others untouched
    np.testing.assert_array_equal(ours.weight.detach().numpy()[[2, 4]], w[[2, 4]])
    out.sum().backward()
    out_t.sum().backward()
    _close(ours.weight.grad, theirs.weight.grad, tol)


def test_embedding_max_norm_on_strided_weight():
    w = 3 * np.random.default_rng(2).standard_normal((5, 8))
    W = nnfast.tensor(w)[:, ::2]
    F.embedding(nnfast.tensor([1, 4]), W, max_norm=1.0)
    norms = np.linalg.norm(W.numpy(), axis=1)
    assert np.allclose(norms[[1, 4]], 1.0, atol=1e-6) and np.allclose(norms[[0, 2, 3]],
                                                                      np.linalg.norm(w[:, ::2], axis=1)[[0, 2, 3]])


def test_embedding_grads_accumulate_and_sparse_raises():
    emb = nn.Embedding(4, 3)
    idx = nnfast.tensor([1, 1, 3])
    emb(idx).sum().backward()
    emb(idx).sum().backward()
    assert emb.weight.grad.numpy()[1].tolist() == [4.0] * 3 and emb.weight.grad.numpy()[0].tolist() == [0.0] * 3
    with pytest.raises(ValueError, match=r"^\[embedding\] expected sparse=False"):
        nn.Embedding(4, 3, sparse=True)(idx)


# ---------------------------------------------------------------- embedding_bag
BAG_INPUTS = [  # (id, input, offsets, include_last_offset)
    ("offsets", [1, 3, 3, 0, 6, 3, 2, 2, 5], [0, 2, 2, 5], False),
    ("last-offset", [1, 3, 3, 0, 6, 3, 2, 2, 5], [0, 4, 4, 9], True),  # last offset = N, as documented
    ("2d", [[1, 4, 1], [0, 6, 2]], None, False),
]


@needs_torch
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 3])
@pytest.mark.parametrize("case", BAG_INPUTS, ids=lambda c: c[0])
def test_embedding_bag_matches_torch(mode, padding_idx, case):
    _, inp, offsets, last = case
    rng = np.random.default_rng(3)
    w = rng.standard_normal((7, 5))
    W, Wt = _pair(w)
    idx = np.array(inp)
    off = None if offsets is None else np.array(offsets)
    kw = dict(mode=mode, include_last_offset=last, padding_idx=padding_idx)
    out = F.embedding_bag(nnfast.tensor(idx), W, None if off is None else nnfast.tensor(off), **kw)
    out_t = torch.nn.functional.embedding_bag(torch.tensor(idx), Wt, None if off is None else torch.tensor(off), **kw)
    _close(out, out_t)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(g)
    out_t.backward(torch.tensor(g))
    _close(W.grad, Wt.grad)


@needs_torch
@pytest.mark.parametrize("case", BAG_INPUTS, ids=lambda c: c[0])
def test_embedding_bag_per_sample_weights_match_torch(case):
    _, inp, offsets, last = case
    rng = np.random.default_rng(4)
    idx = np.array(inp)
    W, Wt = _pair(rng.standard_normal((7, 3)))
    P, Pt = _pair(rng.standard_normal(idx.shape))
    off = None if offsets is None else np.array(offsets)
    out = F.embedding_bag(nnfast.tensor(idx), W, None if off is None else nnfast.tensor(off), mode="sum",
                          per_sample_weights=P, include_last_offset=last, padding_idx=1)
    out_t = torch.nn.functional.embedding_bag(torch.tensor(idx), Wt, None if off is None else torch.tensor(off),
                                              mode="sum", per_sample_weights=Pt, include_last_offset=last,
                                              padding_idx=1)
    _close(out, out_t)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(g)
    out_t.backward(torch.tensor(g))
    _close(W.grad, Wt.grad)
    _close(P.grad, Pt.grad)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_scale_grad_by_freq(mode):
    """Each row's gradient divided by its count in the batch, as F.embedding does (PyTorch's CPU
    embedding_bag applies other divisors here, so the float64 reference is the oracle)."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 4))
    idx, off = np.array([1, 3, 3, 0, 5, 3, 2, 2]), np.array([0, 2, 2, 5])
    g = rng.standard_normal((4, 4))
    W = nnfast.tensor(w, requires_grad=True)
    F.embedding_bag(nnfast.tensor(idx), W, nnfast.tensor(off), mode=mode, scale_grad_by_freq=True).backward(g)
    plain = nnfast.tensor(w, requires_grad=True)
    F.embedding_bag(nnfast.tensor(idx), plain, nnfast.tensor(off), mode=mode).backward(g)
    counts = np.bincount(idx, minlength=6).astype(float)
    expected = plain.grad.numpy() / np.maximum(counts, 1)[:, None]
    np.testing.assert_allclose(W.grad.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_embedding_bag_empty_bags_are_zero_and_max_indices_free_rows_get_nothing():
    W = nnfast.tensor(np.random.default_rng(6).standard_normal((4, 3)), requires_grad=True)
    out = F.embedding_bag(nnfast.tensor([2, 2, 1]), W, nnfast.tensor([0, 0, 3, 3]), mode="max")
    assert not out.detach().numpy()[[0, 2, 3]].any()
    out.sum().backward()
    np.testing.assert_array_equal(W.grad.numpy().sum(0), [1.0, 1.0, 1.0])
    assert not W.grad.numpy()[[0, 3]].any()
    ref = ref_embedding_bag(np.array([2, 2, 1]), W.detach().numpy(), np.array([0, 0, 3, 3]), "mean")
    got = F.embedding_bag(nnfast.tensor([2, 2, 1]), W, nnfast.tensor([0, 0, 3, 3])).detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-15)


# ---------------------------------------------------------------- modules: state dicts, from_pretrained
@needs_torch
@pytest.mark.parametrize("name,kw,call", [
    ("Embedding", {"padding_idx": 2}, lambda m, lib: m(lib.tensor([[0, 2, 8], [3, 3, 1]]))),
    ("EmbeddingBag", {"mode": "sum"}, lambda m, lib: m(lib.tensor([0, 2, 8, 3, 3, 1]), lib.tensor([0, 4]))),
    ("EmbeddingBag", {"mode": "max", "padding_idx": 0}, lambda m, lib: m(lib.tensor([[0, 2], [8, 1]]))),
], ids=["Embedding", "EmbeddingBag-sum", "EmbeddingBag-max"])
def test_state_dict_round_trip_with_torch(name, kw, call):
    ours, theirs = getattr(nn, name)(9, 4, **kw), getattr(torch.nn, name)(9, 4, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    np.testing.assert_array_equal(call(ours, nnfast).detach().numpy(), call(theirs, torch).detach().numpy())
    back = getattr(nn, name)(9, 4, **kw)  # and back: torch's weights into nnfast
    theirs2 = getattr(torch.nn, name)(9, 4, **kw)
    back.load_state_dict({k: nnfast.tensor(v.detach().numpy().copy()) for k, v in theirs2.state_dict().items()})
    np.testing.assert_array_equal(call(back, nnfast).detach().numpy(), call(theirs2, torch).detach().numpy())


def test_defaults_and_init_like_torch():
    emb, bag = nn.Embedding(50, 8, padding_idx=3), nn.EmbeddingBag(50, 8)
    assert bag.mode == "mean" and not bag.include_last_offset and bag.padding_idx is None
    assert not emb.weight.detach().numpy()[3].any()
    w = emb.weight.detach().numpy()
    assert abs(w.std() - 1.0) < 0.2 and abs(w.mean()) < 0.2  # N(0, 1)
    assert repr(emb) == "Embedding(50, 8, padding_idx=3)" and "mode='mean'" in repr(bag)


@pytest.mark.parametrize("freeze", [True, False])
def test_from_pretrained(freeze):
    w = np.arange(12.0).reshape(4, 3)
    emb = nn.Embedding.from_pretrained(nnfast.tensor(w), freeze=freeze, padding_idx=1)
    bag = nn.EmbeddingBag.from_pretrained(nnfast.tensor(w), freeze=freeze, mode="sum", padding_idx=1)
    assert emb.weight.requires_grad is (not freeze) and bag.weight.requires_grad is (not freeze)
    assert emb.padding_idx == 1 and bag.padding_idx == 1 and bag.mode == "sum"
    np.testing.assert_array_equal(emb(nnfast.tensor([3, 1])).detach().numpy(), w[[3, 1]])
    np.testing.assert_array_equal(bag(nnfast.tensor([[3, 1, 0]])).detach().numpy(), [w[3] + w[0]])
    with pytest.raises(ValueError, match=r"^\[EmbeddingBag.from_pretrained\] expected a 2-D"):
        nn.EmbeddingBag.from_pretrained(nnfast.tensor(np.ones(3)))


# ---------------------------------------------------------------- determinism and devices
def _grads(fn, w, device="cpu"):
    W = nnfast.tensor(w, requires_grad=True).to(device).detach().requires_grad_()
    out = fn(W, device)
    out.backward(nnfast.tensor(np.cos(np.arange(out.numel())).reshape(out.shape)).to(device))
    return out.detach().cpu().numpy(), W.grad.cpu().numpy()


_RNG = np.random.default_rng(7)
_IDX = _RNG.integers(0, 40, 2048)  # many repeats per row: the order of additions matters
_OFF = np.sort(_RNG.integers(0, 2048, 200))
_OFF[0] = 0
CALLS = {
    "embedding": lambda W, dev: F.embedding(nnfast.tensor(_IDX).to(dev), W, padding_idx=5),
    "embedding-freq": lambda W, dev: F.embedding(nnfast.tensor(_IDX.reshape(32, 64)).to(dev), W,
                                                 scale_grad_by_freq=True),
    "bag-sum": lambda W, dev: F.embedding_bag(nnfast.tensor(_IDX).to(dev), W, nnfast.tensor(_OFF).to(dev), mode="sum"),
    "bag-mean": lambda W, dev: F.embedding_bag(nnfast.tensor(_IDX.reshape(64, 32)).to(dev), W, padding_idx=0),
    "bag-max": lambda W, dev: F.embedding_bag(nnfast.tensor(_IDX).to(dev), W, nnfast.tensor(_OFF).to(dev), mode="max"),
}


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_bit_identical_for_any_thread_count(name, dtype):
    w = _RNG.standard_normal((40, 96)).astype(dtype)
    before = nnfast.get_num_threads()
    try:
        nnfast.set_num_threads(1)
        one = _grads(CALLS[name], w)
        nnfast.set_num_threads(2)
        two = _grads(CALLS[name], w)
    finally:
        nnfast.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif("cuda" not in DEVICES, reason="no cuda device in this build")
@pytest.mark.parametrize("name", list(CALLS))
def test_cuda_bit_identical_to_cpu(name):
    w = _RNG.standard_normal((40, 12))
    for a, b in zip(_grads(CALLS[name], w, "cpu"), _grads(CALLS[name], w, "cuda")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_range_raises_on_every_device(device):
    W = nnfast.tensor(np.ones((5, 2))).to(device)
    with pytest.raises(IndexError, match=r"^\[embedding\] expected indices in \[0, 5\), got values in \[-2, 5\]"):
        F.embedding(nnfast.tensor([[0, 5], [-2, 1]]).to(device), W)
    with pytest.raises(IndexError, match=r"^\[embedding_bag\] expected indices in \[0, 5\)"):
        F.embedding_bag(nnfast.tensor([[0, 7]]).to(device), W)
    with pytest.raises(ValueError, match=r"^\[embedding_bag\] expected offsets to be non-decreasing"):
        F.embedding_bag(nnfast.tensor([0, 1, 2]).to(device), W, nnfast.tensor([0, 2, 1]).to(device))
