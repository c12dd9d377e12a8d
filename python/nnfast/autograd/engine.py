"""Reverse-mode sweep over the tape."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import anomaly
from .function import ACCUMULATED, check_versions


def _topological_order(root: Any) -> list[Any]:
    """Nodes reachable from ``root``, each before the nodes it depends on. Each node's
    ``_sole_consumer`` is set to whether exactly one edge of this graph feeds it its gradient
    (so a consumer may fold that node's activation derivative into its own kernel)."""
    order: list[Any] = []
    edges: dict[int, int] = {}
    seen: set[int] = set()
    # A depth-first walk; a node is pushed again under the _DONE marker once its inputs are
    # pushed, and lands in ``order`` when that marker pops (no tuple per push).
    stack: list[Any] = [root]
    done = _DONE
    while stack:
        node = stack.pop()
        if node is done:
            order.append(stack.pop())
            continue
        k = id(node)
        if k in seen:
            continue
        seen.add(k)
        stack.append(node)
        stack.append(done)
        for nxt in node._next:
            if nxt is not None:
                k = id(nxt)
                edges[k] = edges.get(k, 0) + 1
                if k not in seen:
                    stack.append(nxt)
    order.reverse()
    for node in order:
        node._sole_consumer = edges.get(id(node)) == 1
    return order


_DONE = object()  # _topological_order's marker: the node below it has had its inputs pushed


def _node_hooks(node: Any, g: Any) -> Any:
    """Hooks registered on the non-leaf tensor ``node`` produced, then ``retain_grad``'s copy."""
    from ..tensor import Tensor

    for hook in node._grad_hooks or ():
        r = hook(Tensor._wrap(g))
        if r is not None:
            g = r._data if isinstance(r, Tensor) else r
    ref = node._retained
    t = ref() if ref is not None else None
    if t is not None:
        if t.grad is None:
            t.grad = Tensor._wrap(g.copy())
        else:
            t.grad._data += g
    return g


# Callbacks queued during a backward (``queue_callback``), run once after its sweep.
_final_callbacks: list[Any] = []


def queue_callback(callback: Any) -> None:
    """Run ``callback()`` once when the backward now running has finished (as PyTorch's
    ``Variable._execution_engine.queue_callback``; DistributedDataParallel waits for its
    allreduces there)."""
    _final_callbacks.append(callback)


def _run_final_callbacks() -> None:
    while _final_callbacks:
        _final_callbacks.pop(0)()


def run_backward(root: Any, grad: Any, retain_graph: bool = False) -> None:
    """Propagate ``grad`` (d out / d root) to every leaf that requires grad."""
    if root.grad_fn is None:
        root._accumulate_grad(grad)
        _run_final_callbacks()
        return
    try:
        _sweep(root, grad, retain_graph)
    except BaseException:
        _final_callbacks.clear()
        raise
    _run_final_callbacks()


def _sweep(root: Any, grad: Any, retain_graph: bool) -> None:
    pending: dict[int, Any] = {id(root.grad_fn): grad}
    check = anomaly.is_enabled()
    pop = pending.pop
    accumulated, generic, ndarray = ACCUMULATED, np.generic, np.ndarray
    for node in _topological_order(root.grad_fn):
        g = pop(id(node), None)
        if g is None:
            continue
        if node._released:
            raise RuntimeError(
                f"[backward] expected a graph that still holds its saved tensors; {node.name} was "
                "already freed by an earlier backward (pass retain_graph=True the first time)"
            )
        if node._grad_hooks or node._retained is not None:
            g = _node_hooks(node, g)
        versions = node._versions
        if versions is not None:
            for counter, version, _ in versions:  # (inline: one call fewer per node; raises below)
                if counter[0] != version:
                    check_versions(node)
        if retain_graph:
            node._retain_graph = True
        grads = type(node).backward(node, g)
        if not isinstance(grads, tuple):
            grads = (grads,)
        # (fewer grads than inputs: the rest are None -- zip below stops at the shorter)
        if check:
            anomaly.check_backward(node.name, grads)
        if not retain_graph:
            node.saved_tensors = ()
            node._released = True
        handed: Any = None  # ids of the arrays passed on by this node (made on the second one)
        for t, nxt, gi in zip(node.inputs, node._next, grads):
            if gi is None or t is None:
                continue
            if gi is accumulated:  # the kernel added into .grad
                if t._post_hooks:
                    for ph in t._post_hooks:
                        ph(t)
                continue
            if not t.requires_grad:
                continue
            if type(gi) is not ndarray and isinstance(gi, generic):  # NumPy arithmetic on 0-d arrays gives scalars: keep arrays
                gi = np.asarray(gi)
            if gi.shape != t._data.shape:
                raise RuntimeError(
                    f"[backward] {node.name} returned a gradient of shape {tuple(gi.shape)} "
                    f"for an input of shape {tuple(t._data.shape)}"
                )
            # An array handed to two consumers (or passed through unchanged) is
            # copied so that later in-place accumulation never aliases.
            if gi is g or (handed is not None and id(gi) in handed):
                gi = gi.copy()
            if handed is None:
                handed = {id(gi)}
            else:
                handed.add(id(gi))
            if nxt is None:
                t._accumulate_grad(gi)
            else:
                key = id(nxt)
                prev = pending.get(key)
                pending[key] = gi if prev is None else prev + gi
