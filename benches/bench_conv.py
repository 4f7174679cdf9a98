"""conv2d forward and forward+backward: numpy reference vs cpu (vs cuda), fp32, on the book's CNN shapes.

fwd+bwd includes the activation: y = act(conv2d(x, w)), then activation_backward and conv2d_backward,
as a Conv2D layer with an activation runs them.
"""

import numpy as np
import pytest

from conftest import record
import fastdl
from fastdl import kernels

# (B, C_in, C_out, K, H, W, stride, padding, activation)
SHAPES = [(32, 1, 16, 5, 28, 28, 1, "same", "tanh"), (32, 16, 32, 3, 14, 14, 1, "same", "relu"),
          (64, 32, 64, 3, 26, 26, 1, "same", "relu"), (32, 3, 32, 4, 32, 32, 2, 1, "relu")]


def _label(b, c_in, c_out, k, h, w, stride, padding, act):
    return f"conv2d {c_in}->{c_out} k{k} s{stride} p{padding} {h}x{w} b{b} {act}"


def _flop(b, c_in, c_out, k, h_out, w_out):
    return 2.0 * b * c_out * h_out * w_out * c_in * k * k


def _inputs(rng, b, c_in, c_out, k, h, w):
    x = rng.standard_normal((b, c_in, h, w)).astype(np.float32)
    wt = (rng.standard_normal((c_in, c_out, k, k)) * 0.2).astype(np.float32)
    return x, wt


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: _label(*s))
def test_conv2d_forward(benchmark, backend_name, rng, shape):
    b, c_in, c_out, k, h, w, stride, padding, act = shape
    x, wt = _inputs(rng, b, c_in, c_out, k, h, w)

    def forward():
        return kernels.activation(kernels.conv2d(x, wt, stride=stride, padding=padding), act)

    group = _label(*shape) + " fwd"
    benchmark.group = group
    y = benchmark(forward)
    record(benchmark, group, backend_name, flop=_flop(b, c_in, c_out, k, y.shape[2], y.shape[3]))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: _label(*s))
def test_conv2d_forward_backward(benchmark, backend_name, rng, shape):
    b, c_in, c_out, k, h, w, stride, padding, act = shape
    x, wt = _inputs(rng, b, c_in, c_out, k, h, w)
    y0 = kernels.conv2d(x, wt, stride=stride, padding=padding)
    grad = rng.standard_normal(y0.shape).astype(np.float32)

    def step():
        y = kernels.activation(kernels.conv2d(x, wt, stride=stride, padding=padding), act)
        dz = kernels.activation_backward(y, grad, act)
        return kernels.conv2d_backward(x, wt, dz, stride=stride, padding=padding)

    group = _label(*shape) + " fwd+bwd"
    benchmark.group = group
    benchmark(step)
    record(benchmark, group, backend_name, flop=3 * _flop(b, c_in, c_out, k, y0.shape[2], y0.shape[3]))


# The cpu backend's two algorithms for 3x3 stride-1 convolutions side by side (auto picks Winograd for both).
@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
@pytest.mark.parametrize("shape", [s for s in SHAPES if s[3] == 3 and s[6] == 1], ids=lambda s: _label(*s))
def test_conv2d_cpu_algorithms(benchmark, rng, shape, algorithm):
    _core = pytest.importorskip("fastdl._core")
    b, c_in, c_out, k, h, w, stride, padding, act = shape
    x, wt = _inputs(rng, b, c_in, c_out, k, h, w)
    grad = rng.standard_normal((b, c_out, h, w)).astype(np.float32)

    def step():
        kernels.conv2d(x, wt, padding=padding)
        return kernels.conv2d_backward(x, wt, grad, padding=padding)

    group = _label(*shape) + " fwd+bwd, cpu algorithms"
    benchmark.group = group
    _core.force_conv_algorithm(algorithm)
    try:
        with fastdl.use_backend("cpu"):
            benchmark(step)
    finally:
        _core.force_conv_algorithm("auto")
    record(benchmark, group, f"cpu {algorithm}", flop=3 * _flop(b, c_in, c_out, k, h, w))
