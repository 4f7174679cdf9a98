"""GEMM and the fused Dense kernel: numpy reference vs cpu (vs cuda), fp32, on deep-learning shapes."""

import numpy as np
import pytest

from conftest import record
from fastdl import kernels
from fastdl.cli.bench import GEMM_SHAPES as SHAPES  # (M, K, N, trans_a, trans_b)


def _label(m, k, n, ta, tb):
    kind = {(False, False): "NN", (False, True): "NT", (True, False): "TN", (True, True): "TT"}[(ta, tb)]
    return f"matmul {kind} {m}x{k}x{n}"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: _label(*s))
def test_matmul(benchmark, backend_name, rng, shape):
    m, k, n, ta, tb = shape
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    group = _label(*shape)
    benchmark.group = group
    benchmark(kernels.matmul, a, b, trans_a=ta, trans_b=tb)
    record(benchmark, group, backend_name, flop=2.0 * m * n * k)


def test_dense_sigmoid_fwd_bwd(benchmark, backend_name, rng):
    x = rng.standard_normal((64, 784)).astype(np.float32)
    w = (rng.standard_normal((784, 256)) * 0.05).astype(np.float32)
    b = rng.standard_normal((1, 256)).astype(np.float32)
    grad = rng.standard_normal((64, 256)).astype(np.float32)

    def step():
        y = kernels.linear(x, w, b, "sigmoid")
        return kernels.linear_backward(x, w, y, grad, "sigmoid")

    group = "Dense(256, sigmoid) fwd+bwd 64x784"
    benchmark.group = group
    benchmark(step)
    record(benchmark, group, backend_name, flop=3 * 2.0 * 64 * 784 * 256)
