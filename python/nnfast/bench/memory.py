"""Memory-bound kernels on 64 MB float32 tensors against the measured copy
bandwidth and against NumPy expressions computing the same thing.

Bytes counted are the minimum each kernel must move (every input read once,
every output written once); GB/s = bytes / time; pct_copy_bw compares that
with a large NumPy copy (read + write) measured in the same run.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .common import measure_copy_bandwidth, median_time


def _cases(n: int) -> list[tuple[str, int, Callable[[], Any], Callable[[], Any], Callable[[], bool]]]:
    import nnfast
    import nnfast.nn.functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    out = np.empty_like(x)
    C = nnfast._C
    cases = []

    # ReLU forward: read x, write y.
    cases.append(("relu fwd", 2 * 4 * n, lambda: C.act_forward(out, x, 1),
                  lambda: np.maximum(x, 0, out=out), lambda: np.array_equal(_relu(x), np.maximum(x, 0))))
    # ReLU backward from the saved output: read dy, y; write dx.
    y = np.maximum(x, 0)
    cases.append(("relu bwd", 3 * 4 * n, lambda: C.act_backward(out, g, y, 1),
                  lambda: np.multiply(g, y > 0, out=out), lambda: True))
    # GELU (tanh form) forward.
    cases.append(("gelu_tanh fwd", 2 * 4 * n, lambda: C.act_forward(out, x, 7),
                  lambda: _np_gelu_tanh(x), lambda: _check_gelu(C, x)))
    # Softmax cross-entropy, loss + logits gradient: read logits, write grad.
    B, K = n // 1000, 1000
    logits = x[: B * K].reshape(B, K)
    target = rng.integers(0, K, B)
    lt, tt = nnfast.from_numpy(logits).requires_grad_(), nnfast.from_numpy(target)

    def ours_ce() -> None:
        F.cross_entropy(lt, tt).backward()
        lt.grad = None

    cases.append(("cross_entropy fwd+bwd", 2 * 4 * B * K, ours_ce, lambda: _np_ce(logits, target), lambda: True))
    # LayerNorm forward over rows of 1024: read x, write y (+ tiny stats).
    R, D = n // 1024, 1024
    xr = nnfast.from_numpy(x[: R * D].reshape(R, D))
    w, b = nnfast.ones(D), nnfast.zeros(D)
    cases.append(("layer_norm fwd", 2 * 4 * R * D, lambda: F.layer_norm(xr, (D,), w, b),
                  lambda: _np_layer_norm(x[: R * D].reshape(R, D)), lambda: True))
    # Adam step over one flat parameter: read p, g, m, v; write p, m, v.
    p = nnfast.nn.Parameter(rng.standard_normal(n).astype(np.float32))
    p.grad = nnfast.from_numpy(g)
    opt = nnfast.optim.Adam([p], lr=1e-4)
    pn, mn, vn = p.data.copy(), np.zeros_like(x), np.zeros_like(x)
    state = {"t": 0}

    def np_adam() -> None:
        state["t"] += 1
        t = state["t"]
        mn[:] = 0.9 * mn + 0.1 * g
        vn[:] = 0.999 * vn + 0.001 * g * g
        pn[:] -= 1e-4 * (mn / (1 - 0.9**t)) / (np.sqrt(vn / (1 - 0.999**t)) + 1e-8)

    cases.append(("adam step", 7 * 4 * n, opt.step, np_adam, lambda: True))
    # Dropout forward (training): read x, write y (+ mask if kept).
    if hasattr(F, "dropout"):
        xt = nnfast.from_numpy(x)
        cases.append(("dropout fwd", 2 * 4 * n, lambda: F.dropout(xt, 0.1, training=True),
                      lambda: x * (rng.random(n, dtype=np.float32) >= 0.1) / 0.9, lambda: True))
    return cases


def _relu(x: np.ndarray) -> np.ndarray:
    import nnfast

    out = np.empty_like(x)
    nnfast._C.act_forward(out, x, 1)
    return out


def _np_gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def _check_gelu(C: Any, x: np.ndarray) -> bool:
    xs = x[:100000]
    out = np.empty_like(xs)
    C.act_forward(out, xs, 7)
    ref = _np_gelu_tanh(xs.astype(np.float64))
    return bool(np.allclose(out, ref, rtol=1e-4, atol=1e-5))


def _np_ce(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    m = z.max(1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(1, keepdims=True)
    p = e / s
    p[np.arange(len(t)), t] -= 1
    return p / len(t)


def _np_layer_norm(x: np.ndarray) -> np.ndarray:
    mu = x.mean(1, keepdims=True)
    var = x.var(1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5)


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = (4 << 20) if quick else (16 << 20)  # float32 elements: 16 MB quick, 64 MB full
    bw = measure_copy_bandwidth(max(n * 4, 32 << 20))
    rows = [{"kernel": "numpy copy (ceiling)", "size_mb": 4 * n / 2**20, "nnfast_gbs": bw, "pct_copy_bw": 100.0}]
    reps = 3 if quick else 5
    for name, nbytes, ours, ref, check in _cases(n):
        if not check():
            raise AssertionError(f"[bench] {name}: nnfast result does not match the reference")
        t_ours = median_time(ours, repeats=reps, warmup=1)
        t_ref = median_time(ref, repeats=reps, warmup=1)
        gbs = nbytes / t_ours / 1e9
        rows.append({"kernel": name, "size_mb": 4 * n / 2**20, "nnfast_gbs": gbs, "pct_copy_bw": 100 * gbs / bw,
                     "nnfast_ms": t_ours * 1e3, "numpy_ms": t_ref * 1e3, "speedup": t_ref / t_ours})
    return rows
