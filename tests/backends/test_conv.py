"""conv2d / conv2d_backward on every accelerated backend against the reference."""

import itertools

import numpy as np
import pytest

from helpers import check_op, random, to_host

CASES = [  # (B, C_in, C_out, H, W, K)
    (1, 1, 1, 5, 5, 3), (2, 1, 4, 7, 5, 3), (3, 2, 3, 6, 9, 2), (1, 3, 2, 8, 8, 5), (2, 4, 5, 11, 7, 4),
    (1, 1, 2, 3, 4, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stride,padding", list(itertools.product([1, 2, 3], ["same", "valid", 0, 1, 2])))
def test_conv2d(backend_name, dtype, rng, case, stride, padding):
    batch, c_in, c_out, height, width, k = case
    pad = {"same": k - 1, "valid": 0}.get(padding, padding * 2 if isinstance(padding, int) else 0)
    if height + pad < k or width + pad < k:
        pytest.skip("kernel larger than the padded image (an error case, tested in test_errors)")
    x = random(rng, (batch, c_in, height, width), dtype)
    w = random(rng, (c_in, c_out, k, k), dtype)
    kw = {"stride": stride, "padding": padding}
    y, _ = check_op("conv2d", (x, w), backend_name, kw, dtype, scale=k * np.sqrt(c_in))
    grad_y = random(rng, to_host(y).shape, dtype)
    check_op("conv2d_backward", (x, w, grad_y), backend_name, kw, dtype, scale=k * np.sqrt(c_out * batch) * 4)


ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("case", CASES + [(3, 1, 16, 13, 11, 5), (2, 16, 32, 9, 7, 3)])
def test_conv2d_with_fused_activation(backend_name, dtype, rng, case, activation):
    """The activation applied in the convolution's epilogue (every algorithm: im2col, wide grid, Winograd)."""
    batch, c_in, c_out, height, width, k = case
    x = random(rng, (batch, c_in, height, width), dtype)
    w = random(rng, (c_in, c_out, k, k), dtype)
    check_op("conv2d", (x, w), backend_name, {"activation": activation}, dtype, scale=k * np.sqrt(c_in))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1,), (7, 13), (3, 16, 97), (2, 16, 28, 28)])
def test_activation_backward_through_a_dropout_mask(backend_name, dtype, rng, shape, activation):
    from fastdl import kernels

    y = kernels.activation(random(rng, shape, dtype), activation)
    grad = random(rng, shape, dtype)
    mask = rng.random(shape) < 0.8
    actual, expected = check_op("activation_backward", (y, grad, activation), backend_name, {"mask": mask}, dtype)
    unfused = kernels.dropout_backward(kernels.activation_backward(y, grad, activation), mask)
    np.testing.assert_array_equal(to_host(actual), unfused)
    assert np.all(to_host(actual)[~mask] == 0)
