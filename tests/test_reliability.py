"""Native robustness: threads, 64-bit sizes, floating-point state, no hidden copies."""
import threading

import numpy as np
import pytest

import nnfast
import nnfast.nn.functional as F


def test_concurrent_calls_match_serial():
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(8):
        x = rng.standard_normal((64 + i, 300)).astype(np.float32)
        w = rng.standard_normal((200, 300)).astype(np.float32)
        b = rng.standard_normal(200).astype(np.float32)
        jobs.append((x, w, b))

    def compute(x, w, b):
        out = F.linear(nnfast.tensor(x), nnfast.tensor(w), nnfast.tensor(b), activation="gelu")
        return F.cross_entropy(out, nnfast.tensor(np.arange(len(x)) % 200)).item(), out.numpy()

    serial = [compute(*j) for j in jobs]
    results = [None] * len(jobs)

    def worker(k):
        for _ in range(3):
            results[k] = compute(*jobs[k])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(jobs))]
    for t in threads[:4]:
        t.start()
    for t in threads[:4]:
        t.join()
    for t in threads[4:]:
        t.start()
    for t in threads[4:]:
        t.join()
    for (l1, o1), (l2, o2) in zip(serial, results):
        assert l1 == l2
        assert np.array_equal(o1, o2)


def test_gil_released_during_kernels():
    # A long GEMM in one thread must not block a Python thread counting in another.
    a = np.random.default_rng(0).standard_normal((1500, 1500)).astype(np.float32)
    out = np.empty_like(a)
    ticks = []
    done = threading.Event()

    def counter():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=counter)
    t.start()
    for _ in range(3):
        nnfast._C.gemm(out, a, a)
    done.set()
    t.join()
    assert len(ticks) > 100


def test_floating_point_state_untouched():
    tiny = np.float32(1e-40)  # a float32 denormal
    assert tiny * np.float32(1.0) != 0  # denormals are honoured (no FTZ/DAZ set by nnfast)
    x = nnfast.tensor(np.full((4, 8), 1e-39, np.float32))
    w = nnfast.ones(3, 8)
    y = F.linear(x, w)
    assert np.all(y.numpy() > 0)
    assert np.float32(1e-40) * np.float32(1.0) != 0


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.skipif(_available_bytes() < 14 * 2**30, reason="needs ~9 GB of free memory")
def test_more_than_2_31_elements():
    n = 2**31 + 17
    x = np.empty(n, dtype=np.float32)
    x[: n // 2] = -1.0
    x[n // 2:] = 2.0
    nnfast._C.act_forward(x, x, 1)  # ReLU in place over > 2^31 elements
    assert x[0] == 0.0 and x[n // 2 - 1] == 0.0
    assert x[n // 2] == 2.0 and x[-1] == 2.0
    del x
