"""The convolution fused with what follows it in a layer: conv2d_dropout (the dropout applied as the output is
written) against conv2d then dropout, and conv2d_backward(..., activation=, y=, mask=) (the gradient taken
through the activation and the dropout inside the weight gradient) against activation_backward then
conv2d_backward, on the reference backend; and their bad inputs."""

import numpy as np
import pytest

import fastdl
from fastdl import kernels

# (B, C_in, H, W, C_out, K, stride, padding): the direct convolution (one or few input channels, stride 1, a
# row of at least 8 outputs), odd sizes and primes, a stride and "valid" padding (im2col), 3x3 (Winograd's sizes)
CASES = [(60, 1, 28, 28, 16, 5, 1, "same"), (3, 2, 7, 11, 5, 3, 1, "same"), (1, 1, 13, 9, 1, 1, 1, "same"),
         (5, 3, 12, 17, 7, 3, 2, 1), (2, 4, 9, 10, 3, 4, 1, "valid"), (4, 16, 10, 10, 16, 3, 1, "same")]


@pytest.mark.parametrize("activation", ["linear", "tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_dropout_equals_conv2d_then_dropout(backend_name, case, activation, dtype, rng):
    B, C_in, H, W, C_out, K, stride, padding = case
    x = rng.standard_normal((B, C_in, H, W)).astype(dtype)
    w = (0.3 * rng.standard_normal((C_in, C_out, K, K))).astype(dtype)
    before = x.copy(), w.copy()
    for keep_prob, seed, first in [(0.8, 12345, 0), (0.5, 2**64 - 1, 3 * 7919), (1.0, 7, 0)]:
        with fastdl.use_backend("numpy"):
            y_ref, mask_ref = kernels.dropout(kernels.conv2d(x, w, stride=stride, padding=padding,
                                                             activation=activation), keep_prob, seed, first)
        with fastdl.use_backend(backend_name):
            y, mask = kernels.conv2d_dropout(x, w, keep_prob, seed, stride=stride, padding=padding,
                                             activation=activation, first=first)
        np.testing.assert_array_equal(mask, mask_ref)
        tol = 2e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
        assert y.dtype == dtype and mask.dtype == np.bool_
        assert np.all(y[~mask] == 0)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(w, before[1])


def test_conv2d_dropout_on_the_cpu_is_conv2d_then_dropout_bit_for_bit(rng, restore_threads):
    if not fastdl.backend.cpu_available():
        pytest.skip("needs fastdl._core")
    x = rng.standard_normal((9, 1, 28, 28)).astype(np.float32)
    w = rng.standard_normal((1, 16, 5, 5)).astype(np.float32)
    with fastdl.use_backend("cpu"):
        for threads in (1, 2, 3):
            fastdl.set_num_threads(threads)
            y, mask = kernels.conv2d_dropout(x, w, 0.8, 99, activation="tanh", first=5)
            y2, mask2 = kernels.dropout(kernels.conv2d(x, w, activation="tanh"), 0.8, 99, 5)
            np.testing.assert_array_equal(y, y2)
            np.testing.assert_array_equal(mask, mask2)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(keep_prob=0.0), ValueError, "keep_prob"),
    (dict(keep_prob=1.5), ValueError, "keep_prob"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(first=-2), ValueError, "first"),
    (dict(first=2**64 - 10), ValueError, "first + y.size"),
    (dict(activation="gelu"), ValueError, "activation"),
    (dict(stride=0), ValueError, "stride"),
])
def test_conv2d_dropout_rejects_bad_arguments(backend_name, kwargs, error, words):
    x = np.ones((2, 1, 6, 6), np.float32)
    w = np.ones((1, 3, 3, 3), np.float32)
    args = dict(keep_prob=0.8, seed=1)
    args.update(kwargs)
    with fastdl.use_backend(backend_name), pytest.raises(error, match="conv2d_dropout") as info:
        kernels.conv2d_dropout(x, w, args.pop("keep_prob"), args.pop("seed"), **args)
    assert words in str(info.value)


def test_conv2d_dropout_rejects_mismatched_operands(backend_name):
    with fastdl.use_backend(backend_name):
        with pytest.raises(ValueError, match="conv2d_dropout"):
            kernels.conv2d_dropout(np.ones((2, 2, 6, 6), np.float32), np.ones((1, 3, 3, 3), np.float32), 0.8, 1)
        with pytest.raises(TypeError, match="conv2d_dropout"):
            kernels.conv2d_dropout(np.ones((2, 1, 6, 6), np.float32), np.ones((1, 3, 3, 3)), 0.8, 1)


@pytest.mark.parametrize("need_grad_x", [False, True])
@pytest.mark.parametrize("activation", ["linear", "tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_backward_through_the_activation_and_mask(backend_name, case, activation, need_grad_x, dtype, rng):
    B, C_in, H, W, C_out, K, stride, padding = case
    x = rng.standard_normal((B, C_in, H, W)).astype(dtype)
    w = (0.3 * rng.standard_normal((C_in, C_out, K, K))).astype(dtype)
    with fastdl.use_backend("numpy"):
        y, mask = kernels.conv2d_dropout(x, w, 0.8, 77, stride=stride, padding=padding, activation=activation)
    grad = rng.standard_normal(y.shape).astype(dtype)
    inputs = [a.copy() for a in (x, w, y, mask, grad)]
    conv = dict(stride=stride, padding=padding, need_grad_x=need_grad_x)
    for use_mask in (mask, None):
        with fastdl.use_backend("numpy"):
            dz = kernels.activation_backward(y, grad, activation, mask=use_mask)
            expected = kernels.conv2d_backward(x, w, dz, **conv)
        with fastdl.use_backend(backend_name):
            got = kernels.conv2d_backward(x, w, grad, activation=activation, y=y, mask=use_mask, **conv)
        tol = 1e-4 if dtype == np.float32 else 1e-11
        for a, b in zip(got, expected):
            if b is None:
                assert a is None
            else:
                np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))
    for a, b in zip((x, w, y, mask, grad), inputs):
        np.testing.assert_array_equal(a, b)


def test_conv2d_backward_through_is_the_two_kernels_bit_for_bit_on_the_cpu(rng, restore_threads):
    if not fastdl.backend.cpu_available():
        pytest.skip("needs fastdl._core")
    x = rng.standard_normal((9, 1, 28, 28)).astype(np.float32)
    w = rng.standard_normal((1, 16, 5, 5)).astype(np.float32)
    with fastdl.use_backend("cpu"):
        y, mask = kernels.conv2d_dropout(x, w, 0.8, 5, activation="tanh")
        grad = rng.standard_normal(y.shape).astype(np.float32)
        for threads in (1, 2, 3):
            fastdl.set_num_threads(threads)
            dz = kernels.activation_backward(y, grad, "tanh", mask=mask)
            _, expected = kernels.conv2d_backward(x, w, dz, need_grad_x=False)
            _, got = kernels.conv2d_backward(x, w, grad, need_grad_x=False, activation="tanh", y=y, mask=mask)
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(activation="tanh"), ValueError, "needs y"),
    (dict(activation="tanh", y=np.ones((2, 3, 5, 5), np.float32)), ValueError, "y"),
    (dict(activation="tanh", y=np.ones((2, 3, 6, 6))), TypeError, "mixed"),
    (dict(mask=np.ones((2, 3, 6, 6), np.float32)), TypeError, "bool mask"),
    (dict(mask=np.ones((2, 3, 6, 5), bool)), ValueError, "mask"),
    (dict(activation="swish", y=np.ones((2, 3, 6, 6), np.float32)), ValueError, "activation"),
])
def test_conv2d_backward_rejects_bad_activation_arguments(backend_name, kwargs, error, words):
    x, w, g = np.ones((2, 1, 6, 6), np.float32), np.ones((1, 3, 3, 3), np.float32), np.ones((2, 3, 6, 6), np.float32)
    with fastdl.use_backend(backend_name), pytest.raises(error, match="conv2d_backward") as info:
        kernels.conv2d_backward(x, w, g, **kwargs)
    assert words in str(info.value)
