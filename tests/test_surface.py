"""Generated tests for the PyTorch-surface registry (tests/surface.py): forward vs float64
reference, float64 gradcheck, non-contiguous inputs, PyTorch as a second oracle, error inputs;
every op x sample x device present."""
from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

import nnfast
from nnfast.autograd import gradcheck

from conftest import DEVICES
from surface import (Raw, Seq, grad_indices, host, outputs, registry, to_nnfast, to_ref, to_torch,
                     torch)

OPS = registry()


def _samples(op):
    return op.samples(np.random.default_rng(zlib.crc32(op.name.encode())))


def _cases(kind):
    out = []
    for op in OPS:
        if kind == "grad" and not op.differentiable:
            continue
        for s in _samples(op):
            if kind == "grad" and not grad_indices(s):
                continue
            for dev in DEVICES:
                if dev in op.devices:
                    out.append(pytest.param(op, s, dev, id=f"{op.name}-{s.id}-{dev}"))
    return out


def _run(op, s, dtype, device, requires_grad=False, noncontig=False):
    gi = grad_indices(s) if requires_grad else ()
    args = [to_nnfast(a, dtype, device, i in gi, noncontig) for i, a in enumerate(s.args)]
    return args, op.call(*args, **s.kwargs)


def _check_close(actual, expected, rtol, atol, what):
    a = host(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if a.dtype.kind in "biu" or e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=what)
    else:
        np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                                   equal_nan=True, err_msg=what)


@pytest.mark.parametrize("op,s,device", _cases("forward"))
def test_forward(op, s, device):
    if op.ref is None:
        pytest.skip("no NumPy reference (checked against PyTorch)")
    expected = outputs(op.ref(*[to_ref(a) for a in s.args], **s.kwargs))
    for dtype in op.dtypes:
        _, r = _run(op, s, dtype, device)
        got = outputs(r)
        assert len(got) == len(expected), f"{op.name}: {len(got)} outputs, reference has {len(expected)}"
        rtol, atol = op.tol[dtype]
        for i, (g, e) in enumerate(zip(got, expected)):
            if isinstance(g, nnfast.Tensor):
                assert str(g.device).startswith(device), f"{op.name} output {i} on {g.device}, expected {device}"
            _check_close(g, e, rtol, atol, f"{op.name}[{s.id}] {np.dtype(dtype).name} output {i}")


@pytest.mark.parametrize("op,s,device", _cases("grad"))
def test_gradcheck(op, s, device):
    gi = grad_indices(s)
    args = [to_nnfast(a, np.float64, device, i in gi) for i, a in enumerate(s.args)]
    leaves = []
    for i in gi:
        leaves.extend(args[i] if isinstance(args[i], list) else [args[i]])

    def fn(*ts):
        it = iter(ts)
        call_args = [([next(it) for _ in a] if isinstance(a, list) else next(it)) if i in gi else a
                     for i, a in enumerate(args)]
        return op.call(*call_args, **s.kwargs)

    atol, rtol = op.grad_tol
    assert gradcheck(fn, tuple(leaves), atol=atol, rtol=rtol)


@pytest.mark.parametrize("op,s,device", [c for c in _cases("forward") if c.values[0].noncontig])
def test_noncontiguous(op, s, device):
    if not any(isinstance(a, (np.ndarray, Seq)) and not isinstance(a, Raw) for a in s.args):
        pytest.skip("no array inputs")
    _, r1 = _run(op, s, np.float64, device)
    _, r2 = _run(op, s, np.float64, device, noncontig=True)
    for i, (a, b) in enumerate(zip(outputs(r1), outputs(r2))):
        _check_close(b, host(a), 1e-12, 1e-14, f"{op.name}[{s.id}] non-contiguous output {i}")


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("op,s,device", [c for c in _cases("forward") if c.values[2] == "cpu"])
def test_against_torch(op, s, device):
    if op.torch_call is None:
        pytest.skip("no PyTorch counterpart")
    for dtype in op.dtypes:
        grad = op.differentiable and bool(grad_indices(s))
        gi = grad_indices(s) if grad else ()
        nargs = [to_nnfast(a, dtype, "cpu", i in gi) for i, a in enumerate(s.args)]
        targs = [to_torch(a, dtype, i in gi) for i, a in enumerate(s.args)]
        got = outputs(op.call(*nargs, **s.kwargs))
        want = outputs(op.torch_call(*targs, **s.kwargs))
        assert len(got) == len(want)
        rtol, atol = op.tol[dtype]
        rtol, atol = max(rtol, 1e-9), max(atol, 1e-11)
        for i, (g, w) in enumerate(zip(got, want)):
            if isinstance(w, torch.Tensor):
                if op.exact_dtype:
                    assert str(w.dtype).replace("torch.", "") == np.dtype(g.dtype).name or \
                        (w.dtype == torch.bool and g.dtype == np.bool_), \
                        f"{op.name} output {i}: dtype {g.dtype}, PyTorch gives {w.dtype}"
                _check_close(g, host(w), rtol, atol, f"{op.name}[{s.id}] vs torch output {i}")
            else:
                assert host(g).tolist() == np.asarray(w).tolist() if not isinstance(g, float) else g == w
        if not grad:
            continue
        rng = np.random.default_rng(7)
        nterm = tterm = None
        for g, w in zip(got, want):
            if isinstance(g, nnfast.Tensor) and g.requires_grad:
                d = rng.standard_normal(g.shape).astype(dtype)
                a = (g * nnfast.from_numpy(d)).sum()
                b = (w * torch.from_numpy(d)).sum()
                nterm = a if nterm is None else nterm + a
                tterm = b if tterm is None else tterm + b
        if nterm is None:
            continue
        nterm.backward()
        tterm.backward()
        for i in gi:
            ns = nargs[i] if isinstance(nargs[i], list) else [nargs[i]]
            ts = targs[i] if isinstance(targs[i], list) else [targs[i]]
            for n, t in zip(ns, ts):
                tg = np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy()
                ng = np.zeros(n.shape) if n.grad is None else host(n.grad)
                np.testing.assert_allclose(ng, tg, rtol=max(rtol, 1e-7) * 10, atol=max(atol, 1e-10) * 10,
                                           err_msg=f"{op.name}[{s.id}] gradient of arg {i} vs torch")


@pytest.mark.parametrize("op,err", [pytest.param(op, e, id=f"{op.name}-{e.id}") for op in OPS for e in op.errors()])
def test_error_inputs(op, err):
    with pytest.raises(err.exc, match=err.match):
        err.thunk()


def test_registry_names_are_public():
    """Every registered name resolves: ``nnfast.<name>`` or ``nnfast.Tensor.<method>``."""
    for op in OPS:
        head, _, rest = op.name.partition(".")
        base = re.sub(r"\[.*\]$", "", op.name)
        if head == "Tensor":
            assert hasattr(nnfast.Tensor, re.sub(r"\[.*\]$", "", rest)), op.name
        elif head in ("F", "nn"):
            continue
        else:
            assert hasattr(nnfast, base), op.name
