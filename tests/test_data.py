"""nnfast.utils.data: datasets, samplers, collation and DataLoader, against PyTorch's behaviour.

PyTorch (when installed) is the oracle for collate dtypes/structure, random_split lengths,
sampler and loader lengths, and the batches of deterministic loaders.
"""
from __future__ import annotations

import collections
import threading
import warnings

import numpy as np
import pytest

import nnfast
from nnfast.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, IterableDataset,
                               RandomSampler, Sampler, SequentialSampler, StackDataset, Subset,
                               SubsetRandomSampler, TensorDataset, WeightedRandomSampler, collate,
                               default_collate, default_collate_fn_map, default_convert, get_worker_info,
                               random_split)

try:
    import torch
    import torch.utils.data as tud
except ImportError:  # pragma: no cover - optional oracle
    torch = tud = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")

Point = collections.namedtuple("Point", "x y")


def arr(t):
    """A Tensor's values as NumPy (also accepts torch tensors)."""
    if torch is not None and isinstance(t, torch.Tensor):
        return t.numpy()
    return np.asarray(t._data)


def same(a, b):
    """Structure, types and values of an nnfast batch ``a`` equal those of a torch batch ``b``."""
    if isinstance(a, nnfast.Tensor):
        assert isinstance(b, torch.Tensor)
        x, y = arr(a), arr(b)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), (x, y)
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b)
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (type(a), type(b))
        for x, y in zip(a, b):
            same(x, y)
    else:
        assert type(a) is type(b) and a == b


def to_torch(x):
    """The same sample with nnfast Tensors replaced by torch tensors."""
    if isinstance(x, nnfast.Tensor):
        return torch.from_numpy(arr(x).copy())
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*(to_torch(v) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(to_torch(v) for v in x)
    if isinstance(x, dict):
        return type(x)((k, to_torch(v)) for k, v in x.items())
    return x


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"i": i, "sq": float(i * i), "v": np.full(3, i, np.float32), "name": f"s{i}"}

    def __len__(self):
        return self.n


class Stream(IterableDataset):
    def __init__(self, n, sized=True):
        self.n, self.sized = n, sized

    def __iter__(self):
        for i in range(self.n):
            yield np.float32(i), i

    def __len__(self):
        if not self.sized:
            raise TypeError("no len")
        return self.n


def data(n=10):
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return X, y


# ---------------------------------------------------------------- collate
COLLATE_CASES = {
    "ints": [1, 2, 3],
    "floats": [1.5, 2.0, -0.25],
    "bools": [True, False, True],
    "int_then_float": [1, 2.5],
    "strings": ["a", "bc"],
    "bytes": [b"a", b"b"],
    "np_f32": [np.float32(1), np.float32(2)],
    "np_i16": [np.int16(1), np.int16(-2)],
    "np_bool": [np.bool_(True), np.bool_(False)],
    "arrays": [np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)],
    "int_arrays": [np.arange(3), np.arange(3, 6)],
    "0d_arrays": [np.array(1.5), np.array(2.5)],
    "tuples": [(1, 2.0, "a"), (3, 4.0, "b")],
    "lists": [[1, 2], [3, 4]],
    "dicts": [{"a": 1, "b": [1.0, 2.0]}, {"a": 2, "b": [3.0, 4.0]}],
    "ordered": [collections.OrderedDict(z=1, a=2.0), collections.OrderedDict(z=3, a=4.0)],
    "namedtuples": [Point(1, 2.0), Point(3, 4.0)],
    "nested": [({"x": np.arange(2)}, [np.float64(1)]), ({"x": np.arange(2, 4)}, [np.float64(2)])],
}




@pytest.mark.parametrize("name", list(COLLATE_CASES))
def test_default_collate_types_and_values(name):
    out = default_collate(COLLATE_CASES[name])
    if torch is not None:
        same(out, tud.default_collate(COLLATE_CASES[name]))


def test_default_collate_dtypes_without_torch():
    assert default_collate([1, 2]).dtype == nnfast.int64
    assert default_collate([1.0, 2.0]).dtype == nnfast.float64
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate([np.float32(1)] * 2).dtype == nnfast.float32
    assert default_collate(["a", "b"]) == ["a", "b"]
    out = default_collate([(1, "a"), (2, "b")])
    assert type(out) is list and out[1] == ("a", "b")  # tuples become lists, as in PyTorch
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert type(p) is Point and p.x.dtype == nnfast.int64 and p.y.dtype == nnfast.float64


def test_default_collate_stacks_tensors_on_their_device_and_keeps_grad():
    a, b = nnfast.randn(2, 3), nnfast.randn(2, 3)
    out = default_collate([a, b])
    assert out.shape == (2, 2, 3) and np.array_equal(arr(out)[1], arr(b))
    w = nnfast.randn(3, requires_grad=True)
    s = default_collate([w, w * 2])
    s.sum().backward()
    assert np.allclose(arr(w.grad), 3.0)


@needs_torch
def test_default_collate_of_tensors_matches_torch():
    batch = [nnfast.tensor(np.arange(6, dtype=np.int32).reshape(2, 3) + i) for i in range(3)]
    same(default_collate(batch), tud.default_collate([to_torch(t) for t in batch]))
    samples = [(nnfast.tensor([1.0, 2.0]), 3), (nnfast.tensor([4.0, 5.0]), 6)]
    same(default_collate(samples), tud.default_collate(to_torch(samples)))


@pytest.mark.parametrize("batch, exc, msg", [
    ([object(), object()], TypeError, r"^\[default_collate\] expected .* found <class 'object'>"),
    ([np.array(["a"]), np.array(["b"])], TypeError, r"^\[default_collate\] expected"),
    ([[1, 2], [3]], RuntimeError, r"^\[default_collate\] expected samples of equal length"),
    ([nnfast.zeros(2), nnfast.zeros(3)], RuntimeError, r"^\[default_collate\] expected tensors of equal size"),
    ([], ValueError, r"^\[default_collate\] expected a non-empty batch"),
])
def test_default_collate_errors(batch, exc, msg):
    with pytest.raises(exc, match=msg):
        default_collate(batch)


def test_default_convert():
    a = np.arange(4)
    t = default_convert(a)
    assert isinstance(t, nnfast.Tensor) and np.shares_memory(arr(t), a)
    assert default_convert(1.5) == 1.5 and default_convert("s") == "s"
    out = default_convert((np.float32(2), {"k": np.ones(2)}, [np.zeros(1)], Point(np.ones(1), 3)))
    assert type(out) is list and out[0].dtype == nnfast.float32 and out[0].ndim == 0
    assert isinstance(out[1]["k"], nnfast.Tensor) and isinstance(out[2][0], nnfast.Tensor)
    assert type(out[3]) is Point and out[3].y == 3
    s = np.array(["x"])
    assert default_convert(s) is s
    if torch is not None:
        sample = {"a": np.arange(3), "b": (np.float64(1.0), "s", 2)}
        same(default_convert(sample), tud.default_convert(sample))


def test_collate_with_a_custom_map():
    def as_sum(batch, *, collate_fn_map=None):
        return sum(batch)

    assert collate([1, 2, 3], collate_fn_map={int: as_sum}) == 6
    assert collate([{"a": 1}, {"a": 2}], collate_fn_map={int: as_sum}) == {"a": 3}
    assert default_collate_fn_map[float] is not None


# ---------------------------------------------------------------- datasets
def test_tensor_dataset_items_and_errors():
    X, y = data(5)
    ds = TensorDataset(nnfast.tensor(X), y)
    assert len(ds) == 5 and all(isinstance(t, nnfast.Tensor) for t in ds.tensors)
    x2, y2 = ds[2]
    assert isinstance(x2, nnfast.Tensor) and np.array_equal(arr(x2), X[2]) and arr(y2).shape == ()
    xs, ys = ds[1:3]
    assert xs.shape == (2, 3) and np.array_equal(arr(ys), [1, 2])
    assert np.array_equal(arr(ds[np.int64(4)][1]), 4)
    with pytest.raises(ValueError, match=r"^\[TensorDataset\] expected tensors of one length"):
        TensorDataset(X, y[:4])
    with pytest.raises(ValueError, match=r"^\[TensorDataset\] expected at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match=r"^\[TensorDataset\] expected tensors with a first dimension"):
        TensorDataset(np.float32(1))


def test_subset_concat_chain_stack():
    X, y = data(6)
    ds = TensorDataset(X, y)
    sub = Subset(ds, [5, 0, 3])
    assert len(sub) == 3 and int(arr(sub[0][1])) == 5
    assert [int(arr(s[1])) for s in sub.__getitems__([2, 1])] == [3, 0]
    cat = ConcatDataset([Squares(3), Squares(2)])
    assert len(cat) == 5 and cat.cumulative_sizes == [3, 5]
    assert cat[3]["i"] == 0 and cat[-1]["i"] == 1 and cat[2]["i"] == 2
    assert len(Squares(2) + Squares(4)) == 6
    with pytest.raises(IndexError, match=r"^\[ConcatDataset\] expected an index"):
        cat[5]
    with pytest.raises(IndexError, match=r"^\[ConcatDataset\] expected an index"):
        cat[-6]
    with pytest.raises(ValueError, match=r"^\[ConcatDataset\] expected at least one"):
        ConcatDataset([])
    with pytest.raises(TypeError, match=r"^\[ConcatDataset\] expected map-style"):
        ConcatDataset([Stream(2)])
    chain = ChainDataset([Stream(2), Stream(3)])
    assert len(chain) == 5 and [int(i) for _, i in chain] == [0, 1, 0, 1, 2]
    assert [i for _, i in Stream(1) + Stream(2)] == [0, 0, 1]
    with pytest.raises(TypeError, match=r"^\[ChainDataset\] expected IterableDatasets"):
        list(ChainDataset([Squares(2)]))
    st = StackDataset(Squares(3), ds.tensors[1][:3])
    assert len(st) == 3 and st[1][0]["i"] == 1 and int(arr(st[1][1])) == 1
    sk = StackDataset(a=Squares(2), b=[10, 20])
    assert sk[1]["b"] == 20
    with pytest.raises(ValueError, match=r"^\[StackDataset\] expected datasets of one length"):
        StackDataset(Squares(2), Squares(3))
    with pytest.raises(ValueError, match=r"^\[StackDataset\] expected datasets either"):
        StackDataset(Squares(2), b=Squares(2))
    with pytest.raises(ValueError, match=r"^\[StackDataset\] expected at least one"):
        StackDataset()


def test_base_classes_say_what_is_missing():
    with pytest.raises(NotImplementedError, match=r"^\[Dataset\] expected Dataset to define __getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match=r"^\[IterableDataset\]"):
        iter(IterableDataset())
    with pytest.raises(NotImplementedError):
        iter(Sampler())


@pytest.mark.parametrize("n, fractions", [(10, [0.3, 0.7]), (7, [0.5, 0.5]), (11, [0.1, 0.2, 0.7]),
                                          (1, [0.5, 0.5]), (100, [1 / 3] * 3), (5, [1.0])])
def test_random_split_fraction_rounding(n, fractions):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = random_split(range(n), fractions, generator=np.random.default_rng(0))
        lengths = [len(p) for p in parts]
        if torch is not None:
            ref = tud.random_split(range(n), fractions, generator=torch.Generator().manual_seed(0))
            assert lengths == [len(p) for p in ref]
    assert sum(lengths) == n
    assert sorted(i for p in parts for i in p) == list(range(n))


def test_random_split_lengths_determinism_and_errors():
    a = random_split(range(10), [3, 7], generator=np.random.default_rng(5))
    b = random_split(range(10), [3, 7], generator=np.random.default_rng(5))
    assert [list(p) for p in a] == [list(p) for p in b] and [len(p) for p in a] == [3, 7]
    nnfast.manual_seed(3)
    c = [list(p) for p in random_split(range(10), [5, 5])]
    nnfast.manual_seed(3)
    assert c == [list(p) for p in random_split(range(10), [5, 5])]
    with pytest.warns(UserWarning, match="empty"):
        random_split(range(1), [0.5, 0.5])
    with pytest.raises(ValueError, match=r"^\[random_split\] expected non-negative integer lengths summing"):
        random_split(range(10), [3, 6])
    with pytest.raises(ValueError, match=r"^\[random_split\] expected fractions between 0 and 1"):
        random_split(range(10), [1.5, -0.5])
    with pytest.raises(TypeError, match=r"^\[random_split\] expected generator"):
        random_split(range(10), [5, 5], generator=42)


# ---------------------------------------------------------------- samplers
def test_sequential_and_random_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3] and len(SequentialSampler(range(4))) == 4
    r = RandomSampler(range(10), generator=np.random.default_rng(1))
    order = list(r)
    assert sorted(order) == list(range(10)) and len(r) == 10
    assert list(RandomSampler(range(10), generator=np.random.default_rng(1))) == order
    more = RandomSampler(range(4), num_samples=10, generator=np.random.default_rng(0))
    got = list(more)
    assert len(more) == 10 and len(got) == 10 and sorted(got[:4]) == [0, 1, 2, 3] and sorted(got[4:8]) == [0, 1, 2, 3]
    rep = RandomSampler(range(3), replacement=True, num_samples=70, generator=np.random.default_rng(0))
    got = list(rep)
    assert len(got) == 70 and set(got) <= {0, 1, 2}
    with pytest.raises(TypeError, match=r"^\[RandomSampler\] expected replacement to be a bool"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match=r"^\[RandomSampler\] expected num_samples to be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match=r"^\[RandomSampler\] expected num_samples"):
        RandomSampler(range(0))


def test_random_sampler_follows_manual_seed():
    nnfast.manual_seed(7)
    a = list(RandomSampler(range(20)))
    nnfast.manual_seed(7)
    assert list(RandomSampler(range(20))) == a
    state = nnfast.get_rng_state()
    b = list(RandomSampler(range(20)))
    nnfast.set_rng_state(state)
    assert list(RandomSampler(range(20))) == b


def test_subset_random_and_weighted_samplers():
    s = SubsetRandomSampler([10, 20, 30], generator=np.random.default_rng(0))
    assert sorted(s) == [10, 20, 30] and len(s) == 3
    w = WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 50, generator=np.random.default_rng(0))
    got = list(w)
    assert len(w) == 50 and len(got) == 50 and set(got) <= {1, 3} and got.count(3) > got.count(1)
    nw = WeightedRandomSampler(nnfast.tensor([1.0, 2.0, 3.0]), 3, replacement=False, generator=np.random.default_rng(1))
    assert sorted(nw) == [0, 1, 2]
    assert WeightedRandomSampler([1.0, 2.0], 4).weights.dtype == nnfast.float64
    for bad, msg in [(dict(weights=[1.0], num_samples=0), "num_samples to be a positive integer"),
                     (dict(weights=[1.0], num_samples=True), "num_samples to be a positive integer"),
                     (dict(weights=[1.0], num_samples=1, replacement=0), "replacement to be a bool"),
                     (dict(weights=[[1.0]], num_samples=1), "a 1-D sequence of weights"),
                     (dict(weights=[-1.0, 2.0], num_samples=1), "finite, non-negative weights"),
                     (dict(weights=[1.0, 0.0], num_samples=2, replacement=False), "num_samples <= the 1 non-zero")]:
        with pytest.raises(ValueError, match=r"^\[WeightedRandomSampler\] expected " + msg):
            WeightedRandomSampler(**bad)


@pytest.mark.parametrize("n, bs, drop", [(10, 3, False), (10, 3, True), (9, 3, True), (1, 5, False),
                                         (1, 5, True), (7, 1, False)])
def test_batch_sampler(n, bs, drop):
    b = BatchSampler(SequentialSampler(range(n)), bs, drop)
    got = list(b)
    assert len(b) == len(got)
    assert all(len(x) == bs for x in got[:-1] if got)
    if torch is not None:
        ref = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop)
        assert got == list(ref) and len(b) == len(ref)


@pytest.mark.parametrize("kw, msg", [(dict(batch_size=0, drop_last=False), "batch_size to be a positive integer"),
                                     (dict(batch_size=True, drop_last=False), "batch_size to be a positive integer"),
                                     (dict(batch_size=2, drop_last=1), "drop_last to be a bool")])
def test_batch_sampler_errors(kw, msg):
    with pytest.raises(ValueError, match=r"^\[BatchSampler\] expected " + msg):
        BatchSampler(range(3), **kw)


def test_sampler_generator_objects():
    class Holder:  # the shape of an nnfast.Generator: it holds a NumPy Generator
        def __init__(self, seed):
            self._rng = np.random.default_rng(seed)

    assert list(RandomSampler(range(8), generator=Holder(3))) == list(
        RandomSampler(range(8), generator=np.random.default_rng(3)))
    with pytest.raises(TypeError, match=r"^\[RandomSampler\] expected generator"):
        list(RandomSampler(range(3), generator="seed"))


# ---------------------------------------------------------------- DataLoader
def batches_np(loader):
    out = []
    for b in loader:
        out.append([arr(t).copy() for t in b] if isinstance(b, list) else arr(b).copy())
    return out


def eq_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, list):
            assert all(np.array_equal(u, v) and u.dtype == v.dtype for u, v in zip(x, y))
        else:
            assert np.array_equal(x, y) and x.dtype == y.dtype


@pytest.mark.parametrize("n, bs, drop", [(10, 4, False), (10, 4, True), (8, 4, True), (3, 5, False),
                                         (3, 5, True), (7, 1, False)])
def test_loader_lengths_and_batches(n, bs, drop):
    X, y = data(n)
    loader = DataLoader(TensorDataset(X, y), batch_size=bs, drop_last=drop)
    got = list(loader)
    assert len(loader) == len(got) == len(iter(loader))
    assert type(got[0]) is list if got else True
    flat = np.concatenate([arr(b[1]) for b in got]) if got else np.empty(0, np.int64)
    assert np.array_equal(flat, y[: len(flat)]) and len(flat) == (n // bs * bs if drop else n)
    if torch is not None:
        ref = tud.DataLoader(tud.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=bs,
                             drop_last=drop)
        assert len(ref) == len(loader)
        for a, b in zip(got, ref):
            same(a, b)


def test_loader_fast_path_equals_per_sample_collate():
    X, y = data(13)
    ds = Subset(Subset(TensorDataset(X, y), list(range(12, -1, -1))), [0, 5, 7, 2, 9, 11, 1])
    fast = batches_np(DataLoader(ds, batch_size=3))
    slow = batches_np(DataLoader(ds, batch_size=3, collate_fn=lambda b: default_collate(b)))
    eq_batches(fast, slow)
    eq_batches(batches_np(DataLoader(nnfast.tensor(X), batch_size=4)), [X[:4], X[4:8], X[8:12], X[12:]])


def test_loader_shuffle_is_deterministic_and_new_each_epoch():
    X, y = data(32)
    ds = TensorDataset(X, y)
    gen = np.random.default_rng(11)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=gen)
    e1, e2 = batches_np(loader), batches_np(loader)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(e1, e2))
    assert sorted(np.concatenate([b[1] for b in e1])) == list(range(32))
    again = DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(11))
    eq_batches(batches_np(again), e1)
    nnfast.manual_seed(4)
    g1 = batches_np(DataLoader(ds, batch_size=8, shuffle=True))
    nnfast.manual_seed(4)
    eq_batches(batches_np(DataLoader(ds, batch_size=8, shuffle=True)), g1)


def test_loader_over_a_custom_dataset_collates_dicts():
    loader = DataLoader(Squares(5), batch_size=2)
    b = next(iter(loader))
    assert list(b) == ["i", "sq", "v", "name"] and b["name"] == ["s0", "s1"]
    assert b["i"].dtype == nnfast.int64 and b["sq"].dtype == nnfast.float64 and b["v"].shape == (2, 3)
    if torch is not None:
        for mine, ref in zip(DataLoader(Squares(5), batch_size=2), tud.DataLoader(Squares(5), batch_size=2)):
            same(mine, ref)


def test_loader_batch_size_none_converts_single_samples():
    loader = DataLoader(Squares(3), batch_size=None)
    got = list(loader)
    assert len(loader) == 3 and got[1]["i"] == 1 and isinstance(got[1]["v"], nnfast.Tensor)
    assert got[1]["v"].shape == (3,)
    X, y = data(3)
    items = list(DataLoader(TensorDataset(X, y), batch_size=None))
    assert type(items[0]) is list and arr(items[2][1]) == 2


def test_loader_samplers_and_batch_sampler():
    X, y = data(10)
    ds = TensorDataset(X, y)
    order = [9, 0, 8, 1, 7]
    got = [arr(b[1]).tolist() for b in DataLoader(ds, batch_size=2, sampler=order)]
    assert got == [[9, 0], [8, 1], [7]]
    bs = [[3, 4], [0], [9, 8, 7]]
    loader = DataLoader(ds, batch_sampler=bs)
    assert [arr(b[1]).tolist() for b in loader] == bs and len(loader) == 3 and loader.batch_size is None
    w = DataLoader(ds, batch_size=4, sampler=WeightedRandomSampler([1.0] * 10, 12, generator=np.random.default_rng(0)))
    assert len(w) == 3 and sum(len(arr(b[1])) for b in w) == 12


def test_loader_over_iterable_datasets():
    loader = DataLoader(Stream(7), batch_size=3)
    got = list(loader)
    assert len(loader) == 3 and [arr(b[1]).tolist() for b in got] == [[0, 1, 2], [3, 4, 5], [6]]
    assert got[0][0].dtype == nnfast.float32 and got[0][1].dtype == nnfast.int64
    assert len(DataLoader(Stream(7), batch_size=3, drop_last=True)) == 2
    assert len(list(DataLoader(Stream(7), batch_size=3, drop_last=True))) == 2
    single = list(DataLoader(Stream(3), batch_size=None))
    assert len(single) == 3 and type(single[0]) is list and single[0][1] == 0
    unsized = DataLoader(Stream(4, sized=False), batch_size=2)
    assert len(list(unsized)) == 2
    with pytest.raises(TypeError):
        len(unsized)
    assert len(list(DataLoader(Stream(5), batch_size=2, num_workers=3))) == 3  # read once, in order
    if torch is not None:
        for mine, ref in zip(DataLoader(Stream(7), batch_size=3), tud.DataLoader(TorchStream(7), batch_size=3)):
            same(mine, ref)


if tud is not None:
    class TorchStream(tud.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            for i in range(self.n):
                yield np.float32(i), i


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_give_the_batches_of_zero_workers(workers):
    X, y = data(37)
    ds = Subset(TensorDataset(X, y), list(range(36, -1, -1)))
    for kw in (dict(), dict(shuffle=True), dict(drop_last=True), dict(collate_fn=lambda b: default_collate(b))):
        gen_kw = dict(generator=np.random.default_rng(2)) if kw.get("shuffle") else {}
        ref = batches_np(DataLoader(ds, batch_size=5, num_workers=0, **kw, **gen_kw))
        gen_kw = dict(generator=np.random.default_rng(2)) if kw.get("shuffle") else {}
        got = batches_np(DataLoader(ds, batch_size=5, num_workers=workers, prefetch_factor=3, **kw, **gen_kw))
        eq_batches(got, ref)
    nnfast.manual_seed(9)
    a = batches_np(DataLoader(ds, batch_size=4, shuffle=True))
    nnfast.manual_seed(9)
    eq_batches(batches_np(DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers)), a)


def test_worker_info_and_init_fn():
    assert get_worker_info() is None
    seen, inits = [], []
    lock = threading.Lock()

    class Probe(Dataset):
        def __getitem__(self, i):
            info = get_worker_info()
            with lock:
                seen.append((info.id, info.num_workers, info.dataset is ds))
            return i

        def __len__(self):
            return 12

    ds = Probe()
    got = [arr(b).tolist() for b in DataLoader(ds, batch_size=3, num_workers=2,
                                               worker_init_fn=lambda wid: inits.append(wid))]
    assert got == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert {s[0] for s in seen} <= {0, 1} and all(s[1] == 2 and s[2] for s in seen)
    assert sorted(inits) == sorted(set(inits)) and set(inits) <= {0, 1}
    assert get_worker_info() is None


def test_worker_errors_reach_the_caller():
    class Bad(Dataset):
        def __getitem__(self, i):
            if i == 5:
                raise KeyError("sample 5 is broken")
            return i

        def __len__(self):
            return 10

    with pytest.raises(KeyError, match="sample 5"):
        list(DataLoader(Bad(), batch_size=2, num_workers=2))

    def bad_init(wid):
        raise RuntimeError("init failed")

    with pytest.raises(RuntimeError, match="init failed"):
        list(DataLoader(Squares(4), batch_size=2, num_workers=2, worker_init_fn=bad_init))
    it = iter(DataLoader(Squares(40), batch_size=2, num_workers=2))
    next(it)
    del it  # an abandoned epoch shuts its threads down


def test_loader_accepts_pytorch_options():
    X, y = data(6)
    loader = DataLoader(TensorDataset(X, y), batch_size=2, shuffle=False, pin_memory=True, timeout=5,
                        num_workers=2, prefetch_factor=1, persistent_workers=True, multiprocessing_context=None,
                        pin_memory_device="", in_order=True)
    assert len(list(loader)) == 3 and loader.pin_memory


@pytest.mark.parametrize("kw, msg", [
    (dict(num_workers=-1), "num_workers >= 0"),
    (dict(timeout=-1), "timeout >= 0"),
    (dict(prefetch_factor=2), "prefetch_factor=None with num_workers=0"),
    (dict(num_workers=1, prefetch_factor=0), "prefetch_factor to be a positive int"),  # torch allows 0
    (dict(persistent_workers=True), "num_workers > 0 with persistent_workers"),
    (dict(batch_size=0), "batch_size to be a positive int or None"),
    (dict(batch_size=2.5), "batch_size to be a positive int or None"),
    (dict(drop_last=1), "drop_last to be a bool"),
    (dict(sampler=[0, 1], shuffle=True), "either a sampler or shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler alone"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler alone"),
    (dict(batch_sampler=[[0]], sampler=[0]), "batch_sampler alone"),
    (dict(batch_size=None, drop_last=True), "drop_last=False with batch_size=None"),
])
def test_loader_option_errors(kw, msg):
    with pytest.raises(ValueError, match=r"^\[DataLoader\] expected " + msg):
        DataLoader(Squares(4), **kw)
    if torch is not None and kw.get("prefetch_factor") != 0:
        with pytest.raises((ValueError, TypeError)):
            tud.DataLoader(Squares(4), **kw)


@pytest.mark.parametrize("kw, msg", [(dict(shuffle=True), "shuffle unset with an IterableDataset"),
                                     (dict(sampler=[0]), "no sampler with an IterableDataset"),
                                     (dict(batch_sampler=[[0]]), "no batch_sampler with an IterableDataset")])
def test_loader_iterable_option_errors(kw, msg):
    with pytest.raises(ValueError, match=r"^\[DataLoader\] expected " + msg):
        DataLoader(Stream(3), **kw)


def test_loader_attributes_are_frozen_after_creation():
    loader = DataLoader(Squares(4), batch_size=2)
    for name in ("dataset", "batch_size", "sampler", "batch_sampler", "drop_last", "persistent_workers"):
        with pytest.raises(ValueError, match=r"^\[DataLoader\] expected " + name):
            setattr(loader, name, None)
    loader.device = None  # nnfast's own option stays settable
    loader.collate_fn = default_collate


def test_loader_timeout_raises():
    import time

    class Slow(Dataset):
        def __getitem__(self, i):
            time.sleep(0.5)
            return i

        def __len__(self):
            return 2

    with pytest.raises(RuntimeError, match=r"^\[DataLoader\] expected a batch within timeout"):
        list(DataLoader(Slow(), batch_size=1, num_workers=1, timeout=0.05))


def test_loader_moves_batches_to_device():
    X, y = data(4)
    b = next(iter(DataLoader(Squares(4), batch_size=2, device="cpu")))
    assert b["v"].device.type == "cpu" and b["name"] == ["s0", "s1"]
    b = next(iter(DataLoader(TensorDataset(X, y), batch_size=2, device="cpu")))
    assert all(t.device.type == "cpu" for t in b)


def test_training_with_a_loader_is_reproducible():
    X, y = data(24)
    Xf = X / 50

    def run():
        nnfast.manual_seed(0)
        model = nnfast.nn.Linear(3, 4)
        opt = nnfast.optim.SGD(model.parameters(), lr=0.1)
        for xb, yb in DataLoader(TensorDataset(Xf, y % 4), batch_size=5, shuffle=True, num_workers=2):
            opt.zero_grad()
            nnfast.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        return arr(model.weight).copy()

    assert np.array_equal(run(), run())


@pytest.mark.skipif(not nnfast.cuda.is_available(), reason="no cuda device")
def test_cuda_tensors_stay_on_cuda():
    X, y = data(7)
    ds = TensorDataset(nnfast.tensor(X).to("cuda"), nnfast.tensor(y).to("cuda"))
    fast = list(DataLoader(ds, batch_size=3, shuffle=True, generator=np.random.default_rng(0)))
    slow = list(DataLoader(ds, batch_size=3, shuffle=True, generator=np.random.default_rng(0),
                           collate_fn=lambda b: default_collate(b), num_workers=2))
    for a, b in zip(fast, slow):
        for u, v in zip(a, b):
            assert u.is_cuda and v.is_cuda and np.array_equal(u.cpu().numpy(), v.cpu().numpy())
    moved = next(iter(DataLoader(Squares(4), batch_size=2, device="cuda")))
    assert moved["v"].is_cuda and moved["i"].is_cuda and moved["name"] == ["s0", "s1"]


def test_generic_subscripting_and_subset_subclasses():
    class Ints(Dataset[int]):
        def __getitem__(self, i):
            return i

        def __len__(self):
            return 5

    class Negated(Subset):
        def __getitem__(self, i):
            return -super().__getitem__(i)

    assert DataLoader[int] is DataLoader and Sampler[int] is not None and IterableDataset[int] is not None
    got = [arr(b).tolist() for b in DataLoader(Negated(Ints(), [4, 1, 2]), batch_size=2)]
    assert got == [[-4, -1], [-2]]
    assert [arr(b).tolist() for b in DataLoader(Subset(Ints(), [4, 1, 2]), batch_size=3)] == [[4, 1, 2]]
