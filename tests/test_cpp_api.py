"""The installed C++ kernel library: find_package(nnfast) and a C++ training program."""
import os
import shutil
import subprocess
import sys

import pytest

import nnfast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "cpp")


def test_paths_are_reported():
    r = subprocess.run([sys.executable, "-m", "nnfast", "--cmake-dir"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == nnfast.get_cmake_dir()
    assert nnfast.get_include().endswith("include")


@pytest.mark.skipif(not os.path.exists(os.path.join(nnfast.get_cmake_dir(), "nnfastConfig.cmake")),
                    reason="C++ package files are installed by `pip install .` (not in a development build)")
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not found")
def test_cpp_example_builds_and_trains(tmp_path):
    assert os.path.exists(os.path.join(nnfast.get_include(), "nnfast", "gemm.h"))
    assert os.path.exists(os.path.join(nnfast.get_include(), "nnfast", "cuda", "common.h"))
    build = tmp_path / "build"
    cfg = subprocess.run(["cmake", "-S", EXAMPLE, "-B", str(build), f"-Dnnfast_DIR={nnfast.get_cmake_dir()}",
                          "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    b = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert b.returncode == 0, b.stdout + b.stderr
    r = subprocess.run([str(build / "train_mlp")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    losses = [float(line.split()[3]) for line in r.stdout.splitlines() if line.startswith("step")]
    accs = [float(line.split()[5]) for line in r.stdout.splitlines() if line.startswith("step")]
    assert len(losses) == 6
    assert losses[-1] < 0.5 * losses[0]
    assert accs[-1] > 0.9


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler")
@pytest.mark.parametrize("cuda_first", [False, True])
def test_cuda_convention_header_needs_no_toolkit(tmp_path, cuda_first):
    # nnfast/cuda/common.h forward-declares cudaStream_t as cuda_runtime.h does: either order compiles.
    src = tmp_path / "t.cpp"
    src.write_text(("typedef struct CUstream_st* cudaStream_t;\n" if cuda_first else "")
                   + '#include "nnfast/cuda/common.h"\n#include "nnfast/norm.h"\n'
                   + "int main() { cudaStream_t s = nullptr; return s != nullptr; }\n")
    r = subprocess.run(["c++", "-std=c++17", "-fsyntax-only", "-I", os.path.join(ROOT, "csrc", "include"), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
