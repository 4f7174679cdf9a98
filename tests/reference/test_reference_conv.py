"""The NumPy reference itself: conv2d / conv2d_backward.

Checked against direct Python loops over output pixels (forward and backward, both dtypes), against
central finite differences in float64, and against the book's chapter 5 worked examples.
"""

import copy

import numpy as np
import pytest
from helpers import numerical_grad

from fastdl.contract.conv_geometry import conv_output_size, conv_padding
from fastdl.reference import conv2d, conv2d_backward

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}

# (B, C_in, C_out, H, W, K, stride, padding): tails, primes, odd/even K, non-square, all paddings
CASES = [
    (1, 1, 1, 5, 5, 3, 1, "same"),
    (2, 3, 2, 5, 7, 3, 1, "same"),
    (1, 2, 3, 6, 5, 2, 1, "same"),
    (2, 1, 2, 7, 4, 4, 1, "same"),
    (3, 2, 1, 6, 7, 3, 2, "same"),
    (1, 1, 2, 7, 7, 5, 3, "same"),
    (2, 2, 2, 5, 6, 3, 1, "valid"),
    (1, 3, 1, 7, 5, 2, 2, "valid"),
    (2, 1, 3, 8, 5, 3, 3, "valid"),
    (1, 2, 2, 4, 5, 3, 1, 0),
    (2, 1, 1, 5, 3, 2, 2, 1),
    (1, 2, 3, 3, 4, 3, 2, 2),
    (1, 1, 1, 1, 1, 1, 1, "same"),
    (2, 3, 2, 4, 6, 1, 2, 1),
    (1, 1, 1, 3, 3, 5, 1, 2),
]


def loop_conv2d(x, w, stride, padding):
    """Direct definition: y[b,o,i,j] = sum_{c,p,q} w[c,o,p,q] * xpad[b,c,i*s+p,j*s+q] (in float64)."""
    B, C, H, W = x.shape
    _, O, K, _ = w.shape
    before, after = conv_padding(K, padding)
    xpad = np.zeros((B, C, H + before + after, W + before + after))
    xpad[:, :, before:before + H, before:before + W] = x
    Ho = conv_output_size(H, K, stride, before, after)
    Wo = conv_output_size(W, K, stride, before, after)
    y = np.zeros((B, O, Ho, Wo))
    for b in range(B):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    s = 0.0
                    for c in range(C):
                        for p in range(K):
                            for q in range(K):
                                s += float(w[c, o, p, q]) * xpad[b, c, i * stride + p, j * stride + q]
                    y[b, o, i, j] = s
    return y


def loop_conv2d_backward(x, w, gy, stride, padding):
    """Direct scatter of every output gradient onto the inputs and weights it touched (float64)."""
    B, C, H, W = x.shape
    _, O, K, _ = w.shape
    before, after = conv_padding(K, padding)
    xpad = np.zeros((B, C, H + before + after, W + before + after))
    xpad[:, :, before:before + H, before:before + W] = x
    gxpad = np.zeros_like(xpad)
    gw = np.zeros(w.shape)
    for b in range(B):
        for o in range(O):
            for i in range(gy.shape[2]):
                for j in range(gy.shape[3]):
                    g = float(gy[b, o, i, j])
                    for c in range(C):
                        for p in range(K):
                            for q in range(K):
                                gxpad[b, c, i * stride + p, j * stride + q] += g * float(w[c, o, p, q])
                                gw[c, o, p, q] += g * xpad[b, c, i * stride + p, j * stride + q]
    return gxpad[:, :, before:before + H, before:before + W], gw


def make(case, dtype, seed=0):
    B, C, O, H, W, K, stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, C, H, W)).astype(dtype)
    w = rng.standard_normal((C, O, K, K)).astype(dtype)
    return x, w, stride, padding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_matches_loop(case, dtype):
    x, w, stride, padding = make(case, dtype)
    x0, w0 = x.copy(), w.copy()
    y = conv2d(x, w, stride=stride, padding=padding)
    expected = loop_conv2d(x, w, stride, padding)
    assert y.dtype == dtype and y.shape == expected.shape and y.flags.c_contiguous
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_allclose(y, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_backward_matches_loop(case, dtype):
    x, w, stride, padding = make(case, dtype, seed=1)
    gy = np.random.default_rng(2).standard_normal(conv2d(x, w, stride, padding).shape).astype(dtype)
    args0 = copy.deepcopy((x, w, gy))
    gx, gw = conv2d_backward(x, w, gy, stride=stride, padding=padding)
    for a, a0 in zip((x, w, gy), args0):
        np.testing.assert_array_equal(a, a0)
    ex, ew = loop_conv2d_backward(x, w, gy, stride, padding)
    assert gx.dtype == dtype and gw.dtype == dtype
    assert gx.shape == x.shape and gw.shape == w.shape
    assert gx.flags.c_contiguous and gw.flags.c_contiguous
    np.testing.assert_allclose(gx, ex, **TOL[dtype])
    np.testing.assert_allclose(gw, ew, **TOL[dtype])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv2d_backward_finite_differences(case):
    x, w, stride, padding = make(case, np.float64, seed=3)
    r = np.random.default_rng(4).standard_normal(conv2d(x, w, stride, padding).shape)
    gx, gw = conv2d_backward(x, w, r, stride=stride, padding=padding)

    def loss():
        return float((conv2d(x, w, stride=stride, padding=padding) * r).sum())

    np.testing.assert_allclose(gx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw, numerical_grad(loss, w), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("K", [1, 2, 3, 4, 5])
def test_same_padding_keeps_size_at_stride_1(K):
    x = np.ones((1, 1, 6, 5))
    assert conv2d(x, np.ones((1, 2, K, K)), padding="same").shape == (1, 2, 6, 5)


def test_cross_correlation_no_flip():
    # a single 1 in the kernel at (0, 0) reads xpad[i, j] = x[i-1, j-1]: shift down-right
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0
    y = conv2d(x, w)
    np.testing.assert_array_equal(y[0, 0, 1:, 1:], x[0, 0, :-1, :-1])
    np.testing.assert_array_equal(y[0, 0, 0, :], 0)


def row_kernel(taps):
    """A K x K 2-D kernel whose middle row holds the 1-D taps: emulates a 1-D "same" conv on H = 1."""
    K = len(taps)
    w = np.zeros((1, 1, K, K))
    w[0, 0, K // 2] = taps
    return w


def test_book_ch5_conv_1d():
    # conv_1d([1,2,3,4,5], [1,1,1]) -> [3,6,9,12,9], sum 39; grads with output_grad = ones
    x = np.array([1.0, 2, 3, 4, 5]).reshape(1, 1, 1, 5)
    w = row_kernel([1.0, 1, 1])
    y = conv2d(x, w)
    np.testing.assert_allclose(y.ravel(), [3, 6, 9, 12, 9])
    assert y.sum() == 39
    gx, gw = conv2d_backward(x, w, np.ones_like(y))
    np.testing.assert_allclose(gx.ravel(), [2, 3, 3, 3, 2])
    np.testing.assert_allclose(gw[0, 0, 1], [10, 15, 14])
    np.testing.assert_allclose(gw[0, 0, [0, 2]], 0)  # rows that only ever see the zero padding


def test_book_ch5_conv_1d_batch():
    x = np.array([np.arange(7.0), np.arange(1.0, 8.0)]).reshape(2, 1, 1, 7)
    w = row_kernel([1.0, 1, 1])
    y = conv2d(x, w)
    np.testing.assert_allclose(y[:, 0, 0], [[1, 3, 6, 9, 12, 15, 11], [3, 6, 9, 12, 15, 18, 13]])
    assert y.sum() == 133
    gx, gw = conv2d_backward(x, w, np.ones_like(y))
    np.testing.assert_allclose(gx[:, 0, 0], [[2, 3, 3, 3, 3, 3, 2]] * 2)
    np.testing.assert_allclose(gw[0, 0, 1], [36, 49, 48])


def test_book_ch5_input_grad_needs_flip():
    # an asymmetric kernel: the true input gradient is the loop/finite-difference one (the book's
    # lincoln _input_grad, which omits the flip, would differ); batch > 1 checks the weight gradient
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 5, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    gy = rng.standard_normal((3, 3, 5, 5))
    gx, gw = conv2d_backward(x, w, gy)
    ex, ew = loop_conv2d_backward(x, w, gy, 1, "same")
    np.testing.assert_allclose(gx, ex, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, ew, rtol=1e-12, atol=1e-12)
    no_flip = loop_conv2d_backward(x, w[:, :, ::-1, ::-1], gy, 1, "same")[0]
    assert not np.allclose(gx, no_flip)
