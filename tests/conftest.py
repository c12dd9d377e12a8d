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


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_report_header(config):
    info = nnfast.info()
    return f"nnfast {info['version']} simd={info['simd']} threads={info['num_threads']} cuda={info['cuda_available']}"
