"""matmul / linear / linear_backward on every accelerated backend against the reference."""

import numpy as np
import pytest

from helpers import check_op, random, to_host

# (M, K, N): 1s, primes, and sizes around common tile and block sizes (8, 16, 32, 64, 256).
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 9), (7, 13, 11), (17, 31, 23), (8, 16, 32), (33, 65, 31),
          (64, 257, 15), (97, 129, 255), (255, 96, 64), (3, 513, 2)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_matmul(backend_name, dtype, rng, m, k, n, trans_a, trans_b):
    a = random(rng, (k, m) if trans_a else (m, k), dtype)
    b = random(rng, (n, k) if trans_b else (k, n), dtype)
    check_op("matmul", (a, b), backend_name, {"trans_a": trans_a, "trans_b": trans_b}, dtype, scale=np.sqrt(k))


def test_matmul_empty_batch(backend_name, dtype, rng):
    a, b = random(rng, (0, 5), dtype), random(rng, (5, 3), dtype)
    out, _ = check_op("matmul", (a, b), backend_name, dtype=dtype)
    assert out.shape == (0, 3)


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (7, 13, 5), (64, 78, 33), (3, 100, 129)])
@pytest.mark.parametrize("bias_shape", ["flat", "book", None])
def test_linear_forward_backward(backend_name, dtype, rng, activation, n, i, o, bias_shape):
    x, w = random(rng, (n, i), dtype), random(rng, (i, o), dtype)
    b = {"flat": random(rng, (o,), dtype), "book": random(rng, (1, o), dtype), None: None}[bias_shape]
    y, _ = check_op("linear", (x, w, b, activation), backend_name, dtype=dtype, scale=np.sqrt(i))
    y = to_host(y)
    grad_y = random(rng, y.shape, dtype)
    check_op("linear_backward", (x, w, y, grad_y, activation), backend_name, dtype=dtype,
             scale=np.sqrt(max(i, o, n)))


def test_noncontiguous_and_fortran_inputs(backend_name, rng):
    a = random(rng, (20, 30), np.float64)[:, ::2]          # strided view
    b = np.asfortranarray(random(rng, (15, 9), np.float64))  # Fortran order
    check_op("matmul", (a, b), backend_name)


@pytest.mark.parametrize("bias_shape", ["flat", "book", None])
@pytest.mark.parametrize("backend", ["numpy", "cpu", "cuda"])
def test_linear_equals_the_formula_written_out(backend, bias_shape, rng):
    """kernels.linear against relu(x @ w + b) in plain NumPy, not through any fastdl wrapper (which the
    reference comparisons above share)."""
    import fastdl
    from fastdl import kernels

    if backend != "numpy" and not (fastdl.backend.cpu_available() if backend == "cpu" else
                                   fastdl.backend.cuda_real_gpu()):
        pytest.skip(f"the {backend} backend is not available here")
    x, w = random(rng, (7, 13), np.float64), random(rng, (13, 5), np.float64)
    b = {"flat": random(rng, (5,), np.float64), "book": random(rng, (1, 5), np.float64), None: None}[bias_shape]
    expected = np.maximum(x @ w + (0.0 if b is None else b.reshape(5)), 0.0)
    with fastdl.use_backend(backend):
        np.testing.assert_allclose(to_host(kernels.linear(x, w, b, "relu")), expected, rtol=1e-12, atol=1e-12)
