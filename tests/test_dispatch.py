"""The dispatch table (python/nnfast/_dispatch.py): complete, consistent with the kernel module
and the README, the one place that routes by device and raises for a missing kernel, and the
allocator of optimizer state on the parameter's device.

A "cuda" array is simulated (this build has no GPU): an ndarray subclass whose type the
dispatch routes to cuda, either because it claims to come from CuPy or through
``register_array_type``.
"""
from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F
from nnfast import _dispatch as D
from nnfast._native import _C
from nnfast.cli import main as cli_main

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "python" / "nnfast"

OPTIMIZERS = [
    (nnfast.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (nnfast.optim.Adam, dict(amsgrad=True)),
    (nnfast.optim.AdamW, {}),
    (nnfast.optim.Adagrad, {}),
    (nnfast.optim.RMSprop, dict(momentum=0.9, centered=True)),
    (nnfast.optim.Lion, {}),
    (nnfast.optim.LAMB, {}),
    (nnfast.optim.AdaBound, dict(amsbound=True)),
]


class CupyLike(np.ndarray):
    """Taken for a CuPy array by its module name, as a real one would be."""


CupyLike.__module__ = "cupy._simulated"


class Routed(np.ndarray):
    """A plain ndarray subclass that a test routes to a device with register_array_type."""


@pytest.fixture
def no_cuda_kernels(monkeypatch):
    """The cuda column as in a build without nnfast._C_cuda (this build may have some families)."""
    monkeypatch.setitem(D._KERNELS, "cuda", {})


def cuda_array(shape=(4, 8)):
    return np.ones(shape, np.float32).view(CupyLike)


# ------------------------------------------------------------------ the table itself
def test_readme_table_is_generated_from_the_dispatch_table():
    if D._BACKENDS["cuda"] is None:
        pytest.skip("the README's cuda column is generated from a build with nnfast._C_cuda (EMULATE or nvcc)")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert D.README_BEGIN in text and D.README_END in text, "README.md lacks the ops-table markers"
    assert D.readme_with_table(text) == text, (
        "README.md's ops table differs from the dispatch table; run `nnfast ops --write README.md`")


def test_every_registered_kernel_exists_in_the_kernel_module():
    for op, entry in D._TABLE.items():
        assert entry.cpu, f"{op}: no cpu kernels"
        assert entry.family in D._FAMILY_ORDER, f"{op}: unknown family {entry.family!r}"
        for device in D.DEVICES:
            names = getattr(entry, device)
            assert len(set(names)) == len(names), f"{op}: a kernel listed twice on {device}"
            module = D._BACKENDS[device]
            if names:
                assert module is not None, f"{op}: {device} kernels registered but no {device} module"
            for n in names:
                assert callable(getattr(module, n, None)), f"{op}: {device} kernel {n} missing from {module}"


def test_kernel_sets_hold_exactly_the_registered_kernels():
    for op, entry in D._TABLE.items():
        K = D.kernels(op, np.ones(2))
        assert K.names() == sorted(set(entry.cpu))
        for n in entry.cpu:
            assert getattr(K, n) is getattr(_C, n)
        assert K is D.kernels(op), "kernel sets are built once, at import"
    K = D.kernels("layer_norm", np.ones(2))
    with pytest.raises(AttributeError, match=r"^\[layer_norm\] kernel 'gemm' is not registered"):
        K.gemm
    with pytest.raises(AttributeError):
        K.gemm = _C.gemm


def test_cuda_column_is_empty_in_this_build():
    assert D.ops("cuda") == [] or D._BACKENDS["cuda"] is not None
    assert D.ops("cpu") == D.ops()


def test_every_op_name_used_in_the_package_is_registered():
    """Op names given to ``kernels`` as literals, and the optimizers' ``_op``, are in the table."""
    used = set()
    for path in PKG.rglob("*.py"):
        if path.name == "_dispatch.py" or "bench" in path.parts:
            continue
        src = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'kernels\(\s*"(\w+)"', src))
        used |= set(re.findall(r'kernels\("\w+" if [^)]*? else "(\w+)"', src))
        used |= set(re.findall(r'kernels\("(\w+)" if ', src))
        used |= set(re.findall(r'^\s*_op = "(\w+)"', src, re.M))
    assert len(used) > 20
    assert used - set(D._TABLE) == set()
    for cls, _ in OPTIMIZERS:
        assert cls._op in D._TABLE, cls


def test_no_direct_kernel_calls_outside_the_table():
    """Layers, losses and optimizers reach ``_C`` only through the dispatch table."""
    # _act_codes reads the activation enum (constants, not kernels) exported by _C.
    allowed = {"_dispatch.py", "_native.py", "_info.py", "__init__.py", "_act_codes.py"}
    for path in PKG.rglob("*.py"):
        if path.name in allowed or "bench" in path.parts:
            continue
        src = path.read_text(encoding="utf-8")
        assert not re.search(r"\b_C\.\w+\(", src), f"{path.relative_to(ROOT)} calls _C directly"
        assert "import _C" not in src, f"{path.relative_to(ROOT)} imports _C"


# ------------------------------------------------------------------ routing by device
def test_numpy_arrays_go_to_cpu():
    x = np.ones(3)
    assert D.device_of(x) == "cpu" and D.xp_of(x) is np
    assert D.kernels("relu", x, None, x) is D._KERNELS["cpu"]["relu"]
    assert D.kernels("relu", x.view(Routed)) is D._KERNELS["cpu"]["relu"]  # subclasses: slow path, cpu
    assert D.kernels("relu") is D._KERNELS["cpu"]["relu"]


def test_cupy_like_array_raises_not_implemented_from_the_table(no_cuda_kernels):
    for op in ("layer_norm", "relu", "adam", "clip_grad_norm_", "matmul"):
        with pytest.raises(NotImplementedError) as info:
            D.kernels(op, cuda_array(), None)
        assert str(info.value) == f"[{op}] has no kernel on cuda"


def test_fake_device_routing(monkeypatch, no_cuda_kernels):
    monkeypatch.setitem(D._TYPE_DEVICE, Routed, "cuda")
    x = np.ones((2, 3)).view(Routed)
    assert D.device_of(x) == "cuda"
    with pytest.raises(NotImplementedError, match=r"^\[softmax\] has no kernel on cuda$"):
        D.kernels("softmax", x)
    # one line in the table enables an op there: here a cuda set made of the cpu kernels
    monkeypatch.setitem(D._KERNELS["cuda"], "softmax", D.KernelSet("softmax", "cuda", _C, D._TABLE["softmax"].cpu))
    assert D.kernels("softmax", x).softmax_forward is _C.softmax_forward
    with pytest.raises(ValueError):
        D.register_array_type(Routed, "tpu")


def test_mixed_devices_raise():
    c, g = np.ones((4, 8), np.float32), cuda_array()
    for args in ((c, g), (g, c), (None, c, g)):
        with pytest.raises(RuntimeError) as info:
            D.kernels("linear", *args)
        assert str(info.value) == "[linear] expected all tensors on cuda, got cpu"


def test_unknown_op_is_a_key_error():
    with pytest.raises(KeyError, match="not an op"):
        D.kernels("no_such_op", np.ones(2))
    with pytest.raises(KeyError, match="not an op"):
        D.kernels("no_such_op", cuda_array())


def test_functional_op_on_a_cuda_tensor_names_the_op(no_cuda_kernels):
    x = nnfast.Tensor(cuda_array())
    with pytest.raises(NotImplementedError, match=r"^\[relu\] has no kernel on cuda$"):
        F.relu(x)


# ------------------------------------------------------------------ array helpers
class SpyModule:
    """Forwards to NumPy, recording which allocation functions were called."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        fn = getattr(np, name)
        if callable(fn):
            def call(*a, **k):
                self.calls.append(name)
                return fn(*a, **k)
            return call
        return fn


def test_helpers_allocate_on_the_device():
    for device in ("cpu",):
        a = D.empty((2, 3), np.float32, device)
        assert a.shape == (2, 3) and a.dtype == np.float32 and a.flags.c_contiguous
        assert (D.zeros((2,), np.float64, device) == 0).all()
        assert (D.full((2,), 1.5, np.float64, device) == 1.5).all()
    t = np.ones((3, 4))[:, ::2]
    assert D.ascontiguousarray(t).flags.c_contiguous and D.kernel_ready(t).flags.c_contiguous
    c = np.ones(5)
    assert D.kernel_ready(c) is c and D.contiguous(c) is c
    with pytest.raises(ValueError):
        D.array_module("tpu")


@pytest.mark.parametrize("cls,kw", OPTIMIZERS, ids=[c.__name__ for c, _ in OPTIMIZERS])
def test_optimizer_state_is_allocated_by_the_device_array_module(monkeypatch, cls, kw):
    spy = SpyModule()
    monkeypatch.setitem(D._ARRAY_MODULES, "cpu", spy)
    p = nnfast.nn.Parameter(nnfast.randn(3, 4))
    p.grad = nnfast.randn(3, 4)
    opt = cls([p], **kw)
    opt.step()
    arrays = [v._data for v in opt.state[p].values() if isinstance(v, nnfast.Tensor)]
    assert arrays, "no state tensors"
    assert spy.calls and set(spy.calls) <= {"empty", "full", "zeros"}, spy.calls
    assert len(spy.calls) == len(arrays)  # every state tensor, and nothing else


def test_optimizer_state_lives_on_the_param_device(monkeypatch):
    """With a (simulated) cuda kernel set for adam, params on cuda get cuda state."""
    cuda_spy = SpyModule()
    monkeypatch.setitem(D._TYPE_DEVICE, Routed, "cuda")
    monkeypatch.setitem(D._ARRAY_MODULES, "cuda", cuda_spy)
    monkeypatch.setitem(D._KERNELS["cuda"], "adam", D.KernelSet("adam", "cuda", _C, D._TABLE["adam"].cpu))
    p = nnfast.nn.Parameter(nnfast.Tensor(np.ones((3, 4)).view(Routed)))
    p.grad = nnfast.Tensor(np.full((3, 4), 0.5).view(Routed))
    opt = nnfast.optim.Adam([p], lr=0.1, amsgrad=True)
    opt.step()
    assert sorted(cuda_spy.calls) == ["full", "full", "full"]  # exp_avg, exp_avg_sq, max_exp_avg_sq
    np.testing.assert_allclose(np.asarray(p._data), 0.9)


def test_optimizer_on_cuda_without_kernels_raises_before_touching_anything(monkeypatch):
    monkeypatch.setitem(D._ARRAY_MODULES, "cuda", np)  # (no CuPy here: Adagrad allocates its state up front)
    for cls, _ in OPTIMIZERS:  # a build whose cuda column lacks the optimizers (e.g. a new family in progress)
        monkeypatch.delitem(D._KERNELS["cuda"], cls._name.lower(), raising=False)
    p = nnfast.nn.Parameter(nnfast.Tensor(cuda_array((3,))))
    p.grad = nnfast.Tensor(cuda_array((3,)))
    for cls, kw in OPTIMIZERS:
        opt = cls([p], **kw)
        with pytest.raises(NotImplementedError) as info:
            opt.step()
        assert str(info.value) == f"[{cls._name}] has no kernel on cuda"
        assert all("step" not in s or s["step"] == 0 for s in opt.state.values())


def test_optimizer_mixed_devices_raise():
    a = nnfast.nn.Parameter(nnfast.randn(3))
    a.grad = nnfast.randn(3)
    b = nnfast.nn.Parameter(nnfast.Tensor(cuda_array((3,))))
    b.grad = nnfast.Tensor(cuda_array((3,)))
    with pytest.raises(RuntimeError, match=r"^\[Adam\] expected all tensors on cuda, got cpu$"):
        nnfast.optim.Adam([a, b]).step()


# ------------------------------------------------------------------ CLI
def test_cli_prints_and_writes_the_table(tmp_path, capsys):
    assert cli_main(["ops"]) == 0
    assert capsys.readouterr().out == D.markdown_table()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{D.README_BEGIN}\nstale\n{D.README_END}\nrest\n", encoding="utf-8")
    assert cli_main(["ops", "--write", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == f"intro\n{D.README_BEGIN}\n{D.markdown_table()}{D.README_END}\nrest\n"
    assert "updated" in capsys.readouterr().out
    assert cli_main(["ops", "--write", str(readme)]) == 0
    assert "up to date" in capsys.readouterr().out
    (tmp_path / "bare.md").write_text("no markers\n", encoding="utf-8")
    assert cli_main(["ops", "--write", str(tmp_path / "bare.md")]) == 2
