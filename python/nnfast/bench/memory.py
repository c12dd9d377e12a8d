"""Memory-bound kernels on large float32 tensors against the machine's copy
bandwidth, NumPy, and PyTorch when installed: 16 MB per operand (in or near L3)
and 64 MB (DRAM) in the same run; ``--quick``: 16 MB only. The percentage of copy
bandwidth is the one to read at 64 MB; the PyTorch ratio (``vs_torch`` > 1: nnfast
faster) at both sizes. The NumPy reference is timed at the largest size only.

Every kernel is called with preallocated outputs, PyTorch's included where
ATen has an ``out=`` overload (the kernel is measured, not the allocator's page
faults), except "relu fwd (fresh output)", which allocates as a layer does.
Bytes counted are the minimum each kernel must move: every input read once,
every output written once. The copy ceiling counts the same bytes (read +
write) and is the fastest of three copies timed the same way as the kernels:
NumPy on one thread, NumPy split over two Python threads, and nnfast's own
threaded copy (the identity activation), whose streaming stores above 16 MB per
thread move exactly those bytes. A NumPy copy of 64 MB writes through the cache:
every output line is read for ownership first, three transfers per element where
two are counted, so on its own it understates the ceiling ~1.5x (and kernels that
stream their outputs read above 100 %).

The ceiling moves with the machine's other load (a shared host's DRAM: 50-135 GB/s
from run to run at 64 MB), so one copy timed up front is not a steady divisor. The
fastest copy is therefore timed again with every kernel, call by call alternated with
it, into preallocated outputs as the kernels are: ``copy_gbs`` is that copy's median
beside the kernel and ``pct_copy_bw`` is the kernel's rate in that alternated run against
it. Alternation evicts a 16 MB kernel's data from the cache between calls, so ``nnfast_ms``,
``nnfast_gbs`` and the NumPy / PyTorch ratios come from a separate warm, back-to-back run, timed
the way the other contenders are. The "copy, interleaved" row gives
the median of those copies over the whole size and their spread (min-max GB/s).

Correctness is checked first for each kernel against a float64 NumPy formula.
"""
from __future__ import annotations

import statistics
import threading
import time
from typing import Any, Callable, Optional

import numpy as np

from .common import median_time, torch_or_none

# (name, bytes moved, nnfast call, NumPy call, PyTorch call or None, check)
Case = tuple[str, int, Callable[[], Any], Callable[[], Any], Optional[Callable[[], Any]], Callable[[], bool]]


def copy_bandwidth(n: int, threads: int, timer: Optional[Callable[[Callable[[], Any]], float]] = None) -> float:
    """GB/s (read + write) of a NumPy copy of n float32 values, split over ``threads`` Python threads
    (no streaming stores at 64 MB: see the module docstring)."""
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    bounds = np.linspace(0, n, threads + 1).astype(int)

    def run() -> None:
        workers = [threading.Thread(target=np.copyto, args=(dst[a:b], src[a:b]))
                   for a, b in zip(bounds[1:-1], bounds[2:])]
        for w in workers:
            w.start()
        np.copyto(dst[: bounds[1]], src[: bounds[1]])
        for w in workers:
            w.join()

    t = (timer or (lambda f: median_time(f, repeats=9, warmup=2)))(run)
    return 2 * 4 * n / t / 1e9


def stream_copy_bandwidth(n: int, timer: Optional[Callable[[Callable[[], Any]], float]] = None) -> float:
    """GB/s (read + write) of nnfast's threaded copy of n float32 values (the identity
    activation: streaming stores above 16 MB per thread, as every activation kernel)."""
    import nnfast
    from ..nn.functional import _act_codes as codes

    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    t = (timer or (lambda f: median_time(f, repeats=9, warmup=2)))(
        lambda: nnfast._C.act_forward(dst, src, codes.IDENTITY))
    return 2 * 4 * n / t / 1e9


def copy_ceiling(n: int, timer: Optional[Callable[[Callable[[], Any]], float]] = None,
                 fastest: Optional[list[Callable[[], Any]]] = None) -> dict[str, float]:
    """The copy figures of n float32 values in GB/s (read + write bytes), and ``ceiling``,
    the fastest of them: the one definition every memory-bound bench divides by.
    ``timer(fn)`` -> seconds per call; the default is the median this module uses.
    ``fastest``, when given, receives the fastest copy's call (to time again beside the kernels)."""
    import nnfast

    calls: list[Callable[[], Any]] = []

    def keep(fn: Callable[[], Any]) -> float:
        calls.append(fn)
        return (timer or (lambda f: median_time(f, repeats=9, warmup=2)))(fn)

    figures = {
        "numpy copy, 1 thread": copy_bandwidth(n, 1, keep),
        "numpy copy, 2 threads": copy_bandwidth(n, 2, keep),
        f"nnfast copy (streaming stores), {nnfast.get_num_threads()} threads": stream_copy_bandwidth(n, keep),
    }
    best = max(range(len(calls)), key=lambda i: list(figures.values())[i])
    figures["ceiling"] = max(figures.values())
    if fastest is not None:
        fastest.append(calls[best])
    return figures


def alternate(f: Callable[[], Any], g: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """f and g called alternately (f, g, f, g, ...): f's median seconds per call, and g's
    seconds of every call, so g measures the machine as f saw it."""
    for _ in range(warmup):
        f()
        g()
    tf, tg = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        t1 = time.perf_counter()
        g()
        tg.append(time.perf_counter() - t1)
        tf.append(t1 - t0)
    return statistics.median(tf), tg


def _close(a: Any, ref: Any, tol: float = 1e-4) -> bool:
    return bool(np.allclose(np.asarray(a, np.float64), ref, rtol=tol, atol=tol))


def _activation_cases(C: Any, torch: Any, x: np.ndarray, g: np.ndarray, out: np.ndarray) -> list[Case]:
    from ..nn.functional import _act_codes as codes

    n = x.size
    x64 = x[:4096].astype(np.float64)
    y_relu = np.maximum(x, 0)
    tx, tout = (torch.from_numpy(x), torch.from_numpy(out)) if torch else (None, None)
    aten: Any = torch.ops.aten if torch else None  # out= / grad_input= overloads: no allocation timed
    tg, ty = (torch.from_numpy(g), torch.from_numpy(y_relu)) if torch else (None, None)
    sig = 1 / (1 + np.exp(-x64))
    gelu_t = 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64**3)))

    def check_fwd(code: int, ref: np.ndarray) -> Callable[[], bool]:
        def check() -> bool:
            o = np.empty(4096, np.float32)
            C.act_forward(o, x[:4096], code)
            return _close(o, ref)
        return check

    relu, sigmoid, tanh, silu, gelu_tanh, gelu = (codes.resolve(a)[0] for a in (
        "relu", "sigmoid", "tanh", "silu", ("gelu", {"approximate": "tanh"}), "gelu"))
    from math import erf
    gelu_erf = x64 * 0.5 * (1 + np.vectorize(erf)(x64 / np.sqrt(2)))
    y_sig = np.empty_like(x)
    C.act_forward(y_sig, x, sigmoid)
    ts = torch.from_numpy(y_sig) if torch else None
    return [
        ("relu fwd", 2 * 4 * n, lambda: C.act_forward(out, x, relu), lambda: np.maximum(x, 0, out=out),
         (lambda: torch.clamp_min(tx, 0, out=tout)) if torch else None, check_fwd(relu, np.maximum(x64, 0))),
        # A fresh output per call, as nnfast.relu(t) / torch.relu(t) allocate: the allocator's page
        # faults included (a 64 MB block is above glibc's mmap-threshold cap: see nnfast._malloc).
        ("relu fwd (fresh output)", 2 * 4 * n, lambda: C.act_forward(np.empty_like(x), x, relu),
         lambda: np.maximum(x, 0), (lambda: torch.relu(tx)) if torch else None, lambda: True),
        ("relu bwd", 3 * 4 * n, lambda: C.act_backward(out, g, y_relu, relu),
         lambda: np.multiply(g, y_relu > 0, out=out),
         (lambda: aten.threshold_backward.grad_input(tg, ty, 0, grad_input=tout)) if torch else None, lambda: True),
        ("sigmoid fwd", 2 * 4 * n, lambda: C.act_forward(out, x, sigmoid),
         lambda: np.divide(1, 1 + np.exp(-x), out=out),
         (lambda: torch.sigmoid(tx, out=tout)) if torch else None, check_fwd(sigmoid, sig)),
        ("sigmoid bwd (from y)", 3 * 4 * n, lambda: C.act_backward(out, g, y_sig, sigmoid),
         lambda: np.multiply(g, y_sig * (1 - y_sig), out=out),
         (lambda: aten.sigmoid_backward.grad_input(tg, ts, grad_input=tout)) if torch else None, lambda: True),
        ("tanh fwd", 2 * 4 * n, lambda: C.act_forward(out, x, tanh), lambda: np.tanh(x, out=out),
         (lambda: torch.tanh(tx, out=tout)) if torch else None, check_fwd(tanh, np.tanh(x64))),
        ("silu fwd", 2 * 4 * n, lambda: C.act_forward(out, x, silu), lambda: np.multiply(x, 1 / (1 + np.exp(-x)), out=out),
         (lambda: aten.silu.out(tx, out=tout)) if torch else None, check_fwd(silu, x64 * sig)),
        ("gelu (tanh) fwd", 2 * 4 * n, lambda: C.act_forward(out, x, gelu_tanh),
         lambda: np.multiply(0.5 * x, 1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)), out=out),
         (lambda: aten.gelu.out(tx, approximate="tanh", out=tout)) if torch else None,
         check_fwd(gelu_tanh, gelu_t)),
        ("gelu (tanh) bwd", 3 * 4 * n, lambda: C.act_backward(out, g, x, gelu_tanh),
         lambda: np.multiply(g, 0.5 * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))), out=out),
         (lambda: aten.gelu_backward.grad_input(tg, tx, approximate="tanh", grad_input=tout)) if torch else None, lambda: True),
        ("gelu (erf) fwd", 2 * 4 * n, lambda: C.act_forward(out, x, gelu), lambda: None,
         (lambda: aten.gelu.out(tx, out=tout)) if torch else None, check_fwd(gelu, gelu_erf)),
        ("gelu (erf) bwd", 3 * 4 * n, lambda: C.act_backward(out, g, x, gelu), lambda: None,
         (lambda: aten.gelu_backward.grad_input(tg, tx, grad_input=tout)) if torch else None, lambda: True),
    ]


def _row_cases(C: Any, torch: Any, x: np.ndarray, g: np.ndarray, out: np.ndarray) -> list[Case]:
    n = x.size
    # Softmax / cross-entropy over rows of 1000 classes; norms over rows of 1024.
    B, K = n // 1000, 1000
    z = x[: B * K].reshape(B, K)
    zo = out[: B * K].reshape(B, K)
    gz = g[: B * K].reshape(B, K)
    target = np.random.default_rng(1).integers(0, K, B)
    loss = np.empty(1, np.float32)
    R, D = n // 1024, 1024
    xr, gr, yr = x[: R * D].reshape(R, D), g[: R * D].reshape(R, D), out[: R * D].reshape(R, D)
    w, bias = np.ones(D, np.float32), np.zeros(D, np.float32)
    mean, rstd = np.empty(R), np.empty(R)  # statistics are float64
    dw, db = np.zeros(D, np.float32), np.zeros(D, np.float32)
    C.layer_norm_forward(yr, mean, rstd, xr, w, bias, 1e-5)
    saved_mean, saved_rstd = mean.copy(), rstd.copy()
    bn_mean, bn_rstd = np.empty(D), np.empty(D)
    xr3, gr3, yr3 = xr[:, :, None], gr[:, :, None], yr[:, :, None]  # (N, C, L = 1)
    sm = np.empty_like(z)
    C.softmax_forward(sm, z, 1)

    def check_ce() -> bool:
        zs, ts = z[:64].astype(np.float64), target[:64]
        ref = np.exp(zs - zs.max(1, keepdims=True))
        ref /= ref.sum(1, keepdims=True)
        ref[np.arange(64), ts] -= 1
        d = np.empty((64, K, 1), np.float32)
        C.cross_entropy(np.empty(1, np.float32), d, z[:64].reshape(64, K, 1), ts.reshape(64, 1), None, -100, 0.0, 1)
        return _close(d[:, :, 0], ref / 64, 1e-6)

    def check_ln() -> bool:
        xs = xr[:16].astype(np.float64)
        ref = (xs - xs.mean(1, keepdims=True)) / np.sqrt(xs.var(1, keepdims=True) + 1e-5)
        o = np.empty((16, D), np.float32)
        C.layer_norm_forward(o, np.empty(16), np.empty(16), xr[:16], w, bias, 1e-5)
        return _close(o, ref)

    def check_softmax() -> bool:
        zs = z[:16].astype(np.float64)
        ref = np.exp(zs - zs.max(1, keepdims=True))
        return _close(sm[:16], ref / ref.sum(1, keepdims=True), 1e-6)

    def np_ce() -> None:
        m = z.max(1, keepdims=True)
        np.subtract(z, m, out=zo)
        np.exp(zo, out=zo)
        np.divide(zo, zo.sum(1, keepdims=True), out=zo)
        zo[np.arange(B), target] -= 1
        np.divide(zo, B, out=zo)

    def np_ln() -> None:
        mu = xr.mean(1, keepdims=True)
        np.subtract(xr, mu, out=yr)
        np.divide(yr, np.sqrt((yr * yr).mean(1, keepdims=True) + 1e-5), out=yr)

    def np_softmax() -> None:
        np.subtract(z, z.max(1, keepdims=True), out=zo)
        np.exp(zo, out=zo)
        np.divide(zo, zo.sum(1, keepdims=True), out=zo)

    def check_log_softmax() -> bool:
        zs = z[:16].astype(np.float64)
        ref = zs - zs.max(1, keepdims=True)
        ref -= np.log(np.exp(ref).sum(1, keepdims=True))
        o = np.empty((16, K), np.float32)
        C.softmax_forward(o, z[:16], 1, True)
        return _close(o, ref, 1e-5)

    tz, tzo = (torch.from_numpy(z), torch.from_numpy(zo)) if torch else (None, None)
    aten: Any = torch.ops.aten if torch else None  # out= / grad_input= overloads: no allocation timed
    tgz, tsm = (torch.from_numpy(gz), torch.from_numpy(sm)) if torch else (None, None)
    tt = torch.from_numpy(target) if torch else None
    txr, tw, tb = (torch.from_numpy(xr), torch.from_numpy(w), torch.from_numpy(bias)) if torch else (None,) * 3
    return [
        ("softmax fwd (rows of 1000)", 2 * 4 * B * K, lambda: C.softmax_forward(zo, z, 1), np_softmax,
         (lambda: aten._softmax.out(tz, 1, False, out=tzo)) if torch else None, check_softmax),
        ("softmax bwd", 3 * 4 * B * K, lambda: C.softmax_backward(zo, gz, sm, 1),
         lambda: np.multiply(sm, gz - (gz * sm).sum(1, keepdims=True), out=zo),
         (lambda: aten._softmax_backward_data.out(tgz, tsm, 1, torch.float32, grad_input=tzo)) if torch else None,
         lambda: True),
        ("log_softmax fwd (rows of 1000)", 2 * 4 * B * K, lambda: C.softmax_forward(zo, z, 1, True), lambda: None,
         (lambda: aten._log_softmax.out(tz, 1, False, out=tzo)) if torch else None, check_log_softmax),
        ("cross_entropy loss+grad (rows of 1000)", 2 * 4 * B * K,
         lambda: C.cross_entropy(loss, zo.reshape(B, K, 1), z.reshape(B, K, 1), target.reshape(B, 1), None, -100,
                                 0.0, 1),
         np_ce, (lambda: torch.nn.functional.cross_entropy(tz, tt)) if torch else None, check_ce),
        ("layer_norm fwd (rows of 1024)", 2 * 4 * R * D, lambda: C.layer_norm_forward(yr, mean, rstd, xr, w, bias, 1e-5),
         np_ln, (lambda: torch.nn.functional.layer_norm(txr, (D,), tw, tb)) if torch else None, check_ln),
        ("layer_norm bwd", 3 * 4 * R * D,
         lambda: C.layer_norm_backward(yr, dw, db, gr, xr, saved_mean, saved_rstd, w), lambda: None, None,
         lambda: True),
        ("rms_norm fwd", 2 * 4 * R * D, lambda: C.layer_norm_forward(yr, None, rstd, xr, w, None, 1e-5, True),
         lambda: np.multiply(xr, 1 / np.sqrt((xr * xr).mean(1, keepdims=True) + 1e-5), out=yr), None, lambda: True),
        ("rms_norm bwd", 3 * 4 * R * D,
         lambda: C.layer_norm_backward(yr, dw, None, gr, xr, None, saved_rstd, w, True), lambda: None, None,
         lambda: True),
        ("batch_norm fwd (train, 1024 features)", 2 * 4 * R * D,
         lambda: C.batch_norm_forward(yr3, bn_mean, bn_rstd, None, None, xr3, w, bias, True, 0.1, 1e-5),
         lambda: np.divide(xr - xr.mean(0), np.sqrt(xr.var(0) + 1e-5), out=yr),
         (lambda: torch.nn.functional.batch_norm(txr, None, None, tw, tb, True)) if torch else None, lambda: True),
        ("batch_norm bwd", 3 * 4 * R * D,
         lambda: C.batch_norm_backward(yr3, dw, db, gr3, xr3, bn_mean, bn_rstd, w, True), lambda: None, None,
         lambda: True),
    ]


def _dropout_cases(C: Any, torch: Any, x: np.ndarray, g: np.ndarray, out: np.ndarray) -> list[Case]:
    n = x.size
    tx = torch.from_numpy(x) if torch else None
    rng = np.random.default_rng(2)

    def check() -> bool:
        o = np.empty(100000, np.float32)
        C.dropout_forward(o, x[:100000], 0.1, 7, 0)
        kept = o != 0
        return bool(np.allclose(o[kept], x[:100000][kept] / 0.9) and abs(kept.mean() - 0.9) < 0.01)

    return [
        ("dropout fwd", 2 * 4 * n, lambda: C.dropout_forward(out, x, 0.1, 7, 0),
         lambda: np.multiply(x, (rng.random(n, dtype=np.float32) >= 0.1) / np.float32(0.9), out=out),
         (lambda: torch.nn.functional.dropout(tx, 0.1, True)) if torch else None, check),
        ("dropout bwd", 2 * 4 * n, lambda: C.dropout_backward(out, g, 0.1, 7, 0),
         lambda: np.multiply(g, (rng.random(n, dtype=np.float32) >= 0.1) / np.float32(0.9), out=out), None,
         lambda: True),
    ]


def _optimizer_cases(torch: Any, n: int) -> list[Case]:
    import nnfast

    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(n).astype(np.float32)
    g0 = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    # (name, nnfast class, kwargs, arrays read + written per element, torch class name, torch kwargs)
    specs = [
        ("SGD (momentum)", "SGD", {"lr": 1e-3, "momentum": 0.9}, 5, "SGD", {"lr": 1e-3, "momentum": 0.9}),
        ("Adam", "Adam", {"lr": 1e-4}, 7, "Adam", {"lr": 1e-4}),
        ("AdamW", "AdamW", {"lr": 1e-4}, 7, "AdamW", {"lr": 1e-4}),
        ("Adagrad", "Adagrad", {"lr": 1e-3}, 5, "Adagrad", {"lr": 1e-3}),
        ("RMSprop", "RMSprop", {"lr": 1e-4}, 5, "RMSprop", {"lr": 1e-4}),
        ("Lion", "Lion", {"lr": 1e-5}, 5, None, {}),
        ("LAMB", "LAMB", {"lr": 1e-4}, 7, None, {}),
        ("AdaBound", "AdaBound", {"lr": 1e-4}, 7, None, {}),
    ]
    cases: list[Case] = []
    for name, cls, kw, arrays, tcls, tkw in specs:
        p = nnfast.nn.Parameter(p0.copy())
        p.grad = nnfast.from_numpy(g0.copy())
        opt = getattr(nnfast.optim, cls)([p], **kw)
        ref: Callable[[], Any] = _numpy_optimizer(cls, kw, p0.copy(), g0)
        tstep = None
        if torch is not None and tcls is not None:
            tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
            tp.grad = torch.from_numpy(g0.copy())
            topt = getattr(torch.optim, tcls)([tp], foreach=False, **tkw)
            tstep = topt.step
        cases.append((f"{name} step", arrays * 4 * n, opt.step, ref, tstep, lambda: True))
    return cases


def _numpy_optimizer(cls: str, kw: dict[str, Any], p: np.ndarray, g: np.ndarray) -> Callable[[], Any]:
    """The same update written with NumPy expressions (the reference timing only)."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    t = [0]
    lr = kw["lr"]

    def adam_like() -> None:
        t[0] += 1
        m[:] = 0.9 * m + 0.1 * g
        v[:] = 0.999 * v + 0.001 * g * g
        p[:] -= lr * (m / (1 - 0.9 ** t[0])) / (np.sqrt(v / (1 - 0.999 ** t[0])) + 1e-8)

    def sgd() -> None:
        m[:] = 0.9 * m + g
        p[:] -= lr * m

    def adagrad() -> None:
        v[:] += g * g
        p[:] -= lr * g / (np.sqrt(v) + 1e-10)

    def rmsprop() -> None:
        v[:] = 0.99 * v + 0.01 * g * g
        p[:] -= lr * g / (np.sqrt(v) + 1e-8)

    def lion() -> None:
        p[:] -= lr * np.sign(0.9 * m + 0.1 * g)
        m[:] = 0.99 * m + 0.01 * g

    return {"SGD": sgd, "Adagrad": adagrad, "RMSprop": rmsprop, "Lion": lion}.get(cls, adam_like)


def _tensor_cases(C: Any, torch: Any, x: np.ndarray, g: np.ndarray, out: np.ndarray) -> list[Case]:
    """The tape's tensor arithmetic (autograd/basic_ops.py): broadcast binary ops, reductions, casts."""
    from .._dispatch import BINARY_CODES, REDUCE_CODES

    n = x.size
    R, D = n // 1024, 1024
    xr, outr = x[: R * D].reshape(R, D), out[: R * D].reshape(R, D)
    row = g[:D].copy()
    col_out, row_out = np.empty(D, np.float32), np.empty(R, np.float32)
    idx = np.empty(R, np.int64)
    out64 = np.empty(n, np.float64)
    # PyTorch views of the same buffers (None without PyTorch)
    tx, tg, txr, trow, tout, toutr, tcol, trow_out, tout64 = (
        [torch.from_numpy(a) if torch else None for a in (x, g, xr, row, out, outr, col_out, row_out, out64)])
    add, mul = BINARY_CODES["add"], BINARY_CODES["mul"]
    red_sum, red_max = REDUCE_CODES["sum"], REDUCE_CODES["max"]

    def check_add() -> bool:
        o = np.empty(4096, np.float32)
        C.binary_op(o, x[:4096], g[:4096], add)
        return _close(o, x[:4096].astype(np.float64) + g[:4096])

    def check_sums() -> bool:
        a, b = np.empty(D, np.float32), np.empty(16, np.float32)
        C.reduce_dim(a, None, xr[:64], 0, red_sum)
        C.reduce_dim(b, None, xr[:16], 1, red_sum)
        return _close(a, xr[:64].astype(np.float64).sum(0)) and _close(b, xr[:16].astype(np.float64).sum(1))

    def check_max() -> bool:
        v, i = np.empty(16, np.float32), np.empty(16, np.int64)
        C.reduce_dim(v, i, xr[:16], 1, red_max)
        return bool(np.array_equal(v, xr[:16].max(1)) and np.array_equal(i, xr[:16].argmax(1)))

    def check_cast() -> bool:
        o = np.empty(4096, np.float64)
        C.cast(o, x[:4096])
        return bool(np.array_equal(o, x[:4096].astype(np.float64)))

    def np_max() -> None:
        np.max(xr, axis=1, out=row_out)
        np.argmax(xr, axis=1, out=idx)

    return [
        ("add (same shape)", 3 * 4 * n, lambda: C.binary_op(out, x, g, add), lambda: np.add(x, g, out=out),
         (lambda: torch.add(tx, tg, out=tout)) if torch else None, check_add),
        ("mul (R x 1024) * row", 2 * 4 * n, lambda: C.binary_op(outr, xr, row, mul),
         lambda: np.multiply(xr, row, out=outr),
         (lambda: torch.mul(txr, trow, out=toutr)) if torch else None, lambda: True),
        ("sum over rows -> 1024", 4 * n, lambda: C.reduce_dim(col_out, None, xr, 0, red_sum),
         lambda: np.sum(xr, axis=0, out=col_out),
         (lambda: torch.sum(txr, 0, out=tcol)) if torch else None, check_sums),
        ("sum over last dim (1024)", 4 * n, lambda: C.reduce_dim(row_out, None, xr, 1, red_sum),
         lambda: np.sum(xr, axis=1, out=row_out),
         (lambda: torch.sum(txr, 1, out=trow_out)) if torch else None, lambda: True),
        ("max + argmax over last dim", 4 * n, lambda: C.reduce_dim(row_out, idx, xr, 1, red_max), np_max,
         (lambda: torch.max(txr, 1)) if torch else None, check_max),
        ("cast float32 -> float64", 12 * n, lambda: C.cast(out64, x), lambda: np.copyto(out64, x),
         (lambda: torch.Tensor.copy_(tout64, tx)) if torch else None, check_cast),
    ]


def _cases(n: int, torch: Any) -> list[Case]:
    import nnfast

    C = nnfast._C
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    out = np.empty_like(x)
    return (_activation_cases(C, torch, x, g, out) + _row_cases(C, torch, x, g, out)
            + _dropout_cases(C, torch, x, g, out) + _tensor_cases(C, torch, x, g, out) + _optimizer_cases(torch, n))


def run(quick: bool = False) -> list[dict[str, Any]]:
    torch = torch_or_none()
    rows: list[dict[str, Any]] = []
    sizes = [4 << 20] if quick else [4 << 20, 16 << 20]  # float32 elements per operand: 16 MB, 64 MB
    for n in sizes:
        rows += _run_size(n, torch, reps=3 if quick else 5, numpy_ref=n == sizes[-1])
    return rows


def _run_size(n: int, torch: Any, reps: int, numpy_ref: bool) -> list[dict[str, Any]]:
    fastest: list[Callable[[], Any]] = []
    figures = copy_ceiling(n, fastest=fastest)
    ceiling = figures.pop("ceiling")
    copy, copy_bytes = fastest[0], 2 * 4 * n
    mb = 4 * n / 2**20
    rows: list[dict[str, Any]] = [
        {"kernel": name, "size_mb": mb, "nnfast_gbs": bw, "pct_copy_bw": 100 * bw / ceiling}
        for name, bw in figures.items()]
    rows.append({"kernel": "copy ceiling (fastest of the above)", "size_mb": mb, "nnfast_gbs": ceiling,
                 "pct_copy_bw": 100.0})
    summary: dict[str, Any] = {"kernel": "copy, interleaved with the kernels (median)", "size_mb": mb}
    rows.append(summary)
    copies: list[float] = []  # every interleaved copy's seconds
    for name, nbytes, ours, ref, tref, check in _cases(n, torch):
        if not check():
            raise AssertionError(f"[bench] {name}: nnfast result does not match the reference")
        time.sleep(0.05)
        # Warm, back to back, as the NumPy and PyTorch contenders are timed: nnfast_ms and the ratios.
        t_ours = median_time(ours, repeats=reps, warmup=1)
        # Alternated with the copy, so kernel and copy see the same machine: the % of copy.
        t_alt, t_copies = alternate(ours, copy, repeats=reps)
        copies += t_copies
        gbs, copy_gbs = nbytes / t_ours / 1e9, copy_bytes / statistics.median(t_copies) / 1e9
        row: dict[str, Any] = {"kernel": name, "size_mb": mb, "nnfast_gbs": gbs, "copy_gbs": copy_gbs,
                               "pct_copy_bw": 100 * nbytes / t_alt / 1e9 / copy_gbs, "nnfast_ms": t_ours * 1e3}
        t_ref = median_time(ref, repeats=reps, warmup=1) if numpy_ref else 0.0
        if t_ref > 1e-5:  # a timed NumPy reference exists
            row["numpy_ms"] = t_ref * 1e3
            row["speedup"] = t_ref / t_ours
        if tref is not None:
            time.sleep(0.05)
            t_torch = median_time(tref, repeats=reps, warmup=1)
            row["torch_ms"] = t_torch * 1e3
            row["vs_torch"] = t_torch / t_ours
        rows.append(row)
    gbs_all = sorted(copy_bytes / t / 1e9 for t in copies)
    summary.update(nnfast_gbs=statistics.median(gbs_all), copy_gbs=statistics.median(gbs_all),
                   pct_copy_bw=100 * statistics.median(gbs_all) / ceiling,
                   copy_spread=f"{gbs_all[0]:.0f}-{gbs_all[-1]:.0f}")
    return rows
