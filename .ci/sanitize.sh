#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer job: build nnfast._C with
# NNFAST_SANITIZE=ON, prove the sanitizer catches a deliberate out-of-bounds
# write, then run the kernel tests against the sanitized module.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/sanitize
# The pip build of the package used an isolated environment; this CMake build needs pybind11 here.
python -m pip install --quiet "pybind11>=2.12"
cmake -S . -B "$BUILD" -DNNFAST_PYTHON=ON -DNNFAST_SANITIZE=ON -DNNFAST_CUDA=EMULATE -DNNFAST_BUILD_CPP_TESTS=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" > "$BUILD.log" 2>&1 \
  || { cat "$BUILD.log"; exit 1; }
cmake --build "$BUILD" -j2 >> "$BUILD.log" 2>&1 || { tail -50 "$BUILD.log"; exit 1; }

# Native tests under the sanitizers: GEMM (every ISA the CPU has, plus the
# AVX-512 tile logic run through portable vectors) and 1,000 training steps
# through the C++ API with LeakSanitizer on (detect_leaks=1, set per test in
# tests/cpp/CMakeLists.txt): any leak fails the job, and a deliberate leak
# (train_leak_selftest) must be caught.
# The tests live in tests/cpp (enable_testing() is called there): run ctest in
# that folder, and fail if it finds none (ctest at the top finds no tests and exits 0).
(cd "$BUILD/tests/cpp" && ctest --output-on-failure --no-tests=error)

export LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export NNFAST_EXT_DIR="$BUILD" NNFAST_SANITIZER_BUILD=1 PYTHONPATH=python
# Kernel tests only (the fuzz/CLI/training tests add time, not kernel coverage);
# the error table and the property tests drive every binding with empty,
# strided, misaligned and invalid arrays. LeakSanitizer is off for Python
# (the interpreter leaves blocks at exit); native leaks are the C++ test's job.
# The build is NNFAST_CUDA=EMULATE, so the CUDA kernels (run by the SIMT emulator, whose
# fiber switches are annotated for ASan) are sanitized too: cpu tests first, then the op
# registry on the emulated cuda device in its own process (emulator errors abort).
python -m pytest -q -p no:cacheprovider -k "not cuda" tests/test_sanitizer.py tests/test_linear.py tests/test_autograd.py \
  $(ls tests/test_activation.py tests/test_loss.py tests/test_norm.py tests/test_optim.py tests/test_gemm.py \
        tests/test_dropout.py tests/test_errors.py tests/test_error_table.py tests/test_properties.py \
        tests/test_ops.py tests/test_contract.py 2>/dev/null)
python -m pytest -q -p no:cacheprovider -p no:randomly -m "not slow" -k cuda tests/test_ops.py tests/test_contract.py
