"""Checkpoints: the safetensors format (exact bytes, every dtype, validation) and nnfast.save/load.

The ``safetensors`` package (and PyTorch) serve as extra oracles when installed.
"""
from __future__ import annotations

import io as _pyio
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import collections
from collections import OrderedDict

import numpy as np
import pytest

import nnfast
import nnfast.io as nio
from nnfast.io import _atomic, _format

try:
    import safetensors
    import safetensors.numpy as stnp
except ImportError:  # pragma: no cover - optional oracle
    safetensors = stnp = None
try:
    import ml_dtypes
except ImportError:  # pragma: no cover - optional
    ml_dtypes = None

needs_safetensors = pytest.mark.skipif(safetensors is None, reason="safetensors not installed")
needs_ml_dtypes = pytest.mark.skipif(ml_dtypes is None, reason="ml_dtypes not installed")

NUMPY_DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
    "F16": np.float16, "I32": np.int32, "U32": np.uint32, "F32": np.float32, "C64": np.complex64,
    "F64": np.float64, "I64": np.int64, "U64": np.uint64,
}
ML_DTYPES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
             "F8_E8M0": "float8_e8m0fnu", "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz"}
SHAPES = [(), (1,), (0,), (3, 0, 2), (2, 3), (5, 1, 1, 4), (7, 3, 2, 1, 2)]


def sample(dtype, shape, rng):
    """Values that exercise the dtype: extremes, nan/inf and signed zeros for floats."""
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        a[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    elif dt.kind == "c":
        a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    else:
        a = (rng.standard_normal(n) * 100).astype(dt)
        special = np.array([np.nan, np.inf, -np.inf, -0.0, np.finfo(dt).max, np.finfo(dt).tiny], dt)
        a[: min(n, 6)] = special[: min(n, 6)]
    return a.reshape(shape)


def same_array(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same(a, b, path="root"):
    """Exact equality: same types, dict key order and key types, float bits, tensor bytes."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, nnfast.Tensor):
        assert same_array(a._data, b._data), path
        assert a.requires_grad == b.requires_grad, path
    elif isinstance(a, (np.ndarray, np.generic)):
        assert same_array(a, b), path
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, complex):
        assert_same(a.real, b.real, path)
        assert_same(a.imag, b.imag, path)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), path
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            assert_same(ka, kb, f"{path} key {ka!r}")
            assert_same(va, vb, f"{path}[{ka!r}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


# ---------------------------------------------------------------- flat round trips
@pytest.mark.parametrize("name", list(NUMPY_DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_roundtrip_every_dtype_and_shape(name, shape, rng, tmp_path):
    a = sample(NUMPY_DTYPES[name], shape, rng)
    data = nio.save_bytes({"x": nnfast.from_numpy(a), "y": a})
    hdr = json.loads(data[8: 8 + struct.unpack("<Q", data[:8])[0]])
    assert hdr["x"]["dtype"] == name and hdr["x"]["shape"] == list(shape)
    out = nio.load_bytes(data)
    assert list(out) == ["x", "y"]
    for t in out.values():
        assert isinstance(t, nnfast.Tensor) and not t.requires_grad
        assert same_array(t._data, a)
        assert t._data.flags.writeable and t._data.flags.c_contiguous
    nio.save_file({"x": a}, tmp_path / "f.safetensors")
    assert same_array(nio.load_file(tmp_path / "f.safetensors")["x"]._data, a)


def test_noncontiguous_fortran_and_big_endian_inputs(rng):
    base = rng.standard_normal((6, 8))
    cases = {
        "strided": base[::2, ::3],
        "fortran": np.asfortranarray(base),
        "transposed": base.T,
        "big_endian": base.astype(">f8"),
        "big_endian_i32": np.arange(12, dtype=">i4").reshape(3, 4),
        "negative_stride": base[::-1],
    }
    out = nio.load_bytes(nio.save_bytes(cases))
    for k, v in cases.items():
        got = out[k]._data
        assert got.dtype == v.dtype.newbyteorder("=") and got.dtype.isnative
        np.testing.assert_array_equal(got, v)


def test_bool_view_of_other_bytes_is_saved_canonically():
    a = np.array([0, 1, 2, 255], np.uint8).view(np.bool_)
    out = nio.load_bytes(nio.save_bytes({"b": a}))["b"]._data
    assert out.view(np.uint8).tolist() == [0, 1, 1, 1]


def test_big_tensor_roundtrip_file(tmp_path, rng):
    a = rng.standard_normal((2048, 2048)).astype(np.float32)  # 16 MiB
    b = rng.integers(-9, 9, (3, 1 << 20), dtype=np.int64)  # 24 MiB
    path = tmp_path / "big.safetensors"
    nio.save_file({"a": a, "b": b, "s": np.float64(2.5)}, path, metadata={"k": "v"})
    out = nio.load_file(path)
    assert same_array(out["a"]._data, a) and same_array(out["b"]._data, b)
    assert out["s"].shape == () and out["s"].item() == 2.5
    assert nio.load_metadata(path) == {"k": "v"}
    assert os.path.getsize(path) == 8 + struct.unpack("<Q", open(path, "rb").read(8))[0] + a.nbytes + b.nbytes + 8


def test_unsupported_dtypes_and_values_raise_on_save():
    for bad in (np.array(["a"]), np.array([1 + 2j], np.complex128), np.array([object()]),
                np.zeros(2, np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else np.array(["x"])):
        with pytest.raises(TypeError, match=r"^\[save\]"):
            nio.save_bytes({"x": bad})
    with pytest.raises(TypeError, match=r"^\[save\]"):
        nio.save_bytes({"x": [1, 2, 3]})
    with pytest.raises(TypeError, match=r"^\[save\]"):
        nio.save_bytes({1: np.zeros(1)})
    with pytest.raises(ValueError, match=r"^\[save\] '__metadata__'"):
        nio.save_bytes({"__metadata__": np.zeros(1)})
    with pytest.raises(TypeError, match=r"^\[save\] metadata"):
        nio.save_bytes({"x": np.zeros(1)}, metadata={"a": 1})


# ---------------------------------------------------------------- BF16 / 8-bit floats
KNOWN_F8 = {  # (dtype, byte) -> float32 value
    ("F8_E4M3", 0x38): 1.0, ("F8_E4M3", 0x7E): 448.0, ("F8_E4M3", 0x7F): np.nan, ("F8_E4M3", 0xFF): np.nan,
    ("F8_E4M3", 0x01): 2.0 ** -9, ("F8_E4M3", 0x80): -0.0, ("F8_E4M3", 0xB8): -1.0,
    ("F8_E5M2", 0x3C): 1.0, ("F8_E5M2", 0x7C): np.inf, ("F8_E5M2", 0xFC): -np.inf, ("F8_E5M2", 0x7D): np.nan,
    ("F8_E5M2", 0x01): 2.0 ** -16, ("F8_E5M2", 0x7B): 57344.0,
    ("F8_E8M0", 0x7F): 1.0, ("F8_E8M0", 0x80): 2.0, ("F8_E8M0", 0x00): 2.0 ** -127, ("F8_E8M0", 0xFF): np.nan,
    ("F8_E4M3FNUZ", 0x40): 1.0, ("F8_E4M3FNUZ", 0x80): np.nan, ("F8_E4M3FNUZ", 0x7F): 240.0,
    ("F8_E5M2FNUZ", 0x40): 1.0, ("F8_E5M2FNUZ", 0x80): np.nan, ("F8_E5M2FNUZ", 0x7F): 57344.0,
}


def raw_file(entries, buffer, metadata=None):
    """Safetensors bytes from (name, dtype, shape, begin, end) entries and a raw buffer."""
    hdr = {} if metadata is None else {"__metadata__": metadata}
    for name, dt, shape, b, e in entries:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [b, e]}
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + buffer


def test_small_floats_widen_exactly_without_ml_dtypes(monkeypatch):
    monkeypatch.setattr(_format, "_ml_dtypes", lambda: None)
    for (dt, byte), want in KNOWN_F8.items():
        got = nio.load_bytes(raw_file([("x", dt, [1], 0, 1)], bytes([byte])))["x"]._data
        assert got.dtype == np.float32
        if np.isnan(want):
            assert np.isnan(got[0]), (dt, byte)
        else:
            assert struct.pack("<f", got[0]) == struct.pack("<f", want), (dt, hex(byte), got[0], want)
    bf = np.array([0x3F80, 0xC049, 0x7F80, 0x0001], "<u2")  # 1, -3.140625, inf, smallest subnormal
    got = nio.load_bytes(raw_file([("x", "BF16", [2, 2], 0, 8)], bf.tobytes()))["x"]._data
    assert got.dtype == np.float32 and got.shape == (2, 2)
    assert got.ravel()[:3].tolist() == [1.0, -3.140625, np.inf] and got.ravel()[3] == np.float32(2.0 ** -133)


@needs_ml_dtypes
@pytest.mark.parametrize("name", list(ML_DTYPES))
def test_ml_dtypes_roundtrip_and_fallback_tables_match(name, monkeypatch):
    dt = np.dtype(getattr(ml_dtypes, ML_DTYPES[name]))
    width = dt.itemsize
    raw = np.arange(256 ** width, dtype=f"<u{width}") if width == 1 else np.arange(0, 65536, dtype="<u2")
    a = raw.view(dt).reshape(-1, 16)
    data = nio.save_bytes({"x": a})
    assert json.loads(data[8:].split(b"}}")[0] + b"}}")["x"]["dtype"] == name
    out = nio.load_bytes(data)["x"]._data
    assert out.dtype == dt and out.tobytes() == a.tobytes()
    monkeypatch.setattr(_format, "_ml_dtypes", lambda: None)
    widened = nio.load_bytes(data)["x"]._data
    assert widened.dtype == np.float32
    ref = a.astype(np.float32)
    assert np.array_equal(widened, ref, equal_nan=True)
    assert np.array_equal(np.signbit(widened[~np.isnan(ref)]), np.signbit(ref[~np.isnan(ref)]))


# ---------------------------------------------------------------- exact bytes
def test_exact_bytes_of_a_small_file():
    tensors = {"b": np.array(7, np.int64), "a": np.array([[1.0, -2.0]], np.float32)}
    got = nio.save_bytes(tensors, metadata={"k": "v"})
    header = (b'{"__metadata__":{"k":"v"},'
              b'"b":{"dtype":"I64","shape":[],"data_offsets":[0,8]},'
              b'"a":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]}}')
    assert len(header) == 134  # padded with 2 spaces to 136 = 0x88
    expected = (b"\x88\x00\x00\x00\x00\x00\x00\x00" + header + b"  "
                + b"\x07\x00\x00\x00\x00\x00\x00\x00"  # int64 7, little-endian
                + b"\x00\x00\x80\x3f" + b"\x00\x00\x00\xc0")  # float32 1.0, -2.0
    assert got == expected


def test_exact_bytes_empty_and_padding():
    assert nio.save_bytes({}) == b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "
    got = nio.save_bytes({"x": np.zeros((0, 3), np.uint8)})
    header = b'{"x":{"dtype":"U8","shape":[0,3],"data_offsets":[0,0]}}'
    assert len(header) == 55
    assert got == struct.pack("<Q", 56) + header + b" "
    assert nio.load_bytes(got)["x"].shape == (0, 3)


def test_plain_state_dict_layout():
    model = nnfast.nn.Sequential(nnfast.nn.Linear(3, 2), nnfast.nn.Linear(2, 1))
    data = nio.dumps(model.state_dict())
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8: 8 + n])
    assert list(hdr) == ["__metadata__", "0.weight", "0.bias", "1.weight", "1.bias"]
    assert hdr["__metadata__"] == {"format": "pt"}
    assert hdr["0.weight"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}


# ---------------------------------------------------------------- nested objects
def optimizer_like(rng):
    w = nnfast.from_numpy(rng.standard_normal((4, 3)).astype(np.float32))
    return {
        "model": nnfast.nn.Sequential(nnfast.nn.Linear(3, 4), nnfast.nn.ReLU(), nnfast.nn.Linear(4, 2)).state_dict(),
        "optimizer": {
            "state": {0: {"step": nnfast.tensor(12.0), "exp_avg": w, "exp_avg_sq": w * w, "max": None},
                      1: {"step": 12, "momentum_buffer": nnfast.zeros(4, dtype=nnfast.float64)},
                      7: {}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                              "amsgrad": False, "maximize": False, "foreach": None, "params": [0, 1, 7],
                              "initial_lr": 0.1, "nested": ((1, 2), [3, (4,)], ())}],
        },
        "scheduler": {"last_epoch": 11, "_step_count": 12, "base_lrs": [0.1], "_last_lr": [0.1 * 0.5 ** 3],
                      "verbose": False, "gamma": 0.5, "milestones": {30: 1, 80: 2}},
        "rng": nnfast.get_rng_state(),
        "step": 2 ** 63 + 5, "neg_huge": -(10 ** 500), "max_exact": 2 ** 53, "past_exact": 2 ** 53 + 1,
        "floats": [math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1,
                   1e16, struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\x7f")[0]],
        "keys": {1: "int", -1: "neg", 2 ** 80: "big", 1.5: "float", math.inf: "inf", None: "none",
                 True: "bool", (1, "a", (None,)): "tuple", b"by": "bytes", "s": "str", 3 + 4j: "complex"},
        "misc": {"none": None, "t": True, "f": False, "bytes": b"\x00\xff", "empty": "", "unicode": "héllo ☃ 𝄞",
                 "complex": complex(1.5, -math.inf), "list": [], "tuple": (), "dict": {}, "od": OrderedDict(b=1, a=2)},
        "numpy": {"arr": np.arange(6).reshape(2, 3), "f32": np.float32(1.25), "i8": np.int8(-3), "b": np.bool_(True),
                  "f16": np.float16(np.inf), "u64": np.uint64(2 ** 64 - 1), "empty": np.zeros((0, 5))},
    }


def test_nested_roundtrip_exact(rng, tmp_path):
    obj = optimizer_like(rng)
    out = nio.loads(nio.dumps(obj))
    assert_same(obj, out)
    path = tmp_path / "ckpt.safetensors"
    nnfast.save(obj, path)
    assert_same(obj, nnfast.load(path))
    assert_same(obj, nnfast.load(str(path), map_location="cpu"))
    assert_same(obj, nnfast.load(path, weights_only=True))


def test_entry_names_follow_paths_and_stay_unique(rng):
    t = [nnfast.tensor([float(i)]) for i in range(5)]
    obj = {"a.b": t[0], "a": {"b": t[1]}, "__metadata__": t[2], "l": [t[3], (t[4],)]}
    data = nio.dumps(obj)
    names = list(nio.load_bytes(data))
    assert names == ["a.b", "a.b#1", "__metadata__#1", "l.0", "l.1.0"]
    assert_same(obj, nio.loads(data))


def test_top_level_values_of_every_kind():
    for obj in (None, 3, -2 ** 100, 1.5, math.nan, "s", b"", [], (), {}, [None], nnfast.tensor([1.0, 2.0]),
                np.float64(3.0), np.zeros(3, np.int16), OrderedDict()):
        out = nio.loads(nio.dumps(obj))
        if isinstance(obj, dict) and not obj:
            assert out == obj  # an empty dict is a (plain) empty state dict: loads as an OrderedDict
        else:
            assert_same(obj, out)


def test_parameters_requires_grad_and_shared_tensors_survive():
    lin = nnfast.nn.Linear(3, 2)
    sd = lin.state_dict(keep_vars=True)
    g = nnfast.tensor([1.0, 2.0], requires_grad=True)
    obj = {"sd": sd, "g": g, "again": g, "params": list(lin.parameters()), "ints": nnfast.tensor([1, 2])}
    data = nio.dumps(obj)
    assert sorted(nio.load_bytes(data)) == ["g", "ints", "sd.bias", "sd.weight"]  # shared: stored once
    out = nio.loads(data)
    assert_same(obj, out)
    assert isinstance(out["sd"]["weight"], nnfast.nn.Parameter) and out["sd"]["weight"].requires_grad
    assert out["again"] is out["g"] and out["params"][0] is out["sd"]["weight"]
    assert type(out["ints"]) is nnfast.Tensor and out["g"].is_leaf


def test_keep_vars_state_dict_keeps_plain_entry_names():
    model = nnfast.nn.Sequential(nnfast.nn.Linear(2, 2))
    data = nio.dumps(model.state_dict(keep_vars=True))
    assert list(nio.load_bytes(data)) == ["0.weight", "0.bias"]
    assert "nnfast.structure" in nio.load_metadata(data)


def test_model_state_dict_roundtrip_and_load_state_dict(tmp_path):
    nnfast.manual_seed(0)
    a = nnfast.nn.Sequential(nnfast.nn.Linear(5, 4), nnfast.nn.GELU() if hasattr(nnfast.nn, "GELU")
                             else nnfast.nn.ReLU(), nnfast.nn.Linear(4, 3))
    b = nnfast.nn.Sequential(nnfast.nn.Linear(5, 4), nnfast.nn.ReLU(), nnfast.nn.Linear(4, 3))
    path = tmp_path / "model.safetensors"
    nnfast.save(a.state_dict(), path)
    sd = nnfast.load(path)
    assert type(sd) is OrderedDict and list(sd) == list(a.state_dict())
    assert nio.load_metadata(path) == {"format": "pt"}
    b.load_state_dict(sd)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert same_array(x._data, y._data), k


def test_training_resumes_exactly_from_a_checkpoint(tmp_path):
    adam = getattr(nnfast.optim, "Adam", None)
    sched = getattr(getattr(nnfast.optim, "lr_scheduler", None), "StepLR", None)
    if adam is None or sched is None:
        pytest.skip("nnfast.optim.Adam / lr_scheduler.StepLR not available")

    def setup():
        m = nnfast.nn.Sequential(nnfast.nn.Linear(3, 8), nnfast.nn.ReLU(), nnfast.nn.Linear(8, 2))
        opt = adam(m.parameters(), lr=0.01)
        return m, opt, sched(opt, step_size=2, gamma=0.5)

    def train(m, opt, sc, steps):
        for _ in range(steps):
            opt.zero_grad()
            (m(nnfast.randn(4, 3)) ** 2).mean().backward()
            opt.step()
            sc.step()

    nnfast.manual_seed(1)
    m, opt, sc = setup()
    train(m, opt, sc, 3)
    path = tmp_path / "resume.safetensors"
    nnfast.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "scheduler": sc.state_dict(),
                 "rng": nnfast.get_rng_state(), "epoch": 3}, path)
    train(m, opt, sc, 3)
    nnfast.manual_seed(99)
    m2, opt2, sc2 = setup()
    ck = nnfast.load(path)
    m2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sc2.load_state_dict(ck["scheduler"])
    nnfast.set_rng_state(ck["rng"])
    train(m2, opt2, sc2, 3)
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert same_array(a._data, b._data), k
    assert ck["epoch"] == 3


def test_rng_state_roundtrip_reproduces_draws():
    nnfast.manual_seed(123)
    nnfast.randn(10)
    state = nio.loads(nio.dumps(nnfast.get_rng_state()))
    assert_same(nnfast.get_rng_state(), state)
    first = nnfast.randn(5).numpy().copy()
    nnfast.set_rng_state(state)
    assert np.array_equal(nnfast.randn(5).numpy(), first)
    mt = np.random.Generator(np.random.MT19937(5)).bit_generator.state  # holds a uint32 ndarray
    assert_same(mt, nio.loads(nio.dumps(mt)))


def test_user_metadata_and_reserved_keys(tmp_path):
    path = tmp_path / "m.safetensors"
    nnfast.save({"step": 3}, path, metadata={"author": "me", "format": "x"})
    meta = nio.load_metadata(path)
    assert meta["author"] == "me" and "nnfast.structure" in meta
    assert nnfast.load(path) == {"step": 3}
    with pytest.raises(ValueError, match=r"^\[save\] metadata keys starting with 'nnfast.'"):
        nnfast.save({}, path, metadata={"nnfast.x": "y"})


def test_unicode_keys_including_lone_surrogates():
    obj = {"ключ": nnfast.tensor([1.0]), "\ud800": nnfast.tensor([2.0]), "x": {"\udfff": 1}}
    out = nio.loads(nio.dumps(obj))
    assert_same(obj, out)
    sd = OrderedDict([("ключ.weight", nnfast.tensor([1.0]))])
    data = nio.dumps(sd)
    assert list(nio.load_bytes(data)) == ["ключ.weight"] and "ключ".encode() in data


@pytest.mark.parametrize("bad, exc, msg", [
    (lambda: None, TypeError, r"^\[save\] cannot store a builtins.function at 'f'"),
    ({1, 2}, TypeError, r"^\[save\] cannot store a builtins.set at 'f'"),
    (nnfast.device("cpu"), TypeError, r"^\[save\] cannot store"),
    (np.int64(1).dtype, TypeError, r"^\[save\] cannot store"),
    (np.ma.masked_array([1.0]), TypeError, r"^\[save\] cannot store"),
    (np.array(["s"]), TypeError, r"^\[save\] dtype"),
    (np.str_("s"), TypeError, r"^\[save\] dtype"),
])
def test_unsupported_objects_raise_before_writing(bad, exc, msg, tmp_path):
    path = tmp_path / "c.safetensors"
    nnfast.save({"good": 1}, path)
    before = path.read_bytes()
    with pytest.raises(exc, match=msg):
        nnfast.save({"a": nnfast.zeros(100), "f": bad}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.safetensors"]


def test_unhashable_like_keys_and_cycles_raise():
    with pytest.raises(TypeError, match=r"^\[save\] cannot store a dict key of type Tensor"):
        nio.dumps({nnfast.tensor([1.0]): 1})
    a: list = [1]
    a.append(a)
    with pytest.raises(ValueError, match=r"^\[save\] the object refers to itself"):
        nio.dumps({"a": a})
    d: dict = {}
    d["d"] = d
    with pytest.raises(ValueError, match=r"refers to itself"):
        nio.dumps(d)
    shared = [1, 2]
    assert nio.loads(nio.dumps([shared, shared])) == [[1, 2], [1, 2]]  # repeated, not cyclic


def test_deep_nesting():
    obj: list = []
    cur = obj
    for _ in range(200):
        cur.append([])
        cur = cur[0]
    cur.append(nnfast.tensor([1.0]))
    assert_same(obj, nio.loads(nio.dumps(obj)))
    deep: list = []
    cur = deep
    for _ in range(100000):
        cur.append([])
        cur = cur[0]
    with pytest.raises(ValueError, match=r"^\[save\] the object nests too deeply"):
        nio.dumps(deep)


def test_file_objects():
    buf = _pyio.BytesIO()
    obj = {"a": nnfast.tensor([1.0, 2.0]), "n": 3}
    nnfast.save(obj, buf)
    buf.seek(0)
    assert_same(obj, nnfast.load(buf))
    assert buf.getvalue() == nio.dumps(obj)


def test_plain_file_written_by_others_loads_as_ordered_dict():
    data = raw_file([("z", "F32", [1], 0, 4), ("a", "I8", [2], 4, 6)], b"\x00\x00\x80\x3f\x01\xff")
    out = nnfast.load(_pyio.BytesIO(data))
    assert type(out) is OrderedDict and list(out) == ["z", "a"]
    assert out["z"].tolist() == [1.0] and out["a"].tolist() == [1, -1]
    # offsets need not follow header order; metadata may be null
    data = raw_file([("z", "U8", [1], 1, 2), ("a", "U8", [1], 0, 1)], b"\x05\x06", metadata=None)
    assert {k: v.tolist() for k, v in nio.load_bytes(data).items()} == {"z": [6], "a": [5]}
    h = b'{"__metadata__":null,"x":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}\n\t\r '
    assert nio.load_bytes(struct.pack("<Q", len(h)) + h + b"\x09")["x"].item() == 9


# ---------------------------------------------------------------- safetensors / PyTorch as oracles
@needs_safetensors
def test_safetensors_reads_our_files(tmp_path, rng):
    tensors = {name: sample(dt, (2, 3), rng) for name, dt in NUMPY_DTYPES.items()}
    tensors["empty"] = np.zeros((0, 4), np.float32)
    tensors["scalar"] = np.array(3.5)
    path = tmp_path / "ours.safetensors"
    nio.save_file(tensors, path, metadata={"a": "b"})
    theirs = stnp.load_file(str(path))
    assert set(theirs) == set(tensors)
    for k, v in tensors.items():
        assert same_array(theirs[k], v), k
    with safetensors.safe_open(str(path), "np") as f:
        assert f.metadata() == {"a": "b"}
    nested = optimizer_like(rng)
    flat = stnp.load(nio.dumps(nested))
    assert "optimizer.state.0.exp_avg" in flat and "model.0.weight" in flat


@needs_safetensors
def test_we_read_safetensors_files(tmp_path, rng):
    tensors = {name: sample(dt, shape, rng)
               for name, dt in NUMPY_DTYPES.items() for shape in [(3, 2)]}
    tensors.update({"zero": np.zeros((2, 0)), "scalar": np.array(7, np.int16), "big": rng.standard_normal(100_000)})
    path = tmp_path / "theirs.safetensors"
    stnp.save_file(tensors, str(path), metadata={"format": "np", "x": "y"})
    out = nio.load_file(path)
    assert set(out) == set(tensors)
    for k, v in tensors.items():
        assert same_array(out[k]._data, v), k
    assert nio.load_metadata(path) == {"format": "np", "x": "y"}
    loaded = nnfast.load(path)
    assert type(loaded) is OrderedDict and set(loaded) == set(tensors)


@needs_safetensors
def test_byte_identical_to_safetensors_in_its_order(rng):
    # The reference orders tensors by dtype (widest first), then name; given that order we match it.
    tensors = {"single": np.arange(6, dtype=np.float32).reshape(2, 3)}
    assert nio.save_bytes(tensors) == stnp.save(tensors)
    assert nio.save_bytes(tensors, {"k": "v"}) == stnp.save(tensors, {"k": "v"})
    ordered = {"c": np.arange(3, dtype=np.int64), "a": np.ones(2, np.float32), "b": np.ones(5, np.float32),
               "d": np.ones(3, np.float16), "e": np.array([True, False])}
    assert nio.save_bytes(ordered) == stnp.save(ordered)


@needs_safetensors
@needs_ml_dtypes
def test_safetensors_agrees_on_ml_dtypes():
    a = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)
    b = np.arange(0, 65536, 7, dtype=np.uint16).view(ml_dtypes.bfloat16)
    data = nio.save_bytes({"a": a, "b": b})
    raw = dict(safetensors.deserialize(data))
    assert raw["a"]["dtype"] == "F8_E4M3" and bytes(raw["a"]["data"]) == a.tobytes()
    assert raw["b"]["dtype"] == "BF16" and bytes(raw["b"]["data"]) == b.tobytes()


def test_pytorch_loads_our_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    nnfast.manual_seed(0)
    model = nnfast.nn.Sequential(nnfast.nn.Linear(4, 3), nnfast.nn.ReLU(), nnfast.nn.Linear(3, 2))
    path = tmp_path / "m.safetensors"
    nnfast.save(model.state_dict(), path)
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    tmodel.load_state_dict(st_torch.load_file(str(path)))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    with nnfast.no_grad():
        ours = model(nnfast.from_numpy(x)).numpy()
    theirs = tmodel(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    st_torch.save_file({k: v.contiguous() for k, v in tmodel.state_dict().items()}, str(tmp_path / "t.safetensors"))
    model.load_state_dict(nnfast.load(tmp_path / "t.safetensors"))


# ---------------------------------------------------------------- malformed files
GOOD = raw_file([("a", "F32", [2], 0, 8), ("b", "U8", [3], 8, 11)], b"\x00" * 11)


def hdr(h, buffer=b"", n=None, pad=True):
    """File bytes with header ``h`` (object -> compact JSON, or raw bytes)."""
    raw = h if isinstance(h, bytes) else json.dumps(h, separators=(",", ":")).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if n is None else n) + raw + buffer


def entry(dt="F32", shape=(2,), offs=(0, 8)):
    return {"dtype": dt, "shape": list(shape), "data_offsets": list(offs)}


DEEP = b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}"
MALFORMED = {
    "empty file": (b"", "shorter than the 8-byte header length"),
    "7 bytes": (b"\x08\x00\x00\x00\x00\x00\x00", "shorter than the 8-byte header length"),
    "absurd header length": (struct.pack("<Q", 2 ** 63) + b"{}", "larger than the limit"),
    "header length just over limit": (struct.pack("<Q", 100_000_001) + b"{}", "larger than the limit"),
    "header past end": (struct.pack("<Q", 64) + b"{}      ", "runs past the end of the file"),
    "zero header length": (struct.pack("<Q", 0), "does not start with '{'"),
    "header is a list": (hdr(b"[]"), "does not start with '{'"),
    "leading space": (hdr(b' {"a":1}'), "does not start with '{'"),
    "not utf-8": (hdr(b'{"\xff\xfe":1}'), "not valid UTF-8"),
    "truncated utf-8": (hdr(b'{"\xe2\x98":1}'), "not valid UTF-8"),
    "lone surrogate escape": (hdr(b'{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
                              "lone surrogate"),
    "not json": (hdr(b'{"a":'), "not valid JSON"),
    "single quotes": (hdr(b"{'a':1}"), "not valid JSON"),
    "NaN literal": (hdr(b'{"a":NaN}'), "NaN"),
    "Infinity literal": (hdr(b'{"a":{"dtype":"F32","shape":[-Infinity],"data_offsets":[0,0]}}'), "Infinity"),
    "trailing garbage": (hdr(b"{} x"), "data after the JSON"),
    "two objects": (hdr(b"{}{}"), "data after the JSON"),
    "nul padding": (hdr(b"{}\x00\x00"), "data after the JSON"),
    "control char in string": (hdr(b'{"a\x01":1}'), "not valid JSON"),
    "too deep": (hdr(DEEP), "nests too deeply"),
    "huge integer literal": (hdr(b'{"a":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,0]}}'),
                             "not valid JSON"),
    "entry is a number": (hdr({"a": 1}), "entry is a int, expected an object"),
    "entry is a list": (hdr({"a": [1, 2]}), "entry is a list"),
    "entry is null": (hdr({"a": None}), "entry is a NoneType"),
    "missing dtype": (hdr({"a": {"shape": [0], "data_offsets": [0, 0]}}), "lacks dtype"),
    "missing shape": (hdr({"a": {"dtype": "F32", "data_offsets": [0, 0]}}), "lacks shape"),
    "missing offsets": (hdr({"a": {"dtype": "F32", "shape": [0]}}), "lacks data_offsets"),
    "unknown field": (hdr({"a": {**entry(offs=(0, 8)), "byteorder": "big"}}, b"\0" * 8), "unknown fields"),
    "dtype not str": (hdr({"a": entry(dt=4)}, b"\0" * 8), "dtype is a int"),
    "unknown dtype": (hdr({"a": entry(dt="F128")}, b"\0" * 8), "unknown dtype 'F128'"),
    "lowercase dtype": (hdr({"a": entry(dt="f32")}, b"\0" * 8), "unknown dtype"),
    "sub-byte dtype": (hdr({"a": entry(dt="F4")}, b"\0" * 8), "sub-byte"),
    "shape not list": (hdr({"a": {**entry(), "shape": 2}}, b"\0" * 8), "shape must be a list"),
    "shape negative": (hdr({"a": entry(shape=(-2,))}, b"\0" * 8), "shape must be a list"),
    "shape float": (hdr({"a": entry(shape=(2.0,))}, b"\0" * 8), "shape must be a list"),
    "shape bool": (hdr({"a": entry(shape=(True, 2))}, b"\0" * 8), "shape must be a list"),
    "shape string": (hdr({"a": entry(shape=("2",))}, b"\0" * 8), "shape must be a list"),
    "shape too many dims": (hdr({"a": entry(shape=(1,) * 65, offs=(0, 4))}, b"\0" * 4), "more than 64"),
    "element count overflow": (hdr({"a": entry(shape=(2 ** 62, 2 ** 62, 16), offs=(0, 0))}), "needs"),
    "zero-size but huge dims": (hdr({"a": entry(shape=(0, 2 ** 62, 2 ** 62), offs=(0, 0))}), "too large"),
    "zero-size dim beyond int64": (hdr({"a": entry(shape=(0, 2 ** 64), offs=(0, 0))}), "too large"),
    "byte size disagrees": (hdr({"a": entry(shape=(3,), offs=(0, 8))}, b"\0" * 8), "needs 12 bytes"),
    "offsets not list": (hdr({"a": {**entry(), "data_offsets": "0-8"}}, b"\0" * 8), "data_offsets must be"),
    "offsets three": (hdr({"a": entry(offs=(0, 8, 8))}, b"\0" * 8), "data_offsets must be"),
    "offsets one": (hdr({"a": entry(offs=(8,))}, b"\0" * 8), "data_offsets must be"),
    "offsets negative": (hdr({"a": entry(offs=(-8, 0))}, b"\0" * 8), "data_offsets must be"),
    "offsets float": (hdr({"a": entry(offs=(0, 8.0))}, b"\0" * 8), "data_offsets must be"),
    "offsets reversed": (hdr({"a": entry(offs=(8, 0))}, b"\0" * 8), "end before they begin"),
    "offsets past buffer": (hdr({"a": entry(offs=(0, 8))}, b"\0" * 4), "run past the data buffer"),
    "offsets far past buffer": (hdr({"a": entry(shape=(2 ** 40,), offs=(0, 2 ** 42))}, b"\0" * 4),
                                "run past the data buffer"),
    "not starting at 0": (hdr({"a": entry(offs=(4, 12))}, b"\0" * 12), "leave a hole at byte 0"),
    "hole": (hdr({"a": entry(offs=(0, 8)), "b": entry(offs=(12, 20))}, b"\0" * 20), "leave a hole at byte 8"),
    "overlap": (hdr({"a": entry(offs=(0, 8)), "b": entry(offs=(4, 12))}, b"\0" * 12), "overlap"),
    "same range twice": (hdr({"a": entry(offs=(0, 8)), "b": entry(offs=(0, 8))}, b"\0" * 8), "overlap"),
    "empty tensor inside another": (hdr({"a": entry(offs=(0, 8)), "b": entry(shape=(0,), offs=(4, 4))},
                                        b"\0" * 8), "overlap"),
    "trailing bytes": (hdr({"a": entry(offs=(0, 8))}, b"\0" * 9), "trailing bytes"),
    "trailing bytes no tensors": (hdr({}, b"\0"), "trailing bytes"),
    "duplicate tensor": (hdr(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                             b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\0\0"), "key 'a' twice"),
    "duplicate field": (hdr(b'{"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
                        "key 'dtype' twice"),
    "duplicate metadata key": (hdr(b'{"__metadata__":{"k":"1","k":"2"}}'), "key 'k' twice"),
    "metadata not object": (hdr({"__metadata__": ["a"]}), "__metadata__ is a list"),
    "metadata string": (hdr({"__metadata__": "a"}), "__metadata__ is a str"),
    "metadata value int": (hdr({"__metadata__": {"a": 1}}), "__metadata__['a'] is a int"),
    "metadata value null": (hdr({"__metadata__": {"a": None}}), "expected a string"),
    "metadata value object": (hdr({"__metadata__": {"a": {}}}), "expected a string"),
    "bool byte 2": (hdr({"a": entry(dt="BOOL", shape=(2,), offs=(0, 2))}, b"\x01\x02"), "BOOL data"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_raises_load_error(case, tmp_path):
    data, msg = MALFORMED[case]
    with pytest.raises(ValueError) as info:
        nio.load_bytes(data)
    assert str(info.value).startswith("[load] ") and msg in str(info.value), str(info.value)
    assert isinstance(info.value, nio.CheckpointError)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    header_only = [nio.load_metadata] if case != "bool byte 2" else []  # BOOL bytes are data, not header
    for fn in [nio.load_file, nnfast.load] + header_only:
        with pytest.raises(ValueError) as info:
            fn(path)
        assert str(info.value).startswith("[load] ") and msg in str(info.value), str(info.value)


def test_malformed_never_allocates_what_the_header_claims(tmp_path):
    cases = [hdr({"a": entry(shape=(2 ** 30,), offs=(0, 2 ** 32))}, b"\0" * 64),
             struct.pack("<Q", 99_999_999) + b"{" + b" " * 64,
             hdr({"a": entry(dt="F64", shape=(2 ** 27,), offs=(0, 2 ** 30)), "b": entry(offs=(2 ** 30, 2 ** 30 + 8))},
                 b"\0" * 16)]
    for i, data in enumerate(cases):
        path = tmp_path / f"{i}.safetensors"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            for fn, arg in ((nio.load_bytes, data), (nio.load_file, path)):
                with pytest.raises(ValueError, match=r"^\[load\]"):
                    fn(arg)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, peak


def good_structured():
    return nio.dumps({"t": nnfast.tensor([1.0, 2.0]), "s": np.float32(1.0), "k": {1: 2}})


def with_structure(text, base=None):
    """Re-encode ``base`` (a structured file) with a replaced nnfast.structure string."""
    base = base or good_structured()
    n = struct.unpack("<Q", base[:8])[0]
    h = json.loads(base[8: 8 + n])
    h["__metadata__"]["nnfast.structure"] = text
    return hdr(h, base[8 + n:])


def S(root, version=1):
    return json.dumps({"version": version, "root": root}, separators=(",", ":"))


OK_ROOT = {"dict": [["t", {"tensor": "t"}], ["s", {"numpy": "s"}], ["k", {"dict": [[1, 2]]}]]}
BAD_STRUCTURES = {
    "not json": ("{", "nnfast.structure is not valid JSON"),
    "nan": ('{"version":1,"root":NaN}', "NaN"),
    "duplicate key": ('{"version":1,"version":1,"root":null}', "twice"),
    "not an object": ("[1]", "must be an object"),
    "extra top-level key": ('{"version":1,"root":null,"x":1}', "must be an object"),
    "version 2": (S(OK_ROOT, 2), "version 2 is not supported"),
    "version true": (S(OK_ROOT, True), "is not supported"),
    "unknown tag": (S({"set": []}), "no known tag"),
    "two tags": (S({"tuple": [], "dict": []}), "unknown fields"),
    "bad int": (S({"int": "12"}), "hex string"),
    "int not str": (S({"int": 12}), "hex string"),
    "bad f64": (S({"f64": "7ff8"}), "16 hex digits"),
    "bad bytes": (S({"bytes": "abc"}), "hex string"),
    "complex of ints": (S({"complex": [1, 2]}), "must be floats"),
    "complex arity": (S({"complex": [1.0]}), "[real, imag]"),
    "tuple of dict": (S({"tuple": {}}), "must hold a list"),
    "dict not pairs": (S({"dict": [[1]]}), "[key, value] pair"),
    "dict not list": (S({"dict": {"a": 1}}), "list of [key, value]"),
    "dict list key": (S({"dict": [[[1], 2]]}), "plain hashable"),
    "dict tensor key": (S({"dict": [[{"tensor": "t"}, 2]]}), "plain hashable"),
    "dict duplicate key": (S({"dict": [[1, 2], [1.0, 3]]}), "twice"),
    "missing tensor": (S({"tensor": "nope"}), "which the file lacks"),
    "tensor name not str": (S({"tensor": 3}), "must name a tensor entry"),
    "unreferenced tensor": (S({"dict": [["t", {"tensor": "t"}]]}), "'s' is not referenced"),
    "numpy not 0-d": (S({"dict": [["t", {"numpy": "t"}], ["s", {"numpy": "s"}]]}), "expected ()"),
    "flag not bool": (S({"dict": [["t", {"tensor": "t", "requires_grad": 1}], ["s", {"numpy": "s"}]]}), "booleans"),
    "unknown flag": (S({"dict": [["t", {"tensor": "t", "x": True}], ["s", {"numpy": "s"}]]}), "unknown fields"),
    "mixed kinds": (S([{"tensor": "t"}, {"ndarray": "t"}, {"numpy": "s"}]), "different kinds"),
    "too deep": ('{"version":1,"root":' + "[" * 5000 + "]" * 5000 + "}", "nests too deeply"),
}


@pytest.mark.parametrize("case", list(BAD_STRUCTURES))
def test_malformed_structure_raises_load_error(case):
    text, msg = BAD_STRUCTURES[case]
    with pytest.raises(ValueError) as info:
        nio.loads(with_structure(text))
    assert str(info.value).startswith("[load] ") and msg in str(info.value), str(info.value)
    nio.load_bytes(with_structure(text))  # the flat view ignores the structure


def test_structure_edits_that_stay_valid():
    out = nio.loads(with_structure(S(OK_ROOT)))
    assert list(out) == ["t", "s", "k"]
    out = nio.loads(with_structure(S([{"tensor": "t"}, {"tensor": "t"}, {"numpy": "s"}, {"numpy": "s"}])))
    assert out[0] is out[1] and out[2] == out[3] == np.float32(1.0)


def test_requires_grad_on_integer_entry_is_rejected():
    base = nio.dumps({"t": nnfast.tensor([1, 2])})
    with pytest.raises(ValueError, match=r"^\[load\] tensor 't' requires grad but has dtype int64"):
        nio.loads(with_structure(S({"dict": [["t", {"tensor": "t", "requires_grad": True}]]}), base))


# ---------------------------------------------------------------- atomic, durable writes
def temps(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(_atomic.SUFFIX))


def test_save_failure_midway_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    good = {"w": nnfast.tensor(np.arange(1000, dtype=np.float32)), "step": 1}
    nnfast.save(good, path)
    before = path.read_bytes()

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space left"):
        nnfast.save({"w": nnfast.zeros(10 ** 6), "step": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and temps(tmp_path) == []

    def chunks():
        yield b"partial data"
        raise RuntimeError("serializer died")

    with pytest.raises(RuntimeError, match="serializer died"):
        _atomic.atomic_write(path, chunks())
    assert path.read_bytes() == before and temps(tmp_path) == []
    with pytest.raises(TypeError, match=r"^\[save\]"):
        nnfast.save({"w": nnfast.zeros(10), "bad": object()}, path)
    assert_same(nnfast.load(path), good)
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_save_keeps_mode_symlinks_and_cleans_up(tmp_path):
    path = tmp_path / "a.safetensors"
    nnfast.save({"x": 1}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(path).st_mode & 0o777) == 0o666 & ~umask
    os.chmod(path, 0o640)
    nnfast.save({"x": 2}, path)
    assert (os.stat(path).st_mode & 0o777) == 0o640 and nnfast.load(path) == {"x": 2}
    link = tmp_path / "latest.safetensors"
    link.symlink_to(path.name)
    nnfast.save({"x": 3}, link)
    assert link.is_symlink() and nnfast.load(path) == {"x": 3}
    assert sorted(os.listdir(tmp_path)) == ["a.safetensors", "latest.safetensors"]


@pytest.mark.skipif(os.name != "posix", reason="posix process ids")
def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    path = tmp_path / "c.safetensors"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    prefix = f".c.safetensors.{_atomic._HOST}"
    stale = f"{prefix}.{dead.pid}.0badc0de{_atomic.SUFFIX}"
    live = f"{prefix}.{os.getpid()}.0badc0de{_atomic.SUFFIX}"
    other_host = f".c.safetensors.00000000.{dead.pid}.0badc0de{_atomic.SUFFIX}"
    other_target = f".d.safetensors.{_atomic._HOST}.{dead.pid}.0badc0de{_atomic.SUFFIX}"
    for n in (stale, live, other_host, other_target):
        (tmp_path / n).write_bytes(b"junk")
    nnfast.save({"x": 1}, path)
    assert stale not in os.listdir(tmp_path)
    assert {live, other_host, other_target} <= set(os.listdir(tmp_path))


CHILD = r"""
import sys
import numpy as np
import nnfast
path, n = sys.argv[1], int(sys.argv[2])
i = 0
while True:
    i += 1
    nnfast.save({"step": i, "w": nnfast.from_numpy(np.full(n, i, dtype=np.float32)), "tag": "x" * i}, path)
"""


def check_consistent(path, n):
    obj = nnfast.load(path)
    step = obj["step"]
    assert obj["w"].shape == (n,) and bool((obj["w"].numpy() == step).all())
    assert obj["tag"] == "x" * step
    return step


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_save_leaves_previous_checkpoint_intact(tmp_path):
    n = 8 << 20  # 32 MiB of float32 per save
    path = tmp_path / "ckpt.safetensors"
    nnfast.save({"step": 0, "w": nnfast.from_numpy(np.zeros(n, np.float32)), "tag": ""}, path)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(nnfast.__file__))]
                                        + env.get("PYTHONPATH", "").split(os.pathsep))
    if env.get("NNFAST_EXT_DIR"):
        env["NNFAST_EXT_DIR"] = os.path.abspath(env["NNFAST_EXT_DIR"])
    killed_mid_write = 0
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(n)], env=env)
        try:
            deadline = time.monotonic() + 60
            # Let the child finish a save or two; a reader meanwhile always sees a whole file.
            while time.monotonic() < deadline and proc.poll() is None:
                if check_consistent(path, n) >= 1 + attempt % 2:
                    break
            # Then kill it while a temporary file holds part of the next one.
            while time.monotonic() < deadline and proc.poll() is None:
                t = temps(tmp_path)
                try:
                    if t and os.stat(tmp_path / t[0]).st_size > 0:
                        os.kill(proc.pid, signal.SIGKILL)
                        break
                except FileNotFoundError:  # renamed just now
                    pass
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        step = check_consistent(path, n)
        visible = [x for x in os.listdir(tmp_path) if x.startswith("ckpt")]
        assert visible == ["ckpt.safetensors"]
        left = temps(tmp_path)
        if left:
            killed_mid_write += 1
            assert all(x.startswith(".ckpt.safetensors.") for x in left)
        # the next save (the resumed run) removes the dead writer's temporary
        nnfast.save({"step": step, "w": nnfast.load(path)["w"], "tag": "x" * step}, path)
        assert temps(tmp_path) == []
        check_consistent(path, n)
        if killed_mid_write >= 2:
            break
    assert killed_mid_write >= 1, "never managed to kill the child in the middle of a write"


# ---------------------------------------------------------------- devices
def test_load_device_argument(tmp_path):
    path = tmp_path / "d.safetensors"
    obj = {"w": nnfast.tensor([1.0, 2.0]), "n": np.ones(2)}
    nnfast.save(obj, path)
    out = nnfast.load(path, device=nnfast.device("cpu"))
    assert out["w"].device == "cpu"
    if not nnfast.cuda.is_available():
        pytest.skip("no cuda device")
    out = nnfast.load(path, device="cuda")
    assert out["w"].is_cuda and out["w"].tolist() == [1.0, 2.0]
    assert isinstance(out["n"], np.ndarray)  # plain arrays stay NumPy
    flat = nio.load_file(path, device="cuda")
    assert all(t.is_cuda for t in flat.values())
    nnfast.save(out, tmp_path / "from_gpu.safetensors")
    assert_same(nnfast.load(tmp_path / "from_gpu.safetensors"), nnfast.load(path))


# ---------------------------------------------------------------- PyTorch-style checkpoints (issue 13)
def _small_run_setup(adam, multistep):
    m = nnfast.nn.Sequential(nnfast.nn.Linear(4, 8), nnfast.nn.ReLU(), nnfast.nn.Dropout(0.2), nnfast.nn.Linear(8, 3))
    opt = adam(m.parameters(), lr=0.02, weight_decay=0.01)
    return m, opt, multistep(opt, milestones=[2, 4], gamma=0.5)


def test_pytorch_style_checkpoint_keeps_every_type(tmp_path):
    m, opt, sc = _small_run_setup(nnfast.optim.Adam, nnfast.optim.lr_scheduler.MultiStepLR)
    (m(nnfast.randn(5, 4)) ** 2).mean().backward()
    opt.step()
    sc.step()
    ck = {"model": m.state_dict(), "optimizer": opt.state_dict(), "scheduler": sc.state_dict(), "epoch": 3,
          "loss": 0.25, "best": None, "improved": True, "history": [1.5, 0.75, 0.25], "lr_steps": (2, 4),
          "args": {"lr": 0.02, "name": "run-1", "layers": [4, 8, 3], "flags": (False, True)},
          "loss_tensor": nnfast.tensor(0.25)}
    path = tmp_path / "ckpt.pt"  # any name: the file is safetensors whatever its suffix
    nnfast.save(ck, path)
    out = nnfast.load(path, map_location="cpu", weights_only=True)
    assert_same(ck, out)
    assert type(out["optimizer"]["state"]) is dict and all(type(k) is int for k in out["optimizer"]["state"])
    assert type(out["scheduler"]["milestones"]) is collections.Counter
    assert out["optimizer"]["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert type(out["epoch"]) is int and type(out["loss"]) is float and type(out["improved"]) is bool


def test_every_optimizer_and_scheduler_state_roundtrips():
    import inspect

    O, L = nnfast.optim, nnfast.optim.lr_scheduler
    m = nnfast.nn.Linear(3, 2)
    for name, cls in inspect.getmembers(O, inspect.isclass):
        if not issubclass(cls, O.Optimizer) or cls is O.Optimizer:
            continue
        opt = cls(m.parameters(), lr=0.01)
        x = nnfast.randn(4, 3)

        def closure():
            opt.zero_grad()
            loss = m(x).pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)  # every optimizer takes a closure; LBFGS needs one
        sd = opt.state_dict()
        back = nio.loads(nio.dumps(sd))
        assert_same(sd, back, name)
        cls(m.parameters(), lr=0.01).load_state_dict(back)
    scheds = {"StepLR": dict(step_size=2), "MultiStepLR": dict(milestones=[1, 3]), "ExponentialLR": dict(gamma=0.9),
              "CosineAnnealingLR": dict(T_max=5), "LinearLR": {}, "OneCycleLR": dict(max_lr=0.1, total_steps=10),
              "LambdaLR": dict(lr_lambda=lambda e: 0.9 ** e), "ReduceLROnPlateau": {}}
    for name, kw in scheds.items():
        if not hasattr(L, name):
            continue
        opt = O.SGD(m.parameters(), lr=0.01, momentum=0.9)
        sc = getattr(L, name)(opt, **kw)
        opt.step()
        sc.step(1.0) if name == "ReduceLROnPlateau" else sc.step()
        sd = sc.state_dict()
        back = nio.loads(nio.dumps(sd))
        assert_same(sd, back, name)
        sc.load_state_dict(back)


def test_training_with_a_shuffled_loader_resumes_bit_identically(tmp_path):
    from nnfast.utils.data import DataLoader, TensorDataset

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    loss_fn = nnfast.nn.CrossEntropyLoss()

    def epoch(m, opt, sc, loader):
        losses = []
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(m(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sc.step()
        return losses

    def fresh(seed):
        nnfast.manual_seed(seed)
        m, opt, sc = _small_run_setup(nnfast.optim.AdamW, nnfast.optim.lr_scheduler.MultiStepLR)
        return m, opt, sc, DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True, num_workers=2)

    m, opt, sc, loader = fresh(5)
    first = epoch(m, opt, sc, loader)
    path = tmp_path / "resume.safetensors"
    nnfast.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "scheduler": sc.state_dict(),
                 "epoch": 1, "losses": first, "rng": nnfast.get_rng_state()}, path)
    want = [epoch(m, opt, sc, loader) for _ in range(3)]

    m2, opt2, sc2, loader2 = fresh(77)  # different init and rng: everything must come from the file
    ck = nnfast.load(path)
    m2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sc2.load_state_dict(ck["scheduler"])
    nnfast.set_rng_state(ck["rng"])
    assert ck["epoch"] == 1 and ck["losses"] == first
    got = [epoch(m2, opt2, sc2, loader2) for _ in range(3)]
    assert got == want  # the same floats, bit for bit
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert same_array(a._data, b._data), k
    assert_same(opt.state_dict(), opt2.state_dict())


@pytest.mark.parametrize("make, where, hint", [
    (lambda: nnfast.nn.Linear(2, 2), r"got a nnfast\.nn\..*Linear", r"save model\.state_dict\(\) instead"),
    (lambda: nnfast.optim.SGD(nnfast.nn.Linear(2, 2).parameters(), lr=0.1), r"got a nnfast\.optim\..*SGD",
     r"save its state_dict\(\) instead"),
    (lambda: object(), r"got a builtins\.object", r"save model\.state_dict\(\)"),
])
def test_saving_objects_names_the_state_dict_instead(make, where, hint, tmp_path):
    path = tmp_path / "x.pt"
    top = r"^\[save\] expected a state_dict, a tensor, or nested .*"
    with pytest.raises(TypeError, match=top + where + ".*" + hint):
        nnfast.save(make(), path)
    with pytest.raises(TypeError, match=r"^\[save\] cannot store a .* at 'model': expected a state_dict.*" + hint):
        nnfast.save({"model": make()}, path)
    assert not path.exists()


def test_map_location_forms(tmp_path):
    path = tmp_path / "m.safetensors"
    obj = {"w": nnfast.tensor([1.0, 2.0]), "p": nnfast.nn.Parameter(nnfast.ones(2)), "n": 3}
    nnfast.save(obj, path)
    seen = []

    def keep(storage, loc):
        seen.append(loc)
        return storage

    for loc in ("cpu", nnfast.device("cpu"), {"cuda:0": "cpu"}, keep, None):
        out = nnfast.load(path, map_location=loc)
        assert_same(obj, out)
    assert seen == ["cpu", "cpu"]
    with pytest.raises(TypeError, match=r"^\[load\] expected map_location to return a Tensor"):
        nnfast.load(path, map_location=lambda s, loc: 1)
    nnfast.load(path, "cpu", None, weights_only=False, mmap=True)  # PyTorch's options are accepted


def test_files_written_by_torch_save_get_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch")
    for kw in ({}, {"_use_new_zipfile_serialization": False}):
        path = tmp_path / "t.pt"
        torch.save({"w": torch.zeros(2)}, path, **kw)
        with pytest.raises(nio.CheckpointError, match=r"^\[load\] the file is a (zip archive|pickle).*never unpickles"):
            nnfast.load(path)


def test_save_accepts_pytorch_pickle_options(tmp_path):
    import pickle

    path = tmp_path / "o.pt"
    nnfast.save({"a": 1}, path, pickle, 2, _use_new_zipfile_serialization=True)
    assert nnfast.load(path) == {"a": 1}
