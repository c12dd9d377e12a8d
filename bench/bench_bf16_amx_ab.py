"""1-thread CPU-time A/B of the bf16 GEMM kernels: AMX-BF16 vs AVX512-BF16 vs fp32 on squares and
the MLP (784-1024-1024, batch 256) forward / dW / dx shapes, same process, alternating, best of N.

    NNFAST_EXT_DIR=build/dev PYTHONPATH=python python bench/bench_bf16_amx_ab.py [reps] [name filter,...] [VAR=VALUE]

VAR=VALUE: an extra column, the AMX kernel with that per-call switch set (filter "" for all shapes).

With torch installed, also torch.mm on bf16 tensors (converted beforehand; bf16 out) and with the
fp32 -> bf16 casts in each call (as autocast's linear does), 1 thread.
"""
import os, sys, time, numpy as np
from nnfast import _C
_C.set_num_threads(1)
rng = np.random.default_rng(0)
def mk(m, k, n, lay):
    # lay: NN (A row-major, B row-major), NT (B = W^T), TN (A = x^T)
    if lay == "NT":
        return rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32).T
    if lay == "TN":
        return rng.standard_normal((k, m)).astype(np.float32).T, rng.standard_normal((k, n)).astype(np.float32)
    return rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
cases = [("sq1024 NN", 1024, 1024, 1024, "NN"), ("sq2048 NN", 2048, 2048, 2048, "NN"),
         ("fwd 256x784.784x1024 NT", 256, 784, 1024, "NT"), ("fwd 256x1024.1024x1024 NT", 256, 1024, 1024, "NT"),
         ("dW1 1024x256.256x784 TN", 1024, 256, 784, "TN"), ("dW2 1024x256.256x1024 TN", 1024, 256, 1024, "TN"),
         ("dx1 256x1024.1024x784 NN", 256, 1024, 784, "NN"), ("dx2 256x1024.1024x1024 NN", 256, 1024, 1024, "NN")]
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
# --ab VAR=VALUE (3rd argument): also the AMX kernel with a switch that is read per call.
ab = sys.argv[3].partition("=")[::2] if len(sys.argv) > 3 else None
try:  # PyTorch's bf16 mm on the same shapes (1 thread; oneDNN uses AMX where the CPU has it)
    import torch
    torch.set_num_threads(1)
except ImportError:
    torch = None
sel = sys.argv[2].split(",") if len(sys.argv) > 2 else None
for name, m, k, n, lay in cases:
    if sel and not any(s in name for s in sel): continue
    a, b = mk(m, k, n, lay)
    c = np.empty((m, n), np.float32)
    fl = 2.0 * m * n * k
    def f32(): _C.gemm(c, a, b)
    def run_lv(lv):
        def f():
            _C.set_bf16_level(lv); _C.gemm(c, a, b, precision="bf16")
        return f
    fns = {"amx": run_lv("amx_bf16"), "avx512bf16": run_lv("avx512_bf16"), "fp32": f32}
    if ab:  # the AMX kernel with a per-call switch set (e.g. NNFAST_BF16_AMX_DIRECT_A=0)
        def amx_ab():
            os.environ[ab[0]] = ab[1]
            try: run_lv("amx_bf16")()
            finally: os.environ.pop(ab[0])
        fns["amx_ab"] = amx_ab
    if torch is not None:
        # torch bf16 mm: "tmm" on bf16 tensors converted beforehand (the kernel alone, bf16 out),
        # "tcast" converting the fp32 operands each call as autocast's linear does.
        ta, tb = torch.from_numpy(np.ascontiguousarray(a)).bfloat16(), torch.from_numpy(np.ascontiguousarray(b.T)).bfloat16().T
        if lay == "NN": tb = torch.from_numpy(b).bfloat16()
        if lay == "TN": ta = torch.from_numpy(np.ascontiguousarray(a.T)).bfloat16().T
        fa, fb = torch.from_numpy(a), torch.from_numpy(b)
        fns["tmm"] = lambda: torch.mm(ta, tb)
        fns["tcast"] = lambda: torch.mm(fa.bfloat16(), fb.bfloat16())
    best = {k2: 1e9 for k2 in fns}
    for r in range(reps):
        for k2, f in fns.items():
            t0 = time.process_time(); f(); dt = time.process_time() - t0
            best[k2] = min(best[k2], dt)
    _C.set_bf16_level("amx_bf16")
    g = {k2: fl / v * 1e-9 for k2, v in best.items()}
    tcols = f"  torch_bf16_mm {g['tmm']:6.0f}  torch_cast+mm {g['tcast']:6.0f}  amx/torch_mm {g['amx']/g['tmm']:5.2f}" if torch is not None else ""
    if ab: tcols += f"  amx[{ab[0]}={ab[1]}] {g['amx_ab']:6.0f}  amx/that {g['amx']/g['amx_ab']:5.2f}"
    print(f"{name:28s} amx {g['amx']:7.0f}  avx512_bf16 {g['avx512bf16']:6.0f}  fp32 {g['fp32']:6.0f}  amx/avx512bf16 {g['amx']/g['avx512bf16']:5.2f}  amx/fp32 {g['amx']/g['fp32']:5.2f}{tcols}", flush=True)
