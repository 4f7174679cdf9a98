"""The Winograd convolutions of fastdl._core (src/cpp/ops/winograd.cpp): 3x3, stride 1, forward F(2x2, 3x3), input
gradient (the flipped-kernel forward) and weight gradient F(3x3, 2x2), against the NumPy reference.

``force_conv_algorithm("winograd")`` runs every 3x3 stride-1 convolution on them, so the tests cover channel
counts below, at and past the transforms' vector blocks (1, 7, 8, 16, 17, 33), odd output sizes (a half-empty
last tile row or column), 1x1 images, every padding (3 > K - 1 sends grad_x to col2im), each SIMD path of the
transforms and each GEMM kernel. Finite differences check the gradients in float64.
"""

import numpy as np
import pytest

from fastdl import reference
from helpers import vec_isas
from test_core_conv import _case, _check, _tol

_core = pytest.importorskip("fastdl._core", reason="the C++ extension fastdl._core is not built")

from fastdl.cpu import conv as _cpu_conv  # noqa: E402

DTYPES = [np.float32, np.float64]
PADDINGS = ["same", "valid", 0, 1, 2, 3]
# (B, C_in, C_out, H, W)
SHAPES = [(1, 1, 1, 3, 3), (2, 3, 5, 7, 10), (1, 7, 9, 13, 5), (2, 16, 8, 9, 11), (1, 17, 33, 6, 6),
          (3, 24, 20, 1, 1), (2, 8, 16, 4, 15)]


@pytest.fixture
def winograd():
    _core.force_conv_algorithm("winograd")
    yield
    _core.force_conv_algorithm("auto")


@pytest.mark.parametrize("isa", vec_isas(_core))
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_winograd_matches_reference(winograd, padding, dtype, isa):
    rng = np.random.default_rng(len(str(padding)) + 10 * len(isa))
    _core.force_vec_isa(isa)
    try:
        ran = [_check(rng, dtype, shape, 3, 1, padding) for shape in SHAPES]
    finally:
        _core.force_vec_isa("auto")
    assert sum(ran) >= 5


@pytest.mark.parametrize("kernel", _core.gemm_kernels())
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_winograd_under_every_gemm_kernel(winograd, kernel, dtype):
    # C_out 8 and 12 take the narrow (AVX2) tile under AVX-512, C_out 40 the wide one
    _core.force_gemm_kernel(kernel)
    try:
        for shape in [(2, 16, 8, 9, 11), (1, 12, 40, 10, 7), (3, 40, 12, 5, 6)]:
            assert _check(np.random.default_rng(3), dtype, shape, 3, 1, "same")
    finally:
        _core.force_gemm_kernel("auto")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_many_channels_and_bands(winograd, dtype):
    # 150 x 140 channels: the weight gradient keeps fewer partial sums (its chunk cap); batch 1 with 21 tile rows:
    # the image is split into bands
    assert _check(np.random.default_rng(4), dtype, (2, 150, 140, 5, 6), 3, 1, "same")
    assert _check(np.random.default_rng(5), dtype, (1, 20, 24, 41, 9), 3, 1, 1)


def _auto_then(name, x, w, g):
    """Results of forward and backward under `name`."""
    _core.force_conv_algorithm(name)
    try:
        return (_cpu_conv.conv2d(x, w, 1, "same"),) + tuple(_cpu_conv.conv2d_backward(x, w, g, 1, "same"))
    finally:
        _core.force_conv_algorithm("auto")


@pytest.mark.parametrize("shape,dtype,k,picks", [
    ((2, 16, 32, 14, 14), np.float32, 3, "winograd"),   # the benchmarked layer
    ((2, 8, 8, 14, 14), np.float64, 3, "winograd"),     # 8 doubles fill a vector
    ((2, 8, 16, 14, 14), np.float32, 3, "im2col"),      # 8 floats do not
    ((1, 32, 32, 9, 9), np.float32, 3, "im2col"),       # 25 tiles: too little work
    ((2, 16, 32, 14, 14), np.float32, 5, "im2col"),     # not 3x3
])
def test_auto_picks(shape, dtype, k, picks):
    b, c_in, c_out, h, w = shape
    rng = np.random.default_rng(6)
    x, wt = _case(rng, dtype, b, c_in, c_out, h, w, k)
    g = rng.standard_normal((b, c_out, h, w)).astype(dtype)
    auto, wino, im2col = (_auto_then(name, x, wt, g) for name in ("auto", "winograd", "im2col"))
    chosen, other = (wino, im2col) if picks == "winograd" else (im2col, wino)
    assert all(np.array_equal(a, c) for a, c in zip(auto, chosen))
    if k == 3:  # the two algorithms round differently, so equal bits above mean the chosen one ran
        assert not np.array_equal(auto[0], other[0]) and not np.array_equal(auto[2], other[2])


def test_threads_give_identical_bits(winograd, restore_threads):
    rng = np.random.default_rng(8)
    x, wt = _case(rng, np.float32, 3, 16, 24, 23, 17, 3)
    g = rng.standard_normal((3, 24, 23, 17)).astype(np.float32)
    results = []
    for threads in (1, 2):
        _core.set_num_threads(threads)
        results.append((_cpu_conv.conv2d(x, wt, 1, 1, "relu"),) + tuple(_cpu_conv.conv2d_backward(x, wt, g, 1, 1)))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_gradients_match_finite_differences(winograd):
    # loss = sum(conv2d(x, w) * g) in float64: d loss / d x and d loss / d w at random entries, central differences
    rng = np.random.default_rng(9)
    x, w = _case(rng, np.float64, 2, 3, 4, 7, 6, 3)
    g = rng.standard_normal((2, 4, 7, 6))
    grad_x, grad_w = _cpu_conv.conv2d_backward(x, w, g, 1, "same")
    eps = 1e-6

    def loss(xx, ww):
        return float(np.sum(_cpu_conv.conv2d(xx, ww, 1, "same") * g))

    for array, grad, which in ((x, grad_x, 0), (w, grad_w, 1)):
        for _ in range(12):
            idx = tuple(int(rng.integers(n)) for n in array.shape)
            plus, minus = array.copy(), array.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args_plus = (plus, w) if which == 0 else (x, plus)
            args_minus = (minus, w) if which == 0 else (x, minus)
            numeric = (loss(*args_plus) - loss(*args_minus)) / (2 * eps)
            assert abs(numeric - grad[idx]) <= 1e-6 * max(1.0, abs(numeric)), (which, idx, numeric, grad[idx])


def test_fused_activation(winograd):
    rng = np.random.default_rng(10)
    x, w = _case(rng, np.float32, 2, 16, 16, 9, 8, 3)
    y = _cpu_conv.conv2d(x, w, 1, "same", "tanh")
    z = reference.conv2d(x.astype(np.float64), w.astype(np.float64), 1, "same")
    np.testing.assert_allclose(y, np.tanh(z), **_tol(np.float32, 16 * 9))


def test_force_conv_algorithm_names():
    assert _core.forced_conv_algorithm() == "auto"
    with pytest.raises(ValueError, match="unknown algorithm 'fast'.*auto, im2col, winograd"):
        _core.force_conv_algorithm("fast")
    for name in ("im2col", "winograd", "auto"):
        _core.force_conv_algorithm(name)
        assert _core.forced_conv_algorithm() == name
