"""The NumPy reference itself: activations, matmul, linear / linear_backward.

Checked against direct Python loops (both dtypes) and central finite differences (float64).
"""

import math

import numpy as np
import pytest
from helpers import numerical_grad

from fastdl.reference import (KERNELS, activation, activation_backward, linear, linear_backward,
                              matmul)

ACTS = ["linear", "sigmoid", "tanh", "relu"]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def act_scalar(v, name):
    if name == "linear":
        return v
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))
    if name == "tanh":
        return math.tanh(v)
    return max(v, 0.0)


def loop_matmul(a, b):
    # a is (M, K), b is (K, N)
    M, K = a.shape
    N = b.shape[1]
    out = np.zeros((M, N))
    for i in range(M):
        for j in range(N):
            out[i, j] = sum(float(a[i, k]) * float(b[k, j]) for k in range(K))
    return out


def away_from_zero(rng, shape, dtype=np.float64):
    """Random values with |v| >= 0.1 so the ReLU kink is never inside a finite-difference step."""
    v = rng.uniform(0.1, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return v.astype(dtype)


def test_kernels_table_complete():
    names = {"activation", "activation_backward", "matmul", "linear", "linear_backward", "conv2d",
             "conv2d_backward", "conv2d_dropout", "softmax_cross_entropy", "cross_entropy", "rnn_forward",
             "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "dropout",
             "dropout_backward"}
    assert set(KERNELS) == names
    assert all(callable(f) for f in KERNELS.values())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTS)
def test_activation_matches_loop(name, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 7)) * 3).astype(dtype)
    x[0, :4] = [0.0, 50.0, -50.0, -1000.0 if dtype == np.float64 else -100.0]
    x_before = x.copy()
    y = activation(x, name)
    assert y.dtype == dtype and y.shape == x.shape
    assert not np.shares_memory(x, y)
    np.testing.assert_array_equal(x, x_before)
    expected = np.vectorize(lambda v: act_scalar(float(v), name))(x)
    np.testing.assert_allclose(y, expected, **TOL[dtype])


@pytest.mark.parametrize("name", ACTS)
def test_activation_backward_finite_differences(name):
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (4, 5))
    r = rng.standard_normal((4, 5))
    analytic = activation_backward(activation(x, name), r, name)
    numeric = numerical_grad(lambda: float((activation(x, name) * r).sum()), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_formulas(dtype):
    rng = np.random.default_rng(2)
    y = rng.uniform(-1, 1, (3, 4)).astype(dtype)
    y[0, 0] = 0.0
    g = rng.standard_normal((3, 4)).astype(dtype)
    for name, expected in [("linear", g), ("sigmoid", g * y * (1 - y)), ("tanh", g * (1 - y * y)),
                           ("relu", g * (y > 0))]:
        out = activation_backward(y, g, name)
        assert out.dtype == dtype
        assert not np.shares_memory(out, g)
        np.testing.assert_allclose(out, expected, **TOL[dtype])
    assert activation_backward(y, g, "relu")[0, 0] == 0  # the corrected book ReLU: mask y > 0


def test_unknown_activation_raises():
    x = np.ones((2, 2))
    with pytest.raises(ValueError):
        activation(x, "softplus")
    with pytest.raises(ValueError):
        activation_backward(x, x, "softplus")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (3, 5, 7), (2, 13, 1), (11, 2, 4)])
def test_matmul_matches_loop(M, K, N, trans_a, trans_b, dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    a0, b0 = a.copy(), b.copy()
    out = matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    assert out.dtype == dtype and out.shape == (M, N)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    expected = loop_matmul(a.T if trans_a else a, b.T if trans_b else b)
    np.testing.assert_allclose(out, expected, **TOL[dtype])


def loop_linear(x, w, b, name):
    z = loop_matmul(x, w)
    if b is not None:
        z = z + b.astype(np.float64)
    return np.vectorize(lambda v: act_scalar(float(v), name))(z)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("N,IN,OUT", [(1, 3, 2), (5, 7, 3)])
def test_linear_matches_loop(N, IN, OUT, with_bias, name, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, IN)).astype(dtype)
    w = rng.standard_normal((IN, OUT)).astype(dtype)
    b = rng.standard_normal(OUT).astype(dtype) if with_bias else None
    y = linear(x, w, b, activation=name)
    assert y.dtype == dtype and y.shape == (N, OUT)
    np.testing.assert_allclose(y, loop_linear(x, w, b, name), **TOL[dtype])


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("N,IN,OUT", [(1, 1, 1), (3, 5, 2), (7, 2, 3)])
def test_linear_backward_finite_differences(N, IN, OUT, name):
    rng = np.random.default_rng(5)
    while True:  # for ReLU, keep every pre-activation away from the kink
        x = rng.standard_normal((N, IN))
        w = rng.standard_normal((IN, OUT))
        b = rng.standard_normal(OUT)
        if name != "relu" or np.all(np.abs(x @ w + b) >= 0.05):
            break
    r = rng.standard_normal((N, OUT))
    y = linear(x, w, b, activation=name)
    args0 = [a.copy() for a in (x, w, y, r)]
    gx, gw, gb = linear_backward(x, w, y, r, activation=name)
    for a, a0 in zip((x, w, y, r), args0):
        np.testing.assert_array_equal(a, a0)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == b.shape

    def loss():
        return float((linear(x, w, b, activation=name) * r).sum())

    for analytic, arr in [(gx, x), (gw, w), (gb, b)]:
        np.testing.assert_allclose(analytic, numerical_grad(loss, arr), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_backward_dtype(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4)).astype(dtype)
    w = rng.standard_normal((4, 2)).astype(dtype)
    y = linear(x, w, None, "tanh")
    grads = linear_backward(x, w, y, np.ones_like(y), "tanh")
    assert all(g.dtype == dtype for g in grads)
