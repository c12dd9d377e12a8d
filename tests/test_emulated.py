"""The cuda device of an NNFAST_CUDA=EMULATE build (python/nnfast/_emulated.py): cuda arrays are
host arrays carrying the cuda device, devices never mix silently, tensors/modules/loaders/io move
between devices, and nnfast._C_cuda takes __cuda_array_interface__ objects (the real-GPU path,
exercised here with host pointers)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import _dispatch as D

pytestmark = pytest.mark.skipif(not (nnfast.cuda.is_available() and nnfast.cuda.is_emulated()),
                                reason="needs an NNFAST_CUDA=EMULATE build")


def test_cuda_info_reports_the_emulator():
    info = nnfast.info()
    assert info["cuda_device"] == "emulated (CPU)" and info["cuda_emulated"] and info["cuda_available"]
    assert D.EMULATED and "activation" in D._BACKENDS["cuda"].families


def test_cuda_tensor_round_trip():
    x = nnfast.randn(3, 4)
    c = x.cuda()
    assert isinstance(c._data, nnfast.cuda.EmulatedArray) and c.is_cuda and c.device.type == "cuda"
    assert D.device_of(c._data) == "cuda" and D.device_of((c * 2)._data) == "cuda"
    back = c.cpu()
    assert type(back._data) is np.ndarray and back.device.type == "cpu"
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    assert back._data is not c._data.base


def test_cuda_array_module_allocates_on_cuda():
    xp = D.array_module("cuda")
    for a in (xp.empty((2, 3), np.float32), xp.zeros(3, np.float64), xp.full((2,), 1.5, np.float32),
              xp.empty_like(np.ones(2)), xp.ones(4).sum()):
        assert isinstance(a, nnfast.cuda.EmulatedArray), type(a)


def test_cuda_mixing_devices_raises():
    c, h = nnfast.randn(4).cuda(), nnfast.randn(4)
    with pytest.raises(RuntimeError, match=r"^\[add\] expected all tensors on cuda, got cpu$"):
        c._data + h._data
    with pytest.raises(RuntimeError, match=r"expected all tensors on cuda, got cpu"):
        c + h
    with pytest.raises(RuntimeError, match=r"^\[softmax\] expected all tensors on cuda, got cpu$"):
        D.kernels("softmax", c._data, h._data)


def test_cuda_activation_matches_cpu_and_backward_stays_on_device():
    import nnfast.nn.functional as F

    x = nnfast.randn(5, 7, dtype=nnfast.float64, requires_grad=True)
    xc = x.detach().cuda().requires_grad_(True)
    for f in (F.relu, F.gelu, lambda t: F.softmax(t, dim=1), lambda t: F.log_softmax(t, dim=0)):
        y, yc = f(x), f(xc)
        assert yc.is_cuda
        np.testing.assert_allclose(yc.cpu().detach().numpy(), y.detach().numpy(), rtol=1e-12, atol=1e-14)
        y.sum().backward()
        yc.sum().backward()
        assert xc.grad.is_cuda
        np.testing.assert_allclose(xc.grad.cpu().numpy(), x.grad.numpy(), rtol=1e-12, atol=1e-14)
        x.grad = xc.grad = None


def test_cuda_module_to_and_loader_and_save(tmp_path):
    m = nnfast.nn.PReLU(3)
    m.to("cuda")
    assert all(p.is_cuda for p in m.parameters())
    from nnfast.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(nnfast.randn(6, 3), nnfast.arange(6))
    batches = list(DataLoader(ds, batch_size=4, device="cuda"))
    assert all(t.is_cuda for b in batches for t in b)
    path = tmp_path / "m.nnf"
    nnfast.save(m.state_dict(), path)
    loaded = nnfast.load(path)
    np.testing.assert_array_equal(loaded["weight"].numpy(), m.weight.detach().cpu().numpy())


class _CAI:
    """A device-array stand-in: __cuda_array_interface__ over a host buffer (as CuPy gives on a GPU)."""

    def __init__(self, a, readonly=False):
        self.a = a
        self.__cuda_array_interface__ = {"shape": a.shape, "typestr": a.dtype.str, "version": 3,
                                         "data": (a.ctypes.data, readonly), "strides": None}


def test_cuda_bindings_accept_cuda_array_interface():
    K = D._BACKENDS["cuda"]
    x = np.random.default_rng(0).standard_normal((4, 9))
    y = np.empty_like(x)
    K.act_forward(_CAI(y), _CAI(x, readonly=True), 1)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    K.softmax_forward(out=_CAI(y), input=_CAI(x), dim=1)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"^\[activation\] expected out to be writeable"):
        K.act_forward(_CAI(y, readonly=True), _CAI(x), 1)
    with pytest.raises(TypeError, match=r"^\[activation\] expected input to be float32 or float64"):
        K.act_forward(_CAI(y), _CAI(x.astype(np.int64)), 1)
