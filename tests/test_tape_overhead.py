"""The small-step Python paths (issue 18): the engine's walk, the linear fast path's node, the
hook-free module call and the optimizer's CPU collection keep what the general paths did."""
import numpy as np
import pytest

import nnfast
import nnfast.nn as nn
import nnfast.nn.functional as F
from nnfast import _dispatch
from nnfast.autograd import engine


class _Node:
    def __init__(self, name):
        self.name, self._next = name, ()


def _reference_order(root):
    """The walk as it was written with (node, expanded) tuples: the order and the sole-consumer flags."""
    order, edges, seen, stack = [], {}, set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for nxt in node._next:
            if nxt is not None:
                edges[id(nxt)] = edges.get(id(nxt), 0) + 1
                if id(nxt) not in seen:
                    stack.append((nxt, False))
    order.reverse()
    return order, [edges.get(id(n)) == 1 for n in order]


@pytest.mark.parametrize("n", [1, 2, 7, 40])
@pytest.mark.parametrize("seed", range(5))
def test_topological_order_matches_reference_walk(n, seed):
    rng = np.random.default_rng(seed)
    nodes = [_Node(i) for i in range(n)]
    for i, node in enumerate(nodes):  # a DAG: edges only to later nodes, with repeats and Nones
        k = int(rng.integers(0, 4))
        node._next = tuple(None if rng.random() < 0.2 or i + 1 >= n else nodes[int(rng.integers(i + 1, n))]
                           for _ in range(k))
    want, flags = _reference_order(nodes[0])
    got = engine._topological_order(nodes[0])
    assert [x.name for x in got] == [x.name for x in want]
    assert [x._sole_consumer for x in got] == flags


@pytest.mark.parametrize("bias", [None, "grad", "nograd"])
@pytest.mark.parametrize("x_grad", [False, True])
@pytest.mark.parametrize("rows", [1, 7])
def test_linear_fast_node_fields_match_checked_path(bias, x_grad, rows):
    rng = np.random.default_rng(rows)
    x = nnfast.tensor(rng.standard_normal((rows, 5)).astype(np.float32), requires_grad=x_grad)
    w = nnfast.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    b = None if bias is None else nnfast.tensor(rng.standard_normal(3).astype(np.float32),
                                                requires_grad=bias == "grad")
    fast = F.linear(x, w, b, activation="relu")
    _dispatch.block_fast_paths("test", True)
    try:
        slow = F.linear(x, w, b, activation="relu")
    finally:
        _dispatch.block_fast_paths("test", False)
    nf, ns = fast.grad_fn, slow.grad_fn
    assert type(nf) is type(ns)
    assert nf.inputs == ns.inputs
    assert nf._next == ns._next
    assert nf.needs_input_grad == ns.needs_input_grad
    assert [(c is cs, v, s) for (c, v, s), (cs, _, _) in zip(nf._versions, ns._versions)] == \
        [(True, v, s) for (_, v, s) in ns._versions]
    np.testing.assert_array_equal(fast.detach().numpy(), slow.detach().numpy())


def test_forward_hook_registered_inside_forward_runs_on_that_call():
    calls = []

    class M(nn.Module):
        def forward(self, x):
            if not calls:
                self.register_forward_hook(lambda m, a, out: calls.append(1) or out * 2)
            return x + 1

    m = M()
    y = m(nnfast.tensor(np.ones(3, np.float32)))
    assert calls == [1]
    np.testing.assert_array_equal(y.numpy(), np.full(3, 4, np.float32))


def test_module_call_without_init_still_raises():
    class M(nn.Module):
        def __init__(self):
            pass

        def forward(self, x):
            return x

    with pytest.raises(RuntimeError, match="Module.__init__"):
        M()(nnfast.tensor(np.ones(2, np.float32)))


@pytest.mark.parametrize("layout", ["F", "strided"])
def test_adam_steps_non_contiguous_grad_as_its_contiguous_copy(layout):
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((7, 5)).astype(np.float32)
    g0 = rng.standard_normal((7, 5)).astype(np.float32)
    out = []
    for odd in (False, True):
        p = nn.Parameter(nnfast.tensor(w0.copy()))
        if not odd:
            g = g0.copy()
        elif layout == "F":
            g = np.asfortranarray(g0)
        else:
            g = np.zeros((7, 10), np.float32)[:, ::2]
            g[...] = g0
        opt = nnfast.optim.Adam([p], lr=1e-2)
        for _ in range(3):
            p.grad = nnfast.tensor(g)
            opt.step()
        out.append(p.detach().numpy().copy())
        np.testing.assert_array_equal(g, g0)  # the grad itself is read, never written
    np.testing.assert_array_equal(out[0], out[1])


def test_optimizer_checks_every_group_before_stepping_any():
    a = nn.Parameter(nnfast.tensor(np.ones(3, np.float32)))
    b = nn.Parameter(nnfast.tensor(np.ones(4, np.float32)))
    opt = nnfast.optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    a.grad = nnfast.tensor(np.ones(3, np.float32))
    b.grad = nnfast.tensor(np.ones(5, np.float32))
    with pytest.raises(ValueError, match="expected grad of shape"):
        opt.step()
    np.testing.assert_array_equal(a.detach().numpy(), np.ones(3, np.float32))
    assert not opt.state
