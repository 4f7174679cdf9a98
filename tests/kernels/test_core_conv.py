"""fastdl._core conv2d / conv2d_backward against the NumPy reference (fastdl.reference).

Every combination of stride (1, 2, 3), padding ("same", "valid", 0, 1, 2), odd and even K, square and
non-square images, C_in 1 and > 1, batch 1 and > 1, float32 and float64. Larger shapes cross the
kernels' band plans (several bands per image, channel chunks for grad_x, recomputed band overlaps).
1 and 2 threads must give identical bits.
"""

import numpy as np
import pytest

from fastdl import reference
from fastdl.contract.conv_geometry import conv_padding

_core = pytest.importorskip("fastdl._core", reason="the C++ extension fastdl._core is not built")

from fastdl.cpu import conv as _cpu_conv  # noqa: E402

DTYPES = [np.float32, np.float64]
STRIDES = [1, 2, 3]
PADDINGS = ["same", "valid", 0, 1, 2]
# (B, C_in, C_out, H, W): batch 1 and > 1, C_in 1 and > 1, square and non-square
SHAPES = [(1, 1, 3, 9, 9), (3, 1, 2, 7, 10), (1, 4, 5, 11, 6), (2, 3, 4, 8, 8)]
ACTIVATIONS = {
    "linear": lambda z: z,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}


def _tol(dtype, terms):
    rtol, atol = (2e-4, 2e-5) if dtype == np.float32 else (1e-11, 1e-12)
    return dict(rtol=rtol, atol=atol * np.sqrt(max(terms, 1)))


def _case(rng, dtype, b, c_in, c_out, h, w, k):
    x = rng.standard_normal((b, c_in, h, w)).astype(dtype)
    wt = rng.standard_normal((c_in, c_out, k, k)).astype(dtype)
    return x, wt


def _check(rng, dtype, shape, k, stride, padding):
    b, c_in, c_out, h, w = shape
    before, after = conv_padding(k, padding)
    if h + before + after < k or w + before + after < k:
        return False
    x, wt = _case(rng, dtype, b, c_in, c_out, h, w, k)
    y = _cpu_conv.conv2d(x, wt, stride, padding)
    y_ref = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), stride, padding)
    assert y.dtype == dtype and y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, **_tol(dtype, c_in * k * k))
    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw = _cpu_conv.conv2d_backward(x, wt, g, stride, padding)
    gx_ref, gw_ref = reference.conv2d_backward(x.astype(np.float64), wt.astype(np.float64), g.astype(np.float64),
                                               stride, padding)
    assert gx.dtype == dtype and gx.shape == x.shape and gw.dtype == dtype and gw.shape == wt.shape
    np.testing.assert_allclose(gx, gx_ref, **_tol(dtype, c_out * k * k))
    np.testing.assert_allclose(gw, gw_ref, **_tol(dtype, b * y.shape[2] * y.shape[3]))
    return True


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k", [3, 4], ids=["K3", "K4"])
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
@pytest.mark.parametrize("stride", STRIDES, ids=lambda s: f"s{s}")
def test_conv2d_matches_reference(stride, padding, k, dtype):
    rng = np.random.default_rng(1000 * stride + 10 * k + len(str(padding)))
    ran = [_check(rng, dtype, shape, k, stride, padding) for shape in SHAPES]
    assert any(ran)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k", [1, 2, 5, 6])
def test_conv2d_other_kernel_sizes(k, dtype):
    rng = np.random.default_rng(k)
    for stride in STRIDES:
        for padding in ("same", "valid", 1):
            _check(rng, dtype, (2, 2, 3, 12, 9), k, stride, padding)


# Shapes big enough for several row bands per image, channel chunks and band overlaps in grad_x.
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,stride,padding", [
    ((1, 64, 8, 40, 33), 3, 1, "same"),
    ((1, 1, 16, 61, 47), 5, 2, "same"),
    ((2, 24, 6, 29, 30), 4, 3, 2),
    ((5, 3, 7, 33, 21), 7, 1, "valid"),
    ((3, 5, 33, 12, 10), 3, 2, 1),  # C_out >= 128 bytes of f32 / f64: grad_w's other GEMM orientation
], ids=["b1-c64", "b1-c1-s2", "even-k-s3", "k7-valid", "c_out33"])
def test_conv2d_banded_shapes(shape, k, stride, padding, dtype):
    assert _check(np.random.default_rng(7), dtype, shape, k, stride, padding)


# Stride 1 runs on the wide grid (forward, and grad_w when C_out fills 128 bytes); grad_x is a correlation
# with the flipped kernel when every padding is <= K - 1 and C_in fills 64 bytes, else col2im.
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(2, 16, 32, 14, 14), (1, 17, 33, 9, 23), (3, 20, 8, 6, 5), (1, 8, 16, 40, 7)],
                         ids=["c16-c32", "primes", "c_out8", "tall-b1"])
def test_conv2d_stride1_wide_grid_and_correlation(shape, k, dtype):
    rng = np.random.default_rng(k)
    for padding in ("same", "valid", 0, 1, 2, k - 1, k):
        _check(rng, dtype, shape, k, 1, padding)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_conv2d_fused_activation(activation, dtype):
    rng = np.random.default_rng(3)
    x, w = _case(rng, dtype, 3, 4, 6, 13, 11, 3)
    y = _cpu_conv.conv2d(x, w, 2, "same", activation)
    z = reference.conv2d(x.astype(np.float64), w.astype(np.float64), 2, "same")
    np.testing.assert_allclose(y, ACTIVATIONS[activation](z), **_tol(dtype, 36))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,k,stride", [((1, 3, 8, 30, 26), 5, 1), ((7, 16, 12, 14, 14), 3, 2),
                                            ((1, 40, 4, 37, 35), 3, 1), ((3, 16, 32, 14, 14), 3, 1)])
def test_threads_give_identical_bits(restore_threads, shape, k, stride, dtype):
    b, c_in, c_out, h, w = shape
    rng = np.random.default_rng(11)
    x, wt = _case(rng, dtype, b, c_in, c_out, h, w, k)
    results = []
    for threads in (1, 2):
        _core.set_num_threads(threads)
        y = _cpu_conv.conv2d(x, wt, stride, "same", "tanh")
        g = np.ascontiguousarray(np.cos(y))
        results.append((y,) + tuple(_cpu_conv.conv2d_backward(x, wt, g, stride, "same")))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(5)
    x, w = _case(rng, np.float32, 2, 3, 4, 9, 9, 3)
    g = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    copies = [a.copy() for a in (x, w, g)]
    _cpu_conv.conv2d(x, w, 1, "same", "relu")
    _cpu_conv.conv2d_backward(x, w, g, 1, "same")
    for a, c in zip((x, w, g), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("args", [
    (np.zeros((2, 3, 5), np.float32), np.zeros((3, 4, 3, 3), np.float32), 1, 1, 1),  # x not 4-D
    (np.zeros((2, 3, 5, 5), np.float32), np.zeros((2, 4, 3, 3), np.float32), 1, 1, 1),  # C_in mismatch
    (np.zeros((2, 3, 5, 5), np.float32), np.zeros((3, 4, 3, 2), np.float32), 1, 1, 1),  # kernel not square
    (np.zeros((2, 3, 5, 5), np.float32), np.zeros((3, 4, 3, 3), np.float32), 0, 1, 1),  # stride 0
    (np.zeros((2, 3, 5, 5), np.float32), np.zeros((3, 4, 3, 3), np.float32), 1, -1, 1),  # negative padding
    (np.zeros((2, 3, 2, 5), np.float32), np.zeros((3, 4, 3, 3), np.float32), 1, 0, 0),  # image < kernel
])
def test_bad_shapes_raise_value_error(args):
    with pytest.raises(ValueError):
        _core.conv2d(*args)


def test_bad_grad_y_and_activation_raise_value_error():
    x = np.zeros((2, 3, 5, 5), np.float32)
    w = np.zeros((3, 4, 3, 3), np.float32)
    with pytest.raises(ValueError):
        _core.conv2d_backward(x, w, np.zeros((2, 4, 5, 4), np.float32), 1, 1, 1)
    with pytest.raises(ValueError):
        _core.conv2d(x, w, 1, 1, 1, "softplus")


def test_mixed_or_non_contiguous_arrays_are_rejected():
    x = np.zeros((2, 3, 5, 5), np.float32)
    w = np.zeros((3, 4, 3, 3), np.float64)
    with pytest.raises(TypeError):
        _core.conv2d(x, w, 1, 1, 1)
    with pytest.raises(TypeError):
        _core.conv2d(np.zeros((2, 3, 5, 10), np.float32)[..., ::2], w.astype(np.float32), 1, 1, 1)


def test_empty_batch():
    y = _core.conv2d(np.zeros((0, 2, 5, 5)), np.ones((2, 3, 3, 3)), 1, 1, 1)
    assert y.shape == (0, 3, 5, 5)
    gx, gw = _core.conv2d_backward(np.zeros((0, 2, 5, 5)), np.ones((2, 3, 3, 3)), np.zeros((0, 3, 5, 5)), 1, 1, 1)
    assert gx.shape == (0, 2, 5, 5) and gw.shape == (2, 3, 3, 3) and not gw.any()


# The direct path (float32, AVX-512 vector path, stride 1, K <= 7, C_in*K*K <= 64, W_out >= 8): forward and
# weight gradient computed from the padded image, no im2col. Tails: W_out not a multiple of 16, output
# channels left over from blocks of 16/4 (forward) and 4/2 (weight gradient), every K, asymmetric padding.
DIRECT_SHAPES = [((2, 1, 16, 28, 28), 5, "same"), ((1, 1, 21, 17, 33), 3, "same"), ((3, 2, 5, 12, 9), 7, 3),
                 ((1, 1, 1, 8, 8), 1, "valid"), ((2, 2, 6, 10, 19), 4, "same"), ((1, 1, 3, 13, 40), 6, 2),
                 ((4, 1, 16, 9, 24), 2, "valid")]


@pytest.mark.parametrize("activation", ["linear", "tanh", "relu"])
@pytest.mark.parametrize("shape,k,padding", DIRECT_SHAPES)
def test_direct_path_matches_reference_and_im2col(shape, k, padding, activation):
    b, c_in, c_out, h, w = shape
    rng = np.random.default_rng(21)
    x, wt = _case(rng, np.float32, b, c_in, c_out, h, w, k)
    act = ACTIVATIONS[activation]
    y = _cpu_conv.conv2d(x, wt, 1, padding, activation)
    y_lin = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), 1, padding)
    np.testing.assert_allclose(y, act(y_lin), **_tol(np.float32, c_in * k * k))
    g = rng.standard_normal(y.shape).astype(np.float32)
    _, gw = _cpu_conv.conv2d_backward(x, wt, g, 1, padding, need_grad_x=False)
    _, gw_ref = reference.conv2d_backward(x.astype(np.float64), wt.astype(np.float64), g.astype(np.float64), 1, padding)
    np.testing.assert_allclose(gw, gw_ref, **_tol(np.float32, b * y.shape[2] * y.shape[3]))
    _core.force_conv_algorithm("im2col")  # the other path, on the same inputs
    try:
        y_im2col = _cpu_conv.conv2d(x, wt, 1, padding, activation)
        _, gw_im2col = _cpu_conv.conv2d_backward(x, wt, g, 1, padding, need_grad_x=False)
    finally:
        _core.force_conv_algorithm("auto")
    np.testing.assert_allclose(y, y_im2col, **_tol(np.float32, c_in * k * k))
    np.testing.assert_allclose(gw, gw_im2col, **_tol(np.float32, b * y.shape[2] * y.shape[3]))


@pytest.mark.parametrize("shape,k,padding", DIRECT_SHAPES[:3])
def test_direct_path_threads_give_identical_bits(restore_threads, shape, k, padding):
    b, c_in, c_out, h, w = shape
    x, wt = _case(np.random.default_rng(22), np.float32, b, c_in, c_out, h, w, k)
    results = []
    for threads in (1, 2):
        _core.set_num_threads(threads)
        y = _cpu_conv.conv2d(x, wt, 1, padding, "tanh")
        results.append((y, _cpu_conv.conv2d_backward(x, wt, np.cos(y), 1, padding, need_grad_x=False)[1]))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_direct_path_is_taken_only_with_avx512_vectors():
    """With the AVX2 or scalar vector path forced, the same convolution runs on im2col (and still agrees)."""
    (b, c_in, c_out, h, w), k, padding = DIRECT_SHAPES[0]
    x, wt = _case(np.random.default_rng(23), np.float32, b, c_in, c_out, h, w, k)
    y_auto = _cpu_conv.conv2d(x, wt, 1, padding)
    _core.force_conv_algorithm("im2col")
    y_im2col = _cpu_conv.conv2d(x, wt, 1, padding)
    _core.force_conv_algorithm("auto")
    for isa in [i for i in ("avx2", "scalar") if i in _vec_isas()]:
        _core.force_vec_isa(isa)
        try:
            y_isa = _cpu_conv.conv2d(x, wt, 1, padding)
        finally:
            _core.force_vec_isa("auto")
        np.testing.assert_array_equal(y_isa, y_im2col)  # the im2col path, bit for bit
    np.testing.assert_allclose(y_auto, y_im2col, **_tol(np.float32, c_in * k * k))


def _vec_isas():
    from helpers import vec_isas

    return vec_isas(_core)


def test_direct_weight_gradient_ignores_values_past_the_last_output_column():
    """'valid', K = 5, W = 21: output columns 0..16. An Inf in input column 17 reaches grad_w only through
    taps q >= 1 (x + q = 17 with x <= 16); tap q = 0 must stay finite, as in the reference."""
    rng = np.random.default_rng(24)
    x = rng.standard_normal((2, 1, 9, 21)).astype(np.float32)
    x[:, :, :, 17] = np.inf
    wt = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    g = rng.standard_normal((2, 4, 5, 17)).astype(np.float32)
    _, gw = _cpu_conv.conv2d_backward(x, wt, g, 1, "valid", need_grad_x=False)
    with np.errstate(invalid="ignore"):  # Inf - Inf in the taps that do see the Inf
        _, gw_ref = reference.conv2d_backward(x.astype(np.float64), wt.astype(np.float64), g.astype(np.float64), 1,
                                              "valid")
    assert np.isfinite(gw[..., 0]).all() and np.isfinite(gw_ref[..., 0]).all()
    np.testing.assert_allclose(gw[..., 0], gw_ref[..., 0], **_tol(np.float32, 2 * 5 * 17))
    np.testing.assert_array_equal(np.isfinite(gw), np.isfinite(gw_ref))
