"""Whole training step (forward + backward + Adam) of ReLU MLPs: nnfast vs a
NumPy implementation with hand-written backprop vs PyTorch CPU (when installed).

FLOPs per step: 3 GEMMs per layer (forward, dX, dW) of 2*B*in*out each, i.e.
6*B*sum(in*out); the first layer's dX is skipped by all three contenders.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from .common import median_time, torch_or_none

SHAPES = [
    ((784, 128, 10), 64),
    ((784, 1024, 1024, 10), 256),
    ((784, 4096, 4096, 10), 1024),
]


def step_flops(sizes: tuple[int, ...], batch: int) -> float:
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * batch * i * o for i, o in pairs)
    dw = fwd
    dx = fwd - 2 * batch * pairs[0][0] * pairs[0][1]
    return float(fwd + dw + dx)


class NumpyMLP:
    """The NumPy baseline: float32 MLP, ReLU, softmax cross-entropy, Adam, all by hand."""

    def __init__(self, sizes: tuple[int, ...], rng: np.random.Generator) -> None:
        self.W = [rng.uniform(-1, 1, (o, i)).astype(np.float32) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(o, np.float32) for o in sizes[1:]]
        self.params = self.W + self.b
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, x: np.ndarray, y: np.ndarray, lr: float = 1e-3) -> float:
        acts = [x]
        h = x
        n = len(self.W)
        for li, (W, b) in enumerate(zip(self.W, self.b)):
            h = h @ W.T + b
            if li < n - 1:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = acts[-1]
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(1, keepdims=True)
        B = len(y)
        loss = float(-np.log(p[np.arange(B), y] + 1e-30).mean())
        g = p
        g[np.arange(B), y] -= 1
        g /= B
        grads_W: list[Any] = [None] * n
        grads_b: list[Any] = [None] * n
        for li in range(n - 1, -1, -1):
            grads_W[li] = g.T @ acts[li]
            grads_b[li] = g.sum(0)
            if li > 0:
                g = (g @ self.W[li]) * (acts[li] > 0)
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for p_, g_, m, v in zip(self.params, grads_W + grads_b, self.m, self.v):
            m *= b1
            m += (1 - b1) * g_
            v *= b2
            v += (1 - b2) * g_ * g_
            p_ -= lr * (m / c1) / (np.sqrt(v / c2) + eps)
        return loss


def nnfast_step_fn(sizes: tuple[int, ...], x: np.ndarray, y: np.ndarray, bf16: bool = False) -> Any:
    import nnfast
    import nnfast.nn as nn

    layers = [nn.Linear(i, o, activation="relu" if k < len(sizes) - 2 else None)
              for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return _adam_ce_step(nnfast, nn.Sequential(*layers), nnfast.from_numpy(x), nnfast.from_numpy(y), bf16)


def torch_step_fn(torch: Any, sizes: tuple[int, ...], x: np.ndarray, y: np.ndarray, bf16: bool = False) -> Any:
    layers: list[Any] = []
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(i, o))
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return _adam_ce_step(torch, torch.nn.Sequential(*layers), torch.from_numpy(x), torch.from_numpy(y), bf16)


def _adam_ce_step(lib: Any, model: Any, xt: Any, yt: Any, bf16: bool = False) -> Any:
    """One Adam + cross-entropy training step of ``model``, written once for nnfast and torch
    (the same API), so both contenders run the same code; ``bf16``: forward and loss under
    ``lib.autocast("cpu", dtype=lib.bfloat16)`` (float32 weights and Adam state)."""
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = lib.nn.CrossEntropyLoss()
    region = lib.autocast("cpu", dtype=lib.bfloat16, enabled=bf16)

    def step() -> float:
        opt.zero_grad(set_to_none=False)
        with region:
            loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return float(loss.item())

    return step


def check_losses_decrease(step: Any, n: int = 8) -> None:
    first = step()
    for _ in range(n - 1):
        last = step()
    if not last < first:
        raise AssertionError(f"training step does not reduce the loss ({first} -> {last})")


def run(quick: bool = False, threads: Optional[list[int]] = None, peak_gflops: Optional[float] = None) -> list[dict[str, Any]]:
    import nnfast

    torch = torch_or_none()
    if peak_gflops is None:
        # The step uses every thread: the ceiling is the per-core peak times the threads.
        peak_gflops = float(nnfast._C.fma_peak_gflops()) * nnfast.get_num_threads()
    rows = []
    rng = np.random.default_rng(0)
    shapes = SHAPES[:2] if quick else SHAPES
    for sizes, batch in shapes:
        x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], batch).astype(np.int64)
        nnfast.manual_seed(0)
        ours = nnfast_step_fn(sizes, x, y)
        check_losses_decrease(ours)
        base = NumpyMLP(sizes, np.random.default_rng(1))
        reps = 3 if quick or batch >= 1024 else 7
        # Each contender starts after a pause so idle worker threads of the
        # previous library (OpenBLAS, PyTorch's OpenMP pool) stop spinning first.
        time.sleep(0.3)
        t_ours = median_time(ours, repeats=reps, warmup=2)
        time.sleep(0.3)
        t_np = median_time(lambda: base.step(x, y), repeats=reps, warmup=2)
        row: dict[str, Any] = {
            "model": "-".join(map(str, sizes)), "batch": batch,
            "nnfast_ms": t_ours * 1e3, "numpy_ms": t_np * 1e3, "vs_numpy": t_ours / t_np,
            "nnfast_gflops": step_flops(sizes, batch) / t_ours / 1e9,
        }
        if torch is not None:
            torch.manual_seed(0)
            ts = torch_step_fn(torch, sizes, x, y)
            time.sleep(0.3)
            t_torch = median_time(ts, repeats=reps, warmup=2)
            row["torch_ms"] = t_torch * 1e3
            row["vs_torch"] = t_ours / t_torch
        if peak_gflops:
            row["pct_peak"] = 100 * row["nnfast_gflops"] / peak_gflops
        if sizes in BF16_SIZES:
            row.update(bf16_columns(sizes, x, y, reps, torch, t_ours))
        rows.append(row)
    return rows


# The bf16 autocast step is measured on the MLP the mixed-precision issue names.
BF16_SIZES = [(784, 1024, 1024, 10)]


def bf16_columns(sizes: tuple[int, ...], x: np.ndarray, y: np.ndarray, reps: int, torch: Any,
                 t_fp32: float) -> dict[str, Any]:
    """nnfast's bf16 autocast step next to its fp32 step (``t_fp32``, same run) and PyTorch's bf16
    autocast step: ``bf16_vs_fp32`` (target <= 0.6) and ``bf16_vs_torch_bf16`` (target < 1)."""
    import nnfast

    nnfast.manual_seed(0)
    ours = nnfast_step_fn(sizes, x, y, bf16=True)
    check_losses_decrease(ours)
    time.sleep(0.3)
    t_bf16 = median_time(ours, repeats=reps, warmup=2)
    cols: dict[str, Any] = {"nnfast_bf16_ms": t_bf16 * 1e3, "bf16_vs_fp32": t_bf16 / t_fp32}
    if torch is not None:
        torch.manual_seed(0)
        ts = torch_step_fn(torch, sizes, x, y, bf16=True)
        check_losses_decrease(ts)
        time.sleep(0.3)
        t_torch = median_time(ts, repeats=reps, warmup=2)
        cols["torch_bf16_ms"] = t_torch * 1e3
        cols["bf16_vs_torch_bf16"] = t_bf16 / t_torch
    return cols


def run_bf16(repeats: int = 7) -> dict[str, Any]:
    """The four bf16-table contenders in one run, each after a pause: nnfast fp32, nnfast bf16 autocast,
    PyTorch fp32, PyTorch bf16 autocast (784-1024-1024-10, batch 256, Adam)."""
    import nnfast

    torch = torch_or_none()
    sizes, batch = BF16_SIZES[0], 256
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    nnfast.manual_seed(0)
    ours = nnfast_step_fn(sizes, x, y)
    check_losses_decrease(ours)
    time.sleep(0.3)
    t_ours = median_time(ours, repeats=repeats, warmup=2)
    row: dict[str, Any] = {"model": "-".join(map(str, sizes)), "batch": batch, "nnfast_ms": t_ours * 1e3}
    row.update(bf16_columns(sizes, x, y, repeats, torch, t_ours))
    if torch is not None:
        torch.manual_seed(0)
        ts = torch_step_fn(torch, sizes, x, y)
        time.sleep(0.3)
        row["torch_ms"] = median_time(ts, repeats=repeats, warmup=2) * 1e3
    return row


if __name__ == "__main__":  # python -m nnfast.bench.step: the bf16 step table alone (under a minute)
    from .common import machine

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, simd {info['simd']}, commit {info['commit']}")
    r = run_bf16()
    for k, v in r.items():
        print(f"  {k:<20} {v:.3f}" if isinstance(v, float) else f"  {k:<20} {v}")
