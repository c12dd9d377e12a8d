"""DLPack interop is zero-copy: nnfast tensors to/from NumPy, PyTorch (when installed) and
CuPy (when installed with a GPU). Shared memory is shown by writing through one side and
reading the other."""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.bool_]


def _sample(dtype, shape=(3, 4)):
    a = np.arange(int(np.prod(shape))).reshape(shape) % 2 if dtype is np.bool_ else np.arange(np.prod(shape))
    return np.ascontiguousarray(a.reshape(shape).astype(dtype))


# ---------------------------------------------------------------- NumPy
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_from_nnfast_shares_memory(dtype):
    t = nnfast.tensor(_sample(dtype))
    a = np.from_dlpack(t)
    assert a.dtype == t.dtype and a.shape == t.shape
    assert np.shares_memory(a, t._data)
    a[1, 2] = 0 if dtype is np.bool_ else 7
    assert t[1, 2].item() == a[1, 2]
    t._data[0, 0] = 1
    assert a[0, 0] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_nnfast_from_numpy_dlpack_shares_memory(dtype):
    a = _sample(dtype)
    t = nnfast.from_dlpack(a)
    assert isinstance(t, nnfast.Tensor) and t.dtype == a.dtype and t.shape == a.shape
    assert t.device == nnfast.device("cpu") and not t.requires_grad
    assert np.shares_memory(t._data, a)
    a[2, 3] = 0 if dtype is np.bool_ else -5
    assert t[2, 3].item() == a[2, 3]


def test_numpy_strided_zero_d_and_empty():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    view = base[::2, 1::2]  # non-contiguous
    t = nnfast.from_dlpack(view)
    assert t.shape == (2, 3) and np.shares_memory(t._data, base)
    np.testing.assert_array_equal(t.numpy(), view)
    base[2, 3] = -1.0  # view[1, 1]
    assert t[1, 1].item() == -1.0
    assert np.from_dlpack(nnfast.tensor(3.5)).shape == ()
    assert nnfast.from_dlpack(np.zeros((0, 3), np.float32)).shape == (0, 3)
    assert np.from_dlpack(nnfast.zeros(0, 3)).shape == (0, 3)


def test_transposed_tensor_exports_its_strides():
    t = nnfast.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)).T
    a = np.from_dlpack(t)
    assert a.shape == (3, 2) and np.shares_memory(a, t._data)
    np.testing.assert_array_equal(a, np.arange(6, dtype=np.float32).reshape(2, 3).T)


def test_dlpack_device_is_cpu():
    assert nnfast.ones(2).__dlpack_device__()[0] == 1  # kDLCPU


def test_dlpack_input_trains_like_a_copy():
    nnfast.manual_seed(0)
    layer = nn.Linear(4, 3)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y_shared = layer(nnfast.from_dlpack(x))
    y_copy = layer(nnfast.tensor(x.copy()))
    np.testing.assert_array_equal(y_shared.detach().numpy(), y_copy.detach().numpy())
    y_shared.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.shape == (3, 4)


# ---------------------------------------------------------------- PyTorch
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_torch_from_nnfast_shares_memory(torch, dtype):
    t = nnfast.tensor(_sample(dtype))
    tt = torch.from_dlpack(t)
    assert tuple(tt.shape) == t.shape and tt.device.type == "cpu"
    assert tt.data_ptr() == t._data.ctypes.data
    tt[0, 1] = 0 if dtype is np.bool_ else 11
    assert t[0, 1].item() == tt[0, 1].item()
    np.testing.assert_array_equal(tt.numpy(), t.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_nnfast_from_torch_shares_memory(torch, dtype):
    tt = torch.arange(12, dtype=getattr(torch, dtype)).reshape(3, 4)
    t = nnfast.from_dlpack(tt)
    assert t.dtype == np.dtype(dtype) and t.shape == (3, 4)
    assert t._data.ctypes.data == tt.data_ptr()
    tt[2, 0] = -3
    assert t[2, 0].item() == -3
    t._data[0, 0] = 5
    assert tt[0, 0].item() == 5


def test_torch_round_trip_and_strides(torch):
    tt = torch.arange(6.0).reshape(2, 3).t()  # non-contiguous
    t = nnfast.from_dlpack(tt)
    assert t.shape == (3, 2) and not t.is_contiguous()
    np.testing.assert_array_equal(t.numpy(), tt.numpy())
    back = torch.from_dlpack(nnfast.from_dlpack(torch.from_dlpack(nnfast.ones(4, 5))))
    assert back.shape == (4, 5)
    src = nnfast.randn(4, 5)
    assert torch.from_dlpack(src).data_ptr() == nnfast.from_dlpack(torch.from_dlpack(src))._data.ctypes.data


def test_nnfast_result_matches_torch_on_shared_input(torch):
    x = torch.randn(8, 6, dtype=torch.float64)
    w = torch.randn(4, 6, dtype=torch.float64)
    out = nnfast.nn.functional.linear(nnfast.from_dlpack(x), nnfast.from_dlpack(w))
    np.testing.assert_allclose(torch.from_dlpack(out).numpy(), (x @ w.T).numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- CuPy (GPU)
def test_cupy_round_trip():
    cupy = pytest.importorskip("cupy")
    if not nnfast.cuda.is_available():
        pytest.skip("no CUDA device")
    c = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    t = nnfast.from_dlpack(c)
    assert t.is_cuda and t.shape == (2, 3)
    c[1, 1] = 42
    assert t[1, 1].item() == 42
    back = cupy.from_dlpack(t)
    assert back.data.ptr == c.data.ptr
