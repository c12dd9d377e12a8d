"""GEMM benchmark (see nnfast/bench/gemm.py): python bench/bench_gemm.py [--quick] [--json PATH].

``--step``: every GEMM of the MLP training steps of issue 18 (784-128-10 batch 64 and
784-1024-1024-10 batch 256; forward, dX and dW of each layer, with the operand layouts
nnfast's Linear passes), nnfast vs torch.mm in the same process, alternated, best-of:
1 thread in process CPU time (a figure that survives a loaded machine) and, with
``--threads 1,2``, 2 threads in wall time (noise on a shared machine); ``--only TEXT``: the
GEMMs whose name contains TEXT (e.g. ``b64``). ``--tile``: the micro-kernel shapes (square 1024,
GPT-micro's M=1024 linears, the conv's 64 / 128 x 784 x 576). ``--ab SWITCH [--rounds R]`` with
any of these: children with SWITCH=1 / 0 alternated, 1 thread, best CPU time per side. ``--gpt``: the same for GPT-micro's linears
(1024 rows; issue 14). ``--dw-bias``: each dW GEMM of both (``--gpt``: GPT-micro's) with its bias
gradient, fused (gemm's row_sums) vs gemm then bias_grad, same process, alternated, best-of.
"""
import json
import os
import sys
import time


def _linear_cases(tag, rows, linears, first_dx=False):
    """Forward (x @ W^T), dX (dz @ W) and dW (dz^T @ x) of each (in, out) linear on `rows` rows,
    with the operand layouts nnfast's Linear passes."""
    cases = []
    for li, (i, o) in enumerate(linears):
        cases.append((f"{tag} L{li} fwd", rows, o, i, "n", "t"))
        if li > 0 or first_dx:
            cases.append((f"{tag} L{li} dX", rows, i, o, "n", "n"))
        cases.append((f"{tag} L{li} dW", o, i, rows, "t", "n"))
    return cases


def gpt_cases(vocab=65):
    """GPT-micro's linears (n_embd 128, batch 16 x block 64 = 1024 rows): qkv, attention proj,
    MLP up / down, tied head (issue 14). L0..L4 = c_attn, c_proj, c_fc, mlp c_proj, lm_head."""
    return _linear_cases("gpt-micro", 1024, ((128, 384), (128, 128), (128, 512), (512, 128), (128, vocab)),
                         first_dx=True)


def step_cases():
    """(name, M, N, K, a(m,k) builder layout, b layout) of the two steps' GEMMs.
    Layout 'n': the operand is a C-contiguous array; 't': the transpose view of one."""
    cases = []
    for sizes, batch in (((784, 128, 10), 64), ((784, 1024, 1024, 10), 256)):
        tag = "x".join(map(str, sizes)) + f"/b{batch}"
        for li, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
            cases.append((f"{tag} L{li} fwd", batch, o, i, "n", "t"))   # x @ W^T
            if li > 0:
                cases.append((f"{tag} L{li} dX", batch, i, o, "n", "n"))  # dz @ W
            cases.append((f"{tag} L{li} dW", o, i, batch, "t", "n"))      # dz^T @ x
    return cases


def tile_cases():
    """The micro-kernel shapes (issues 14 / 18): square, GPT-micro's linears, the conv's im2col GEMMs."""
    return [("square 1024^3", 1024, 1024, 1024, "n", "n"), ("gpt M1024 N512 K128", 1024, 512, 128, "n", "n"),
            ("gpt M1024 N128 K512", 1024, 128, 512, "n", "n"), ("conv 64x784x576", 64, 784, 576, "n", "n"),
            ("conv 128x784x576", 128, 784, 576, "n", "n")]


def ab_main(switch, rounds, argv):
    """Children with SWITCH=1 / 0 alternated `rounds` times (1 thread, CPU time, best of all rounds):
    a switch read once per process can only be A/B'd across processes."""
    import json
    import subprocess

    from nnfast import _C

    child = [a for i, a in enumerate(argv) if a != "--ab" and (i == 0 or argv[i - 1] != "--ab")]
    best = {}
    for _ in range(rounds):
        for val in ("1", "0"):
            r = subprocess.run([sys.executable] + child + ["--json-lines"], env=dict(os.environ, **{switch: val}),
                               capture_output=True, text=True, check=True)
            for line in r.stdout.splitlines():
                if line.startswith("{"):
                    d = json.loads(line)
                    b = best.setdefault(d["name"], {"flops": d["flops"], "1": 1e9, "0": 1e9, "torch": 1e9})
                    b[val], b["torch"] = min(b[val], d["ours"]), min(b["torch"], d["torch"])
    peak = _C.fma_peak_gflops()
    print(f"{switch} A/B, 1 thread, process CPU time, best of {rounds} rounds; fma peak {peak:.0f} GF/s")
    print(f"{'gemm':26s} {'on GF/s':>8s} {'off GF/s':>8s} {'torch':>6s} {'on/off':>6s} {'on/torch':>8s} {'on %pk':>6s}")
    for name, b in best.items():
        g = lambda t: b["flops"] / t * 1e-9  # noqa: E731
        print(f"{name:26s} {g(b['1']):8.1f} {g(b['0']):8.1f} {g(b['torch']):6.1f} {b['0'] / b['1']:6.3f} "
              f"{b['torch'] / b['1']:8.3f} {g(b['1']) / peak:6.0%}")


PEAK_GFLOPS = 118.0  # fp32 FMA peak per core of the reference machine (AVX-512, COMMON.md)


def _operand(rows, cols, lay, rng, np):
    if lay == "n":
        return rng.standard_normal((rows, cols)).astype(np.float32)
    return rng.standard_normal((cols, rows)).astype(np.float32).T


def _best(fn, n, rep, clock):
    best = float("inf")
    for _ in range(rep):
        t0 = clock()
        for _ in range(n):
            fn()
        best = min(best, (clock() - t0) / n)
    return best


def step_main(threads, only=None, cases=None):
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    import numpy as np
    import torch

    from nnfast import _C

    rng = np.random.default_rng(0)
    print(f"{'gemm':34s} {'M':>5s} {'N':>5s} {'K':>5s} thr {'nnfast us':>10s} {'torch us':>9s} {'ratio':>6s} "
          f"{'nnfast GF/s':>11s} {'peak':>5s}")
    for nt in threads:
        _C.set_num_threads(nt)
        torch.set_num_threads(nt)
        clock = time.process_time if nt == 1 else time.perf_counter
        for name, M, N, K, la, lb in cases or step_cases():
            if only and only not in name:
                continue
            a, b = _operand(M, K, la, rng, np), _operand(K, N, lb, rng, np)
            c1, c2 = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
            ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c2)
            ours, theirs = (lambda: _C.gemm(c1, a, b)), (lambda: torch.mm(ta, tb, out=tc))
            ours(), theirs()
            ref = a.astype(np.float64) @ b.astype(np.float64)
            err = float(np.max(np.abs(c1 - ref)) / (np.max(np.abs(ref)) + 1e-30))
            assert err < 1e-5, (name, err)
            flops = 2.0 * M * N * K
            n = max(3, int(2e7 / flops))  # ~ a few ms per block
            x, y = float("inf"), float("inf")
            for _ in range(5):
                x, y = min(x, _best(ours, n, 3, clock)), min(y, _best(theirs, n, 3, clock))
            if "--json-lines" in sys.argv:
                print(json.dumps({"name": name, "flops": flops, "ours": x, "torch": y}), flush=True)
                continue
            print(f"{name:34s} {M:5d} {N:5d} {K:5d} {nt:3d} {x * 1e6:10.1f} {y * 1e6:9.1f} {x / y:6.2f} "
                  f"{flops / x * 1e-9:11.1f} {flops / x * 1e-9 / (PEAK_GFLOPS * nt):5.0%}", flush=True)


def dw_bias_main(threads, cases):
    """A Linear's dW + db: gemm(dW, dz^T, x, row_sums=db) vs gemm then bias_grad (the path before)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    import numpy as np

    from nnfast import _C

    rng = np.random.default_rng(0)
    print(f"{'dW + db':34s} {'out':>5s} {'in':>5s} {'rows':>5s} thr {'fused us':>9s} {'separate us':>11s} {'ratio':>6s}")
    for nt in threads:
        _C.set_num_threads(nt)
        clock = time.process_time if nt == 1 else time.perf_counter
        for name, M, N, K, la, lb in cases:
            if not name.endswith("dW"):
                continue
            dz, x = rng.standard_normal((K, M)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
            dw, db = np.zeros((M, N), np.float32), np.zeros(M, np.float32)
            fused = lambda: _C.gemm(dw, dz.T, x, 1.0, 1.0, row_sums=db)  # noqa: E731
            sep = lambda: (_C.gemm(dw, dz.T, x, 1.0, 1.0), _C.bias_grad(db, dz, True))  # noqa: E731
            n = max(3, int(2e7 / (2.0 * M * N * K)))
            a, b = float("inf"), float("inf")
            for _ in range(7):
                a, b = min(a, _best(fused, n, 3, clock)), min(b, _best(sep, n, 3, clock))
            print(f"{name:34s} {M:5d} {N:5d} {K:5d} {nt:3d} {a * 1e6:9.1f} {b * 1e6:11.1f} {a / b:6.3f}", flush=True)


if __name__ == "__main__":
    if "--dw-bias" in sys.argv:
        thr = (1,)
        if "--threads" in sys.argv:
            thr = tuple(int(t) for t in sys.argv[sys.argv.index("--threads") + 1].split(","))
        dw_bias_main(thr, gpt_cases() if "--gpt" in sys.argv else step_cases())
        sys.exit(0)
    if "--ab" in sys.argv:
        argv, rounds = list(sys.argv), 3
        if "--rounds" in argv:
            i = argv.index("--rounds")
            rounds = int(argv[i + 1])
            del argv[i:i + 2]
        ab_main(argv[argv.index("--ab") + 1], rounds, argv)
        sys.exit(0)
    if "--step" in sys.argv or "--gpt" in sys.argv or "--tile" in sys.argv:
        thr = (1,)
        if "--threads" in sys.argv:
            thr = tuple(int(t) for t in sys.argv[sys.argv.index("--threads") + 1].split(","))
        only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
        step_main(thr, only, gpt_cases() if "--gpt" in sys.argv else tile_cases() if "--tile" in sys.argv else None)
        sys.exit(0)
    from nnfast.bench.gemm import main

    sys.exit(main())
