#!/usr/bin/env bash
# One-shot GPU check (DESIGN.md section 8): on a lent GPU machine (H100/H200; python3.12, CuPy,
# PyTorch, pybind11, scikit-build-core, CMake, nvcc 13.0; no network), from the repository root:
#
#     bash bench/gpu_check.sh            # logs in gpu_logs/ (or $NNFAST_GPU_LOGS)
#
# 1. builds nnfast with nvcc (NNFAST_CUDA=ON, sm_90 only, to save time) into the active Python;
# 2. runs the cuda tests (the device-parametrised suite on the real GPU);
# 3. runs the GPU benchmarks: GEMM vs CuPy's cuBLAS matmul, memory-bound kernels vs a device
#    copy, the MLP training step vs PyTorch eager;
# and writes one log per step plus summary.txt. Every step is time-limited, logs, and the
# script goes on after a failure (the summary says which steps failed). Budget: < 8 minutes.
# NOT YET RUN ON A GPU: written and shell-checked without one.
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${NNFAST_GPU_LOGS:-gpu_logs}
mkdir -p "$LOGS"
SUMMARY="$LOGS/summary.txt"
: > "$SUMMARY"
T0=$(date +%s)

step() {  # step NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  local s=$(date +%s)
  echo "== $name (limit ${limit}s)" | tee -a "$SUMMARY"
  timeout --kill-after=10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  local line="   $name: rc=$rc in $(( $(date +%s) - s ))s (log $LOGS/$name.log)"
  [ $rc -eq 0 ] || line="$line  FAILED"
  echo "$line" | tee -a "$SUMMARY"
  tail -5 "$LOGS/$name.log" | sed 's/^/     /'
  return 0
}

step env 60 bash -c 'nvidia-smi; nvcc --version; python3 --version;
  python3 -c "import cupy, torch; print(\"cupy\", cupy.__version__, \"torch\", torch.__version__, torch.cuda.get_device_name(0))"'

# ---------------------------------------------------------------- 1. build (nvcc)
step build 300 env CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install --no-build-isolation -v . \
  -Ccmake.define.NNFAST_CUDA=ON -Ccmake.define.NNFAST_CUDA_ARCHITECTURES=90

step info 60 python3 -c 'import json, nnfast, nnfast._dispatch as D
i = nnfast.info(); print(json.dumps(i, indent=1))
print("cuda ops:", D.ops("cuda"))
assert i["cuda_available"] and not i["cuda_emulated"], "no real cuda device"'

# ---------------------------------------------------------------- 2. cuda tests
# The installed package (not ./python) is tested: run pytest from tests/ with the repo's
# python/ off the path.
step cuda_tests 240 bash -c 'cd tests && python3 -m pytest -q -p no:cacheprovider -p no:randomly -m "not slow" -x \
  -k cuda test_ops.py test_contract.py test_optim.py test_linear.py test_train.py test_dispatch.py \
  $(ls test_emulated.py 2>/dev/null)'
# the PyTorch surface (tensor ops on CuPy, in-place rules, batched GEMM, modules, optimizers) on the GPU
step cuda_surface 240 bash -c 'cd tests && python3 -m pytest -q -p no:cacheprovider -p no:randomly -m "not slow" \
  -k cuda test_surface.py test_inplace_autograd.py test_indexing_api.py test_linalg_api.py test_creation_api.py \
  test_promotion.py test_reduction_api.py test_module_api.py test_cells_embedding.py test_optim_new.py \
  $(ls test_conv.py test_pool.py test_embedding.py test_rnn.py test_sdpa.py test_transformer.py test_surface_leftovers.py 2>/dev/null)'

# ---------------------------------------------------------------- 3. benchmarks
cat > "$LOGS/gpu_bench.py" <<'PY'
"""GPU benchmarks: nnfast's CUDA kernels vs CuPy (cuBLAS, device copy) and PyTorch eager."""
import sys, time
import numpy as np
import cupy as cp
import nnfast
from nnfast import _dispatch as D

K = D._BACKENDS["cuda"]
what = sys.argv[1]


def timeit(fn, reps=20):
    fn()
    cp.cuda.runtime.deviceSynchronize()
    e0, e1 = cp.cuda.Event(), cp.cuda.Event()
    e0.record()
    for _ in range(reps):
        fn()
    e1.record()
    e1.synchronize()
    return cp.cuda.get_elapsed_time(e0, e1) / reps * 1e-3  # seconds


if what == "gemm":
    for n in (1024, 2048, 4096, 8192):
        for dt in (np.float32,):
            a = cp.random.standard_normal((n, n), dtype=dt); b = cp.random.standard_normal((n, n), dtype=dt)
            c = cp.empty((n, n), dt)
            t_ref = timeit(lambda: cp.matmul(a, b, out=c))
            row = f"gemm {n}^3 {np.dtype(dt).name}: cupy/cuBLAS {2*n**3/t_ref/1e12:7.2f} TFLOP/s"
            if hasattr(K, "gemm"):
                try:
                    x = nnfast.Tensor(a); w = nnfast.Tensor(b)
                    f = lambda: nnfast.matmul(x, w)
                    t = timeit(f)
                    row += f" | nnfast {2*n**3/t/1e12:7.2f} TFLOP/s ({t_ref/t*100:5.1f}% of cuBLAS)"
                    err = float(cp.abs(nnfast.matmul(x, w).data - cp.matmul(a, b)).max())
                    row += f" max|diff| {err:.2e}"
                except Exception as exc:  # noqa: BLE001
                    row += f" | nnfast FAILED: {exc!r}"
            else:
                row += " | nnfast: no cuda gemm in this build"
            print(row, flush=True)
elif what == "memory":
    n = 1 << 26
    for dt in (np.float32, np.float64):
        x = cp.random.standard_normal(n, dtype=dt); y = cp.empty_like(x)
        nbytes = 2 * x.nbytes
        t_copy = timeit(lambda: y.__setitem__(Ellipsis, x))
        print(f"device copy {np.dtype(dt).name}: {nbytes/t_copy/1e9:8.1f} GB/s", flush=True)
        cases = [("relu", lambda: K.act_forward(y, x, 1)), ("gelu", lambda: K.act_forward(y, x, 6)),
                 ("silu", lambda: K.act_forward(y, x, 8))]
        x2 = x.reshape(-1, 1024); y2 = y.reshape(-1, 1024)
        cases.append(("softmax rows 1024", lambda: K.softmax_forward(y2, x2, 1, False)))
        for name, fn in cases:
            try:
                t = timeit(fn)
                print(f"  {name:18s} {nbytes/t/1e9:8.1f} GB/s ({t_copy/t*100:5.1f}% of copy)", flush=True)
            except Exception as exc:  # noqa: BLE001
                print(f"  {name} FAILED: {exc!r}", flush=True)
        for name in ("layer_norm_forward", "dropout_forward", "adam_step"):
            print(f"  {name}: {'present' if hasattr(K, name) else 'no cuda kernel in this build'}")
elif what == "step":
    import torch
    B, H = 256, 1024
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, 784)).astype(np.float32); y = rng.integers(0, 10, B)

    def nnfast_step():
        m = nnfast.nn.Sequential(nnfast.nn.Linear(784, H), nnfast.nn.ReLU(), nnfast.nn.Linear(H, H), nnfast.nn.ReLU(),
                                 nnfast.nn.Linear(H, 10)).to("cuda")
        opt = nnfast.optim.Adam(m.parameters(), lr=1e-3)
        xb, yb = nnfast.tensor(X).cuda(), nnfast.tensor(y).cuda()
        loss_fn = nnfast.nn.CrossEntropyLoss()

        def f():
            opt.zero_grad()
            loss = loss_fn(m(xb), yb)
            loss.backward()
            opt.step()
        return f

    def torch_step():
        m = torch.nn.Sequential(torch.nn.Linear(784, H), torch.nn.ReLU(), torch.nn.Linear(H, H), torch.nn.ReLU(),
                                torch.nn.Linear(H, 10)).cuda()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        xb, yb = torch.tensor(X).cuda(), torch.tensor(y).cuda()
        loss_fn = torch.nn.CrossEntropyLoss()

        def f():
            opt.zero_grad()
            loss_fn(m(xb), yb).backward()
            opt.step()
        return f

    tt = timeit(torch_step(), 50)
    print(f"MLP 784-{H}-{H}-10 batch {B} train step: torch eager {tt*1e3:7.3f} ms", flush=True)
    try:
        tn = timeit(nnfast_step(), 50)
        print(f"                                     nnfast      {tn*1e3:7.3f} ms ({tt/tn:5.2f}x torch)", flush=True)
    except Exception as exc:  # noqa: BLE001
        print(f"nnfast step FAILED (a family without cuda kernels?): {exc!r}", flush=True)
PY
step bench_gemm 90 python3 "$LOGS/gpu_bench.py" gemm
step bench_memory 60 python3 "$LOGS/gpu_bench.py" memory
step bench_step 60 python3 "$LOGS/gpu_bench.py" step

echo "total $(( $(date +%s) - T0 ))s; logs in $LOGS/" | tee -a "$SUMMARY"
