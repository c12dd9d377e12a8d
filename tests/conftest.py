import os

import numpy as np
import pytest

import nnfast


def _devices():
    devs = ["cpu"]
    if nnfast.cuda.is_available():
        devs.append("cuda")
    return devs


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


# The bf16 GEMM levels this CPU can run (the portable one always): the `level` fixture runs a test
# once per level, forcing it in process and restoring the previous one afterwards.
BF16_LEVELS = [lv for lv in ("portable", "avx512_bf16", "amx_bf16") if nnfast._C.bf16_level_supported(lv)]


@pytest.fixture(params=BF16_LEVELS)
def level(request):
    old = nnfast._C.bf16_level()
    nnfast._C.set_bf16_level(request.param)
    try:
        yield request.param
    finally:
        nnfast._C.set_bf16_level(old)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_report_header(config):
    info = nnfast.info()
    return f"nnfast {info['version']} simd={info['simd']} threads={info['num_threads']} cuda={info['cuda_available']}"


@pytest.fixture(params=["generic", "avx2", "avx512"])
def isa_level(request):
    """Runs a test with the kernels of one ISA (skipped where the CPU lacks it)."""
    if not nnfast._C.cpu_isa_supported(request.param):
        pytest.skip(f"no {request.param}")
    before = nnfast._C.cpu_isa()
    assert nnfast._C.set_cpu_isa(request.param) is not False
    yield request.param
    nnfast._C.set_cpu_isa(before)
