"""Backends to compare against the reference: cpu when the extension is built, cuda on a real GPU.

Under the CUDA simulator the generic family tests are too slow; tests/backends/test_cuda.py covers it there.
"""

import numpy as np
import pytest

import fastdl
from fastdl import backend

ACCELERATED = [name for name, ok in (("cpu", backend.cpu_available()), ("cuda", backend.cuda_real_gpu())) if ok]


@pytest.fixture(params=ACCELERATED or [pytest.param("none", marks=pytest.mark.skip(
    reason="no accelerated backend: fastdl._core is not built and there is no real GPU"))])
def backend_name(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20190119)


@pytest.fixture
def restore_threads():
    """Put fastdl's C++ thread count back after a test that changes it."""
    saved = fastdl.get_num_threads()
    yield
    fastdl.set_num_threads(saved)
