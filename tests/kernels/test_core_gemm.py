"""fastdl._core GEMM, linear and linear_backward against NumPy, for every GEMM kernel this CPU runs.

Shapes have tails: 1s, primes, and sizes just under/over the microkernel tiles (MR 4/6/8/12, NR 8/16/32)
and the cache blocks (KC 256/384, MC 72-192, NC 512/1024), on both sides of the packing thresholds (no
packing below 64^3 multiply-adds; B packed when transposed or M > 384; A packed when N >= 8 NR).
Every kernel this CPU supports is forced in turn (the `kernel` fixture). Also: 1 vs 2 threads must give
identical bits.
"""

import numpy as np
import pytest
from helpers import vec_isas

_core = pytest.importorskip("fastdl._core", reason="the C++ extension fastdl._core is not built")

KERNELS = _core.gemm_kernels()
DTYPES = [np.float32, np.float64]
ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu"]

# (M, K, N)
SHAPES = [
    (1, 1, 1), (1, 7, 3), (5, 1, 9), (2, 3, 1), (7, 13, 11), (13, 17, 31), (6, 16, 32), (8, 32, 16),
    (14, 31, 33), (15, 33, 47), (17, 64, 65), (29, 255, 8), (37, 257, 17), (3, 385, 49), (97, 129, 255),
    (129, 97, 96), (257, 40, 7), (2, 520, 3),
]
# Fewer, larger shapes that cross several cache blocks (each kernel, f32 and f64).
BLOCK_SHAPES = [(300, 520, 70), (3, 5, 4100), (260, 770, 129), (401, 300, 50), (9, 40, 1100), (70, 257, 2053),
                (64, 256, 1024)]  # the last: rows of B 4 KiB apart, packed


def _sides(rng, m, k, n, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def _expected(a, b, trans_a, trans_b):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)


def _check_every_transpose(rng, m, k, n, dtype):
    """matmul against NumPy in float64 for each of the four transpose flag pairs."""
    for trans_a, trans_b in [(False, False), (False, True), (True, False), (True, True)]:
        a, b = _sides(rng, m, k, n, trans_a, trans_b, dtype)
        _close(_core.matmul(a, b, trans_a, trans_b), _expected(a, b, trans_a, trans_b), dtype, k)


def _close(actual, expected, dtype, k):
    rtol, atol = (2e-4, 2e-5) if dtype == np.float32 else (1e-11, 1e-12)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * np.sqrt(max(k, 1)))


@pytest.fixture(params=KERNELS)
def kernel(request):
    _core.force_gemm_kernel(request.param)
    yield request.param
    _core.force_gemm_kernel("auto")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------------------------
# matmul
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (False, True), (True, False), (True, True)],
                         ids=["NN", "NT", "TN", "TT"])
def test_matmul_tails(kernel, rng, dtype, trans_a, trans_b):
    for m, k, n in SHAPES:
        a, b = _sides(rng, m, k, n, trans_a, trans_b, dtype)
        a_before, b_before = a.copy(), b.copy()
        c = _core.matmul(a, b, trans_a, trans_b)
        assert c.shape == (m, n) and c.dtype == dtype
        _close(c, _expected(a, b, trans_a, trans_b), dtype, k)
        np.testing.assert_array_equal(a, a_before)
        np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", BLOCK_SHAPES)
def test_matmul_cache_blocks(kernel, rng, dtype, m, k, n):
    _check_every_transpose(rng, m, k, n, dtype)


@pytest.mark.parametrize("m,k,n", [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)])
def test_matmul_empty(kernel, m, k, n):
    c = _core.matmul(np.ones((m, k), np.float32), np.ones((k, n), np.float32), False, False)
    assert c.shape == (m, n)
    np.testing.assert_array_equal(c, np.zeros((m, n), np.float32))


# Narrow results: up to 64 bytes of columns go to the narrow kernel (dot products for up to a quarter of
# that when a is not transposed, else padded row vectors); (61, 700, 20) is just wider. Partial blocks of
# 8 rows, K tails, every transpose flag; with AVX-512 and rows of a contiguous, the wider ones (from a quarter of
# 64 bytes) go to blocks of 4 x 4 dot products, with row and column leftovers (97 x 801 x 5, 70 x 4099 x 8).
# From 2^12 rows x depth when at most 40 bytes wide (60 x 89 x 10; 46 x 89 and N 11 stay blocked, and so do
# depths under 16: 4096 x 8 x 10).
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [(60, 1000, 10), (3000, 60, 10), (500, 300, 1), (97, 801, 5), (2, 5000, 3),
                                   (130, 517, 16), (33, 1031, 2), (70, 4099, 8), (61, 700, 20), (60, 12544, 10),
                                   (60, 89, 10), (89, 60, 10), (46, 89, 5), (60, 89, 11), (4096, 8, 10),
                                   (2048, 16, 10), (60, 89, 6)])
def test_matmul_narrow_results(kernel, rng, dtype, m, k, n):
    _check_every_transpose(rng, m, k, n, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [(64, 784, 256), (131, 300, 77), (5, 900, 700), (400, 260, 90), (600, 300, 10),
                                   (700, 900, 3)])
def test_threads_give_identical_bits(kernel, rng, restore_threads, dtype, m, k, n):
    for trans_a, trans_b in [(False, False), (False, True), (True, False)]:
        a, b = _sides(rng, m, k, n, trans_a, trans_b, dtype)
        _core.set_num_threads(1)
        one = _core.matmul(a, b, trans_a, trans_b)
        _core.set_num_threads(2)
        two = _core.matmul(a, b, trans_a, trans_b)
        np.testing.assert_array_equal(one, two)


# A small c over a long K (M <= 64, N <= 128, K >= 512: a Dense layer's forward) is summed as two halves of K,
# split at a multiple of 16 near K / 2, whatever the thread count. Shapes on both sides of each bound, with
# tails; the halves are added before the bias and the activation.
SPLIT_K_SHAPES = [(60, 784, 89), (1, 512, 1), (64, 515, 128), (61, 1031, 97), (7, 4099, 33), (3, 520, 17),
                  (65, 784, 89), (60, 511, 89), (60, 784, 129)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", SPLIT_K_SHAPES)
def test_split_k_products(kernel, rng, dtype, m, k, n):
    _check_every_transpose(rng, m, k, n, dtype)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    z = x.astype(np.float64) @ w.astype(np.float64) + bias.astype(np.float64)
    for activation in ACTIVATIONS:
        _close(_core.linear(x, w, bias, activation), _act(z, activation), dtype, k)


@pytest.mark.parametrize("m,k,n", SPLIT_K_SHAPES[:5])
def test_split_k_threads_give_identical_bits(kernel, rng, restore_threads, m, k, n):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        _core.set_num_threads(threads)
        results.append((_core.matmul(x, w, False, False), _core.linear(x, w, bias, "tanh")))
    for other in results[1:]:
        for u, v in zip(results[0], other):
            np.testing.assert_array_equal(u, v)


# ----------------------------------------------------------------------------------------------
# linear / linear_backward
# ----------------------------------------------------------------------------------------------

def _act(z, name):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    return z


def _act_grad(y, g, name):
    if name == "sigmoid":
        return g * y * (1 - y)
    if name == "tanh":
        return g * (1 - y * y)
    if name == "relu":
        return np.where(y > 0, g, 0)
    return g


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
def test_linear_forward_backward(kernel, rng, dtype, activation, with_bias):
    # (60, 1000, 10) and (90, 700, 3): narrow outputs, computed by the narrow GEMM kernel
    for n, i, o in [(1, 1, 1), (7, 13, 5), (64, 78, 33), (3, 100, 129), (37, 257, 65), (60, 1000, 10), (90, 700, 3)]:
        x = rng.standard_normal((n, i)).astype(dtype)
        w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype) if with_bias else None
        y = _core.linear(x, w, b, activation)
        z = x.astype(np.float64) @ w.astype(np.float64) + (0 if b is None else b.astype(np.float64))
        assert y.shape == (n, o) and y.dtype == dtype
        _close(y, _act(z, activation), dtype, i)

        grad_y = rng.standard_normal((n, o)).astype(dtype)
        gx, gw, gb = _core.linear_backward(x, w, y, grad_y, activation)
        dz = _act_grad(y.astype(np.float64), grad_y.astype(np.float64), activation)
        assert gx.shape == (n, i) and gw.shape == (i, o) and gb.shape == (o,)
        assert gx.dtype == gw.dtype == gb.dtype == dtype
        _close(gx, dz @ w.astype(np.float64).T, dtype, o)
        _close(gw, x.astype(np.float64).T @ dz, dtype, n)
        _close(gb, dz.sum(axis=0), dtype, n)


def test_linear_backward_threads_identical(kernel, rng, restore_threads):
    x = rng.standard_normal((200, 150)).astype(np.float32)
    w = rng.standard_normal((150, 90)).astype(np.float32)
    y = _core.linear(x, w, rng.standard_normal(90).astype(np.float32), "tanh")
    grad_y = rng.standard_normal(y.shape).astype(np.float32)
    _core.set_num_threads(1)
    one = _core.linear_backward(x, w, y, grad_y, "tanh")
    _core.set_num_threads(2)
    two = _core.linear_backward(x, w, y, grad_y, "tanh")
    for u, v in zip(one, two):
        np.testing.assert_array_equal(u, v)


# (n, in, out) on the read-out layer's path (few outputs, many inputs: both products in one pass over the columns of
# x): the CNN's 60 x 12544 x 10, one row, primes, inputs that end inside a block and inside a panel of columns, and
# every output count the path takes (up to 12 float32 / 6 float64; more falls back to the GEMMs)
READOUT_SHAPES = [(60, 12544, 10), (1, 1024, 1), (7, 1031, 12), (13, 2053, 6), (60, 1100, 7), (3, 4099, 3),
                  (5, 1157, 13)]


@pytest.mark.parametrize("isa", vec_isas(_core))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n,i,o", READOUT_SHAPES)
def test_readout_layer_backward(isa, rng, dtype, n, i, o):
    x = rng.standard_normal((n, i)).astype(dtype)
    w = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
    y = np.tanh(x.astype(np.float64) @ w).astype(dtype)
    grad_y = rng.standard_normal((n, o)).astype(dtype)
    inputs = [a.copy() for a in (x, w, y, grad_y)]
    dz = _act_grad(y.astype(np.float64), grad_y.astype(np.float64), "tanh")
    _core.force_vec_isa(isa)
    try:
        gx, gw, gb = _core.linear_backward(x, w, y, grad_y, "tanh")
        none, gw2, _ = _core.linear_backward(x, w, y, grad_y, "tanh", False)
    finally:
        _core.force_vec_isa("auto")
    _close(gx, dz @ w.astype(np.float64).T, dtype, o)
    _close(gw, x.astype(np.float64).T @ dz, dtype, n)
    _close(gb, dz.sum(axis=0), dtype, n)
    assert none is None
    np.testing.assert_array_equal(gw2, gw)
    for a, b in zip((x, w, y, grad_y), inputs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_readout_layer_backward_threads_identical(rng, restore_threads, dtype):
    x = rng.standard_normal((60, 4099)).astype(dtype)
    w = rng.standard_normal((4099, 5)).astype(dtype)
    y = np.zeros((60, 5), dtype)
    grad_y = rng.standard_normal((60, 5)).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        _core.set_num_threads(threads)
        results.append(_core.linear_backward(x, w, y, grad_y, "linear"))
    for other in results[1:]:
        for u, v in zip(results[0], other):
            np.testing.assert_array_equal(u, v)


def test_linear_empty_batch():
    x, w, b = np.ones((0, 4)), np.ones((4, 3)), np.ones(3)
    assert _core.linear(x, w, b, "relu").shape == (0, 3)
    gx, gw, gb = _core.linear_backward(x, w, np.ones((0, 3)), np.ones((0, 3)), "relu")
    assert gx.shape == (0, 4)
    np.testing.assert_array_equal(gw, np.zeros((4, 3)))
    np.testing.assert_array_equal(gb, np.zeros(3))


# ----------------------------------------------------------------------------------------------
# errors and controls
# ----------------------------------------------------------------------------------------------

def test_shape_errors_raise_value_error():
    f = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError):
        _core.matmul(f, f, False, False)
    with pytest.raises(ValueError):
        _core.matmul(np.ones(3, np.float32), f, False, False)
    with pytest.raises(ValueError):
        _core.linear(f, np.ones((5, 2), np.float32), None, "relu")
    with pytest.raises(ValueError):
        _core.linear(f, np.ones((4, 2), np.float32), np.ones(3, np.float32), "relu")
    with pytest.raises(ValueError):
        _core.linear(f, np.ones((4, 2), np.float32), None, "gelu")
    with pytest.raises(ValueError):
        _core.linear_backward(f, np.ones((4, 2), np.float32), np.ones((3, 2), np.float32),
                              np.ones((3, 3), np.float32), "relu")


def test_no_silent_conversion():
    f32, f64 = np.ones((3, 4), np.float32), np.ones((4, 2), np.float64)
    with pytest.raises(TypeError):
        _core.matmul(f32, f64, False, False)
    with pytest.raises(TypeError):
        _core.matmul(np.ones((4, 3), np.float32).T, np.ones((4, 2), np.float32), False, False)


def test_kernel_controls():
    assert KERNELS[0] == "naive"
    assert _core.selected_gemm_kernel() in KERNELS
    features = _core.cpu_features()
    assert isinstance(features, dict) and all(isinstance(v, bool) for v in features.values())
    if features.get("avx512f"):
        assert "avx512" in KERNELS
    with pytest.raises(ValueError):
        _core.force_gemm_kernel("no-such-kernel")
    for name in KERNELS:
        _core.force_gemm_kernel(name)
        assert _core.selected_gemm_kernel() == name
    _core.force_gemm_kernel("auto")
    best = "avx512" if "avx512" in KERNELS else "avx2" if "avx2" in KERNELS else "naive"
    assert _core.selected_gemm_kernel() == best


def test_threads_controls(restore_threads):
    _core.set_num_threads(1)
    assert _core.get_num_threads() == 1
    with pytest.raises(ValueError):
        _core.set_num_threads(0)
