"""PyTorch's in-place and autograd surface: .data / .detach() share storage and a version counter,
in-place ops on leaves that require grad raise, a backward that needs overwritten values raises
"modified by an inplace operation", in-place ops on non-leaves continue the graph, hooks on leaves
and non-leaves, retain_grad, no_grad / inference_mode as decorators."""
import numpy as np
import pytest

import nnfast

from conftest import DEVICES


def _t(values, device="cpu", requires_grad=False):
    return nnfast.tensor(np.asarray(values, dtype=np.float64)).to(device).requires_grad_(requires_grad)


@pytest.mark.parametrize("device", DEVICES)
def test_data_is_a_detached_tensor_sharing_storage(device):
    p = _t([1.0, 2.0], device, True)
    d = p.data
    assert isinstance(d, nnfast.Tensor) and not d.requires_grad and d.grad_fn is None
    d.add_(1.0)  # the classic hand-written SGD step
    assert p.tolist() == [2.0, 3.0] and p._version == 1
    p.data = nnfast.zeros(2, dtype=nnfast.float64).to(device)
    assert p.tolist() == [0.0, 0.0] and p.requires_grad
    det = p.detach()
    det.fill_(5.0)
    assert p.tolist() == [5.0, 5.0] and p._version == det._version


@pytest.mark.parametrize("device", DEVICES)
def test_inplace_on_leaf_requiring_grad_raises_outside_no_grad(device):
    w = _t([1.0, 2.0], device, True)
    for op in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.zero_(), lambda: w.copy_(w * 0)):
        with pytest.raises(RuntimeError, match=r"^\[\w+\] a leaf Variable that requires grad"):
            op()
    with nnfast.no_grad():
        w -= 0.5 * nnfast.ones(2, dtype=nnfast.float64).to(device)
        w.mul_(2)
    assert w.tolist() == [1.0, 3.0] and w.requires_grad and w.grad_fn is None


@pytest.mark.parametrize("device", DEVICES)
def test_modifying_a_saved_tensor_breaks_backward(device):
    x = _t([0.5, 1.0, 2.0], device, True)
    y = x.exp()          # exp saves its output
    y.mul_(2)
    with pytest.raises(RuntimeError, match=r"^\[backward\] one of the variables needed for gradient computation "
                                           r"has been modified by an inplace operation"):
        y.sum().backward()
    # a tensor that is not saved may be modified: x * 3 saves neither operand's output
    x.grad = None
    z = x * 3
    w = z.exp()
    z.add_(1)
    w.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), 3 * np.exp(3 * np.array([0.5, 1.0, 2.0])))


@pytest.mark.parametrize("device", DEVICES)
def test_writing_through_a_view_bumps_the_base(device):
    a = _t([[1.0, 2.0], [3.0, 4.0]], device)
    v = a[0]
    v2 = a.reshape(4)
    assert v._version == a._version == v2._version == 0
    v.add_(1)
    assert a._version == v2._version == 1 and a.tolist()[0] == [2.0, 3.0]
    x = _t([1.0, 2.0, 3.0, 4.0], device, True)
    y = x * 1.0
    y.reshape(2, 2)[0].mul_(0)  # in place through a view of a graph tensor: the base's graph is rewritten
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("device", DEVICES)
def test_inplace_on_non_leaf_continues_the_graph(device):
    x = _t([1.0, 2.0, 3.0], device, True)
    y = x * 2
    y.add_(1)
    y.mul_(x)                 # y = (2x + 1) * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), 4 * np.array([1.0, 2.0, 3.0]) + 1)
    x.grad = None
    z = x * 1.0
    z.zero_()                 # overwritten: no gradient reaches x through it
    (z + x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("device", DEVICES)
def test_copy_into_a_plain_tensor_records_the_source(device):
    buf = nnfast.zeros(2, 3, dtype=nnfast.float64).to(device)
    src = _t([1.0, 2.0, 3.0], device, True)
    buf.copy_(src)            # broadcast over rows
    assert buf.requires_grad
    (buf * 2).sum().backward()
    assert src.grad.tolist() == [4.0, 4.0, 4.0]


def test_inplace_dtype_and_shape_errors():
    i = nnfast.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match=r"^\[add_\] expected a result castable to int64"):
        i.add_(0.5)
    f = nnfast.zeros(3)
    with pytest.raises(RuntimeError, match=r"^\[add_\] expected a result of shape \(3,\)"):
        f.add_(nnfast.ones(2, 3))


def test_hooks_and_retain_grad():
    x = _t([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    seen = []
    handle = y.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
    leaf_seen = []
    x.register_hook(lambda g: leaf_seen.append(g.tolist()))
    (y * y).sum().backward()
    assert seen == [[4.0, 8.0, 12.0]]
    assert y.retains_grad and y.grad.tolist() == [40.0, 80.0, 120.0]   # retain_grad sees the hooked value
    assert x.grad.tolist() == [80.0, 160.0, 240.0] and leaf_seen == [[80.0, 160.0, 240.0]]
    handle.remove()
    x.grad = None
    y2 = x * 2
    (y2 * y2).sum().backward()
    assert x.grad.tolist() == [8.0, 16.0, 24.0]
    with pytest.raises(RuntimeError, match=r"^\[register_hook\] expected a tensor that requires grad"):
        nnfast.zeros(2).register_hook(lambda g: g)


def test_grad_modes_as_decorators():
    x = _t([1.0], requires_grad=True)

    @nnfast.no_grad()
    def f():
        return x * 2

    @nnfast.inference_mode()
    def g():
        return x * 2

    assert not f().requires_grad and not g().requires_grad
    with nnfast.inference_mode(False):
        assert (x * 2).requires_grad
    with nnfast.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad


@pytest.mark.parametrize("device", DEVICES)
def test_inplace_through_views_of_graph_tensors(device):
    """PyTorch's CopySlices: y[0:2] += 1, chained views, setitem through a view; values and gradients."""
    x = _t([1.0, 2.0, 3.0, 4.0], device, True)
    y = x * 2
    y[1:3].mul_(x[1:3])               # y = [2, 2 x1^2, 2 x2^2, 8]
    y.reshape(2, 2)[0] += 1           # y[0:2] += 1 through a chain of two views
    assert y.tolist() == [3.0, 9.0, 18.0, 8.0]
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 8.0, 12.0, 2.0]
    x.grad = None
    z = x * 1.0
    z.view(2, 2).t()[0, 1] = 10.0     # overwrites z[2]: no gradient reaches x[2]
    assert z.tolist() == [1.0, 2.0, 10.0, 4.0]
    z.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 1.0]
    with pytest.raises(RuntimeError, match=r"^\[add_\] a view of a leaf Variable that requires grad"):
        x[0:2].add_(1)


def test_the_graph_is_frozen_when_recorded():
    """A node's inputs keep the nodes they had: a later in-place op on an input does not reroute it."""
    x = _t([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y + 3.0                       # add saves nothing, so modifying y afterwards is allowed
    y.mul_(5)
    z.sum().backward(retain_graph=True)
    assert x.grad.tolist() == [1.0, 1.0]
    x.grad = None
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]
